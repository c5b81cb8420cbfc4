"""Signals beside the loss: gradient norm, learning rate, resumes, preference and RL runs."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lossdoctor import synth as curves
from lossdoctor.cli import app
from lossdoctor.ingest import read_run, read_source

from conftest import fired, run_json, write_csv

LOGS = Path(__file__).resolve().parent / "cases" / "logs"


def _finding(run, rule):
    return next(f for f in run["findings"] if f["rule"] == rule)


def test_labels_masked_is_a_zero_loss_error_with_its_span(runner):
    code, doc = run_json(runner, str(LOGS / "zero_loss_labels_masked.json"))
    (run,) = doc["runs"]
    assert code == 1
    assert run["verdict"] == "failing"
    finding = _finding(run, "zero-loss")
    assert finding["code"] == "LD104"
    assert finding["severity"] == "error"
    assert finding["evidence"]["zero_points"] == 80
    assert finding["evidence"]["start_step"] == 10
    assert finding["evidence"]["end_step"] == 800
    assert "gradient norm is 0.0" in finding["message"]
    assert finding["fixes"][0]["title"].startswith("Check that the labels are not all masked")
    # a gradient norm of 0.0 means nothing to learn, not a NaN hidden by the logger
    assert "masked-non-finite" not in fired(run)


def test_zero_loss_without_grad_norm_names_both_explanations(runner, tmp_path):
    path = write_csv(tmp_path / "zeros.csv", {"step": np.arange(1, 41), "loss": np.zeros(40)})
    _, doc = run_json(runner, str(path))
    finding = _finding(doc["runs"][0], "zero-loss")
    assert finding["severity"] == "error"
    assert "every label is masked" in finding["message"]
    assert "NaN" in finding["message"]


def test_abrupt_drop_to_zero_is_an_error_and_a_glide_is_not(runner, tmp_path):
    falling = np.r_[np.linspace(2.0, 1.5, 50), np.zeros(20)]
    path = write_csv(tmp_path / "drop.csv", {"step": np.arange(70), "loss": falling})
    _, doc = run_json(runner, str(path))
    finding = _finding(doc["runs"][0], "zero-loss")
    assert finding["severity"] == "error"
    assert finding["evidence"]["longest_zero_run"] == 20
    assert "drops from 1.5" in finding["message"]
    _, doc = run_json(runner, str(LOGS / "zero_loss_rounded.json"))
    assert doc["runs"][0]["verdict"] == "healthy"


def test_fp16_overflow_is_an_error_and_skipped_steps_are_not(runner):
    code, doc = run_json(runner, str(LOGS / "fp16_overflow.json"))
    run = doc["runs"][0]
    assert code == 1
    finding = _finding(run, "non-finite-grad-norm")
    assert finding["severity"] == "error"
    assert finding["evidence"]["start_step"] == 700
    assert finding["evidence"]["non_finite"] == 51
    assert finding["fixes"][0]["title"] == "Use bf16 instead of fp16"
    assert fired(run)["masked-non-finite"] == "error"
    code, doc = run_json(runner, str(LOGS / "fp16_skipped_steps.json"))
    run = doc["runs"][0]
    assert code == 0
    assert run["verdict"] == "healthy"
    skipped = _finding(run, "non-finite-grad-norm")
    assert skipped["severity"] == "info"
    assert skipped["evidence"]["non_finite"] == 2
    assert skipped["evidence"]["start_step"] == 310


def test_clear_grad_norm_spike_warns_and_noise_does_not(runner):
    _, doc = run_json(runner, str(LOGS / "grad_norm_clear_spike.log"))
    finding = _finding(doc["runs"][0], "grad-norm-spikes")
    assert finding["severity"] == "warning"
    assert finding["code"] == "LD205"
    assert finding["evidence"]["spikes"] == 1
    assert finding["evidence"]["max_score"] > 50
    assert finding["evidence"]["with_loss_spike"] == 0
    _, doc = run_json(runner, str(LOGS / "grad_norm_noisy_healthy.log"))
    assert "grad-norm-spikes" not in fired(doc["runs"][0])
    assert doc["runs"][0]["verdict"] == "healthy"


def test_grad_norm_co_spike_with_the_loss_is_counted(runner, tmp_path):
    steps, loss = curves.healthy(400)
    grad = np.full(400, 1.0) * np.exp(np.random.default_rng(0).normal(0, 0.1, 400))
    loss[250] *= 3.0
    grad[250] *= 12.0
    path = write_csv(tmp_path / "co.csv", {"step": steps, "loss": loss, "grad_norm": grad})
    _, doc = run_json(runner, str(path))
    run = doc["runs"][0]
    finding = _finding(run, "grad-norm-spikes")
    assert finding["evidence"]["with_loss_spike"] == 1
    assert finding["evidence"]["start_step"] == steps[250]
    assert finding["severity"] == "info"
    assert fired(run)["spikes"] == "warning"


def test_zero_learning_rate(runner):
    code, doc = run_json(runner, str(LOGS / "lr_zero_throughout.json"))
    assert code == 1
    finding = _finding(doc["runs"][0], "lr-schedule")
    assert finding["severity"] == "error"
    assert "0 at every one of its 60 logged points" in finding["message"]
    _, doc = run_json(runner, str(LOGS / "lr_zero_first_logs.json"))
    finding = _finding(doc["runs"][0], "lr-schedule")
    assert finding["severity"] == "warning"
    assert finding["evidence"]["zero_at_start"] == 12
    assert "first non-zero at step 130" in finding["message"]
    _, doc = run_json(runner, str(LOGS / "lr_warmup_from_zero.json"))
    assert "lr-schedule" not in fired(doc["runs"][0])


def test_loss_reset_to_the_initial_level(runner):
    _, doc = run_json(runner, str(LOGS / "reset_to_init.log"))
    run = doc["runs"][0]
    finding = _finding(run, "loss-reset")
    assert finding["severity"] == "error"
    assert finding["evidence"]["start_step"] == 1200
    assert "stayed at a median of 10.79" in finding["message"]
    assert finding["evidence"]["first_value"] == 10.9003
    # the reset explains the divergence and the level shift it looks like
    explained = {f["rule"]: f.get("superseded_by") for f in run["findings"]}
    assert explained.get("level-shift") == "loss-reset"
    assert explained.get("divergence") in (None, "loss-reset")


def test_loss_reset_to_chance_with_vocab_size(runner, tmp_path):
    steps = np.arange(1, 601, dtype=float)
    loss = np.r_[np.linspace(10.8, 4.0, 300), np.full(300, 10.9)]
    path = write_csv(tmp_path / "reset.csv", {"step": steps, "loss": loss})
    _, doc = run_json(runner, "--vocab-size", "50257", str(path))
    finding = _finding(doc["runs"][0], "loss-reset")
    assert finding["severity"] == "error"
    assert finding["evidence"]["start_step"] == 301


def test_resume_without_state_is_a_jump_at_the_resume_step(runner):
    run = read_run(str(LOGS / "resume_jump.log"))
    assert run.series["train"].meta["resumed_at"] == "500"
    _, doc = run_json(runner, str(LOGS / "resume_jump.log"))
    finding = _finding(doc["runs"][0], "resume-jump")
    assert finding["severity"] == "warning"
    assert finding["evidence"]["start_step"] == 500
    assert finding["evidence"]["jumps"] == 1
    assert "resumed at step 500" in finding["message"]
    _, doc = run_json(runner, str(LOGS / "resume_clean.log"))
    clean = _finding(doc["runs"][0], "resume-jump")
    assert clean["severity"] == "info"
    assert doc["runs"][0]["verdict"] == "healthy"


def test_a_new_run_in_the_same_file_is_not_a_resume(tmp_path):
    steps = np.r_[np.arange(0, 100), np.arange(0, 100)]
    loss = np.r_[np.linspace(4, 2, 100), np.linspace(4, 2, 100)]
    path = write_csv(tmp_path / "two.csv", {"step": steps, "loss": loss})
    assert "resumed_at" not in read_run(str(path)).series["train"].meta


def test_dpo_at_ln2_is_no_preference_signal(runner):
    code, doc = run_json(runner, str(LOGS / "dpo_at_ln2.log"))
    run = doc["runs"][0]
    assert code == 1
    finding = _finding(run, "preference-chance")
    assert finding["severity"] == "error"
    assert finding["code"] == "LD308"
    assert abs(finding["evidence"]["late_level"] - 0.6931) < 0.001
    assert run["columns"]["preference"] == "rewards/margins"
    # flat by definition: the preference finding explains the flatline
    flat = _finding(run, "high-flatline")
    assert flat["superseded_by"] == "preference-chance"
    _, doc = run_json(runner, str(LOGS / "dpo_learning.log"))
    assert "preference-chance" not in fired(doc["runs"][0])


def test_objective_dpo_applies_to_a_plain_loss_column(runner, tmp_path):
    rng = np.random.default_rng(3)
    loss = 0.6931 + rng.normal(0, 0.0003, 100)
    path = write_csv(tmp_path / "dpo.csv", {"step": np.arange(100), "loss": loss})
    _, doc = run_json(runner, str(path))
    assert "preference-chance" not in fired(doc["runs"][0])
    _, doc = run_json(runner, "--objective", "dpo", str(path))
    assert fired(doc["runs"][0])["preference-chance"] == "error"


def test_rl_run_judges_the_reward_not_the_loss(runner):
    code, doc = run_json(runner, str(LOGS / "grpo_no_signal.log"))
    run = doc["runs"][0]
    assert code == 1
    assert fired(run) == {"reward-trend": "error"}
    finding = _finding(run, "reward-trend")
    assert "96% of the prompt groups" in finding["message"]
    assert any("reinforcement-learning run" in note for note in run["notes"])
    _, doc = run_json(runner, str(LOGS / "grpo_learning.log"))
    run = doc["runs"][0]
    assert run["verdict"] == "healthy"
    assert _finding(run, "reward-trend")["severity"] == "info"


def test_objective_grpo_turns_the_loss_rules_off_and_non_finite_stays_on(runner, tmp_path):
    loss = np.r_[np.zeros(5), np.random.default_rng(4).normal(0, 0.01, 95)]
    loss[60] = np.nan
    path = write_csv(tmp_path / "grpo.csv", {"step": np.arange(100), "loss": loss})
    _, doc = run_json(runner, "--objective", "grpo", str(path))
    run = doc["runs"][0]
    assert set(fired(run)) == {"non-finite"}


def test_unknown_objective_is_a_usage_error(runner, tmp_path):
    path = write_csv(tmp_path / "r.csv", {"step": np.arange(10), "loss": np.linspace(3, 2, 10)})
    result = runner.invoke(app, ["check", "--objective", "dop", str(path)])
    assert result.exit_code == 2
    assert "unknown objective 'dop'" in result.output
    (tmp_path / "lossdoctor.toml").write_text('objective = "grop"\n', encoding="utf-8")
    result = runner.invoke(app, ["check", "--config", str(tmp_path / "lossdoctor.toml"), str(path)])
    assert result.exit_code == 2
    assert "key 'objective'" in result.output
    assert "did you mean 'grpo'" in result.output


def _nanogpt_log(path, losses, header):
    lines = [header] + [
        f"iter {i * 10}: loss {v:.4f}, time 100.00ms, mfu 10.00%" for i, v in enumerate(losses)
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_vocabulary_size_stated_in_the_log_sets_the_chance_level(runner, tmp_path):
    losses = 4.17 * np.exp(-np.linspace(0, 1, 200))
    path = _nanogpt_log(
        tmp_path / "train.log",
        losses,
        "found vocab_size = 65 (inside data/shakespeare_char/meta.pkl)",
    )
    assert read_run(str(path)).series["train"].meta["vocab_size"] == "65"
    _, doc = run_json(runner, str(path))
    run = doc["runs"][0]
    assert any("vocabulary size 65 read from the log" in n for n in run["notes"])
    assert "init-loss" not in fired(run)
    # a first loss far above ln(65) = 4.17 with no --vocab-size given
    _nanogpt_log(tmp_path / "train.log", losses * 3, "found vocab_size = 65 (inside meta.pkl)")
    _, doc = run_json(runner, str(path))
    finding = _finding(doc["runs"][0], "init-loss")
    assert finding["severity"] == "warning"
    assert finding["evidence"]["chance_loss"] == round(np.log(65), 6)


def test_a_fine_tune_that_starts_at_ln_vocab_was_not_pretrained(runner, tmp_path):
    losses = 10.83 * np.exp(-np.linspace(0, 1.5, 200))
    path = _nanogpt_log(tmp_path / "ft.log", losses, "vocab_size: 50257")
    _, doc = run_json(runner, str(path))
    assert "init-loss" not in fired(doc["runs"][0])  # pretraining from scratch: as expected
    _, doc = run_json(runner, "--objective", "sft", str(path))
    finding = _finding(doc["runs"][0], "init-loss")
    assert finding["severity"] == "warning"
    assert "not the pretrained ones" in finding["message"]
    assert finding["fixes"][0]["title"] == "Check that the pretrained weights were loaded"
    # a real fine-tune starts far below ln(V): silent
    _nanogpt_log(tmp_path / "ft.log", losses / 4, "vocab_size: 50257")
    _, doc = run_json(runner, "--objective", "sft", str(path))
    assert "init-loss" not in fired(doc["runs"][0])


def test_trainer_state_reads_the_vocabulary_from_config_json(tmp_path):
    state = LOGS / "lr_warmup_from_zero.json"
    folder = tmp_path / "checkpoint-600"
    folder.mkdir()
    (folder / "trainer_state.json").write_text(state.read_text(encoding="utf-8"))
    (folder / "config.json").write_text('{"model_type": "llama", "vocab_size": 32000}')
    run = read_run(str(folder / "trainer_state.json"))
    assert run.series["train"].meta["vocab_size"] == "32000"


def test_folder_walk_and_file_read_agree_on_the_config_vocabulary(tmp_path):
    # a LoRA output_dir: config.json in the output folder, none in the checkpoint
    state = LOGS / "lr_warmup_from_zero.json"
    out = tmp_path / "out"
    (out / "checkpoint-600").mkdir(parents=True)
    (out / "checkpoint-600" / "trainer_state.json").write_text(state.read_text(encoding="utf-8"))
    (out / "config.json").write_text('{"text_config": {"vocab_size": 151936}}')
    (walked,), files = read_source(str(out))
    named = read_run(str(out / "checkpoint-600" / "trainer_state.json"))
    assert walked.series["train"].meta["vocab_size"] == "151936"
    assert named.series["train"].meta["vocab_size"] == "151936"
    assert any(f.path.endswith("config.json") and "model config" in f.detail for f in files)


def test_unshuffled_data_repeats_every_epoch(runner):
    run = read_run(str(LOGS / "unshuffled_epochs.json"))
    assert run.series["train"].meta["steps_per_epoch"] == "600"
    code, doc = run_json(runner, str(LOGS / "unshuffled_epochs.json"))
    assert code == 0  # a warning: the default --fail-on is error
    finding = _finding(doc["runs"][0], "epoch-periodic")
    assert finding["severity"] == "warning"
    assert finding["code"] == "LD207"
    assert finding["evidence"]["steps_per_epoch"] == 600
    assert finding["evidence"]["epoch_autocorr"] > 0.5
    assert "Shuffle" in finding["message"]
    assert finding["fixes"][0]["title"] == "Shuffle the training data every epoch"


def test_the_epoch_staircase_is_expected_not_a_problem(runner):
    code, doc = run_json(runner, str(LOGS / "epoch_staircase.json"))
    run = doc["runs"][0]
    assert code == 0
    assert run["verdict"] == "healthy"
    finding = _finding(run, "epoch-periodic")
    assert finding["severity"] == "info"
    assert finding["evidence"]["boundary_drops"] == 4
    assert "memorise" in finding["message"]


def test_a_run_in_progress_that_just_hit_an_isolated_fp16_overflow_is_not_warned(tmp_path):
    # the prefix of a healthy fp16 run ending at its skipped step: the whole run says info,
    # so the prefix may not say more
    from lossdoctor.engine.evaluate import evaluate
    from lossdoctor.engine.loader import load_rules
    from lossdoctor.model import Run, Series

    steps = np.arange(1, 61, dtype=float)
    grad = np.ones(60)
    grad[-1] = np.nan
    run = Run(
        "live",
        "test",
        {
            "train": Series("train", "loss", steps, np.linspace(3, 2, 60)),
            "grad_norm": Series("grad_norm", "grad_norm", steps, grad),
        },
    )
    found = {f.rule: f.severity for f in evaluate(run, load_rules()).findings}
    assert found["non-finite-grad-norm"] == "info"
