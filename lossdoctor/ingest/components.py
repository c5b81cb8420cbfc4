"""Loss components: detectors, segmenters and multi-task trainers log a loss in parts
(Ultralytics ``train/box_loss``, ``train/cls_loss``, ``train/dfl_loss``; detectron2
``loss_cls``, ``loss_box_reg``, ... next to ``total_loss``).  The total is judged as the
loss (the logged one, or the sum of the parts when none is logged); each part is kept
as a series of its own, named after its column."""

from __future__ import annotations

import functools
import re
from typing import TYPE_CHECKING

import numpy as np

from lossdoctor.ingest.columns import TRAIN_NAMES, VAL_NAMES, normalise
from lossdoctor.model import TRAIN, VAL

if TYPE_CHECKING:
    from lossdoctor.ingest.table import Column

#: ``<prefix>/<part>_loss`` or ``<prefix>loss_<part>`` (prefix ``train/``, ``val/`` or none).
_PART = re.compile(r"^(?P<prefix>(?:[a-z]+/)?)(?:(?P<a>[a-z0-9]\w*)_loss|loss_(?P<b>[a-z0-9]\w*))$")
#: Suffixes and prefixes that make a loss-named column a statistic, not a part.
NOT_PARTS = frozenset(
    {"scale", "mean", "std", "min", "max", "avg", "ema", "smooth", "smoothed", "step", "epoch",
     "total", "train", "val", "valid", "eval", "test", "running", "raw", "weight"}
)  # fmt: skip
#: Names that are totals, never parts.
_TOTALS = frozenset({*TRAIN_NAMES, *VAL_NAMES})
#: Fewer parts than this are not a decomposition.
MIN_PARTS = 2


def _parts(names: list[str], prefix: str) -> list[str]:
    out = []
    for name in names:
        norm = normalise(name)
        match = _PART.match(norm)
        if (
            match is None
            or match.group("prefix") != prefix
            or norm in _TOTALS
            or (match.group("a") or match.group("b")) in NOT_PARTS
            or "__" in norm
        ):
            continue
        out.append(name)
    return out


def summed_totals(names: list[str]) -> dict[str, list[str]]:
    """Return ``{"train/loss": parts, "val/loss": parts}`` for the prefixes whose loss is
    logged only in parts (two or more ``<prefix>/<part>_loss`` columns and no total),
    worked out once per distinct list of names (the lists are the caller's own)."""
    return {total: list(parts) for total, parts in _kept_totals(tuple(names)).items()}


@functools.lru_cache(maxsize=256)
def _kept_totals(header: tuple[str, ...]) -> dict[str, tuple[str, ...]]:
    """Return :func:`summed_totals`' answer for ``header`` (kept: never change it)."""
    names = list(header)
    lowered = {normalise(n) for n in names}
    totals: dict[str, tuple[str, ...]] = {}
    for prefix in ("train/", "val/"):
        parts = _parts(names, prefix)
        total = f"{prefix}loss"
        if (
            len(parts) >= MIN_PARTS
            and total not in lowered
            and f"{prefix}total_loss" not in lowered
        ):
            totals[total] = tuple(parts)
    return totals


def add_sums(columns: dict[str, Column], totals: dict[str, list[str]]) -> None:
    """Add each total of ``totals`` to ``columns``: the sum of its parts, present where
    every part has a value."""
    from lossdoctor.ingest.table import Column

    for total, parts in totals.items():
        values = np.sum([columns[p].values for p in parts], axis=0)
        present = np.logical_and.reduce([columns[p].present for p in parts])
        columns[total] = Column(values=np.asarray(values, dtype=np.float64), present=present)


def add_record_sums(record: dict[str, float], totals: dict[str, list[str]]) -> None:
    """Add each total of ``totals`` to one ``record`` (``watch``'s row), as
    :func:`add_sums` adds them to columns: the sum of its parts when every part is there."""
    for total, parts in totals.items():
        if all(p in record for p in parts):
            record[total] = sum(record[p] for p in parts)


def with_parts(
    names: list[str], roles: dict[str, str], summed: set[str]
) -> tuple[dict[str, str], list[str], set[str]]:
    """Return ``roles`` with the parts of the chosen totals added as series named after
    their columns (``names``: the numeric columns), the notes that say so, and the parts."""
    parts = parts_of(names, roles)
    # in the log's column order (a set's order changes with each process's hash seed)
    ordered = list(dict.fromkeys(p for ps in parts.values() for p in ps))
    return {**roles, **{p: p for p in ordered}}, describe(roles, parts, summed), set(ordered)


def parts_of(names: list[str], roles: dict[str, str]) -> dict[str, list[str]]:
    """Return total column -> its part columns, for the chosen train and validation totals."""
    out: dict[str, list[str]] = {}
    taken = set(roles.values())
    for role in (TRAIN, VAL):
        total = roles.get(role)
        if total is None:
            continue
        norm = normalise(total)
        prefix = norm[: norm.index("/") + 1] if "/" in norm else ""
        if norm not in (f"{prefix}loss", f"{prefix}total_loss"):
            continue
        parts = [p for p in _parts(names, prefix) if p not in taken]
        if len(parts) >= MIN_PARTS:
            out[total] = parts
    return out


def describe(roles: dict[str, str], parts: dict[str, list[str]], summed: set[str]) -> list[str]:
    """Return the notes that say which total is judged and which parts are kept."""
    notes = []
    for role in (TRAIN, VAL):
        total = roles.get(role)
        if total not in parts:
            continue
        if total in summed:
            listed = " + ".join(parts[total])
            notes.append(f"{role} = {total}: the sum of {listed} (the log has no total)")
        else:
            notes.append(f"{role} = {total}, the logged total of {', '.join(parts[total])}")
    count = sum(len(v) for v in parts.values())
    if count:
        notes.append(f"each of the {count} loss parts is kept as a series named after its column")
    return notes
