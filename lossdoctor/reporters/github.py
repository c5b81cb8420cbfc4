"""GitHub Actions workflow commands: one annotation per problem finding, most severe
first, within GitHub's limits (10 errors and 10 warnings a step)."""

from __future__ import annotations

from typing import Any

from lossdoctor.reporters.gitlab import shown as annotated

#: Annotations GitHub shows per step and level.
MAX_PER_LEVEL = 10
LEVEL = {"error": "error", "warning": "warning", "info": "notice"}


def escape_data(text: str) -> str:
    """Return ``text`` escaped as a workflow-command message (actions/toolkit rules)."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    """Return ``text`` escaped as a workflow-command property value."""
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def render(report: dict[str, Any], *, fail_on: str = "error") -> str:
    """Return the workflow-command lines for the report's findings."""
    items: list[tuple[int, str]] = []
    for run in report["runs"]:
        source = run["source"]
        if run["verdict"] == "error":
            items.append(
                (
                    0,
                    f"::error file={escape_property(source)},title=lossdoctor::"
                    + escape_data(run["error"]),
                )
            )
            continue
        for f in run["findings"]:
            if not annotated(f, fail_on):
                continue
            props = [] if source == "-" else [f"file={escape_property(source)}"]
            line = f["evidence"].get("line")
            if line is not None:
                props.append(f"line={int(line)}")
            props.append(f"title={escape_property(f['code'] + ' ' + f['rule'])}")
            said = f"[{run['group']}] {f['message']}" if run.get("group") else f["message"]
            rank = {"error": 0, "warning": 1, "info": 2}[f["severity"]]
            items.append((rank, f"::{LEVEL[f['severity']]} {','.join(props)}::{escape_data(said)}"))
    items.sort(key=lambda item: item[0])
    out: list[str] = []
    shown = {0: 0, 1: 0, 2: 0}
    dropped = 0
    for rank, text in items:
        if shown[rank] >= MAX_PER_LEVEL:
            dropped += 1
            continue
        shown[rank] += 1
        out.append(text)
    if dropped:
        out.append(f"::notice title=lossdoctor::{dropped} more findings are in the full report")
    return "\n".join(out) + ("\n" if out else "")
