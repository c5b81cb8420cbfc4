"""The fuzz campaign: mutate seed inputs for minutes and save every input that crashes.

Targets (each gets an equal share of the time):

- ``reader``: bytes -> :func:`lossdoctor.ingest.read_bytes` (every text, JSON, gzip and
  event-file reader), seeds from tests/fixtures (and tests/fixtures/bad);
- ``sqlite``: an MLflow-shaped database with mutated cells -> the SQLite reader;
- ``live``: lines -> the live line parser (:class:`lossdoctor.live.parse.LineParser`);
- ``config``: a mutated ``lossdoctor.toml`` -> configuration loading and rule selection;
- ``rule``: a mutated rule file from rules/ -> the rule loader;
- ``case``: a mutated case file -> the case-file harness (``lossdoctor rules test``).

A crash is anything but a :class:`~lossdoctor.errors.LossdoctorError`: another exception,
a warning (warnings are errors here), more than ``--timeout`` seconds on one input (a
hang) or a MemoryError under the address-space limit (``--memory-mib`` above the start).
Each crash is saved under ``--out`` as ``<target>-<hash>.<ext>`` with a ``.txt`` beside it
(the traceback); add the input to tests/fixtures/bad/ with its expected line in
tests/fixtures/bad/expected.toml once fixed.

With ``atheris`` installed (``pip install atheris``: wheels for CPython 3.11 on Linux),
``--atheris`` runs the reader target (:func:`one_input`) under libFuzzer instead,
coverage-guided: lossdoctor's modules instrumented, the reader seeds as its corpus
(``--out``/atheris-corpus, which grows), crashes saved as ``--out``/crash-<sha1>.
tests/test_fuzz_properties.py runs :func:`one_input` on every seed without atheris.

    python benchmarks/fuzz.py --minutes 10
    python benchmarks/fuzz.py --minutes 1 --target reader --seed 3
    python benchmarks/fuzz.py --atheris --minutes 10
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import random
import re
import resource
import signal
import sqlite3
import sys
import tempfile
import time
import traceback
import warnings
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from lossdoctor.errors import LossdoctorError  # noqa: E402

INTERESTING = [
    b"nan", b"NaN", b"inf", b"-inf", b"1e309", b"-1e309", b"1e308", b"0", b"-1", b"",
    b"9" * 5000, b"\x00", b"\xff\xfe", b"\xef\xbb\xbf", b"\r", b"\r\n", b"\n", b"\t", b",",
    b";", b"|", b"\"", b"'", b"{", b"}", b"[", b"]", b"[" * 5000, b"{\"a\":" * 3000, b"Epoch ",
    b"Epoch(train) [", b"loss: ", b"step ", b"/", b"\x1f\x8b", b"SQLite format 3\x00",
    b"log_history", b"{'loss': 1.0}", b"1/10 [====] - loss: 2.0", b"null", b"true",
]  # fmt: skip
TOML_VALUES = [
    '"abc"', "[1, 2]", "-5", "1e10", "10_000_000_000", "nan", "inf", "-inf", "{}", "true",
    '"{series:>1500000000}"', '"{count:.999f}"', "0", "1.0", "5.0", "[]", '"ALL"', '"LD2"',
    '"slm-finetune"', '"nope"', '""', '[{ a = 1 }]', "0.999", "-1e308", '"spikes"',
]  # fmt: skip
_VALUE_LINE = re.compile(rb"^(\s*[A-Za-z0-9_\"-]+\s*=\s*)(.+)$", re.MULTILINE)


# --- mutation -----------------------------------------------------------------------------


def mutate_bytes(data: bytes, rng: random.Random, pool: list[bytes]) -> bytes:
    """Return ``data`` with one to four random edits (flip, insert, delete, splice, repeat)."""
    out = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(7)
        at = rng.randint(0, len(out))
        if op == 0 and out:
            out[min(at, len(out) - 1)] ^= 1 << rng.randrange(8)
        elif op == 1:
            out[at:at] = rng.choice(INTERESTING)
        elif op == 2 and out:
            del out[at : at + rng.randint(1, 64)]
        elif op == 3 and pool:
            other = rng.choice(pool)
            cut = rng.randint(0, len(other))
            out[at:] = other[cut:]
        elif op == 4 and out:
            piece = bytes(out[at : at + rng.randint(1, 200)])
            out[at:at] = piece * rng.randint(1, 50)
        elif op == 5:
            out = out[: rng.randint(0, len(out))]
        else:
            number = str(rng.choice([rng.random(), -rng.random(), rng.randint(-(10**9), 10**9)]))
            out[at:at] = number.encode()
    return bytes(out)


def mutate_toml(text: bytes, rng: random.Random, pool: list[bytes]) -> bytes:
    """Return a TOML text with a few values swapped for odd ones, sometimes byte-mutated."""
    lines = list(_VALUE_LINE.finditer(text))
    out = text
    for _ in range(rng.randint(1, 3)):
        if not lines:
            break
        match = rng.choice(lines)
        value = rng.choice(TOML_VALUES).encode()
        out = out.replace(match.group(0), match.group(1) + value, 1)
    if rng.random() < 0.2:
        out = mutate_bytes(out, rng, pool)
    return out


# --- targets ------------------------------------------------------------------------------


def _seeds(folder: Path, pattern: str = "*") -> list[bytes]:
    seeds = []
    for path in sorted(folder.rglob(pattern)):
        if path.is_file() and path.stat().st_size < 256_000 and path.suffix != ".png":
            seeds.append(path.read_bytes())
    return seeds


def reader_target() -> tuple[list[bytes], Callable[[bytes], None], Callable[..., bytes]]:
    from lossdoctor.ingest import read_bytes

    seeds = _seeds(ROOT / "tests" / "fixtures") + _seeds(ROOT / "examples", "*.csv")

    def run(data: bytes) -> None:
        read_bytes(data, source="fuzz")

    return seeds, run, mutate_bytes


def sqlite_target(work: Path) -> tuple[list[bytes], Callable[[bytes], None], Callable[..., bytes]]:
    from lossdoctor.ingest.mlflow import read_sqlite

    seeds = [json.dumps([["r1", "loss", 3.0 / (i + 1), i, i, 0] for i in range(20)]).encode()]

    def run(data: bytes) -> None:
        try:
            rows = json.loads(data)
        except (ValueError, RecursionError):
            return
        if not isinstance(rows, list):
            return
        path = work / "mlflow.db"
        path.unlink(missing_ok=True)
        with sqlite3.connect(path) as conn:
            conn.execute("CREATE TABLE runs (run_uuid, name)")
            conn.execute("INSERT INTO runs VALUES ('r1', 'one')")
            conn.execute("CREATE TABLE metrics (run_uuid, key, value, timestamp, step, is_nan)")
            for row in rows:
                if isinstance(row, list) and len(row) == 6:
                    cells = [
                        c if isinstance(c, int | float | str) or c is None else str(c) for c in row
                    ]
                    with contextlib.suppress(sqlite3.Error, OverflowError):
                        conn.execute("INSERT INTO metrics VALUES (?, ?, ?, ?, ?, ?)", cells)
        conn.close()
        read_sqlite(path, source=str(path), hints=None, run=None)

    return seeds, run, mutate_bytes


def live_target() -> tuple[list[bytes], Callable[[bytes], None], Callable[..., bytes]]:
    from lossdoctor.live.parse import LineParser

    seeds = [s for s in _seeds(ROOT / "tests" / "fixtures") if b"\x00" not in s[:200]]

    def run(data: bytes) -> None:
        parser = LineParser()
        for line in data.decode("utf-8", errors="replace").splitlines():
            record = parser.feed(line)
            if record is not None and not all(isinstance(v, float) for v in record.values()):
                raise AssertionError(f"a record holds a non-float: {record!r}")

    return seeds, run, mutate_bytes


def config_target(work: Path) -> tuple[list[bytes], Callable[[bytes], None], Callable[..., bytes]]:
    from lossdoctor.api import select_rules
    from lossdoctor.config import read_config_file

    seeds = [
        b'select = ["ALL"]\nignore = ["LD402"]\nfail-on = "warning"\nprofile = "slm-finetune"\n'
        b'vocab-size = 32000\n[columns]\ntrain = "loss"\n[rules.spikes.params]\nz = 6.0\n'
        b"tail_quantile = 0.001\n[rules.spikes.thresholds]\nlarge_ratio = 1.5\n"
        b'[rules.plateau]\nseverity = "info"\n[rules.plateau.params]\nband_share = 0.1\n',
    ]

    def run(data: bytes) -> None:
        path = work / "lossdoctor.toml"
        path.write_bytes(data)
        select_rules(read_config_file(path))

    return seeds, run, mutate_toml


def rule_target(work: Path) -> tuple[list[bytes], Callable[[bytes], None], Callable[..., bytes]]:
    from lossdoctor.detectors import load_builtin_detectors
    from lossdoctor.engine.loader import load_rule_file

    seeds = _seeds(ROOT / "rules", "*.toml")
    detectors = load_builtin_detectors()

    def run(data: bytes) -> None:
        path = work / "XX201-fuzz.toml"
        path.write_bytes(data)
        load_rule_file(path, detectors)

    return seeds, run, mutate_toml


def case_target(work: Path) -> tuple[list[bytes], Callable[[bytes], None], Callable[..., bytes]]:
    from lossdoctor.casefile import run_case_file
    from lossdoctor.engine.loader import load_rules

    rules = load_rules()
    seeds = [
        p.read_bytes()
        for p in sorted((ROOT / "tests" / "cases").rglob("*.toml"))
        if b"file =" not in p.read_bytes()
    ][:20]

    def run(data: bytes) -> None:
        path = work / "case.toml"
        path.write_bytes(data)
        run_case_file(path, rules)

    return seeds, run, mutate_toml


# --- the loop -----------------------------------------------------------------------------


class Hang(Exception):
    """One input ran past the time limit."""


def _alarm(*_: Any) -> None:
    raise Hang("ran past the time limit")


def campaign(
    minutes: float, targets: list[str], out: Path, seed: int, timeout: float, memory_mib: int
) -> Counter[str]:
    """Run the campaign; return executions per target (and ``crashes``).  Its scratch
    folder (databases and files the targets write) is removed at the end."""
    with tempfile.TemporaryDirectory(prefix="lossdoctor-fuzz-") as scratch:
        return _campaign(minutes, targets, out, seed, timeout, memory_mib, Path(scratch))


def _campaign(
    minutes: float,
    targets: list[str],
    out: Path,
    seed: int,
    timeout: float,
    memory_mib: int,
    work: Path,
) -> Counter[str]:
    rng = random.Random(seed)
    builders: dict[str, Callable[[], Any]] = {
        "reader": reader_target,
        "sqlite": lambda: sqlite_target(work),
        "live": live_target,
        "config": lambda: config_target(work),
        "rule": lambda: rule_target(work),
        "case": lambda: case_target(work),
    }
    loaded = {name: builders[name]() for name in targets}
    _limit_memory(memory_mib)
    signal.signal(signal.SIGALRM, _alarm)
    warnings.simplefilter("error")
    counts: Counter[str] = Counter()
    seen: set[str] = set()
    end = time.monotonic() + minutes * 60
    spent = dict.fromkeys(loaded, 0.0)  # each target gets an equal share of the time
    while time.monotonic() < end:
        name = min(spent, key=spent.__getitem__)
        seeds, run, mutate = loaded[name]
        data = mutate(rng.choice(seeds), rng, seeds)
        counts[name] += 1
        started = time.monotonic()
        signal.setitimer(signal.ITIMER_REAL, timeout)
        try:
            run(data)
        except LossdoctorError:
            pass
        except (Exception, MemoryError) as exc:  # a crash: save it
            signal.setitimer(signal.ITIMER_REAL, 0)
            key = f"{name}:{type(exc).__name__}:{_where(exc)}"
            counts["crashes"] += 1
            if key not in seen:
                seen.add(key)
                _save(out, name, data, exc)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            spent[name] += time.monotonic() - started
    return counts


def _where(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    inside = [f for f in frames if "lossdoctor" in f.filename and "benchmarks" not in f.filename]
    last = inside[-1] if inside else frames[-1] if frames else None
    return f"{Path(last.filename).name}:{last.lineno}" if last else "?"


def _save(out: Path, name: str, data: bytes, exc: BaseException) -> None:
    out.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256(data).hexdigest()[:12]
    ext = {"reader": "bin", "sqlite": "json", "live": "log"}.get(name, "toml")
    (out / f"{name}-{digest}.{ext}").write_bytes(data)
    text = "".join(traceback.format_exception(exc))
    (out / f"{name}-{digest}.txt").write_text(text)
    print(f"crash in {name}: {type(exc).__name__}: {exc} -> {out / f'{name}-{digest}.{ext}'}")


def _limit_memory(mib: int) -> None:
    status = Path("/proc/self/status")
    if not status.exists():
        return
    size_kib = next(
        int(line.split()[1])
        for line in status.read_text().splitlines()
        if line.startswith("VmSize")
    )
    limit = size_kib * 1024 + (mib << 20)
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def one_input(data: bytes) -> None:
    """The atheris (libFuzzer) target: read ``data`` as a log file's bytes.

    A :class:`~lossdoctor.errors.LossdoctorError` is an answer; any other exception, or a
    warning (an error here), is a crash that libFuzzer saves.
    """
    from lossdoctor.ingest import read_bytes

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with contextlib.suppress(LossdoctorError):
            read_bytes(data, source="fuzz")


def _import_readers() -> None:
    """Import every module of the package (the readers import lazily), so atheris
    instruments all of them for coverage."""
    import importlib
    import pkgutil

    import lossdoctor

    for module in pkgutil.walk_packages(lossdoctor.__path__, "lossdoctor."):
        if ".integrations" not in module.name:  # training frameworks: not installed here
            with contextlib.suppress(ImportError):
                importlib.import_module(module.name)


def _atheris(minutes: float, out: Path, timeout: float, memory_mib: int) -> None:
    """Run libFuzzer on :func:`one_input` from the reader seeds; crashes go to ``out``."""
    import atheris  # type: ignore[import-not-found]

    with atheris.instrument_imports(include=["lossdoctor"]):
        _import_readers()  # lossdoctor's own code only: instrumenting numpy, pandas and
        # polars too takes many minutes and guides nothing
    corpus = out / "atheris-corpus"
    corpus.mkdir(parents=True, exist_ok=True)
    seeds, _, _ = reader_target()
    for seed in seeds:
        (corpus / hashlib.sha256(seed).hexdigest()[:16]).write_bytes(seed)
    argv = [
        sys.argv[0],
        f"-max_total_time={int(minutes * 60)}",
        f"-timeout={int(timeout)}",
        f"-rss_limit_mb={memory_mib}",
        f"-max_len={max(len(seed) for seed in seeds)}",
        f"-artifact_prefix={out}/",
        "-print_final_stats=1",
        str(corpus),
    ]
    atheris.Setup(argv, one_input)
    atheris.Fuzz()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=1.0)
    parser.add_argument(
        "--target",
        action="append",
        choices=["reader", "sqlite", "live", "config", "rule", "case"],
        help="repeatable; default: all",
    )
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "fuzz-crashes")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds per input")
    parser.add_argument("--memory-mib", type=int, default=2048, help="address space added")
    parser.add_argument("--atheris", action="store_true", help="libFuzzer on the reader target")
    args = parser.parse_args()
    if args.atheris:
        _atheris(args.minutes, args.out, args.timeout, args.memory_mib)
        return
    targets = args.target or ["reader", "sqlite", "live", "config", "rule", "case"]
    started = time.monotonic()
    counts = campaign(args.minutes, targets, args.out, args.seed, args.timeout, args.memory_mib)
    crashes = counts.pop("crashes", 0)
    seconds = time.monotonic() - started
    per = ", ".join(f"{name} {n:,}" for name, n in counts.items())
    print(f"{counts.total():,} executions in {seconds:.0f} s ({per}); {crashes} crashing inputs")
    sys.exit(1 if crashes else 0)


if __name__ == "__main__":
    main()
