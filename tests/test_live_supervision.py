"""Live diagnosis you can trust with a running job: a bad line is a skipped line, ``run``
supervises its command (never exits before it, stops its group, escalates), signals
print the report, machine-readable reports own stdout, options as for check."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from lossdoctor.cli import app
from lossdoctor.engine.loader import load_rules
from lossdoctor.live.monitor import MAX_SERIES, LiveMonitor
from lossdoctor.live.sources import MAX_PENDING_BYTES, LineSplitter, new_queue

ENV = {**os.environ, "NO_COLOR": "1", "LOSSDOCTOR_PLAIN": "1"}
LD = [sys.executable, "-m", "lossdoctor"]
DEEP = "[" * 5000 + "]" * 5000


def _healthy_jsonl(n: int, start: int = 0) -> str:
    return "".join(
        json.dumps({"step": i, "loss": round(4 * 2.718 ** (-i / 100) + 1, 4)}) + "\n"
        for i in range(start, start + n)
    )


def read_until(stream: Any, marker: bytes, seconds: float = 120.0) -> bytes:
    """Return the bytes ``stream`` gave until ``marker`` appeared (read unbuffered from its
    descriptor); fail, never hang, at its end or after ``seconds``."""
    import select

    seen = b""
    deadline = time.monotonic() + seconds
    while marker not in seen:
        left = deadline - time.monotonic()
        assert left > 0, f"no {marker!r} in time: {seen[-300:]!r}"
        ready, _, _ = select.select([stream.fileno()], [], [], left)
        if ready:
            chunk = os.read(stream.fileno(), 65536)
            assert chunk, f"the output ended before {marker!r}: {seen[-300:]!r}"
            seen += chunk
    return seen


def _script(tmp_path: Path, name: str, body: str) -> str:
    path = tmp_path / name
    path.write_text(body)
    return str(path)


def test_a_malformed_nanogpt_line_is_skipped_not_fatal():
    data = b"iter 0: loss 4.2, time 1ms\niter 1: loss 2.5x, time 1ms\niter 2: loss 2.4, time 1ms\n"
    proc = subprocess.run([*LD, "watch", "-"], input=data, capture_output=True, env=ENV, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert b"internal error" not in proc.stderr
    assert b"3 points" in proc.stdout


def test_a_deeply_nested_json_line_is_skipped_and_counted():
    data = _healthy_jsonl(50) + '{"step": 50, "loss": ' + DEEP + "}\n" + _healthy_jsonl(50, 51)
    proc = subprocess.run(
        [*LD, "watch", "-"], input=data.encode(), capture_output=True, env=ENV, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    # in check's words (JSON Lines: a line that is no JSON object)
    assert b"1 line that is not a JSON object was skipped (line 51)" in proc.stdout
    assert b"100 points" in proc.stdout


def test_run_outlives_a_bad_line_and_the_command_finishes(tmp_path):
    child = _script(
        tmp_path,
        "c.py",
        "import json, sys\n"
        f"sys.stdout.write({_healthy_jsonl(30)!r})\n"
        f"print('{{\"loss\": ' + {DEEP!r} + '}}', flush=True)\n"
        "print('iter 1: loss 2.5x, time 1ms', flush=True)\n"
        f"sys.stdout.write({_healthy_jsonl(30, 30)!r})\n"
        "print('child finished', flush=True)\n"
        "sys.exit(4)\n",
    )
    proc = subprocess.run(
        [*LD, "run", "--", sys.executable, child], capture_output=True, env=ENV, timeout=60
    )
    assert b"child finished" in proc.stdout
    assert proc.returncode == 4


# the command's pipes are left to the process's end (a reader may still block on them)
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_run_keeps_the_command_alive_and_its_exit_code_when_diagnosis_fails(tmp_path, monkeypatch):
    def broken(self, *, finished=False):
        raise RuntimeError("judge broke")

    monkeypatch.setattr(LiveMonitor, "report", broken)
    child = _script(
        tmp_path,
        "c.py",
        "import time\n"
        "for i in range(40):\n"
        "    print(f'step={i} loss={4 - i / 20}', flush=True)\n"
        "time.sleep(0.5)\n"
        "print('still here', flush=True)\n"
        "raise SystemExit(3)\n",
    )
    result = CliRunner().invoke(app, ["run", "--", sys.executable, child])
    assert result.exit_code == 3
    assert "diagnosis stopped (RuntimeError: judge broke)" in result.output
    assert "still here" in result.output


def _no_mask() -> None:
    return None


def _sigint_blocked() -> None:
    # some CI runners start jobs so; the mask is inherited through exec
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})


@pytest.mark.parametrize(
    ("sig", "start", "code"),
    [(signal.SIGTERM, _no_mask, 143), (signal.SIGINT, _sigint_blocked, 130)],
    ids=["sigterm", "sigint-started-blocked"],
)
def test_a_signal_to_watch_prints_the_report_and_exits_128_plus_it(sig, start, code):
    watch = subprocess.Popen(
        [*LD, "watch", "--tee", "-"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, env=ENV, preexec_fn=start,
    )  # fmt: skip
    assert watch.stdin is not None
    assert watch.stderr is not None
    watch.stdin.write((_healthy_jsonl(200) + '{"step": 200, "loss": NaN}\n').encode())
    watch.stdin.flush()
    read_until(watch.stderr, b"LD101")  # every line read and judged (the NaN's alert)
    watch.send_signal(sig)
    try:
        out, err = watch.communicate(timeout=120)
    except subprocess.TimeoutExpired:  # the signal never seen: end it, leave no pipe open
        watch.kill()
        watch.communicate()
        raise
    assert watch.returncode == code, err
    assert b"201 points" in out  # the report so far


def test_run_interrupted_stops_a_stubborn_command_with_escalation(tmp_path):
    child = _script(
        tmp_path,
        "stubborn.py",
        "import signal, time\n"
        "signal.signal(signal.SIGINT, lambda *a: print('ignoring SIGINT', flush=True))\n"
        "signal.signal(signal.SIGTERM, lambda *a: print('ignoring SIGTERM', flush=True))\n"
        "for i in range(100):\n"
        "    print(f'step={i} loss={4 - i / 50}', flush=True)\n"
        "print('step=100 loss=nan', flush=True)\n"
        "while True:\n"
        "    time.sleep(0.1)\n",
    )
    proc = subprocess.Popen(
        [*LD, "run", "--grace", "0.5", "--", sys.executable, child],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV,
    )  # fmt: skip
    assert proc.stderr is not None
    told = read_until(proc.stderr, b"LD101")  # every line passed through, read and judged
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    err = told + err
    assert proc.returncode == 143
    assert b"step=99 " in out  # the command's output, passed through
    assert b"ignoring SIGINT" in out
    assert b"ignoring SIGTERM" in out
    assert b"sending SIGKILL" in err
    assert b"101 points" in out  # the report so far
    assert subprocess.run(["pgrep", "-f", child], capture_output=True).returncode == 1


def test_run_does_not_wait_for_a_background_grandchild():
    # the grandchild holds the pipe for 10 minutes; run ends well before the deadline
    proc = subprocess.run(
        [*LD, "run", "--", "sh", "-c", "sleep 600 & echo grandchild=$!; echo step=1 loss=2"],
        capture_output=True, env=ENV, timeout=300,
    )  # fmt: skip
    grandchild = int(proc.stdout.split(b"grandchild=")[1].split()[0])
    os.kill(grandchild, signal.SIGTERM)
    assert proc.returncode == 0
    assert b"step=1 loss=2" in proc.stdout  # passed through, then the report


def test_run_says_when_the_command_printed_no_loss_it_can_read():
    # it exited with the command's code and said nothing: a user thought the run watched
    proc = subprocess.run(
        [*LD, "run", "--", sys.executable, "-c", "print('loss: went down, lr fine'); exit(3)"],
        capture_output=True, env=ENV, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 3
    assert proc.stdout == b"loss: went down, lr fine\n"
    assert proc.stderr.decode().startswith("lossdoctor: no loss values found in the output of ")
    assert "(1 line): nothing was diagnosed" in proc.stderr.decode()


def test_run_says_it_stops_the_command_before_it_does(tmp_path):
    child = _script(
        tmp_path,
        "nan.py",
        "import time\n"
        "for i in range(100):\n"
        "    print(f'step={i} loss={4 - i / 50}', flush=True)\n"
        "print('step=100 loss=nan', flush=True)\n"
        "time.sleep(600)  # only a stop ends it in time\n",
    )
    proc = subprocess.run(
        [*LD, "run", "--stop-on", "error", "--", sys.executable, child],
        capture_output=True, env=ENV, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 1
    err = proc.stderr.decode()
    assert f"lossdoctor: stopping {sys.executable} {child} (pid " in err
    assert "error LD101 non-finite" in err.split("stopping", 1)[1]
    assert "— sending SIGINT" in err


def test_run_stops_the_command_with_sigint_when_started_with_it_blocked(tmp_path):
    # Some CI runners start jobs with SIGINT blocked; the mask is inherited through exec,
    # so the command would sit out the whole grace period before the SIGTERM.
    child = _script(
        tmp_path,
        "nan.py",
        "import sys, time\n"
        "try:\n"
        "    print('step=1 loss=nan', flush=True)\n"
        "    time.sleep(600)\n"
        "except KeyboardInterrupt:\n"
        "    print('got SIGINT', file=sys.stderr, flush=True)\n"
        "    sys.exit(130)\n",
    )
    proc = subprocess.run(
        [*LD, "run", "--stop-on", "error", "--grace", "30", "--", sys.executable, child],
        capture_output=True, env=ENV, timeout=300,
        preexec_fn=lambda: signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT}),
    )  # fmt: skip
    err = proc.stderr.decode()
    assert proc.returncode == 1
    assert "— sending SIGINT" in err
    assert "got SIGINT" in err
    assert "still running" not in err


def test_watch_json_on_stdout_is_the_document_alone():
    data = _healthy_jsonl(100) + '{"step": 100, "loss": NaN}\n'
    proc = subprocess.run(
        [*LD, "watch", "-f", "json", "-"], input=data.encode(), capture_output=True, env=ENV,
        timeout=60,
    )  # fmt: skip
    doc = json.loads(proc.stdout)
    assert doc["runs"][0]["verdict"] == "failing"
    assert b"error LD101 non-finite" in proc.stderr  # the alert went to stderr


def test_watch_and_run_take_the_diagnosis_options_of_check(tmp_path):
    data = "".join(f"step={i} my_loss={4 - i / 100} other={i}\n" for i in range(100))
    data += "step=100 my_loss=nan other=100\n"
    base = [*LD, "watch", "-f", "json", "--train-col", "my_loss", "--classes", "10"]
    proc = subprocess.run([*base, "-"], input=data.encode(), capture_output=True, env=ENV)
    run = json.loads(proc.stdout)["runs"][0]
    assert run["columns"]["train"] == "my_loss"
    assert "non-finite" in [f["rule"] for f in run["findings"]]
    proc = subprocess.run(
        [*base, "--ignore", "non-finite", "--profile", "slm-finetune", "-"],
        input=data.encode(), capture_output=True, env=ENV,
    )  # fmt: skip
    assert "non-finite" not in [f["rule"] for f in json.loads(proc.stdout)["runs"][0]["findings"]]
    writer = _script(tmp_path, "w.py", f"print({data!r}, end='')")
    proc = subprocess.run(
        [*LD, "run", "--select", "LD1", "--train-col", "my_loss", "-f", "json:" + str(tmp_path / "r.json"),
         "--", sys.executable, writer], capture_output=True, env=ENV,
    )  # fmt: skip
    rules = {
        f["rule"] for f in json.loads((tmp_path / "r.json").read_text())["runs"][0]["findings"]
    }
    assert rules == {"non-finite"}


def test_watch_file_exits_when_idle_and_notes_a_recreated_file(tmp_path):
    log = tmp_path / "train.jsonl"
    log.write_text(_healthy_jsonl(100))
    watch = subprocess.Popen(
        [*LD, "watch", "--tee", "--exit-when-idle", "20", str(log)], stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, env=ENV,
    )  # fmt: skip
    assert watch.stdout is not None
    read_until(watch.stdout, b'"step": 99')  # the first file was read
    log.unlink()
    log.write_text(_healthy_jsonl(60))
    out, err = watch.communicate(timeout=300)  # it ends by itself, 20 s after the last line
    assert watch.returncode == 0, err
    # seen gone then back, or already back under a new inode: a new segment either way
    assert b"the file was deleted and created again" in out or b"the file was replaced" in out
    assert b"60 points" in out


def test_watch_file_exits_when_the_writer_process_ends(tmp_path):
    log = tmp_path / "train.jsonl"
    log.write_text(_healthy_jsonl(100))
    # the writer lives until the test closes its stdin
    writer = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"],
                              stdin=subprocess.PIPE)  # fmt: skip
    watch = subprocess.Popen(
        [*LD, "watch", "--tee", "--pid", str(writer.pid), str(log)], stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, env=ENV,
    )  # fmt: skip
    seen = read_until(watch.stdout, b'"step": 99')  # the file was read
    assert watch.poll() is None  # the writer still runs: watch goes on
    assert writer.stdin is not None
    writer.stdin.close()
    writer.wait(timeout=120)
    out, err = watch.communicate(timeout=300)
    assert watch.returncode == 0, err
    assert b"100 points" in seen + out


# --- units ---------------------------------------------------------------------------------


def test_a_line_without_newline_stays_bounded_and_is_counted():
    splitter = LineSplitter()
    for _ in range(200):
        assert splitter.feed(b"x" * 65536) == []
        assert len(splitter.rest) <= MAX_PENDING_BYTES
    assert splitter.feed(b"yyy\nstep=1 loss=2\n") == ["step=1 loss=2"]
    assert splitter.overlong == 1


def test_a_new_key_on_every_line_keeps_a_bounded_number_of_series():
    monitor = LiveMonitor("-", load_rules())
    monitor.add_lines([json.dumps({"step": i, "loss": 2.0, f"k{i}": 1.0}) for i in range(5000)])
    assert len(monitor.buffers) == MAX_SERIES
    run = monitor.run()
    assert run is not None
    assert any(f"tracked the first {MAX_SERIES} keys only" in note for note in run.notes)


def test_the_event_queue_is_bounded():
    assert new_queue().maxsize > 0
