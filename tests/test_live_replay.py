"""A run in progress is not a finished run: every prefix of a healthy run, fed line by
line to the live monitor, stays below `error` (and below `warning` unless the whole run is
a warning), while broken runs are caught a bounded number of lines after the fault."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest

import lossdoctor
from lossdoctor import synth
from lossdoctor.api import diagnose
from lossdoctor.detectors import load_builtin_detectors
from lossdoctor.engine.evaluate import evaluate
from lossdoctor.engine.loader import load_rules, parse_rule
from lossdoctor.errors import RulePackError
from lossdoctor.live.buffer import HEAD, PointBuffer
from lossdoctor.live.monitor import LiveMonitor
from lossdoctor.model import Run, Series

import replay as R

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "corpus"
ENV = {**os.environ, "NO_COLOR": "1", "LOSSDOCTOR_PLAIN": "1"}


def _healthy_cases() -> dict[str, list[str]]:
    cases: dict[str, list[str]] = {}
    s, v, lr = R.llm_warmup()
    cases["llm-warmup-text"] = R.as_text(s, v)
    cases["llm-warmup-jsonl-lr"] = R.as_jsonl(s, v, lr)
    cases["llm-warmup-csv"] = R.as_csv(s, v)
    s, v = R.early_drop_flat()
    cases["early-drop-flat-tail-csv"] = R.as_csv(s, v)
    cases["early-drop-flat-tail-text"] = R.as_text(s, v)
    s, v = R.small_batch()
    cases["small-batch-noise-jsonl"] = R.as_jsonl(s, v)
    # its first 10 lines once gave an oscillation warning (another seed: high-flatline)
    cases["hf-trainer-stdout"] = R.hf_trainer_stdout()
    s, v, lr = synth.warmup()
    cases["warmup-bump-jsonl-lr"] = R.as_jsonl(s, v, lr)
    s, v, lr = synth.step_decay()
    cases["step-decay-jsonl-lr"] = R.as_jsonl(s, v, lr)
    for name in ("healthy.csv", "plateau_metrics.csv"):
        cases[f"examples/{name}"] = R.file_lines(ROOT / "examples" / name)
    for name in ("nanogpt.log", "llmc_stdout.log", "megatron.log", "keras_stdout.txt"):
        cases[f"fixtures/{name}"] = R.file_lines(ROOT / "tests" / "fixtures" / "text" / name)
    return cases


HEALTHY = _healthy_cases()


@pytest.mark.parametrize("name", sorted(HEALTHY))
def test_no_prefix_of_a_healthy_run_reaches_error(name):
    result = R.replay(HEALTHY[name])
    assert result.final_verdict == "healthy"
    assert result.first("error") is None
    assert result.first("warning") is None


@pytest.mark.parametrize(
    ("warmup", "tau", "ranks"),
    [(20_000, 60.0, 8), (2_000, 600.0, 8), (60_000, 600.0, 1)],
    ids=["8-ranks-fast", "8-ranks-slow", "60k-warmup-slow"],
)
def test_no_prefix_of_a_long_warmup_reaches_error(warmup, tau, ranks):
    # high-flatline once judged any 2,000 lines: 8 lines per step (one per rank) were
    # stopped at step 258, a 60,000-step warmup of a slow learner at step 2,067
    s, v = R.slow_warmup(warmup, tau=tau, ranks=ranks)
    result = R.replay(R.as_text(s, v))
    assert result.first("error") is None


def _shared_healthy() -> list[Path]:
    labels = SHARED / "real" / "labels.jsonl"
    if not labels.exists():
        return []
    out = []
    for line in labels.read_text().splitlines():
        label = json.loads(line)
        if label["verdicts"] == ["healthy"]:
            out.append(SHARED / "real" / label["file"])
    return out[:12]


@pytest.mark.skipif(not SHARED.exists(), reason="../shared is absent")
@pytest.mark.parametrize("path", _shared_healthy(), ids=lambda p: p.name)
def test_no_prefix_of_a_real_healthy_log_reaches_error(path):
    lines = R.file_lines(path)
    result = R.replay(lines)
    assert result.first("error") is None
    if result.final_verdict == "healthy":
        assert result.first("warning") is None


def _with_fault(kind: str) -> tuple[list[str], int]:
    """Return JSON lines of a healthy run that breaks at line ``at`` (the fault's start)."""
    rng = np.random.default_rng(7)
    n, at = 2500, 600
    steps = np.arange(n, dtype=np.float64)
    loss = (1.5 + 3 * np.exp(-steps / 200)) * np.exp(rng.normal(0, 0.02, n))
    after = steps[at:] - at
    if kind == "nan":
        loss[at:] = np.nan
    elif kind == "explosion":
        loss[at:] = loss[at] * 1.3**after
    elif kind == "divergence":
        loss[at:] = loss[at] * np.exp(after / 300) * np.exp(rng.normal(0, 0.02, n - at))
    elif kind == "flatline":
        loss = 10.8 * np.exp(rng.normal(0, 0.01, n))
        at = 0
    elif kind == "flatline-noisy":
        loss = 10.8 * np.exp(rng.normal(0, 0.2, n))
        at = 0
    return R.as_jsonl(steps, np.where(np.isfinite(loss), loss, np.nan)), at


#: Lines after the fault's start by which it must be caught at error.
DELAY = {"nan": 1, "explosion": 20, "divergence": 300, "flatline": 2050, "flatline-noisy": 2050}


@pytest.mark.parametrize("kind", sorted(DELAY))
def test_broken_runs_are_caught_with_a_bounded_delay(kind):
    lines, at = _with_fault(kind)
    result = R.replay(lines, dense=range(at, at + DELAY[kind] + 1))
    caught = result.first("error")
    assert caught is not None
    lines_fed, finding = caught
    assert at < lines_fed <= at + DELAY[kind], (lines_fed, finding.rule)


def test_an_explosion_before_the_first_nan_is_a_divergence():
    # it was "1 spikes" (and no divergence) when the run stopped at its first NaN
    data = "".join(
        json.dumps({"step": i, "loss": round(4 * 2.718 ** (-i / 100) + 1, 4)}) + "\n"
        for i in range(200)
    )
    data += "".join(
        json.dumps({"step": 200 + k, "loss": 1.55 * 2 ** (k + 1)}) + "\n" for k in range(10)
    )
    data += '{"step": 210, "loss": NaN}\n'
    proc = subprocess.run(
        [sys.executable, "-m", "lossdoctor", "watch", "--stop-on", "error", "-f", "json", "-"],
        input=data.encode(), capture_output=True, env=ENV, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 1
    findings = {f["rule"]: f for f in json.loads(proc.stdout)["runs"][0]["findings"]}
    assert findings["divergence"]["severity"] == "error"
    assert "exploded" in findings["divergence"]["message"]


@pytest.mark.parametrize("name", ["early-drop-flat-tail-csv", "small-batch-noise-jsonl"])
def test_check_and_the_end_of_watch_agree(name, tmp_path):
    path = tmp_path / ("log.csv" if name.endswith("csv") else "log.jsonl")
    path.write_text("\n".join(HEALTHY[name]) + "\n")
    monitor = LiveMonitor(str(path), load_rules())
    monitor.add_lines(HEALTHY[name])
    live = monitor.report(finished=True)
    assert live is not None
    assert live.verdict == diagnose(str(path)).verdict == "healthy"


def test_watch_ends_healthy_on_a_long_run_with_an_early_drop():
    lines = "".join(
        f"iter {i}: loss {3.0 + 1.5 * np.exp(-i / 1000) + 0.03 * np.sin(i * 12.9898):.4f}, "
        "time 10ms\n"
        for i in range(300_000)
    )
    proc = subprocess.run(
        [sys.executable, "-m", "lossdoctor", "watch", "-"], input=lines.encode(),
        capture_output=True, env=ENV, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-2000:]
    assert b"HEALTHY" in proc.stdout


# --- the live buffer ----------------------------------------------------------------------


def test_the_buffer_keeps_the_start_and_extremes_and_does_not_decay():
    buffer = PointBuffer()
    n = 2_000_000
    for first in range(0, n, 10_000):
        steps = np.arange(first, first + 10_000, dtype=np.float64)
        values = 3.0 + 1.5 * np.exp(-steps / 2000)
        if first == 100_000:
            values[5] = 50.0  # an early spike, folded and merged many times
        if first == 1_500_000:
            values[9] = np.nan
        buffer.extend(steps.tolist(), values.tolist())
    steps, values = buffer.arrays()
    assert len(buffer) < 20_000
    assert buffer.total == n
    assert steps[:HEAD].tolist() == list(range(HEAD))  # the start at full resolution
    assert 50.0 in values.tolist()
    assert 100_005.0 in steps.tolist()
    assert np.isnan(values).sum() == 1
    middle = buffer.mid["first_s"]
    gaps = np.diff(middle[:-1])
    # one resolution across the whole middle: the oldest buckets as fine as the newest
    assert gaps[0] == gaps[-1] == buffer.bucket
    assert (gaps == buffer.bucket).mean() > 0.99


# --- rules state what they need -------------------------------------------------------------


def _run(values: np.ndarray) -> Run:
    steps = np.arange(values.shape[0], dtype=np.float64)
    return Run("x", "test", {"train": Series("train", "loss", steps, values)})


def test_a_partial_run_waits_for_the_evidence_a_rule_requires():
    rules = load_rules()
    flat = _run(np.full(40, 10.8))
    partial = evaluate(flat, rules, partial=True)
    assert "high-flatline" not in [f.rule for f in partial.findings]
    waits = {name: why for _, name, why in partial.skipped}
    assert waits["high-flatline"] == "waiting for 2000 points (40 so far)"
    assert waits["plateau"] == "judged on a finished run only"
    whole = evaluate(flat, rules)
    assert "high-flatline" in [f.rule for f in whole.findings]


def test_a_requires_table_is_checked_when_the_pack_loads():
    rule = next(r for r in load_rules() if r.name == "high-flatline")
    data = tomllib.loads(Path(rule.path).read_text())
    data["requires"] = {"pionts": 3}
    with pytest.raises(RulePackError, match=r"requires\.pionts"):
        parse_rule(data, Path(rule.path), load_builtin_detectors())


def test_an_alert_is_shown_again_when_its_count_grows():
    monitor = LiveMonitor("-", load_rules())
    healthy = [json.dumps({"step": i, "loss": 4 - i / 100}) for i in range(100)]
    monitor.add_lines([*healthy, '{"step": 100, "loss": NaN}'])
    first = monitor.changes(monitor.report())
    assert [f.evidence["count"] for f in first if f.rule == "non-finite"] == [1]
    monitor.add_lines([json.dumps({"step": 101 + i, "loss": float("nan")}) for i in range(94)])
    again = monitor.changes(monitor.report())
    assert [f.evidence["count"] for f in again if f.rule == "non-finite"] == [95]
    assert "95 NaN/Inf" in next(f.message for f in again if f.rule == "non-finite")


def test_the_first_nan_does_not_show_two_contradictory_likely_causes():
    monitor = LiveMonitor("-", load_rules())
    healthy = [json.dumps({"step": i, "loss": 4 - i / 100}) for i in range(100)]
    monitor.add_lines([*healthy, '{"step": 100, "loss": NaN}'])
    report = monitor.report()
    assert report is not None
    finding = next(f for f in report.findings if f.rule == "non-finite")
    likely = [c["cause"] for c in finding.causes if c["likely"]]
    assert not ("Training blew up" in likely and "A bad batch" in likely), likely
    monitor.add_lines([json.dumps({"step": 101 + i, "loss": float("nan")}) for i in range(5)])
    report = monitor.report()
    assert report is not None
    finding = next(f for f in report.findings if f.rule == "non-finite")
    assert [c["cause"] for c in finding.causes if c["likely"]] == ["Training blew up"]


def test_the_live_monitor_and_lossdoctor_monitor_share_one_vocabulary():
    from lossdoctor import Monitor

    public = {n for n in dir(Monitor) if not n.startswith("_")} - {"add"}
    assert public == {"findings", "report", "should_stop"}
    assert public <= set(dir(LiveMonitor))
    monitor = LiveMonitor("-", load_rules())
    monitor.add_lines([*(json.dumps({"step": i, "loss": 4 - i / 100}) for i in range(100))])
    assert monitor.report() is not None
    assert not monitor.should_stop("error")
    monitor.add_lines(['{"step": 100, "loss": NaN}'])
    monitor.report()
    assert monitor.should_stop("error")
    assert "non-finite" in [f.rule for f in monitor.findings]


# --- check --in-progress: a log still being written ---------------------------------------


@pytest.mark.parametrize(
    "name", ["llm-warmup-csv", "llm-warmup-jsonl-lr", "llm-warmup-text", "small-batch-noise-jsonl"]
)
def test_check_in_progress_never_fails_a_prefix_of_a_healthy_run(name, tmp_path):
    lines = HEALTHY[name]
    path = tmp_path / ("log.csv" if "csv" in name else "log.jsonl" if "jsonl" in name else "t.log")
    failing = []
    for upto in sorted({*range(2, 40, 3), *R.schedule(len(lines))[60::6]}):
        # the writer is in the middle of its next line
        torn = lines[upto][: len(lines[upto]) // 2] if upto < len(lines) else ""
        path.write_text("\n".join(lines[:upto]) + "\n" + torn)
        report = lossdoctor.diagnose(str(path), in_progress=True)
        if report.reaches("error"):
            failing.append((upto, [f.rule for f in report.findings if f.severity == "error"]))
    assert failing == []


def test_check_in_progress_judges_the_evidence_so_far_and_says_so(tmp_path):
    path = tmp_path / "flat.csv"
    path.write_text("step,loss\n" + "".join(f"{i},{10.9 - i / 1000:.4f}\n" for i in range(40)))
    whole = subprocess.run(
        [sys.executable, "-m", "lossdoctor", "check", "-f", "json", str(path)],
        capture_output=True, env=ENV, timeout=120,
    )  # fmt: skip
    assert whole.returncode == 1  # a finished run of 40 flat points: it learned nothing
    assert "high-flatline" in [f["rule"] for f in json.loads(whole.stdout)["runs"][0]["findings"]]
    with path.open("a") as out:
        out.write("40,10.")  # the writer is in the middle of a line
    proc = subprocess.run(
        [sys.executable, "-m", "lossdoctor", "check", "--in-progress", "-f", "json", str(path)],
        capture_output=True, env=ENV, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout
    run = json.loads(proc.stdout)["runs"][0]
    assert run["verdict"] == "healthy"
    assert run["series"]["train"]["points"] == 40  # the torn line "40,10." left out
    assert "the last line is still being written: left out" in run["notes"]
    assert any(n.startswith("judged as a run in progress: ") for n in run["notes"])
    # a NaN is judged at once, in progress or not
    with path.open("a") as out:
        out.write("0\n41,nan\n")
    proc = subprocess.run(
        [sys.executable, "-m", "lossdoctor", "check", "--in-progress", str(path)],
        capture_output=True, env=ENV, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 1
    assert b"LD101 non-finite" in proc.stdout


def test_the_live_x_is_a_step_once_any_line_logs_one():
    monitor = LiveMonitor("-", load_rules())
    monitor.add_lines(
        ["batch_size = 12", "iter 0: loss 4.0, time 1ms", "iter 1: loss 3.9, time 1ms"]
    )
    run = monitor.run()
    assert run is not None
    assert run.series["train"].x_kind == "step"  # was "index", from the config line
    hf = LiveMonitor("-", load_rules())
    hf.add_lines(R.hf_trainer_stdout(20))
    run = hf.run()
    assert run is not None
    assert run.series["train"].x_kind == "epoch"
