"""The gateway's journal: raw telemetry messages on disk until the store has them.

paho acknowledges a QoS 1 message to the broker as soon as the message callback
returns, and a QoS 0 message is never acknowledged at all: either way the broker
forgets it. The gateway batches points in memory for up to a second, so without
this journal a killed gateway would lose that batch. Each message is appended
here (one `write`, in the kernel's page cache, which outlives a killed process)
before the callback returns; a segment is deleted once every message in it is in
the store or its spool. A gateway that starts and finds segments replays them
first. Replaying a message twice is harmless: a point with the same series and
time replaces the stored one.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from pathlib import Path

_HEADER = struct.Struct(">II")


class Journal:
    def __init__(self, directory: Path, name: str) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self._dir = directory
        self._name = name
        found = sorted(self._segments())
        self.leftovers: list[int] = found
        self._current = (found[-1] + 1) if found else 1
        self._fd = self._open(self._current)

    def _path(self, number: int) -> Path:
        return self._dir / f"{self._name}.{number:08d}.journal"

    def _segments(self) -> Iterator[int]:
        prefix = f"{self._name}."
        for path in self._dir.glob(f"{self._name}.*.journal"):
            middle = path.name.removeprefix(prefix).removesuffix(".journal")
            if middle.isdigit():
                yield int(middle)

    def _open(self, number: int) -> int:
        return os.open(self._path(number), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)

    def append(self, topic: str, payload: bytes) -> None:
        name = topic.encode()
        # One write per record: a kill between two writes leaves whole records only.
        os.write(self._fd, _HEADER.pack(len(name), len(payload)) + name + payload)

    def rotate(self) -> int:
        """Close the current segment and start a new one; the closed one's number."""
        closed = self._current
        os.close(self._fd)
        self._current += 1
        self._fd = self._open(self._current)
        return closed

    def done(self, upto: int) -> None:
        """Every message in segments up to `upto` is stored: forget them."""
        for number in list(self._segments()):
            if number <= upto and number != self._current:
                self._path(number).unlink(missing_ok=True)
        self.leftovers = [n for n in self.leftovers if n > upto]

    def read(self, number: int) -> Iterator[tuple[str, bytes]]:
        return read_segment(self._path(number))

    def close(self) -> None:
        os.close(self._fd)


def read_segment(path: Path) -> Iterator[tuple[str, bytes]]:
    """The (topic, payload) records of one segment file, oldest first."""
    data = path.read_bytes()
    at = 0
    while at + _HEADER.size <= len(data):
        name_len, payload_len = _HEADER.unpack_from(data, at)
        start = at + _HEADER.size
        end = start + name_len + payload_len
        if end > len(data):  # torn last record: the process died inside a write
            return
        yield data[start : start + name_len].decode(), data[start + name_len : end]
        at = end
