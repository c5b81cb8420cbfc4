"""Rule case files: curves with the findings they must (or must not) produce.

A case file is TOML::

    rule = "spikes"                      # the rule ``expect`` speaks of

    [[case]]
    name = "four 4x spikes"
    shape = "spiky"                      # a lossdoctor.synth shape ...
    params = { ratio = 4.0 }
    expect = "warning"                   # silent | info | warning | error | fires
    also = { smooth-decline = "info" }   # other rules (optional)

    [[case]]
    name = "a real log"
    file = "logs/run.csv"                # ... or a log file, relative to the case file
    expect = "silent"

``silent`` means no finding of the rule at all; ``fires`` means warning or
error; a severity means exactly that (the most severe finding of the rule).
The same harness runs the project's own cases and ``lossdoctor rules test DIR``.
"""

from __future__ import annotations

import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lossdoctor import synth
from lossdoctor.engine.evaluate import evaluate
from lossdoctor.engine.schema import Rule
from lossdoctor.errors import RulePackError
from lossdoctor.model import Run, Series
from lossdoctor.report import SEVERITY_RANK

EXPECTATIONS = ("silent", "info", "warning", "error", "fires")


@dataclass(frozen=True)
class CaseResult:
    """The outcome of one expectation of one case."""

    file: str
    case: str
    rule: str
    expected: str
    got: str

    @property
    def ok(self) -> bool:
        """Return True when the rule did what the case expects."""
        if self.expected == "fires":
            return self.got in ("warning", "error")
        return self.got == self.expected


#: Points a synthetic case may ask for at the most (``n``).
MAX_CASE_POINTS = 1_000_000
#: (lowest, highest) of shape parameters with their own range; other whole numbers go from
#: 0 to MAX_CASE_POINTS, other numbers from -1e6 to 1e6, ``at``/``*share`` are fractions.
_SHAPE_RANGES = {"n": (10.0, float(MAX_CASE_POINTS)), "seed": (0.0, float(2**32 - 1))}
_FRACTION = (0.0, 0.999)


def _shape_params(shape: str, params: object, path: Path, key: str) -> dict[str, Any]:
    """Return the checked parameters of a synthetic ``shape``.

    Raises :class:`RulePackError` naming ``path`` and ``key`` for an unknown shape, an
    unknown parameter, a wrong type or a value out of range.
    """
    if not isinstance(shape, str) or shape not in synth.shapes():
        raise RulePackError(
            f"case key '{key}.shape': unknown shape '{shape}' "
            f"(shapes: {', '.join(synth.shapes())})",
            path=str(path),
        )
    if not isinstance(params, dict):
        raise RulePackError(f"case key '{key}.params': expected a table", path=str(path))
    known = synth.shape_params(shape)
    for name, value in params.items():
        where = f"case key '{key}.params.{name}'"
        if name not in known:
            raise RulePackError(
                f"{where}: shape '{shape}' has no such parameter (it has: {', '.join(known)})",
                path=str(path),
            )
        whole = known[name] is int
        if isinstance(value, bool) or not isinstance(value, int if whole else int | float):
            expected = "a whole number" if whole else "a number"
            raise RulePackError(f"{where}: expected {expected}", path=str(path))
        fraction = name in ("at", "share") or name.endswith("_share")
        default = (0.0, float(MAX_CASE_POINTS)) if whole else (-1e6, 1e6)
        low, high = _SHAPE_RANGES.get(name, _FRACTION if fraction else default)
        if not low <= value <= high:
            raise RulePackError(
                f"{where}: expected a number from {low:g} to {high:g}", path=str(path)
            )
    return dict(params)


def _run_from_shape(shape: str, params: dict[str, Any], source: str) -> Run:
    try:
        series = synth.make(shape, **params)
    except (ValueError, ArithmeticError, IndexError) as exc:
        raise RulePackError(f"shape '{shape}' cannot be built ({exc})", path=source) from None
    built = {
        role: Series(
            role=role, column=role, steps=np.asarray(s, float), values=np.asarray(v, float)
        )
        for role, (s, v) in series.items()
    }
    x_kind = "epoch" if shape.startswith("epochs") else "step"
    if x_kind == "epoch":
        built = {
            r: Series(s.role, s.column, s.steps, s.values, x_kind="epoch") for r, s in built.items()
        }
    return Run(source=source, reader="synthetic", series=built)


def _worst(report_findings: Sequence[Any], rule: str) -> str:
    severities = [f.severity for f in report_findings if f.rule == rule]
    if not severities:
        return "silent"
    return str(max(severities, key=lambda s: SEVERITY_RANK[s]))


def run_case_file(path: Path, rules: Sequence[Rule]) -> list[CaseResult]:
    """Return the results of every expectation in the case file at ``path``.

    Raises :class:`RulePackError` for a malformed case file.
    """
    from lossdoctor.errors import InputError
    from lossdoctor.ingest import read_run

    try:
        data = tomllib.loads(path.read_bytes()[: 16 << 20].decode("utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError, RecursionError) as exc:
        raise RulePackError(f"cannot read case file ({exc})", path=str(path)) from None
    default_rule = data.get("rule")
    cases = data.get("case")
    if not isinstance(cases, list) or not cases:
        raise RulePackError("case file key 'case': needs at least one [[case]]", path=str(path))
    known = {r.name for r in rules}
    results: list[CaseResult] = []
    for i, case in enumerate(cases):
        key = f"case[{i}]"
        if not isinstance(case, dict):
            raise RulePackError(f"case key '{key}': expected a table", path=str(path))
        name = str(case.get("name", f"case {i + 1}"))
        where = f"{path}[{name}]"
        if "file" in case:
            if not isinstance(case["file"], str):
                raise RulePackError(f"case key '{key}.file': expected a path", path=str(path))
            try:
                run = read_run(str(path.parent / case["file"]))
            except InputError as exc:
                raise RulePackError(exc.one_line(), path=str(path)) from None
        elif "shape" in case:
            params = _shape_params(case["shape"], case.get("params", {}), path, key)
            run = _run_from_shape(case["shape"], params, where)
        else:
            raise RulePackError(f"case key '{key}': give 'shape' or 'file'", path=str(path))
        also = case.get("also", {})
        if not isinstance(also, dict):
            raise RulePackError(
                f"case key '{key}.also': expected a table of rule = expectation", path=str(path)
            )
        expectations: dict[str, object] = dict(also)
        if "expect" in case:
            rule = case.get("rule", default_rule)
            if rule is None:
                raise RulePackError(
                    f"case key '{key}.rule': which rule does 'expect' speak of?", path=str(path)
                )
            if not isinstance(rule, str):
                raise RulePackError(f"case key '{key}.rule': expected a rule name", path=str(path))
            expectations[rule] = case["expect"]
        for rule, expected in expectations.items():
            if rule not in known:
                raise RulePackError(f"case key '{key}': unknown rule '{rule}'", path=str(path))
            if not isinstance(expected, str) or expected not in EXPECTATIONS:
                raise RulePackError(
                    f"case key '{key}': expectation '{expected}' is not one of "
                    + ", ".join(EXPECTATIONS),
                    path=str(path),
                )
        report = evaluate(run, rules)
        for rule, expected in expectations.items():
            results.append(
                CaseResult(str(path), name, rule, str(expected), _worst(report.findings, rule))
            )
    return results


def run_case_dir(folder: Path, rules: Sequence[Rule]) -> list[CaseResult]:
    """Return the results of every ``*.toml`` case file below ``folder``."""
    results: list[CaseResult] = []
    for path in sorted(folder.rglob("*.toml")):
        results.extend(run_case_file(path, rules))
    return results
