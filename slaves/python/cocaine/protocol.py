"""Frames of the engine <-> slave protocol (docs/protocol.md): a 4-byte
big-endian length, then a MessagePack array [type, session, args...]."""

import struct

import msgpack

VERSION = 1
MAX_FRAME = 8 << 20
CHUNK_SIZE = 1 << 20  # most body bytes the runtime puts in one chunk

HANDSHAKE, HEARTBEAT, TERMINATE, INVOKE, CHUNK, ERROR, CHOKE = range(1, 8)
NAMES = {1: "handshake", 2: "heartbeat", 3: "terminate", 4: "invoke", 5: "chunk", 6: "error", 7: "choke"}
_ARITY = {HANDSHAKE: 5, HEARTBEAT: 2, TERMINATE: 3, INVOKE: 3, CHUNK: 3, ERROR: 4, CHOKE: 2}

_LEN = struct.Struct(">I")


class ProtocolError(Exception):
    """A frame that does not follow the protocol."""


def encode(*fields):
    payload = msgpack.packb(fields, use_bin_type=True)
    if len(payload) > MAX_FRAME:
        raise ProtocolError("frame of %d bytes exceeds %d" % (len(payload), MAX_FRAME))
    return _LEN.pack(len(payload)) + payload


def handshake(slave_id, pid):
    return encode(HANDSHAKE, 0, slave_id, pid, VERSION)


def heartbeat():
    return encode(HEARTBEAT, 0)


def terminate(reason):
    return encode(TERMINATE, 0, reason)


def chunk(session, data):
    return encode(CHUNK, session, bytes(data))


def error(session, code, message):
    return encode(ERROR, session, code, message)


def choke(session):
    return encode(CHOKE, session)


def read_frame(f):
    """Read one frame from a binary file; None at a clean end of stream."""
    head = f.read(4)
    if not head:
        return None
    if len(head) < 4:
        raise ProtocolError("truncated frame length")
    (n,) = _LEN.unpack(head)
    if n > MAX_FRAME:
        raise ProtocolError("frame of %d bytes declared, limit %d" % (n, MAX_FRAME))
    payload = f.read(n)
    if len(payload) < n:
        raise ProtocolError("truncated frame: %d of %d bytes" % (len(payload), n))
    return decode(payload)


def decode(payload):
    # surrogateescape: a str that is not UTF-8 still round-trips to its bytes.
    try:
        frame = msgpack.unpackb(payload, raw=False, unicode_errors="surrogateescape")
    except Exception as e:
        raise ProtocolError("bad MessagePack: %s" % e) from None
    if not isinstance(frame, list) or len(frame) < 2 or not isinstance(frame[0], int):
        raise ProtocolError("not a frame: %r" % (frame,)[:100])
    if _ARITY.get(frame[0]) != len(frame):
        raise ProtocolError("frame type %r with %d elements" % (frame[0], len(frame)))
    if frame[0] == CHUNK and isinstance(frame[2], str):  # the protocol accepts str bodies
        frame[2] = frame[2].encode("utf-8", "surrogateescape")
    return frame
