"""The voters' HTML report: the Markdown report's content plus charts, in one file that loads nothing.

The page is one self-contained document: inline CSS, inline SVG charts, no script, and a
Content-Security-Policy that forbids every fetch, so a reader opening it offline (or from a hostile
mirror) sees everything and leaks nothing. The environment autoescapes all text and reuses the
Markdown environment's unit filters, so both reports print each number the same way.

Chart data is prepared here from the recommendation, the pinned market data and the policy's change
limits (`chart_inputs`); `render_html` draws it with `governance.charts`. Only charts whose data
exists are drawn.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from typing import Any, Literal

import numpy as np
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from jinja2.defaults import DEFAULT_FILTERS
from markupsafe import Markup

from governance import charts
from governance import report as md_report
from risk.market import MarketData
from risk.policy import ChangeLimit, ChangeLimits, LendingParameter
from risk.recommendation import MarketRecommendation, ParameterChange, Recommendation
from risk.units import Bps, TokenAmount

HTML_TEMPLATE = "report.html.j2"
P = LendingParameter
_MAX_GLIDE_UPDATES = 1000  # far beyond any real glide path (Aave's 0.5 pp steps cross 0-100% in 200)


@dataclass(frozen=True, slots=True)
class LiquidationLevel:
    """Where a position opened at the last price, at the maximum LTV, reaches health factor 1."""

    kind: Literal["current", "proposed"]
    ltv: Bps
    lt: Bps
    price_usd: float  # entry x LTV / LT
    drop: float  # fraction of the entry price, 1 - LTV / LT


@dataclass(frozen=True, slots=True, eq=False)
class MarketCharts:
    """Everything one market's charts show, as plain values; `render_html` draws them."""

    symbol: str
    times: np.ndarray  # unix seconds UTC, shape (T,)
    prices_usd: np.ndarray  # shape (T,)
    entry_usd: float
    window_days: float
    levels: tuple[LiquidationLevel, ...]
    glide: tuple[charts.GlidePanel, ...]
    # The lending core's: per-path bad debt (USD) at today's and the proposed parameters, drawn when
    # some path has any; expected shortfall (USD) with each parameter at its low / high value.
    losses: tuple[np.ndarray, np.ndarray] | None = None
    tornado: tuple[tuple[str, ...], np.ndarray, np.ndarray, float] | None = None


@dataclass(frozen=True, slots=True)
class MarketFigures:
    """One market's drawn charts, the data they show, and their titles (also the SVGs' aria-labels)."""

    data: MarketCharts
    price_title: str
    price_svg: Markup
    glide_title: str
    glide_svg: Markup | None
    loss_title: str = ""
    loss_svg: Markup | None = None
    tornado_title: str = ""
    tornado_svg: Markup | None = None


def _raw(value: Bps | TokenAmount) -> int:
    return value.value if isinstance(value, Bps) else value.to_whole_tokens()


def _next_value(value: int, target: int, limit: ChangeLimit) -> int:
    """One more update at the limit, as `risk.limits` moves a parameter (bps absolute, caps relative)."""
    if limit.max_absolute is not None:
        step = limit.max_absolute.to_bps("down").value
        return value + max(-step, min(step, target - value))
    assert limit.max_relative is not None  # ChangeLimit allows exactly one of the two
    if value == 0:  # 0 means "no cap": any cap is one update away
        return target
    rel = limit.max_relative.value
    lo = int(Decimal(value) * (1 - rel)) if rel < 1 else 0
    hi = int(Decimal(value) * (1 + rel))
    return max(lo, min(hi, target))


def glide_values(change: ParameterChange, limit: ChangeLimit) -> tuple[int, ...]:
    """On-chain values (bps or whole tokens) today, after this proposal, and after each later update
    at the per-update limit until the target.

    A path that stops making progress (a limit of 0 pins the parameter; Aave's own rules may have
    moved it anyway) ends where it stops, short of the target.
    """
    values = [_raw(change.current), _raw(change.proposed)]
    target = _raw(change.target)
    while values[-1] != target and len(values) <= _MAX_GLIDE_UPDATES:
        nxt = _next_value(values[-1], target, limit)
        if nxt == values[-1]:
            break
        values.append(nxt)
    return tuple(values)


def _levels(market: MarketRecommendation) -> tuple[LiquidationLevel, ...]:
    entry = market.metrics.price_usd
    ltv, lt = market.change(P.LTV), market.change(P.LIQUIDATION_THRESHOLD)
    out = []
    for kind, a, b in (("current", ltv.current, lt.current), ("proposed", ltv.proposed, lt.proposed)):
        assert isinstance(a, Bps) and isinstance(b, Bps)
        if b.value == 0:  # LT 0: not collateral, no liquidation price
            continue
        ratio = a.value / b.value
        out.append(LiquidationLevel(kind=kind, ltv=a, lt=b, price_usd=entry * ratio, drop=1.0 - ratio))  # type: ignore[arg-type]
    return tuple(out)


def chart_inputs(recommendation: Recommendation, market: MarketData, change_limits: ChangeLimits) -> tuple[MarketCharts, ...]:
    """The data of every chart the report can draw today: price history with liquidation levels, and
    the glide path of each changed parameter."""
    window_days = (int(market.times[-1]) - int(market.times[0])) / 86400
    out = []
    for m in recommendation.markets:
        panels = []
        for c in m.changes:
            if not c.changed:
                continue
            values = glide_values(c, change_limits.for_parameter(c.parameter))
            percent = isinstance(c.current, Bps)
            scale = 100 if percent else 1
            panels.append(
                charts.GlidePanel(
                    label=md_report.LABELS[c.parameter],
                    unit="%" if percent else c.current.symbol,  # type: ignore[union-attr]
                    values=tuple(v / scale for v in values),
                    target=_raw(c.target) / scale,
                    step_days=c.min_delay.seconds / 86400,
                )
            )
        out.append(
            MarketCharts(
                symbol=m.symbol,
                times=market.times,
                prices_usd=market.series(m.symbol),
                entry_usd=m.metrics.price_usd,
                window_days=window_days,
                levels=_levels(m),
                glide=tuple(panels),
                losses=_losses(m),
                tornado=_tornado(m),
            )
        )
    return tuple(out)


def _losses(m: MarketRecommendation) -> tuple[np.ndarray, np.ndarray] | None:
    a = m.analysis
    if a is None or a.bad_debt_current_usd is None or a.bad_debt_proposed_usd is None:
        return None
    if not (np.any(a.bad_debt_current_usd > 0) or np.any(a.bad_debt_proposed_usd > 0)):
        return None  # every path ends without bad debt: a histogram of zeros says nothing the table does not
    return a.bad_debt_current_usd, a.bad_debt_proposed_usd


def _tornado(m: MarketRecommendation) -> tuple[tuple[str, ...], np.ndarray, np.ndarray, float] | None:
    a = m.analysis
    if a is None or not a.sensitivities:
        return None
    low = np.array([s.shortfall[0] for s in a.sensitivities])
    high = np.array([s.shortfall[2] for s in a.sensitivities])
    base = a.sensitivities[0].shortfall[1]
    if np.all(low == base) and np.all(high == base):
        return None  # no parameter moves the shortfall: nothing to draw
    names = tuple(f"{md_report.INTERVAL_LABELS[s.parameter]} {md_report.bps_text(s.low_bps)} / {md_report.bps_text(s.high_bps)}" for s in a.sensitivities)
    return names, low, high, base


def _figures(c: MarketCharts) -> MarketFigures:
    level_text = {"current": "today's LTV/LT", "proposed": "proposed LTV/LT"}
    levels = [
        charts.Level(f"liquidation price, {level_text[lv.kind]}: {md_report.usd(lv.price_usd)}", lv.price_usd, lv.kind)
        for lv in c.levels
    ]
    price_title = f"{c.symbol}: price over {c.window_days:.0f} days and the liquidation price of a position opened now at the maximum LTV"
    glide_title = f"{c.symbol}: parameter values after each steward update, from today to the target"
    loss_title = f"{c.symbol}: bad debt per scenario path, today's vs proposed parameters"
    tornado_title = f"{c.symbol}: expected shortfall with each parameter moved around the target"
    loss_svg = tornado_svg = None
    if c.losses is not None:
        loss_svg = Markup(charts.loss_distribution(f"losses-{c.symbol}", c.losses[0], c.losses[1], unit="USD", quantile=0.95, title=loss_title))
    if c.tornado is not None:
        names, low, high, base = c.tornado
        tornado_svg = Markup(charts.tornado(f"tornado-{c.symbol}", names, low, high, base, unit="USD", title=tornado_title))
    return MarketFigures(
        data=c,
        price_title=price_title,
        price_svg=Markup(charts.price_levels(f"price-{c.symbol}", c.times, c.prices_usd, levels, title=price_title)),
        glide_title=glide_title,
        glide_svg=Markup(charts.glide_path(f"glide-{c.symbol}", c.glide, title=glide_title)) if c.glide else None,
        loss_title=loss_title,
        loss_svg=loss_svg,
        tornado_title=tornado_title,
        tornado_svg=tornado_svg,
    )


@lru_cache(maxsize=1)
def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(md_report.TEMPLATES),
        undefined=StrictUndefined,
        autoescape=True,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    # The unit filters live in one place (governance/report.py); take every one it registers.
    env.filters.update({k: f for k, f in md_report.environment().filters.items() if k not in DEFAULT_FILTERS})
    return env


def render_html(context: dict[str, Any]) -> bytes:
    """The HTML report from `report_context(...)`'s dict, which carries ``charts`` (from `chart_inputs`,
    or None for a report without charts)."""
    figures: dict[str, MarketFigures | None] = {m["symbol"]: None for m in context["markets"]}
    for c in context["charts"] or ():
        figures[c.symbol] = _figures(c)
    template = environment().get_template(HTML_TEMPLATE)
    return template.render(**context, figures=figures, light_bg=charts.LIGHT_BG, dark_bg=charts.DARK_BG).encode("utf-8")
