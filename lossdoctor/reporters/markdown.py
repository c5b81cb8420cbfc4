"""Markdown for pull-request comments and ``$GITHUB_STEP_SUMMARY``: verdicts, a
findings table per run, fixes and a sparkline."""

from __future__ import annotations

from typing import Any

from lossdoctor.report import best_of, fails, last_text, run_name
from lossdoctor.report import number_text as _num

VERDICT_MARK = {"healthy": "✅", "warning": "⚠️", "failing": "❌", "error": "❌"}
SEVERITY_MARK = {"error": "❌ error", "warning": "⚠️ warning", "info": "ℹ️ info"}
#: GitHub refuses step summaries over 1 MiB; stay well below.
MAX_BYTES = 900_000
MAX_FIXES = 5


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def render(report: dict[str, Any], *, fail_on: str = "error") -> str:
    """Return the report as GitHub-flavoured Markdown (kept under 1 MiB); every finding
    that reaches ``fail_on`` (and so drives the exit code) is marked as failing."""
    runs = report["runs"]
    lines = ["## lossdoctor", ""]
    lines += ["| run | verdict | points | last loss | top finding |", "|---|---|---|---|---|"]
    for run in runs:
        train = run.get("series", {}).get("train", {})
        active = [f for f in run.get("findings", []) if not f.get("superseded_by")]
        top = next((f for f in active if f["severity"] == "error"), None) or next(
            (f for f in active if f["severity"] == "warning"), None
        )
        top_text = f"`{top['rule']}` {_cell(top['message'])}" if top else (run.get("error") or "–")
        lines.append(
            f"| `{_cell(run_name(run))}` | {VERDICT_MARK[run['verdict']]} {run['verdict']} | "
            f"{train.get('points', '–')} | {last_text(train)} | {_cell(top_text)} |"
        )
    for run in runs:
        if run["verdict"] == "error":
            continue
        lines += ["", f"### `{run_name(run)}`: {run['verdict']}", ""]
        for role, s in run["series"].items():
            if s.get("sparkline"):
                label, best, best_step = best_of(s)
                numbers = (
                    f"first {_num(s['first'])}, {label} {_num(best)} @ "
                    f"{_num(best_step)}, last {last_text(s)}"
                )
                lines.append(f"- {role} (`{s['column']}`): `{s['sparkline']}` {numbers}")
        findings = run["findings"]
        failing = [f for f in findings if fails(f, fail_on)]
        gate = f"`--fail-on {fail_on}`"
        if failing:
            names = ", ".join(dict.fromkeys(f"`{f['code']}` `{f['rule']}`" for f in failing))
            lines += ["", f"**Fails the check** ({gate}): {names}"]
        else:
            lines += ["", f"Passes the check ({gate})."]
        if findings:
            lines += ["", "| severity | rule | finding |", "|---|---|---|"]
            for f in findings:
                note = f" (explained by `{f['superseded_by']}`)" if f.get("superseded_by") else ""
                note += " **fails the check**" if fails(f, fail_on) else ""
                mark = "✅ good news" if f.get("positive") else SEVERITY_MARK[f["severity"]]
                rule = f"`{f['code']}` `{f['rule']}`"
                lines.append(f"| {mark} | {rule} | {_cell(f['message'])}{note} |")
        fixes: dict[str, str] = {}
        for f in findings:
            if f["severity"] != "info" and not f.get("superseded_by"):
                for fix in f["fixes"]:
                    fixes.setdefault(fix["title"], fix["why"])
        if fixes:
            lines += ["", "**What to do**", ""]
            lines += [
                f"{i}. **{t}**: {w}" for i, (t, w) in enumerate(list(fixes.items())[:MAX_FIXES], 1)
            ]
    text = "\n".join(lines) + "\n"
    if len(text.encode("utf-8")) > MAX_BYTES:
        text = (
            text.encode("utf-8")[:MAX_BYTES].decode("utf-8", "ignore")
            + "\n\n*(report truncated)*\n"
        )
    return text
