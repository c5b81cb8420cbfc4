#!/usr/bin/env python3
"""Held-out diagnosis benchmark: labelled synthetic runs lossdoctor has never seen.

    python benchmarks/bench_heldout.py [--seed 0] [--cases 300] [--family NAME,...]
                                       [--worst 10] [--only ID,...] [--keep DIR] [--json]

An independent generator, written from ``../shared/design/heuristics.md`` (not from the
bench's files nor from ``lossdoctor/synth.py``), draws runs of the ten bench families
(healthy, healthy with validation, small spikes, big spikes, oscillation, high flatline,
plateau, overfitting, divergence, non-finite) with the variations a hidden scorer would
use: 60 to 50,000 logged points, logging every step, every 10 or 50 steps or once an
epoch, smooth exports to noisy per-batch logs with heavy tails, loss scales from 0.05 to
ln(100,000) = 11.5, warm-up or not, resumed runs with a step offset, validation every N
steps, the fault early, in the middle or late, borderline or obvious.  Each run is
written as a real file in one of the formats people log in (generic CSV with varied
column names, JSON Lines, Hugging Face ``trainer_state.json``, Lightning ``metrics.csv``,
TensorBoard CSV export, nanoGPT text, TensorBoard event directories written by
tensorboard's own writer) and labelled from the generator's parameters alone in the
bench's shape (``must`` / ``allow`` / ``verdicts``).  Borderline strengths accept either
verdict only where heuristics.md itself does not decide.

Scoring is ``../shared/bench/score.py``'s: ``lossdoctor check --format json --fail-on
never`` on the files in batches; a rule fires at warning or error (``smooth-decline`` and
``plateau`` at any severity); a case is fully right when its verdict is acceptable, every
``must`` rule fired and nothing fired that its label does not allow.  Per family it
prints the cases, verdict accuracy, the share fully right, the false alarms (warning or
failing on a case whose only acceptable verdict is healthy) and every failing case with
what fired against what was expected.  ``--worst N`` prints the parameters of the N worst
cases as JSON; ``--only ID --keep DIR`` writes those cases' files into DIR to reproduce
them.  Everything follows from ``--seed``.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

FAMILIES = (
    "healthy",
    "healthy_val",
    "small_spikes",
    "big_spikes",
    "oscillation",
    "high_flatline",
    "plateau",
    "overfitting",
    "divergence",
    "non_finite",
)
#: Formats that can hold a validation series beside the training loss.
VAL_FORMATS = ("csv", "jsonl", "hf", "lightning", "text", "tfevents")
FORMATS = (*VAL_FORMATS, "tb_csv")
#: Families whose runs have a validation series (always or by draw).
NEEDS_VAL = frozenset({"healthy_val", "overfitting"})
ANY_SEVERITY = frozenset({"smooth-decline", "plateau"})
ALL_VERDICTS = ("healthy", "warning", "failing")
#: Relative per-point noise drawn from a t distribution is capped at this many standard
#: deviations: a noisy per-batch log (sd 0.15) then has single highs up to e^0.6 = 1.8x the
#: local level, the small-batch noise heuristics.md calls normal.
TAIL_CAP = 4.0


@dataclass(frozen=True)
class Params:
    """Everything that decides one generated run (and, from it, its label)."""

    case_id: str
    family: str
    fmt: str
    seed: int
    n_points: int  # logged training points
    every: int  # training steps between two logged points
    per_epoch: bool  # one point per epoch (every = steps per epoch)
    start_step: int  # the first logged step (a resumed run starts late)
    resumed_at: float  # share of the curve already behind a resumed run (0: from scratch)
    vocab: int  # classes or tokens: the run starts near ln(vocab)
    start: float  # the first clean loss (nats)
    floor: float  # the level a healthy run approaches
    shape: str  # "exp" (flattens) or "power" (keeps falling)
    warmup: float  # share of the run in learning-rate warm-up (0: none)
    noise: float  # relative per-point noise (sd of the log of the loss)
    heavy_tail: bool  # t-distributed (df 3) noise instead of Gaussian
    val_every: int  # logged training points between two validation points (0: none)
    variant: str  # the family's sub-kind (see generate())
    position: float  # where the fault starts, share of the run
    strength: float  # how strong the fault is (family-specific units, see generate())
    borderline: bool  # strength drawn from the band heuristics.md does not decide


@dataclass
class Series:
    """The generated curves: training loss at every logged point, validation loss sparse."""

    steps: np.ndarray[Any, np.dtype[np.int64]]
    train: np.ndarray[Any, np.dtype[np.float64]]
    clean: np.ndarray[Any, np.dtype[np.float64]]  # the training loss before noise/faults
    val_steps: np.ndarray[Any, np.dtype[np.int64]]
    val: np.ndarray[Any, np.dtype[np.float64]]
    lr: np.ndarray[Any, np.dtype[np.float64]]


@dataclass(frozen=True)
class Label:
    """A case's ground truth in the bench's shape, and why."""

    must: tuple[str, ...]
    allow: tuple[str, ...]
    verdicts: tuple[str, ...]
    why: str = ""


@dataclass
class Outcome:
    """One scored case."""

    params: Params
    label: Label
    file: str
    verdict: str = ""
    fired: list[str] = field(default_factory=list)
    error: str = ""

    @property
    def verdict_ok(self) -> bool:
        """Return whether the verdict is one the label accepts."""
        return self.verdict in self.label.verdicts

    @property
    def missing(self) -> list[str]:
        """Return the required rules that did not fire."""
        return [r for r in self.label.must if r not in self.fired]

    @property
    def extra(self) -> list[str]:
        """Return the rules that fired though the label neither requires nor allows them."""
        ok = set(self.label.must) | set(self.label.allow)
        return [r for r in self.fired if r not in ok]

    @property
    def fully_right(self) -> bool:
        """Return whether verdict and rules are all right."""
        return not self.error and self.verdict_ok and not self.missing and not self.extra

    @property
    def badness(self) -> int:
        """Return how wrong the case is (0: fully right): a wrong verdict weighs most."""
        if self.error:
            return 10
        return 3 * (not self.verdict_ok) + len(self.missing) + len(self.extra)


# --- drawing the parameters ------------------------------------------------------------


def _loguniform(rng: np.random.Generator, low: float, high: float) -> float:
    return float(math.exp(rng.uniform(math.log(low), math.log(high))))


def draw_params(family: str, index: int, seed: int) -> Params:
    """Return the parameters of case ``index`` of ``family`` under ``seed`` (deterministic)."""
    rng = np.random.default_rng([seed, FAMILIES.index(family), index])
    cadence = str(rng.choice(["step", "10", "50", "epoch"], p=[0.35, 0.25, 0.2, 0.2]))
    per_epoch = cadence == "epoch"
    if per_epoch:
        n_points = int(rng.integers(60, 301))
        every = int(rng.integers(50, 3001))
        noise = rng.uniform(0.002, 0.02)
    else:
        n_points = int(_loguniform(rng, 60, 50_000))
        every = 1 if cadence == "step" else int(cadence)
        noise = rng.uniform(0.03, 0.15) if every == 1 else rng.uniform(0.01, 0.06)
    if rng.random() < 0.2:  # a smooth export (averaged or EMA-smoothed logger)
        noise = rng.uniform(0.002, 0.006)
    heavy_tail = bool(noise >= 0.02 and rng.random() < 0.35)
    vocab = int(_loguniform(rng, 2, 100_000))
    start = math.log(vocab) * rng.uniform(0.97, 1.08)
    floor = max(0.05, start * rng.uniform(0.04, 0.55))
    resumed = rng.random() < 0.15
    shape = str(rng.choice(["exp", "power"]))
    # a resumed run starts where about half of the drop is still ahead of it
    resume_band = (0.05, 0.15) if shape == "exp" else (0.01, 0.03)
    resumed_at = float(rng.uniform(*resume_band)) if resumed else 0.0
    start_step = int(rng.integers(2_000, 200_000)) if resumed else int(rng.choice([0, 1, every]))
    warmup = float(rng.uniform(0.01, 0.1)) if rng.random() < 0.4 and not resumed else 0.0
    fmts = VAL_FORMATS if family in NEEDS_VAL else FORMATS
    fmt = str(rng.choice(fmts))
    val_every = 0
    if fmt != "tb_csv" and (family in NEEDS_VAL or rng.random() < 0.3):
        n_val = int(rng.integers(12, min(200, n_points // 2) + 1))
        val_every = max(1, n_points // n_val)
    borderline = bool(rng.random() < 0.25)
    variant, position, strength = "", 0.0, 0.0
    if family in ("small_spikes", "big_spikes"):
        variant = "spikes"
        position = float(rng.uniform(0.05, 0.95))
        count_cap = max(1, min(6, n_points // 60))
        if family == "small_spikes":
            # small: a few times the point-to-point noise, at most 1.3x the local level
            strength = float(min(1.3, max(1.05, math.exp(noise * rng.uniform(3.0, 5.0)))))
        else:
            strength = float(rng.uniform(1.6, 3.0) if borderline else rng.uniform(3.5, 8.0))
        variant = f"spikes:{int(rng.integers(1, count_cap + 1))}"
        borderline = borderline and family == "big_spikes"
    elif family == "oscillation":
        variant = str(rng.choice(["sine", "square", "random"]))
        position = float(rng.choice([rng.uniform(0.0, 0.1), rng.uniform(0.3, 0.5)]))
        strength = float(rng.uniform(0.15, 0.25) if borderline else rng.uniform(0.4, 0.8))
    elif family == "high_flatline":
        variant = str(rng.choice(["flat", "blip", "burst-stuck"], p=[0.5, 0.25, 0.25]))
        if variant == "blip" and n_points < 200:
            variant = "flat"  # a blip of one or two points is brief only in a long log
        strength = float(rng.uniform(-0.03, 0.01))  # total drift over the run
        borderline = False
    elif family == "plateau":
        variant = "plateau"
        position = float(rng.uniform(0.1, 0.5))  # where the curve reaches its floor
        borderline = False
    elif family == "overfitting":
        variant = str(rng.choice(["linear", "convex"]))
        position = float(rng.choice([rng.uniform(0.15, 0.3), rng.uniform(0.4, 0.6), 0.7]))
        strength = float(rng.uniform(0.06, 0.12) if borderline else rng.uniform(0.3, 1.0))
    elif family == "divergence":
        variant = str(rng.choice(["rise", "explode"]))
        if variant == "explode":
            position = float(rng.uniform(0.8, 0.95))
            strength = float(_loguniform(rng, 10, 1e4))
            borderline = False
        else:
            position = float(rng.choice([rng.uniform(0.3, 0.5), rng.uniform(0.55, 0.8)]))
            strength = float(rng.uniform(0.1, 0.2) if borderline else rng.uniform(0.5, 3.0))
    elif family == "non_finite":
        variant = str(rng.choice(["nan-tail", "inf-tail", "explode-nan", "isolated"]))
        position = float(rng.uniform(0.2, 0.95))
        borderline = False
    else:
        borderline = False
    if family in ("healthy", "healthy_val", "small_spikes", "non_finite", "big_spikes"):
        variant = variant or "healthy"
    return Params(
        case_id=f"s{seed}-{family}-{index:03d}",
        family=family,
        fmt=fmt,
        seed=seed,
        n_points=n_points,
        every=every,
        per_epoch=per_epoch,
        start_step=start_step,
        resumed_at=resumed_at,
        vocab=vocab,
        start=round(float(start), 4),
        floor=round(float(floor), 4),
        shape=shape,
        warmup=round(warmup, 4),
        noise=round(float(noise), 4),
        heavy_tail=heavy_tail,
        val_every=val_every,
        variant=variant,
        position=round(position, 4),
        strength=round(strength, 4),
        borderline=borderline,
    )


# --- the curves ----------------------------------------------------------------------


def _progress(p: Params, x: np.ndarray[Any, np.dtype[np.float64]]) -> Any:
    """Return the share of learning done at run fraction ``x`` (the integral of the LR)."""
    w = p.warmup
    if w > 0:
        done = np.where(x < w, x * x / (2 * w), x - w / 2)
        total = 1 - w / 2
    else:
        done, total = x, 1.0
    return p.resumed_at + (1 - p.resumed_at) * done / total


def _healthy(p: Params, x: np.ndarray[Any, np.dtype[np.float64]], speed: float = 1.0) -> Any:
    """Return a healthy training curve from ``start`` towards ``floor``.

    ``speed`` scales the learning after a resumed run's start, so a resumed fast run
    still begins where the same share of its drop is ahead of it.
    """
    e = p.resumed_at + speed * (_progress(p, x) - p.resumed_at)
    g = np.exp(-5.0 * e) if p.shape == "exp" else 1.0 / (1.0 + 60.0 * e) ** 0.7
    return p.floor + (p.start - p.floor) * g


def _noise(p: Params, rng: np.random.Generator, n: int) -> Any:
    z = rng.standard_t(3, n) / math.sqrt(3.0) if p.heavy_tail else rng.standard_normal(n)
    return np.exp(p.noise * np.clip(z, -TAIL_CAP, TAIL_CAP))


def generate(p: Params) -> Series:
    """Return the run ``p`` describes: steps, training loss (nats), validation loss, LR.

    Families: spikes multiply single points by ``strength`` (x the local level); an
    oscillation multiplies the curve from ``position`` on by 1 +/- ``strength``; a high
    flatline stays at ``start`` (drifting by ``strength`` in all); a plateau reaches its
    floor at ``position`` and stays; overfitting's validation loss rises from its minimum
    at ``position`` to ``1 + strength`` times it; divergence rises from ``position`` to
    ``1 + strength`` times the level there ("rise") or grows exponentially to
    ``strength`` times it ("explode"); non-finite turns the loss NaN/Inf at ``position``.
    """
    rng = np.random.default_rng([p.seed, FAMILIES.index(p.family), 7, p.n_points])
    n = p.n_points
    x = np.linspace(0.0, 1.0, n)
    steps = p.start_step + np.arange(n, dtype=np.int64) * p.every
    lr_peak = _loguniform(rng, 1e-5, 3e-3)
    lr = np.full(n, lr_peak)
    if p.warmup > 0:
        lr = lr_peak * np.minimum(1.0, (x + 1.0 / n) / p.warmup)
    fam, v = p.family, p.variant
    onset = min(n - 1, round(p.position * (n - 1)))
    if fam == "plateau":
        clean = _healthy(p, x, speed=1.0 / max(p.position, 1e-3) * 1.2)
    elif fam == "high_flatline":
        clean = p.start * (1.0 + p.strength * x)
        if v == "blip":  # the first one or two logged points high, then flat at the start
            k = 1 + n % 2
            clean[:k] *= rng.uniform(1.3, 2.0, k)
        elif v == "burst-stuck":
            k = max(3, n // 50)
            burst = np.concatenate(
                [np.linspace(1.0, 1.8, k // 2), np.linspace(1.8, 0.85, k - k // 2)]
            )
            clean = p.start * np.concatenate(
                [burst, np.full(n - k, 0.85) * (1 + p.strength * x[k:])]
            )
    else:
        clean = _healthy(p, x)
    clean = np.asarray(clean, dtype=np.float64)
    train = clean * _noise(p, rng, n)
    val_steps = np.zeros(0, dtype=np.int64)
    val = np.zeros(0)
    if p.val_every:
        idx = np.arange(p.val_every - 1, n, p.val_every)
        val_steps = steps[idx]
        gap = rng.uniform(0.03, 0.25)
        vx = x[idx]
        val_clean = clean[idx] * (1 + gap)
        if fam == "overfitting":
            vmin = float(np.interp(p.position, x, clean)) * (1 + gap)
            after = vx > p.position
            u = (vx[after] - p.position) / (1 - p.position)
            q = 1.0 if v == "linear" else 2.0
            val_clean = np.where(vx <= p.position, np.maximum(val_clean, vmin), val_clean)
            val_clean[after] = vmin * (1 + p.strength * u**q)
        val = val_clean * np.exp(rng.normal(0, min(0.01, p.noise / 3), len(idx)))
    if fam in ("small_spikes", "big_spikes"):
        count = int(v.split(":")[1])
        lo, hi = max(2, int(0.05 * n)), max(3, int(0.95 * n))
        where = rng.choice(np.arange(lo, hi), size=min(count, hi - lo), replace=False)
        train[where] = clean[where] * p.strength
    elif fam == "oscillation":
        t = np.arange(n - onset, dtype=np.float64)
        period = float(rng.integers(2, 21))
        if v == "sine":
            s = np.sin(2 * np.pi * t / period)
        elif v == "square":
            s = np.where(np.sin(2 * np.pi * t / period + 0.1) >= 0, 1.0, -1.0)
        else:
            s = rng.choice([-1.0, 1.0], n - onset) * rng.uniform(0.5, 1.0, n - onset)
        train[onset:] = clean[onset:] * (1 + p.strength * s) * _noise(p, rng, n - onset)
    elif fam == "divergence":
        base = clean[onset]
        u = (x[onset:] - x[onset]) / max(1e-9, 1 - x[onset])
        if v == "rise":
            clean[onset:] = base * (1 + p.strength * u ** rng.uniform(1.0, 1.6))
        else:
            clean[onset:] = base * np.exp(math.log(p.strength) * u)
        train[onset:] = clean[onset:] * _noise(p, rng, n - onset)
        if len(val):
            after = val_steps >= steps[onset]
            val[after] = np.interp(val_steps[after], steps, clean) * (1 + rng.uniform(0.03, 0.2))
    elif fam == "non_finite":
        bad = math.inf if v == "inf-tail" else math.nan
        if v == "isolated":
            k = int(rng.integers(1, 4))
            where = rng.choice(np.arange(onset, n), size=min(k, n - onset), replace=False)
            train[where] = math.nan
        elif v == "explode-nan":
            k = int(rng.integers(3, 21))
            end = min(n, onset + k)
            train[onset:end] = clean[onset] * np.exp(np.linspace(0.5, 8.0, end - onset))
            train[end:] = math.nan
        else:
            train[onset:] = bad
        if len(val):
            val[val_steps >= steps[onset]] = bad
    return Series(steps=steps, train=train, clean=clean, val_steps=val_steps, val=val, lr=lr)


# --- the labels ----------------------------------------------------------------------


def label(p: Params) -> Label:
    """Return the ground truth of run ``p``, decided from its parameters alone."""
    near_zero = ("zero-loss",) if p.floor < 0.1 else ()
    fam = p.family
    if fam in ("healthy", "healthy_val", "small_spikes"):
        return Label(
            ("smooth-decline",),
            ("plateau", *near_zero),
            ("healthy",),
            "downward curve, smooth decline: good; occasional small spikes: normal, good",
        )
    if fam == "big_spikes":
        if p.borderline:
            return Label(
                (),
                ("spikes", "smooth-decline", "plateau", *near_zero),
                ALL_VERDICTS,
                "1.6-3x the local level: between 'occasional small spikes' (good) and "
                "the 4-5x injected bad batches",
            )
        return Label(
            ("spikes",),
            ("smooth-decline", "plateau", *near_zero),
            ("warning", "failing"),
            "single-step spikes 4-5x the local level that recover at once (bad batches)",
        )
    if fam == "oscillation":
        extra = ("spikes", "plateau", "high-flatline", "epoch-periodic")
        if p.borderline:
            return Label(
                (),
                ("oscillation", "smooth-decline", *extra),
                ALL_VERDICTS,
                "swings of 15-25%: heuristics.md says 'huge oscillations' and calls "
                "small-batch noise normal; it does not say where one ends",
            )
        return Label(
            ("oscillation",),
            extra,
            ("warning", "failing"),
            "huge oscillations: learning rate too high (problem)",
        )
    if fam == "high_flatline":
        allow: tuple[str, ...] = ()
        if p.vocab <= 2 or p.start < 0.75:
            allow += ("preference-chance",)
        if p.variant == "burst-stuck":
            allow += ("plateau", "spikes")
        # "flat near its start" is a high flatline (problem: failing); a slow, almost
        # linear fall of 1-3% is heuristics.md's LR-1000x-too-low run, which it names but
        # gives no verdict, and the burst then stall is "an early plateau at a high level",
        # which only the vocabulary (absent from these logs) proves high: warning or failing
        sure = p.variant != "burst-stuck" and p.strength >= -0.01
        return Label(
            ("high-flatline",),
            allow,
            ("failing",) if sure else ("warning", "failing"),
            "flatline at high loss (never leaves its start): problem",
        )
    if fam == "plateau":
        return Label(
            ("plateau",),
            ("smooth-decline", *near_zero),
            ("healthy", "warning"),
            "plateau after long training: good (informative)",
        )
    if fam == "overfitting":
        if p.borderline:
            return Label(
                (),
                ("overfitting", "smooth-decline", "plateau", *near_zero),
                ALL_VERDICTS,
                "validation 6-12% above its minimum at the end: heuristics.md gives no size",
            )
        return Label(
            ("overfitting",),
            ("smooth-decline", "plateau", *near_zero),
            ("warning", "failing"),
            "training loss falls while validation loss rises: overfitting (problem)",
        )
    if fam == "divergence":
        late_plateau = ("plateau",) if p.position >= 0.5 else ()
        if p.borderline:
            return Label(
                (),
                ("divergence", "spikes", "oscillation", "smooth-decline", "plateau"),
                ALL_VERDICTS,
                "a late rise of 10-20%: 'rises steadily' gives no size",
            )
        return Label(
            ("divergence",),
            ("spikes", "oscillation", *late_plateau),
            ("failing",),
            "loss rises steadily or explodes: divergence (problem)",
        )
    if fam == "non_finite":
        return Label(
            ("non-finite",),
            ("divergence", "spikes", "smooth-decline", "plateau", *near_zero),
            ("failing",),
            "NaN/Inf: divergence (problem)",
        )
    raise ValueError(f"unknown family {fam!r}")


# --- the files -----------------------------------------------------------------------

_STEP_NAMES = ("step", "iter", "global_step", "iteration", "Step")
_LOSS_NAMES = ("loss", "train_loss", "train/loss", "training_loss", "Loss")
_VAL_NAMES = ("val_loss", "eval_loss", "valid_loss", "val/loss", "validation_loss")


def _num(value: float) -> str:
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return f"{value:.6g}"


def _val_at(s: Series) -> dict[int, float]:
    return {int(k): float(v) for k, v in zip(s.val_steps, s.val, strict=True)}


def write_case(p: Params, s: Series, folder: Path) -> Path:
    """Write run ``s`` into ``folder`` in ``p.fmt``; return the path to give lossdoctor."""
    rng = np.random.default_rng([p.seed, 99, p.n_points])
    vals = _val_at(s)
    stem = p.case_id
    if p.fmt == "csv":
        sc, lc, vc = (str(rng.choice(names)) for names in (_STEP_NAMES, _LOSS_NAMES, _VAL_NAMES))
        path = folder / f"{stem}.csv"
        lines = [f"{sc},{lc},lr" + (f",{vc}" if vals else "")]
        for st, y, lr in zip(s.steps, s.train, s.lr, strict=True):
            row = f"{st},{_num(y)},{lr:.4g}"
            if vals:
                row += "," + (_num(vals[int(st)]) if int(st) in vals else "")
            lines.append(row)
        path.write_text("\n".join(lines) + "\n")
        return path
    if p.fmt == "jsonl":
        sc, lc, vc = (str(rng.choice(names)) for names in (_STEP_NAMES, _LOSS_NAMES, _VAL_NAMES))
        path = folder / f"{stem}.jsonl"
        with path.open("w") as out:
            for st, y, lr in zip(s.steps, s.train, s.lr, strict=True):
                out.write(json.dumps({sc: int(st), lc: float(y), "lr": float(lr)}) + "\n")
                if int(st) in vals:
                    out.write(json.dumps({sc: int(st), vc: vals[int(st)]}) + "\n")
        return path
    if p.fmt == "hf":
        path = folder / f"{stem}_trainer_state.json"
        history: list[dict[str, Any]] = []
        total = int(s.steps[-1]) or 1
        for st, y, lr in zip(s.steps, s.train, s.lr, strict=True):
            ep = round(float(st) / total * 3, 4)
            history.append(
                {
                    "epoch": ep,
                    "grad_norm": 1.0,
                    "learning_rate": float(lr),
                    "loss": round(float(y), 4),
                    "step": int(st),
                }
            )
            if int(st) in vals:
                history.append(
                    {"epoch": ep, "eval_loss": vals[int(st)], "eval_runtime": 1.5, "step": int(st)}
                )
        finite = s.train[np.isfinite(s.train)]
        history.append(
            {
                "epoch": 3.0,
                "step": total,
                "train_loss": float(finite.mean()) if len(finite) else 0.0,
                "train_runtime": 100.0,
                "total_flos": 1e15,
            }
        )
        doc = {
            "best_metric": None,
            "epoch": 3.0,
            "global_step": total,
            "logging_steps": p.every,
            "max_steps": total,
            "num_train_epochs": 3,
            "log_history": history,
        }
        path.write_text(json.dumps(doc, indent=2))
        return path
    if p.fmt == "lightning":
        path = folder / f"{stem}_metrics.csv"
        has_val = bool(vals)
        lines = ["epoch,step,train_loss" + (",val_loss" if has_val else "")]
        spe = (
            p.every
            if p.per_epoch
            else max(p.every, int(rng.integers(100, 2000)) // p.every * p.every)
        )
        for st, y in zip(s.steps, s.train, strict=True):
            ep = int(st) // max(1, spe)
            lines.append(f"{ep},{st},{_num(y)}" + ("," if has_val else ""))
            if int(st) in vals:
                lines.append(f"{ep},{st},,{_num(vals[int(st)])}")
        path.write_text("\n".join(lines) + "\n")
        return path
    if p.fmt == "tb_csv":
        path = folder / f"{stem}-run_train-tag-loss.csv"
        t0 = 1.7e9 + float(rng.uniform(0, 1e8))
        lines = ["Wall time,Step,Value"]
        for i, (st, y) in enumerate(zip(s.steps, s.train, strict=True)):
            lines.append(f"{t0 + 0.5 * i:.3f},{st},{_num(y)}")
        path.write_text("\n".join(lines) + "\n")
        return path
    if p.fmt == "text":
        path = folder / f"{stem}.log"
        lines = []
        for st, y in zip(s.steps, s.train, strict=True):
            if int(st) in vals:
                lines.append(f"step {st}: train loss {_num(y)}, val loss {_num(vals[int(st)])}")
            lines.append(f"iter {st}: loss {_num(y)}, time {rng.uniform(20, 60):.2f}ms, mfu 20.00%")
        path.write_text("\n".join(lines) + "\n")
        return path
    if p.fmt == "tfevents":
        return _write_events(s, folder / f"{stem}_tb", str(rng.choice(["train/loss", "loss"])))
    raise ValueError(f"unknown format {p.fmt!r}")


def _write_events(s: Series, folder: Path, tag: str) -> Path:
    """Write the run as a TensorBoard event directory with tensorboard's record writer.

    The records are what ``EventFileWriter`` writes (a file-version event, then one
    event a scalar, each framed with masked CRC-32C) without its queue thread, which
    costs three times as much per event on large runs.
    """
    from tensorboard.compat.proto import event_pb2, summary_pb2
    from tensorboard.summary.writer.record_writer import RecordWriter

    folder.mkdir()
    val_tag = "val/loss" if tag == "train/loss" else "val_loss"
    vals = _val_at(s)
    t0 = 1.7e9
    with (folder / f"events.out.tfevents.{int(t0)}.heldout").open("wb") as out:
        writer = RecordWriter(out)
        first = event_pb2.Event(wall_time=t0, file_version="brain.Event:2")
        writer.write(first.SerializeToString())
        for i, (st, y) in enumerate(zip(s.steps, s.train, strict=True)):
            values = [summary_pb2.Summary.Value(tag=tag, simple_value=float(y))]
            if int(st) in vals:
                values.append(summary_pb2.Summary.Value(tag=val_tag, simple_value=vals[int(st)]))
            for value in values:
                event = event_pb2.Event(
                    wall_time=t0 + i, step=int(st), summary=summary_pb2.Summary(value=[value])
                )
                writer.write(event.SerializeToString())
        writer.flush()
    return folder


# --- scoring -------------------------------------------------------------------------


def _fired(run: dict[str, Any]) -> list[str]:
    return sorted(
        {
            str(f.get("rule"))
            for f in run.get("findings", [])
            if f.get("rule") in ANY_SEVERITY or f.get("severity") in ("warning", "error")
        }
    )


def _check(cmd: list[str], files: list[str], cwd: Path) -> dict[str, Any]:
    """Run lossdoctor on ``files``; return {file: run dict or an error string}."""
    proc = subprocess.run([*cmd, *files], cwd=cwd, capture_output=True, text=True, timeout=900)
    try:
        runs = json.loads(proc.stdout)["runs"]
    except (ValueError, KeyError, TypeError):
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        return dict.fromkeys(files, f"exit {proc.returncode}: {tail[0][:160]}")
    by_source = {r.get("source"): r for r in runs if isinstance(r, dict)}
    out: dict[str, Any] = {}
    for i, f in enumerate(files):
        r = by_source.get(f) or (runs[i] if len(runs) == len(files) else None)
        if r is None:
            out[f] = "missing from output"
        elif r.get("error") or r.get("verdict") == "error":
            out[f] = f"error: {str(r.get('error'))[:160]}"
        else:
            out[f] = r
    return out


def build(seed: int, cases: int, families: tuple[str, ...]) -> list[tuple[Params, Label]]:
    """Return ``cases`` cases spread evenly over ``families`` (deterministic in ``seed``)."""
    per = max(1, cases // len(families))
    return [
        (p, label(p)) for fam in families for p in (draw_params(fam, i, seed) for i in range(per))
    ]


def run_cases(
    chosen: list[tuple[Params, Label]], folder: Path, cmd: list[str], batch: int, jobs: int = 1
) -> list[Outcome]:
    """Write every case into ``folder``, diagnose them in batches (``jobs`` at a time);
    return the outcomes."""
    outcomes = []
    for p, lab in chosen:
        path = write_case(p, generate(p), folder)
        outcomes.append(Outcome(p, lab, path.name))
    files = [o.file for o in outcomes]

    def one_batch(chunk: list[str]) -> dict[str, Any]:
        got = _check(cmd, chunk, folder)
        if len(chunk) > 1 and all(isinstance(v, str) for v in got.values()):
            got = {}
            for f in chunk:  # one bad file must not sink the batch
                got.update(_check(cmd, [f], folder))
        return got

    results: dict[str, Any] = {}
    chunks = [files[i : i + batch] for i in range(0, len(files), batch)]
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        for got in pool.map(one_batch, chunks):
            results.update(got)
    for o in outcomes:
        r = results.get(o.file, "missing")
        if isinstance(r, dict):
            o.verdict = str(r.get("verdict"))
            o.fired = _fired(r)
        else:
            o.error = str(r)
    return outcomes


def _describe(o: Outcome) -> str:
    p = o.params
    bits = [
        f"{p.fmt}",
        f"n={p.n_points}",
        f"every={p.every}{'(epoch)' if p.per_epoch else ''}",
        f"noise={p.noise}{'t3' if p.heavy_tail else ''}",
        f"start={p.start}",
        f"floor={p.floor}",
        p.shape,
    ]
    if p.variant:
        bits.append(
            f"{p.variant}@{p.position} x{p.strength}{' borderline' if p.borderline else ''}"
        )
    if p.warmup:
        bits.append(f"warmup={p.warmup}")
    if p.resumed_at:
        bits.append(f"resumed@{p.resumed_at} step0={p.start_step}")
    if p.val_every:
        bits.append(f"val/{p.val_every}")
    got = f"ERROR {o.error}" if o.error else f"verdict={o.verdict} fired={o.fired}"
    want = f"want verdict in {list(o.label.verdicts)} must={list(o.label.must)}"
    return f"{p.case_id}: {got}; {want}; missing={o.missing} extra={o.extra}  [{' '.join(bits)}]"


def report(outcomes: list[Outcome], *, show_failures: bool = True) -> dict[str, Any]:
    """Print the per-family table and the failures; return the numbers as a dict."""
    table: dict[str, dict[str, Any]] = {}
    print(f"{'family':14} {'cases':>5} {'verdict':>8} {'fully':>7} {'alarms':>7}")
    for fam in (*FAMILIES, "ALL"):
        group = [o for o in outcomes if fam in ("ALL", o.params.family)]
        if not group:
            continue
        healthy_only = [o for o in group if o.label.verdicts == ("healthy",)]
        alarms = sum(1 for o in healthy_only if o.verdict != "healthy")
        row = {
            "cases": len(group),
            "verdict": sum(o.verdict_ok for o in group) / len(group),
            "fully_right": sum(o.fully_right for o in group) / len(group),
            "false_alarms": alarms,
            "healthy_cases": len(healthy_only),
        }
        table[fam] = row
        alarm_text = f"{alarms}/{len(healthy_only)}" if healthy_only else "-"
        print(
            f"{fam:14} {row['cases']:5d} {row['verdict']:8.3f} {row['fully_right']:7.3f} "
            f"{alarm_text:>7}"
        )
    failing = [o for o in outcomes if not o.fully_right]
    if show_failures and failing:
        print(f"\nnot fully right ({len(failing)}):")
        for o in failing:
            print("  " + _describe(o))
    classes = Counter(
        (o.params.family, tuple(o.missing), tuple(o.extra), o.verdict_ok) for o in failing
    )
    if classes:
        print("\nfailure classes (family, missing, extra, verdict ok): cases")
        for key, count in classes.most_common():
            print(f"  {key}: {count}")
    return table


def _as_json(o: Outcome) -> dict[str, Any]:
    """Return one case's parameters, label and result as a JSON-ready dict."""
    return {
        **asdict(o.params),
        "label": asdict(o.label),
        "verdict": o.verdict,
        "fired": o.fired,
        "error": o.error,
        "fully_right": o.fully_right,
    }


def main(argv: list[str] | None = None) -> int:
    """Generate, diagnose and score; return the exit code (0 unless lossdoctor is absent)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cases", type=int, default=300, help="cases in all, spread over families")
    ap.add_argument("--family", help="only these families, comma-separated")
    ap.add_argument("--only", help="only these case ids, comma-separated")
    ap.add_argument("--keep", type=Path, help="write the files here and keep them")
    ap.add_argument("--worst", type=int, default=0, help="print the N worst cases' parameters")
    ap.add_argument("--json", action="store_true", help="print the table as JSON at the end")
    ap.add_argument("--dump", type=Path, help="write every case's parameters and result (JSONL)")
    ap.add_argument("--batch", type=int, default=25, help="files per lossdoctor invocation")
    ap.add_argument("--jobs", type=int, default=2, help="lossdoctor invocations at a time")
    ap.add_argument("-q", "--quiet", action="store_true", help="no list of failing cases")
    ap.add_argument(
        "--cmd",
        default=None,
        help="diagnosis command (default: the lossdoctor beside this Python, then PATH)",
    )
    args = ap.parse_args(argv)
    families = tuple(args.family.split(",")) if args.family else FAMILIES
    for fam in families:
        if fam not in FAMILIES:
            ap.error(f"unknown family {fam!r}; one of {', '.join(FAMILIES)}")
    chosen = build(args.seed, args.cases, families)
    if args.only:
        keep = set(args.only.split(","))
        chosen = [c for c in chosen if c[0].case_id in keep]
    if args.cmd:
        cmd = args.cmd.split()
    else:
        beside = Path(sys.executable).with_name("lossdoctor")
        exe = str(beside) if beside.exists() else shutil.which("lossdoctor")
        if exe is None:
            print("lossdoctor not found (install the project, or give --cmd)", file=sys.stderr)
            return 2
        cmd = [exe, "check", "--format", "json", "--fail-on", "never"]
    t0 = time.monotonic()
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
        outcomes = run_cases(chosen, args.keep, cmd, args.batch, args.jobs)
    else:
        with tempfile.TemporaryDirectory(prefix="lossdoctor-heldout-") as tmp:
            outcomes = run_cases(chosen, Path(tmp), cmd, args.batch, args.jobs)
    seconds = time.monotonic() - t0
    table = report(outcomes, show_failures=not args.quiet)
    if args.worst:
        worst = sorted((o for o in outcomes if not o.fully_right), key=lambda o: -o.badness)
        print(
            f"\nworst {min(args.worst, len(worst))} "
            f"(reproduce: --seed {args.seed} --only ID --keep DIR):"
        )
        for o in worst[: args.worst]:
            print(json.dumps(_as_json(o)))
    if args.dump:
        with args.dump.open("w") as out:
            for o in outcomes:
                out.write(json.dumps(_as_json(o)) + "\n")
    n = len(outcomes)
    total = table.get("ALL", {})
    print(
        f"HELDOUT seed={args.seed} cases={n} verdict={total.get('verdict', 0):.3f} "
        f"fully_right={total.get('fully_right', 0):.3f} "
        f"false_alarms={total.get('false_alarms', 0)}/{total.get('healthy_cases', 0)} "
        f"errors={sum(1 for o in outcomes if o.error)} seconds={seconds:.1f}"
    )
    if args.json:
        print(json.dumps(table, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
