"""Deferred measurement fields: computed only when a rule reads them, the same numbers."""

from __future__ import annotations

import numpy as np
import pytest

from lossdoctor.detectors import (
    divergence,
    flatline,
    levelshift,
    load_builtin_detectors,
    oscillation,
    overfitting,
)
from lossdoctor.engine.evaluate import evaluate
from lossdoctor.engine.loader import load_rules
from lossdoctor.features import SeriesView
from lossdoctor.model import Run, Series

DETECTORS = load_builtin_detectors()


def healthy_run(points: int = 2000) -> Run:
    """Return a run whose loss falls smoothly with a little noise, with a constant learning
    rate and a validation loss every 100th step that falls with it."""
    rng = np.random.default_rng(7)
    steps = np.arange(points, dtype=float)
    loss = (4.0 * np.exp(-steps / (points / 5)) + 1.0) * np.exp(rng.normal(0, 0.03, points))
    every = steps[::100]
    val = (4.0 * np.exp(-every / (points / 5)) + 1.1) * np.exp(rng.normal(0, 0.01, every.size))
    series = {
        "train": Series("train", "loss", steps, loss),
        "val": Series("val", "val_loss", every, val),
        "lr": Series("lr", "lr", steps, np.full(points, 3e-4)),
    }
    return Run("healthy.csv", "csv", series)


def fail(*args: object, **kwargs: object) -> float:
    raise AssertionError("a deferred field was computed on a run where no rule reads it")


@pytest.mark.parametrize(
    ("module", "name"),
    [
        (flatline, "_late_fall_t"),
        (flatline, "_burst_sigmas"),
        (oscillation, "val_calm"),
        (divergence, "rise_z"),
        (divergence, "spearman"),
        (levelshift, "band_passes"),
        (overfitting, "_over_noise"),
        (overfitting, "spearman"),
    ],
)
def test_a_healthy_run_does_not_compute_what_no_rule_reads(monkeypatch, module, name):
    # every level of these rules fails on a cheaper field first (the loss fell far from
    # its start, does not swing, did not rise, made no jump): the costly fields behind
    # them are never computed
    monkeypatch.setattr(module, name, fail)
    report = evaluate(healthy_run(), load_rules())
    assert report.verdict == "healthy"
    assert "smooth-decline" in {f.rule for f in report.findings}


def test_deferred_fields_are_fields_rules_may_read():
    assert {"late_fall_t", "early_burst_sigmas"} <= set(DETECTORS["flatline"].fields)
    assert {"val_calm", "val_fall", "lr_peak", "linear_swing_to_progress"} <= set(
        DETECTORS["oscillation"].fields
    )
    assert {"steadiness", "rise_z", "passes", "lr_rise_after_best"} <= set(
        DETECTORS["divergence"].fields
    )
    assert {"kept_share", "further_rise", "passes"} <= set(DETECTORS["level_shift"].fields)
    assert {"rise_to_noise", "steadiness", "wasted_share"} <= set(DETECTORS["overfitting"].fields)
    for spec in DETECTORS.values():
        assert "evidence" not in spec.fields
        assert "judged" not in spec.fields
        assert not any(name.startswith("_") for name in spec.fields)


def test_a_deferred_field_reads_the_number_computed_at_once():
    run = healthy_run()
    train = SeriesView(run.series["train"])
    measured = flatline.flatline(train)
    assert measured.late_fall_t == flatline._late_fall_t(SeriesView(run.series["train"]))
    assert measured.evidence.series == measured.judged == "train"
    assert measured.evidence.numbers["first_value"] == float(run.series["train"].values[0])
