"""Logs that hold several runs (issue 14): one report per run of a group column
(``--group-by``, or a column named like ``trial_id``/``run``/``version``) and one per
session started from scratch; a session that resumes (the loss goes on) stays one run.
Each test failed on the code before: it kept the last run only, with a note."""

from __future__ import annotations

import csv
import io
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from lossdoctor import synth as curves
from lossdoctor.cli import app

from conftest import ROOT, fired, run_json

EXAMPLES = ROOT / "examples"


def _sweep(path: Path, column: str = "trial_id", names: tuple[str, ...] = ()) -> Path:
    """Write a sweep of three trials appended in one CSV: the second one blows up (NaN
    from its 150th point); ``names``: the trials' names in ``column``."""
    names = names or ("lr_1e-4", "lr_3e-3", "lr_1e-3")
    rows = [f"{column},step,loss"]
    for index, name in enumerate(names):
        _, values = curves.healthy(n=200, seed=30 + index)
        values = values.copy()
        if index == 1:
            values[150:] = np.nan
        rows += [f"{name},{(i + 1) * 10},{v:.5g}" for i, v in enumerate(values)]
    path.write_text("\n".join(rows) + "\n")
    return path


def test_a_trial_id_column_gives_one_report_per_trial(runner, tmp_path):
    code, doc = run_json(runner, str(_sweep(tmp_path / "sweep.csv")))
    assert code == 1  # the worst trial's
    runs = doc["runs"]
    assert [r["group"] for r in runs] == [
        "trial_id=lr_1e-4",
        "trial_id=lr_3e-3",
        "trial_id=lr_1e-3",
    ]
    assert [r["verdict"] for r in runs] == ["healthy", "failing", "healthy"]
    assert all(r["source"] == str(tmp_path / "sweep.csv") for r in runs)
    blown = runs[1]
    assert fired(blown)["non-finite"] == "error"
    nan = next(f for f in blown["findings"] if f["rule"] == "non-finite")
    assert nan["evidence"]["start_step"] == 1510  # the 151st point of that trial, as logged
    assert nan["evidence"]["line"] == 2 + 200 + 150  # its line in the file
    assert all(r["series"]["train"]["points"] == 200 for r in runs)
    assert any("one of 3 runs in this log by its 'trial_id' column" in n for n in blown["notes"])


def test_every_output_names_the_run_of_each_report(runner, tmp_path):
    path = _sweep(tmp_path / "sweep.csv")
    result = runner.invoke(
        app, ["check", "-f", "junit", "-f", f"summary-csv:{tmp_path / 's.csv'}", str(path)]
    )
    assert result.exit_code == 1
    suites = ET.fromstring(result.stdout).findall("testsuite")
    assert [s.get("name") for s in suites] == [
        f"{path} [trial_id={n}]" for n in ("lr_1e-4", "lr_3e-3", "lr_1e-3")
    ]
    assert [s.get("failures") for s in suites] == ["0", "1", "0"]
    rows = list(csv.DictReader(io.StringIO((tmp_path / "s.csv").read_text())))
    assert [(r["run"], r["verdict"]) for r in rows] == [
        (f"{path} [trial_id=lr_1e-4]", "healthy"),
        (f"{path} [trial_id=lr_3e-3]", "failing"),
        (f"{path} [trial_id=lr_1e-3]", "healthy"),
    ]
    github = runner.invoke(app, ["check", "-f", "github", str(path)])
    assert f"::error file={path},line=352" in github.stdout
    assert "::[trial_id=lr_3e-3] The train loss became non-finite at step 1510" in github.stdout
    text = runner.invoke(app, ["check", "-f", "summary", str(path)], terminal_width=120)
    assert f"{path} [trial_id=lr_3e-3]  failing" in text.stdout  # brackets are not markup


def test_group_by_names_any_column_and_none_turns_grouping_off(runner, tmp_path):
    path = _sweep(tmp_path / "sweep.csv", column="config", names=("small", "big", "wide"))
    code, doc = run_json(runner, str(path))  # 'config' is no run-id name: no grouping ...
    assert [r.get("group") for r in doc["runs"]] == [
        "session 1 of 3",
        "session 2 of 3",
        "session 3 of 3",
    ]  # ... but each trial's steps start again at 10 with the loss back up: sessions
    code, doc = run_json(runner, "--group-by", "config", str(path))
    assert code == 1
    assert [r["group"] for r in doc["runs"]] == ["config=small", "config=big", "config=wide"]
    auto = _sweep(tmp_path / "auto.csv")
    _, doc = run_json(runner, "--group-by", "none", str(auto))
    assert [r["group"] for r in doc["runs"]] == [
        "session 1 of 3",
        "session 2 of 3",
        "session 3 of 3",
    ]


def test_group_by_a_missing_column_is_a_one_line_error(runner, tmp_path):
    path = _sweep(tmp_path / "sweep.csv")
    result = runner.invoke(app, ["check", "--group-by", "trial", str(path)])
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [
        f"lossdoctor: {path}: --group-by 'trial' is not a column (columns: trial_id, step, "
        "loss); did you mean 'trial_id'?"
    ]


def test_group_column_in_json_lines_and_in_the_settings_file(runner, tmp_path):
    lines = []
    for run_id, (_, values) in ((7, curves.healthy(n=120, seed=7)), (8, curves.diverging(n=120))):
        lines += [
            json.dumps({"version": run_id, "step": i, "loss": float(v)})
            for i, v in enumerate(values)
        ]
    path = tmp_path / "log.jsonl"
    path.write_text("\n".join(lines) + "\n")
    _, doc = run_json(runner, str(path))
    assert [r["group"] for r in doc["runs"]] == ["version=7", "version=8"]
    assert doc["runs"][0]["verdict"] == "healthy"
    assert doc["runs"][1]["verdict"] == "failing"
    config = tmp_path / "lossdoctor.toml"
    config.write_text('[columns]\ngroup = "none"\n')
    _, doc = run_json(runner, "--config", str(config), str(path))
    assert len(doc["runs"]) == 2
    assert doc["runs"][0]["group"] == "session 1 of 2"


def test_a_large_sweep_table_keeps_its_text_run_names(runner, tmp_path):
    # over 1 MiB: parsed by pandas in chunks, the run names kept as text
    names = tuple(f"trial_{k:03d}" for k in range(60))
    rows = ["run_name,step,loss"]
    for k, name in enumerate(names):
        _, values = curves.healthy(n=800, seed=k)
        rows += [f"{name},{(i + 1) * 5},{v:.6f}" for i, v in enumerate(values)]
    path = tmp_path / "big.csv"
    path.write_text("\n".join(rows) + "\n")
    assert path.stat().st_size > 1 << 20
    _, doc = run_json(runner, str(path))
    assert [r["group"] for r in doc["runs"]] == [f"run_name={n}" for n in names]
    assert {r["series"]["train"]["points"] for r in doc["runs"]} == {800}


def test_runs_started_from_scratch_in_one_file_are_reported_each(runner, tmp_path):
    _, first = curves.diverging(n=150, seed=3, factor=6.0)
    _, second = curves.healthy(n=200, seed=4)
    rows = ["step,loss"] + [f"{i * 10},{v:.5g}" for i, v in enumerate(first)]
    rows += [f"{i * 10},{v:.5g}" for i, v in enumerate(second)]
    path = tmp_path / "appended.csv"
    path.write_text("\n".join(rows) + "\n")
    code, doc = run_json(runner, str(path))
    assert code == 1  # the first session diverged: it is no longer dropped
    one, two = doc["runs"]
    assert (one["group"], two["group"]) == ("session 1 of 2", "session 2 of 2")
    assert (one["verdict"], two["verdict"]) == ("failing", "healthy")
    assert one["series"]["train"]["points"] == 150
    assert two["series"]["train"]["first"] == pytest.approx(float(f"{second[0]:.5g}"))
    assert any(
        "a run from scratch started at line 152 (step 0)" in n and "judged on its own" in n
        for n in two["notes"]
    )


def test_a_resume_with_a_fresh_step_counter_stays_one_run(runner, tmp_path):
    _, values = curves.healthy(n=300, seed=5)
    rows = ["step,loss"] + [f"{i * 10},{v:.5g}" for i, v in enumerate(values[:150])]
    rows += [f"{i * 10},{v:.5g}" for i, v in enumerate(values[150:])]  # counter from 0 again
    path = tmp_path / "resumed.csv"
    path.write_text("\n".join(rows) + "\n")
    _code, doc = run_json(runner, str(path))
    (run,) = doc["runs"]
    assert "group" not in run
    train = run["series"]["train"]
    assert train["points"] == 300
    assert (train["first_step"], train["last_step"]) == (0, 2990)  # shifted to follow on
    assert any("the same training resumed; its steps shifted by 1500" in n for n in run["notes"])


def test_baseline_compares_each_run_of_a_sweep(runner, tmp_path):
    path = _sweep(tmp_path / "sweep.csv")
    reference = tmp_path / "reference.csv"
    _, values = curves.healthy(n=200, seed=30)
    reference.write_text(
        "step,loss\n" + "".join(f"{(i + 1) * 10},{v:.5g}\n" for i, v in enumerate(values))
    )
    _, doc = run_json(runner, "--baseline", str(reference), str(path))
    compared = [r["comparison"] for r in doc["runs"]]
    # each trial against the reference, with its own curve: the first is the same curve
    first = {c["check"]: c for c in compared[0]["checks"]}
    assert first["final"]["passed"]
    assert first["final"]["ratio"] == 1.0
    third = {c["check"]: c for c in compared[2]["checks"]}
    assert third["first-loss"]["candidate_first"] == doc["runs"][2]["series"]["train"]["first"]
    assert third["first-loss"]["candidate_first"] != first["first-loss"]["candidate_first"]


def test_the_sweep_example(runner):
    result = runner.invoke(app, ["check", "-f", "json", str(EXAMPLES / "sweep_trials.csv")])
    assert result.exit_code == 1
    runs = json.loads(result.stdout)["runs"]
    assert [(r["group"], r["verdict"]) for r in runs] == [
        ("trial_id=lr_1e-4", "healthy"),
        ("trial_id=lr_1e-3", "healthy"),
        ("trial_id=lr_1e-2", "failing"),
    ]
    assert fired(runs[2])["divergence"] == "error"


def test_the_json_report_of_a_sweep_matches_the_schema(runner, tmp_path):
    import jsonschema

    schema = json.loads((ROOT / "lossdoctor" / "schema" / "report.schema.json").read_text())
    _, doc = run_json(runner, str(_sweep(tmp_path / "sweep.csv")))
    jsonschema.validate(doc, schema)
    assert doc["runs"][1]["group"] == "trial_id=lr_3e-3"


def test_a_validation_counter_of_its_own_is_no_new_session(runner, tmp_path):
    # Lightning logs the validation loop's own step counter (0, 1, 2, ...) in the step
    # column: the training loss's steps never go back, so this is one run
    rows = ["step,train_loss_step,val_loss_step"]
    _, values = curves.healthy(n=300, seed=9)
    for i, v in enumerate(values):
        step = 49 + 50 * i
        rows.append(f"{step},{v:.5g},")
        if i % 30 == 29:
            rows += [f"{k + i},,{v * 1.1:.5g}" for k in range(3)]  # the validation loop
    path = tmp_path / "metrics.csv"
    path.write_text("\n".join(rows) + "\n")
    _, doc = run_json(runner, str(path))
    (run,) = doc["runs"]
    assert "group" not in run
    assert run["series"]["train"]["points"] == 300


def test_session_levels_near_the_float_limit_neither_overflow_nor_warn():
    from lossdoctor.ingest.sessions import level

    # the mean of the two middle values would overflow to inf (and warn, an error here)
    assert level(np.array([-1.0, 9e307, 9e307, 9e307])) == 9e307
    assert level(np.array([-1.0, 2.0, 4.0, 8.0])) == 3.0  # the usual median otherwise
    assert level(np.array([1.0, np.e**2])) == pytest.approx(1.0)  # of the logs when positive


FIXTURES = ROOT / "tests" / "fixtures"


def test_a_header_repeated_by_an_appended_log_is_named_as_such(runner, tmp_path):
    # Two CSVLogger fits appended to one file write the header again: the note said
    # "'loss': 1 cells that are not numbers were skipped" (it is the header's cell)
    first = "\n".join(f"{e},{2.2 * 0.85**e:.4f},{2.4 * 0.86**e:.4f}" for e in range(20))
    second = "\n".join(f"{e},{1.9 * 0.88**e:.4f},{2.1 * 0.88**e:.4f}" for e in range(15))
    path = tmp_path / "keras.csv"
    header = "epoch,loss,val_loss"
    path.write_text(f"{header}\n{first}\n{header}\n{second}\n", encoding="utf-8")
    code, doc = run_json(runner, str(path))
    assert code == 0
    notes = [n for r in doc["runs"] for n in r["notes"]]
    assert "1 line repeats the header (logs appended to one file): skipped (line 22)" in notes
    assert not any("cells that are not numbers" in n for n in notes)

    # a cell that is really not a number is still said
    path.write_text(f"{header}\n{first}\n21,oops,0.5\n", encoding="utf-8")
    _code, doc = run_json(runner, str(path))
    assert "'loss': 1 cell that is not a number was skipped" in doc["runs"][0]["notes"]


def test_four_appended_keras_runs_are_four_reports(runner):
    # CSVLogger(append=True): each fit() starts at epoch 0 again.  The third run's first
    # loss (1.072) lies near where the second ended (1.065), but its loss falls through a
    # new early drop (0.764, 0.613): it did not go on from there.  It was read as a resume.
    code, doc = run_json(runner, str(FIXTURES / "keras_appended_runs.csv"))
    assert code == 0
    runs = doc["runs"]
    assert [r["group"] for r in runs] == [f"session {k} of 4" for k in (1, 2, 3, 4)]
    assert [r["series"]["train"]["points"] for r in runs] == [5, 4, 10, 5]
    assert [r["series"]["val"]["first"] for r in runs] == pytest.approx(
        [1.0615, 1.0921, 1.6037, 1.0671], abs=1e-4
    )
    assert [(r["series"]["train"]["first_step"], r["series"]["train"]["last_step"]) for r in runs] == [
        (0, 4), (0, 3), (0, 9), (0, 4)
    ]  # fmt: skip
    third = " ".join(runs[2]["notes"])
    assert (
        "a new run started at line 11 (step 0): its loss does not go on from where the run "
        "before ended (last 1.065, then 1.072, 0.764, 0.6128" in third
    )
    assert not any("resumed" in n for r in runs for n in r["notes"])


def test_a_noisy_resume_with_a_fresh_step_counter_stays_one_run(runner, tmp_path):
    # a per-step language-model loss, noisy, resumed from a checkpoint with steps from 0
    rng = np.random.default_rng(11)
    steps = np.arange(2000)
    values = (2.2 + 8.6 * np.exp(-steps / 150)) * np.exp(rng.normal(0, 0.04, steps.size))
    rows = ["step,loss"] + [
        f"{s},{v:.5g}" for s, v in zip(steps[:1200], values[:1200], strict=True)
    ]
    rows += [f"{s - 1200},{v:.5g}" for s, v in zip(steps[1200:], values[1200:], strict=True)]
    path = tmp_path / "resumed.csv"
    path.write_text("\n".join(rows) + "\n")
    _, doc = run_json(runner, str(path))
    (run,) = doc["runs"]
    assert run["series"]["train"]["points"] == 2000
    assert run["series"]["train"]["last_step"] == 1999
    assert any("the same training resumed" in n for n in run["notes"])


def test_a_sweep_table_in_a_run_folder_gives_one_report_per_run(runner, tmp_path):
    # a Lightning version folder whose metrics.csv holds appended runs, and a sweep table
    # loose in another folder: check DIR gave only the last session of the first
    version = tmp_path / "a" / "lightning_logs" / "version_0"
    version.mkdir(parents=True)
    (version / "metrics.csv").write_bytes((FIXTURES / "keras_appended_runs.csv").read_bytes())
    (tmp_path / "b").mkdir()
    _sweep(tmp_path / "b" / "sweep.csv")
    code, doc = run_json(runner, str(tmp_path))
    assert code == 1  # the sweep's blown-up trial
    names = [(r["source"], r.get("group")) for r in doc["runs"]]
    assert names == [
        *((str(version), f"session {k} of 4") for k in (1, 2, 3, 4)),
        *((str(tmp_path / "b" / "sweep.csv"), f"trial_id={t}") for t in ("lr_1e-4", "lr_3e-3", "lr_1e-3")),
    ]  # fmt: skip
    assert [r["series"]["train"]["points"] for r in doc["runs"][:4]] == [5, 4, 10, 5]
    assert [r["verdict"] for r in doc["runs"][4:]] == ["healthy", "failing", "healthy"]
    assert any("read version_0/metrics.csv" in n for n in doc["runs"][0]["notes"])
    # the folder of one run alone: its runs named by the folder given
    _, doc = run_json(runner, str(tmp_path / "a"))
    assert [(r["source"], r["group"]) for r in doc["runs"]] == [
        (str(tmp_path / "a"), f"session {k} of 4") for k in (1, 2, 3, 4)
    ]


def test_the_summary_of_one_run_says_one_run(runner):
    result = runner.invoke(app, ["check", "-f", "summary", str(EXAMPLES / "healthy.csv")])
    assert result.stdout.splitlines()[-1] == "1 run: 1 healthy"  # was "1 runs"
