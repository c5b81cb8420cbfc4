"""Write the native-format logs whose other signals rank the causes of a finding, and the
logs whose configuration states a learning-rate schedule (tests/cases/logs/).

Each log is generated (seeded), never copied: Hugging Face ``trainer_state.json`` (with
LLaMA-Factory's ``training_args.yaml`` beside it) and printed Trainer dicts with the
``TrainingArguments`` block and fp16 loss-scaler lines of a real run's stdout.

    python scripts/make_cause_fixtures.py
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_signal_fixtures import OUT, _decay, _grad, _lr, _num, trainer_state

#: Logged points of each run, and the points where the loss spikes.
N = 120
SPIKES = (30, 55, 80, 105)
ARGS = (
    "TrainingArguments(_n_gpu=1, fp16={fp16}, gradient_accumulation_steps=1, "
    "learning_rate=2e-05, lr_scheduler_type=SchedulerType.{scheduler}, warmup_steps=0)"
)


def _spiky(seed: int, at: tuple[int, ...] = SPIKES, ratio: float = 3.0) -> np.ndarray:
    loss = _decay(N, 2.4, 0.9, seed, 0.01)
    loss[list(at)] *= ratio
    return loss


def printed(path: str, banner: str, rows: list[dict[str, Any]], after: dict[int, str]) -> None:
    """Write a Trainer's stdout: ``banner``, one printed dict per log, and the line
    ``after[i]`` printed after log ``i``."""
    lines = [banner]
    for i, row in enumerate(rows):
        lines.append("{" + ", ".join(f"'{k}': {_num(v)!r}" for k, v in row.items()) + "}")
        if i in after:
            lines.append(after[i])
    (OUT / path).write_text("\n".join(lines) + "\n", encoding="utf-8")


def spikes_with_grad_norm() -> None:
    """The same loss spikes, once with the gradient norm spiking at the same steps, once
    with a calm gradient norm."""
    loss, lr = _spiky(11), _lr(N, peak=2e-5)
    co = _grad(N, 11)
    co[list(SPIKES)] *= 25
    for name, grad in (
        ("spikes_co_grad_norm.json", co),
        ("spikes_calm_grad_norm.json", _grad(N, 12)),
    ):
        trainer_state(
            name,
            [
                {"loss": v, "grad_norm": g, "learning_rate": r}
                for v, g, r in zip(loss, grad, lr, strict=True)
            ],
        )


def spikes_at_epoch_starts() -> None:
    """A 6-epoch run of 20 logs per epoch whose loss spikes at the first log of every epoch
    (an unshuffled dataset with a hard block at its start)."""
    per_epoch, every = 20, 10
    at = tuple(range(per_epoch, N, per_epoch))
    loss = _spiky(13, at, 2.5)
    rows = [
        {"loss": v, "learning_rate": 2e-5, "epoch": round((i + 1) / per_epoch, 4)}
        for i, v in enumerate(loss)
    ]
    trainer_state("spikes_epoch_starts.json", rows, every=every)


def fp16_overflow_spikes() -> None:
    """An fp16 run whose loss scaler skips steps (apex and DeepSpeed wordings) next to the
    loss spikes."""
    loss, grad = _spiky(14), _grad(N, 14)
    rows = [
        {"loss": v, "grad_norm": g, "learning_rate": 2e-5, "epoch": round((i + 1) / N, 4)}
        for i, (v, g) in enumerate(zip(loss, grad, strict=True))
    ]
    apex = "Gradient overflow.  Skipping step, loss scaler 0 reducing loss scale to 32768.0"
    deepspeed = "[deepspeed] OVERFLOW! Rank 0 Skipping step. Attempted loss scale: 32768, reducing"
    after = {SPIKES[0] - 1: apex, SPIKES[2] - 1: deepspeed + " to 16384"}
    printed("fp16_overflow_spikes.log", ARGS.format(fp16=True, scheduler="CONSTANT"), rows, after)


def lr_against_configuration() -> None:
    """Printed runs whose arguments configure a cosine schedule: the logged rate is constant
    (a DeepSpeed scheduler in charge) or follows it; and a LLaMA-Factory run whose logged
    peak is 50x its training_args.yaml."""
    loss = _decay(N, 2.4, 0.9, 15, 0.01)
    cosine = 2e-5 * 0.5 * (1 + np.cos(np.pi * np.arange(N) / N))
    for name, lr in (
        ("lr_constant_configured.log", np.full(N, 2e-5)),
        ("lr_cosine_configured.log", cosine),
    ):
        rows = [
            {"loss": v, "learning_rate": r, "epoch": round((i + 1) / N, 4)}
            for i, (v, r) in enumerate(zip(loss, lr, strict=True))
        ]
        printed(name, ARGS.format(fp16=False, scheduler="COSINE"), rows, {})
    folder = OUT / "lr_far_from_configured"
    folder.mkdir(exist_ok=True)
    trainer_state(
        "lr_far_from_configured/trainer_state.json",
        [{"loss": v, "learning_rate": r} for v, r in zip(loss, 50 * cosine, strict=True)],
    )
    (folder / "training_args.yaml").write_text(
        "bf16: true\ncutoff_len: 2048\nlearning_rate: 2.0e-05\nlr_scheduler_type: cosine\n"
        "num_train_epochs: 3.0\nwarmup_ratio: 0.0\n",
        encoding="utf-8",
    )


def main() -> None:
    """Write every fixture."""
    OUT.mkdir(parents=True, exist_ok=True)
    for make in (spikes_with_grad_norm, spikes_at_epoch_starts, fp16_overflow_spikes):
        make()
    lr_against_configuration()


if __name__ == "__main__":
    main()
