"""Seeded synthetic loss curves: one function per shape, for rule case files, tests
and examples.

Every function returns numpy arrays (steps first); the same seed gives the same
curve.  :func:`make` builds a named shape as a dict of series for case files.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import numpy as np

from lossdoctor.model import FloatArray

Curve = tuple[FloatArray, FloatArray]


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def _decay(n: int, start: float, end: float, rate: float = 4.0) -> FloatArray:
    x = np.linspace(0, 1, n)
    return np.asarray(end + (start - end) * np.exp(-rate * x), dtype=np.float64)


def healthy(
    n: int = 500,
    seed: int = 0,
    start: float = 4.5,
    end: float = 1.2,
    noise: float = 0.03,
    rate: float = 2.5,
) -> Curve:
    """Return a falling curve (exponential decay at ``rate`` per run) with multiplicative
    log-normal noise of ``noise`` (nats)."""
    steps = np.arange(1, n + 1, dtype=np.float64) * 10
    values = _decay(n, start, end * 0.7, rate) * np.exp(_rng(seed).normal(0, noise, n))
    return steps, values


def spiky(n: int = 800, seed: int = 1, ratio: float = 4.0, count: int = 4) -> Curve:
    """Return a healthy curve with ``count`` one-point spikes of ``ratio`` x."""
    steps, values = healthy(n, seed)
    where = np.linspace(n * 0.2, n * 0.9, count).astype(int)
    values[where] *= ratio
    return steps, values


def late_spike(n: int = 1000, seed: int = 9, ratio: float = 3.0, at: float = 0.95) -> Curve:
    """Return a healthy curve with one spike of ``ratio`` x at ``at`` of the run."""
    steps, values = healthy(n, seed)
    values[int(n * at)] *= ratio
    return steps, values


def low_loss_blip(n: int = 400, seed: int = 24, ratio: float = 2.9, at: float = 0.9) -> Curve:
    """Return a classifier's per-batch loss falling from 2.3 to about 0.07 with 10% noise and
    one batch at ``ratio`` x the local level at ``at`` of the run (a hard batch, near zero)."""
    steps = np.arange(1, n + 1, dtype=np.float64)
    values = _decay(n, 2.3, 0.05, 6.0) * np.exp(_rng(seed).normal(0, 0.1, n))
    values[int(n * at)] *= ratio
    return steps, values


def level_shift(n: int = 1000, seed: int = 18, factor: float = 1.6, at: float = 0.6) -> Curve:
    """Return a healthy curve that jumps ``factor`` x at ``at`` of the run and stays there."""
    steps, values = healthy(n, seed)
    values[int(n * at) :] *= factor
    return steps, values


def spike_then_high(n: int = 1000, seed: int = 19, at: float = 0.6) -> Curve:
    """Return a healthy curve with a 4x spike at ``at`` after which the loss stays 1.8x
    higher (a spike that starts a divergence)."""
    steps, values = healthy(n, seed)
    i = int(n * at)
    values[i] *= 4.0
    values[i + 1 :] *= np.linspace(1.5, 2.2, n - i - 1)
    return steps, values


def heavy_tailed(n: int = 5000, seed: int = 10, scale: float = 0.03, df: float = 3.0) -> Curve:
    """Return a falling curve whose log-noise is Student-t with ``df`` degrees of freedom."""
    steps = np.arange(1, n + 1, dtype=np.float64)
    noise = scale * _rng(seed).standard_t(df, n)
    return steps, _decay(n, 4.5, 0.9, 2.5) * np.exp(noise)


def oscillating(n: int = 600, seed: int = 2, swing: float = 0.5) -> Curve:
    """Return a curve that barely improves while swinging by ``swing`` in log space."""
    steps = np.arange(1, n + 1, dtype=np.float64)
    level = _decay(n, 6.0, 4.5, 3.0)
    return steps, level * np.exp(_rng(seed).normal(0, swing, n))


def periodic(n: int = 2000, seed: int = 11, amplitude: float = 0.4, period: float = 120.0) -> Curve:
    """Return a slowly falling curve with a sine oscillation of ``amplitude`` (nats)."""
    steps = np.arange(1, n + 1, dtype=np.float64)
    wave = amplitude * np.sin(2 * np.pi * steps / period)
    noise = _rng(seed).normal(0, 0.02, n)
    return steps, _decay(n, 5.0, 3.5, 2.0) * np.exp(wave + noise)


def late_wave(
    n: int = 600,
    seed: int = 30,
    fall: float = 10.0,
    swing: float = 0.5,
    period: float = 12.0,
    at: float = 0.3,
    square: int = 0,
    noise: float = 0.01,
    random: int = 0,
) -> Curve:
    """Return a curve that falls ``fall``-fold and, from ``at`` (a share of the run) on,
    swings by 1 +/- ``swing`` x its level: a sine of ``period`` points, a square wave
    when ``square`` is 1, or when ``random`` is 1 a side and a size (0.5 to 1 of
    ``swing``) drawn for each point (no period); with multiplicative noise of ``noise``
    (nats) per point."""
    steps = np.arange(1, n + 1, dtype=np.float64)
    level = _decay(n, 4.0 * fall, 4.0, 5.0)
    wave = np.sin(2 * np.pi * steps / period + 0.1)
    if square:
        wave = np.where(wave >= 0, 1.0, -1.0)
    if random:
        draw = _rng(seed + 1)
        wave = draw.choice([-1.0, 1.0], n) * draw.uniform(0.5, 1.0, n)
    wave[steps <= at * n] = 0.0
    return steps, level * (1 + swing * wave) * np.exp(_rng(seed).normal(0, noise, n))


def flat(n: int = 400, seed: int = 3, level: float = 10.8, noise: float = 0.01) -> Curve:
    """Return a curve that stays at its starting level."""
    steps = np.arange(1, n + 1, dtype=np.float64)
    return steps, level * np.exp(_rng(seed).normal(0, noise, n))


def flat_after_blip(
    n: int = 1000, seed: int = 12, level: float = 5.5, blip: float = 1.3, share: float = 0.02
) -> Curve:
    """Return a flat curve whose first ``share`` of points sit ``blip`` x higher."""
    steps, values = flat(n, seed, level)
    values[: max(2, int(n * share))] *= blip
    return steps, values


def early_drop(
    n: int = 1000,
    seed: int = 20,
    start: float = 3.0,
    drop: float = 0.5,
    share: float = 0.01,
    noise: float = 0.03,
) -> Curve:
    """Return a curve that falls by ``drop`` (a share of its start) within the first
    ``share`` of the run, then stays flat with log-normal noise of ``noise`` nats (a fast,
    finished fine-tune)."""
    steps = np.arange(1, n + 1, dtype=np.float64)
    fall = max(2, int(n * share))
    level = np.full(n, start * (1 - drop))
    level[:fall] = np.geomspace(start, start * (1 - drop), fall)
    return steps, level * np.exp(_rng(seed).normal(0, noise, n))


def burst_then_stuck(
    n: int = 600,
    seed: int = 21,
    start: float = 3.4,
    burst: float = 1.5,
    stuck: float = 2.9,
    peak_at: float = 0.02,
    noise: float = 0.02,
) -> Curve:
    """Return a curve that bursts to ``burst`` x its start by ``peak_at`` (a share of the
    run), then drops to ``stuck`` over the next 3% of the run and stays there, creeping down
    2% by the end, with log-normal noise of ``noise`` nats (a learning rate 10-100x too
    high: the model only learns which tokens are common)."""
    steps = np.arange(1, n + 1, dtype=np.float64)
    x = np.linspace(0, 1, n)
    level = stuck * (1 - 0.02 * x)
    peak = start * burst
    level = np.where(x < peak_at, start + (peak - start) * x / peak_at, level)
    falling = (x >= peak_at) & (x < peak_at + 0.03)
    level[falling] = np.geomspace(peak, stuck, int(falling.sum()))
    return steps, level * np.exp(_rng(seed).normal(0, noise, n))


def plateau(n: int = 600, seed: int = 4) -> Curve:
    """Return a curve that falls fast, then stays flat for most of the run."""
    steps = np.arange(1, n + 1, dtype=np.float64)
    values = _decay(n, 5.0, 1.5, 15.0) * np.exp(_rng(seed).normal(0, 0.01, n))
    return steps, values


def diverging(n: int = 600, seed: int = 5, factor: float = 4.0) -> Curve:
    """Return a curve that falls to a minimum at 40% of the run, then climbs ``factor`` x."""
    steps = np.arange(1, n + 1, dtype=np.float64)
    x = np.linspace(0, 1, n)
    low = 2.0
    values = np.where(
        x < 0.4, low + (5.0 - low) * (1 - x / 0.4) ** 2, low * factor ** ((x - 0.4) / 0.6)
    )
    return steps, values * np.exp(_rng(seed).normal(0, 0.01, n))


def restart_too_high(
    n: int = 1200, seed: int = 22, at: float = 0.66, jump: float = 1.7, end: float = 1.45
) -> Curve:
    """Return a healthy curve until ``at`` of the run, where a learning-rate restart to a
    too-high peak lifts the loss ``jump`` x within 2% of the run; it eases only to ``end`` x
    the level before the restart and never comes back."""
    steps, values = healthy(n, seed)
    i, ramp = int(n * at), max(2, n // 50)
    base = _decay(n, 4.5, 1.2 * 0.7, 2.5)
    lift = np.ones(n)
    lift[i : i + ramp] = np.linspace(1.0, jump, ramp)
    lift[i + ramp :] = np.geomspace(jump, end, n - i - ramp)
    return steps, values / base * np.maximum(base, base[i]) * lift


def explode_then_settle(
    n: int = 1000, seed: int = 23, at: float = 0.5, peak: float = 1e6, settle: float = 3.0
) -> Curve:
    """Return a healthy curve that explodes to ``peak`` x its level from ``at`` of the run over
    5% of it, then falls back to ``settle`` x and stays there."""
    steps, values = healthy(n, seed)
    i, rise = int(n * at), n // 20
    lift = np.full(n, settle)
    lift[:i] = 1.0
    lift[i : i + rise] = np.geomspace(1.0, peak, rise)
    lift[i + rise : i + 2 * rise] = np.geomspace(peak, settle, rise)
    return steps, values * lift


def linear_divergence(n: int = 3000, seed: int = 13, rise: float = 0.3) -> Curve:
    """Return a curve that falls for half the run, then rises linearly by ``rise`` (share)."""
    steps = np.arange(1, n + 1, dtype=np.float64)
    x = np.linspace(0, 1, n)
    low = 2.0
    values = np.where(x < 0.5, low + 2.0 * (1 - x / 0.5) ** 2, low * (1 + rise * (x - 0.5) / 0.5))
    return steps, values * np.exp(_rng(seed).normal(0, 0.02, n))


def with_nan(n: int = 300, seed: int = 6, from_share: float = 0.8) -> Curve:
    """Return a healthy curve whose values are NaN from ``from_share`` of the run on."""
    steps, values = healthy(n, seed)
    values[int(n * from_share) :] = np.nan
    return steps, values


def single_nan(n: int = 800, seed: int = 14, at: float = 0.5) -> Curve:
    """Return a healthy curve with one NaN at ``at`` of the run."""
    steps, values = healthy(n, seed)
    values[int(n * at)] = np.nan
    return steps, values


def warmup(
    n: int = 2000, seed: int = 15, share: float = 0.05
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Return (steps, loss, lr): a linear LR warmup over ``share`` of the run with a noisy,
    briefly rising loss, then cosine decay and a healthy fall."""
    steps = np.arange(1, n + 1, dtype=np.float64)
    x = np.linspace(0, 1, n)
    warm = x < share
    lr = np.where(
        warm, 3e-4 * x / share, 3e-4 * 0.5 * (1 + np.cos(np.pi * (x - share) / (1 - share)))
    )
    rng = _rng(seed)
    loss = _decay(n, 10.8, 2.5, 4.0)
    bump = np.where(warm, 1 + 0.15 * np.sin(np.pi * x / share), 1.0)
    noise = np.where(warm, rng.normal(0, 0.08, n), rng.normal(0, 0.02, n))
    return steps, loss * bump * np.exp(noise), lr


def step_decay(
    n: int = 3000, seed: int = 16, drops: tuple[float, ...] = (0.5, 0.75)
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Return (steps, loss, lr): a step LR schedule (x0.1 at ``drops``) with the loss
    dropping sharply at each decay step, ResNet-style."""
    steps = np.arange(1, n + 1, dtype=np.float64)
    x = np.linspace(0, 1, n)
    lr = 0.1 * 0.1 ** np.sum([x >= d for d in drops], axis=0)
    loss = _decay(n, 2.5, 1.2, 8.0)
    for d in drops:
        loss = np.where(x >= d, loss * 0.7, loss)
    return steps, loss * np.exp(_rng(seed).normal(0, 0.03, n)), lr


def overfitting_pair(
    n: int = 600, seed: int = 7, rise: float = 0.3
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """Return (steps, train, val_steps, val): training falls, validation rises ``rise`` nats
    after its minimum at 40% of the run."""
    steps, train = healthy(n, seed, noise=0.02)
    val_steps = steps[:: max(1, n // 30)]
    x = np.linspace(0, 1, val_steps.shape[0])
    base = np.log(3.0) - 0.6 * np.minimum(x, 0.4) / 0.4
    val = np.exp(base + rise * np.clip((x - 0.4) / 0.6, 0, 1))
    return steps, train, val_steps, val * np.exp(_rng(seed + 1).normal(0, 0.005, x.shape[0]))


def epochs_overfitting(
    epochs: int = 15, seed: int = 17, best: int = 6
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """Return (epochs, train, epochs, val) of a per-epoch log: validation best at epoch
    ``best``, then rising while training keeps falling."""
    x = np.arange(epochs, dtype=np.float64)
    rng = _rng(seed)
    train = 2.5 * np.exp(-x / 5) + 0.1
    val = 2.6 * np.exp(-np.minimum(x, best) / 5) + 0.3 + 0.06 * np.maximum(x - best, 0)
    return (
        x,
        train * np.exp(rng.normal(0, 0.01, epochs)),
        x,
        val * np.exp(rng.normal(0, 0.01, epochs)),
    )


def tracking_pair(
    n: int = 600, seed: int = 8
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """Return (steps, train, val_steps, val) where validation falls with training."""
    steps, train = healthy(n, seed, noise=0.02)
    val_steps = steps[:: max(1, n // 30)]
    val = np.interp(val_steps, steps, train) * 1.08
    return steps, train, val_steps, val


def noisy_with_val(
    n: int = 375,
    seed: int = 44,
    noise: float = 0.24,
    val_noise: float = 0.01,
    val_rise: float = 0.0,
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """Return (steps, train, val_steps, val) of a small-batch classifier: the training loss
    falls from 0.9 to about 0.3 with per-batch noise of ``noise`` (nats), the validation
    loss (25 points) from 0.47 to 0.32 with ``val_noise`` (nats) of its own, rising by
    ``val_rise`` (nats) over the second half of the run when given."""
    steps = np.arange(1, n + 1, dtype=np.float64) * 50
    rng = _rng(seed)
    train = _decay(n, 0.9, 0.3, 15.0) * np.exp(rng.normal(0, noise, n))
    val_steps = steps[n // 25 - 1 :: n // 25][:25]
    x = np.linspace(0, 1, val_steps.shape[0])
    val = _decay(val_steps.shape[0], 0.47, 0.31, 3.0) * np.exp(
        rng.normal(0, val_noise, x.shape[0]) + val_rise * np.clip(2 * x - 1, 0, 1)
    )
    return steps, train, val_steps, val


Series3 = dict[str, tuple[FloatArray, FloatArray]]

_SHAPES: dict[str, Callable[..., Any]] = {
    name: func
    for name, func in globals().items()
    if callable(func) and not name.startswith("_") and func.__module__ == __name__
    and name not in ("make", "shapes")
}  # fmt: skip


def shapes() -> list[str]:
    """Return the names of the shapes :func:`make` knows."""
    return sorted(_SHAPES)


def shape_params(shape: str) -> dict[str, type]:
    """Return the parameters of ``shape`` and their types (int or float), in order."""
    func = _SHAPES[shape]
    annotations = inspect.get_annotations(func, eval_str=True)
    return {
        name: int if annotations.get(name) is int else float
        for name in inspect.signature(func).parameters
    }


def make(shape: str, **params: Any) -> Series3:
    """Return the curve ``shape`` built with ``params`` as role -> (steps, values).

    Raises KeyError for an unknown shape, TypeError for unknown parameters.
    """
    out = _SHAPES[shape](**params)
    if len(out) == 2:
        return {"train": (out[0], out[1])}
    if len(out) == 3:
        return {"train": (out[0], out[1]), "lr": (out[0], out[2])}
    return {"train": (out[0], out[1]), "val": (out[2], out[3])}
