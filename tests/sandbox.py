"""Run the CLI on one input in a forked child with resource limits (Linux).

The child inherits the test process's imports (no interpreter start-up per input), gets
an address-space limit of the parent's size plus :data:`MEMORY_HEADROOM` (RLIMIT_AS:
reading a 2 GiB file whole fails in the child instead of eating the machine) and a
wall-clock deadline (a hang is killed and reported).  The outcome holds the exit code,
stdout, stderr, the wall time and the child's peak resident memory above the parent's.
"""

from __future__ import annotations

import hashlib
import os
import resource
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: Imported once here so that each child starts at once (a child imports nothing).
PRELOAD = (
    "lossdoctor.cli",
    "lossdoctor.api",
    "lossdoctor.live.loop",
    "pandas",
    "importlib.readers",  # the rule pack is found through it (the interpreter may be
    "importlib.resources",  # unreadable to the permission cases' user)
)


#: Packages imported whole: a module they import lazily (typer's vendored click imports
#: its decorators on first use) may lie where the permission cases' user cannot read.
PRELOAD_PACKAGES = ("lossdoctor", "typer", "click", "rich")
#: Never imported by the CLI: the framework integrations (each imports its framework).
SKIP_PREFIXES = ("lossdoctor.integrations.",)


def _import_package(name: str) -> None:
    """Import package ``name`` and every module below it that imports on this platform."""
    import importlib
    import pkgutil

    try:
        package = importlib.import_module(name)
    except ImportError:
        return
    for info in pkgutil.walk_packages(getattr(package, "__path__", []), f"{name}."):
        if info.name.endswith("__main__") or info.name.startswith(SKIP_PREFIXES):
            continue
        try:
            importlib.import_module(info.name)
        except Exception:  # a module for another platform (Windows consoles)
            continue


_preloaded = False


def _preload() -> None:
    global _preloaded
    if _preloaded:
        return
    import importlib

    from lossdoctor.detectors import load_builtin_detectors

    for name in PRELOAD:
        importlib.import_module(name)
    for name in PRELOAD_PACKAGES:
        _import_package(name)
    load_builtin_detectors()
    _cache_builtin_rules()
    global _COMMAND
    if _COMMAND is None:
        import typer

        from lossdoctor import cli

        _COMMAND = typer.main.get_command(cli.app)  # built once: 0.1 s a run otherwise
    _preloaded = True


_COMMAND: Any = None


def _readable_copy(folder: Path) -> Path:
    """Return a copy of ``folder`` that every user may read (removed at exit)."""
    import atexit
    import shutil
    import tempfile

    top = Path(tempfile.mkdtemp(prefix="lossdoctor-rules-"))
    atexit.register(shutil.rmtree, top, True)  # the parent's exit: children leave by _exit
    copy = top / "rules"
    shutil.copytree(folder, copy)
    for path in (top, copy, *copy.rglob("*")):
        path.chmod(0o755 if path.is_dir() else 0o644)
    return copy


def _cache_builtin_rules() -> None:
    """Check the built-in rule pack once for all children, from a copy of the pack the
    permission cases' user can read (CI's clone, where the package is imported from, may
    be unreadable to that user): the checked pack is kept in the user's cache folder,
    where the children find it (those of the permission cases' user cannot read it there
    and check the pack again)."""
    from lossdoctor.engine import loader

    global _RULES_COPY
    if _RULES_COPY is None:
        _RULES_COPY = _readable_copy(loader.builtin_rules_dir())
    loader.load_rules([_RULES_COPY])


#: The readable copy of the built-in rule pack the children read (see _cache_builtin_rules).
_RULES_COPY: Path | None = None


#: Address space the child may add to the parent's (bytes).
MEMORY_HEADROOM = 768 << 20
#: Seconds an input may take before it counts as a hang.
DEADLINE = 60.0
#: The uid/gid of 'nobody', for permission cases when the tests run as root.
NOBODY = 65534


@dataclass(frozen=True)
class Outcome:
    """What one CLI run did."""

    code: int
    stdout: str
    stderr: str
    seconds: float
    peak_growth_mib: float
    hung: bool


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def run_cli(
    argv: list[str],
    *,
    cwd: Path,
    stdin: Path | None = None,
    as_nobody: bool = False,
    deadline: float = DEADLINE,
) -> Outcome:
    """Return the outcome of ``lossdoctor ARGV`` run in a forked, limited child."""
    _preload()
    out_path, err_path = cwd.parent / f".{cwd.name}.out", cwd.parent / f".{cwd.name}.err"
    limit = _status_kib("VmSize") * 1024 + MEMORY_HEADROOM
    base_rss_kib = _status_kib("VmRSS")
    sys.stdout.flush()
    sys.stderr.flush()
    started = time.monotonic()
    pid = os.fork()
    if pid == 0:  # the child: never returns
        code = 99
        try:
            _child(argv, cwd, stdin, out_path, err_path, limit, as_nobody)
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 2
        except BaseException:  # reported to the parent as code 99
            code = 99
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    hung = False
    while True:
        done, status, usage = os.wait4(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() - started > deadline:
            os.kill(pid, signal.SIGKILL)
            done, status, usage = os.wait4(pid, 0)
            hung = True
            break
        time.sleep(0.01)
    seconds = time.monotonic() - started
    code = os.waitstatus_to_exitcode(status)
    stdout = out_path.read_text(errors="replace")
    stderr = err_path.read_text(errors="replace")
    out_path.unlink()
    err_path.unlink()
    growth = max(0, usage.ru_maxrss - base_rss_kib) / 1024
    return Outcome(code, stdout, stderr, seconds, growth, hung)


def _child(
    argv: list[str],
    cwd: Path,
    stdin: Path | None,
    out_path: Path,
    err_path: Path,
    limit: int,
    as_nobody: bool,
) -> None:
    os.chdir(cwd)
    fd_in = os.open(stdin if stdin is not None else os.devnull, os.O_RDONLY)
    fd_out = os.open(out_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    fd_err = os.open(err_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    for fd, target in ((fd_in, 0), (fd_out, 1), (fd_err, 2)):
        os.dup2(fd, target)
    sys.stdin = open(0, encoding="utf-8", closefd=False)  # noqa: SIM115
    sys.stdout = open(1, "w", encoding="utf-8", closefd=False)  # noqa: SIM115
    sys.stderr = open(2, "w", encoding="utf-8", closefd=False)  # noqa: SIM115
    os.environ["NO_COLOR"] = "1"
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    if as_nobody and os.geteuid() == 0:
        os.setgroups([])
        os.setgid(NOBODY)
        os.setuid(NOBODY)
    from lossdoctor import cli
    from lossdoctor.engine import loader

    if _RULES_COPY is not None:
        copy = _RULES_COPY
        loader.builtin_rules_dir = lambda: copy  # this child only: the parent keeps its own
    cli.app = _COMMAND  # type: ignore[assignment]
    sys.argv = ["lossdoctor", *argv]
    cli.main()
    sys.exit(0)


def tree_digest(folder: Path) -> dict[str, str]:
    """Return a digest of every entry below ``folder`` (names, kinds, contents; large files
    by size, time and their first and last MiB), to prove nothing was created or changed."""
    digest = {}
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder).as_posix()
        if path.is_symlink():
            digest[rel] = "link:" + os.readlink(path)
            continue
        try:
            info = path.lstat()
        except OSError:
            digest[rel] = "unreadable"
            continue
        if not path.is_file():
            digest[rel] = f"mode:{info.st_mode:o}"
            continue
        digest[rel] = _file_digest(path, info)
    return digest


def _file_digest(path: Path, info: os.stat_result) -> str:
    head = f"{info.st_size}:{info.st_mtime_ns}:{info.st_mode:o}"
    try:
        with path.open("rb") as handle:
            if info.st_size <= 4 << 20:
                return head + ":" + hashlib.sha256(handle.read()).hexdigest()
            first = handle.read(1 << 20)
            handle.seek(-(1 << 20), os.SEEK_END)
            return head + ":" + hashlib.sha256(first + handle.read()).hexdigest()
    except OSError:
        return head + ":unreadable"
