"""The lab's scenarios: a cause, the configs that carry it, and the label it implies.

Labels are decided here, from the cause and the logging format, before anything is
trained: ``must`` (rules that have to fire), ``allow`` (rules that may) and
``verdicts`` (the right verdicts), as in ``../shared/bench/cases/labels.jsonl``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from formats import CADENCE, nanogpt_every
from train import Config

HEALTHY = {"must": ("smooth-decline",), "allow": ("plateau", "spikes"), "verdicts": ("healthy",)}
#: A run broken by a cause whose exact shape is not known in advance: any rule may fire,
#: the verdict must not be healthy.
BROKEN_ANY = {
    "must": (),
    "allow": (
        "oscillation",
        "divergence",
        "spikes",
        "non-finite",
        "high-flatline",
        "level-shift",
        "plateau",
        "masked-non-finite",
        "smooth-decline",
        "overfitting",
        "grad-norm-spikes",
        "non-finite-grad-norm",
    ),
    "verdicts": ("warning", "failing"),
}
EVERY_STEP = ("jsonl", "tensorboard", "nanogpt")
MANY = ("jsonl", "hf_state", "tensorboard", "lightning", "nanogpt", "hf_print")
WITH_VAL = ("jsonl", "hf_state", "tensorboard", "lightning", "nanogpt", "keras")
#: Formats that log the learning rate, a fractional epoch, and a resume as it happened.
LOGS_LR = ("jsonl", "hf_state", "tensorboard", "lightning", "hf_print")
LOGS_EPOCH = ("hf_state", "hf_print")
RESUMABLE = ("jsonl", "tensorboard", "nanogpt")
#: Which formats can show a rule that reads a column beside the loss.
NEEDS = {
    "lr-schedule": LOGS_LR,
    "non-finite-grad-norm": ("jsonl", "hf_state", "hf_print"),
    "epoch-periodic": LOGS_EPOCH,
    "resume-jump": RESUMABLE,
}


@dataclass(frozen=True)
class Scenario:
    """A cause, the runs that carry it (variants x seeds, formats in turn) and its label."""

    name: str
    cause: str
    base: Config
    label: dict[str, tuple[str, ...]]
    formats: tuple[str, ...] = MANY
    variants: tuple[dict[str, Any], ...] = ({},)
    seeds: int = 4
    #: Rules whose shape is shorter than the 10-step window of the every-N formats (a
    #: sawtooth with a period of a few steps is averaged or aliased away there).
    shorter_than_window: tuple[str, ...] = ()

    def runs(self) -> list[tuple[str, Config, str]]:
        """Return (run id, config, format) of every run of the scenario."""
        out = []
        for v, variant in enumerate(self.variants):
            for seed in range(self.seeds):
                index = v * self.seeds + seed
                config = replace(self.base, seed=seed, **variant)
                fmt = self.formats[index % len(self.formats)]
                out.append((f"{self.name}-{index:02d}-{fmt}", config, fmt))
        return out

    def labels_for(self, fmt: str, seed: int) -> dict[str, list[str]]:
        """Return the label of a run of this scenario (seed ``seed``) written in ``fmt``: what
        the cause implies, less what the format's cadence cannot show."""
        must, allow = list(self.label["must"]), list(self.label["allow"])
        cadence = CADENCE[fmt]
        hidden = set()
        if cadence in ("epoch", "smoothed"):
            hidden |= {"spikes", "oscillation"}  # averaged away
        if cadence == "every_n" or (fmt == "nanogpt" and nanogpt_every(seed) > 1):
            hidden.add("spikes")  # a one-step burst is averaged over N steps or not logged
        if cadence == "every_n":
            hidden |= set(self.shorter_than_window)
        hidden |= {rule for rule, shown_by in NEEDS.items() if fmt not in shown_by}
        if fmt.startswith("hf_") and "non-finite" in must:
            # the Trainer's logging_nan_inf_filter turns the NaN losses into 0.0
            must[must.index("non-finite")] = "masked-non-finite"
            # ... beside the NaN grad_norm it logs (where the loss itself is NaN, only the
            # non-finite rule speaks)
            must.append("non-finite-grad-norm")
            allow.append("non-finite")
        verdicts = list(self.label["verdicts"])
        if hidden & set(must) and not set(must) - hidden:
            # all the cause showed is hidden by the format: the run may look healthy
            verdicts = ["healthy", *verdicts]
            allow += HEALTHY["must"] + HEALTHY["allow"]
        for rule in hidden & set(must):
            must.remove(rule)
            allow.append(rule)
        return {"must": must, "allow": sorted(set(allow)), "verdicts": verdicts}


def _label(
    must: tuple[str, ...], allow: tuple[str, ...], verdicts: tuple[str, ...]
) -> dict[str, tuple[str, ...]]:
    """Return a label dict."""
    return {"must": must, "allow": allow, "verdicts": verdicts}


#: A late rise after a learning rate raised too high: the rise must be seen (a catapult
#: all the way back to the first loss is a reset of what was learned: loss-reset).
LATE_RISE = _label(
    ("divergence",),
    ("spikes", "oscillation", "level-shift", "plateau", "smooth-decline", "loss-reset"),
    ("warning", "failing"),
)
MLP = Config(task="mlp", steps=400, lr=1e-3)
CHAR = Config(task="char", steps=300, lr=3e-3, batch=8, width=16)
LINREG = Config(task="linreg", steps=400, lr=0.5, optimizer="gd")
WIDTHS = ({"width": 32}, {"width": 64})
CHAR_WIDTHS = ({"width": 16}, {"width": 24})

SCENARIOS = (
    # healthy
    Scenario("healthy-adam", "Adam at a sane constant rate", MLP, HEALTHY, variants=WIDTHS),
    Scenario(
        "healthy-sgdm",
        "SGD with momentum at a sane rate",
        replace(MLP, optimizer="sgdm", lr=0.03),
        HEALTHY,
        variants=WIDTHS,
    ),
    Scenario(
        "healthy-step-decay",
        "plain SGD, step decay",
        replace(MLP, optimizer="sgd", lr=0.3, schedule="step"),
        HEALTHY,
        variants=WIDTHS,
    ),
    Scenario(
        "healthy-warmup-cosine",
        "char transformer, Adam, warmup then cosine decay",
        replace(CHAR, schedule="warmup_cosine"),
        HEALTHY,
        variants=CHAR_WIDTHS,
    ),
    Scenario(
        "healthy-restarts",
        "cosine with restarts at sane, falling peaks",
        replace(MLP, lr=2e-3, schedule="restarts", restart_peaks=(1.0, 0.7, 0.5)),
        HEALTHY,
        variants=WIDTHS,
    ),
    Scenario(
        "healthy-small-batch",
        "batches of 4: noisy per-step losses",
        replace(MLP, batch=4, lr=5e-4),
        HEALTHY,
        formats=EVERY_STEP,
        variants=WIDTHS,
    ),
    Scenario(
        "healthy-large-batch",
        "batches of 512: smooth losses",
        replace(MLP, batch=512, lr=3e-3, steps=300),
        HEALTHY,
        variants=WIDTHS,
    ),
    Scenario(
        "healthy-short",
        "a short run (120 steps)",
        replace(CHAR, steps=120, lr=5e-3),
        HEALTHY,
        variants=CHAR_WIDTHS,
    ),
    Scenario(
        "healthy-long",
        "a long run (1500 steps), many epochs",
        replace(MLP, steps=1500, batch=16, lr=5e-4),
        HEALTHY,
        formats=(*MANY, "keras"),
        variants=({"width": 32},),
        seeds=7,
    ),
    Scenario(
        "healthy-finetune",
        "fine-tune from a pretrained start: fast early drop, then slow",
        replace(CHAR, faults=("pretrained",), lr=1e-3, steps=200),
        HEALTHY,
        variants=CHAR_WIDTHS,
    ),
    Scenario(
        "healthy-cnn",
        "a small CNN, Adam",
        replace(MLP, task="cnn", width=8, lr=2e-3, steps=400),
        HEALTHY,
        variants=({"width": 8}, {"width": 16}),
    ),
    Scenario(
        "healthy-val",
        "AdamW with weight decay, validated",
        replace(MLP, validate=True, weight_decay=0.05),
        HEALTHY,
        formats=WITH_VAL,
        variants=WIDTHS,
    ),
    Scenario(
        "healthy-char-val",
        "char transformer, validated",
        replace(CHAR, validate=True),
        HEALTHY,
        variants=CHAR_WIDTHS,
    ),
    Scenario(
        "healthy-nanochat",
        "a healthy run printed with nanochat's smoothed loss",
        replace(CHAR, schedule="warmup_cosine"),
        HEALTHY,
        formats=("nanochat",),
        variants=({"width": 32},),
    ),
    Scenario(
        "healthy-linreg-gd",
        "full-batch gradient descent on least squares below the stability limit",
        LINREG,
        {"must": ("smooth-decline",), "allow": ("plateau",), "verdicts": ("healthy",)},
        formats=("jsonl", "tensorboard", "nanogpt", "lightning"),
    ),
    # learning rate too high
    Scenario(
        "adam-lr-100x",
        "char transformer, Adam at 100x a sane rate: burst, then stuck",
        replace(CHAR, lr=0.3),
        _label(
            ("high-flatline",),
            ("spikes", "plateau", "oscillation", "level-shift", "divergence", "grad-norm-spikes"),
            ("warning", "failing"),
        ),
        variants=CHAR_WIDTHS,
    ),
    Scenario(
        "gd-unstable",
        "full-batch GD on the MLP far above the stability limit",
        replace(MLP, optimizer="gd", lr=8.0, steps=300),
        BROKEN_ANY,
        variants=WIDTHS,
    ),
    Scenario(
        "linreg-gd-diverge",
        "full-batch GD on least squares just above the stability limit",
        replace(LINREG, lr=1.02),
        _label(
            ("divergence",),
            ("non-finite", "spikes", "oscillation", "level-shift"),
            ("failing",),
        ),
        formats=("jsonl", "tensorboard", "nanogpt", "lightning"),
    ),
    Scenario(
        "restarts-too-high",
        "char transformer, cosine restarts, the last one to 100x the first peak",
        replace(CHAR, schedule="restarts", restart_peaks=(1.0, 1.0, 100.0)),
        LATE_RISE,
        variants=CHAR_WIDTHS,
    ),
    Scenario(
        "late-lr-ramp",
        "char transformer, the learning rate ramped 100x over the last 40% of the run",
        replace(CHAR, schedule="late_ramp"),
        LATE_RISE,
        variants=CHAR_WIDTHS,
    ),
    Scenario(
        "linreg-overflow",
        "full-batch GD on least squares at 1.5x the stability limit in float32: overflow",
        replace(LINREG, lr=1.5, faults=("float32",)),
        _label(
            ("non-finite",),
            ("divergence", "spikes", "oscillation", "level-shift", "high-flatline"),
            ("failing",),
        ),
        formats=("jsonl", "hf_state", "tensorboard", "nanogpt", "hf_print", "lightning"),
        seeds=6,
    ),
    # no learning
    Scenario(
        "lr-zero",
        "learning rate 0",
        replace(MLP, lr=0.0),
        _label(("high-flatline", "lr-schedule"), (), ("failing",)),
        variants=({}, {"task": "char", "steps": 300, "batch": 8, "width": 16}),
    ),
    Scenario(
        "lr-tiny",
        "learning rate 1e-8",
        replace(CHAR, lr=1e-8),
        _label(("high-flatline",), (), ("failing",)),
        variants=({}, {"task": "mlp", "steps": 400, "batch": 32, "width": 32}),
    ),
    Scenario(
        "lr-zero-start",
        "a schedule stuck at a learning rate of 0 for the first 30% of the run, then sane",
        replace(MLP, schedule="zero_start"),
        _label(
            ("lr-schedule",),
            ("smooth-decline", "plateau", "high-flatline", "level-shift", "spikes"),
            ("warning", "failing"),
        ),
        formats=LOGS_LR,
        variants=({}, {"task": "char", "steps": 300, "batch": 8, "width": 16, "lr": 3e-3}),
    ),
    Scenario(
        "frozen",
        "optimizer built over copies of the parameters: nothing trains",
        replace(MLP, faults=("frozen",)),
        _label(("high-flatline",), (), ("failing",)),
        variants=({}, {"task": "char", "steps": 300, "batch": 8, "width": 16}),
    ),
    Scenario(
        "shuffled-labels",
        "labels shuffled: nothing to learn",
        replace(MLP, faults=("shuffled_labels",), steps=400),
        _label(("high-flatline",), ("plateau",), ("warning", "failing")),
        variants=WIDTHS,
    ),
    # data faults
    Scenario(
        "bad-batches",
        "a few batches of garbage injected: spikes that recover",
        replace(MLP, faults=("bad_batches",)),
        _label(("spikes",), ("smooth-decline", "plateau"), ("warning",)),
        formats=("jsonl", "tensorboard", "nanogpt", "hf_state", "lightning", "hf_print"),
        variants=({"width": 32}, {"task": "char", "width": 16, "batch": 8, "steps": 300}),
    ),
    Scenario(
        "corrupt-mid",
        "60% of the training targets corrupted half-way: the level shifts up and stays",
        replace(MLP, faults=("corrupt_mid",)),
        _label(
            ("level-shift",),
            ("spikes", "plateau", "smooth-decline", "divergence"),
            ("warning", "failing"),
        ),
        variants=WIDTHS,
    ),
    Scenario(
        "ordered-data",
        "data sorted by class and never shuffled: oscillation with the epoch's period",
        replace(MLP, optimizer="sgd", lr=0.1, faults=("ordered",)),
        _label(("oscillation",), ("spikes", "plateau"), ("warning", "failing")),
        formats=("jsonl", "tensorboard", "nanogpt", "hf_state", "lightning", "hf_print"),
        variants=WIDTHS,
        # one class lasts about 6 steps (180 samples, batches of 32)
        shorter_than_window=("oscillation",),
    ),
    Scenario(
        "nan-recovers",
        "two samples with a NaN pixel; the non-finite steps are skipped (a loss scaler)",
        replace(MLP, faults=("nan_inputs",)),
        _label(("non-finite",), ("smooth-decline", "plateau", "spikes"), ("failing",)),
        formats=("jsonl", "tensorboard", "keras"),
        variants=WIDTHS,
    ),
    Scenario(
        "labels-masked",
        "every label masked (-100): loss 0.0 and gradients 0.0, from the start or half-way",
        replace(CHAR, faults=("masked",)),
        # without a gradient norm, a loss of 0.0 cannot be told from NaNs a trainer hides
        _label(
            ("zero-loss",),
            ("smooth-decline", "plateau", "level-shift", "masked-non-finite"),
            ("failing",),
        ),
        variants=({}, {"faults": ("masked_mid",)}, {"task": "mlp", "steps": 400, "batch": 32}),
        seeds=3,
    ),
    Scenario(
        "unshuffled-sorted",
        "data sorted by class, never shuffled, small batches: the loss repeats every epoch",
        # 100 steps an epoch: one class every 10 steps, one logged point each in the Trainer's
        replace(MLP, optimizer="sgd", lr=0.1, batch=14, steps=1000, faults=("ordered",)),
        _label(
            ("epoch-periodic",),
            ("oscillation", "spikes", "plateau", "smooth-decline", "level-shift"),
            ("warning", "failing"),
        ),
        formats=LOGS_EPOCH,
        variants=({"width": 32}, {"width": 64, "lr": 0.05}),
    ),
    Scenario(
        "resume-no-weights",
        "resumed from the checkpoint at 50% after dying at 65%, but with a fresh model",
        replace(MLP, faults=("resume_no_weights",)),
        _label(
            ("resume-jump",),
            ("loss-reset", "smooth-decline", "plateau", "spikes", "level-shift", "divergence"),
            ("warning", "failing"),
        ),
        formats=RESUMABLE,
        variants=({}, {"task": "char", "steps": 300, "batch": 8, "width": 16, "lr": 3e-3}),
    ),
    Scenario(
        "fp16-weights",
        "weights and AdamW state in float16 with a loss scaler: the first update is NaN",
        replace(MLP, faults=("fp16_weights",)),
        _label(
            ("non-finite",),
            ("high-flatline", "zero-loss", "spikes", "divergence", "level-shift"),
            ("failing",),
        ),
        formats=("jsonl", "hf_state", "hf_print", "tensorboard", "nanogpt", "lightning"),
        variants=({}, {"task": "char", "steps": 300, "batch": 8, "width": 16, "lr": 3e-3}),
    ),
    # overfitting
    Scenario(
        "overfitting",
        "a tiny training set, a wide model, no regularisation",
        replace(MLP, width=256, lr=3e-3, validate=True),
        _label(("overfitting",), ("smooth-decline", "plateau", "spikes"), ("warning", "failing")),
        formats=WITH_VAL,
        # 300 samples need more passes before the validation loss turns (at 400 steps it had
        # not yet: the cause had not taken effect)
        variants=({"train_size": 30}, {"train_size": 100}, {"train_size": 300, "steps": 1200}),
        seeds=3,
    ),
)
