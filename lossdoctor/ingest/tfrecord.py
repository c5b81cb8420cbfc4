"""TFRecord framing, as much as telling an event file from other input needs: the
header's layout and TensorFlow's masked CRC-32C.  Kept apart from
:mod:`lossdoctor.ingest.tfevents` (the event reader) so that sniffing a text log does
not import the reader."""

from __future__ import annotations

import functools
import struct

import numpy as np
import numpy.typing as npt

from lossdoctor.model import IntArray

#: TFRecord header: uint64 length + uint32 masked CRC of the length.
HEADER_BYTES = 12
FOOTER_BYTES = 4
_MASK_DELTA = 0xA282EAD8


def mask(crc: npt.NDArray[np.uint32]) -> npt.NDArray[np.uint32]:
    """Return TensorFlow's mask of CRC-32C values (rotate right by 15, add a constant)."""
    return np.asarray(((crc >> 15) | (crc << 17)) + np.uint32(_MASK_DELTA), dtype=np.uint32)


def masked_crc(data: bytes) -> int:
    """Return TensorFlow's masked CRC-32C of ``data`` (an unsigned 32-bit number)."""
    import google_crc32c

    return int(mask(np.array([google_crc32c.value(data)], dtype=np.uint32))[0])


@functools.cache
def _crc_table() -> npt.NDArray[np.uint32]:
    """Return the byte table of CRC-32C (Castagnoli, reflected)."""
    table = np.arange(256, dtype=np.uint32)
    for _ in range(8):
        table = np.where(table & 1, (table >> 1) ^ np.uint32(0x82F63B78), table >> 1)
    return table.astype(np.uint32)


def masked_crc_at(
    raw: npt.NDArray[np.uint8], starts: IntArray, width: int
) -> npt.NDArray[np.uint32]:
    """Return TensorFlow's masked CRC-32C of the ``width`` bytes at each of ``starts``
    (what :func:`masked_crc` returns for each, a byte at a time over all of them)."""
    table = _crc_table()
    crc = np.full(starts.shape[0], 0xFFFFFFFF, dtype=np.uint32)
    for offset in range(width):
        crc = table[(crc ^ raw[starts + offset]) & 0xFF] ^ (crc >> 8)
    crc ^= np.uint32(0xFFFFFFFF)
    return mask(crc)


def looks_like_tfrecord(data: bytes) -> bool:
    """Return True when ``data`` starts with a TFRecord header whose length CRC checks out
    (computed here, not by google_crc32c: every input is looked at, few are event files)."""
    if len(data) < HEADER_BYTES:
        return False
    (length_crc,) = struct.unpack_from("<I", data, 8)
    raw = np.frombuffer(data, dtype=np.uint8, count=8)
    return bool(masked_crc_at(raw, np.zeros(1, dtype=np.int64), 8)[0] == length_crc)
