"""Hugging Face ``transformers`` callback::

    from lossdoctor.integrations.transformers import LossDoctorCallback
    trainer = Trainer(..., callbacks=[LossDoctorCallback(stop_on="error")])

Each ``on_log`` feeds ``loss``, ``eval_loss``, ``grad_norm``, ``learning_rate`` and
``epoch`` at ``state.global_step`` to a :class:`lossdoctor.Monitor`; new findings go to
the Trainer's logger (``transformers.trainer``); a finding at ``stop_on`` sets
``control.should_training_stop``; at the end of training the report files are written
into ``output_dir`` (the Trainer's by default).  Only the main process judges, logs and
writes; in a distributed run its decision to stop is broadcast to the other processes.
"""

from __future__ import annotations

from typing import Any

from transformers import TrainerCallback
from transformers.utils import logging as hf_logging

from lossdoctor.integrations._core import LossDoctorCallbackBase

#: The keys of a Trainer log entry that are fed to the monitor.
LOG_KEYS = ("loss", "eval_loss", "grad_norm", "learning_rate", "epoch")


class LossDoctorCallback(LossDoctorCallbackBase, TrainerCallback):  # type: ignore[misc]
    """Diagnose the run inside ``Trainer.train()``; stop it when a finding reaches
    ``stop_on`` (``error``, ``warning``, ``info`` or None never to stop).

    ``report_formats`` are written as ``lossdoctor-report.<ext>`` into ``output_dir``
    (default: ``TrainingArguments.output_dir``).  Other keyword options are those of
    ``lossdoctor check`` (``select``, ``ignore``, ``vocab_size``, ``profile``, ``config``...).
    """

    SOURCE = "<transformers.Trainer>"
    LOGGER = hf_logging.get_logger("transformers.trainer")

    def on_log(
        self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kwargs: Any
    ) -> None:
        """Feed the log entry; ask the Trainer to stop when a finding reaches ``stop_on``."""
        metrics = {k: logs[k] for k in LOG_KEYS if logs and k in logs and k != "epoch"}
        if not metrics:  # the end-of-training summary (train_loss, runtime...) is not a point
            return
        if logs and "epoch" in logs:
            metrics["epoch"] = logs["epoch"]
        stop = False
        if state.is_world_process_zero:
            stop = self.core.feed(state.global_step, metrics)
        if _broadcast_from_main(stop, args) and not control.should_training_stop:
            control.should_training_stop = True

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        """Judge the whole run and write the report files (main process only)."""
        if state.is_world_process_zero:
            self.core.finish(self.output_dir if self.output_dir is not None else args.output_dir)


def _broadcast_from_main(decision: bool, args: Any) -> bool:
    """Return the main process's ``decision`` on every process of a distributed run."""
    if getattr(args, "world_size", 1) <= 1:
        return decision
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return decision
    box = [decision]
    dist.broadcast_object_list(box, src=0)
    return bool(box[0])
