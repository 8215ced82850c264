"""Where the risk core's parallel work runs: here, in local processes, or on a Ray cluster.

Every executor has one method, ``map(fn, tasks) -> list``: the `risk.parallel.TaskMap` the core takes.
Results come back in task order, and since each task seeds itself from its own keys
(`risk.parallel.task_seed`), they are the same bytes whatever the executor and the worker count.

* `SerialExecutor` — in this process (tests, debugging: a task's error comes with its traceback).
* `LocalExecutor` — a pool of worker processes on this machine (the default; no extra install).
  Workers are started with ``spawn``: a fresh interpreter, no copied locks or BLAS threads from the
  parent. A task whose worker dies (killed, out of memory, a crash in native code) breaks the pool;
  the pool is rebuilt and the unfinished tasks are submitted again, up to `max_attempts` rounds.
* `RayExecutor` — Ray (``pip install .[ray]``): a local cluster started for the run, ``auto`` for the
  cluster this machine belongs to, or ``ray://HOST:PORT``. Ray resubmits a task whose worker died
  (`max_retries`). On a remote cluster the nodes need the ``steward`` package installed (or pass
  ``runtime_env={"py_modules": [...]}``).

`make_executor` reads the CLI's ``--executor`` text: ``serial``, ``local``, ``local:N``, ``ray``,
``ray:N``, ``ray:auto``, ``ray://HOST:PORT``.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from types import TracebackType
from typing import Any, Protocol, TypeVar

from risk.errors import StewardError

T = TypeVar("T")
R = TypeVar("R")

DEFAULT_ATTEMPTS = 3
_MISSING: Any = object()
SPECS = "serial, local, local:N, ray, ray:N, ray:auto or ray://HOST:PORT"


class ExecutorError(StewardError):
    """The executor could not run the tasks (workers kept dying, Ray missing or unreachable)."""


class Executor(Protocol):
    """Runs independent tasks; `map` is a `risk.parallel.TaskMap`."""

    name: str
    workers: int

    def map(self, fn: Callable[[T], R], tasks: Sequence[T], /) -> list[R]: ...

    def close(self) -> None: ...


class _Closing:
    def __enter__(self) -> Any:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:  # pragma: no cover - overridden
        pass


class SerialExecutor(_Closing):
    """Every task in this process, in order."""

    name = "serial"
    workers = 1

    def map(self, fn: Callable[[T], R], tasks: Sequence[T], /) -> list[R]:
        return [fn(t) for t in tasks]


def _cpu_count() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def _workers(value: int | None, what: str) -> int:
    if value is None:
        return _cpu_count()
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ExecutorError(f"{what}: {value!r} workers", "give a whole number of workers >= 1, e.g. local:2")
    return value


class LocalExecutor(_Closing):
    """A pool of `workers` processes on this machine, kept between `map` calls until `close`.

    Parameters
    ----------
    workers : int, optional
        Processes; default the CPUs this process may use.
    max_attempts : int
        Rounds of submission per `map`: after a worker dies the pool is rebuilt and the unfinished
        tasks are resubmitted, at most ``max_attempts - 1`` times.
    context : str
        ``spawn`` (default) or ``forkserver``: never ``fork``, which copies the parent's threads' locks.
    """

    name = "local"

    def __init__(self, workers: int | None = None, *, max_attempts: int = DEFAULT_ATTEMPTS, context: str = "spawn") -> None:
        self.workers = _workers(workers, "local executor")
        if isinstance(max_attempts, bool) or not isinstance(max_attempts, int) or max_attempts < 1:
            raise ExecutorError(f"local executor: max_attempts {max_attempts!r}", "give a whole number >= 1")
        if context not in ("spawn", "forkserver"):
            raise ExecutorError(f"local executor: start method {context!r}", "use spawn or forkserver")
        self.max_attempts = max_attempts
        self.context = context
        self.restarts = 0  # pools rebuilt after a worker died, over this executor's life
        self._pool: ProcessPoolExecutor | None = None

    def _get_pool(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(max_workers=self.workers, mp_context=multiprocessing.get_context(self.context))
        return self._pool

    def _drop_pool(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def map(self, fn: Callable[[T], R], tasks: Sequence[T], /) -> list[R]:
        tasks = list(tasks)
        results: list[Any] = [_MISSING] * len(tasks)
        pending = list(range(len(tasks)))
        for _ in range(self.max_attempts):
            if not pending:
                break
            pool = self._get_pool()
            futures: dict[int, Future[R]] = {}
            broken = False
            try:
                for i in pending:
                    futures[i] = pool.submit(fn, tasks[i])
            except BrokenProcessPool:  # a worker died while we were still submitting
                broken = True
            for i, future in futures.items():
                try:
                    results[i] = future.result()
                except BrokenProcessPool:
                    broken = True  # keep harvesting: tasks that finished before the death keep their results
                except BaseException:
                    for other in futures.values():
                        other.cancel()
                    raise
            pending = [i for i in pending if results[i] is _MISSING]
            if not broken:
                break
            self.restarts += 1
            self._drop_pool()
        if pending:
            shown = ", ".join(str(i) for i in pending[:5]) + (" ..." if len(pending) > 5 else "")
            raise ExecutorError(
                f"a worker process died in each of {self.max_attempts} attempts; task(s) {shown} of {len(tasks)} never finished",
                "a task may run out of memory (use smaller chunks) or crash the interpreter; run with --executor serial to see it",
            )
        return results

    def close(self) -> None:
        self._drop_pool()


def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ExecutorError("the ray executor needs Ray, which is not installed", "pip install .[ray]  (or use --executor local)") from None
    return ray


class RayExecutor(_Closing):
    """Tasks as Ray remote functions; a local cluster is started (and stopped on `close`) unless an address is given.

    Parameters
    ----------
    address : str, optional
        None: start a local cluster of `workers` CPUs for this executor. ``"auto"``: join the cluster
        this machine belongs to. ``"ray://HOST:PORT"``: a remote cluster through Ray Client.
    workers : int, optional
        CPUs of the local cluster (default: this machine's); ignored when joining a cluster.
    max_retries : int
        Times Ray resubmits a task whose worker died (application errors are not retried).
    runtime_env : dict, optional
        Ray's runtime environment (e.g. ``{"py_modules": [...]}`` when the nodes lack steward).
    """

    name = "ray"

    def __init__(self, address: str | None = None, workers: int | None = None, *, max_retries: int = DEFAULT_ATTEMPTS,
                 runtime_env: dict[str, Any] | None = None) -> None:
        if address is not None and address != "auto" and not address.startswith("ray://"):
            raise ExecutorError(f"ray address {address!r}", "use auto, ray://HOST:PORT, or none for a local cluster")
        if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
            raise ExecutorError(f"ray executor: max_retries {max_retries!r}", "give a whole number >= 0")
        self.address = address
        self.workers = _workers(workers, "ray executor")
        self.max_retries = max_retries
        self.runtime_env = runtime_env
        self._ray: Any = None
        self._started = False
        self._remotes: dict[Callable[..., Any], Any] = {}

    def _connect(self) -> Any:
        if self._ray is not None:
            return self._ray
        ray = _import_ray()
        if ray.is_initialized():
            raise ExecutorError("Ray is already initialised in this process", "use one RayExecutor at a time and close it")
        options: dict[str, Any] = {"log_to_driver": False}
        if self.runtime_env is not None:
            options["runtime_env"] = self.runtime_env
        try:
            if self.address is None:
                ray.init(address="local", num_cpus=self.workers, include_dashboard=False, **options)
            else:
                ray.init(address=self.address, **options)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            where = "a local Ray cluster" if self.address is None else f"Ray at {self.address}"
            raise ExecutorError(f"cannot start or reach {where}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}",
                                "check the address (ray://HOST:PORT, port 10001 by default) or use --executor local") from None
        self._ray, self._started = ray, True
        if self.address is not None:
            self.workers = max(1, int(ray.cluster_resources().get("CPU", 1)))
        return ray

    def map(self, fn: Callable[[T], R], tasks: Sequence[T], /) -> list[R]:
        ray = self._connect()
        remote = self._remotes.get(fn)
        if remote is None:
            remote = self._remotes[fn] = ray.remote(max_retries=self.max_retries, retry_exceptions=False, num_cpus=1)(fn)
        refs = [remote.remote(t) for t in tasks]
        try:
            return list(ray.get(refs))
        except ray.exceptions.RayError:
            # No ray.cancel of the others: cancelling a task while its reply is in flight aborts the
            # driver in Ray 2.60 ("Tried to complete task that was not pending", seen in CI). Let every
            # task finish, then report the first failure in task order, whichever failed first in time.
            ray.wait(refs, num_returns=len(refs))
            for ref in refs:
                self._raise_failure(ray, ref)
            raise

    def _raise_failure(self, ray: Any, ref: Any) -> None:
        """Raise what task `ref` failed with, as the task raised it; return if it succeeded."""
        try:
            ray.get(ref)
        except ray.exceptions.RayTaskError as exc:
            cause = getattr(exc, "cause", None)
            if isinstance(cause, BaseException):
                raise cause from None  # the task's own error (a StewardError stays one)
            raise
        except (ray.exceptions.WorkerCrashedError, ray.exceptions.NodeDiedError, ray.exceptions.ObjectLostError) as exc:
            raise ExecutorError(f"a Ray worker died more than {self.max_retries} time(s) running a task: {type(exc).__name__}",
                                "a task may run out of memory (use smaller chunks) or crash; run with --executor serial to see it") from None

    def close(self) -> None:
        if self._started and self._ray is not None:
            self._ray.shutdown()
        self._ray, self._started = None, False
        self._remotes.clear()


def make_executor(spec: str) -> SerialExecutor | LocalExecutor | RayExecutor:
    """The executor named by `spec` (the CLI's ``--executor``): see the module docstring."""
    text = spec.strip()
    if text == "serial":
        return SerialExecutor()
    if text.startswith("ray://"):
        return RayExecutor(address=text)
    kind, _, count = text.partition(":")
    if kind not in ("local", "ray") or (_ and not count):
        raise ExecutorError(f"executor {spec!r} is not one of {SPECS}", "e.g. --executor local:2 or --executor ray://head:10001")
    if kind == "ray" and count == "auto":
        return RayExecutor(address="auto")
    workers = None
    if count:
        if not count.isdigit() or int(count) < 1:
            raise ExecutorError(f"executor {spec!r}: {count!r} is not a number of workers >= 1", f"use one of {SPECS}")
        workers = int(count)
    return LocalExecutor(workers) if kind == "local" else RayExecutor(workers=workers)
