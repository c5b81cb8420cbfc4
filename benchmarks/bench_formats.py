#!/usr/bin/env python3
"""Speed per format, side by side in one run: ``lossdoctor check`` against the best tool
a user would use instead, on the same generated files (in a temporary folder).

Each command runs in its own process (start-up included), the pairs interleaved,
``--repeat`` times; the fastest run of each is kept (the machine is shared and noisy:
the minimum is the least disturbed measurement).  Event files are read in-process.
lossdoctor's modules are compiled to bytecode first, as ``pip install`` leaves them.

    python benchmarks/bench_formats.py [--repeat 3] [--only jsonl,text,small,csv,tensor]
        [--records 1000000] [--scalars 1000000] [--runs 500] [--csv-max 10000000]
"""

from __future__ import annotations

import argparse
import json
import os
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

CHECK = [sys.executable, "-m", "lossdoctor", "check", "--fail-on", "never", "-f", "json"]
REGEX_LOOP = """
import re, sys
pattern = re.compile(r"iter (\\d+): loss ([-+.\\w]+)")
steps, losses = [], []
with open(sys.argv[1]) as log:
    for line in log:
        found = pattern.match(line)
        if found:
            steps.append(int(found.group(1)))
            losses.append(float(found.group(2).rstrip(",")))
print(len(steps))
"""
PANDAS_LOOP = """
import sys, pandas
for path in sys.argv[1:]:
    pandas.read_csv(path)
"""


#: Children cache their bytecode as an installed package does (pip compiles it at install
#: time): a PYTHONDONTWRITEBYTECODE set in this shell would make every ``check`` compile
#: lossdoctor's modules again (0.1 to 0.3 s) while the anchors' libraries stay compiled.
CHILD_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def measure(command: list[str]) -> tuple[float, float, float]:
    """Return (seconds, peak MiB, CPU seconds) of a child process."""
    started = time.perf_counter()
    child = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=CHILD_ENV
    )
    _, status, usage = os.wait4(child.pid, 0)
    if status:
        raise SystemExit(f"failed: {' '.join(command[:6])} ...")
    cpu = usage.ru_utime + usage.ru_stime
    return time.perf_counter() - started, usage.ru_maxrss / 1024, cpu


def best_of(repeat: int, commands: list[list[str]]) -> list[tuple[float, float, float]]:
    """Return the fastest (seconds, its peak MiB) of each command, runs interleaved, and
    the least CPU time (user + system, every thread) any of its runs took: on a loaded
    machine the CPU time says what the work costs when the wall time says how long the
    wait for the CPU was."""
    runs: list[list[tuple[float, float, float]]] = [[] for _ in commands]
    for _ in range(repeat):
        for slot, command in zip(runs, commands, strict=True):
            slot.append(measure(command))
    return [(*min(slot)[:2], min(cpu for *_, cpu in slot)) for slot in runs]


def curve(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Return steps and a noisy decaying loss of ``n`` points (the noise drawn with ``seed``)."""
    rng = np.random.default_rng(seed)
    steps = np.arange(n)
    loss = (4.0 * np.exp(-steps / max(n / 5, 1)) + 1.0) * np.exp(rng.normal(0, 0.03, n))
    return steps, loss


def write_jsonl(path: Path, n: int) -> None:
    """Write one JSON object a line: step, loss, lr, grad_norm (as Python's json writes)."""
    steps, loss = curve(n)
    with path.open("w") as out:
        for start in range(0, n, 100_000):
            rows = zip(
                steps[start : start + 100_000].tolist(), loss[start : start + 100_000], strict=True
            )
            out.writelines(
                json.dumps({"step": s, "loss": round(float(v), 6), "lr": 3e-4, "grad_norm": 1.5})
                + "\n"
                for s, v in rows
            )


def write_nanogpt(path: Path, n: int) -> None:
    """Write a nanoGPT training log: ``iter`` lines and an eval line every 2,000 steps."""
    steps, loss = curve(n)
    with path.open("w") as out:
        out.write("number of parameters: 10.65M\n")
        for s, v in zip(steps.tolist(), loss.tolist(), strict=True):
            if s % 2000 == 0:
                out.write(f"step {s}: train loss {v:.4f}, val loss {v * 1.05:.4f}\n")
            out.write(f"iter {s}: loss {v:.4f}, time 12.34ms, mfu 31.20%\n")


def write_csv(path: Path, n: int, seed: int = 0) -> None:
    """Write step, loss, lr and a sparse val_loss (every 100th row); ``seed`` draws the noise."""
    steps, loss = curve(n, seed)
    with path.open("w") as out:
        out.write("step,loss,lr,val_loss\n")
        for start in range(0, n, 1_000_000):
            chunk = slice(start, min(n, start + 1_000_000))
            out.writelines(
                f"{s},{v:.5f},3.0e-04,{v * 1.1:.5f}\n"
                if s % 100 == 0
                else f"{s},{v:.5f},3.0e-04,\n"
                for s, v in zip(steps[chunk].tolist(), loss[chunk].tolist(), strict=True)
            )


WRITERS = {"jsonl": write_jsonl, "text": write_nanogpt, "csv": write_csv}


def write(kind: str, path: Path, n: int) -> None:
    """Write a file in a child process: this process stays small, so the peak memory a
    child reports is its own (a child starts from the RSS of the process it forks from)."""
    subprocess.run([sys.executable, __file__, "--write", kind, str(path), str(n)], check=True)


def row(name: str, ours: tuple[float, float, float], anchor_name: str,
        anchor: tuple[float, float, float], target: str, extra: str = "") -> None:  # fmt: skip
    """Print one Markdown row: times, peaks, the time ratio and the CPU-time ratio."""
    cpu = f"CPU {ours[2]:.2f} s / {anchor[2]:.2f} s = {ours[2] / anchor[2]:.2f}x"
    print(
        f"| {name} | {ours[0]:.2f} s, {ours[1]:.0f} MiB | {anchor_name} | {anchor[0]:.2f} s, "
        f"{anchor[1]:.0f} MiB | {ours[0] / anchor[0]:.2f}x | {target} | "
        f"{'; '.join(filter(None, [cpu, extra]))} |",
        flush=True,
    )


def memory_note(peak: float, baseline: float, kept_mib: float, half_peak: float) -> str:
    """Return peak memory above a small file's as a multiple of the kept loss data, and how
    much it grows per kept data from the half-size file to the full one (what the constant
    part of the peak, such as the blocks being read, does not explain)."""
    growth = (peak - half_peak) / (kept_mib / 2)
    return (
        f"memory: {baseline:.0f} MiB + {(peak - baseline) / kept_mib:.1f}x kept data "
        f"({growth:.1f}x from half the size)"
    )


def bench_jsonl(tmp: Path, args: argparse.Namespace) -> None:
    path, small, half = tmp / "run.jsonl", tmp / "small.jsonl", tmp / "half.jsonl"
    write("jsonl", path, args.records)
    write("jsonl", small, 100)
    write("jsonl", half, args.records // 2)
    anchor = [sys.executable, "-c", f"import polars; polars.read_ndjson({str(path)!r})"]
    checks = [[*CHECK, str(small)], [*CHECK, str(half)]]
    ours, theirs, base, halved = best_of(args.repeat, [[*CHECK, str(path)], anchor, *checks])
    kept = args.records * 3 * 3 * 8 / 2**20  # loss, lr, grad_norm: steps, values, lines
    row(f"JSONL, {args.records:,} records", ours, "polars.read_ndjson", theirs, "<= 2x",
        memory_note(ours[1], base[1], kept, halved[1]))  # fmt: skip


def bench_text(tmp: Path, args: argparse.Namespace) -> None:
    path, small, half = tmp / "train.log", tmp / "small.log", tmp / "half.log"
    write("text", path, args.records)
    write("text", small, 100)
    write("text", half, args.records // 2)
    script = tmp / "regex_loop.py"
    script.write_text(REGEX_LOOP)
    commands = [[*CHECK, str(path)], [sys.executable, str(script), str(path)]]
    checks = [[*CHECK, str(small)], [*CHECK, str(half)]]
    ours, theirs, base, halved = best_of(args.repeat, [*commands, *checks])
    kept = (args.records + args.records // 2000) * 3 * 8 / 2**20
    row(f"nanoGPT text log, {args.records:,} lines", ours, "12-line regex loop", theirs,
        "<= 2x", memory_note(ours[1], base[1], kept, halved[1]))  # fmt: skip


def write_events(folder: Path, n: int, style: str) -> Path:
    """Write ``n`` scalars of one tag, old-style ``simple_value`` or TF2 tensor scalars
    (``tensor_content`` with the scalars plugin's metadata, as TF2 writes them)."""
    from tensorboard.compat.proto import event_pb2, summary_pb2, tensor_pb2
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    folder.mkdir()
    writer = EventFileWriter(str(folder))
    metadata = summary_pb2.SummaryMetadata(
        plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="scalars"),
        data_class=summary_pb2.DATA_CLASS_SCALAR,
    )
    for step, value in enumerate(curve(n)[1].tolist()):
        if style == "simple":
            item = summary_pb2.Summary.Value(tag="train/loss", simple_value=value)
        else:
            tensor = tensor_pb2.TensorProto(dtype=1, tensor_content=struct.pack("<f", value))
            item = summary_pb2.Summary.Value(tag="train/loss", tensor=tensor, metadata=metadata)
        event = event_pb2.Event(
            step=step, wall_time=1.0 + step, summary=summary_pb2.Summary(value=[item])
        )
        writer.add_event(event)
    writer.close()
    (path,) = list(folder.iterdir())
    return path


def timed(read: Callable[[], object], repeat: int) -> float:
    """Return the fastest of ``repeat`` in-process runs of ``read``."""
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        read()
        best = min(best, time.perf_counter() - started)
    return best


def bench_tensor(tmp: Path, args: argparse.Namespace) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from lossdoctor.ingest import read_run

    simple = write_events(tmp / "simple", args.scalars, "simple")
    tensor = write_events(tmp / "tensor", args.scalars, "tensor")
    ours_simple = ours_tensor = float("inf")
    for _ in range(args.repeat):  # interleaved
        ours_simple = min(ours_simple, timed(lambda: read_run(str(simple)), 1))
        ours_tensor = min(ours_tensor, timed(lambda: read_run(str(tensor)), 1))
    n = args.scalars
    print(
        f"| TF2 tensor scalars, {n:,} points | {ours_tensor:.2f} s | simple_value path "
        f"(lossdoctor) | {ours_simple:.2f} s | {ours_tensor / ours_simple:.2f}x per point "
        f"| <= 1.5x | {1e6 * ours_tensor / n:.2f} us a point |",
        flush=True,
    )

    def accumulate() -> None:
        acc = EventAccumulator(str(tensor), size_guidance={"tensors": 0})
        acc.Reload()
        assert len(acc.Tensors("train/loss")) == n

    theirs = timed(accumulate, 1)
    print(
        f"| TF2 tensor scalars, {n:,} points | {ours_tensor:.2f} s | EventAccumulator "
        f"| {theirs:.2f} s | {theirs / ours_tensor:.1f}x faster | >= 10x faster | |",
        flush=True,
    )
    try:
        from tbparse import SummaryReader
    except ImportError:
        print("| tbparse | - | not installed (pip install tbparse) | | | | |")
        return
    theirs = timed(lambda: SummaryReader(str(tensor)).tensors, 1)
    print(
        f"| TF2 tensor scalars, {n:,} points | {ours_tensor:.2f} s | tbparse "
        f"| {theirs:.2f} s | {theirs / ours_tensor:.1f}x faster | >= 10x faster | |",
        flush=True,
    )


def bench_small(tmp: Path, args: argparse.Namespace) -> None:
    folder = tmp / "runs"
    folder.mkdir()
    paths = []
    for index in range(args.runs):
        path = folder / f"run{index:04d}.csv"
        # small: written here; a seed of its own per run, so the runs differ as a fleet's
        # do (same length and healthy shape, other noise) and no two files are the same
        write_csv(path, 2000, seed=index)
        paths.append(str(path))
    script = tmp / "pandas_loop.py"
    script.write_text(PANDAS_LOOP)
    one, two, theirs = best_of(
        args.repeat,
        [
            [*CHECK, *paths],
            [*CHECK, "--jobs", "2", *paths],
            [sys.executable, str(script), *paths],
        ],
    )
    name = f"{args.runs} CSV runs x 2,000 rows"
    wall_ms, cpu_ms = (1000 * t / args.runs for t in (one[0], one[2]))
    per_run = f"{wall_ms:.1f} ms a run ({cpu_ms:.1f} ms of CPU)"
    row(name, one, "pandas.read_csv loop", theirs, "<= 2x", per_run)
    # CPU seconds per wall second: about 1 for one job; about 2 for two jobs when each
    # worker gets a core of its own, about 1 when they share one (a busy machine)
    notes = [
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}",
        f"CPU {two[2]:.2f} s / {one[2]:.2f} s = {two[2] / one[2]:.2f}x",
        f"CPU per wall second {two[2] / two[0]:.2f} (2 jobs) / {one[2] / one[0]:.2f} (1 job)",
    ]
    if autogroup_scheduling():
        notes.append("autogroup scheduling: the workers share one session's CPU share")
    print(
        f"| {name}, --jobs 2 | {two[0]:.2f} s | one job | {one[0]:.2f} s "
        f"| {one[0] / two[0]:.2f}x faster | close to 2x faster | {'; '.join(notes)} |",
        flush=True,
    )


def autogroup_scheduling() -> bool:
    """Return True when Linux groups a session's processes for CPU time (autogroup): on a
    machine busy with other sessions, a session's two workers then get about the CPU
    time of one process, and ``--jobs 2`` cannot finish sooner there."""
    try:
        return Path("/proc/sys/kernel/sched_autogroup_enabled").read_text().strip() == "1"
    except OSError:
        return False


def bench_csv(tmp: Path, args: argparse.Namespace) -> None:
    for rows in (n for n in (1_000_000, 10_000_000) if n <= args.csv_max):
        path = tmp / f"run{rows}.csv"
        write("csv", path, rows)
        anchor = [sys.executable, "-c", f"import polars; polars.read_csv({str(path)!r})"]
        ours, theirs = best_of(args.repeat, [[*CHECK, str(path)], anchor])
        row(f"CSV, {rows:,} rows", ours, "polars.read_csv", theirs, "<= 1.5x")
        path.unlink()


BENCHES = {
    "jsonl": bench_jsonl,
    "text": bench_text,
    "small": bench_small,
    "csv": bench_csv,
    "tensor": bench_tensor,  # last: it loads TensorBoard into this process
}


def main() -> int:
    """Print the table (Markdown)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--only", default=",".join(BENCHES))
    ap.add_argument("--records", type=int, default=1_000_000)
    ap.add_argument("--scalars", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=500)
    ap.add_argument("--csv-max", type=int, default=10_000_000)
    ap.add_argument("--write", nargs=3, metavar=("KIND", "PATH", "N"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.write:
        kind, path, n = args.write
        WRITERS[kind](Path(path), int(n))
        return 0
    import lossdoctor

    package = str(Path(lossdoctor.__file__).parent)  # compiled once, as pip installs it
    subprocess.run([sys.executable, "-m", "compileall", "-q", package], env=CHILD_ENV, check=True)
    print("| input | lossdoctor check | anchor | anchor's time | ratio | target | note |")
    print("|---|---|---|---|---|---|---|")
    for name in (n for n in BENCHES if n in args.only.split(",")):
        with tempfile.TemporaryDirectory() as tmp:
            BENCHES[name](Path(tmp), args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
