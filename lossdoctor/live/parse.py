"""Incremental line parsing for live input, with ``check``'s readers: the form of the
stream is decided once, from its first non-empty lines, as ``check`` sniffs a file's
head, and each line is then read by that form's own row or record parser:

- ``jsonl``: JSON Lines (also after lines of text, when the first line that carries a
  loss is a JSON object: a library's warning above a script's records), shaped record
  by record as ``check`` shapes them (ms-swift's ``global_step/max_steps``, mmengine's
  validation lines, the Hugging Face summary line:
  :class:`~lossdoctor.ingest.frameworks.RecordShaper`);
- ``csv``: CSV/TSV with a header (re-read when a logger rewrites it);
- ``notebook``: the Hugging Face / unsloth notebook table, its banner above the header
  (:func:`~lossdoctor.ingest.notebook.row_cells`);
- ``torchtune``: torchtune's metric lines and training bar, its configuration echo left
  out (:func:`~lossdoctor.ingest.textlines.parse_torchtune`);
- ``lightning``: a captured Lightning progress bar, its redraws alone
  (:func:`~lossdoctor.ingest.textlines.parse_lightning`);
- ``text``: every other text-log dialect (:func:`~lossdoctor.ingest.textlines.parse_line`).

A loss logged only in parts (Ultralytics ``train/box_loss``, ``train/cls_loss``, ...)
gets its total on each record, as ``check`` adds it to the table.
"""

from __future__ import annotations

import json
from typing import Any

from lossdoctor.ingest import components, notebook, torchtune
from lossdoctor.ingest.delimited import sniff_delimiter
from lossdoctor.ingest.frameworks import RecordShaper
from lossdoctor.ingest.jsonlike import bad_lines_note
from lossdoctor.ingest.lines import strip_prefix
from lossdoctor.ingest.progressbar import bar_note, looks_like_progress_bar
from lossdoctor.ingest.table import MISSING_TOKENS
from lossdoctor.ingest.textforms import json_record_with_loss
from lossdoctor.ingest.textlines import (
    GLOBAL_STEPS_NOTE,
    MAX_LINE_CHARS,
    EpochSteps,
    LineState,
    ParsedLine,
    canonical,
    carries_loss,
    flush_lightning_bar,
    has_loss,
    keras_epoch_end,
    keras_note,
    parse_lightning,
    parse_line,
    parse_torchtune,
    valueless_note,
)

#: Lines (non-empty) held at most while the form is undecided; then it is a text log.
SNIFF_LINES = 2000
#: Characters held at most while the form is undecided (``check`` sniffs as much).
SNIFF_CHARS = 1 << 16
#: Keras progress-bar lines of one epoch held at most (then read as they are).
MAX_BAR_LINES = 4096
#: torchtune lines in an undecided head that settle it: torchtune's own form when the
#: head passes ``check``'s tests, else a text log.
TORCHTUNE_LINES = 2

Record = dict[str, float]


def _float(text: str) -> float | None:
    token = text.strip().strip('"')
    if token.lower() in MISSING_TOKENS:
        return None
    try:
        return float(token)
    except ValueError:
        return None


def _number(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        return _float(value)
    return None


class LineParser:
    """Turns lines into records (key -> value).  ``feed`` never raises."""

    def __init__(self) -> None:
        #: The stream's form (see the module), None while its first lines are held.
        self.kind: str | None = None
        self.header: list[str] | None = None
        self.delimiter = ","
        self.state = LineState()
        self.epoch_steps = EpochSteps()
        #: Keras progress-bar records of the epoch so far, and whether an epoch's end line
        #: was read (see :meth:`_text`).
        self._bar: list[Record] = []
        #: Keras epoch-end lines read.
        self.keras_ends = 0
        #: Text lines without values (skipped, as ``check`` skips them).
        self.valueless = 0
        #: Keras progress-bar lines left out for their epoch's end line.
        self.keras_dropped = 0
        #: Lines that could not be read at all: too long, broken JSON, wrong cell count,
        #: and the number of the first.
        self.malformed = 0
        self.first_malformed: int | None = None
        #: The number of the last line fed, and of the line being read.
        self.number = 0
        self._at = 0
        #: The non-empty lines held while the form is undecided (with their numbers), and
        #: their characters.
        self._held: list[str] = []
        self._held_at: list[int] = []
        self._held_chars = 0
        #: The lines above a notebook table's header (its progress banner among them).
        self._above_table: list[str] = []
        self._torchtune_held = 0
        #: The notebook table's header line.
        self._table_header = ""
        self.shaper: RecordShaper | None = None
        #: Totals logged only in parts: total -> parts (decided at the first loss record).
        self.totals: dict[str, list[str]] | None = None
        #: The last record as logged (a JSON object, or a CSV line's cells).
        self._last_obj: dict[str, Any] | None = None
        self._last_cells: list[str] | None = None

    def texts(self) -> dict[str, Any]:
        """Return the last record's values as logged, text included (a run's name),
        by key: a JSON object's items, a CSV line's cells by header (empty for text)."""
        if self._last_obj is not None:
            return self._last_obj
        if self._last_cells is not None and self.header is not None:
            return dict(zip(self.header, self._last_cells, strict=False))
        return {}

    def _first_line(self, line: str) -> str | None:
        """Return the form a first line decides alone (JSON Lines, a table's header), or
        None when it takes more lines."""
        stripped = line.strip()
        if notebook.HEADER.match(line):
            self._table_header = line
            return "notebook"
        if stripped.startswith("{") and stripped.endswith("}"):
            try:
                json.loads(stripped)
            except (ValueError, RecursionError):
                return "text"
            return "jsonl"
        delimiter = sniff_delimiter([stripped])
        cells = stripped.split(delimiter) if delimiter else []
        named = cells[1:] if cells and not cells[0].strip() else cells  # an index column
        if delimiter and all(c.strip() and _float(c) is None and ":" not in c for c in named):
            self.delimiter = delimiter
            self.header = [c.strip().strip('"') for c in cells]
            return "csv"
        return None

    def _sniff(self, line: str) -> list[Record]:
        """Hold ``line`` until the head decides the form; return the records of the held
        lines once it does."""
        if not self._held:
            kind = self._first_line(line)
            if kind is not None:
                self.kind = kind
                return [] if kind == "notebook" else self._records(line)
        self._held.append(line)
        self._held_at.append(self._at)
        self._held_chars += len(line)
        if json_record_with_loss(line):  # JSON Lines after a text preamble (a warning)
            return self.decide("jsonl")
        head = "\n".join(self._held)
        if notebook.find_header(head) is not None:
            self._table_header = line
            self._above_table = self._held[:-1]
            self._held, self._held_at = [], []
            self.kind = "notebook"
            return []
        stripped = strip_prefix(line)
        is_torchtune = torchtune.torchtune_line(stripped.strip()) is not None
        self._torchtune_held += is_torchtune
        if torchtune.looks_like_disk_log(head) or torchtune.looks_like_progress(head):
            return self.decide("torchtune")
        if "Epoch " in line and looks_like_progress_bar(head):
            return self.decide("lightning")
        if (
            self._torchtune_held >= TORCHTUNE_LINES
            or (not is_torchtune and carries_loss(stripped))
            or len(self._held) >= SNIFF_LINES
            or self._held_chars >= SNIFF_CHARS
        ):
            return self.decide("text")
        return []

    def decide(self, kind: str) -> list[Record]:
        """Take ``kind`` as the stream's form (unless one was decided) and return the
        records of the lines held until then."""
        if self.kind is None:
            self.kind = kind
        held, numbers = self._held, self._held_at
        self._held, self._held_at, self._held_chars = [], [], 0
        records = []
        for number, line in zip(numbers, held, strict=True):
            self._at = number
            records.extend(self._records(line))
        self._at = self.number
        return records

    def finish(self) -> list[Record]:
        """Return the records of the lines still held (the input ended before its head
        decided the form: a text log; a Keras epoch without its end line)."""
        held = self.decide("text") if self._held else []
        last_bar = flush_lightning_bar(self.state)
        bar = [self._record(last_bar)] if last_bar is not None else []
        return [*held, *self.finish_epoch(), *self._with_totals(bar)]

    def feed(self, line: str, number: int | None = None) -> list[Record]:
        """Return the records ``line`` (line ``number`` of the stream: the line after the
        last one fed when not given) completes: none while the stream's first lines are
        held, then those lines' records; afterwards the values on ``line``, if any."""
        self.number = self._at = self.number + 1 if number is None else number
        if len(line) > MAX_LINE_CHARS:
            self.bad()
            return []
        if not line.strip():
            return []
        if self.kind is None:
            return self._sniff(line)
        return self._records(line)

    def bad(self, number: int | None = None) -> None:
        """Count a line that could not be read (line ``number``, else the one being read)."""
        self.malformed += 1
        if self.first_malformed is None:
            self.first_malformed = self._at if number is None else number

    def notes(self) -> list[str]:
        """Return what ``check``'s reader of the stream's form says of what it read: the
        lines it skipped, how it read a framework's records, a progress bar or a table."""
        state = self.state
        if self.kind == "jsonl":
            notes = self.shaper.notes() if self.shaper else []
            if self.malformed:
                notes.append(bad_lines_note(self.malformed, self.first_malformed))
            return notes
        if self.kind == "notebook":
            return [notebook.table_note(self._above_table)]
        if self.kind == "torchtune":
            return [torchtune.bar_note(state.bar_steps)] if state.bar_steps else []
        if self.kind == "lightning":
            return [bar_note(state.bar_vals)]
        notes = []
        if self.keras_ends:
            notes.append(keras_note(self.keras_ends, self.keras_dropped))
        if self.epoch_steps.on:
            notes.append(GLOBAL_STEPS_NOTE)
        if self.valueless:
            notes.append(valueless_note(self.valueless))
        return notes

    def _records(self, line: str) -> list[Record]:
        if self.kind in ("text", "torchtune", "lightning"):
            records = self._text(line)
        else:
            record = self._read(line)
            records = [record] if record else []
        return self._with_totals(records)

    def _with_totals(self, records: list[Record]) -> list[Record]:
        for record in records:
            if self.totals is None and has_loss({k.lower(): v for k, v in record.items()}):
                self.totals = components.summed_totals(list(record))
            if self.totals:
                components.add_record_sums(record, self.totals)
        return records

    def _text(self, line: str) -> list[Record]:
        """Return the records a text line completes.  Keras progress-bar lines are held
        until their epoch ends: its end line (with the validation values) is the epoch's
        record, as ``check`` keeps it; the others are running means of the epoch so far,
        read only when the epoch ends without one (a run without validation)."""
        epoch = self.state.keras_epoch
        read = _TEXT_PARSERS.get(self.kind or "text", parse_line)
        self.state.number = self._at
        parsed = read(strip_prefix(line), self.state)
        released = self.finish_epoch() if self.state.keras_epoch != epoch else []
        if parsed is None or not parsed.values:
            self.valueless += 1
            return released
        record = self._record(parsed)
        if parsed.keras_bar:
            if keras_epoch_end(record, keras_bar=True):
                self.keras_ends += 1
                self.keras_dropped += len(self._bar)
                self._bar = []
                return [*released, record]
            self._bar.append(record)
            return released if len(self._bar) < MAX_BAR_LINES else [*released, *self.finish_epoch()]
        return [*released, record]

    def _record(self, parsed: ParsedLine) -> Record:
        values = canonical(parsed)
        self.epoch_steps.globalise(values)
        values.pop("step__total", None)
        return {k: float(v) for k, v in values.items() if isinstance(v, int | float)}

    def finish_epoch(self) -> list[Record]:
        """Return the Keras bar lines held for an epoch that ended without an end line
        (none once a run showed end lines: ``check`` keeps those alone)."""
        held, self._bar = self._bar, []
        if self.keras_ends:
            self.keras_dropped += len(held)
            return []
        return held

    def _read(self, line: str) -> Record | None:
        if self.kind == "jsonl":
            return self._json(line)
        if self.kind == "csv":
            return self._csv(line)
        if self.kind == "notebook":
            cells = notebook.row_cells(line)
            if cells is None:
                return None
            keys = notebook.column_keys(self._table_header, len(cells))
            values = {key: _float(cell) for key, cell in zip(keys, cells, strict=True) if cell}
            return {key: value for key, value in values.items() if value is not None} or None
        return None

    def _json(self, line: str) -> Record | None:
        try:
            obj = json.loads(line)
        except (ValueError, RecursionError):
            obj = None
        if not isinstance(obj, dict):
            self.bad()
            return None
        self._last_obj = obj
        if self.shaper is None:
            self.shaper = RecordShaper.for_stream(obj)
        shaped = self.shaper.shape(obj)
        if shaped is None:
            return None
        out: Record = {}
        for key, value in shaped.items():
            number = _number(value)
            if number is not None:
                out[str(key)] = number
        return out or None

    def _csv(self, line: str) -> Record | None:
        cells = [c.strip().strip('"') for c in line.rstrip("\n").split(self.delimiter)]
        if self.header is not None and cells == self.header:
            return None
        if all(_float(c) is None and c for c in cells):  # a rewritten header
            self.header = cells
            return None
        if self.header is None or len(cells) != len(self.header):
            self.bad()
            return None
        self._last_cells = cells
        record = {}
        for name, cell in zip(self.header, cells, strict=True):
            number = _float(cell)
            if number is not None and name:
                record[name] = number
        return record or None


#: The line parsers of the text forms read by their own parser (the others: parse_line).
_TEXT_PARSERS = {"torchtune": parse_torchtune, "lightning": parse_lightning}
