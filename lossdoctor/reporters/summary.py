"""The fleet summary: one row per run (verdict, final and best loss, top finding) and the
totals (runs per verdict, most frequent findings), as Markdown, CSV or JSON (the text
table is drawn by :mod:`lossdoctor.reporters.terminal`).

:class:`Summary` is filled one run at a time and keeps only the rows, so a sweep of any
size streams through it.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from lossdoctor import __version__
from lossdoctor.report import SEVERITY_RANK, fails, run_name

#: Version of the summary's JSON layout.
SUMMARY_SCHEMA_VERSION = 1
SORT_KEYS = ("input", "verdict", "final", "best")
#: Verdicts best first: the order totals are listed in (``--sort verdict`` lists the worst
#: runs first).
VERDICT_ORDER = ("healthy", "warning", "failing", "error")
#: Most frequent findings listed in the totals.
TOP_FINDINGS = 10
COLUMNS = ("run", "verdict", "final", "best", "top_finding")


@dataclass(frozen=True)
class Row:
    """One run in the summary: loss values in the run's own units (training loss, else
    validation; ``final`` may be inf or NaN, None when the run has no loss); ``worst``:
    the highest severity among the findings that count toward ``--fail-on``
    (:func:`lossdoctor.report.fails`)."""

    run: str
    verdict: str
    final: float | None
    best: float | None
    top_finding: str
    worst: str | None = None
    error: str | None = None

    def reaches(self, fail_on: str) -> bool:
        """Return True when a finding that counts is at or above ``fail_on`` severity."""
        if fail_on == "never" or self.worst is None:
            return False
        return SEVERITY_RANK[self.worst] >= SEVERITY_RANK[fail_on]


def _number(value: Any, *, none_is_nan: bool = False) -> float | None:
    """Return a report number (non-finite ones are strings there, a NaN is null) as a
    float; ``none_is_nan``: a null stands for a NaN (a series' last value)."""
    if value is None and none_is_nan:
        return math.nan
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def row(run: dict[str, Any]) -> Row:
    """Return the summary row of one run of ``Report.to_dict()``."""
    if run.get("error") is not None:
        return Row(run_name(run), "error", None, None, run["error"], error=run["error"])
    series = run.get("series", {})
    loss = series.get("train") or series.get("val") or {}
    counted = [f for f in run.get("findings", []) if fails(f, "info")]
    ranked = sorted(counted, key=lambda f: -SEVERITY_RANK[f["severity"]])
    top = next((f for f in ranked if f["severity"] != "info"), None)
    return Row(
        run=run_name(run),
        verdict=run["verdict"],
        final=_number(loss.get("last"), none_is_nan=bool(loss.get("points"))),
        best=_number(loss.get("best")),
        top_finding=f"{top['code']} {top['rule']}" if top else "",
        worst=ranked[0]["severity"] if ranked else None,
    )


def _sort_key(key: str) -> Any:
    def loss(value: float | None) -> tuple[bool, float]:
        return (value is None or math.isnan(value), 0.0 if value is None else value)

    if key == "verdict":
        return lambda r: (-VERDICT_ORDER.index(r.verdict), loss(r.final))
    if key in ("final", "best"):
        return lambda r: loss(getattr(r, key))
    return None


@dataclass
class Summary:
    """Rows and totals of the runs added so far."""

    rows: list[Row] = field(default_factory=list)
    verdicts: Counter[str] = field(default_factory=Counter)
    findings: Counter[str] = field(default_factory=Counter)

    def add(self, run: dict[str, Any]) -> Row:
        """Add one run of ``Report.to_dict()``; return its row."""
        new = row(run)
        self.rows.append(new)
        self.verdicts[new.verdict] += 1
        counted = {
            f"{f['code']} {f['rule']}" for f in run.get("findings", []) if fails(f, "warning")
        }
        self.findings.update(counted)
        return new

    def sorted_rows(self, sort: str = "input") -> list[Row]:
        """Return the rows in input order, or sorted by ``verdict`` (worst first, then
        lowest final loss), ``final`` or ``best`` loss (lowest first; missing last)."""
        key = _sort_key(sort)
        return list(self.rows) if key is None else sorted(self.rows, key=key)

    def to_dict(self, sort: str = "input") -> dict[str, Any]:
        """Return the versioned summary dict every summary format renders from (the loss
        values as floats, inf and NaN included: :func:`render_json` writes those as null,
        the text formats say ``inf``/``nan``)."""
        return {
            "schema_version": SUMMARY_SCHEMA_VERSION,
            "version": __version__,
            "sort": sort,
            "totals": {
                "runs": len(self.rows),
                "verdicts": {v: self.verdicts[v] for v in VERDICT_ORDER if self.verdicts[v]},
                "findings": [
                    {"finding": name, "runs": n}
                    for name, n in sorted(self.findings.items(), key=lambda kv: (-kv[1], kv[0]))[
                        :TOP_FINDINGS
                    ]
                ],
            },
            "runs": [{c: getattr(r, c) for c in COLUMNS} for r in self.sorted_rows(sort)],
        }


def _json_cell(value: Any) -> Any:
    """Return a summary cell for JSON: a loss value is a number, or null when it is not
    finite (NaN, inf) or missing (see ``lossdoctor/schema/summary.schema.json``)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _text(value: Any) -> str:
    if value is None:
        return ""
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def runs_text(count: int) -> str:
    """Return ``1 run`` or ``N runs``."""
    return f"{count} run" if count == 1 else f"{count} runs"


def totals_line(doc: dict[str, Any]) -> str:
    """Return ``N runs: 3 healthy, 1 failing`` for a summary dict."""
    counts = ", ".join(f"{n} {v}" for v, n in doc["totals"]["verdicts"].items())
    return f"{runs_text(doc['totals']['runs'])}: {counts}"


def render_csv(doc: dict[str, Any]) -> str:
    """Return the summary rows as CSV with a header line (empty cells for no value)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for r in doc["runs"]:
        writer.writerow([_text(r[c]) for c in COLUMNS])
    return out.getvalue()


def render_json(doc: dict[str, Any]) -> str:
    """Return the summary as indented JSON (strict: no NaN literals; ``final`` and
    ``best`` a number or null, as ``lossdoctor/schema/summary.schema.json`` says)."""
    runs = [{c: _json_cell(v) for c, v in r.items()} for r in doc["runs"]]
    return json.dumps({**doc, "runs": runs}, indent=2, allow_nan=False) + "\n"


def _md(value: Any) -> str:
    return _text(value).replace("|", "\\|") or "–"


def render_markdown(doc: dict[str, Any]) -> str:
    """Return the summary as a Markdown table with the totals and most frequent findings."""
    lines = [f"## lossdoctor: {totals_line(doc)}", ""]
    lines += ["| run | verdict | final | best | top finding |", "|---|---|---:|---:|---|"]
    lines += ["| " + " | ".join(_md(r[c]) for c in COLUMNS) + " |" for r in doc["runs"]]
    if doc["totals"]["findings"]:
        lines += ["", "Most frequent findings:", ""]
        lines += [f"- {f['finding']}: {runs_text(f['runs'])}" for f in doc["totals"]["findings"]]
    return "\n".join(lines) + "\n"
