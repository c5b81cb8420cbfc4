#!/usr/bin/env python3
"""Regenerate the generated parts of README.md: the rule table (from the rule files),
the formats table (from the readers) and the sample outputs (from the real commands).

A sample is a block between ``<!-- sample: ARGS -->`` and ``<!-- sample:end -->``: the
output of ``lossdoctor ARGS`` run from the repository's root, as a ```text block
(``json`` when ARGS ask for JSON: abridged, every list cut to its first item).  A block
between ``<!-- sample-sh: COMMAND -->`` and ``<!-- sample:end -->`` is the output (standard
output and error together) of the shell COMMAND run by bash from the repository's root,
for what needs a real pipe or child process (``watch``, ``run``); ``lossdoctor`` and
``python`` there are this Python's, and a process id is shown as ``PID``."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from lossdoctor.engine.loader import load_rules
from lossdoctor.ingest.catalog import markdown_table as formats_table
from lossdoctor.reporters.rule_docs import markdown_table

README = Path(__file__).resolve().parent.parent / "README.md"


def _replace(text: str, name: str, table: str) -> str:
    start, end = f"<!-- {name}:start -->\n", f"<!-- {name}:end -->"
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    return head + start + table + end + tail


_SAMPLE = re.compile(r"<!-- sample: (?P<args>.+?) -->\n.*?<!-- sample:end -->", re.S)


def _abridged(value: Any) -> Any:
    """Return ``value`` with every list cut to its first item (README samples)."""
    if isinstance(value, dict):
        return {k: _abridged(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_abridged(v) for v in value[:1]]
    return value


def sample(args: str) -> str:
    """Return the README block for ``lossdoctor ARGS`` run from the repository root."""
    from typer.testing import CliRunner

    from lossdoctor.cli import app

    argv = shlex.split(args)
    with contextlib.chdir(README.parent):
        os.environ["NO_COLOR"] = "1"
        result = CliRunner().invoke(app, argv, terminal_width=100)
    if "json" in argv:
        doc = _abridged(json.loads(result.stdout))
        doc["version"] = "..."
        return f"```json\n{json.dumps(doc, indent=1, ensure_ascii=False)}\n```\n"
    return f"```text\n$ lossdoctor {args}\n{result.stdout.rstrip()}\n```\n"


_SHELL = re.compile(r"<!-- sample-sh: (?P<command>.+?) -->\n.*?<!-- sample:end -->", re.S)
#: A process id differs from run to run.
_PID = re.compile(r"\(pid \d+\)")
#: Seconds a shell sample may take (a training script run under lossdoctor).
SHELL_TIMEOUT_S = 300


def shell_sample(command: str) -> str:
    """Return the README block for the shell ``command`` run by bash from the repository
    root: its standard output and error together, ``(pid N)`` shown as ``(pid PID)``."""
    with tempfile.TemporaryDirectory() as shims:
        for name, line in (("lossdoctor", "-m lossdoctor"), ("python", "")):
            shim = Path(shims) / name
            shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" {line} "$@"\n')
            shim.chmod(0o755)
        env = {
            **os.environ, "NO_COLOR": "1", "LOSSDOCTOR_PLAIN": "1", "COLUMNS": "100",
            "PATH": f"{shims}{os.pathsep}{os.environ.get('PATH', '')}",
        }  # fmt: skip
        done = subprocess.run(
            ["bash", "-c", command], cwd=README.parent, env=env, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=SHELL_TIMEOUT_S,
        )  # fmt: skip
    out = _PID.sub("(pid PID)", done.stdout.rstrip())
    return f"```text\n$ {command}\n{out}\n```\n"


def render(text: str) -> str:
    """Return ``text`` with the generated tables (rules, formats) and the sample outputs
    brought up to date."""
    text = _replace(text, "rules-table", markdown_table(load_rules()))
    text = _replace(text, "formats-table", formats_table())
    text = _SAMPLE.sub(
        lambda m: f"<!-- sample: {m['args']} -->\n{sample(m['args'])}<!-- sample:end -->", text
    )
    return _SHELL.sub(
        lambda m: (
            f"<!-- sample-sh: {m['command']} -->\n{shell_sample(m['command'])}<!-- sample:end -->"
        ),
        text,
    )


def main() -> int:
    """Rewrite README.md in place."""
    README.write_text(render(README.read_text(encoding="utf-8")), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
