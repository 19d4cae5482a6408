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
_U16 = struct.Struct(">H")

# One Packer for the whole process: its C pack() of ints, str and bytes
# never calls back into Python, so it runs whole under the GIL and threads
# cannot interleave inside it.
_pack = msgpack.Packer(use_bin_type=True).pack


class ProtocolError(Exception):
    """A frame that does not follow the protocol."""


def encode(*fields):
    payload = _pack(fields)
    if len(payload) > MAX_FRAME:
        raise ProtocolError("frame of %d bytes exceeds %d" % (len(payload), MAX_FRAME))
    return _LEN.pack(len(payload)) + payload


def handshake(slave_id, pid):
    return encode(HANDSHAKE, 0, slave_id, pid, VERSION)


HEARTBEAT_FRAME = encode(HEARTBEAT, 0)


def heartbeat():
    return HEARTBEAT_FRAME


def terminate(reason):
    return encode(TERMINATE, 0, reason)


def chunk(session, data):
    """A chunk frame, built around data with one copy of it (packing it
    would copy it twice more)."""
    n = len(data)
    if n > MAX_FRAME - 16:
        raise ProtocolError("chunk of %d bytes exceeds the frame limit" % n)
    if n < 256:
        bin_head = b"\xc4" + bytes((n,))
    elif n < 65536:
        bin_head = b"\xc5" + _U16.pack(n)
    else:
        bin_head = b"\xc6" + _LEN.pack(n)
    sess = _pack(session)
    return b"".join((_LEN.pack(2 + len(sess) + len(bin_head) + n), b"\x93\x05", sess, bin_head, data))


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
    return check(frame)


def check(frame):
    """frame itself if it has a known type and the arity of that type."""
    if type(frame) is not list or len(frame) < 2 or type(frame[0]) is not int:
        raise ProtocolError("not a frame: %r" % (frame,)[:100])
    if _ARITY.get(frame[0]) != len(frame):
        raise ProtocolError("frame type %r with %d elements" % (frame[0], len(frame)))
    if frame[0] == CHUNK and type(frame[2]) is str:  # the protocol accepts str bodies
        frame[2] = frame[2].encode("utf-8", "surrogateescape")
    return frame


class Reader:
    """Frames out of a byte stream fed in pieces of any size, as recv()
    returns them: one msgpack.Unpacker holds the bytes, and a batch of
    frames comes out of each feed."""

    def __init__(self):
        # A frame may be up to MAX_FRAME, and a recv() may bring the start
        # of the next one with it.
        self._u = msgpack.Unpacker(raw=False, unicode_errors="surrogateescape",
                                   max_buffer_size=2 * MAX_FRAME + (1 << 20))
        self._fed = 0  # bytes fed so far; _u.tell() is the bytes consumed
        self._need = -1  # payload length of a frame whose prefix was read

    def feed(self, data):
        """Add data; returns the list of frames it completes."""
        u = self._u
        u.feed(data)
        self._fed += len(data)
        frames = []
        while True:
            start = u.tell()
            avail = self._fed - start
            n = self._need
            if n < 0:
                if avail < 4:
                    return frames
                (n,) = _LEN.unpack(u.read_bytes(4))
                if n > MAX_FRAME:
                    raise ProtocolError("frame of %d bytes declared, limit %d" % (n, MAX_FRAME))
                start += 4
                avail -= 4
            if avail < n:
                self._need = n
                return frames
            self._need = -1
            try:
                frame = u.unpack()
            except Exception as e:
                raise ProtocolError("bad MessagePack: %s" % e) from None
            if u.tell() - start != n:
                raise ProtocolError("frame of %d bytes holds %d bytes of MessagePack" % (n, u.tell() - start))
            if type(frame) is not list or _ARITY.get(frame[0] if frame else None) != len(frame) \
                    or type(frame[2] if frame[0] == CHUNK else b"") is not bytes:
                check(frame)  # says what is wrong, or converts a str chunk
            frames.append(frame)
