"""Every file in examples/ gets the verdict (and driving findings) examples/README.md states."""

from __future__ import annotations

import re

import pytest

from lossdoctor.api import diagnose_source

from conftest import ROOT

EXAMPLES = ROOT / "examples"
RANK = {"healthy": 0, "warning": 1, "failing": 2, "error": 3}
ROW = re.compile(r"^\| `([^`]+)` \| [^|]+ \| [^|]+ \| (\w+) \| ([^|]+) \|$")


def stated() -> list[tuple[str, str, set[str]]]:
    rows = []
    for line in (EXAMPLES / "README.md").read_text().splitlines():
        match = ROW.match(line.strip())
        if match:
            name, verdict, drivers = match.groups()
            names = {
                d.strip() for d in drivers.split("(")[0].split(",") if d.strip() not in ("–", "")
            }
            rows.append((name, verdict, names))
    return rows


def test_readme_lists_every_example_file():
    listed = {name for name, _, _ in stated()}
    present = {p.name for p in EXAMPLES.iterdir() if p.is_file() and p.name != "README.md"}
    assert listed == present
    assert len(listed) >= 6


@pytest.mark.parametrize(("name", "verdict", "drivers"), stated())
def test_example_gets_its_stated_verdict(name, verdict, drivers):
    # a file of several runs (a sweep's trials) is stated by its worst run
    reports = diagnose_source(str(EXAMPLES / name))
    report = max(reports, key=lambda r: RANK[r.verdict])
    assert report.verdict == verdict
    assert set(report.drivers) == drivers
