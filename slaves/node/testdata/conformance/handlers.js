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
