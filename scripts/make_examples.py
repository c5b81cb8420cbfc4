#!/usr/bin/env python3
"""Write the example logs in ``examples/`` from seeded synthetic curves.

    python scripts/make_examples.py

Deterministic: running it again rewrites the same bytes.  ``examples/README.md``
states the verdict each file must get; ``tests/test_examples.py`` checks it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from lossdoctor import synth as curves  # noqa: E402

OUT = ROOT / "examples"


def fmt(value: float) -> str:
    """Return a value as a log writer would print it."""
    return "nan" if np.isnan(value) else f"{value:.5g}"


def healthy_csv() -> None:
    steps, train, val_steps, val = curves.tracking_pair(n=800, seed=11)
    lr = np.minimum(1.0, steps / steps[40]) * 3e-4
    val_at = dict(zip(val_steps.tolist(), val.tolist(), strict=True))
    rows = ["step,loss,lr,val_loss"]
    for s, t, r in zip(steps, train, lr, strict=True):
        v = val_at.get(float(s))
        rows.append(f"{int(s)},{fmt(t)},{r:.3e},{fmt(v) if v is not None else ''}")
    (OUT / "healthy.csv").write_text("\n".join(rows) + "\n")


def spikes_jsonl() -> None:
    steps, values = curves.spiky(n=1000, seed=12, ratio=4.5, count=5)
    lines = [
        json.dumps({"step": int(s), "loss": round(float(v), 5)})
        for s, v in zip(steps, values, strict=True)
    ]
    (OUT / "spikes.jsonl").write_text("\n".join(lines) + "\n")


def overfitting_trainer_state() -> None:
    steps, train, val_steps, val = curves.overfitting_pair(n=600, seed=13, rise=0.35)
    history = []
    val_at = dict(zip(val_steps.tolist(), val.tolist(), strict=True))
    for s, t in zip(steps, train, strict=True):
        epoch = round(float(s) / steps[-1] * 5, 4)
        history.append(
            {
                "epoch": epoch,
                "grad_norm": 1.1,
                "learning_rate": 5e-05,
                "loss": round(float(t), 4),
                "step": int(s),
            }
        )
        if float(s) in val_at:
            history.append(
                {
                    "epoch": epoch,
                    "eval_loss": round(val_at[float(s)], 4),
                    "eval_runtime": 3.2,
                    "step": int(s),
                }
            )
    history.append(
        {
            "epoch": 5.0,
            "step": int(steps[-1]),
            "total_flos": 1.2e14,
            "train_loss": 1.9,
            "train_runtime": 800.0,
        }
    )
    state = {
        "epoch": 5.0,
        "global_step": int(steps[-1]),
        "log_history": history,
        "logging_steps": 10,
    }
    (OUT / "overfitting_trainer_state.json").write_text(
        json.dumps(state, indent=2, sort_keys=True) + "\n"
    )


def divergence_nan_csv() -> None:
    steps, values = curves.diverging(n=500, seed=14, factor=12.0)
    values = values.copy()
    values[460:] = np.nan
    rows = ["iter,train_loss"] + [f"{int(s)},{fmt(v)}" for s, v in zip(steps, values, strict=True)]
    (OUT / "divergence_nan.csv").write_text("\n".join(rows) + "\n")


def flatline_tsv() -> None:
    steps, values = curves.flat(n=400, seed=15, level=10.82)
    rows = ["step\tloss"] + [f"{int(s)}\t{fmt(v)}" for s, v in zip(steps, values, strict=True)]
    (OUT / "flatline.tsv").write_text("\n".join(rows) + "\n")


def plateau_lightning() -> None:
    steps, values = curves.plateau(n=600, seed=16)
    rows = ["epoch,step,train_loss,val_loss"]
    for i, (s, v) in enumerate(zip(steps, values, strict=True)):
        epoch = i // 100
        rows.append(f"{epoch},{int(s) * 10},{fmt(v)},")
        if (i + 1) % 100 == 0:
            rows.append(f"{epoch},{int(s) * 10},,{fmt(v * 1.05)}")
    (OUT / "plateau_metrics.csv").write_text("\n".join(rows) + "\n")


def oscillation_tb_csv() -> None:
    steps, values = curves.oscillating(n=600, seed=17, swing=0.45)
    rows = ["Wall time,Step,Value"]
    for s, v in zip(steps, values, strict=True):
        rows.append(f"{1700000000 + float(s) * 1.5:.3f},{int(s) * 20},{v:.6g}")
    (OUT / "run-oscillation-tag-loss.csv").write_text("\n".join(rows) + "\n")


def sweep_trials_csv() -> None:
    """A learning-rate sweep's table: three trials appended in one CSV, named in a
    ``trial_id`` column (one report per trial)."""
    trials = [
        ("lr_1e-4", curves.plateau(n=300, seed=21)),
        ("lr_1e-3", curves.healthy(n=300, seed=22)),
        ("lr_1e-2", curves.diverging(n=300, seed=23, factor=8.0)),
    ]
    rows = ["trial_id,step,loss"]
    for name, (_, values) in trials:
        rows += [f"{name},{(i + 1) * 10},{fmt(v)}" for i, v in enumerate(values)]
    (OUT / "sweep_trials.csv").write_text("\n".join(rows) + "\n")


def charts() -> None:
    """Draw the annotated chart of every example into ``examples/charts/``."""
    from lossdoctor.api import diagnose_many
    from lossdoctor.reporters import chart

    folder = OUT / "charts"
    folder.mkdir(exist_ok=True)
    for path in sorted(p for p in OUT.iterdir() if p.is_file() and p.name != "README.md"):
        doc = diagnose_many([f"examples/{path.name}"]).to_dict(curves=True)
        chart.render(doc, str(folder / f"{path.stem}.png"))
    several = ["healthy.csv", "run-oscillation-tag-loss.csv", "overfitting_trainer_state.json"]
    doc = diagnose_many([f"examples/{name}" for name in several]).to_dict(curves=True)
    chart.render(doc, str(folder / "several_runs.png"))
    chart.render(doc, str(folder / "several_runs_log_y.png"), axes=chart.Axes(y_scale="log"))
    overlap_chart(folder)


def overlap_chart(folder: Path) -> None:
    """Draw a run whose findings overlap (oscillation over a divergence)."""
    import tempfile

    from lossdoctor.api import diagnose_many
    from lossdoctor.reporters import chart

    steps, values = curves.diverging(n=800, factor=3.0)
    values = values * np.exp(np.random.default_rng(3).normal(0, 0.35, 800))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "oscillating_divergence.csv"
        rows = "".join(f"{int(s)},{v:.5f}\n" for s, v in zip(steps, values, strict=True))
        path.write_text("step,loss\n" + rows)
        doc = diagnose_many([str(path)]).to_dict(curves=True)
    doc["runs"][0]["source"] = "oscillating_divergence.csv"
    chart.render(doc, str(folder / "overlapping_findings.png"))


def main() -> int:
    """Write every example file, then its chart."""
    OUT.mkdir(exist_ok=True)
    for make in (
        healthy_csv,
        spikes_jsonl,
        overfitting_trainer_state,
        divergence_nan_csv,
        flatline_tsv,
        plateau_lightning,
        oscillation_tb_csv,
        sweep_trials_csv,
    ):
        make()
    charts()
    return 0


if __name__ == "__main__":
    sys.exit(main())
