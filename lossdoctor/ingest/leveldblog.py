"""The LevelDB log framing W&B (``run-<id>.wandb``) and SwanLab 0.8+ (``.swanlab``) write
their run records in (W&B ``sdk/internal/datastore.py``; SwanLab's store borrows it).

A 7-byte file header (4-byte ident, uint16 magic, uint8 version), then 32 KiB blocks of
records: ``uint32 crc32(type + data)``, ``uint16 length``, ``uint8 type`` (1 full, 2 first,
3 middle, 4 last), data.  Fewer than 7 bytes left in a block are zero padding.  A record
cut off at the end is a file still being written: read up to it.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field

from lossdoctor.errors import InputError
from lossdoctor.ingest.sniff import HEADER_LEN, log_ident

BLOCK_LEN = 32768
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4
_TYPE_CRC = {kind: zlib.crc32(bytes([kind])) for kind in (FULL, FIRST, MIDDLE, LAST)}
_HEAD = struct.Struct("<IHB")


@dataclass
class Records:
    """The payloads of a log file, and what the reader noticed."""

    payloads: list[bytes] = field(default_factory=list)
    bad: int = 0
    truncated: bool = False


def read_records(data: bytes, *, source: str) -> Records:
    """Return the record payloads of a LevelDB-log file.

    Raises :class:`InputError` when the file header is not a known one.
    """
    if log_ident(data) is None:
        raise InputError("not a W&B or SwanLab run file (bad header)", path=source)
    out = Records()
    pos, size = HEADER_LEN, len(data)
    pending: list[bytes] | None = None
    while pos < size:
        left = BLOCK_LEN - pos % BLOCK_LEN
        if left < HEADER_LEN:
            pos += left
            continue
        if pos + HEADER_LEN > size:
            out.truncated = True
            break
        crc, length, kind = _HEAD.unpack_from(data, pos)
        if kind == 0 and length == 0:  # zero padding (a flushed, unfinished block)
            pos += left
            continue
        end = pos + HEADER_LEN + length
        if end > size:
            out.truncated = True
            break
        payload = data[pos + HEADER_LEN : end]
        if kind not in _TYPE_CRC or zlib.crc32(payload, _TYPE_CRC[kind]) != crc:
            out.bad += 1
            pending = None
            pos += left  # resynchronise at the next block
            continue
        pos = end
        if kind == FULL:
            out.payloads.append(payload)
            pending = None
        elif kind == FIRST:
            pending = [payload]
        elif pending is not None:
            pending.append(payload)
            if kind == LAST:
                out.payloads.append(b"".join(pending))
                pending = None
    if pending is not None:
        out.truncated = True
    return out
