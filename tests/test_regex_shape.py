"""The number pattern of the text and live parsers cannot backtrack on a long digit run.

The fuzz campaign found ``\\d+\\.?\\d*``: a run of n digits splits between the two digit
repeats in n ways, so a failed match tried all of them (6 s on one 5,000-digit line).  The
check below is structural, not timed: in the parsed pattern, no unbounded repeat may be
followed (past optional items only) by something that can start with a character the
repeat itself takes, which is exactly what makes a run of that character ambiguous.
"""

from __future__ import annotations

import re
from re import _constants as C  # the parser re itself uses (Python 3.11+)
from re import _parser as P
from typing import Any

import pytest

from lossdoctor.ingest.lines import NUM

#: The characters the check looks at (the digit runs, signs, dots and letters of numbers).
ALPHABET = frozenset(chr(c) for c in range(128))
_CATEGORY = {
    C.CATEGORY_DIGIT: {c for c in ALPHABET if c.isdigit()},
    C.CATEGORY_WORD: {c for c in ALPHABET if c.isalnum() or c == "_"},
    C.CATEGORY_SPACE: {c for c in ALPHABET if c.isspace()},
}
_CATEGORY[C.CATEGORY_NOT_DIGIT] = set(ALPHABET) - _CATEGORY[C.CATEGORY_DIGIT]
_CATEGORY[C.CATEGORY_NOT_WORD] = set(ALPHABET) - _CATEGORY[C.CATEGORY_WORD]
_CATEGORY[C.CATEGORY_NOT_SPACE] = set(ALPHABET) - _CATEGORY[C.CATEGORY_SPACE]
_REPEATS = (C.MAX_REPEAT, C.MIN_REPEAT)


def _set(items: Any) -> set[str]:
    chars: set[str] = set()
    negate = False
    for op, arg in items:
        if op is C.NEGATE:
            negate = True
        elif op is C.LITERAL:
            chars.add(chr(arg))
        elif op is C.RANGE:
            chars |= {chr(c) for c in range(arg[0], arg[1] + 1) if chr(c) in ALPHABET}
        elif op is C.CATEGORY:
            chars |= _CATEGORY[arg]
    return set(ALPHABET) - chars if negate else chars


def first(node: tuple[Any, Any]) -> tuple[set[str], bool]:
    """Return (characters ``node`` can start with, whether it can match empty)."""
    op, arg = node
    if op is C.LITERAL:
        return {chr(arg)}, False
    if op is C.NOT_LITERAL:
        return set(ALPHABET) - {chr(arg)}, False
    if op is C.ANY:
        return set(ALPHABET) - {"\n"}, False
    if op is C.IN:
        return _set(arg), False
    if op is C.SUBPATTERN:
        return first_of(list(arg[-1]))
    if op is C.BRANCH:
        chars: set[str] = set()
        empty = False
        for branch in arg[1]:
            c, e = first_of(list(branch))
            chars |= c
            empty |= e
        return chars, empty
    if op in _REPEATS or op is getattr(C, "POSSESSIVE_REPEAT", None):
        c, e = first_of(list(arg[2]))
        return c, e or arg[0] == 0
    return set(), True  # anchors, lookarounds


def first_of(seq: list[Any], after: set[str] | None = None) -> tuple[set[str], bool]:
    """Return (characters the sequence ``seq`` can start with, whether it can match empty);
    ``after``: what may follow it, counted in when all of it can match empty."""
    chars: set[str] = set()
    for node in seq:
        c, empty = first(node)
        chars |= c
        if not empty:
            return chars, False
    return chars | (after or set()), True


def ambiguous_repeats(pattern: str) -> list[str]:
    """Return a description of every unbounded repeat whose characters may also start
    what follows it (past optional items), in the parsed ``pattern``."""
    found: list[str] = []

    def walk(seq: list[Any], after: set[str]) -> None:
        for i, node in enumerate(seq):
            follow, _ = first_of(seq[i + 1 :], after)
            op, arg = node
            if op in _REPEATS:
                _, high, body = arg
                takes, _ = first_of(list(body))
                if high is C.MAXREPEAT or high > 1:
                    overlap = takes & follow
                    if overlap:
                        found.append(f"{body} then one of {sorted(overlap)[:5]}")
                walk(list(body), takes | follow)
            elif op is C.SUBPATTERN:
                walk(list(arg[-1]), follow)
            elif op is C.BRANCH:
                for branch in arg[1]:
                    walk(list(branch), follow)

    walk(list(P.parse(pattern)), set())
    return found


#: The pattern the fuzz campaign caught (commit 28f1976 replaced it).
OLD_NUM = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|[-+]?(?:nan|NaN|NAN|inf|Inf|INF|Infinity)"


@pytest.mark.parametrize(
    ("pattern", "bad"),
    [(OLD_NUM, True), (r"\d+\d*", True), (r"a*a", True), (r"\d+(?:\.\d*)?", False),
     (r"[a-z]+\d+", False)],
)  # fmt: skip
def test_the_check_finds_ambiguous_repeats(pattern: str, bad: bool) -> None:
    assert bool(ambiguous_repeats(f"^(?:{pattern})$")) is bad


def test_number_pattern_has_no_ambiguous_repeat() -> None:
    assert ambiguous_repeats(f"^(?:{NUM})$") == []


def test_configuration_patterns_have_no_ambiguous_repeat() -> None:
    from lossdoctor.ingest import metadata

    patterns = [value.pattern for value in vars(metadata).values() if isinstance(value, re.Pattern)]
    patterns += [p.pattern for table in (metadata._FLAGS, metadata._YAML) for p in table.values()]
    assert len(patterns) >= 15
    for pattern in patterns:
        assert ambiguous_repeats(pattern) == [], pattern


def test_number_pattern_reads_the_numbers_it_read_before() -> None:
    old, new = re.compile(f"^(?:{OLD_NUM})$"), re.compile(f"^(?:{NUM})$")
    for text in ["1", "1.", "1.5", ".5", "-1e-5", "+2.5E3", "nan", "-inf", "Infinity",
                 "1..2", "e5", "1e", "", "."]:  # fmt: skip
        assert bool(old.match(text)) == bool(new.match(text)), text
