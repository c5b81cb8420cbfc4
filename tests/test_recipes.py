"""The CI recipe's tiny training run passes the gate, and a broken one fails it."""

from __future__ import annotations

import subprocess
import sys

import pytest

from lossdoctor.cli import app

from conftest import ROOT

TRAIN = ROOT / "examples" / "ci" / "train_tiny.py"


def _train(tmp_path, *args: str):
    out = tmp_path / "run.jsonl"
    proc = subprocess.run(
        [sys.executable, str(TRAIN), "--steps", "300", *args], capture_output=True, check=True
    )
    out.write_bytes(proc.stdout)
    return str(out)


def test_healthy_tiny_run_passes_the_gate_and_the_comparison(runner, tmp_path):
    run = _train(tmp_path)
    assert (
        runner.invoke(app, ["check", "--vocab-size", "10", "--fail-on", "warning", run]).exit_code
        == 0
    )
    reference = str(ROOT / "examples" / "ci" / "reference.jsonl")
    assert runner.invoke(app, ["compare", reference, run]).exit_code == 0


@pytest.mark.parametrize(("lr", "rule"), [("0", "high-flatline"), ("50", "oscillation")])
def test_broken_tiny_runs_fail_the_gate(runner, tmp_path, lr, rule):
    run = _train(tmp_path, "--lr", lr)
    result = runner.invoke(app, ["check", "--vocab-size", "10", "--fail-on", "warning", run])
    assert result.exit_code == 1
    assert rule in result.stdout
