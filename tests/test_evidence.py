"""Evidence you can quote: every number, step and exit code in a report is exactly right.

One test (at least) per defect of issue 14; each failed on the code before the fix.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from lossdoctor import synth as curves
from lossdoctor.cli import app
from lossdoctor.engine.evaluate import evaluate
from lossdoctor.engine.loader import load_rules
from lossdoctor.model import Run, Series

from conftest import ROOT, fired, run_json, write_csv, write_curve

EXAMPLES = ROOT / "examples"
RULES = load_rules()


def _finding(run: dict, rule: str) -> dict:
    return next(f for f in run["findings"] if f["rule"] == rule)


# -- numbers and steps ---------------------------------------------------------------


def test_overfitting_checkpoint_is_the_best_logged_evaluation(runner):
    _code, doc = run_json(runner, str(EXAMPLES / "overfitting_trainer_state.json"))
    run = doc["runs"][0]
    finding = _finding(run, "overfitting")
    val = run["series"]["val"]
    # the summary line's best and the finding's checkpoint are the same logged point
    assert val["best_step"] == 2410
    assert finding["evidence"]["start_step"] == 2410
    assert finding["evidence"]["best_value"] == val["best"]
    assert "step 2410" in finding["message"]
    # the smoothed minimum the decision uses is said, with why
    assert finding["evidence"]["smoothed_best_step"] == 2210
    assert "smoothed minimum" in finding["message"]
    assert "step 2210" in finding["message"]


def test_overfitting_checkpoint_is_a_logged_step_on_any_curve():
    steps, train, val_steps, val = curves.overfitting_pair(rise=0.3)
    val = val.copy()
    lucky = int(np.argmin(val)) + 3  # one lucky evaluation after the smoothed minimum
    val[lucky] = val.min() * 0.97
    series = {
        "train": Series("train", "loss", steps, train),
        "val": Series("val", "val_loss", val_steps, val),
    }
    report = evaluate(Run("t.csv", "test", series), RULES)
    finding = next(f for f in report.findings if f.rule == "overfitting")
    assert finding.evidence["start_step"] == float(val_steps[lucky])
    assert f"Stop at step {val_steps[lucky]:g}" in finding.message or (
        f"checkpoint of step {val_steps[lucky]:g}" in finding.message
    )


def test_overfitting_rise_says_it_is_between_levels_when_the_best_is_the_minimum():
    # the best logged evaluation is also the smoothed minimum: the message said "risen
    # 20% since" the best logged 1.336 while the last logged was 1.646 (+23%), without
    # saying the rise is between smoothed levels
    steps = np.arange(10, 4010, 10, dtype=float)
    train = 3 * np.exp(-steps / 800) + 0.3
    val_steps = np.arange(100, 4100, 100, dtype=float)
    k = val_steps / 100
    val = np.round(2.5 * np.exp(-k / 10) + 1.0 + np.maximum(0, k - 20) * 0.03, 4)
    series = {
        "train": Series("train", "loss", steps, train),
        "val": Series("val", "val_loss", val_steps, val),
    }
    report = evaluate(Run("t.csv", "test", series), RULES)
    finding = next(f for f in report.findings if f.rule == "overfitting")
    numbers = finding.evidence
    assert numbers["start_step"] == 2100
    assert numbers["best_value"] == pytest.approx(1.3361)
    pct = float(re.search(r"risen (\d+)% since", finding.message).group(1))
    logged_pct = 100 * (val[-1] / numbers["best_value"] - 1)
    assert round(logged_pct) != pct  # the rise is not between the values quoted first
    low, end = numbers["smoothed_best_level"], numbers["end_level"]
    assert round(100 * (end / low - 1)) == pct
    assert f"a rise between levels: {low:.4g} at the minimum" in finding.message
    assert f"and {end:.4g} at the end" in finding.message
    assert f"last logged {val[-1]:.4g}" in finding.message


def test_divergence_ratio_is_the_ratio_of_numbers_in_its_evidence():
    # a loss that explodes to its end: "it ends 1088.0x above its smoothed best level"
    # while the evidence gave best_level=1.976, end_level=1297 (656x) and nothing else
    steps = np.arange(300, dtype=float)
    values = 4.5 * np.exp(-steps / 60) + 1.5 + 0.02 * np.sin(steps)
    values = np.where(steps >= 150, values * np.exp((steps - 150) / 20), values)
    report = evaluate(
        Run("t.log", "test", {"train": Series("train", "loss", steps, values)}), RULES
    )
    finding = next(f for f in report.findings if f.rule == "divergence")
    ratio = float(re.search(r"ends ([\d.]+)x above", finding.message).group(1))
    numbers = finding.evidence
    assert numbers["rise_ratio"] == pytest.approx(ratio, abs=0.05)
    quoted = numbers.get("tail_lowest", numbers["end_level"])
    assert quoted == pytest.approx(float(np.min(values[-numbers.get("tail_points", 1) :])))
    assert quoted / numbers["best_level"] == pytest.approx(ratio, rel=0.01)


def test_flatline_message_quotes_the_logged_first_and_last_values(runner, tmp_path):
    steps, values = curves.flat(level=3.3)
    values = values.copy()
    values[0] = 4.197  # a first value unlike the start level
    path = write_curve(tmp_path / "flat.csv", steps, values)
    _, doc = run_json(runner, str(path))
    message = _finding(doc["runs"][0], "high-flatline")["message"]
    assert "first logged 4.197" in message
    assert f"last logged {values[-1]:.4g}" in message
    assert "smoothed" in message


def test_init_loss_quotes_the_first_logged_value(runner, tmp_path):
    steps, values = curves.healthy()
    values = values * 4
    values[0] = 20.84
    path = write_curve(tmp_path / "init.csv", steps, values)
    _, doc = run_json(runner, "--vocab-size", "100", str(path))
    message = _finding(doc["runs"][0], "init-loss")["message"]
    assert "first logged 20.84" in message
    assert "median of the first three points" in message


def test_smooth_decline_says_its_levels_are_smoothed(runner):
    _, doc = run_json(runner, str(EXAMPLES / "healthy.csv"))
    run = doc["runs"][0]
    message = _finding(run, "smooth-decline")["message"]
    assert "smoothed level" in message
    assert f"first logged {run['series']['train']['first']:.4g}" in message
    assert f"last logged {run['series']['train']['last']:.4g}" in message


def test_chance_language_only_near_ln_n(runner):
    flat = str(EXAMPLES / "flatline.tsv")  # sits at 10.83
    _, far = run_json(runner, "--classes", "10", flat)
    message = _finding(far["runs"][0], "high-flatline")["message"]
    assert "guessing uniformly" not in message
    assert "far above" in message
    assert "check the loss function" in message
    _, near = run_json(runner, "--vocab-size", "50000", flat)  # ln(50000) = 10.82
    assert "guessing uniformly" in _finding(near["runs"][0], "high-flatline")["message"]


def test_steps_are_logged_steps_never_a_mean_of_two(runner):
    # 460 finite points in 200 buckets: the old bucket medians gave "step 180.5"
    _, doc = run_json(runner, str(EXAMPLES / "divergence_nan.csv"))
    finding = _finding(doc["runs"][0], "divergence")
    assert isinstance(finding["evidence"]["start_step"], int)
    assert not re.search(r"step \d+\.\d", finding["message"])
    steps, values = curves.diverging(n=500)
    report = evaluate(
        Run("d.csv", "test", {"train": Series("train", "loss", steps, values)}), RULES
    )
    found = next(f for f in report.findings if f.rule == "divergence")
    assert found.evidence["start_step"] in set(steps.tolist())


def test_epoch_series_speak_of_epochs(runner, tmp_path):
    epochs, train, _, val = curves.epochs_overfitting()
    path = write_csv(tmp_path / "e.csv", {"epoch": epochs, "loss": train, "val_loss": val})
    _, doc = run_json(runner, str(path))
    message = _finding(doc["runs"][0], "overfitting")["message"]
    assert "epoch" in message
    assert "step" not in message


def _two_runs(tmp_path: Path, worse: float = 1.3) -> tuple[str, str]:
    rng = np.random.default_rng(0)
    steps = np.arange(1, 401, dtype=float)
    paths = []
    for name, k in (("ref", 1.0), ("cand", worse)):
        values = 4 * np.exp(-steps / 100) + 0.5 * k + rng.normal(0, 0.02, 400)
        paths.append(str(write_curve(tmp_path / f"{name}.csv", steps, values)))
    return paths[0], paths[1]


def test_compare_says_what_final_and_best_are(runner, tmp_path):
    ref, cand = _two_runs(tmp_path)
    result = runner.invoke(app, ["compare", ref, cand, "-f", "json"])
    checks = {c["check"]: c for c in json.loads(result.stdout)["runs"][0]["comparison"]["checks"]}
    assert "final = median of the last 10% of points" in checks["final"]["message"]
    assert "last logged" in checks["final"]["message"]
    assert "best = lowest level of the trend" in checks["best"]["message"]
    assert "lowest logged" in checks["best"]["message"]
    readme = " ".join((ROOT / "README.md").read_text(encoding="utf-8").split())
    assert "median of the last 10% of points" in readme


def test_evidence_thresholds_use_the_configuration_names(runner):
    _, doc = run_json(runner, str(EXAMPLES / "spikes.jsonl"))
    thresholds = _finding(doc["runs"][0], "spikes")["evidence"]["thresholds"]
    rule = next(r for r in RULES if r.name == "spikes")
    assert "large_ratio" in thresholds
    assert set(thresholds) <= set(rule.thresholds)
    explained = runner.invoke(app, ["rules", "explain", "spikes"]).stdout
    assert "large_ratio" in explained


# -- exit codes and outputs ----------------------------------------------------------


@pytest.mark.parametrize("how", ["compare", "baseline"])
def test_regression_is_a_failure_in_every_ci_format(runner, tmp_path, how):
    ref, cand = _two_runs(tmp_path)
    base = ["compare", ref, cand] if how == "compare" else ["check", cand, "--baseline", ref]
    outputs = {name: tmp_path / f"out.{name}" for name in ("junit", "gitlab", "github", "markdown")}
    args = [*base, *(a for n, p in outputs.items() for a in ("-f", f"{n}:{p}"))]
    result = runner.invoke(app, args)
    assert result.exit_code == 1
    root = ET.fromstring(outputs["junit"].read_text())
    assert int(root.get("failures", "0")) >= 1
    gitlab = json.loads(outputs["gitlab"].read_text())
    assert any(i["check_name"] == "LD601 baseline-regression" for i in gitlab)
    assert "::error" in outputs["github"].read_text()
    assert "**Fails the check**" in outputs["markdown"].read_text()


def test_junit_evidence_of_a_regression_holds_plain_numbers(runner, tmp_path):
    # the speed check's steps were numpy scalars: "'reference_steps': np.float64(1680.0)"
    ref, cand = _two_runs(tmp_path)
    out = tmp_path / "out.xml"
    result = runner.invoke(app, ["check", cand, "--baseline", ref, "-f", f"junit:{out}"])
    assert result.exit_code == 1
    body = "".join(ET.fromstring(out.read_text()).itertext())
    assert "'check': 'speed'" in body
    assert "np." not in body


def test_every_emitted_rule_is_documented(runner):
    from lossdoctor.compare import RULE_CODE, RULE_NAME
    from lossdoctor.live.monitor import STALL_CODE, STALL_RULE

    listed = runner.invoke(app, ["rules", "list"]).stdout
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for code, name in ((RULE_CODE, RULE_NAME), (STALL_CODE, STALL_RULE)):
        assert code in listed
        assert name in listed
        explained = runner.invoke(app, ["rules", "explain", name])
        assert explained.exit_code == 0
        assert code in explained.stdout
        assert f"| {code} | `{name}` |" in readme


def test_good_news_never_fails_a_run(runner, tmp_path):
    healthy = str(EXAMPLES / "healthy.csv")
    junit = tmp_path / "j.xml"
    result = runner.invoke(app, ["check", "--fail-on", "info", "-f", f"junit:{junit}", healthy])
    assert result.exit_code == 0
    assert ET.fromstring(junit.read_text()).get("failures") == "0"
    _, doc = run_json(runner, healthy)
    assert _finding(doc["runs"][0], "smooth-decline").get("positive") is True


def test_info_findings_that_fail_the_run_are_failures_in_ci_formats(runner, tmp_path):
    spikes = str(EXAMPLES / "spikes.jsonl")
    gitlab = tmp_path / "g.json"
    result = runner.invoke(app, ["check", "--fail-on", "info", "-f", f"gitlab:{gitlab}", spikes])
    assert result.exit_code == 1
    names = {i["check_name"] for i in json.loads(gitlab.read_text())}
    assert "LD402 no-validation" in names  # an info finding that drives the exit code
    assert "LD303 smooth-decline" not in names


@pytest.mark.parametrize(
    ("level", "words"),
    [(1.11, "between"), (0.75, "in the typical range"), (7.0, "above every"), (0.1, "below")],
)
def test_profile_places_every_final_loss(runner, tmp_path, level, words):
    steps = np.arange(1, 401, dtype=float)
    path = write_curve(tmp_path / "p.csv", steps, level + 2 * np.exp(-steps / 50))
    _, doc = run_json(runner, "--profile", "slm-finetune", str(path))
    message = _finding(doc["runs"][0], "loss-band")["message"]
    assert words in message
    assert f"{level:.3g}" in message


def _cli_with_closed_stdout(*args: str) -> tuple[int, bytes]:
    env = {**os.environ, "NO_COLOR": "1"}
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before lossdoctor writes a byte
    proc = subprocess.run(
        [sys.executable, "-m", "lossdoctor", *args], stdout=write_end, stderr=subprocess.PIPE,
        env=env, check=False,
    )  # fmt: skip
    os.close(write_end)
    return proc.returncode, proc.stderr


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_a_closed_stdout_keeps_the_diagnosis_exit_code(fmt):
    healthy, flat = str(EXAMPLES / "healthy.csv"), str(EXAMPLES / "flatline.tsv")
    assert _cli_with_closed_stdout("check", "-f", fmt, healthy, healthy) == (0, b"")
    code, _ = _cli_with_closed_stdout("check", "-f", fmt, flat)
    assert code == 1


def test_check_help_lists_every_format(runner):
    from lossdoctor.cli import FORMATS

    text = runner.invoke(app, ["check", "--help"], terminal_width=200).stdout
    for name in FORMATS:
        assert name in text


def test_a_report_never_overwrites_an_input_file(runner, tmp_path):
    log = tmp_path / "run.csv"
    log.write_bytes((EXAMPLES / "healthy.csv").read_bytes())
    before = log.read_bytes()
    result = runner.invoke(app, ["check", "-f", f"json:{log}", str(log)])
    assert result.exit_code == 2
    assert "refusing to write" in result.stderr
    assert log.read_bytes() == before
    plot = runner.invoke(app, ["check", "--plot", str(log), str(log)])
    assert plot.exit_code == 2
    assert log.read_bytes() == before


def test_a_report_path_in_a_missing_folder_is_created_as_documented(runner, tmp_path):
    target = tmp_path / "reports" / "ci" / "lossdoctor.json"
    result = runner.invoke(app, ["check", "-f", f"json:{target}", str(EXAMPLES / "healthy.csv")])
    assert result.exit_code == 0
    assert target.exists()
    readme = " ".join((ROOT / "README.md").read_text(encoding="utf-8").split())
    assert "missing folders are created" in readme


def _tb_export(path: Path) -> Path:
    steps = np.arange(1, 101) * 10
    rows = "".join(f"{1000 + i},{s},{1 + 2 * np.exp(-i / 50):.4f}\n" for i, s in enumerate(steps))
    path.write_text("Wall time,Step,Value\n" + rows)
    return path


def test_val_col_wins_on_a_single_series_file(runner, tmp_path):
    path = _tb_export(tmp_path / "export.csv")
    _, doc = run_json(runner, "--val-col", "Value", str(path))
    run = doc["runs"][0]
    assert list(run["series"]) == ["val"]
    assert "no-validation" not in fired(run)


def test_a_validation_export_is_read_as_validation(runner, tmp_path):
    for name in ("run-x-tag-val_loss.csv", "run-validation-tag-epoch_loss.csv"):
        _, doc = run_json(runner, str(_tb_export(tmp_path / name)))
        run = doc["runs"][0]
        assert list(run["series"]) == ["val"], name
        assert "no-validation" not in fired(run)
    _, doc = run_json(runner, str(_tb_export(tmp_path / "run-x-tag-loss.csv")))
    assert list(doc["runs"][0]["series"]) == ["train"]


def test_readme_samples_are_the_real_outputs():
    from test_docs import update_readme_module

    module = update_readme_module()
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    samples = module._SAMPLE.findall(text)
    assert len(samples) >= 3
    for match in module._SAMPLE.finditer(text):
        block = match.group(0)
        expected = module.sample(match["args"])
        assert expected in block, f"README sample '{match['args']}' drifted: run update_readme"


def test_readme_watch_and_run_samples_are_real_runs():
    # watch and run need a real pipe and a real child process: their samples are shell
    # commands run from the repository root (a training script that logs a NaN at 140)
    from test_docs import update_readme_module

    module = update_readme_module()
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    commands = [m["command"] for m in module._SHELL.finditer(text)]
    assert any("lossdoctor watch" in c for c in commands)
    assert any("lossdoctor run" in c for c in commands)
    for match in module._SHELL.finditer(text):
        expected = module.shell_sample(match["command"])
        assert expected in match.group(0), f"README sample '{match['command']}' drifted"
        if "train_tiny" in match["command"]:
            assert (
                "error LD101 non-finite: The train loss became non-finite at step 140" in expected
            )
        else:  # a sweep on stdin: one run ends after the other, one row per trial
            assert "[trial_id=lr_1e-4] run ended at step 3000: healthy" in expected
            assert "- [trial_id=lr_1e-2]  failing" in expected
    run = module.shell_sample(next(c for c in commands if "lossdoctor run" in c))
    assert "(pid PID): error LD101 non-finite" in run
    assert run.rstrip("`\n").endswith("— sending SIGINT")


# -- files that hold several runs or sessions ----------------------------------------


def _tb_json(path: Path, sessions: list[tuple[int, int, float]]) -> Path:
    """Write a TensorBoard JSON export of ``sessions`` (first step, last step, scale),
    an hour apart, interleaved by step as an export of several event files is."""
    rows, wall = [], 0.0
    for first, last, scale in sessions:
        for step in range(first, last, 10):
            rows.append([wall, step, scale * (0.5 + 4 * np.exp(-step / 500))])
            wall += 5
        wall += 3600
    rows.sort(key=lambda r: r[1])
    path.write_text(json.dumps(rows))
    return path


def test_tensorboard_sessions_resumed_are_one_run(runner, tmp_path):
    path = _tb_json(tmp_path / "loss.json", [(0, 1000, 1.0), (800, 2000, 1.0), (1800, 3000, 1.0)])
    _, doc = run_json(runner, str(path))
    run = doc["runs"][0]
    assert run["series"]["train"]["points"] == 300  # 100 + 120 + 120, replaced from 800, 1800
    assert any("3 sessions" in n and "one resumed run" in n for n in run["notes"])


def test_tensorboard_sessions_restarted_are_separate_runs(runner, tmp_path):
    path = _tb_json(tmp_path / "loss.json", [(0, 1000, 1.5), (0, 1500, 1.0)])
    _, doc = run_json(runner, str(path))
    first, second = doc["runs"]  # one report per run from scratch, in the logged order
    assert (first["group"], second["group"]) == ("session 1 of 2", "session 2 of 2")
    assert first["series"]["train"]["points"] == 100
    assert first["series"]["train"]["first"] == pytest.approx(6.75)
    assert second["series"]["train"]["points"] == 150
    assert second["series"]["train"]["first"] == pytest.approx(4.5)
    assert any("separate run" in n and "each run from scratch" in n for n in second["notes"])


def test_merge_judges_train_and_validation_files_as_one_run(runner, tmp_path):
    steps = np.arange(0, 30)
    train = 0.5 + 2 * np.exp(-steps / 5)
    val = 0.9 + 2 * np.exp(-np.minimum(steps, 10) / 5) + 0.05 * np.maximum(steps - 10, 0)
    a = write_curve(tmp_path / "train.csv", steps, train)
    b = write_curve(tmp_path / "val.csv", steps, val, name="val_loss")
    _, doc = run_json(runner, "--merge", str(a), str(b))
    assert len(doc["runs"]) == 1
    run = doc["runs"][0]
    assert set(run["series"]) == {"train", "val"}
    assert "overfitting" in fired(run)


def test_tensorboard_train_and_validation_exports_are_paired(runner, tmp_path):
    steps = np.arange(0, 30)
    for run_name, values in (
        ("train", 0.5 + 2 * np.exp(-steps / 5)),
        (
            "validation",
            0.9 + 2 * np.exp(-np.minimum(steps, 10) / 5) + 0.05 * np.maximum(steps - 10, 0),
        ),
    ):
        rows = "".join(f"{1000 + s},{s},{v:.4f}\n" for s, v in zip(steps, values, strict=True))
        (tmp_path / f"run-{run_name}-tag-epoch_loss.csv").write_text(
            "Wall time,Step,Value\n" + rows
        )
    paths = [str(tmp_path / f"run-{r}-tag-epoch_loss.csv") for r in ("validation", "train")]
    _, doc = run_json(runner, *paths)
    assert len(doc["runs"]) == 1
    assert set(doc["runs"][0]["series"]) == {"train", "val"}
    assert "overfitting" in fired(doc["runs"][0])


def test_tensorboard_sessions_with_a_fresh_step_counter_are_one_training(runner, tmp_path):
    # the second session counts from 0 again but its loss goes on from where it was
    rows, wall = [], 0.0
    for step in range(0, 1000, 10):
        rows.append([wall, step, 0.5 + 4 * np.exp(-step / 300)])
        wall += 5
    wall += 3600
    for step in range(0, 1000, 10):
        rows.append([wall, step, 0.5 + 4 * np.exp(-(step + 1000) / 300)])
        wall += 5
    rows.sort(key=lambda r: r[1])
    path = tmp_path / "loss.json"
    path.write_text(json.dumps(rows))
    _, doc = run_json(runner, str(path))
    train = doc["runs"][0]["series"]["train"]
    assert train["points"] == 200
    assert train["first"] == pytest.approx(4.5)
    assert train["last"] == pytest.approx(0.5 + 4 * np.exp(-1990 / 300), rel=1e-4)
    assert train["last_step"] == 1990


def test_real_tensorboard_json_of_several_sessions(runner):
    path = (
        ROOT.parent / "shared" / "corpus" / "real" / "tb_json" / "attention-ocr_tb-loss-json.json"
    )
    if not path.exists():
        pytest.skip("../shared corpus not present")
    _, doc = run_json(runner, str(path))
    run = doc["runs"][0]
    assert run["series"]["train"]["first"] == pytest.approx(2.84167, rel=1e-4)  # not 0.006771
    assert run["series"]["train"]["last"] < run["series"]["train"]["first"]
    assert any("4 sessions" in n for n in run["notes"])


def test_spike_evidence_names_the_measure_its_conditions_name(runner):
    # 'rules explain spikes' says "max_ratio >= large_ratio": the evidence has both names
    _, doc = run_json(runner, str(EXAMPLES / "spikes.jsonl"))
    spikes = _finding(doc["runs"][0], "spikes")
    assert spikes["evidence"]["max_ratio"] == pytest.approx(4.688, abs=1e-3)
    assert "peak_ratio" not in spikes["evidence"]
    assert spikes["evidence"]["thresholds"]["large_ratio"] == 1.5
    explained = runner.invoke(app, ["rules", "explain", "spikes"], terminal_width=200).stdout
    assert "max_ratio >= large_ratio" in explained


def test_comparison_steps_are_integers_as_logged(runner):
    result = runner.invoke(
        app,
        ["check", "-f", "json", "--baseline", str(EXAMPLES / "healthy.csv"),
         str(EXAMPLES / "plateau_metrics.csv")],
    )  # fmt: skip
    checks = json.loads(result.stdout)["runs"][0]["comparison"]["checks"]
    first = next(c for c in checks if c["check"] == "first-loss")
    assert first["step"] == 10
    assert isinstance(first["step"], int)
