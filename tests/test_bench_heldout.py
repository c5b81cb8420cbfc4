"""The held-out benchmark's generator labels a run by what the run really shows.

``benchmarks/bench_heldout.py`` decides each case's label from its parameters alone; these
tests check the curves it draws against those labels (a case labelled divergence rises, an
overfitting case's validation loss climbs while training loss falls, small spikes are
small, a high flatline stays at its start), so a wrong label fails here, not silently in
the benchmark's numbers.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from conftest import load_script

SEEDS = range(3)
PER_FAMILY = 30


ho = load_script("benchmarks/bench_heldout.py", "lossdoctor_bench_heldout")


def _cases(family: str) -> list[Any]:
    return [ho.draw_params(family, i, seed) for seed in SEEDS for i in range(PER_FAMILY)]


def _smooth(y: Any, width: int) -> Any:
    width = max(1, min(width, len(y)))
    return np.convolve(y, np.ones(width) / width, mode="valid")


def test_the_same_seed_draws_the_same_cases_and_another_seed_others() -> None:
    a = ho.build(0, 40, ho.FAMILIES)
    assert a == ho.build(0, 40, ho.FAMILIES)
    assert [p for p, _ in a] != [p for p, _ in ho.build(1, 40, ho.FAMILIES)]
    run = ho.generate(a[0][0])
    again = ho.generate(a[0][0])
    assert np.array_equal(run.train, again.train, equal_nan=True)


def test_a_case_labelled_divergence_really_rises_after_its_minimum() -> None:
    checked = 0
    for p in _cases("divergence"):
        lab = ho.label(p)
        if "divergence" not in lab.must:
            continue
        s = ho.generate(p)
        level = _smooth(s.train, max(3, p.n_points // 20))
        lowest = int(np.argmin(level))
        assert lowest < len(level) - 1, p
        # obvious divergence ends at least 1.5x above the lowest smoothed level it reached
        assert level[-1] >= 1.4 * level[lowest], (p, level[-1], level[lowest])
        assert lab.verdicts == ("failing",)
        checked += 1
    assert checked >= 40


def test_a_case_labelled_overfitting_has_validation_rising_while_training_falls() -> None:
    checked = 0
    for p in _cases("overfitting"):
        lab = ho.label(p)
        s = ho.generate(p)
        assert len(s.val) >= 8, p
        best = int(np.argmin(s.val))
        after = s.val[best:]
        rise = float(after[-1] / s.val[best] - 1)
        train_at_best = float(np.interp(s.val_steps[best], s.steps, s.clean))
        assert s.clean[-1] < train_at_best, p  # training loss still falls after val's best
        if "overfitting" in lab.must:
            assert rise >= 0.25, (p, rise)
            assert "healthy" not in lab.verdicts
            checked += 1
        else:  # borderline: heuristics.md gives no size, so every verdict is accepted
            assert p.borderline
            assert set(lab.verdicts) == {"healthy", "warning", "failing"}
    assert checked >= 40


def test_small_spikes_are_small_and_labelled_healthy_big_ones_are_not() -> None:
    for p in _cases("small_spikes"):
        s = ho.generate(p)
        ratio = s.train / s.clean
        noise_cap = math.exp(p.noise * ho.TAIL_CAP)
        assert float(np.max(ratio)) <= max(1.3, noise_cap) + 1e-9, p
        assert ho.label(p).verdicts == ("healthy",)
    for p in _cases("big_spikes"):
        s = ho.generate(p)
        ratio = s.train / s.clean
        lab = ho.label(p)
        if p.borderline:
            assert lab.must == ()
        else:
            assert float(np.max(ratio)) >= 3.5, p
            assert lab.must == ("spikes",)
            assert "healthy" not in lab.verdicts


def test_a_high_flatline_stays_at_its_start_and_a_healthy_run_leaves_it() -> None:
    for p in _cases("high_flatline"):
        s = ho.generate(p)
        tail = s.clean[len(s.clean) // 5 :]
        assert float(np.min(tail)) >= 0.8 * p.start, p
        if p.variant != "burst-stuck":
            assert float(np.min(tail)) >= 0.96 * p.start, p
    for p in _cases("healthy"):
        s = ho.generate(p)
        assert s.clean[-1] <= 0.8 * s.clean[0], p
        assert ho.label(p).must == ("smooth-decline",)


def test_a_non_finite_case_holds_a_non_finite_training_loss() -> None:
    for p in _cases("non_finite"):
        s = ho.generate(p)
        assert not np.all(np.isfinite(s.train)), p
        assert ho.label(p).must == ("non-finite",)


@pytest.mark.parametrize("family", ho.FAMILIES)
def test_labels_name_only_real_rules_and_borderline_cases_require_none(family: str) -> None:
    scored = {
        "smooth-decline", "spikes", "oscillation", "high-flatline", "plateau",
        "overfitting", "divergence", "non-finite",
    }  # fmt: skip
    for p in _cases(family):
        lab = ho.label(p)
        assert set(lab.must) <= scored
        assert lab.verdicts
        assert set(lab.verdicts) <= {"healthy", "warning", "failing"}
        assert not set(lab.must) & set(lab.allow)
        if p.borderline:
            assert lab.must == ()
