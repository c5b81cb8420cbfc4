"""Every rule: curves that must fire at a given severity, and near misses that must not."""

from __future__ import annotations

import re

import numpy as np
import pytest

from lossdoctor import synth as curves
from lossdoctor.engine.evaluate import evaluate
from lossdoctor.engine.loader import load_rules
from lossdoctor.model import Run, Series
from lossdoctor.report import Finding, RunReport

RULES = load_rules()


def judge(steps, values, val=None) -> RunReport:
    series = {"train": Series("train", "loss", np.asarray(steps, float), np.asarray(values, float))}
    if val is not None:
        series["val"] = Series(
            "val", "val_loss", np.asarray(val[0], float), np.asarray(val[1], float)
        )
    return evaluate(Run("test.csv", "test", series), RULES)


def severities(report: RunReport) -> dict[str, str]:
    return {f.rule: f.severity for f in report.active}


def test_healthy_curve_is_healthy_with_smooth_decline():
    report = judge(*curves.healthy())
    assert report.verdict == "healthy"
    assert severities(report)["smooth-decline"] == "info"
    assert "spikes" not in severities(report)


@pytest.mark.parametrize("ratio", [2.5, 4.0])
def test_large_spikes_warn_with_the_worst_ratio(ratio):
    report = judge(*curves.spiky(ratio=ratio))
    finding = next(f for f in report.findings if f.rule == "spikes")
    assert finding.severity == "warning"
    assert finding.evidence["max_ratio"] == pytest.approx(ratio, rel=0.15)
    assert report.verdict == "warning"


def test_small_spikes_are_info_only():
    report = judge(*curves.spiky(ratio=1.3))
    assert severities(report)["spikes"] == "info"
    assert report.verdict == "healthy"


def test_spike_evidence_points_at_the_step():
    steps, values = curves.healthy(400)
    values[200] *= 5
    finding = next(f for f in judge(steps, values).findings if f.rule == "spikes")
    assert finding.evidence["start_step"] == steps[200]
    assert "step 2010" in finding.message


def test_steep_early_fall_is_not_a_spike():
    steps = np.arange(1, 31, dtype=float)
    values = np.r_[8.25, 4.62, np.linspace(4.15, 3.5, 28)]
    assert "spikes" not in severities(judge(steps, values))


@pytest.mark.parametrize(("swing", "severity"), [(0.2, "warning"), (0.5, "error")])
def test_oscillation_fires_by_swing(swing, severity):
    report = judge(*curves.oscillating(swing=swing))
    assert severities(report)["oscillation"] == severity
    assert "smooth-decline" not in severities(report)


def test_ordinary_noise_is_not_oscillation():
    report = judge(*curves.oscillating(swing=0.05))
    assert "oscillation" not in severities(report)


def test_noise_near_zero_loss_is_not_oscillation():
    # a loss that fell from 3 to ~0.005 wobbling x3 at the bottom: tiny on the loss scale
    steps = np.arange(1, 1001, dtype=float)
    rng = np.random.default_rng(3)
    values = 0.005 + 3.0 * np.exp(-steps / 60)
    values = values * np.exp(rng.normal(0, 0.8, 1000) * (steps > 400))
    assert "oscillation" not in severities(judge(steps, values))


def _osc(report: RunReport):
    return next(f for f in report.findings if f.rule == "oscillation")


def test_batch_noise_beside_a_calm_validation_loss_is_no_oscillation():
    # per-batch noise of ~33% on a classifier; its validation loss falls to its best at the
    # end, swinging 1% of its own: the swings are the batches', the weights do not bounce
    steps, train, val_steps, val = curves.noisy_with_val()
    report = judge(steps, train, (val_steps, val))
    finding = _osc(report)
    assert finding.severity == "info"
    assert report.verdict == "healthy"
    assert "validation loss falls steadily to its best at the end" in finding.message
    assert finding.evidence["val_swing_pct"] < 3
    assert finding.evidence["val_best_share"] == 1.0
    # a finding that says why a shape is no problem names no cause and gives no fix
    assert finding.fixes == ()
    assert finding.causes == ()
    # without the validation loss the same swings are a warning
    assert _osc(judge(steps, train)).severity == "warning"


def test_a_validation_loss_that_swings_too_keeps_the_oscillation():
    steps, train, val_steps, val = curves.noisy_with_val(val_noise=0.12)
    finding = _osc(judge(steps, train, (val_steps, val)))
    assert finding.severity == "warning"
    assert finding.fixes  # the advice stays


def test_a_lone_validation_loss_is_still_judged_for_oscillation():
    # a log holding only a validation loss: its shape is judged by the training rules, the
    # oscillation rule too now that it also reads a validation loss beside the training one
    steps, values = curves.oscillating(swing=0.5)
    run = Run("v.csv", "test", {"val": Series("val", "val_loss", steps, values)})
    finding = _osc(evaluate(run, RULES))
    assert (finding.severity, finding.series) == ("error", "val")


def test_flat_loss_is_high_flatline_error():
    report = judge(*curves.flat())
    finding = next(f for f in report.findings if f.rule == "high-flatline")
    assert finding.severity == "error"
    assert report.verdict == "failing"
    assert "smooth-decline" not in severities(report)


def test_burst_then_stuck_names_the_logged_learning_rate_as_its_cause():
    # Adam at a rate 10-100x too high: a burst in the first steps, then stuck far above the
    # floor (#13: was healthy); with the rate logged the likely cause names it
    steps, values = curves.burst_then_stuck()
    lr = np.full(steps.size, 0.3)
    series = {
        "train": Series("train", "loss", steps, values),
        "lr": Series("lr", "lr", steps, lr),
    }
    report = evaluate(Run("test.csv", "test", series), RULES)
    finding = next(f for f in report.active if f.rule == "high-flatline")
    assert finding.severity in ("warning", "error")
    likely = [c for c in finding.causes if c["likely"]]
    assert likely[0]["cause"] == "Learning rate too high"
    assert "at a learning rate of 0.3" in likely[0]["evidence"]
    burst = re.search(r"rose to ([0-9.]+)x its starting level", likely[0]["evidence"])
    assert burst
    assert float(burst[1]) == pytest.approx(1.5, rel=0.1)  # the burst drawn: 1.5x
    # without a logged rate the burst alone is no evidence of a rate
    report = judge(steps, values)
    finding = next(f for f in report.active if f.rule == "high-flatline")
    assert not [c for c in finding.causes if c["likely"] and "learning rate" in c["cause"]]


def _flatline_with_lr(rate: float) -> Finding:
    steps, values = curves.flat()
    series = {
        "train": Series("train", "loss", steps, values),
        "lr": Series("lr", "lr", steps, np.full(steps.size, rate)),
    }
    report = evaluate(Run("test.csv", "test", series), RULES)
    return next(f for f in report.active if f.rule == "high-flatline")


def test_a_logged_rate_rules_out_the_opposite_cause_and_its_fix():
    # a flat loss at a logged rate of 0.3 (Adam 100x too high): "far too low" is no cause
    # and "raise the learning rate" no fix (it was the first fix, #13 audit)
    finding = _flatline_with_lr(0.3)
    causes = [c["cause"] for c in finding.causes]
    fixes = [f["title"] for f in finding.fixes]
    assert "Learning rate far too low" not in causes
    assert "Raise the learning rate" not in fixes
    assert "Lower the learning rate" in fixes
    # at a logged rate of 1e-8 it is the likely cause, and a rate "too high" is ruled out
    finding = _flatline_with_lr(1e-8)
    likely = [c["cause"] for c in finding.causes if c["likely"]]
    assert likely == ["Learning rate far too low"]
    assert "Learning rate too high" not in [c["cause"] for c in finding.causes]
    fixes = [f["title"] for f in finding.fixes]
    assert fixes[0] == "Raise the learning rate"
    assert "Lower the learning rate" not in fixes
    # at a rate that is neither (Adam's default) both stay candidates
    finding = _flatline_with_lr(1e-3)
    causes = [c["cause"] for c in finding.causes]
    assert {"Learning rate too high", "Learning rate far too low"} <= set(causes)


def test_a_rise_after_a_restart_to_a_high_rate_names_the_restart_as_its_cause():
    # cosine restarts whose last peak is far too high: the rate jumps at 66% of the run and
    # decays again by the end; the loss rises and never comes back (#13). The rate logged
    # beside it went from a small share of its peak at the best step to all of it: the
    # likely cause, though the rate has decayed again by the end
    steps, values = curves.restart_too_high()
    n, at = steps.size, int(steps.size * 0.66)
    lr = np.full(n, 1e-3)
    lr[at:] = 0.3 * np.cos(np.linspace(0, np.pi / 2, n - at)) ** 2 + 1e-3
    series = {
        "train": Series("train", "loss", steps, values),
        "lr": Series("lr", "lr", steps, lr),
    }
    report = evaluate(Run("test.csv", "test", series), RULES)
    finding = next(f for f in report.active if f.rule == "divergence")
    likely = [c for c in finding.causes if c["likely"]]
    assert likely[0]["cause"] == "Learning rate ramped too high"
    assert "from 0% to 100% of its peak after the best step" in likely[0]["evidence"]


def test_slow_but_real_fall_is_not_a_flatline():
    steps, values = curves.flat()
    values = values * np.linspace(1.0, 0.8, values.shape[0])
    assert "high-flatline" not in severities(judge(steps, values))


def test_plateau_is_info_with_the_flattening_step():
    steps, values = curves.plateau()
    report = judge(steps, values)
    finding = next(f for f in report.findings if f.rule == "plateau")
    assert finding.severity == "info"
    assert 0 < finding.evidence["start_step"] < steps[-1] * 0.5
    assert report.verdict == "healthy"


def test_curve_still_falling_has_no_long_plateau():
    steps = np.arange(1, 501, dtype=float)
    values = 5.0 - 3.5 * steps / 500  # linear fall to the end
    assert "plateau" not in severities(judge(steps, values))


@pytest.mark.parametrize(("factor", "severity"), [(2.0, "error"), (20.0, "error")])
def test_divergence_is_an_error(factor, severity):
    report = judge(*curves.diverging(factor=factor))
    assert severities(report)["divergence"] == severity
    assert report.verdict == "failing"
    assert "smooth-decline" not in severities(report)


def test_small_late_uptick_is_not_divergence():
    report = judge(*curves.diverging(factor=1.1))
    assert "divergence" not in severities(report)


def test_nan_tail_is_non_finite_error_with_first_step():
    steps, values = curves.with_nan()
    report = judge(steps, values)
    finding = next(f for f in report.findings if f.rule == "non-finite")
    assert finding.severity == "error"
    assert finding.evidence["start_step"] == steps[240]
    assert finding.evidence["count"] == 60
    assert "never recovered" in finding.message


def test_inf_to_the_end_is_non_finite_and_supersedes_divergence():
    steps, values = curves.diverging(factor=3)
    values[500:] = np.inf
    report = judge(steps, values)
    assert severities(report)["non-finite"] == "error"
    div = next(f for f in report.findings if f.rule == "divergence")
    assert div.superseded_by == "non-finite"
    assert report.drivers == ["non-finite"]


def test_a_single_inf_does_not_explain_away_a_divergence():
    steps, values = curves.diverging(factor=3)
    values[100] = np.inf
    report = judge(steps, values)
    assert severities(report)["non-finite"] == "error"
    assert report.drivers == ["non-finite", "divergence"]


def test_a_recovered_nan_is_an_error_saying_when_it_recovered():
    steps, values = curves.healthy()
    values[200] = np.nan
    report = judge(steps, values)
    finding = next(f for f in report.findings if f.rule == "non-finite")
    assert finding.severity == "error"
    assert report.verdict == "failing"
    assert f"the run recovered at step {steps[201]:g}" in finding.message
    assert f"the first at step {steps[200]:g}" in finding.message


def test_a_nan_tail_after_an_earlier_inf_never_recovered():
    # an Inf at one step, finite values, then NaN to the end (an MLflow store's +Inf and
    # is_nan read back): it said "the run recovered at step nan and carried on"
    steps, values = curves.healthy()
    values[200] = np.inf
    values[250:] = np.nan
    report = judge(steps, values)
    finding = next(f for f in report.findings if f.rule == "non-finite")
    assert finding.severity == "error"
    assert "recovered at" not in finding.message
    assert "nan" not in finding.message
    assert f"from step {steps[250]:g} on" in finding.message
    assert "never recovered" in finding.message
    assert f"the first at step {steps[200]:g}" in finding.message
    assert finding.causes[0]["cause"] == "Training blew up"
    assert finding.causes[0]["likely"] is True


def test_finite_curve_has_no_non_finite_finding():
    assert "non-finite" not in severities(judge(*curves.healthy()))


@pytest.mark.parametrize(("rise", "severity"), [(0.1, "warning"), (0.3, "error")])
def test_overfitting_reports_best_validation_step(rise, severity):
    steps, train, val_steps, val = curves.overfitting_pair(rise=rise)
    report = judge(steps, train, (val_steps, val))
    finding = next(f for f in report.findings if f.rule == "overfitting")
    assert finding.severity == severity
    best = finding.evidence["start_step"]
    assert val_steps[9] <= best <= val_steps[14]
    assert f"step {best:g}" in finding.message


def test_validation_tracking_training_is_not_overfitting():
    steps, train, val_steps, val = curves.tracking_pair()
    report = judge(steps, train, (val_steps, val))
    assert "overfitting" not in severities(report)
    assert report.verdict == "healthy"


def test_tiny_validation_uptick_at_the_very_end_is_not_overfitting():
    steps, train, val_steps, val = curves.tracking_pair()
    val = val.copy()
    val[-1] *= 1.15
    assert "overfitting" not in severities(judge(steps, train, (val_steps, val)))


def test_negative_loss_warns():
    steps, values = curves.healthy()
    report = judge(steps, values - 2.0)
    finding = next(f for f in report.findings if f.rule == "negative-loss")
    assert finding.severity == "warning"
    assert finding.evidence["count"] > 0


def test_positive_loss_has_no_negative_finding():
    assert "negative-loss" not in severities(judge(*curves.healthy()))


def test_no_validation_and_too_few_points_are_info_only():
    report = judge([1, 2, 3], [3.0, 2.0, 1.0])
    assert severities(report) == {"too-few-points": "info", "no-validation": "info"}
    assert report.verdict == "healthy"


def test_enough_points_and_validation_give_no_coverage_notes():
    steps, train, val_steps, val = curves.tracking_pair()
    found = severities(judge(steps, train, (val_steps, val)))
    assert "no-validation" not in found
    assert "too-few-points" not in found


@pytest.mark.parametrize("scale", [1e-3, 1.0, 1e3])
def test_rules_are_scale_free(scale):
    steps, values = curves.spiky(ratio=3.0)
    assert severities(judge(steps, values * scale))["spikes"] == "warning"
    steps, values = curves.healthy()
    assert judge(steps, values * scale).verdict == "healthy"


@pytest.mark.parametrize("n", [60, 3000, 60000])
def test_rules_hold_across_run_lengths(n):
    assert judge(*curves.healthy(n)).verdict == "healthy"
    assert severities(judge(*curves.diverging(n)))["divergence"] == "error"
    assert severities(judge(*curves.flat(n)))["high-flatline"] == "error"


def _run_with_grad(values, grad):
    steps = np.arange(len(values), dtype=float)
    series = {
        "train": Series("train", "loss", steps, np.asarray(values, float)),
        "grad_norm": Series("grad_norm", "grad_norm", steps, np.asarray(grad, float)),
    }
    return evaluate(Run("x.json", "test", series), RULES)


def test_nan_grad_norm_to_the_end_is_a_masked_non_finite_error():
    values = np.linspace(3, 2, 100)
    grad = np.r_[np.ones(60), np.full(40, np.nan)]
    report = _run_with_grad(values, grad)
    finding = next(f for f in report.findings if f.rule == "masked-non-finite")
    assert finding.severity == "error"
    assert finding.evidence["start_step"] == 60
    assert finding.evidence["grad_norm_nonfinite"] == 40


def test_loss_stuck_at_zero_after_nonzero_is_an_error():
    values = np.r_[np.linspace(3, 2, 50), np.zeros(10)]
    report = judge(np.arange(60.0), values)
    assert severities(report)["masked-non-finite"] == "error"


def test_an_isolated_nan_grad_norm_while_the_loss_falls_is_a_skipped_step():
    grad = np.ones(100)
    grad[40] = np.nan
    report = _run_with_grad(np.linspace(3, 2, 100), grad)
    found = severities(report)
    assert found["non-finite-grad-norm"] == "info"
    assert "masked-non-finite" not in found
    assert report.verdict == "healthy"


def test_a_nan_grad_norm_beside_a_nan_loss_is_not_masked():
    values, grad = np.linspace(3, 2, 100), np.ones(100)
    values[40] = grad[40] = np.nan
    report = _run_with_grad(values, grad)
    assert "masked-non-finite" not in severities(report)
    assert severities(report)["non-finite"] == "error"


def test_clean_grad_norm_has_no_masked_finding():
    report = _run_with_grad(np.linspace(3, 2, 100), np.ones(100))
    assert "masked-non-finite" not in severities(report)


def test_source_caveats_are_info():
    steps, values = curves.healthy(1000)
    train = Series("train", "loss", steps, values, meta={"export": "TensorBoard"})
    found = severities(evaluate(Run("x.csv", "tensorboard-csv", {"train": train}), RULES))
    assert found["sampled-export"] == "info"
    smoothed = Series("train", "total_loss", steps, values, meta={"smoothed": "median"})
    found = severities(evaluate(Run("m.json", "jsonl", {"train": smoothed}), RULES))
    assert found["smoothed-source"] == "info"
    epochs = Series("train", "loss", np.arange(30.0), values[:30], x_kind="epoch")
    found = severities(evaluate(Run("e.csv", "csv", {"train": epochs}), RULES))
    assert found["per-epoch"] == "info"


def test_plain_step_log_has_no_source_caveats():
    found = severities(judge(*curves.healthy(1000)))
    assert not {"sampled-export", "smoothed-source", "per-epoch"} & set(found)


def test_an_epoch_axis_says_epoch_for_the_x_but_keeps_the_optimizer_step():
    # an epoch-axis log (TRL / axolotl printed dicts) with one NaN: "A skipped fp16
    # epoch or one bad batch does this" (the optimizer's step is no point of the x axis)
    values = np.linspace(3.0, 1.0, 100)
    values[60] = np.nan
    train = Series("train", "loss", np.arange(100) / 100, values, x_kind="epoch")
    report = evaluate(Run("trl.log", "text:hf-printed", {"train": train}), RULES)
    finding = next(f for f in report.findings if f.rule == "non-finite")
    assert "the first at epoch 0.6" in finding.message
    assert "recovered at epoch 0.61" in finding.message
    assert "A skipped fp16 step or one bad batch" in finding.message
    assert "fp16 epoch" not in finding.message


def test_no_perplexity_for_the_loss_of_any_rl_objective():
    # the RL objectives the engine knows (RL_OBJECTIVES) are no cross-entropy either:
    # "reinforce" and "rl" (the API's and configuration's names) were shown with a perplexity
    from lossdoctor.engine.evaluate import RL_OBJECTIVES, is_cross_entropy

    steps, values = curves.healthy()
    series = Series("train", "loss", steps, values)
    run = Run("test.csv", "test", {"train": series})
    assert is_cross_entropy(series, run, {"objective": "sft"})
    for objective in sorted(RL_OBJECTIVES):
        assert not is_cross_entropy(series, run, {"objective": objective}), objective


def test_a_rule_changed_between_runs_judges_with_its_own_tunables_and_inputs():
    """The engine works out once how it applies each rule: a copy of a rule with other
    tunables or inputs, judged after the original, is judged by its own."""
    import dataclasses

    from lossdoctor.ingest import read_source

    spikes = next(r for r in RULES if r.detector == "spikes")
    run = read_source("examples/spikes.jsonl")[0][0]
    assert spikes.name in {f.rule for f in evaluate(run, [spikes]).findings}
    deaf = dataclasses.replace(spikes, params={**spikes.params, "min_ratio": 1e5})
    assert spikes.name not in {f.rule for f in evaluate(run, [deaf]).findings}
    assert spikes.name in {f.rule for f in evaluate(run, [spikes]).findings}
    on_val = dataclasses.replace(spikes, series=("val",))
    assert evaluate(run, [on_val]).skipped == [(spikes.code, spikes.name, "no val series")]
