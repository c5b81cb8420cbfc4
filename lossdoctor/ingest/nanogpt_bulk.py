"""nanoGPT training lines (``iter N: loss X, ...``) read in bulk from a block of bytes.

The bulk of a nanoGPT log is these lines.  They are found and their numbers read by
numpy over the whole block (a few passes of one byte per line each), with no per-line
Python: the step is a run of digits, the loss a run of digits with at most one point.
A line that starts like one but is anything else (a sign, an exponent, ``nan``, a
number too long to be read exactly this way, another script's digits, a colour code) is left to the
line-by-line parser (:func:`lossdoctor.ingest.textlines.parse_line`), which reads every
line the same way: the numbers here are the ones :func:`float` gives for the text.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from lossdoctor.model import BoolArray, FloatArray, IntArray

ByteArray = npt.NDArray[np.uint8]

_ITER = b"iter "
_LOSS = b": loss "
#: Digits read exactly as an integer and then as a float (below 2**53).
MAX_DIGITS = 15
#: Powers of ten held exactly by a float64: a mantissa below 2**53 divided by one of
#: them is the correctly rounded value of the decimal text, as :func:`float` reads it.
_POW10 = np.array([float(10**k) for k in range(MAX_DIGITS + 1)])
_POW10_INT = np.array([10**k for k in range(MAX_DIGITS + 1)], dtype=np.int64)
_DIGIT_LIMIT = 10  # a byte minus ord("0") below this is a digit (uint8 wraps below "0")
#: Bytes past the end read at the most (offsets from a line's end: ": loss ", digits).
_PAD = len(_LOSS) + 2 * (MAX_DIGITS + 2)
_ZERO, _POINT, _NEWLINE = ord("0"), ord("."), ord("\n")
_EXPONENT = (ord("e"), ord("E"))
_NON_ASCII = 0x80


@dataclass(frozen=True)
class NanoGPTRows:
    """The nanoGPT training lines of a block: their steps and losses, and for every line
    of the block (split on ``\\n``) where it starts and ends (byte offsets) and whether it
    is one of them (``is_fast``)."""

    steps: FloatArray
    losses: FloatArray
    is_fast: BoolArray
    starts: IntArray
    ends: IntArray


def nanogpt_rows(data: bytes, *, max_line: int) -> NanoGPTRows | None:
    """Return the nanoGPT training lines of ``data`` (lines split on ``\\n``; a line with
    a colour code, or longer than ``max_line`` bytes, is never one), or None when it has
    none.  ``data`` must hold no carriage return or escape byte (the caller checks)."""
    if _ITER not in data:
        return None
    # a newline after the end (every run of digits read stops at its line's end), then
    # bytes that are no digit, so that no offset read is out of bounds
    raw = np.frombuffer(data + b"\n" + bytes(_PAD), dtype=np.uint8)
    line_ends = np.flatnonzero(raw[: len(data) + 1] == _NEWLINE)
    starts = np.concatenate([np.zeros(1, dtype=np.int64), line_ends[:-1] + 1])
    ends = line_ends.astype(np.int64)
    lengths = ends - starts
    shortest = len(_ITER) + 1 + len(_LOSS) + 1
    rows = np.flatnonzero((lengths >= shortest) & (lengths <= max_line))
    rows = rows[_starts_with(raw, starts[rows], _ITER)]
    if not rows.shape[0]:
        return None
    step, step_digits, after_step = _digits(raw, starts[rows] + len(_ITER))
    ok = (step_digits > 0) & (step_digits <= MAX_DIGITS)
    # the prefix holds no newline: it never matches across a line's end
    ok &= _starts_with(raw, after_step, _LOSS)
    whole, whole_digits, point_at = _digits(raw, after_step + len(_LOSS))
    has_point = raw[point_at] == _POINT
    fraction, fraction_digits, after = _digits(raw, point_at + has_point)
    fraction_digits *= has_point
    after = np.where(has_point, after, point_at)
    ok &= (whole_digits > 0) & (whole_digits + fraction_digits <= MAX_DIGITS)
    # what follows ends the number for the line-by-line parser too: no exponent, and no
    # other script's digit (its pattern's \d matches one: non-ASCII bytes are refused)
    following = raw[after]
    ok &= (following != _EXPONENT[0]) & (following != _EXPONENT[1]) & (following < _NON_ASCII)
    rows, step = rows[ok], step[ok]
    if not rows.shape[0]:
        return None
    whole, fraction, fraction_digits = whole[ok], fraction[ok] * has_point[ok], fraction_digits[ok]
    mantissa = whole * _POW10_INT[fraction_digits] + fraction
    losses = mantissa.astype(np.float64) / _POW10[fraction_digits]
    is_fast = np.zeros(starts.shape[0], dtype=bool)
    is_fast[rows] = True
    return NanoGPTRows(step.astype(np.float64), losses, is_fast, starts, ends)


def _starts_with(raw: ByteArray, at: IntArray, prefix: bytes) -> BoolArray:
    """Return whether the bytes of ``raw`` from each offset ``at`` are ``prefix``."""
    same: BoolArray = raw[at] == prefix[0]
    for offset, byte in enumerate(prefix[1:], start=1):
        same &= raw[at + offset] == byte
    return same


def _digits(raw: ByteArray, at: IntArray) -> tuple[IntArray, IntArray, IntArray]:
    """Return the integer the run of digits from each offset ``at`` spells (read up to
    :data:`MAX_DIGITS` + 1 digits: longer runs are refused by their count), how many
    digits it has, and the offset just after it (``raw`` ends with a newline)."""
    value = np.zeros(at.shape[0], dtype=np.int64)
    end = at.copy()
    active = np.ones(at.shape[0], dtype=bool)
    for _ in range(MAX_DIGITS + 1):
        digit = raw[end] - np.uint8(_ZERO)  # wraps below "0": not a digit
        active &= digit < _DIGIT_LIMIT
        if not active.any():
            break
        value[active] = value[active] * 10 + digit[active]
        end += active
    return value, end - at, end
