"""Shared helpers: write curves to files, run the CLI, find ../shared."""

from __future__ import annotations

import atexit
import importlib.util
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from lossdoctor.cli import app

#: The tests keep the checked rule pack in a cache folder of their own (this session's,
#: inherited by the commands they run), never in the home folder of whoever runs them.
os.environ["XDG_CACHE_HOME"] = tempfile.mkdtemp(prefix="lossdoctor-test-cache-")
atexit.register(shutil.rmtree, os.environ["XDG_CACHE_HOME"], True)

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
FIXTURES = Path(__file__).resolve().parent / "fixtures"
#: The rule ids the diagnosis benchmark scores (../shared/bench/README.md).
SCORED_RULES = frozenset(
    {"smooth-decline", "spikes", "oscillation", "high-flatline", "plateau", "overfitting",
     "divergence", "non-finite"}
)  # fmt: skip


def write_csv(path: Path, columns: dict[str, Any]) -> Path:
    """Write ``columns`` (name -> sequence) as a CSV; None and NaN-free gaps become empty cells."""
    names = list(columns)
    length = max(len(v) for v in columns.values())
    lines = [",".join(names)]
    for i in range(length):
        cells = []
        for name in names:
            seq = columns[name]
            value = seq[i] if i < len(seq) else None
            cells.append(
                "" if value is None else repr(float(value)) if not isinstance(value, str) else value
            )
        lines.append(",".join(cells))
    path.write_text("\n".join(lines) + "\n")
    return path


def write_curve(path: Path, steps: np.ndarray, values: np.ndarray, name: str = "loss") -> Path:
    """Write one curve as ``step,<name>``."""
    return write_csv(path, {"step": steps, name: values})


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def run_json(runner: CliRunner, *args: str, input: str | None = None) -> tuple[int, dict[str, Any]]:
    """Run ``lossdoctor check --format json ARGS``; return (exit code, parsed JSON)."""
    result = runner.invoke(app, ["check", "--format", "json", *args], input=input)
    return result.exit_code, json.loads(result.stdout)


def fired(run: dict[str, Any]) -> dict[str, str]:
    """Return rule name -> severity of a run's findings that drive the verdict (not superseded)."""
    return {f["rule"]: f["severity"] for f in run["findings"] if not f.get("superseded_by")}


def readme_python(heading: str, index: int = 0) -> str:
    """Return the ``index``-th ```python block of the README section under ``heading``
    (the tests run the README's examples as they are written)."""
    text = (ROOT / "README.md").read_text()
    start = text.index(f"\n{heading}\n")
    level = heading.split(" ")[0]
    end = min(
        (i for i in (text.find(f"\n{level} ", start + 1), len(text)) if i > 0), default=len(text)
    )
    blocks = text[start:end].split("```python\n")[1:]
    return blocks[index].split("```")[0]


def load_script(relative: str, name: str) -> Any:
    """Return the repository's script at ``relative`` (e.g. ``benchmarks/fuzz.py``) loaded
    as the module ``name`` (registered in sys.modules: dataclasses look it up by name)."""
    spec = importlib.util.spec_from_file_location(name, ROOT / relative)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
