"""Peak memory of `lossdoctor check` on inputs built to eat memory, beside ordinary logs.

Each input runs in its own process; the peak resident set comes from the kernel
(``ru_maxrss`` of the child).  The promise (README, "Reliability"): memory follows the
loss data kept, not the size of the file: a 2 GiB sparse file, a gzip bomb or a text
file past the read-whole limit is refused from its first bytes or within the inflate
cap, at about the memory of a small log.

    python benchmarks/bench_memory.py [--keep]
"""

from __future__ import annotations

import argparse
import gzip
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
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


INPUTS: list[tuple[str, Callable[[Path], Path]]] = [
    ("CSV, 1,000 rows (baseline)", _csv(1_000)),
    ("CSV, 1,000,000 rows", _csv(1_000_000)),
    ("2 GiB sparse file (all NUL bytes)", _sparse),
    ("gzip bomb (inflates to ~2 GiB)", _bomb),
    ("8 GiB text log (sparse)", _big_text),
]


def measure(path: Path) -> tuple[float, float, int, str]:
    """Return (seconds, peak MiB, exit code, the first stderr line) of one check."""
    started = time.perf_counter()
    command = ["check", "--fail-on", "never", "-f", "json", str(path)]
    proc = subprocess.Popen(
        [sys.executable, "-m", "lossdoctor", *command],
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
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="lossdoctor-memory-"))
    try:
        print("| input | file size | exit | time | peak memory | message |")
        print("|---|---|---|---|---|---|")
        for label, build in INPUTS:
            path = build(folder)
            size = path.stat().st_size
            seconds, peak, code, line = measure(path)
            message = line.split(": ", 2)[-1] if line else "report"
            print(
                f"| {label} | {size / (1 << 20):,.1f} MiB | {code} | {seconds:.2f} s "
                f"| {peak:.0f} MiB | {message} |"
            )
            if not args.keep:
                path.unlink()
    finally:
        if not args.keep:
            shutil.rmtree(folder)


if __name__ == "__main__":
    main()
