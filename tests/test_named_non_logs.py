"""Files named on the command line that are no loss log (issue 17, found by a new-user
tester): a README line mentioning a loss, a provenance table of text, a label file
naming loss columns.  Named alone: a one-line error, exit 2; among several paths (a
shell glob): skipped with the reason, as the folder walk skips them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lossdoctor.cli import app

from conftest import ROOT, run_json


def _provenance(path: Path) -> Path:
    # the shape of the corpora's PROVENANCE.tsv: its notes repeat a "stats:" shape in a
    # third of the rows; it was read as a "healthy" 4-point run of 'train_loss n'
    rows = ["file\trepo\tpath\tcommit\tlicense\tpoints\tnotes"]
    for i in range(12):
        key = ("val_loss", "eval_loss", "train_loss")[i % 3]
        rows.append(
            f"logs/run{i}.csv\tuser{i}/proj\tmetrics.csv\t{'ab12' * 10}\tMIT\t{100 + i}\t"
            f"HEALTHY: falls then flattens | stats: {key} n={100 + i} first={3 + i / 10:.2f} "
            f"min={0.5 + i / 100:.3f}@{900 + i} last={0.52 + i / 100:.3f}"
        )
    path.write_text("\n".join(rows) + "\n")
    return path


def _labels(path: Path) -> Path:
    # a label file: its "train" key names the loss column of each log (it was "column
    # 'train' holds no numbers", an input error that stopped a glob with exit 2)
    with path.open("w") as out:
        for i in range(6):
            train = ("loss", "train_loss", "train/loss")[i % 3]
            record = {"file": f"logs/run{i}.csv", "must": ["smooth-decline"], "train": train,
                      "val": None, "points": 100 + i}  # fmt: skip
            out.write(json.dumps(record) + "\n")
    return path


def _notes(path: Path) -> Path:
    path.write_text(
        "# Experiments\n\nBaseline run reached loss: 0.52 after two epochs.\n"
        "The LoRA variant was worse; see the sweep.\n"
    )
    return path


def _summaries(delimiter: str):
    # a small notes table of per-run summaries (a new-user tester's): it was read as two
    # 1-point runs 'healthy', named and in a walk
    def write(path: Path) -> Path:
        rows = [["run", "lr", "final loss"], ["a", "0.1", "2.3"], ["b", "0.01", "1.9"]]
        if delimiter == "|":  # a markdown table
            rows.insert(1, ["---"] * 3)
            path.write_text("".join(f"| {' | '.join(r)} |\n" for r in rows))
        else:
            path.write_text("".join(delimiter.join(r) + "\n" for r in rows))
        return path

    return write


SUMMARIES = "not a loss log: a table of 2 per-run summaries (one row each in 'run': a, b), no step or epoch column"

NON_LOGS = {
    "summary.csv": (_summaries(","), SUMMARIES),
    "summary.tsv": (_summaries("\t"), SUMMARIES),
    "summary.md": (_summaries("|"), SUMMARIES),
    "notes.md": (_notes, "not a loss log: 1 line mentions a loss among prose"),
    "PROVENANCE.tsv": (
        _provenance,
        "not a loss log: a table of text (columns: file, repo, path, commit, license, points,"
        " notes), no column of loss values",
    ),
    "labels.jsonl": (
        _labels,
        "not a loss log: no column holds loss values ('train' holds names of losses: 'loss',"
        " 'train_loss', 'train/loss'; a label or settings file?)",
    ),
}


@pytest.mark.parametrize("name", sorted(NON_LOGS))
def test_a_named_non_log_is_a_one_line_error(name, runner, tmp_path):
    write, reason = NON_LOGS[name]
    path = write(tmp_path / name)
    result = runner.invoke(app, ["check", str(path)])
    assert result.exit_code == 2, result.output
    (error,) = result.stderr.strip().splitlines()
    assert error == f"lossdoctor: {path}: {reason}" + (
        " (a document or notes?)" if name == "notes.md" else ""
    )
    assert "HEALTHY" not in result.stdout


def test_non_logs_in_a_glob_or_a_walk_are_skipped_with_their_reason(runner, tmp_path):
    paths = [str(write(tmp_path / name)) for name, (write, _) in sorted(NON_LOGS.items())]
    log = tmp_path / "healthy.csv"
    log.write_bytes((ROOT / "examples" / "healthy.csv").read_bytes())
    code, doc = run_json(runner, *paths, str(log))
    assert code == 0
    assert [r["source"] for r in doc["runs"]] == [str(log)]
    skipped = {Path(f["path"]).name: f["detail"] for f in doc["files"]}
    for name, (_, reason) in NON_LOGS.items():
        assert skipped[name].startswith(reason), name
    # the folder walk gives the same reasons (a text file there must look like a log)
    code, doc = run_json(runner, str(tmp_path))
    assert code == 0
    walked = {Path(f["path"]).name: f["detail"] for f in doc["files"] if f["status"] == "skipped"}
    assert walked["PROVENANCE.tsv"] == skipped["PROVENANCE.tsv"]
    assert walked["labels.jsonl"] == skipped["labels.jsonl"]
    assert walked["summary.csv"] == walked["summary.tsv"] == skipped["summary.md"] == SUMMARIES
    assert walked["notes.md"] == "not a log (.md file)"


def test_logs_that_look_a_little_like_those_are_still_read(runner, tmp_path):
    # a log whose lines carry a tab after the level, a two-line log, a one-line log after
    # a banner line, and a table of numbers with a text column
    tabbed = tmp_path / "tab.log"
    lines = ["INFO\tstarting run"] + [
        f"INFO\tstep={i} loss={3 * 0.95**i:.4f}" for i in range(1, 31)
    ]
    tabbed.write_text("\n".join(lines) + "\n")
    two = tmp_path / "two.log"
    two.write_text("step=1 loss=2.0\nstep=2 loss=1.9\n")
    one = tmp_path / "one.log"
    one.write_text("starting\nstep=1 loss=2.5\n")
    table = tmp_path / "runs.tsv"
    table.write_text(
        "step\tphase\tloss\n" + "".join(f"{i}\ttrain\t{3 * 0.95**i:.4f}\n" for i in range(1, 41))
    )
    for path, points in ((tabbed, 30), (two, 2), (one, 1), (table, 40)):
        code, doc = run_json(runner, str(path))
        assert code == 0, path.name
        assert doc["runs"][0]["series"]["train"]["points"] == points, path.name


def test_short_logs_beside_summary_tables_are_still_read(runner, tmp_path):
    # a 3-epoch Keras CSVLogger, a 3-row notebook table, a log with a time column and no
    # step, a sweep's log whose run column repeats, a log with a text column of its own
    # per row after the loss: short logs, no per-run summaries
    logs = {
        "keras.csv": ("epoch,loss,val_loss\n0,2.31,2.40\n1,1.95,2.10\n2,1.70,1.98\n", [3]),
        "notebook.tsv": (
            "Step\tTraining Loss\tValidation Loss\n10\t2.31\t2.40\n20\t1.95\t2.10\n"
            "30\t1.70\t1.98\n",
            [3],
        ),
        "timed.csv": (
            "time,loss\n2024-06-10 12:00:01,2.3\n2024-06-10 12:00:02,2.1\n"
            "2024-06-10 12:00:03,2.0\n",
            [3],
        ),
        "sweep.csv": ("run,loss\na,2.3\na,2.1\na,2.0\nb,2.4\nb,2.2\nb,2.1\n", [3, 3]),
        "timings.csv": ("loss,elapsed\n2.3,1.2s\n2.1,2.4s\n2.0,3.6s\n", [3]),
    }
    for name, (text, points) in logs.items():
        path = tmp_path / name
        path.write_text(text)
        code, doc = run_json(runner, str(path))
        assert code == 0, name
        assert [r["series"]["train"]["points"] for r in doc["runs"]] == points, name
