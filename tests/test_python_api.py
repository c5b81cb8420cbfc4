"""The Python API as the README shows it: diagnose(), Report, Monitor, the notebook view."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import jsonschema
import pandas as pd
import pytest

import lossdoctor
from lossdoctor.errors import ConfigError, InputError

from conftest import ROOT, readme_python, run_json

EXAMPLES = ROOT / "examples"
SCHEMA = json.loads((ROOT / "lossdoctor" / "schema" / "report.schema.json").read_text())


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    (tmp_path / "examples").symlink_to(EXAMPLES)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_readme_diagnose_example_runs_and_writes_what_it_says(in_tmp, capsys):
    exec(readme_python("## Python API", 0), {})
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "failing"
    assert "LD101 non-finite error 461" in out
    assert (in_tmp / "divergence.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    doc = json.loads((in_tmp / "reports" / "lossdoctor-report.json").read_text())
    jsonschema.validate(doc, SCHEMA)
    assert doc["runs"][0]["verdict"] == "failing"
    assert "non-finite" in (in_tmp / "reports" / "lossdoctor-report.md").read_text()
    assert "<svg" in (in_tmp / "reports" / "lossdoctor-report.html").read_text()


def test_readme_monitor_example_stops_at_the_first_nan(in_tmp, capsys):
    exec(readme_python("## Python API", 1), {})
    out = capsys.readouterr().out.splitlines()
    assert out[-1] == "200 failing"
    assert "step 200: error non-finite" in out[-2]


@pytest.mark.parametrize(
    "name",
    ["healthy.csv", "spikes.jsonl", "divergence_nan.csv", "overfitting_trainer_state.json"],
)
def test_diagnose_gives_the_verdict_and_json_of_check(runner, name):
    _code, doc = run_json(runner, str(EXAMPLES / name))
    report = lossdoctor.diagnose(EXAMPLES / name)
    ours = report.to_dict()
    jsonschema.validate(ours, SCHEMA)
    assert report.verdict == doc["runs"][0]["verdict"]
    assert ours["runs"][0]["findings"] == doc["runs"][0]["findings"]
    assert [f.rule for f in report.findings] == [f["rule"] for f in doc["runs"][0]["findings"]]


def test_findings_are_typed_with_evidence_fixes_and_causes():
    report = lossdoctor.diagnose(EXAMPLES / "divergence_nan.csv")
    finding = report.findings[0]
    assert isinstance(finding, lossdoctor.Finding)
    assert (finding.rule, finding.code, finding.severity) == ("non-finite", "LD101", "error")
    assert finding.evidence["start_step"] == 461
    assert finding.fixes
    assert all({"title", "why"} <= set(fix) for fix in finding.fixes)
    assert isinstance(finding.causes, tuple)
    assert report.drivers == ["non-finite"]
    assert report.reaches("error")
    assert not lossdoctor.diagnose(EXAMPLES / "healthy.csv").reaches("warning")


def test_options_of_check_are_keyword_arguments():
    path = EXAMPLES / "divergence_nan.csv"
    assert lossdoctor.diagnose(path, ignore=["non-finite", "divergence"]).verdict == "healthy"
    selected = lossdoctor.diagnose(path, select=["LD2"])
    assert {f.code[:3] for f in selected.findings} == {"LD2"}
    flat = lossdoctor.diagnose(EXAMPLES / "flatline.tsv", vocab_size=50257)
    assert "high-flatline" in flat.drivers


def test_bad_options_and_sources_raise_one_line_errors(tmp_path):
    with pytest.raises(ConfigError, match="unknown profile 'nope'"):
        lossdoctor.diagnose(EXAMPLES / "healthy.csv", profile="nope")
    with pytest.raises(ConfigError, match="not both"):
        lossdoctor.diagnose(EXAMPLES / "healthy.csv", vocab_size=10, classes=10)
    with pytest.raises(ConfigError, match=r"ignore=\['LD101'\]"):
        lossdoctor.diagnose(EXAMPLES / "healthy.csv", ignore="LD101")
    missing = tmp_path / "missing.csv"
    with pytest.raises(InputError, match=r"missing\.csv"):
        lossdoctor.diagnose(missing)
    with pytest.raises(InputError, match="differ in length"):
        lossdoctor.diagnose({"step": [1, 2, 3], "loss": [1.0, 0.9]})
    with pytest.raises(InputError, match="cannot diagnose a int"):
        lossdoctor.diagnose(3)


def test_dataframe_gets_the_verdict_of_its_file():
    for name in ("healthy.csv", "divergence_nan.csv"):
        frame = pd.read_csv(EXAMPLES / name)
        assert lossdoctor.diagnose(frame).verdict == lossdoctor.diagnose(EXAMPLES / name).verdict


def test_sparse_eval_column_is_not_nan_but_a_nan_loss_is_kept():
    """A log_history frame: eval rows hold NaN in 'loss', train rows NaN in 'eval_loss'."""
    rows = []
    for step in range(1, 201):
        rows.append({"step": step, "loss": 3.0 / math.sqrt(step)})
        if step % 20 == 0:
            rows.append({"step": step, "eval_loss": 3.2 / math.sqrt(step)})
    frame = pd.DataFrame(rows)
    healthy = lossdoctor.diagnose(frame)
    assert healthy.verdict == "healthy"
    assert healthy.to_dict()["runs"][0]["series"]["val"]["points"] == 10
    frame.loc[frame.index[-5:], "loss"] = float("nan")
    broken = lossdoctor.diagnose(frame)
    assert broken.drivers == ["non-finite"]


def test_mapping_of_series_with_none_for_gaps():
    steps = list(range(100))
    loss = [2.0 * 0.98**s for s in steps]
    val = [2.1 * 0.98**s if s % 10 == 9 else None for s in steps]
    report = lossdoctor.diagnose({"step": steps, "loss": loss, "eval_loss": val})
    assert report.verdict == "healthy"
    series = report.to_dict()["runs"][0]["series"]
    assert (series["train"]["points"], series["val"]["points"]) == (100, 10)
    assert series["val"]["column"] == "eval_loss"


def test_plot_returns_a_figure_without_a_path():
    figure = lossdoctor.diagnose(EXAMPLES / "spikes.jsonl").plot()
    assert "WARNING" in figure._suptitle.get_text()


def test_notebook_view_shows_verdict_chart_findings_and_fixes():
    page = lossdoctor.diagnose(EXAMPLES / "divergence_nan.csv")._repr_html_()
    assert page.startswith("<div class='lossdoctor-report'>")
    assert "<html" not in page
    assert "body{" not in page
    assert "FAILING" in page
    assert "<svg" in page
    assert "LD101" in page
    assert "What to do" in page
    assert repr(lossdoctor.diagnose(EXAMPLES / "healthy.csv")).startswith(
        "<lossdoctor.Report HEALTHY"
    )


def test_monitor_reports_changes_once_and_follows_options():
    monitor = lossdoctor.Monitor(min_interval=0)
    seen = []
    for step in range(1, 120):
        loss = 3.0 / math.sqrt(step) if step < 100 else float("inf")
        seen += [(step, f.rule, f.severity) for f in monitor.add(step, loss=loss)]
        if monitor.should_stop():
            break
    assert step == 100
    assert (100, "non-finite", "error") in seen
    assert len(seen) == len({(rule, sev) for _, rule, sev in seen})  # each change once
    assert monitor.report().verdict == "failing"
    quiet = lossdoctor.Monitor(min_interval=0, ignore=["non-finite", "LD103"])
    for step in range(1, 110):
        quiet.add(step, loss=3.0 / math.sqrt(step) if step < 100 else float("inf"))
    assert not quiet.should_stop("error")
    with pytest.raises(ConfigError):
        quiet.should_stop("fatal")


def test_monitor_with_no_interval_judges_every_call_however_slow_judging_is(monkeypatch):
    """min_interval=0 judges on every call (the callbacks' documented "no pacing"): a
    machine so loaded that judging took longer than training skipped the NaN gradient
    norms' judgement until a later logging step."""
    clock = iter(range(0, 10_000, 7))  # every judgement seems to take 7 seconds
    monkeypatch.setattr("lossdoctor.monitor.time.monotonic", lambda: float(next(clock)))
    monitor = lossdoctor.Monitor(min_interval=0)
    judged = []
    monkeypatch.setattr(monitor._live, "report", lambda **_: judged.append(1))
    for step in range(1, 6):
        monitor.add(step, loss=3.0 / step)
    assert len(judged) == 5


@pytest.mark.parametrize("nan_key", ["loss", "grad_norm"])
def test_monitor_judges_a_non_finite_loss_or_gradient_norm_at_once(nan_key):
    # paced judging (one judgement an hour here) waits for nothing non-finite: the Trainer
    # logs a finite loss over a NaN step (logging_nan_inf_filter), only the norm shows it
    monitor = lossdoctor.Monitor(min_interval=3600.0)
    for step in range(1, 40):
        assert not monitor.add(step, loss=3.0 / math.sqrt(step), grad_norm=1.0) or step == 1
    metrics = {"loss": 3.0 / math.sqrt(40), "grad_norm": 1.0, nan_key: float("nan")}
    changed = {f.rule: f.severity for f in monitor.add(40, **metrics)}
    if nan_key == "loss":
        assert changed.get("non-finite") == "error"
        assert monitor.should_stop()
    else:  # one NaN norm is a skipped fp16 step (info); judged now all the same
        assert changed.get("non-finite-grad-norm") == "info"


def test_monitor_report_before_any_loss_says_so():
    report = lossdoctor.Monitor().report()
    assert report.verdict == "error"
    assert report.to_dict()["runs"][0]["error"] == "no loss values were added"


def test_import_lossdoctor_imports_no_framework_plotting_or_scipy():
    code = "import lossdoctor, lossdoctor.integrations"
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    imported = {line.split("|")[-1].strip() for line in proc.stderr.splitlines() if "|" in line}
    assert "lossdoctor" in imported
    heavy = ("torch", "transformers", "lightning", "keras", "tensorflow", "jax", "matplotlib")
    for name in (*heavy, "scipy", "pandas"):
        assert name not in imported, name


def test_package_is_typed():
    assert (ROOT / "lossdoctor" / "py.typed").is_file()
