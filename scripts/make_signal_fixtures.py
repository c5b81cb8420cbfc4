"""Write the native-format logs of the training-signal rule cases (tests/cases/logs/).

Each log is generated (seeded), never copied: Hugging Face ``trainer_state.json``,
printed Trainer/TRL dicts and nanoGPT stdout, shaped like the failures of the
zero-loss, non-finite-grad-norm, grad-norm-spikes, lr-schedule, loss-reset,
resume-jump, preference-chance and reward-trend rules and their near misses.

    python scripts/make_signal_fixtures.py
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

OUT = Path(__file__).resolve().parents[1] / "tests" / "cases" / "logs"


def _decay(n: int, start: float, end: float, seed: int, noise: float = 0.03) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = np.linspace(0, 1, n)
    return (end + (start - end) * np.exp(-4 * x)) * np.exp(rng.normal(0, noise, n))


def _grad(n: int, seed: int, level: float = 1.0) -> np.ndarray:
    rng = np.random.default_rng(seed + 100)
    return level * (1 + 2 * np.exp(-np.linspace(0, 8, n))) * np.exp(rng.normal(0, 0.15, n))


def _lr(n: int, peak: float = 2e-4, warmup: int = 10) -> np.ndarray:
    i = np.arange(n, dtype=float)
    ramp = np.minimum(1.0, (i + 1) / warmup)
    return peak * ramp * 0.5 * (1 + np.cos(math.pi * i / n))


def _num(x: float) -> float | str:
    if math.isnan(x):
        return float("nan")
    return round(float(x), 6)


def trainer_state(path: str, rows: list[dict[str, Any]], *, every: int = 10) -> None:
    """Write a Hugging Face trainer_state.json whose log_history holds ``rows``."""
    history = []
    for i, row in enumerate(rows):
        epoch = round((i + 1) / len(rows) * 3, 4)
        entry: dict[str, Any] = {"epoch": epoch, "step": (i + 1) * every}
        entry.update({k: _num(v) for k, v in row.items()})
        history.append(entry)
    state = {
        "best_metric": None,
        "epoch": 3.0,
        "global_step": len(rows) * every,
        "log_history": history,
        "logging_steps": every,
        "max_steps": len(rows) * every,
    }
    text = json.dumps(state, indent=2).replace("NaN", "NaN")
    (OUT / path).write_text(text + "\n", encoding="utf-8")


def printed_dicts(path: str, rows: list[dict[str, Any]], banner: str) -> None:
    """Write stdout of a Trainer/TRL run: a banner, then one printed dict per log."""
    lines = [banner]
    for row in rows:
        body = ", ".join(f"'{k}': {_num(v)!r}" for k, v in row.items())
        lines.append("{" + body + "}")
    (OUT / path).write_text("\n".join(lines) + "\n", encoding="utf-8")


def nanogpt(path: str, iters: list[int], losses: np.ndarray, header: str = "") -> None:
    """Write nanoGPT stdout: ``iter N: loss X, time Yms, mfu Z%`` lines."""
    lines = [header] if header else []
    for it, loss in zip(iters, losses, strict=True):
        lines.append(f"iter {it}: loss {loss:.4f}, time 101.23ms, mfu 12.34%")
    (OUT / path).write_text("\n".join(lines) + "\n", encoding="utf-8")


def zero_loss() -> None:
    n = 80
    # every label masked from the start: loss and gradient norm 0.0
    trainer_state(
        "zero_loss_labels_masked.json",
        [{"loss": 0.0, "grad_norm": 0.0, "learning_rate": lr} for lr in _lr(n)],
    )
    # a model that memorised its data: the loss glides down and logs as 0.0 (rounded)
    rng = np.random.default_rng(1)
    glide = 1.2 * np.exp(-np.linspace(0, 7.5, n - 12)) * np.exp(rng.normal(0, 0.05, n - 12))
    glide = np.r_[glide, np.zeros(12)]
    trainer_state(
        "zero_loss_rounded.json",
        [
            {"loss": round(float(v), 4), "grad_norm": g, "learning_rate": lr}
            for v, g, lr in zip(glide, _grad(n, 1), _lr(n), strict=True)
        ],
    )


def nonfinite_grad() -> None:
    n = 120
    loss, grad, lr = _decay(n, 2.4, 0.9, 2), _grad(n, 2), _lr(n)
    skipped = grad.copy()
    skipped[[30, 77]] = np.nan
    trainer_state(
        "fp16_skipped_steps.json",
        [
            {"loss": v, "grad_norm": g, "learning_rate": r}
            for v, g, r in zip(loss, skipped, lr, strict=True)
        ],
    )
    # an fp16 overflow: grad_norm NaN, then the trainer logs a loss of 0.0 to the end
    broken_loss, broken_grad = loss.copy(), grad.copy()
    broken_loss[70:] = 0.0
    broken_grad[69:] = np.nan
    trainer_state(
        "fp16_overflow.json",
        [
            {"loss": v, "grad_norm": g, "learning_rate": r}
            for v, g, r in zip(broken_loss, broken_grad, lr, strict=True)
        ],
    )


def grad_spikes() -> None:
    n = 200
    loss, grad, lr = _decay(n, 2.2, 1.1, 3), _grad(n, 3, 0.8), _lr(n)
    clear = grad.copy()
    clear[140] *= 90
    banner = (
        "***** Running training *****\n  Num examples = 12,800\n  Total optimization steps = 2,000"
    )
    printed_dicts(
        "grad_norm_clear_spike.log",
        [
            {"loss": v, "grad_norm": g, "learning_rate": r, "epoch": round(i / n * 2, 2)}
            for i, (v, g, r) in enumerate(zip(loss, clear, lr, strict=True))
        ],
        banner,
    )
    printed_dicts(
        "grad_norm_noisy_healthy.log",
        [
            {"loss": v, "grad_norm": g, "learning_rate": r, "epoch": round(i / n * 2, 2)}
            for i, (v, g, r) in enumerate(zip(loss, grad, lr, strict=True))
        ],
        banner,
    )


def lr_schedule() -> None:
    n = 60
    flat = 2.3 * np.exp(np.random.default_rng(4).normal(0, 0.01, n))
    trainer_state(
        "lr_zero_throughout.json",
        [
            {"loss": v, "grad_norm": g, "learning_rate": 0.0}
            for v, g in zip(flat, _grad(n, 4), strict=True)
        ],
    )
    lr = _lr(n)
    lr[:12] = 0.0
    loss = np.r_[flat[:12], _decay(n - 12, 2.3, 1.4, 5)]
    trainer_state(
        "lr_zero_first_logs.json",
        [{"loss": v, "learning_rate": r} for v, r in zip(loss, lr, strict=True)],
    )
    warm = _lr(n, warmup=5)
    warm[0] = 0.0  # a linear warmup logs 0.0 once
    trainer_state(
        "lr_warmup_from_zero.json",
        [
            {"loss": v, "learning_rate": r}
            for v, r in zip(_decay(n, 2.3, 1.2, 6), warm, strict=True)
        ],
    )


def loss_reset() -> None:
    iters = list(range(0, 2000, 10))
    n = len(iters)
    loss = _decay(n, 10.9, 3.4, 7, 0.02)
    loss[120:] = 10.8 * np.exp(np.random.default_rng(8).normal(0, 0.01, n - 120))
    nanogpt("reset_to_init.log", iters, loss, "number of parameters: 10.65M")


def resume() -> None:
    first = list(range(0, 710, 10))
    again = list(range(500, 1200, 10))
    n1, n2 = len(first), len(again)
    full = _decay(n1 + n2, 4.2, 1.6, 9, 0.02)
    # clean resume: the resumed segment continues the curve from step 500
    at = first.index(500)
    clean = np.r_[full[:n1], full[at : at + n2]]
    nanogpt("resume_clean.log", first + again, clean)
    # the optimiser state was not restored: the loss jumps at the resume, then recovers
    jump = clean.copy()
    bump = 1 + 0.8 * np.exp(-np.arange(n2) / 15)
    jump[n1:] = jump[n1:] * bump
    nanogpt("resume_jump.log", first + again, jump)


def preference() -> None:
    n = 80
    rng = np.random.default_rng(10)
    stuck = [
        {
            "loss": 0.6931 + rng.normal(0, 0.0004),
            "rewards/chosen": 0.0,
            "rewards/rejected": 0.0,
            "rewards/margins": 0.0,
            "rewards/accuracies": 0.0,
            "logps/chosen": -120.5 + rng.normal(0, 2),
            "epoch": round(i / n, 2),
        }
        for i in range(n)
    ]
    banner = "***** Running training *****  (DPOTrainer, beta=0.0)"
    printed_dicts("dpo_at_ln2.log", stuck, banner)
    falling = _decay(n, 0.6931, 0.35, 11, 0.02)
    learning = [
        {
            "loss": v,
            "rewards/chosen": 0.5 * (0.6931 - v),
            "rewards/rejected": -0.5 * (0.6931 - v),
            "rewards/margins": 0.6931 - v,
            "epoch": round(i / n, 2),
        }
        for i, v in enumerate(falling)
    ]
    printed_dicts("dpo_learning.log", learning, "***** Running training *****  (DPOTrainer)")


def reward() -> None:
    n = 80
    rng = np.random.default_rng(12)
    stuck = [
        {
            "loss": 0.0 if i < 3 else float(rng.normal(0, 0.002)),
            "grad_norm": 0.0 if i < 3 else abs(float(rng.normal(0.01, 0.004))),
            "learning_rate": 1e-6,
            "reward": float(abs(rng.normal(0, 0.01))),
            "reward_std": 0.0,
            "frac_reward_zero_std": float(min(1.0, 0.95 + abs(rng.normal(0, 0.02)))),
            "kl": float(abs(rng.normal(0.0005, 0.0002))),
            "epoch": round(i / n, 3),
        }
        for i in range(n)
    ]
    printed_dicts("grpo_no_signal.log", stuck, "***** Running training *****  (GRPOTrainer)")
    rising = [
        {
            "loss": float(rng.normal(0.002, 0.01)),
            "grad_norm": abs(float(rng.normal(0.3, 0.05))),
            "learning_rate": 1e-6,
            "reward": 0.2 + 0.6 * (1 - math.exp(-4 * i / n)) + float(rng.normal(0, 0.04)),
            "frac_reward_zero_std": 0.2,
            "kl": 0.001 * i,
            "epoch": round(i / n, 3),
        }
        for i in range(n)
    ]
    printed_dicts("grpo_learning.log", rising, "***** Running training *****  (GRPOTrainer)")


def epochs() -> None:
    per_epoch, n_epochs, every = 600, 5, 10
    n = per_epoch * n_epochs // every
    rng = np.random.default_rng(13)
    steps = (np.arange(n) + 1) * every
    within = (steps % per_epoch) / per_epoch
    trend = 1.0 + 1.4 * np.exp(-3 * steps / steps[-1])
    # the same order every epoch: the loss climbs through the epoch as the data drifts
    unshuffled = trend * (1 + 0.35 * (within - 0.5)) * np.exp(rng.normal(0, 0.02, n))
    rows = [
        {"loss": v, "learning_rate": 1e-4, "epoch": round(s / per_epoch, 4)}
        for s, v in zip(steps, unshuffled, strict=True)
    ]
    trainer_state("unshuffled_epochs.json", rows, every=every)
    # a multi-epoch fine-tune: flat within an epoch, a drop at each new one
    stair = 1.2 * 0.7 ** np.floor(steps / per_epoch) * np.exp(rng.normal(0, 0.03, n))
    rows = [
        {"loss": v, "learning_rate": 1e-4, "epoch": round(s / per_epoch, 4)}
        for s, v in zip(steps, stair, strict=True)
    ]
    trainer_state("epoch_staircase.json", rows, every=every)


def main() -> None:
    """Write every fixture."""
    OUT.mkdir(parents=True, exist_ok=True)
    makers = (zero_loss, nonfinite_grad, grad_spikes, lr_schedule, loss_reset, resume)
    for make in (*makers, preference, reward, epochs):
        make()


if __name__ == "__main__":
    main()
