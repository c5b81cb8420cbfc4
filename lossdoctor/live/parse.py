"""Incremental line parsing for live input: JSON Lines, CSV/TSV with a header (re-read
when a logger rewrites it) and every text-log dialect, decided from the first lines."""

from __future__ import annotations

import json
from typing import Any

from lossdoctor.ingest.delimited import sniff_delimiter
from lossdoctor.ingest.lines import strip_prefix
from lossdoctor.ingest.table import MISSING_TOKENS
from lossdoctor.ingest.textlog import MAX_LINE_CHARS, _canonical, _State, parse_line

#: Lines looked at before the format is decided.
SNIFF_LINES = 5


def _float(text: str) -> float | None:
    token = text.strip().strip('"')
    if token.lower() in MISSING_TOKENS:
        return None
    try:
        return float(token)
    except ValueError:
        return None


class LineParser:
    """Turns lines into records (key -> value).  ``feed`` never raises."""

    def __init__(self) -> None:
        self.kind: str | None = None
        self.header: list[str] | None = None
        self.delimiter = ","
        self.state = _State()
        self.skipped = 0
        #: Lines that could not be read at all: too long, broken JSON, wrong cell count.
        self.malformed = 0
        self._pending: list[str] = []
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

    def _decide(self, line: str) -> None:
        stripped = line.strip()
        if stripped.startswith("{") and stripped.endswith("}"):
            try:
                json.loads(stripped)
            except (ValueError, RecursionError):
                self.kind = "text"
            else:
                self.kind = "jsonl"
            return
        delimiter = sniff_delimiter([stripped])
        cells = stripped.split(delimiter) if delimiter else []
        if delimiter and all(c.strip() and _float(c) is None and ":" not in c for c in cells):
            self.kind, self.delimiter = "csv", delimiter
            self.header = [c.strip().strip('"') for c in cells]
            return
        self.kind = "text"

    def feed(self, line: str) -> dict[str, Any] | None:
        """Return the values on ``line`` (a record) or None."""
        if len(line) > MAX_LINE_CHARS:
            self.skipped += 1
            self.malformed += 1
            return None
        if not line.strip():
            return None
        if self.kind is None:
            self._decide(line)
        if self.kind == "jsonl":
            try:
                obj = json.loads(line)
            except (ValueError, RecursionError):
                obj = None
            if not isinstance(obj, dict):
                self.skipped += 1
                self.malformed += 1
                return None
            self._last_obj = obj
            out: dict[str, Any] = {}
            for key, value in obj.items():
                number: float | None = None
                if isinstance(value, int | float) and not isinstance(value, bool):
                    number = float(value)
                elif isinstance(value, str):
                    number = _float(value)
                if number is not None:
                    out[str(key)] = float(number)
            return out or None
        if self.kind == "csv":
            cells = [c.strip().strip('"') for c in line.rstrip("\n").split(self.delimiter)]
            if self.header is not None and cells == self.header:
                return None
            if all(_float(c) is None and c for c in cells):  # a rewritten header
                self.header = cells
                return None
            if self.header is None or len(cells) != len(self.header):
                self.skipped += 1
                self.malformed += 1
                return None
            self._last_cells = cells
            record = {}
            for name, cell in zip(self.header, cells, strict=True):
                number = _float(cell)
                if number is not None:
                    record[name] = number
            return record or None
        parsed = parse_line(strip_prefix(line), self.state)
        if parsed is None or not parsed.values:
            self.skipped += 1
            return None
        values = _canonical(parsed)
        values.pop("step__total", None)
        return {k: float(v) for k, v in values.items() if isinstance(v, int | float)}
