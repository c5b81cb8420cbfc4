"""The command-line side of live diagnosis: ``watch`` and ``run`` (sources, signals, the
display, the child process and exit codes).  Part of the CLI layer: it prints and
returns exit codes; the diagnosis itself is :class:`lossdoctor.live.monitor.LiveMonitor`.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from lossdoctor.errors import ExitCode

Outputs = list[tuple[str, str | None]]


def _monitor(source: str, settings: Any) -> Any:
    from lossdoctor.api import make_context, select_rules
    from lossdoctor.ingest.columns import ColumnHints
    from lossdoctor.live.monitor import LiveMonitor

    rules = select_rules(settings)
    hints = ColumnHints(**settings.columns) if settings.columns else None
    context = make_context(vocab_size=settings.vocab_size, profile=settings.profile)
    return LiveMonitor(source, rules, context=context, hints=hints)


def _say(message: str) -> None:
    with contextlib.suppress(OSError, ValueError):
        sys.stderr.write(f"lossdoctor: {message}\n")
        sys.stderr.flush()


def machine_on_stdout(outputs: Outputs) -> bool:
    """Return True when a machine-readable report goes to standard output (then alerts and
    notices go to standard error, so that stdout holds the document alone)."""
    return any(name != "text" and path is None for name, path in outputs)


#: The signals lossdoctor catches in live mode and stops a command with (SIGKILL apart).
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextlib.contextmanager
def _catching(signals: list[int]) -> Iterator[None]:
    """Record SIGINT and SIGTERM in ``signals`` while inside (the live loop ends at the
    next turn, with the lines already read counted)."""

    def handler(signum: int, frame: Any) -> None:
        del frame
        signals.append(signum)

    previous = {sig: signal.signal(sig, handler) for sig in STOP_SIGNALS}
    # A handler runs only for a signal that is not blocked, and a signal mask is inherited
    # through exec: lossdoctor started with SIGINT blocked (some CI runners and
    # supervisors do) would never see Ctrl-C. Unblocked while inside; restored after.
    mask = signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        for sig, old in previous.items():
            signal.signal(sig, old)


def _interrupted_code(signals: list[int]) -> int:
    return 128 + (signals[0] if signals else int(signal.SIGINT))


def _alive(pid: int) -> bool:
    """Return True while process ``pid`` runs (a zombie, exited but not yet reaped by its
    parent, counts as ended)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    with contextlib.suppress(OSError, IndexError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    return True


def _binary_refusal(what: str, path: str) -> str:
    """Return why ``watch`` refuses binary input (``what``: what it looks like, see
    :func:`~lossdoctor.live.sources.binary_kind`) read from ``path`` (``-``: stdin)."""
    kind = what or "a database, an event file or a W&B/SwanLab run file?"
    binary = "binary input" if path == "-" else "a binary file"
    target = "FILE" if path == "-" else path
    return (
        f"{binary} ({kind}): watch follows text logs as they grow; to read it, "
        f"use lossdoctor check {target}"
    )


def _not_followed(path: Path) -> str | None:
    """Return why ``watch`` cannot follow ``path`` (a folder, a binary file: a database,
    an event file, a W&B run file), or None for a text file and a file not there yet
    (``watch`` waits for it).  Only a regular file is opened: a FIFO's open would block."""
    from lossdoctor.ingest import BINARY_PROBE_BYTES
    from lossdoctor.live.sources import binary_kind

    if path.is_dir():
        return (
            "a folder: watch follows one log file as it grows; "
            f"to read a folder, use lossdoctor check {path}"
        )
    if not path.is_file():
        return None
    try:
        with path.open("rb") as handle:
            head = handle.read(BINARY_PROBE_BYTES)
    except OSError:
        return None  # the follower says why it cannot read it
    what = binary_kind(head)
    return None if what is None else _binary_refusal(what, str(path))


def watch_command(
    path: str,
    settings: Any,
    outputs: Outputs,
    *,
    stop_on: str | None,
    fail_on: str,
    stall_after: float | None,
    tee: bool,
    exit_when_idle: float | None,
    pid: int | None,
) -> int:
    """Follow ``path`` (``-`` = stdin), show alerts, print the final report; return the
    exit code: as for check, 1 when --stop-on was reached, 130/143 on SIGINT/SIGTERM."""
    from lossdoctor.cli import _error, _final
    from lossdoctor.live.loop import Callbacks, run_loop
    from lossdoctor.live.sources import file_follower, new_queue, pipe_reader
    from lossdoctor.reporters.live import PanelDisplay, PlainDisplay

    refusal = None if path == "-" else _not_followed(Path(path))
    if refusal is not None:
        _error(f"{path}: {refusal}")
        return int(ExitCode.USAGE)
    monitor = _monitor(path, settings)
    events = new_queue()
    stop = threading.Event()
    machine = machine_on_stdout(outputs)
    on_terminal = sys.stdout.isatty() and not os.environ.get("LOSSDOCTOR_PLAIN") and not machine
    display: Any = (
        PanelDisplay()
        if on_terminal
        else PlainDisplay(sys.stderr if tee or machine else sys.stdout)
    )
    tee_out = PlainDisplay(sys.stdout) if tee and not on_terminal else display
    callbacks = Callbacks(
        on_lines=tee_out.lines if tee else None,
        on_change=display.change,
        on_tick=display.tick,
        on_run_end=display.ended,
    )
    ends: list[Callable[[], bool]] = []
    if exit_when_idle is not None:
        ends.append(lambda: time.monotonic() - monitor.last_input_time >= exit_when_idle)
    if pid is not None:
        ends.append(lambda: not _alive(pid))
    signals: list[int] = []
    ends.append(lambda: bool(signals))
    with _catching(signals):
        if path == "-":
            pipe_reader(sys.stdin.fileno(), events, "stdin", discard=stop, text_only=True)
        else:
            file_follower(Path(path), events, stop)
        display.start()
        try:
            outcome = run_loop(
                monitor, events, pipes=1 if path == "-" else 1 << 30, callbacks=callbacks,
                stop_on=stop_on, stall_after=stall_after,
                should_end=lambda: any(end() for end in ends),
            )  # fmt: skip
        finally:
            display.stop()
            stop.set()
    if outcome.reason == "binary":
        _error(f"{path}: {_binary_refusal(outcome.what, path)}")
        return int(ExitCode.USAGE)
    if signals:  # the report so far, of a run in progress
        if outcome.report is not None:
            _final(monitor.reports(finished=False), fail_on, outputs)
        return _interrupted_code(signals)
    # the writer is gone or idle: every run is judged as finished (a stop: the run in
    # progress as it stands)
    reports = monitor.reports(finished=outcome.reason != "stop")
    if not reports:
        _error(f"{path}: no loss values found in the input ({monitor.lines} lines)")
        return int(ExitCode.USAGE)
    code = _final(reports, fail_on, outputs)
    return int(ExitCode.FINDINGS) if outcome.reason == "stop" else code


#: Seconds the command's output is still passed through after it exited when diagnosis
#: stopped (a grandchild holding the pipe open is not waited for longer).
TEE_DRAIN_SECONDS = 5.0


def _tee_to(stream: Any) -> Callable[[bytes], None]:
    def write(chunk: bytes) -> None:
        with contextlib.suppress(OSError, ValueError):
            stream.buffer.write(chunk)
            stream.buffer.flush()

    return write


class Child:
    """The supervised command: started in its own process group, stopped as a group."""

    def __init__(self, command: list[str], env: dict[str, str]) -> None:
        self.label = " ".join(command)
        # A signal mask is inherited through exec: where lossdoctor was started with
        # SIGINT or SIGTERM blocked (some CI runners and supervisors do), the command
        # would never see the SIGINT it is stopped with. It starts with them unblocked.
        blocked = signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
        try:
            self.process = subprocess.Popen(
                command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                start_new_session=True,
            )  # fmt: skip
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)

    @property
    def pid(self) -> int:
        """Return the command's process id (also its process group id)."""
        return self.process.pid

    def exited(self) -> bool:
        """Return True once the command has exited."""
        return self.process.poll() is not None

    def code(self) -> int:
        """Return the command's exit code (128 + N when signal N ended it)."""
        code = self.process.wait()
        return 128 - code if code < 0 else code

    def stop(self, why: str, grace: float) -> None:
        """Stop the process group: SIGINT, then SIGTERM after ``grace`` seconds, then
        SIGKILL, saying so on stderr before each signal."""
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGKILL):
            if sig == signal.SIGINT:
                _say(f"stopping {self.label} (pid {self.pid}): {why} — sending SIGINT")
            else:
                _say(f"{self.label} (pid {self.pid}) still running after {grace:g} s — "
                     f"sending {sig.name}")  # fmt: skip
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pid, sig)
            try:
                self.process.wait(timeout=grace if sig != signal.SIGKILL else None)
                return
            except subprocess.TimeoutExpired:
                continue

    def wait(self, signals: list[int], grace: float) -> None:
        """Wait for the command to exit; a SIGINT/SIGTERM to lossdoctor meanwhile stops it."""
        while not self.exited():
            if signals:
                self.stop(f"lossdoctor got {signal.Signals(signals[0]).name}", grace)
                return
            time.sleep(0.05)


def run_command(
    command: list[str],
    settings: Any,
    outputs: Outputs,
    *,
    stop_on: str | None,
    fail_on: str,
    grace: float,
    stall_after: float | None,
    child_env: dict[str, str],
) -> int:
    """Run ``command`` with its output passed through, diagnose it live, stop it when a
    finding reaches ``stop_on``; return the exit code (see the ``run`` command's help)."""
    from lossdoctor.cli import _error, _final
    from lossdoctor.live.loop import Callbacks, run_loop
    from lossdoctor.live.sources import new_queue, pipe_reader
    from lossdoctor.reporters.live import PlainDisplay

    monitor = _monitor(" ".join(command), settings)
    env = {**child_env, "PYTHONUNBUFFERED": "1"}
    signals: list[int] = []
    guard = contextlib.ExitStack()  # signals are caught from before the command starts
    guard.enter_context(_catching(signals))
    try:
        child = Child(command, env)
    except OSError as exc:
        guard.close()
        _error(f"{command[0]}: cannot start ({exc.strerror})")
        return int(ExitCode.USAGE)
    assert child.process.stdout is not None
    assert child.process.stderr is not None
    events = new_queue()
    discard = threading.Event()
    readers = [
        pipe_reader(child.process.stdout.fileno(), events, "stdout", _tee_to(sys.stdout), discard),
        pipe_reader(child.process.stderr.fileno(), events, "stderr", _tee_to(sys.stderr), discard),
    ]
    display = PlainDisplay(sys.stderr)
    callbacks = Callbacks(
        on_change=display.change,
        on_run_end=display.ended,
    )
    with guard:
        try:
            outcome: Any = run_loop(
                monitor, events, pipes=2, callbacks=callbacks, stop_on=stop_on,
                stall_after=stall_after, finished=child.exited, should_end=lambda: bool(signals),
            )  # fmt: skip
        except Exception as exc:
            discard.set()
            _say(
                f"diagnosis stopped ({type(exc).__name__}: {exc}); "
                f"{child.label} runs on, its output passed through unwatched"
            )
            child.wait(signals, grace)
            for reader in readers:  # the command's last output, still to pass through
                reader.join(timeout=TEE_DRAIN_SECONDS)
            return _interrupted_code(signals) if signals else child.code()
        if outcome.reason == "stop":
            trigger = outcome.trigger
            why = f"{trigger.severity} {trigger.code} {trigger.rule}: {trigger.message}"
            child.stop(why, grace)
        child.wait(signals, grace)
    reports = monitor.reports(finished=outcome.reason != "stop" and not signals)
    if not reports:
        if signals:
            return _interrupted_code(signals)
        if outcome.reason == "stop":
            return int(ExitCode.FINDINGS)
        lines = f"{monitor.lines:,} line{'s' * (monitor.lines != 1)}"
        _say(
            f"no loss values found in the output of {child.label} ({lines}): nothing was "
            "diagnosed (see 'lossdoctor formats')"
        )
        return child.code()
    try:
        reached = _final(reports, fail_on, outputs)
    except Exception as exc:
        _say(f"could not write the report ({type(exc).__name__}: {exc})")
        return child.code()
    if signals:
        return _interrupted_code(signals)
    if outcome.reason == "stop" or reached:
        return int(ExitCode.FINDINGS)
    return child.code()
