"""Runs inside tracker stores found in a folder walk are named and picked by their own
names (issue 17): an MLflow and a trackio database of two runs each and a W&B offline run,
written by the real libraries."""

from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path

import pytest
from test_trackers import TRACKIO_RUNS, WANDB_ENV, WANDB_RUN, _write_in_child

from lossdoctor.cli import app

from conftest import run_json

MLFLOW_TWO_RUNS = """
import math, mlflow
mlflow.set_tracking_uri("sqlite:///mlflow.db")
mlflow.set_experiment("ft")
for name, scale in (("qlora", 25), ("full-ft", 40)):
    with mlflow.start_run(run_name=name):
        for i in range(1, 101):
            value = 3.0 * math.exp(-i / scale) + 0.3
            if name == "full-ft" and i >= 90:
                value = float("inf")
            mlflow.log_metric("train_loss", value, step=i * 10)
"""

NAMES = ["mlflow.db#full-ft", "mlflow.db#qlora", "store/ft.db#lora-good",
         "store/ft.db#lora-swing", "wandb#lora-r16"]  # fmt: skip


@pytest.fixture(scope="module")
def stores(tmp_path_factory) -> Path:
    for name in ("mlflow", "trackio", "wandb"):
        pytest.importorskip(name)
    top = tmp_path_factory.mktemp("stores")
    _write_in_child(MLFLOW_TWO_RUNS, top, {"MLFLOW_TRACKING_URI": "sqlite:///mlflow.db"})
    _write_in_child(TRACKIO_RUNS, top, {"TRACKIO_DIR": str(top / "store")})
    _write_in_child(WANDB_RUN, top, WANDB_ENV)
    return top


def test_runs_in_stores_are_named_everywhere(stores, runner, tmp_path):
    # every run of a database was named by the database alone: two identical rows; the
    # W&B run by its offline-run-<time>-<id> folder
    summary_json, summary_csv = tmp_path / "s.json", tmp_path / "s.csv"
    code, doc = run_json(
        runner,
        str(stores),
        "-f",
        f"summary-json:{summary_json}",
        "-f",
        f"summary-csv:{summary_csv}",
    )
    assert code == 1  # full-ft, lora-swing and lora-r16 go non-finite
    expected = [f"{stores}/{name}" for name in NAMES]
    assert [r["source"] for r in doc["runs"]] == expected
    assert [r["run"] for r in json.loads(summary_json.read_text())["runs"]] == expected
    rows = list(csv.DictReader(io.StringIO(summary_csv.read_text())))
    assert [r["run"] for r in rows] == expected
    verdicts = {Path(r["source"]).name: r["verdict"] for r in doc["runs"]}
    assert verdicts == {"mlflow.db#full-ft": "failing", "mlflow.db#qlora": "healthy",
                        "ft.db#lora-good": "healthy", "ft.db#lora-swing": "failing",
                        "wandb#lora-r16": "failing"}  # fmt: skip
    read = {Path(f["path"]).name: f["detail"] for f in doc["files"] if f["status"] == "read"}
    assert read["mlflow.db"] == "2 runs"
    (wandb_file,) = (n for n in read if n.endswith(".wandb"))
    assert read[wandb_file] == f"run {stores}/wandb#lora-r16"
    text = runner.invoke(app, ["check", str(stores)]).stdout
    for name in expected:  # the terminal report's headings and its summary table
        assert text.count(f"{name} ") == 2, name


def test_run_picks_a_run_inside_a_store_in_a_folder(stores, runner):
    for wanted, name in [("qlora", "mlflow.db#qlora"), ("lora-swing", "store/ft.db#lora-swing"),
                         ("lora-r16", "wandb#lora-r16"), ("mlflow.db#full-ft", "mlflow.db#full-ft"),
                         ("ft.db#good", "store/ft.db#lora-good")]:  # fmt: skip
        code, doc = run_json(runner, str(stores), "--run", wanted)
        assert [r["source"] for r in doc["runs"]] == [f"{stores}/{name}"], wanted
        assert code == (0 if name.endswith(("qlora", "good")) else 1)
    code, doc = run_json(runner, str(stores), "--run", "lora")  # a part of several names
    assert [Path(r["source"]).name for r in doc["runs"]] == [
        "mlflow.db#qlora", "ft.db#lora-good", "ft.db#lora-swing", "wandb#lora-r16"
    ]  # fmt: skip


def test_run_matching_nothing_names_the_runs_there(stores, runner):
    result = runner.invoke(app, ["check", str(stores), "--run", "nope"])
    assert result.exit_code == 2
    (error,) = result.stderr.strip().splitlines()
    assert error.startswith(f"lossdoctor: {stores}: no run matching --run 'nope' in this folder")
    for name in NAMES:
        assert f"{stores}/{name}" in error


def test_w_and_b_runs_of_one_name_keep_their_folders(stores, tmp_path, runner):
    # two offline runs both named lora-r16 (a re-run): the folder tells them apart
    top = tmp_path / "wandb"
    (folder,) = (stores / "wandb").glob("offline-run-*")
    shutil.copytree(folder, top / folder.name)
    shutil.copytree(folder, top / f"{folder.name[:-8]}zzzzzzzz")
    code, doc = run_json(runner, str(top))
    assert code == 1
    assert [r["source"] for r in doc["runs"]] == [
        f"{top}/{folder.name}#lora-r16",
        f"{top}/{folder.name[:-8]}zzzzzzzz#lora-r16",
    ]
