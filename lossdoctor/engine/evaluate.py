"""Apply rules to a run: measure with each rule's detector, pick the first level that holds."""

from __future__ import annotations

import itertools
import math
import re
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from lossdoctor.decimate import minmax_decimate
from lossdoctor.detectors import DETECTORS, DetectorSpec, Evidence, input_kinds
from lossdoctor.engine.conditions import Condition
from lossdoctor.engine.requires import waiting
from lossdoctor.engine.schema import Cause, Rule
from lossdoctor.features import SeriesView
from lossdoctor.model import (
    HIGHER_IS_BETTER_ROLES,
    LOSS_PARTS,
    LOSS_ROLES,
    NO_BEST_ROLES,
    PREFERENCE,
    REWARD,
    TRAIN,
    VAL,
    Run,
    Series,
)
from lossdoctor.report import SEVERITY_RANK, Finding, RunReport, SeriesSummary
from lossdoctor.reporters.sparkline import sparkline
from lossdoctor.sampling import sample_stride
from lossdoctor.wording import singular_counts

#: Losses whose best value is below this are shown with perplexity e^loss.
PERPLEXITY_MAX_LOSS = 20.0


class _SafeFormatter(string.Formatter):
    """A formatter that only substitutes plain names (no attribute or index access)."""

    def get_field(self, field_name: str, args: Sequence[Any], kwargs: Mapping[str, Any]) -> Any:
        del args  # positional fields are not used
        if not field_name.isidentifier():
            raise KeyError(field_name)
        return kwargs[field_name], field_name

    def format_field(self, value: Any, format_spec: str) -> Any:
        if isinstance(value, float) and not math.isfinite(value):
            return str(value)
        if isinstance(value, float) and format_spec == "g" and value.is_integer():
            return str(int(value))  # step 6124990, not 6.12499e+06
        try:
            return super().format_field(value, format_spec)
        except (ValueError, TypeError):
            return str(value)


_FORMATTER = _SafeFormatter()


def _render(template: str, values: dict[str, Any]) -> str:
    try:
        return singular_counts(_FORMATTER.vformat(template, (), values))
    except (KeyError, ValueError, IndexError):
        return template


#: "step(s)" as a point of the x axis; after these words it is the optimizer's step
#: ("a skipped fp16 step", "overflow-skipped steps"), which an epoch axis does not rename.
_STEP_WORD = re.compile(
    r"(?<!\bfp16 )(?<!\bskipped )(?<!-skipped )(?<!\boverflowing )(?<!\boptimizer )\bstep(s?)\b"
)


def in_x_units(text: str, x_kind: str) -> str:
    """Return ``text`` with "step(s)" said as "epoch(s)" when the series' x is the epoch
    (the optimizer's step, "a skipped fp16 step", is left as it is)."""
    return _STEP_WORD.sub(r"epoch\1", text) if x_kind == "epoch" else text


#: Objectives named with ``--objective`` whose loss is not a progress signal.
RL_OBJECTIVES = frozenset({"grpo", "ppo", "rl", "rloo", "reinforce"})
#: Objectives whose loss is no cross-entropy of the next token: e^loss is no perplexity.
NOT_CROSS_ENTROPY_OBJECTIVES = RL_OBJECTIVES | {"dpo", "ipo", "reward-model"}
#: Words in a loss column's name that say it is no cross-entropy over a vocabulary (a
#: regression, box, mask or divergence loss).
NOT_CROSS_ENTROPY_WORDS = frozenset(
    {"mse", "mae", "l1", "l2", "huber", "box", "bbox", "dfl", "iou", "giou", "dice", "mask",
     "seg", "rpn", "kl", "focal", "obj"}
)  # fmt: skip


def is_cross_entropy(series: Series, run: Run, context: Mapping[str, Any] | None) -> bool:
    """Return True when ``series`` may be a language model's cross-entropy loss (in nats),
    whose e^loss is a perplexity: a training or validation loss that is no sum of logged
    parts (a detector's box + cls + dfl), whose column names no other kind of loss, in a run
    that optimises no preference or RL objective (named, or told by its logged reward or
    preference margin)."""
    if series.role not in LOSS_ROLES or series.meta.get(LOSS_PARTS):
        return False
    objective = str((context or {}).get("objective") or "").lower()
    if objective in NOT_CROSS_ENTROPY_OBJECTIVES or REWARD in run.series:
        return False
    if PREFERENCE in run.series:
        return False
    words = set(re.split(r"[^a-z0-9]+", series.column.lower()))
    return not words & NOT_CROSS_ENTROPY_WORDS


def summarise(series: Series, view: SeriesView, *, cross_entropy: bool = False) -> SeriesSummary:
    """Return the at-a-glance summary of a series (first/best/last in the series' units,
    over every point, not only the judged ones).  "Best" is the lowest value of a loss, the
    highest of a reward or preference margin; a learning rate or gradient norm has no
    better direction: its summary also holds its peak (highest value) and step, which the
    reports show instead of a "best".  ``cross_entropy``: the loss may be a language
    model's cross-entropy (:func:`is_cross_entropy`), so its perplexity is shown."""
    nan = float("nan")
    values = series.values
    peak = peak_step = nan
    if view.n:
        every = view.all_finite
        lowest = values if every else np.where(view.finite_mask, values, np.inf)
        highest = values if every else np.where(view.finite_mask, values, -np.inf)
        best_i = int(
            np.argmax(highest) if series.role in HIGHER_IS_BETTER_ROLES else np.argmin(lowest)
        )
        first_i = int(view.index[0])
        first, best, last = float(values[first_i]), float(values[best_i]), float(values[-1])
        best_step = float(series.steps[best_i])
        if series.role in NO_BEST_ROLES:
            peak_i = int(np.argmax(highest))
            peak, peak_step = float(values[peak_i]), float(series.steps[peak_i])
    else:
        first = best = best_step = nan
        last = float(values[-1]) if len(series) else nan
    return SeriesSummary(
        role=series.role,
        column=series.column,
        x_kind=series.x_kind,
        points=len(series),
        non_finite=len(series) - view.n_finite,
        first_step=float(series.steps[0]) if len(series) else nan,
        last_step=float(series.steps[-1]) if len(series) else nan,
        first=first,
        best=best,
        best_step=best_step,
        last=last,
        perplexity=cross_entropy and view.log_space and best < PERPLEXITY_MAX_LOSS,
        sparkline=sparkline(
            series.values, log=view.log_space, finite=view.all_finite or view.finite_mask
        ),
        peak=peak,
        peak_step=peak_step,
    )


def _ranked_causes(
    rule: Rule, measured: Any, values: dict[str, Any]
) -> tuple[list[dict[str, Any]], list[Cause], list[Cause]]:
    """Return the rule's causes as report entries, ranked: likely causes whose evidence comes
    from a signal beside the series (the gradient norm at the spike, fp16 in the log) first,
    then the other likely ones, then the rest, each group in the rule file's order; the
    likely causes in that order (their fixes are listed first); and the causes left out: a
    cause backed by a signal whose evidence does not hold (it is not a candidate without
    it) and a cause the log rules out (its ``unless`` conditions all hold)."""
    rows: list[tuple[int, dict[str, Any], Cause]] = []
    left_out: list[Cause] = []
    for cause in rule.causes:
        if cause.unless and _all_hold(cause.unless, measured, rule):
            left_out.append(cause)
            continue
        likely = bool(cause.when) and _all_hold(cause.when, measured, rule)
        if cause.signal and not likely:
            left_out.append(cause)
            continue  # a cause resting on a signal's evidence is not named without it
        entry: dict[str, Any] = {"cause": cause.title, "why": cause.why, "likely": likely}
        if likely and cause.evidence:
            entry["evidence"] = _render(cause.evidence, values)
        if likely and cause.signal:
            entry["signal"] = cause.signal
        rank = (0 if cause.signal else 1) if likely else 2
        rows.append((rank, entry, cause))
    rows.sort(key=lambda row: row[0])
    named = [entry for _, entry, _ in rows]
    return named, [cause for rank, _, cause in rows if rank < 2], left_out


def _unsupported_fixes(rule: Rule, left_out: list[Cause]) -> set[str]:
    """Return the titles of fixes named only by causes left out (e.g. "use bf16" for spikes
    in a run with no sign of fp16, "raise the learning rate" at a logged rate of 0.3)."""
    named = {title for cause in left_out for title in cause.fixes}
    kept = {title for cause in rule.causes if cause not in left_out for title in cause.fixes}
    return named - kept


def _all_hold(conditions: tuple[Condition, ...], measured: Any, rule: Rule) -> bool:
    for condition in conditions:
        if not condition.holds(getattr(measured, condition.field), rule.thresholds):
            return False
    return True


def _finding(rule: Rule, measured: Any, role: str, x_kind: str = "step") -> Finding | None:
    for level in rule.levels:
        if _all_hold(level.when, measured, rule):
            evidence: Evidence = measured.evidence
            values: dict[str, Any] = {
                name: getattr(measured, name) for name in DETECTORS[rule.detector].fields
            }
            values.update(rule.thresholds)
            values.update(series=evidence.series, column=evidence.column)
            values.update(start_step=evidence.start_step, end_step=evidence.end_step)
            ev = evidence.to_dict()
            # keyed by the threshold's own name (the configuration key), a literal by its field
            ev["thresholds"] = {
                c.operand if isinstance(c.operand, str) else c.field: c.value(rule.thresholds)
                for c in level.when
            }
            causes, ranked, left_out = _ranked_causes(rule, measured, values)
            first = [title for cause in ranked for title in cause.fixes]
            order = {title: i for i, title in enumerate(dict.fromkeys(first))}
            unsupported = _unsupported_fixes(rule, left_out)
            fixes = sorted(
                (f for f in rule.fixes if f.title not in unsupported),
                key=lambda f: order.get(f.title, len(order)),
            )
            if not level.advice:
                causes, fixes = [], []
            return Finding(
                causes=tuple(causes),
                rule=rule.name,
                code=rule.code,
                severity=level.severity,
                message=in_x_units(_render(level.message, values), x_kind),
                series=role,
                evidence=ev,
                fixes=tuple({"title": f.title, "why": f.why} for f in fixes),
                positive=rule.positive,
                explains=level.explains,
            )
    return None


def is_rl_run(run: Run, context: Mapping[str, Any] | None) -> bool:
    """Return True when the run optimises a reinforcement-learning objective: named with
    ``--objective`` (grpo, ppo, ...), or, without one, a logged reward series."""
    objective = str((context or {}).get("objective") or "").lower()
    if objective:
        return objective in RL_OBJECTIVES
    return REWARD in run.series


def _context_with_logged_vocab(
    run: Run, context: Mapping[str, Any] | None
) -> tuple[Mapping[str, Any] | None, str]:
    """Return the context with ``chance_loss`` = ln(V) for a vocabulary size V the log
    states (when ``--vocab-size``/``--classes`` did not give one), and a note saying so."""
    train = run.get(TRAIN)
    stated = train.meta.get("vocab_size") if train is not None else None
    if not stated or (context and context.get("chance_loss")):
        return context, ""
    note = f"vocabulary size {stated} read from the log: chance level ln({stated})"
    return {**(context or {}), "chance_loss": math.log(int(stated))}, note


@dataclass(frozen=True)
class _Plan:
    """How :func:`evaluate` applies a rule, worked out once (not on every run): the roles
    the rule judges and reads, as written (``roles[False]``) and for a log holding only a
    validation loss (``roles[True]``).  Made from the rule's ``input_kinds``, without its
    detector: a rule a run lacks the series for does not import it."""

    roles: tuple[tuple[tuple[str, ...], tuple[str, ...]], tuple[tuple[str, ...], tuple[str, ...]]]
    #: The input roles the detector cannot do without, as ``roles``' inputs are.
    required: tuple[tuple[str, ...], tuple[str, ...]]
    #: The rule reads the training loss (skipped on a reinforcement-learning run).
    reads_train: bool


#: How :func:`evaluate` measures with a rule's detector, worked out once: the detector's
#: tunables with the rule's own, and the measurement's cache key: one number per detector
#: and tunables (a tuple of the tunables would be hashed again on every run).  A tuple,
#: not a class: a class costs more at start-up than a check of a small log saves with it.
_Measuring = tuple[dict[str, Any], int]

#: id(rule) -> (rule, its input kinds, plan); emptied when it grows past _MAX_PLANS.
_PLANS: dict[int, tuple[Rule, tuple[str, ...], _Plan]] = {}
#: id(rule) -> (rule, its detector, how it measures); emptied as _PLANS is.
_MEASURING: dict[int, tuple[Rule, DetectorSpec, _Measuring]] = {}
_MAX_PLANS = 4096
#: (detector, its tunables' items) -> the number that stands for them in cache keys
#: (numbers are never given twice, so a key emptied out cannot meet an old plan's).
_KEYS: dict[tuple[Any, ...], int] = {}
_NUMBERS = itertools.count()


def _key_number(key: tuple[Any, ...]) -> int:
    """Return the number that stands for a measurement's ``key`` (detector, tunables)."""
    number = _KEYS.get(key)
    if number is None:
        if len(_KEYS) >= _MAX_PLANS:
            _KEYS.clear()
        number = _KEYS[key] = next(_NUMBERS)
    return number


def _required(inputs: tuple[str, ...], kinds: tuple[str, ...]) -> tuple[str, ...]:
    """Return the roles among a rule's ``inputs`` that its detector cannot do without
    (``kinds``: what each of the detector's inputs is, see ``Rule.input_kinds``)."""
    return tuple(role for role, kind in zip(inputs, kinds, strict=False) if kind == "required")


def _plan(rule: Rule) -> _Plan:
    """Return the plan of ``rule`` (made once, then kept)."""
    kinds = rule.input_kinds
    if kinds is None:  # a rule made without the loader: its detector says
        kinds = input_kinds(DETECTORS[rule.detector])
    kept = _PLANS.get(id(rule))
    if kept is not None and kept[0] is rule and kept[1] == kinds:
        return kept[2]
    beside = frozenset(i for i, kind in enumerate(kinds) if kind == "beside")
    roles = ((rule.series, rule.inputs), (_lone_val(rule.series), _lone_val(rule.inputs, beside)))
    plan = _Plan(
        roles=roles,
        required=(_required(roles[0][1], kinds), _required(roles[1][1], kinds)),
        reads_train=TRAIN in (rule.series or rule.inputs),
    )
    if len(_PLANS) >= _MAX_PLANS:
        _PLANS.clear()
        _MEASURING.clear()
    _PLANS[id(rule)] = (rule, kinds, plan)
    return plan


def _measuring(rule: Rule, spec: DetectorSpec) -> _Measuring:
    """Return how ``rule`` measures with ``spec``, its detector (made once, then kept)."""
    kept = _MEASURING.get(id(rule))
    if kept is not None and kept[0] is rule and kept[1] is spec:
        return kept[2]
    params = {**spec.params, **rule.params}
    how = (params, _key_number((spec.name, *params.items())))
    if len(_MEASURING) >= _MAX_PLANS:
        _MEASURING.clear()
    _MEASURING[id(rule)] = (rule, spec, how)
    return how


def _lone_val(roles: tuple[str, ...], beside: frozenset[int] = frozenset()) -> tuple[str, ...]:
    """Return the roles a rule judges in a log holding only a validation loss: its shape is
    judged by the training-loss rules (not those that compare the two; a rule that reads a
    validation loss only as evidence beside the training loss, at a position in
    ``beside``, judges without it)."""
    if VAL in roles and roles.index(VAL) not in beside:
        return roles
    return tuple(VAL if role == TRAIN else "" if role == VAL else role for role in roles)


def evaluate(
    run: Run,
    rules: Sequence[Rule],
    context: Mapping[str, Any] | None = None,
    *,
    curves: bool = True,
    partial: bool = False,
) -> RunReport:
    """Return the report of ``run`` judged by ``rules``: findings in rule order, supersession
    applied, series summaries, the reader's notes and (with ``curves``) the decimated
    curves charts draw.

    With ``partial`` the run is still in progress: a rule judges only once it has the
    evidence its ``[requires]`` table names, else it is listed in ``skipped`` as waiting."""
    views = {role: SeriesView(series) for role, series in run.series.items()}
    findings: list[Finding] = []
    checked: list[tuple[str, str]] = []
    skipped: list[tuple[str, str, str]] = []
    lone_val = TRAIN not in views and VAL in views
    rl_run = is_rl_run(run, context)
    context, vocab_note = _context_with_logged_vocab(run, context)
    measured_by: dict[tuple[Any, ...], Any] = {}

    def measure(spec: DetectorSpec, how: _Measuring, roles: tuple[str, ...]) -> Any:
        # rules that share a detector, its inputs and its tunables share one measurement
        # (a detector is a pure function of them)
        params, number = how
        key: tuple[Any, ...] = (number, roles)
        if spec.context and context:
            extra = {k: context[k] for k in spec.context if k in context}
            params, key = {**params, **extra}, (*key, *extra.items())
        if key not in measured_by:
            args = [views.get(role) for role in roles]
            measured_by[key] = (spec.raw or spec.func)(*args, **params)
        return measured_by[key]

    # overflow to inf and 0/0 to NaN are answers in detectors, not events to warn about:
    # the error state is set once for every detector of the run
    with np.errstate(all="ignore"):
        for rule in rules:
            if rule.emitted_by:
                continue  # made by a comparison or a live monitor, not by one run alone
            plan = _plan(rule)
            if rl_run and not rule.rl_loss and plan.reads_train:
                skipped.append((rule.code, rule.name, "RL run: the loss is not a progress signal"))
                continue
            series_roles, input_roles = plan.roles[lone_val]
            needed = [role for role in plan.required[lone_val] if role not in views]
            if (series_roles and not any(r in views for r in series_roles)) or needed:
                missing = ", ".join(needed or series_roles)
                skipped.append((rule.code, rule.name, f"no {missing} series"))
                continue
            ready = [r for r in series_roles or input_roles[:1] if r in views] if partial else []
            if ready:
                waits = {r: waiting(rule.requires, views[r], views.get("lr")) for r in ready}
                ready = [r for r in ready if waits[r] is None]
                if not ready:
                    skipped.append((rule.code, rule.name, next(iter(waits.values())) or ""))
                    continue
            checked.append((rule.code, rule.name))
            spec = DETECTORS[rule.detector]  # its module imported by the first rule using it
            how = _measuring(rule, spec)
            if series_roles:
                for role in ready if partial else series_roles:
                    if role in views:
                        measured = measure(spec, how, (role,))
                        found = _finding(rule, measured, role, views[role].series.x_kind)
                        if found:
                            findings.append(found)
                continue
            # every input the detector cannot do without is in ``views`` (``needed`` above)
            measured = measure(spec, how, input_roles[: len(spec.inputs)])
            # a measurement whose evidence is deferred names its series in ``judged``
            # (reading ``evidence`` would build it on a run where no level holds)
            judged = getattr(measured, "judged", None)
            role = (measured.evidence.series if judged is None else judged) or input_roles[0]
            x_kind = views[role].series.x_kind if role in views else "step"
            found = _finding(rule, measured, role, x_kind)
            if found:
                findings.append(found)
    findings = _apply_supersession(findings, rules)
    notes = list(run.notes)
    if partial:
        n = sum(1 for _, _, why in skipped if why.startswith(("waiting", "judged on")))
        verb = "rule waits" if n == 1 else "rules wait"
        notes.append(
            f"judged as a run in progress: {n} {verb} for more evidence or for the end of the run"
        )
    if vocab_note:
        notes.append(vocab_note)
    if rl_run:
        notes.append(
            "reinforcement-learning run (a reward is logged): the loss-curve rules are not "
            "applied to its loss, the reward is judged instead"
        )
    if VAL in views and TRAIN not in views:
        notes.append(
            "only a validation loss is in this log: its shape is judged, train/validation "
            "rules cannot be (judge both together with: lossdoctor check --merge TRAIN_LOG "
            "VAL_LOG)"
        )
    for role, view in views.items():
        if view.sampled:
            stride = sample_stride(view.n_finite, view.max_points)
            notes.append(
                f"{role}: judged on {view.n:,} of its {view.n_finite:,} points (one per run of "
                f"{stride} consecutive points, every outlier kept); counts of bad values cover "
                "every point"
            )
    return RunReport(
        source=run.source,
        group=run.group,
        reader=run.reader,
        findings=findings,
        series={
            role: summarise(s, views[role], cross_entropy=is_cross_entropy(s, run, context))
            for role, s in run.series.items()
        },
        columns=run.columns,
        notes=notes,
        checked=checked,
        skipped=skipped,
        curves={role: _curve(s) for role, s in run.series.items()} if curves else {},
    )


#: Buckets of the decimated curves kept for drawing (two points each at the most).
CURVE_BUCKETS = 2000


def _curve(series: Series) -> tuple[list[float], list[float]]:
    steps, values = minmax_decimate(series.steps, series.values, CURVE_BUCKETS)
    return steps.tolist(), values.tolist()


def _apply_supersession(findings: list[Finding], rules: Sequence[Rule]) -> list[Finding]:
    """Return findings with ``superseded_by`` set where a problem finding explains another;
    a positive finding (good news) that a problem explains is dropped."""
    by_name = {r.name: r for r in rules}
    explains: dict[tuple[str, str], Finding] = {}
    for f in findings:
        if f.severity == "info" or not f.explains:
            continue
        for other in by_name[f.rule].supersedes:
            explains.setdefault((other, f.series), f)
    out = []
    for f in findings:
        cause = explains.get((f.rule, f.series))
        # a problem explains another only when it is at least as severe
        if (
            cause
            and cause.rule != f.rule
            and SEVERITY_RANK[cause.severity] >= SEVERITY_RANK[f.severity]
        ):
            if by_name[f.rule].positive:
                continue  # good news a problem explains is not true: it is not reported
            by = cause.rule
            f = Finding(**{**f.__dict__, "superseded_by": by})
        out.append(f)
    return out
