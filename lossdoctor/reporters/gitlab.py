"""GitLab Code Quality JSON: one issue per problem finding."""

from __future__ import annotations

import hashlib
import json
from typing import Any

SEVERITY = {"info": "info", "warning": "minor", "error": "major"}


def render(report: dict[str, Any]) -> str:
    """Return the report's findings as a GitLab Code Quality report (JSON text)."""
    issues = []
    for run in report["runs"]:
        source = run["source"]
        if run["verdict"] == "error":
            issues.append(_issue("lossdoctor", run["error"], "blocker", source, 1, "read"))
            continue
        for f in run["findings"]:
            if f.get("superseded_by") or f["severity"] == "info":
                continue
            line = int(f["evidence"].get("line") or 1)
            issues.append(
                _issue(
                    f"{f['code']} {f['rule']}",
                    f["message"],
                    SEVERITY[f["severity"]],
                    source,
                    line,
                    f["series"],
                )
            )
    return json.dumps(issues, indent=2) + "\n"


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
