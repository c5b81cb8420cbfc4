"""Facts about a run that logs state beside the numbers: the vocabulary size.

A training script often prints its vocabulary size (nanoGPT's ``found vocab_size =
65``, llm.c's ``| vocab_size V | 50257``, a printed Hugging Face model config), and a
Hugging Face checkpoint folder keeps ``config.json`` next to ``trainer_state.json``.
ln(vocabulary) is the loss of a uniform guess, the yardstick of ``init-loss``.
"""

from __future__ import annotations

import json
import re
import stat
from pathlib import Path

from lossdoctor.model import TRAIN, Run

#: Series meta key holding the vocabulary size a log states (a whole number as text).
VOCAB_SIZE = "vocab_size"
#: config.json files larger than this are not read for their vocabulary size (bytes).
CONFIG_MAX_BYTES = 1 << 20
#: Characters of a text log searched for a stated vocabulary size (its head).
TEXT_HEAD_CHARS = 1 << 20

_CHECKPOINT = re.compile(r"^checkpoint-\d+$")
_VOCAB = re.compile(
    r"(?<![A-Za-z_])vocab_size(?:\s+V)?[\"']?\s*(?:=|:|\||of GPT-2 to)\s*(\d{2,8})(?!\d)"
)


def vocab_from_text(text: str) -> int | None:
    """Return the vocabulary size the head of a text log states, or None."""
    match = _VOCAB.search(text, 0, TEXT_HEAD_CHARS)
    return int(match.group(1)) if match else None


def config_paths(state_path: Path) -> list[Path]:
    """Return where the ``config.json`` of a ``trainer_state.json`` may be: beside it, and
    for a ``checkpoint-N`` folder also in the output folder above it."""
    folder = state_path.parent
    paths = [folder / "config.json"]
    if _CHECKPOINT.match(folder.name):
        paths.append(folder.parent / "config.json")
    return paths


def vocab_from_config(state_path: Path) -> int | None:
    """Return ``vocab_size`` from the ``config.json`` of a ``trainer_state.json`` (see
    :func:`config_paths`; also a multimodal config's ``text_config``), or None when there
    is no readable one."""
    for config in config_paths(state_path):
        vocab = _config_vocab(config)
        if vocab is not None:
            return vocab
    return None


def _config_vocab(config: Path) -> int | None:
    try:
        info = config.stat()
        if not stat.S_ISREG(info.st_mode) or info.st_size > CONFIG_MAX_BYTES:
            return None
        data = json.loads(config.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return None
    if not isinstance(data, dict):
        return None
    for table in (data, data.get("text_config")):
        if isinstance(table, dict):
            value = table.get("vocab_size")
            if isinstance(value, int) and not isinstance(value, bool) and value >= 2:
                return value
    return None


def with_config_vocab(run: Run, path: Path) -> Run:
    """Return ``run`` read from ``path``; a Hugging Face trainer state records the
    vocabulary size of its ``config.json`` (the one rule for a file named on the command
    line and for a run folder found in a walk)."""
    if run.reader != "hf-trainer-state":
        return run
    return with_vocab(run, vocab_from_config(path))


def with_vocab(run: Run, vocab: int | None) -> Run:
    """Return ``run`` whose training series records ``vocab`` (no-op for None)."""
    if vocab is None:
        return run
    return run.with_meta(TRAIN, **{VOCAB_SIZE: str(vocab)})
