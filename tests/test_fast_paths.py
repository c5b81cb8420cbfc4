"""Parity of the readers' fast paths with their line-by-line paths: the same run (series,
steps, values, source lines, notes) or the same error, on varied inputs."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lossdoctor.errors import InputError
from lossdoctor.ingest import textlog
from lossdoctor.ingest.textlog import nanogpt_iter, parse_line, read_text_log, strip_prefix
from lossdoctor.model import Run


def assert_same_run(fast: Run, slow: Run) -> None:
    """Assert two runs are the same to the bit (NaN where NaN, same source lines)."""
    assert fast.reader == slow.reader
    assert fast.notes == slow.notes
    assert list(fast.series) == list(slow.series)
    for role, series in fast.series.items():
        other = slow.series[role]
        assert series.column == other.column
        assert series.x_kind == other.x_kind
        assert series.meta == other.meta
        assert np.array_equal(series.steps, other.steps, equal_nan=True)
        assert np.array_equal(series.values, other.values, equal_nan=True)
        assert (series.lines is None) == (other.lines is None)
        if series.lines is not None:
            assert np.array_equal(series.lines, other.lines)


def outcome(read: object, *args: object, **kwargs: object) -> Run | str:
    """Return the run, or the one-line error, that a reader gives."""
    try:
        return read(*args, **kwargs)  # type: ignore[operator, no-any-return]
    except InputError as exc:
        return exc.one_line()


def assert_same_outcome(fast: Run | str, slow: Run | str) -> None:
    if isinstance(fast, str) or isinstance(slow, str):
        assert fast == slow
    else:
        assert_same_run(fast, slow)


NUMBERS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True, width=64).map(repr),
    st.integers(-(10**20), 10**20).map(str),
    st.sampled_from(["nan", "NaN", "-inf", "Infinity", "+INF", ".5", "5.", "1e-400", "2.5E+3"]),
)
STEPS = st.integers(0, 10**12).map(str)


@st.composite
def text_lines(draw: st.DrawFn) -> str:
    """One line of a text log: mostly nanoGPT lines, and every kind that must not be read
    as one (colours, prefixes, blanks, broken numbers, other dialects)."""
    step, value = draw(STEPS), draw(NUMBERS)
    return draw(
        st.sampled_from(
            [
                f"iter {step}: loss {value}, time 12.5ms, mfu 30.1%",
                f"iter {step}: loss {value}",
                f"iter {step}: loss {value}   ",
                f"step {step}: train loss {value}, val loss {value}",
                f"\x1b[32miter {step}: loss {value}\x1b[0m, time 1ms",
                f"iter {step}: loss \x1b[1m{value}\x1b[0m",
                f" iter {step}: loss {value}",
                f"INFO:train:iter {step}: loss {value}",
                f"2024-01-01 10:00:00 iter {step}: loss {value}",
                f"iter {step}: loss abc",
                f"iter {step}:loss {value}",
                f"iterate {step}: loss {value}",
                f"iter {step}: loss {value}" + "x" * textlog.MAX_LINE_CHARS,
                f"step {step} | loss {value} | lr 3e-4",
                f"{{'loss': {value}, 'learning_rate': 1e-4, 'epoch': 0.5}}",
                f"Epoch 1 | Step {step}/100 | loss={value}",
                "Validation:",
                f"  loss: {value}",
                "",
                "   ",
                "iter ",
                "number of parameters: 10.65M",
                "caf\u00e9 \u2028 iter 3: loss 1.0",
            ]
        )
    )


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lines=st.lists(text_lines(), min_size=1, max_size=40), block=st.integers(1, 300))
def test_text_log_fast_path_reads_as_line_by_line(lines: list[str], block: int) -> None:
    """nanoGPT lines read in bulk give exactly what line-by-line parsing gives, whatever
    the other lines around them and wherever the blocks are cut."""
    text = "\n".join(lines)
    original = textlog.BLOCK_CHARS
    textlog.BLOCK_CHARS = block
    try:
        fast = outcome(read_text_log, text, source="log.txt")
    finally:
        textlog.BLOCK_CHARS = original
    slow = outcome(read_text_log, text, source="log.txt", fast=False)
    assert_same_outcome(fast, slow)


@pytest.mark.parametrize(
    ("text", "train", "val"),
    [
        (
            "iter 0: loss 5.0, time 1ms\niter 1: loss 4.0\nstep 1: train loss 4.0, val loss 4.5\n",
            2,
            1,
        ),
        ("step 0: train loss 5.0, val loss 5.1\niter 0: loss 5.0\niter 10: loss nan\n", 2, 1),
        ("hello\n\niter 0: loss 5.0\n\x1b[1miter 1: loss 4.0\x1b[0m\niter 2: loss 3.0\n", 3, 0),
    ],
)
def test_text_log_mixed_lines_keep_their_source_lines(text: str, train: int, val: int) -> None:
    """Fast and slow agree on a hand-made mix, and the points keep their line numbers."""
    fast = read_text_log(text, source="log.txt")
    assert_same_run(fast, read_text_log(text, source="log.txt", fast=False))
    assert len(fast.series["train"]) == train
    assert len(fast.series.get("val") or ()) == val
    lines = fast.series["train"].lines
    assert lines is not None
    assert [text.split("\n")[n - 1].lstrip("\x1b[1m")[:4] for n in lines] == ["iter"] * train


@given(line=text_lines())
def test_nanogpt_iter_agrees_with_parse_line(line: str) -> None:
    """The live monitor's per-line shortcut reads a line as the general parser does."""
    quick = nanogpt_iter(line)
    if quick is None:
        return
    parsed = parse_line(strip_prefix(line), textlog._State())
    assert parsed is not None
    assert parsed.dialect == "nanogpt"
    step, loss = parsed.values["step"], parsed.values["loss"]
    assert quick[0] == step
    assert quick[1] == loss or (np.isnan(quick[1]) and np.isnan(loss))
