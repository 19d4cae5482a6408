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
    this recovers those bytes exactly."""
    return str(s).encode("utf-8", "surrogateescape").decode("latin-1")


def unquote(s):
    """Percent-decode a raw path, as CGI does for SCRIPT_NAME and PATH_INFO."""
    return urllib.parse.unquote_to_bytes(str(s).encode("utf-8", "surrogateescape")).decode("latin-1")


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


def environ(meta, request):
    """The WSGI environ of one request."""
    secure = bool(meta.get("secure"))
    path = str(meta.get("path") or "/")
    query = str(meta.get("query") or "")
    if "script_name" in meta or "path_info" in meta:
        script, info = str(meta.get("script_name") or ""), str(meta.get("path_info") or "")
    else:
        script, info = "", path
    # PEP 3333: SCRIPT_NAME is "" or starts with "/" (never just "/"), and
    # PATH_INFO is "" or starts with "/".
    script = script.rstrip("/")
    if info and not info.startswith("/"):
        info = "/" + info
    if not script and not info:
        info = "/"
    host = str(meta.get("host") or "")
    server_name, server_port = split_hostport(host)
    remote_addr, remote_port = split_hostport(str(meta.get("remote_addr") or ""))

    env = {
        "REQUEST_METHOD": native(meta.get("method") or "GET"),
        "SCRIPT_NAME": unquote(script),
        "PATH_INFO": unquote(info),
        "QUERY_STRING": native(query),
        "REQUEST_URI": native(path + ("?" + query if query else "")),
        "SERVER_NAME": native(server_name or "localhost"),
        "SERVER_PORT": native(server_port or ("443" if secure else "80")),
        "SERVER_PROTOCOL": native(meta.get("protocol") or "HTTP/1.1"),
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "https" if secure else "http",
        "wsgi.input": Input(request),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": False,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
        "cocaine.meta": meta,
        "cocaine.request": request,
    }
    if remote_addr:
        env["REMOTE_ADDR"] = native(remote_addr)
    if remote_port:
        env["REMOTE_PORT"] = native(remote_port)
    if secure:
        env["HTTPS"] = "on"
    for name, value in http.header_items(meta.get("headers")):
        # "X_Forwarded_For" would pass for X-Forwarded-For once mapped to a
        # key: such names are dropped, as nginx and gunicorn do.
        if "_" in name:
            continue
        key = name.upper().replace("-", "_")
        value = native(value)
        if key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            env[key] = value
            continue
        key = "HTTP_" + key
        if key in env:
            env[key] += ("; " if key == "HTTP_COOKIE" else ",") + value
        else:
            env[key] = value
    if host:
        env["HTTP_HOST"] = native(host)
    return env


class WSGI:
    """An event handler serving a WSGI app."""

    def __init__(self, app):
        self.app = app

    def __call__(self, request, response):
        meta, body = http.read_request(request)
        request._unread(body)
        head = _Head(response)
        result = self.app(environ(meta, request), head.start_response)
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
