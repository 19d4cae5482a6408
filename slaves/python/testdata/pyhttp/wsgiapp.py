"""A WSGI app for the front tests: echo, fail, slow and a streamed page."""
import os
import time


def application(environ, start_response):
    path = environ["PATH_INFO"]
    if path == "/fail":
        raise RuntimeError("the WSGI app failed on purpose")
    if path == "/slow":
        # ?SECONDS[&DIR]: with DIR, a file named for the slave's pid marks
        # which process runs the request.
        args = (environ.get("QUERY_STRING") or "1").split("&")
        if len(args) > 1:
            open(os.path.join(args[1], str(os.getpid())), "w").close()
        time.sleep(float(args[0]))
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"slept"]
    if path == "/stream":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return _stream(environ.get("QUERY_STRING", ""))
    body = environ["wsgi.input"].read()
    start_response("200 OK", [("Content-Type", "application/octet-stream"), ("X-Length", str(len(body)))])
    return [body]


def _stream(query):
    # ?gate=PATH: the rest of the page waits for that file, so the test
    # proves part 0 arrived before the app was done.
    gate = query[len("gate="):] if query.startswith("gate=") else ""
    yield b"part 0\n"
    end = time.monotonic() + 60
    while gate and not os.path.exists(gate) and time.monotonic() < end:
        time.sleep(0.01)
    for i in (1, 2):
        yield b"part %d\n" % i
