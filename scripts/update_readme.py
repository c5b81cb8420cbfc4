#!/usr/bin/env python3
"""Regenerate the rule table in README.md from the rule files."""

from __future__ import annotations

import sys
from pathlib import Path

from lossdoctor.engine.loader import load_rules
from lossdoctor.ingest.catalog import markdown_table as formats_table
from lossdoctor.reporters.rule_docs import markdown_table

README = Path(__file__).resolve().parent.parent / "README.md"


def _replace(text: str, name: str, table: str) -> str:
    start, end = f"<!-- {name}:start -->\n", f"<!-- {name}:end -->"
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    return head + start + table + end + tail


def render(text: str) -> str:
    """Return ``text`` with the generated tables (rules, formats) brought up to date."""
    text = _replace(text, "rules-table", markdown_table(load_rules()))
    return _replace(text, "formats-table", formats_table())


def main() -> int:
    """Rewrite README.md in place."""
    README.write_text(render(README.read_text(encoding="utf-8")), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
