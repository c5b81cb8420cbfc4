"""Counts said in words: "1 line", "3 lines" (this module imports nothing of lossdoctor)."""

from __future__ import annotations

import re


def counted(count: int, noun: str, plural: str | None = None) -> str:
    """Return ``count`` and ``noun``, in the plural (``plural``, else ``noun + "s"``)
    unless the count is 1: ``counted(1, "line")`` is "1 line"."""
    return f"{count} {noun if count == 1 else plural or noun + 's'}"


#: A count of 1 (not "of the 1": "at 1 of the 1 spikes" stays), up to two words (not
#: "of", "in", ...), and a plural noun of a count.
_ONE_OF_MANY = re.compile(
    r"(?<![\d.,])(?<!of the )(?<!of )\b1 ((?:(?!(?:of|in|the|at|to|from|and|or)\b)[\w/-]+ ){0,2}?)"
    r"(point|value|spike|line|step|run|epoch|time|row|cell|record)s\b"
)


def singular_counts(text: str) -> str:
    """Return ``text`` with the nouns counted by 1 in the singular: a rule's message
    says "{count} spikes" whatever the count; "1 finite training-loss points" reads
    "1 finite training-loss point" (up to two words between; "1 of the spikes" stays)."""
    if "1 " not in text:  # no count of 1: one substring search, not a regex scan
        return text
    return _ONE_OF_MANY.sub(r"1 \1\2", text)
