"""Rule documentation rendered from the rule files: the list, one rule explained, the
README table."""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from lossdoctor.engine.conditions import Condition
from lossdoctor.engine.schema import Rule

#: Width used when the output is not a terminal.
WIDE = 160


def print_list(rules: Sequence[Rule]) -> None:
    """Print a table of the rules: code, name, group, severities, summary."""
    rows = [(r.code, r.name, r.group, r.default_severity, r.summary) for r in rules]
    print_rows(("code", "name", "group", "severity", "summary"), rows)


def print_rows(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """Print a plain table (wide, unfolded when not a terminal)."""
    table = Table(box=None, pad_edge=False, show_edge=False)
    for header in headers:
        table.add_column(header, overflow="fold")
    for row in rows:
        table.add_row(*(escape(cell) for cell in row))
    console = Console(highlight=False)
    if not console.is_terminal:
        console.width = max(console.width, WIDE)  # no folding in pipes and logs
    console.print(table)


def explain_text(rule: Rule) -> str:
    """Return the full explanation of a rule as Markdown-ish plain text."""
    lines = [f"{rule.code} {rule.name} ({rule.group})", "", rule.summary, ""]
    lines += [
        "What it finds",
        f"  {rule.docs.what}",
        "",
        "Why it matters",
        f"  {rule.docs.why}",
        "",
    ]
    lines.append("When it fires (first matching level wins)")
    for level in rule.levels:
        lines.append(f"  {level.severity:<8} when {_conditions(rule, level.when) or 'always'}")
    lines.append("")
    if rule.causes:
        lines.append("Likely causes (a cause whose evidence holds is ranked first)")
        for cause in rule.causes:
            source = f" [from {cause.signal}]" if cause.signal else ""
            lines.append(f"  - {cause.title}{source}: {cause.why}")
            if cause.when:
                lines.append(f"      evidence: {_conditions(rule, cause.when)}")
            if cause.unless:
                lines.append(f"      ruled out when: {_conditions(rule, cause.unless)}")
            if cause.fixes:
                lines.append(f"      fixes first: {'; '.join(cause.fixes)}")
        lines.append("")
    lines.append("What to do")
    lines += [f"  - {fix.title}: {fix.why}" for fix in rule.fixes]
    if rule.docs.problems:
        lines += ["", "Known limits", f"  {rule.docs.problems}"]
    if rule.docs.references:
        lines += ["", "References"] + [f"  - {ref}" for ref in rule.docs.references]
    if rule.supersedes:
        lines += ["", f"Explains (supersedes): {', '.join(rule.supersedes)}"]
    return "\n".join(lines) + "\n"


def print_explain(rule: Rule) -> None:
    """Print the full explanation of a rule."""
    Console(highlight=False).print(escape(explain_text(rule)), end="")


def _conditions(rule: Rule, conditions: Sequence[Condition]) -> str:
    """Return conditions as text, each threshold name followed by its value."""
    return " and ".join(
        f"{c.field} {c.op} {c.operand}"
        + (f" (= {rule.thresholds[c.operand]:g})" if isinstance(c.operand, str) else "")
        for c in conditions
    )


def markdown_table(rules: Sequence[Rule]) -> str:
    """Return the README's rule table (Markdown), generated from the rule files."""
    rows = ["| code | name | severity | fires when |", "|---|---|---|---|"]
    for rule in rules:
        summary = rule.summary.replace("|", "\\|")
        rows.append(f"| {rule.code} | `{rule.name}` | {rule.default_severity} | {summary} |")
    return "\n".join(rows) + "\n"
