"""One dispatcher from a format name to its reporter: the CLI, the Python ``Report`` and
the framework callbacks all render through it, so every front end writes the same files."""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

from lossdoctor.errors import LossdoctorError

#: Formats a report can be rendered to as text.
FORMATS = ("text", "json", "markdown", "github", "junit", "gitlab", "html")
#: The file name extension of each format's report file.
SUFFIX = {
    "text": ".txt",
    "json": ".json",
    "markdown": ".md",
    "github": ".txt",
    "junit": ".xml",
    "gitlab": ".json",
    "html": ".html",
}


def chart_svg(doc: dict[str, Any]) -> str | None:
    """Return the annotated chart of ``doc`` (with curves) as SVG text, or None when the
    report has no curves or matplotlib is not installed."""
    if not any(r.get("curves") for r in doc["runs"]):
        return None
    try:
        from lossdoctor.reporters import chart

        return chart.svg_text(doc)
    except LossdoctorError:
        return None  # without matplotlib the page has no chart


def render(
    name: str,
    doc: dict[str, Any],
    *,
    fail_on: str = "error",
    width: int = 100,
    sort: str = "input",
    entries: Sequence[str | None] | None = None,
) -> str:
    """Return ``doc`` rendered in format ``name`` (one of :data:`FORMATS`; ``text`` is the
    terminal report without colour, ``width`` columns wide, summary rows in ``sort``
    order); ``fail_on`` decides what CI formats count as failures; ``entries``: each
    run's entry of the JSON report written already (see
    :func:`lossdoctor.reporters.json_report.render`; other formats ignore them).

    Raises :class:`ValueError` for an unknown format name.
    """
    if name == "text":
        from lossdoctor.reporters import terminal

        buffer = io.StringIO()
        terminal.render(doc, buffer, width=width, sort=sort)
        return buffer.getvalue()
    if name == "json":
        from lossdoctor.reporters import json_report

        return json_report.render(doc, entries)
    if name == "markdown":
        from lossdoctor.reporters import markdown

        return markdown.render(doc, fail_on=fail_on)
    if name == "github":
        from lossdoctor.reporters import github

        return github.render(doc, fail_on=fail_on)
    if name == "html":
        from lossdoctor.reporters import html

        return html.render(doc, chart_svg=chart_svg(doc))
    if name == "junit":
        from lossdoctor.reporters import junit

        return junit.render(doc, fail_on=fail_on)
    if name == "gitlab":
        from lossdoctor.reporters import gitlab

        return gitlab.render(doc, fail_on=fail_on)
    raise ValueError(f"unknown report format '{name}' (choose from {', '.join(FORMATS)})")
