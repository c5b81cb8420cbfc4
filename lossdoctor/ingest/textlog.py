"""Text logs and stdout captures: one record per line that carries values.

Understood: nanoGPT (``iter N: loss X``, ``step N: train loss X, val loss Y``),
build-nanogpt's ``log.txt`` (``N train X``, ``N val X``, ``N hella X``),
llm.c (``step 1/N | loss X``, ``s:N trl:X``, ``s:N tel:X``), Hugging Face Trainer
printed dicts (``{'loss': 2.1, 'grad_norm': nan, ...}``, values possibly quoted),
Megatron-LM (``iteration N/ M | ... lm loss: X |``, ``validation loss at iteration
N | lm loss value: X``), fairseq, mmengine/mmcv (``Epoch(train) [1][240/735] ...
loss: X``), detectron2's console, Keras progress bars (epoch-end lines with
``val_loss``), and generic ``key=value`` / ``key: value`` / ``key value |`` lines.
Logging prefixes (time stamps, levels, logger names) and ANSI colours are
stripped; carriage returns split lines.  Lines without values are skipped and
counted, never fatal.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np

from lossdoctor.errors import NotALogError
from lossdoctor.ingest.columns import ColumnHints
from lossdoctor.ingest.jsonlike import records_table
from lossdoctor.ingest.lines import strip_prefix
from lossdoctor.ingest.nanogpt_bulk import NanoGPTRows, nanogpt_rows
from lossdoctor.ingest.provenance import mark_smoothing
from lossdoctor.ingest.table import Column, Table, table_to_run
from lossdoctor.ingest.textlines import (
    GLOBAL_STEPS_NOTE,
    MAX_LINE_CHARS,
    LineState,
    ParsedLine,
    canonical,
    flush_lightning_bar,
    globalise_steps,
    has_loss,
    keras_epoch_end,
    keras_note,
    parse_line,
    valueless_note,
)
from lossdoctor.memory import release_freed_memory
from lossdoctor.model import FloatArray, IntArray, Run
from lossdoctor.wording import counted

#: Rows from which the memory a stage of reading freed is handed back to the system before
#: the next (:func:`~lossdoctor.memory.release_freed_memory`).
RELEASE_MIN_ROWS = 100_000

#: Characters of a log parsed at a time (bounds the memory of the per-line lists).
BLOCK_CHARS = 1 << 22
#: A log repeats one line shape.  Read by the generic dialect, a text is a log when at
#: least this many of its loss lines share their keys...
LOG_MIN_SAME_SHAPE = 3
#: ... and they are at least this share of its loss lines (notes and documents mention a
#: loss here and there, each time in other words).
LOG_MIN_SHAPE_SHARE = 0.5
#: A text is prose when fewer than this share of its non-blank lines carry values.
PROSE_VALUE_SHARE = 0.2
#: A file named on the command line that is not prose is refused only when it has at least
#: this many loss lines and fewer than this share of them share their keys.
NAMED_MIN_LOSS_LINES = 4
NAMED_MIN_SHAPE_SHARE = 0.25
#: A named file with fewer loss lines than LOG_MIN_SAME_SHAPE is a log only when they are
#: at least this share of its non-blank lines and name the loss in fewer words than
#: PROSE_KEY_WORDS ("Baseline run reached loss: 0.52" in a README is no 1-point run).
FEW_LINES_MIN_SHARE = 0.5
PROSE_KEY_WORDS = 3


#: nanoGPT training rows read in bulk from one block: steps, losses, line numbers.
FastPart = tuple[FloatArray, FloatArray, IntArray]


class TextLogReader:
    """Reads a text log a block of whole lines at a time (:meth:`feed`), then gives the
    table of its records (:meth:`table`).

    With ``fast``, the nanoGPT training lines of a block (the bulk of a nanoGPT log) are
    found by one regular expression and kept as arrays; every other line goes through
    :func:`parse_line` in order, so the table is the same as from parsing line by line.
    """

    def __init__(self, *, fast: bool = True) -> None:
        self.fast = fast
        self.state = LineState()
        self.n_lines = 0
        self.n_fast = 0
        self._fast: list[FastPart] = []

    def feed(self, text: str) -> None:
        """Read the lines of ``text``, split on ``\\n`` (its last line is taken as whole)."""
        lines = text.split("\n")
        if self.fast and "\x1b" not in text:
            found = nanogpt_rows(text.encode("utf-8", "surrogatepass"), max_line=MAX_LINE_CHARS)
            if found is not None:
                self._feed_rows(found, lines.__getitem__)
                return
        first = self.n_lines + 1
        for offset, raw in enumerate(lines):
            self._line(first + offset, raw)
        self.n_lines += len(lines)

    def feed_bytes(self, data: bytes, *, bom: bool = False, last: bool = True) -> bool:
        """Read the lines of ``data`` (UTF-8, split on ``\\n``; ``bom``: a byte-order mark
        may open it; unless it is the ``last`` block, its final line end ends its last
        line) as :meth:`feed` reads them decoded, and return True; or return False having
        read nothing, when it has no nanoGPT training line to read in bulk or holds a
        carriage return or colour code (decode it, then :meth:`feed` the text)."""
        if not self.fast or b"\r" in data or b"\x1b" in data:
            return False
        found = nanogpt_rows(data, max_line=MAX_LINE_CHARS)
        if found is None:
            return False
        if not last and data.endswith(b"\n"):  # no line after the final line end
            found = NanoGPTRows(
                found.steps, found.losses, found.is_fast[:-1], found.starts[:-1], found.ends[:-1]
            )
        starts, ends = found.starts, found.ends

        def line(index: int) -> str:
            codec = "utf-8-sig" if bom and index == 0 else "utf-8"
            return data[int(starts[index]) : int(ends[index])].decode(codec, errors="replace")

        self._feed_rows(found, line)
        return True

    def _feed_rows(self, found: NanoGPTRows, line: Callable[[int], str]) -> None:
        """Keep the bulk-read nanoGPT rows of a block and parse its other lines (``line``:
        the text of a line by its index in the block) one by one, in order."""
        first = self.n_lines + 1
        is_fast = found.is_fast
        first_fast = int(np.argmax(is_fast))
        dialects = self.state.dialects
        others = np.flatnonzero(~is_fast)
        empty = (found.ends[others] == found.starts[others]).tolist()
        for index, blank in zip(others.tolist(), empty, strict=True):
            if index > first_fast and "nanogpt" not in dialects:
                dialects["nanogpt"] = 0  # counted from here on, as line by line (ties)
            if not blank and (raw := line(index)):
                self._line(first + index, raw)
        self.n_lines += is_fast.shape[0]
        numbers = np.flatnonzero(is_fast).astype(np.int64) + first
        self._fast.append((found.steps, found.losses, numbers))
        self.n_fast += found.steps.shape[0]
        dialects["nanogpt"] += found.steps.shape[0]

    def _line(self, number: int, raw: str) -> None:
        state = self.state
        if len(raw) > MAX_LINE_CHARS:
            state.skipped += 1
            return
        state.number = number
        parsed = parse_line(strip_prefix(raw), state)
        if parsed is None or not parsed.values:
            if raw.strip():
                state.skipped += 1
            return
        self._keep(number, parsed)

    def _keep(self, number: int, parsed: ParsedLine) -> None:
        """Keep the record of line ``number`` (or of the earlier line ``parsed`` names),
        the records in line order."""
        state = self.state
        if parsed.line is not None:
            number = parsed.line
        index = len(state.lines)
        if index and number < state.lines[-1]:
            # a Lightning bar's step, given once the bar moved on, after a later line's row
            index = bisect_right(state.lines, number)
        state.records.insert(index, canonical(parsed))
        state.lines.insert(index, number)
        state.dialects[parsed.dialect] += 1
        state.keras_bar.insert(index, parsed.keras_bar)

    def table(self) -> tuple[Table, str] | None:
        """Return the table of every record read and the most common dialect, or None when
        no line carried a loss value."""
        state = self.state
        if (last_bar := flush_lightning_bar(state)) is not None:
            self._keep(self.n_lines, last_bar)  # (last_bar names the line it was read from)
        records, lines = state.records, state.lines
        notes: list[str] = []
        # Keras: per-batch progress lines are running means; keep the epoch-end lines
        epoch_ends = [i for i, r in enumerate(records) if keras_epoch_end(r, state.keras_bar[i])]
        if epoch_ends:
            ends = set(epoch_ends)
            keep = [i for i in range(len(records)) if not state.keras_bar[i] or i in ends]
            dropped = len(records) - len(keep)
            records, lines = [records[i] for i in keep], [lines[i] for i in keep]
            notes.append(keras_note(len(epoch_ends), dropped))
        if globalise_steps(records):
            notes.append(GLOBAL_STEPS_NOTE)
        for r in records:
            r.pop("step__total", None)
        if not self.n_fast and not any(has_loss(r) for r in records):
            return None
        table = records_table(records, lines)
        if self._fast:
            parts, self._fast = self._fast, []
            large = self.n_fast >= RELEASE_MIN_ROWS
            if large:
                release_freed_memory()  # the blocks read: the table is built beside them
            table = _with_fast_rows(table, parts)
            if large:
                release_freed_memory()  # the bulk rows, placed in the table
        table.notes.extend(notes)
        if state.skipped:
            table.notes.append(valueless_note(state.skipped))
        dialect = state.dialects.most_common(1)[0][0] if state.dialects else "generic"
        return table, dialect

    def shape_problem(self, dialect: str, *, strict: bool, head: str = "") -> str | None:
        """Return why a text read by the generic dialect (``dialect``: its most common
        one), without nanoGPT's lines, is no loss log, or None.

        A log repeats one line shape: the lines that carry a loss mostly share their keys
        (:data:`LOG_MIN_SAME_SHAPE` of them at least, :data:`LOG_MIN_SHAPE_SHARE` of
        them); notes, documents and tables of prose mention a loss here and there, each
        time in other words.  ``strict``: the text was found in a folder walk; a file named
        on the command line must pass that test only when it is mostly prose or a table of
        text (``head``: the text's start, see
        :func:`~lossdoctor.ingest.texttable.text_table_problem`), and is otherwise refused
        when its loss lines share no shape at all, or when it has only one or two loss
        lines, written as prose or among more lines of other text.
        """
        state = self.state
        if dialect != "generic" or state.dialects.get("nanogpt"):
            return None  # nanoGPT's lines counted alike, read in bulk or one by one
        shapes = Counter(
            frozenset(k for k in r if k != "step") for r in state.records if has_loss(r)
        )
        lines = sum(shapes.values())
        same = max(shapes.values(), default=0)
        unlike_log = same < LOG_MIN_SAME_SHAPE or same < LOG_MIN_SHAPE_SHARE * lines
        valued = len(state.records)
        prose = valued < PROSE_VALUE_SHARE * (valued + state.skipped)
        mention = (
            f"{lines} lines mention a loss, at most {same} in the same shape"
            if lines != 1
            else "1 line mentions a loss"
        )
        if unlike_log:
            from lossdoctor.ingest.texttable import text_table_problem

            table = text_table_problem(head)
            if table is not None:
                return table
        if strict and unlike_log:
            return f"not a log: {mention} (name the file to read it anyway)"
        no_shape = lines >= NAMED_MIN_LOSS_LINES and same < NAMED_MIN_SHAPE_SHARE * lines
        loss_keys = {k for r in state.records for k in r if "loss" in k}
        wordy = max((len(k.split()) for k in loss_keys), default=0)
        stray = lines < LOG_MIN_SAME_SHAPE and (
            valued < FEW_LINES_MIN_SHARE * (valued + state.skipped) or wordy >= PROSE_KEY_WORDS
        )
        if (prose and unlike_log) or no_shape or stray:
            among = " among prose" if prose or stray else ""
            return f"not a loss log: {mention}{among} (a document or notes?)"
        return None


def _with_fast_rows(table: Table, parts: list[FastPart]) -> Table:
    """Return ``table`` (the records of the other lines) with the nanoGPT training rows
    (``parts``: steps, losses and their line numbers, a block at a time, in line order;
    let go of as they are placed) put in line order, its columns in first-seen order as
    :func:`records_table` orders them."""
    slow_lines = np.asarray(table.lines) if table.lines is not None else np.zeros(0, dtype=np.int64)
    # both in line order, no line in both: a row's place is its place among its own kind
    # plus the number of the other kind's lines before it
    slow_rows = np.arange(slow_lines.shape[0])
    for _, _, lines in parts:
        slow_rows += np.searchsorted(lines, slow_lines, side="right")
    n = int(slow_lines.shape[0] + sum(part[0].shape[0] for part in parts))
    # a column's place: the first line that holds it, then its place in that record
    first_line = int(parts[0][2][0])
    first_seen = {"step": (first_line, 0), "loss": (first_line, 1)}
    for position, (name, column) in enumerate(table.columns.items()):
        held = column.present.copy()
        if column.first_garbage >= 0:
            held[column.first_garbage] = True
        line = int(slow_lines[int(np.argmax(held))]) if held.any() else n + 1
        first_seen[name] = min(first_seen.get(name, (line, position)), (line, position))
    # the bulk rows' steps, then losses, then lines are placed and let go one after the
    # other (memory: the parts and about one column more)
    blocks = [list(part) for part in parts]
    parts.clear()
    columns: dict[str, Column] = {}
    for name in sorted(first_seen, key=first_seen.__getitem__):
        values = np.full(n, np.nan)
        present = np.zeros(n, dtype=bool)
        garbage, first_garbage = 0, -1
        slow = table.columns.get(name)
        if slow is not None:
            values[slow_rows] = slow.values
            present[slow_rows] = slow.present
            garbage = slow.garbage
            if slow.first_garbage >= 0:
                first_garbage = int(slow_rows[slow.first_garbage])
        if name in _BULK_FIELDS:
            _place(blocks, _BULK_FIELDS[name], slow_lines, values, present)
        columns[name] = Column(values, present, garbage, first_garbage)
    all_lines = np.empty(n, dtype=np.int64)
    all_lines[slow_rows] = slow_lines
    _place(blocks, 2, slow_lines, all_lines, None)
    return Table(columns=columns, lines=all_lines, notes=list(table.notes))


#: The field of a bulk part each column takes.
_BULK_FIELDS = {"step": 0, "loss": 1}


def _place(
    blocks: list[list[Any]], field: int, slow_lines: IntArray, out: Any, present: Any
) -> None:
    """Put ``field`` of every bulk block in its rows of ``out`` (marking them ``present``
    unless None) and let it go (the block's last field, its lines, is let go last)."""
    placed = 0
    for block in blocks:
        lines = block[2]
        rows = placed + np.arange(lines.shape[0]) + np.searchsorted(slow_lines, lines)
        out[rows] = block[field]
        if present is not None:
            present[rows] = True
        placed += lines.shape[0]
        block[field] = None


def read_text_log(
    text: str,
    *,
    source: str,
    hints: ColumnHints | None = None,
    fast: bool = True,
    strict: bool = False,
) -> Run:
    """Return the run in a text log, parsed :data:`BLOCK_CHARS` characters of whole lines
    at a time (``fast``: nanoGPT training lines in bulk, the same result; ``strict``: the
    text was found in a folder walk, see :meth:`TextLogReader.shape_problem`).

    Raises :class:`NotALogError` when no line carries a loss value or the text is no log.
    """
    reader = TextLogReader(fast=fast)
    start, size = 0, len(text)
    while True:
        cut = text.find("\n", start + BLOCK_CHARS) if start + BLOCK_CHARS < size else -1
        if cut < 0:
            reader.feed(text[start:] if start else text)
            break
        reader.feed(text[start:cut])
        start = cut + 1
    from lossdoctor.ingest.metadata import count_overflow_skips

    return _finish(
        reader,
        lines=len(text.splitlines()),
        head=text,
        overflow_skips=count_overflow_skips(text),
        source=source,
        hints=hints,
        strict=strict,
    )


def _finish(
    reader: TextLogReader,
    *,
    lines: int,
    head: str,
    overflow_skips: int,
    source: str,
    hints: ColumnHints | None,
    strict: bool,
) -> Run:
    """Return the run the ``reader`` read, with the facts and vocabulary its ``head`` text
    states and the overflow-skipped steps counted in the whole text.

    Raises :class:`NotALogError` (naming the ``lines`` read) when no line carried a loss,
    or when its loss lines are no log's (:meth:`TextLogReader.shape_problem`; ``strict``:
    the text was found in a folder walk).
    """
    from lossdoctor.ingest.metadata import facts_from_text, vocab_from_text, with_facts, with_vocab

    read = reader.table()
    if read is None:
        raise NotALogError(
            f"no loss values found in this text ({counted(lines, 'line')}; "
            "no line matched a known log format)",
            path=source,
        )
    table, dialect = read
    problem = reader.shape_problem(dialect, strict=strict, head=head)
    if problem is not None:
        raise NotALogError(problem, path=source)
    run = table_to_run(table, source=source, reader=f"text:{dialect}", hints=hints)
    names = set(table.columns)
    if table.n_rows >= RELEASE_MIN_ROWS:
        del table, read
        release_freed_memory()  # the table, its series taken out: judging comes next
    run = with_facts(run, facts_from_text(head), overflow_skips)
    return with_vocab(mark_smoothing(run, names), vocab_from_text(head))


def read_text_log_bytes(
    data: bytes,
    *,
    source: str,
    hints: ColumnHints | None = None,
    block_bytes: int = BLOCK_CHARS,
    strict: bool = False,
) -> Run:
    """Return the run in a text log given as bytes, decoded (as
    :func:`~lossdoctor.ingest.delimited.decode_text` decodes) and read a block of about
    ``block_bytes`` of whole lines at a time, so the whole text is never held (``strict``
    as for :func:`read_text_log`).

    Raises :class:`NotALogError` when no line carries a loss value or the text is no log.
    """
    blocks = line_cuts(data, block_bytes)
    return read_text_log_blocks(blocks, source=source, hints=hints, strict=strict)


def line_cuts(data: bytes, block_bytes: int) -> Iterator[bytes]:
    """Yield ``data`` in pieces of about ``block_bytes`` that each end just after a
    ``\n`` (the last piece: the rest)."""
    start, size = 0, len(data)
    while start < size:
        cut = data.find(b"\n", start + block_bytes) if start + block_bytes < size else -1
        end = size if cut < 0 else cut + 1
        yield data[start:end]
        start = end


#: Characters str.splitlines splits at besides \n (\r is turned into \n before).
_OTHER_LINE_ENDS = "\v\f\x1c\x1d\x1e\x85\u2028\u2029"


def _line_count(text: str, *, last: bool) -> int:
    """Return ``len(text.splitlines())`` for a piece of a text that ends at a line end
    unless it is the ``last`` piece, without building the list."""
    count = text.count("\n") + sum(text.count(end) for end in _OTHER_LINE_ENDS)
    return count + (last and text != "" and text[-1] not in "\n" + _OTHER_LINE_ENDS)


def read_text_log_blocks(
    blocks: Iterable[bytes],
    *,
    source: str,
    hints: ColumnHints | None = None,
    strict: bool = False,
) -> Run:
    """Return the run in a text log given as pieces of bytes that each end just after a
    ``\n`` (the last may not), decoded as :func:`~lossdoctor.ingest.delimited.decode_text`
    decodes: memory holds one piece and the records, never the whole text (``strict`` as
    for :func:`read_text_log`).

    Raises :class:`NotALogError` when no line carries a loss value or the text is no log.
    """
    from lossdoctor.ingest.delimited import decode_text
    from lossdoctor.ingest.metadata import TEXT_HEAD_CHARS, count_overflow_skips

    reader = TextLogReader()
    # the head the vocabulary and facts are looked for in: enough bytes for
    # TEXT_HEAD_CHARS characters
    head_bytes = 4 * TEXT_HEAD_CHARS + 16
    head = b""
    counted = 0  # lines, for the message when no line carries a value
    overflow_skips = 0
    pieces = iter(blocks)
    piece = next(pieces, None)
    first = True
    while piece is not None:
        following = next(pieces, None)
        if len(head) < head_bytes:
            head += piece[: head_bytes - len(head)]
        codec = "utf-8-sig" if first else "utf-8"
        if reader.feed_bytes(piece, bom=first, last=following is None):
            # lines are counted only for the error when no line holds a loss: this
            # block's nanoGPT lines hold losses
            if b"verflow" in piece or b"VERFLOW" in piece:
                overflow_skips += count_overflow_skips(piece.decode(codec, errors="replace"))
        else:
            text = piece.decode(codec, errors="replace")
            text = text.replace("\r\n", "\n").replace("\r", "\n")
            counted += _line_count(text, last=following is None)
            reader.feed(text[:-1] if text.endswith("\n") and following is not None else text)
            overflow_skips += count_overflow_skips(text)
        piece, first = following, False
    return _finish(
        reader,
        lines=counted,
        head=decode_text(head),
        overflow_skips=overflow_skips,
        source=source,
        hints=hints,
        strict=strict,
    )
