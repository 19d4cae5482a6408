"""The smallest WSGI app (PEP 3333), the one docs/benchmarks.md measures
under cocaine and under uWSGI alike: both run this very file."""

BODY = b"Hello, World!\n"
HEADERS = [("Content-Type", "text/plain"), ("Content-Length", str(len(BODY)))]


def application(environ, start_response):
    start_response("200 OK", HEADERS)
    # A list, not a generator: the runtime sends a complete answer in one
    # write, as uWSGI does.
    return [BODY]
