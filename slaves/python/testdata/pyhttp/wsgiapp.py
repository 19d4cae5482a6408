"""A WSGI app for the front tests: echo, fail, slow and a streamed page."""
import time


def application(environ, start_response):
    path = environ["PATH_INFO"]
    if path == "/fail":
        raise RuntimeError("the WSGI app failed on purpose")
    if path == "/slow":
        time.sleep(float(environ.get("QUERY_STRING") or "1"))
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"slept"]
    if path == "/stream":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return _stream()
    body = environ["wsgi.input"].read()
    start_response("200 OK", [("Content-Type", "application/octet-stream"), ("X-Length", str(len(body)))])
    return [body]


def _stream():
    for i in range(3):
        yield b"part %d\n" % i
        time.sleep(0.3)
