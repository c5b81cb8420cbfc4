"""Local tracker stores written by the real libraries (issue 17): W&B offline run files,
trackio databases, MLflow SQLite stores, SwanLab run folders.  Each planted problem is
diagnosed; no network is used (offline modes, local stores)."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lossdoctor.api import diagnose
from lossdoctor.ingest import read_run, read_source

from conftest import run_json


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
    skipped = {Path(f["path"]).name: f["detail"] for f in doc["files"] if f["status"] == "skipped"}
    assert skipped["debug-internal.log"].startswith("part of W&B run")


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
