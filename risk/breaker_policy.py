"""A circuit-breaker policy file: which markets to watch, which rules trip, and what calibration must achieve.

A separate kind of policy file (``version: 1`` and a ``breakers:`` mapping), with the conventions of
`risk.policy`: strict models (no coercion), unknown keys refused, frozen, units written out (``"5%"``,
``"2h"``, ``"$50M"``). Its sections live in their own modules: the markets and their sources
(`risk.breaker_markets`), the rules and what each kind compares (`risk.breaker_rules`), how a rule's
threshold reaches the chain (`risk.breaker_setters`), calibration and its grids
(`risk.breaker_calibration`), the monitor's settings (`risk.watch_policy`). This module ties them
together (rules must name markets and sources that exist) and loads the file.

YAML loading reuses `risk.policy_load`'s helpers (positions, field paths, YAML oddities), so problems
are reported as ``file:line:column: field: message`` exactly like venue policies.
"""

from __future__ import annotations

import difflib
import hashlib
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationInfo, field_validator

from risk import breaker_calibration, breaker_markets, breaker_rules, breaker_setters
from risk.breaker_calibration import Calibration
from risk.breaker_markets import NAME_PATTERN, BreakerMarket
from risk.breaker_rules import Rule
from risk.errors import PolicyError
from risk.policy import DataPolicy, Model
from risk.policy_load import Problem, _message, check_model_text
from risk.watch_policy import WatchPolicy


class Breakers(Model):
    name: str = Field(pattern=NAME_PATTERN)
    markets: tuple[BreakerMarket, ...] = Field(min_length=1)
    rules: tuple[Rule, ...] = Field(min_length=1)
    calibration: Calibration | None = None
    data: DataPolicy = DataPolicy()
    watch: WatchPolicy = Field(default=WatchPolicy(), description="The real-time monitor's settings (`steward watch`).")

    @field_validator("markets")
    @classmethod
    def _unique_markets(cls, markets: tuple[BreakerMarket, ...]) -> tuple[BreakerMarket, ...]:
        symbols = [m.symbol for m in markets]
        repeated = sorted({s for s in symbols if symbols.count(s) > 1})
        if repeated:
            raise ValueError(f"market(s) {', '.join(repeated)} appear more than once")
        return markets

    @field_validator("rules")
    @classmethod
    def _rules_refer_to_what_exists(cls, rules: tuple[Any, ...], info: ValidationInfo) -> tuple[Any, ...]:
        markets = {m.symbol: m for m in info.data.get("markets", ())}
        names = [r.name for r in rules]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"rule name(s) {', '.join(repeated)} appear more than once")
        if not markets:
            return rules  # the markets themselves were refused; that is the problem to report
        for i, rule in enumerate(rules):
            where = f"rules[{i}] ({rule.name})"
            unknown = [m for m in rule.markets or () if m not in markets]
            if unknown:
                raise ValueError(f"{where}: unknown market(s) {', '.join(unknown)}; markets are {', '.join(markets)}")
            for symbol in rule.markets or tuple(markets):
                market = markets[symbol]
                sources = [s.name for s in market.sources]
                if rule.watches is not None and rule.watches not in sources:
                    raise ValueError(f"{where}: market {symbol} has no source {rule.watches!r}; its sources are {', '.join(sources)}")
                if rule.kind == "divergence" and len(sources) < 2:
                    raise ValueError(f"{where}: divergence needs at least 2 sources; market {symbol} has {len(sources)}")
                if rule.kind == "oi_cap" and market.open_interest is None:
                    raise ValueError(f"{where}: market {symbol} has no open_interest source for the OI cap")
        return rules

    @field_validator("calibration")
    @classmethod
    def _windows_name_markets(cls, calibration: Calibration | None, info: ValidationInfo) -> Calibration | None:
        markets = {m.symbol for m in info.data.get("markets", ())}
        if calibration is None or not markets:
            return calibration
        names = [w.name for w in calibration.crash_windows]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"crash window name(s) {', '.join(repeated)} appear more than once")
        for w in calibration.crash_windows:
            unknown = [m for m in w.markets or () if m not in markets]
            if unknown:
                raise ValueError(f"crash window {w.name!r}: unknown market(s) {', '.join(unknown)}")
        return calibration

    def market(self, symbol: str) -> BreakerMarket:
        for m in self.markets:
            if m.symbol == symbol:
                return m
        raise PolicyError(f"breakers {self.name}: no market {symbol!r}", f"markets are {', '.join(m.symbol for m in self.markets)}")

    def rules_for(self, symbol: str) -> tuple[Any, ...]:
        return tuple(r for r in self.rules if r.markets is None or symbol in r.markets)


class BreakerPolicy(Model):
    """A circuit-breaker policy file."""

    version: Literal[1] = Field(description="Format version; only 1 exists.")
    breakers: Breakers

    @field_validator("version", mode="before")
    @classmethod
    def _version_is_the_integer_one(cls, raw: Any) -> Any:
        if type(raw) is not int:
            raise ValueError(f"version must be the integer 1, got {type(raw).__name__} {raw!r}")
        return raw


# -------------------------------------------------------------------------------------------- loading


@dataclass(frozen=True, slots=True)
class LoadedBreakerPolicy:
    policy: BreakerPolicy
    path: Path
    text: bytes

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.text).hexdigest()


_SECTIONS = (breaker_markets, breaker_rules, breaker_setters, breaker_calibration)


def _field_names() -> tuple[str, ...]:
    # every model the policy's modules define or import (the models a breaker policy is written in)
    namespaces = [vars(sys.modules[__name__]), *(vars(m) for m in _SECTIONS)]
    models = [m for ns in namespaces for m in ns.values() if isinstance(m, type) and issubclass(m, BaseModel)]
    return tuple(sorted({name for m in models for name in m.model_fields}))


def _breaker_message(err: dict[str, Any]) -> str:
    if err["type"] == "extra_forbidden":  # suggest this file's fields, not a venue policy's
        key = str(err["loc"][-1]) if err["loc"] else ""
        close = difflib.get_close_matches(key, _field_names(), n=1, cutoff=0.8)
        return f"unknown field; did you mean {close[0]!r}?" if close else "unknown field (typo?); remove it or check the spelling"
    return _message(err)


def check_breaker_policy_text(text: bytes, name: str) -> tuple[BreakerPolicy | None, list[Problem]]:
    """Parse and validate a breaker policy; returns it or every problem found (never raises for bad input)."""
    return check_model_text(
        text, name, BreakerPolicy, what="a breaker policy is a YAML mapping (version:, breakers:)", message=_breaker_message
    )


def load_breaker_policy(path: Path, display_name: str | None = None) -> LoadedBreakerPolicy:
    """Load a breaker policy or raise PolicyError listing every problem with its line."""
    name = display_name or str(path)
    try:
        text = Path(path).read_bytes()
    except FileNotFoundError:
        raise PolicyError(f"breaker policy {name} not found", "check the path (examples live in policies/)") from None
    except IsADirectoryError:
        raise PolicyError(f"{name} is a directory, not a breaker policy", "name a .yaml file") from None
    except OSError as exc:
        raise PolicyError(f"breaker policy {name} cannot be read ({exc.strerror or exc})", "check the file's permissions") from None
    policy, problems = check_breaker_policy_text(text, name)
    if policy is None:
        raise PolicyError(f"{name}: {len(problems)} problem(s) in the breaker policy", "fix each line listed", tuple(str(p) for p in problems))
    return LoadedBreakerPolicy(policy=policy, path=Path(path), text=text)
