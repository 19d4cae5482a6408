import contextlib
import io
import os
import socket
import threading
import time
import unittest

import support  # noqa: F401
from cocaine import Cancelled, Error, protocol
from cocaine.worker import Worker

# Set by session "b" of event "meet", awaited by session "a": both must run at once.
MET = threading.Event()


def dispatch(request, response):
    if request.event == "echo":
        return response.write(request.read())
    if request.event == "fail":
        raise ValueError("no " * 200)
    if request.event == "teapot":
        raise Error(418, "short and stout")
    if request.event == "wait":
        request.wait_cancelled(10)
        return response.write(b"late")
    if request.event == "block":
        # Blocks without asking the runtime anything, as time.sleep or a
        # slow query does.
        time.sleep(float(request.read()))
        return response.write(b"done")
    if request.event == "gate":
        # Blocks until the test opens the gate, then writes, which fails
        # once the session was cancelled meanwhile.
        request.read()
        STARTED.set()
        GATE.wait(10)
        try:
            response.write(b"done")
            response.flush()
        except Cancelled:
            BLOCKED.append("cancelled")
            raise
        return None
    if request.event == "count":
        # Reads its body only once the gate opens.
        GATE.wait(10)
        return response.write(str(len(request.read())).encode())
    if request.event == "meet":
        who = request.read()
        if who == b"b":
            MET.set()
            return response.write(b"b met")
        return response.write(b"a met" if MET.wait(10) else b"a alone")
    raise Error(404, "no handler")


BLOCKED = []
STARTED, GATE = threading.Event(), threading.Event()


class Engine:
    """The engine's end of a socketpair, with the worker running in a thread."""

    def __init__(self, test, concurrency=1):
        self.sock, theirs = socket.socketpair()
        self.sock.settimeout(10)
        self.file = self.sock.makefile("rb")
        self.stderr = io.StringIO()
        self.status = []
        self.worker = Worker(theirs, "slave-1", 0.05, dispatch, concurrency)

        def run():
            with contextlib.redirect_stderr(self.stderr):
                self.status.append(self.worker.run())
            theirs.close()

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()
        test.addCleanup(self.close)

    def send(self, *fields):
        self.sock.sendall(protocol.encode(*fields))

    def recv(self):
        """The next frame that is not a heartbeat."""
        while True:
            f = protocol.read_frame(self.file)
            if f is None or f[0] != protocol.HEARTBEAT:
                return f

    def call(self, session, event, *chunks):
        self.send(protocol.INVOKE, session, event)
        for c in chunks:
            self.send(protocol.CHUNK, session, c)
        self.send(protocol.CHOKE, session)
        out = []
        while True:
            f = self.recv()
            out.append(f)
            if f[0] != protocol.CHUNK:
                return out

    def close(self):
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)  # close() alone waits for self.file
        self.file.close()
        self.sock.close()
        self.thread.join(5)


class WorkerTest(unittest.TestCase):
    def test_session_lifecycle(self):
        e = Engine(self)
        self.assertEqual(e.recv(), [protocol.HANDSHAKE, 0, "slave-1", os.getpid(), 1])
        self.assertEqual(e.call(1, "echo", b"he", b"llo"), [[protocol.CHUNK, 1, b"hello"], [protocol.CHOKE, 1]])

        (err,) = e.call(2, "fail", b"")
        self.assertEqual(err[:3], [protocol.ERROR, 2, 502])
        self.assertTrue(err[3].startswith("ValueError: no no"))
        self.assertLessEqual(len(err[3]), 300)
        self.assertIn("Traceback", e.stderr.getvalue(), "the traceback goes to the app log")
        self.assertNotIn("Traceback", err[3])

        self.assertEqual(e.call(3, "teapot"), [[protocol.ERROR, 3, 418, "short and stout"]])
        self.assertEqual(e.call(4, "nope", b"x")[0][:3], [protocol.ERROR, 4, 404])

        e.send(protocol.TERMINATE, 0, "idle")
        self.assertEqual(e.recv(), [protocol.TERMINATE, 0, "terminated by engine"])
        e.thread.join(5)
        self.assertEqual(e.status, [0])

    def test_heartbeats_while_busy(self):
        e = Engine(self)
        e.recv()
        e.send(protocol.INVOKE, 1, "wait")
        e.send(protocol.CHOKE, 1)
        beats = 0
        while beats < 3:  # the handler waits 10s: these come from their own thread
            self.assertEqual(protocol.read_frame(e.file)[0], protocol.HEARTBEAT)
            beats += 1
        e.send(protocol.ERROR, 1, 520, "deadline passed")
        f = e.recv()
        self.assertIn(f[0], (protocol.CHOKE, protocol.ERROR))
        self.assertEqual(f[1], 1)
        self.assertEqual(e.call(2, "echo", b"ok"), [[protocol.CHUNK, 2, b"ok"], [protocol.CHOKE, 2]])

    def beats_during(self, e, session, event, body):
        """Heartbeats received while session runs, and its last frame."""
        e.send(protocol.INVOKE, session, event)
        e.send(protocol.CHUNK, session, body)
        e.send(protocol.CHOKE, session)
        beats = 0
        while True:
            f = protocol.read_frame(e.file)
            if f[0] == protocol.HEARTBEAT:
                beats += 1
            elif f[0] != protocol.CHUNK:
                return beats, f

    def test_heartbeats_while_a_handler_blocks(self):
        e = Engine(self)
        e.recv()
        # 0.6 s is 12 periods: a runtime that beats only from its loop
        # sends none meanwhile; the standby sends about 10.
        beats, end = self.beats_during(e, 1, "block", b"0.6")
        self.assertEqual(end, [protocol.CHOKE, 1])
        self.assertGreaterEqual(beats, 3)
        self.assertEqual(e.call(2, "echo", b"ok"), [[protocol.CHUNK, 2, b"ok"], [protocol.CHOKE, 2]])

    def test_a_write_after_cancel_raises(self):
        # Not taken: the handler's thread reads the cancel itself when it
        # writes; taken: the standby holds the loop by then and gives it
        # back for the write.
        for taken in (False, True):
            with self.subTest(taken=taken):
                BLOCKED.clear()
                STARTED.clear()
                GATE.clear()
                e = Engine(self)
                e.recv()
                e.send(protocol.INVOKE, 1, "gate")
                e.send(protocol.CHOKE, 1)
                self.assertTrue(STARTED.wait(10))
                deadline = time.monotonic() + 10
                while taken and not e.worker._taken:
                    self.assertLess(time.monotonic(), deadline, "the standby never took the loop")
                    time.sleep(0.01)
                e.send(protocol.ERROR, 1, 520, "deadline passed")  # while the handler blocks
                GATE.set()
                self.assertEqual(e.recv(), [protocol.ERROR, 1, 520, "cancelled"])
                self.assertEqual(BLOCKED, ["cancelled"])
                self.assertEqual(e.call(2, "echo", b"ok"), [[protocol.CHUNK, 2, b"ok"], [protocol.CHOKE, 2]])

    def test_handler_threads_run_sessions_at_once(self):
        MET.clear()
        e = Engine(self, concurrency=2)
        e.recv()
        e.send(protocol.INVOKE, 1, "meet")
        e.send(protocol.CHUNK, 1, b"a")
        e.send(protocol.CHOKE, 1)
        self.assertEqual(e.call(2, "meet", b"b"), [[protocol.CHUNK, 2, b"b met"], [protocol.CHOKE, 2]])
        self.assertEqual(e.recv(), [protocol.CHUNK, 1, b"a met"])
        self.assertEqual(e.recv(), [protocol.CHOKE, 1])
        beats, end = self.beats_during(e, 3, "block", b"0.3")
        self.assertEqual(end, [protocol.CHOKE, 3])
        self.assertGreaterEqual(beats, 2)
        e.send(protocol.TERMINATE, 0, "idle")
        self.assertEqual(e.recv(), [protocol.TERMINATE, 0, "terminated by engine"])
        e.thread.join(5)
        self.assertEqual(e.status, [0])

    def test_unread_body_stays_in_the_socket(self):
        from cocaine import worker
        for concurrency in (1, 2):
            with self.subTest(concurrency=concurrency):
                GATE.clear()
                e = Engine(self, concurrency)
                e.recv()
                e.send(protocol.INVOKE, 1, "count")
                size = 3 * worker.MAX_UNREAD
                piece = b"x" * protocol.CHUNK_SIZE
                sender = threading.Thread(target=lambda: [e.send(protocol.CHUNK, 1, piece) for _ in range(size // len(piece))]
                                          + [e.send(protocol.CHOKE, 1)], daemon=True)
                sender.start()
                deadline = time.monotonic() + 10
                while not e.worker._paused:
                    self.assertLess(time.monotonic(), deadline, "the loop never stopped reading")
                    time.sleep(0.01)
                # Stopped: the rest waits in the socket, not in memory.
                self.assertLessEqual(e.worker._unread(), worker.MAX_UNREAD + worker.RECV_SIZE)
                self.assertTrue(sender.is_alive())
                GATE.set()
                self.assertEqual(e.recv(), [protocol.CHUNK, 1, str(size).encode()])
                self.assertEqual(e.recv(), [protocol.CHOKE, 1])
                sender.join(10)
                self.assertEqual(e.call(2, "echo", b"ok"), [[protocol.CHUNK, 2, b"ok"], [protocol.CHOKE, 2]])

    def test_engine_gone(self):
        e = Engine(self)
        e.recv()
        e.sock.shutdown(socket.SHUT_RDWR)
        e.thread.join(5)
        self.assertEqual(e.status, [1])


if __name__ == "__main__":
    unittest.main()
