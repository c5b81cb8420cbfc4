"""JUnit XML: one testsuite per run, one testcase per rule; a failure for each rule
with a finding at or above ``--fail-on``, a skip for each rule that could not run."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

from lossdoctor.report import SEVERITY_RANK, run_name
from lossdoctor.report import fails as counts_toward


def _case(suite: ET.Element, source: str, rule: dict[str, Any]) -> ET.Element:
    """Return a new testcase element for one rule of one run."""
    return ET.SubElement(suite, "testcase", classname=source, name=f"{rule['code']} {rule['rule']}")


def render(report: dict[str, Any], *, fail_on: str = "error") -> str:
    """Return the report as JUnit XML text."""
    root = ET.Element("testsuites", name="lossdoctor")
    total = failures = errors = skipped_total = 0
    for run in report["runs"]:
        suite = ET.SubElement(root, "testsuite", name=run_name(run))
        tests = fails = errs = skips = 0
        if run["verdict"] == "error":
            case = ET.SubElement(suite, "testcase", classname=run_name(run), name="read")
            ET.SubElement(case, "error", message=run["error"], type="InputError").text = run[
                "error"
            ]
            tests, errs = 1, 1
        else:
            by_rule: dict[str, list[dict[str, Any]]] = {}
            for f in run["findings"]:
                if counts_toward(f, fail_on):
                    by_rule.setdefault(f["rule"], []).append(f)
            for checked in run["rules"]["checked"]:
                tests += 1
                case = _case(suite, run_name(run), checked)
                bad = by_rule.get(checked["rule"], [])
                if bad:
                    fails += 1
                    worst = max(bad, key=lambda f: SEVERITY_RANK[f["severity"]])
                    failure = ET.SubElement(
                        case, "failure", message=worst["message"], type=worst["severity"]
                    )
                    failure.text = "\n".join(
                        f"{f['severity']}: {f['message']}\nevidence: {f['evidence']}" for f in bad
                    )
            for skip in run["rules"]["skipped"]:
                tests += 1
                skips += 1
                ET.SubElement(_case(suite, run_name(run), skip), "skipped", message=skip["reason"])
        suite.set("tests", str(tests))
        suite.set("failures", str(fails))
        suite.set("errors", str(errs))
        suite.set("skipped", str(skips))
        total, failures, errors, skipped_total = (
            total + tests,
            failures + fails,
            errors + errs,
            skipped_total + skips,
        )
    root.set("tests", str(total))
    root.set("failures", str(failures))
    root.set("errors", str(errors))
    root.set("skipped", str(skipped_total))
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
