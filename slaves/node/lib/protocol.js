'use strict';
// Frames of the engine <-> slave protocol (docs/protocol.md): a 4-byte
// big-endian length, then a MessagePack array [type, session, args...].

const { Decoder, Encoder } = require('@msgpack/msgpack');

const VERSION = 1;
const MAX_FRAME = 8 << 20;
const CHUNK_SIZE = 1 << 20; // most body bytes the runtime puts in one chunk

const HANDSHAKE = 1, HEARTBEAT = 2, TERMINATE = 3, INVOKE = 4, CHUNK = 5, ERROR = 6, CHOKE = 7;
const ARITY = { 1: 5, 2: 2, 3: 3, 4: 3, 5: 3, 6: 4, 7: 2 };

class ProtocolError extends Error {}

const encoder = new Encoder();
const decoder = new Decoder();

function frame(fields) {
  const payload = encoder.encode(fields);
  if (payload.length > MAX_FRAME) throw new ProtocolError(`frame of ${payload.length} bytes exceeds ${MAX_FRAME}`);
  const out = Buffer.allocUnsafe(4 + payload.length);
  out.writeUInt32BE(payload.length, 0);
  out.set(payload, 4);
  return out;
}

// chunkFrames cuts data into chunk frames of at most CHUNK_SIZE bytes. The
// head of each is written by hand so that the body is not copied through
// the encoder: [5, session, bin32].
function chunkFrames(session, data) {
  const out = [];
  for (let off = 0; off < data.length; off += CHUNK_SIZE) {
    const piece = data.subarray(off, Math.min(off + CHUNK_SIZE, data.length));
    const sess = encoder.encode(session);
    const head = Buffer.allocUnsafe(4 + 2 + sess.length + 5);
    head.writeUInt32BE(2 + sess.length + 5 + piece.length, 0);
    head[4] = 0x93;
    head[5] = CHUNK;
    head.set(sess, 6);
    head[6 + sess.length] = 0xc6;
    head.writeUInt32BE(piece.length, 7 + sess.length);
    out.push(head, piece);
  }
  return out;
}

const handshake = (id, pid) => frame([HANDSHAKE, 0, id, pid, VERSION]);
const heartbeat = () => frame([HEARTBEAT, 0]);
const terminate = (reason) => frame([TERMINATE, 0, reason]);
const error = (session, code, message) => frame([ERROR, session, code, message]);
const choke = (session) => frame([CHOKE, session]);

// Reader turns the bytes of the socket into frames.
class Reader {
  constructor() {
    this.bufs = [];
    this.size = 0;
  }

  // push adds bytes and returns the complete frames, decoded. Pieces are
  // joined only once a whole frame is there, so a large frame arriving in
  // many reads is copied once.
  push(data) {
    this.bufs.push(data);
    this.size += data.length;
    const frames = [];
    while (this.size >= 4) {
      if (this.bufs[0].length < 4) this.join();
      const n = this.bufs[0].readUInt32BE(0);
      if (n > MAX_FRAME) throw new ProtocolError(`frame of ${n} bytes declared, limit ${MAX_FRAME}`);
      if (this.size < 4 + n) break;
      if (this.bufs[0].length < 4 + n) this.join();
      const buf = this.bufs[0];
      frames.push(decode(buf.subarray(4, 4 + n)));
      if (buf.length > 4 + n) this.bufs[0] = buf.subarray(4 + n);
      else this.bufs.shift();
      this.size -= 4 + n;
    }
    return frames;
  }

  join() {
    this.bufs = [Buffer.concat(this.bufs, this.size)];
  }
}

function decode(payload) {
  let f;
  try {
    f = decoder.decode(payload);
  } catch (e) {
    throw new ProtocolError(`bad MessagePack: ${e.message}`);
  }
  if (!Array.isArray(f) || f.length < 2 || typeof f[0] !== 'number') throw new ProtocolError('not a frame');
  if (ARITY[f[0]] !== f.length) throw new ProtocolError(`frame type ${f[0]} with ${f.length} elements`);
  if (f[0] === CHUNK) {
    const d = f[2];
    // A view into the frame's buffer, which is never reused; str bodies
    // are accepted too.
    f[2] = typeof d === 'string' ? Buffer.from(d, 'utf8') : Buffer.from(d.buffer, d.byteOffset, d.byteLength);
  }
  return f;
}

module.exports = {
  VERSION, MAX_FRAME, CHUNK_SIZE, HANDSHAKE, HEARTBEAT, TERMINATE, INVOKE, CHUNK, ERROR, CHOKE,
  ProtocolError, handshake, heartbeat, terminate, error, choke, chunkFrames, Reader,
};
