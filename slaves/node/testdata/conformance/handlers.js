'use strict';
// The conformance app of slaves/conformance, in JavaScript.

exports.echo = async (req, res) => {
  for await (const chunk of req) res.write(chunk);
};

exports.sleep = async (req) => {
  const ms = Number(await req.text());
  if (!Number.isInteger(ms) || ms < 0) throw Object.assign(new Error('sleep: body must be milliseconds'), { code: 400 });
  if (await req.sleep(ms)) return undefined;
  return 'ok';
};

exports['stream-upper'] = async (req, res) => {
  for await (const chunk of req) {
    res.write(Buffer.from(chunk.toString('latin1').toUpperCase(), 'latin1'));
    res.flush();
  }
};

exports.fail = async () => {
  throw new Error('failing on purpose');
};

// count answers the length of its body, which it reads only once the file
// named by $COUNT_GATE exists (conformance.UnreadBody).
exports.count = async (req) => {
  const gate = process.env.COUNT_GATE;
  while (gate && !require('node:fs').existsSync(gate)) {
    if (await req.sleep(10)) return undefined;
  }
  return String((await req.buffer()).length);
};

// flood answers 1 KiB every 10 ms and never checks for cancellation: only
// the runtime throwing from a write once the engine cancelled the session
// stops it (conformance case cancel-streaming).
exports.flood = async (req, res) => {
  const data = Buffer.alloc(1024, 'x');
  for (;;) {
    res.write(data);
    res.flush();
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
};
