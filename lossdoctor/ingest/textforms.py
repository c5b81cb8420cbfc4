"""Text forms recognised before the generic sniffing: each has a cheap test on the head
of the text and its own reader (:mod:`~lossdoctor.ingest.notebook`,
:mod:`~lossdoctor.ingest.progressbar`, :mod:`~lossdoctor.ingest.torchtune`)."""

from __future__ import annotations

import re
from collections.abc import Callable

from lossdoctor.ingest.columns import ColumnHints
from lossdoctor.model import Run

#: A first line that opens a JSON document: ``[`` then a value, or ``[`` alone.
JSON_START = re.compile(r"^\s*\[\s*(?:$|[\[{\"\]]|-?\d[\d.eE+-]*\s*[,\]]|true|false|null|NaN)")


def opens_json(text: str) -> bool:
    """Return True when ``text`` starts like JSON (``{`` or a ``[`` that opens a list),
    False for a text line that merely starts with ``[`` (``[train] ...``, ``[3/30 ...]``)."""
    head = text.lstrip()
    if head.startswith("{"):
        return True
    first = head.split("\n", 1)[0]
    return bool(JSON_START.match(first))


def is_text_form(head: str) -> bool:
    """Return True when a text starting with ``head`` is a form with its own reader."""
    from lossdoctor.ingest import notebook, progressbar, torchtune

    return (
        notebook.find_header(head) is not None
        or progressbar.looks_like_progress_bar(head)
        or torchtune.looks_like_disk_log(head)
    )


def read_text_form(
    head: str, text: str | Callable[[], str], *, source: str, hints: ColumnHints | None
) -> Run | None:
    """Return the run when ``head`` (the start of ``text``; ``text`` may be a function that
    decodes it, called only for a form read here) is a form read here, else None.

    Raises :class:`~lossdoctor.errors.InputError` when the form is recognised but holds
    no loss.
    """
    if " " not in head:
        return None  # every form's mark holds a space ("Training Loss", "Epoch ", "Step ")
    from lossdoctor.ingest import notebook, progressbar, torchtune

    def whole() -> str:
        return text if isinstance(text, str) else text()

    header_at = notebook.find_header(head)
    if header_at is not None:
        return notebook.read_notebook_table(whole(), header_at, source=source, hints=hints)
    if progressbar.looks_like_progress_bar(head):
        return progressbar.read_progress_bar(whole(), source=source, hints=hints)
    if torchtune.looks_like_disk_log(head) or torchtune.looks_like_progress(head):
        return torchtune.read_disk_log(whole(), source=source, hints=hints)
    return None
