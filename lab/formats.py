"""Writers of the native log formats the lab's runs are saved in.

Each writer reproduces what the named tool writes, including what it hides:
Hugging Face's Trainer averages the losses between two logs and (with its default
``logging_nan_inf_filter``) replaces a non-finite step loss by the running mean, so a
run whose weights turned NaN logs ``loss 0.0`` beside ``grad_norm nan``; Keras logs the
running mean of each epoch; nanochat prints an exponentially smoothed loss.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Callable
from pathlib import Path

from train import Record

#: Logging intervals (steps) of the formats that log every N steps.
HF_LOGGING_STEPS = 10
LIGHTNING_LOG_EVERY = 10
#: nanochat's smoothing factor for its printed loss.
NANOCHAT_BETA = 0.9

Writer = Callable[[Record, Path, int], Path]


def _num(value: float, digits: int = 4) -> str:
    """Return a value as a text logger prints it (``nan`` and ``inf`` spelled out)."""
    return f"{value:.{digits}f}" if math.isfinite(value) else str(value)


def _hf_entries(record: Record, every: int) -> list[dict[str, float]]:
    """Return the Trainer's log_history: mean loss per logging window (non-finite step losses
    replaced by the running mean of the window, as ``logging_nan_inf_filter`` does), the
    last gradient norm, the learning rate, the epoch, and the evaluations."""
    entries: list[dict[str, float]] = []
    total, since = 0.0, 0
    evals = dict(record.val)
    for index, loss in enumerate(record.loss):
        step = index + 1
        since += 1
        total += loss if math.isfinite(loss) else total / since
        if step % every == 0:
            entries.append(
                {
                    "epoch": round(record.epoch[index], 4),
                    "grad_norm": record.grad_norm[index],
                    "learning_rate": record.lr[index],
                    "loss": round(total / since, 4),
                    "step": step,
                }
            )
            total, since = 0.0, 0
        if step in evals:
            entries.append(
                {"epoch": round(record.epoch[index], 4), "eval_loss": evals[step], "step": step}
            )
    return entries


def write_hf_state(record: Record, folder: Path, seed: int) -> Path:
    """Write a Hugging Face ``trainer_state.json``; return its path."""
    entries: list[dict[str, float]] = _hf_entries(record, HF_LOGGING_STEPS)
    finite = [v for v in record.loss if math.isfinite(v)]
    entries.append(
        {
            "epoch": round(record.epoch[-1], 4),
            "step": len(record.loss),
            "total_flos": 1.0e12,
            "train_loss": sum(finite) / max(len(finite), 1),
            "train_runtime": 12.5,
        }
    )
    state = {
        "best_metric": None,
        "epoch": round(record.epoch[-1], 4),
        "global_step": len(record.loss),
        "is_world_process_zero": True,
        "log_history": entries,
        "logging_steps": HF_LOGGING_STEPS,
        "max_steps": len(record.loss),
        "train_batch_size": 32,
    }
    path = folder / "trainer_state.json"
    path.write_text(json.dumps(state, indent=2) + "\n")
    return path


def write_hf_print(record: Record, folder: Path, seed: int) -> Path:
    """Write the Trainer's printed log dicts (values as quoted strings, as recent versions
    print them) with a progress line and the final summary; return the path."""
    lines = ["***** Running training *****", f"  Num examples = {32 * len(record.loss)}"]
    for entry in _hf_entries(record, HF_LOGGING_STEPS):
        shown = {k: (str(v) if k != "step" else None) for k, v in entry.items()}
        lines.append(str({k: v for k, v in shown.items() if v is not None}))
    finite = [v for v in record.loss if math.isfinite(v)]
    mean = sum(finite) / max(len(finite), 1)
    lines.append(str({"train_runtime": "12.5", "train_loss": str(round(mean, 4)), "epoch": "1"}))
    path = folder / "train.log"
    path.write_text("\n".join(lines) + "\n")
    return path


def nanogpt_every(seed: int) -> int:
    """Return the ``log_interval`` (steps) of the nanoGPT runs of ``seed``: 1 or 10."""
    return 1 if seed % 2 == 0 else 10


def write_nanogpt(record: Record, folder: Path, seed: int) -> Path:
    """Write nanoGPT's stdout: ``iter N: loss X`` every step or every ten (by seed) and
    ``step N: train loss X, val loss Y`` at each evaluation; return the path."""
    every = nanogpt_every(seed)
    evals = dict(record.val)
    lines = ["tokens per iteration will be: 512", "number of parameters: 0.01M"]
    for index, loss in enumerate(record.loss):
        it = record.step_of(index) - 1  # nanoGPT counts iterations from 0
        if it in evals or (index == 0 and evals):
            window = [v for v in record.loss[max(0, index - 10) : index + 1] if math.isfinite(v)]
            train_estimate = sum(window) / max(len(window), 1)
            val = evals.get(it, evals.get(min(evals), math.nan))
            lines.append(f"step {it}: train loss {_num(train_estimate)}, val loss {_num(val)}")
        if it % every == 0:
            lines.append(f"iter {it}: loss {_num(loss)}, time 21.37ms, mfu -100.00%")
    path = folder / "train.log"
    path.write_text("\n".join(lines) + "\n")
    return path


def write_nanochat(record: Record, folder: Path, seed: int) -> Path:
    """Write nanochat's stdout: the exponentially smoothed, debiased loss every step beside
    ``lrm`` (the learning-rate multiplier); return the path."""
    total = len(record.loss)
    peak = max(record.lr) or 1.0
    smooth, lines = 0.0, []
    for index, loss in enumerate(record.loss):
        smooth = NANOCHAT_BETA * smooth + (1 - NANOCHAT_BETA) * loss
        shown = smooth / (1 - NANOCHAT_BETA ** (index + 1))
        lines.append(
            f"step {index:05d}/{total:05d} ({100 * index / total:.2f}%) | loss: {shown:.6f} | "
            f"lrm: {record.lr[index] / peak:.2f} | dt: 21.37ms | tok/sec: 23,950 | mfu: 0.12"
        )
    path = folder / "train.log"
    path.write_text("\n".join(lines) + "\n")
    return path


def write_lightning(record: Record, folder: Path, seed: int) -> Path:
    """Write Lightning's CSVLogger ``metrics.csv``: the step's loss every ten steps and the
    validation loss at each evaluation, in rows of their own; return the path."""
    evals = dict(record.val)
    path = folder / "metrics.csv"
    with path.open("w", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(["epoch", "lr-AdamW", "step", "train_loss", "val_loss"])
        for index, loss in enumerate(record.loss):
            epoch = int(index // record.steps_per_epoch)
            if (index + 1) % LIGHTNING_LOG_EVERY == 0:
                out.writerow([epoch, record.lr[index], index, _num(loss, 6), ""])
            if index + 1 in evals:
                out.writerow([epoch, "", index, "", _num(evals[index + 1], 6)])
    return path


def write_keras(record: Record, folder: Path, seed: int) -> Path:
    """Write Keras' CSVLogger file: per epoch the running mean of the epoch's losses and the
    validation loss at its end; return the path."""
    path = folder / "training.log.csv"
    per = record.steps_per_epoch
    evals = sorted(record.val)
    with path.open("w", newline="") as handle:
        out = csv.writer(handle)
        has_val = bool(evals)
        out.writerow(["epoch", "learning_rate", "loss", *(["val_loss"] if has_val else [])])
        for epoch in range(len(record.loss) // per):
            chunk = record.loss[epoch * per : (epoch + 1) * per]
            mean = sum(chunk) / len(chunk)
            end = (epoch + 1) * per
            row = [epoch, record.lr[end - 1], _num(mean, 6)]
            if has_val:
                latest = [v for s, v in evals if s <= end] or [evals[0][1]]
                row.append(_num(latest[-1], 6))
            out.writerow(row)
    return path


def write_jsonl(record: Record, folder: Path, seed: int) -> Path:
    """Write one JSON object per step (``step``, ``loss``, ``lr``, ``grad_norm``) and one per
    evaluation (``step``, ``val_loss``); return the path."""
    evals = dict(record.val)
    lines = []
    for index, loss in enumerate(record.loss):
        step = record.step_of(index)
        row = {"step": step, "loss": loss, "lr": record.lr[index]}
        row["grad_norm"] = record.grad_norm[index]
        lines.append(json.dumps(row))
        if step in evals:
            lines.append(json.dumps({"step": step, "val_loss": evals[step]}))
    path = folder / "metrics.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


def write_tensorboard(record: Record, folder: Path, seed: int) -> Path:
    """Write a TensorBoard event file (``train/loss``, ``train/lr``, ``val/loss``) with the
    tensorboard package's own writer; return the folder."""
    from tensorboard.compat.proto import event_pb2, summary_pb2
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    writer = EventFileWriter(str(folder), filename_suffix=f".lab{seed}")

    def scalar(tag: str, value: float, step: int) -> None:
        summary = summary_pb2.Summary(
            value=[summary_pb2.Summary.Value(tag=tag, simple_value=value)]
        )
        writer.add_event(event_pb2.Event(wall_time=1.7e9 + step, step=step, summary=summary))

    for index, loss in enumerate(record.loss):
        scalar("train/loss", loss, record.step_of(index) - 1)
        scalar("train/lr", record.lr[index], record.step_of(index) - 1)
    for step, value in record.val:
        scalar("val/loss", value, step)
    writer.close()
    return folder


WRITERS: dict[str, Writer] = {
    "hf_state": write_hf_state,
    "hf_print": write_hf_print,
    "nanogpt": write_nanogpt,
    "nanochat": write_nanochat,
    "lightning": write_lightning,
    "keras": write_keras,
    "jsonl": write_jsonl,
    "tensorboard": write_tensorboard,
}
#: How often each format logs: every step, every N steps, per epoch, or smoothed.
CADENCE = {
    "hf_state": "every_n",
    "hf_print": "every_n",
    "nanogpt": "step_or_n",
    "nanochat": "smoothed",
    "lightning": "every_n",
    "keras": "epoch",
    "jsonl": "step",
    "tensorboard": "step",
}
