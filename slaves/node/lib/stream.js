'use strict';
// The request and answer streams of one session.

const { Readable } = require('node:stream');
const protocol = require('./protocol');

// An answer is sent as a chunk once this much is buffered.
const BUFFER_SIZE = 64 << 10;

// CocaineError ends a session with a code of the protocol's table (400,
// 404, ...) instead of 502. Any error with a numeric `code` from 400 to 599
// does the same.
class CocaineError extends Error {
  constructor(code, message) {
    super(message);
    this.name = 'CocaineError';
    this.code = code;
  }
}

// Cancelled is the error of a session the engine gave up on (deadline,
// timeout, caller gone): nobody reads its answer.
class Cancelled extends Error {
  constructor(reason) {
    super(`session cancelled: ${reason}`);
    this.name = 'Cancelled';
  }
}

// Request is the body of a session, a Readable of Buffers as they arrive.
// `for await (const chunk of req)` streams it; `await req.buffer()` reads it
// all. req.signal aborts when the engine cancels the session.
class Request extends Readable {
  constructor(event, wantInput = () => {}) {
    super();
    this.event = event;
    this._wantInput = wantInput;
    this._abort = new AbortController();
    this.signal = this._abort.signal;
    // A cancelled body errors: a handler reading it sees the error, and one
    // that never reads it must not crash the process over it.
    this.on('error', () => {});
  }

  // The reader asks for more: its buffer ran low.
  _read() {
    this._wantInput();
  }

  get cancelled() {
    return this.signal.aborted;
  }

  async buffer() {
    const parts = [];
    for await (const c of this) parts.push(c);
    return Buffer.concat(parts);
  }

  async text() {
    return (await this.buffer()).toString('utf8');
  }

  // sleep waits ms milliseconds; it returns true early when the session is
  // cancelled.
  sleep(ms) {
    if (this.cancelled) return Promise.resolve(true);
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(t);
        resolve(true);
      };
      const t = setTimeout(() => {
        this.signal.removeEventListener('abort', done);
        resolve(false);
      }, ms);
      this.signal.addEventListener('abort', done, { once: true });
    });
  }

  _cancel(reason) {
    if (this.cancelled) return;
    this._abort.abort(new Cancelled(reason));
    this.destroy(new Cancelled(reason));
  }
}

// Response is the answer of a session. write() buffers (up to 64 KiB),
// flush() sends what is buffered, end() ends the answer: its last chunk and
// the end leave in one socket write.
class Response {
  constructor(session, send, request, drained = () => Promise.resolve()) {
    this._session = session;
    this._send = send;
    this._drained = drained;
    this._request = request;
    this._buf = [];
    this._size = 0;
    this._cut = []; // finished chunks not sent yet (the HTTP head)
    this.ended = false;
  }

  write(data) {
    this._usable();
    if (typeof data === 'string') data = Buffer.from(data, 'utf8');
    else if (data instanceof Uint8Array) data = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    else throw new TypeError(`response.write takes a Buffer, Uint8Array or string, not ${typeof data}`);
    if (!data.length) return true;
    this._buf.push(data);
    this._size += data.length;
    if (this._size >= BUFFER_SIZE) return this._send(this._frames());
    return true;
  }

  flush() {
    this._usable();
    const frames = this._frames();
    return frames.length ? this._send(frames) : true;
  }

  // drained resolves when the connection to the engine can take more:
  // a handler producing a large answer awaits it after a write or flush
  // that returned false.
  drained() {
    return this._drained();
  }

  end(data) {
    if (data !== undefined && data !== null) this.write(data);
    this._finish(protocol.choke(this._session));
  }

  // error ends the answer with a code and a short message for the caller.
  error(code, message) {
    this._finish(protocol.error(this._session, code, String(message)));
  }

  _endChunk() {
    if (this._size) {
      this._cut.push(Buffer.concat(this._buf, this._size));
      this._buf = [];
      this._size = 0;
    }
  }

  _usable() {
    if (this.ended) throw new Error('response already ended');
    if (this._request.cancelled) throw new Cancelled('cancelled');
  }

  _finish(last) {
    if (this.ended) return;
    this.ended = true;
    const frames = this._frames();
    frames.push(last);
    this._send(frames);
  }

  _frames() {
    const chunks = this._cut;
    this._cut = [];
    if (this._size) {
      chunks.push(this._buf.length === 1 ? this._buf[0] : Buffer.concat(this._buf, this._size));
      this._buf = [];
      this._size = 0;
    }
    const frames = [];
    for (const c of chunks) frames.push(...protocol.chunkFrames(this._session, c));
    return frames;
  }
}

module.exports = { Request, Response, CocaineError, Cancelled };
