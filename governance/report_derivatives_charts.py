"""The derivative report's charts, from the values the bundle is built from: margin-coverage backtests
(the recommendation's backtest periods), hedging backtests (the chosen hedge step by step) and
circuit-breaker replays on each labelled crash window.

`derivative_charts` gathers the data and draws it with `governance.charts_derivatives`. Every chart is
checked against the figures the report's tables print (exceedances; the hedge's loss at coverage, loss
avoided and cost a year; each rule's first alert in each window), so a chart cannot silently show other
numbers than the tables next to it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from markupsafe import Markup

from governance import charts_derivatives as draw
from governance.charts import ChartError
from governance.report_derivatives import signed_usd
from risk.breaker_policy import Breakers
from risk.breakers_calibrate import CalibrationReport, Detection, MarketHistory, RuleCalibration, alert_times, history
from risk.breakers_feed import MarketStream
from risk.data_text import iso_utc
from risk.hedging_backtest import HedgeBacktest
from risk.market import MarketData
from risk.policy import Policy
from risk.recommendation_derivatives import BacktestFigures, DerivativeMarketRecommendation, DerivativeRecommendation

REPLAY_PAD_SECONDS = 2 * 86400  # calm time drawn on each side of a crash window
# A chart's series must give the table's figures to this relative precision (summation order differs).
_AGREE_RTOL, _AGREE_ATOL = 1e-9, 1e-12
_UNITS = {"ratio": "%", "seconds": "h", "usd": "USD"}


@dataclass(frozen=True, slots=True)
class BacktestChart:
    """One market's margin backtests, drawn; ``figures`` are the table's rows the panels show."""

    symbol: str
    title: str
    svg: Markup
    figures: tuple[BacktestFigures, ...]


@dataclass(frozen=True, slots=True)
class HedgeChart:
    """One market's hedging backtest, drawn; ``backtest`` holds the figures the hedging table prints,
    ``*_usd`` the totals over the backtest the chart ends at (USD, signed text)."""

    symbol: str
    title: str
    svg: Markup
    backtest: HedgeBacktest
    unhedged_usd: str
    hedged_usd: str
    cost_usd: str


@dataclass(frozen=True, slots=True)
class ReplayChart:
    """One crash window on one market, replayed; ``detections`` per rule drawn, at the policy's thresholds."""

    window: str
    market: str
    title: str
    svg: Markup
    start: str
    end: str
    delay_hours: float
    detections: tuple[tuple[str, str, Detection], ...]  # (rule, threshold as the policy writes it, detection)


@dataclass(frozen=True, slots=True)
class DerivativeCharts:
    backtests: dict[str, BacktestChart]
    replays: tuple[ReplayChart, ...]
    hedges: dict[str, HedgeChart] = field(default_factory=dict)


def _hours(seconds: int) -> str:
    return f"{seconds / 3600:g} h"


def _backtest_chart(m: DerivativeMarketRecommendation, market: MarketData) -> BacktestChart | None:
    seen: dict[str, BacktestFigures] = {}
    for c in m.changes:
        for b in c.backtests:
            if b.series is not None:
                seen.setdefault(b.what, b)
    if not seen:
        return None
    panels = []
    for b in seen.values():
        s = b.series
        assert s is not None
        if int(s.hits.sum()) != b.exceedances or len(s.start) != b.periods:
            raise ChartError(f"{m.symbol} {b.what}: the chart's periods disagree with the backtest's figures", "report a bug; do not publish")
        losses, margins, y_label = s.losses, s.margins, "Loss (% of notional)"
        if s.unit == "USD":  # a book's USD amounts follow the price over the years: per unit of the price they compare
            price = market.series(m.symbol)[s.start]
            losses, margins, y_label = losses / price, margins / price, f"Loss (% of the {m.symbol} price)"
        elif s.unit != "fraction":
            raise ChartError(f"{m.symbol} {b.what}: backtest unit {s.unit!r}", "a backtest series is in 'fraction' or 'USD'")
        panels.append(draw.BacktestPanel(
            label=f"{m.symbol}: {b.what}", unit="%", y_label=y_label, times=market.times[s.start],
            losses=losses, margins=margins, horizon=_hours(s.horizon_steps * market.step_seconds),
        ))
    title = f"{m.symbol}: realised losses against the margin set before each period, exceedances marked"
    svg = draw.margin_backtest(f"backtest-{m.symbol}", tuple(panels), title=title)
    return BacktestChart(m.symbol, title, Markup(svg), tuple(seen.values()))


def _hedge_chart(m: DerivativeMarketRecommendation, market: MarketData) -> HedgeChart | None:
    """The hedged vault against the unhedged one, refused unless its steps give the hedging table's figures."""
    if m.hedge is None or m.hedge.backtest.series is None:
        return None
    bt, s = m.hedge.backtest, m.hedge.backtest.series
    steps = len(s.book_pnl)
    if s.horizon_steps != bt.horizon_steps or steps != bt.windows * s.horizon_steps or not (len(s.hedge_pnl) == len(s.cost) == len(s.notional) == steps):
        raise ChartError(f"{m.symbol} hedging: the chart's {steps} steps are not the table's {bt.windows} horizons of {s.horizon_steps}",
                         "report a bug; do not publish")
    measured = {
        "unhedged loss at coverage": (float(np.quantile(s.window_losses(s.book_pnl), bt.coverage)), bt.unhedged_loss_at_coverage),
        "hedged loss at coverage": (float(np.quantile(s.window_losses(s.hedged_pnl), bt.coverage)), bt.chosen.loss_at_coverage),
        "cost a year": (float((s.cost / s.notional).sum() / bt.years), bt.chosen.cost_per_year),
    }
    for what, (drawn, table) in measured.items():
        if not np.isclose(drawn, table, rtol=_AGREE_RTOL, atol=_AGREE_ATOL):
            raise ChartError(f"{m.symbol} hedging: the chart's {what} ({drawn!r}) disagrees with the hedging table's ({table!r})",
                             "report a bug; do not publish")
    ends = np.arange(0, steps + 1, s.horizon_steps)  # the first horizon's start, then each horizon's end

    def cumulated(per_step: np.ndarray) -> np.ndarray:
        return np.concatenate(([0.0], np.cumsum(per_step)))[ends]

    unhedged, hedged, cost = cumulated(s.book_pnl), cumulated(s.hedged_pnl), cumulated(s.cost)
    c = m.hedge.choice
    hedge = f"{c.hedge_ratio * 100:.0f}% hedged, {c.band * 100:.0f}% band"
    title = f"{m.symbol}: the vault's cumulative P&L, unhedged and {hedge}, over the backtest"
    panel = draw.HedgePanel(times=market.times[s.start + ends], unhedged=unhedged, hedged=hedged, cost=cost, hedge=hedge)
    svg = draw.hedge_backtest(f"hedge-{m.symbol}", panel, title=title)
    return HedgeChart(m.symbol, title, Markup(svg), bt, signed_usd(float(unhedged[-1])), signed_usd(float(hedged[-1])), signed_usd(float(cost[-1])))


def _axis_label(rule: Any) -> str:
    kind = rule.kind
    if kind == "price_band":
        way = {"down": "down", "up": "up"}.get(str(rule.direction), "either way")
        return f"{'Tick' if rule.window is None else rule.window} move {way} (%)"
    return {
        "peg": "Discount to the peg (%)", "divergence": "Gap to the median (%)", "vol_scaling": "Volatility (% a year)",
        "staleness": "Time since the last update (h)", "oi_cap": "Open interest (USD)",
    }[kind]


def _rule_panel(
    r: RuleCalibration, axis_label: str, h: MarketHistory, alerts: np.ndarray, window: tuple[str, int, int], lo: int, hi: int
) -> tuple[draw.RulePanel, Detection]:
    """One rule's panel on one window, from its values and alerts (at the policy's threshold) on the whole history."""
    name, start, end = window
    (detection,) = [d for d in r.policy.detections if d.window == name and d.market == h.market]
    inside = alerts[(alerts >= start) & (alerts <= end)]
    if (int(inside[0]) if len(inside) else None) != detection.first_alert:
        raise ChartError(f"rule {r.rule} on {name}: the replay's first alert differs from breakers.json", "report a bug; do not publish")
    keep = (h.times >= lo) & (h.times <= hi)
    calibrated = None if r.calibrated is None or r.matches_policy else r.calibrated.threshold_value
    panel = draw.RulePanel(
        rule=r.rule, axis_label=axis_label, unit=_UNITS[r.unit], times=h.times[keep], values=h.values[keep],
        threshold=r.policy.threshold_value, calibrated=calibrated, alerts=alerts[(alerts >= lo) & (alerts <= hi)],
    )
    return panel, detection


def _replays(breakers: Breakers, streams: dict[str, MarketStream], report: CalibrationReport) -> tuple[ReplayChart, ...]:
    calibration = breakers.calibration
    assert calibration is not None
    rules = {rule.name: rule for rule in breakers.rules}
    delay = report.max_detection_delay_seconds
    replayed: dict[tuple[str, str], tuple[MarketHistory, np.ndarray]] = {}  # (rule, market): values and alerts, once

    def replay(r: RuleCalibration, market: str) -> tuple[MarketHistory, np.ndarray]:
        if (r.rule, market) not in replayed:
            rule = rules[r.rule]
            h = history(rule, streams[market], calibration)
            # On the whole history, as the calibration counts them: a cooldown carries over into the window.
            replayed[r.rule, market] = h, alert_times(h, r.policy.threshold_value, rule.cooldown.seconds)
        return replayed[r.rule, market]

    out = []
    for w in calibration.crash_windows:
        start, end = int(w.start.timestamp()), int(w.end.timestamp())
        for market in sorted({d.market for d in report.policy.detections if d.window == w.name}):
            stream = streams[market]
            lo, hi = max(start - REPLAY_PAD_SECONDS, int(stream.times[0])), min(end + REPLAY_PAD_SECONDS, int(stream.times[-1]))
            drawn = [r for r in report.rules if r.detects and any(d.window == w.name and d.market == market for d in r.policy.detections)]
            if not drawn:
                continue
            panels, detections = [], []
            for r in drawn:
                panel, detection = _rule_panel(r, _axis_label(rules[r.rule]), *replay(r, market), (w.name, start, end), lo, hi)
                panels.append(panel)
                detections.append((r.rule, r.policy.threshold, detection))
            keep = (stream.times >= lo) & (stream.times <= hi)
            title = f"{market}: the breaker's rules replayed on {w.name} ({iso_utc(start)[:10]} .. {iso_utc(end)[:10]})"
            svg = draw.breaker_replay(f"replay-{w.name}-{market}", stream.times[keep], stream.composite[keep], (start, end), start + delay,
                                      tuple(panels), title=title)
            out.append(ReplayChart(w.name, market, title, Markup(svg), iso_utc(start), iso_utc(end), delay / 3600, tuple(detections)))
    return tuple(out)


def derivative_charts(
    recommendation: DerivativeRecommendation, market: MarketData, policy: Policy, breakers_text: bytes | None, report: CalibrationReport | None
) -> DerivativeCharts:
    """Every chart of the derivative report: each market's backtests, and the breaker replayed on each
    crash window inside the pinned prices (when the policy names a breaker policy)."""
    backtests = {m.symbol: c for m in recommendation.markets if (c := _backtest_chart(m, market)) is not None}
    hedges = {m.symbol: h for m in recommendation.markets if (h := _hedge_chart(m, market)) is not None}
    replays: tuple[ReplayChart, ...] = ()
    if breakers_text is not None and report is not None:
        # Imported here: the pipeline imports this module, and owns how the pinned prices become breaker streams.
        from governance.pipeline_derivatives import INPUT_BREAKERS, _breakers, breaker_streams

        breakers = _breakers(breakers_text, INPUT_BREAKERS)
        replays = _replays(breakers, breaker_streams(breakers, policy, market), report)
    return DerivativeCharts(backtests, replays, hedges)
