"""The live loop: take events from the sources, feed the monitor, judge as points come in,
and report changes through callbacks (the CLI decides how to show them).

Every line is parsed as it comes (a NaN or a spike is never dropped); judging is what
gives way when lines come faster than they are judged: a judgement is taken at most
every :data:`MIN_INTERVAL` seconds, and less often as it gets costlier, so that it takes
at most :data:`JUDGE_SHARE` of the time.
"""

from __future__ import annotations

import contextlib
import queue
import time
from collections.abc import Callable
from dataclasses import dataclass

from lossdoctor.live.monitor import LiveMonitor, stop_finding
from lossdoctor.live.sources import Event
from lossdoctor.report import Finding, RunReport

#: Seconds between two judgements at the least (grows with the judgement's own cost).
MIN_INTERVAL = 0.05
#: Judging may take at most this share of the time.
JUDGE_SHARE = 0.25
WAIT = 0.1


@dataclass
class Outcome:
    """How the loop ended: ``eof`` (every pipe ended), ``stop`` (a finding reached the stop
    level), ``done`` (the caller's ``finished`` said the writer ended), ``ended`` (the
    caller's ``should_end`` said so) or ``binary`` (a source carries binary data, ``what``
    says what it looks like: see :func:`~lossdoctor.live.sources.binary_kind`), with the
    last report and the triggering finding."""

    reason: str
    report: RunReport | None
    trigger: Finding | None = None
    what: str = ""


@dataclass
class Callbacks:
    """What the caller wants to hear about."""

    on_lines: Callable[[list[str]], None] | None = None
    #: New or changed findings of a run, its report, and the step they were judged at.
    on_change: Callable[[list[Finding], RunReport, float], None] | None = None
    on_tick: Callable[[LiveMonitor, RunReport | None], None] | None = None
    #: A run of the stream ended (a sweep's next run, or the next run from scratch, began):
    #: its report, judged as a finished run.
    on_run_end: Callable[[RunReport], None] | None = None


def run_loop(
    monitor: LiveMonitor,
    events: queue.Queue[Event],
    *,
    pipes: int,
    callbacks: Callbacks,
    stop_on: str | None = None,
    stall_after: float | None = None,
    finished: Callable[[], bool] | None = None,
    should_end: Callable[[], bool] | None = None,
) -> Outcome:
    """Run until every pipe ended, a finding reaches ``stop_on``, ``finished()`` (then the
    lines still coming are read until none came for :data:`WAIT` seconds: a background
    grandchild holding the pipe open is not waited for) or
    ``should_end()`` (at once).  The outcome's report judges the run as finished unless
    the loop stopped on a finding or ``should_end``.

    KeyboardInterrupt propagates to the caller (which prints the report so far).
    """
    open_pipes = pipes
    dirty = False
    urgent = False
    last_judge = 0.0
    interval = MIN_INTERVAL
    last_tick = 0.0
    drain_until: float | None = None
    report: RunReport | None = None
    while True:
        try:
            kind, payload = events.get(timeout=WAIT)
        except queue.Empty:
            kind, payload = "", None
        if kind == "lines":
            urgent |= monitor.add_lines(payload)
            dirty = True
            if callbacks.on_lines:
                callbacks.on_lines(payload)
            for ended in monitor.take_ended():
                if callbacks.on_run_end:
                    callbacks.on_run_end(ended)
                trigger = stop_finding(ended, stop_on) if stop_on else None
                if trigger is not None:  # a run of the stream ended at the stop level
                    return Outcome("stop", ended, trigger)
        elif kind == "skip":
            monitor.skip(payload)
        elif kind == "reset":
            monitor.reset(payload)
            dirty = True
        elif kind == "binary":
            return Outcome("binary", None, what=payload)
        elif kind == "eof":
            open_pipes -= 1
            if open_pipes <= 0 and events.empty():
                break
        now = time.monotonic()
        if should_end is not None and should_end():
            for _ in range(events.qsize()):  # the lines already read count in the report
                with contextlib.suppress(queue.Empty):
                    kind, payload = events.get_nowait()
                    if kind == "lines":
                        monitor.add_lines(payload)
            return Outcome("ended", monitor.report())
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
            report = monitor.report()
            others = monitor.others()  # the other runs written since: trials in turn
            cost = time.monotonic() - started
            interval = max(MIN_INTERVAL, cost / JUDGE_SHARE)
            last_judge = time.monotonic()
            dirty = urgent = False
            for other, changed, step in others:
                if changed and callbacks.on_change:
                    callbacks.on_change(changed, other, step)
                trigger = stop_finding(other, stop_on) if stop_on else None
                if trigger is not None:
                    return Outcome("stop", other, trigger)
            if report is not None:
                changed = monitor.changes(report)
                if changed and callbacks.on_change:
                    callbacks.on_change(changed, report, monitor.last_step)
                trigger = monitor.stop_finding(stop_on) if stop_on else None
                if trigger is not None:
                    return Outcome("stop", report, trigger)
        if callbacks.on_tick and now - last_tick >= WAIT * 2.5:
            callbacks.on_tick(monitor, report)
            last_tick = now
        if drain_until is None and finished is not None and finished():
            drain_until = now
        if drain_until is not None and kind == "":
            return Outcome("done", monitor.report(finished=True))
    return Outcome("eof", monitor.report(finished=True))
