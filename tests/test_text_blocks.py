"""A text log gives the same run whatever the size of the blocks it is read in: whole,
streamed from a head of any size, or parsed a block of whole lines at a time."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from test_fast_paths import assert_same_outcome, outcome

from lossdoctor.ingest import read_bytes, streamed, textlog
from lossdoctor.ingest.delimited import decode_text
from lossdoctor.ingest.streamed import read_file
from lossdoctor.ingest.textlog import read_text_log, read_text_log_blocks, read_text_log_bytes

from conftest import ROOT, SHARED

TEXT_SUFFIXES = (".log", ".txt")
TEXT_LOGS = sorted(
    p
    for folder in (ROOT / "tests" / "fixtures" / "text", ROOT / "tests" / "fixtures" / "finetune")
    for p in folder.iterdir()
    if p.suffix in TEXT_SUFFIXES
)
CORPUS_TEXT_LOGS = sorted(
    p
    for corpus in ("real", "real2")
    if (SHARED / "corpus" / corpus / "text_log").is_dir()
    for p in (SHARED / "corpus" / corpus / "text_log").rglob("*")
    if p.is_file() and p.stat().st_size < 2_000_000
)
#: Streaming thresholds: a head of fewer lines than the sniffers look at (read whole
#: then), and one of more (streamed as lines unless the head shows a text form).
THRESHOLDS = (4096, 16384)
BLOCKS = (1024, 4096, 1 << 16)


def _name(path: Path) -> str:
    base = ROOT if path.is_relative_to(ROOT) else SHARED
    return path.relative_to(base).as_posix()


def _streamed_cases(paths: list[Path]) -> list[tuple[Path, int]]:
    return [(p, t) for p in paths for t in THRESHOLDS if p.stat().st_size > t]


@pytest.mark.parametrize(
    ("path", "threshold"),
    _streamed_cases(TEXT_LOGS),
    ids=lambda v: _name(v) if isinstance(v, Path) else str(v),
)
def test_a_text_log_streamed_from_any_head_reads_as_whole(
    path: Path, threshold: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """torchtune's captured bar (``1|3|Loss: 4.39: 5%|...``, its configuration echoed
    above it) is read by torchtune's reader whole; streamed, its head was taken for a
    plain text log and the echoed ``lr: 0.0003`` became a learning-rate series."""
    whole = outcome(read_bytes, path.read_bytes(), source=str(path))
    monkeypatch.setattr(streamed, "STREAM_MIN_BYTES", threshold)
    for block in BLOCKS:
        monkeypatch.setattr(streamed, "BLOCK_BYTES", block)
        assert_same_outcome(outcome(read_file, path, source=str(path), hints=None), whole)


def test_torchtune_stdout_streamed_has_no_learning_rate_from_its_config(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    path = ROOT / "tests" / "fixtures" / "finetune" / "torchtune_stdout.log"
    monkeypatch.setattr(streamed, "STREAM_MIN_BYTES", 16384)
    monkeypatch.setattr(streamed, "BLOCK_BYTES", 4096)
    run = read_file(path, source=str(path), hints=None)
    assert list(run.series) == ["train"]
    assert run.reader == read_bytes(path.read_bytes(), source=str(path)).reader


@pytest.mark.skipif(not CORPUS_TEXT_LOGS, reason="../shared/corpus absent")
@pytest.mark.parametrize("path", CORPUS_TEXT_LOGS, ids=_name)
def test_a_real_text_log_reads_the_same_in_blocks_of_any_size(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = path.read_bytes()
    whole = outcome(read_text_log, decode_text(data), source=str(path))
    assert_same_outcome(outcome(read_bytes, data, source=str(path)), whole)
    for block in BLOCKS:
        blocks = outcome(read_text_log_bytes, data, source=str(path), block_bytes=block)
        assert_same_outcome(blocks, whole)
        monkeypatch.setattr(textlog, "BLOCK_CHARS", block)
        assert_same_outcome(outcome(read_text_log, decode_text(data), source=str(path)), whole)
    for threshold in THRESHOLDS:
        monkeypatch.setattr(streamed, "STREAM_MIN_BYTES", threshold)
        monkeypatch.setattr(streamed, "BLOCK_BYTES", 4096)
        assert_same_outcome(outcome(read_file, path, source=str(path), hints=None), whole)


LIGHTNING_END = "Epoch 0: 100%|#####| 50/50 [00:05<00:00, 9.51it/s, train_loss=2.5, val_loss=2.5]"
_VALUES = st.sampled_from(["2.5", "1.0", "nan", "3e-4", "0.75", "inf", "12"])


@st.composite
def _log_line(draw: st.DrawFn) -> str:
    """One line of a text log in one of the dialects whose state runs from line to line
    (torchtune and Lightning bars, Keras epochs, validation blocks, per-epoch steps) or
    that the bulk nanoGPT reader takes, and lines of no values."""
    s, v, e = draw(st.integers(0, 30)), draw(_VALUES), draw(st.integers(0, 3))
    bar = f"1|{s}|Loss: {v}:  10%|#   | {s}/60 [00:01<00:07,  8.00it/s]"
    return draw(
        st.sampled_from(
            [
                f"iter {s}: loss {v}, time 1ms",
                f"step {s}: train loss {v}, val loss {v}",
                f"step {s}: loss {v}, lr 3e-4",
                f"{s} train {v}",
                bar,
                f"{bar}\r1|{s}|Loss: {v}:  12%|#   | {s + 1}/60 [00:01<00:07,  8.00it/s]",
                f"Step {s} | loss:{v} lr:2e-05 tokens_per_second_per_gpu:57.82",
                f"Epoch {e}:  20%|##        | {s}/50 [00:01<00:00, 9.51it/s, train_loss={v}]",
                f"Epoch {e}: 100%|##########| 50/50 [00:05<00:00, train_loss={v}, val_loss={v}]",
                f"Epoch {e + 1}/3",
                f"{s}/449 ━━━━━━━━━━━━━━━━━━━━ 0s 59ms/step - accuracy: 0.25 - loss: {v}",
                f"449/449 ━━━━━━━━━━━━━━━━━━━━ 37s 67ms/step - loss: {v} - val_loss: {v}",
                "Validation:",
                f"  loss: {v}",
                f"{{'loss': {v}, 'learning_rate': 1e-4, 'epoch': 0.5}}",
                f"Epoch {e + 1} | Step {s}/100 | loss={v}",
                f"step {s} | loss {v} | lr 3e-4",
                f"Epoch(train) [{e + 1}][{s + 1}/100]  lr: 1e-4  loss: {v}",
                f"s:{s} trl:{v}",
                "lr: 0.0003",
                "",
                "some words here",
                "Gradient overflow.  Skipping step, loss scaler 0 reducing loss scale to 1024",
                "\x1b[32mloss: 1.0\x1b[0m",
            ]
        )
    )


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@example(  # the Lightning bar's last step, given at the end, before nanoGPT rows read in bulk
    lines=[
        *["iter 0: loss 2.5, time 1ms"] * 4,
        LIGHTNING_END,
        "iter 1: loss 2.5",
        "iter 0: loss 2.5",
    ],
    cuts=[False, False, False, True, *[False] * 36],
    crlf=False,
    end=False,
)
@given(
    lines=st.lists(_log_line(), min_size=1, max_size=40),
    cuts=st.lists(st.booleans(), min_size=40, max_size=40),
    crlf=st.booleans(),
    end=st.booleans(),
)
def test_a_text_log_cut_anywhere_between_lines_reads_as_whole(
    lines: list[str], cuts: list[bool], crlf: bool, end: bool
) -> None:
    """Pieces of whole lines, cut after any line, give the run of the whole text, and the
    run of the text parsed line by line (nanoGPT's lines not in bulk): no state of a line
    dialect is lost or decided again at a piece's end."""
    newline = "\r\n" if crlf else "\n"
    data = (newline.join(lines) + (newline if end else "")).encode()
    whole = outcome(read_text_log, decode_text(data), source="log.txt")
    assert_same_outcome(
        whole, outcome(read_text_log, decode_text(data), source="log.txt", fast=False)
    )
    pieces, start, at = [], 0, 0
    for line, cut in zip(lines[:-1], cuts, strict=False):
        at += len((line + newline).encode())
        if cut:
            pieces.append(data[start:at])
            start = at
    pieces.append(data[start:])
    blocks = outcome(read_text_log_blocks, [p for p in pieces if p], source="log.txt")
    assert_same_outcome(blocks, whole)
