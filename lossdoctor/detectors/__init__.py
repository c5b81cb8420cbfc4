"""Detectors: pure functions from series views to measurements with evidence.

A detector is registered with :func:`register_detector`.  Its positional
parameters are the series roles it reads (``train``, ``val``); its keyword-only
parameters are tunables that rules may set; it returns a frozen dataclass whose
numeric and boolean fields rules compare against thresholds.  Detectors do no
I/O, never print, and work on whole numpy arrays.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import inspect
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np

from lossdoctor.features import SeriesView


@dataclass(frozen=True)
class Evidence:
    """Where a measurement points: the series, a step range, the source line, numbers."""

    series: str
    column: str
    start_step: float | None = None
    end_step: float | None = None
    line: int | None = None
    numbers: dict[str, float] = field(default_factory=dict)
    #: (step, value) of every event (e.g. each spike), for charts; at most MAX_MARKS.
    marks: tuple[tuple[float, float], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """Return the evidence as a JSON-ready dict."""
        out: dict[str, Any] = {"series": self.series, "column": self.column}
        if self.start_step is not None:
            out["start_step"] = _plain(self.start_step)
        if self.end_step is not None:
            out["end_step"] = _plain(self.end_step)
        if self.line is not None:
            out["line"] = self.line
        out.update({k: _plain(v) for k, v in self.numbers.items()})
        if self.marks:
            out["marks"] = [[_plain(s), _plain(v)] for s, v in self.marks[:MAX_MARKS]]
        return out


_T = TypeVar("_T")


def deferred(func: Callable[[Any], _T]) -> functools.cached_property[_T]:
    """Return a measurement field computed when a rule first reads it, then kept: ``func``
    as a :class:`functools.cached_property` run under the error state a detector runs in
    (overflow to inf and 0/0 to NaN are answers).  A detector's result (a frozen
    dataclass) declares its costly fields so, and keeps what they need in fields whose names
    start with ``_``: a run on which a rule's conditions fail before reading such a field
    never computes it, and every number read is the same as if computed at once."""

    @functools.wraps(func)
    def quiet(self: Any) -> _T:
        with np.errstate(all="ignore"):
            return func(self)

    return functools.cached_property(quiet)


def measurement_fields(result_type: type) -> tuple[str, ...]:
    """Return the names of the fields a rule may read in a detector's ``result_type``: its
    dataclass fields and its :func:`deferred` fields, but ``evidence``, ``judged`` and the
    private ones (``_``)."""
    names = [f.name for f in dataclasses.fields(result_type)]
    names += [
        name
        for klass in reversed(result_type.__mro__)
        for name, attr in vars(klass).items()
        if isinstance(attr, functools.cached_property)
    ]
    return tuple(dict.fromkeys(n for n in names if n not in ("evidence", "judged") and n[0] != "_"))


def span_evidence(
    series: SeriesView, numbers: dict[str, float], *, role: str | None = None
) -> Evidence:
    """Return evidence spanning the whole of ``series`` (its first to its last step) with
    ``numbers``, naming ``role`` (the series' own role when None)."""
    return Evidence(
        series=series.series.role if role is None else role,
        column=series.series.column,
        start_step=float(series.steps[0]),
        end_step=float(series.steps[-1]),
        numbers=numbers,
    )


def known(**numbers: float) -> dict[str, float]:
    """Return the evidence numbers that are known: a context a log may not give (the chance
    loss without a vocabulary size, the peak learning rate without a logged rate) is NaN
    when unknown and is left out rather than shown as ``nan``."""
    return {name: value for name, value in numbers.items() if value == value}


#: Events listed in an evidence's ``marks`` at the most.
MAX_MARKS = 50


def _plain(value: float) -> float | int | str:
    """Return ``value`` as an int when whole, a float otherwise, a string when not finite."""
    if value != value or value in (float("inf"), float("-inf")):
        return str(value)
    return int(value) if float(value).is_integer() else round(float(value), 6)


@dataclass(frozen=True)
class DetectorSpec:
    """A registered detector: the function, the roles it reads, its tunables and fields."""

    name: str
    func: Callable[..., Any]
    inputs: tuple[str, ...]
    optional: frozenset[str]
    context: frozenset[str]
    params: dict[str, Any]
    fields: tuple[str, ...]
    #: Per tunable: (type, lowest, highest) a rule or configuration may set.
    bounds: dict[str, tuple[type, float, float]] = field(default_factory=dict)
    #: Optional inputs read only as evidence beside the judged series (a validation loss
    #: beside the training loss): a log holding only that role judges without them.
    beside: frozenset[str] = frozenset()
    #: The function as written, without ``func``'s floating-point error state: for a caller
    #: that sets that state once around many calls (:func:`~lossdoctor.engine.evaluate`).
    raw: Callable[..., Any] | None = None

    def param_problem(self, key: str, value: object) -> str | None:
        """Return why ``value`` cannot be tunable ``key`` (wrong type, out of range), or None."""
        kind, low, high = self.bounds.get(key, (float, 0.0, DEFAULT_PARAM_MAX))
        if isinstance(value, bool) or not isinstance(value, int | float):
            return f"expected {'a whole number' if kind is int else 'a number'}"
        if kind is int and not isinstance(value, int):
            return "expected a whole number"
        if not low <= value <= high:
            return f"expected a number from {low:g} to {high:g}"
        return None


#: The module of this package that registers each built-in detector.  A detector's
#: module is imported when a rule first measures with it (its measurement classes cost
#: most of its import): a check imports only the detectors of the rules it applies.
BUILTIN: dict[str, str] = {
    "baseline_regression": "external",
    "coverage": "coverage",
    "decline": "decline",
    "divergence": "divergence",
    "epoch_pattern": "epochs",
    "flatline": "flatline",
    "grad_nonfinite": "gradnorm",
    "grad_norm_spikes": "gradnorm",
    "initial_loss": "initial",
    "level_shift": "levelshift",
    "loss_band": "initial",
    "loss_reset": "reset",
    "lr_schedule": "schedule",
    "masked_non_finite": "masked",
    "negative": "negative",
    "non_finite": "nonfinite",
    "oscillation": "oscillation",
    "overfitting": "overfitting",
    "plateau": "plateau",
    "preference_chance": "objective",
    "provenance": "provenance",
    "resume_jump": "resume",
    "reward_trend": "objective",
    "spikes": "spikes",
    "stall": "external",
    "zero_loss": "zeroloss",
}


class DetectorRegistry(dict[str, DetectorSpec]):
    """The registered detectors by name.  Looking up a built-in detector that is not
    registered yet (``registry[name]``) imports its module (:data:`BUILTIN`) first;
    ``in``, ``get`` and iteration see only the detectors registered so far."""

    def __missing__(self, name: str) -> DetectorSpec:
        module = BUILTIN.get(name)
        if module is None:
            raise KeyError(name)
        importlib.import_module(f"{__name__}.{module}")
        spec = self.get(name)
        if spec is None:
            raise KeyError(name)
        return spec


DETECTORS: dict[str, DetectorSpec] = DetectorRegistry()

#: Keyword parameters filled from the run's context (command-line facts), not by rules:
#: ``chance_loss`` (nats, ln of the vocabulary or class count), ``profile`` and
#: ``objective`` (what the loss optimises: ``dpo``, ``grpo``, ...; None = a likelihood).
CONTEXT_PARAMS = frozenset({"chance_loss", "profile", "objective"})
#: The largest value a tunable may take unless its detector says otherwise.
DEFAULT_PARAM_MAX = 1e6


def register_detector(
    name: str,
    *,
    ranges: dict[str, tuple[float, float]] | None = None,
    beside: tuple[str, ...] = (),
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Return a decorator that registers a detector under ``name``; ``ranges`` gives the
    (lowest, highest) value of tunables that may not take any value from 0 to
    :data:`DEFAULT_PARAM_MAX`; ``beside`` names optional inputs read only as evidence
    beside the judged series (see :attr:`DetectorSpec.beside`)."""

    def wrap(func: Callable[..., Any]) -> Callable[..., Any]:
        sig = inspect.signature(func)
        inputs = tuple(p.name for p in sig.parameters.values() if p.kind is p.POSITIONAL_OR_KEYWORD)
        keyword = [p for p in sig.parameters.values() if p.kind is p.KEYWORD_ONLY]
        context = frozenset(p.name for p in keyword if p.name in CONTEXT_PARAMS)
        params = {p.name: p.default for p in keyword if p.name not in CONTEXT_PARAMS}
        annotations = inspect.get_annotations(func, eval_str=True)
        result_type = annotations["return"]
        optional = frozenset(
            name for name in inputs if type(None) in typing.get_args(annotations.get(name))
        )
        fields = measurement_fields(result_type)
        bounds: dict[str, tuple[type, float, float]] = {}
        for key in params:
            low, high = (ranges or {}).get(key, (0.0, DEFAULT_PARAM_MAX))
            bounds[key] = (int if annotations.get(key) is int else float, low, high)

        @functools.wraps(func)
        def quiet(*args: Any, **kwargs: Any) -> Any:
            # overflow to inf and 0/0 to NaN are answers here, not events to warn about
            with np.errstate(all="ignore"):
                return func(*args, **kwargs)

        DETECTORS[name] = DetectorSpec(
            name,
            quiet,
            inputs,
            optional,
            context,
            params,
            fields,
            bounds,
            frozenset(beside),
            raw=func,
        )
        return quiet

    return wrap


def measure(name: str, views: list[SeriesView], params: dict[str, Any]) -> Any:
    """Return the measurement of detector ``name`` on ``views`` with ``params``."""
    return DETECTORS[name].func(*views, **params)


def load_builtin_detectors() -> dict[str, DetectorSpec]:
    """Import every built-in detector module and return the registry (every built-in
    detector registered)."""
    for module in sorted(set(BUILTIN.values())):
        importlib.import_module(f"{__name__}.{module}")
    return DETECTORS


def input_kinds(spec: DetectorSpec) -> tuple[str, ...]:
    """Return what each series input of ``spec``'s detector is, in order: "required",
    "optional", or "beside" (optional, read only as evidence beside the judged series)."""
    return tuple(
        "beside" if name in spec.beside else "optional" if name in spec.optional else "required"
        for name in spec.inputs
    )
