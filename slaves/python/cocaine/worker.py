"""The slave's protocol loop (docs/protocol.md).

Three threads: the main thread runs handlers, one session at a time; a
reader thread keeps reading frames, so request chunks, cancellations and a
terminate arrive while a handler runs; a heartbeat thread keeps the slave
visibly alive whatever the handler does. Writes share one lock, so frames
never interleave.
"""

import os
import queue
import socket
import sys
import threading
import traceback

from . import app, protocol
from .stream import Error, Request, Response

# How long a slave whose engine went away waits for its handler to notice
# (cancellation) before it leaves anyway: nobody will read the answer.
GONE_GRACE = 1.0

# Error messages go to a caller: short, no traceback.
MAX_MESSAGE = 300


def log(msg):
    print("cocaine: " + msg, file=sys.stderr, flush=True)


class Worker:
    def __init__(self, sock, slave_id, period, dispatch):
        self._sock = sock
        self._id = slave_id
        self._period = period
        self._dispatch = dispatch
        self._wlock = threading.Lock()
        self._sessions = {}  # session -> Request; single dict ops are atomic
        self._queue = queue.Queue()  # (session, Request) to serve, None to stop
        self._stop = threading.Event()
        self._finished = threading.Event()
        self._gone = False

    def send(self, *frames):
        """Write encoded frames in one write."""
        data = b"".join(frames)
        with self._wlock:
            self._sock.sendall(data)

    def run(self):
        """Serve until the engine says terminate (returns 0) or goes away (1)."""
        self.send(protocol.handshake(self._id, os.getpid()))
        threading.Thread(target=self._heartbeat, name="cocaine-heartbeat", daemon=True).start()
        threading.Thread(target=self._read, name="cocaine-reader", daemon=True).start()
        try:
            while True:
                item = self._queue.get()
                if item is None:
                    break
                self._serve(*item)
            if self._gone:
                return 1
            try:
                self.send(protocol.terminate("terminated by engine"))
            except OSError:
                return 1
            return 0
        finally:
            self._stop.set()
            self._finished.set()

    def _heartbeat(self):
        while not self._stop.wait(self._period):
            try:
                self.send(protocol.heartbeat())
            except OSError:
                return

    def _read(self):
        f = self._sock.makefile("rb")
        try:
            while True:
                frame = protocol.read_frame(f)
                if frame is None:
                    if not self._finished.is_set():
                        log("engine closed the connection")
                    break
                self._route(frame)
        except (OSError, protocol.ProtocolError) as e:
            if not self._finished.is_set():
                log("reading from the engine: %s" % e)
        self._gone = True
        for req in list(self._sessions.values()):
            req._cancel("engine gone")
        self._queue.put(None)
        if not self._finished.wait(GONE_GRACE):
            # A handler that ignores cancellation must not keep an orphan alive.
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(1)

    def _route(self, frame):
        kind, session = frame[0], frame[1]
        if kind == protocol.INVOKE:
            req = Request(frame[2])
            self._sessions[session] = req
            self._queue.put((session, req))
            return
        if kind == protocol.TERMINATE:
            self._queue.put(None)  # after the sessions already given
            return
        req = self._sessions.get(session)
        if req is None:
            return  # the session ended here already (404, say)
        if kind == protocol.CHUNK:
            req._push(frame[2])
        elif kind == protocol.CHOKE:
            req._finish()
        elif kind == protocol.ERROR:
            req._cancel("%s %s" % (frame[2], frame[3]))

    def _serve(self, session, req):
        resp = Response(session, self.send, req)
        try:
            try:
                self._dispatch(req, resp)
                resp.close()
            except Error as e:
                resp._fail(e.code, e.message)
            except Exception as e:
                if req.cancelled:
                    # The engine ignores the answer; the error is expected.
                    log("session %d (%s) cancelled: %s" % (session, req.event, req._reason))
                    resp._fail(520, "cancelled")
                    return
                print("cocaine: handler of %r failed:" % req.event, file=sys.stderr)
                traceback.print_exc()
                sys.stderr.flush()
                resp._fail(502, short(e))
        except OSError as e:
            log("session %d: cannot answer: %s" % (session, e))
        finally:
            self._sessions.pop(session, None)


def short(e):
    msg = "%s: %s" % (type(e).__name__, e) if str(e) else type(e).__name__
    return msg if len(msg) <= MAX_MESSAGE else msg[:MAX_MESSAGE - 3] + "..."


def main():
    """Run the app in the working directory (the unpacked package) for the
    engine named in the environment. Returns the exit status."""
    # The app's output is its log, read line by line.
    sys.stdout.reconfigure(line_buffering=True)
    path, slave_id = os.environ.get("COCAINE_SOCKET"), os.environ.get("COCAINE_SLAVE_ID")
    if not path or not slave_id:
        log("COCAINE_SOCKET and COCAINE_SLAVE_ID must be set: a cocaine engine starts this program")
        return 2
    try:
        period = int(os.environ.get("COCAINE_HEARTBEAT_MS", "")) / 1000.0
    except ValueError:
        period = 5.0
    if period <= 0:
        period = 5.0

    root = os.getcwd()
    try:
        dispatch = app.load(root, app.read_manifest(root))
    except app.ManifestError as e:
        log("manifest.json: %s" % e)
        return 2
    except BaseException:
        # Before the handshake: the engine counts a failed start and keeps
        # this output as the crash log.
        traceback.print_exc()
        missing = app.missing_requirements(root)
        if missing:
            log("requirements.txt: not installed: %s" % ", ".join(missing))
        log("cannot load the app")
        return 1

    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(path)
    except OSError as e:
        log("connect to the engine at %s: %s" % (path, e))
        return 1
    try:
        return Worker(sock, slave_id, period, dispatch).run()
    finally:
        sock.close()
