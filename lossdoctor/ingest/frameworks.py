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


class RecordShaper:
    """Turns a framework's records into table rows one at a time, in log order: the one
    mapping of these shapes for ``check`` (:func:`reshape_records`, the whole log) and
    ``watch`` (record by record, decided from the stream's first record by
    :meth:`for_stream`).  ``swift``: the step is in ``global_step/max_steps``;
    ``mmengine``: lines without ``iter`` are validation lines whose ``step`` may count
    epochs."""

    def __init__(self, *, swift: bool = False, mmengine: bool = False) -> None:
        self.swift = swift
        self.mmengine = mmengine
        #: End-of-training summaries left out, validation lines moved, of which without loss.
        self.summaries = self.moved = self.lossless = 0
        #: Validation lines whose step counted epochs (the others' counts iterations).
        self.by_epoch = 0
        self._last_step_of_epoch: dict[float, float] = {}
        self._latest = float("-inf")

    @classmethod
    def for_stream(cls, first: Record) -> RecordShaper:
        """Return the shaper of a stream whose first record is ``first``."""
        return cls(swift=SWIFT_STEP_KEY in first, mmengine={"iter", "step"} <= first.keys())

    def shape(self, record: Record) -> Record | None:
        """Return ``record`` as a table row, or None for a line that is no curve point."""
        if HF_SUMMARY_KEYS & record.keys():
            self.summaries += 1
            return None
        if self.swift:
            record = _swift_step(record)
        if self.mmengine:
            record = self._mmengine(record)
        return record

    def _mmengine(self, r: Record) -> Record:
        """Return a validation line (no ``iter``) at the last training step of its epoch
        when its ``step`` counts epochs, its loss values named ``val/<key>``."""
        step = r.get("step")
        if "iter" in r or not isinstance(step, int | float):
            if isinstance(step, int | float):
                self._latest = max(self._latest, float(step))
                if isinstance(r.get("epoch"), int | float):
                    self._last_step_of_epoch[float(r["epoch"])] = float(step)
            return r
        at = float(step)
        if at < self._latest:  # an epoch number: place it at its epoch's last training step
            at = self._last_step_of_epoch.get(at, self._latest)
            self.by_epoch += 1
        renamed = {
            (k if looks_like_validation(k) or "loss" not in k.lower() else f"val/{k}"): v
            for k, v in r.items()
            if k not in MMENGINE_TIMING
        }
        renamed["step"] = at
        self.moved += 1
        self.lossless += not any("loss" in k.lower() for k in renamed)
        return renamed

    def notes(self) -> list[str]:
        """Return the notes saying what the shaping changed."""
        notes = []
        if self.summaries:
            notes.append(f"{self.summaries} end-of-training summary lines left out")
        if self.swift:
            notes.append(f"step from ms-swift's '{SWIFT_STEP_KEY}'")
        if self.by_epoch:
            notes.append(
                f"mmengine: {self.by_epoch} validation lines (step = epoch) placed at the last "
                "training step of their epoch, their values named val/<key>"
            )
        if self.moved > self.by_epoch:
            notes.append(
                f"mmengine: {self.moved - self.by_epoch} validation lines (step = iteration), "
                "their values named val/<key>"
            )
        if self.lossless:
            notes.append(f"mmengine: {self.lossless} of them hold no loss (metrics only)")
        return notes


def reshape_records(
    records: list[Record], lines: list[int]
) -> tuple[list[Record], list[int], list[str]]:
    """Return the records (and their lines) as table rows, with notes saying what changed."""
    points = [r for r in records if not HF_SUMMARY_KEYS & r.keys()]
    train = sum(1 for r in points if "iter" in r and "step" in r)
    shaper = RecordShaper(
        swift=any(SWIFT_STEP_KEY in r for r in points[:20]),
        mmengine=len(points) > train and train * 2 >= len(points),
    )
    out: list[Record] = []
    kept: list[int] = []
    for record, line in zip(records, lines, strict=True):
        shaped = shaper.shape(record)
        if shaped is not None:
            out.append(shaped)
            kept.append(line)
    return out, kept, shaper.notes()


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


def reshapes(keys: set[str]) -> bool:
    """Return True when records with these ``keys`` may be changed by
    :func:`reshape_records` (a reader that builds the table without it must not take them)."""
    return bool(keys & (HF_SUMMARY_KEYS | {SWIFT_STEP_KEY})) or {"iter", "step"} <= keys
