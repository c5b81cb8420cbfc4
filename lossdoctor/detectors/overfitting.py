"""Validation loss rising from its minimum while training loss keeps falling."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from lossdoctor.detectors import Evidence, deferred, register_detector
from lossdoctor.features import SeriesView, rolling_median, spearman
from lossdoctor.robust import median

#: Fewest validation points on which overfitting is judged.
MIN_VAL_POINTS = 4
#: Validation points smoothed over before the minimum is taken (when there are many).
SMOOTH_POINTS = 3
SMOOTH_FROM = 12


@dataclass(frozen=True)
class Overfitting:
    """The best logged validation point, how far validation rose after its smoothed
    minimum, what training did.

    The rise over the noise, its steadiness, what training did after it and the evidence
    are computed when a rule first reads them (see :func:`~lossdoctor.detectors.deferred`):
    a validation loss that did not rise fails every level on ``val_rise_pct`` first."""

    best_step: float
    best_value: float
    smoothed_best_step: float
    smoothed_best_value: float
    smoothed_note: str
    val_rise: float
    val_rise_pct: float
    points_after: int
    after_share: float
    #: The role of the series the evidence names (the validation loss).
    judged: str
    #: What the deferred fields read: the two series, the positions of the smoothed and
    #: of the logged minimum and the validation loss's end level (nats); ``_measured`` is
    #: False when the validation loss is too short to judge (every deferred field NaN, the
    #: evidence empty).
    _train: SeriesView = field(repr=False, compare=False)
    _val: SeriesView = field(repr=False, compare=False)
    _minima: tuple[int, int] = field(repr=False, compare=False)
    _end_level: float = field(repr=False, compare=False)
    _measured: bool = field(repr=False, compare=False)

    @deferred
    def rise_to_noise(self) -> float:
        """Return the rise over the noise of one evaluation (see :func:`_over_noise`)."""
        return _over_noise(self.val_rise, self._val.noise) if self._measured else float("nan")

    @deferred
    def steadiness(self) -> float:
        """Return Spearman's rho of the validation loss from its smoothed minimum (-1..1)."""
        if not self._measured:
            return float("nan")
        best, val = self._minima[0], self._val
        return spearman(val.steps[best:], val.y[best:])

    @deferred
    def _train_after(self) -> tuple[float, float]:
        """Return how much training fell after the smoothed minimum (nats) and the share of
        training steps after the best logged validation step (0-1); NaN when unknown."""
        nan = float("nan")
        train = self._train
        if not self._measured or not (
            train.n >= MIN_VAL_POINTS and train.log_space and train.span > 0
        ):
            return nan, nan
        train_drop = nan
        at_best = train.y[np.searchsorted(train.steps, self.smoothed_best_step, side="right") - 1 :]
        window = max(1, train.n // 20)
        if at_best.shape[0] > window:
            train_drop = median(at_best[:window]) - train.end_level
        wasted = float(np.clip((train.steps[-1] - self.best_step) / train.span, 0.0, 1.0))
        return train_drop, wasted

    @deferred
    def train_drop_after(self) -> float:
        """Return how much training fell after the validation loss's minimum (nats)."""
        return self._train_after[0]

    @deferred
    def wasted_share(self) -> float:
        """Return the share of training steps (0-1) after the best logged validation step."""
        return self._train_after[1]

    @deferred
    def evidence(self) -> Evidence:
        """Return where the rise is: from the best logged validation step to the end, with
        the levels (loss units), the rise in % and the share of training wasted in %."""
        val = self._val
        if not self._measured:
            return Evidence(series=self.judged, column=val.series.column)
        nan = float("nan")
        wasted = self.wasted_share
        return Evidence(
            series=self.judged,
            column=val.series.column,
            start_step=self.best_step,
            end_step=float(val.steps[-1]),
            line=val.series.line_of(int(val.index[self._minima[1]])),
            numbers={
                "best_value": self.best_value,
                "smoothed_best_step": self.smoothed_best_step,
                "smoothed_best_level": self.smoothed_best_value,
                "end_level": val.value_at(self._end_level),
                "last_value": float(val.values[-1]),
                "val_rise_pct": round(100 * (float(np.exp(self.val_rise)) - 1), 1),
                "wasted_pct": round(100 * wasted, 1) if wasted == wasted else nan,
            },
        )


@register_detector("overfitting")
def overfitting(train: SeriesView, val: SeriesView) -> Overfitting:
    """Return the best logged validation step and value (a step at which an evaluation
    was logged: the checkpoint to keep), the step and level (loss units) of the smoothed
    minimum the decision is measured from, a sentence saying so when the two differ, the
    rise of validation's end level over the smoothed minimum (nats; ``val_rise_pct`` in
    %), that rise over the noise of one evaluation (``rise_to_noise``: the robust spread
    of the validation points around their rolling median, nats; infinite on a noiseless
    series), how many validation points follow that minimum and what share of the validation
    span (0-1) they cover, the steadiness of the rise (Spearman's rho, -1..1), how much
    training fell after it (nats) and the share of training steps (0-1) spent after the
    best logged validation step."""
    nan = float("nan")
    role = val.series.role
    if val.n < MIN_VAL_POINTS or not val.log_space or val.span <= 0:
        return Overfitting(
            nan, nan, nan, nan, "", nan, nan, 0, nan, role, train, val, (0, 0), nan, False
        )
    smooth = rolling_median(val.y, SMOOTH_POINTS) if val.n >= SMOOTH_FROM else val.y
    best = int(np.argmin(smooth))
    smoothed_step = float(val.steps[best])
    logged = int(np.argmin(val.values))
    best_step, best_value = float(val.steps[logged]), float(val.values[logged])
    note = ""
    smoothed_value = val.value_at(float(smooth[best]))
    if logged != best:
        note = (
            f" (the rise is measured from the smoothed minimum, {smoothed_value:.4g}"
            f" at step {smoothed_step:g}, a median of {SMOOTH_POINTS} evaluations, so that one"
            " lucky evaluation does not decide)"
        )
    tail = max(1, val.n // 10) if best < val.n - 1 else 1
    end_level = median(val.y[-tail:])
    last_value = float(val.values[-1])
    if not note and (smoothed_value != best_value or tail > 1):
        # the rise is between levels, not between the logged values the message quotes
        low = f"a median of {SMOOTH_POINTS} evaluations" if val.n >= SMOOTH_FROM else "logged"
        end = f"the median of the last {tail} evaluations" if tail > 1 else "logged"
        note = (
            f" (a rise between levels: {smoothed_value:.4g} at the minimum, {low}, and"
            f" {val.value_at(end_level):.4g} at the end, {end}; last logged {last_value:.4g})"
        )
    rise = end_level - float(smooth[best])
    return Overfitting(
        best_step=best_step,
        best_value=best_value,
        smoothed_best_step=smoothed_step,
        smoothed_best_value=smoothed_value,
        smoothed_note=note,
        val_rise=rise,
        val_rise_pct=100 * (float(np.exp(rise)) - 1),
        points_after=val.n - 1 - best,
        after_share=float((val.steps[-1] - smoothed_step) / val.span),
        judged=role,
        _train=train,
        _val=val,
        _minima=(best, logged),
        _end_level=end_level,
        _measured=True,
    )


def _over_noise(rise: float, noise: float) -> float:
    """Return ``rise`` (nats) in units of ``noise`` (infinite, or 0.0, without noise)."""
    if noise > 0:
        return rise / noise
    return float("inf") if rise > 0 else 0.0
