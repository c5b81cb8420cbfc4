"""Event files, run folders, MLflow stores and text logs."""

from __future__ import annotations

import sqlite3

import numpy as np
import pytest

from lossdoctor import synth as curves
from lossdoctor.errors import InputError
from lossdoctor.ingest import read_run, read_runs

from conftest import FIXTURES, run_json, write_curve

TEXT = FIXTURES / "text"


# --- text logs ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "reader", "train", "val"),
    [
        (
            "nanogpt.log",
            "text:nanogpt",
            ([0, 10, 20, 30, 40], [4.2654, 3.2412, 2.785, 2.6163, 2.5433]),
            ([0, 40], [4.2823, 2.563]),
        ),
        (
            "llmc_main.log",
            "text:llm.c",
            ([0, 1, 2], [11.0116, 10.9586, 10.8579]),
            ([0, 250], [11.0095, 5.4432]),
        ),
        ("llmc_stdout.log", None, ([1, 2, 3], [11.01075, 10.5123, 10.11]), ([2], [10.4])),
        (
            "hf_stdout.log",
            "text:hf-printed",
            ([0.1, 0.2, 0.3], [4.867, 3.21, 2.95]),
            ([0.2], [3.0]),
        ),
        (
            "megatron.log",
            "text:megatron",
            ([100, 200, 300], [7.50422, 5.20422, 4.10422]),
            ([200], [5.324416]),
        ),
        ("fairseq.log", "text:fairseq", ([100, 200], [11.521, 9.101]), ([200], [8.114])),
        ("mmengine.log", "text:mmengine", ([240, 480, 975], [2.5128, 2.1128, 1.8128]), None),
        (
            "keras_stdout.txt",
            "text:keras",
            ([1, 2, 3], [1.8313, 1.7611, 1.695]),
            ([1, 2, 3], [1.7856, 1.6493, 1.6001]),
        ),
        ("generic_kv.log", "text:generic", ([10, 20, 30, 40], [2.5, 2.31, 2.2, np.inf]), None),
        (
            "epoch_step.log",
            None,
            ([0, 50, 100, 150], [8.9351, 4.123, 3.421, 3.0511]),
            ([50], [3.5301]),
        ),
        ("ansi.log", None, ([1, 2], [3.0, 2.5]), None),
    ],
)
def test_text_log_dialects(name, reader, train, val):
    run = read_run(str(TEXT / name))
    if reader:
        assert run.reader == reader
    assert run.series["train"].steps.tolist() == train[0]
    assert run.series["train"].values.tolist() == train[1]
    if val is None:
        assert "val" not in run.series
    else:
        assert run.series["val"].steps.tolist() == val[0]
        assert run.series["val"].values.tolist() == val[1]


def test_text_log_keeps_nan_and_ignores_the_hf_summary_line():
    run = read_run(str(TEXT / "hf_stdout.log"))
    assert np.isnan(run.series["grad_norm"].values[1])
    assert 3.5 not in run.series["train"].values.tolist()  # train_loss mean of the summary line


def test_carriage_returns_split_tqdm_output():
    run = read_run(str(TEXT / "hf_tqdm.log"))
    assert run.series["train"].values.tolist() == [2.5, 2.4]


def test_skipped_lines_are_counted_and_source_lines_kept():
    run = read_run(str(TEXT / "nanogpt.log"))
    assert any("4 lines without values were skipped" in n for n in run.notes)
    assert run.series["train"].lines.tolist() == [5, 6, 7, 8, 11]


def test_text_without_values_is_a_clear_error():
    with pytest.raises(InputError, match="no loss values found in this text"):
        read_run(str(TEXT / "no_values.log"))


def test_stdin_text_log(runner):
    code, doc = run_json(
        runner, "--fail-on", "never", "-", input=(TEXT / "megatron.log").read_text()
    )
    assert code == 0
    assert doc["runs"][0]["reader"] == "text:megatron"


# --- MLflow ------------------------------------------------------------------------------


def test_mlflow_metric_file():
    run = read_run(str(FIXTURES / "mlflow_metric_loss"))
    assert run.reader == "mlflow-metric"
    assert run.series["train"].steps.tolist() == [0, 10, 20]
    assert np.isnan(run.series["train"].values[2])


def _mlflow_store(root):
    run_dir = root / "mlruns" / "0" / "abc123"
    (run_dir / "metrics" / "train").mkdir(parents=True)
    (run_dir / "meta.yaml").write_text("run_id: abc123\n")
    steps, values = curves.healthy(50)
    (run_dir / "metrics" / "train" / "loss").write_text(
        "".join(
            f"{1700000000000 + i} {v} {int(s)}\n"
            for i, (s, v) in enumerate(zip(steps, values, strict=True))
        )
    )
    (run_dir / "metrics" / "val_loss").write_text("1700000000000 3.0 10\n1700000000001 2.5 500\n")
    return run_dir


def test_mlflow_file_store_run_folder(tmp_path):
    _mlflow_store(tmp_path)
    (run,) = read_runs(str(tmp_path / "mlruns"))
    assert run.reader == "mlflow-file"
    assert run.columns == {"train": "train/loss", "val": "val_loss"}
    assert len(run.series["train"]) == 50


def test_mlflow_sqlite_store_and_run_selection(tmp_path):
    db = tmp_path / "mlflow.db"
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE runs (run_uuid TEXT PRIMARY KEY, name TEXT, experiment_id INT)")
    conn.execute(
        "CREATE TABLE metrics (key TEXT, value FLOAT, timestamp BIGINT, run_uuid TEXT, step BIGINT, is_nan BOOLEAN)"
    )
    conn.executemany("INSERT INTO runs VALUES (?, ?, 0)", [("r1", "baseline"), ("r2", "high-lr")])
    for run_id, scale in (("r1", 1.0), ("r2", 2.0)):
        for step in range(20):
            conn.execute(
                "INSERT INTO metrics VALUES ('loss', ?, ?, ?, ?, 0)",
                (scale * (3 - step * 0.1), step, run_id, step),
            )
    conn.execute("INSERT INTO metrics VALUES ('loss', 0, 99, 'r2', 20, 1)")
    conn.commit()
    conn.close()
    runs = read_runs(str(db))
    assert [r.source for r in runs] == [f"{db}#baseline", f"{db}#high-lr"]
    assert np.isnan(runs[1].series["train"].values[-1])
    (picked,) = read_runs(str(db), run="baseline")
    assert picked.source == f"{db}#baseline"  # picked among several: still named
    with pytest.raises(InputError, match="no run 'nope' in this store"):
        read_runs(str(db), run="nope")


# --- TensorBoard event files --------------------------------------------------------------


@pytest.fixture
def tbw():
    import tbwriter

    return tbwriter


@pytest.mark.parametrize("style", ["simple", "tensor", "double"])
def test_event_file_scalars_every_point(tmp_path, tbw, style):
    steps = np.arange(0, 25000, dtype=float)  # more than EventAccumulator keeps by default
    values = np.linspace(5, 1, steps.shape[0]).astype(np.float32)
    path = tbw.write_events(tmp_path / "run", {"train/loss": (steps, values)}, style=style)
    run = read_run(str(path))
    assert run.reader == "tfevents"
    assert len(run.series["train"]) == 25000
    np.testing.assert_allclose(run.series["train"].values, values, rtol=1e-6)


def test_event_file_agrees_with_tensorboard(tmp_path, tbw):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    steps, values = curves.spiky(300)
    values[100] = np.nan
    path = tbw.write_events(tmp_path / "run", {"loss": (steps, values)})
    acc = EventAccumulator(str(path), size_guidance={"scalars": 0})
    acc.Reload()
    expected = np.array([e.value for e in acc.Scalars("loss")])
    got = read_run(str(path)).series["train"].values
    np.testing.assert_array_equal(np.isnan(got), np.isnan(expected))
    np.testing.assert_allclose(got[~np.isnan(got)], expected[~np.isnan(expected)])


def test_truncated_last_record_is_read_up_to_it(tmp_path, tbw):
    path = tbw.write_events(tmp_path / "run", {"loss": (np.arange(10.0), np.linspace(3, 1, 10))})
    data = path.read_bytes()
    path.write_bytes(data[:-7])
    run = read_run(str(path))
    assert len(run.series["train"]) == 9
    assert any("cut off" in n for n in run.notes)


def test_bad_checksum_record_is_skipped_and_counted(tmp_path, tbw):
    path = tbw.write_events(tmp_path / "run", {"loss": (np.arange(10.0), np.linspace(3, 1, 10))})
    data = bytearray(path.read_bytes())
    data[-20] ^= 0xFF  # inside the last record's payload
    path.write_bytes(bytes(data))
    run = read_run(str(path))
    assert len(run.series["train"]) == 9
    assert any("bad checksum" in n for n in run.notes)


def test_keras_train_and_validation_folders_merge(tmp_path, tbw):
    steps = np.arange(20.0)
    tbw.write_events(
        tmp_path / "logs" / "train", {"epoch_loss": (steps, np.linspace(3, 1, 20))}, style="tensor"
    )
    tbw.write_events(
        tmp_path / "logs" / "validation",
        {"epoch_loss": (steps, np.linspace(3.2, 1.5, 20))},
        style="tensor",
    )
    (run,) = read_runs(str(tmp_path / "logs"))
    assert run.columns["train"] == "train/epoch_loss"
    assert run.columns["val"] == "validation/epoch_loss"


def test_folder_of_several_runs_is_several_reports(tmp_path, runner):
    for version, factory in (("version_0", curves.healthy), ("version_1", curves.flat)):
        folder = tmp_path / "lightning_logs" / version
        folder.mkdir(parents=True)
        write_curve(folder / "metrics.csv", *factory(), name="train_loss")
    code, doc = run_json(runner, str(tmp_path / "lightning_logs"))
    assert code == 1
    sources = [r["source"] for r in doc["runs"]]
    assert sources == [
        f"{tmp_path / 'lightning_logs'}/version_0",
        f"{tmp_path / 'lightning_logs'}/version_1",
    ]
    assert [r["verdict"] for r in doc["runs"]] == ["healthy", "failing"]


def test_hf_output_dir_takes_the_latest_checkpoint(tmp_path):
    import json

    for step in (100, 300, 200):
        folder = tmp_path / "out" / f"checkpoint-{step}"
        folder.mkdir(parents=True)
        history = [{"loss": 3.0 - i * 0.1, "step": i * 10} for i in range(step // 10)]
        (folder / "trainer_state.json").write_text(json.dumps({"log_history": history}))
    (run,) = read_runs(str(tmp_path / "out"))
    assert len(run.series["train"]) == 30
    assert any("checkpoint-300" in n for n in run.notes)
