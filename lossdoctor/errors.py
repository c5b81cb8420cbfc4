"""The error hierarchy and the process exit codes.

Library code raises these; only the CLI turns them into a message and an exit code.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Process exit codes, stable across releases."""

    OK = 0
    FINDINGS = 1
    USAGE = 2


class LossdoctorError(Exception):
    """Base of every error lossdoctor reports to the user as one line."""

    def __init__(self, message: str, *, path: str | None = None, line: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.path = path
        self.line = line

    def one_line(self) -> str:
        """Return the error as one line: ``path:line: message`` (path and line when known)."""
        where = ""
        if self.path is not None:
            path = printable(self.path)
            where = f"{path}:{self.line}: " if self.line is not None else f"{path}: "
        text = " ".join(self.message.split())
        return f"{where}{text}"


def printable(name: str) -> str:
    """Return ``name`` with control characters (a newline in a file name) escaped, so it
    prints on one line: ``a\\nb.csv``."""
    if name.isprintable():
        return name
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in name)


class InputError(LossdoctorError):
    """A log could not be read or holds no loss series."""


class NotALogError(InputError):
    """The input is readable but is no loss log (empty, binary, prose, a table without a
    loss): a folder walk or a shell glob skips it with this reason."""


class NoMatchingRun(InputError):
    """A store holding several runs (an MLflow or trackio database) holds none matching
    ``--run``: ``names`` are the names of the runs it holds, in order."""

    def __init__(self, message: str, *, names: list[str], path: str | None = None) -> None:
        super().__init__(message, path=path)
        self.names = names


def no_matching_run(run: str, names: list[str], source: str) -> NoMatchingRun:
    """Return the error for a store (``source``) whose runs (``names``) match no ``run``."""
    choices = ", ".join(names) or "none"
    message = f"no run '{run}' in this store (runs: {choices})"
    return NoMatchingRun(message, names=names, path=source)


class RulePackError(LossdoctorError):
    """A rule file is malformed (names the file and the key)."""


class ConfigError(LossdoctorError):
    """A configuration value or command-line option is invalid."""


class DiagnosisBug(Exception):
    """An exception lossdoctor did not expect, raised while diagnosing ``source``: a bug,
    never reported as a failed run (picklable, so a worker process can send it back)."""

    def __init__(self, source: str, detail: str) -> None:
        super().__init__(source, detail)
        self.source = source
        self.detail = detail

    def __str__(self) -> str:
        return f"while diagnosing {printable(self.source)}: {self.detail}"
