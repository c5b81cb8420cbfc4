"""Seeded synthetic loss curves for tests and examples: one function per shape.

Every function returns (steps, values) as numpy arrays; the same seed gives the
same curve.
"""

from __future__ import annotations

import numpy as np


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def _decay(n: int, start: float, end: float, rate: float = 4.0) -> np.ndarray:
    x = np.linspace(0, 1, n)
    return end + (start - end) * np.exp(-rate * x)


def healthy(n: int = 500, seed: int = 0, start: float = 4.5, end: float = 1.2, noise: float = 0.03):
    """Return a falling curve with small multiplicative noise."""
    steps = np.arange(1, n + 1, dtype=float) * 10
    rate = 2.5
    values = _decay(n, start, end * 0.7, rate) * np.exp(_rng(seed).normal(0, noise, n))
    return steps, values


def spiky(n: int = 800, seed: int = 1, ratio: float = 4.0, count: int = 4):
    """Return a healthy curve with ``count`` one-point spikes of ``ratio`` x."""
    steps, values = healthy(n, seed)
    where = np.linspace(n * 0.2, n * 0.9, count).astype(int)
    values[where] *= ratio
    return steps, values


def oscillating(n: int = 600, seed: int = 2, swing: float = 0.5):
    """Return a curve that barely improves while swinging by ``swing`` in log space."""
    steps = np.arange(1, n + 1, dtype=float)
    level = _decay(n, 6.0, 4.5, 3.0)
    return steps, level * np.exp(_rng(seed).normal(0, swing, n))


def flat(n: int = 400, seed: int = 3, level: float = 10.8, noise: float = 0.01):
    """Return a curve that stays at its starting level."""
    steps = np.arange(1, n + 1, dtype=float)
    return steps, level * np.exp(_rng(seed).normal(0, noise, n))


def plateau(n: int = 600, seed: int = 4):
    """Return a curve that falls fast, then stays flat for most of the run."""
    steps = np.arange(1, n + 1, dtype=float)
    values = _decay(n, 5.0, 1.5, 15.0) * np.exp(_rng(seed).normal(0, 0.01, n))
    return steps, values


def diverging(n: int = 600, seed: int = 5, factor: float = 4.0):
    """Return a curve that falls to a minimum at 40% of the run and then climbs ``factor`` x."""
    steps = np.arange(1, n + 1, dtype=float)
    x = np.linspace(0, 1, n)
    low = 2.0
    values = np.where(
        x < 0.4, low + (5.0 - low) * (1 - x / 0.4) ** 2, low * factor ** ((x - 0.4) / 0.6)
    )
    return steps, values * np.exp(_rng(seed).normal(0, 0.01, n))


def with_nan(n: int = 300, seed: int = 6, from_share: float = 0.8):
    """Return a healthy curve whose values are NaN from ``from_share`` of the run on."""
    steps, values = healthy(n, seed)
    values[int(n * from_share) :] = np.nan
    return steps, values


def overfitting_pair(n: int = 600, seed: int = 7, rise: float = 0.3):
    """Return (steps, train, val_steps, val): training falls, validation rises ``rise`` nats
    after its minimum at 40% of the run."""
    steps, train = healthy(n, seed, noise=0.02)
    val_steps = steps[:: n // 30]
    x = np.linspace(0, 1, val_steps.shape[0])
    base = np.log(3.0) - 0.6 * np.minimum(x, 0.4) / 0.4
    val = np.exp(base + rise * np.clip((x - 0.4) / 0.6, 0, 1))
    return steps, train, val_steps, val * np.exp(_rng(seed + 1).normal(0, 0.005, x.shape[0]))


def tracking_pair(n: int = 600, seed: int = 8):
    """Return (steps, train, val_steps, val) where validation falls with training."""
    steps, train = healthy(n, seed, noise=0.02)
    val_steps = steps[:: n // 30]
    val = np.interp(val_steps, steps, train) * 1.08
    return steps, train, val_steps, val
