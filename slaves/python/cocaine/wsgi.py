"""Serving a WSGI app (PEP 3333) on HTTP events.

The request and answer travel in the HTTP payload of cocaine.http; see
slaves/python/README.md for the format and how meta maps to the environ.
"""

import sys
import urllib.parse

from . import http


def native(s):
    """PEP 3333's native string: the bytes as received, decoded as latin-1.
    Strings from MessagePack were decoded as UTF-8 with surrogateescape, so
    this recovers those bytes exactly. ASCII, the usual case, is itself."""
    if s.isascii():
        return s
    return s.encode("utf-8", "surrogateescape").decode("latin-1")


def unquote(s):
    """Percent-decode a raw path, as CGI does for SCRIPT_NAME and PATH_INFO."""
    if "%" not in s:
        return native(s)
    return urllib.parse.unquote_to_bytes(s.encode("utf-8", "surrogateescape")).decode("latin-1")


def split_hostport(s):
    """("host", "port") of "host:port", "[v6]:port" or a bare host or address."""
    if s.startswith("["):
        host, _, rest = s[1:].partition("]")
        return host, rest[1:] if rest.startswith(":") else ""
    if s.count(":") == 1:
        host, _, port = s.partition(":")
        return host, port
    return s, ""


class Input:
    """wsgi.input over the request stream: reads block until the body bytes
    arrive, and end at the end of the body even without a Content-Length."""

    def __init__(self, request):
        self._request = request

    def read(self, size=-1):
        return self._request.read(size)

    def readline(self, size=-1):
        return self._request.readline(size)

    def readlines(self, hint=-1):
        return self._request.readlines(hint)

    def __iter__(self):
        while True:
            line = self._request.readline()
            if not line:
                return
            yield line


# Header name -> environ key, or None for a name that is dropped. Apps see
# the same few names again and again; the cache is bounded all the same.
_KEYS = {"Content-Type": "CONTENT_TYPE", "Content-Length": "CONTENT_LENGTH"}
_MAX_KEYS = 512


def _key(name):
    key = _KEYS.get(name)
    if key is None and name not in _KEYS:
        # "X_Forwarded_For" would pass for X-Forwarded-For once mapped to a
        # key: such names are dropped, as nginx and gunicorn do.
        if "_" not in name:
            key = name.upper().replace("-", "_")
            if key not in ("CONTENT_TYPE", "CONTENT_LENGTH"):
                key = "HTTP_" + key
        if len(_KEYS) >= _MAX_KEYS:
            _KEYS.clear()
        _KEYS[name] = key
    return key


def environ(meta, request, multithread=False):
    """The WSGI environ of one request, built in one pass over meta."""
    get = meta.get
    secure = bool(get("secure"))
    path = get("path") or "/"
    query = get("query") or ""
    script, info = get("script_name"), get("path_info")
    if script is None and info is None:
        script, info = "", path
    else:
        script, info = script or "", info or ""
        if type(script) is not str or type(info) is not str:
            script, info = str(script), str(info)
    # PEP 3333: SCRIPT_NAME is "" or starts with "/" (never just "/"), and
    # PATH_INFO is "" or starts with "/".
    if script.endswith("/"):
        script = script.rstrip("/")
    if not info.startswith("/"):
        info = "/" + info if info or not script else info
    host = get("host") or ""
    if type(path) is not str or type(query) is not str or type(host) is not str:
        path, query, host = str(path), str(query), str(host)
    if host:
        server_name, server_port = split_hostport(host)
    else:
        server_name, server_port = "", ""

    env = {
        "REQUEST_METHOD": native(get("method") or "GET"),
        "SCRIPT_NAME": unquote(script),
        "PATH_INFO": unquote(info),
        "QUERY_STRING": native(query),
        "REQUEST_URI": native(path + "?" + query if query else path),
        "SERVER_NAME": native(server_name) if server_name else "localhost",
        "SERVER_PORT": native(server_port) if server_port else ("443" if secure else "80"),
        "SERVER_PROTOCOL": native(get("protocol") or "HTTP/1.1"),
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "https" if secure else "http",
        "wsgi.input": Input(request),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": multithread,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
        "cocaine.meta": meta,
        "cocaine.request": request,
    }
    remote = get("remote_addr")
    if remote:
        remote_addr, remote_port = split_hostport(str(remote))
        if remote_addr:
            env["REMOTE_ADDR"] = native(remote_addr)
        if remote_port:
            env["REMOTE_PORT"] = native(remote_port)
    if secure:
        env["HTTPS"] = "on"
    headers = get("headers")
    if type(headers) is dict:
        for name, values in headers.items():
            if type(name) is not str:
                continue
            key = _key(name)
            if key is None:
                continue
            if type(values) is list:
                if len(values) == 1 and type(values[0]) is str:
                    value = native(values[0])
                else:
                    strs = [native(v) for v in values if type(v) is str]
                    if not strs:
                        continue
                    value = ("; " if key == "HTTP_COOKIE" else ",").join(strs)
            elif type(values) is str:
                value = native(values)
            else:
                continue
            if key in env:
                env[key] += ("; " if key == "HTTP_COOKIE" else ",") + value
            else:
                env[key] = value
    elif headers is not None:
        # The payload's other accepted shape: a list of [name, value] pairs.
        for name, value in http.header_items(headers):
            key = _key(name)
            if key is None:
                continue
            value = native(value)
            if key in env:
                env[key] += ("; " if key == "HTTP_COOKIE" else ",") + value
            else:
                env[key] = value
    if host:
        env["HTTP_HOST"] = native(host)
    return env


class WSGI:
    """An event handler serving a WSGI app."""

    def __init__(self, app, multithread=False):
        self.app = app
        self.multithread = multithread

    def __call__(self, request, response):
        meta, body = http.read_request(request)
        request._unread(body)
        head = _Head(response)
        result = self.app(environ(meta, request, self.multithread), head.start_response)
        try:
            # A list is complete: write it at once, and the end leaves in the
            # same write. Anything else may produce over time; PEP 3333 says
            # no block may wait for the next.
            streaming = not isinstance(result, (list, tuple))
            for data in result:
                if type(data) is not bytes:
                    raise TypeError("WSGI app yielded %s, not bytes" % type(data).__name__)
                if data:
                    head.send()
                    response.write(data)
                    if streaming:
                        response.flush()
            head.send()  # an empty body still has a status
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()


class _Head:
    """start_response and the head it sends before the first body bytes."""

    def __init__(self, response):
        self._response = response
        self._status = None
        self._headers = None
        self._sent = False

    def start_response(self, status, headers, exc_info=None):
        if exc_info is not None:
            try:
                if self._sent:
                    raise exc_info[1].with_traceback(exc_info[2])
            finally:
                exc_info = None  # no reference cycle through the traceback
        elif self._status is not None:
            raise AssertionError("start_response called twice without exc_info")
        if type(status) is not str or len(status) < 4 or not status[:3].isdigit() or status[3] != " ":
            raise ValueError("WSGI status must look like '200 OK', not %r" % (status,))
        for h in headers:
            if len(h) != 2 or type(h[0]) is not str or type(h[1]) is not str:
                raise TypeError("WSGI headers must be (str, str) pairs, not %r" % (h,))
        self._status, self._headers = status, list(headers)
        return self.write

    def write(self, data):
        """The legacy write() callable: its data goes out at once."""
        if type(data) is not bytes:
            raise TypeError("write() takes bytes, not %s" % type(data).__name__)
        if data:
            self.send()
            self._response.write(data)
            self._response.flush()

    def send(self):
        if self._sent:
            return
        if self._status is None:
            raise AssertionError("the WSGI app sent its body before calling start_response")
        http.write_head(self._response, int(self._status[:3]), self._headers)
        self._sent = True
