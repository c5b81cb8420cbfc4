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


def _run_from_shape(shape: str, params: dict[str, Any], source: str) -> Run:
    try:
        series = synth.make(shape, **params)
    except KeyError:
        raise RulePackError(
            f"unknown shape '{shape}' (shapes: {', '.join(synth.shapes())})", path=source
        ) from None
    except TypeError as exc:
        raise RulePackError(f"shape '{shape}': {exc}", path=source) from None
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
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise RulePackError(f"cannot read case file ({exc})", path=str(path)) from None
    default_rule = data.get("rule")
    cases = data.get("case")
    if not isinstance(cases, list) or not cases:
        raise RulePackError("case file key 'case': needs at least one [[case]]", path=str(path))
    known = {r.name for r in rules}
    results: list[CaseResult] = []
    for i, case in enumerate(cases):
        name = str(case.get("name", f"case {i + 1}"))
        where = f"{path}[{name}]"
        if "file" in case:
            try:
                run = read_run(str(path.parent / case["file"]))
            except InputError as exc:
                raise RulePackError(exc.one_line(), path=str(path)) from None
        elif "shape" in case:
            run = _run_from_shape(case["shape"], dict(case.get("params", {})), where)
        else:
            raise RulePackError(f"case key 'case[{i}]': give 'shape' or 'file'", path=str(path))
        expectations = dict(case.get("also", {}))
        if "expect" in case:
            rule = case.get("rule", default_rule)
            if rule is None:
                raise RulePackError(
                    f"case key 'case[{i}].rule': which rule does 'expect' speak of?", path=str(path)
                )
            expectations[rule] = case["expect"]
        report = evaluate(run, rules)
        for rule, expected in expectations.items():
            if rule not in known:
                raise RulePackError(f"case key 'case[{i}]': unknown rule '{rule}'", path=str(path))
            if expected not in EXPECTATIONS:
                raise RulePackError(
                    f"case key 'case[{i}]': expectation '{expected}' is not one of "
                    + ", ".join(EXPECTATIONS),
                    path=str(path),
                )
            results.append(
                CaseResult(str(path), name, rule, expected, _worst(report.findings, rule))
            )
    return results


def run_case_dir(folder: Path, rules: Sequence[Rule]) -> list[CaseResult]:
    """Return the results of every ``*.toml`` case file below ``folder``."""
    results: list[CaseResult] = []
    for path in sorted(folder.rglob("*.toml")):
        results.extend(run_case_file(path, rules))
    return results
