"""Text forms recognised before the generic sniffing: each has a cheap test on the head
of the text and its own reader (:mod:`~lossdoctor.ingest.notebook`,
:mod:`~lossdoctor.ingest.progressbar`, :mod:`~lossdoctor.ingest.torchtune`)."""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import partial
from typing import Protocol

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


class FormReader(Protocol):
    """The reader of one text form: the run in a whole ``text``."""

    def __call__(self, text: str, *, source: str, hints: ColumnHints | None = None) -> Run: ...


def text_form(head: str) -> FormReader | None:
    """Return the reader of the form with its own reader that a text starting with
    ``head`` is (a notebook's table, a Lightning progress bar, torchtune's metric log or
    captured bar), or None.  The one decision of :func:`read_text_form` and
    :func:`is_text_form`: a large input streamed from its head goes to the reader its
    whole read uses."""
    if " " not in head:
        return None  # every form's mark holds a space ("Training Loss", "Epoch ", "Step ")
    from lossdoctor.ingest import notebook, progressbar, torchtune

    header_at = notebook.find_header(head)
    if header_at is not None:
        return partial(notebook.read_notebook_table, header_at=header_at)
    if progressbar.looks_like_progress_bar(head):
        return progressbar.read_progress_bar
    if torchtune.looks_like_disk_log(head) or torchtune.looks_like_progress(head):
        return torchtune.read_disk_log
    return None


def is_text_form(head: str) -> bool:
    """Return True when a text starting with ``head`` is a form with its own reader."""
    return text_form(head) is not None


def read_text_form(
    head: str, text: str | Callable[[], str], *, source: str, hints: ColumnHints | None
) -> Run | None:
    """Return the run when ``head`` (the start of ``text``; ``text`` may be a function that
    decodes it, called only for a form read here) is a form read here, else None.

    Raises :class:`~lossdoctor.errors.InputError` when the form is recognised but holds
    no loss.
    """
    reader = text_form(head)
    if reader is None:
        return None
    return reader(text if isinstance(text, str) else text(), source=source, hints=hints)
