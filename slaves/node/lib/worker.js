'use strict';
// The slave's protocol loop (docs/protocol.md) on Node's event loop:
// frames are read as they come, sessions run concurrently as async
// handlers, heartbeats leave from a timer. A handler that blocks the event
// loop (long synchronous work) stops the heartbeats too: keep such work
// under the app's heartbeat-timeout, or move it to a worker thread.

const net = require('node:net');
const protocol = require('./protocol');
const { Request, Response, CocaineError, Cancelled } = require('./stream');

// Request body read from the socket that no handler has taken yet, across
// sessions: past this the worker stops reading (the engine's writes then
// wait) until handlers take half of it or one waits for input.
const MAX_UNREAD = 8 << 20;
// Error messages go to a caller: short, no stack.
const MAX_MESSAGE = 300;

function log(msg) {
  process.stderr.write(`cocaine: ${msg}\n`);
}

class Worker {
  constructor(sock, slaveId, periodMs, dispatch) {
    this.sock = sock;
    this.id = slaveId;
    this.period = periodMs;
    this.dispatch = dispatch;
    this.sessions = new Map(); // session -> Request
    this.reader = new protocol.Reader();
    this.terminating = false;
    this.done = false;
    this.paused = false;
  }

  // send writes frames in one write (cork/uncork coalesces them).
  send(frames) {
    if (this.done || this.sock.destroyed) return false;
    if (frames.length === 1) return this.sock.write(frames[0]);
    this.sock.cork();
    let ok = true;
    for (const f of frames) ok = this.sock.write(f);
    this.sock.uncork();
    return ok;
  }

  drained() {
    if (!this.sock.writableNeedDrain || this.done) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        this.sock.off('drain', done);
        this.sock.off('close', done);
        resolve();
      };
      this.sock.on('drain', done);
      this.sock.on('close', done);
    });
  }

  // run resolves with the exit status: 0 after terminate, 1 when the
  // engine went away.
  run() {
    return new Promise((resolve) => {
      this.exit = resolve;
      this.send([protocol.handshake(this.id, process.pid)]);
      this.beat = setInterval(() => this.send([protocol.heartbeat()]), this.period);
      this.sock.on('data', (data) => {
        let frames;
        try {
          frames = this.reader.push(data);
        } catch (e) {
          log(`reading from the engine: ${e.message}`);
          this.gone();
          return;
        }
        for (const f of frames) this.route(f);
        if (!this.paused && this.unread() > MAX_UNREAD) {
          this.paused = true; // the rest waits in the socket
          this.sock.pause();
        }
      });
      this.sock.on('error', (e) => {
        if (!this.done) log(`engine connection: ${e.message}`);
      });
      this.sock.on('close', () => {
        if (!this.done) {
          log('engine closed the connection');
          this.gone();
        }
      });
    });
  }

  route(f) {
    const [kind, session] = f;
    if (kind === protocol.INVOKE) {
      this.serve(session, String(f[2]));
      return;
    }
    if (kind === protocol.TERMINATE) {
      this.terminating = true;
      this.maybeLeave();
      return;
    }
    const req = this.sessions.get(session);
    if (!req) return; // the session ended here already
    if (kind === protocol.CHUNK) {
      if (f[2].length) req.push(f[2]);
    } else if (kind === protocol.CHOKE) {
      req.push(null);
    } else if (kind === protocol.ERROR) {
      req._cancel(`${f[2]} ${f[3]}`);
    }
  }

  unread() {
    let n = 0;
    for (const req of this.sessions.values()) n += req.readableLength;
    return n;
  }

  // maybeResume reads again once handlers took half of the unread body,
  // or one of them waits for input (wanting).
  maybeResume(wanting) {
    if (this.paused && (wanting || this.unread() <= MAX_UNREAD / 2)) {
      this.paused = false;
      this.sock.resume();
    }
  }

  async serve(session, event) {
    const req = new Request(event, () => this.maybeResume(true));
    const resp = new Response(session, (frames) => this.send(frames), req, () => this.drained());
    this.sessions.set(session, req);
    try {
      await this.dispatch(req, resp);
      resp.end();
    } catch (e) {
      if (req.cancelled) {
        resp.error(520, 'cancelled'); // the engine ignores it; the session must end
      } else if (e instanceof CocaineError || codeOf(e)) {
        resp.error(codeOf(e), short(e, false));
      } else {
        log(`handler of "${event}" failed: ${e && e.stack ? e.stack : e}`);
        resp.error(502, short(e, true));
      }
    } finally {
      this.sessions.delete(session);
      this.maybeResume(false);
      this.maybeLeave();
    }
  }

  maybeLeave() {
    if (!this.terminating || this.sessions.size || this.done) return;
    this.send([protocol.terminate('terminated by engine')]);
    this.finish(0);
  }

  gone() {
    if (this.done) return;
    // Nobody will read the answers: cancel what runs and leave.
    for (const req of this.sessions.values()) req._cancel('engine gone');
    this.finish(1);
  }

  finish(status) {
    this.done = true;
    clearInterval(this.beat);
    let left = false;
    const leave = () => {
      if (!left) {
        left = true;
        this.exit(status);
      }
    };
    // Leave once what is written (the terminate frame) is out, or soon.
    this.sock.end(leave);
    setTimeout(leave, 500);
  }
}

function codeOf(e) {
  const c = e && e.code;
  return Number.isInteger(c) && c >= 400 && c <= 599 ? c : 0;
}

function short(e, withName) {
  let msg = e instanceof Error ? (withName ? `${e.name}: ${e.message}` : e.message) : String(e);
  if (e instanceof Error && !e.message) msg = e.name;
  return msg.length <= MAX_MESSAGE ? msg : `${msg.slice(0, MAX_MESSAGE - 3)}...`;
}

// connect opens the engine's socket.
function connect(path) {
  return new Promise((resolve, reject) => {
    const sock = net.createConnection(path);
    sock.once('connect', () => {
      sock.removeListener('error', reject);
      resolve(sock);
    });
    sock.once('error', reject);
  });
}

module.exports = { Worker, connect, log, Cancelled };
