"""Findings, per-run reports and the verdict; the one versioned dict every reporter renders."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from lossdoctor import __version__
from lossdoctor.model import FileNote

#: Version of the JSON report layout; bumped on any incompatible change.
SCHEMA_VERSION = 1

Verdict = Literal["healthy", "warning", "failing", "error"]
SEVERITY_RANK: dict[str, int] = {"info": 1, "warning": 2, "error": 3}
FAIL_ON_CHOICES = ("error", "warning", "info", "never")


@dataclass(frozen=True)
class Finding:
    """One rule's conclusion about one series of a run."""

    rule: str
    code: str
    severity: str
    message: str
    series: str
    evidence: dict[str, Any]
    fixes: tuple[dict[str, str], ...]
    superseded_by: str | None = None
    causes: tuple[dict[str, Any], ...] = ()
    #: Good news (its rule says ``positive = true``): never a failure, never toward --fail-on.
    positive: bool = False
    #: Whether the finding may explain (supersede) others; not part of the report.
    explains: bool = True

    def to_dict(self) -> dict[str, Any]:
        """Return the finding as a JSON-ready dict."""
        out: dict[str, Any] = {
            "rule": self.rule,
            "code": self.code,
            "severity": self.severity,
            "message": self.message,
            "series": self.series,
            "evidence": self.evidence,
            "fixes": [dict(f) for f in self.fixes],
            "causes": [dict(c) for c in self.causes],
        }
        if self.superseded_by:
            out["superseded_by"] = self.superseded_by
        if self.positive:
            out["positive"] = True
        return out


def run_name(run: dict[str, Any]) -> str:
    """Return the name a report gives a run (a run report dict): its source, and which
    run of the log it is when the log holds several ("sweep.csv [trial_id=3]")."""
    group = run.get("group")
    return f"{run['source']} [{group}]" if group else str(run["source"])


def fails(finding: dict[str, Any], fail_on: str) -> bool:
    """Return True when a finding (as in the report dict) counts toward ``fail_on``: it
    drives the exit code, so every output shows it as a failure.  Superseded findings and
    positive observations never count."""
    if fail_on == "never" or finding.get("superseded_by") or finding.get("positive"):
        return False
    return SEVERITY_RANK[finding["severity"]] >= SEVERITY_RANK[fail_on]


@dataclass(frozen=True)
class SeriesSummary:
    """What a series looks like at a glance (loss values in the series' own units)."""

    role: str
    column: str
    x_kind: str
    points: int
    non_finite: int
    first_step: float
    last_step: float
    first: float
    best: float
    best_step: float
    last: float
    perplexity: bool
    sparkline: str = ""
    #: The highest value and its step of a series with no better direction (learning rate,
    #: gradient norm), NaN for the others.
    peak: float = float("nan")
    peak_step: float = float("nan")

    def to_dict(self) -> dict[str, Any]:
        """Return the summary as a JSON-ready dict (non-finite numbers as strings); ``best``
        is the lowest loss or the highest reward; a series with no better direction (its
        ``best`` is its lowest value) also has ``peak``/``peak_step``."""
        out: dict[str, Any] = {
            "column": self.column,
            "x": self.x_kind,
            "points": self.points,
            "non_finite": self.non_finite,
            "first_step": _num(self.first_step),
            "last_step": _num(self.last_step),
            "first": _num(self.first),
            "best": _num(self.best),
            "best_step": _num(self.best_step),
            "last": _num(self.last),
            "sparkline": self.sparkline,
        }
        if self.peak == self.peak:
            out["peak"], out["peak_step"] = _num(self.peak), _num(self.peak_step)
        if self.perplexity:  # e^loss of a finite loss only: no perplexity of inf or NaN
            for key, loss in (("perplexity_last", self.last), ("perplexity_best", self.best)):
                if math.isfinite(safe_exp(loss)):
                    out[key] = _num(safe_exp(loss))
        return out


def number_text(value: Any, *, missing: str = "–") -> str:
    """Return a report number as text, the one way every text report says it: 4
    significant digits (an integer as it is), ``inf``, ``-inf`` and ``nan`` plainly, and
    ``missing`` for None (no value; give ``"nan"`` where None stands for a NaN)."""
    if isinstance(value, float):
        return f"{value:.4g}"
    return missing if value is None else str(value)


def last_text(summary: dict[str, Any]) -> str:
    """Return the last value of a series summary dict as text: ``nan`` when it is NaN (the
    report holds null for a NaN, and a series with points always has a last value)."""
    return number_text(summary.get("last"), missing="nan" if summary.get("points") else "–")


def best_of(summary: dict[str, Any]) -> tuple[str, Any, Any]:
    """Return (label, value, step) of a series summary dict's best value: ("best", lowest
    loss or highest reward, its step), or ("peak", highest value, its step) for a series
    with no better direction."""
    label = "peak" if "peak" in summary else "best"
    return label, summary.get(label), summary.get(f"{label}_step")


#: Above this, e^x overflows a float.
EXP_LIMIT = 709.0


def safe_exp(value: float) -> float:
    """Return e**value, inf when it would overflow, NaN for NaN."""
    if value != value:
        return value
    return math.exp(value) if value < EXP_LIMIT else math.inf


def _num(value: float) -> float | int | str | None:
    if value is None:
        return None
    if not math.isfinite(value):
        return None if math.isnan(value) else str(value)
    return int(value) if float(value).is_integer() and abs(value) < 2**53 else float(f"{value:.6g}")


@dataclass
class RunReport:
    """The diagnosis of one source: findings, verdict, series summaries, reader notes."""

    source: str
    reader: str = ""
    #: Which run of a log holding several this is (``trial_id=3``, ``session 2 of 3``).
    group: str = ""
    findings: list[Finding] = field(default_factory=list)
    series: dict[str, SeriesSummary] = field(default_factory=dict)
    columns: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    error: str | None = None
    #: (code, name) of every rule that was applied to the run.
    checked: list[tuple[str, str]] = field(default_factory=list)
    #: (code, name, reason) of every rule that could not run (a series it needs is missing).
    skipped: list[tuple[str, str, str]] = field(default_factory=list)
    #: The comparison with a reference run (``--baseline`` / ``compare``), when asked for.
    comparison: dict[str, Any] | None = None
    #: role -> (steps, values) decimated for drawing (charts, HTML); not in the JSON report.
    curves: dict[str, tuple[list[float], list[float]]] = field(default_factory=dict)
    #: The files met when the source is a folder (on the first report of that folder).
    files: list[FileNote] = field(default_factory=list)
    #: Why the source was skipped (no loss log among several paths): then it is no run.
    skip: str | None = None

    @property
    def active(self) -> list[Finding]:
        """Return the findings that count for the verdict (not superseded)."""
        return [f for f in self.findings if not f.superseded_by]

    @property
    def verdict(self) -> Verdict:
        """Return error (unreadable), failing (an error finding), warning, or healthy."""
        if self.error is not None:
            return "error"
        worst = max((SEVERITY_RANK[f.severity] for f in self.active), default=0)
        if worst >= SEVERITY_RANK["error"]:
            return "failing"
        if worst >= SEVERITY_RANK["warning"]:
            return "warning"
        return "healthy"

    @property
    def drivers(self) -> list[str]:
        """Return the rule names of the findings at the verdict's severity."""
        wanted = {"failing": "error", "warning": "warning"}.get(self.verdict)
        names = [f.rule for f in self.active if f.severity == wanted]
        return list(dict.fromkeys(names))

    def _comparison(self, curves: bool) -> dict[str, Any]:
        assert self.comparison is not None
        if curves:
            return self.comparison
        return {k: v for k, v in self.comparison.items() if k != "reference_curve"}

    def reaches(self, fail_on: str) -> bool:
        """Return True when a counted finding is at or above ``fail_on`` severity."""
        return any(fails(f.to_dict(), fail_on) for f in self.active)

    def to_dict(self, *, curves: bool = False) -> dict[str, Any]:
        """Return the run report as a JSON-ready dict (with the decimated curves when
        ``curves``: charts and the HTML report draw them)."""
        if self.error is not None:
            return {"source": self.source, "verdict": "error", "error": self.error}
        return {
            "source": self.source,
            **({"group": self.group} if self.group else {}),
            "reader": self.reader,
            "verdict": self.verdict,
            "drivers": self.drivers,
            "columns": self.columns,
            "series": {role: s.to_dict() for role, s in self.series.items()},
            "findings": [f.to_dict() for f in self.findings],
            "notes": list(self.notes),
            **({"comparison": self._comparison(curves)} if self.comparison else {}),
            **(
                {"curves": {r: {"steps": s, "values": v} for r, (s, v) in self.curves.items()}}
                if curves
                else {}
            ),
            "rules": {
                "checked": [{"code": c, "rule": n} for c, n in self.checked],
                "skipped": [{"code": c, "rule": n, "reason": r} for c, n, r in self.skipped],
            },
        }


@dataclass
class Report:
    """The diagnosis of every source given, in order."""

    runs: list[RunReport]
    #: Every file met in a folder or skipped among several paths (read, or skipped and why).
    files: list[FileNote] = field(default_factory=list)

    @classmethod
    def gather(cls, reports: Iterable[RunReport]) -> Report:
        """Return the report of ``reports`` as the diagnosis streams them: skipped sources
        and the files of walked folders go to ``files``, the rest are the runs."""
        runs: list[RunReport] = []
        files: list[FileNote] = []
        for report in reports:
            files.extend(report.files)
            if report.skip is not None:
                files.append(FileNote(report.source, "skipped", report.skip))
            else:
                runs.append(report)
        return cls(runs=runs, files=files)

    def to_dict(
        self, *, curves: bool = False, runs: Sequence[dict[str, Any]] | None = None
    ) -> dict[str, Any]:
        """Return the versioned report dict every output format renders from (charts ask
        for the decimated ``curves`` too); ``files`` only when a folder was walked or a
        path skipped.  ``runs``: the runs' own ``to_dict(curves=curves)``, when made already."""
        doc: dict[str, Any] = {
            "schema_version": SCHEMA_VERSION,
            "version": __version__,
            "runs": list(runs)
            if runs is not None
            else [r.to_dict(curves=curves) for r in self.runs],
        }
        if self.files:
            doc["files"] = [
                {"path": f.path, "status": f.status, "detail": f.detail} for f in self.files
            ]
        return doc
