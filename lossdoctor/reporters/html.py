"""One self-contained HTML report: the chart inline as SVG, verdicts, findings, causes,
fixes and series summaries.  No network fetches: no scripts, fonts or styles from
elsewhere."""

from __future__ import annotations

import html
from typing import Any

from lossdoctor.report import best_of, last_text, run_name
from lossdoctor.report import number_text as _num

STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem;color:#222;max-width:1100px}
h1{font-size:1.4rem} h2{font-size:1.15rem;margin-top:2rem} table{border-collapse:collapse;margin:.5rem 0}
td,th{border:1px solid #ddd;padding:.3rem .6rem;text-align:left;vertical-align:top;font-size:.9rem}
.healthy{color:#2e7d32}.warning{color:#ef6c00}.failing,.error{color:#c62828}
.sev-error{color:#c62828;font-weight:bold}.sev-warning{color:#ef6c00;font-weight:bold}.sev-info{color:#1565c0}
.dim{color:#888} svg{max-width:100%;height:auto} code{background:#f5f5f5;padding:0 .2rem}
"""


def _e(value: Any) -> str:
    return html.escape(str(value))


#: The class of the element that holds a report embedded in another page (a notebook).
FRAGMENT_CLASS = "lossdoctor-report"


def scoped_style(scope: str) -> str:
    """Return :data:`STYLE` with every selector limited to elements inside ``scope`` (a CSS
    selector), so an embedded report does not restyle the page around it."""
    rules = []
    for rule in STYLE.replace("\n", " ").split("}"):
        if "{" not in rule:
            continue
        selectors, body = rule.split("{", 1)
        scoped = [
            scope if s.strip() == "body" else f"{scope} {s.strip()}"
            for s in selectors.split(",")
            if s.strip()
        ]
        rules.append(f"{','.join(scoped)}{{{body}}}")
    return "\n".join(rules)


def render(doc: dict[str, Any], *, chart_svg: str | None = None, fragment: bool = False) -> str:
    """Return the HTML page for the report (``chart_svg`` embedded when given); with
    ``fragment``, one ``<div>`` with its own scoped style instead of a whole page (for
    notebooks)."""
    if fragment:
        head = [
            f"<div class='{FRAGMENT_CLASS}'><style>{scoped_style('.' + FRAGMENT_CLASS)}</style>"
        ]
    else:
        head = [
            "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
            "<meta name='viewport' content='width=device-width, initial-scale=1'>",
            f"<title>lossdoctor report</title><style>{STYLE}</style></head><body>",
        ]
    parts = [
        *head,
        f"<h1>lossdoctor report <span class='dim'>v{_e(doc['version'])}</span></h1>",
        "<table><tr><th>run</th><th>verdict</th><th>points</th><th>last loss</th></tr>",
    ]
    for run in doc["runs"]:
        train = run.get("series", {}).get("train", {})
        parts.append(
            f"<tr><td><code>{_e(run_name(run))}</code></td>"
            f"<td class='{_e(run['verdict'])}'><b>{_e(run['verdict'].upper())}</b></td>"
            f"<td>{_e(train.get('points', '–'))}</td><td>{_e(last_text(train))}</td></tr>"
        )
    parts.append("</table>")
    if chart_svg:
        svg = chart_svg[chart_svg.find("<svg") :]
        parts.append(f"<figure id='chart'>{svg}</figure>")
    for run in doc["runs"]:
        parts.append(
            f"<h2><code>{_e(run_name(run))}</code>: <span class='{_e(run['verdict'])}'>{_e(run['verdict'])}</span></h2>"
        )
        if run["verdict"] == "error":
            parts.append(f"<p class='error'>{_e(run['error'])}</p>")
            continue
        parts.append(
            "<table><tr><th>series</th><th>column</th><th>points</th><th>first</th><th>best or peak (step)</th><th>last</th></tr>"
        )
        for role, s in run["series"].items():
            label, best, best_step = best_of(s)
            parts.append(
                f"<tr><td>{_e(role)}</td><td><code>{_e(s['column'])}</code></td><td>{_e(s['points'])}</td>"
                f"<td>{_e(_num(s['first']))}</td><td>{_e(label)} {_e(_num(best))} ({_e(_num(best_step))})</td>"
                f"<td>{_e(last_text(s))}</td></tr>"
            )
        parts.append("</table>")
        if run["findings"]:
            parts.append(
                "<table class='findings'><tr><th>severity</th><th>rule</th><th>finding</th><th>likely causes</th></tr>"
            )
            for f in run["findings"]:
                dim = " class='dim'" if f.get("superseded_by") else ""
                causes = "; ".join(
                    _e(c["cause"])
                    + (f" ({_e(c['evidence'])})" if c.get("evidence") else "")
                    + (f" [from {_e(c['signal'])}]" if c.get("signal") else "")
                    for c in f.get("causes", [])
                    if c["likely"]
                )
                parts.append(
                    f"<tr{dim}><td class='sev-{_e(f['severity'])}'>{_e(f['severity'])}</td>"
                    f"<td><code>{_e(f['code'])}</code> {_e(f['rule'])}</td><td>{_e(f['message'])}</td>"
                    f"<td>{causes}</td></tr>"
                )
            parts.append("</table>")
        fixes: dict[str, str] = {}
        for f in run["findings"]:
            if f["severity"] != "info" and not f.get("superseded_by"):
                for fix in f["fixes"]:
                    fixes.setdefault(fix["title"], fix["why"])
        if fixes:
            parts.append("<h3>What to do</h3><ol>")
            parts += [f"<li><b>{_e(t)}</b>: {_e(w)}</li>" for t, w in fixes.items()]
            parts.append("</ol>")
        if run.get("notes"):
            parts.append("<p class='dim'>" + "<br>".join(_e(n) for n in run["notes"]) + "</p>")
    parts.append("</div>" if fragment else "</body></html>")
    return "\n".join(parts) + "\n"
