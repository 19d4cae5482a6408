"""The Python runtime of the cloud: runs an app's handlers as a slave of the
engine (docs/protocol.md).

A handler serves one event: it gets a Request (the body, streamed) and a
Response (the answer, streamed):

    def echo(request, response):
        return request.read()

See slaves/python/README.md.
"""

from .stream import Cancelled, Error, Request, Response

__all__ = ["Cancelled", "Error", "Request", "Response"]
