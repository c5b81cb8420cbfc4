"""Live diagnosis through real subprocesses: watch over a pipe and a growing file, run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from test_live_supervision import read_until

from lossdoctor.live.buffer import PointBuffer
from lossdoctor.live.parse import LineParser
from lossdoctor.live.sources import split_lines

ENV = {**os.environ, "NO_COLOR": "1", "LOSSDOCTOR_PLAIN": "1"}
LD = [sys.executable, "-m", "lossdoctor"]

WRITER = """
import math, sys, time
for i in range({n}):
    print(f"iter {{i}}: loss {{4 * math.exp(-i / 100) + 1:.4f}}, time 30ms", flush=True)
    time.sleep({pause})
{tail}
"""


def _script(tmp_path: Path, name: str, body: str) -> str:
    path = tmp_path / name
    path.write_text(body)
    return str(path)


NAN_WRITER = """
import math, os, sys
for i in range(300):
    print(f"iter {i}: loss {4 * math.exp(-i / 100) + 1:.4f}, time 30ms", flush=True)
written = 0
try:
    for i in range(300, 1_300_300):  # NaN lines until the reader stops reading
        sys.stdout.write(f"iter {i}: loss nan, time 30ms\\n")
        sys.stdout.flush()
        written += 1
except BrokenPipeError:
    os.write(2, f"pipe closed after {written} NaN lines\\n".encode())
    os._exit(0)
os.write(2, b"every line was written\\n")
"""


def test_watch_stops_at_the_nan_while_the_writer_is_still_writing(tmp_path):
    writer = subprocess.Popen(
        [sys.executable, _script(tmp_path, "w.py", NAN_WRITER)], stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )  # fmt: skip
    watch = subprocess.Popen(
        [*LD, "watch", "--stop-on", "error", "-f", f"json:{tmp_path / 'r.json'}", "-"],
        stdin=writer.stdout, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV,
    )  # fmt: skip
    assert writer.stdout is not None
    writer.stdout.close()  # watch holds the read end: the writer's pipe breaks when it exits
    out, _ = watch.communicate(timeout=300)
    assert writer.stderr is not None
    told = writer.stderr.read()
    writer.stderr.close()
    writer.wait(timeout=300)
    assert watch.returncode == 1
    assert b"pipe closed after" in told  # stopped while the NaN lines kept coming
    assert "error LD101 non-finite" in out.decode()
    run = json.loads((tmp_path / "r.json").read_text())["runs"][0]
    assert run["verdict"] == "failing"
    nan = next(f for f in run["findings"] if f["rule"] == "non-finite")
    assert nan["evidence"]["start_step"] == 300


def test_watch_healthy_stream_ends_with_the_full_report(tmp_path):
    writer = _script(tmp_path, "w.py", WRITER.format(n=300, pause=0, tail=""))
    proc = subprocess.run(
        f"{sys.executable} {writer} | {sys.executable} -m lossdoctor watch -",
        shell=True, capture_output=True, env=ENV, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 0
    out = proc.stdout.decode()
    assert "HEALTHY" in out
    assert "LD303 smooth-decline" in out


def test_watch_survives_partial_lines_carriage_returns_garbage_and_tee(tmp_path):
    data = (
        b"\x00\xff\xfe garbage \x89PNG\n"
        + b"".join(f"  {i}%|###  | {i}/300 [00:01<00:02]\r".encode() for i in range(0, 300, 50))
        + b"".join(
            f"{{'loss': {3 - i / 200:.3f}, 'epoch': {i / 100:.2f}}}\n".encode() for i in range(300)
        )
        + b"{'loss': 1.4, 'epo"  # a partial last line
    )
    proc = subprocess.run(
        [*LD, "watch", "--tee", "-"], input=data, capture_output=True, env=ENV, timeout=60
    )
    assert proc.returncode == 0
    assert b"Traceback" not in proc.stderr
    assert b"{'loss': 2.000, 'epoch': 2.00}" in proc.stdout  # --tee passed the input through
    assert b"HEALTHY" in proc.stdout


def test_watch_reports_a_stall():
    watch = subprocess.Popen(
        [*LD, "watch", "--stall-after", "0.5", "-"], stdin=subprocess.PIPE,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV,
    )  # fmt: skip
    assert watch.stdin is not None
    for i in range(200):
        watch.stdin.write(f"iter {i}: loss {4 * 2.718 ** (-i / 100) + 1:.4f}, time 30ms\n".encode())
    watch.stdin.flush()  # then nothing more: the writer hangs
    seen = read_until(watch.stdout, b"warning LD701 stall")
    out, _ = watch.communicate(timeout=120)  # the input ends
    alert = (seen + out).decode().split("warning LD701 stall", 1)[1].splitlines()[0]
    assert "No new loss value for" in alert
    assert "last at step 199" in alert


def test_watch_follows_a_file_through_a_rewrite_and_ctrl_c_prints_the_report(tmp_path):
    log = tmp_path / "metrics.csv"
    log.write_text("step,train_loss\n" + "".join(f"{i},{3 - i / 100}\n" for i in range(100)))
    watch = subprocess.Popen(
        [*LD, "watch", "--tee", str(log)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env=ENV,
    )  # fmt: skip
    assert watch.stdout is not None
    read_until(watch.stdout, b"\n99,")  # the first version was read
    # Lightning's CSV logger rewrites the whole file with a new header when a key appears
    log.write_text(
        "step,train_loss,val_loss\n" + "".join(f"{i},{3 - i / 100},\n" for i in range(150))
    )
    read_until(watch.stdout, b"\n149,")  # the second version was read (and counted)
    watch.send_signal(signal.SIGINT)
    out, _ = watch.communicate(timeout=60)
    out = out.decode()
    assert watch.returncode == 130
    assert "train_loss: 150 points" in out
    assert "the file was rewritten: read again from the top" in out


def test_run_stops_an_exploding_child_and_it_is_gone(tmp_path):
    child = _script(
        tmp_path,
        "child.py",
        "import itertools, math, signal, sys, time\n"
        "signal.signal(signal.SIGINT, lambda *a: print('ignoring SIGINT', flush=True))\n"
        "for i in itertools.count():  # only a stop ends it\n"
        "    loss = 4 * math.exp(-i / 100) + 1 if i < 300 else 1.2 * 1.05 ** min(i - 300, 9000)\n"
        "    print(f'step={i} loss={loss:.4f}', flush=True)\n"
        "    time.sleep(0.003)\n",
    )
    proc = subprocess.run(
        [*LD, "run", "--stop-on", "error", "--grace", "1", "--", sys.executable, child],
        capture_output=True, env=ENV, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 1
    assert b"lossdoctor: stopping " in proc.stderr
    assert b"error LD203 divergence" in proc.stderr
    assert b"ignoring SIGINT" in proc.stdout  # SIGINT first, then SIGTERM ended it
    gone = subprocess.run(["pgrep", "-f", child], capture_output=True)
    assert gone.returncode == 1  # no such process


@pytest.mark.parametrize("code", [0, 3])
def test_run_passes_a_healthy_childs_exit_code_through(tmp_path, code):
    child = _script(tmp_path, "ok.py", WRITER.format(n=200, pause=0, tail=f"sys.exit({code})"))
    proc = subprocess.run(
        [*LD, "run", "--", sys.executable, child], capture_output=True, env=ENV, timeout=60
    )
    assert proc.returncode == code
    assert proc.stdout.count(b"iter ") >= 200  # the child's output, unchanged
    assert b"HEALTHY" in proc.stdout


def test_run_reports_a_child_killed_by_a_signal(tmp_path):
    child = _script(
        tmp_path,
        "k.py",
        WRITER.format(
            n=50, pause=0, tail="import os, signal; os.kill(os.getpid(), signal.SIGTERM)"
        ),
    )
    proc = subprocess.run(
        [*LD, "run", "--", sys.executable, child], capture_output=True, env=ENV, timeout=60
    )
    assert proc.returncode == 128 + signal.SIGTERM


def test_run_of_a_missing_command_is_a_usage_error():
    proc = subprocess.run(
        [*LD, "run", "--", "no-such-command-xyz"], capture_output=True, env=ENV, timeout=60
    )
    assert proc.returncode == 2
    assert (
        proc.stderr.decode().strip()
        == "lossdoctor: no-such-command-xyz: cannot start (No such file or directory)"
    )


# --- units ---------------------------------------------------------------------------------


def test_split_lines_handles_partial_lines_and_carriage_returns():
    lines, rest = split_lines(b"", b"a\r\nb\rc\nparti")
    assert lines == ["a", "b", "c"]
    assert rest == b"parti"
    lines, rest = split_lines(rest, b"al\n")
    assert lines == ["partial"]


def test_point_buffer_stays_bounded_and_keeps_extremes():
    buffer = PointBuffer(head=100, recent=200, max_buckets=300)
    for i in range(10_000):
        buffer.append(float(i), 9.0 if i == 123 else (float("nan") if i == 456 else 1.0))
    steps, values = buffer.arrays()
    assert len(buffer) <= 1000
    assert buffer.total == 10_000
    assert 9.0 in values.tolist()
    assert any(v != v for v in values.tolist())  # the NaN survived
    assert (steps[1:] >= steps[:-1]).all()


def test_line_parser_rereads_a_csv_header():
    parser = LineParser()
    assert parser.feed("step,loss") == []
    assert parser.feed("1,2.5") == [{"step": 1.0, "loss": 2.5}]
    assert parser.feed("step,loss,val_loss") == []
    assert parser.feed("2,2.4,2.6") == [{"step": 2.0, "loss": 2.4, "val_loss": 2.6}]
