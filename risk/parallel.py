"""The seam between the risk core and whatever runs its embarrassingly parallel work.

The core never starts processes or imports a distributed engine. A function that has many independent
pieces of work (scenario chunks, markets, parameter candidates, venues) takes a ``map`` argument: a
`TaskMap`, which applies a module-level function to every task and returns the results *in task
order*. `serial_map` is the default; `governance.executors` provides local processes and Ray.

Results never depend on which worker ran a task, or on how many workers there were, because every
random draw inside a task is seeded from the task's own stable keys (`task_seed`), never from a
worker's identity, a global generator or the order tasks happened to finish in.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from typing import Protocol, TypeVar

import numpy as np

from risk.errors import RiskInputError

T = TypeVar("T")
R = TypeVar("R")

__all__ = ["TaskMap", "key_words", "serial_map", "task_generator", "task_seed"]


class TaskMap(Protocol):
    """Apply `fn` to every task; return the results in the order of `tasks`.

    `fn` is a module-level function and `tasks` are picklable values, so that an implementation may
    run them in other processes or on other machines. An exception raised by `fn` propagates.
    """

    def __call__(self, fn: Callable[[T], R], tasks: Sequence[T], /) -> list[R]: ...


def serial_map(fn: Callable[[T], R], tasks: Sequence[T], /) -> list[R]:
    """The `TaskMap` that runs every task here, one after the other."""
    return [fn(task) for task in tasks]


_INT, _STR = 0, 1  # a tag per key so that the string "3" and the number 3 never give the same words


def key_words(*keys: str | int) -> tuple[int, ...]:
    """Stable spawn-key words for task keys: ``(tag, value)`` per key.

    A string is hashed with SHA-256 (first 8 bytes, big-endian): Python's ``hash()`` is salted per
    process, so it would give each worker different seeds. A number is used as it is (whole, >= 0).
    """
    words: list[int] = []
    for key in keys:
        if isinstance(key, str):
            words += [_STR, int.from_bytes(hashlib.sha256(key.encode("utf-8")).digest()[:8], "big")]
        elif isinstance(key, (int, np.integer)) and not isinstance(key, bool) and key >= 0:
            words += [_INT, int(key)]
        else:
            raise RiskInputError(f"task key {key!r} is not a string or a whole number >= 0",
                                 "key tasks by market symbol, chunk index, candidate index")
    return tuple(words)


def task_seed(root_seed: int, *keys: str | int) -> np.random.SeedSequence:
    """The seed sequence of one task: the run's `root_seed` and the task's stable keys.

    Parameters
    ----------
    root_seed : int
        The run's seed (e.g. the policy's ``scenarios.seed``), a whole number >= 0.
    *keys : str or int
        What identifies the task's stream: market symbol, chunk index, candidate index... With no
        keys the sequence is ``SeedSequence(root_seed)`` itself, so a task keyed by nothing draws
        exactly what a serial run seeded with `root_seed` draws.

    Returns
    -------
    numpy.random.SeedSequence
        ``SeedSequence(root_seed, spawn_key=key_words(*keys))``; independent streams for different
        keys, the same stream for the same keys in any process.
    """
    if isinstance(root_seed, bool) or not isinstance(root_seed, (int, np.integer)) or root_seed < 0:
        raise RiskInputError(f"root seed {root_seed!r} is not a whole number >= 0", "use the policy's scenarios.seed")
    return np.random.SeedSequence(int(root_seed), spawn_key=key_words(*keys))


def task_generator(root_seed: int, *keys: str | int) -> np.random.Generator:
    """A PCG64 generator seeded by `task_seed` (the generator every seeded stage of the core uses)."""
    return np.random.Generator(np.random.PCG64(task_seed(root_seed, *keys)))
