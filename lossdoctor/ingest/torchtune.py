"""torchtune's metric lines and its training progress bar.

* ``DiskLogger`` files (``log_<unix time>.txt``) and ``StdoutLogger`` lines:
  ``Step 1 | loss:2.0853 lr:2e-05 tokens_per_second_per_gpu:57.82`` (torchtune
  ``training/metric_logging.py``); a tensor value is written as its repr
  (``grad_norm:tensor(0.8618, device='cuda:0')``).  ``output_fmt="jsonl"`` files
  (``{"step": 1, "loss": 2.08, ...}``) are JSON Lines, read by the JSON Lines reader.
* The tqdm bar the recipes draw on stderr: description ``<epoch>|<step>|Loss: <loss>``
  (``pbar.set_description(f"{curr_epoch + 1}|{self.global_step}|Loss: {loss_to_log}")``
  in ``recipes/*.py``), redrawn with carriage returns.

The step is the optimizer step; a step drawn several times keeps its last values.
"""

from __future__ import annotations

import re
from typing import Any

from lossdoctor.errors import InputError
from lossdoctor.ingest.columns import ColumnHints
from lossdoctor.ingest.jsonlike import records_table
from lossdoctor.ingest.lines import NUM, strip_prefix
from lossdoctor.ingest.table import table_to_run
from lossdoctor.model import Run

_TENSOR = rf"tensor\(({NUM})(?:,[^)]*)?\)"
_VALUE = rf"(?:{_TENSOR}|({NUM}))"
_PAIR = re.compile(rf"(?<![\w/.()-])([\w/.()-]+):{_VALUE}(?=\s|$)")
#: Each ``key:value`` item is matched atomically (its value runs to the next blank), so a
#: line that is not a metric line fails in linear time (``a:a:a:...`` once backtracked
#: through every split).
_LINE = re.compile(rf"^\s*Step (\d+) \| ((?:(?>[\w/.()-]+:(?:{_TENSOR}|\S+))\s*)+)$")
_BAR = re.compile(rf"^\s*(\d+)\|(\d+)\|Loss: ({NUM})(?::|\s*$)")
HEAD_LINES = 50
#: Pieces of the head (lines, or the redraws between carriage returns) searched for bars.
HEAD_PIECES = 2000


def torchtune_line(line: str) -> tuple[float, dict[str, float], bool] | None:
    """Return the step, the values and whether it is the progress bar for a torchtune
    metric line (``Step N | loss:X ...``) or a redraw of its training bar (``E|N|Loss: X``,
    values ``epoch`` and ``loss``), its prefix stripped; None for any other line.  The one
    parser of these lines for ``check`` and ``watch``."""
    if "Step " in line and (match := _LINE.match(line)):
        values = {key: float(t or v) for key, t, v in _PAIR.findall(match.group(2))}
        return float(match.group(1)), values, False
    if "|Loss: " in line and (bar := _BAR.match(line)):
        values = {"epoch": float(bar.group(1)), "loss": float(bar.group(3))}
        return float(bar.group(2)), values, True
    return None


def _pieces(text: str) -> list[str]:
    return text.replace("\r", "\n").split("\n")


def looks_like_disk_log(head: str) -> bool:
    """Return True when most value lines among the first ones are torchtune metric lines."""
    if "Step " not in head:
        return False  # every metric line holds it
    lines = [strip_prefix(ln) for ln in head.split("\n", HEAD_LINES)[:HEAD_LINES] if ln.strip()]
    hits = sum(1 for ln in lines if _LINE.match(ln))
    return hits >= 2 and hits * 2 >= len(lines)


def looks_like_progress(head: str) -> bool:
    """Return True when the head of a captured stdout/stderr shows torchtune's training bar
    (two redraws at least)."""
    if "|Loss: " not in head:
        return False
    pieces = _pieces(head)[:HEAD_PIECES]
    return sum(1 for piece in pieces if _BAR.match(strip_prefix(piece))) >= 2


def read_disk_log(text: str, *, source: str, hints: ColumnHints | None = None) -> Run:
    """Return the run in a torchtune metric log or captured output (x = optimizer step):
    metric lines, and the training bar's loss where no metric line gives one.

    Raises :class:`InputError` when no line holds a loss.
    """
    by_step: dict[float, tuple[dict[str, Any], int]] = {}
    bar_steps: set[float] = set()
    for number, raw in enumerate(text.split("\n"), start=1):
        for piece in raw.split("\r"):
            found = torchtune_line(strip_prefix(piece))
            if found is None:
                continue
            step, values, is_bar = found
            if is_bar:
                bar_steps.add(step)
            record = by_step[step][0] if step in by_step else {"step": step}
            record.update(values)
            by_step[step] = (record, number)
    if not any("loss" in record for record, _ in by_step.values()):
        raise InputError("torchtune log without a loss value", path=source)
    rows = list(by_step.values())
    table = records_table([r for r, _ in rows], [n for _, n in rows])
    if bar_steps:
        table.notes.append(bar_note(len(bar_steps)))
    return table_to_run(table, source=source, reader="text:torchtune", hints=hints)


def bar_note(steps: int) -> str:
    """Return the note on a torchtune training bar read for ``steps`` optimizer steps."""
    return f"torchtune progress bar: {steps} optimizer steps (the last redraw of each)"
