'use strict';
// Serving a Node request listener — an Express app, Koa's app.callback(),
// a plain (req, res) function — on HTTP events, unchanged.
//
// The request arrives in the HTTP payload (slaves/python/README.md#http-payload):
// a MessagePack map {meta, body} and then raw body chunks; the answer is a
// map {code, headers} and then raw body chunks. Between the two, the
// runtime runs a real http.Server and a real http client over an in-memory
// connection, so the app sees a genuine IncomingMessage and ServerResponse
// (prototypes, events, header rules, streaming and all) and the answer is
// parsed by Node's own HTTP parser.

const http = require('node:http');
const { Duplex } = require('node:stream');
const { Decoder } = require('@msgpack/msgpack');
const { CocaineError } = require('./stream');

// Values as raw bytes (map keys stay strings): header bytes reach the app
// exactly as the client sent them, one latin-1 char per byte, as Node's
// own server does.
const headDecoder = new Decoder({ rawStrings: true });

// Hop-by-hop headers of the in-memory connection, not of the answer.
const HOP = new Set(['connection', 'keep-alive', 'transfer-encoding']);

// listenerOf finds the request listener in what the module exports.
function listenerOf(exp, name) {
  if (exp && typeof exp === 'object' && exp.default !== undefined && typeof exp !== 'function') exp = exp.default;
  if (typeof exp === 'function') return exp; // Express, connect, a plain listener
  if (exp && typeof exp.callback === 'function') return exp.callback(); // Koa
  throw new TypeError(`args.http: ${name} exports neither a request listener nor an app with callback() (Koa)`);
}

// A pair of connected in-memory duplex streams, one side a client socket,
// the other the server's.
class Side extends Duplex {
  constructor() {
    super();
    this.peer = null;
    this.remoteAddress = '127.0.0.1';
    this.remotePort = 0;
    this.remoteFamily = 'IPv4';
  }
  _read() {}
  _write(chunk, encoding, cb) {
    this.peer.push(chunk);
    cb();
  }
  _final(cb) {
    this.peer.push(null);
    cb();
  }
  setTimeout() { return this; }
  setNoDelay() { return this; }
  setKeepAlive() { return this; }
  ref() { return this; }
  unref() { return this; }
}

function pair() {
  const a = new Side();
  const b = new Side();
  a.peer = b;
  b.peer = a;
  return [a, b];
}

function httpHandler(listener) {
  const server = http.createServer((req, res) => {
    req.cocaine = req.socket.cocaine;
    let r;
    try {
      r = listener(req, res);
    } catch (e) {
      req.socket.emit('app-error', e);
      return;
    }
    if (r && typeof r.catch === 'function') r.catch((e) => req.socket.emit('app-error', e));
  });
  return (req, resp) => serve(server, req, resp);
}

async function serve(server, req, resp) {
  const { meta, rest } = await readHead(req);
  const [client, conn] = pair();
  const remote = splitHostPort(str(meta.remote_addr));
  conn.remoteAddress = remote.host || '127.0.0.1';
  conn.remotePort = parseInt(remote.port, 10) || 0;
  conn.remoteFamily = conn.remoteAddress.includes(':') ? 'IPv6' : 'IPv4';
  if (meta.secure) conn.encrypted = true; // req.protocol of Express reads it
  // The app sees the path below its mount point (path_info), as a WSGI or
  // PSGI app does; the whole of it is in req.cocaine.
  let scriptName = str(meta.script_name);
  let pathInfo = str(meta.path_info);
  if (!scriptName && !pathInfo) pathInfo = str(meta.path);
  if (!pathInfo.startsWith('/')) pathInfo = `/${pathInfo}`;
  scriptName = scriptName.replace(/\/+$/, '');
  conn.cocaine = { meta, scriptName };

  return new Promise((resolve, reject) => {
    let settled = false;
    const settle = (err) => {
      if (settled) return;
      settled = true;
      client.destroy();
      conn.destroy();
      if (err) reject(err);
      else resolve();
    };
    conn.on('app-error', (e) => settle(e));
    conn.on('error', () => {});
    client.on('error', () => {});
    server.emit('connection', conn);

    const path = pathInfo;
    const query = str(meta.query);
    const headers = [];
    let length = false;
    for (const [name, value] of headerItems(meta.headers)) {
      const lower = name.toLowerCase();
      if (lower === 'host' || lower === 'transfer-encoding' || lower === 'connection') continue;
      if (lower === 'content-length') length = true;
      headers.push(name, value);
    }
    headers.push('Host', str(meta.host) || 'localhost');
    // Without a length, the body streams in chunked encoding, as it
    // does from a client that sends it so.
    if (!length) headers.push('Transfer-Encoding', 'chunked');
    let creq;
    try {
      creq = http.request({
        method: str(meta.method) || 'GET',
        path: query ? `${path}?${query}` : path,
        headers,
        createConnection: () => client,
        setHost: false,
      });
    } catch (e) {
      settle(new CocaineError(400, `the request cannot be passed to the app: ${e.message}`));
      return;
    }
    creq.on('error', (e) => settle(new CocaineError(502, `the app's answer: ${e.message}`)));
    creq.on('response', (cres) => {
      const pairs = [];
      const raw = cres.rawHeaders;
      for (let i = 0; i + 1 < raw.length; i += 2) {
        if (!HOP.has(raw[i].toLowerCase())) pairs.push([raw[i], raw[i + 1]]);
      }
      resp.write(packHead(cres.statusCode, pairs));
      resp._endChunk(); // the head is a chunk of its own
      cres.on('data', (d) => {
        try {
          resp.write(d);
          // A full connection to the engine pauses the app's answer.
          if (resp.flush() === false) {
            cres.pause();
            resp.drained().then(() => cres.resume());
          }
        } catch (e) {
          settle(e);
        }
      });
      cres.on('end', () => settle());
      cres.on('aborted', () => settle(new CocaineError(502, 'the app aborted its answer')));
      cres.on('error', (e) => settle(e));
    });

    // The body: what came with the head, then the rest as it arrives.
    (async () => {
      if (rest.length) creq.write(rest);
      for await (const chunk of req) {
        if (!creq.write(chunk)) await new Promise((r) => creq.once('drain', r));
      }
      creq.end();
    })().catch((e) => settle(e));
  });
}

// readHead reads the {meta, body} map at the start of the request stream:
// normally the whole first chunk, but it may be split over several, and
// bytes after it are body.
async function readHead(req) {
  let buf = Buffer.alloc(0);
  // Leaving the loop must not end the stream: the body follows the head.
  for await (const chunk of req.iterator({ destroyOnReturn: false })) {
    buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
    const end = skip(buf, 0);
    if (end < 0) continue;
    let head;
    try {
      head = headDecoder.decode(buf.subarray(0, end));
    } catch (e) {
      throw new CocaineError(400, `malformed HTTP request head: ${e.message}`);
    }
    const meta = head && head.meta;
    if (!meta || typeof meta !== 'object' || meta instanceof Uint8Array) {
      throw new CocaineError(400, 'HTTP request head must be a map with a meta map');
    }
    const body = head.body ? Buffer.from(head.body) : Buffer.alloc(0);
    return { meta, rest: Buffer.concat([body, buf.subarray(end)]) };
  }
  throw new CocaineError(400, 'HTTP request without its head');
}

// skip returns the offset just past the MessagePack object at off, or -1
// when buf ends before it does (or it is not MessagePack at all: the
// decoder then says why).
function skip(buf, off) {
  const need = (n) => (off + n <= buf.length ? off + n : -1);
  if (off >= buf.length) return -1;
  const c = buf[off];
  const lenOf = (size) => {
    if (need(1 + size) < 0) return -1;
    return size === 1 ? buf[off + 1] : size === 2 ? buf.readUInt16BE(off + 1) : buf.readUInt32BE(off + 1);
  };
  const blob = (size) => {
    const n = lenOf(size);
    return n < 0 ? -1 : need(1 + size + n);
  };
  const items = (count, start) => {
    let p = start;
    for (let i = 0; i < count; i++) {
      p = skip(buf, p);
      if (p < 0) return -1;
    }
    return p;
  };
  if (c <= 0x7f || c >= 0xe0 || c === 0xc0 || c === 0xc2 || c === 0xc3) return need(1);
  if ((c & 0xe0) === 0xa0) return need(1 + (c & 0x1f));
  if ((c & 0xf0) === 0x90) return items(c & 0x0f, off + 1);
  if ((c & 0xf0) === 0x80) return items(2 * (c & 0x0f), off + 1);
  switch (c) {
    case 0xc4: case 0xd9: return blob(1);
    case 0xc5: case 0xda: return blob(2);
    case 0xc6: case 0xdb: return blob(4);
    case 0xcc: case 0xd0: return need(2);
    case 0xcd: case 0xd1: return need(3);
    case 0xca: case 0xce: case 0xd2: return need(5);
    case 0xcb: case 0xcf: case 0xd3: return need(9);
    case 0xdc: { const n = lenOf(2); return n < 0 ? -1 : items(n, off + 3); }
    case 0xdd: { const n = lenOf(4); return n < 0 ? -1 : items(n, off + 5); }
    case 0xde: { const n = lenOf(2); return n < 0 ? -1 : items(2 * n, off + 3); }
    case 0xdf: { const n = lenOf(4); return n < 0 ? -1 : items(2 * n, off + 5); }
    case 0xd4: return need(3);
    case 0xd5: return need(4);
    case 0xd6: return need(6);
    case 0xd7: return need(10);
    case 0xd8: return need(18);
    case 0xc7: { const n = lenOf(1); return n < 0 ? -1 : need(3 + n); }
    case 0xc8: { const n = lenOf(2); return n < 0 ? -1 : need(4 + n); }
    case 0xc9: { const n = lenOf(4); return n < 0 ? -1 : need(6 + n); }
  }
  return buf.length; // 0xc1, never used: let the decoder report it
}

// str turns a raw MessagePack str (bytes) into a latin-1 string, one char
// per byte: what Node's HTTP parser gives for header bytes.
function str(v) {
  if (v === undefined || v === null) return '';
  if (v instanceof Uint8Array) return Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('latin1');
  return String(v);
}

// headerItems yields [name, value] of meta.headers: a map of name to a list
// of values (as documented), or to one value.
function* headerItems(headers) {
  if (!headers || typeof headers !== 'object' || headers instanceof Uint8Array) return;
  for (const [name, value] of Object.entries(headers)) {
    for (const v of Array.isArray(value) ? value : [value]) yield [name, str(v)];
  }
}

function splitHostPort(s) {
  if (s.startsWith('[')) {
    const i = s.indexOf(']');
    return { host: s.slice(1, i), port: s.slice(i + 2) };
  }
  const i = s.lastIndexOf(':');
  if (i < 0 || s.indexOf(':') !== i) return { host: s, port: '' };
  return { host: s.slice(0, i), port: s.slice(i + 1) };
}

// packHead encodes {code, headers} with the header bytes as MessagePack
// str, as the payload wants, whatever bytes they hold.
function packHead(code, pairs) {
  const parts = [Buffer.from([0x82]), strBytes(Buffer.from('code')), intBytes(code), strBytes(Buffer.from('headers'))];
  parts.push(arrayHead(pairs.length));
  for (const [n, v] of pairs) parts.push(Buffer.from([0x92]), strBytes(Buffer.from(n, 'latin1')), strBytes(Buffer.from(v, 'latin1')));
  return Buffer.concat(parts);
}

function strBytes(b) {
  let head;
  if (b.length < 32) head = Buffer.from([0xa0 | b.length]);
  else if (b.length <= 0xff) head = Buffer.from([0xd9, b.length]);
  else if (b.length <= 0xffff) head = Buffer.from([0xda, b.length >> 8, b.length & 0xff]);
  else {
    head = Buffer.alloc(5);
    head[0] = 0xdb;
    head.writeUInt32BE(b.length, 1);
  }
  return Buffer.concat([head, b]);
}

function intBytes(n) {
  if (n >= 0 && n < 128) return Buffer.from([n]);
  const b = Buffer.alloc(3);
  b[0] = 0xcd;
  b.writeUInt16BE(n & 0xffff, 1);
  return b;
}

function arrayHead(n) {
  if (n < 16) return Buffer.from([0x90 | n]);
  if (n <= 0xffff) return Buffer.from([0xdc, n >> 8, n & 0xff]);
  const b = Buffer.alloc(5);
  b[0] = 0xdd;
  b.writeUInt32BE(n, 1);
  return b;
}

module.exports = { listenerOf, httpHandler, readHead, packHead };
