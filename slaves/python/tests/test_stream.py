import threading
import unittest

import support  # noqa: F401  (puts the runtime on sys.path)
from cocaine import protocol
from cocaine.stream import BUFFER_SIZE, Cancelled, Request, Response
from support import Sink


def feed(req, *chunks, end=True):
    for c in chunks:
        req._push(c)
    if end:
        req._finish()


def in_thread(fn):
    """Run fn in a thread; returns (thread, result list)."""
    out = []
    t = threading.Thread(target=lambda: out.append(fn()), daemon=True)
    t.start()
    return t, out


class RequestTest(unittest.TestCase):
    def test_read_all(self):
        r = Request("e")
        feed(r, b"ab", b"", b"cd")
        self.assertEqual(r.read(), b"abcd")
        self.assertEqual(r.read(), b"")

    def test_read_n_waits_for_n_bytes(self):
        r = Request("e")
        t, out = in_thread(lambda: r.read(5))
        r._push(b"ab")
        t.join(0.05)
        self.assertTrue(t.is_alive(), "read(5) returned with 2 bytes buffered")
        r._push(b"cdefg")
        t.join(5)
        self.assertEqual(out, [b"abcde"])
        r._finish()
        self.assertEqual(r.read(10), b"fg")
        self.assertEqual(r.read(10), b"")

    def test_iteration_yields_chunks_as_they_come(self):
        r = Request("e")
        it = iter(r)
        r._push(b"one")
        self.assertEqual(next(it), b"one")
        r._push(b"two")
        self.assertEqual(next(it), b"two")
        r._finish()
        self.assertEqual(list(it), [])

    def test_readline(self):
        r = Request("e")
        feed(r, b"fir", b"st\nsec", b"ond\n", b"third")
        self.assertEqual(r.readline(), b"first\n")
        self.assertEqual(r.readline(3), b"sec")
        self.assertEqual(r.readline(), b"ond\n")
        self.assertEqual(r.readline(), b"third")
        self.assertEqual(r.readline(), b"")

    def test_readlines_and_unread(self):
        r = Request("e")
        feed(r, b"b\nc")
        r._unread(b"a\n")
        self.assertEqual(r.readlines(), [b"a\n", b"b\n", b"c"])

    def test_cancel_wakes_a_blocked_read(self):
        r = Request("e")
        t, out = in_thread(lambda: self.assertRaises(Cancelled, r.read))
        r._cancel("520 deadline")
        t.join(5)
        self.assertFalse(t.is_alive())
        self.assertTrue(r.cancelled)
        self.assertTrue(r.wait_cancelled(0))

    def test_wait_cancelled_times_out(self):
        self.assertFalse(Request("e").wait_cancelled(0.01))


class ResponseTest(unittest.TestCase):
    def test_small_writes_leave_with_the_end_in_one_write(self):
        s = Sink()
        w = Response(7, s)
        w.write(b"a")
        w.write("é")
        self.assertEqual(s.writes, [])
        w.close()
        w.close()
        self.assertEqual(s.writes, [[[protocol.CHUNK, 7, "aé".encode()], [protocol.CHOKE, 7]]])

    def test_flush(self):
        s = Sink()
        w = Response(1, s)
        w.flush()  # nothing buffered: nothing sent
        w.write(b"x")
        w.flush()
        w.close()
        self.assertEqual(s.writes, [[[protocol.CHUNK, 1, b"x"]], [[protocol.CHOKE, 1]]])

    def test_big_writes_go_out_in_chunks_of_at_most_1MiB(self):
        s = Sink()
        w = Response(1, s)
        w.write(b"x" * (BUFFER_SIZE - 1))
        self.assertEqual(s.writes, [])
        w.write(b"y" * (3 << 20))
        self.assertEqual(len(s.writes), 1)
        w.close()
        chunks = [f[2] for f in s.frames if f[0] == protocol.CHUNK]
        self.assertTrue(all(len(c) <= protocol.CHUNK_SIZE for c in chunks))
        self.assertEqual(b"".join(chunks), b"x" * (BUFFER_SIZE - 1) + b"y" * (3 << 20))
        self.assertEqual(s.frames[-1], [protocol.CHOKE, 1])

    def test_fail_after_output(self):
        s = Sink()
        w = Response(2, s)
        w.write(b"partial")
        w._fail(502, "ValueError: no")
        w._fail(500, "again")  # already ended: ignored
        self.assertEqual(s.writes, [[[protocol.CHUNK, 2, b"partial"], [protocol.ERROR, 2, 502, "ValueError: no"]]])

    def test_end_chunk_keeps_a_chunk_boundary(self):
        s = Sink()
        w = Response(3, s)
        w.write(b"head")
        w._end_chunk()
        w.write(b"body")
        w.close()
        self.assertEqual(s.writes, [[[protocol.CHUNK, 3, b"head"], [protocol.CHUNK, 3, b"body"], [protocol.CHOKE, 3]]])

    def test_misuse(self):
        w = Response(1, Sink())
        with self.assertRaises(TypeError):
            w.write(5)
        w.close()
        with self.assertRaises(RuntimeError):
            w.write(b"late")

    def test_write_on_a_cancelled_session_raises(self):
        r = Request("e")
        w = Response(1, Sink(), r)
        r._cancel("gone")
        with self.assertRaises(Cancelled):
            w.write(b"x")


class ProtocolTest(unittest.TestCase):
    def test_round_trip(self):
        for frame in (protocol.handshake("id", 42), protocol.chunk(1, b"\x00\xff"),
                      protocol.error(3, 502, "m"), protocol.choke(4), protocol.terminate("bye")):
            self.assertEqual(protocol.encode(*protocol.decode(frame[4:])), frame)

    def test_str_chunk_is_accepted(self):
        import msgpack
        self.assertEqual(protocol.decode(msgpack.packb([5, 1, "h\xe9"]))[2], "h\xe9".encode())

    def test_malformed(self):
        import msgpack
        for payload in (b"\xc1", msgpack.packb([5, 1]), msgpack.packb({"a": 1}), msgpack.packb([99, 0])):
            with self.assertRaises(protocol.ProtocolError):
                protocol.decode(payload)


if __name__ == "__main__":
    unittest.main()
