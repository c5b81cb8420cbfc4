"""Causes ranked by the signals beside the loss (gradient norm, fp16 and overflow lines,
epoch boundaries, learning rate), and the learning rate against the configured schedule."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from test_rule_pack import BASE

from lossdoctor.cli import app
from lossdoctor.engine.loader import load_rule_file
from lossdoctor.errors import RulePackError
from lossdoctor.ingest import read_run
from lossdoctor.ingest.metadata import count_overflow_skips, facts_from_text

from conftest import fired, run_json, write_csv

LOGS = Path(__file__).resolve().parent / "cases" / "logs"


def _finding(run, rule):
    return next(f for f in run["findings"] if f["rule"] == rule)


def _likely(finding):
    return [c for c in finding["causes"] if c["likely"]]


def _check(runner, path):
    code, doc = run_json(runner, str(path))
    return code, doc["runs"][0]


def _without(tmp_path, name, key):
    """Return a copy of the trainer_state fixture ``name`` without the logged ``key``."""
    state = json.loads((LOGS / name).read_text(encoding="utf-8"))
    for entry in state["log_history"]:
        entry.pop(key, None)
    out = tmp_path / "trainer_state.json"
    out.write_text(json.dumps(state), encoding="utf-8")
    return out


# -- spikes: the gradient norm at the spike steps ---------------------------------------


def test_co_spikes_of_loss_and_grad_norm_rank_unstable_updates_first(runner):
    code, run = _check(runner, LOGS / "spikes_co_grad_norm.json")
    assert code == 0
    assert run["verdict"] == "warning"
    spikes = _finding(run, "spikes")
    assert spikes["code"] == "LD201"
    assert spikes["severity"] == "warning"
    assert spikes["evidence"]["events"] == 4
    assert spikes["evidence"]["co_spikes"] == 4
    first = spikes["causes"][0]
    assert first["cause"] == "Unstable updates: the gradient norm spiked with the loss"
    assert first["likely"] is True
    assert first["signal"] == "grad_norm"
    assert first["evidence"].startswith(
        "the gradient norm spiked with the loss at 4 of the 4 spikes where it is logged, "
    )
    assert spikes["fixes"][0]["title"] == "Clip gradients"
    # the shape-only cause is still likely, ranked after the signal's
    assert [c["cause"] for c in _likely(spikes)][1] == "Bad or unusual batches"
    assert "signal" not in _likely(spikes)[1]


def test_a_calm_grad_norm_at_the_spikes_points_at_the_batches(runner):
    _, run = _check(runner, LOGS / "spikes_calm_grad_norm.json")
    spikes = _finding(run, "spikes")
    assert spikes["evidence"]["co_spikes"] == 0
    first = spikes["causes"][0]
    assert first["cause"] == "Hard or malformed batches, not unstable updates"
    assert first["signal"] == "grad_norm"
    assert (
        first["evidence"] == "the gradient norm stayed calm at 4 of the 4 spikes where it is logged"
    )
    assert (
        spikes["fixes"][0]["title"]
        == "Inspect the batches at the spike steps and clean the dataset"
    )
    # a cause resting on a signal's evidence is not listed when the evidence does not hold
    named = {c["cause"] for c in spikes["causes"]}
    assert "Unstable updates: the gradient norm spiked with the loss" not in named
    assert "No gradient clipping, or fp16 overflow" in named
    # nor is a fix only such a cause calls for
    fixes = [f["title"] for f in spikes["fixes"]]
    assert "Use bf16 instead of fp16, or check the loss scaler" not in fixes
    assert "Use learning-rate warmup" in fixes


def test_without_a_grad_norm_the_shape_alone_ranks_the_causes(runner, tmp_path):
    path = _without(tmp_path, "spikes_co_grad_norm.json", "grad_norm")
    _, run = _check(runner, path)
    spikes = _finding(run, "spikes")
    assert spikes["severity"] == "warning"
    assert "co_spikes" not in spikes["evidence"]
    assert [c["cause"] for c in _likely(spikes)] == ["Bad or unusual batches"]
    assert not any("signal" in c for c in spikes["causes"])
    assert (
        spikes["fixes"][0]["title"]
        == "Inspect the batches at the spike steps and clean the dataset"
    )


def test_terminal_names_the_signal_that_ranked_a_cause(runner):
    result = runner.invoke(app, ["check", str(LOGS / "spikes_co_grad_norm.json")])
    assert (
        "likely cause (from grad_norm): Unstable updates: the gradient norm spiked with the loss"
        in result.stdout
    )


# -- spikes: epoch boundaries -------------------------------------------------------------


def test_spikes_at_every_epoch_start_point_at_the_data_order(runner, tmp_path):
    _, run = _check(runner, LOGS / "spikes_epoch_starts.json")
    spikes = _finding(run, "spikes")
    assert spikes["severity"] == "warning"
    assert spikes["evidence"]["epoch_aligned"] == 5
    first = spikes["causes"][0]
    assert first["cause"] == "Data order: spikes at the start of each epoch"
    assert first["signal"] == "epoch"
    assert first["evidence"] == "5 of the 5 spikes start at an epoch boundary"
    assert spikes["fixes"][0]["title"] == "Shuffle the training data every epoch"
    # a constant learning rate is always "at its peak": not a cause
    assert "Learning rate at its peak when the worst spike hit" not in {
        c["cause"] for c in _likely(spikes)
    }
    # without the epoch column the boundaries are unknown
    _, run = _check(runner, _without(tmp_path, "spikes_epoch_starts.json", "epoch"))
    spikes = _finding(run, "spikes")
    assert "epoch_aligned" not in spikes["evidence"]
    assert spikes["causes"][0]["cause"] == "Bad or unusual batches"


# -- fp16: overflow lines and non-finite gradient norms -----------------------------------


def test_overflow_skipped_steps_in_the_log_rank_fp16_first(runner):
    _, run = _check(runner, LOGS / "fp16_overflow_spikes.log")
    spikes = _finding(run, "spikes")
    first = spikes["causes"][0]
    assert first["cause"] == "fp16 overflow: the loss scaler skipped steps"
    assert first["signal"] == "log"
    assert first["evidence"] == "2 overflow-skipped step(s) reported in the log"
    assert spikes["fixes"][0]["title"] == "Use bf16 instead of fp16, or check the loss scaler"


def test_the_reader_records_precision_and_skipped_steps():
    run = read_run(str(LOGS / "fp16_overflow_spikes.log"))
    assert run.series["train"].meta["precision"] == "fp16"
    assert run.series["train"].meta["overflow_skips"] == "2"
    assert run.series["lr"].meta["configured_lr"] == "2e-05"
    assert run.series["lr"].meta["lr_scheduler"] == "constant"


def _spiky_run(n=200):
    steps = np.arange(1, n + 1) * 10
    loss = 3 * np.exp(-steps / 800) + 1.0
    loss = loss * np.exp(np.random.default_rng(3).normal(0, 0.01, n))
    grad = 1.0 + 0.05 * np.random.default_rng(4).standard_normal(n)
    return steps, loss, grad


def test_non_finite_grad_norms_rank_fp16_overflow_for_spikes(runner, tmp_path):
    steps, loss, grad = _spiky_run()
    loss[[50, 100, 150]] *= 3
    grad[[49, 99]] = np.nan
    path = write_csv(tmp_path / "run.csv", {"step": steps, "loss": loss, "grad_norm": grad})
    _, run = _check(runner, path)
    spikes = _finding(run, "spikes")
    first = spikes["causes"][0]
    assert first["cause"] == "fp16 overflow: non-finite gradient norms"
    assert first["signal"] == "grad_norm"
    assert first["evidence"] == "2 NaN/Inf gradient norm(s) logged"
    assert spikes["fixes"][0]["title"] == "Use bf16 instead of fp16, or check the loss scaler"


def test_non_finite_grad_norms_rank_fp16_overflow_for_divergence(runner, tmp_path):
    steps, loss, grad = _spiky_run()
    loss[120:] = loss[120] * np.exp(np.linspace(0, 1.2, 80))
    grad[150:153] = np.inf
    path = write_csv(tmp_path / "run.csv", {"step": steps, "loss": loss, "grad_norm": grad})
    _, run = _check(runner, path)
    divergence = _finding(run, "divergence")
    assert divergence["code"] == "LD203"
    assert divergence["causes"][0]["cause"] == "fp16 overflow: non-finite gradient norms"
    assert divergence["causes"][0]["evidence"] == "3 NaN/Inf gradient norm(s) logged"
    assert divergence["fixes"][0]["title"] == "Use bf16 or a loss scaler instead of plain fp16"


def test_a_nan_loss_in_an_fp16_run_names_fp16_first(runner, tmp_path):
    lines = ["TrainingArguments(fp16=True, learning_rate=5e-05)"]
    for i in range(60):
        loss = "nan" if i >= 50 else f"{2.5 - i * 0.02:.3f}"
        lines.append(f"{{'loss': {loss}, 'learning_rate': 5e-05, 'epoch': {(i + 1) / 60:.3f}}}")
    path = tmp_path / "train.log"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    code, run = _check(runner, path)
    assert code == 1
    nonfinite = _finding(run, "non-finite")
    assert nonfinite["severity"] == "error"
    first = nonfinite["causes"][0]
    assert first["cause"] == "The run trains in fp16"
    assert first["signal"] == "log"
    assert first["evidence"] == "the log says the run trains in fp16"
    assert nonfinite["fixes"][0]["title"] == "Use bf16 instead of fp16, or a dynamic loss scaler"


# -- grad-norm-spikes: with and without the loss ----------------------------------------


def test_a_clear_grad_norm_spike_with_a_loss_spike_is_named_so(runner, tmp_path):
    steps, loss, grad = _spiky_run()
    grad[120] *= 80
    loss[120] *= 3
    path = write_csv(tmp_path / "run.csv", {"step": steps, "loss": loss, "grad_norm": grad})
    _, run = _check(runner, path)
    finding = _finding(run, "grad-norm-spikes")
    assert finding["code"] == "LD205"
    assert finding["severity"] == "warning"
    assert "and the loss spikes at 1 of the same steps" in finding["message"]
    assert finding["evidence"]["with_loss_spike"] == 1
    first = finding["causes"][0]
    assert first["cause"] == "A batch or the learning rate moved the weights too far"
    assert first["signal"] == "train"
    assert first["evidence"] == "the loss spiked at 1 of the 1 gradient-norm spikes"
    # the same norm with a calm loss: benign, said so
    loss[120] /= 3
    path = write_csv(tmp_path / "calm.csv", {"step": steps, "loss": loss, "grad_norm": grad})
    _, run = _check(runner, path)
    finding = _finding(run, "grad-norm-spikes")
    assert finding["severity"] == "warning"
    assert "while the loss shows no spike" in finding["message"]
    assert finding["causes"][0]["cause"] == "A rare large gradient the optimiser absorbed"


# -- the rule schema: a cause's signal ----------------------------------------------------


def _rule_file(tmp_path, inputs, cause):
    """Write test_rule_pack's minimal rule reading ``inputs``, with one cause."""
    text = BASE.replace('inputs = ["train", "lr"]', f"inputs = {inputs}")
    path = tmp_path / "XX901-my-rule.toml"
    path.write_text(text + f'[[causes]]\ntitle = "c"\nwhy = "w"\n{cause}\n', encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("inputs", "cause", "problem"),
    [
        ('["train", "lr"]', 'when = ["co_spikes >= 1"]\nsignal = "gradnorm"', "causes[0].signal"),
        ('["train", "lr"]', 'signal = "lr"', "rests on no signal"),
        ('["train", "lr", "grad_norm", "val"]', "", "reads 1 to 3 series"),
    ],
)
def test_a_malformed_cause_signal_is_a_rule_pack_error(tmp_path, inputs, cause, problem):
    path = _rule_file(tmp_path, inputs, cause)
    with pytest.raises(RulePackError) as info:
        load_rule_file(path)
    assert problem in info.value.one_line()


def test_a_rule_may_leave_out_trailing_optional_inputs(tmp_path):
    cause = 'when = ["lr_rel_at_worst >= 0.9"]\nsignal = "lr"'
    rule = load_rule_file(_rule_file(tmp_path, '["train", "lr"]', cause))
    assert rule.inputs == ("train", "lr")
    assert rule.causes[0].signal == "lr"


# -- lr-schedule against the configured schedule ----------------------------------------


def test_a_constant_rate_where_a_cosine_schedule_is_configured(runner):
    code, run = _check(runner, LOGS / "lr_constant_configured.log")
    assert code == 0
    finding = _finding(run, "lr-schedule")
    assert finding["code"] == "LD307"
    assert finding["severity"] == "warning"
    assert finding["message"].startswith("The learning rate stays at 2e-05 over all")
    assert "scheduler cosine" in finding["message"]
    assert finding["evidence"]["configured_lr"] == pytest.approx(2e-05)
    assert finding["fixes"][0]["title"] == "Check which scheduler is in charge"
    _, run = _check(runner, LOGS / "lr_cosine_configured.log")
    assert "lr-schedule" not in fired(run)


def test_a_peak_far_from_the_configured_rate_in_training_args_yaml(runner):
    _, run = _check(runner, LOGS / "lr_far_from_configured" / "trainer_state.json")
    finding = _finding(run, "lr-schedule")
    assert finding["severity"] == "warning"
    assert finding["message"].startswith(
        "The logged learning rate peaks at 0.001, 50x the configured 2e-05"
    )
    assert finding["evidence"]["peak_lr"] == pytest.approx(1e-3)


def test_without_a_stated_configuration_only_the_zero_checks_apply(runner, tmp_path):
    text = (LOGS / "lr_constant_configured.log").read_text(encoding="utf-8")
    path = tmp_path / "train.log"
    path.write_text(text.split("\n", 1)[1], encoding="utf-8")
    _, run = _check(runner, path)
    assert "lr-schedule" not in fired(run)
    # trainer_log.jsonl beside LLaMA-Factory's training_args.yaml reads it too
    folder = tmp_path / "lf"
    folder.mkdir()
    (folder / "training_args.yaml").write_text("learning_rate: 1.0e-4\n", encoding="utf-8")
    rows = [{"current_steps": 10 * i, "loss": 2.0 - i / 100, "lr": 5e-6} for i in range(1, 40)]
    (folder / "trainer_log.jsonl").write_text(
        "".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8"
    )
    _, run = _check(runner, folder / "trainer_log.jsonl")
    finding = _finding(run, "lr-schedule")
    assert "0.05x the configured 0.0001" in finding["message"]


def test_facts_from_text_reads_arguments_not_logged_values():
    args = (
        "TrainingArguments(\nfp16=True,\nlearning_rate=3e-05,\n"
        "lr_scheduler_type=SchedulerType.LINEAR,\nwarmup_ratio=0.03,\n)"
    )
    assert facts_from_text(args) == {
        "configured_lr": "3e-05",
        "lr_scheduler": "linear",
        "warmup_ratio": "0.03",
        "precision": "fp16",
    }
    # a printed log dict states the rate at a step, not the configured one
    assert facts_from_text("{'loss': 2.3, 'learning_rate': 2e-05, 'epoch': 0.1}") == {}
    assert facts_from_text("TrainingArguments(bf16=True, fp16=False)") == {}
    assert facts_from_text("python train.py --learning_rate 1e-4 --lr_scheduler_type=cosine") == {
        "configured_lr": "1e-4",
        "lr_scheduler": "cosine",
    }
    assert facts_from_text("DeepSpeed using configured LR scheduler = WarmupDecayLR") == {
        "lr_scheduler": "warmupdecaylr"
    }
    # the trainer's cosine is what the run meant, also when DeepSpeed runs its WarmupLR
    overridden = "TrainingArguments(lr_scheduler_type=cosine)\nDeepSpeed LR Scheduler = WarmupLR"
    assert facts_from_text(overridden) == {"lr_scheduler": "cosine"}
    assert facts_from_text("Using 16bit Automatic Mixed Precision (AMP)") == {"precision": "fp16"}
    yaml = "fp16: true\nlearning_rate: 2.0e-05\nlr_scheduler_type: cosine\n"
    assert facts_from_text(yaml) == {"precision": "fp16"}
    assert facts_from_text(yaml, yaml=True)["configured_lr"] == "2.0e-05"


def test_count_overflow_skips_knows_the_loss_scalers_wordings():
    text = "\n".join(
        [
            "Gradient overflow.  Skipping step, loss scaler 0 reducing loss scale to 32768.0",
            "[deepspeed] OVERFLOW! Rank 0 Skipping step. Attempted loss scale: 65536, reducing",
            "NOTE: gradient overflow detected, ignoring gradient, setting loss scale to: 64.0",
            "step 10 loss 2.3",
            "no overflow this time",
        ]
    )
    assert count_overflow_skips(text) == 3


def test_printed_training_arguments_are_configuration_not_points(tmp_path):
    block = (
        "Training/evaluation parameters TrainingArguments(\n_n_gpu=1,\nfp16=True,\n"
        "learning_rate=2e-05,\nlr_scheduler_type=cosine,\nwarmup_steps=30,\n)"
    )
    rows = [
        f"{{'loss': {2.5 - i / 50:.3f}, 'learning_rate': {min(1, (i + 1) / 3) * 2e-5:.6g}, "
        f"'epoch': {(i + 1) / 40:.3f}}}"
        for i in range(40)
    ]
    path = tmp_path / "train.log"
    path.write_text(block + "\n" + "\n".join(rows) + "\n", encoding="utf-8")
    run = read_run(str(path))
    # the lines of the argument dump add no learning-rate point (the warmup starts low)
    assert len(run.series["lr"]) == 40
    assert run.series["lr"].values[0] == pytest.approx(2e-5 / 3, rel=1e-3)
    assert run.series["lr"].meta["configured_lr"] == "2e-05"
    assert run.series["lr"].meta["warmup_steps"] == "30"
    assert run.series["train"].meta["precision"] == "fp16"
    one_line = "Namespace(batch_size=8, learning_rate=0.001, lr=0.001, seed=1)\n" + "\n".join(rows)
    path.write_text(one_line + "\n", encoding="utf-8")
    assert len(read_run(str(path)).series["lr"]) == 40
