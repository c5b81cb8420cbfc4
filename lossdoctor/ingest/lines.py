"""What every text-log reader shares: the number pattern and the stripping of a line's
logging prefix (kept apart so that the dialect modules and the text reader that calls
them import it without importing each other)."""

from __future__ import annotations

import re

NUM = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?|[-+]?(?:nan|NaN|NAN|inf|Inf|INF|Infinity)"
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_PREFIXES = (
    re.compile(r"^(?:DEBUG|INFO|WARNING|ERROR|CRITICAL):[^\s:]*:"),
    re.compile(r"^\s*\[?\d{2,4}[-/]\d\d[-/]\d\d[ T_]\d\d:\d\d:\d\d(?:[.,]\d+)?\]?\s*[|,-]?\s*"),
    re.compile(r"^\s*\d\d/\d\d \d\d:\d\d:\d\d - \S+ - \w+ - "),
    re.compile(r"^\s*\[?(?:DEBUG|INFO|WARNING|WARN|ERROR)\]?\s*[|:-]?\s*"),
)


def strip_prefix(line: str) -> str:
    """Return ``line`` without ANSI colours and leading time stamps, levels, logger names."""
    line = _ANSI.sub("", line)
    for pattern in _PREFIXES:
        line = pattern.sub("", line, count=1)
    return line
