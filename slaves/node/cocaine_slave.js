'use strict';
// Runs a Node.js app as a slave of the engine. The engine starts
// `node cocaine_slave.js` in the app's unpacked package, which holds
// manifest.json, with the protocol's environment (docs/protocol.md).

const app = require('./lib/app');
const { Worker, connect, log } = require('./lib/worker');

async function main() {
  const path = process.env.COCAINE_SOCKET;
  const id = process.env.COCAINE_SLAVE_ID;
  if (!path || !id) {
    log('COCAINE_SOCKET and COCAINE_SLAVE_ID must be set: a cocaine engine starts this program');
    return 2;
  }
  let period = parseInt(process.env.COCAINE_HEARTBEAT_MS || '', 10);
  if (!(period > 0)) period = 5000;
  // Express and others show stack traces to clients outside production.
  if (process.env.NODE_ENV === undefined) process.env.NODE_ENV = 'production';

  const root = process.cwd();
  let dispatch;
  try {
    dispatch = app.load(root, app.readManifest(root));
  } catch (e) {
    // Before the handshake: the engine counts a failed start and keeps
    // this output as the crash log.
    if (e instanceof app.ManifestError) log(`manifest.json: ${e.message}`);
    else log(`cannot load the app: ${e && e.stack ? e.stack : e}`);
    return e instanceof app.ManifestError ? 2 : 1;
  }
  let sock;
  try {
    sock = await connect(path);
  } catch (e) {
    log(`connect to the engine at ${path}: ${e.message}`);
    return 1;
  }
  return new Worker(sock, id, period, dispatch).run();
}

main().then((status) => {
  // Let what is written (the terminate frame, the log) leave first.
  process.exitCode = status;
  setImmediate(() => process.exit(status));
});
