"""Charts of the derivative report: margin-coverage backtests, hedging backtests and circuit-breaker replays.

Same house style and the same determinism as the lending charts (`governance.charts`: ink that follows
the page colour, a fixed ``svg.hashsalt`` per chart, no metadata, text kept as text, memoised per
process); plain arrays in, one inline ``<svg>`` string out. Units are in every axis label.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import matplotlib.dates as mdates
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

# The house style lives in governance.charts; these helpers are its building blocks, shared on purpose.
from governance.charts import _WIDTH_IN, PALETTE, ChartError, _finite, _memoised, _render, compact_tick, percent_tick, usd_tick

# Path coordinates to 0.01 pt (matplotlib writes 6 decimals): a backtest draws thousands of periods,
# and the page is read at about 1 px per pt.
_PATH_DATA = re.compile(r' d="[^"]*"')
_LONG_DECIMAL = re.compile(r"(\d\.\d\d)\d+")

# Marker colour and shape per rule on a replay's price panel (the price itself is PALETTE["series"]).
_RULE_STYLES = (("current", "v"), ("other", "D"), ("target", "s"), ("proposed", "^"))


@dataclass(frozen=True, slots=True, eq=False)
class BacktestPanel:
    """One backtest: per period, the loss realised over it and the margin set at its start.

    ``times`` are the periods' starts (unix seconds UTC); ``losses`` and ``margins`` are fractions
    (of notional, or of a price: ``y_label`` says which) when ``unit`` is "%" (drawn in percent), or
    amounts in USD when it is "USD".
    """

    label: str
    unit: str
    y_label: str
    times: np.ndarray
    losses: np.ndarray
    margins: np.ndarray
    horizon: str  # the period's length in words, e.g. "8 h"


@dataclass(frozen=True, slots=True, eq=False)
class RulePanel:
    """One breaker rule replayed: its value at each update, its threshold, and the times it alerted.

    ``values`` and the thresholds are in the rule's unit as `risk.breakers` computes them: fractions
    ("%" drawn in percent), seconds ("h" drawn in hours) or USD. ``calibrated`` is the calibration's
    threshold when it differs from the policy's, else None. NaN values (no value yet) are gaps.
    """

    rule: str
    axis_label: str
    unit: str
    times: np.ndarray
    values: np.ndarray
    threshold: float
    calibrated: float | None
    alerts: np.ndarray  # unix seconds UTC, within the panel's range


def _date_axis(ax: Axes) -> None:
    locator = mdates.AutoDateLocator(minticks=4, maxticks=8)
    ax.xaxis.set_major_locator(locator)
    # Day ticks read "12 Mar" and the offset names the year only (its default, "2020-Mar", reads as a tick).
    formats = ["%Y", "%b", "%d %b", "%H:%M", "%H:%M", "%S.%f"]
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator, formats=formats, offset_formats=["", "%Y", "%Y", "%Y-%m-%d", "%Y-%m-%d", "%Y-%m-%d"]))


def _scaled(unit: str, x: np.ndarray | float) -> np.ndarray | float:
    """Values as drawn: fractions in percent, seconds in hours, USD as they are."""
    return x * 100.0 if unit == "%" else x / 3600.0 if unit == "h" else x


def _tick(unit: str) -> FuncFormatter:
    if unit == "%":
        return FuncFormatter(percent_tick)
    if unit == "USD":
        return FuncFormatter(lambda x, _pos=None: usd_tick(x) if abs(x) < 1e4 else f"${compact_tick(x)}")
    return FuncFormatter(lambda x, _pos=None: f"{x:g}")


def _signed_usd_tick(x: float, _pos: object = None) -> str:
    """USD ticks that may be negative: -$1.2M, $350k, $0."""
    sign = "-" if x < 0 else ""
    return f"{sign}${compact_tick(abs(x))}"


def _compact(svg: str) -> str:
    return _PATH_DATA.sub(lambda m: _LONG_DECIMAL.sub(lambda d: d.group(1), m.group(0)), svg)


def _dates(t: np.ndarray) -> np.ndarray:
    return np.asarray(t, dtype=np.int64).astype("datetime64[s]")


@_memoised
def margin_backtest(salt: str, panels: Sequence[BacktestPanel], *, title: str) -> str:
    """Small multiples, one per backtest: realised loss per period against the margin set before it,
    exceedances marked (the periods `risk.backtest.backtest_losses` counts: loss > margin)."""
    if not panels:
        raise ChartError(f"chart {salt}: no backtest to draw", "draw a backtest chart only for backtests with periods")
    checked = []
    for p in panels:
        t = np.asarray(p.times, dtype=np.int64)
        checked.append((p, t, _finite(f"{p.label} losses", p.losses, len(t)), _finite(f"{p.label} margins", p.margins, len(t))))

    def draw(fig: Figure) -> None:
        axes = fig.subplots(len(checked), 1, squeeze=False)[:, 0]
        for ax, (p, t, loss, margin) in zip(axes, checked, strict=True):
            dates, hits = _dates(t), loss > margin
            ax.plot(dates, _scaled(p.unit, loss), color=PALETTE["series"], linewidth=0.5, label=f"realised loss over {p.horizon}")
            ax.plot(dates, _scaled(p.unit, margin), color=PALETTE["proposed"], linewidth=1.1, label="margin set at the period's start")
            ax.plot(dates[hits], _scaled(p.unit, loss[hits]), "o", color=PALETTE["current"], markersize=4,
                    label=f"exceedance ({int(hits.sum())} of {len(t)})")
            ax.axhline(0.0, color=PALETTE["series"], linewidth=0.4, alpha=0.5)
            ax.set_title(p.label, pad=22)
            _date_axis(ax)
            ax.yaxis.set_major_formatter(_tick(p.unit))
            ax.set_xlabel("Period start (UTC)")
            ax.set_ylabel(p.y_label)
            ax.legend(loc="lower left", bbox_to_anchor=(0, 1.01), ncols=3, fontsize=8, borderaxespad=0)  # above: no data behind it
        # Fixed margins (inches): tight_layout would cost as much as the drawing itself.
        h, gap = fig.get_figheight(), 1.3  # between panels: x label, tick labels, the next title and legend
        axes_h = (h - 1.3 - gap * (len(checked) - 1)) / len(checked)
        fig.subplots_adjust(left=1.0 / _WIDTH_IN, right=1 - 0.15 / _WIDTH_IN, top=1 - 0.7 / h, bottom=0.6 / h, hspace=gap / axes_h)

    return _compact(_render(salt, title, 1.3 + 2.2 * len(checked) + 1.3 * (len(checked) - 1), draw))


@dataclass(frozen=True, slots=True, eq=False)
class HedgePanel:
    """A hedging backtest at each horizon's end, cumulated from the first horizon's start (all USD).

    ``times`` has one entry per horizon boundary (unix seconds UTC, the first is the start, so one more
    than the horizons); ``unhedged`` and ``hedged`` (net of costs) are the vault's cumulative P&L there,
    ``cost`` the cumulative fees and slippage the hedge paid. ``hedge`` names the hedge, e.g. "100% hedged, 5% band".
    """

    times: np.ndarray
    unhedged: np.ndarray
    hedged: np.ndarray
    cost: np.ndarray
    hedge: str


@_memoised
def hedge_backtest(salt: str, panel: HedgePanel, *, title: str) -> str:
    """The vault's cumulative P&L unhedged and hedged with the recommended band, and what the hedge cost."""
    t = np.asarray(panel.times, dtype=np.int64)
    if len(t) < 2 or np.any(np.diff(t) <= 0):
        raise ChartError(f"chart {salt}: {len(t)} horizon boundaries, not increasing", "pass the start and each horizon's end")
    unhedged, hedged, cost = (_finite(f"{salt} {n}", a, len(t)) for n, a in (("unhedged", panel.unhedged), ("hedged", panel.hedged), ("cost", panel.cost)))
    dates = _dates(t)

    def draw(fig: Figure) -> None:
        pnl_ax, cost_ax = fig.subplots(2, 1, sharex=True, height_ratios=(2.0, 1.0))
        pnl_ax.plot(dates, unhedged, color=PALETTE["current"], linewidth=0.9, label="unhedged vault")
        pnl_ax.plot(dates, hedged, color=PALETTE["proposed"], linewidth=1.1, label=f"{panel.hedge}, net of costs")
        pnl_ax.axhline(0.0, color=PALETTE["series"], linewidth=0.4, alpha=0.5)
        pnl_ax.yaxis.set_major_formatter(FuncFormatter(_signed_usd_tick))
        pnl_ax.set_ylabel("Cumulative P&L (USD)")
        pnl_ax.legend(loc="lower left", bbox_to_anchor=(0, 1.01), ncols=2, fontsize=8, borderaxespad=0)
        cost_ax.plot(dates, cost, color=PALETTE["series"], linewidth=1.0, label="fees and slippage paid")
        cost_ax.yaxis.set_major_formatter(FuncFormatter(_signed_usd_tick))
        cost_ax.set_ylabel("Cumulative cost (USD)", fontsize=8.5)
        cost_ax.legend(loc="upper left", fontsize=7.5)
        _date_axis(cost_ax)
        cost_ax.set_xlabel("Time (UTC)")
        # Fixed margins (inches), as the other derivative charts.
        h = fig.get_figheight()
        fig.subplots_adjust(left=1.05 / _WIDTH_IN, right=1 - 0.15 / _WIDTH_IN, top=1 - 0.45 / h, bottom=0.55 / h, hspace=0.25)

    return _compact(_render(salt, title, 4.8, draw))


@_memoised
def breaker_replay(
    salt: str, times: np.ndarray, prices_usd: np.ndarray, window: tuple[int, int], deadline: int, rules: Sequence[RulePanel], *, title: str
) -> str:
    """A crash window replayed: the price with each rule's alerts, then one panel per rule with its value,
    its threshold and its alerts. ``window`` is the labelled crash (start, end) and ``deadline`` the
    latest detection that counts (start + maximum delay), unix seconds UTC."""
    t = np.asarray(times, dtype=np.int64)
    p = _finite("prices_usd", prices_usd, len(t))
    for r in rules:
        if len(r.values) != len(r.times):
            raise ChartError(f"rule {r.rule}: {len(r.times)} times and {len(r.values)} values", "pass one value per update")
    if len(_RULE_STYLES) < len(rules):
        raise ChartError(f"chart {salt}: {len(rules)} rules, at most {len(_RULE_STYLES)} per replay", "replay fewer rules per chart")

    def mark_window(ax: Axes) -> None:
        ax.axvspan(_dates(np.array([window[0]]))[0], _dates(np.array([window[1]]))[0], color=PALETTE["target"], alpha=0.12, linewidth=0)
        ax.axvline(_dates(np.array([deadline]))[0], color=PALETTE["target"], linestyle=":", linewidth=1.2)

    def draw(fig: Figure) -> None:
        axes = fig.subplots(1 + len(rules), 1, squeeze=False, sharex=True)[:, 0]
        top = axes[0]
        top.plot(_dates(t), p, color=PALETTE["series"], linewidth=1.0, label="price (USD)")
        for (colour, marker), r in zip(_RULE_STYLES, rules, strict=False):
            at = np.searchsorted(t, r.alerts, side="right") - 1  # the price known at the alert
            top.plot(_dates(r.alerts), p[np.clip(at, 0, len(p) - 1)], marker, color=PALETTE[colour], markersize=6,
                     linestyle="none", label=f"{r.rule} alert ({len(r.alerts)})")
        mark_window(top)
        top.yaxis.set_major_formatter(FuncFormatter(usd_tick))
        top.set_ylabel("Price (USD)")
        top.legend(loc="lower left", bbox_to_anchor=(0, 1.01), ncols=3, fontsize=8, borderaxespad=0)
        for ax, (colour, marker), r in zip(axes[1:], _RULE_STYLES, rules, strict=False):
            v = np.asarray(r.values, dtype=np.float64)
            ax.plot(_dates(r.times), _scaled(r.unit, v), color=PALETTE["series"], linewidth=0.9)
            ax.axhline(_scaled(r.unit, r.threshold), color=PALETTE["current"], linestyle="--", linewidth=1.1, label="policy threshold")
            if r.calibrated is not None:
                ax.axhline(_scaled(r.unit, r.calibrated), color=PALETTE["proposed"], linestyle=":", linewidth=1.3, label="calibrated threshold")
            at = np.searchsorted(r.times, r.alerts)
            ax.plot(_dates(r.alerts), _scaled(r.unit, v[np.clip(at, 0, len(v) - 1)]), marker, color=PALETTE[colour], markersize=6, linestyle="none")
            mark_window(ax)
            ax.set_title(r.rule, loc="left", fontsize=9)
            ax.yaxis.set_major_formatter(_tick(r.unit))
            ax.set_ylabel(r.axis_label, fontsize=8.5)
            ax.legend(loc="upper right", fontsize=7.5)
        _date_axis(axes[-1])
        axes[-1].set_xlabel("Time (UTC)")
        # Fixed margins (inches): tight_layout on five stacked panels costs more than the drawing.
        h = fig.get_figheight()
        fig.subplots_adjust(left=1.05 / _WIDTH_IN, right=1 - 0.15 / _WIDTH_IN, top=1 - 0.45 / h, bottom=0.55 / h, hspace=0.45)

    return _compact(_render(salt, title, 1.4 + 1.75 * (1 + len(rules)), draw))
