"""PyTorch Lightning callback::

    from lossdoctor.integrations.lightning import LossDoctorCallback
    trainer = L.Trainer(..., callbacks=[LossDoctorCallback(stop_on="error")])

At Lightning's logging cadence (``log_every_n_steps``) the step metrics in
``trainer.callback_metrics`` (what ``self.log`` recorded; ``*_epoch`` aggregates left out,
``*_step`` names without the suffix) are fed to a :class:`lossdoctor.Monitor` at
``trainer.global_step``, with the learning rate of the first optimizer; after each
validation run (not the sanity check) the metrics it logged are fed too.  A finding at
``stop_on`` sets ``trainer.should_stop``; at the end of training the report files are
written into the logger's ``log_dir``.  Only rank zero judges, logs and writes; its
decision to stop is broadcast to the other ranks.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import Any

try:
    from lightning.pytorch import Callback
except ImportError:  # the standalone package
    from pytorch_lightning import Callback

from lossdoctor.integrations._core import LossDoctorCallbackBase, _number

EPOCH_SUFFIX, STEP_SUFFIX = "_epoch", "_step"


class LossDoctorCallback(LossDoctorCallbackBase, Callback):  # type: ignore[misc]
    """Diagnose the run inside ``Trainer.fit()``; stop it when a finding reaches
    ``stop_on`` (``error``, ``warning``, ``info`` or None never to stop).

    ``report_formats`` are written as ``lossdoctor-report.<ext>`` into ``output_dir``
    (default: ``trainer.log_dir``).  Other keyword options are those of
    ``lossdoctor check`` (``select``, ``ignore``, ``vocab_size``, ``profile``, ``config``...).
    """

    SOURCE = "<lightning.Trainer>"
    #: Lightning's own logger tree: findings appear beside its messages.
    LOGGER = logging.getLogger("lightning.pytorch.callbacks.lossdoctor")

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._before_validation: dict[str, float | None] = {}
        self._validation_keys: set[str] = set()
        self._last_train_step: int | None = None

    def on_train_batch_end(
        self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        """At the logging cadence, feed the step metrics; stop on a finding at ``stop_on``."""
        step = trainer.global_step
        if step % max(1, trainer.log_every_n_steps) != 0 or step == self._last_train_step:
            return  # off cadence, or another micro-batch of the same optimizer step
        self._last_train_step = step
        metrics: dict[str, Any] = {}
        for name, value in trainer.callback_metrics.items():
            if name in self._validation_keys or name.endswith(EPOCH_SUFFIX):
                continue
            metrics[name.removesuffix(STEP_SUFFIX)] = value
        if not any("loss" in name for name in metrics):
            loss = outputs.get("loss") if isinstance(outputs, Mapping) else outputs
            if loss is not None:
                metrics["loss"] = loss
        if trainer.optimizers and "lr" not in metrics and "learning_rate" not in metrics:
            metrics["lr"] = trainer.optimizers[0].param_groups[0]["lr"]
        self._feed(trainer, metrics)

    def on_validation_start(self, trainer: Any, pl_module: Any) -> None:
        """Remember the metrics before validation (what changes was logged by it)."""
        self._before_validation = {
            name: _number(value) for name, value in trainer.callback_metrics.items()
        }

    def on_validation_end(self, trainer: Any, pl_module: Any) -> None:
        """Feed the metrics the validation run logged (not during the sanity check)."""
        if trainer.sanity_checking:
            return
        metrics = {}
        for name, value in trainer.callback_metrics.items():
            number = _number(value)
            if name in self._validation_keys or _changed(self._before_validation, name, number):
                self._validation_keys.add(name)
                metrics[name.removesuffix(EPOCH_SUFFIX)] = number
        if metrics:
            self._feed(trainer, metrics)

    def _feed(self, trainer: Any, metrics: dict[str, Any]) -> None:
        stop = False
        if trainer.is_global_zero:
            stop = self.core.feed(trainer.global_step, metrics)
        if trainer.world_size > 1:
            stop = bool(trainer.strategy.broadcast(stop, src=0))
        if stop:
            trainer.should_stop = True

    def on_train_end(self, trainer: Any, pl_module: Any) -> None:
        """Judge the whole run and write the report files (rank zero only)."""
        if trainer.is_global_zero:
            folder = self.output_dir or trainer.log_dir or trainer.default_root_dir
            self.core.finish(folder)


def _changed(before: dict[str, float | None], name: str, number: float | None) -> bool:
    """Return True when metric ``name`` is new or holds another value than ``before``."""
    if name not in before:
        return True
    old = before[name]
    if old is None or number is None:
        return old is not number
    return not (old == number or (math.isnan(old) and math.isnan(number)))
