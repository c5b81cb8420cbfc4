"""The CI gate: configuration, output formats (golden files), exit codes, compare, many runs."""

from __future__ import annotations

import io
import json
import os
import xml.etree.ElementTree as ET
from pathlib import Path

import jsonschema
import pytest

from lossdoctor import synth as curves
from lossdoctor.api import diagnose_many
from lossdoctor.cli import app
from lossdoctor.reporters import github, gitlab, junit, markdown, terminal

from conftest import ROOT, write_curve

GOLDEN = Path(__file__).resolve().parent / "golden"
SCHEMA = json.loads((ROOT / "lossdoctor" / "schema" / "report.schema.json").read_text())
EXAMPLES = ["examples/spikes.jsonl", "examples/overfitting_trainer_state.json", "missing.csv"]


@pytest.fixture
def in_root(monkeypatch):
    monkeypatch.chdir(ROOT)


@pytest.fixture
def report_doc(in_root):
    doc = diagnose_many(EXAMPLES).to_dict()
    doc["version"] = "X"
    return doc


def _golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_text(text, encoding="utf-8")
    assert text == path.read_text(encoding="utf-8"), f"{name} changed: UPDATE_GOLDEN=1 to accept"


def test_json_output_matches_the_schema_and_golden_file(report_doc):
    jsonschema.validate(report_doc, SCHEMA)
    _golden("report.json", json.dumps(report_doc, indent=2) + "\n")


def test_text_output_golden(report_doc):
    buffer = io.StringIO()
    terminal.render(report_doc, buffer, width=100)
    _golden("report.txt", buffer.getvalue())


def test_markdown_output_golden(report_doc):
    text = markdown.render(report_doc)
    assert text.startswith("## lossdoctor")
    _golden("report.md", text)


def test_github_output_golden_and_escaping(report_doc):
    text = github.render(report_doc)
    _golden("report.github.txt", text)
    assert "::warning file=examples/spikes.jsonl,line=551,title=LD201 spikes::" in text
    assert github.escape_data("50% done\nnext\r") == "50%25 done%0Anext%0D"
    assert github.escape_property("a:b,c%") == "a%3Ab%2Cc%25"


def test_github_output_respects_annotation_limits():
    finding = {
        "rule": "spikes",
        "code": "LD201",
        "severity": "error",
        "message": "m",
        "series": "train",
        "evidence": {},
        "fixes": [],
        "causes": [],
    }
    doc = {"runs": [{"source": "a.csv", "verdict": "failing", "findings": [finding] * 25}]}
    lines = github.render(doc).splitlines()
    assert len([x for x in lines if x.startswith("::error")]) == 10
    assert lines[-1] == "::notice title=lossdoctor::15 more findings are in the full report"


def test_junit_output_parses_and_counts(report_doc):
    text = junit.render(report_doc, fail_on="warning")
    _golden("report.junit.xml", text)
    root = ET.fromstring(text)
    suites = root.findall("testsuite")
    assert [s.get("name") for s in suites] == EXAMPLES
    spikes = suites[0]
    failed = [c.get("name") for c in spikes.findall("testcase") if c.find("failure") is not None]
    assert failed == ["LD201 spikes"]
    skipped = [c.get("name") for c in spikes.findall("testcase") if c.find("skipped") is not None]
    assert "LD401 overfitting" in skipped
    assert suites[2].find("testcase/error") is not None
    assert int(root.get("failures")) == 2  # spikes (warning) + overfitting (error)


def test_gitlab_output_golden(report_doc):
    text = gitlab.render(report_doc)
    _golden("report.gitlab.json", text)
    issues = json.loads(text)
    assert {i["severity"] for i in issues} == {"minor", "major", "blocker"}
    assert len({i["fingerprint"] for i in issues}) == len(issues)


# --- exit codes --------------------------------------------------------------------------


def test_exit_codes(runner, in_root):
    assert runner.invoke(app, ["check", "examples/healthy.csv"]).exit_code == 0
    assert runner.invoke(app, ["check", "examples/spikes.jsonl"]).exit_code == 0
    assert (
        runner.invoke(app, ["check", "--fail-on", "warning", "examples/spikes.jsonl"]).exit_code
        == 1
    )
    assert runner.invoke(app, ["check", "examples/flatline.tsv"]).exit_code == 1
    assert runner.invoke(app, ["check", "--exit-zero", "examples/flatline.tsv"]).exit_code == 0
    assert runner.invoke(app, ["check", "missing.csv"]).exit_code == 2
    assert runner.invoke(app, ["check", "--exit-zero", "missing.csv"]).exit_code == 2
    assert runner.invoke(app, ["check", "--no-such-option", "x"]).exit_code == 2


# --- configuration -----------------------------------------------------------------------


def _project(tmp_path: Path, config: str, name: str = "pyproject.toml") -> Path:
    (tmp_path / name).write_text(config)
    steps, values = curves.spiky(ratio=4.0)
    write_curve(tmp_path / "run.csv", steps, values)
    return tmp_path


def _check(runner, folder: Path, *args: str):
    cwd = os.getcwd()
    os.chdir(folder)
    try:
        result = runner.invoke(app, ["check", "-f", "json", *args, "run.csv"])
    finally:
        os.chdir(cwd)
    doc = json.loads(result.stdout) if result.stdout.startswith("{") else None
    return result, doc


def _rules(doc):
    return {f["rule"]: f["severity"] for f in doc["runs"][0]["findings"]}


def test_pyproject_settings_are_found_and_applied(runner, tmp_path):
    folder = _project(
        tmp_path, '[tool.lossdoctor]\nfail-on = "warning"\nignore = ["no-validation", "LD3"]\n'
    )
    result, doc = _check(runner, folder)
    assert result.exit_code == 1  # fail-on warning from the file
    found = _rules(doc)
    assert "spikes" in found
    assert "no-validation" not in found
    assert "smooth-decline" not in found  # LD3 prefix


def test_lossdoctor_toml_overrides_thresholds_and_severity(runner, tmp_path):
    folder = _project(tmp_path, '[rules.spikes]\nseverity = "error"\n', name="lossdoctor.toml")
    result, doc = _check(runner, folder)
    assert _rules(doc)["spikes"] == "error"
    assert result.exit_code == 1
    (folder / "lossdoctor.toml").write_text("[rules.spikes.thresholds]\nlarge_ratio = 10.0\n")
    _result, doc = _check(runner, folder)
    assert _rules(doc)["spikes"] == "info"


def test_command_line_beats_config_file_beats_project(runner, tmp_path):
    folder = _project(tmp_path, '[tool.lossdoctor]\nfail-on = "warning"\n')
    (folder / "ci.toml").write_text('fail-on = "info"\nselect = ["spikes"]\n')
    result, doc = _check(runner, folder, "--config", "ci.toml")
    assert set(_rules(doc)) == {"spikes"}
    result, _ = _check(runner, folder, "--config", "ci.toml", "--fail-on", "never")
    assert result.exit_code == 0


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (
            "[tool.lossdoctor]\nfail_on = 'warning'\n",
            "unknown key 'fail_on'; did you mean 'fail-on'?",
        ),
        (
            "[tool.lossdoctor]\nselect = ['spikez']\n",
            "no rule matches 'spikez'; did you mean 'spikes'?",
        ),
        (
            "[tool.lossdoctor.rules.spikes]\nthreshold = {}\n",
            "unknown key 'rules.spikes.threshold'; did you mean 'thresholds'?",
        ),
        (
            "[tool.lossdoctor.rules.spikes.thresholds]\nlarge_ration = 2.0\n",
            "did you mean 'large_ratio'?",
        ),
        ("[tool.lossdoctor.rules.spikes.params]\nzz = 2\n", "not a parameter"),
        ("[tool.lossdoctor]\nfail-on = 3\n", "key 'fail-on': expected one of"),
        ("[tool.lossdoctor.rules.nope]\nseverity = 'error'\n", "key 'rules.nope': no such rule"),
    ],
)
def test_bad_configuration_is_exit_2_naming_file_and_key(runner, tmp_path, config, message):
    folder = _project(tmp_path, config)
    result, _ = _check(runner, folder)
    assert result.exit_code == 2
    assert f"{folder / 'pyproject.toml'}:" in result.stderr or "pyproject.toml" in result.stderr
    assert message in result.stderr


def test_user_rule_folder(runner, tmp_path):
    rules = tmp_path / "myrules"
    rules.mkdir()
    (rules / "XX901-long-run.toml").write_text(
        'code = "XX901"\nname = "long-run"\ngroup = "custom"\nsummary = "Runs over 100 points."\n'
        'detector = "coverage"\ninputs = ["train", "val"]\n[thresholds]\nlimit = 100\n'
        '[[levels]]\nseverity = "warning"\nwhen = ["train_points > limit"]\nmessage = "{train_points} points"\n'
        '[[fixes]]\ntitle = "t"\nwhy = "w"\n[docs]\nwhat = "w"\nwhy = "y"\n'
    )
    folder = _project(tmp_path, '[tool.lossdoctor]\nrule-paths = ["myrules"]\n')
    _result, doc = _check(runner, folder)
    assert _rules(doc)["long-run"] == "warning"


# --- compare -----------------------------------------------------------------------------


def _pair(tmp_path, reference, candidate):
    write_curve(tmp_path / "ref.csv", *reference)
    write_curve(tmp_path / "cand.csv", *candidate)
    return str(tmp_path / "ref.csv"), str(tmp_path / "cand.csv")


def _compare(runner, ref, cand):
    result = runner.invoke(app, ["compare", "-f", "json", ref, cand])
    doc = json.loads(result.stdout)
    checks = {c["check"]: c["passed"] for c in doc["runs"][0]["comparison"]["checks"]}
    return result.exit_code, checks, doc


def test_compare_passes_for_the_same_recipe_with_another_seed(runner, tmp_path):
    code, checks, _ = _compare(
        runner, *_pair(tmp_path, curves.healthy(800, seed=1), curves.healthy(800, seed=2))
    )
    assert code == 0
    assert all(checks.values())


def test_compare_fails_a_higher_final_loss(runner, tmp_path):
    code, checks, doc = _compare(
        runner, *_pair(tmp_path, curves.healthy(800, seed=1), curves.healthy(800, seed=2, end=1.5))
    )
    assert code == 1
    assert not checks["final"]
    assert not checks["curve"]
    finding = next(f for f in doc["runs"][0]["findings"] if f["rule"] == "baseline-regression")
    assert finding["severity"] == "error"


def test_compare_fails_slower_convergence(runner, tmp_path):
    np = curves.np
    steps = np.arange(1, 801, dtype=float)
    x = steps / 800
    noise = np.exp(np.random.default_rng(0).normal(0, 0.01, 800))
    fast = (1.5 + 3.5 * np.exp(-15 * x)) * noise
    slow = (1.5 + 3.5 * np.exp(-6 * x)) * noise  # same final loss, reached much later
    code, checks, _ = _compare(runner, *_pair(tmp_path, (steps, fast), (steps, slow)))
    assert code == 1
    assert not checks["speed"]


def test_compare_fails_a_new_spike(runner, tmp_path):
    code, checks, _ = _compare(
        runner, *_pair(tmp_path, curves.healthy(800, seed=1), curves.spiky(800, seed=2, ratio=5.0))
    )
    assert code == 1
    assert not checks["new-findings"]


def test_check_with_baseline(runner, tmp_path):
    ref, cand = _pair(tmp_path, curves.healthy(800, seed=1), curves.healthy(800, seed=2, end=1.5))
    result = runner.invoke(app, ["check", "--baseline", ref, cand])
    assert result.exit_code == 1
    assert "compared with" in result.stdout
    assert "baseline-regression" in result.stdout


# --- many runs ---------------------------------------------------------------------------


def test_many_runs_in_parallel_match_serial_and_exit_by_the_worst(runner, in_root):
    paths = ["examples/healthy.csv", "examples/spikes.jsonl", "examples/flatline.tsv"]
    serial = runner.invoke(app, ["check", "-f", "json", *paths])
    parallel = runner.invoke(app, ["check", "-f", "json", "--jobs", "2", *paths])
    assert serial.exit_code == parallel.exit_code == 1
    assert json.loads(serial.stdout) == json.loads(parallel.stdout)
    text = runner.invoke(app, ["check", *paths]).stdout
    assert "3 runs: 1 healthy, 1 warning, 1 failing" in text
    assert "examples/flatline.tsv" in text.split("3 runs:")[0].splitlines()[-1]


def test_compare_fails_a_first_loss_that_differs_before_any_update(runner, tmp_path):
    np = curves.np
    steps = np.arange(1, 801, dtype=float)
    noise = np.exp(np.random.default_rng(5).normal(0, 0.002, 800))
    ref = (2.0 + 8.9 * np.exp(-6 * steps / 800)) * noise
    cand = ref * 0.93  # a loss-normalisation change: -7% from step 1 on
    code, checks, doc = _compare(runner, *_pair(tmp_path, (steps, ref), (steps, cand)))
    assert code == 1
    assert not checks["first-loss"]
    finding = next(
        f
        for f in doc["runs"][0]["findings"]
        if f["rule"] == "baseline-regression" and f["evidence"]["check"] == "first-loss"
    )
    assert "already lower" in finding["message"]
    assert "not comparable" in finding["message"]
    assert finding["evidence"]["step"] == 1
    assert round(finding["evidence"]["ratio"], 2) == 0.93


def test_compare_names_a_whole_number_loss_scale(runner, tmp_path):
    np = curves.np
    steps = np.arange(1, 801, dtype=float)
    noise = np.exp(np.random.default_rng(6).normal(0, 0.01, 800))
    ref = (1.5 + 3.5 * np.exp(-6 * steps / 800)) * noise
    code, checks, doc = _compare(runner, *_pair(tmp_path, (steps, ref), (steps, ref * 4)))
    assert code == 1
    finding = next(
        f for f in doc["runs"][0]["findings"] if f["evidence"].get("check") == "first-loss"
    )
    assert finding["evidence"]["integer_factor"] == 4
    assert "loss-scaling suspect" in finding["message"]
    # a different seed of the same recipe passes the first-loss check
    code, checks, _ = _compare(
        runner, *_pair(tmp_path, curves.healthy(800, seed=1), curves.healthy(800, seed=2))
    )
    assert checks["first-loss"]
