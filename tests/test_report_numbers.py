"""How reports say numbers (issue 17, found by a new-user tester): a non-finite final loss
is said as inf or nan the same way everywhere (no perplexity of it), the summary JSON's
final is a number or null as its schema says, perplexity only for a cross-entropy loss,
and a count of one in the singular."""

from __future__ import annotations

import csv
import io
import json
import math

import jsonschema
import numpy as np
import pytest

from lossdoctor.cli import app
from lossdoctor.wording import singular_counts

from conftest import FIXTURES, ROOT, run_json, write_csv

SUMMARY_SCHEMA = json.loads((ROOT / "lossdoctor" / "schema" / "summary.schema.json").read_text())


@pytest.fixture
def three_runs(tmp_path):
    steps = np.arange(1, 201) * 10
    loss = 3.0 * np.exp(-steps / 600) + 0.8
    ends = {"healthy": loss, "ends_inf": loss.copy(), "ends_nan": loss.copy()}
    ends["ends_inf"][-5:] = math.inf
    ends["ends_nan"][-5:] = math.nan
    return [
        str(write_csv(tmp_path / f"{n}.csv", {"step": steps, "loss": v})) for n, v in ends.items()
    ]


def test_a_non_finite_final_loss_is_said_alike_everywhere(three_runs, runner, tmp_path):
    # the run report said "last inf (ppl inf)" and the summary "inf" for an infinite last
    # value; a NaN was "last –" and "–"; the summary JSON held "inf" (a string) or null
    result = runner.invoke(app, ["check", *three_runs])
    text = result.stdout
    assert "last inf\n" in text
    assert "last nan\n" in text
    assert "ppl inf" not in text
    assert "ppl nan" not in text
    rows = {
        line.split()[0].rsplit("/", 1)[1]: line.split()
        for line in text.splitlines()
        if line.startswith("/") and "[csv]" not in line  # the summary table's rows
    }
    assert rows["ends_inf.csv"][2] == "inf"
    assert rows["ends_nan.csv"][2] == "nan"
    summary_json, summary_csv = tmp_path / "s.json", tmp_path / "s.csv"
    runner.invoke(
        app, ["check", *three_runs, "-f", f"summary-json:{summary_json}", "-f", f"summary-csv:{summary_csv}"]
    )  # fmt: skip
    doc = json.loads(summary_json.read_text())
    jsonschema.validate(doc, SUMMARY_SCHEMA)
    finals = {r["run"].rsplit("/", 1)[1]: r["final"] for r in doc["runs"]}
    assert finals["ends_inf.csv"] is None
    assert finals["ends_nan.csv"] is None
    assert finals["healthy.csv"] == pytest.approx(0.8 + 3.0 * math.exp(-2000 / 600), abs=1e-5)
    rows_csv = csv.DictReader(io.StringIO(summary_csv.read_text()))
    cells = {r["run"].rsplit("/", 1)[1]: r["final"] for r in rows_csv}
    assert cells["ends_inf.csv"] == "inf"
    assert cells["ends_nan.csv"] == "nan"
    _code, report = run_json(runner, three_runs[1])
    series = report["runs"][0]["series"]["train"]
    assert series["last"] == "inf"  # the report's schema, unchanged
    assert "perplexity_last" not in series
    assert series["perplexity_best"] == pytest.approx(math.exp(series["best"]), rel=1e-3)


def test_summary_json_rows_follow_the_schema_for_errors_too(three_runs, runner, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("step,loss\n1,oops\n")
    out = tmp_path / "s.json"
    runner.invoke(app, ["check", three_runs[0], str(bad), "-f", f"summary-json:{out}"])
    doc = json.loads(out.read_text())
    jsonschema.validate(doc, SUMMARY_SCHEMA)
    assert [r["verdict"] for r in doc["runs"]] == ["healthy", "error"]
    assert doc["runs"][1]["final"] is None


def test_perplexity_only_for_a_cross_entropy_loss(runner, tmp_path):
    # a sum of box/cls/dfl losses (Ultralytics) or detectron2's total_loss is no
    # cross-entropy: "(ppl 2.462)" was printed for them
    for name in ("ultralytics_results.csv", "detectron2_metrics.json"):
        path = str(FIXTURES / "finetune" / name)
        text = runner.invoke(app, ["check", path]).stdout
        assert "ppl" not in text, name
        _, doc = run_json(runner, path)
        assert not any("perplexity_last" in s for s in doc["runs"][0]["series"].values())
    steps = np.arange(1, 201) * 10
    path = write_csv(tmp_path / "lm.csv", {"step": steps, "loss": 3.0 * np.exp(-steps / 600) + 1.2})
    assert "(ppl " in runner.invoke(app, ["check", str(path)]).stdout  # a language model's loss
    # a DPO loss (named by --objective) and a regression loss are no cross-entropy either
    assert "(ppl " not in runner.invoke(app, ["check", "--objective", "dpo", str(path)]).stdout
    mse = write_csv(
        tmp_path / "mse.csv", {"step": steps, "train_mse_loss": 0.5 * np.exp(-steps / 600)}
    )
    assert "(ppl " not in runner.invoke(app, ["check", str(mse)]).stdout


def test_a_count_of_one_is_said_in_the_singular(runner, tmp_path):
    path = tmp_path / "one.log"
    path.write_text("starting\nstep=1 loss=2.5\n")
    result = runner.invoke(app, ["check", str(path)])
    assert "loss: 1 point," in result.stdout
    assert "Only 1 finite training-loss point:" in result.stdout
    assert "1 line without values was skipped" in result.stdout
    assert "1 points" not in result.stdout
    assert "1 lines" not in result.stdout


@pytest.mark.parametrize(
    ("said", "meant"),
    [
        ("Only 1 finite training-loss points.", "Only 1 finite training-loss point."),
        ("holds 1 points", "holds 1 point"),
        ("1 of the spikes", "1 of the spikes"),
        ("at 11 points", "at 11 points"),
        ("0.1 points", "0.1 points"),
        ("(1 NaN/Inf values, 0 NaN and 1 Inf)", "(1 NaN/Inf value, 0 NaN and 1 Inf)"),
        ("1 large spikes in 3 runs", "1 large spike in 3 runs"),
        ("spiked at 1 of the 1 gradient-norm spikes", "spiked at 1 of the 1 gradient-norm spikes"),
    ],
)
def test_rule_messages_count_one_in_the_singular(said, meant):
    assert singular_counts(said) == meant
