"""The HTTP payload between the front and an app (format in
slaves/python/README.md): the request stream starts with a MessagePack map
{meta, body}, the answer starts with a chunk {code, headers}."""

import msgpack

from .stream import Error


def read_request(request):
    """Read the head of an HTTP request stream. Returns (meta, body): body is
    what of the request body came with the head; the rest stays in request.

    The front sends the map as the first chunk; it is accepted split over
    several chunks too, and bytes after it are body. request is a Request,
    or any iterable of chunks.
    """
    head = rest = None
    chunks = getattr(request, "_chunks", None)  # any iterable of chunks will do too
    if chunks:
        # The usual case: the map is the first chunk, already here, alone
        # or followed by body bytes.
        try:
            head, rest = _unpackb(chunks[0], raw=False, unicode_errors="surrogateescape"), b""
        except msgpack.ExtraData as e:
            head, rest = e.unpacked, e.extra
        except Exception:
            pass  # split over chunks, or malformed: the general way says which
        if head is not None:
            request._size -= len(chunks.popleft())
    if head is None:
        head, rest = _read_split(request)
    meta = head.get("meta") if isinstance(head, dict) else None
    if not isinstance(meta, dict):
        raise Error(400, "HTTP request head must be a map with a meta map")
    body = head.get("body") or b""
    if isinstance(body, str):
        body = body.encode("utf-8", "surrogateescape")
    if not isinstance(body, bytes):
        raise Error(400, "HTTP request body must be bytes")
    if rest:
        body += rest
    return meta, body


_unpackb = msgpack.unpackb


def _read_split(request):
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
        return head, bytes(seen[unpacker.tell():])
    raise Error(400, "HTTP request without its head")


def write_head(response, code, headers):
    """Write the answer's head as a chunk of its own. It goes out with the
    first flush or the end, so a small answer still leaves in one write."""
    # WSGI header strings are latin-1 stand-ins for bytes (PEP 3333); the
    # payload carries the bytes themselves in msgpack str, so encode them
    # back with latin-1 and pack bytes as str (use_bin_type=False).
    try:
        key = (code, tuple(headers))
        packed = _heads.get(key)
    except TypeError:  # a header pair that is a list: not hashable
        key = packed = None
    if packed is None:
        head = {"code": int(code),
                "headers": [[_latin1(n), _latin1(v)] for n, v in headers]}
        packed = msgpack.packb(head, use_bin_type=False)
        if key is not None:
            if len(_heads) >= _MAX_HEADS:
                _heads.clear()
            _heads[key] = packed
    response.write(packed)
    response._end_chunk()


# Packed answer heads by (code, headers): most apps answer the same few
# heads over and over (bounded all the same: a Set-Cookie head is unique).
_heads = {}
_MAX_HEADS = 256


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
