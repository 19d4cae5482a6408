"""Loading an app from its package and routing events to its handlers."""

import importlib
import importlib.metadata
import importlib.util
import json
import os
import re
import sys

from .stream import Error


class ManifestError(Exception):
    """manifest.json does not describe a Python app this runtime can load."""


def read_manifest(root):
    path = os.path.join(root, "manifest.json")
    try:
        with open(path, encoding="utf-8") as f:
            manifest = json.load(f)
    except (OSError, ValueError) as e:
        raise ManifestError("cannot read %s: %s" % (path, e)) from None
    if not isinstance(manifest, dict):
        raise ManifestError("manifest.json must hold an object")
    return manifest


def concurrency(manifest):
    """engine.concurrency of the manifest: how many sessions the engine may
    give one slave at once; 1 when absent or not a count."""
    engine = manifest.get("engine")
    n = engine.get("concurrency", 1) if isinstance(engine, dict) else 1
    return n if type(n) is int and n >= 1 else 1


def load(root, manifest):
    """Import the app the manifest names and return dispatch(request,
    response). Import errors propagate: the caller reports them and exits."""
    if manifest.get("type", "python") != "python":
        raise ManifestError('type is %r, this runtime serves "python"' % manifest.get("type"))
    args = manifest.get("args") or {}
    if not isinstance(args, dict):
        raise ManifestError("args must be an object")
    module, wsgi, paths = args.get("module"), args.get("wsgi"), args.get("path", [])
    if module is not None and not (isinstance(module, str) and module):
        raise ManifestError("args.module must be a module name")
    if wsgi is not None and not (isinstance(wsgi, str) and re.fullmatch(r"[\w.]+:[\w.]+", wsgi)):
        raise ManifestError('args.wsgi must be "module:callable"')
    if module is None and wsgi is None:
        raise ManifestError("args.module (event handlers) or args.wsgi (a WSGI app) is required")
    if not (isinstance(paths, list) and all(isinstance(p, str) for p in paths)):
        raise ManifestError("args.path must be a list of folders")

    # The package comes first: its modules win over installed ones.
    dirs = [os.path.normpath(os.path.join(root, p)) for p in ["."] + paths]
    sys.path[:0] = dirs

    handlers = importlib.import_module(module) if module else None
    where = getattr(handlers, "__file__", None) or ""
    if handlers is not None and not any(where.startswith(d + os.sep) for d in dirs):
        # Naming a module like a standard one (json, site) loads that one.
        print("cocaine: args.module %r is %s, outside the package" % (module, where or "built in"),
              file=sys.stderr)
    http = None
    if wsgi:
        from .wsgi import WSGI

        # Above 1, handler threads run sessions at once (worker.py).
        http = WSGI(_resolve(wsgi), multithread=concurrency(manifest) > 1)

    def dispatch(request, response):
        h = handlers and lookup(handlers, request.event)
        if h is None:
            if http is None:
                raise Error(404, "no handler for event %r" % request.event)
            return http(request, response)
        return respond(h(request, response), response)

    return dispatch


def _resolve(spec):
    name, _, attr = spec.partition(":")
    module = obj = importlib.import_module(name)
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            # Naming a module like a standard one (site, http) loads that one.
            where = getattr(module, "__file__", None) or "built in"
            raise ManifestError("args.wsgi: module %s (%s) has no %r" % (name, where, attr)) from None
    if not callable(obj):
        raise ManifestError("args.wsgi: %s is not callable" % spec)
    return obj


def lookup(module, event):
    """The handler of event in module, or None.

    Event "stream-upper" is served by stream_upper. Only public callables
    defined in the module itself count (or the names in its __all__), so an
    imported helper such as json.dumps never becomes an event.
    """
    name = event.replace("-", "_").replace(".", "_")
    if not name.isidentifier() or name.startswith("_"):
        return None
    public = getattr(module, "__all__", None)
    if public is not None and name not in public:
        return None
    h = getattr(module, name, None)
    if not callable(h):
        return None
    if public is None and getattr(h, "__module__", None) != module.__name__:
        return None
    return h


def respond(result, response):
    """Write what a handler returned: bytes or str, an iterable of them, or
    None when the handler wrote its answer itself."""
    if result is None:
        return
    if isinstance(result, (bytes, bytearray, memoryview, str)):
        response.write(result)
        return
    if isinstance(result, dict) or not hasattr(result, "__iter__"):
        raise TypeError("handler returned %s; return bytes, str, an iterable of them, or None"
                        % type(result).__name__)
    # A list is ready: one write. Anything else may be producing over time,
    # so each piece goes out as it comes.
    streaming = not isinstance(result, (list, tuple))
    try:
        for piece in result:
            response.write(piece)
            if streaming:
                response.flush()
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()


def missing_requirements(root):
    """The lines of root/requirements.txt whose distribution is neither
    installed nor importable, for the crash log of an app that fails to load."""
    path = os.path.join(root, "requirements.txt")
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except OSError:
        return []
    missing = []
    for line in lines:
        req = line.split(" #", 1)[0].strip()
        m = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", req)
        if req.startswith(("#", "-")) or not m:
            continue
        if not _installed(m.group(0)):
            missing.append(req)
    return missing


def _installed(name):
    try:
        importlib.metadata.distribution(name)
        return True
    except importlib.metadata.PackageNotFoundError:
        pass
    # Vendored copies (args.path) have no metadata; the module name is
    # usually the distribution's.
    try:
        return importlib.util.find_spec(re.sub(r"[-.]", "_", name).lower()) is not None
    except (ImportError, ValueError):
        return False
