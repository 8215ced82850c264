"""Errors a person can act on.

Every expected failure (bad policy, bad data, a missing file, mixed units) is a `StewardError`:
one line of cause, one line of hint. The CLI prints both and exits 2; only `--debug` shows a
traceback. The classes live in the risk core so that both packages can raise them without the core
depending on the I/O layer.
"""

from __future__ import annotations


class StewardError(Exception):
    """An expected failure: `cause` says what is wrong and where, `hint` how to fix it."""

    exit_code = 2

    def __init__(self, cause: str, hint: str = "") -> None:
        super().__init__(cause)
        self.cause = cause
        self.hint = hint

    def __str__(self) -> str:
        return self.cause if not self.hint else f"{self.cause} (hint: {self.hint})"


class UnitError(StewardError, ValueError):
    """A value in the wrong unit, mixed units, or a conversion that would lose precision."""


class PolicyError(StewardError):
    """A policy file that cannot be read or does not validate; `problems` lists every one."""

    def __init__(self, cause: str, hint: str = "", problems: tuple[str, ...] = ()) -> None:
        super().__init__(cause, hint)
        self.problems = problems


class DataError(StewardError):
    """Market data that is missing, malformed or fails validation (names the file and row)."""


class RiskInputError(StewardError):
    """Inputs to a risk computation that would give a meaningless number (NaN, LT > 1, ...)."""
