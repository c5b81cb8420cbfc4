#!/usr/bin/env python3
"""Regenerate the rule table in README.md from the rule files."""

from __future__ import annotations

import sys
from pathlib import Path

from lossdoctor.engine.loader import load_rules
from lossdoctor.reporters.rule_docs import markdown_table

README = Path(__file__).resolve().parent.parent / "README.md"
START, END = "<!-- rules-table:start -->\n", "<!-- rules-table:end -->"


def render(text: str) -> str:
    """Return ``text`` with the block between the markers replaced by the current table."""
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    return head + START + markdown_table(load_rules()) + END + tail


def main() -> int:
    """Rewrite README.md in place."""
    README.write_text(render(README.read_text(encoding="utf-8")), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
