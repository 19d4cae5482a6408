"""The slave's protocol loop (docs/protocol.md).

One thread, the loop thread, reads the socket, routes frames, keeps the
heartbeat timer, and with the default concurrency of 1 runs the handlers
too: a request costs one thread wake-up, and a handler waiting for request
chunks (or for a cancel) runs the loop itself while it waits. A handler that
blocks without waiting for the engine (time.sleep, a slow query) would stop
the heartbeats, so a standby thread, which wakes twice a second whatever the
load, takes the loop over from a handler that has run for half a second (or
half a heartbeat period if shorter) and gives it back when the handler
returns or waits for input.

With engine.concurrency above 1, the loop thread only runs the loop, and
that many handler threads take sessions from it (for I/O-bound apps: a
thread hand-off per request, but sessions overlap).

slaves/python/README.md explains the choice and its measurements.
"""

import collections
import os
import select
import socket
import sys
import threading
import time
import traceback

from . import app, protocol
from .stream import Error, Request, Response

# How long a slave whose engine went away waits for its handler to notice
# (cancellation) before it leaves anyway: nobody will read the answer.
GONE_GRACE = 1.0

# Error messages go to a caller: short, no traceback.
MAX_MESSAGE = 300

# A handler's write or cancellation check reads what the engine sent
# (a cancel) when the loop has not run for this long (seconds).
REFRESH_AFTER = 0.001

# The standby looks at the loop thread this often at most (seconds), and
# takes the loop from a handler that has run this long.
STANDBY_TICK = 0.5

RECV_SIZE = 256 << 10

# Request body the loop has read and no handler has taken yet, across
# sessions: past this, the loop stops reading the socket (the engine's
# writes then wait) until handlers take half of it or one waits for input.
MAX_UNREAD = 8 << 20

_READ = select.POLLIN | select.POLLPRI | select.POLLHUP | select.POLLERR
_HUP = select.POLLHUP | select.POLLERR
_monotonic = time.monotonic


def log(msg):
    print("cocaine: " + msg, file=sys.stderr, flush=True)


class Worker:
    def __init__(self, sock, slave_id, period, dispatch, concurrency=1):
        self._sock = sock
        self._id = slave_id
        self._period = period
        self._dispatch = dispatch
        self._threads = concurrency if concurrency > 1 else 0  # handler threads; 0: inline

        sock.setblocking(False)
        self._fd = sock.fileno()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._poll = select.poll()
        self._poll.register(self._fd, _READ)
        self._poll.register(self._wake_r, _READ)
        self._reader = protocol.Reader()

        self._wlock = threading.Lock()  # frames never interleave
        # The loop: whoever holds this lock reads the socket and keeps the
        # timer (the loop thread, a handler waiting for input, the standby).
        self._loop = threading.Lock()
        self._last_pump = 0.0
        self._next_beat = 0.0
        self._paused = False  # not reading: MAX_UNREAD reached
        self._cond = threading.Condition(threading.Lock())  # input for handlers not holding the loop
        self._waiters = 0
        self._work = threading.Condition(threading.Lock())  # sessions for handler threads
        self._idle = 0  # handler threads waiting for a session

        self._sessions = {}  # session -> Request, until its handler is done
        self._ready = collections.deque()  # (session, Request) not started yet
        self._stopping = False  # the engine said terminate
        self._gone = False  # the engine went away
        self._finished = threading.Event()

        # The handler running on the loop thread (inline mode): since when,
        # and whether the standby holds the loop for it.
        self._busy_since = 0.0
        self._taken = False
        self._want = False  # that handler wants the loop back

    # --- writing -----------------------------------------------------------

    def send(self, *frames):
        """Write encoded frames in one write."""
        data = frames[0] if len(frames) == 1 else b"".join(frames)
        with self._wlock:
            try:
                n = self._sock.send(data)
            except BlockingIOError:
                n = 0
            if n < len(data):
                self._send_rest(memoryview(data)[n:])

    def _send_rest(self, view):
        """The engine reads slower than we write: wait for room, reading
        what it sends meanwhile if this thread may run the loop (so neither
        side waits for the other with full buffers)."""
        mine = self._loop.acquire(False)
        try:
            poll = select.poll()
            while view:
                # Read meanwhile only while under MAX_UNREAD: the engine
                # reads our answers on a goroutine of its own, so waiting
                # here cannot deadlock, and a handler that answers as it
                # reads must not pull the whole body into memory while its
                # caller is slow.
                reading = mine and not self._paused and self._unread() <= MAX_UNREAD
                poll.register(self._fd, select.POLLOUT | (_READ if reading else 0))
                events = poll.poll(self._period * 1000)
                if mine and any(e & _READ for _, e in events):
                    if not self._read() or self._gone:
                        raise BrokenPipeError("the engine went away")
                try:
                    n = self._sock.send(view)
                except BlockingIOError:
                    continue
                view = view[n:]
        finally:
            if mine:
                self._loop.release()
                self._notify_loop_free()

    def _beat(self, now):
        self._next_beat = now + self._period
        try:
            self.send(protocol.HEARTBEAT_FRAME)
        except OSError:
            pass  # the read side sees the engine gone

    # --- the loop ----------------------------------------------------------

    def _pump(self, timeout, want_input=False):
        """One turn of the loop, for the holder of self._loop: wait up to
        timeout seconds for frames and route them, and send the heartbeat
        when it is due. want_input: a handler waits for what the engine
        sends, so read even past MAX_UNREAD."""
        if self._paused and (want_input or self._waiters or self._unread() <= MAX_UNREAD // 2):
            self._pause(False)
        now = _monotonic()
        if now >= self._next_beat:
            self._beat(now)
        wait = self._next_beat - now
        if timeout is not None and timeout < wait:
            wait = timeout
        events = self._poll.poll(wait * 1000 if wait > 0 else 0)
        self._last_pump = _monotonic()
        for fd, _ in events:
            if fd == self._fd:
                self._read()
            else:
                try:
                    os.read(self._wake_r, 512)
                except BlockingIOError:
                    pass

    def _read(self):
        """Read and route what the socket holds. False once the engine is gone."""
        if self._gone:
            return False
        try:
            data = self._sock.recv(RECV_SIZE)
        except BlockingIOError:
            return True
        except OSError as e:
            self._lost("reading from the engine: %s" % e)
            return False
        if not data:
            self._lost(None if self._finished.is_set() else "engine closed the connection")
            return False
        try:
            frames = self._reader.feed(data)
        except protocol.ProtocolError as e:
            self._lost("reading from the engine: %s" % e)
            return False
        if len(data) >= RECV_SIZE // 4 and self._unread() + len(data) > MAX_UNREAD:
            self._pause(True)  # a body nobody reads yet: leave the rest in the socket
        sessions = self._sessions
        for f in frames:
            kind, session = f[0], f[1]
            if kind == protocol.CHUNK:
                req = sessions.get(session)
                if req is not None:
                    req._push(f[2])
            elif kind == protocol.INVOKE:
                req = Request(f[2], self)
                sessions[session] = req
                self._ready.append((session, req))
                if self._idle:
                    with self._work:
                        self._work.notify()
            elif kind == protocol.CHOKE:
                req = sessions.get(session)
                if req is not None:
                    req._finish()
            elif kind == protocol.ERROR:
                req = sessions.get(session)
                if req is not None:
                    req._cancel("%s %s" % (f[2], f[3]))
            elif kind == protocol.TERMINATE:
                self._stopping = True  # after the sessions already given
                self._wake_all()
            # the session ended here already (404, say), or a frame only a
            # slave sends: nothing to do
        return True

    def _unread(self):
        return sum(r._size for r in self._sessions.values())

    def _pause(self, paused):
        if paused != self._paused and not self._gone:
            self._paused = paused
            self._poll.modify(self._fd, _HUP if paused else _READ)

    def _lost(self, why):
        if why:
            log(why)
        self._gone = True
        try:
            self._poll.unregister(self._fd)  # a closed socket polls readable forever
        except KeyError:
            pass
        while self._ready:  # never started: nobody runs them now
            self._sessions.pop(self._ready.popleft()[0], None)
        for req in list(self._sessions.values()):
            req._cancel("engine gone")
        self._wake_all()

    def _wake_all(self):
        with self._work:
            self._work.notify_all()
        with self._cond:
            self._cond.notify_all()

    def _wake(self):
        """Interrupt the loop's poll."""
        try:
            os.write(self._wake_w, b"w")
        except BlockingIOError:
            pass

    # --- the Request hub: how handlers wait (stream.Hub) --------------------

    def notify(self):
        if self._waiters:
            with self._cond:
                self._cond.notify_all()

    def wait(self, ready, timeout=None):
        """Wait until ready() or timeout seconds: by running the loop when
        this thread may, else by waiting for whoever runs it."""
        deadline = None if timeout is None else _monotonic() + timeout
        while not ready():
            left = None
            if deadline is not None:
                left = deadline - _monotonic()
                if left <= 0:
                    return
            if self._take_loop():
                try:
                    if self._gone:
                        return
                    self._pump(left, True)
                finally:
                    self._loop.release()
                continue
            with self._cond:
                self._waiters += 1
                try:
                    if not ready():
                        if self._paused:
                            self._wake()  # the loop reads again while we wait
                        # Bounded: the loop may change hands without a notify.
                        self._cond.wait(self._period if left is None else min(left, self._period))
                finally:
                    self._waiters -= 1

    def refresh(self, now=False):
        """Route what the engine sent meanwhile (a cancel) if this thread may
        run the loop: at once when now, else at most once a REFRESH_AFTER."""
        if (now or self._taken or _monotonic() - self._last_pump >= REFRESH_AFTER) and self._take_loop():
            try:
                if not self._gone:
                    self._pump(0)
            finally:
                self._loop.release()

    def _take_loop(self):
        """Acquire the loop if free, or take it back from the standby, which
        holds it for the handler running on the loop thread; False when
        another thread runs it (the loop thread, for handler threads)."""
        if self._loop.acquire(False):
            return True
        if not self._taken:
            return False
        self._want = True
        try:
            self._wake()
            self._loop.acquire()
        finally:
            self._want = False
        return True

    def _notify_loop_free(self):
        if self._waiters:
            with self._cond:
                self._cond.notify_all()

    # --- running -----------------------------------------------------------

    def run(self):
        """Serve until the engine says terminate (returns 0) or goes away (1)."""
        self.send(protocol.handshake(self._id, os.getpid()))
        self._next_beat = _monotonic() + self._period
        if self._threads:
            for i in range(self._threads):
                threading.Thread(target=self._handler_thread, name="cocaine-handler-%d" % i, daemon=True).start()
        else:
            threading.Thread(target=self._standby, name="cocaine-standby", daemon=True).start()
        self._loop.acquire()
        try:
            if self._threads:
                self._run_loop()
            else:
                self._run_inline()
            if self._gone:
                return 1
            try:
                self.send(protocol.terminate("terminated by engine"))
            except OSError:
                return 1
            return 0
        finally:
            self._finished.set()
            self._wake_all()
            self._loop.release()
            self._notify_loop_free()

    def _run_inline(self):
        """The loop thread runs the handlers, one session at a time, and
        holds the loop except while a handler runs."""
        ready = self._ready
        while True:
            while ready and not self._gone:
                session, req = ready.popleft()
                self._busy_since = _monotonic()
                self._loop.release()
                try:
                    self._serve(session, req)
                finally:
                    self._busy_since = 0.0
                    if not self._loop.acquire(False):
                        # The standby has the loop: ask for it back.
                        self._wake()
                        self._loop.acquire()
            if self._gone or self._stopping:
                return
            self._pump(None)

    def _standby(self):
        """Heartbeats, cancellation and the engine's departure while the
        loop thread is stuck in a handler (inline mode only)."""
        # Often enough that a handler stuck for a second still notices the
        # engine's departure soon; rarely enough to cost nothing.
        tick = min(self._period / 2, STANDBY_TICK)
        while not self._finished.wait(tick):
            since = self._busy_since
            if not since or _monotonic() - since < tick:
                continue
            # Set before the loop is ours: a handler that finds the loop
            # taken then asks for it back (_take_loop) instead of missing it.
            self._taken = True
            if not self._loop.acquire(False):
                self._taken = False
                continue  # the handler is running the loop itself
            try:
                # Until the handler returns, or wants to read or write:
                # then it runs the loop itself again.
                while self._busy_since == since and not self._gone and not self._want:
                    self._pump(None)
            finally:
                self._taken = False
                self._loop.release()
                self._notify_loop_free()
            if self._gone and not self._finished.wait(GONE_GRACE):
                # A handler that ignores cancellation must not keep an
                # orphan alive.
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(1)

    def _run_loop(self):
        """The loop alone; handler threads take the sessions."""
        while not self._gone and not (self._stopping and not self._sessions):
            self._pump(None)
        if self._gone and self._sessions:
            deadline = _monotonic() + GONE_GRACE
            while self._sessions and _monotonic() < deadline:
                self._wait_threads(deadline - _monotonic())
            if self._sessions:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(1)

    def _wait_threads(self, timeout):
        with self._cond:
            self._waiters += 1
            try:
                self._cond.wait(min(timeout, 0.05))
            finally:
                self._waiters -= 1

    def _handler_thread(self):
        ready, work = self._ready, self._work
        while True:
            with work:
                self._idle += 1
                try:
                    while not ready and not (self._gone or self._finished.is_set()):
                        work.wait()
                finally:
                    self._idle -= 1
            if self._gone or self._finished.is_set():
                return
            try:
                session, req = ready.popleft()
            except IndexError:
                continue  # another thread took it
            self._serve(session, req)
            if self._stopping and not self._sessions:
                self._wake()

    def _serve(self, session, req):
        resp = Response(session, self.send, req)
        try:
            try:
                self._dispatch(req, resp)
                resp.close()
            except Error as e:
                resp._fail(e.code, e.message)
            except Exception as e:
                if req._cancelled:
                    # The engine ignores the answer; the error is expected.
                    log("session %d (%s) cancelled: %s" % (session, req.event, req._reason))
                    resp._fail(520, "cancelled", drop=True)
                    return
                print("cocaine: handler of %r failed:" % req.event, file=sys.stderr)
                traceback.print_exc()
                sys.stderr.flush()
                resp._fail(502, short(e))
        except OSError as e:
            if not self._gone:
                log("session %d: cannot answer: %s" % (session, e))
        finally:
            self._sessions.pop(session, None)
            if self._paused and self._threads:
                self._wake()  # its unread body is gone: the loop may read again


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
        manifest = app.read_manifest(root)
        dispatch = app.load(root, manifest)
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
        return Worker(sock, slave_id, period, dispatch, app.concurrency(manifest)).run()
    finally:
        sock.close()
