"""The at-a-glance line of each series: "best" means the better value of that series, and a
series with no better direction (learning rate, gradient norm) is summarised by its peak;
evidence lists only numbers the log gave."""

from __future__ import annotations

import numpy as np
import pytest

from lossdoctor.cli import app

from conftest import run_json, write_csv


def test_learning_rate_summary_names_its_peak_not_a_best(runner, tmp_path):
    steps = np.arange(1, 401)
    lr = np.where(steps <= 100, 3e-4 * steps / 100, 3e-4 * (1 - (steps - 100) / 400))
    loss = 4.0 * np.exp(-steps / 150) + 1.0
    path = write_csv(tmp_path / "run.csv", {"step": steps, "loss": loss, "lr": lr})

    result = runner.invoke(app, ["check", str(path)])
    lr_line = next(line for line in result.output.splitlines() if line.strip().startswith("lr "))
    assert "peak 0.0003 @100" in lr_line
    assert "best" not in lr_line

    _code, doc = run_json(runner, str(path))
    summary = doc["runs"][0]["series"]["lr"]
    assert summary["peak"] == 0.0003
    assert summary["peak_step"] == 100
    assert summary["best"] == pytest.approx(3e-6)  # the JSON layout keeps "best": the lowest value
    assert "peak" not in doc["runs"][0]["series"]["train"]


def test_reward_best_is_its_highest_value(runner, tmp_path):
    steps = np.arange(1, 301)
    reward = 0.2 + 0.6 * (1 - np.exp(-steps / 80))
    reward[150] = 0.95  # the best reward, logged once
    loss = 2.0 * np.exp(-steps / 100) + 0.5
    path = write_csv(tmp_path / "rl.csv", {"step": steps, "loss": loss, "reward": reward})

    _code, doc = run_json(runner, str(path))
    summary = doc["runs"][0]["series"]["reward"]
    assert summary["best"] == 0.95
    assert summary["best_step"] == 151


def test_flatline_evidence_leaves_out_what_the_log_does_not_give(runner, tmp_path):
    rng = np.random.default_rng(0)
    steps = np.arange(1, 3001)
    loss = 2.3 + 0.02 * rng.standard_normal(steps.size)
    path = write_csv(tmp_path / "flat.csv", {"step": steps, "loss": loss})

    _code, doc = run_json(runner, str(path))
    finding = next(f for f in doc["runs"][0]["findings"] if f["rule"] == "high-flatline")
    assert "lr_peak" not in finding["evidence"]  # no learning rate logged
    assert "chance_loss" not in finding["evidence"]  # no vocabulary or class count given
    assert finding["evidence"]["first_value"] == round(float(loss[0]), 6)

    _code, doc = run_json(runner, str(path), "--classes", "10")
    finding = next(f for f in doc["runs"][0]["findings"] if f["rule"] == "high-flatline")
    assert finding["evidence"]["chance_loss"] == round(float(np.log(10)), 6)
