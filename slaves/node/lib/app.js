'use strict';
// Loading an app from its package and routing events to its handlers.

const fs = require('node:fs');
const path = require('node:path');
const { CocaineError } = require('./stream');

class ManifestError extends Error {}

function readManifest(root) {
  const file = path.join(root, 'manifest.json');
  let m;
  try {
    m = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new ManifestError(`cannot read ${file}: ${e.message}`);
  }
  if (!m || typeof m !== 'object' || Array.isArray(m)) throw new ManifestError('manifest.json must hold an object');
  return m;
}

// modulePath checks a module path of args: relative, inside the package.
function modulePath(root, key, v) {
  if (typeof v !== 'string' || !v || path.isAbsolute(v) || path.normalize(v).startsWith('..')) {
    throw new ManifestError(`args.${key} must be a module of the package, such as "app.js" or "lib/handlers"`);
  }
  return path.resolve(root, v);
}

// load requires the app the manifest names and returns dispatch(req, resp).
// Errors from the app's own code propagate: the caller reports them and
// exits before the handshake, so the engine keeps them as the crash log.
function load(root, manifest) {
  if ((manifest.type || 'node') !== 'node') throw new ManifestError(`type is ${JSON.stringify(manifest.type)}, this runtime serves "node"`);
  const args = manifest.args || {};
  if (typeof args !== 'object' || Array.isArray(args)) throw new ManifestError('args must be an object');
  if (args.module === undefined && args.http === undefined) {
    throw new ManifestError('args.module (event handlers) or args.http (a Node request listener) is required');
  }
  const handlers = args.module !== undefined ? require(modulePath(root, 'module', args.module)) : null;
  let http = null;
  if (args.http !== undefined) {
    const { listenerOf, httpHandler } = require('./http');
    http = httpHandler(listenerOf(require(modulePath(root, 'http', args.http)), args.http));
  }
  return async function dispatch(req, resp) {
    const h = handlers && lookup(handlers, req.event);
    if (!h) {
      if (!http) throw new CocaineError(404, `no handler for event ${JSON.stringify(req.event)}`);
      return http(req, resp);
    }
    return respond(await h(req, resp), resp);
  };
}

// lookup finds the handler of event among the module's own exports: the
// name itself, or with - and . as _ ("stream-upper" -> stream_upper).
function lookup(mod, event) {
  for (const name of [event, event.replace(/[-.]/g, '_')]) {
    if (Object.prototype.hasOwnProperty.call(mod, name) && typeof mod[name] === 'function') return mod[name];
  }
  return null;
}

// respond writes what a handler returned: a Buffer, Uint8Array or string;
// an array of them (at once); an iterable or async iterable of them (each
// piece flushed as it comes); or undefined when the handler wrote itself.
async function respond(result, resp) {
  if (result === undefined || result === null) return;
  if (typeof result === 'string' || result instanceof Uint8Array) {
    resp.write(result);
    return;
  }
  if (Array.isArray(result)) {
    for (const piece of result) resp.write(piece);
    return;
  }
  if (typeof result[Symbol.asyncIterator] === 'function' || typeof result[Symbol.iterator] === 'function') {
    for await (const piece of result) {
      resp.write(piece);
      resp.flush();
    }
    return;
  }
  throw new TypeError(`handler returned ${typeof result}; return a Buffer, a string, an iterable of them, or nothing`);
}

module.exports = { readManifest, load, ManifestError };
