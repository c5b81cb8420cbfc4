"""Live streams that hold several runs (issue 14): `watch` and `run` judge a sweep's log
run by run (a `trial_id`/`run`/`version` key, or `--group-by`) and a log of runs from
scratch one after another session by session, as `check` does: one report per run
named `[COLUMN=VALUE]` / `[session k of N]`, a line when a run ends with its verdict,
the exit code the worst run's.  Each test failed before: the stream was one run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from lossdoctor import synth as curves

from conftest import ROOT, fired

ENV = {**os.environ, "NO_COLOR": "1", "LOSSDOCTOR_PLAIN": "1"}
LD = [sys.executable, "-m", "lossdoctor"]
FIXTURES = ROOT / "tests" / "fixtures"

RUNS_WRITER = """
import math, sys, time
# runs one after another, each from iteration 0 (a sweep driver, a restarted script)
for scale in [float(s) for s in sys.argv[1:]]:
    for i in range(400):
        loss = 4 * math.exp(-i / 80) + 1 + 0.02 * math.sin(i)
        loss = loss * scale if scale > 0 else loss * math.exp(i / 40)  # < 0: diverges
        print(f"iter {i}: loss {loss:.4f}, time 30ms", flush=True)
        if i % 100 == 0:
            time.sleep(0.02)
"""


def _sweep_csv(path: Path) -> Path:
    rows = ["trial_id,step,loss"]
    for index, name in enumerate(("a", "b", "c")):
        _, values = curves.healthy(n=200, seed=40 + index)
        values = values.copy()
        if name == "b":
            values[150:] = np.nan
        rows += [f"{name},{(i + 1) * 10},{v:.5g}" for i, v in enumerate(values)]
    path.write_text("\n".join(rows) + "\n")
    return path


def _watch(data: bytes, *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [*LD, "watch", *args, "-"], input=data, capture_output=True, env=ENV, timeout=300
    )


def test_watch_of_a_sweep_gives_one_report_per_trial(tmp_path):
    path = _sweep_csv(tmp_path / "sweep.csv")
    proc = _watch(path.read_bytes(), "-f", f"json:{tmp_path / 'r.json'}")
    assert proc.returncode == 1, proc.stderr  # the blown-up trial's
    runs = json.loads((tmp_path / "r.json").read_text())["runs"]
    assert [(r["group"], r["verdict"]) for r in runs] == [
        ("trial_id=a", "healthy"),
        ("trial_id=b", "failing"),
        ("trial_id=c", "healthy"),
    ]
    assert [r["series"]["train"]["points"] for r in runs] == [200, 200, 200]
    assert [r["series"]["train"]["first_step"] for r in runs] == [10, 10, 10]
    nan = next(f for f in runs[1]["findings"] if f["rule"] == "non-finite")
    assert nan["evidence"]["start_step"] == 1510
    said = proc.stdout.decode()
    assert "lossdoctor: [trial_id=a] run ended at step 2000: healthy; a new run started" in said
    assert "lossdoctor: [trial_id=b] run ended at step 2000: failing (non-finite)" in said


def test_watch_of_appended_keras_runs_judges_each_session(tmp_path):
    data = (FIXTURES / "keras_appended_runs.csv").read_bytes()
    proc = _watch(data, "-f", "json")
    assert proc.returncode == 0, proc.stderr
    runs = json.loads(proc.stdout)["runs"]
    assert [r["group"] for r in runs] == [f"session {k} of 4" for k in (1, 2, 3, 4)]
    assert [r["series"]["train"]["points"] for r in runs] == [5, 4, 10, 5]
    assert [r["series"]["train"]["first_step"] for r in runs] == [0, 0, 0, 0]
    assert all(r["verdict"] == "healthy" for r in runs)
    said = proc.stderr.decode()  # alerts go to stderr when the report is on stdout
    assert "lossdoctor: [session 1] run ended at epoch 4: healthy" in said
    assert "lossdoctor: [session 3] run ended at epoch 9: healthy" in said


def test_run_of_runs_from_scratch_reports_each_and_exits_with_the_worst(tmp_path):
    writer = tmp_path / "w.py"
    writer.write_text(RUNS_WRITER)
    report = tmp_path / "r.json"
    proc = subprocess.run(
        [*LD, "run", "-f", f"json:{report}", "--", sys.executable, str(writer), "1", "-1"],
        capture_output=True, env=ENV, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    first, second = json.loads(report.read_text())["runs"]
    assert (first["group"], second["group"]) == ("session 1 of 2", "session 2 of 2")
    assert first["verdict"] == "healthy"  # the restart is no loss jump of the first run
    assert first["series"]["train"]["points"] == 400
    assert second["series"]["train"]["first"] == 5.0  # its own first logged loss
    assert "divergence" in fired(second)
    said = proc.stderr.decode()
    assert "lossdoctor: [session 1] run ended at step 399: healthy; a new run started" in said


def test_a_live_resume_with_a_fresh_counter_stays_one_run(tmp_path):
    # the loss goes on where it was after "iter 0" again: the same training, steps shifted
    lines = [f"iter {i}: loss {4 * np.exp(-i / 80) + 1:.4f}, time 30ms" for i in range(400)]
    lines += [
        f"iter {i}: loss {4 * np.exp(-(i + 400) / 80) + 1:.4f}, time 30ms" for i in range(300)
    ]
    proc = _watch(("\n".join(lines) + "\n").encode(), "-f", "json")
    assert proc.returncode == 0, proc.stderr
    (run,) = json.loads(proc.stdout)["runs"]
    assert "group" not in run
    assert run["series"]["train"]["points"] == 700
    assert run["series"]["train"]["last_step"] == 699
    assert any("the same training resumed; its steps shifted by 400" in n for n in run["notes"])


def test_watch_group_by_names_a_key_of_json_lines(tmp_path):
    lines = []
    for seed in (1, 2):
        _, values = curves.healthy(n=150, seed=seed)
        lines += [
            json.dumps({"seed": seed, "step": i, "loss": float(v)}) for i, v in enumerate(values)
        ]
    data = ("\n".join(lines) + "\n").encode()
    proc = _watch(data, "--group-by", "seed", "-f", "summary-json")
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(proc.stdout)["runs"]
    assert [r["run"] for r in rows] == ["- [seed=1]", "- [seed=2]"]
    # 'seed' is no run-id name: without --group-by, both runs restart at step 0 from
    # their start level: two sessions
    proc = _watch(data, "-f", "json")
    assert [r["group"] for r in json.loads(proc.stdout)["runs"]] == [
        "session 1 of 2",
        "session 2 of 2",
    ]


def test_trials_logging_in_turn_are_each_judged_whole(tmp_path):
    # two trials of a parallel sweep, their lines interleaved: each run is all its lines
    _, calm = curves.healthy(n=200, seed=5)
    _, blowing = curves.diverging(n=200, seed=6, factor=6.0)
    lines = []
    for i in range(200):
        lines.append(json.dumps({"trial_id": "calm", "step": i, "loss": float(calm[i])}))
        lines.append(json.dumps({"trial_id": "blowing", "step": i, "loss": float(blowing[i])}))
    proc = _watch(("\n".join(lines) + "\n").encode(), "-f", "json")
    assert proc.returncode == 1, proc.stderr
    runs = json.loads(proc.stdout)["runs"]
    assert [(r["group"], r["verdict"]) for r in runs] == [
        ("trial_id=calm", "healthy"),
        ("trial_id=blowing", "failing"),
    ]
    assert [r["series"]["train"]["points"] for r in runs] == [200, 200]
    assert "divergence" in fired(runs[1])


def test_a_run_key_with_a_new_value_on_each_line_names_no_runs():
    from lossdoctor.engine.loader import load_rules
    from lossdoctor.live.monitor import LiveMonitor

    monitor = LiveMonitor("-", load_rules())
    _, values = curves.healthy(n=120, seed=8)
    monitor.add_lines(
        [
            json.dumps({"run_id": f"row{i}", "step": i, "loss": float(v)})
            for i, v in enumerate(values)
        ]
    )
    (report,) = monitor.reports()
    assert report.group == ""
    assert report.series["train"].points == 120
    assert any("'run_id' names no runs" in n for n in report.notes)


def _in_turn(names: tuple[str, ...], nan_trial: str = "", nan_at: int = 10**9) -> bytes:
    lines = []
    for step in range(1, 301):
        for index, name in enumerate(names):
            if name == nan_trial and step > nan_at:
                continue
            loss = (3 + index) * np.exp(-step / 100) + 0.5 + 0.01 * np.sin(step * (index + 1))
            value = float("nan") if name == nan_trial and step == nan_at else float(loss)
            lines.append(json.dumps({"trial_id": name, "step": step, "loss": value}))
    return ("\n".join(lines) + "\n").encode()


def test_three_trials_logging_in_turn_from_the_first_line_are_three_runs():
    # a, b, c, a, b, c, ...: the third name came before any came twice, which was taken
    # for a key with a new value on each line: one run of all three trials' points
    proc = _watch(_in_turn(("a", "b", "c"), "b", 200), "-f", "json")
    assert proc.returncode == 1, proc.stderr
    runs = json.loads(proc.stdout)["runs"]
    assert [(r["group"], r["verdict"]) for r in runs] == [
        ("trial_id=a", "healthy"),
        ("trial_id=b", "failing"),
        ("trial_id=c", "healthy"),
    ]
    assert [r["series"]["train"]["points"] for r in runs] == [300, 200, 300]
    nan = next(f for f in runs[1]["findings"] if f["rule"] == "non-finite")
    assert nan["evidence"]["start_step"] == 200


def test_trials_logging_in_turn_print_no_run_ended_line():
    # each switch of trial was taken for the end of the run before until a name came
    # again: one false "run ended at step 1" line per trial
    for args in ((), ("--group-by", "trial_id")):
        proc = _watch(_in_turn(("a", "b")), *args, "-f", "summary")
        assert proc.returncode == 0, proc.stderr
        assert "run ended" not in proc.stderr.decode()
        assert "- [trial_id=a]  healthy" in proc.stdout.decode()
        assert "- [trial_id=b]  healthy" in proc.stdout.decode()


def test_stop_on_stops_at_a_trial_logging_in_turn_that_breaks():
    # only the run of the last record was judged live: trial b's NaN was never alerted
    # and --stop-on read the sweep to its end
    proc = _watch(_in_turn(("a", "b", "c"), "b", 200), "--stop-on", "error", "-f", "json")
    assert proc.returncode == 1, proc.stderr
    said = proc.stderr.decode()
    assert "lossdoctor: step 200: [trial_id=b] error LD101 non-finite" in said
    runs = json.loads(proc.stdout)["runs"]
    assert [r["series"]["train"]["last_step"] for r in runs][1] == 200
