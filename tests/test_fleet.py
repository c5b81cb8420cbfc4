"""Many runs: the fleet summary (rows, order, totals, formats), the report cache and the
Dask executor on a real LocalCluster (worker processes) against the local run."""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from lossdoctor import cli_fleet
from lossdoctor import synth as curves
from lossdoctor.api import select_rules
from lossdoctor.cache import ReportCache
from lossdoctor.cli import app
from lossdoctor.config import Settings
from lossdoctor.fleet import Options, diagnose_entries, diagnose_stream

from conftest import write_curve

#: Scheduler, workers and the scheduler's HTTP server listen on the loopback interface only.
LOOPBACK_ONLY = {"host": "127.0.0.1", "dashboard_address": "127.0.0.1:0"}


@pytest.fixture
def sweep(tmp_path) -> list[str]:
    """Four runs: healthy (two, one ending lower), spiky (warning), diverging (failing)."""
    return [
        str(write_curve(tmp_path / "a-healthy.csv", *curves.healthy(seed=1))),
        str(write_curve(tmp_path / "b-spiky.csv", *curves.spiky())),
        str(write_curve(tmp_path / "c-diverging.csv", *curves.diverging())),
        str(write_curve(tmp_path / "d-healthy.csv", *curves.healthy(seed=2, end=1.2))),
    ]


def test_summary_csv_and_json_sorted_by_verdict_with_totals(runner, sweep, tmp_path):
    out_csv, out_json = tmp_path / "s.csv", tmp_path / "s.json"
    result = runner.invoke(
        app,
        ["check", *sweep, "--sort", "verdict", "-f", f"summary-csv:{out_csv}",
         "-f", f"summary-json:{out_json}"],
    )  # fmt: skip
    assert result.exit_code == 1  # the diverging run fails
    rows = list(csv.DictReader(io.StringIO(out_csv.read_text())))
    assert [Path(r["run"]).name for r in rows] == [
        "c-diverging.csv", "b-spiky.csv", "d-healthy.csv", "a-healthy.csv"
    ]  # fmt: skip
    assert [r["verdict"] for r in rows] == ["failing", "warning", "healthy", "healthy"]
    assert rows[1]["top_finding"] == "LD201 spikes"
    assert float(rows[2]["final"]) < float(rows[3]["final"])  # healthy: lower final loss first
    doc = json.loads(out_json.read_text())
    assert doc["totals"]["runs"] == 4
    assert doc["totals"]["verdicts"] == {"healthy": 2, "warning": 1, "failing": 1}
    assert {"finding": "LD201 spikes", "runs": 1} in doc["totals"]["findings"]
    assert [r["run"] for r in doc["runs"]] == [r["run"] for r in rows]


def test_summary_sorted_by_best_loss_and_markdown(runner, sweep):
    result = runner.invoke(app, ["check", *sweep, "--sort", "best", "-f", "summary-markdown"])
    lines = [ln for ln in result.stdout.splitlines() if ln.startswith("| ") and "/" in ln]
    best = [float(ln.split(" | ")[3]) for ln in lines]
    assert len(best) == 4
    assert best == sorted(best)
    assert result.stdout.startswith("## lossdoctor: 4 runs: 2 healthy, 1 warning, 1 failing\n")
    assert "- LD201 spikes: 1 run\n" in result.stdout


def test_text_summary_lists_errors_and_an_unknown_sort_is_refused(runner, sweep, tmp_path):
    missing = str(tmp_path / "missing.csv")
    result = runner.invoke(app, ["check", sweep[0], missing, "-f", "summary"])
    assert result.exit_code == 2
    assert "2 runs: 1 healthy, 1 error" in result.stdout
    (row,) = [ln for ln in result.stdout.splitlines() if ln.startswith(missing)]
    assert row.split()[1] == "error"
    assert "no such file or folder" in result.stdout
    refused = runner.invoke(app, ["check", *sweep, "--sort", "loss"])
    assert refused.exit_code == 2
    assert refused.stderr == (
        "lossdoctor: --sort: unknown order 'loss' (choose from input, verdict, final, best)\n"
    )


def test_a_summary_only_check_keeps_rows_not_reports(sweep):
    rules = select_rules(Settings())
    reports, summary, _ = cli_fleet.diagnose(sweep, rules=rules, keep=False)
    assert reports == []
    assert [r.verdict for r in summary.rows] == ["healthy", "warning", "failing", "healthy"]


# --- the cache -------------------------------------------------------------------------------


def _stream(paths: list[str], cache: ReportCache, rules) -> list[dict]:
    return [r.to_dict() for r in diagnose_stream(paths, Options(rules=rules), cache=cache)]


def test_the_cache_rediagnoses_only_changed_runs(sweep, tmp_path, monkeypatch):
    rules = select_rules(Settings())
    folder = tmp_path / "cache"
    first = _stream(sweep, ReportCache(folder, Options(rules=rules).fingerprint()), rules)

    import lossdoctor.api

    diagnosed: list[str] = []
    real = lossdoctor.api.diagnose_source

    def counting(source, **kwargs):
        diagnosed.append(source)
        return real(source, **kwargs)

    monkeypatch.setattr(lossdoctor.api, "diagnose_source", counting)
    cache = ReportCache(folder, Options(rules=rules).fingerprint())
    assert _stream(sweep, cache, rules) == first
    assert diagnosed == []
    assert (cache.hits, cache.misses) == (4, 0)

    write_curve(Path(sweep[2]), *curves.healthy(seed=3))  # the run was rerun and is fine now
    stat = os.stat(sweep[2])
    os.utime(sweep[2], ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    again = _stream(sweep, ReportCache(folder, Options(rules=rules).fingerprint()), rules)
    assert diagnosed == [sweep[2]]
    assert [r["verdict"] for r in again] == ["healthy", "warning", "healthy", "healthy"]

    fewer = select_rules(Settings(ignore=("spikes",)))
    _stream(sweep, ReportCache(folder, Options(rules=fewer).fingerprint()), fewer)
    assert len(diagnosed) == 1 + 4  # other rules: every run again


def test_cache_on_the_command_line_gives_the_same_report(runner, sweep, tmp_path):
    args = ["check", "-f", "json", "--cache", str(tmp_path / "cache"), *sweep]
    first, second = runner.invoke(app, args), runner.invoke(app, args)
    plain = runner.invoke(app, ["check", "-f", "json", *sweep])
    assert first.exit_code == second.exit_code == plain.exit_code == 1
    assert first.stdout == second.stdout == plain.stdout


# --- Dask ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dask_scheduler() -> Iterator[str]:
    """A LocalCluster of two single-threaded worker processes."""
    from distributed import LocalCluster

    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, **LOOPBACK_ONLY
    ) as cluster:
        yield cluster.scheduler_address


def test_dask_executor_gives_the_local_json_byte_for_byte(runner, sweep, tmp_path, dask_scheduler):
    runs = [*sweep, str(tmp_path / "missing.csv"), str(Path(__file__).parent / "test_fleet.py")]
    local = runner.invoke(app, ["check", "-f", "json", *runs])
    dask = runner.invoke(
        app, ["check", "-f", "json", "--executor", "dask", "--scheduler", dask_scheduler, *runs]
    )
    assert local.exit_code == dask.exit_code == 2
    assert dask.stdout == local.stdout
    doc = json.loads(dask.stdout)
    assert len(doc["runs"]) == 5  # this Python file is no loss log: listed as skipped
    skipped = [f["path"] for f in doc["files"] if f["status"] == "skipped"]
    assert skipped == [runs[-1]]


def test_dask_executor_needs_a_scheduler(runner, sweep, monkeypatch):
    monkeypatch.delenv("DASK_SCHEDULER_ADDRESS", raising=False)
    result = runner.invoke(app, ["check", "--executor", "dask", *sweep])
    assert result.exit_code == 2
    assert result.stderr == (
        "lossdoctor: --executor dask needs --scheduler tcp://HOST:PORT (or DASK_SCHEDULER_ADDRESS)\n"
    )


class _LostWorkers:
    """An executor whose every task fails the way a lost worker does."""

    capacity = 2
    batch = 2

    def share(self, value):
        return value

    def submit(self, fn, *args):
        class Lost:
            def result(self):
                raise RuntimeError("worker tcp://10.0.0.9:4242 died")

        return Lost()

    def close(self):
        pass


def test_a_failed_task_makes_error_runs_and_the_stream_goes_on(sweep, monkeypatch):
    monkeypatch.delenv("LOSSDOCTOR_DEBUG", raising=False)
    rules = select_rules(Settings())
    reports = list(diagnose_stream(sweep, Options(rules=rules), executor=_LostWorkers()))
    assert [r.source for r in reports] == sweep
    assert reports[0].error == (
        f"{sweep[0]}: diagnosis failed (RuntimeError: worker tcp://10.0.0.9:4242 died)"
    )


def test_an_unknown_executor_is_refused(runner, sweep):
    result = runner.invoke(app, ["check", "--executor", "ray", *sweep])
    assert result.exit_code == 2
    assert result.stderr == "lossdoctor: unknown executor 'ray' (choose from local, dask)\n"


def _broken_evaluate(*args, **kwargs):
    raise ZeroDivisionError("division by zero")


def test_a_bug_in_the_diagnosis_is_an_internal_error_not_a_failed_run(sweep, monkeypatch, capsys):
    import sys

    from lossdoctor import api, cli

    monkeypatch.delenv("LOSSDOCTOR_DEBUG", raising=False)
    monkeypatch.setattr(api, "evaluate", _broken_evaluate)
    monkeypatch.setattr(sys, "argv", ["lossdoctor", "check", *sweep])
    with pytest.raises(SystemExit) as stopped:
        cli.main()
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert err == (
        f"lossdoctor: internal error: while diagnosing {sweep[0]}: ZeroDivisionError: "
        "division by zero (set LOSSDOCTOR_DEBUG=1 for details)\n"
    )


def test_a_bug_in_a_worker_process_reaches_the_caller(sweep, monkeypatch):
    import multiprocessing

    from lossdoctor import api
    from lossdoctor.errors import DiagnosisBug
    from lossdoctor.executors import ProcessPool

    if "fork" not in multiprocessing.get_all_start_methods():
        pytest.skip("the patched function reaches workers only through fork")
    monkeypatch.setattr(api, "evaluate", _broken_evaluate)
    pool = ProcessPool(2)
    pool._pool._mp_context = multiprocessing.get_context("fork")
    try:
        with pytest.raises(DiagnosisBug) as raised:
            list(diagnose_stream(sweep, Options(rules=select_rules(Settings())), executor=pool))
    finally:
        pool.close()
    assert raised.value.detail == "ZeroDivisionError: division by zero"
    assert raised.value.source in sweep


class _CountsPickles:
    """A value that counts how often this process pickles it."""

    pickled = 0

    def __init__(self, payload: int) -> None:
        self.payload = payload

    def __getstate__(self) -> dict[str, int]:
        type(self).pickled += 1
        return {"payload": self.payload}


def _payload_plus(value: _CountsPickles, extra: int) -> int:
    return value.payload + extra


def test_local_workers_receive_a_shared_value_once_not_with_every_task():
    """``--jobs N``: the options (the rule pack, ~80 kB pickled) reach each worker when it
    starts; the tasks carry a handle of them, so they are not pickled per task."""
    from lossdoctor.executors import ProcessPool

    _CountsPickles.pickled = 0
    pool = ProcessPool(2)
    try:
        shared = pool.share(_CountsPickles(40))
        results = [pool.submit(_payload_plus, shared, extra).result() for extra in range(8)]
    finally:
        pool.close()
    assert results == [40 + extra for extra in range(8)]
    assert _CountsPickles.pickled <= 2  # none when workers fork, one a worker when spawned


def test_tasks_shrink_to_one_source_at_the_end():
    # the workers finish close together: no worker is left alone with a task of 8 runs
    from lossdoctor.fleet import _chunks

    sizes = [c.stop - c.start for c in _chunks(500, 8, 8)]
    assert sum(sizes) == 500
    assert max(sizes) == 8
    assert sizes[-8:] == [1] * 8
    assert sizes == sorted(sizes, reverse=True)
    assert [c.stop - c.start for c in _chunks(3, 1, 1)] == [1, 1, 1]


def test_workers_write_the_json_entries_of_their_runs(sweep, tmp_path):
    from lossdoctor.executors import ProcessPool
    from lossdoctor.reporters.json_report import run_entry

    (tmp_path / "notes.txt").write_text("no numbers in here\n")
    sources = [*sweep, str(tmp_path / "notes.txt"), str(tmp_path / "missing.csv")]
    options = Options(rules=select_rules(Settings()), skip_non_logs=True, json_entries=True)
    pool = ProcessPool(2)
    try:
        done = list(diagnose_entries(sources, options, executor=pool))
    finally:
        pool.close()
    assert [r.source for r, _ in done] == sources
    for report, entry in done:
        if report.skip is not None:  # the text file: no run, no entry
            assert entry is None
        else:
            assert entry == run_entry(report.to_dict(curves=True))  # Options.curves
    assert done[-1][0].error is not None


def test_the_json_report_of_two_jobs_is_that_of_one_character_for_character(
    sweep, tmp_path, runner
):
    (tmp_path / "notes.txt").write_text("no numbers in here\n")
    folder = tmp_path / "folder"
    folder.mkdir()
    write_curve(folder / "run.csv", *curves.healthy(seed=3))
    paths = [*sweep, str(tmp_path / "notes.txt"), str(folder), str(tmp_path / "missing.csv")]
    one = runner.invoke(app, ["check", "-f", "json", *paths])
    two = runner.invoke(app, ["check", "-f", "json", "--jobs", "2", *paths])
    assert one.exit_code == two.exit_code == 2  # the missing file
    assert two.stdout == one.stdout
    # the text json.dumps writes, character for character
    assert two.stdout == json.dumps(json.loads(one.stdout), indent=2) + "\n"
    assert json.loads(two.stdout)["files"]
