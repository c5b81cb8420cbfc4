"""The learning-rate series itself: zero at the start or throughout, and against the
schedule the run's configuration states (constant where one is configured, a peak far
from the configured one)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lossdoctor.detectors import Evidence, register_detector
from lossdoctor.features import SeriesView
from lossdoctor.model import CONFIGURED_LR, LR_SCHEDULER, WARMUP_RATIO, WARMUP_STEPS

#: Learning rates at or below this are zero (a float32 schedule at its floor is not).
ZERO_LR = 1e-12
#: Schedulers that hold the rate constant (after a warmup): a flat logged rate is theirs.
CONSTANT_SCHEDULERS = frozenset(
    {"constant", "constant_with_warmup", "reduce_lr_on_plateau", "warmuplr", "none"}
)
#: A warmup is visible in the log when it lasts this many times the first logged step.
VISIBLE_WARMUP_FACTOR = 2.0


@dataclass(frozen=True)
class LRSchedule:
    """Zero learning rates at the start of the run or throughout, and the logged rate
    against the configured schedule."""

    points: int
    zero_at_start: int
    zero_share_at_start: float
    all_zero: bool
    peak: float
    first_nonzero_step: float
    #: Relative spread (max - min) / max of the non-zero logged rates (0: constant).
    spread: float
    #: The configuration the log states: the peak learning rate (NaN when unstated), the
    #: scheduler's name ("" when unstated), whether it decays or warms up within the logs.
    config_known: bool
    configured_peak: float
    scheduler: str
    schedule_configured: bool
    peak_to_configured: float
    evidence: Evidence


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return float("nan")


@register_detector("lr_schedule")
def lr_schedule(lr: SeriesView) -> LRSchedule:
    """Return the number of logged learning rates (points), how many of the first ones are
    zero (points, and share 0-1 of all), whether every one is zero, the peak rate, the
    step of the first non-zero rate (NaN when there is none) and the relative spread of
    the non-zero rates (0-1).

    Against the configuration the reader found (series meta: ``configured_lr``,
    ``lr_scheduler``, ``warmup_steps``, ``warmup_ratio``): the configured peak, the
    scheduler's name, whether a schedule is configured (a scheduler that is not constant,
    or a warmup longer than twice the first logged step) and the logged peak as a
    multiple of the configured one (NaN when unstated)."""
    values = np.abs(lr.values)
    steps = lr.steps
    n = lr.n
    zero = values <= ZERO_LR
    leading = int(np.argmax(~zero)) if (~zero).any() else n
    first_nonzero = float(steps[leading]) if leading < n else float("nan")
    nonzero = values[~zero]
    peak = float(values.max()) if n else float("nan")
    spread = float((nonzero.max() - nonzero.min()) / nonzero.max()) if nonzero.size else 0.0
    meta = lr.series.meta
    configured = _number(meta.get(CONFIGURED_LR, ""))
    scheduler = meta.get(LR_SCHEDULER, "")
    warmup = _number(meta.get(WARMUP_STEPS, ""))
    if not warmup > 0 and n:
        warmup = _number(meta.get(WARMUP_RATIO, "")) * float(steps[-1])
    first_step = float(steps[0]) if n else float("nan")
    decays = bool(scheduler) and scheduler not in CONSTANT_SCHEDULERS
    warms = bool(warmup > VISIBLE_WARMUP_FACTOR * max(first_step, 1.0))
    ratio = peak / configured if configured > 0 and n else float("nan")
    numbers: dict[str, float] = {"zero_at_start": leading, "peak_lr": peak if n else 0.0}
    if configured > 0:
        numbers["configured_lr"] = configured
    evidence = Evidence(
        series=lr.series.role,
        column=lr.series.column,
        start_step=float(steps[0]) if leading else None,
        end_step=float(steps[leading - 1]) if leading else None,
        numbers=numbers,
    )
    return LRSchedule(
        points=n,
        zero_at_start=leading,
        zero_share_at_start=leading / n if n else 0.0,
        all_zero=bool(n) and leading == n,
        peak=peak,
        first_nonzero_step=first_nonzero,
        spread=spread,
        config_known=bool(configured > 0 or scheduler or warmup > 0),
        configured_peak=configured,
        scheduler=scheduler or "not stated",
        schedule_configured=decays or warms,
        peak_to_configured=ratio,
        evidence=evidence,
    )
