"""What a command imports at start: most of a small check's time is start-up, so a check
imports the readers of the format it reads, the detectors of the rules it applies and
the reporter of the output it writes, not every one (counted without timing: the
modules a child process imported)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from lossdoctor import synth as curves

from conftest import write_csv

#: Modules a JSON report of a CSV log has no use for: the terminal reporter (and rich),
#: the readers of other formats, the configuration files of other logs' folders.
NOT_FOR_A_CSV = (
    "rich",
    "lossdoctor.reporters.terminal",
    "lossdoctor.ingest.tfevents",
    "lossdoctor.ingest.jsonl_bulk",
    "lossdoctor.ingest.jsonlike",
    "lossdoctor.ingest.streamed",
    "lossdoctor.ingest.metadata",
    "lossdoctor.ingest.textlog",
    "lossdoctor.ingest.mlflow",
    "lossdoctor.ingest.leveldblog",
    "google_crc32c",
)
#: Detectors a check of a loss alone has no use for: those of rules made by comparisons
#: and live monitors, and those of the rules that read a gradient norm, a learning rate
#: or a validation loss.
NOT_FOR_A_LOSS_ALONE = (
    "lossdoctor.detectors.external",
    "lossdoctor.detectors.gradnorm",
    "lossdoctor.detectors.schedule",
    "lossdoctor.detectors.overfitting",
)


#: Runs the command line as ``lossdoctor`` does, then writes the names of the modules the
#: process holds (``sys.modules``: modules imported by ``importlib.import_module`` too,
#: which ``python -X importtime`` does not list) to the file named first.
_CHILD = """
import json, sys
out, sys.argv = sys.argv[1], ["lossdoctor", *sys.argv[2:]]
from lossdoctor.cli import main
try:
    main()
except SystemExit as stop:
    code = stop.code
else:
    code = 0
sys.stdout.flush()
with open(out, "w") as names:
    json.dump(sorted(sys.modules), names)
sys.exit(code)
"""


def imported_by(args: list[str], cwd: Path) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    """Return the finished ``lossdoctor ARGS`` run in ``cwd`` and the names of the modules
    it imported."""
    names = cwd / "modules.json"
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, str(names), *args],
        capture_output=True,
        text=True,
        cwd=cwd,
    )
    return proc, set(json.loads(names.read_text()))


@pytest.fixture(scope="module", autouse=True)
def checked_rule_pack(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Keep the checked rule pack in the tests' cache folder first, as after any earlier
    command: the one that checks the rule files imports every detector."""
    proc, _ = imported_by(["rules", "list"], tmp_path_factory.mktemp("pack"))
    assert proc.returncode == 0, proc.stderr[-2000:]


@pytest.fixture
def small_csv(tmp_path: Path) -> Path:
    steps, values = curves.healthy()
    path = tmp_path / "run.csv"
    write_csv(path, {"step": steps, "loss": values})
    return path


@pytest.mark.parametrize("fmt", ["json", "markdown", "junit", "github", "summary-csv"])
def test_a_machine_readable_check_of_a_csv_imports_no_other_reader_nor_rich(
    tmp_path: Path, small_csv: Path, fmt: str
) -> None:
    proc, imported = imported_by(["check", "-f", fmt, str(small_csv)], tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "lossdoctor.ingest.delimited" in imported  # the CSV reader did read it
    assert sorted(imported & {*NOT_FOR_A_CSV, *NOT_FOR_A_LOSS_ALONE}) == []
    assert "lossdoctor.detectors.spikes" in imported  # its rule was applied


def test_the_json_report_still_says_the_verdict(tmp_path: Path, small_csv: Path) -> None:
    proc, _ = imported_by(["check", "-f", "json", str(small_csv)], tmp_path)
    assert json.loads(proc.stdout)["runs"][0]["verdict"] == "healthy"


@pytest.mark.skipif(sys.platform != "linux", reason="platformdirs answers elsewhere")
def test_the_rule_packs_cache_folder_is_found_without_platformdirs(
    tmp_path: Path, small_csv: Path
) -> None:
    # the tests' $XDG_CACHE_HOME is an absolute path (conftest): lossdoctor's cache folder
    # in it, as platformdirs says, without importing it
    proc, imported = imported_by(["check", "-f", "json", str(small_csv)], tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "lossdoctor.engine.pack_cache" in imported
    assert "platformdirs" not in imported


def test_a_text_report_imports_the_terminal_reporter(tmp_path: Path, small_csv: Path) -> None:
    # the guard above is no vacuous truth: the names are those of the modules imported
    proc, imported = imported_by(["check", str(small_csv)], tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert {"rich", "lossdoctor.reporters.terminal"} <= imported


def test_a_log_with_those_series_imports_their_detectors(tmp_path: Path) -> None:
    steps, values = curves.healthy()
    path = tmp_path / "run.csv"
    write_csv(path, {"step": steps, "loss": values, "lr": 0 * values + 3e-4,
                     "grad_norm": 0 * values + 1.0, "val_loss": values * 1.1})  # fmt: skip
    proc, imported = imported_by(["check", "-f", "json", str(path)], tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rules = json.loads(proc.stdout)["runs"][0]["rules"]
    assert {"lr-schedule", "overfitting", "grad-norm-spikes"} <= {
        r["rule"] for r in rules["checked"]
    }
    assert set(NOT_FOR_A_LOSS_ALONE) & imported == set(NOT_FOR_A_LOSS_ALONE) - {
        "lossdoctor.detectors.external"
    }


def test_a_json_lines_log_imports_its_reader(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    steps, values = curves.healthy()
    path.write_text(
        "".join(
            json.dumps({"step": int(s), "loss": float(v)}) + "\n"
            for s, v in zip(steps, values, strict=True)
        )
    )
    proc, imported = imported_by(["check", "-f", "json", str(path)], tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stdout)["runs"][0]["reader"] == "jsonl"
    assert "lossdoctor.ingest.jsonlike" in imported
    assert "lossdoctor.ingest.tfevents" not in imported
