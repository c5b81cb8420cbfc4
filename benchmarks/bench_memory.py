"""Peak memory of `lossdoctor check` on inputs built to eat memory, beside ordinary logs.

Each input runs in its own process; the peak resident set comes from the kernel
(``ru_maxrss`` of the child).  The promise (README, "Reliability"): memory follows the
loss data kept, not the size of the file: a 2 GiB sparse file, a gzip bomb or a text
file past the read-whole limit is refused from its first bytes or within the inflate
cap, at about the memory of a small log; a large JSON Lines log, text log or event
file (on disk, gzip-compressed or on stdin) whose bytes are mostly not loss data is
read a block at a time.  "Kept" is the table the reader keeps (8-byte values of every
column it keeps, every row); the ratio is the peak above the 1,000-row baseline
divided by it.

    python benchmarks/bench_memory.py [--keep] [--only jsonl,text,events,refused]
"""

from __future__ import annotations

import argparse
import gzip
import itertools
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _csv(rows: int) -> Callable[[Path], Path]:
    def build(folder: Path) -> Path:
        path = folder / f"run-{rows}.csv"
        with path.open("w") as handle:
            handle.write("step,loss\n")
            handle.writelines(f"{i},{3.0 / (1 + i / 1000):.6f}\n" for i in range(rows))
        return path

    return build


def _sparse(folder: Path) -> Path:
    path = folder / "sparse-2gib.csv"
    with path.open("wb") as handle:
        handle.truncate(2 << 30)
    return path


def _bomb(folder: Path) -> Path:
    member = gzip.compress(b"step,loss\n" + b"1,2.0\n" * ((16 << 20) // 6), 9)
    count = (2 << 30) // (16 << 20)
    path = folder / "bomb.csv.gz"
    path.write_bytes(member * count)  # concatenated gzip members: ~2 GiB inflated
    return path


def _big_text(folder: Path) -> Path:
    path = folder / "big-8gib.log"
    with path.open("wb") as handle:
        handle.write(b"epoch 1 starting, nothing to parse yet\n" * 4000)
        handle.truncate(8 << 30)
    return path


#: Records of the verbose logs below: each carries ~2 KiB that is not loss data.
VERBOSE_ROWS = 200_000
_PROSE = "x" * 2000
#: MiB of the table kept: 3 or 2 columns of 8-byte values, every row.
KEPT_3 = VERBOSE_ROWS * 3 * 8 / 2**20
KEPT_2 = VERBOSE_ROWS * 2 * 8 / 2**20


def _noise(rows: int) -> Iterator[str]:
    """Yield 2,000 random hex digits a row (text gzip cannot shrink 100-fold)."""
    rng = random.Random(0)
    for _ in range(rows):
        yield rng.randbytes(1000).hex()


def _jsonl_rows(samples: Iterable[str]) -> Iterator[str]:
    """Yield one JSON Lines record a sample: a step, a loss and the sample text."""
    for i, sample in enumerate(samples):
        yield f'{{"step": {i}, "loss": {3.0 / (1 + i / 1000):.6f}, "sample": "{sample}"}}\n'


def _jsonl(sample: str) -> Callable[[Path], Path]:
    def build(folder: Path) -> Path:
        path = folder / f"verbose-{len(sample)}.jsonl"
        with path.open("w") as handle:
            handle.writelines(_jsonl_rows(itertools.repeat(sample, VERBOSE_ROWS)))
        return path

    return build


def _verbose_jsonl_gz(folder: Path) -> Path:
    path = folder / "verbose.jsonl.gz"
    with gzip.open(path, "wt", compresslevel=1) as handle:
        handle.writelines(_jsonl_rows(_noise(VERBOSE_ROWS)))
    return path


def _text(sample: str) -> Callable[[Path], Path]:
    def build(folder: Path) -> Path:
        path = folder / f"verbose-{len(sample)}.log"
        with path.open("w") as handle:
            handle.writelines(
                f"step {i} | loss {3.0 / (1 + i / 1000):.6f} | lr 0.0001\nINFO sample: {sample}\n"
                for i in range(VERBOSE_ROWS)
            )
        return path

    return build


def _events(image_bytes: int) -> Callable[[Path], Path]:
    """An event file of VERBOSE_ROWS scalars, each beside an image record."""

    def build(folder: Path) -> Path:
        from tensorboard.compat.proto import event_pb2, summary_pb2
        from tensorboard.summary.writer.record_writer import RecordWriter

        path = folder / f"events.out.tfevents.{image_bytes}.bench"
        encoded = b"\x89" * image_bytes
        image = summary_pb2.Summary.Image(height=1, width=1, encoded_image_string=encoded)
        with path.open("wb") as handle:
            writer = RecordWriter(handle)
            for i in range(VERBOSE_ROWS):
                loss = 3.0 / (1 + i / 1000)
                scalar = summary_pb2.Summary.Value(tag="loss", simple_value=loss)
                picture = summary_pb2.Summary.Value(tag="sample", image=image)
                for value in (scalar, picture):
                    event = event_pb2.Event(wall_time=1.0e9 + i, step=i)
                    event.summary.value.append(value)
                    writer.write(event.SerializeToString())
        return path

    return build


#: (label, builder, kept MiB or None, read from stdin, group).
INPUTS: list[tuple[str, Callable[[Path], Path], float | None, bool, str]] = [
    ("CSV, 1,000 rows (baseline)", _csv(1_000), None, False, "baseline"),
    ("CSV, 1,000,000 rows", _csv(1_000_000), 1_000_000 * 2 * 8 / 2**20, False, "csv"),
    ("JSONL, 200,000 records of ~60 bytes", _jsonl("x" * 20), KEPT_3, False, "lean"),
    ("JSONL, 200,000 records of ~2 KiB", _jsonl(_PROSE), KEPT_3, False, "jsonl"),
    ("the same JSONL on stdin", _jsonl(_PROSE), KEPT_3, True, "jsonl"),
    ("JSONL, 200,000 records of ~2 KiB (random hex), gzip", _verbose_jsonl_gz, KEPT_3, False,
     "jsonl"),
    ("text log, 200,000 loss lines among ~60-byte lines", _text("x" * 20), KEPT_3, False,
     "lean"),
    ("text log, 200,000 loss lines among ~2 KiB lines", _text(_PROSE), KEPT_3, False, "text"),
    ("event file, 200,000 scalars beside 20-byte images", _events(20), KEPT_2, False, "lean"),
    ("event file, 200,000 scalars beside ~2 KiB images", _events(2000), KEPT_2, False,
     "events"),
    ("2 GiB sparse file (all NUL bytes)", _sparse, None, False, "refused"),
    ("gzip bomb (inflates to ~2 GiB)", _bomb, None, False, "refused"),
    ("8 GiB text log (sparse)", _big_text, None, False, "refused"),
]  # fmt: skip


def measure(path: Path, *, stdin: bool = False) -> tuple[float, float, int, str]:
    """Return (seconds, peak MiB, exit code, the first stderr line) of one check (of
    ``-`` with the file piped in when ``stdin``)."""
    started = time.perf_counter()
    command = ["check", "--fail-on", "never", "-f", "json", "-" if stdin else str(path)]
    with path.open("rb") as piped:
        proc = subprocess.Popen(
            [sys.executable, "-m", "lossdoctor", *command],
            stdin=piped if stdin else subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env={**os.environ, "NO_COLOR": "1"},
        )
        assert proc.stderr is not None
        err = proc.stderr.read().decode(errors="replace")
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - started
    line = err.strip().splitlines()[0] if err.strip() else ""
    return seconds, usage.ru_maxrss / 1024, proc.returncode, line


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keep", action="store_true", help="keep the generated inputs")
    parser.add_argument("--only", help="comma-separated groups: csv,lean,jsonl,text,events,refused")
    args = parser.parse_args()
    groups = set(args.only.split(",")) | {"baseline"} if args.only else None
    folder = Path(tempfile.mkdtemp(prefix="lossdoctor-memory-"))
    baseline = 0.0
    try:
        print("| input | file size | exit | time | peak memory | kept | above baseline / kept "
              "| message |")  # fmt: skip
        print("|---|---|---|---|---|---|---|---|")
        for label, build, kept, stdin, group in INPUTS:
            if groups is not None and group not in groups:
                continue
            path = build(folder)
            size = path.stat().st_size
            seconds, peak, code, line = measure(path, stdin=stdin)
            baseline = baseline or peak
            message = line.split(": ", 2)[-1] if line else "report"
            ratio = f"{(peak - baseline) / kept:.1f}x" if kept else ""
            kept_text = f"{kept:,.1f} MiB" if kept else ""
            print(
                f"| {label} | {size / (1 << 20):,.1f} MiB | {code} | {seconds:.2f} s "
                f"| {peak:.0f} MiB | {kept_text} | {ratio} | {message} |",
                flush=True,
            )
            if not args.keep:
                path.unlink()
    finally:
        if not args.keep:
            shutil.rmtree(folder)


if __name__ == "__main__":
    main()
