"""The JSON report: ``Report.to_dict()`` as it is, versioned by ``schema_version``."""

from __future__ import annotations

import json
from collections.abc import Sequence
from json.encoder import encode_basestring_ascii
from typing import Any

_INF = float("inf")
#: What a run's entry starts on in the report: the runs are a list in the top object.
_RUN_NEWLINE = "\n    "
#: The report's runs as an empty list, where :func:`render` puts the entries written apart.
_NO_RUNS = '\n  "runs": []'


def render(report: dict[str, Any], entries: Sequence[str | None] | None = None) -> str:
    """Return the report as indented JSON text (strict: no NaN literals): the text
    ``json.dumps(report, indent=2, allow_nan=False)`` gives, character for character.
    ``entries``: the text :func:`run_entry` gave for each of ``report["runs"]``, written
    already (where the run was diagnosed); a run without one is written here."""
    runs = report.get("runs")
    if not entries or not isinstance(runs, list) or len(entries) != len(runs):
        return dumps_indented(report) + "\n"
    texts: list[str] = []
    for run, text in zip(runs, entries, strict=True):
        text = run_entry(run) if text is None else text
        if text is None:
            return dumps_indented(report) + "\n"  # errs as json.dumps does
        texts.append(text)
    head = dumps_indented({**report, "runs": []})
    listed = "[" + _RUN_NEWLINE + ("," + _RUN_NEWLINE).join(texts) + "\n  ]"
    return head.replace(_NO_RUNS, _NO_RUNS[: -len("[]")] + listed, 1) + "\n"


def run_entry(run: dict[str, Any]) -> str | None:
    """Return the JSON text of ``run`` (one run's ``RunReport.to_dict()``) as it stands in
    the report's list of runs, indented as :func:`render` indents it there, or None when
    it holds a value the plain writer leaves to ``json.dumps`` (a NaN, an unusual type)."""
    out: list[str] = []
    try:
        _write(run, out, _RUN_NEWLINE)
    except _Unusual:
        return None
    return "".join(out)


def dumps_indented(value: Any) -> str:
    """Return ``json.dumps(value, indent=2, allow_nan=False)``, written without the
    standard library's pure-Python indenting encoder (a generator a level, each token
    passed up through every level: about half of a small run's report time went there).
    A value this writer does not take as it is (a non-string key, a NaN or infinity, a
    type JSON has no literal for) is handed to ``json.dumps`` whole, so it errs as that does."""
    out: list[str] = []
    try:
        _write(value, out, "\n")
    except _Unusual:
        return json.dumps(value, indent=2, allow_nan=False)
    return "".join(out)


class _Unusual(Exception):
    """A value the plain writer leaves to ``json.dumps``."""


def _leaf(value: Any) -> str | None:
    """Return the JSON text of a string, number, boolean or None; None for a container."""
    kind = type(value)
    if kind is str:
        return encode_basestring_ascii(value)
    if kind is float:
        return _float_text(value)
    if kind is int:
        return int.__repr__(value)
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if kind is list or kind is dict or kind is tuple:
        return None
    return _other_leaf(value)


def _other_leaf(value: Any) -> str | None:
    """Return :func:`_leaf` of an instance of a subclass (as ``json`` takes them)."""
    if isinstance(value, str):
        return encode_basestring_ascii(value)
    if isinstance(value, int):
        return int.__repr__(value)
    if isinstance(value, float):
        return _float_text(value)
    if isinstance(value, list | tuple | dict):
        return None
    raise _Unusual


def _float_text(value: float) -> str:
    """Return a finite float's JSON text; raise :class:`_Unusual` for NaN and infinities."""
    if value != value or value in (_INF, -_INF):
        raise _Unusual
    return float.__repr__(value)


def _write(value: Any, out: list[str], newline: str) -> None:
    """Append the JSON text of ``value`` to ``out``; ``newline`` ends a line at its level."""
    text = _leaf(value)
    if text is not None:
        out.append(text)
        return
    inner = newline + "  "
    if isinstance(value, dict):
        if not value:
            out.append("{}")
            return
        opener = "{" + inner
        for key, item in value.items():
            if not isinstance(key, str):
                raise _Unusual
            text = _leaf(item)
            if text is None:
                out.append(opener + encode_basestring_ascii(key) + ": ")
                _write(item, out, inner)
            else:
                out.append(opener + encode_basestring_ascii(key) + ": " + text)
            opener = "," + inner
        out.append(newline + "}")
        return
    if not value:
        out.append("[]")
        return
    opener = "[" + inner
    for item in value:
        text = _leaf(item)
        if text is None:
            out.append(opener)
            _write(item, out, inner)
        else:
            out.append(opener + text)
        opener = "," + inner
    out.append(newline + "]")
