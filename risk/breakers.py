"""Circuit-breaker rules: one value per update, a threshold, an alert when it is crossed.

Each rule is a small state machine in two equal forms:

* per update — `RuleMachine.update(tick) -> Alert | None`, what a real-time monitor calls on every
  oracle update (`MarketMonitor` wires a market's feed and rules together);
* vectorised — `rule_values` computes the rule's value at every event of a `MarketStream` at once and
  `fires` finds the alerts; `replay` does it for a whole policy.

Both forms do the same float operations in the same order (divisions and subtractions, which IEEE 754
rounds exactly the same in numpy and Python; the volatility recursion, whose `log` and `pow` might
differ between numpy and the C library, runs the per-update kernel in a tight loop), so they give
identical alerts, which tests/unit/test_breakers.py checks on random streams.

An alert is raised at an update whose value exceeds the threshold (strictly), unless the rule's
previous alert is less than ``cooldown`` seconds old: while a market stays broken the rule reminds
once per cooldown instead of at every update, and a rule that is always on is counted as such. Values are fractions of one (moves, gaps, discounts,
annualised volatility), seconds (staleness) or USD (open interest), as are thresholds.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from risk.breaker_policy import Breakers
from risk.breaker_rules import RULE_KINDS, Direction, threshold_float
from risk.breakers_feed import CompositeFeed, MarketStream, Tick
from risk.data_text import iso_utc
from risk.errors import RiskInputError

YEAR_SECONDS = 365.25 * 86400
NAN = float("nan")


@dataclass(frozen=True, slots=True)
class Alert:
    """A rule tripping: ``time`` unix seconds UTC; ``value`` and ``threshold`` in the rule's unit."""

    time: int
    market: str
    rule: str
    value: float
    threshold: float
    severity: str

    def to_json(self) -> dict[str, Any]:
        return {"market": self.market, "rule": self.rule, "severity": self.severity, "threshold": self.threshold, "time": iso_utc(self.time), "value": self.value}


def margin_scale(vol: float, threshold: float, max_scale: float) -> float:
    """Margin multiplier of the volatility rule: ``vol / threshold``, at least 1 and at most `max_scale` (annualised vols, fractions)."""
    if not (threshold > 0 and max_scale >= 1):
        raise RiskInputError(f"volatility threshold {threshold!r} and max scale {max_scale!r}", "need a positive threshold and a max scale of at least 1")
    return min(max_scale, max(1.0, vol / threshold))


# ------------------------------------------------------------------------------------------ triggers


def _positive_cooldown(cooldown: int) -> int:
    if isinstance(cooldown, bool) or not isinstance(cooldown, (int, np.integer)) or cooldown <= 0:
        raise RiskInputError(f"cooldown {cooldown!r} is not a positive number of seconds", "e.g. 86400 (24h): one alert per incident and day")
    return int(cooldown)


class Trigger:
    """Per update: True when `value` exceeds the threshold and the last alert is at least `cooldown` s old."""

    def __init__(self, threshold: float, cooldown: int) -> None:
        self.threshold, self.cooldown = float(threshold), _positive_cooldown(cooldown)
        self._last: int | None = None

    def step(self, time: int, value: float) -> bool:
        if not value > self.threshold:  # NaN (no value yet) never exceeds
            return False
        if self._last is not None and time - self._last < self.cooldown:
            return False
        self._last = time
        return True


def fires(times: np.ndarray, values: np.ndarray, threshold: float, cooldown: int) -> np.ndarray:
    """Vectorised `Trigger`: boolean mask of the updates that raise an alert.

    Parameters
    ----------
    times : (E,) int64
        Unix seconds, non-decreasing.
    values : (E,) float64
        The rule's value, NaN where it has none.
    threshold : float
        In the rule's unit; an update alerts when its value is strictly above it.
    cooldown : int
        Seconds after an alert during which the rule stays silent (> 0).
    """
    cooldown = _positive_cooldown(cooldown)  # > 0, so each step below moves forward
    out = np.zeros(len(values), bool)
    hit = np.flatnonzero(values > threshold)
    if len(hit):
        t = times[hit]
        after = np.searchsorted(t, t + cooldown, side="left")  # first exceedance once the cooldown is over
        i = 0
        while i < len(hit):  # one step per alert, not per update
            out[hit[i]] = True
            i = int(after[i])
    return out


# -------------------------------------------------------------------------------- values, per update


class _Stat:
    """A rule's value per update; `source` is the index of the source watched, None for the composite."""

    def __init__(self, source: int | None) -> None:
        self.source = source

    def step(self, tick: Tick) -> float:
        if self.source is not None and tick.source != self.source:
            return NAN  # another source's update: this rule has nothing new to judge
        return self.value(tick.time, tick.price if self.source is not None else tick.composite)

    def value(self, time: int, price: float) -> float:  # pragma: no cover - overridden
        raise NotImplementedError


class _BandStat(_Stat):
    def __init__(self, source: int | None, window: int | None, direction: Direction) -> None:
        super().__init__(source)
        self.window, self.direction = window, direction
        self._past: deque[tuple[int, float]] = deque()

    def value(self, time: int, price: float) -> float:
        past = self._past
        past.append((time, price))
        if self.window is None:
            if len(past) == 1:
                return NAN
            ref = past.popleft()[1]
        else:
            cut = time - self.window
            while len(past) > 1 and past[1][0] <= cut:
                past.popleft()  # keep only the last update at or before t - window, and what follows
            if past[0][0] > cut:
                return NAN
            ref = past[0][1]
        change = price / ref - 1.0
        return -change if self.direction is Direction.DOWN else change if self.direction is Direction.UP else abs(change)


class _StaleStat(_Stat):
    def __init__(self, source: int | None) -> None:
        super().__init__(source)
        self._last: int | None = None

    def value(self, time: int, price: float) -> float:
        last, self._last = self._last, time
        return NAN if last is None else float(time - last)


class _PegStat(_Stat):
    def __init__(self, source: int | None, peg: float) -> None:
        super().__init__(source)
        self.peg = float(peg)

    def value(self, time: int, price: float) -> float:
        return 1.0 - price / self.peg


class _VolStat(_Stat):
    """Time-aware EWMA of squared log returns per second: weights halve every `half_life` seconds of time."""

    def __init__(self, source: int | None, half_life: int, warmup: int) -> None:
        super().__init__(source)
        self.half_life, self.warmup = float(half_life), int(warmup)
        self._t: int | None = None
        self._p = 0.0
        self._v = 0.0
        self._n = 0

    def value(self, time: int, price: float) -> float:
        if self._t is None:
            self._t, self._p = time, price
            return NAN
        dt = time - self._t
        if dt > 0:  # a second update in the same second replaces the price; no time passed to scale a variance
            r = math.log(price / self._p)
            x = r * r / dt
            a = 0.5 ** (dt / self.half_life)
            self._v = x if self._n == 0 else a * self._v + (1.0 - a) * x
            self._n += 1
            self._t = time
        self._p = price
        return math.sqrt(self._v * YEAR_SECONDS) if self._n >= self.warmup else NAN


class _DivergenceStat(_Stat):
    def __init__(self) -> None:
        super().__init__(None)

    def step(self, tick: Tick) -> float:
        fresh = [v for v, f in zip(tick.last, tick.fresh) if f and v is not None]
        if len(fresh) < 2:
            return NAN
        return max(abs(v / tick.composite - 1.0) for v in fresh)


class _LevelStat(_Stat):
    """The value itself (open interest in USD)."""

    def step(self, tick: Tick) -> float:
        return tick.price


# ------------------------------------------------------------------------------- values, vectorised


def _band_values(t: np.ndarray, p: np.ndarray, window: int | None, direction: Direction) -> np.ndarray:
    out = np.full(len(p), np.nan)
    if window is None:
        at, ref = np.arange(1, len(p)), np.arange(len(p) - 1)
    else:
        back = np.searchsorted(t, t - window, side="right") - 1  # last update at or before t - window
        at = np.flatnonzero(back >= 0)
        ref = back[at]
    change = p[at] / p[ref] - 1.0
    out[at] = -change if direction is Direction.DOWN else change if direction is Direction.UP else np.abs(change)
    return out


def _stat_for(rule: Any, stream_sources: Sequence[str]) -> _Stat:
    source = None if rule.watches is None else list(stream_sources).index(rule.watches)
    kind = rule.kind
    if kind == "price_band":
        return _BandStat(source, None if rule.window is None else rule.window.seconds, rule.direction)
    if kind == "staleness":
        return _StaleStat(source)
    if kind == "peg":
        return _PegStat(source, rule.peg)
    if kind == "vol_scaling":
        return _VolStat(source, rule.half_life.seconds, rule.warmup)
    if kind == "divergence":
        return _DivergenceStat()
    if kind == "oi_cap":
        return _LevelStat(None)
    raise RiskInputError(f"unknown rule kind {kind!r}", f"use one of {', '.join(sorted(RULE_KINDS))}")


def rule_values(rule: Any, stream: MarketStream) -> tuple[np.ndarray, np.ndarray]:
    """A rule's value at every update it sees, at once: (times (E,) int64, values (E,) float64, NaN where none).

    Price rules see every event of the market's stream (the value is NaN at events of sources they do
    not watch); the OI cap sees the open-interest updates.
    """
    if rule.kind == "oi_cap":
        oi = stream.open_interest
        if oi is None:
            raise RiskInputError(f"rule {rule.name}: market {stream.market} has no open-interest series", "give the market an open_interest source")
        return oi.times, oi.values.copy()
    if rule.kind == "divergence":
        dev = np.abs(stream.last / stream.composite[:, None] - 1.0)
        value = np.where(stream.fresh, dev, -np.inf).max(axis=1)
        return stream.times, np.where(stream.fresh.sum(axis=1) >= 2, value, np.nan)
    mask = stream.signal(rule.watches)
    t, p = stream.times[mask], stream.signal_prices(rule.watches)[mask]
    if rule.kind == "price_band":
        v = _band_values(t, p, None if rule.window is None else rule.window.seconds, rule.direction)
    elif rule.kind == "staleness":
        v = np.r_[np.nan, np.diff(t).astype(np.float64)]
    elif rule.kind == "peg":
        v = 1.0 - p / float(rule.peg)
    elif rule.kind == "vol_scaling":
        step = _VolStat(None, rule.half_life.seconds, rule.warmup).value  # the per-update kernel in a tight loop
        v = np.array([step(a, b) for a, b in zip(t.tolist(), p.tolist())], np.float64)
    else:
        raise RiskInputError(f"unknown rule kind {rule.kind!r}", f"use one of {', '.join(sorted(RULE_KINDS))}")
    out = np.full(len(stream.times), np.nan)
    out[mask] = v
    return stream.times, out


# ------------------------------------------------------------------------------------ rules, replay


def missing_input(rule: Any, stream: MarketStream) -> str:
    """Why `rule` cannot run on this stream (a source or series not given), or ''."""
    if rule.kind == "oi_cap" and stream.open_interest is None:
        return "no open-interest series"
    if rule.kind == "divergence" and len(stream.sources) < 2:
        return f"divergence needs 2 sources, {len(stream.sources)} given"
    if rule.watches is not None and rule.watches not in stream.sources:
        return f"source {rule.watches!r} not given"
    return ""


class RuleMachine:
    """One rule on one market, per update: `update(tick)` returns the alert it raises, if any."""

    def __init__(self, rule: Any, market: str, sources: Sequence[str], threshold: float | None = None) -> None:
        self.rule, self.market = rule, market
        self.threshold = threshold_float(rule.threshold) if threshold is None else float(threshold)
        self._stat = _stat_for(rule, sources)
        self._trigger = Trigger(self.threshold, rule.cooldown.seconds)

    def update(self, tick: Tick) -> Alert | None:
        value = self._stat.step(tick)
        if self._trigger.step(tick.time, value):
            return Alert(tick.time, self.market, self.rule.name, value, self.threshold, self.rule.severity.value)
        return None


@dataclass
class MarketMonitor:
    """A market's feed and rules for a real-time monitor: call `update` per price update, `update_open_interest` per OI update."""

    market: str
    sources: tuple[str, ...]
    fresh_within: int
    rules: tuple[Any, ...]
    _feed: CompositeFeed = field(init=False)
    _price: list[RuleMachine] = field(init=False)
    _oi: list[RuleMachine] = field(init=False)

    def __post_init__(self) -> None:
        self._feed = CompositeFeed(self.sources, self.fresh_within)
        machines = [RuleMachine(r, self.market, self.sources) for r in self.rules]
        self._price = [m for m in machines if m.rule.kind != "oi_cap"]
        self._oi = [m for m in machines if m.rule.kind == "oi_cap"]

    def update(self, time: int, source: int | str, price: float) -> list[Alert]:
        j = self.sources.index(source) if isinstance(source, str) else int(source)
        tick = self._feed.update(int(time), j, float(price))
        return [a for m in self._price if (a := m.update(tick)) is not None]

    def update_open_interest(self, time: int, usd: float) -> list[Alert]:
        tick = Tick(int(time), -1, float(usd), (), (), NAN)
        return [a for m in self._oi if (a := m.update(tick)) is not None]


def replay(breakers: Breakers, streams: Mapping[str, MarketStream], *, thresholds: Mapping[str, float] | None = None) -> tuple[list[Alert], list[str]]:
    """Every alert the policy's rules raise on the given streams, vectorised.

    Parameters
    ----------
    breakers : Breakers
        The policy's markets and rules (thresholds from the policy unless `thresholds` names a rule).
    streams : mapping of market symbol to MarketStream
        The markets to replay; markets absent are skipped.
    thresholds : mapping of rule name to float, optional
        Thresholds to use instead of the policy's (in the rule's float unit).

    Returns
    -------
    (list of Alert, list of str)
        Alerts in the order a `MarketMonitor` per market would raise them when fed price updates (then
        open-interest updates) in time order, markets in policy order; and a note per rule skipped for
        want of an input.
    """
    keyed: list[tuple[tuple[int, int, int, int, int], Alert]] = []
    skipped: list[str] = []
    for m_index, market in enumerate(breakers.markets):
        stream = streams.get(market.symbol)
        if stream is None:
            continue
        for r_index, rule in enumerate(breakers.rules):
            if rule.markets is not None and market.symbol not in rule.markets:
                continue
            why = missing_input(rule, stream)
            if why:
                skipped.append(f"{market.symbol} {rule.name}: skipped ({why})")
                continue
            threshold = (thresholds or {}).get(rule.name, threshold_float(rule.threshold))
            times, values = rule_values(rule, stream)
            oi = int(rule.kind == "oi_cap")
            for e in np.flatnonzero(fires(times, values, threshold, rule.cooldown.seconds)).tolist():
                alert = Alert(int(times[e]), market.symbol, rule.name, float(values[e]), float(threshold), rule.severity.value)
                keyed.append(((alert.time, m_index, oi, e, r_index), alert))
    keyed.sort(key=lambda k: k[0])
    return [a for _, a in keyed], skipped
