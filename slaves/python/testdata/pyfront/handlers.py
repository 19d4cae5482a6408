"""Handlers for the Python integration tests through the engine and front."""
import os
import time


def hello(request, response):
    return "Hello from Python!"


def upper(request, response):
    # Streams both ways: each request chunk is answered as it arrives.
    for chunk in request:
        response.write(chunk.upper())
        response.flush()


def fail(request, response):
    raise KeyError("no such thing in the test app")


def slow(request, response):
    # "SECONDS [DIR]": with DIR, the slave first leaves a file named for its
    # pid there, so a test knows which process is running the request.
    args = (request.read() or b"1").decode().split()
    if len(args) > 1:
        open(os.path.join(args[1], str(os.getpid())), "w").close()
    time.sleep(float(args[0]))
    return "slept"


def pid(request, response):
    return str(os.getpid())


def stream(request, response):
    # The body names a gate file: the rest of the answer waits for it, so
    # the test proves part 0 arrived before the handler was done.
    gate = request.read().decode()
    yield "part 0\n"
    _wait_for(gate)
    for i in (1, 2):
        yield "part %d\n" % i


def _wait_for(path, limit=60.0):
    end = time.monotonic() + limit
    while path and not os.path.exists(path) and time.monotonic() < end:
        time.sleep(0.01)
