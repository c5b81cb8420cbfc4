"""The runs of a live stream: a sweep's log names the run of each line (a ``trial_id``,
``run`` or ``version`` key, or ``--group-by KEY``), and a log of runs one after another
starts each from scratch (its step counter back at the first step).  Each run gets its
own points and its own judgement, as ``check`` gives one report per run of such a file.

A step counter that goes back to (or before) the first step opens a *pending* restart:
its points wait (they are not judged with the run before, so a new run is never a loss
jump of the last one) until :data:`~lossdoctor.ingest.sessions.EDGE_POINTS` losses
decide, with the test ``check`` uses (:func:`~lossdoctor.ingest.sessions.goes_on`),
whether the same training resumed with a fresh counter (its steps shifted to follow on)
or a new run started."""

from __future__ import annotations

import functools
import math
from array import array
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import numpy as np

from lossdoctor.ingest.columns import (
    GROUP_NAMES,
    ColumnHints,
    choose_columns,
    is_step_name,
    normalise,
    step_column,
)
from lossdoctor.ingest.sessions import EDGE_POINTS, RECENT_POINTS, goes_on
from lossdoctor.live.buffer import PointBuffer
from lossdoctor.live.parse import LineParser
from lossdoctor.model import TRAIN, VAL, XKind
from lossdoctor.report import RunReport

#: ``--group-by none``: no run key, not even one named like a run id.
NO_GROUPING = "none"
#: Records a pending restart holds at most before it is decided with what it has.
MAX_PENDING = 1000
#: Record shapes whose loss key is remembered at most.
MAX_SHAPES = 64
#: Records at the start of a stream in which a key naming the run is looked for.
GROUP_KEY_RECORDS = 5
#: Names met once each, none again, before a run key (not ``--group-by``'s) is taken for
#: a key with a new value on each line: trials logging in turn name each other before
#: any comes again, as many as the sweep runs at once.
MAX_NAMES_ONCE = 64


def record_step_key(record: Mapping[str, float], hints: ColumnHints | None) -> str | None:
    """Return the key of ``record``'s step: ``--step-col``'s when the record holds it,
    else the one ``check`` takes for a column (``current_steps``, ``global_step``, ...,
    an epoch key only without a step key); None when the record holds none."""
    if hints is not None and hints.step and hints.step in record:
        return hints.step
    return _step_column(tuple(record))


@functools.lru_cache(maxsize=256)
def _step_column(keys: tuple[str, ...]) -> str | None:
    """Return :func:`step_column` of a record's keys (records repeat a few shapes)."""
    return step_column(keys)


class RunState:
    """What the live monitor holds of one run of the stream: its points, what its steps
    count, the findings already shown, and where its step counter stands."""

    def __init__(self, base: str = "", session: int = 1) -> None:
        #: The run's name in a sweep (``trial_id=3``), "" in a stream of one run.
        self.base = base
        #: Which run of the stream from scratch this is, within ``base``.
        self.session = session
        self.buffers: dict[str, PointBuffer] = {}
        self.rows = 0
        #: The step of the run's last record (shifted like its points).
        self.last_step = 0.0
        self.x_kind: XKind | None = None
        #: The key of the steps that set ``x_kind`` (None: rows counted).
        self.step_key: str | None = None
        self.seen: dict[tuple[str, str], tuple[Any, ...]] = {}
        self.notes: list[str] = []
        #: The raw step of the session's first loss record and of its last one.
        self.first_step: float | None = None
        self.last_raw: float | None = None
        #: Added to raw steps: the same training resumed with a fresh step counter.
        self.offset = 0.0
        #: The loss key for each shape of record met (keys held, the record's keys).
        self._loss_keys: dict[tuple[int, tuple[str, ...]], str | None] = {}
        #: Records waiting for the decision on a restarted step counter: (raw step, record).
        self.pending: list[tuple[float, dict[str, float]]] | None = None
        #: Records without a step at the run's start, held for the first step (None: none
        #: are held any more).
        self.held: list[dict[str, float]] | None = []
        #: The steps and epochs of the run's first records that log an epoch beside a step.
        self.epochs = (array("d"), array("d"))

    def label(self, sessions: int = 0, *, final: bool = False) -> str:
        """Return the run's name in reports: its group, and which session when the
        stream holds several (``sessions``: how many are known, at the least this one's
        number): ``session 2``, or ``session 2 of 3`` when ``final``."""
        if max(sessions, self.session) <= 1:
            return self.base
        session = f"session {self.session}" + (f" of {sessions}" if final else "")
        return f"{self.base}, {session}" if self.base else session

    def loss_key(self, hints: ColumnHints | None, record: Mapping[str, float]) -> str | None:
        """Return the key of the loss whose steps say where a run starts: the training
        loss's, else the validation loss's, among the run's keys and ``record``'s (None
        before one was seen)."""
        known = (len(self.buffers), tuple(record))
        if known in self._loss_keys:
            return self._loss_keys[known]
        new = tuple(k for k in record if k not in self.buffers and not is_step_name(k))
        try:
            roles = choose_columns([*self.buffers, *new], hints).roles
        except KeyError:
            return None
        if len(self._loss_keys) >= MAX_SHAPES:
            self._loss_keys.clear()
        key = self._loss_keys[known] = roles.get(TRAIN) or roles.get(VAL)
        return key

    def loss_values(self, key: str) -> np.ndarray:
        """Return the run's values of ``key`` as judged (in arrival order)."""
        buffer = self.buffers.get(key)
        return buffer.arrays()[1] if buffer is not None else np.empty(0)

    def interval(self, key: str) -> float:
        """Return the typical step between two points of ``key`` (1 when unknown)."""
        buffer = self.buffers.get(key)
        if buffer is None:
            return 1.0
        steps = buffer.arrays()[0][-RECENT_POINTS:]
        forward = np.diff(steps)
        forward = forward[forward > 0]
        return float(np.median(forward)) if forward.size else 1.0

    def restarts(self, step: float) -> bool:
        """Return True when a loss record at raw ``step`` goes back to (or before) the
        session's first step: a run from scratch or a resume with a fresh counter."""
        return (
            self.first_step is not None
            and self.last_raw is not None
            and step < self.last_raw
            and step <= self.first_step
        )

    def decision(self, key: str, *, final: bool = False) -> bool | None:
        """Return whether the pending restart is the same training resumed (True), a new
        run (False), or None while fewer than EDGE_POINTS losses came after it (and the
        pending records stay below :data:`MAX_PENDING`; ``final``: decide now)."""
        pending = self.pending or []
        after = np.array([r[key] for _, r in pending if key in r], dtype=np.float64)
        if not final and after.size < EDGE_POINTS and len(pending) < MAX_PENDING:
            return None
        values = self.loss_values(key)
        return goes_on(values[-RECENT_POINTS:], after, values[:EDGE_POINTS])


def group_key(record_keys: list[str], hints: ColumnHints | None) -> str | None:
    """Return the key naming the run of each record: ``--group-by``'s (None for
    ``none``), else the first of ``record_keys`` named like a run id."""
    wanted = hints.group if hints else None
    if wanted:
        if normalise(wanted) == NO_GROUPING:
            return None
        return next((k for k in record_keys if normalise(k) == normalise(wanted)), wanted)
    return next((k for k in record_keys if normalise(k) in GROUP_NAMES), None)


def group_text(value: Any) -> str | None:
    """Return a run name as logged: text as it is, a whole number without ``.0``."""
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        return f"{value:g}" if value.is_integer() else repr(value)
    return str(value)


class StreamRuns:
    """The runs of a stream and which one each record belongs to: the live monitor's
    base (it supplies how a record's points are kept and how a run is judged)."""

    hints: ColumnHints | None
    parser: LineParser
    notes: list[str]

    def _start_runs(self) -> None:
        #: The run the stream is writing now.
        self.state = RunState()
        #: The latest run of each name in a sweep (a name seen again reopens its run).
        self.states: dict[str, RunState] = {"": self.state}
        #: Every run in the order it started: (name, session).
        self.order: list[tuple[str, int]] = [("", 1)]
        #: The reports of runs that ended (judged as finished runs).
        self.closed: dict[tuple[str, int], RunReport] = {}
        #: Runs that ended since :meth:`take_ended` was last called.
        self.ended: list[RunReport] = []
        #: The key naming each record's run (None: none found yet, or grouping is off).
        self.group_key: str | None = None
        self.group_checked = 0
        self.group_confirmed = False
        #: Runs named again after another one (trials logging in turn): a switch ends none.
        self.interleaved = False
        #: Runs another name followed once: they ended when that name holds over two
        #: records, and none ended when one of them is named again (trials in turn).
        self.leaving: list[RunState] = []
        #: Runs other than the current one that got records since they were last judged.
        self.touched: dict[int, RunState] = {}

    @property
    def buffers(self) -> dict[str, PointBuffer]:
        """Return the points of the current run, by key."""
        return self.state.buffers

    @property
    def rows(self) -> int:
        """Return the records of the current run."""
        return self.state.rows

    @property
    def x_kind(self) -> XKind | None:
        """Return what the current run's steps count (None before a record)."""
        return self.state.x_kind

    @property
    def seen(self) -> dict[tuple[str, str], tuple[Any, ...]]:
        """Return what was last shown of each finding of the current run."""
        return self.state.seen

    def _route(self, record: Mapping[str, float]) -> Mapping[str, float]:
        """Return ``record`` without its run key, after making its run the current one."""
        if self.group_key is None and self.group_checked < GROUP_KEY_RECORDS:
            self.group_checked += 1
            keys = list(self.parser.texts()) if self.parser.kind in ("csv", "jsonl") else []
            if self.hints is not None and self.hints.group:
                keys = [*keys, *record]
            self.group_key = group_key(keys, self.hints)
        key = self.group_key
        if key is None:
            return record
        name = group_text(self.parser.texts().get(key, record.get(key)))
        if key in record:
            record = {k: v for k, v in record.items() if k != key}
        if name is None:
            return record  # a line without a run name belongs to the run above
        self._switch(f"{key}={name}")
        return record

    def _switch(self, base: str) -> None:
        """Make the run named ``base`` the current one.  The run before has ended once
        ``base`` holds over two records; a run named again before that (trials logging
        in turn) shows that none ended: each is judged at the end."""
        state = self.state
        if base == state.base:
            if state.rows > 0:
                self.group_confirmed = True  # a name held over two records
                for leaving in self.leaving:
                    self._close(leaving)
                self.leaving = []
            return
        if not state.rows and state.pending is None and not state.base:
            state.base = base  # the stream's first record names its run
            self.states = {base: state}
            self.order = [(base, 1)]
            return
        auto = not (self.hints and self.hints.group)
        if (
            auto
            and not self.group_confirmed
            and base not in self.states
            and len(self.states) >= MAX_NAMES_ONCE
        ):
            self._ungroup()  # name after name, none twice: a new value each line
            return
        if not self.interleaved:
            self.leaving.append(state)
        reopened = self.states.get(base)
        if reopened is not None:
            if any(leaving is reopened for leaving in self.leaving):
                # runs that log in turn: none has ended; each is judged at the end
                self.interleaved = self.group_confirmed = True
                self.leaving = []
            elif not self.interleaved:
                # a run that ended is written again: it goes on (judged at the end)
                self.interleaved = self.group_confirmed = True
                for leaving in self.leaving:
                    self._close(leaving)
                self.leaving = []
            self.closed.pop((base, reopened.session), None)
            self.state = reopened
            return
        self.state = self.states[base] = RunState(base)
        self.order.append((base, 1))

    def _ungroup(self) -> None:
        """Put the runs split by a key that names no runs back together (one run)."""
        merged = RunState()
        for state in self.states.values():
            for key, buffer in state.buffers.items():
                steps, values = buffer.arrays()
                target = merged.buffers.setdefault(key, PointBuffer())
                target.extend(steps.tolist(), values.tolist())
            merged.rows += state.rows
            merged.x_kind = merged.x_kind or state.x_kind
            merged.first_step = state.first_step if merged.first_step is None else merged.first_step
            merged.last_raw, merged.last_step = state.last_raw, state.last_step
        self.notes.append(f"'{self.group_key}' names no runs (a new value on each line)")
        self._start_runs()
        self.state = self.states[""] = merged
        self.group_checked = GROUP_KEY_RECORDS

    def _settle(
        self, state: RunState, loss: str | None, *, final: bool = False
    ) -> tuple[RunState, bool]:
        """Decide ``state``'s pending restart once its losses allow (``final``: now, with
        what came); return the state that holds the run's newest points and whether a
        record let through carried a non-finite loss."""
        pending = state.pending
        if pending is None or loss is None:
            return state, False
        resumed = state.decision(loss, final=final)
        if resumed is None:
            return state, False
        state.pending = None
        first = pending[0][0]
        if resumed:
            state.offset = state.last_step + state.interval(loss) - first
            state.notes.append(
                f"the step counter restarted (step {first:g}) but the loss went on from where "
                f"it was: the same training resumed; its steps shifted by {state.offset:g}"
            )
        else:
            self._close(state, sessions=state.session + 1)
            new = self.states[state.base] = RunState(state.base, state.session + 1)
            if self.state is state:
                self.state = new
            self.order.append((new.base, new.session))
            state = new
        urgent = False
        key = record_step_key(pending[0][1], self.hints)
        for raw, record in pending:
            if loss in record:
                if state.first_step is None:
                    state.first_step = raw
                state.last_raw = raw
            urgent |= self._append(state, key, raw + state.offset, record)
        return state, urgent

    def _close(self, state: RunState, sessions: int = 0) -> None:
        """Judge ``state``'s run as a finished run and keep its report (it ended; its
        name counts ``sessions`` runs from scratch when a new one follows)."""
        if state.pending is not None:
            loss = state.loss_key(self.hints, state.pending[0][1])
            state = self._settle(state, loss, final=True)[0]
        report = self._judge(state, finished=True)
        if report is not None:
            report = replace(report, group=state.label(sessions))
            self.closed[(state.base, state.session)] = report
            self.ended.append(report)

    def take_ended(self) -> list[RunReport]:
        """Return the reports of the runs that ended since the last call (a sweep's run
        followed by another, a run from scratch followed by the next)."""
        ended, self.ended = self.ended, []
        return ended

    def reports(self, *, finished: bool = True) -> list[RunReport]:
        """Return the report of every run of the stream, in the order they started: the
        runs that ended as finished runs, the others judged now (``finished``: as whole
        runs, else as runs in progress), each named by its run (``trial_id=3``,
        ``session 2 of 3``) when the stream holds several.  A restarted step counter
        still waiting for its decision is decided with the losses that came; the lines
        held to decide the stream's form are read first."""
        self.end_of_input()
        for state in list(self.states.values()):
            if state.pending is not None:
                loss = state.loss_key(self.hints, state.pending[0][1])
                self._settle(state, loss, final=True)
        sessions: dict[str, int] = {}
        for base, session in self.order:
            sessions[base] = max(sessions.get(base, 0), session)
        out: list[RunReport] = []
        for base, session in self.order:
            report = self.closed.get((base, session))
            if report is None and self.states[base].session == session:
                state = self.states[base]
                report = self.report(finished=finished) if state is self.state else None
                report = report or self._judge(state, finished=finished)
            if report is not None:
                label = RunState(base, session).label(sessions[base], final=True)
                out.append(replace(report, group=label))
        return out

    def _append(
        self, state: RunState, key: str | None, step: float, record: Mapping[str, float]
    ) -> bool:
        """Keep ``record``'s points at ``step`` in ``state``'s run (the monitor's)."""
        raise NotImplementedError

    def _judge(self, state: RunState, *, finished: bool) -> RunReport | None:
        """Return ``state``'s run judged now (the monitor's)."""
        raise NotImplementedError

    def end_of_input(self) -> bool:
        """Read the lines held to decide the stream's form (the monitor's)."""
        raise NotImplementedError

    def report(self, *, finished: bool = False) -> RunReport | None:
        """Return the current run's report (the monitor's)."""
        raise NotImplementedError
