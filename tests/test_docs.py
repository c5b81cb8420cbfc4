"""The README's rule table is generated from the rule files and must not be stale."""

from __future__ import annotations

from conftest import ROOT, load_script


def update_readme_module():
    """Return scripts/update_readme.py loaded as a module."""
    return load_script("scripts/update_readme.py", "update_readme")


def test_readme_rule_table_is_current():
    module = update_readme_module()
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert module.render(text) == text, (
        "README tables or sample outputs are stale: run scripts/update_readme.py"
    )


def test_readme_starts_with_the_two_commands():
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    block = lines[lines.index("```bash") + 1 : lines.index("```bash") + 3]
    assert block[0].startswith("pip install . && lossdoctor check examples/")
    assert block[1] == "pip install '.[test]' && python -m pytest"
    ci = (ROOT / ".ci" / "run").read_text()
    assert block[1] in ci


def test_readme_formats_table_matches_the_readers():
    from lossdoctor.ingest.catalog import markdown_table

    assert markdown_table() in (ROOT / "README.md").read_text(encoding="utf-8")


def test_formats_command_lists_every_reader(runner):
    from lossdoctor.cli import app
    from lossdoctor.ingest.catalog import READERS

    result = runner.invoke(app, ["formats"])
    assert result.exit_code == 0
    for info in READERS:
        assert info.name in result.stdout


def test_every_reader_says_what_it_was_tested_against():
    # the library and version that wrote its test fixtures, or plainly that none did (a
    # script's print format, a library the tests do not install); rows once said only
    # "fixtures written from the format's documentation"
    import re

    from lossdoctor.ingest.catalog import READERS

    said = re.compile(
        r"\b\d+\.\d+(?:\.\d+)?\b|no library|no writer library|not installed|a script|"
        r"a C program|no one writer|fixtures above"
    )
    vague = [info.name for info in READERS if not said.search(info.tested)]
    assert vague == []
