"""Request and response streams of one session."""

import collections
import threading

from . import protocol

# A response holds this much before it sends a chunk, as the Go framework does.
BUFFER_SIZE = 64 << 10


class Error(Exception):
    """Raise from a handler to end the session with a platform code other
    than 502 (the codes are in docs/protocol.md), such as 400 or 404."""

    def __init__(self, code, message):
        super().__init__(message)
        self.code = code
        self.message = message


class Cancelled(Exception):
    """The engine gave up on the session: its deadline passed, its timeout
    fired or the caller went away. Nobody reads the answer any more."""


class Hub:
    """How a Request waits for its body: the worker's event loop is one
    (waiting runs the loop, see worker.Worker.wait); this one, for a Request
    fed by another thread, waits on a condition variable."""

    def __init__(self):
        self._cond = threading.Condition()

    def wait(self, ready, timeout=None):
        """Wait up to timeout seconds (None: no limit) until ready()."""
        with self._cond:
            self._cond.wait_for(ready, timeout)

    def notify(self):
        """Something a waiter may be waiting for happened."""
        with self._cond:
            self._cond.notify_all()

    def refresh(self, now=False):
        """Bring the session's state up to date (the worker reads what the
        engine sent meanwhile, at once when now, else now and then);
        nothing to do here."""


class Request:
    """The request body of one session, readable as it arrives.

    read() returns the whole body, read(n) blocks for n bytes (fewer only at
    the end), iteration yields chunks as the engine forwards them. Reads raise
    Cancelled once the engine cancelled the session.
    """

    def __init__(self, event, hub=None):
        self.event = event
        self._hub = hub if hub is not None else Hub()
        self._chunks = collections.deque()
        self._size = 0
        self._done = False
        self._cancelled = False
        self._reason = ""

    # Called by whoever reads the socket; never blocks. The hub wakes a
    # handler waiting on another thread.
    def _push(self, data):
        if data:
            self._chunks.append(data)
            self._size += len(data)
            self._hub.notify()

    def _finish(self):
        self._done = True
        self._hub.notify()

    def _cancel(self, reason):
        self._reason = reason
        self._cancelled = True
        self._done = True
        self._hub.notify()

    def _unread(self, data):
        """Put data back in front of the body (the WSGI adapter's leftovers)."""
        if data:
            self._chunks.appendleft(bytes(data))
            self._size += len(data)

    @property
    def cancelled(self):
        """True once the engine cancelled the session; a handler doing long
        work checks it (or calls wait_cancelled) and gives up."""
        if not self._cancelled:
            self._hub.refresh()
        return self._cancelled

    def wait_cancelled(self, timeout=None):
        """Sleep up to timeout seconds, waking early on cancellation.
        Returns True if the session was cancelled."""
        self._hub.wait(lambda: self._cancelled, timeout)
        return self._cancelled

    def _check(self):
        if self._cancelled:
            raise Cancelled(self._reason)

    def _wait(self, enough):
        """Wait until enough() or the body ended."""
        if not (self._done or enough()):
            self._hub.wait(lambda: self._done or enough())
        self._check()

    def _take(self, n):
        chunks = self._chunks
        if chunks and len(chunks[0]) == n:  # the usual read(): one chunk, all of it
            self._size -= n
            return chunks.popleft()
        out = []
        while n > 0 and chunks:
            c = chunks.popleft()
            if len(c) > n:
                chunks.appendleft(c[n:])
                c = c[:n]
            out.append(c)
            n -= len(c)
            self._size -= len(c)
        return b"".join(out)

    def read(self, n=-1):
        """Read n bytes, or the rest of the body when n is negative or None.
        Returns b"" at the end."""
        if n is None or n < 0:
            self._wait(_never)
            return self._take(self._size)
        self._wait(lambda: self._size >= n)
        return self._take(n)

    def readline(self, limit=-1):
        """Read up to and including the next b"\\n" (or limit bytes)."""
        scanned = 0

        def enough():
            nonlocal scanned
            if limit is not None and 0 <= limit <= self._size:
                return True
            if len(self._chunks) > 1:
                # One buffer to search: reads by line are rare and short.
                self._chunks = collections.deque([b"".join(self._chunks)])
            if self._chunks and self._chunks[0].find(b"\n", scanned) >= 0:
                return True
            scanned = self._size
            return False

        self._wait(enough)
        if self._chunks:
            head = self._chunks[0] if len(self._chunks) == 1 else b"".join(self._chunks)
            i = head.find(b"\n")
            n = len(head) if i < 0 else i + 1
        else:
            n = 0
        if limit is not None and 0 <= limit < n:
            n = limit
        return self._take(n)

    def readlines(self, hint=-1):
        lines, total = [], 0
        while True:
            line = self.readline()
            if not line:
                return lines
            lines.append(line)
            total += len(line)
            if hint is not None and 0 < hint <= total:
                return lines

    def __iter__(self):
        """Yield body chunks as they arrive."""
        while True:
            self._wait(lambda: self._size > 0)
            if not self._chunks:
                return
            c = self._chunks.popleft()
            self._size -= len(c)
            yield c


def _never():
    return False


class Response:
    """The answer stream of one session, written by one thread at a time
    (the handler's).

    write() buffers: a chunk goes out when BUFFER_SIZE is reached, on flush(),
    or with the end of the stream. A handler that streams calls flush() after
    each piece. close() ends the stream; the last chunk and the end travel in
    one socket write, so a slave killed right after answering never leaves its
    caller with half an answer.
    """

    def __init__(self, session, send, request=None):
        self._session = session
        self._send = send  # send(*frames) writes encoded frames in one write
        self._request = request
        self._buf = []  # pieces of the chunk being written
        self._size = 0
        self._cut = []  # finished chunks not sent yet, see _end_chunk
        self._closed = False

    @property
    def closed(self):
        return self._closed

    def write(self, data):
        """Write bytes (or str, sent as UTF-8)."""
        if type(data) is not bytes:
            if isinstance(data, str):
                data = data.encode("utf-8")
            elif isinstance(data, (bytes, bytearray, memoryview)):
                data = bytes(data)  # the caller may reuse its buffer
            else:
                raise TypeError("response.write takes bytes or str, not %s" % type(data).__name__)
        self._usable()
        if data:
            self._buf.append(data)
            self._size += len(data)
            if self._size >= BUFFER_SIZE:
                self._send_buffered()

    def flush(self):
        """Send what is buffered now."""
        self._usable(True)
        if self._buf or self._cut:
            self._send_buffered()

    def close(self):
        """End the stream. Closing twice is harmless."""
        self._end(protocol.choke(self._session))

    def _fail(self, code, message, drop=False):
        """End the stream with an error after what is buffered (or dropping
        it: nobody reads a cancelled session), unless ended."""
        if drop:
            self._buf, self._size, self._cut = [], 0, []
        self._end(protocol.error(self._session, code, message))

    def _end_chunk(self):
        """Make what was written so far a chunk of its own, sent with the
        next flush or the end: the HTTP head must be the first chunk."""
        if self._buf:
            self._cut.append(self._take())

    def _usable(self, now=False):
        if self._closed:
            raise RuntimeError("response already closed")
        req = self._request
        if req is not None:
            if not req._cancelled:
                # A cancel the engine sent meanwhile counts: before a flush
                # always, before a write now and then (it only buffers).
                req._hub.refresh(now)
            req._check()

    def _send_buffered(self):
        frames = self._frames()
        # Sending may take long (a slow reader); the cancel that arrives
        # meanwhile is seen by the next write.
        self._send(*frames)

    def _end(self, last):
        if self._closed:
            return
        self._closed = True
        frames = self._frames()
        frames.append(last)
        self._send(*frames)

    def _take(self):
        buf = self._buf
        data = buf[0] if len(buf) == 1 else b"".join(buf)
        self._buf = []
        self._size = 0
        return data

    def _frames(self):
        chunks, self._cut = self._cut, []
        if self._buf:
            chunks.append(self._take())
        frames = []
        session = self._session
        for c in chunks:
            if len(c) <= protocol.CHUNK_SIZE:
                frames.append(protocol.chunk(session, c))
                continue
            view = memoryview(c)
            for i in range(0, len(c), protocol.CHUNK_SIZE):
                frames.append(protocol.chunk(session, view[i:i + protocol.CHUNK_SIZE]))
        return frames
