"""From in-memory columns (a pandas DataFrame or a mapping of equal-length sequences) to a
:class:`~lossdoctor.model.Run`, through the same :class:`~lossdoctor.ingest.table.Table`
path as the file readers.

``None`` (and ``pd.NA``) is "not logged at this row".  A float NaN is ambiguous in a
frame (pandas fills the gaps of a sparse column with NaN): it counts as *not logged*
when another loss column of the same row holds a finite value (the row belongs to the
other series' cadence, as in a Hugging Face ``log_history`` frame), and as a *logged NaN*
otherwise, so a training loss that went NaN is never dropped.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from lossdoctor.errors import InputError
from lossdoctor.ingest.columns import ColumnHints, normalise
from lossdoctor.ingest.table import Column, Table, coerce_objects, table_to_run
from lossdoctor.model import Run


def _column(cells: Any) -> Column:
    """Return the cells as a Column, NaN kept as a logged NaN (decided per row later)."""
    array = np.asarray(cells)
    if array.dtype.kind in "iuf" and array.ndim == 1:
        values = array.astype(np.float64, copy=False)
        return Column(values=values, present=np.ones(values.shape[0], dtype=bool))
    objects = [None if _is_na(cell) else cell for cell in cells]
    return coerce_objects(objects, nan_is_missing=False)


def _is_na(cell: object) -> bool:
    """Return True for pandas' missing markers (``pd.NA``, ``NaT``), which are not NaN."""
    return type(cell).__name__ in {"NAType", "NaTType"}


def columns_to_run(
    columns: Mapping[str, Sequence[Any] | Any],
    *,
    source: str,
    reader: str,
    hints: ColumnHints | None = None,
) -> Run:
    """Return the run held by named, equal-length columns (row i of every column is one
    logged record).

    Raises :class:`InputError` when the lengths differ or no column is a loss.
    """
    if not columns:
        raise InputError("no columns given", path=source)
    table_columns = {str(name): _column(cells) for name, cells in columns.items()}
    lengths = {name: int(c.values.shape[0]) for name, c in table_columns.items()}
    if len(set(lengths.values())) > 1:
        shown = ", ".join(f"'{n}' has {k}" for n, k in lengths.items())
        raise InputError(
            f"columns differ in length ({shown}): give None where a series was not logged",
            path=source,
        )
    losses = [c for n, c in table_columns.items() if "loss" in normalise(n)]
    if len(losses) > 1:
        finite = np.stack([np.isfinite(c.values) for c in losses])
        for column in losses:
            other_finite = (finite.sum(axis=0) - np.isfinite(column.values)) > 0
            gap = np.isnan(column.values) & other_finite
            np.logical_and(column.present, ~gap, out=column.present)
    return table_to_run(Table(columns=table_columns), source=source, reader=reader, hints=hints)


def frame_columns(frame: Any) -> dict[str, Any]:
    """Return a pandas DataFrame's columns as name -> numpy array (numeric columns without
    a copy where pandas allows it; others as objects)."""
    out: dict[str, Any] = {}
    for name in frame.columns:
        column = frame[name]
        if column.dtype.kind in "iuf":
            out[str(name)] = column.to_numpy(dtype=np.float64, na_value=np.nan)
        else:
            out[str(name)] = column.to_numpy(dtype=object)
    return out
