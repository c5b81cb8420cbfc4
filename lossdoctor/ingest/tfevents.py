"""TensorBoard event files: TFRecord framing with CRC checks, every scalar kept.

Reads old-style ``simple_value`` scalars (PyTorch, tensorboardX) and new-style
tensor scalars (TF2/Keras, PyTorch ``new_style=True``).  No reservoir sampling:
every point is kept.  A record cut off at the end of a file (a writer still
running) ends the read quietly; a record with a bad checksum is skipped and
counted.
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from lossdoctor.arrays import unique_ints
from lossdoctor.errors import InputError
from lossdoctor.ingest.columns import ColumnHints
from lossdoctor.ingest.provenance import mark_smoothing
from lossdoctor.ingest.table import series_run
from lossdoctor.ingest.tfrecord import (
    FOOTER_BYTES,
    HEADER_BYTES,
    looks_like_tfrecord,
    masked_crc,
    masked_crc_at,
)
from lossdoctor.ingest.tfrecord import mask as _mask
from lossdoctor.model import BoolArray, FloatArray, IntArray, Run
from lossdoctor.safeio import open_regular
from lossdoctor.wording import counted

#: TensorProto dtypes of scalars: float, double, half, bfloat16, int32, int64.
DT_FLOAT, DT_DOUBLE, DT_INT32, DT_INT64, DT_BFLOAT16, DT_HALF = 1, 2, 3, 9, 14, 19
_SESSION_START = 1
_SCALAR_DATA_CLASS = 1


@dataclass
class TagPoints:
    """Points of one tag, in file order: the record number of each point (to merge the
    fast and the general decoder in order), its step and its value."""

    records: list[IntArray] = field(default_factory=list)
    steps: list[FloatArray] = field(default_factory=list)
    values: list[FloatArray] = field(default_factory=list)

    def add(self, records: IntArray, steps: FloatArray, values: FloatArray) -> None:
        """Add points (any order; :meth:`arrays` sorts them by record)."""
        self.records.append(records)
        self.steps.append(steps)
        self.values.append(values)

    def arrays(self) -> tuple[FloatArray, FloatArray]:
        """Return (steps, values) in file order."""
        if len(self.steps) == 1:
            return self.steps[0], self.values[0]
        order = np.argsort(np.concatenate(self.records), kind="stable")
        return np.concatenate(self.steps)[order], np.concatenate(self.values)[order]


@dataclass
class EventScalars:
    """Every scalar tag of one or more event files, with what the reader noticed."""

    tags: dict[str, TagPoints] = field(default_factory=dict)
    bad_records: int = 0
    truncated: bool = False
    restarts: int = 0
    notes: list[str] = field(default_factory=list)
    #: Records read so far (numbers the records of several files in order).
    records: int = 0


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


@dataclass
class _Frames:
    """Where the whole records of an event file are: payload offsets and lengths."""

    starts: IntArray
    lengths: IntArray
    truncated: bool
    #: Byte offset of a record whose length field fails its checksum (-1: none).
    corrupt_at: int = -1


def _frame(data: bytes) -> _Frames:
    """Return the records of TFRecord ``data``, their length checksums verified.

    Writers repeat themselves (the same tags every step), so after each record the
    lengths of the last few records are tried as a repeating pattern: the length
    fields where the pattern puts the next records are read all at once and every
    record that matches is taken; the rest are walked one by one.
    """
    raw = np.frombuffer(data, dtype=np.uint8)
    unpack = struct.Struct("<Q").unpack_from
    heads: list[IntArray] = []
    lengths: list[IntArray] = []
    walked_heads: list[int] = []  # records walked one by one since the last pattern
    walked_lengths: list[int] = []
    recent: list[int] = []  # the last few lengths, newest last
    pos, size = 0, len(data)
    truncated = False
    while pos < size:
        taken = _take_pattern(raw, pos, recent) if len(recent) >= 2 else None
        if taken is not None:
            heads += [np.array(walked_heads, dtype=np.int64), taken[0]]
            lengths += [np.array(walked_lengths, dtype=np.int64), taken[1]]
            walked_heads, walked_lengths = [], []
            recent = [*recent, *taken[1][-PATTERN_MAX:].tolist()][-2 * PATTERN_MAX :]
            pos = int(taken[0][-1] + HEADER_BYTES + taken[1][-1] + FOOTER_BYTES)
            continue
        if pos + HEADER_BYTES > size:
            truncated = True
            break
        (length,) = unpack(data, pos)
        if pos + HEADER_BYTES + length + FOOTER_BYTES > size:
            truncated = True
            break
        walked_heads.append(pos)
        walked_lengths.append(length)
        recent = [*recent, length][-2 * PATTERN_MAX :]
        pos += HEADER_BYTES + length + FOOTER_BYTES
    heads.append(np.array(walked_heads, dtype=np.int64))
    lengths.append(np.array(walked_lengths, dtype=np.int64))
    head = np.concatenate(heads)
    length_arr = np.concatenate(lengths)
    good = masked_crc_at(raw, head, 8) == _u32_at(raw, head + 8)
    if not good.all():
        first = int(np.argmin(good))
        return _Frames(head[:first] + HEADER_BYTES, length_arr[:first], False, int(head[first]))
    return _Frames(head + HEADER_BYTES, length_arr, truncated)


#: Longest repeating pattern of record lengths tried (tags written per step).
PATTERN_MAX = 8
#: Most records taken by one pattern read.
PATTERN_BLOCK = 1 << 16


def _take_pattern(
    raw: npt.NDArray[np.uint8], pos: int, recent: list[int]
) -> tuple[IntArray, IntArray] | None:
    """Return (heads, lengths) of the records from ``pos`` on that continue a repeating
    pattern of the ``recent`` lengths, or None when the next record breaks it."""
    size = raw.shape[0]
    for period in range(1, min(PATTERN_MAX, len(recent) // 2) + 1):
        pattern = recent[-period:]
        if pattern != recent[-2 * period : -period]:
            continue
        sizes = np.array(pattern, dtype=np.int64) + HEADER_BYTES + FOOTER_BYTES
        stride = int(sizes.sum())
        cycles = min((size - pos) // stride, max(1, PATTERN_BLOCK // period))
        if cycles < 1:
            return None
        offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        heads = (pos + np.arange(cycles, dtype=np.int64)[:, None] * stride + offsets).ravel()
        fields = raw[heads[:, None] + np.arange(8)]
        found = np.ascontiguousarray(fields).view("<u8").ravel().astype(np.int64)
        expected = np.tile(np.array(pattern, dtype=np.int64), cycles)
        matching = found == expected
        count = int(matching.shape[0]) if matching.all() else int(np.argmin(matching))
        if count == 0:
            return None
        return heads[:count], expected[:count]
    return None


def _u32_at(raw: npt.NDArray[np.uint8], starts: IntArray) -> npt.NDArray[np.uint32]:
    """Return the little-endian uint32 at each of ``starts``."""
    out = np.zeros(starts.shape[0], dtype=np.uint32)
    for offset in range(4):
        out |= raw[starts + offset].astype(np.uint32) << np.uint32(8 * offset)
    return out


def read_event_bytes(
    data: bytes, into: EventScalars, *, source: str, offset: int = 0, more: bool = False
) -> None:
    """Add the scalars of one event file's bytes to ``into``.

    Records are framed in one pass; the common shape (a wall time, a step and one
    scalar stored as the record's last four bytes) is then checksummed and decoded
    for all records at once, and any other record goes through protobuf one by one.
    ``offset``: where ``data`` starts in the file; ``more``: records of the file were
    read before (``data`` is its last part).
    """
    frames = _frame(data)
    if frames.corrupt_at >= 0:
        into.bad_records += 1
        into.notes.append(
            f"{source}: record framing is corrupt at byte {offset + frames.corrupt_at}: "
            "read stopped there"
        )
    into.truncated |= frames.truncated
    _decode_frames(data, frames, into)
    if not frames.starts.size and data and frames.corrupt_at < 0 and not into.tags and not more:
        raise InputError("not a TensorBoard event file (no whole record)", path=source)


#: Bytes of an event file framed and decoded at a time when it is read as a stream.
EVENT_BLOCK_BYTES = 16 << 20
#: Longest record read from a stream (a length past it is taken as the end of the records).
MAX_RECORD_BYTES = 256 << 20


def read_event_stream(
    read: Callable[[int], bytes], head: bytes, into: EventScalars, *, source: str
) -> None:
    """Add the scalars of an event file given as ``head`` (its first bytes) and then
    ``read(n)`` (the rest, ``b""`` at its end) to ``into``, as :func:`read_event_bytes`
    reads the whole file, a block of about :data:`EVENT_BLOCK_BYTES` of whole records at
    a time: memory holds a block and the scalars, never the file.
    """
    pending = bytearray(head)
    offset = 0  # where pending starts in the file
    want = EVENT_BLOCK_BYTES
    more = False
    while True:
        while len(pending) < want:
            piece = read(max(want - len(pending), 1 << 20))
            if not piece:
                break
            pending += piece
        if len(pending) < want:
            break  # the end: the rest is read as the whole reader reads a file's end
        data = bytes(pending)
        frames = _frame(data)
        if frames.corrupt_at >= 0:
            break
        if not frames.starts.size:  # one record longer than the block, or a bad length
            (length,) = struct.unpack_from("<Q", data)
            if not looks_like_tfrecord(data) or length > MAX_RECORD_BYTES:
                break
            want = HEADER_BYTES + length + FOOTER_BYTES
            continue
        end = int(frames.starts[-1] + frames.lengths[-1] + FOOTER_BYTES)
        _decode_frames(data, frames, into)
        more = True
        del pending[:end]
        offset += end
        want = EVENT_BLOCK_BYTES
    read_event_bytes(bytes(pending), into, source=source, offset=offset, more=more)


def _decode_frames(data: bytes, frames: _Frames, into: EventScalars) -> None:
    """Add the scalars of the records ``frames`` finds in ``data`` to ``into``."""
    import google_crc32c

    first_record = into.records
    into.records += int(frames.starts.shape[0])
    raw = np.frombuffer(data, dtype=np.uint8)
    stored = _u32_at(raw, frames.starts + frames.lengths)
    done = _decode_common(data, frames, stored, into, first_record)
    rest = np.flatnonzero(~done)
    if rest.size:
        crc32c = google_crc32c.value
        starts, ends = frames.starts[rest].tolist(), (frames.starts + frames.lengths)[rest]
        computed = np.fromiter(
            (crc32c(data[a:b]) for a, b in zip(starts, ends.tolist(), strict=True)),
            dtype=np.uint32,
            count=rest.shape[0],
        )
        intact = _mask(computed) == stored[rest]
        into.bad_records += int(np.count_nonzero(~intact))
        _decode_each(data, frames, rest[intact], into, first_record)


def _decode_each(
    data: bytes, frames: _Frames, which: IntArray, into: EventScalars, first_record: int
) -> None:
    """Decode records ``which`` one by one with protobuf (any shape of event)."""
    from lossdoctor.ingest.tfevents_schema import event_class

    parse = event_class().FromString
    found: dict[str, tuple[list[int], list[float], list[float]]] = {}
    other_tags: set[str] = set()
    for index in which.tolist():
        start = int(frames.starts[index])
        try:
            event = parse(data[start : start + int(frames.lengths[index])])
        except Exception:
            into.bad_records += 1
            continue
        kind = event.WhichOneof("what")
        if kind != "summary":
            if kind == "session_log" and event.session_log.status == _SESSION_START:
                into.restarts += 1
            continue
        for tag, number in _event_scalars(event, other_tags):
            records, steps, values = found.setdefault(tag, ([], [], []))
            records.append(first_record + index)
            steps.append(float(event.step))
            values.append(number)
    for tag, (records, steps, values) in found.items():
        into.tags.setdefault(tag, TagPoints()).add(
            np.array(records, dtype=np.int64),
            np.array(steps, dtype=np.float64),
            np.array(values, dtype=np.float64),
        )


def _event_scalars(event: Any, other_tags: set[str]) -> list[tuple[str, float]]:
    """Return the (tag, value) scalars of a summary event; tags of other plugins
    (histograms, images, text) are remembered in ``other_tags`` and skipped."""
    out: list[tuple[str, float]] = []
    for value in event.summary.value:
        tag = value.tag
        if value.HasField("metadata"):
            plugin = value.metadata.plugin_data.plugin_name
            if plugin and plugin != "scalars" and value.metadata.data_class != _SCALAR_DATA_CLASS:
                other_tags.add(tag)
        which = value.WhichOneof("value")
        if which == "simple_value":
            number: float | None = value.simple_value
        elif which == "tensor" and tag not in other_tags:
            number = _tensor_scalar(value.tensor)
        else:
            continue
        if number is not None:
            out.append((tag, number))
    return out


def _decode_common(
    data: bytes, frames: _Frames, stored: npt.NDArray[np.uint32], into: EventScalars, first: int
) -> BoolArray:
    """Checksum and decode, all at once, the records laid out as ``wall_time, step,
    summary`` whose summary holds one scalar stored as the record's last four bytes (a
    float32); return which records were handled (decoded, or counted as corrupt).

    Records are grouped by length and by the length of their step; within a group the
    bytes after the step and before the value (the tag and the summary's framing) are
    the record's template.  A template is trusted once protobuf decodes one intact
    record of it to the same step, tag and value; the rest of the group then differs
    from that record only in the wall time, step and value bytes, so its checksums
    follow from the sample's (CRC-32C is affine in the message bits).
    """
    from lossdoctor.ingest.tfevents_schema import event_class

    raw = np.frombuffer(data, dtype=np.uint8)
    starts, lengths = frames.starts, frames.lengths
    done = np.zeros(starts.shape[0], dtype=bool)
    index = np.flatnonzero(lengths >= 1 + 8 + 1 + 1 + 1 + 4)
    index = index[(raw[starts[index]] == 0x09) & (raw[starts[index] + 9] == 0x10)]
    index = index[starts[index] + 20 <= raw.shape[0]]
    if not index.size:
        return done
    ten = np.lib.stride_tricks.sliding_window_view(raw, 10)
    varint = ten[starts[index] + 10].astype(np.uint64)
    more = varint >= 0x80
    width = np.argmin(more, axis=1) + 1
    whole = ~more.all(axis=1)
    shifts = np.arange(10, dtype=np.uint64) * np.uint64(7)
    keep = np.arange(10)[None, :] < width[:, None]
    step = np.bitwise_or.reduce(
        np.where(keep, (varint & np.uint64(0x7F)) << shifts, np.uint64(0)), axis=1
    )
    index, step, width = index[whole], step[whole], width[whole]
    parse = event_class().FromString
    group_keys = lengths[index] * 16 + width
    for key in unique_ints(group_keys).tolist():
        length, varint_len = divmod(key, 16)
        begin = 10 + varint_len
        if length - 4 <= begin:
            continue
        in_group = group_keys == key
        rows, group_steps = index[in_group], step[in_group]
        body = np.lib.stride_tricks.sliding_window_view(raw, length)[starts[rows]]
        remaining = np.ones(rows.shape[0], dtype=bool)
        for _ in range(MAX_TEMPLATES):
            if not remaining.any():
                break
            lead = int(np.argmax(remaining))
            at = _value_at(parse, body[lead].tobytes(), int(group_steps[lead]), begin)
            template = np.ones(length, dtype=bool)
            template[:begin] = False
            template[at : at + 4] = False
            same = remaining & (body[:, template] == body[lead, template]).all(axis=1)
            remaining &= ~same
            members = np.flatnonzero(same)
            intact = _affine_crc_check(body[members], stored[rows[members]], begin, at)
            if intact is None:
                continue  # no intact sample to trust: protobuf reads them one by one
            sample = int(members[int(np.argmax(intact))])
            scalar = _sample_scalar(parse, body[sample].tobytes(), int(group_steps[sample]))
            if scalar is None:
                continue
            tag, number = scalar
            values = np.ascontiguousarray(body[members, at : at + 4]).view("<f4").ravel()
            if not _same_float32(number, float(values[sample == members].item())):
                continue
            done[rows[members]] = True
            into.bad_records += int(np.count_nonzero(~intact))
            good = members[intact]
            into.tags.setdefault(tag, TagPoints()).add(
                rows[good] + first,
                group_steps[good].view(np.int64).astype(np.float64),
                values[intact].astype(np.float64),
            )
    return done


def _value_at(parse: Any, payload: bytes, step: int, begin: int) -> int:
    """Return where a record's float32 scalar starts: its last four bytes (``simple_value``,
    ``float_val``), or, when a field follows the value (TF2 writes the summary metadata
    after the tensor), after the tensor's 4-byte ``tensor_content`` or ``float_val``
    field header."""
    end = len(payload) - 4
    scalar = _sample_scalar(parse, payload, step)
    if scalar is None:
        return end
    bits = np.float32(scalar[1]).tobytes()
    if payload[end:] == bits:
        return end
    for header in _FLOAT_FIELDS:
        found = payload.rfind(header + bits, begin)
        if found >= 0:
            return found + len(header)
    return end


def _sample_scalar(parse: Any, payload: bytes, step: int) -> tuple[str, float] | None:
    """Return the (tag, value) of a record that is a summary of exactly one scalar at
    ``step``, or None."""
    try:
        event = parse(payload)
    except Exception:
        return None
    if event.WhichOneof("what") != "summary" or int(event.step) != step:
        return None
    scalars = _event_scalars(event, set())
    return scalars[0] if len(scalars) == 1 else None


#: TensorProto field headers of one float32: ``tensor_content`` (4), packed ``float_val`` (5).
_FLOAT_FIELDS = (b"\x22\x04", b"\x2a\x04")
#: Templates tried per group of records of one length (the rest go to protobuf).
MAX_TEMPLATES = 64


def _varying(begin: int, at: int) -> list[int]:
    """Return the byte positions where records of one template differ: the wall time
    (1-8), the step (10 to ``begin``) and the value (four bytes from ``at``)."""
    return [*range(1, 9), *range(10, begin), *range(at, at + 4)]


def _affine_crc_check(
    body: npt.NDArray[np.uint8], stored: npt.NDArray[np.uint32], begin: int, at: int
) -> BoolArray | None:
    """Return which rows of ``body`` (records equal outside their varying bytes) match
    their ``stored`` masked CRC-32C, or None when none of the first few does.

    One row with a correct checksum is found by computing it; every other row's
    checksum is that one's xor the effect of its differing bytes, looked up per byte
    position (the effect of a byte on CRC-32C does not depend on the other bytes).
    """
    import google_crc32c

    length = body.shape[1]
    rows = range(min(body.shape[0], 8))
    base = next((r for r in rows if masked_crc(body[r].tobytes()) == stored[r]), -1)
    if base < 0:
        return None
    crc = np.full(body.shape[0], google_crc32c.value(body[base].tobytes()), dtype=np.uint32)
    for position in _varying(begin, at):
        diff = body[:, position] ^ body[base, position]
        if diff.any():
            crc ^= _byte_effect(length, position)[diff]
    return np.asarray(_mask(crc) == stored, dtype=bool)


@functools.cache
def _byte_effect(length: int, position: int) -> npt.NDArray[np.uint32]:
    """Return, for each byte value, how much it changes the CRC-32C of a ``length``-byte
    message when xored in at ``position`` (the same whatever the other bytes are)."""
    import google_crc32c

    zero = google_crc32c.value(bytes(length))
    pad_before, pad_after = bytes(position), bytes(length - position - 1)
    return np.array(
        [google_crc32c.value(pad_before + bytes([b]) + pad_after) ^ zero for b in range(256)],
        dtype=np.uint32,
    )


def _same_float32(a: float, b: float) -> bool:
    """Return True when ``a`` and ``b`` are the same float32 (NaN equal to NaN)."""
    x, y = np.float32(a), np.float32(b)
    return bool(x.tobytes() == y.tobytes() or (np.isnan(x) and np.isnan(y)))


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
        part = EventScalars(records=scalars.records)
        with open_regular(path, str(path)) as handle:
            read_event_stream(handle.read, b"", part, source=str(path))
        scalars.records = part.records
        prefix = prefixes[i] if prefixes else ""
        for tag, points in part.tags.items():
            merged = scalars.tags.setdefault(f"{prefix}{tag}", TagPoints())
            merged.records.extend(points.records)
            merged.steps.extend(points.steps)
            merged.values.extend(points.values)
        scalars.bad_records += part.bad_records
        scalars.truncated |= part.truncated
        scalars.restarts += part.restarts
        scalars.notes.extend(part.notes)
    return scalars


def scalars_to_run(scalars: EventScalars, *, source: str, hints: ColumnHints | None) -> Run:
    """Return the run made of the scalar tags of event files."""
    if not scalars.tags:
        raise InputError("the event files hold no scalars", path=source)
    columns = {tag: points.arrays() for tag, points in scalars.tags.items()}
    notes = list(scalars.notes)
    if scalars.truncated:
        notes.append("the last record is cut off (file still being written?): read up to it")
    if scalars.bad_records:
        bad = scalars.bad_records
        was = "was" if bad == 1 else "were"
        notes.append(f"{counted(bad, 'record')} with a bad checksum {was} skipped")
    run = series_run(columns, source=source, reader="tfevents", hints=hints, notes=notes)
    return mark_smoothing(run, set(columns))
