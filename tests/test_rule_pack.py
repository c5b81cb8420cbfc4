"""The rule pack: it loads, every rule is documented, malformed rule files are clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from lossdoctor.detectors import load_builtin_detectors
from lossdoctor.engine.conditions import parse_condition
from lossdoctor.engine.loader import builtin_rules_dir, load_rule_file, load_rules
from lossdoctor.errors import RulePackError

from conftest import SCORED_RULES

PUBLIC_NAMES = SCORED_RULES | {"negative-loss"}


def test_pack_loads_with_the_public_rule_names():
    rules = load_rules()
    assert {r.name for r in rules} >= PUBLIC_NAMES
    assert len({r.code for r in rules}) == len(rules)


def test_every_rule_has_docs_fixes_and_levels():
    for rule in load_rules():
        assert rule.docs.what, rule.name
        assert rule.docs.why, rule.name
        assert rule.fixes, rule.name
        assert rule.levels, rule.name
        assert (
            rule.code[2]
            == {
                "integrity": "1",
                "stability": "2",
                "progress": "3",
                "generalization": "4",
                "source": "5",
                "comparison": "6",
                "live": "7",
            }[rule.group]
        ), rule.name


def test_rule_files_sit_in_their_group_folder():
    for rule in load_rules():
        path = Path(rule.path)
        assert path.parent.name == rule.group
        assert path.name == f"{rule.code}-{rule.name}.toml"
        assert path.is_relative_to(builtin_rules_dir())


BASE = """
code = "XX901"
name = "my-rule"
group = "custom"
summary = "s"
detector = "spikes"
inputs = ["train", "lr"]
[[levels]]
severity = "warning"
when = ["max_ratio >= 2"]
message = "m {max_ratio}"
[[fixes]]
title = "t"
why = "w"
[docs]
what = "w"
why = "y"
"""


@pytest.mark.parametrize(
    ("change", "key", "hint"),
    [
        (('detector = "spikes"', 'detector = "spike"'), "detector", "did you mean 'spikes'"),
        (('"max_ratio >= 2"', '"max_ration >= 2"'), "levels[0].when", "did you mean 'max_ratio'"),
        (('"max_ratio >= 2"', '"max_ratio >= big"'), "levels[0].when", "unknown threshold"),
        (('"max_ratio >= 2"', '"max_ratio ~ 2"'), "levels[0].when", "field op value"),
        (('severity = "warning"', 'severity = "fatal"'), "levels[0].severity", "one of"),
        (('summary = "s"', 'sumary = "s"'), "sumary", "did you mean 'summary'"),
        (("m {max_ratio}", "m {__class__}"), "levels[0].message", "unknown placeholder"),
        (('code = "XX901"', 'code = "rule1"'), "code", "three digits"),
        (('message = "m', 'advice = "no"\nmessage = "m'), "levels[0].advice", "true or false"),
    ],
)
def test_malformed_rule_file_names_file_and_key(tmp_path, change, key, hint):
    path = tmp_path / "XX901-my-rule.toml"
    path.write_text(BASE.replace(*change))
    with pytest.raises(RulePackError) as info:
        load_rule_file(path)
    text = info.value.one_line()
    assert text.startswith(f"{path}: rule key '{key}'")
    assert hint in text


def test_invalid_toml_is_an_error(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("code = ")
    with pytest.raises(RulePackError, match="invalid TOML"):
        load_rule_file(path)


def test_a_valid_user_rule_loads(tmp_path):
    path = tmp_path / "XX901-my-rule.toml"
    path.write_text(BASE)
    rule = load_rule_file(path)
    assert rule.name == "my-rule"
    assert rule.levels[0].when[0].field == "max_ratio"


def test_conditions_compare_and_never_hold_on_nan():
    cond = parse_condition("rise >= limit")
    assert cond.holds(0.5, {"limit": 0.4})
    assert not cond.holds(0.3, {"limit": 0.4})
    assert not cond.holds(float("nan"), {"limit": 0.4})
    assert parse_condition("to_the_end == true").holds(True, {})


def test_every_detector_field_is_numeric_or_bool():
    for spec in load_builtin_detectors().values():
        assert spec.fields, spec.name


def test_the_detector_module_table_names_where_each_detector_is_registered():
    # a detector's module is imported on its first lookup by name (a check imports the
    # detectors of the rules it applies): the table must say where each one is
    from lossdoctor.detectors import BUILTIN

    registry = load_builtin_detectors()
    assert {name: (spec.raw or spec.func).__module__ for name, spec in registry.items()} == {
        name: f"lossdoctor.detectors.{module}" for name, module in BUILTIN.items()
    }


def test_a_rule_made_without_its_input_kinds_is_judged_as_a_loaded_one():
    # the engine tells which rules a run lacks the series for from the kinds the loader
    # noted; a rule built another way (None) asks its detector, with the same result
    from dataclasses import replace

    from lossdoctor import synth
    from lossdoctor.engine.evaluate import evaluate
    from lossdoctor.model import Run, Series

    steps, values = synth.healthy()
    run = Run("run", "csv", {"train": Series("train", "loss", steps.astype(float), values)})
    rules = load_rules()
    assert all(rule.input_kinds is not None for rule in rules)
    unnoted = [replace(rule, input_kinds=None) for rule in rules]
    loaded, asked = evaluate(run, rules), evaluate(run, unnoted)
    assert loaded.skipped == asked.skipped
    assert ("LD205", "grad-norm-spikes", "no grad_norm series") in loaded.skipped
    assert loaded.checked == asked.checked
    assert [f.rule for f in loaded.findings] == [f.rule for f in asked.findings]
