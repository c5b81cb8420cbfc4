"""``watch`` (and ``run``) read every fine-tuning format ``check`` reads with ``check``'s
own readers: the same step axis, series, loss parts and verdict, whether the log arrives
at once (``cat f | lossdoctor watch -``), line by line (a live run) or in chunks cut
anywhere (a pipe).

Each format was misread by ``watch`` before: LLaMA-Factory and ms-swift judged on the
epoch as the step, the notebook table with its banner unread, Ultralytics judged on one
loss part, detectron2's parts and mmengine's validation lines lost, torchtune's echoed
configuration taken for 1-point series.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from lossdoctor.api import diagnose
from lossdoctor.engine.loader import load_rules
from lossdoctor.ingest import read_run
from lossdoctor.live.monitor import LiveMonitor
from lossdoctor.live.sources import LineSplitter, split_lines
from lossdoctor.model import Run
from lossdoctor.report import RunReport

from conftest import FIXTURES

FT = FIXTURES / "finetune"
ENV = {**os.environ, "NO_COLOR": "1", "LOSSDOCTOR_PLAIN": "1"}
LD = [sys.executable, "-m", "lossdoctor"]
#: Bytes a pipe gives at a time in the chunked feeding (cuts lines anywhere).
CHUNK = 997


def _batches(data: bytes, how: str) -> list[list[str]]:
    """Return the batches of lines the live loop gets for ``data``: ``whole`` (one read),
    ``lines`` (one line a read, as a training job writes) or ``chunks`` (reads of
    :data:`CHUNK` bytes, split as the pipe reader splits them)."""
    if how == "whole":
        lines, rest = split_lines(b"", data if data.endswith(b"\n") else data + b"\n")
        assert rest == b""
        return [lines]
    if how == "lines":
        return [[line] for batch in _batches(data, "whole") for line in batch]
    splitter = LineSplitter()
    batches = [splitter.feed(data[at : at + CHUNK]) for at in range(0, len(data), CHUNK)]
    return [batch for batch in [*batches, splitter.end()] if batch]


def _watched(path: Path, how: str) -> tuple[Run, RunReport]:
    """Return the run and the final report ``watch -`` makes of the file at ``path``."""
    monitor = LiveMonitor("-", load_rules())
    for batch in _batches(path.read_bytes(), how):
        monitor.add_lines(batch)
    (report,) = monitor.reports(finished=True)
    run = monitor.run()
    assert run is not None
    return run, report


def _verdict(report: RunReport) -> list[tuple[str, str, str]]:
    return sorted((f.rule, f.code, f.severity) for f in report.active)


#: Notes of watch's own (a stream's keys beyond what watch keeps), not check's.
WATCH_ONLY_NOTES = ("tracked the first ",)


def _assert_same(path: Path, how: str, *, notes: bool = True) -> tuple[Run, Run]:
    """Assert that watch reads ``path`` as check does: the same series (loss parts
    included), steps, values, x axis, findings and notes (``notes``: those of watch's own
    aside); return (check's run, watch's run)."""
    checked = read_run(str(path))
    checked_report = diagnose(str(path))
    run, report = _watched(path, how)
    assert set(run.series) == set(checked.series)
    for role, want in checked.series.items():
        got = run.series[role]
        assert got.column == want.column, role
        assert got.x_kind == want.x_kind, role
        assert got.steps.tolist() == want.steps.tolist(), role
        np.testing.assert_array_equal(got.values, want.values, err_msg=role)
    assert _verdict(report) == _verdict(checked_report)
    assert report.verdict == checked_report.verdict
    if notes:  # watch left out check's "x: epoch" and the lines it skipped
        own = [n for n in report.notes if not n.startswith(WATCH_ONLY_NOTES)]
        assert own == list(checked_report.notes)
    # a total of logged parts (Ultralytics, detectron2, mmengine) is no cross-entropy:
    # check shows no perplexity of it, and watch showed one ("last 2.177 (ppl 8.817)")
    for role, summary in checked_report.series.items():
        assert report.series[role].perplexity == summary.perplexity, role
    return checked, run


HOW = ["whole", "lines", "chunks"]


@pytest.mark.parametrize("how", HOW)
def test_llamafactory_steps_are_current_steps_in_watch(how):
    # watch took "epoch" (0.01, 0.02, ...) as the step
    checked, run = _assert_same(FT / "llamafactory_trainer_log.jsonl", how)
    assert run.series["train"].steps[:2].tolist() == [10, 20]
    assert run.series["val"].steps.tolist() == [500, 1000, 1500, 2000, 2500, 3000]
    assert run.series["train"].meta == checked.series["train"].meta


@pytest.mark.parametrize("how", HOW)
def test_swift_step_from_global_step_over_max_steps_in_watch(how):
    # watch took "epoch" (0.007, 0.013, ...) as the step
    _, run = _assert_same(FT / "swift_logging.jsonl", how)
    assert run.series["train"].steps[[0, -1]].tolist() == [10, 1500]
    assert run.series["train"].x_kind == "step"


@pytest.mark.parametrize("name", ["hf_notebook_table.txt", "unsloth_notebook_spaces.txt"])
@pytest.mark.parametrize("how", HOW)
def test_notebook_table_under_its_banner_in_watch(name, how):
    # the banner " [6000/6000 1:02:11, Epoch 3/3]" above the header: watch read nothing
    _, run = _assert_same(FT / name, how)
    assert run.series["train"].x_kind == "step"
    if name == "hf_notebook_table.txt":
        assert run.series["val"].steps[:3].tolist() == [10, 210, 410]
        assert run.series["train"].steps[0] == 210  # "No log" is no point


@pytest.mark.parametrize("how", HOW)
def test_ultralytics_total_is_the_sum_of_parts_in_watch(how):
    # watch judged train/box_loss alone and kept no part
    _, run = _assert_same(FT / "ultralytics_results.csv", how)
    parts = ["train/box_loss", "train/cls_loss", "train/dfl_loss"]
    np.testing.assert_allclose(run.series["train"].values, sum(run.series[p].values for p in parts))
    assert run.series["val"].column == "val/loss"
    assert any(
        "the sum of train/box_loss + train/cls_loss + train/dfl_loss" in n for n in run.notes
    )


def test_loss_parts_in_the_logs_column_order_in_watch():
    # a set's order, which changes with each process's hash seed
    _, run = _watched(FT / "ultralytics_results.csv", "lines")
    assert [s for s in run.series if "/" in s and s.endswith("_loss")] == [
        "train/box_loss", "train/cls_loss", "train/dfl_loss",
        "val/box_loss", "val/cls_loss", "val/dfl_loss",
    ]  # fmt: skip


@pytest.mark.parametrize("how", HOW)
def test_detectron2_parts_and_smoothing_in_watch(how):
    # watch kept no loss part and missed that detectron2 logs a smoothed loss
    _, run = _assert_same(FT / "detectron2_metrics.json", how)
    assert {"loss_cls", "loss_box_reg", "loss_rpn_cls", "loss_rpn_loc"} <= set(run.series)
    assert run.series["train"].meta.get("smoothed")


@pytest.mark.parametrize("how", HOW)
def test_mmengine_validation_lines_at_their_epochs_end_in_watch(how):
    # watch put the validation lines' epoch numbers (1, 2, 3, 4) into the training loss
    _, run = _assert_same(FT / "mmengine_scalars.json", how)
    assert len(run.series["train"]) == 240
    assert run.series["val"].column == "val/loss"
    assert run.series["val"].steps.tolist() == [60, 120, 180, 240]


@pytest.mark.parametrize("how", HOW)
def test_torchtune_configuration_echo_is_no_series_in_watch(how):
    # the echoed "lr: 0.0003" of the resolved config became a 1-point lr series
    _, run = _assert_same(FT / "torchtune_stdout.log", how)
    assert set(run.series) == {"train"}
    assert run.reader == "live:torchtune"


def _reports(doc: dict) -> list[tuple[str, list[str], list[tuple[str, str, str]], list[str]]]:
    """Return each run's verdict, series, findings (rule, severity, message: the steps
    it names) and notes of a JSON report."""
    return [
        (
            run["verdict"],
            sorted(run["series"]),
            sorted((f["rule"], f["severity"], f["message"]) for f in run["findings"]),
            run["notes"],
        )
        for run in doc["runs"]
    ]


@pytest.mark.parametrize(
    "name",
    [
        "hf_notebook_table.txt",
        "llamafactory_trainer_log.jsonl",
        "ultralytics_results.csv",
        "../text/keras_stdout.txt",
    ],
)
def test_watch_stdin_and_run_command_report_what_check_reports(tmp_path, name):
    # the notes too: watch's and run's said "columns: train=loss, val=val_loss" where
    # check's said "columns: train=loss, val=val_loss; x: epoch", and left out the
    # Keras note and the 4 lines without values check skipped
    path = FT / name
    out = {how: tmp_path / f"{how}.json" for how in ("check", "watch", "run")}
    check = subprocess.run(
        [*LD, "check", "-f", f"json:{out['check']}", str(path)], capture_output=True, env=ENV,
        timeout=300,
    )  # fmt: skip
    watch = subprocess.run(
        [*LD, "watch", "-f", f"json:{out['watch']}", "-"], input=path.read_bytes(),
        capture_output=True, env=ENV, timeout=300,
    )  # fmt: skip
    cat = [sys.executable, "-c", "import sys; sys.stdout.write(open(sys.argv[1]).read())"]
    run = subprocess.run(
        [*LD, "run", "-f", f"json:{out['run']}", "--", *cat, str(path)], capture_output=True,
        env=ENV, timeout=300,
    )  # fmt: skip
    for how, done in (("check", check), ("watch", watch), ("run", run)):
        assert out[how].exists(), (how, done.returncode, done.stderr[-2000:])
    want = _reports(json.loads(out["check"].read_text()))
    assert want
    assert _reports(json.loads(out["watch"].read_text())) == want, watch.stderr
    assert _reports(json.loads(out["run"].read_text())) == want, run.stderr
    assert watch.returncode == check.returncode


@pytest.mark.parametrize("how", HOW)
@pytest.mark.parametrize(
    ("name", "why"),
    [
        # a resumed run: later points replace the earlier ones from the resume step on
        # (watch kept both: steps 10, 20, 20, 30, and no resume-jump finding); its note
        # names the row (watch keeps no line numbers), check's the line: not compared
        ("resumed.csv", "resume"),
        # per-epoch step counters "Epoch 1 | Step 0/100" made global (watch: 0, 50, 0, 50),
        # the evaluation's loss at the step above it (watch: one step after)
        ("text/epoch_step.log", "epoch steps"),
        # llm.c's "val loss X" line has no step: it is at the step above (watch: one after)
        ("text/llmc_stdout.log", "no step"),
        # a W&B history export whose first column is pandas' unnamed index (watch: no loss)
        ("wandb_history.csv", "index column"),
        # Keras' bar: each epoch's end line, not the running means before it (watch: 5
        # points for 3 epochs)
        ("text/keras_stdout.txt", "keras"),
    ],
)
def test_other_forms_on_the_steps_check_reads(name, why, how):
    checked, run = _assert_same(FIXTURES / name, how, notes=why != "resume")
    assert run.series["train"].meta == checked.series["train"].meta, why


def _llmc_log() -> str:
    """llm.c's train_gpt2 output: its settings table, then a validation loss printed
    before step 1 (and every 25 steps), then one line per step."""
    lines = ["+-----------------------+----------------------------------------------------+"]
    lines += [f"| {k:<21} | {v:<50} |" for k, v in [("val_loss_every", 25), ("max_steps", -1)]]
    for step in range(1, 101):
        if step % 25 == 1:
            lines.append(f"val loss {10.9 - step / 40:.6f}")
        loss = 11.0 - 4 * (1 - 0.97**step)
        lines.append(
            f"step {step:4d}/100 | loss {loss:.6f} (+nanz)| norm 1.2000 (+nanz)| "
            f"lr 6.00e-06 | 1234.56 ms | 12.3% bf16 MFU | 45678 tok/s"
        )
    return "\n".join(lines) + "\n"


def _detectron2_console() -> str:
    """detectron2's console: its whole configuration echoed (more keys than watch keeps
    series), then the metric lines of the iterations."""
    lines = ["[11/17 15:16:13] detectron2 INFO: Running with full config:"]
    lines += [f"    SETTING_{n}: {n / 10}" for n in range(120)]
    lines.append("    INSTANCE_LOSS_WEIGHT: 1.0")
    for it in range(19, 2000, 20):
        total = 0.4 + 0.6 * 0.998**it
        lines.append(
            f"[11/17 15:20:00 d2.utils.events]:  eta: 1:00:00  iter: {it}  "
            f"total_loss: {total:.4f}  loss_cls: {total / 2:.4f}  loss_box_reg: {total / 2:.4f}  "
            f"time: 0.5000  data_time: 0.0100  lr: 0.0100  max_mem: 5000M"
        )
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("how", HOW)
@pytest.mark.parametrize("form", ["llm.c", "detectron2"])
def test_printed_logs_on_the_steps_and_series_check_reads(tmp_path, form, how):
    path = tmp_path / "train.log"
    path.write_text(_llmc_log() if form == "llm.c" else _detectron2_console())
    _, run = _assert_same(path, how)
    if form == "llm.c":
        # the validation loss above step 1 is at step 1, the others at the step above
        # them (watch: the first at row 3, then took step 1 for a new run from scratch)
        assert run.series["val"].steps.tolist() == [1, 25, 50, 75]
    else:
        # the 122 echoed settings filled watch's 64 series: total_loss was never kept
        assert run.columns["train"] == "total_loss"
        assert len(run.series["train"]) == 100


@pytest.mark.parametrize("how", HOW)
def test_keras_bar_without_validation_keeps_every_line_as_check(tmp_path, how):
    # no epoch shows an end line: check reads every bar line, and so does watch (each
    # epoch's lines once the epoch ends)
    text = (FIXTURES / "text" / "keras_stdout.txt").read_text(encoding="utf-8")
    path = tmp_path / "fit.log"
    path.write_text(text.replace(" - val_accuracy: ", " (").replace(" - val_loss: ", " "))
    checked, run = _assert_same(path, how)
    assert len(run.series["train"]) == len(checked.series["train"]) == 5


def test_a_nan_loss_without_steps_is_judged_at_once():
    # records before a stream's first step wait for it (their step), but a non-finite
    # loss is not held: it is judged as it comes
    monitor = LiveMonitor("-", load_rules())
    assert monitor.add_lines(["loss=2.31", "loss=2.29"]) is False
    assert monitor.run() is None  # held for a step that may come
    assert monitor.add_lines(["loss=nan"]) is True
    run = monitor.run()
    assert run is not None
    assert run.series["train"].steps.tolist() == [0, 1, 2]


def test_watch_follows_a_file_as_check_reads_it(tmp_path):
    # `watch FILE` (following by name) reads mmengine's scalars.json as check does
    path = tmp_path / "scalars.json"
    path.write_bytes((FT / "mmengine_scalars.json").read_bytes())
    out = {how: tmp_path / f"{how}.json" for how in ("check", "watch")}
    subprocess.run(
        [*LD, "check", "-f", f"json:{out['check']}", str(path)], capture_output=True, env=ENV,
        timeout=300,
    )  # fmt: skip
    watch = subprocess.run(
        [*LD, "watch", "--exit-when-idle", "2", "-f", f"json:{out['watch']}", str(path)],
        capture_output=True, env=ENV, timeout=300,
    )  # fmt: skip
    want = _reports(json.loads(out["check"].read_text()))
    assert _reports(json.loads(out["watch"].read_text())) == want, watch.stderr
    assert json.loads(out["watch"].read_text())["runs"][0]["series"]["val"]["points"] == 4


def _refused(tmp_path: Path, what: str) -> Path:
    """Write what ``watch`` cannot follow: a folder of logs, an MLflow database, a W&B run
    file or a TensorBoard event file; return its path."""
    import sqlite3

    if what == "folder":
        path = tmp_path / "runs"
        path.mkdir()
        (path / "a.jsonl").write_text('{"step": 1, "loss": 2.0}\n')
    elif what == "sqlite":
        path = tmp_path / "mlflow.db"
        with sqlite3.connect(path) as db:
            db.execute("create table metrics (key text, value real, step integer)")
        db.close()
    elif what == "tfevents":
        from tbwriter import write_events

        steps = np.arange(1, 51)
        path = write_events(tmp_path / "tb", {"train/loss": (steps, 3.0 / steps)})
    else:
        path = tmp_path / "run-abc123.wandb"
        path.write_bytes(b":W&B\x00\x01\x00\x00" + bytes(64))
    return path


@pytest.mark.parametrize("what", ["folder", "sqlite", "wandb"])
def test_watch_refuses_a_folder_or_binary_file_at_once(tmp_path, what):
    # `lossdoctor watch runs/` or `watch mlflow.db` waited forever and printed nothing
    path = _refused(tmp_path, what)
    done = subprocess.run(
        [*LD, "watch", str(path)], capture_output=True, text=True, env=ENV, timeout=120,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert done.returncode == 2
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith(f"lossdoctor: {path}: a ")
    assert f"use lossdoctor check {path}" in line
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("what", "named"),
    [
        ("wandb", "a W&B run file"),
        ("tfevents", "a TensorBoard event file"),
        ("sqlite", "a SQLite database"),
    ],
)
def test_watch_says_binary_input_on_stdin_is_for_check(tmp_path, what, named):
    # `cat run.wandb | lossdoctor watch -` said "no loss values found in the input"
    path = _refused(tmp_path, what)
    done = subprocess.run(
        [*LD, "watch", "-"], input=path.read_bytes(), capture_output=True, text=False,
        env=ENV, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2
    (line,) = done.stderr.decode().strip().splitlines()
    assert line == (
        f"lossdoctor: -: binary input ({named}): watch follows text logs as they grow; "
        "to read it, use lossdoctor check FILE"
    )
    assert done.stdout == b""


@pytest.mark.parametrize("how", HOW)
def test_watch_notes_say_the_x_axis_and_the_lines_skipped_as_check(how):
    # watch said "columns: train=loss, val=val_loss" alone
    _, report = _watched(FIXTURES / "text" / "keras_stdout.txt", how)
    assert list(report.notes) == [
        "columns: train=loss, val=val_loss; x: epoch",
        "Keras: used the 3 epoch-end lines, not 2 progress-bar lines",
        "4 lines without values were skipped",
    ]


#: What ``python train.py > log.txt`` leaves above a script's JSON records: a library's
#: warning (two lines: the message and the source line it points at).
WARNING = (
    "/opt/venv/lib/python3.11/site-packages/torch/utils/data/dataloader.py:557: "
    "UserWarning: This DataLoader will create 8 worker processes in total. Our suggested "
    "max number of worker in current system is 2.\n"
    "  warnings.warn(_create_warning_msg(\n"
)


def _json_records(steps: range, *, spike_at: int | None = None) -> list[str]:
    """Return JSON Lines of a healthy run (a spike of 4x planted at ``spike_at``)."""
    lines = []
    for step in steps:
        loss = 0.6 + 2.4 * 0.985**step
        loss *= 4 if step == spike_at else 1
        lines.append(json.dumps({"step": step, "loss": round(loss, 4), "lr": 3e-4}))
    return lines


def test_check_reads_json_lines_after_a_text_preamble(tmp_path):
    # "no loss values found in this text (302 lines; no line matched a known log format)"
    path = tmp_path / "log.txt"
    path.write_text(WARNING + "\n".join(_json_records(range(1, 301), spike_at=200)) + "\n")
    run = read_run(str(path))
    assert run.reader == "jsonl"
    assert run.series["train"].steps[[0, -1]].tolist() == [1, 300]
    assert run.notes[-1] == "2 lines that are not JSON objects were skipped (first: 1)"
    report = diagnose(str(path))
    spikes = [f for f in report.active if f.rule == "spikes"]
    assert [f.evidence["start_step"] for f in spikes] == [200]


def test_check_reads_json_lines_after_a_text_preamble_when_streamed(tmp_path, monkeypatch):
    # a log from STREAM_MIN_BYTES on is read in blocks: the preamble does not stop it
    from lossdoctor import ingest
    from lossdoctor.ingest import streamed

    path = tmp_path / "log.txt"
    path.write_text(WARNING + "\n".join(_json_records(range(1, 3001))) + "\n")
    whole = read_run(str(path))
    monkeypatch.setattr(ingest, "STREAM_MIN_BYTES", 1 << 12)
    monkeypatch.setattr(streamed, "STREAM_MIN_BYTES", 1 << 12)
    monkeypatch.setattr(streamed, "BLOCK_BYTES", 1 << 12)
    run = read_run(str(path))
    assert run.series["train"].steps.tolist() == whole.series["train"].steps.tolist()
    assert run.notes == whole.notes


def test_a_json_config_line_above_a_text_log_is_no_json_lines(tmp_path):
    # a configuration printed as JSON (no loss value in it) among the text lines above a
    # text log's: still a text log
    path = tmp_path / "train.log"
    config = json.dumps({"model": "gpt2", "loss_type": "sigmoid", "lr": 3e-4})
    steps = "".join(f"step {s}: loss {3 - s / 100:.3f}\n" for s in range(50))
    path.write_text(f"Loaded configuration:\n{config}\n{steps}")
    run = read_run(str(path))
    assert run.reader.startswith("text")
    assert len(run.series["train"]) == 50


@pytest.mark.parametrize("how", HOW)
@pytest.mark.parametrize("form", ["preamble", "interleaved"])
def test_json_lines_among_text_lines_in_watch_as_check(tmp_path, form, how):
    # the preamble: watch read nothing ("no loss values found in the input"); lines
    # between the records (a tqdm bar, a print): watch said "skipped 4 malformed lines
    # (first at line 51)" where check said "4 lines that are not JSON objects were
    # skipped (first: 51)"
    records = _json_records(range(1, 201))
    if form == "preamble":
        text = WARNING + "\n".join(records) + "\n"
        want = "2 lines that are not JSON objects were skipped (first: 1)"
    else:
        lines = []
        for number, record in enumerate(records, start=1):
            lines.append(record)
            if number % 50 == 0:
                lines.append(f"Saving checkpoint to out/checkpoint-{number}")
                lines.append(f" {number // 2}%|#####     | {number}/400 [00:10<00:10, 9.5it/s]")
        text = "\n".join(lines) + "\n"
        want = "8 lines that are not JSON objects were skipped (first: 51)"
    path = tmp_path / "log.txt"
    path.write_text(text)
    _, run = _assert_same(path, how)
    assert run.series["train"].steps[[0, -1]].tolist() == [1, 200]
    assert run.notes[-1] == want
