"""LD503 per-epoch: said of a loss logged once an epoch, not of one logged within epochs
on a fractional epoch axis (TRL/HF printed dicts without a step: 0.02, 0.04, ...)."""

from __future__ import annotations

import numpy as np

from conftest import fired, run_json, write_csv


def test_fractional_epochs_are_not_one_point_per_epoch(runner, tmp_path):
    epochs = np.round(np.arange(1, 51) * 0.02, 2)
    loss = 2.0 * np.exp(-np.arange(50) / 20) + 0.5
    path = write_csv(tmp_path / "trl.csv", {"epoch": epochs, "loss": loss})
    _code, doc = run_json(runner, str(path))
    run = doc["runs"][0]
    assert run["series"]["train"]["x"] == "epoch"
    assert "per-epoch" not in {f["rule"] for f in run["findings"]}


def test_one_point_per_epoch_is_said(runner, tmp_path):
    epochs = np.arange(0, 30)
    loss = 2.0 * np.exp(-epochs / 10) + 0.5
    path = write_csv(tmp_path / "keras.csv", {"epoch": epochs, "loss": loss})
    _code, doc = run_json(runner, str(path))
    (finding,) = [f for f in doc["runs"][0]["findings"] if f["rule"] == "per-epoch"]
    assert finding["severity"] == "info"
    assert "about 1 point per epoch (30 points)" in finding["message"]
    assert fired(doc["runs"][0]).get("per-epoch") == "info"


def test_points_per_epoch_are_counted_not_assumed_to_be_one(runner, tmp_path):
    """32 points over 20 epochs are logged more than once an epoch: the note says how often."""
    epochs = np.round(np.linspace(0, 20, 32), 3)
    loss = 2.0 * np.exp(-epochs / 6) + 0.5
    path = write_csv(tmp_path / "fit.csv", {"epoch": epochs, "loss": loss})
    _code, doc = run_json(runner, str(path))
    (finding,) = [f for f in doc["runs"][0]["findings"] if f["rule"] == "per-epoch"]
    assert "about 1.6 points per epoch (32 points)" in finding["message"]
