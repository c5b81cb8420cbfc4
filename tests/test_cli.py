"""The command line: JSON report shape, exit codes, stdin, formats, error lines."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from lossdoctor import synth as curves
from lossdoctor.cli import app

from conftest import FIXTURES, fired, run_json, write_csv, write_curve


def test_json_report_has_the_versioned_shape(runner, tmp_path):
    path = write_curve(tmp_path / "run.csv", *curves.healthy())
    code, doc = run_json(runner, str(path))
    assert code == 0
    assert doc["schema_version"] == 1
    assert doc["version"]
    (run,) = doc["runs"]
    assert run["source"] == str(path)
    assert run["verdict"] == "healthy"
    assert run["columns"] == {"train": "loss"}
    assert run["series"]["train"]["points"] == 500
    finding = next(f for f in run["findings"] if f["rule"] == "smooth-decline")
    assert set(finding) >= {"rule", "code", "severity", "message", "evidence", "fixes"}
    assert finding["code"] == "LD303"


def test_runs_are_in_argument_order_and_unreadable_is_an_error_run(runner, tmp_path):
    good = write_curve(tmp_path / "a.csv", *curves.healthy())
    result = runner.invoke(app, ["check", "-f", "json", str(tmp_path / "missing.csv"), str(good)])
    assert result.exit_code == 2
    doc = json.loads(result.stdout)
    assert [r["source"] for r in doc["runs"]] == [str(tmp_path / "missing.csv"), str(good)]
    assert doc["runs"][0] == {
        "source": str(tmp_path / "missing.csv"),
        "verdict": "error",
        "error": f"{tmp_path / 'missing.csv'}: no such file or folder",
    }
    assert f"lossdoctor: {tmp_path / 'missing.csv'}: no such file or folder" in result.stderr


@pytest.mark.parametrize(
    ("fail_on", "expected"), [("error", 0), ("warning", 1), ("info", 1), ("never", 0)]
)
def test_fail_on_sets_the_exit_code(runner, tmp_path, fail_on, expected):
    path = write_curve(tmp_path / "spiky.csv", *curves.spiky(ratio=4.0))
    result = runner.invoke(app, ["check", "--fail-on", fail_on, str(path)])
    assert result.exit_code == expected


def test_failing_run_exits_1_by_default(runner, tmp_path):
    path = write_curve(tmp_path / "nan.csv", *curves.with_nan())
    code, doc = run_json(runner, str(path))
    assert code == 1
    assert doc["runs"][0]["verdict"] == "failing"
    assert fired(doc["runs"][0])["non-finite"] == "error"


def test_bad_fail_on_is_a_usage_error(runner, tmp_path):
    path = write_curve(tmp_path / "a.csv", *curves.healthy())
    result = runner.invoke(app, ["check", "--fail-on", "sometimes", str(path)])
    assert result.exit_code == 2


def test_text_report_shows_verdict_evidence_and_fixes(runner, tmp_path):
    path = write_curve(tmp_path / "nan.csv", *curves.with_nan())
    result = runner.invoke(app, ["check", str(path)])
    assert result.exit_code == 1
    out = result.stdout
    assert "FAILING" in out
    assert "LD101 non-finite" in out
    assert "evidence: steps 2410" in out
    assert "what to do" in out
    assert "Lower the learning rate" in out
    assert "columns: train=loss" in out


def test_columns_can_be_forced(runner, tmp_path):
    path = write_csv(tmp_path / "odd.csv", {"k": [1, 2, 3, 4], "objective": [4.0, 3.0, 2.5, 2.0]})
    code, doc = run_json(runner, "--train-col", "objective", "--step-col", "k", str(path))
    assert code == 0
    assert doc["runs"][0]["columns"] == {"train": "objective"}


def test_format_to_a_file_and_text_to_stdout(runner, tmp_path):
    path = write_curve(tmp_path / "a.csv", *curves.healthy())
    out = tmp_path / "report.json"
    result = runner.invoke(app, ["check", "-f", "text", "-f", f"json:{out}", str(path)])
    assert result.exit_code == 0
    assert "HEALTHY" in result.stdout
    assert json.loads(out.read_text())["runs"][0]["verdict"] == "healthy"


def test_unknown_format_is_a_usage_error(runner, tmp_path):
    path = write_curve(tmp_path / "a.csv", *curves.healthy())
    result = runner.invoke(app, ["check", "-f", "xml", str(path)])
    assert result.exit_code == 2
    assert "unknown format 'xml'" in result.output


def test_rules_list_and_explain(runner):
    listing = runner.invoke(app, ["rules", "list"])
    assert listing.exit_code == 0
    for name in ("non-finite", "spikes", "oscillation", "overfitting", "plateau"):
        assert name in listing.stdout
    explained = runner.invoke(app, ["rules", "explain", "LD201"])
    assert explained.exit_code == 0
    assert "LD201 spikes" in explained.stdout
    assert "max_ratio >= large_ratio (= 1.5)" in explained.stdout
    missing = runner.invoke(app, ["rules", "explain", "spikez"])
    assert missing.exit_code == 2
    assert "did you mean 'spikes'" in missing.stderr


def test_rules_explain_lists_the_causes_with_their_evidence_and_signal():
    from lossdoctor.api import select_rules
    from lossdoctor.config import Settings
    from lossdoctor.reporters.rule_docs import explain_text

    (spikes,) = [rule for rule in select_rules(Settings()) if rule.code == "LD201"]
    text = explain_text(spikes)
    causes = text.split("Likely causes", 1)[1].split("What to do", 1)[0]
    assert "  - fp16 overflow: non-finite gradient norms [from grad_norm]: " in causes
    assert "      evidence: grad_non_finite >= 1" in causes
    assert "      evidence: co_spike_share >= co_share (= 0.5)" in causes
    assert "      fixes first: Clip gradients; Lower the learning rate" in causes


def _cli(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "NO_COLOR": "1"}
    return subprocess.run(
        [sys.executable, "-m", "lossdoctor", *args], input=stdin, capture_output=True, env=env
    )


def test_stdin_is_read_and_sniffed():
    data = (FIXTURES / "records.jsonl").read_bytes()
    proc = _cli("check", "-f", "json", "--fail-on", "never", "-", stdin=data)
    assert proc.returncode == 0
    run = json.loads(proc.stdout)["runs"][0]
    assert run["source"] == "-"
    assert run["reader"] == "jsonl"


def test_bad_input_in_a_subprocess_is_one_line_exit_2_no_traceback():
    proc = _cli("check", str(FIXTURES / "ragged.csv"))
    assert proc.returncode == 2
    err = proc.stderr.decode().strip().splitlines()
    assert err == [
        f"lossdoctor: {FIXTURES / 'ragged.csv'}:3: malformed row "
        "(Expected 2 fields in line 3, saw 4)"
    ]
    assert b"Traceback" not in proc.stderr


def test_help_and_version():
    proc = _cli("--help")
    assert proc.returncode == 0
    assert b"check" in proc.stdout
    proc = _cli("--version")
    assert proc.stdout.startswith(b"lossdoctor ")


def test_vocab_size_names_uniform_guessing(runner, tmp_path):
    path = write_curve(tmp_path / "flat.csv", *curves.flat(level=10.8))
    code, doc = run_json(runner, "--vocab-size", "50257", str(path))
    assert code == 1
    finding = next(f for f in doc["runs"][0]["findings"] if f["rule"] == "high-flatline")
    assert "guessing uniformly" in finding["message"]
    assert finding["evidence"]["chance_loss"] == pytest.approx(10.825, abs=1e-3)


def test_first_loss_far_above_chance_warns_about_initialisation(runner, tmp_path):
    steps, values = curves.healthy(start=40.0, end=3.0)
    path = write_curve(tmp_path / "init.csv", steps, values)
    _code, doc = run_json(runner, "--classes", "1000", "--fail-on", "never", str(path))
    assert fired(doc["runs"][0])["init-loss"] == "warning"
    _code, doc = run_json(runner, "--fail-on", "never", str(path))
    assert "init-loss" not in fired(doc["runs"][0])  # no chance level, no judgement


def test_profile_places_the_final_loss_in_a_band(runner, tmp_path):
    steps, values = curves.healthy(start=3.0, end=1.0)
    path = write_curve(tmp_path / "ft.csv", steps, values)
    _code, doc = run_json(runner, "--profile", "slm-finetune", str(path))
    band = next(f for f in doc["runs"][0]["findings"] if f["rule"] == "loss-band")
    assert band["severity"] == "info"
    assert "well-trained domain model" in band["message"]
    result = runner.invoke(app, ["check", "--profile", "nope", str(path)])
    assert result.exit_code == 2


def test_findings_rank_likely_causes_first_with_evidence(runner, tmp_path):
    steps, values = curves.spiky(ratio=4.0)
    _code, doc = run_json(
        runner, "--fail-on", "never", str(write_curve(tmp_path / "s.csv", steps, values))
    )
    spikes = next(f for f in doc["runs"][0]["findings"] if f["rule"] == "spikes")
    first = spikes["causes"][0]
    assert first["likely"] is True
    assert first["cause"] == "Bad or unusual batches"
    assert "recovers at once" in first["evidence"]
    assert [c["likely"] for c in spikes["causes"]] == sorted(
        (c["likely"] for c in spikes["causes"]), reverse=True
    )


def test_plateau_with_decayed_lr_says_the_schedule_finished(runner, tmp_path):
    steps, values = curves.plateau()
    lr = 3e-4 * np.maximum(1 - steps / steps[-1] * 1.1, 0.001)
    path = tmp_path / "p.csv"
    write_csv(path, {"step": steps, "loss": values, "lr": lr})
    _code, doc = run_json(runner, str(path))
    plateau = next(f for f in doc["runs"][0]["findings"] if f["rule"] == "plateau")
    assert plateau["causes"][0]["cause"] == "The learning-rate schedule has finished"


def test_help_imports_no_heavy_module():
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "lossdoctor", "--help"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0
    imported = {line.split("|")[-1].strip() for line in proc.stderr.splitlines() if "|" in line}
    for heavy in ("scipy", "matplotlib", "google.protobuf", "pandas", "numpy", "tensorboard"):
        assert heavy not in imported, heavy


def test_check_of_a_small_table_imports_only_what_it_needs(tmp_path):
    # start-up is most of a small check: no table library, no statistics package, and
    # not numpy.ma (numpy's np.unique and np.quantile import it on first use), nor the
    # report cache (hashlib's OpenSSL binding) without --cache, nor SQLite (MLflow stores)
    steps, values = curves.healthy()
    path = tmp_path / "run.csv"
    write_csv(path, {"step": steps, "loss": values})
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "lossdoctor", "check", "-f", "json", str(path)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stdout)["runs"][0]["verdict"] == "healthy"
    imported = {line.split("|")[-1].strip() for line in proc.stderr.splitlines() if "|" in line}
    for heavy in ("numpy.ma", "pandas", "scipy", "polars", "pyarrow", "matplotlib", "sqlite3"):
        assert heavy not in imported, heavy
    assert "lossdoctor.cache" not in imported


def test_check_watch_and_run_share_the_diagnosis_options():
    # one declaration: the same option names and help text on every command
    import re

    from typer.testing import CliRunner

    runner = CliRunner()
    helps = {
        name: runner.invoke(app, [name, "--help"], terminal_width=200, env={"NO_COLOR": "1"}).stdout
        for name in ("check", "watch", "run")
    }
    for option in ("--train-col", "--val-col", "--step-col", "--vocab-size", "--classes",
                   "--profile", "--config", "--select", "--ignore"):  # fmt: skip
        texts = set()
        for text in helps.values():
            line = next(ln for ln in text.splitlines() if re.search(rf"{option}\b", ln))
            texts.add(re.split(r"\s{2,}", line.strip())[-1])  # the help, after the columns
        assert len(texts) == 1, (option, texts)


def test_the_command_line_builds_only_the_command_it_runs():
    # typer builds every command's options at each start: the one named is built alone,
    # the whole app when no command is named (its help lists them all)
    import typer

    from lossdoctor.cli import _app_for

    def names(argv: list[str]) -> set[str]:
        group = typer.main.get_command(_app_for(argv))
        return set(group.commands)  # type: ignore[attr-defined]

    assert names(["check", "run.csv"]) == {"check"}
    assert names(["plot", "run.csv", "-o", "x.png"]) == {"plot"}
    assert names(["rules", "explain", "spikes"]) == {"rules"}
    everything = {"check", "compare", "plot", "watch", "run", "formats", "rules"}
    for argv in ([], ["--help"], ["--version"], ["chek", "run.csv"]):
        assert names(argv) == everything


@pytest.mark.parametrize(
    "argv",
    [["check", "--help"], ["rules", "explain", "--help"], ["checkk"], ["check", "--bogus", "x"]],
)
def test_a_command_run_alone_says_what_the_whole_app_says(argv):
    def run(code: str) -> tuple[int, str, str]:
        proc = subprocess.run(
            [sys.executable, "-c", code, *argv],
            capture_output=True,
            text=True,
            env={**os.environ, "COLUMNS": "80", "NO_COLOR": "1"},
        )
        return proc.returncode, proc.stdout, proc.stderr

    alone = run("from lossdoctor.cli import main; main()")
    assert alone == run("from lossdoctor.cli import app; app()")
    assert alone[0] in (0, 2)
