"""Several files of one run judged together: ``check --merge train.csv val.csv``, and the
pairs TensorBoard's export names give away (``run-train-tag-loss.csv`` with
``run-validation-tag-loss.csv``; ``run-x-tag-loss.csv`` with ``run-x-tag-val_loss.csv``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import PurePath

from lossdoctor.errors import InputError
from lossdoctor.ingest.columns import looks_like_validation
from lossdoctor.ingest.table import TB_EXPORT_NAME, VALIDATION_RUNS
from lossdoctor.model import TRAIN, VAL, Run

#: Run names of a training run beside a validation run.
TRAIN_RUNS = frozenset({"train", "training"})


def merge_runs(runs: Sequence[Run]) -> Run:
    """Return one run holding the series of every run in ``runs`` (its source names them
    all, joined by " + ").  A second training loss from a file whose name says validation
    is its validation loss.

    Raises :class:`InputError` when two files hold the same series.
    """
    source = " + ".join(r.source for r in runs)
    series = dict(runs[0].series)
    notes = [f"{runs[0].source}: {note}" for note in runs[0].notes]
    for run in runs[1:]:
        for role, one in run.series.items():
            second_train = role == TRAIN and TRAIN in series and VAL not in series
            if second_train and looks_like_validation(PurePath(run.source).stem):
                role, one = VAL, replace(one, role=VAL)
            if role in series:
                raise InputError(
                    f"{run.source} holds a {role} loss too; give each file one role "
                    "(e.g. name the validation export *val* or use --val-col)",
                    path=source,
                )
            series[role] = one
        notes += [f"{run.source}: {note}" for note in run.notes]
    said = ", ".join(f"{role} from {_origin(role, runs, series)}" for role in series)
    notes.insert(0, f"{len(runs)} files judged as one run: {said}")
    return Run(source=source, reader="+".join(r.reader for r in runs), series=series,
               notes=tuple(notes))  # fmt: skip


def _origin(role: str, runs: Sequence[Run], series: Mapping[str, object]) -> str:
    return next((r.source for r in runs if r.series.get(role) is series[role]), runs[-1].source)


def _pair_key(source: str) -> tuple[str, str, bool] | None:
    """Return (run, tag, is_validation) for a TensorBoard export name, with the train or
    validation word taken out, or None for any other name."""
    match = TB_EXPORT_NAME.search(PurePath(source).stem)
    if match is None:
        return None
    run, tag = match.group("run").lower(), match.group("tag").lower()
    if run in VALIDATION_RUNS or run in TRAIN_RUNS:
        return ("", tag, run in VALIDATION_RUNS)
    if looks_like_validation(tag):
        for word in sorted(VALIDATION_RUNS, key=len, reverse=True):
            for joined in (f"{word}_", f"{word}/", f"{word}-"):
                if tag.startswith(joined):
                    return (run, tag[len(joined) :], True)
    return (run, tag, False)


def group_sources(sources: Sequence[str], *, merge: bool = False) -> list[list[str]]:
    """Return the sources in order, grouped into the runs to judge: all of them with
    ``merge``, else each alone except a TensorBoard train export followed by the
    validation export of the same run and tag (or the reverse), which form one group."""
    if merge:
        return [list(sources)] if sources else []
    groups: list[list[str]] = []
    used: set[int] = set()
    keys = [_pair_key(s) for s in sources]
    for i, source in enumerate(sources):
        if i in used:
            continue
        group = [source]
        key = keys[i]
        if key is not None:
            partner = next(
                (
                    j
                    for j in range(i + 1, len(sources))
                    if j not in used
                    and keys[j] is not None
                    and keys[j][:2] == key[:2]  # type: ignore[index]
                    and keys[j][2] != key[2]  # type: ignore[index]
                ),
                None,
            )
            if partner is not None:
                used.add(partner)
                group.append(sources[partner])
                if key[2]:  # the validation export came first: train first
                    group.reverse()
        groups.append(group)
    return groups
