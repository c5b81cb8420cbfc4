#!/usr/bin/env python3
"""Live diagnosis you can trust with a running job: false stops, detection delay,
throughput and memory of ``lossdoctor watch``.

    python benchmarks/bench_live.py [--seconds 60] [--lines 200000] [--million]

1. False stops: the healthy replays of the test suite (tests/replay.py: warmup, fast
   early drop with a long flat tail, small-batch noise, real-format fixtures, long
   learning-rate warmups with no rate logged and 1 or 8 lines per step, and the
   healthy logs of ../shared/corpus/real when present) fed line by line; a prefix at
   ``error`` is a false stop (must be 0), one at ``warning`` under a healthy verdict a
   false warning.
2. Detection delay per fault kind (one line per step): lines after the fault's start
   before the replay reaches ``error`` (a flatline's from the first line), and
   milliseconds from writing the first faulty line into
   ``lossdoctor watch --stop-on error -`` to its exit (lines written 1 ms apart).
3. Throughput of ``watch -`` for nanoGPT text, JSON Lines and CSV lines (report at the
   end included).
4. Peak RSS of ``watch -`` under a writer faster than the judge for ``--seconds``:
   ``step=N loss=X`` lines, JSON Lines with a new key on every line, and a stream with
   no newline; RSS sampled over time (flat = bounded), and the seconds from the end of
   the input to watch's exit (no backlog).
5. ``--million``: a healthy 1,000,000-line log through ``watch -`` and ``run``.
"""

from __future__ import annotations

import argparse
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))
ENV = {**os.environ, "LOSSDOCTOR_PLAIN": "1", "NO_COLOR": "1"}
LD = [sys.executable, "-m", "lossdoctor"]


def false_stops() -> None:
    """Print false stops and false warnings over the healthy replays."""
    from test_live_replay import HEALTHY, _shared_healthy

    import replay as R  # tests/replay.py

    cases = dict(HEALTHY)
    for warmup, tau, ranks in ((20_000, 60.0, 8), (2_000, 600.0, 8), (60_000, 600.0, 1)):
        steps, values = R.slow_warmup(warmup, tau=tau, ranks=ranks)
        cases[f"warmup {warmup} steps, tau {tau:g}, {ranks}/step"] = R.as_text(steps, values)
    for path in _shared_healthy():
        cases[f"real/{path.name}"] = R.file_lines(path)
    stops = warnings = 0
    for name, lines in cases.items():
        result = R.replay(lines)
        if result.first("error") is not None:
            stops += 1
            print(f"  false stop: {name} at line {result.first('error')}")
        if result.final_verdict == "healthy" and result.first("warning") is not None:
            warnings += 1
    print(f"false stops: {stops} of {len(cases)} healthy replays (false warnings: {warnings})")


def _fault_lines(kind: str) -> tuple[list[str], int]:
    from test_live_replay import _with_fault

    return _with_fault(kind)


def detection_delay() -> None:
    """Print, per fault kind, the delay in lines (replay) and in ms (a real watch)."""
    from test_live_replay import DELAY

    import replay as R

    print("detection delay after the fault starts (error level):")
    for kind in sorted(DELAY):
        lines, at = _fault_lines(kind)
        result = R.replay(lines, dense=range(at, len(lines) + 1))
        caught = result.first("error")
        steps = f"{caught[0] - at} lines = steps ({caught[1].rule})" if caught else "not caught"
        watch = subprocess.Popen(
            [*LD, "watch", "--stop-on", "error", "-"], stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV,
        )  # fmt: skip
        assert watch.stdin is not None
        watch.stdin.write(("\n".join(lines[:at]) + "\n").encode())
        watch.stdin.flush()
        time.sleep(2.0)  # the healthy part is read and judged
        started = time.monotonic()
        try:
            for line in lines[at:]:
                watch.stdin.write((line + "\n").encode())
                watch.stdin.flush()
                if watch.poll() is not None:
                    break
                time.sleep(0.001)
            watch.stdin.close()
        except BrokenPipeError:
            pass
        watch.wait(timeout=120)
        ms = (time.monotonic() - started) * 1000
        print(f"  {kind:11} {steps:32} {ms:7.0f} ms to exit (code {watch.returncode})")


def _write(path: Path, kind: str, n: int) -> None:
    with path.open("w") as out:
        if kind == "csv":
            out.write("step,train_loss\n")
        for i in range(n):
            loss = 3.0 + 1.5 * math.exp(-i / (n / 100)) + 0.02 * math.sin(i * 12.9898)
            if kind == "text":
                out.write(f"iter {i}: loss {loss:.4f}, time 31.2ms, mfu 35.10%\n")
            elif kind == "jsonl":
                out.write(f'{{"step": {i}, "loss": {loss:.4f}, "learning_rate": 0.0003}}\n')
            else:
                out.write(f"{i},{loss:.4f}\n")


def throughput(n: int) -> None:
    """Print lines per second through watch for each line format."""
    with tempfile.TemporaryDirectory() as tmp:
        for kind in ("text", "jsonl", "csv"):
            log = Path(tmp) / f"log.{kind}"
            _write(log, kind, n)
            started = time.perf_counter()
            with log.open("rb") as source:
                proc = subprocess.run(
                    [*LD, "watch", "-"], stdin=source, stdout=subprocess.PIPE, env=ENV
                )
            seconds = time.perf_counter() - started
            verdict = next((w for w in ("HEALTHY", "WARNING", "FAILING") if w.encode() in
                            proc.stdout), "?")  # fmt: skip
            print(
                f"throughput {kind:5}: {n:,} lines in {seconds:.2f} s = {n / seconds:,.0f} "
                f"lines/s ({verdict}, exit {proc.returncode})"
            )


#: A writer printing batches of 2,000 lines as fast as it can: the line for step j.
_WRITER = (
    "import sys\n"
    "line = {line!r}\n"
    "i = 0\n"
    "while True:\n"
    "    sys.stdout.write(''.join(line.format(j=j, loss=2 + 1 / (1 + j / 1e5))\n"
    "                             for j in range(i, i + 2000)))\n"
    "    i += 2000\n"
)
WRITERS = {
    "step=N loss=X": _WRITER.format(line="step={j} loss={loss:.5f}\n"),
    "new JSONL key per line": _WRITER.format(
        line='{{"step": {j}, "loss": {loss:.5f}, "k{j}": 1}}\n'
    ),
    "no newline": "import sys\nwhile True:\n    sys.stdout.write('x' * 65536)\n",
}


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return math.nan


def memory(seconds: float) -> None:
    """Print watch's RSS over time under writers faster than the judge."""
    print(f"memory of 'watch -' under a writer faster than the judge ({seconds:g} s each):")
    for name, body in WRITERS.items():
        writer = subprocess.Popen(
            [sys.executable, "-c", body], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
        )
        watch = subprocess.Popen(
            [*LD, "watch", "-"], stdin=writer.stdout, stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL, env=ENV,
        )  # fmt: skip
        assert writer.stdout is not None
        writer.stdout.close()
        samples: list[tuple[float, float]] = []
        started = time.monotonic()
        while time.monotonic() - started < seconds:
            time.sleep(0.5)
            try:
                samples.append((time.monotonic() - started, _rss_mib(watch.pid)))
            except OSError:
                break
        writer.kill()
        writer.wait()
        ended = time.monotonic()
        out, _ = watch.communicate(timeout=600)
        drain = time.monotonic() - ended
        peak = max(rss for _, rss in samples) if samples else math.nan
        marks = [samples[int(len(samples) * q) - 1] for q in (0.25, 0.5, 0.75, 1.0) if samples]
        over_time = ", ".join(f"{t:.0f} s: {rss:.0f}" for t, rss in marks)
        points = next((ln.strip() for ln in out.decode().splitlines() if "points" in ln), "")
        print(
            f"  {name:24} peak {peak:6.0f} MiB (RSS MiB at {over_time}); exit {watch.returncode} "
            f"{drain:.1f} s after the input ended; {points[:60]}"
        )


def million() -> None:
    """Print the verdict and exit code of a healthy 1,000,000-line log through watch
    and run."""
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "train.log"
        _write(log, "text", 1_000_000)
        started = time.perf_counter()
        with log.open("rb") as source:
            proc = subprocess.run([*LD, "watch", "-"], stdin=source, capture_output=True, env=ENV)
        head = next(line for line in proc.stdout.decode().splitlines() if "[live:" in line)
        print(
            f"1,000,000 healthy lines | watch -: exit {proc.returncode}, {head.split()[2]} "
            f"({time.perf_counter() - started:.1f} s)"
        )
        started = time.perf_counter()
        proc = subprocess.run(
            [*LD, "run", "--stop-on", "error", "--", "cat", str(log)], capture_output=True,
            env=ENV,
        )  # fmt: skip
        verdict = next(
            (word for line in proc.stdout.decode().splitlines()[-80:] if "[live:" in line
             for word in ("HEALTHY", "WARNING", "FAILING") if word in line.split()), "?",
        )  # fmt: skip
        print(
            f"1,000,000 healthy lines, run -- cat: exit {proc.returncode}, {verdict} "
            f"({time.perf_counter() - started:.1f} s)"
        )


def main() -> int:
    """Run the benchmarks."""
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--lines", type=int, default=200_000)
    ap.add_argument("--million", action="store_true")
    ap.add_argument("--only", choices=("stops", "delay", "throughput", "memory"), default=None)
    args = ap.parse_args()
    if args.only in (None, "stops"):
        false_stops()
    if args.only in (None, "delay"):
        detection_delay()
    if args.only in (None, "throughput"):
        throughput(args.lines)
    if args.only in (None, "memory"):
        memory(args.seconds)
    if args.million:
        million()
    return 0


if __name__ == "__main__":
    sys.exit(main())
