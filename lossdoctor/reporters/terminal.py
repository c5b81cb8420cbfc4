"""The terminal report (rich): verdict, series table, findings with evidence, fixes.

The only module that imports rich.  Colour follows rich's terminal detection
(none when piped; ``NO_COLOR`` honoured).
"""

from __future__ import annotations

from typing import IO, Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from lossdoctor.report import best_of, last_text, run_name
from lossdoctor.report import number_text as _fmt
from lossdoctor.wording import counted

VERDICT_STYLE = {
    "healthy": "bold green",
    "warning": "bold yellow",
    "failing": "bold red",
    "error": "bold red",
}
SEVERITY_MARK = {"error": ("✖", "red"), "warning": ("▲", "yellow"), "info": ("●", "cyan")}
#: Fixes listed per run at the most.
MAX_FIXES = 6
#: Likely causes listed per finding at the most.
MAX_CAUSES = 3
#: Width used when the output is not a terminal (CI logs are wide).
WIDE = 160
EVIDENCE_HIDDEN = {"series", "column", "thresholds"}


def _steps(summary: dict[str, Any]) -> str:
    return f"{_fmt(summary['first_step'])}–{_fmt(summary['last_step'])}"


def _series_lines(run: dict[str, Any]) -> list[Text]:
    lines = []
    for role, s in run["series"].items():
        bad = f", {s['non_finite']} NaN/Inf" if s["non_finite"] else ""
        ppl = f" (ppl {_fmt(s['perplexity_last'])})" if "perplexity_last" in s else ""
        points = counted(s["points"], "point")
        line = Text("  ")
        line.append(f"{role:<6}", style="bold")
        line.append(f" {s['column']}: {points}{bad}, {s['x']} {_steps(s)}; ")
        label, best, best_step = best_of(s)
        line.append(
            f"first {_fmt(s['first'])}, {label} {_fmt(best)} @{_fmt(best_step)}, "
            f"last {last_text(s)}{ppl}"
        )
        lines.append(line)
        if s.get("sparkline"):
            lines.append(Text(f"         {s['sparkline']}", style="cyan"))
            marks = _marker_line(run, role, s)
            if marks is not None:
                lines.append(marks)
    return lines


def _marker_line(run: dict[str, Any], role: str, summary: dict[str, Any]) -> Text | None:
    """Return a line of ^ marks under a sparkline where the series' problem findings are."""
    width = len(summary["sparkline"])
    first, last = summary.get("first_step"), summary.get("last_step")
    if width < 2 or not isinstance(first, int | float) or not isinstance(last, int | float):
        return None
    marks: dict[int, str] = {}
    labels = []
    for f in run["findings"]:
        step = f["evidence"].get("start_step")
        if f["series"] != role or f["severity"] == "info" or f.get("superseded_by"):
            continue
        if not isinstance(step, int | float):
            continue
        span = (last - first) or 1
        pos = round((step - first) / span * (width - 1))
        marks[max(0, min(width - 1, pos))] = "^"
        labels.append(f"{f['code']} @{_fmt(step)}")
    if not marks:
        return None
    row = "".join(marks.get(i, " ") for i in range(width))
    return Text(f"         {row}  {', '.join(labels)}", style="red")


def _evidence_line(evidence: dict[str, Any], x_kind: str = "step") -> str:
    parts = []
    if "start_step" in evidence:
        end = evidence.get("end_step")
        span = f"{evidence['start_step']}" + (
            f"–{end}" if end is not None and end != evidence["start_step"] else ""
        )
        parts.append(f"{'epochs' if x_kind == 'epoch' else 'steps'} {span}")
    if "line" in evidence:
        parts.append(f"line {evidence['line']}")
    for key, value in evidence.items():
        if key in EVIDENCE_HIDDEN or key in ("start_step", "end_step", "line"):
            continue
        parts.append(f"{key}={_fmt(value)}")
    limits = evidence.get("thresholds") or {}
    if limits:
        parts.append("thresholds: " + ", ".join(f"{k} {_fmt(v)}" for k, v in limits.items()))
    return "; ".join(parts)


def _render_run(console: Console, run: dict[str, Any]) -> None:
    verdict = run["verdict"]
    head = Text()
    head.append(run_name(run), style="bold")
    if verdict == "error":
        head.append("  ERROR  ", style=VERDICT_STYLE[verdict])
        head.append(run["error"])
        console.print(head)
        return
    head.append(f"  [{run['reader']}]  ", style="dim")
    head.append(verdict.upper(), style=VERDICT_STYLE[verdict])
    if run["drivers"]:
        head.append(f"  ({', '.join(run['drivers'])})")
    console.print(head)
    for line in _series_lines(run):
        console.print(line)
    findings = run["findings"]
    if findings:
        console.print(Text("findings", style="bold"))
    for f in findings:
        mark, style = SEVERITY_MARK[f["severity"]]
        line = Text("  ")
        dim = bool(f.get("superseded_by"))
        line.append(f"{mark} {f['severity']:<7} ", style="dim" if dim else style)
        line.append(f"{f['code']} {f['rule']}", style="dim" if dim else "bold")
        line.append(f"  {f['message']}", style="dim" if dim else "")
        if dim:
            line.append(f"  (explained by {f['superseded_by']})", style="dim")
        console.print(line)
        x_kind = run["series"].get(f["series"], {}).get("x", "step")
        evidence = _evidence_line(f["evidence"], x_kind)
        if evidence and f["severity"] != "info":
            console.print(Text(f"      evidence: {evidence}", style="dim"))
        if f["severity"] != "info" and not dim:
            causes = f.get("causes", [])
            for cause in [c for c in causes if c["likely"]][:MAX_CAUSES]:
                source = f" (from {cause['signal']})" if cause.get("signal") else ""
                line = Text(f"      likely cause{source}: ", style="dim")
                line.append(cause["cause"], style="bold")
                if cause.get("evidence"):
                    line.append(f" ({cause['evidence']})")
                console.print(line)
            others = [c["cause"] for c in causes if not c["likely"]][:MAX_CAUSES]
            if others:
                console.print(Text(f"      other causes: {'; '.join(others)}", style="dim"))
    fixes: dict[str, str] = {}
    for f in findings:
        if f["severity"] == "info" and run["verdict"] != "healthy":
            continue
        if f.get("superseded_by") or f["rule"] in ("no-validation", "smooth-decline"):
            continue
        for fix in f["fixes"]:
            fixes.setdefault(fix["title"], fix["why"])
    if fixes:
        console.print(Text("what to do", style="bold"))
        for i, (title, why) in enumerate(list(fixes.items())[:MAX_FIXES], start=1):
            line = Text(f"  {i}. ")
            line.append(title, style="bold")
            line.append(f" — {why}")
            console.print(line)
    comparison = run.get("comparison")
    if comparison:
        console.print(Text(f"compared with {comparison['reference']}", style="bold"))
        for check in comparison["checks"]:
            mark, style = ("✓", "green") if check["passed"] else ("✖", "red")
            line = Text(f"  {mark} {check['check']:<12} ", style=style)
            line.append(check["message"])
            console.print(line)
    for note in run["notes"]:
        console.print(Text(f"  note: {note}", style="dim"))


class _PipeConsole(Console):
    """A console that lets a closed output raise :class:`BrokenPipeError` to its caller
    (rich's own handler exits with code 1, which would replace the diagnosis's)."""

    def on_broken_pipe(self) -> None:
        raise BrokenPipeError


def render(
    report: dict[str, Any],
    out: IO[str] | None = None,
    *,
    width: int | None = None,
    sort: str = "input",
) -> None:
    """Write the human-readable report of every run to ``out`` (stdout by default); with
    several runs, a summary table after them with rows in ``sort`` order.

    Raises :class:`BrokenPipeError` when the reader of ``out`` has gone away."""
    console = _PipeConsole(file=out, width=width, highlight=False)
    if not console.is_terminal:
        console.soft_wrap = True  # one finding per line in logs and pipes: grep-able
        if width is None:
            console.width = WIDE
    runs = report["runs"]
    for i, run in enumerate(runs):
        if i:
            console.print()
        _render_run(console, run)
    if len(runs) > 1:
        from lossdoctor.reporters.summary import Summary

        summary = Summary()
        for run in runs:
            summary.add(run)
        console.print()
        _print_summary(console, summary.to_dict(sort))
    if report.get("files"):
        console.print()
        _render_files(console, report["files"])


def _render_files(console: Console, files: list[dict[str, str]]) -> None:
    """Print every file met in a folder: read (into which run) or skipped (and why)."""
    read = sum(1 for f in files if f["status"] == "read")
    skipped = len(files) - read
    console.print(Text(f"files: {read} read in folders, {skipped} skipped", style="bold"))
    for note in files:
        style = "" if note["status"] == "read" else "dim"
        line = f"  {note['status']:<8} {note['path']}  ({note['detail']})"
        console.print(Text(line, style=style))


def render_summary(
    summary: dict[str, Any], out: IO[str] | None = None, *, width: int | None = None
) -> None:
    """Write the fleet summary (a ``Summary.to_dict()``): one row per run, the totals and
    the most frequent findings.

    Raises :class:`BrokenPipeError` when the reader of ``out`` has gone away."""
    console = _PipeConsole(file=out, width=width, highlight=False)
    if not console.is_terminal and width is None:
        console.width = WIDE
    _print_summary(console, summary)
    if summary["totals"]["findings"]:
        from lossdoctor.reporters.summary import runs_text

        console.print(Text("most frequent findings:", style="bold"))
        for f in summary["totals"]["findings"]:
            console.print(f"  {f['finding']}: {runs_text(f['runs'])}")


def _print_summary(console: Console, summary: dict[str, Any]) -> None:
    from lossdoctor.reporters.summary import totals_line

    table = Table(box=None, pad_edge=False, show_edge=False, title=None)
    for header in ("run", "verdict", "final", "best", "top finding"):
        table.add_column(header, no_wrap=header != "top finding")
    for r in summary["runs"]:
        table.add_row(
            Text(r["run"]),  # a name is not markup: "sweep.csv [trial_id=3]" keeps its brackets
            Text(r["verdict"], style=VERDICT_STYLE[r["verdict"]]),
            _fmt(r["final"]),
            _fmt(r["best"]),
            r["top_finding"] or "–",
        )
    console.print(table)
    console.print(Text(totals_line(summary), style="bold"))
