"""Shared helpers: the runtime on sys.path, a recording transport."""

import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from cocaine import protocol  # noqa: E402


class Sink:
    """Stands for the socket: records each send() call's frames, decoded."""

    def __init__(self):
        self.writes = []

    def __call__(self, *frames):
        self.writes.append([protocol.decode(f[4:]) for f in frames])

    @property
    def frames(self):
        return [f for w in self.writes for f in w]

    def body(self):
        return b"".join(f[2] for f in self.frames if f[0] == protocol.CHUNK)
