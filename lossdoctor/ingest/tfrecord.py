"""TFRecord framing, as much as telling an event file from other input needs: the
header's layout and TensorFlow's masked CRC-32C.  Kept apart from
:mod:`lossdoctor.ingest.tfevents` (the event reader) so that sniffing a text log does
not import the reader."""

from __future__ import annotations

import struct

import numpy as np
import numpy.typing as npt

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


def looks_like_tfrecord(data: bytes) -> bool:
    """Return True when ``data`` starts with a TFRecord header whose length CRC checks out."""
    if len(data) < HEADER_BYTES:
        return False
    (length_crc,) = struct.unpack_from("<I", data, 8)
    return bool(masked_crc(data[:8]) == length_crc)
