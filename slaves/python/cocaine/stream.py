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


class Request:
    """The request body of one session, readable as it arrives.

    read() returns the whole body, read(n) blocks for n bytes (fewer only at
    the end), iteration yields chunks as the engine forwards them. Reads raise
    Cancelled once the engine cancelled the session.
    """

    def __init__(self, event):
        self.event = event
        self._cond = threading.Condition()
        self._chunks = collections.deque()
        self._size = 0
        self._done = False
        self._cancelled = threading.Event()
        self._reason = ""

    # Called by the reader thread; never blocks on the handler.
    def _push(self, data):
        if not data:
            return
        with self._cond:
            self._chunks.append(data)
            self._size += len(data)
            self._cond.notify_all()

    def _finish(self):
        with self._cond:
            self._done = True
            self._cond.notify_all()

    def _cancel(self, reason):
        with self._cond:
            self._reason = reason
            self._cancelled.set()
            self._done = True
            self._cond.notify_all()

    def _unread(self, data):
        """Put data back in front of the body (the WSGI adapter's leftovers)."""
        if data:
            with self._cond:
                self._chunks.appendleft(bytes(data))
                self._size += len(data)

    @property
    def cancelled(self):
        """True once the engine cancelled the session; a handler doing long
        work checks it (or calls wait_cancelled) and gives up."""
        return self._cancelled.is_set()

    def wait_cancelled(self, timeout=None):
        """Sleep up to timeout seconds, waking early on cancellation.
        Returns True if the session was cancelled."""
        return self._cancelled.wait(timeout)

    def _check(self):
        if self._cancelled.is_set():
            raise Cancelled(self._reason)

    def _wait(self, enough):
        """Wait, holding the lock, until enough() or the body ended."""
        while not enough() and not self._done:
            self._cond.wait()
        self._check()

    def _take(self, n):
        out = []
        while n > 0 and self._chunks:
            c = self._chunks.popleft()
            if len(c) > n:
                self._chunks.appendleft(c[n:])
                c = c[:n]
            out.append(c)
            n -= len(c)
            self._size -= len(c)
        return b"".join(out)

    def read(self, n=-1):
        """Read n bytes, or the rest of the body when n is negative or None.
        Returns b"" at the end."""
        with self._cond:
            if n is None or n < 0:
                self._wait(lambda: False)
                return self._take(self._size)
            self._wait(lambda: self._size >= n)
            return self._take(n)

    def readline(self, limit=-1):
        """Read up to and including the next b"\\n" (or limit bytes)."""
        with self._cond:
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
            with self._cond:
                self._wait(lambda: self._size > 0)
                if not self._chunks:
                    return
                c = self._chunks.popleft()
                self._size -= len(c)
            yield c


class Response:
    """The answer stream of one session.

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
        self._lock = threading.Lock()
        self._buf = bytearray()
        self._cut = []  # finished chunks not sent yet, see _end_chunk
        self._closed = False

    @property
    def closed(self):
        return self._closed

    def write(self, data):
        """Write bytes (or str, sent as UTF-8)."""
        if isinstance(data, str):
            data = data.encode("utf-8")
        elif not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError("response.write takes bytes or str, not %s" % type(data).__name__)
        with self._lock:
            self._usable()
            self._buf += data
            if len(self._buf) >= BUFFER_SIZE:
                self._send(*self._frames())

    def flush(self):
        """Send what is buffered now."""
        with self._lock:
            self._usable()
            frames = self._frames()
            if frames:
                self._send(*frames)

    def close(self):
        """End the stream. Closing twice is harmless."""
        self._end(protocol.choke(self._session))

    def _fail(self, code, message):
        """End the stream with an error after what is buffered, unless ended."""
        self._end(protocol.error(self._session, code, message))

    def _end_chunk(self):
        """Make what was written so far a chunk of its own, sent with the
        next flush or the end: the HTTP head must be the first chunk."""
        with self._lock:
            if self._buf:
                self._cut.append(bytes(self._buf))
                self._buf.clear()

    def _usable(self):
        if self._closed:
            raise RuntimeError("response already closed")
        if self._request is not None:
            self._request._check()

    def _end(self, last):
        with self._lock:
            if self._closed:
                return
            self._closed = True
            frames = self._frames()
            frames.append(last)
            self._send(*frames)

    def _frames(self):
        chunks, self._cut = self._cut, []
        if self._buf:
            chunks.append(bytes(self._buf))
            self._buf.clear()
        frames = []
        for c in chunks:
            for i in range(0, len(c), protocol.CHUNK_SIZE):
                frames.append(protocol.chunk(self._session, c[i:i + protocol.CHUNK_SIZE]))
        return frames
