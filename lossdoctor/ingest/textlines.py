"""One line of a text log: the dialects a line is read in, and the record it gives.

:func:`parse_line` reads a (prefix-stripped) line in every dialect the text-log reader
(:mod:`lossdoctor.ingest.textlog`) and ``watch`` (:mod:`lossdoctor.live.parse`) share:
nanoGPT, build-nanogpt, llm.c, printed Hugging Face dicts, Megatron-LM, fairseq,
mmengine/mmcv, detectron2, Keras progress bars, torchtune and Lightning bars, and generic
``key=value`` / ``key: value`` / ``key value |`` lines; :func:`canonical` unifies a line's
step keys and names its validation losses; :class:`EpochSteps` makes per-epoch step
counters global.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from lossdoctor.ingest.jsonlike import HF_SUMMARY_KEYS
from lossdoctor.ingest.lines import NUM
from lossdoctor.ingest.progressbar import bar_line, is_bar_line
from lossdoctor.ingest.torchtune import torchtune_line
from lossdoctor.safeio import parse_int
from lossdoctor.wording import counted

_NANOGPT_ITER = re.compile(rf"^iter (\d+): loss ({NUM})")
_NANOGPT_EVAL = re.compile(rf"^step (\d+): train loss ({NUM}), val loss ({NUM})")
#: nanoGPT-style variants: ``step N: loss X, lr Y`` (comma-separated ``name value``
#: items, ``name: value`` and ``name=value`` too, a unit after the number allowed).  A
#: blank, ``:`` or ``=`` must end the name, so a long item fails in linear time.
_STEP_COLON = re.compile(r"^[Ss]tep (\d+):\s+(\S.*)$")
_NAMED_VALUE = re.compile(
    rf"^\s*([A-Za-z_][\w./-]*+(?: [A-Za-z_][\w./-]*+){{0,3}})(?:\s*[:=]\s*|\s+)({NUM})"
    r"[A-Za-z%/]*\s*$"
)
#: build-nanogpt's ``log/log.txt``: ``<step> train|val|hella <value>`` (train_gpt2.py).
_BUILD_NANOGPT = re.compile(rf"^(\d+) (train|val|hella) ({NUM})$")
_BUILD_NANOGPT_KEYS = {"train": "loss", "val": "val_loss", "hella": "hellaswag_acc"}
_HF_DICT = re.compile(r"^\{'.*\}\s*$")
#: A printed argument dump, not a record: ``TrainingArguments(... learning_rate=2e-05, ...)``
#: (also ``SFTConfig(``, ``Namespace(``) and the lone ``name=value,`` lines of its
#: multi-line form.
_ARGS_DUMP = re.compile(r"\b\w*(?:Arguments|Config|Namespace)\(|^[A-Za-z_]\w*=[^=,\s]*,$")
_HF_PAIR = re.compile(r"'([^']+)':\s*(?:'([^']*)'|([^,}]+))")
_MM_EPOCH = re.compile(r"Epoch(?:\((train|val|test)\))?\s*\[(\d+)\]\s*\[\s*(\d+)\s*/\s*(\d+)\s*\]")
_MM_ITER = re.compile(r"Iter\((train|val|test)\)\s*\[\s*(\d+)\s*/\s*(\d+)\s*\]")
_KERAS_EPOCH = re.compile(r"^Epoch (\d+)/(\d+)\s*$")
_KERAS_BAR = re.compile(r"^\s*\d+/\d+ .*\b(?:step|ETA)\b.* - [\w ]+: ")
_AT_STEP = re.compile(r"\b(?:at|@)\s+(?:iteration|iter|step)\s+(\d+)", re.IGNORECASE)
_KEY = r"[A-Za-z_][\w./()-]*(?: [A-Za-z_][\w./()-]*){0,4}"
_PAIR = re.compile(rf"(?<![\w./-])({_KEY})\s*[:=]\s*({NUM})(?![\w.])")
#: A 'key value' segment of a ``|``-separated line; the first may carry a tag before it
#: (``[train] step 10 | loss 2.31``).
_SEGMENT = re.compile(
    rf"^\s*(?:\[[^\][]*\]\s*)?({_KEY})\s+({NUM})(?:\s*/\s*(\d+))?\s*(?:\(.*\))?\s*%?$"
)
_LOSS_LINE = re.compile(rf"^\s*([A-Za-z][\w ]*loss)\s+({NUM})\s*$", re.IGNORECASE)
_VAL_WORD = re.compile(r"\b(?:val|valid|validation|eval|evaluation|dev)\b", re.IGNORECASE)
_BLOCK_HEADER = re.compile(r"^(?:[^\w\s]+\s*)?([\w ]+):\s*$")
#: Longer lines are not log lines (a blob, a base64 dump): skipped, never scanned.
MAX_LINE_CHARS = 20_000
STEP_KEYS = (
    "step", "global_step", "global step", "iteration", "iter", "iterations", "it",
    "num_updates", "update", "updates", "s", "train/global_step",
)  # fmt: skip


@dataclass
class ParsedLine:
    """Values found on one line, whether they are validation values, and the dialect."""

    values: dict[str, Any]
    dialect: str
    is_val: bool = False
    keras_bar: bool = False
    #: The number of the line the values were read from when it is an earlier line than
    #: the one being read (a Lightning bar's step, given once the bar moves on), else None.
    line: int | None = None


#: One redraw of a Lightning bar (step, epoch, training values, validation values; see
#: :func:`~lossdoctor.ingest.progressbar.bar_line`) and the number of its line.
BarRedraw = tuple[tuple[float, int, dict[str, float], dict[str, float]], int]


@dataclass
class LineState:
    """What reading a log line by line carries from one line to the next: the records and
    their line numbers so far, the dialects seen, and the open Keras epoch, validation
    block and progress bars."""

    keras_epoch: int | None = None
    val_block: bool = False
    records: list[dict[str, Any]] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)
    dialects: Counter[str] = field(default_factory=Counter)
    keras_bar: list[bool] = field(default_factory=list)
    skipped: int = 0
    #: The step of the last torchtune progress-bar redraw read (tqdm draws a step again).
    bar_step: float | None = None
    #: The number of the line being read (set by the reader before each line it parses).
    number: int = 0
    #: The last redraw of the Lightning bar's current step and its line number, held until
    #: the bar moves on (see :func:`_lightning_bar`).
    bar_pending: BarRedraw | None = None
    #: torchtune bar steps read, and Lightning validation values given (for the notes).
    bar_steps: int = 0
    bar_vals: int = 0


def _number(text: str) -> float | None:
    text = text.strip().strip("'\"")
    match = re.search(NUM, text)
    if match is None:
        return None
    try:
        return float(match.group(0))
    except ValueError:
        return None


def _generic(line: str) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for key, raw in _PAIR.findall(line):
        values.setdefault(key.strip().lower(), float(raw))
    if "|" in line:
        for segment in line.split("|"):
            match = _SEGMENT.match(segment)
            if match and ":" not in segment and "=" not in segment:
                key = match.group(1).strip().lower()
                values.setdefault(key, float(match.group(2)))
                if match.group(3):
                    values.setdefault(f"{key}__total", float(match.group(3)))
    if not values:
        match = _LOSS_LINE.match(line)
        if match:
            values[match.group(1).strip().lower()] = float(match.group(2))
    return values


def _named_values(text: str) -> dict[str, float] | None:
    """Return the ``name value`` items of a comma-separated list (``loss 3.2, val loss
    3.4, lr 6e-4``; names in lower case, blanks as ``_``) when every item is one and one
    names a loss, else None."""
    values: dict[str, float] = {}
    for item in text.split(","):
        match = _NAMED_VALUE.match(item)
        if match is None:
            return None
        values.setdefault(match.group(1).lower().replace(" ", "_"), float(match.group(2)))
    return values if any("loss" in key for key in values) else None


def _lightning_bar(
    found: tuple[float, int, dict[str, float], dict[str, float]], state: LineState
) -> ParsedLine | None:
    """Return the values of the Lightning bar's last step once the bar moves on to another
    (read line by line, as ``watch`` reads; :func:`flush_lightning_bar` gives the last
    one), as :func:`~lossdoctor.ingest.progressbar.read_progress_bar` reads a whole file:
    a step's values from its last redraw (Lightning draws each step first with the step
    before's loss, then with its own), and an epoch's validation values from its last
    line (the bar shows them again all through the next epoch).  The values are those of
    one line, the redraw kept, whose number (``state.number`` when it was read) the
    :class:`ParsedLine` names."""
    pending = state.bar_pending
    state.bar_pending = (found, state.number)
    if pending is None or pending[0][0] == found[0]:
        return None
    return _bar_values(pending, state, with_val=found[1] != pending[0][1])


def _bar_values(pending: BarRedraw, state: LineState, *, with_val: bool) -> ParsedLine:
    """Return the values of a held redraw (its validation values ``with_val``), named with
    the number of the line they were read from."""
    (step, _, train, val), number = pending
    state.bar_vals += bool(with_val and val)
    values = {"step": step, **train, **(val if with_val else {})}
    return ParsedLine(values, "lightning-progress", line=number)


def flush_lightning_bar(state: LineState) -> ParsedLine | None:
    """Return the values of the Lightning bar's step still held at the end of the input
    (the last line of its epoch: with its validation values; named with that line's
    number), or None."""
    pending, state.bar_pending = state.bar_pending, None
    return None if pending is None else _bar_values(pending, state, with_val=True)


def _torchtune(found: tuple[float, dict[str, float], bool], state: LineState) -> ParsedLine | None:
    """Return the values of a torchtune line (:func:`torchtune_line`'s ``found``); a bar
    redraw of the step just read is None."""
    step, values, is_bar = found
    if is_bar:
        if step == state.bar_step:
            return None  # tqdm drew the step just read again
        state.bar_step = step
        state.bar_steps += 1
    return ParsedLine({"step": step, **values}, "torchtune") if values else None


def parse_lightning(line: str, state: LineState) -> ParsedLine | None:
    """Return the values of a (prefix-stripped) line of a log known to be a captured
    Lightning progress bar, None for any other line: only the bar's redraws are read, as
    :func:`~lossdoctor.ingest.progressbar.read_progress_bar` reads such a file (the last
    redraw of a run, with Lightning's closing message run on after it, is no record)."""
    stripped = line.strip()
    found = bar_line(stripped) if "Epoch " in stripped else None
    return None if found is None else _lightning_bar(found, state)


def parse_torchtune(line: str, state: LineState) -> ParsedLine | None:
    """Return the values on a (prefix-stripped) torchtune line, None for any other line:
    :func:`parse_line` for a log known to be torchtune's (its configuration echo is no
    record)."""
    found = torchtune_line(line.strip())
    return None if found is None else _torchtune(found, state)


def parse_line(line: str, state: LineState) -> ParsedLine | None:
    """Return the values on one (prefix-stripped) line, or None."""
    stripped = line.strip()
    if not stripped:
        return None
    if m := _NANOGPT_ITER.match(stripped):
        return ParsedLine({"step": float(m.group(1)), "loss": float(m.group(2))}, "nanogpt")
    if m := _NANOGPT_EVAL.match(stripped):
        values = {"step": float(m.group(1)), "val_loss": float(m.group(3))}
        return ParsedLine(values, "nanogpt")
    if (m := _STEP_COLON.match(stripped)) and (items := _named_values(m.group(2))):
        return ParsedLine({"step": float(m.group(1)), **items}, "nanogpt")
    if m := _BUILD_NANOGPT.match(stripped):
        values = {"step": float(m.group(1)), _BUILD_NANOGPT_KEYS[m.group(2)]: float(m.group(3))}
        return ParsedLine(values, "build-nanogpt")
    if (torchtune := torchtune_line(stripped)) is not None:
        return _torchtune(torchtune, state)
    if "Epoch " in stripped and is_bar_line(stripped):
        # the bar's reset to 0/N at an epoch's start, showing the last epoch's values, is
        # no record (read as key=value pairs, it put them at the step above)
        lightning = bar_line(stripped)
        return None if lightning is None else _lightning_bar(lightning, state)
    if _HF_DICT.match(stripped):
        pairs = {k: (q if q else v) for k, q, v in _HF_PAIR.findall(stripped)}
        if HF_SUMMARY_KEYS & pairs.keys():
            return None
        numbers = {k: _number(v) for k, v in pairs.items()}
        values = {k: v for k, v in numbers.items() if v is not None}
        return ParsedLine(dict(values), "hf-printed")
    if m := _KERAS_EPOCH.match(stripped):
        state.keras_epoch = parse_int(m.group(1))
        return None
    if _ARGS_DUMP.search(stripped):
        return None  # the configuration (read for its facts by ingest.metadata)
    values = _generic(stripped)
    dialect = "generic"
    is_val = False
    mm_epoch = _MM_EPOCH.search(stripped)
    counters = [parse_int(g) for g in mm_epoch.groups()[1:]] if mm_epoch else []
    if mm_epoch and None not in counters:
        epoch, it, per_epoch = (int(c or 0) for c in counters)
        is_val = mm_epoch.group(1) == "val"
        values["step"] = float(epoch) if is_val else float((epoch - 1) * per_epoch + it)
        values["epoch"] = float(epoch)
        dialect = "mmengine"
    elif m := _MM_ITER.search(stripped):
        values["step"] = float(m.group(2))
        is_val = m.group(1) == "val"
        dialect = "mmengine"
    if m := _AT_STEP.search(stripped):
        values.setdefault("step", float(m.group(1)))
    keras_bar = bool(_KERAS_BAR.match(stripped))
    if keras_bar:
        dialect = "keras"
        if state.keras_epoch is not None:
            values["epoch"] = float(state.keras_epoch)
    if not values:
        header = _BLOCK_HEADER.match(stripped)
        state.val_block = bool(header and _VAL_WORD.search(header.group(1)))
        return None
    indented = line[:1].isspace()
    if state.val_block and not indented:
        state.val_block = False
    remainder = _PAIR.sub(" ", stripped)
    is_val = is_val or state.val_block or bool(_VAL_WORD.search(remainder))
    if any(k in values for k in ("lm loss", "lm loss value")):
        dialect = "megatron"
    elif "trl" in values or "tel" in values:
        dialect = "llm.c"
    elif "num_updates" in values:
        dialect = "fairseq"
    return ParsedLine(values, dialect, is_val=is_val, keras_bar=keras_bar)


def keras_epoch_end(record: dict[str, Any], keras_bar: bool) -> bool:
    """Return True when a Keras progress-bar line's ``record`` is its epoch's end line
    (it shows the validation values): the line kept of a bar whose other lines are
    running means of the epoch so far."""
    return keras_bar and any(k.startswith("val_") for k in record)


def canonical(parsed: ParsedLine) -> dict[str, Any]:
    """Return the values with step keys unified and validation losses named ``val_*``."""
    values = dict(parsed.values)
    total = values.pop("step__total", None)
    for key in STEP_KEYS:
        if key in values and key != "step":
            values.setdefault("step", values.pop(key))
            total = total or values.get(f"{key}__total")
    if parsed.is_val:
        renamed: dict[str, Any] = {}
        first = True
        for key, value in values.items():
            if (
                "loss" in key
                and "scale" not in key
                and not key.startswith(("val", "eval", "valid"))
            ):
                renamed["val_loss" if first else f"val_{key}"] = value
                first = False
            else:
                renamed[key] = value
        values = renamed
    out = {k: v for k, v in values.items() if v is not None and not k.endswith("__total")}
    if total and "step" in out:
        out["step__total"] = total
    return out


class EpochSteps:
    """Turns per-epoch step counters (``Epoch 1 | Step 10/6501``) into global steps, record
    by record in log order: from the first record whose step counter went back while its
    epoch went on, each step is ``(epoch - first epoch) x steps per epoch + step`` (the
    records before it are in the first epoch, where the two agree).  The one mapping of
    ``check`` (:func:`globalise_steps`) and ``watch``."""

    def __init__(self) -> None:
        self.first_epoch: float | None = None
        self.last: tuple[float, float] | None = None
        #: Whether a counter went back at a new epoch (steps are global from there).
        self.on = False

    def globalise(self, record: dict[str, Any]) -> None:
        """Make ``record``'s step global (in place) when it counts within its epoch."""
        step, epoch, total = record.get("step"), record.get("epoch"), record.get("step__total")
        if step is None or epoch is None or not total:
            return
        if self.first_epoch is None or epoch < self.first_epoch:
            self.first_epoch = epoch
        if self.last is not None and step < self.last[0] and epoch > self.last[1]:
            self.on = True
        self.last = (step, epoch)
        if self.on:
            record["step"] = (epoch - self.first_epoch) * total + step


#: The note on a log whose per-epoch step counters were made global.
GLOBAL_STEPS_NOTE = "per-epoch step counters turned into global steps"


def keras_note(ends: int, dropped: int) -> str:
    """Return the note on a Keras log read from its ``ends`` epoch-end lines, ``dropped``
    progress-bar lines left out."""
    return f"Keras: used the {ends} epoch-end lines, not {dropped} progress-bar lines"


def valueless_note(skipped: int) -> str:
    """Return the note on ``skipped`` lines of a text log that hold no values."""
    return f"{counted(skipped, 'line')} without values {'was' if skipped == 1 else 'were'} skipped"


def globalise_steps(records: list[dict[str, Any]]) -> bool:
    """Turn per-epoch step counters (``Epoch 1 | Step 10/6501``) into global steps.

    Returns True when it did.
    """
    steps = EpochSteps()
    for record in records:
        steps.globalise(record)
    return steps.on


#: A nanoGPT training line (``iter N: loss X...``) as :func:`parse_line` reads it when the
#: line has no colour codes (no prefix, no blank).
_NANOGPT_ITER_START = re.compile(rf"iter (\d+): loss ({NUM})")


def nanogpt_iter(line: str) -> tuple[float, float] | None:
    """Return (step, loss) of a nanoGPT training line (``iter N: loss X...``), read as
    :func:`parse_line` reads it, or None for any other line (those need :func:`parse_line`)."""
    if len(line) > MAX_LINE_CHARS or "\x1b" in line:
        return None
    found = _NANOGPT_ITER_START.match(line)
    return None if found is None else (float(found.group(1)), float(found.group(2)))


def has_loss(record: dict[str, Any]) -> bool:
    """Return True when a record (:func:`canonical`) holds a loss (llm.c's ``trl`` / ``tel``
    too)."""
    return any("loss" in k or k in ("trl", "tel") for k in record)


def carries_loss(line: str) -> bool:
    """Return True when a (prefix-stripped) text line carries a loss value as a text log's
    line (:func:`parse_line`)."""
    parsed = parse_line(line, LineState())
    return parsed is not None and has_loss(canonical(parsed))
