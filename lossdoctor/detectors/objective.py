"""Objectives that are not a plain likelihood: preference losses (DPO) and RL rewards."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from lossdoctor.detectors import Evidence, register_detector
from lossdoctor.features import SeriesView
from lossdoctor.robust import median

#: ln 2 (nats): the loss of a pairwise preference objective that prefers neither answer.
LN2 = math.log(2.0)
#: Objectives named with ``--objective`` that are pairwise preference losses.
PREFERENCE_OBJECTIVES = frozenset({"dpo", "ipo", "preference", "reward-model"})


@dataclass(frozen=True)
class PreferenceChance:
    """How close a preference loss stays to ln 2 (no preference learned)."""

    applies: bool
    late_level: float
    late_offset: float
    lowest: float
    points: int
    evidence: Evidence


@register_detector("preference_chance")
def preference_chance(
    train: SeriesView,
    preference: SeriesView | None = None,
    *,
    late_share: float = 0.5,
    objective: str | None = None,
) -> PreferenceChance:
    """Return whether the run is a pairwise preference run (``--objective dpo`` or logged
    preference columns such as ``rewards/chosen``), the median loss over its last
    ``late_share`` of points (nats), its distance from ln 2 (nats), and the lowest
    trend level reached (nats)."""
    applies = preference is not None or (objective or "").lower() in PREFERENCE_OBJECTIVES
    nan = float("nan")
    if not applies or train.n == 0:
        empty = Evidence(series=train.series.role, column=train.series.column)
        return PreferenceChance(applies, nan, nan, nan, train.n, empty)
    late = train.values[int(train.n * (1 - late_share)) :]
    level = median(late)
    if train.log_space and train.n >= train.window:
        lowest = float(np.min(np.exp(train.trend)))
    else:
        lowest = float(train.values.min())
    evidence = Evidence(
        series=train.series.role,
        column=train.series.column,
        start_step=float(train.steps[int(train.n * (1 - late_share))]),
        end_step=float(train.steps[-1]),
        numbers={"late_level": level, "ln2": LN2},
    )
    return PreferenceChance(applies, level, abs(level - LN2), lowest, train.n, evidence)


@dataclass(frozen=True)
class RewardTrend:
    """Whether a reinforcement-learning run's reward improves."""

    points: int
    start_level: float
    end_level: float
    gain_sigmas: float
    zero_std_share: float
    evidence: Evidence


@register_detector("reward_trend")
def reward_trend(reward: SeriesView, reward_zero_std: SeriesView | None = None) -> RewardTrend:
    """Return the reward's start and end levels (medians of the first and last 10% of the
    points, in the reward's units), the gain between them in robust deviations of the
    reward's noise (positive = improving), and the median share of prompt groups whose
    rewards all tie over the last half (``frac_reward_zero_std``, 0-1; NaN unlogged)."""
    nan = float("nan")
    n = reward.n
    if n == 0:
        empty = Evidence(series=reward.series.role, column=reward.series.column)
        return RewardTrend(0, nan, nan, nan, nan, empty)
    edge = reward.edge_points()
    start = median(reward.values[:edge])
    end = median(reward.values[-edge:])
    spread = float(np.std(reward.values - reward.trend)) if n >= reward.window else 0.0
    spread = max(spread, abs(start) * 1e-3, 1e-9)
    zero_std = nan
    if reward_zero_std is not None and reward_zero_std.n:
        zero_std = median(reward_zero_std.values[reward_zero_std.n // 2 :])
    evidence = Evidence(
        series=reward.series.role,
        column=reward.series.column,
        start_step=float(reward.steps[0]),
        end_step=float(reward.steps[-1]),
        numbers={"start_level": start, "end_level": end, "zero_std_share": zero_std},
    )
    return RewardTrend(n, start, end, (end - start) / spread, zero_std, evidence)
