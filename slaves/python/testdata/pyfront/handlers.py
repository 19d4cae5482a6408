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
    time.sleep(float(request.read() or b"1"))
    return "slept"


def pid(request, response):
    return str(os.getpid())


def stream(request, response):
    for i in range(3):
        yield "part %d\n" % i
        time.sleep(0.3)
