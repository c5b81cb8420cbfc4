"""What the configuration files beside a log add to its run: a Hugging Face trainer
state's ``config.json`` (the vocabulary size) and LLaMA-Factory's ``training_args.yaml``
(the schedule, the precision).  The readers of those files
(:mod:`lossdoctor.ingest.metadata`) are imported only for the logs that have them."""

from __future__ import annotations

from pathlib import Path

from lossdoctor.model import Run


def with_config(run: Run, path: Path) -> Run:
    """Return ``run`` read from ``path`` with what the configuration files beside it say:
    a Hugging Face trainer state records the vocabulary size of its ``config.json``, and
    a trainer state or LLaMA-Factory ``trainer_log.jsonl`` the schedule and precision of
    the ``training_args.yaml`` beside it (the one rule for a file named on the command
    line and for a run folder found in a walk); any other run is returned as it is."""
    if run.reader == "hf-trainer-state":
        from lossdoctor.ingest.metadata import vocab_from_config, with_vocab

        run = with_vocab(run, vocab_from_config(path))
    elif path.name != "trainer_log.jsonl":
        return run
    from lossdoctor.ingest.metadata import facts_beside, with_facts

    return with_facts(run, facts_beside(path))
