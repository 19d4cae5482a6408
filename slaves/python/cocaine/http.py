"""The HTTP payload between the front and an app (format in
slaves/python/README.md): the request stream starts with a MessagePack map
{meta, body}, the answer starts with a chunk {code, headers}."""

import msgpack

from .stream import Error


def read_request(request):
    """Read the head of an HTTP request stream. Returns (meta, body): body is
    what of the request body came with the head; the rest stays in request.

    The front sends the map as the first chunk; it is accepted split over
    several chunks too, and bytes after it are body.
    """
    unpacker = msgpack.Unpacker(raw=False, unicode_errors="surrogateescape")
    seen = bytearray()
    for chunk in request:
        unpacker.feed(chunk)
        seen += chunk
        try:
            head = unpacker.unpack()
        except msgpack.OutOfData:
            continue
        except Exception as e:
            raise Error(400, "malformed HTTP request head: %s" % e) from None
        rest = bytes(seen[unpacker.tell():])
        break
    else:
        raise Error(400, "HTTP request without its head")
    meta = head.get("meta") if isinstance(head, dict) else None
    if not isinstance(meta, dict):
        raise Error(400, "HTTP request head must be a map with a meta map")
    body = head.get("body") or b""
    if isinstance(body, str):
        body = body.encode("utf-8", "surrogateescape")
    if not isinstance(body, bytes):
        raise Error(400, "HTTP request body must be bytes")
    return meta, body + rest


def write_head(response, code, headers):
    """Write the answer's head as a chunk of its own. It goes out with the
    first flush or the end, so a small answer still leaves in one write."""
    # WSGI header strings are latin-1 stand-ins for bytes (PEP 3333); the
    # payload carries the bytes themselves in msgpack str, so encode them
    # back with latin-1 and pack bytes as str (use_bin_type=False).
    head = {"code": int(code),
            "headers": [[_latin1(n), _latin1(v)] for n, v in headers]}
    response.write(msgpack.packb(head, use_bin_type=False))
    response._end_chunk()


def _latin1(s):
    if isinstance(s, bytes):
        return s
    return str(s).encode("latin-1", "replace")


def header_items(headers):
    """(name, value) pairs of meta.headers: a map of name to a list of values
    (as documented), or to one value, or a list of [name, value] pairs."""
    if isinstance(headers, dict):
        items = headers.items()
    elif isinstance(headers, list):
        items = (h for h in headers if isinstance(h, (list, tuple)) and len(h) == 2)
    else:
        return
    for name, value in items:
        if not isinstance(name, str):
            continue
        for v in value if isinstance(value, list) else [value]:
            if isinstance(v, str):
                yield name, v
