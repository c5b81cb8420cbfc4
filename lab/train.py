"""One training run of the lab: a config in, the per-step record out.

The faults are causes, applied while training (a learning rate, a schedule, data
or parameters), never edits of the logged curve.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from tasks import Dataset, build
from torch import nn

#: Steps between validation passes, as a share of the run.
VAL_SHARE = 0.05
#: Warmup length of the warmup schedules, as a share of the run.
WARMUP_SHARE = 0.05
#: The share of the run a schedule stuck at 0 keeps the learning rate at 0.
ZERO_START_SHARE = 0.3
#: A resumed run: its last checkpoint and the step it dies at, as shares of the run.
CHECKPOINT_SHARE = 0.5
CRASH_SHARE = 0.65
#: Seed offset of the fresh model a resume without weights builds.
RESUME_SEED = 500
#: The largest finite float16 value, and a loss scaler's first scale (PyTorch's GradScaler).
FP16_MAX = 65504.0
INITIAL_SCALE = 2.0**16


@dataclass(frozen=True)
class Config:
    """What one run trains and how (a fault is a cause, named in ``faults``)."""

    task: str
    steps: int
    lr: float
    optimizer: str = "adam"
    batch: int = 32
    width: int = 32
    schedule: str = "constant"
    restart_peaks: tuple[float, ...] = (1.0, 1.0, 1.0)
    weight_decay: float = 0.0
    train_size: int | None = None
    faults: tuple[str, ...] = ()
    seed: int = 0
    validate: bool = False


@dataclass
class Record:
    """Per-step training loss, learning rate, gradient norm and epoch, and the validation
    passes (step, loss)."""

    loss: list[float] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)
    grad_norm: list[float] = field(default_factory=list)
    epoch: list[float] = field(default_factory=list)
    val: list[tuple[int, float]] = field(default_factory=list)
    steps_per_epoch: int = 1
    #: The step number each point is logged at (1-based; a resumed run repeats some).
    step: list[int] = field(default_factory=list)

    def step_of(self, index: int) -> int:
        """Return the logged step number of point ``index`` (0-based)."""
        return self.step[index] if self.step else index + 1


def lr_at(config: Config, step: int) -> float:
    """Return the learning rate of ``step`` (0-based) under the config's schedule."""
    share = step / max(config.steps - 1, 1)
    base = config.lr
    if config.schedule == "constant":
        return base
    if config.schedule == "warmup_cosine":
        if share < WARMUP_SHARE:
            return base * (step + 1) / (WARMUP_SHARE * config.steps)
        rest = (share - WARMUP_SHARE) / (1 - WARMUP_SHARE)
        return base * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * rest)))
    if config.schedule == "step":
        return base * 0.3 ** int(share * 3 - 1e-9)
    if config.schedule == "restarts":
        cycles = len(config.restart_peaks)
        cycle = min(int(share * cycles), cycles - 1)
        within = share * cycles - cycle
        peak = base * config.restart_peaks[cycle]
        return peak * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * within)))
    if config.schedule == "zero_start":  # a warmup stuck at 0 for the first 30%
        return 0.0 if share < ZERO_START_SHARE else base
    if config.schedule == "late_ramp":
        return base if share < 0.6 else base * 100 ** ((share - 0.6) / 0.4)
    raise ValueError(f"unknown schedule {config.schedule!r}")


def _optimizer(config: Config, params: list[nn.Parameter]) -> torch.optim.Optimizer:
    """Return the config's optimizer over ``params``."""
    if config.optimizer == "adam":
        return torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    if config.optimizer in ("sgd", "gd"):
        return torch.optim.SGD(params, lr=config.lr, weight_decay=config.weight_decay)
    if config.optimizer == "sgdm":
        return torch.optim.SGD(params, lr=config.lr, momentum=0.9, weight_decay=config.weight_decay)
    raise ValueError(f"unknown optimizer {config.optimizer!r}")


#: The label value that excludes a target from the loss (PyTorch's and Hugging Face's).
IGNORE_INDEX = -100


def _loss(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, fp16: bool = False
) -> torch.Tensor:
    """Return the mean cross-entropy of the model over the batch's unmasked targets (nats):
    the sum over the targets that are not ``IGNORE_INDEX`` divided by their count, at least
    1 (as the Hugging Face Trainer divides by ``num_items_in_batch``: a batch whose labels
    are all masked has loss 0.0 and zero gradients). With ``fp16`` the logits pass through
    float16 (and overflow to inf beyond 65504)."""
    logits = model(x).float()
    if fp16:
        logits = logits.half().float()
    targets, flat = y.reshape(-1), logits.reshape(-1, logits.shape[-1])
    counted = int((targets != IGNORE_INDEX).sum())
    if counted == targets.shape[0]:
        return nn.functional.cross_entropy(flat, targets)
    total = nn.functional.cross_entropy(flat, targets, ignore_index=IGNORE_INDEX, reduction="sum")
    return total / max(counted, 1)


class LossScaler:
    """Dynamic loss scaling as PyTorch's GradScaler does it under fp16: the loss is scaled
    before backward, a step whose scaled gradients overflow float16 is reported non-finite
    (and skipped by the caller) and the scale halved; it never grows within the lab's short
    runs (GradScaler's growth interval is 2000 steps)."""

    def __init__(self) -> None:
        self.scale = INITIAL_SCALE

    def backward(self, model: nn.Module, loss: torch.Tensor) -> float:
        """Backpropagate ``loss`` and return the unscaled gradient norm, or inf when the
        scaled gradients overflow float16 (the step must then be skipped)."""
        loss.backward()  # type: ignore[no-untyped-call]
        norm = float(torch.nn.utils.clip_grad_norm_(model.parameters(), float("inf")))
        largest = max(
            (float(p.grad.abs().max()) for p in model.parameters() if p.grad is not None),
            default=0.0,
        )
        if not math.isfinite(norm) or largest * self.scale > FP16_MAX:
            self.scale /= 2
            return float("inf") if math.isfinite(norm) else norm
        return norm


def _pretrain(model: nn.Module, data: Dataset, seed: int) -> None:
    """Train ``model`` briefly on the same task with another seed, then reset its head
    (a pretrained start for a fine-tune)."""
    generator = torch.Generator().manual_seed(seed + 1000)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for _ in range(150):
        pick = torch.randint(0, data.x_train.shape[0], (8,), generator=generator)
        optimizer.zero_grad()
        _loss(model, data.x_train[pick], data.y_train[pick]).backward()  # type: ignore[no-untyped-call]
        optimizer.step()
    head = [m for m in model.modules() if isinstance(m, nn.Linear)][-1]
    head.reset_parameters()


def _training_data(config: Config, data: Dataset, rng: np.random.Generator) -> Dataset:
    """Return the data the run trains on after the data faults of its config."""
    y_train = data.y_train
    if "shuffled_labels" in config.faults:
        y_train = y_train[torch.from_numpy(rng.permutation(y_train.shape[0]))]
    x_train = data.x_train
    if config.train_size is not None:
        x_train, y_train = x_train[: config.train_size], y_train[: config.train_size]
    if "ordered" in config.faults:
        order = torch.argsort(y_train if y_train.dim() == 1 else y_train[:, 0], stable=True)
        x_train, y_train = x_train[order], y_train[order]
    return Dataset(x_train, y_train, data.x_val, data.y_val, data.classes)


def _corrupt(data: Dataset, rng: np.random.Generator, share: float = 0.6) -> Dataset:
    """Return the data with ``share`` of its training targets replaced at random."""
    y = data.y_train.clone()
    flat = y.view(-1)
    picked = torch.from_numpy(rng.random(flat.shape[0]) < share)
    flat[picked] = torch.from_numpy(rng.integers(0, data.classes, int(picked.sum())))
    return Dataset(data.x_train, y, data.x_val, data.y_val, data.classes)


def train_linreg(config: Config) -> Record:
    """Run full-batch gradient descent on a least-squares problem in numpy; ``config.lr`` is
    the step size as a share of the stability limit 2/lambda_max (above 1 it diverges; with
    the ``float32`` fault the numbers are single precision and overflow to inf, then NaN).
    Return the record (loss = half the mean squared error)."""
    rng = np.random.default_rng(config.seed)
    samples, features = 200, 20
    scales = np.geomspace(1.0, 0.05, features)
    x = rng.normal(size=(samples, features)) * scales
    y = x @ rng.normal(size=features) + rng.normal(0, 0.1, samples)
    curvature = float(np.linalg.eigvalsh(x.T @ x / samples).max())
    step_size = config.lr * 2 / curvature
    dtype: type[np.floating[Any]] = np.float32 if "float32" in config.faults else np.float64
    x, y = x.astype(dtype), y.astype(dtype)
    weights: np.ndarray[Any, Any] = np.zeros(features, dtype=dtype)
    record = Record()
    with np.errstate(over="ignore", invalid="ignore"):
        for step in range(config.steps):
            error = x @ weights - y
            gradient = x.T @ error / samples
            record.loss.append(float(0.5 * np.mean(error**2)))
            record.lr.append(step_size)
            record.grad_norm.append(float(np.linalg.norm(gradient)))
            record.epoch.append(step + 1.0)
            weights = (weights - step_size * gradient).astype(dtype)
    return record


def train(config: Config) -> Record:
    """Train one run and return its per-step record (losses in nats)."""
    if config.task == "linreg":
        return train_linreg(config)
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    model, full = build(config.task, config.width)
    if "pretrained" in config.faults:
        _pretrain(model, full, config.seed)
    data = _training_data(config, full, rng)
    if "fp16_weights" in config.faults:
        model.half()  # weights and optimizer state in float16, no float32 master copy
    params = list(model.parameters())
    if "frozen" in config.faults:
        # the optimizer is built over copies, so the model's weights never change
        params = [nn.Parameter(p.detach().clone()) for p in params]
    optimizer = _optimizer(config, params)
    n = data.x_train.shape[0]
    batch = n if config.optimizer == "gd" else min(config.batch, n)
    per_epoch = max(n // batch, 1)
    record = Record(steps_per_epoch=per_epoch)
    bad_steps = set()
    if "bad_batches" in config.faults:
        count = int(rng.integers(3, 7))
        bad_steps = set(rng.choice(np.arange(config.steps // 5, config.steps), count).tolist())
    nan_steps = set()
    if "nan_inputs" in config.faults:
        nan_steps = set(rng.choice(np.arange(config.steps // 4, config.steps), 2).tolist())
    val_every = max(1, round(config.steps * VAL_SHARE))
    order = torch.from_numpy(rng.permutation(n))
    resume = next((f for f in config.faults if f.startswith("resume_")), None)
    checkpoint_at, crash_at = int(config.steps * CHECKPOINT_SHARE), int(config.steps * CRASH_SHARE)
    checkpoint: dict[str, torch.Tensor] = {}
    fp16 = "fp16" in config.faults or "fp16_weights" in config.faults
    scaler = LossScaler() if fp16 else None
    mask_from = 0 if "masked" in config.faults else config.steps // 2
    masked = "masked" in config.faults or "masked_mid" in config.faults
    replayed = 0  # steps logged again after a resume from an earlier checkpoint
    for step in range(config.steps):
        if resume and step == checkpoint_at:
            checkpoint = {k: v.detach().clone() for k, v in model.state_dict().items()}
        if resume and step == crash_at:
            # the job dies and is resumed from the checkpoint, without what the cause says
            replayed = crash_at - checkpoint_at
            if resume == "resume_no_weights":  # a fresh model: only the step counter resumed
                torch.manual_seed(config.seed + RESUME_SEED)
                model = build(config.task, config.width)[0]
            else:  # weights restored, optimizer state lost
                model.load_state_dict(checkpoint)
            optimizer = _optimizer(config, list(model.parameters()))
        logged = step + 1 - replayed
        if "corrupt_mid" in config.faults and step == config.steps // 2:
            data = _corrupt(data, rng)
        position = step % per_epoch
        if position == 0 and "ordered" not in config.faults:
            order = torch.from_numpy(rng.permutation(n))
        index = (
            torch.arange(position * batch, position * batch + batch)
            if "ordered" in config.faults
            else order[position * batch : position * batch + batch]
        )
        x, y = data.x_train[index], data.y_train[index]
        if step in bad_steps:  # a batch of garbage: random inputs, random targets
            if x.dtype == torch.int64:
                x = torch.randint(0, data.classes, x.shape)
            else:
                x = torch.rand_like(x) * 4
            y = torch.randint(0, data.classes, y.shape)
        if step in nan_steps and x.dtype != torch.int64:  # a corrupt sample: a NaN pixel
            x = x.clone()
            x[0, 0] = float("nan")
        if masked and step >= mask_from:  # every label masked: nothing left to learn
            y = torch.full_like(y, IGNORE_INDEX)
        rate = lr_at(config, logged - 1)
        for group in optimizer.param_groups:
            group["lr"] = rate
        if "fp16_weights" in config.faults and x.is_floating_point():
            x = x.half()
        model.zero_grad()
        loss = _loss(model, x, y, fp16="fp16" in config.faults)
        if scaler is not None:
            norm = scaler.backward(model, loss)
        else:
            loss.backward()  # type: ignore[no-untyped-call]
            norm = float(torch.nn.utils.clip_grad_norm_(model.parameters(), float("inf")))
        value = float(loss.detach())
        if math.isfinite(value) and math.isfinite(norm):
            optimizer.step()
        elif "nan_inputs" not in config.faults and scaler is None:
            optimizer.step()  # no loss scaler skips it: the non-finite update goes through
        record.loss.append(value)
        record.lr.append(rate)
        record.grad_norm.append(norm)
        record.epoch.append(logged / per_epoch)
        record.step.append(logged)
        if config.validate and (logged % val_every == 0 or step == 0):
            with torch.no_grad():
                record.val.append((logged, float(_loss(model, data.x_val, data.y_val))))
    return record
