"""The replay harness: feed a log to the live monitor line by line, as a training job
writes it, and judge the run at many of its prefixes (every line at first, then more
sparsely), recording what a `watch --stop-on` would have seen."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lossdoctor.engine.loader import load_rules
from lossdoctor.ingest import read_run
from lossdoctor.live.monitor import LiveMonitor
from lossdoctor.model import Run
from lossdoctor.report import SEVERITY_RANK, Finding

#: Every prefix up to this many lines is judged; past it, prefixes grow by PREFIX_GROWTH.
DENSE_LINES = 60
PREFIX_GROWTH = 1.08


@dataclass
class Replay:
    """What the monitor reported along the replay: each judged prefix (lines fed) with
    the active findings at warning or error, and the final report's verdict."""

    prefixes: list[tuple[int, list[Finding]]] = field(default_factory=list)
    final_verdict: str = ""

    def first(self, level: str) -> tuple[int, Finding] | None:
        """Return the first prefix (lines fed) and finding at or above ``level``."""
        for lines, findings in self.prefixes:
            for f in findings:
                if SEVERITY_RANK[f.severity] >= SEVERITY_RANK[level]:
                    return lines, f
        return None


def schedule(n: int, dense: range = range(0)) -> list[int]:
    """Return the prefix lengths judged for a log of ``n`` lines (always ending at n), with
    every prefix length in ``dense`` too."""
    out = list(range(1, min(n, DENSE_LINES) + 1)) + [k for k in dense if 0 < k <= n]
    size = float(DENSE_LINES)
    while size < n:
        size = max(size * PREFIX_GROWTH, size + 1)
        out.append(min(n, int(size)))
    return sorted(set(out))


def replay(
    lines: Sequence[str], *, context: dict[str, float] | None = None, dense: range = range(0)
) -> Replay:
    """Feed ``lines`` to a live monitor and judge it at each prefix of :func:`schedule`;
    the final judgement treats the run as finished (the writer ended)."""
    monitor = LiveMonitor("replay", load_rules(), context=context)
    out = Replay()
    fed = 0
    for upto in schedule(len(lines), dense):
        monitor.add_lines(list(lines[fed:upto]))
        fed = upto
        report = monitor.report()
        if report is not None:
            active = [f for f in report.active if f.severity in ("warning", "error")]
            out.prefixes.append((fed, active))
    final = monitor.report(finished=True)
    out.final_verdict = final.verdict if final is not None else ""
    return out


def run_to_jsonl(run: Run) -> list[str]:
    """Return ``run`` as the JSON Lines a logger would have written, one record per step
    in step order (NaN written as JSON's NaN literal)."""
    rows: dict[float, dict[str, float]] = {}
    for role, series in run.series.items():
        key = {"train": "loss", "val": "val_loss"}.get(role, role)
        for step, value in zip(series.steps.tolist(), series.values.tolist(), strict=True):
            rows.setdefault(step, {})[key] = value
    return [json.dumps({"step": step, **rows[step]}) for step in sorted(rows)]


def file_lines(path: Path) -> list[str]:
    """Return a log's lines: a line format as it is, any other format through its reader
    as JSON Lines."""
    if path.suffix in (".log", ".txt", ".jsonl", ".csv", ".tsv"):
        return path.read_text(errors="replace").splitlines()
    return run_to_jsonl(read_run(str(path)))


def as_text(steps: np.ndarray, values: np.ndarray) -> list[str]:
    """Return nanoGPT-style lines."""
    return [
        f"iter {int(s)}: loss {v:.4f}, time 31.20ms" for s, v in zip(steps, values, strict=True)
    ]


def as_jsonl(steps: np.ndarray, values: np.ndarray, lr: np.ndarray | None = None) -> list[str]:
    """Return JSON Lines records (with the learning rate when given)."""
    out = []
    for i, (s, v) in enumerate(zip(steps.tolist(), values.tolist(), strict=True)):
        record = {"step": s, "loss": v}
        if lr is not None:
            record["learning_rate"] = float(lr[i])
        out.append(json.dumps(record))
    return out


def as_csv(steps: np.ndarray, values: np.ndarray) -> list[str]:
    """Return CSV lines with a header."""
    return ["step,train_loss"] + [f"{int(s)},{v:.5g}" for s, v in zip(steps, values, strict=True)]


def llm_warmup(n: int = 3000, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return (steps, loss, lr): a language model's run with a 200-step linear warmup:
    the loss sits at ln(vocab) ~ 10.9 while the rate is tiny, falls to ~3.3 as it rises,
    then declines slowly."""
    rng = np.random.default_rng(seed)
    steps = np.arange(n, dtype=np.float64)
    lr = np.where(steps < 200, 6e-4 * steps / 200, 6e-4 * 0.5 * (1 + np.cos(np.pi * steps / n)))
    drop = np.clip((steps - 60) / 160, 0, 1)
    level = (
        10.9 - 7.3 * (3 * drop**2 - 2 * drop**3) - 0.3 * np.clip((steps - 220) / (n - 220), 0, 1)
    )
    return steps, level * np.exp(rng.normal(0, 0.01, n)), lr


def slow_warmup(
    warmup: int, *, tau: float = 60.0, ranks: int = 1, n: int = 12_000, seed: int = 3
) -> tuple[np.ndarray, np.ndarray]:
    """Return (steps, loss) of the first ``n`` steps of a healthy run with a linear
    learning-rate warmup over ``warmup`` steps (the rate not logged): the loss falls from
    10.9 to 3.3 as the rate summed so far grows (by e every ``tau`` steps at the peak
    rate), so a long warmup leaves it near 10.9 for thousands of steps; each step logged
    ``ranks`` times (one line per data-parallel rank)."""
    rng = np.random.default_rng(seed)
    t = np.arange(n, dtype=np.float64)
    summed = np.cumsum(np.minimum(t / warmup, 1.0))
    level = np.repeat(3.3 + 7.6 * np.exp(-summed / tau), ranks)
    return np.repeat(t, ranks), level * np.exp(rng.normal(0, 0.01, n * ranks))


def hf_trainer_stdout(n: int = 300, seed: int = 37, noise: float = 0.1) -> list[str]:
    """Return the dict lines a Hugging Face ``Trainer`` prints (loss, grad_norm,
    learning_rate, epoch; no step) of a healthy fine-tune with small-batch noise."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        loss = (0.9 + 1.6 * np.exp(-i / 60)) * np.exp(rng.normal(0, noise))
        lr = 2e-4 * min(1, (i + 1) / 10) * (1 - i / n)
        norm = abs(rng.normal(1.5, 0.4))
        out.append(
            f"{{'loss': {loss:.4f}, 'grad_norm': {norm:.4f}, 'learning_rate': {lr:.4e}, "
            f"'epoch': {(i + 1) * 3 / n:.2f}}}"
        )
    return out


def early_drop_flat(
    n: int = 20_000, seed: int = 1, share: float = 0.01
) -> tuple[np.ndarray, np.ndarray]:
    """Return a run whose loss falls by a third within ``share`` of its steps, then stays
    flat (with noise) for the rest: a long flat tail after a fast early drop."""
    rng = np.random.default_rng(seed)
    steps = np.arange(n, dtype=np.float64)
    x = np.clip(steps / (n * share), 0, 1)
    return steps, (3.0 + 1.5 * (1 - x) ** 2) * np.exp(rng.normal(0, 0.02, n))


def small_batch(n: int = 4000, seed: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Return a healthy decline with heavy small-batch noise (0.15 nats)."""
    rng = np.random.default_rng(seed)
    steps = np.arange(n, dtype=np.float64)
    return steps, (1.5 + 3.0 * np.exp(-steps / (n / 5))) * np.exp(rng.normal(0, 0.15, n))
