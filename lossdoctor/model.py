"""The canonical run every reader produces: named series of (step, value) points.

This module imports nothing from the rest of the package.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any, Literal, overload

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

XKind = Literal["step", "epoch", "index"]


@dataclass(frozen=True, slots=True)
class ConsecutiveLines:
    """The source lines of rows that follow one another a line each: row ``i`` is on line
    ``first + i``.  Indexed as the array of those lines would be (a position gives its
    line, a mask or positions an array of lines), without making that array: 80 MB for
    a 10,000,000-row table, of which a report prints a few."""

    first: int
    count: int

    @property
    def shape(self) -> tuple[int]:
        """Return the array's shape: (rows,)."""
        return (self.count,)

    def __len__(self) -> int:
        return self.count

    @overload
    def __getitem__(self, index: int | np.integer[Any]) -> int: ...
    @overload
    def __getitem__(self, index: BoolArray | IntArray | slice) -> IntArray: ...
    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, int | np.integer):
            position = int(index) + (self.count if index < 0 else 0)
            if not 0 <= position < self.count:
                raise IndexError(f"row {int(index)} out of {self.count}")
            return self.first + position
        if isinstance(index, slice):
            return np.arange(*index.indices(self.count), dtype=np.int64) + self.first
        picked = np.asarray(index)
        if picked.dtype == np.bool_:
            if picked.shape != self.shape:
                raise IndexError(f"a mask of {picked.shape[0]} rows for {self.count}")
            return np.flatnonzero(picked).astype(np.int64) + self.first
        if picked.dtype.kind == "i":  # positions: their lines, without the array of all
            positions = picked.astype(np.int64)
            if positions.size and (positions.min() < -self.count or positions.max() >= self.count):
                raise IndexError(f"a position out of {self.count} rows")
            return np.where(positions < 0, positions + self.count, positions) + self.first
        return np.arange(self.first, self.first + self.count, dtype=np.int64)[picked]

    def __add__(self, offset: int) -> ConsecutiveLines:
        return ConsecutiveLines(self.first + offset, self.count)

    def __iter__(self) -> Iterator[int]:
        return iter(range(self.first, self.first + self.count))

    def __contains__(self, line: object) -> bool:
        if not isinstance(line, int | np.integer):
            return False
        return bool(self.first <= line < self.first + self.count)

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> IntArray:
        lines = np.arange(self.first, self.first + self.count, dtype=np.int64)
        return lines if dtype is None else lines.astype(dtype)

    def tolist(self) -> list[int]:
        """Return the lines as a list."""
        return list(self)


#: The source line of each row or point: an array, or consecutive lines.
Lines = IntArray | ConsecutiveLines

#: Roles a series can play in a run.  Other metrics keep their own name as role.
TRAIN = "train"
VAL = "val"
LR = "lr"
GRAD_NORM = "grad_norm"
#: Reinforcement learning: the mean reward, and the share of prompt groups whose rewards tie.
REWARD = "reward"
REWARD_ZERO_STD = "reward_zero_std"
#: Pairwise preference training (DPO, reward models): the chosen-minus-rejected margin.
PREFERENCE = "preference"
LOSS_ROLES = (TRAIN, VAL)
#: Roles whose higher values are the better ones.
HIGHER_IS_BETTER_ROLES = (REWARD, PREFERENCE)
#: Roles with no better direction (a learning rate, a gradient norm, a share of ties): their
#: summary names the peak, not a "best" value.
NO_BEST_ROLES = (LR, GRAD_NORM, REWARD_ZERO_STD)

#: Series meta keys for facts a log or its configuration states beside the numbers (text):
#: the training precision (``fp16``, ``bf16``) and the number of steps the loss scaler
#: skipped on overflow (loss series); the configured peak learning rate, scheduler name
#: and warmup (steps or share of the run; learning-rate series).
PRECISION = "precision"
#: Series meta key of a loss that is the total of logged parts (Ultralytics box + cls +
#: dfl, detectron2's total_loss): the part columns, joined by " + ".
LOSS_PARTS = "loss_parts"
OVERFLOW_SKIPS = "overflow_skips"
CONFIGURED_LR = "configured_lr"
LR_SCHEDULER = "lr_scheduler"
WARMUP_STEPS = "warmup_steps"
WARMUP_RATIO = "warmup_ratio"


@dataclass(frozen=True)
class Series:
    """One logged metric: parallel arrays of steps and values.

    ``values`` keeps NaN and +-Inf exactly as logged; readers never drop them.
    ``lines`` holds the 1-based line in the source file of each point, or is
    ``None`` when the format has no lines.
    """

    role: str
    column: str
    steps: FloatArray
    values: FloatArray
    x_kind: XKind = "step"
    lines: Lines | None = None
    #: What the reader knows about how the values were produced, e.g.
    #: ``{"export": "tensorboard"}`` or ``{"smoothed": "median of 20 iterations"}``.
    meta: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.steps.shape != self.values.shape:
            raise ValueError("steps and values must have the same length")
        if self.lines is not None and self.lines.shape != self.values.shape:
            raise ValueError("lines and values must have the same length")

    def __len__(self) -> int:
        return int(self.values.shape[0])

    @property
    def n_nonfinite(self) -> int:
        """Return the number of NaN or infinite values."""
        return int((~np.isfinite(self.values)).sum())

    def line_of(self, index: int) -> int | None:
        """Return the source line of point ``index`` (1-based), or None when unknown."""
        if self.lines is None or not 0 <= index < len(self):
            return None
        return int(self.lines[index])


@dataclass(frozen=True)
class FileNote:
    """One file met while reading a folder or several paths: ``status`` is ``read``
    (``detail``: the run it went into) or ``skipped`` (``detail``: why)."""

    path: str
    status: Literal["read", "skipped"]
    detail: str


@dataclass(frozen=True)
class Run:
    """A training run as read from one source.

    ``series`` maps a role (``train``, ``val``, ``lr``, ``grad_norm``) to its series.
    ``reader`` names the reader that produced it; ``notes`` say what the reader
    decided (columns it used, restarts it found, rows it skipped).
    """

    source: str
    reader: str
    series: dict[str, Series]
    notes: tuple[str, ...] = field(default=())
    #: Which run of a log holding several this is (``trial_id=3``, ``session 2 of 3``);
    #: empty for a log of one run.
    group: str = ""
    #: Every run of a log holding several (one per value of its group column, one per
    #: session started from scratch), in the log's order; empty for a log of one run.
    #: Such a run is the last of them, its ``groups`` naming them all.
    groups: tuple[Run, ...] = field(default=())
    #: The run's own name where its tracker records one (a W&B run's display name or id,
    #: an MLflow or trackio run name); a run among several in a store is labelled
    #: ``store#name`` (its ``source``).  Empty when the log names no run.
    name: str = ""

    def runs(self) -> list[Run]:
        """Return the runs this log holds: its ``groups``, or itself alone."""
        return list(self.groups) or [self]

    def get(self, role: str) -> Series | None:
        """Return the series playing ``role``, or None."""
        return self.series.get(role)

    def with_meta(self, role: str, **meta: str) -> Run:
        """Return a copy whose ``role`` series carries ``meta`` (no-op without that series)."""
        if role not in self.series:
            return self
        old = self.series[role]
        new = replace(old, meta={**old.meta, **meta})
        return replace(self, series={**self.series, role: new})

    @property
    def columns(self) -> dict[str, str]:
        """Return role -> source column (or key) for every series."""
        return {role: s.column for role, s in self.series.items()}
