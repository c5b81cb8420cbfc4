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
from lossdoctor.ingest import components
from lossdoctor.ingest.columns import (
    GRAD_NORM_NAMES,
    ColumnHints,
    choose_columns,
    is_epoch_name,
    is_step_name,
    normalise,
    step_kind,
)
from lossdoctor.ingest.provenance import mark_smoothing
from lossdoctor.ingest.table import (
    STEPS_PER_EPOCH,
    order_points,
    promote_single_loss,
    steps_per_epoch,
)
from lossdoctor.ingest.textlines import nanogpt_iter
from lossdoctor.live.buffer import PointBuffer
from lossdoctor.live.parse import LineParser
from lossdoctor.live.runs import RunState, StreamRuns, record_step_key
from lossdoctor.model import LOSS_PARTS, LOSS_ROLES, TRAIN, Run, Series, XKind
from lossdoctor.report import SEVERITY_RANK, Finding, RunReport

STALL_RULE, STALL_CODE = "stall", "LD701"
#: Distinct keys tracked at most (a log with a new key on every line stays bounded).
MAX_SERIES = 64
#: Records without a step held at the start of a stream at most: a step that comes next
#: is theirs (as ``check`` fills a step column's gaps), else they are counted in rows
#: (a log without steps is judged after this many records, a non-finite loss at once).
MAX_HELD = 8
#: (step, epoch) pairs kept to say how many steps an epoch takes (its first ones).
EPOCH_PAIRS = 1000


class LiveMonitor(StreamRuns):
    """Accumulates points from lines and judges the run on demand."""

    def __init__(
        self,
        source: str,
        rules: Sequence[Rule],
        *,
        context: Mapping[str, Any] | None = None,
        hints: ColumnHints | None = None,
        split: bool = True,
    ) -> None:
        self.source = source
        self.rules = list(rules)
        self.context = dict(context or {})
        self.hints = hints
        #: Whether a stream holding several runs (a sweep's run key, runs from scratch one
        #: after another) is judged run by run (see :mod:`lossdoctor.live.runs`).
        self.split = split
        self.parser = LineParser()
        #: Whether a record of the stream had a step (then a record without one is at the
        #: step of the record above, as ``check`` fills a step column's gaps).
        self.stepped = False
        self.lines = 0
        self.last_step = 0.0
        self.last_point_time: float | None = None
        self.first_point_time: float | None = None
        self.points = 0
        self.stalled_for: float | None = None
        self.notes: list[str] = []
        #: Lines whose parsing raised (too deeply nested, ...): the parser counts the
        #: lines too long to keep and those it reads and finds malformed.
        self.malformed = 0
        self.first_malformed: int | None = None
        #: Keys not tracked because :data:`MAX_SERIES` were already tracked.
        self.untracked: set[str] = set()
        self.last_input_time = time.monotonic()
        #: The last report (see :meth:`report`).
        self.last: RunReport | None = None
        self._start_runs()

    def reset(self, reason: str) -> None:
        """Forget every point (the followed file was rewritten from the top)."""
        self.parser = LineParser()
        self.stepped = False
        self._start_runs()
        self.notes.append(f"the file was {reason}: read again from the top")

    def skip(self, count: int = 1) -> None:
        """Count ``count`` lines that were dropped before parsing (too long)."""
        for _ in range(count):
            self.lines += 1
            self.parser.bad(self.lines)

    def _malformed(self) -> None:
        self.malformed += 1
        if self.first_malformed is None:
            self.first_malformed = self.lines

    def add_line(self, line: str) -> bool:
        """Parse one line; return True when it carried a non-finite loss or gradient norm
        (judge at once).

        A line that cannot be read is skipped and counted in ``malformed``; no line raises."""
        self.lines += 1
        self.last_input_time = time.monotonic()
        try:
            records = self.parser.feed(line, self.lines)
        except (RecursionError, ValueError, TypeError, OverflowError, MemoryError):
            records = []
            self._malformed()
        return self._add_records(records)

    def _add_records(self, records: list[dict[str, float]]) -> bool:
        urgent = False
        for record in records:
            urgent |= self.add_record(record)
        return urgent

    def end_of_input(self) -> bool:
        """Read the lines still held to decide the stream's form (the input ended before
        its first lines decided it) and add the records held for a step that never came;
        return True when one carried a non-finite loss or gradient norm."""
        urgent = self._add_records(self.parser.finish())
        for state in list(self.states.values()):
            urgent |= self._release_held(state)
        return urgent

    def add_record(self, record: Mapping[str, float]) -> bool:
        """Add one record (key -> value, a step key among them or not); return True when
        it carried a non-finite loss or gradient norm."""
        if self.split:
            record = self._route(record)
        state = self.state
        if self.interleaved:
            self.touched[id(state)] = state
        key = record_step_key(record, self.hints)
        raw = record[key] if key is not None else None
        if raw is not None and math.isfinite(raw):
            self.stepped = True
            if state.held:  # as check: records above the first step are at that step
                held, state.held = state.held, None
                urgent = False
                for earlier in held:
                    urgent |= self._add_to(state, key, raw, {**earlier, str(key): raw})
                return self._add_to(state, key, raw, record) | urgent
            state.held = None
        elif state.held is not None and len(state.held) < MAX_HELD and not _urgent(record):
            state.held.append(dict(record))  # until a step comes, or none does
            return False
        else:
            urgent = self._release_held(state)
            # as check: the step above (rows counted where no record has a step)
            raw = state.last_step - state.offset + (not self.stepped) if state.rows else 0.0
            return self._add_to(state, key, raw, record) | urgent
        return self._add_to(state, key, raw, record)

    def _release_held(self, state: RunState) -> bool:
        """Add ``state``'s records held for a step that never came, in row order."""
        held, state.held = state.held or [], None
        urgent = False
        for record in held:
            urgent |= self._add_to(state, None, state.last_step + 1 if state.rows else 0.0, record)
        return urgent

    def _add_to(
        self, state: RunState, key: str | None, raw: float, record: Mapping[str, float]
    ) -> bool:
        """Add ``record`` at raw step ``raw`` (its step ``key``'s value, or the one given it)
        to ``state``'s run, through the restart decision when the stream splits runs."""
        if self.split:
            full = len(state.buffers) >= MAX_SERIES  # a new key is no series then
            loss = state.loss_key(self.hints, {} if full else record)
            if state.pending is not None:
                state.pending.append((raw, dict(record)))
                return self._settle(state, loss)[1]
            if loss is not None and loss in record:
                if state.restarts(raw):
                    state.pending = [(raw, dict(record))]
                    return self._settle(state, loss)[1]
                if state.first_step is None:
                    state.first_step = raw
                state.last_raw = raw
        return self._append(state, key, raw + state.offset, record)

    def _append(
        self, state: RunState, key: str | None, step: float, record: Mapping[str, float]
    ) -> bool:
        state.rows += 1
        state.last_step = step
        if state.x_kind != "step":  # a step key anywhere makes the x a step
            kind = step_kind(key)
            if state.x_kind is None or kind != "index":
                state.x_kind, state.step_key = kind, key
        self.last_step = step
        urgent = False
        now = time.monotonic()
        for name, value in record.items():
            if name == key or is_step_name(name):
                if name != key and is_epoch_name(name) and len(state.epochs[0]) < EPOCH_PAIRS:
                    state.epochs[0].append(step)  # an epoch beside the step
                    state.epochs[1].append(value)
                continue
            buffer = self._buffer(name, state)
            if buffer is None:
                continue
            buffer.append(step, value)
            if not math.isfinite(value) and _alarming(name):
                urgent = True
        self.points += 1
        self.last_point_time = now
        if self.first_point_time is None:
            self.first_point_time = now
        self.stalled_for = None
        return urgent

    def _buffer(self, key: str, state: RunState | None = None) -> PointBuffer | None:
        buffers = (state or self.state).buffers
        buffer = buffers.get(key)
        if buffer is None:
            if len(buffers) >= MAX_SERIES:
                echoed = self._echoed(buffers)
                if echoed is None:
                    if len(self.untracked) < MAX_SERIES:
                        self.untracked.add(key)
                    return None
                del buffers[echoed]  # a configuration value, printed once at the start
                if len(self.untracked) < MAX_SERIES:
                    self.untracked.add(echoed)
            buffer = buffers[key] = PointBuffer()
        return buffer

    def _echoed(self, buffers: dict[str, PointBuffer]) -> str | None:
        """Return the first key of ``buffers`` with one point that no role takes (a value
        of a configuration echoed at the start: detectron2 prints hundreds), or None."""
        try:
            taken = set(choose_columns(list(buffers), self.hints).roles.values())
        except KeyError:
            return None
        return next((k for k, b in buffers.items() if b.total <= 1 and k not in taken), None)

    def add_lines(self, lines: list[str]) -> bool:
        """Parse many lines; return True when one carried a non-finite loss or gradient norm.

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
            self._add_records(self.parser.decide("text"))
        if self.state.held:  # the stream's first step: the held records' too
            urgent = self.add_record({"step": steps[0], "loss": values[0]})
            return urgent | (self._flush_fast(steps[1:], values[1:]) if steps[1:] else False)
        count = len(values)
        state = self.state
        if self.split and self._may_restart(state, steps):
            # a step counter that goes back: the records decide, one by one
            urgent = False
            for step, value in zip(steps, values, strict=True):
                self.lines += 1
                urgent |= self.add_record({"step": step, "loss": value})
            self.last_input_time = time.monotonic()
            return urgent
        state.x_kind, state.step_key = "step", "step"
        self.lines += count
        self.last_input_time = time.monotonic()
        buffer = self._buffer("loss")
        if buffer is None:
            return False
        if state.offset:
            steps = [step + state.offset for step in steps]
        buffer.extend(steps, values)
        state.rows += count
        self.points += count
        self.last_step = state.last_step = steps[-1]
        if self.split:
            if state.first_step is None:
                state.first_step = steps[0] - state.offset
            state.last_raw = steps[-1] - state.offset
        now = time.monotonic()
        self.last_point_time = now
        if self.first_point_time is None:
            self.first_point_time = now
        self.stalled_for = None
        return not all(map(math.isfinite, values))

    def _may_restart(self, state: RunState, steps: list[float]) -> bool:
        """Return True when nanoGPT ``steps`` may restart the step counter (or one waits
        for its decision): they go back, or start at or before the run's last step."""
        if state.pending is not None:
            return True
        last = state.last_raw
        return (last is not None and steps[0] < last) or bool((np.diff(steps) < 0).any())

    def mark_stall(self, seconds: float) -> None:
        """Record that no point arrived for ``seconds``."""
        self.stalled_for = seconds

    def run(self, state: RunState | None = None) -> Run | None:
        """Return the current run so far (or ``state``'s), or None before any loss value
        arrived."""
        state = state or self.state
        names = list(state.buffers)
        if not names:
            return None
        choice = choose_columns(names, self.hints)
        roles = dict(choice.roles)
        if not any(r in roles for r in LOSS_ROLES):
            return None
        notes: list[str] = []
        if not (self.hints and self.hints.val):
            roles = promote_single_loss(roles, notes)
        summed = set(self.parser.totals or ())
        totals = components.parts_of(names, roles)  # total -> its parts, as check marks them
        roles, part_notes, parts = components.with_parts(names, roles, summed)
        x_kind = state.x_kind or "step"
        meta = self._epoch_meta(state, x_kind)
        series = {}
        for role, name in roles.items():
            points = order_points(*state.buffers[name].arrays(), None, by_row=x_kind != "index")
            steps, values = points.steps, points.values
            notes.extend(f"'{name}': {note}" for note in points.notes)
            if points.by_row:
                notes.append(f"{role}: '{name}' steps go backwards often: used row order")
            if steps.size:
                order = np.argsort(steps, kind="stable")
                if (steps[1:] < steps[:-1]).any():
                    steps, values = steps[order], values[order]
            own = {LOSS_PARTS: " + ".join(totals[name])} if name in totals else {}
            series[role] = Series(
                role=role, column=name, steps=steps, values=values,
                x_kind="index" if points.by_row else x_kind,
                meta={**points.meta, **own, **meta} if role == TRAIN else {**points.meta, **own},
            )  # fmt: skip
        used = ", ".join(f"{r}={n}" for r, n in roles.items() if r not in parts)
        x_name = state.step_key if x_kind != "index" and state.step_key else "row order"
        # in check's order: the columns and x, its reader's notes, then the table's
        notes = [
            f"columns: {used}; x: {x_name}", *self.parser.notes(), *notes, *part_notes,
            *self.notes, *state.notes,
        ]  # fmt: skip
        malformed, first = self.malformed, self.first_malformed
        if self.parser.kind != "jsonl" and self.parser.malformed:  # (else its reader's note)
            malformed += self.parser.malformed
            first = min(n for n in (first, self.parser.first_malformed) if n is not None)
        if malformed:
            notes.append(
                f"skipped {malformed:,} malformed line{'s' * (malformed != 1)} "
                f"(first at line {first})"
            )
        if self.untracked:
            notes.append(
                f"tracked the first {MAX_SERIES} keys only; ignored "
                f"{', '.join(sorted(self.untracked)[:3])}{' and more' * (len(self.untracked) > 3)}"
            )
        reader = f"live:{self.parser.kind}"
        run = Run(self.source, reader, series, tuple(notes), group=state.label())
        return mark_smoothing(run, set(names))

    @staticmethod
    def _epoch_meta(state: RunState, x_kind: XKind) -> dict[str, str]:
        """Return the training series' meta on epochs, as ``check`` gives it: one step an
        epoch on an epoch axis, else the steps an epoch takes from an epoch key logged
        beside the steps."""
        if x_kind == "epoch":
            return {STEPS_PER_EPOCH: "1"}
        if x_kind != "step" or not state.epochs[0]:
            return {}
        steps, epochs = (np.frombuffer(a, dtype=np.float64) for a in state.epochs)
        return steps_per_epoch(epochs, steps)

    def report(self, *, finished: bool = False) -> RunReport | None:
        """Return the report of the current run so far, judged now (None before any loss
        value); with ``finished`` the run is judged as a whole run (the lines still held
        to decide the form read first), else as a run in progress.  The report is kept:
        :attr:`findings` and :meth:`should_stop` read it."""
        if finished:
            self.end_of_input()
        report = self._judge(self.state, finished=finished)
        if report is None:
            return None
        if self.stalled_for is not None:
            report.findings.append(self._stall_finding(self.stalled_for))
        self.last = report
        return report

    def others(self) -> list[tuple[RunReport, list[Finding], float]]:
        """Return, for each run other than the current one that got records since the
        last call (trials logging in turn), its report judged now as a run in progress,
        its findings that are new or changed since it was last judged, and its last step."""
        out = []
        for state in self.touched.values():
            if state is self.state:
                continue
            report = self._judge(state, finished=False)
            if report is not None:
                out.append((report, self.changes(report, state), state.last_step))
        self.touched = {}
        return out

    def _judge(self, state: RunState, *, finished: bool) -> RunReport | None:
        run = self.run(state)
        if run is None:
            return None
        return evaluate(run, self.rules, self.context, partial=not finished)

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
        if self.last is None:
            if level not in SEVERITY_RANK:
                raise ConfigError(f"'{level}' is not a severity (error, warning, info)")
            return None
        return stop_finding(self.last, level)

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

    def changes(self, report: RunReport, state: RunState | None = None) -> list[Finding]:
        """Return the findings of the current run's (or ``state``'s) ``report`` that are
        new or changed materially since the last call: a new severity, a new start step,
        or a count (of NaN, spikes, ...) that doubled."""
        seen = (state or self.state).seen
        out = []
        for finding in report.active:
            key = (finding.rule, finding.series)
            mark = _material(finding)
            if seen.get(key) != mark:
                seen[key] = mark
                out.append(finding)
        return out

    def rate(self) -> float:
        """Return points per second since the first point."""
        if self.first_point_time is None or self.last_point_time is None:
            return 0.0
        elapsed = self.last_point_time - self.first_point_time
        return self.points / elapsed if elapsed > 0 else 0.0


def _urgent(record: Mapping[str, float]) -> bool:
    """Return True when ``record`` carries a non-finite loss or gradient norm (judged at
    once, never held)."""
    return any(not math.isfinite(v) and _alarming(k) for k, v in record.items())


def _material(finding: Finding) -> tuple[Any, ...]:
    """Return what must change for a finding to be shown again: its severity, where it
    starts, and its count to the nearest power of two."""
    count = finding.evidence.get("count")
    scale = int(math.log2(count)) if isinstance(count, int | float) and count >= 1 else None
    return finding.severity, finding.evidence.get("start_step"), scale


def stop_finding(report: RunReport, level: str) -> Finding | None:
    """Return the first counted finding of ``report`` at or above ``level`` (None: none).

    Raises :class:`~lossdoctor.errors.ConfigError` for a level that is no severity."""
    if level not in SEVERITY_RANK:
        raise ConfigError(f"'{level}' is not a severity (error, warning, info)")
    return next((f for f in report.active if reaches(f, level)), None)


def reaches(finding: Finding, level: str) -> bool:
    """Return True when ``finding`` is at or above severity ``level``."""
    return SEVERITY_RANK[finding.severity] >= SEVERITY_RANK[level]


def _alarming(name: str) -> bool:
    """Return True when a non-finite value of the series ``name`` is judged at once: a loss,
    or a gradient norm (the Trainer logs a finite loss over a NaN step, its norm shows it)."""
    return "loss" in name.lower() or normalise(name) in GRAD_NORM_NAMES
