"""Local tracker stores written by the real libraries (issue 17): W&B offline run files,
trackio databases, MLflow SQLite stores, SwanLab run folders.  Each planted problem is
diagnosed; no network is used (offline modes, local stores)."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from lossdoctor.api import diagnose
from lossdoctor.cli import app
from lossdoctor.ingest import ColumnHints, read_run, read_source

from conftest import run_json
from swanlab_writer import backup_file, logs_folder


def _write_in_child(code: str, cwd: Path, env: dict[str, str]) -> None:
    """Run a writer script in a child process (trackers start services and threads)."""
    full_env = {**os.environ, **env}
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, env=full_env, capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]


WANDB_RUN = """
import math, wandb
run = wandb.init(project="ft", name="lora-r16", dir=".")
for i in range(1, 201):
    loss = 3.0 * math.exp(-i / 40) + 0.3
    if i >= 150:
        loss = float("nan")
    row = {"train/loss": loss, "train/learning_rate": 2e-4, "train/grad_norm": 0.9}
    if i % 25 == 0:
        row["eval/loss"] = 3.1 * math.exp(-i / 40) + 0.35
    wandb.log(row, step=i * 10)
run.finish()
"""

WANDB_ENV = {"WANDB_MODE": "offline", "WANDB_SILENT": "true", "WANDB_DISABLE_GIT": "true",
             "WANDB_DISABLE_CODE": "true", "WANDB_CONSOLE": "off"}  # fmt: skip


@pytest.fixture(scope="module")
def wandb_dir(tmp_path_factory) -> Path:
    pytest.importorskip("wandb")
    top = tmp_path_factory.mktemp("wb")
    _write_in_child(WANDB_RUN, top, WANDB_ENV)
    return top / "wandb"


def test_wandb_offline_run_file_read_without_wandb(wandb_dir):
    (path,) = wandb_dir.glob("offline-run-*/run-*.wandb")
    run = read_run(str(path))
    assert run.reader == "wandb-offline"
    assert run.columns["train"] == "train/loss"
    assert run.columns["val"] == "eval/loss"
    assert run.columns["lr"] == "train/learning_rate"
    train = run.series["train"]
    assert train.steps[:3].tolist() == [10, 20, 30]
    assert len(train) == 200
    assert train.n_nonfinite == 51
    assert run.series["val"].steps.tolist() == [250.0 * k for k in range(1, 9)]
    assert any("run 'lora-r16'" in n for n in run.notes)
    report = diagnose(str(path))
    nonfinite = next(f for f in report.active if f.rule == "non-finite")
    assert nonfinite.severity == "error"
    assert "step 1500" in nonfinite.message


def test_wandb_folder_is_one_run_and_its_files_are_listed(wandb_dir, runner):
    code, doc = run_json(runner, str(wandb_dir))
    assert code == 1
    (run,) = doc["runs"]
    assert run["reader"] == "wandb-offline"
    # named by its name in the folder holding the run folders (it was the folder
    # offline-run-<time>-<id>); its file read from its folder, not from wandb's
    # latest-run link to it (walked first, it was)
    assert run["source"] == f"{wandb_dir}#lora-r16"
    assert (wandb_dir / "latest-run").is_symlink()
    (folder,) = wandb_dir.glob("offline-run-*")
    read = [f["path"] for f in doc["files"] if f["status"] == "read"]
    assert read == [str(next(folder.glob("run-*.wandb")))]
    assert not [f["path"] for f in doc["files"] if "latest-run" in f["path"]]
    skipped = {Path(f["path"]).name: f["detail"] for f in doc["files"] if f["status"] == "skipped"}
    assert skipped["debug-internal.log"].startswith("part of W&B run")


def test_wandb_debug_logs_in_a_walk_are_skipped_as_such(wandb_dir, runner):
    # wandb/debug.log and wandb/debug-internal.log (links to the latest run's) were read
    # and skipped with "no loss column found (...); name it with --train-col"
    assert (wandb_dir / "debug-internal.log").is_symlink()
    code, doc = run_json(runner, str(wandb_dir))
    assert code == 1
    detail = {f["path"]: f["detail"] for f in doc["files"]}
    for name in ("debug.log", "debug-internal.log"):
        assert detail[f"{wandb_dir}/{name}"] == "W&B debug log, not a loss log"


def test_wandb_file_cut_short_is_read_up_to_the_cut(wandb_dir, tmp_path):
    (path,) = wandb_dir.glob("offline-run-*/run-*.wandb")
    data = path.read_bytes()
    cut = tmp_path / "run-cut.wandb"
    cut.write_bytes(data[: len(data) * 2 // 3])
    run = read_run(str(cut))
    assert 0 < len(run.series["train"]) < 200
    assert any("cut off" in n for n in run.notes)
    assert not math.isnan(run.series["train"].values[0])


def test_read_source_lists_nothing_for_a_single_file(wandb_dir):
    (path,) = wandb_dir.glob("offline-run-*/run-*.wandb")
    runs, files = read_source(str(path))
    assert len(runs) == 1
    assert files == []


TRACKIO_RUNS = """
import math, trackio
trackio.init(project="ft", name="lora-good")
for i in range(1, 121):
    trackio.log({"train/loss": 3.0 * math.exp(-i / 30) + 0.3, "train/lr": 2e-4}, step=i * 10)
trackio.finish()
trackio.init(project="ft", name="lora-swing")
for i in range(1, 121):
    loss = 2.0 * math.exp(0.5 * math.sin(i * 2.1)) if i < 100 else float("nan")
    trackio.log({"train/loss": loss, "train/lr": 2e-4}, step=i * 10)
trackio.finish()
"""


def _trackio_store(tmp_path_factory, code: str, project: str) -> Path:
    """Return the trackio database of ``project`` that ``code`` writes (with trackio)."""
    pytest.importorskip("trackio")
    top = tmp_path_factory.mktemp("tk")
    _write_in_child(code, top, {"TRACKIO_DIR": str(top / "store")})
    return top / "store" / f"{project}.db"


@pytest.fixture(scope="module")
def trackio_db(tmp_path_factory) -> Path:
    return _trackio_store(tmp_path_factory, TRACKIO_RUNS, "ft")


def test_trackio_database_one_run_per_run_name(trackio_db, runner):
    runs, _ = read_source(str(trackio_db))
    assert [r.source for r in runs] == [f"{trackio_db}#lora-good", f"{trackio_db}#lora-swing"]
    good, swing = runs
    assert good.reader == "trackio"
    assert good.columns == {"train": "train/loss", "lr": "train/lr"}
    assert good.series["train"].steps[:2].tolist() == [10, 20]
    assert swing.series["train"].n_nonfinite == 21  # trackio stores NaN as "NaN"
    code, doc = run_json(runner, str(trackio_db), "--run", "lora-swing")
    assert code == 1
    (only,) = doc["runs"]
    assert only["verdict"] == "failing"
    assert "non-finite" in {f["rule"] for f in only["findings"]}


def test_reading_a_tracker_database_writes_nothing_beside_it(trackio_db, runner, tmp_path):
    # SQLite opened a WAL-mode database (trackio's) read-only and still created its -wal
    # and -shm files next to the user's file
    copy = tmp_path / "ft.db"
    copy.write_bytes(trackio_db.read_bytes())
    before = copy.read_bytes()
    code, doc = run_json(runner, str(copy))
    assert code == 1  # lora-swing goes NaN
    assert [r["source"] for r in doc["runs"]] == [f"{copy}#lora-good", f"{copy}#lora-swing"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ft.db"]
    assert copy.read_bytes() == before


MLFLOW_RUN = """
import math, mlflow
mlflow.set_tracking_uri("sqlite:///mlflow.db")
mlflow.set_experiment("ft")
with mlflow.start_run(run_name="qlora"):
    for i in range(1, 101):
        value = 3.0 * math.exp(-i / 25) + 0.3
        if i == 70:
            value = float("inf")
        if i == 71:
            value = float("nan")
        mlflow.log_metric("train_loss", value, step=i * 10)
        if i % 20 == 0:
            mlflow.log_metric("eval_loss", value * 1.1 if math.isfinite(value) else 1.0, step=i * 10)
"""


@pytest.fixture(scope="module")
def mlflow_db(tmp_path_factory) -> Path:
    pytest.importorskip("mlflow")
    top = tmp_path_factory.mktemp("ml")
    _write_in_child(MLFLOW_RUN, top, {"MLFLOW_TRACKING_URI": "sqlite:///mlflow.db"})
    return top / "mlflow.db"


def test_mlflow_sqlite_inf_and_nan_read_back(mlflow_db):
    import sqlite3

    stored = (
        sqlite3.connect(mlflow_db)
        .execute("SELECT value, is_nan FROM metrics WHERE step IN (700, 710) ORDER BY step")
        .fetchall()
    )
    assert stored == [(1.7976931348623157e308, 0), (0.0, 1)]  # how MLflow keeps them
    run = read_run(str(mlflow_db))
    assert run.reader == "mlflow-sqlite"
    train = run.series["train"]
    assert train.values[69] == math.inf
    assert math.isnan(train.values[70])
    assert run.series["val"].steps.tolist() == [200, 400, 600, 800, 1000]
    report = diagnose(str(mlflow_db))
    nonfinite = next(f for f in report.active if f.rule == "non-finite")
    assert nonfinite.severity == "error"
    assert "step 700" in nonfinite.message


def test_mlflow_file_store_run_folder_and_metric_file(tmp_path, runner):
    # the file store (mlruns/), kept by MLflow in maintenance mode: written by MLflow itself
    pytest.importorskip("mlflow")
    code = MLFLOW_RUN.replace("sqlite:///mlflow.db", "file:./mlruns")
    _write_in_child(code, tmp_path, {"MLFLOW_ALLOW_FILE_STORE": "true"})
    (folder,) = (p.parent for p in (tmp_path / "mlruns").glob("*/*/metrics"))
    run = read_run(str(folder))
    assert run.reader == "mlflow-file"
    train = run.series["train"]
    assert train.steps[[0, -1]].tolist() == [10, 1000]
    assert train.values[69] == math.inf
    assert math.isnan(train.values[70])
    assert run.series["val"].steps.tolist() == [200, 400, 600, 800, 1000]
    assert run.name == "qlora"  # its tags/mlflow.runName (meta.yaml's run_name)
    code, doc = run_json(runner, str(tmp_path / "mlruns"))
    (walked,) = doc["runs"]  # it was named by its run-id folder
    assert walked["source"] == f"{tmp_path / 'mlruns'}/{folder.parent.name}#qlora"
    assert walked["verdict"] == "failing"
    metric = read_run(str(folder / "metrics" / "train_loss"))
    assert metric.reader == "mlflow-metric"
    assert metric.series["train"].values.tolist()[:3] == train.values.tolist()[:3]
    for path in (folder, folder / "metrics" / "train_loss"):
        nonfinite = next(f for f in diagnose(str(path)).active if f.rule == "non-finite")
        assert nonfinite.severity == "error"
        assert "step 700" in nonfinite.message


SWANLAB_RUN = """
import math, swanlab
swanlab.init(project="ft", experiment_name="lora", mode="offline", logdir="swanlog")
for i in range(1, 151):
    swanlab.log({"train/loss": 10.8 + 0.01 * math.sin(i), "train/lr": 2e-4}, step=i * 10)
swanlab.finish()
"""


def test_swanlab_run_folder_read_without_swanlab(tmp_path, runner):
    pytest.importorskip("swanlab")
    _write_in_child(SWANLAB_RUN, tmp_path, {"SWANLAB_MODE": "offline"})
    (path,) = (tmp_path / "swanlog").glob("run-*/run-*.swanlab")
    run = read_run(str(path))
    assert run.reader == "swanlab"
    assert run.columns == {"train": "train/loss", "lr": "train/lr"}
    assert run.series["train"].steps[:2].tolist() == [10, 20]
    assert len(run.series["train"]) == 150
    assert run.name == "lora"  # the experiment's name, from its start record
    code, doc = run_json(runner, str(tmp_path / "swanlog"))
    assert code == 1
    (only,) = doc["runs"]
    assert only["source"] == f"{tmp_path / 'swanlog'}#lora"  # was swanlog/run-<time>-<id>
    assert "high-flatline" in {f["rule"] for f in only["findings"]}
    parts = [f for f in doc["files"] if f["detail"].startswith("part of SwanLab run")]
    assert any(Path(f["path"]).name == "config.yaml" for f in parts)


def _curve(n: int, *, nan_from: int | None = None, rise_from: int | None = None):
    points = []
    for i in range(n):
        value = 3.0 * math.exp(-i / (n / 5)) + 0.4
        if rise_from is not None and i >= rise_from:
            value = points[rise_from - 1][1] * (1 + 0.02 * (i - rise_from + 1))
        if nan_from is not None and i >= nan_from:
            value = float("nan")
        points.append((i * 10, value))
    return points


def test_swanlab_before_08_backup_file(tmp_path, runner):
    # swanlab 0.6-0.7 (every mode) keeps the run in backup.swanlab: JSON records framed
    # like the 0.8+ file; system metrics (__swanlab__.*) are left out
    run_dir = tmp_path / "swanlog" / "run-20240610_080000-abc123"
    (run_dir / "files").mkdir(parents=True)
    (run_dir / "files" / "config.yaml").write_text("lr:\n  value: 0.0002\n")
    backup_file(run_dir / "backup.swanlab", {
        "train/loss": _curve(120, nan_from=100), "train/lr": [(i * 10, 2e-4) for i in range(120)],
        "__swanlab__.cpu.pct": [(i, 50.0) for i in range(30)],
    })  # fmt: skip
    run = read_run(str(run_dir / "backup.swanlab"))
    assert run.reader == "swanlab"
    assert run.columns == {"train": "train/loss", "lr": "train/lr"}
    assert run.series["train"].steps[:2].tolist() == [0, 10]
    assert run.series["train"].n_nonfinite == 20
    code, doc = run_json(runner, str(tmp_path / "swanlog"))
    assert code == 1
    (only,) = doc["runs"]
    assert only["source"] == f"{tmp_path / 'swanlog'}#lora"  # its Experiment record's name
    assert {f["rule"]: f["severity"] for f in only["findings"]}["non-finite"] == "error"
    status = {Path(f["path"]).name: f["detail"] for f in doc["files"]}
    assert status["config.yaml"].startswith("part of SwanLab run")


def test_swanlab_before_08_local_mode_logs_named_from_the_dashboard(tmp_path, runner):
    # local mode (with swanboard): logs/<column id>/1000.log, names in swanlog/runs.swanlab
    swanlog = tmp_path / "swanlog"
    metrics = {"train/loss": _curve(100), "eval/loss": _curve(100, rise_from=40)[::10],
               "__swanlab__.mem.pct": [(i, 30.0) for i in range(20)]}  # fmt: skip
    logs_folder(swanlog, "run-20240610_080000-aaa111", metrics, experiment="lora-a")
    logs_folder(swanlog, "run-20240610_090000-bbb222", {"train/loss": _curve(100)},
                experiment="lora-b")  # fmt: skip
    code, doc = run_json(runner, str(swanlog))
    # named by their experiments' names in the dashboard (they were named by their folders)
    by_name = {r["source"]: r for r in doc["runs"]}
    assert sorted(by_name) == [f"{swanlog}#lora-a", f"{swanlog}#lora-b"]
    first = by_name[f"{swanlog}#lora-a"]
    assert first["columns"] == {"train": "train/loss", "val": "eval/loss"}  # no system metric
    assert first["series"]["val"]["points"] == 10
    assert {f["rule"]: f["severity"] for f in first["findings"]}["overfitting"] == "error"
    assert by_name[f"{swanlog}#lora-b"]["verdict"] == "healthy"
    _, picked = run_json(runner, str(swanlog), "--run", "lora-b")  # --run picks by name
    assert [r["source"] for r in picked["runs"]] == [f"{swanlog}#lora-b"]
    assert code == 1
    status = {Path(f["path"]).name: f["detail"] for f in doc["files"]}
    assert status["runs.swanlab"].startswith("SwanLab dashboard database")
    assert status["2024-06-10.log"].startswith("part of SwanLab run")


def test_swanlab_before_08_logs_without_dashboard_named_by_folder(tmp_path):
    run_dir = logs_folder(tmp_path, "run-x", {"train/loss": _curve(50)}, db=False)
    (run,), _ = read_source(str(run_dir), hints=ColumnHints(train="0"))
    assert run.columns["train"] == "0"
    assert len(run.series["train"]) == 50
    assert any("metrics named by their folder" in n for n in run.notes)


def test_trackio_parquet_export(trackio_db, tmp_path):
    env = {"TRACKIO_DIR": str(trackio_db.parent)}
    # trackio's own export needs pyarrow (trackio[spaces]); its rows are made by trackio
    # here and written with polars, as _write_parquet_rows writes them with pyarrow
    _write_in_child(
        "import polars as pl\n"
        "from pathlib import Path\n"
        "from trackio.sqlite_storage import SQLiteStorage as S\n"
        f"db = Path({str(trackio_db)!r})\n"
        "rows = S._flatten_json_rows(S._read_table_rows(db, 'metrics'), 'metrics')\n"
        "pl.DataFrame(rows, strict=False).write_parquet(db.with_suffix('.parquet'))\n",
        tmp_path, env,
    )  # fmt: skip
    export = trackio_db.with_suffix(".parquet")
    runs, _ = read_source(str(export))
    assert [r.source.rsplit("#", 1)[1] for r in runs] == ["lora-good", "lora-swing"]
    assert runs[0].reader == "trackio-parquet"
    assert runs[0].columns["train"] == "train/loss"
    assert len(runs[0].series["train"]) == 120
    assert runs[1].series["train"].n_nonfinite == 21


def test_a_walk_reads_a_trackio_database_not_also_its_parquet_export(trackio_db, runner, tmp_path):
    # trackio writes <project>.parquet beside <project>.db: a walk of its folder gave
    # every run twice (ft.db#lora-good and ft.parquet#lora-good)
    store = tmp_path / "trackio"
    store.mkdir()
    db = store / "ft.db"
    db.write_bytes(trackio_db.read_bytes())
    _write_in_child(
        "import polars as pl\n"
        "from pathlib import Path\n"
        "from trackio.sqlite_storage import SQLiteStorage as S\n"
        f"db = Path({str(db)!r})\n"
        "rows = S._flatten_json_rows(S._read_table_rows(db, 'metrics'), 'metrics')\n"
        "pl.DataFrame(rows, strict=False).write_parquet(db.with_suffix('.parquet'))\n",
        tmp_path, {"TRACKIO_DIR": str(store)},
    )  # fmt: skip
    _, doc = run_json(runner, str(store))
    assert [r["source"] for r in doc["runs"]] == [f"{db}#lora-good", f"{db}#lora-swing"]
    status = {Path(f["path"]).name: (f["status"], f["detail"]) for f in doc["files"]}
    assert status["ft.parquet"][0] == "skipped"
    assert status["ft.parquet"][1].startswith("trackio's Parquet export of ft.db")
    # without the database (--exclude), the export is read
    _, doc = run_json(runner, str(store), "--exclude", "*.db")
    assert [r["source"] for r in doc["runs"]] == [
        f"{store}/ft.parquet#lora-good",
        f"{store}/ft.parquet#lora-swing",
    ]


# The Hugging Face Trainer's WandbCallback / TrackioCallback (transformers 5.x,
# integrations/integration_utils.py): define_metric("train/global_step") and
# define_metric("*", step_metric="train/global_step", step_sync=True) for W&B, then on each
# log `log({**rewrite_logs(logs), "train/global_step": state.global_step})` without a step:
# the tracker counts calls (_step, trackio's step) while the trainer's step is logged.
HF_TRAINER_LOGS = """
for i in range(1, 201):
    loss = 3.0 * math.exp(-i / 40) + 0.3 if i < 150 else float("nan")
    log({"train/loss": loss, "train/learning_rate": 2e-4, "train/epoch": i / 100,
         "train/global_step": i * 10})
    if i % 50 == 0:
        log({"eval/loss": 3.1 * math.exp(-i / 40) + 0.35, "train/global_step": i * 10})
"""
HF_WANDB_RUN = (
    """
import math, wandb
run = wandb.init(project="ft", name="hf-trainer", dir=".")
run.define_metric("train/global_step")
run.define_metric("*", step_metric="train/global_step", step_sync=True)
log = run.log
"""
    + HF_TRAINER_LOGS
    + "run.finish()\n"
)


@pytest.fixture(scope="module")
def hf_wandb_file(tmp_path_factory) -> Path:
    pytest.importorskip("wandb")
    top = tmp_path_factory.mktemp("wbhf")
    _write_in_child(HF_WANDB_RUN, top, WANDB_ENV)
    (path,) = (top / "wandb").glob("offline-run-*/run-*.wandb")
    return path


def test_wandb_run_of_the_hf_trainer_is_read_on_its_global_step(hf_wandb_file):
    # read on W&B's _step, steps 10..2000 were 0..203 and the NaN came "at step 151"
    run = read_run(str(hf_wandb_file))
    train = run.series["train"]
    assert train.steps[[0, 1, -1]].tolist() == [10, 20, 2000]
    assert train.values[0] == pytest.approx(3.0 * math.exp(-1 / 40) + 0.3)
    assert run.series["val"].steps.tolist() == [500, 1000, 1500, 2000]
    assert "train/global_step" not in run.columns.values()
    assert any("step axis: 'train/global_step'" in n for n in run.notes)
    nonfinite = next(f for f in diagnose(str(hf_wandb_file)).active if f.rule == "non-finite")
    assert nonfinite.severity == "error"
    assert "step 1500" in nonfinite.message


def test_wandb_step_col_names_the_step_axis(hf_wandb_file, runner):
    run = read_run(str(hf_wandb_file), hints=ColumnHints(step="train/epoch"))
    train = run.series["train"]
    assert train.steps[[0, -1]].tolist() == [0.01, 2.0]
    assert train.x_kind == "epoch"
    assert "val" not in run.series  # the eval rows carry no train/epoch
    assert any("4 points logged without 'train/epoch'" in n for n in run.notes)
    result = runner.invoke(app, ["check", str(hf_wandb_file), "--step-col", "nope"])
    assert result.exit_code == 2
    assert f"{hf_wandb_file}: --step-col 'nope' is not a column" in result.stderr


HF_TRACKIO_RUN = (
    """
import math, trackio
trackio.init(project="hf", name="hf-trainer")
log = trackio.log
"""
    + HF_TRAINER_LOGS
    + "trackio.finish()\n"
)


@pytest.fixture(scope="module")
def hf_trackio_db(tmp_path_factory) -> Path:
    return _trackio_store(tmp_path_factory, HF_TRACKIO_RUN, "hf")


def test_trackio_run_of_the_hf_trainer_is_read_on_its_global_step(hf_trackio_db):
    (run,), _ = read_source(str(hf_trackio_db))
    train = run.series["train"]
    assert train.steps[[0, 1, -1]].tolist() == [10, 20, 2000]
    assert train.values[1] == pytest.approx(3.0 * math.exp(-2 / 40) + 0.3)
    assert run.series["val"].steps.tolist() == [500, 1000, 1500, 2000]
    assert any("step axis: 'train/global_step'" in n for n in run.notes)
    nonfinite = next(f for f in diagnose(str(hf_trackio_db)).active if f.rule == "non-finite")
    assert "step 1500" in nonfinite.message


def test_trackio_step_col_names_the_step_axis(hf_trackio_db):
    (run,), _ = read_source(str(hf_trackio_db), hints=ColumnHints(step="train/epoch"))
    assert run.series["train"].steps[[0, -1]].tolist() == [0.01, 2.0]
    assert run.series["train"].x_kind == "epoch"


def test_swanlab_step_col_names_the_step_axis(tmp_path):
    # SwanLab keeps the step= the caller gave (the Trainer gives its global_step);
    # --step-col was ignored
    metrics = {"train/loss": _curve(50), "train/epoch": [(i * 10, i / 10) for i in range(50)]}
    run_dir = logs_folder(tmp_path, "run-x", metrics)
    (run,), _ = read_source(str(run_dir), hints=ColumnHints(step="train/epoch"))
    train = run.series["train"]
    assert train.steps[[0, 1, -1]].tolist() == [0.0, 0.1, 4.9]
    assert train.x_kind == "epoch"
    assert any("step axis: 'train/epoch' (--step-col)" in n for n in run.notes)


def _tracker_columns(trainer_steps: list[float]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """A tracker's series on its own call count 0..n-1: the trainer's step and a loss."""
    calls = np.arange(len(trainer_steps), dtype=np.float64)
    loss = np.linspace(3.0, 1.0, len(trainer_steps))
    return {
        "train/global_step": (calls, np.array(trainer_steps, dtype=np.float64)),
        "train/loss": (calls, loss),
    }


def test_a_tracker_run_moves_onto_the_trainer_step_and_notes_points_without_it() -> None:
    from lossdoctor.ingest.trackers import on_step_key

    columns = _tracker_columns([10.0, 20.0, 30.0, 40.0])
    calls, loss = columns["train/loss"]
    # one more loss logged at a call where the trainer's step was not (call 7)
    columns["train/loss"] = (np.append(calls, 7.0), np.append(loss, 0.5))
    moved, _, notes, x_kind = on_step_key(columns, hints=None, own="_step", source="r.wandb")
    steps, values = moved["train/loss"]
    assert steps.tolist() == [10.0, 20.0, 30.0, 40.0]
    assert values.tolist() == loss.tolist()
    assert "train/global_step" not in moved
    assert x_kind == "step"
    assert notes == [
        "step axis: 'train/global_step' (the trainer's step), not the tracker's _step",
        "1 points logged without 'train/global_step' were left out",
    ]


def test_a_step_key_with_two_values_at_one_tracker_step_is_no_step_axis() -> None:
    from lossdoctor.errors import InputError
    from lossdoctor.ingest.trackers import on_step_key

    columns = _tracker_columns([10.0, 20.0, 30.0])
    calls, counted = columns["train/global_step"]
    columns["train/global_step"] = (np.append(calls, 1.0), np.append(counted, 99.0))
    # found by itself: the tracker's own step is kept, and the note says why
    moved, _, notes, _ = on_step_key(columns, hints=None, own="_step", source="r.wandb")
    assert moved is columns
    assert notes == ["'train/global_step' holds several values at one _step: steps are _step"]
    # named with --step-col: a one-line error naming the step
    with pytest.raises(InputError, match=r"holds several values at one _step \(_step 1\)"):
        on_step_key(
            columns, hints=ColumnHints(step="train/global_step"), own="_step", source="r.wandb"
        )
