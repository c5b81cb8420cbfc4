#!/usr/bin/env python3
"""Write the fine-tuning stack fixtures in ``tests/fixtures/finetune/``.

    python scripts/make_finetune_fixtures.py

Each file is in the shape a framework writes (checked against the framework's own
source, named in ``tests/fixtures/README.md``), made from a seeded synthetic curve
with one planted problem that ``tests/test_finetune_formats.py`` must diagnose.
Deterministic: running it again rewrites the same bytes.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from lossdoctor import synth as curves

OUT = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "finetune"


def write(name: str, lines: list[str]) -> None:
    (OUT / name).write_text("\n".join(lines) + "\n")


def bracket_log() -> None:
    """A custom script's log whose first line starts with '[' (not JSON); a NaN from
    step 1510 on."""
    steps, loss = curves.with_nan(n=200, seed=31, from_share=0.75)
    lines = ["[train] tokens/iter = 16,384", "[train] model: 124.4M parameters"]
    for s, v in zip(steps, loss, strict=True):
        lines.append(f"[train] step={int(s)} loss={v:.4f} lr=3.0e-04")
    write("bracket_prefixed.log", lines)


def notebook_table() -> None:
    """The Hugging Face / unsloth notebook table, pasted with its progress banner (TRL
    SFT columns); validation loss rises after 40% of the run."""
    steps, train, val_steps, val = curves.overfitting_pair(n=600, seed=32, rise=0.4)
    at = dict(zip(steps.tolist(), train.tolist(), strict=True))
    lines = [
        " [6000/6000 1:02:11, Epoch 3/3]",
        "Step\tTraining Loss\tValidation Loss\tEntropy\tNum Tokens\tMean Token Accuracy",
    ]
    for i, (s, v) in enumerate(zip(val_steps, val, strict=True)):
        tr = "No log" if i == 0 else f"{at[float(s)]:.6f}"
        acc = 0.4 + 0.3 * i / len(val_steps)
        lines.append(f"{int(s)}\t{tr}\t{v:.6f}\t1.2345\t{4096 * (i + 1)}.000000\t{acc:.6f}")
    write("hf_notebook_table.txt", lines)
    steps, loss = curves.spiky(n=120, seed=33, ratio=5.0, count=3)
    lines = [" [1200/1200 08:41, Epoch 1/1]", "Step  Training Loss"]
    lines += [f"{int(s):<5} {v:.6f}" for s, v in zip(steps, loss, strict=True)]
    write("unsloth_notebook_spaces.txt", lines)


def llamafactory() -> None:
    """LLaMA-Factory ``trainer_log.jsonl`` (LogCallback): step = current_steps; spikes."""
    steps, loss = curves.spiky(n=300, seed=34, ratio=4.5, count=4)
    total = int(steps[-1])
    lines = []
    for i, (s, v) in enumerate(zip(steps, loss, strict=True)):
        rec = {
            "current_steps": int(s),
            "total_steps": total,
            "loss": round(float(v), 4),
            "lr": 5e-05 * (1 - s / total),
            "epoch": round(3 * s / total, 4),
            "percentage": round(100 * s / total, 2),
            "elapsed_time": f"0:{i // 60:02d}:{i % 60:02d}",
            "remaining_time": "0:10:00",
        }
        lines.append(json.dumps(rec))
        if (i + 1) % 50 == 0:
            ev = {"current_steps": int(s), "total_steps": total, "eval_loss": round(1.3, 4)}
            ev.update(epoch=rec["epoch"], percentage=rec["percentage"])
            lines.append(json.dumps(ev))
    write("llamafactory_trainer_log.jsonl", lines)


def lightning_bar() -> None:
    """Lightning TQDM progress bar captured to a file (carriage returns kept): 12 epochs
    of 50 batches; validation best at epoch 4 then rising."""
    epochs, train, _, val = curves.epochs_overfitting(epochs=12, seed=35, best=4)
    per_epoch = 50
    rng = np.random.default_rng(35)
    chunks = []
    for e in range(len(epochs)):
        parts = []
        shown_val = f", val_loss={val[e - 1]:.3f}" if e else ""
        for b in range(10, per_epoch + 1, 10):
            level = train[e] * np.exp(rng.normal(0, 0.02))
            pct = 100 * b // per_epoch
            bar = "█" * (pct // 10) + " " * (10 - pct // 10)
            parts.append(
                f"Epoch {e}: {pct:3d}%|{bar}| {b}/{per_epoch} [00:0{b // 10}<00:00, 9.51it/s, "
                f"v_num=0, train_loss={level:.3f}{shown_val}]"
            )
        parts.append(
            f"Epoch {e}: 100%|██████████| {per_epoch}/{per_epoch} [00:05<00:00, 9.51it/s, "
            f"v_num=0, train_loss={level:.3f}, val_loss={val[e]:.3f}]"
        )
        chunks.append("\r".join(parts))
    lines = [
        "GPU available: False, used: False",
        "  | Name  | Type   | Params",
        "0 | model | Linear | 7.9 K",
        *chunks,
        "`Trainer.fit` stopped: `max_epochs=12` reached.",
    ]
    write("lightning_progress.log", lines)


def mmengine_scalars() -> None:
    """mmengine ``vis_data/scalars.json``: train lines (step = iteration) and validation
    lines (step = epoch) that also log a loss; four spikes in training."""
    steps, loss = curves.spiky(n=240, seed=36, ratio=4.0, count=4)
    per_epoch = 60
    lines = []
    for s, v in zip(steps, loss, strict=True):
        it = int(s) // 10
        epoch = (it - 1) // per_epoch + 1
        rec = {"lr": 0.0002, "data_time": 0.0042, "loss": round(float(v), 4), "time": 0.2874,
               "epoch": epoch, "iter": it, "memory": 10762, "step": it}  # fmt: skip
        lines.append(json.dumps(rec))
        if it % per_epoch == 0:
            val = {"loss": round(1.5 - 0.1 * epoch, 4), "accuracy/top1": 50.0 + epoch,
                   "data_time": 0.01, "time": 0.05, "step": epoch}  # fmt: skip
            lines.append(json.dumps(val))
    write("mmengine_scalars.json", lines)


def ultralytics() -> None:
    """Ultralytics ``results.csv`` (YOLOv8 padded header): box, cls and dfl losses;
    validation losses best at epoch 14 then rising."""
    epochs, train, _, val = curves.epochs_overfitting(epochs=40, seed=37, best=14)
    head = ["epoch", "train/box_loss", "train/cls_loss", "train/dfl_loss",
            "metrics/precision(B)", "metrics/recall(B)", "metrics/mAP50(B)",
            "metrics/mAP50-95(B)", "val/box_loss", "val/cls_loss", "val/dfl_loss",
            "lr/pg0", "lr/pg1", "lr/pg2"]  # fmt: skip
    lines = [",".join(f"{h:>20}" for h in head)]
    for e, t, v in zip(epochs, train, val, strict=True):
        cells = [int(e) + 1, 0.45 * t, 0.35 * t, 0.2 * t + 0.8, 0.5, 0.4, 0.3, 0.2,
                 0.45 * v, 0.35 * v, 0.2 * v + 0.8, 0.001, 0.001, 0.001]  # fmt: skip
        lines.append(",".join(f"{c:>20.5g}" for c in cells))
    write("ultralytics_results.csv", lines)


def detectron2() -> None:
    """detectron2 ``metrics.json`` (JSONWriter, sort_keys): total_loss and its parts; the
    loss climbs 5x from 60% of the run (divergence); evaluation lines hold no loss."""
    steps, total = curves.diverging(n=150, seed=38, factor=5.0)
    lines = []
    for s, v in zip(steps, total, strict=True):
        it = int(s) * 2 - 1
        rec = {"data_time": 0.0084, "eta_seconds": 9520.1, "iteration": it,
               "loss_box_reg": 0.25 * v, "loss_cls": 0.4 * v, "loss_rpn_cls": 0.2 * v,
               "loss_rpn_loc": 0.15 * v, "lr": 0.0071, "time": 0.254, "total_loss": v}  # fmt: skip
        lines.append(json.dumps(rec, sort_keys=True))
        if (it + 1) % 1000 == 0:
            lines.append(json.dumps({"bbox/AP": 38.1, "bbox/AP50": 58.6, "iteration": it}))
    write("detectron2_metrics.json", lines)


def torchtune_log() -> None:
    """torchtune ``DiskLogger`` file (``log_<unix>.txt``, trailing space kept): the loss
    plateaus high (flat from 10% of the run)."""
    _, loss = curves.flat(n=200, seed=39, level=10.8, noise=0.01)
    # a clipped gradient norm is the tensor clip_grad_norm_ returns, written as str(tensor)
    lines = [
        f"Step {i} | loss:{float(v)!r} lr:2e-05 tokens_per_second_per_gpu:57.82 "
        f"grad_norm:tensor({0.5 + i / 1000:.4f}, device='cuda:0') "
        for i, v in enumerate(loss, start=1)
    ]
    write("torchtune_log_1718000000.txt", lines)


def torchtune_jsonl() -> None:
    """torchtune ``DiskLogger(output_fmt="jsonl")`` (``log_<unix>.jsonl``): ``json.dump({"step":
    step} | payload)`` a line, tensors as numbers; loss spikes."""
    _, loss = curves.spiky(n=250, seed=43, ratio=5.0, count=4)
    lines = []
    for i, v in enumerate(loss, start=1):
        payload = {"loss": float(v), "lr": 2e-05, "tokens_per_second_per_gpu": 1843.2,
                   "grad_norm": 0.5 + i / 1000}  # fmt: skip
        lines.append(json.dumps({"step": i} | payload))
    write("torchtune_log_1718000001.jsonl", lines)


def torchtune_stdout() -> None:
    """What ``tune run`` prints (stderr and stdout captured together): the config dump, then
    the recipe's tqdm bar, one per epoch, description ``f"{epoch}|{step}|Loss: {loss}"``
    (drawn here by tqdm itself, carriage returns kept); the loss turns NaN at 80%."""
    import io
    import itertools
    from unittest import mock

    import tqdm.std as tqdm_std

    _, loss = curves.with_nan(n=120, seed=44, from_share=0.8)
    out = io.StringIO()
    out.write("INFO:torchtune.utils._logging:Running LoRAFinetuneRecipeSingleDevice with "
              "resolved config:\n\nbatch_size: 4\nepochs: 2\ngradient_accumulation_steps: 8\n"
              "optimizer:\n  _component_: torch.optim.AdamW\n  lr: 0.0003\n")  # fmt: skip
    out.write("Writing logs to /tmp/lora_finetune_output/logs/log_1718000000.txt\n")
    step = 0
    clock = itertools.count(1718000000.0, 0.125)  # tqdm's clock: a deterministic fixture
    with mock.patch.object(tqdm_std, "time", side_effect=lambda: next(clock)):
        for epoch in range(2):
            bar = tqdm_std.tqdm(total=60, file=out, mininterval=0, ncols=80, ascii=False)
            for _ in range(60):
                step += 1
                bar.update(1)
                bar.set_description(f"{epoch + 1}|{step}|Loss: {float(loss[step - 1])}")
            bar.close()
            out.write(f"INFO:torchtune.utils._logging:Model checkpoint of size 0.02 GB saved "
                      f"to /tmp/lora_finetune_output/epoch_{epoch}/adapter_model.pt\n")  # fmt: skip
    text = out.getvalue()
    (OUT / "torchtune_stdout.log").write_text(text)


def build_nanogpt_log() -> None:
    """build-nanogpt ``log/log.txt`` (train_gpt2.py: ``f"{step} val {v:.4f}"``, ``hella``
    accuracy, ``f"{step} train {v:.6f}"``): validation rises after 40% of the run."""
    steps, train, val_steps, val = curves.overfitting_pair(n=300, seed=42, rise=0.5)
    at_val = dict(zip(val_steps.tolist(), val.tolist(), strict=True))
    lines = []
    for i, (s, v) in enumerate(zip(steps, train, strict=True)):
        if float(s) in at_val:
            lines.append(f"{i} val {at_val[float(s)]:.4f}")
            lines.append(f"{i} hella {0.25 + 0.0002 * i:.4f}")
        lines.append(f"{i} train {v:.6f}")
    write("build_nanogpt_log.txt", lines)


def swift_logging() -> None:
    """ms-swift ``logging.jsonl``: step in "global_step/max_steps", strings for
    percentages and times, keys with '/' and '()'; the loss turns NaN at 80%."""
    steps, loss = curves.with_nan(n=150, seed=40, from_share=0.8)
    total = int(steps[-1])
    lines = []
    for s, v in zip(steps, loss, strict=True):
        rec = {"loss": None if np.isnan(v) else round(float(v), 5), "grad_norm": 1.2,
               "learning_rate": 1e-05, "memory(GiB)": 20.1, "train_speed(iter/s)": 0.21,
               "epoch": round(s / total, 3), "global_step/max_steps": f"{int(s)}/{total}",
               "percentage": f"{100 * s / total:.2f}%", "elapsed_time": "51s",
               "remaining_time": "3h 5m"}  # fmt: skip
        if np.isnan(v):
            rec["loss"] = float("nan")
        lines.append(json.dumps(rec))
    lines.append(json.dumps({"train_runtime": 123.4, "train_samples_per_second": 3.2,
                             "train_loss": 1.1, "epoch": 1.0,
                             "global_step/max_steps": f"{total}/{total}"}))  # fmt: skip
    write("swift_logging.jsonl", lines)


def trl_and_axolotl_stdout() -> None:
    """TRL printed dicts with quoted numbers (recent transformers), and axolotl stdout
    (log lines between the dicts, memory keys): an oscillating loss."""
    steps, loss = curves.oscillating(n=120, seed=41, swing=0.5)
    lines = []
    for s, v in zip(steps, loss, strict=True):
        lines.append(f"{{'loss': '{v:.4f}', 'grad_norm': '0.8618', 'learning_rate': '2e-05', "
                     f"'epoch': '{s / steps[-1]:.2f}'}}")  # fmt: skip
    write("trl_quoted_stdout.log", lines)
    lines = ["[2024-01-19 08:21:59,664] [INFO] [axolotl.train.train:67] [PID:6552] [RANK:0] "
             "loading model and peft_config..."]  # fmt: skip
    for i, (s, v) in enumerate(zip(steps, loss, strict=True)):
        memory = ("'memory/max_mem_active(gib)': 25.45, 'memory/max_mem_allocated(gib)': 25.45, "
                  "'memory/device_mem_reserved(gib)': 30.22")  # fmt: skip
        lines.append(f"{{'loss': {v:.4f}, 'grad_norm': 0.85, 'learning_rate': 5e-06, "
                     f"{memory}, 'epoch': {s / steps[-1]:.2f}}}")  # fmt: skip
        if i % 40 == 0:
            lines.append(f" {100 * i // 120}%|███       | {i}/120 [00:10<00:40, 2.1it/s]")
    write("axolotl_stdout.log", lines)


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for make in (bracket_log, notebook_table, llamafactory, lightning_bar, mmengine_scalars,
                 ultralytics, detectron2, torchtune_log, torchtune_jsonl, torchtune_stdout,
                 build_nanogpt_log, swift_logging,
                 trl_and_axolotl_stdout):  # fmt: skip
        make()


if __name__ == "__main__":
    main()
