"""A Lightning progress bar's rows name the lines that hold their values.

Lightning draws each step twice (first with the step before's loss, then with its own) and
ends an epoch with one more redraw showing its validation values; a step's row keeps its
last redraw, so its line is that redraw's line (carriage returns split lines), whichever
reader reads the bar: the bar's own reader (a head showing the bar) or the text-log reader
(a bar below more console output than the head), whole, in blocks, streamed or line by
line.  A finding's evidence line points at the line holding the value it quotes.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lossdoctor.ingest import read_bytes, streamed, textlog
from lossdoctor.ingest.delimited import decode_text
from lossdoctor.ingest.progressbar import HEAD_CHARS, bar_line
from lossdoctor.ingest.streamed import read_file
from lossdoctor.ingest.textlog import read_text_log, read_text_log_bytes
from lossdoctor.model import Run

from conftest import ROOT, run_json

FIXTURE = ROOT / "tests" / "fixtures" / "finetune" / "lightning_progress.log"
#: Console output above a bar, longer than the head the bar's own reader is chosen in.
PREAMBLE = "UserWarning: the dataloader has few workers, consider raising num_workers\n" * (
    HEAD_CHARS // 70
)


def bar_log(losses: list[str], per_epoch: int, val: list[str]) -> str:
    """Return a captured Lightning TQDM bar: ``losses[i]`` is step i + 1's training loss,
    ``val[e]`` epoch e's validation loss; one physical line per epoch, ending with a
    newline."""
    epochs = []
    for epoch in range(len(losses) // per_epoch):
        shown = f", val_loss={val[epoch - 1]}" if epoch else ""
        redraws = []
        for batch in range(1, per_epoch + 1):
            step = epoch * per_epoch + batch
            head = (
                f"Epoch {epoch}: {100 * batch // per_epoch}%|##| {batch}/{per_epoch} [00:01<00:00"
            )
            before = losses[step - 2] if step > 1 else "3.500"
            redraws.append(f"{head}, 9.51it/s, v_num=0, train_loss={before}{shown}]")
            redraws.append(f"{head}, 9.51it/s, v_num=0, train_loss={losses[step - 1]}{shown}]")
        end = redraws[-1].replace(shown, "").replace("]", f", val_loss={val[epoch]}]")
        epochs.append("\r".join([*redraws, end]))
    return "\n".join(epochs) + "\n"


def numbered(data: bytes) -> list[str]:
    """Return the lines of a log as its readers number them (carriage returns split)."""
    return decode_text(data).replace("\r\n", "\n").replace("\r", "\n").split("\n")


def assert_rows_on_their_lines(run: Run, data: bytes) -> None:
    """Assert that each training and validation row names a bar line of its step that
    shows its value, and that the last row names the bar's last line."""
    lines = numbered(data)
    last = 0
    for role in ("train", "val"):
        series = run.series[role]
        assert series.lines is not None
        for step, value, number in zip(series.steps, series.values, series.lines, strict=True):
            found = bar_line(lines[int(number) - 1].strip())
            assert found is not None, (role, step, number)
            shown = {**found[2], **found[3]}[series.column]
            assert found[0] == step, (role, step, number)
            assert shown == value or (math.isnan(shown) and math.isnan(value)), (role, step)
            last = max(last, int(number))
    assert last == max(n for n, line in enumerate(lines, 1) if bar_line(line.strip()))


def _rows(run: Run) -> dict[str, list[tuple[float, int]]]:
    """Return each series' (step, line) pairs, by role."""
    return {
        role: list(
            zip(
                series.steps.tolist(),
                (series.lines if series.lines is not None else []),
                strict=True,
            )
        )
        for role, series in run.series.items()
    }


Reader = Callable[[bytes, Path, pytest.MonkeyPatch], Run]


def _whole(data: bytes, path: Path, monkeypatch: pytest.MonkeyPatch) -> Run:
    return read_bytes(data, source=str(path))


def _text_log(data: bytes, path: Path, monkeypatch: pytest.MonkeyPatch) -> Run:
    return read_text_log(decode_text(data), source=str(path))


def _line_by_line(data: bytes, path: Path, monkeypatch: pytest.MonkeyPatch) -> Run:
    return read_text_log(decode_text(data), source=str(path), fast=False)


def _text_blocks(data: bytes, path: Path, monkeypatch: pytest.MonkeyPatch) -> Run:
    monkeypatch.setattr(textlog, "BLOCK_CHARS", 1024)
    return read_text_log(decode_text(data), source=str(path))


def _byte_blocks(data: bytes, path: Path, monkeypatch: pytest.MonkeyPatch) -> Run:
    return read_text_log_bytes(data, source=str(path), block_bytes=1024)


def _streamed(data: bytes, path: Path, monkeypatch: pytest.MonkeyPatch) -> Run:
    monkeypatch.setattr(streamed, "STREAM_MIN_BYTES", 4096)
    monkeypatch.setattr(streamed, "BLOCK_BYTES", 4096)
    return read_file(path, source=str(path), hints=None)


READERS = [_whole, _text_log, _line_by_line, _text_blocks, _byte_blocks, _streamed]


@pytest.mark.parametrize("read", READERS, ids=lambda r: r.__name__.strip("_"))
def test_lightning_fixture_rows_name_the_lines_holding_their_values(
    read: Reader, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = FIXTURE.read_bytes()
    run = read(data, FIXTURE, monkeypatch)
    assert len(run.series["train"].steps) == 60
    assert len(run.series["val"].steps) == 12
    assert_rows_on_their_lines(run, data)


@pytest.mark.parametrize("read", READERS, ids=lambda r: r.__name__.strip("_"))
def test_a_bar_below_console_output_names_the_lines_holding_its_values(
    read: Reader, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Read by the text-log reader (the head shows no bar), each step was named with the
    line of the next redraw, and the last step with one line past the end."""
    losses = [f"{2.0 - 0.1 * i:.3f}" for i in range(8)]
    path = tmp_path / "fit.log"
    path.write_text(PREAMBLE + bar_log(losses, per_epoch=4, val=["2.100", "1.900"]))
    data = path.read_bytes()
    run = read(data, path, monkeypatch)
    assert run.reader == "text:lightning-progress"
    assert list(run.series["train"].steps) == [1.0, 2, 3, 4, 5, 6, 7, 8]
    assert list(run.series["val"].values) == [2.1, 1.9]
    assert_rows_on_their_lines(run, data)
    rows = _rows(run)
    assert rows["val"][-1][1] == len(numbered(data)) - 1  # the file's last line (its end: "")
    first = PREAMBLE.count("\n") + 2  # step 1 drawn with its own loss
    assert rows["train"][:2] == [(1.0, first), (2.0, first + 2)]


def test_a_line_printed_after_a_steps_last_redraw_comes_after_that_steps_row() -> None:
    """The step's row is read only when the bar moves on, after the printed line's: in line
    order, the printed value is at that step (it was at the step before), whole, in blocks
    and line by line alike."""
    bar = bar_log([f"{2.0 - 0.1 * i:.3f}" for i in range(8)], per_epoch=4, val=["2.1", "1.9"])
    redraws = bar.split("\r")
    redraws[3] += "\nlearning_rate=0.0005"  # printed after step 2's last redraw
    data = (PREAMBLE + "\r".join(redraws)).encode()
    whole = read_text_log(decode_text(data), source="fit.log")
    assert_rows_on_their_lines(whole, data)
    lines = numbered(data)
    ((step, number),) = _rows(whole)["lr"]
    assert (step, lines[number - 1]) == (2.0, "learning_rate=0.0005")
    for run in (
        read_text_log(decode_text(data), source="fit.log", fast=False),
        read_text_log_bytes(data, source="fit.log", block_bytes=512),
        read_bytes(data, source="fit.log"),
    ):
        assert _rows(run) == _rows(whole)


def test_a_findings_evidence_line_holds_the_value_it_quotes(
    runner: CliRunner, tmp_path: Path
) -> None:
    """A spike and a NaN planted in a bar below console output: ``check -f json`` named
    the line after each (step 32 drawn with step 31's spike; step 58 with the NaN)."""
    losses = [f"{3.0 * math.exp(-s / 60) + 0.3 + 0.01 * (s * 7 % 5):.3f}" for s in range(1, 81)]
    losses[30], losses[56] = "9.500", "nan.0"
    path = tmp_path / "fit.log"
    path.write_text(PREAMBLE + bar_log(losses, per_epoch=40, val=["1.500", "1.400"]))
    code, report = run_json(runner, str(path))
    assert code == 1  # the NaN fails the run
    evidence = {f["rule"]: f["evidence"] for f in report["runs"][0]["findings"]}
    lines = numbered(path.read_bytes())
    spike = bar_line(lines[evidence["spikes"]["line"] - 1].strip())
    assert spike is not None
    assert evidence["spikes"]["start_step"] == 31
    assert (spike[0], spike[2]["train_loss"]) == (31, 9.5)
    nan = bar_line(lines[evidence["non-finite"]["line"] - 1].strip())
    assert nan is not None
    assert evidence["non-finite"]["start_step"] == 57
    assert nan[0] == 57
    assert math.isnan(nan[2]["train_loss"])


def test_watch_reads_a_bar_below_console_output_on_checks_steps_and_values(
    tmp_path: Path,
) -> None:
    """``watch`` reads the bar through the same line parser (its reports name no lines):
    the same steps and values as ``check``, the last step's included."""
    from test_finetune_formats import _watched

    losses = [f"{2.0 - 0.1 * i:.3f}" for i in range(8)]
    data = (PREAMBLE + bar_log(losses, per_epoch=4, val=["2.100", "1.900"])).encode()
    checked = read_bytes(data, source="fit.log")
    run, _ = _watched(data)
    assert run is not None
    for role in ("train", "val"):
        assert run.series[role].steps.tolist() == checked.series[role].steps.tolist()
        assert run.series[role].values.tolist() == checked.series[role].values.tolist()
