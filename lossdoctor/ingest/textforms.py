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


#: A line after the first that opens a JSON object.
_LATER_OBJECT = re.compile(r"\n[ \t]*\{")


def json_record_with_loss(line: str) -> bool:
    """Return True when ``line`` is a JSON object with a loss value (a number, or a number
    in a string) under a key that names a loss."""
    stripped = line.strip()
    if not (stripped.startswith("{") and stripped.endswith("}")):
        return False
    from lossdoctor.safeio import json_loads

    try:
        obj = json_loads(stripped)
    except ValueError:
        return False
    return isinstance(obj, dict) and any(
        "loss" in str(key).lower() and _is_number(value) for key, value in obj.items()
    )


def _is_number(value: object) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int | float):
        return True
    try:
        float(str(value))
    except ValueError:
        return False
    return True


def jsonl_after_text(head: str) -> bool:
    """Return True when ``head``, the start of a text that does not open JSON, is JSON
    Lines after lines of text (a library's warning, a banner: what ``python train.py >
    log.txt`` leaves of a script printing its records as JSON): its first line that
    carries a loss value is a JSON object (:func:`json_record_with_loss`), not a text
    log's line."""
    # (most texts: no line after the first opens an object; a text with no brace at all,
    # a table of numbers, is told by one character search, not a scan of each line end)
    if "{" not in head or _LATER_OBJECT.search(head) is None:
        return False
    from lossdoctor.ingest.lines import strip_prefix
    from lossdoctor.ingest.textlines import carries_loss

    for line in head.split("\n"):
        if json_record_with_loss(line):
            return True
        if carries_loss(strip_prefix(line)):
            return False
    return False


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
