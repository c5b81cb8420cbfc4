"""Facts about a run that logs state beside the numbers: the vocabulary size, the
precision, overflow-skipped steps and the configured learning-rate schedule.

A training script often prints its vocabulary size (nanoGPT's ``found vocab_size =
65``, llm.c's ``| vocab_size V | 50257``, a printed Hugging Face model config), and a
Hugging Face checkpoint folder keeps ``config.json`` next to ``trainer_state.json``.
ln(vocabulary) is the loss of a uniform guess, the yardstick of ``init-loss``.

The printed training arguments (Hugging Face ``TrainingArguments(...)``, an argparse
``Namespace(...)``, ``--learning_rate 2e-5`` flags) and LLaMA-Factory's
``training_args.yaml`` beside its ``trainer_state.json`` say the configured peak learning
rate, scheduler, warmup and fp16; DeepSpeed says which scheduler it runs; fp16 loss
scalers (apex, DeepSpeed, fairseq) print a line for every step they skip on overflow.
"""

from __future__ import annotations

import json
import re
import stat
from pathlib import Path

from lossdoctor.model import (
    CONFIGURED_LR,
    LR,
    LR_SCHEDULER,
    OVERFLOW_SKIPS,
    PRECISION,
    TRAIN,
    VAL,
    WARMUP_RATIO,
    WARMUP_STEPS,
    Run,
)

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


def config_paths(state_path: Path, name: str = "config.json") -> list[Path]:
    """Return where the configuration file ``name`` of a ``trainer_state.json`` may be:
    beside it, and for a ``checkpoint-N`` folder also in the output folder above it."""
    folder = state_path.parent
    paths = [folder / name]
    if _CHECKPOINT.match(folder.name):
        paths.append(folder.parent / name)
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
    text = _small_text(config)
    try:
        data = json.loads(text) if text is not None else None
    except (ValueError, RecursionError):
        return None
    if not isinstance(data, dict):
        return None
    for table in (data, data.get("text_config")):
        if isinstance(table, dict):
            value = table.get("vocab_size")
            if isinstance(value, int) and not isinstance(value, bool) and value >= 2:
                return value
    return None


def with_vocab(run: Run, vocab: int | None) -> Run:
    """Return ``run`` whose training series records ``vocab`` (no-op for None)."""
    if vocab is None:
        return run
    return run.with_meta(TRAIN, **{VOCAB_SIZE: str(vocab)})


#: Configuration files beside a trainer's state whose facts are read (LLaMA-Factory).
CONFIG_BESIDE = ("training_args.yaml",)
#: Characters after the start of a printed argument block searched for its values.
ARGS_BLOCK_CHARS = 40_000

# unambiguous (no two repeats share a digit run: no backtracking on long digit runs)
_NUMBER = r"((?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?)"
# the start of a printed argument block: TrainingArguments(, SFTConfig(, Namespace(
_ARGS_BLOCK = re.compile(r"(?:Arguments|Config|Namespace)\(")
_ARG_LR = re.compile(r"(?<![A-Za-z_])learning_rate\s*=\s*" + _NUMBER)
_ARG_SCHEDULER = re.compile(
    r"(?<![A-Za-z_])lr_scheduler_type\s*=\s*(?:SchedulerType\.)?['\"]?(\w+)"
)
_ARG_WARMUP_STEPS = re.compile(r"(?<![A-Za-z_])warmup_steps\s*=\s*([0-9]+)")
_ARG_WARMUP_RATIO = re.compile(r"(?<![A-Za-z_])warmup_ratio\s*=\s*" + _NUMBER)
# command-line flags echoed in the log: --learning_rate 2e-5, --lr_scheduler_type=cosine
_FLAG = r"--{}[= ]\s*"
_FLAGS = {
    CONFIGURED_LR: re.compile(_FLAG.format("learning_rate") + _NUMBER),
    LR_SCHEDULER: re.compile(_FLAG.format("lr_scheduler_type") + r"(\w+)"),
    WARMUP_STEPS: re.compile(_FLAG.format("warmup_steps") + r"([0-9]+)"),
    WARMUP_RATIO: re.compile(_FLAG.format("warmup_ratio") + _NUMBER),
}
# a YAML configuration (training_args.yaml): top-level "key: value" lines
_YAML = {
    key: re.compile(rf"(?m)^{name}:\s*['\"]?{value}['\"]?\s*$")
    for key, name, value in (
        (CONFIGURED_LR, "learning_rate", _NUMBER),
        (LR_SCHEDULER, "lr_scheduler_type", r"(\w+)"),
        (WARMUP_STEPS, "warmup_steps", r"([0-9]+)"),
        (WARMUP_RATIO, "warmup_ratio", _NUMBER),
    )
}
# DeepSpeed runs its own scheduler when its config has one (it overrides the trainer's)
_DEEPSPEED_SCHEDULER = re.compile(r"(?i)DeepSpeed (?:using configured )?LR scheduler\s*=\s*(\w+)")
_FP16 = re.compile(
    r"(?i)(?<![A-Za-z_])fp16\s*[=:]\s*true\b|fp16_enabled\W{0,40}true\b"
    r"|mixed[_ ]precision(?: type)?\s*[=:]\s*['\"]?fp16|16bit (?:native )?Automatic Mixed Precision"
    r"|precision\s*[=:]\s*['\"]?16-mixed"
)
_OVERFLOW = re.compile(r"(?i)overflow")
#: What a loss scaler's overflow line says it did with the step (lower case).
_SKIP_WORDS = (
    "skipping step",
    "skipped",
    "ignoring gradient",
    "reducing loss scale",
    "reducing scale",
    "loss scale to",
)


def facts_from_text(head: str, *, yaml: bool = False) -> dict[str, str]:
    """Return what the head of a log (or, with ``yaml``, a YAML configuration) states about
    the run: ``precision`` (``fp16``), the configured peak learning rate, scheduler name,
    warmup steps and warmup ratio, as series meta (text); absent facts are left out."""
    facts: dict[str, str] = {}
    block = _ARGS_BLOCK.search(head, 0, TEXT_HEAD_CHARS)
    args = head[block.start() : block.start() + ARGS_BLOCK_CHARS] if block else ""
    head = head[:TEXT_HEAD_CHARS]
    for key, pattern in (
        (CONFIGURED_LR, _ARG_LR),
        (LR_SCHEDULER, _ARG_SCHEDULER),
        (WARMUP_STEPS, _ARG_WARMUP_STEPS),
        (WARMUP_RATIO, _ARG_WARMUP_RATIO),
    ):
        found = pattern.search(args) or _FLAGS[key].search(head)
        if found is None and yaml:
            found = _YAML[key].search(head)
        if found:
            facts[key] = found.group(1).lower() if key == LR_SCHEDULER else found.group(1)
    # the trainer's scheduler is what the run meant; DeepSpeed's name only stands in for it
    # (a DeepSpeed WarmupLR overriding a cosine schedule is what lr-schedule looks for)
    deepspeed = _DEEPSPEED_SCHEDULER.search(head)
    if deepspeed and LR_SCHEDULER not in facts:
        facts[LR_SCHEDULER] = deepspeed.group(1).lower()
    if _FP16.search(head):
        facts[PRECISION] = "fp16"
    return facts


def count_overflow_skips(text: str) -> int:
    """Return the number of lines in ``text`` where an fp16 loss scaler says it skipped a
    step on overflow (apex, DeepSpeed, fairseq, Megatron wordings)."""
    if "verflow" not in text and "VERFLOW" not in text:
        return 0
    starts = set()
    for match in _OVERFLOW.finditer(text):
        start = text.rfind("\n", 0, match.start()) + 1
        if start in starts:
            continue
        end = text.find("\n", match.end())
        line = text[start : end if end >= 0 else len(text)].lower()
        if any(word in line for word in _SKIP_WORDS):
            starts.add(start)
    return len(starts)


def with_facts(run: Run, facts: dict[str, str], overflow_skips: int = 0) -> Run:
    """Return ``run`` whose loss series carry the precision facts (and ``overflow_skips``
    when any) and whose learning-rate series carries the schedule facts."""
    loss_facts = {k: v for k, v in facts.items() if k == PRECISION}
    if overflow_skips:
        loss_facts[OVERFLOW_SKIPS] = str(overflow_skips)
    lr_facts = {k: v for k, v in facts.items() if k != PRECISION}
    for role in (TRAIN, VAL):
        if loss_facts:
            run = run.with_meta(role, **loss_facts)
    return run.with_meta(LR, **lr_facts) if lr_facts else run


def facts_beside(state_path: Path) -> dict[str, str]:
    """Return the facts of a YAML training configuration (LLaMA-Factory's
    ``training_args.yaml``) of a trainer's state or log (see :func:`config_paths`); empty
    when there is no readable one."""
    for name in CONFIG_BESIDE:
        for path in config_paths(state_path, name):
            text = _small_text(path)
            if text is not None:
                return facts_from_text(text, yaml=True)
    return {}


def _small_text(path: Path) -> str | None:
    """Return the text of a regular file no larger than CONFIG_MAX_BYTES, or None."""
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode) or info.st_size > CONFIG_MAX_BYTES:
            return None
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
