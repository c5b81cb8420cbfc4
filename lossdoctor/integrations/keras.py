"""Keras 3 callback (any backend)::

    from lossdoctor.integrations.keras import LossDoctorCallback
    model.fit(x, y, callbacks=[LossDoctorCallback(stop_on="error", output_dir="runs/1")])

After each training batch the batch's loss is fed to a :class:`lossdoctor.Monitor` at the
global batch count (Keras passes the running mean over the epoch in batch logs; the
callback recovers each batch's own value from it); after each epoch the ``val_*``
metrics are fed.  A finding at ``stop_on`` sets ``model.stop_training`` (the epoch stops
after the current batch); at ``on_train_end`` the report files are written into
``output_dir`` (none when it is None: the report stays in ``callback.report``).
Findings go to the ``lossdoctor`` logger.
"""

from __future__ import annotations

import math
from typing import Any

import keras

from lossdoctor.integrations._core import LossDoctorCallbackBase, _number

VAL_PREFIX = "val_"


class LossDoctorCallback(LossDoctorCallbackBase, keras.callbacks.Callback):  # type: ignore[misc]
    """Diagnose the run inside ``model.fit()``; stop it when a finding reaches ``stop_on``
    (``error``, ``warning``, ``info`` or None never to stop).

    Other keyword options are those of ``lossdoctor check`` (``select``, ``ignore``,
    ``vocab_size``, ``classes``, ``profile``, ``config``...).
    """

    SOURCE = "<keras.Model.fit>"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._step = 0
        self._running: dict[str, float] = {}

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        """Start a new running mean."""
        self._running = {}

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        """Feed the batch's own loss (and other metrics); stop on a finding at ``stop_on``."""
        self._step += 1
        metrics: dict[str, float | None] = {}
        for name, value in (logs or {}).items():
            mean = _number(value)
            if mean is None:
                continue
            metrics[name] = _batch_value(mean, self._running.get(name), batch + 1)
            self._running[name] = mean
        self._feed(metrics)

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        """Feed the validation metrics of the epoch."""
        metrics = {k: v for k, v in (logs or {}).items() if k.startswith(VAL_PREFIX)}
        if metrics:
            self._feed(metrics)

    def _feed(self, metrics: dict[str, Any]) -> None:
        if self.core.feed(self._step, metrics) and self.model is not None:
            self.model.stop_training = True

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        """Judge the whole run and write the report files."""
        self.core.finish(self.output_dir)


def _batch_value(mean: float, previous_mean: float | None, count: int) -> float:
    """Return the value of the ``count``-th batch (1-based) of an epoch from the running
    means after it (``mean``) and before it (``previous_mean``)."""
    if previous_mean is None or count <= 1:
        return mean
    if not (math.isfinite(mean) and math.isfinite(previous_mean)):
        return mean if not math.isfinite(mean) else math.nan
    return count * mean - (count - 1) * previous_mean
