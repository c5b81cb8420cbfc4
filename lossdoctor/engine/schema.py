"""Rules as values: what a rule file in ``rules/`` holds once loaded and checked."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from lossdoctor.engine.conditions import Condition
from lossdoctor.engine.requires import Requires
from lossdoctor.report import SEVERITY_RANK

Severity = Literal["info", "warning", "error"]
SEVERITIES: tuple[Severity, ...] = ("info", "warning", "error")


@dataclass(frozen=True)
class Level:
    """One severity level of a rule: it applies when every condition holds."""

    severity: Severity
    when: tuple[Condition, ...]
    message: str
    #: False when a finding at this level explains nothing (the rule's ``supersedes``
    #: does not apply), e.g. a NaN the run recovered from does not explain a divergence.
    explains: bool = True
    #: False when a finding at this level says why a shape is no problem: it names no
    #: cause and recommends no fix.
    advice: bool = True


@dataclass(frozen=True)
class Fix:
    """A recommended fix: a short imperative title and why it helps."""

    title: str
    why: str


@dataclass(frozen=True)
class Cause:
    """A likely cause of a finding: ranked first when its conditions hold (the evidence)."""

    title: str
    why: str
    when: tuple[Condition, ...] = ()
    evidence: str = ""
    #: Titles of the rule's fixes that address this cause (listed first when it is likely).
    fixes: tuple[str, ...] = ()
    #: The signal beside the measured series whose evidence the conditions read: a role
    #: of the rule's inputs (``grad_norm``, ``lr``), ``log`` (a fact the log states, e.g.
    #: fp16) or ``epoch`` (the epoch boundaries); "" for the series' own shape.  Likely
    #: causes backed by a signal rank first.
    signal: str = ""
    #: Conditions that rule the cause out: when they all hold, what the log shows
    #: contradicts it (a logged peak learning rate of 0.3 is no rate "far too low"), so
    #: the cause is not named and a fix only it calls for is not given.
    unless: tuple[Condition, ...] = ()


@dataclass(frozen=True)
class Docs:
    """A rule's documentation sections."""

    what: str
    why: str
    problems: str = ""
    references: tuple[str, ...] = ()


@dataclass(frozen=True)
class Rule:
    """A loaded rule: identity, the detector it binds, thresholds, levels, fixes, docs."""

    code: str
    name: str
    group: str
    summary: str
    detector: str
    series: tuple[str, ...]
    inputs: tuple[str, ...]
    params: dict[str, Any]
    thresholds: dict[str, float | bool]
    levels: tuple[Level, ...]
    fixes: tuple[Fix, ...]
    docs: Docs
    supersedes: tuple[str, ...] = ()
    causes: tuple[Cause, ...] = ()
    #: The evidence the rule needs before it may judge a run in progress.
    requires: Requires = field(default_factory=Requires)
    path: str = ""
    #: "compare" or "watch" when the findings come from a comparison or a live monitor
    #: (the engine does not run the rule on a run alone); "" for every other rule.
    emitted_by: str = ""
    #: True for good news (smooth-decline): its findings never fail a run.
    positive: bool = False
    extra: dict[str, Any] = field(default_factory=dict)
    #: True when the rule is meaningful on the loss of a reinforcement-learning run too
    #: (GRPO/PPO losses are not progress signals: other loss rules skip those runs).
    rl_loss: bool = False
    #: What each series input of the rule's detector is ("required", "optional" or
    #: "beside": :func:`~lossdoctor.detectors.input_kinds`), noted when the rule is loaded:
    #: the engine tells which rules a run lacks the series for without importing their
    #: detectors.  None: asked of the detector.
    input_kinds: tuple[str, ...] | None = None

    @property
    def default_severity(self) -> str:
        """Return the severities this rule can report, most severe first, joined by ' / '."""
        seen = sorted({lv.severity for lv in self.levels}, key=lambda s: -SEVERITY_RANK[s])
        return " / ".join(seen)
