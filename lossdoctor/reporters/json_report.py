"""The JSON report: ``Report.to_dict()`` as it is, versioned by ``schema_version``."""

from __future__ import annotations

import json
from typing import Any


def render(report: dict[str, Any]) -> str:
    """Return the report as indented JSON text (strict: no NaN literals)."""
    return json.dumps(report, indent=2, allow_nan=False) + "\n"
