"""One market's live state for the monitor, updated per oracle update in O(rules + log n).

Per update a `MarketWatch` feeds the breakers' own per-update machinery — `CompositeFeed` (the
median of the fresh sources) and one `RuleMachine` per rule, exactly what `MarketMonitor` wires, so
the alerts are the ones `steward breakers replay` gives — then follows the composite price with:

* an online EWMA volatility: the ``vol_scaling`` rule's own per-update kernel (time-aware, weights
  halving every half-life of *time*), with that rule's half-life and warm-up when the market has one,
  else the watch section's;
* the book's health at the new price (`risk.watch_health`: two binary searches) and the health
  trigger (`risk.breakers.Trigger`: the breakers' threshold-and-cooldown semantics);
* on demand, what the policies would now recommend (`MarketWatch.recommendation`): the margin
  multiplier of the vol rule (``vol / threshold`` clamped to [1, max_scale]) and, with a venue policy,
  the lending rule's LTV and liquidation threshold at the current volatility (`risk.rule`). It is
  computed when asked (an event, the live view) rather than per update: it is a pure function of the
  volatility and price held here, and the lending rule's normal quantile costs more than an update.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from risk.breakers import (
    YEAR_SECONDS,
    Alert,
    RuleMachine,
    Trigger,
    _VolStat,
    margin_scale,
)
from risk.breakers_feed import CompositeFeed
from risk.policy import Market, Policy
from risk.rule import targets_for_market
from risk.watch_events import HealthEvent
from risk.watch_health import HealthPoint, MarketHealth
from risk.watch_policy import WatchPolicy

NAN = float("nan")
# Builds a market's health index at its first price: (market symbol, market index, price USD) -> index or None.
HealthFactory = Callable[[str, int, float], MarketHealth | None]


def vol_settings(rules: Sequence[Any], watch: WatchPolicy) -> tuple[int, int, Any]:
    """(half-life s, warm-up, the vol rule or None) the monitor follows for a market with these rules.

    The composite-price vol rule wins, then any vol rule (its settings, on the composite), then the
    watch section's defaults.
    """
    vol_rules = [r for r in rules if r.kind == "vol_scaling"]
    chosen = next((r for r in vol_rules if r.watches is None), vol_rules[0] if vol_rules else None)
    if chosen is None:
        return watch.vol_half_life.seconds, watch.vol_warmup, None
    return chosen.half_life.seconds, int(chosen.warmup), chosen


@dataclass(frozen=True, slots=True)
class MarketRecommendation:
    """What the policies recommend at the current volatility; None where a policy has no say.

    Attributes
    ----------
    vol : float
        Annualised EWMA volatility of the composite price (fraction of one; NaN during warm-up).
    margin_scale : float or None
        Margin multiplier of the market's vol rule, in [1, max_scale].
    ltv, liquidation_threshold : float or None
        The venue policy's lending-rule targets (fractions of one), unquantised and before change limits.
    """

    vol: float
    margin_scale: float | None
    ltv: float | None
    liquidation_threshold: float | None

    def to_json(self) -> dict[str, float | None]:
        return {"liquidation_threshold": self.liquidation_threshold, "ltv": self.ltv, "margin_scale": self.margin_scale,
                "vol": None if math.isnan(self.vol) else self.vol}


class MarketWatch:
    """A market's feed, rules, volatility and book health, advanced by `update` in arrival order."""

    def __init__(self, index: int, symbol: str, sources: Sequence[str], fresh_within: int, rules: Sequence[Any], watch: WatchPolicy,
                 health_factory: HealthFactory | None = None) -> None:
        self.index, self.symbol, self.sources, self.fresh_within = index, symbol, tuple(sources), int(fresh_within)
        self.source_index = {s: j for j, s in enumerate(self.sources)}
        self.rules = tuple(rules)
        self._feed = CompositeFeed(self.sources, self.fresh_within)
        self._machines = [RuleMachine(r, symbol, self.sources) for r in self.rules]
        half_life, warmup, self.vol_rule = vol_settings(self.rules, watch)
        self._vol = _VolStat(None, half_life, warmup)  # the vol rule's kernel, on the composite
        self._factory = health_factory
        self._health_cfg = watch.health
        self._trigger = Trigger(watch.health.debt_at_risk.as_float(), watch.health.cooldown.seconds)
        self.health: MarketHealth | None = None
        self.point: HealthPoint | None = None
        self.price = NAN
        self.vol = NAN
        self.time: int | None = None
        self.fresh: tuple[bool, ...] = (False,) * len(self.sources)
        self.last_alert: Alert | None = None

    def update(self, time: int, source: int, price: float) -> tuple[list[Alert], HealthEvent | None]:
        """Apply one accepted update (source index into `sources`); return its alerts and health event."""
        tick = self._feed.update(time, source, price)
        alerts = [a for m in self._machines if (a := m.update(tick)) is not None]
        if alerts:
            self.last_alert = alerts[-1]
        self.time, self.price, self.fresh = tick.time, tick.composite, tick.fresh
        self.vol = self._vol.value(tick.time, tick.composite)
        event = None
        if self.health is None and self._factory is not None:
            self.health = self._factory(self.symbol, self.index, tick.composite)
            self._factory = None  # built once, at the first price
        if self.health is not None:
            self.point = point = self.health.at(tick.composite)
            if self._trigger.step(tick.time, point.debt_share_at_risk):
                cfg = self._health_cfg
                event = HealthEvent(tick.time, self.symbol, point.debt_share_at_risk, self._trigger.threshold, point, tick.composite,
                                    cfg.severity, cfg.action)
        return alerts, event

    def recommendation(self, venue: Policy | None = None, venue_market: Market | None = None) -> MarketRecommendation:
        """The vol-adjusted margin multiplier and lending targets at the current state (see module doc)."""
        return recommend_at(self.vol, self.price, self.vol_rule, venue, venue_market)


def recommend_at(vol: float, price: float, vol_rule: Any, venue: Policy | None = None, venue_market: Market | None = None) -> MarketRecommendation:
    """What the policies recommend at annualised volatility `vol` and price `price` (USD).

    The margin multiplier is the vol rule's (`risk.breakers.margin_scale`); the LTV and threshold are
    the venue's lending rule (`risk.rule.targets_for_market`) at the per-step sigma
    ``vol * sqrt(step / year)`` of the venue's scenario step.
    """
    scale, ltv, lt = None, None, None
    if vol_rule is not None and math.isfinite(vol):
        scale = margin_scale(vol, vol_rule.threshold.as_float(), vol_rule.max_scale.as_float())
    if venue is not None and venue_market is not None and math.isfinite(vol) and price > 0:
        sigma_step = vol * math.sqrt(venue.scenarios.step.seconds / YEAR_SECONDS)
        targets = targets_for_market(venue, venue_market, sigma_step, price)
        if math.isfinite(targets.ltv):
            ltv, lt = targets.ltv, targets.liquidation_threshold
    return MarketRecommendation(vol, scale, ltv, lt)
