"""Line sources for live input: a pipe (stdin or a child's output) and a growing file
(followed like ``tail -F``).  Each runs a thread that puts events on a queue:
("lines", [text, ...]) as lines complete, ("reset", reason) when a followed file was
truncated or replaced, and ("eof", name) at the end of a pipe."""

from __future__ import annotations

import os
import queue
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

Event = tuple[str, Any]
CHUNK = 1 << 16
#: Seconds between polls of a followed file.
POLL_SECONDS = 0.1
#: Bytes at the top of a followed file compared to notice a rewrite.
HEAD_BYTES = 256


def split_lines(buffer: bytes, chunk: bytes) -> tuple[list[str], bytes]:
    """Return the complete lines in ``buffer + chunk`` (split on \\n and \\r) and the rest."""
    data = buffer + chunk
    if b"\r" in data:
        data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    cut = data.rfind(b"\n")
    if cut < 0:
        return [], data
    lines = data[:cut].decode("utf-8", errors="replace").split("\n")
    return lines, data[cut + 1 :]


def pipe_reader(
    fd: int, events: queue.Queue[Event], name: str, tee: Callable[[bytes], None] | None = None
) -> threading.Thread:
    """Start a thread that reads ``fd`` to its end, teeing raw bytes when asked."""

    def loop() -> None:
        rest = b""
        while True:
            try:
                chunk = os.read(fd, CHUNK)
            except OSError:
                chunk = b""
            if not chunk:
                break
            if tee is not None:
                tee(chunk)
            lines, rest = split_lines(rest, chunk)
            if lines:
                events.put(("lines", lines))
        if rest:
            events.put(("lines", [rest.decode("utf-8", errors="replace")]))
        events.put(("eof", name))

    thread = threading.Thread(target=loop, name=f"read-{name}", daemon=True)
    thread.start()
    return thread


def file_follower(
    path: Path, events: queue.Queue[Event], stop: threading.Event
) -> threading.Thread:
    """Start a thread that follows ``path`` by name: waits for it to appear, reads what is
    appended, and starts again from the top when it is truncated, rewritten (its first
    bytes changed, as when Lightning rewrites ``metrics.csv`` with a new header) or
    replaced (rotation)."""

    def loop() -> None:
        handle = None
        inode = None
        head = b""
        rest = b""
        while not stop.is_set():
            if handle is None:
                try:
                    handle = path.open("rb")
                    inode = os.fstat(handle.fileno()).st_ino
                except OSError:
                    time.sleep(POLL_SECONDS)
                    continue
                head = b""
            if head:
                now = os.pread(handle.fileno(), len(head), 0)
                if now != head:
                    handle.seek(0)
                    head, rest = b"", b""
                    events.put(("reset", "rewritten"))
                    continue
            position = handle.tell()
            chunk = handle.read(CHUNK)
            if chunk:
                if position < HEAD_BYTES:
                    head = (head + chunk)[:HEAD_BYTES] if position == len(head) else head
                lines, rest = split_lines(rest, chunk)
                if lines:
                    events.put(("lines", lines))
                continue
            try:
                current = path.stat()
            except OSError:
                current = None
            if current is None or current.st_ino != inode:
                handle.close()
                handle, rest = None, b""
                if current is not None:
                    events.put(("reset", "replaced"))
                continue
            if current.st_size < handle.tell():
                handle.seek(0)
                head, rest = b"", b""
                events.put(("reset", "truncated"))
                continue
            time.sleep(POLL_SECONDS)
        if handle is not None:
            handle.close()

    thread = threading.Thread(target=loop, name="follow", daemon=True)
    thread.start()
    return thread
