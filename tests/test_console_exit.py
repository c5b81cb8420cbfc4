"""The console script leaves the process at once after a command (no interpreter
teardown), with the command's output and exit code, unless work is still under way."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from conftest import ROOT

EXAMPLES = ROOT / "examples"


#: The end of a script that runs the console script on its own arguments.
RUN_CONSOLE = (
    "sys.argv = ['lossdoctor', *sys.argv[1:]]\nfrom lossdoctor.cli import console\nconsole()\n"
)


def console(code: str, *argv: str) -> subprocess.CompletedProcess[str]:
    """Run ``code``, then the console script, with ``argv`` in a new process."""
    return subprocess.run(
        [sys.executable, "-c", code + RUN_CONSOLE, *argv],
        capture_output=True,
        text=True,
        env={**os.environ, "NO_COLOR": "1"},
        cwd=ROOT,
        check=False,
    )


def test_the_console_script_keeps_the_reports_and_exit_codes():
    diverged = subprocess.run(
        [sys.executable, "-m", "lossdoctor", "check", "-f", "json", "examples/divergence_nan.csv"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    assert diverged.returncode == 1
    assert json.loads(diverged.stdout)["runs"][0]["verdict"] == "failing"
    missing = subprocess.run(
        [sys.executable, "-m", "lossdoctor", "check", "no-such-log.csv"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    assert missing.returncode == 2
    assert missing.stderr == "lossdoctor: no-such-log.csv: no such file or folder\n"


def test_the_console_script_skips_the_interpreters_teardown():
    code = "import atexit, sys\natexit.register(lambda: print('teardown', flush=True))\n"
    done = console(code, "check", "--fail-on", "never", str(EXAMPLES / "healthy.csv"))
    assert done.returncode == 0
    assert "healthy" in done.stdout
    assert "teardown" not in done.stdout


def test_the_console_script_waits_for_work_still_under_way():
    """A thread that is no daemon still running when the command is done: the usual exit,
    which waits for it (leaving at once would cut it off)."""
    code = (
        "import sys, threading\n"
        "def late():\n"
        "    threading.Event().wait(2)\n"
        "    print('thread finished', flush=True)\n"
        "threading.Thread(target=late).start()\n"
    )
    done = console(code, "check", "--fail-on", "never", str(EXAMPLES / "healthy.csv"))
    assert done.returncode == 0
    assert "thread finished" in done.stdout
