"""Detector conformance: any series in, a measurement out; deterministic; no warnings."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lossdoctor.detectors import load_builtin_detectors
from lossdoctor.features import SeriesView
from lossdoctor.model import Series

DETECTORS = load_builtin_detectors()


def view(values, role="train") -> SeriesView:
    values = np.asarray(values, dtype=float)
    steps = np.arange(values.shape[0], dtype=float)
    return SeriesView(Series(role, "loss", steps, values))


def run_all(train: SeriesView, val: SeriesView) -> list[object]:
    """Return each detector's measurement, every field a rule may read (the deferred ones,
    computed when read, included) and its evidence as the report shows it."""
    out = []
    for spec in DETECTORS.values():
        args = [train, val][: len(spec.inputs)]
        measured = spec.func(*args, **spec.params)
        fields = {name: getattr(measured, name) for name in spec.fields}
        out.append((measured, fields, measured.evidence.to_dict()))
    return out


EDGE_CASES = {
    "empty": [],
    "one": [2.0],
    "two": [2.0, 1.0],
    "three": [2.0, 1.5, 1.0],
    "all-nan": [np.nan] * 20,
    "constant": [1.5] * 50,
    "zeros": [0.0] * 50,
    "increasing": list(np.linspace(1, 5, 40)),
    "decreasing": list(np.linspace(5, 1, 40)),
    "mixed-sign": list(np.linspace(-2, 2, 40)),
}


@pytest.mark.parametrize("name", list(EDGE_CASES))
def test_detectors_handle_edge_cases(name):
    values = EDGE_CASES[name]
    first = run_all(view(values), view(values, "val"))
    second = run_all(view(values), view(values, "val"))
    assert repr(first) == repr(second)
    for measured, _, _ in first:
        assert dataclasses.is_dataclass(measured)


finite_or_not = st.one_of(
    st.floats(min_value=1e-12, max_value=1e12),
    st.floats(min_value=-1e6, max_value=1e6),
    st.sampled_from([np.nan, np.inf, -np.inf, 0.0]),
)


@settings(max_examples=150, deadline=None)
@given(
    values=st.lists(finite_or_not, min_size=0, max_size=300),
    val_values=st.lists(finite_or_not, min_size=0, max_size=40),
)
def test_detectors_never_raise_and_are_deterministic(values, val_values):
    train, val = view(values), view(val_values, "val")
    first = run_all(train, val)
    assert repr(first) == repr(run_all(view(values), view(val_values, "val")))


@settings(max_examples=60, deadline=None)
@given(steps=st.lists(st.floats(min_value=-1e6, max_value=1e6), min_size=0, max_size=200))
def test_engine_handles_duplicate_and_backward_steps(steps):
    from lossdoctor.engine.evaluate import evaluate
    from lossdoctor.engine.loader import load_rules
    from lossdoctor.model import Run

    arr = np.asarray(steps, dtype=float)
    values = np.linspace(3, 1, arr.shape[0])
    run = Run("x", "test", {"train": Series("train", "loss", arr, values)})
    report = evaluate(run, load_rules())
    assert report.verdict in ("healthy", "warning", "failing")


def test_rolling_median_of_a_series_shorter_than_its_window():
    # bottleneck refuses a window longer than the data: a one-point series (as a run of
    # one gradient-norm value gives) is its own median, not a crash
    from lossdoctor.robust import rolling_median

    assert rolling_median(np.array([0.0]), 5).tolist() == [0.0]
    assert rolling_median(np.array([1.0, 3.0]), 7).tolist() == [2.0, 2.0]
    assert rolling_median(np.array([1.0, 9.0, 2.0, 8.0]), 3).tolist() == [5.0, 2.0, 8.0, 5.0]


def test_span_evidence_spans_the_whole_series_and_names_its_role():
    from lossdoctor.detectors import span_evidence

    series = SeriesView(Series("train", "loss", np.array([5.0, 10, 20]), np.array([3.0, 2, 1])))
    evidence = span_evidence(series, {"first_value": 3.0})
    assert (evidence.series, evidence.column) == ("train", "loss")
    assert (evidence.start_step, evidence.end_step) == (5.0, 20.0)
    assert evidence.numbers == {"first_value": 3.0}
    assert span_evidence(series, {}, role="val").series == "val"
