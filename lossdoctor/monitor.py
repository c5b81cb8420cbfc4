"""``lossdoctor.Monitor``: the streaming monitor for Python code, a thin adapter over the
live monitor that ``lossdoctor watch`` uses (same buffers, same partial-run judging, same
memory bounds).  Points go in with :meth:`Monitor.add`; new or changed findings come out.
"""

from __future__ import annotations

import time
from typing import Any, Unpack

from lossdoctor.diagnosis import CheckOptions, Report, resolve_options
from lossdoctor.live.loop import JUDGE_SHARE, MIN_INTERVAL
from lossdoctor.live.monitor import LiveMonitor
from lossdoctor.report import Finding, RunReport
from lossdoctor.report import Report as RunsReport

#: The reader name monitor reports carry.
READER = "python"


class Monitor:
    """Judges a run while it trains.

    ``add(step, loss=..., eval_loss=..., grad_norm=..., learning_rate=...)`` takes the
    metrics of one logging step (names as in a log file: the roles are inferred the same
    way) and returns the findings that are new or changed severity.  Judging costs at
    most a quarter of the time between calls, as in ``watch`` (``min_interval`` seconds
    between two judgements at the least; 0 judges on every call); a non-finite loss or
    gradient norm is judged at once.  The options are those of ``lossdoctor check``.
    """

    def __init__(
        self,
        *,
        source: str = "<monitor>",
        min_interval: float = MIN_INTERVAL,
        **options: Unpack[CheckOptions],
    ) -> None:
        setup = resolve_options(**options)
        self._live = LiveMonitor(
            source, setup.rules, context=setup.context, hints=setup.hints, split=False
        )
        self._live.parser.kind = READER
        self._min_interval = min_interval
        self._interval = min_interval
        self._last_judge = -float("inf")
        self._dirty = False

    def add(self, step: float, /, **metrics: Any) -> list[Finding]:
        """Add the metrics logged at ``step`` (numbers, 0-d tensors or arrays; None is
        skipped); return the findings that are new or changed since the last call."""
        record = {"step": float(step)}
        for name, value in metrics.items():
            if value is not None:
                record[name] = float(value)
        urgent = self._live.add_record(record)
        self._dirty = True
        if urgent or time.monotonic() - self._last_judge >= self._interval:
            return self._judge()
        return []

    def _judge(self, *, finished: bool = False) -> list[Finding]:
        started = time.monotonic()
        report = self._live.report(finished=finished)
        self._last_judge = time.monotonic()
        if self._min_interval > 0:  # 0 judges on every call, however long judging takes
            self._interval = max(self._min_interval, (self._last_judge - started) / JUDGE_SHARE)
        self._dirty = False
        if report is None:
            return []
        return self._live.changes(report)

    @property
    def findings(self) -> list[Finding]:
        """Return the findings of the last judgement (superseded ones included)."""
        return self._live.findings

    def should_stop(self, level: str = "error") -> bool:
        """Return True when a counted finding of the last judgement is at or above
        ``level`` (``error``, ``warning`` or ``info``)."""
        return self._live.should_stop(level)

    def report(self, *, finished: bool = False) -> Report:
        """Return the report of the run so far, judged now; with ``finished``, judged as a
        whole run (rules that wait for the end may speak).  Its verdict is ``error`` with
        a note when no loss value was added yet."""
        if finished or self._dirty or self._live.last is None:
            self._judge(finished=finished)
        run = self._live.last or RunReport(
            source=self._live.source, reader=READER, error="no loss values were added"
        )
        return Report(RunsReport(runs=[run]))
