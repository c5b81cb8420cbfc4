"""Role inference: which column of a table is the training loss, the validation loss, ...

Names are matched after normalisation (lower case, surrounding spaces removed,
a W&B export's ``"<run> - "`` prefix dropped).  Exact names are tried in order of
preference, then a loose match on the word ``loss``.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from lossdoctor.model import (
    GRAD_NORM,
    LR,
    PREFERENCE,
    REWARD,
    REWARD_ZERO_STD,
    TRAIN,
    VAL,
    XKind,
)

STEP_NAMES = (
    "step",
    "global_step",
    "current_steps",
    "trainer/global_step",
    "train/global_step",
    "iter",
    "iteration",
    "iterations",
    "_step",
    "steps",
    "num_steps",
    "num_updates",
)
EPOCH_NAMES = ("epoch", "epochs")
TRAIN_NAMES = (
    "loss",
    "train_loss",
    "training_loss",
    "train/loss",
    "train_loss_step",
    "train/loss_step",
    "trl",
    "total_loss",
    "lm_loss",
    "lm loss",
    "train/total_loss",
    "train_loss_epoch",
    "train/loss_epoch",
    "loss_step",
    "loss_epoch",
    "train",
    "value",
    "train loss",
    "epoch_loss",
    "train/epoch_loss",
    "training/epoch_loss",
    "loss/train",
)
VAL_NAMES = (
    "val_loss",
    "eval_loss",
    "valid_loss",
    "validation_loss",
    "val/loss",
    "eval/loss",
    "valid/loss",
    "validation/loss",
    "val_loss_epoch",
    "val_loss_step",
    "tel",
    "val",
    "val loss",
    "valid loss",
    "validation loss",
    "eval loss",
    "validation/epoch_loss",
    "val/epoch_loss",
    "loss/val",
    "loss/validation",
)
LR_NAMES = (
    "lr",
    "learning_rate",
    "train/learning_rate",
    "train/lr",
    "learning-rate",
    "lr_0",
    "learning rate",
)
GRAD_NORM_NAMES = (
    "grad_norm",
    "train/grad_norm",
    "gradient_norm",
    "grad-norm",
    "grad norm",
    "gnorm",
    "norm",
)

#: Columns that name the run of each row in a log of several runs (a sweep's table, runs
#: appended to one file): one report per value.
GROUP_NAMES = (
    "trial_id",
    "trial",
    "trial_name",
    "run_id",
    "run",
    "run_name",
    "version",
    "experiment_id",
    "sweep_run",
)

REWARD_NAMES = (
    "reward",
    "train/reward",
    "rewards/mean",
    "objective/rlhf_reward",
    "env/reward_mean",
    "ppo/mean_scores",
    "objective/scores",
)
REWARD_ZERO_STD_NAMES = ("frac_reward_zero_std", "train/frac_reward_zero_std")
PREFERENCE_NAMES = (
    "rewards/margins",
    "train/rewards/margins",
    "rewards/chosen",
    "train/rewards/chosen",
    "logps/chosen",
    "train/logps/chosen",
)

_VAL_WORD = re.compile(r"(^|[^a-z])(val|valid|validation|eval|evaluation|test|dev)([^a-z]|$)")


def normalise(name: str) -> str:
    """Return ``name`` lower-cased, stripped, without a W&B ``"<run> - "`` prefix."""
    text = name.strip()
    if " - " in text:
        text = text.rsplit(" - ", 1)[1]
    return text.strip().lower()


def looks_like_validation(name: str) -> bool:
    """Return True when a metric name says it is measured on held-out data."""
    return bool(_VAL_WORD.search(normalise(name)))


@dataclass(frozen=True)
class ColumnHints:
    """Column names the user forced with ``--train-col``, ``--val-col``, ``--step-col``,
    and ``--group-by`` (the column naming the run of each row; ``none``: no grouping)."""

    train: str | None = None
    val: str | None = None
    step: str | None = None
    group: str | None = None

    @property
    def roles(self) -> bool:
        """Return True when a series' column (train, val or step) was named."""
        return bool(self.train or self.val or self.step)


@dataclass(frozen=True)
class ColumnChoice:
    """The columns chosen for each role, and the kind of x axis."""

    roles: dict[str, str]
    step: str | None
    x_kind: XKind


def _find(names: Mapping[str, str], wanted: Iterable[str]) -> str | None:
    for candidate in wanted:
        if candidate in names:
            return names[candidate]
    return None


def resolve_hint(hint: str, columns: list[str], what: str) -> str:
    """Return the column ``hint`` names (exactly, or after normalising); raise ``KeyError``
    with a readable message (and a close match) when there is none."""
    if hint in columns:
        return hint
    by_norm = {normalise(c): c for c in columns}
    if normalise(hint) in by_norm:
        return by_norm[normalise(hint)]
    from difflib import get_close_matches

    close = get_close_matches(hint, columns, n=1)
    suggestion = f"; did you mean '{close[0]}'?" if close else ""
    listed = ", ".join(columns[:20])
    raise KeyError(f"{what} '{hint}' is not a column (columns: {listed}){suggestion}")


def step_column(columns: Iterable[str]) -> str | None:
    """Return the column that counts steps among ``columns`` (a step name first, else an
    epoch name), or None: the x axis ``check`` takes, and ``watch`` for each record."""
    names: dict[str, str] = {}
    for column in columns:
        names.setdefault(normalise(column), column)
    return _find(names, STEP_NAMES) or _find(names, EPOCH_NAMES)


@functools.lru_cache(maxsize=4096)
def is_step_name(name: str) -> bool:
    """Return True when ``name`` names a step or epoch counter (an x axis, not a series)."""
    norm = normalise(name)
    return norm in STEP_NAMES or norm in EPOCH_NAMES


@functools.lru_cache(maxsize=4096)
def is_epoch_name(name: str) -> bool:
    """Return True when ``name`` names an epoch counter."""
    return normalise(name) in EPOCH_NAMES


def step_kind(step: str | None) -> XKind:
    """Return what the x column ``step`` counts: epochs, steps, or rows when None."""
    if step is None:
        return "index"
    return "epoch" if normalise(step) in EPOCH_NAMES else "step"


#: Distinct column lists (with their hints) whose choice a process keeps: the runs of a
#: fleet logged by one script share a header, so the choice is worked out once for them.
CHOICES_KEPT = 256


def choose_columns(columns: list[str], hints: ColumnHints | None = None) -> ColumnChoice:
    """Return the role -> column mapping for a table with these column names (worked out
    once per distinct list of names and hints, then kept; each call gets a ``roles`` dict
    of its own).

    Raises ``KeyError`` with a readable message when a hinted column does not exist.
    """
    kept = _kept_choice(tuple(columns), hints or ColumnHints())
    return ColumnChoice(roles=dict(kept.roles), step=kept.step, x_kind=kept.x_kind)


@functools.lru_cache(maxsize=CHOICES_KEPT)
def _kept_choice(header: tuple[str, ...], hints: ColumnHints) -> ColumnChoice:
    """Return :func:`choose_columns`' answer for ``header`` (kept: never change its roles)."""
    columns = list(header)
    usable = [c for c in columns if not normalise(c).endswith(("__min", "__max"))]
    names: dict[str, str] = {}
    for column in usable:
        names.setdefault(normalise(column), column)

    step = resolve_hint(hints.step, columns, "--step-col") if hints.step else None
    if step is None:
        step = step_column(usable)
    x_kind = step_kind(step)

    roles: dict[str, str] = {}
    taken = {step} if step else set()
    train = resolve_hint(hints.train, columns, "--train-col") if hints.train else None
    val = resolve_hint(hints.val, columns, "--val-col") if hints.val else None
    if val is None:
        val = _find(names, VAL_NAMES)
    if val is None:
        val = next((c for c in usable if "loss" in normalise(c) and looks_like_validation(c)), None)
    if train is None:
        train = _find({k: v for k, v in names.items() if v != val}, TRAIN_NAMES)
    if train is None:
        train = next(
            (
                c
                for c in usable
                if "loss" in normalise(c)
                and not looks_like_validation(c)
                and c not in taken
                and c != val
            ),
            None,
        )
    if train is not None:
        roles[TRAIN] = train
    if val is not None and val != train:
        roles[VAL] = val
    lr = _find(names, LR_NAMES) or next(
        (c for c in usable if normalise(c).startswith("lr-") or normalise(c).endswith("/lr")), None
    )
    if lr is not None:
        roles[LR] = lr
    grad = _find(names, GRAD_NORM_NAMES)
    if grad is not None:
        roles[GRAD_NORM] = grad
    for role, wanted in (
        (REWARD, REWARD_NAMES),
        (REWARD_ZERO_STD, REWARD_ZERO_STD_NAMES),
        (PREFERENCE, PREFERENCE_NAMES),
    ):
        found = _find(names, wanted)
        if found is not None and found not in roles.values():
            roles[role] = found
    return ColumnChoice(roles=roles, step=step, x_kind=x_kind)
