"""Executors: where the diagnosis of many sources runs (a plug point that knows no rules).

An executor takes tasks (a picklable function and its arguments) and hands back
pending results; the caller keeps at most :attr:`Executor.capacity` tasks in
flight and collects them in order, so results stream and memory stays bounded.
``share`` ships a large argument (the rule pack) once rather than with every task.

- :class:`InProcess`: runs each task when its result is asked for.
- :class:`ProcessPool`: ``--jobs N`` local worker processes.
- :class:`DaskExecutor`: an existing Dask cluster (``--executor dask --scheduler ADDR``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from lossdoctor.errors import ConfigError

#: Tasks kept in flight per worker: enough to keep every worker busy while results stream.
TASKS_PER_WORKER = 4
#: Seconds to wait for a Dask scheduler to answer.
CONNECT_TIMEOUT_S = 10


class Pending(Protocol):
    """A task's result to come."""

    def result(self) -> Any:
        """Return the task's result (raise what the task raised)."""
        ...


class Executor(Protocol):
    """Runs tasks; see the module docstring."""

    #: Tasks worth keeping in flight at once.
    capacity: int
    #: Sources per task (a task's fixed cost is paid once for this many).
    batch: int

    def share(self, value: Any) -> Any:
        """Return ``value`` as tasks should receive it (shipped to workers once)."""
        ...

    def submit(self, fn: Callable[..., Any], *args: Any) -> Pending:
        """Start ``fn(*args)``; return its pending result."""
        ...

    def close(self) -> None:
        """Release the workers or the connection."""
        ...


class _Deferred:
    def __init__(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
        self._fn, self._args = fn, args

    def result(self) -> Any:
        return self._fn(*self._args)


class InProcess:
    """Run every task in this process, one after another, when its result is asked for."""

    capacity = 1
    batch = 1

    def share(self, value: Any) -> Any:
        """Return ``value`` unchanged."""
        return value

    def submit(self, fn: Callable[..., Any], *args: Any) -> Pending:
        """Return the task, to run when its result is asked for."""
        return _Deferred(fn, args)

    def close(self) -> None:
        """Nothing to release."""


class ProcessPool:
    """Run tasks in ``jobs`` local worker processes.

    A shared value (the options with the rule pack) reaches each worker once, when it
    starts, rather than pickled with every task: tasks carry a small handle of it."""

    batch = 8

    def __init__(self, jobs: int) -> None:
        from concurrent.futures import ProcessPoolExecutor

        self._shared: dict[int, Any] = {}
        self._started = False
        # the workers start at the first task, after ``share``: they get the values then
        self._pool = ProcessPoolExecutor(
            max_workers=jobs, initializer=_install_shared, initargs=(self._shared,)
        )
        self.capacity = jobs * TASKS_PER_WORKER

    def share(self, value: Any) -> Any:
        """Return a handle of ``value`` that the workers resolve to their copy of it (the
        value itself once a worker has started: it is then pickled with each task)."""
        if self._started:
            return value
        key = len(self._shared)
        self._shared[key] = value
        return _Shared(key)

    def submit(self, fn: Callable[..., Any], *args: Any) -> Pending:
        """Start the task in a worker process."""
        self._started = True
        return self._pool.submit(_with_shared, fn, *args)

    def close(self) -> None:
        """Stop the worker processes."""
        self._pool.shutdown(cancel_futures=True)


@dataclass(frozen=True)
class _Shared:
    """A value a worker process received when it started, by its key."""

    key: int


#: The values shared with this worker process (see :meth:`ProcessPool.share`).
_WORKER_SHARED: dict[int, Any] = {}


def _install_shared(values: dict[int, Any]) -> None:
    """Keep the values shared with this worker (run once as each worker starts)."""
    _WORKER_SHARED.clear()
    _WORKER_SHARED.update(values)


def _with_shared(fn: Callable[..., Any], *args: Any) -> Any:
    """Return ``fn(*args)`` with the handles of shared values replaced by the values."""
    return fn(*(_WORKER_SHARED[a.key] if isinstance(a, _Shared) else a for a in args))


class DaskExecutor:
    """Run tasks on the Dask cluster whose scheduler is at ``address`` (``tcp://host:8786``).

    The workers read every source themselves: local paths must be reachable from them
    (a shared filesystem), URLs need the workers' own credentials.
    """

    batch = 32

    def __init__(self, address: str) -> None:
        try:
            from distributed import Client
        except ImportError:
            raise ConfigError(
                "--executor dask needs the 'dask' extra: pip install 'lossdoctor[dask]'"
            ) from None
        try:
            connect: Any = Client
            self._client: Any = connect(address, timeout=CONNECT_TIMEOUT_S, set_as_default=False)
        except (OSError, ValueError, TypeError) as exc:
            reason = " ".join(str(exc).split()) or type(exc).__name__
            raise ConfigError(f"cannot reach the Dask scheduler ({reason})", path=address) from None
        workers = sum(self._client.nthreads().values()) or 1
        self.capacity = workers * TASKS_PER_WORKER

    def share(self, value: Any) -> Any:
        """Return a handle of ``value`` stored on every worker once."""
        return self._client.scatter(value, broadcast=True)

    def submit(self, fn: Callable[..., Any], *args: Any) -> Pending:
        """Start the task on the cluster."""
        future: Pending = self._client.submit(fn, *args, pure=False)
        return future

    def close(self) -> None:
        """Close the connection (the cluster keeps running)."""
        self._client.close()


def make_executor(kind: str = "local", *, jobs: int = 1, scheduler: str | None = None) -> Executor:
    """Return the executor ``kind`` names: ``local`` (``jobs`` processes; in this process
    when 1) or ``dask`` (the cluster at ``scheduler``, else ``$DASK_SCHEDULER_ADDRESS``).

    Raises :class:`ConfigError` for an unknown kind or a scheduler it cannot reach.
    """
    import os

    if kind == "local":
        return ProcessPool(jobs) if jobs > 1 else InProcess()
    if kind == "dask":
        address = scheduler or os.environ.get("DASK_SCHEDULER_ADDRESS")
        if not address:
            raise ConfigError(
                "--executor dask needs --scheduler tcp://HOST:PORT (or DASK_SCHEDULER_ADDRESS)"
            )
        return DaskExecutor(address)
    raise ConfigError(f"unknown executor '{kind}' (choose from local, dask)")
