"""The live monitor: records in, a judged run out, with the findings that changed."""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from lossdoctor.engine.evaluate import evaluate
from lossdoctor.engine.schema import Rule
from lossdoctor.errors import ConfigError
from lossdoctor.ingest.columns import ColumnHints, choose_columns
from lossdoctor.ingest.table import promote_single_loss
from lossdoctor.ingest.textlog import nanogpt_iter
from lossdoctor.live.buffer import PointBuffer
from lossdoctor.live.parse import LineParser
from lossdoctor.model import LOSS_ROLES, Run, Series, XKind
from lossdoctor.report import SEVERITY_RANK, Finding, RunReport

STEP_KEYS = ("step", "global_step", "iteration", "iter", "_step", "epoch")
STALL_RULE, STALL_CODE = "stall", "LD701"
#: Distinct keys tracked at most (a log with a new key on every line stays bounded).
MAX_SERIES = 64


class LiveMonitor:
    """Accumulates points from lines and judges the run on demand."""

    def __init__(
        self,
        source: str,
        rules: Sequence[Rule],
        *,
        context: Mapping[str, Any] | None = None,
        hints: ColumnHints | None = None,
    ) -> None:
        self.source = source
        self.rules = list(rules)
        self.context = dict(context or {})
        self.hints = hints
        self.parser = LineParser()
        self.buffers: dict[str, PointBuffer] = {}
        self.rows = 0
        self.lines = 0
        self.last_step = 0.0
        #: What the steps count: ``step`` (a step key in any record), ``epoch`` (an epoch
        #: key and no step key) or ``index`` (no step key: the record's position).
        self.x_kind: XKind | None = None
        self.last_point_time: float | None = None
        self.first_point_time: float | None = None
        self.points = 0
        self.seen: dict[tuple[str, str], tuple[Any, ...]] = {}
        self.stalled_for: float | None = None
        self.notes: list[str] = []
        #: Lines that could not be read (malformed, too long, too deeply nested).
        self.malformed = 0
        self.first_malformed: int | None = None
        #: Keys not tracked because :data:`MAX_SERIES` were already tracked.
        self.untracked: set[str] = set()
        self.last_input_time = time.monotonic()
        #: The last report (see :meth:`report`).
        self.last: RunReport | None = None

    def reset(self, reason: str) -> None:
        """Forget every point (the followed file was rewritten from the top)."""
        self.buffers.clear()
        self.parser = LineParser()
        self.rows = 0
        self.x_kind = None
        self.notes.append(f"the file was {reason}: read again from the top")

    def skip(self, count: int = 1) -> None:
        """Count ``count`` lines that were dropped before parsing (too long)."""
        for _ in range(count):
            self.lines += 1
            self._malformed()

    def _malformed(self) -> None:
        self.malformed += 1
        if self.first_malformed is None:
            self.first_malformed = self.lines

    def add_line(self, line: str) -> bool:
        """Parse one line; return True when it carried a non-finite loss (judge at once).

        A line that cannot be read is skipped and counted in ``malformed``; no line raises."""
        self.lines += 1
        self.last_input_time = time.monotonic()
        before = self.parser.malformed
        try:
            record = self.parser.feed(line)
        except (RecursionError, ValueError, TypeError, OverflowError, MemoryError):
            record = None
            self._malformed()
        else:
            if self.parser.malformed != before:
                self._malformed()
        if not record:
            return False
        return self.add_record(record)

    def add_record(self, record: Mapping[str, float]) -> bool:
        """Add one record (key -> value, a step key among them or not); return True when
        it carried a non-finite loss."""
        self.rows += 1
        key = next((k for k in STEP_KEYS if k in record), None)
        if self.x_kind != "step":  # a step key anywhere makes the x a step
            kind: XKind = "index" if key is None else "epoch" if key == "epoch" else "step"
            if self.x_kind is None or kind != "index":
                self.x_kind = kind
        step = record[key] if key is not None else None
        if step is None or not math.isfinite(step):
            step = self.last_step + 1 if self.rows > 1 else 0.0
        self.last_step = step
        urgent = False
        now = time.monotonic()
        for key, value in record.items():
            if key in STEP_KEYS:
                continue
            buffer = self._buffer(key)
            if buffer is None:
                continue
            buffer.append(step, value)
            if not math.isfinite(value) and "loss" in key.lower():
                urgent = True
        self.points += 1
        self.last_point_time = now
        if self.first_point_time is None:
            self.first_point_time = now
        self.stalled_for = None
        return urgent

    def _buffer(self, key: str) -> PointBuffer | None:
        buffer = self.buffers.get(key)
        if buffer is None:
            if len(self.buffers) >= MAX_SERIES:
                if len(self.untracked) < MAX_SERIES:
                    self.untracked.add(key)
                return None
            buffer = self.buffers[key] = PointBuffer()
        return buffer

    def add_lines(self, lines: list[str]) -> bool:
        """Parse many lines; return True when one carried a non-finite loss.

        nanoGPT ``iter N: loss X`` lines take a fast path (no general parsing)."""
        steps: list[float] = []
        values: list[float] = []
        urgent = False
        for line in lines:
            found = nanogpt_iter(line)
            if found is None:
                if steps:
                    urgent |= self._flush_fast(steps, values)
                    steps, values = [], []
                urgent |= self.add_line(line)
                continue
            steps.append(found[0])
            values.append(found[1])
        if steps:
            urgent |= self._flush_fast(steps, values)
        return urgent

    def _flush_fast(self, steps: list[float], values: list[float]) -> bool:
        if self.parser.kind is None:
            self.parser.kind = "text"
        self.x_kind = "step"
        count = len(values)
        self.lines += count
        self.last_input_time = time.monotonic()
        buffer = self._buffer("loss")
        if buffer is None:
            return False
        buffer.extend(steps, values)
        self.rows += count
        self.points += count
        self.last_step = steps[-1]
        now = time.monotonic()
        self.last_point_time = now
        if self.first_point_time is None:
            self.first_point_time = now
        self.stalled_for = None
        return not all(map(math.isfinite, values))

    def mark_stall(self, seconds: float) -> None:
        """Record that no point arrived for ``seconds``."""
        self.stalled_for = seconds

    def run(self) -> Run | None:
        """Return the run so far, or None before any loss value arrived."""
        names = list(self.buffers)
        if not names:
            return None
        choice = choose_columns(names, self.hints)
        roles = dict(choice.roles)
        if not any(r in roles for r in LOSS_ROLES):
            return None
        roles = promote_single_loss(roles, [])
        series = {}
        for role, name in roles.items():
            steps, values = self.buffers[name].arrays()
            if steps.size:
                order = np.argsort(steps, kind="stable")
                if (steps[1:] < steps[:-1]).any():
                    steps, values = steps[order], values[order]
            series[role] = Series(
                role=role, column=name, steps=steps, values=values, x_kind=self.x_kind or "step"
            )
        used = ", ".join(f"{r}={n}" for r, n in roles.items())
        notes = [f"columns: {used}", *self.notes]
        if self.malformed:
            notes.append(
                f"skipped {self.malformed:,} malformed line{'s' * (self.malformed != 1)} "
                f"(first at line {self.first_malformed})"
            )
        if self.untracked:
            notes.append(
                f"tracked the first {MAX_SERIES} keys only; ignored "
                f"{', '.join(sorted(self.untracked)[:3])}{' and more' * (len(self.untracked) > 3)}"
            )
        return Run(self.source, f"live:{self.parser.kind}", series, tuple(notes))

    def report(self, *, finished: bool = False) -> RunReport | None:
        """Return the report of the run so far, judged now (None before any loss value);
        with ``finished`` the run is judged as a whole run, else as a run in progress.
        The report is kept: :attr:`findings` and :meth:`should_stop` read it."""
        run = self.run()
        if run is None:
            return None
        report = evaluate(run, self.rules, self.context, partial=not finished)
        if self.stalled_for is not None:
            report.findings.append(self._stall_finding(self.stalled_for))
        self.last = report
        return report

    @property
    def findings(self) -> list[Finding]:
        """Return the findings of the last report (superseded ones included)."""
        return list(self.last.findings) if self.last is not None else []

    def should_stop(self, level: str = "error") -> bool:
        """Return True when a counted finding of the last report is at or above ``level``
        (``error``, ``warning`` or ``info``).

        Raises :class:`~lossdoctor.errors.ConfigError` for another level."""
        return self.stop_finding(level) is not None

    def stop_finding(self, level: str = "error") -> Finding | None:
        """Return the first counted finding of the last report at or above ``level``
        (None: nothing to stop for)."""
        if level not in SEVERITY_RANK:
            raise ConfigError(f"'{level}' is not a severity (error, warning, info)")
        if self.last is None:
            return None
        return next((f for f in self.last.active if reaches(f, level)), None)

    def _stall_finding(self, seconds: float) -> Finding:
        message = (
            f"No new loss value for {seconds:.0f} s (last at step {self.last_step:g}): "
            "the run may be stalled or hung."
        )
        evidence = {"series": "train", "column": "", "start_step": self.last_step}
        evidence["seconds"] = round(seconds, 1)
        fix = {
            "title": "Check the training process",
            "why": "A hung data loader, a deadlocked collective or a dead worker stops the log.",
        }
        return Finding(STALL_RULE, STALL_CODE, "warning", message, "train", evidence, (fix,))

    def changes(self, report: RunReport) -> list[Finding]:
        """Return the findings that are new or changed materially since the last call: a
        new severity, a new start step, or a count (of NaN, spikes, ...) that doubled."""
        out = []
        for finding in report.active:
            key = (finding.rule, finding.series)
            mark = _material(finding)
            if self.seen.get(key) != mark:
                self.seen[key] = mark
                out.append(finding)
        return out

    def rate(self) -> float:
        """Return points per second since the first point."""
        if self.first_point_time is None or self.last_point_time is None:
            return 0.0
        elapsed = self.last_point_time - self.first_point_time
        return self.points / elapsed if elapsed > 0 else 0.0


def _material(finding: Finding) -> tuple[Any, ...]:
    """Return what must change for a finding to be shown again: its severity, where it
    starts, and its count to the nearest power of two."""
    count = finding.evidence.get("count")
    scale = int(math.log2(count)) if isinstance(count, int | float) and count >= 1 else None
    return finding.severity, finding.evidence.get("start_step"), scale


def reaches(finding: Finding, level: str) -> bool:
    """Return True when ``finding`` is at or above severity ``level``."""
    return SEVERITY_RANK[finding.severity] >= SEVERITY_RANK[level]
