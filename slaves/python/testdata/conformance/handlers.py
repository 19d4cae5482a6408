"""The conformance app (slaves/conformance) for the Python runtime."""

import time


def echo(request, response):
    return request.read()


def sleep(request, response):
    ms = int(request.read())
    if request.wait_cancelled(ms / 1000.0):
        return None  # nobody waits for the answer any more
    return "ok"


def stream_upper(request, response):
    for chunk in request:
        response.write(chunk.upper())
        response.flush()


def fail(request, response):
    raise ValueError("failing on purpose")


def flood(request, response):
    # Deliberately blind to cancellation: only the failing write stops it.
    data = b"x" * 1024
    while True:
        response.write(data)
        response.flush()
        time.sleep(0.01)
