"""TensorBoard event files: TFRecord framing with CRC checks, every scalar kept.

Reads old-style ``simple_value`` scalars (PyTorch, tensorboardX) and new-style
tensor scalars (TF2/Keras, PyTorch ``new_style=True``).  No reservoir sampling:
every point is kept.  A record cut off at the end of a file (a writer still
running) ends the read quietly; a record with a bad checksum is skipped and
counted.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lossdoctor.errors import InputError
from lossdoctor.ingest.columns import ColumnHints
from lossdoctor.ingest.provenance import mark_smoothing
from lossdoctor.ingest.table import series_run
from lossdoctor.model import Run

#: TFRecord header: uint64 length + uint32 masked CRC of the length.
HEADER_BYTES = 12
FOOTER_BYTES = 4
_MASK_DELTA = 0xA282EAD8
_U32 = 0xFFFFFFFF
#: TensorProto dtypes of scalars: float, double, half, bfloat16, int32, int64.
DT_FLOAT, DT_DOUBLE, DT_INT32, DT_INT64, DT_BFLOAT16, DT_HALF = 1, 2, 3, 9, 14, 19
_SESSION_START = 1
_SCALAR_DATA_CLASS = 1


def masked_crc(data: bytes) -> int:
    """Return TensorFlow's masked CRC-32C of ``data``."""
    import google_crc32c

    crc = int(google_crc32c.value(data))
    return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & _U32


@dataclass
class TagPoints:
    """Points of one tag, in file order."""

    steps: list[float] = field(default_factory=list)
    values: list[float] = field(default_factory=list)


@dataclass
class EventScalars:
    """Every scalar tag of one or more event files, with what the reader noticed."""

    tags: dict[str, TagPoints] = field(default_factory=dict)
    bad_records: int = 0
    truncated: bool = False
    restarts: int = 0
    notes: list[str] = field(default_factory=list)


def _tensor_scalar(tensor: object) -> float | None:
    """Return the single value of a scalar tensor, or None when it is not one."""
    for name in ("float_val", "double_val", "int_val", "int64_val"):
        seq = getattr(tensor, name)
        if len(seq) == 1:
            return float(seq[0])
    dtype = int(getattr(tensor, "dtype"))  # noqa: B009 - protobuf attribute
    half = getattr(tensor, "half_val")  # noqa: B009
    if len(half) == 1:
        raw16 = np.array([half[0]], dtype=np.uint16)
        if dtype == DT_BFLOAT16:
            return float((raw16.astype(np.uint32) << 16).view(np.float32)[0])
        return float(raw16.view(np.float16)[0])
    content: bytes = getattr(tensor, "tensor_content")  # noqa: B009
    layouts = {DT_FLOAT: "<f4", DT_DOUBLE: "<f8", DT_INT32: "<i4", DT_INT64: "<i8", DT_HALF: "<f2"}
    if dtype in layouts and len(content) == np.dtype(layouts[dtype]).itemsize:
        return float(np.frombuffer(content, dtype=layouts[dtype])[0])
    if dtype == DT_BFLOAT16 and len(content) == 2:
        bits = np.frombuffer(content, dtype="<u2").astype(np.uint32) << 16
        return float(bits.view(np.float32)[0])
    return None


def read_event_bytes(data: bytes, into: EventScalars, *, source: str) -> None:
    """Add the scalars of one event file's bytes to ``into``."""
    import google_crc32c

    from lossdoctor.ingest.tfevents_schema import event_class

    parse = event_class().FromString
    crc32c = google_crc32c.value
    unpack = struct.unpack_from
    scalar_tags: set[str] = set()
    other_tags: set[str] = set()
    tags = into.tags
    pos, size = 0, len(data)
    while pos < size:
        if pos + HEADER_BYTES > size:
            into.truncated = True
            break
        length, length_crc = unpack("<QI", data, pos)
        crc = crc32c(data[pos : pos + 8])
        if (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & _U32 != length_crc:
            into.bad_records += 1
            into.notes.append(
                f"{source}: record framing is corrupt at byte {pos}: read stopped there"
            )
            break
        start = pos + HEADER_BYTES
        end = start + length
        if end + FOOTER_BYTES > size:
            into.truncated = True
            break
        payload = data[start:end]
        (data_crc,) = unpack("<I", data, end)
        pos = end + FOOTER_BYTES
        crc = crc32c(payload)
        if (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & _U32 != data_crc:
            into.bad_records += 1
            continue
        try:
            event = parse(payload)
        except Exception:
            into.bad_records += 1
            continue
        kind = event.WhichOneof("what")
        if kind != "summary":
            if kind == "session_log" and event.session_log.status == _SESSION_START:
                into.restarts += 1
            continue
        step = float(event.step)
        for value in event.summary.value:
            tag = value.tag
            if tag not in scalar_tags and value.HasField("metadata"):
                plugin = value.metadata.plugin_data.plugin_name
                if plugin == "scalars" or value.metadata.data_class == _SCALAR_DATA_CLASS:
                    scalar_tags.add(tag)
                elif plugin:
                    other_tags.add(tag)
            which = value.WhichOneof("value")
            if which == "simple_value":
                number: float | None = value.simple_value
            elif which == "tensor" and tag not in other_tags:
                number = _tensor_scalar(value.tensor)
            else:
                continue
            if number is None:
                continue
            points = tags.get(tag)
            if points is None:
                points = tags[tag] = TagPoints()
            points.steps.append(step)
            points.values.append(number)
    if pos == 0 and size and not into.tags:
        raise InputError("not a TensorBoard event file (no whole record)", path=source)


def read_event_files(paths: list[Path], *, prefixes: list[str] | None = None) -> EventScalars:
    """Return the scalars of event files (tags prefixed per file when ``prefixes`` given).

    Files are read in name order (their names start with the creation time).
    """
    scalars = EventScalars()
    order = sorted(
        range(len(paths)), key=lambda i: (prefixes[i] if prefixes else "", paths[i].name)
    )
    for i in order:
        path = paths[i]
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise InputError(exc.strerror or "cannot be read", path=str(path)) from None
        part = EventScalars()
        read_event_bytes(data, part, source=str(path))
        prefix = prefixes[i] if prefixes else ""
        for tag, points in part.tags.items():
            merged = scalars.tags.setdefault(f"{prefix}{tag}", TagPoints())
            merged.steps.extend(points.steps)
            merged.values.extend(points.values)
        scalars.bad_records += part.bad_records
        scalars.truncated |= part.truncated
        scalars.restarts += part.restarts
        scalars.notes.extend(part.notes)
    return scalars


def looks_like_tfrecord(data: bytes) -> bool:
    """Return True when ``data`` starts with a TFRecord header whose length CRC checks out."""
    if len(data) < HEADER_BYTES:
        return False
    (length_crc,) = struct.unpack_from("<I", data, 8)
    return bool(masked_crc(data[:8]) == length_crc)


def scalars_to_run(scalars: EventScalars, *, source: str, hints: ColumnHints | None) -> Run:
    """Return the run made of the scalar tags of event files."""
    if not scalars.tags:
        raise InputError("the event files hold no scalars", path=source)
    columns = {
        tag: (np.asarray(p.steps, dtype=np.float64), np.asarray(p.values, dtype=np.float64))
        for tag, p in scalars.tags.items()
    }
    notes = list(scalars.notes)
    if scalars.truncated:
        notes.append("the last record is cut off (file still being written?): read up to it")
    if scalars.bad_records:
        notes.append(f"{scalars.bad_records} records with a bad checksum were skipped")
    run = series_run(columns, source=source, reader="tfevents", hints=hints, notes=notes)
    return mark_smoothing(run, set(columns))
