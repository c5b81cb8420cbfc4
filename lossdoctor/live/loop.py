"""The live loop: take events from the sources, feed the monitor, judge as points come in,
and report changes through callbacks (the CLI decides how to show them)."""

from __future__ import annotations

import queue
import time
from collections.abc import Callable
from dataclasses import dataclass

from lossdoctor.live.monitor import LiveMonitor, reaches
from lossdoctor.live.sources import Event
from lossdoctor.report import Finding, RunReport

#: Seconds between two judgements at the least (grows with the judgement's own cost).
MIN_INTERVAL = 0.05
#: Judging may take at most this share of the time.
JUDGE_SHARE = 0.25
WAIT = 0.1


@dataclass
class Outcome:
    """How the loop ended: ``eof``, ``stop`` (a finding reached the stop level) or ``done``
    (the caller's ``finished`` said so), with the last report and the triggering finding."""

    reason: str
    report: RunReport | None
    trigger: Finding | None = None


@dataclass
class Callbacks:
    """What the caller wants to hear about."""

    on_lines: Callable[[list[str]], None] | None = None
    on_change: Callable[[list[Finding], RunReport], None] | None = None
    on_tick: Callable[[LiveMonitor, RunReport | None], None] | None = None


def run_loop(
    monitor: LiveMonitor,
    events: queue.Queue[Event],
    *,
    pipes: int,
    callbacks: Callbacks,
    stop_on: str | None = None,
    stall_after: float | None = None,
    finished: Callable[[], bool] | None = None,
) -> Outcome:
    """Run until every pipe ended, a finding reaches ``stop_on``, or ``finished()``.

    KeyboardInterrupt propagates to the caller (which prints the report so far).
    """
    open_pipes = pipes
    dirty = False
    urgent = False
    last_judge = 0.0
    interval = MIN_INTERVAL
    last_tick = 0.0
    report: RunReport | None = None
    while True:
        try:
            kind, payload = events.get(timeout=WAIT)
        except queue.Empty:
            kind, payload = "", None
        if kind == "lines":
            if callbacks.on_lines:
                callbacks.on_lines(payload)
            urgent |= monitor.add_lines(payload)
            dirty = True
        elif kind == "reset":
            monitor.reset(payload)
            dirty = True
        elif kind == "eof":
            open_pipes -= 1
            if open_pipes <= 0 and events.empty():
                break
        now = time.monotonic()
        if (
            stall_after
            and monitor.last_point_time is not None
            and monitor.stalled_for is None
            and now - monitor.last_point_time >= stall_after
        ):
            monitor.mark_stall(now - monitor.last_point_time)
            dirty = urgent = True
        if dirty and (urgent or now - last_judge >= interval):
            started = time.monotonic()
            report = monitor.judge()
            cost = time.monotonic() - started
            interval = max(MIN_INTERVAL, cost / JUDGE_SHARE)
            last_judge = time.monotonic()
            dirty = urgent = False
            if report is not None:
                changed = monitor.changes(report)
                if changed and callbacks.on_change:
                    callbacks.on_change(changed, report)
                trigger = next((f for f in changed if stop_on and reaches(f, stop_on)), None)
                if trigger is not None:
                    return Outcome("stop", report, trigger)
        if callbacks.on_tick and now - last_tick >= WAIT * 2.5:
            callbacks.on_tick(monitor, report)
            last_tick = now
        if finished is not None and finished() and events.empty():
            return Outcome("done", monitor.judge())
    return Outcome("eof", monitor.judge())
