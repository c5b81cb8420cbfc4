"""What every callback shares: feed a monitor, log what changed, decide to stop, write the
report files.  No diagnosis happens here: the monitor judges."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from lossdoctor.diagnosis import Report
from lossdoctor.errors import ConfigError
from lossdoctor.live.monitor import reaches
from lossdoctor.monitor import Monitor
from lossdoctor.report import Finding
from lossdoctor.reporters.render import FORMATS

#: Report files a callback writes at the end of training unless told otherwise.
DEFAULT_FORMATS = ("json", "markdown", "html")
STOP_LEVELS = ("error", "warning", "info")
_LOG_LEVEL = {"error": logging.ERROR, "warning": logging.WARNING, "info": logging.INFO}


class CallbackCore:
    """A monitor plus the callback policy: ``stop_on`` (a severity, or None never to
    stop), the report ``formats`` written by :meth:`finish`, and the logger findings go to.
    """

    def __init__(
        self,
        *,
        stop_on: str | None,
        report_formats: Sequence[str],
        logger: logging.Logger,
        options: Mapping[str, Any],
    ) -> None:
        if stop_on is not None and stop_on not in STOP_LEVELS:
            raise ConfigError(f"stop_on: '{stop_on}' is not one of {', '.join(STOP_LEVELS)}")
        if isinstance(report_formats, str):
            report_formats = [report_formats]
        for fmt in report_formats:
            if fmt not in FORMATS:
                raise ConfigError(f"report_formats: unknown format '{fmt}' ({', '.join(FORMATS)})")
        self.monitor = Monitor(**options)
        self.stop_on = stop_on
        self.formats = tuple(report_formats)
        self.logger = logger
        #: The finding that stopped the run, once one did.
        self.stopped_by: Finding | None = None
        #: The step at which the run was stopped.
        self.stopped_at: float | None = None
        #: The final report, once :meth:`finish` ran.
        self.report: Report | None = None
        #: The report files written by :meth:`finish`.
        self.written: list[Path] = []

    def feed(self, step: float, metrics: Mapping[str, Any]) -> bool:
        """Add the metrics logged at ``step``, log the findings that changed, and return
        True when the run should stop (a finding reached ``stop_on``)."""
        values = {name: _number(value) for name, value in metrics.items()}
        changed = self.monitor.add(step, **{k: v for k, v in values.items() if v is not None})
        for finding in changed:
            self.logger.log(
                _LOG_LEVEL.get(finding.severity, logging.INFO),
                "lossdoctor: %s %s %s at step %g: %s",
                finding.severity,
                finding.code,
                finding.rule,
                step,
                finding.message,
            )
        if self.stopped_by is None and self.stop_on is not None:
            trigger = next((f for f in self.monitor.findings if _counts(f, self.stop_on)), None)
            if trigger is not None:
                self.stopped_by, self.stopped_at = trigger, step
                self.logger.error(
                    "lossdoctor: stopping training at step %g: %s %s reached stop_on=%s",
                    step,
                    trigger.code,
                    trigger.rule,
                    self.stop_on,
                )
        return self.stopped_by is not None

    def finish(self, directory: str | os.PathLike[str] | None) -> Report:
        """Judge the whole run, write the report files into ``directory`` (none when it is
        None or no format is asked for) and return the report."""
        self.report = self.monitor.report(finished=True)
        if directory is not None and self.formats:
            self.written = self.report.save(directory, self.formats)
            self.logger.info(
                "lossdoctor: %s; report written to %s",
                self.report.verdict.upper(),
                ", ".join(str(p) for p in self.written),
            )
        return self.report


class LossDoctorCallbackBase:
    """What the framework callbacks share: the constructor, the core, the final report.

    ``stop_on``: a severity (``error``, ``warning``, ``info``) or None never to stop;
    ``report_formats`` are written as ``lossdoctor-report.<ext>`` into ``output_dir``;
    other keyword options are those of ``lossdoctor check`` (``select``, ``ignore``,
    ``vocab_size``, ``classes``, ``profile``, ``config``...).
    """

    #: The name the run gets in the report.
    SOURCE = "<training loop>"
    #: Where findings are logged.
    LOGGER = logging.getLogger("lossdoctor")

    def __init__(
        self,
        *,
        stop_on: str | None = "error",
        report_formats: Sequence[str] = DEFAULT_FORMATS,
        output_dir: str | os.PathLike[str] | None = None,
        **options: Any,
    ) -> None:
        super().__init__()
        self.core = CallbackCore(
            stop_on=stop_on,
            report_formats=report_formats,
            logger=self.LOGGER,
            options={"source": self.SOURCE, **options},
        )
        self.output_dir = output_dir

    @property
    def report(self) -> Report | None:
        """Return the final report (None before the end of training)."""
        return self.core.report


def _counts(finding: Finding, level: str) -> bool:
    return not finding.superseded_by and reaches(finding, level)


def _number(value: Any) -> float | None:
    """Return a metric as a float (tensors and arrays of one element too), None otherwise."""
    try:
        if hasattr(value, "item"):
            value = value.item()
        return float(value)
    except (TypeError, ValueError, RuntimeError):
        return None
