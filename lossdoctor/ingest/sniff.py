"""What the first bytes or lines of an input say about its format, told without
importing the format's reader: every input is looked at for these, few are these
formats (event files have their own: :mod:`lossdoctor.ingest.tfrecord`)."""

from __future__ import annotations

import re

#: The LevelDB log header of a W&B or SwanLab run file: a 4-byte ident, a uint16 magic
#: and a uint8 version (see :mod:`lossdoctor.ingest.leveldblog`).
HEADER_LEN = 7
#: Known file idents: W&B and SwanLab.
IDENTS = {b":W&B": "W&B", b":SWL": "SwanLab"}
#: An MLflow metric file line: ``<timestamp_ms> <value> <step>`` (old files omit the step).
METRIC_LINE = re.compile(r"^\s*(\d+)\s+(\S+)(?:\s+(-?\d+))?\s*$")


def log_ident(data: bytes) -> str | None:
    """Return the writer ("W&B", "SwanLab") when ``data`` starts with its file header."""
    return IDENTS.get(data[:4]) if len(data) >= HEADER_LEN else None


def looks_like_metric_file(text: str) -> bool:
    """Return True when every non-empty line of the first ones is ``ts value [step]``
    (an MLflow file store's metric file)."""
    lines = [ln for ln in text.split("\n", 50)[:50] if ln.strip()]
    return bool(lines) and all(METRIC_LINE.match(ln) for ln in lines)
