"""GitLab Code Quality JSON: one issue per problem finding (warning and error, and info
too when ``--fail-on info`` makes it fail the job); never for good news."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from lossdoctor.report import fails

SEVERITY = {"info": "info", "warning": "minor", "error": "major"}


def render(report: dict[str, Any], *, fail_on: str = "error") -> str:
    """Return the report's findings as a GitLab Code Quality report (JSON text)."""
    issues = []
    for run in report["runs"]:
        source = run["source"]
        if run["verdict"] == "error":
            issues.append(_issue("lossdoctor", run["error"], "blocker", source, 1, "read"))
            continue
        for f in run["findings"]:
            if not shown(f, fail_on):
                continue
            line = int(f["evidence"].get("line") or 1)
            issues.append(
                _issue(
                    f"{f['code']} {f['rule']}",
                    f"[{run['group']}] {f['message']}" if run.get("group") else f["message"],
                    SEVERITY[f["severity"]],
                    source,
                    line,
                    f["series"],
                )
            )
    return json.dumps(issues, indent=2) + "\n"


def shown(finding: dict[str, Any], fail_on: str) -> bool:
    """Return True for a finding a CI annotation shows: a problem (warning, error) or one
    that fails the job at ``fail_on``; never a superseded finding or good news."""
    if finding.get("superseded_by") or finding.get("positive"):
        return False
    return finding["severity"] != "info" or fails(finding, fail_on)


def _issue(
    check: str, message: str, severity: str, path: str, line: int, salt: str
) -> dict[str, Any]:
    fingerprint = hashlib.sha1(
        f"{path}\0{check}\0{salt}".encode(), usedforsecurity=False
    ).hexdigest()
    return {
        "description": f"{check}: {message}",
        "check_name": check,
        "fingerprint": fingerprint,
        "severity": severity,
        "location": {"path": path, "lines": {"begin": line}},
    }
