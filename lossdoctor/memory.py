"""Handing freed memory back to the system between the stages of reading a large log."""

from __future__ import annotations

import functools
import sys
from typing import Any


@functools.cache
def _libc() -> Any:
    """Return glibc's handle, or None where there is none (not Linux, musl, ...)."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.malloc_trim  # noqa: B018 - glibc only: musl has no malloc_trim
    except (OSError, AttributeError):
        return None
    return libc


def release_freed_memory() -> None:
    """Hand the pages of freed heap memory back to the system (glibc's ``malloc_trim``).

    A log read in blocks leaves the heap holed with the blocks' freed arrays; the table
    built next does not fit in the holes, so they stay resident beside it and the peak
    memory grows by their size.  Released, the holes cost nothing until used again.
    Nothing happens where the C library is not glibc."""
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)
