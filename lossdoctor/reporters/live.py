"""How live diagnosis is shown: one plain line per new or changed finding (pipes, CI
logs, ``nohup``), or a rich ``Live`` panel on a terminal."""

from __future__ import annotations

import sys
from typing import IO, Any

import numpy as np
from rich.console import Console, Group
from rich.live import Live
from rich.panel import Panel
from rich.text import Text

from lossdoctor.live.monitor import LiveMonitor
from lossdoctor.report import Finding, RunReport
from lossdoctor.reporters.sparkline import sparkline

SEVERITY_STYLE = {"error": "red", "warning": "yellow", "info": "cyan"}
#: Points drawn in the panel's sparkline.
RECENT_POINTS = 2000
SPARK_WIDTH = 60
#: TensorBoard's default smoothing weight for the displayed EMA.
EMA_WEIGHT = 0.6


def finding_line(finding: Finding, step: float, run: str = "", x_kind: str = "step") -> str:
    """Return the one-line alert for a finding at ``step`` (an epoch when ``x_kind`` is
    ``epoch``) of the stream's ``run``, named when the stream holds several
    (``[trial_id=3]``)."""
    named = f"[{run}] " if run else ""
    return (
        f"lossdoctor: {x_word(x_kind)} {step:g}: {named}{finding.severity} {finding.code} "
        f"{finding.rule}: {finding.message}"
    )


def x_word(x_kind: str) -> str:
    """Return what a run's x counts, as said in a line: ``epoch`` or ``step``."""
    return "epoch" if x_kind == "epoch" else "step"


def _x_kind(report: RunReport) -> str:
    train = report.series.get("train") or next(iter(report.series.values()), None)
    return train.x_kind if train is not None else "step"


def ended_line(report: RunReport) -> str:
    """Return the line that says a run of the stream ended, with its verdict as a whole
    run and the findings that drove it."""
    named = f"[{report.group}] " if report.group else ""
    train = report.series.get("train") or next(iter(report.series.values()), None)
    at = f" at {x_word(train.x_kind)} {train.last_step:g}" if train is not None else ""
    drivers = ", ".join(report.drivers)
    why = f" ({drivers})" if drivers else ""
    return f"lossdoctor: {named}run ended{at}: {report.verdict}{why}; a new run started"


def debiased_ema(values: np.ndarray, weight: float = EMA_WEIGHT) -> float:
    """Return TensorBoard's debiased exponential moving average at the last finite value."""
    last = 0.0
    count = 0
    for value in values[np.isfinite(values)][-RECENT_POINTS:]:
        last = last * weight + (1 - weight) * float(value)
        count += 1
    return last / (1 - weight**count) if count else float("nan")


class PlainDisplay:
    """Writes one flushed line per new or changed finding."""

    def __init__(self, out: IO[str] | None = None) -> None:
        self.out = out or sys.stdout

    def start(self) -> None:
        """Begin showing (nothing to set up)."""

    def stop(self) -> None:
        """Stop showing (nothing to tear down)."""

    def lines(self, lines: list[str]) -> None:
        """Pass input lines through (``--tee``)."""
        self.out.write("\n".join(lines) + "\n")
        self.out.flush()

    def change(self, findings: list[Finding], report: RunReport, step: float) -> None:
        """Print the findings that are new or changed."""
        for finding in findings:
            if finding.severity != "info":
                self.out.write(finding_line(finding, step, report.group, _x_kind(report)) + "\n")
        self.out.flush()

    def ended(self, report: RunReport) -> None:
        """Say that a run of the stream ended, with its verdict."""
        self.out.write(ended_line(report) + "\n")
        self.out.flush()

    def tick(self, monitor: LiveMonitor, report: RunReport | None) -> None:
        """Nothing between changes."""


class PanelDisplay:
    """A live panel: sparkline of the recent loss, current / best / smoothed values,
    points per second, and the findings so far."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console()
        self.live = Live(console=self.console, refresh_per_second=4, transient=False)
        self.findings: dict[tuple[str, str], Finding] = {}

    def start(self) -> None:
        """Show the panel."""
        self.live.start()

    def stop(self) -> None:
        """Remove the panel's live updating."""
        self.live.stop()

    def lines(self, lines: list[str]) -> None:
        """Print input lines above the panel (``--tee``)."""
        for line in lines:
            self.live.console.print(line, markup=False, highlight=False)

    def ended(self, report: RunReport) -> None:
        """Print that a run of the stream ended, above the panel (which shows the next)."""
        self.live.console.print(ended_line(report), markup=False, highlight=False)
        self.findings = {}

    def change(self, findings: list[Finding], report: RunReport, step: float) -> None:
        """Remember the findings to show."""
        del findings, step
        self.findings = {(f.rule, f.series): f for f in report.active}

    def tick(self, monitor: LiveMonitor, report: RunReport | None) -> None:
        """Redraw the panel."""
        del report
        self.live.update(self._render(monitor))

    def _render(self, monitor: LiveMonitor) -> Any:
        run = monitor.run()
        rows: list[Any] = []
        if run is None or "train" not in run.series:
            rows.append(Text(f"waiting for loss values ({monitor.lines} lines read)", style="dim"))
        else:
            train = run.series["train"]
            values = train.values[-RECENT_POINTS:]
            finite = values[np.isfinite(values)]
            best = (
                float(np.min(train.values[np.isfinite(train.values)]))
                if finite.size
                else float("nan")
            )
            head = Text()
            head.append(f"step {monitor.last_step:g}  ", style="bold")
            head.append(
                f"loss {train.values[-1]:.4g}  best {best:.4g}  "
                f"smoothed {debiased_ema(values):.4g}  "
            )
            head.append(f"{monitor.rate():.1f} points/s", style="dim")
            rows += [
                head,
                Text(
                    sparkline(values, SPARK_WIDTH, log=bool(finite.size and (finite > 0).all())),
                    style="cyan",
                ),
            ]
        for finding in self.findings.values():
            if finding.severity == "info":
                continue
            line = Text(f"{finding.severity:<8}", style=SEVERITY_STYLE[finding.severity])
            line.append(f"{finding.code} {finding.rule}: {finding.message}")
            rows.append(line)
        label = monitor.state.label()
        title = f"lossdoctor watch {monitor.source}" + (f" [{label}]" if label else "")
        return Panel(Group(*rows), title=title, expand=True)
