"""Record shapes of framework JSON Lines logs that need more than a table read:

* mmengine ``vis_data/scalars.json``: training lines carry ``iter`` and ``step`` (the
  iteration); validation lines carry only ``step``, which is the epoch in epoch-based
  runs.  Validation values go to ``val/<key>`` at the last training step of their epoch.
* ms-swift ``logging.jsonl``: the step is in ``"global_step/max_steps": "601/2161"``;
  percentages and times are strings.
* The Hugging Face end-of-training summary (``train_runtime``, ...) is not a curve point.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lossdoctor.ingest.columns import looks_like_validation
from lossdoctor.ingest.jsonlike import HF_SUMMARY_KEYS

#: ms-swift's step key: ``"601/2161"``.
SWIFT_STEP_KEY = "global_step/max_steps"
#: mmengine validation keys that are timings, not metrics.
MMENGINE_TIMING = frozenset({"time", "data_time", "step"})

Record = Mapping[str, Any]


def reshape_records(
    records: list[Record], lines: list[int]
) -> tuple[list[Record], list[int], list[str]]:
    """Return the records (and their lines) as table rows, with notes saying what changed."""
    notes: list[str] = []
    keep = [i for i, r in enumerate(records) if not HF_SUMMARY_KEYS & r.keys()]
    if len(keep) < len(records):
        notes.append(f"{len(records) - len(keep)} end-of-training summary lines left out")
        records, lines = [records[i] for i in keep], [lines[i] for i in keep]
    if any(SWIFT_STEP_KEY in r for r in records[:20]):
        records = [_swift_step(r) for r in records]
        notes.append(f"step from ms-swift's '{SWIFT_STEP_KEY}'")
    mm = _mmengine_validation(records)
    if mm is not None:
        records, moved, lossless = mm
        if moved:
            notes.append(
                f"mmengine: {moved} validation lines (step = epoch) placed at the last "
                "training step of their epoch, their values named val/<key>"
            )
        if lossless:
            notes.append(f"mmengine: {lossless} of them hold no loss (metrics only)")
    return records, lines, notes


def _swift_step(record: Record) -> Record:
    raw = record.get(SWIFT_STEP_KEY)
    if not isinstance(raw, str) or "/" not in raw:
        return record
    done, _, total = raw.partition("/")
    out = {k: v for k, v in record.items() if k != SWIFT_STEP_KEY}
    try:
        out["global_step"] = float(done)
        out["max_steps"] = float(total)
    except ValueError:
        return record
    return out


def _mmengine_validation(records: list[Record]) -> tuple[list[Record], int, int] | None:
    """Return (records, validation lines moved, of which without a loss) for an mmengine
    log whose validation lines count epochs, or None for another log."""
    train = [r for r in records if "iter" in r and "step" in r]
    if len(train) * 2 < len(records) or len(train) == len(records):
        return None
    last_step_of_epoch: dict[float, float] = {}
    for r in train:
        if isinstance(r.get("epoch"), int | float):
            last_step_of_epoch[float(r["epoch"])] = float(r["step"])
    out: list[Record] = []
    moved = lossless = 0
    latest = float("-inf")
    for r in records:
        if "iter" in r or not isinstance(r.get("step"), int | float):
            if isinstance(r.get("step"), int | float):
                latest = max(latest, float(r["step"]))
            out.append(r)
            continue
        step = float(r["step"])
        if step < latest:  # an epoch number: place it at its epoch's last training step
            step = last_step_of_epoch.get(step, latest)
        renamed = {
            (k if looks_like_validation(k) or "loss" not in k.lower() else f"val/{k}"): v
            for k, v in r.items()
            if k not in MMENGINE_TIMING
        }
        renamed["step"] = step
        out.append(renamed)
        moved += 1
        lossless += not any("loss" in k.lower() for k in renamed)
    return out, moved, lossless


def reshapes(keys: set[str]) -> bool:
    """Return True when records with these ``keys`` may be changed by
    :func:`reshape_records` (a reader that builds the table without it must not take them)."""
    return bool(keys & (HF_SUMMARY_KEYS | {SWIFT_STEP_KEY})) or {"iter", "step"} <= keys
