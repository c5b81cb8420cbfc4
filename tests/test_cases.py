"""Run every rule case file in tests/cases through the same harness users get."""

from __future__ import annotations

from pathlib import Path

import pytest

from lossdoctor.casefile import run_case_file
from lossdoctor.engine.loader import load_rules
from lossdoctor.errors import RulePackError

CASES = Path(__file__).resolve().parent / "cases"
RULES = load_rules()


@pytest.mark.parametrize("path", sorted(CASES.glob("*.toml")), ids=lambda p: p.stem)
def test_case_file(path):
    results = run_case_file(path, RULES)
    failed = [f"{r.case}: {r.rule} expected {r.expected}, got {r.got}" for r in results if not r.ok]
    assert not failed, "\n".join(failed)


def test_every_shape_rule_has_fire_and_silent_cases():
    covered: dict[str, set[str]] = {}
    for path in CASES.glob("*.toml"):
        for r in run_case_file(path, RULES):
            covered.setdefault(r.rule, set()).add("silent" if r.expected == "silent" else "fires")
    for rule in (
        "spikes",
        "oscillation",
        "divergence",
        "non-finite",
        "high-flatline",
        "plateau",
        "overfitting",
        "smooth-decline",
    ):
        assert covered.get(rule) == {"silent", "fires"}, rule


def test_malformed_case_file_is_a_clear_error(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text('[[case]]\nname = "x"\nshape = "nope"\nexpect = "warning"\nrule = "spikes"\n')
    with pytest.raises(RulePackError, match="unknown shape 'nope'"):
        run_case_file(path, RULES)
    path.write_text('[[case]]\nshape = "healthy"\nexpect = "loud"\nrule = "spikes"\n')
    with pytest.raises(RulePackError, match="expectation 'loud'"):
        run_case_file(path, RULES)
