#!/usr/bin/env python3
"""A tiny real training run for CI smoke tests: softmax regression trained with SGD
on a synthetic 10-class problem, on the CPU, with numpy only.  Logs one JSON line
per step (step, loss, lr) and a validation loss every 25 steps.

    python examples/ci/train_tiny.py --steps 300 > run.jsonl
    lossdoctor check --vocab-size 10 run.jsonl

``--lr 50`` makes it oscillate (a warning); ``--lr 0`` makes it flatline (an error):
try them to see the gate fail.  ``--nan-at STEP`` makes the loss NaN from that step on
(as an fp16 overflow does), each later step then taking 10 s: see ``lossdoctor run
--stop-on error`` stop it at the first NaN.  Stopped by SIGINT (Ctrl-C, ``lossdoctor
run``) or by its reader going away (``| lossdoctor watch --stop-on error -``), it
ends quietly.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--lr", type=float, default=0.2)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--nan-at", type=int, default=None, help="the loss is NaN from this step")
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    classes, dims = 10, 20
    centers = rng.normal(0, 1.0, (classes, dims))
    x_val = np.repeat(centers, 50, axis=0) + rng.normal(0, 1.5, (classes * 50, dims))
    y_val = np.repeat(np.arange(classes), 50)
    weights = np.zeros((dims, classes))

    def loss_and_grad(x, y):
        logits = x @ weights
        logits -= logits.max(axis=1, keepdims=True)
        probs = np.exp(logits)
        probs /= probs.sum(axis=1, keepdims=True)
        loss = -np.log(probs[np.arange(len(y)), y] + 1e-300).mean()
        probs[np.arange(len(y)), y] -= 1
        return loss, x.T @ probs / len(y)

    with np.errstate(all="ignore"):
        for step in range(1, args.steps + 1):
            y = rng.integers(0, classes, args.batch)
            x = centers[y] + rng.normal(0, 1.5, (args.batch, dims))
            lr = args.lr * min(1.0, step / 20)  # warmup
            loss, grad = loss_and_grad(x, y)
            weights -= lr * grad
            broken = args.nan_at is not None and step >= args.nan_at
            record = {"step": step, "loss": float("nan") if broken else float(loss), "lr": lr}
            if step % 25 == 0:
                record["val_loss"] = float(loss_and_grad(x_val, y_val)[0])
            print(json.dumps(record), flush=True)
            if broken and step < args.steps:
                # 10 s a step, slept in short naps: a SIGINT the kernel hands to one of
                # numpy's BLAS threads does not wake a long sleep in the main thread, so
                # the KeyboardInterrupt would wait for the whole 10 s to end
                for _ in range(100):
                    time.sleep(0.1)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:  # stopped (lossdoctor run sends SIGINT first): end quietly
        sys.exit(130)
    except BrokenPipeError:  # the reader went away (watch --stop-on): end quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(1)
