"""Render the voters' report from the same values the transactions are built from.

One jinja2 environment (StrictUndefined: a missing value is an error, never an empty cell) with the
unit filters in one place; templates only format and loop.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from risk.policy import LendingParameter
from risk.recommendation import (
    LendingAnalysis,
    MarketRecommendation,
    ParameterChange,
    Recommendation,
    value_text,
)
from risk.units import Bps, TokenAmount

if TYPE_CHECKING:
    from governance.report_html import MarketCharts

TEMPLATES = Path(__file__).resolve().parents[1] / "templates"
LABELS = {
    LendingParameter.LTV: "LTV",
    LendingParameter.LIQUIDATION_THRESHOLD: "Liquidation threshold",
    LendingParameter.LIQUIDATION_BONUS: "Liquidation bonus",
    LendingParameter.SUPPLY_CAP: "Supply cap",
    LendingParameter.BORROW_CAP: "Borrow cap",
}


def delta_text(change: ParameterChange) -> str:
    """The change in people's units: percentage points for ratios, percent for caps."""
    if not change.changed:
        return "—"
    if isinstance(change.current, Bps) and isinstance(change.proposed, Bps):
        d = change.proposed.value - change.current.value
        return f"{d / 100:+.2f} pp"
    assert isinstance(change.current, TokenAmount) and isinstance(change.proposed, TokenAmount)
    cur, new = change.current.to_whole_tokens(), change.proposed.to_whole_tokens()
    if cur == 0:
        return "new cap"
    return f"{(new - cur) / cur * 100:+.1f}%"


def pct(x: float, digits: int = 2) -> str:
    return f"{x * 100:.{digits}f}%"


def usd(x: float) -> str:
    return f"${x:,.2f}" if x < 1000 else f"${x:,.0f}"


def signed_usd(x: float) -> str:
    """A change in USD: +$1,234 / -$12.50 / $0."""
    if x == 0:
        return "$0"
    return ("+" if x > 0 else "-") + usd(abs(x))


def bps_text(bps: int) -> str:
    return f"{bps / 100:.2f}%"


FIGURE_LABELS = (
    ("var95_share", "VaR95 (share of borrows)"),
    ("evar99_share", "EVaR99 (share of borrows)"),
    ("insolvency_probability", "Insolvency probability"),
    ("expected_shortfall_usd", "Expected shortfall, worst 5% (USD)"),
    ("liquidations_at_risk_usd", "Liquidations at risk, 95% (USD)"),
)
INTERVAL_LABELS = {"liquidation_threshold": "Liquidation threshold", "ltv": "LTV", "liquidation_bonus": "Liquidation bonus",
                   "supply_cap": "Supply cap", "borrow_cap": "Borrow cap"}


def _figure(figures: object | None, key: str) -> str:
    if figures is None:
        return "—"
    value = getattr(figures, key)
    return usd(value) if key.endswith("_usd") else pct(value, 3)


def risk_context(market: MarketRecommendation) -> dict[str, Any] | None:
    """The lending core's tables for one market (None when the foundation rule made the recommendation)."""
    a: LendingAnalysis | None = market.analysis
    if a is None:
        return None
    limits = dict(a.limits)
    figures = [
        {"label": label, "limit": pct(limits[key], 2) if key in limits else "—",
         "current": _figure(a.current, key), "proposed": _figure(a.proposed, key), "target": _figure(a.target, key)}
        for key, label in FIGURE_LABELS
    ]
    intervals = []
    for i in a.intervals:
        cap = i.parameter.endswith("_cap")
        text = (lambda v: f"{v:,} {market.symbol}") if cap else bps_text
        intervals.append({"label": INTERVAL_LABELS[i.parameter], "point": text(i.point), "low": text(i.low), "high": text(i.high),
                          "level": pct(i.level, 0), "basis": i.note})
    sensitivity = [
        {"label": INTERVAL_LABELS[s.parameter], "range": f"{bps_text(s.low_bps)} .. {bps_text(s.high_bps)}",
         "var95": signed_usd(s.var95_per_bps), "evar99": signed_usd(s.evar99_per_bps), "shortfall": signed_usd(s.shortfall_per_bps),
         "insolvency": f"{s.insolvency_per_bps * 100:+.4f} pp"}
        for s in a.sensitivities
    ]
    return {"figures": figures, "intervals": intervals, "sensitivity": sensitivity, "analysis": a}


def peers_context(recommendation: Recommendation) -> list[dict[str, str]]:
    """One row per market: our threshold, LTV and bonus beside the peers' figures on the same inputs."""
    rows = []
    for m in recommendation.markets:
        a = m.analysis
        if a is None:
            continue
        lt, ltv, lb = (m.change(p).target for p in (LendingParameter.LIQUIDATION_THRESHOLD, LendingParameter.LTV, LendingParameter.LIQUIDATION_BONUS))
        g = a.peers.gauntlet
        rows.append({
            "market": m.symbol, "lt": value_text(lt), "ltv": value_text(ltv), "bonus": value_text(lb),
            "riskdao": pct(a.peers.riskdao.collateral_factor), "riskdao_md": pct(a.peers.riskdao.mean_max_drop),
            "gauntlet": pct(g.lltv) if g.lltv > 0 else "none", "drawdown": pct(g.drawdown),
            "morpho": pct(a.peers.morpho_lif_at_threshold - 1.0),
        })
    return rows


@lru_cache(maxsize=1)
def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        undefined=StrictUndefined,
        autoescape=False,  # Markdown; the HTML template escapes explicitly
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(value=value_text, delta=delta_text, pct=pct, usd=usd, bps=bps_text)
    return env


def report_context(
    recommendation: Recommendation,
    *,
    calls: list[dict[str, Any]],
    safe: dict[str, Any] | None,
    inputs: dict[str, str],
    bundle_path: str,
    data_range: str,
    sources: list[dict[str, str]],
    repairs: list[dict[str, Any]],
    charts: tuple[MarketCharts, ...] | None = None,
    signer: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Everything report.md.j2 / report.html.j2 print. `signer`: the signer packet's data
    (`governance.signer_packet.signer_context`), or None for a report without one."""
    markets = []
    for m in recommendation.markets:
        rows = [
            {
                "label": LABELS[c.parameter],
                "current": value_text(c.current),
                "proposed": value_text(c.proposed),
                "delta": delta_text(c),
                "target": value_text(c.target),
                "updates": c.updates_to_target,
                "limit": c.limit_text,
                "binding": "; ".join(c.binding),
                "changed": c.changed,
                "needs_governance": c.needs_governance,
            }
            for c in m.changes
        ]
        markets.append({"symbol": m.symbol, "asset": m.asset, "metrics": m.metrics, "rows": rows, "risk": risk_context(m)})
    changes = recommendation.changes
    glide = [c for c in changes if c.updates_to_target > 1]
    return {
        "r": recommendation,
        "markets": markets,
        "n_changes": len(changes),
        "n_markets_changed": len({c.market for c in changes}),
        "governance": [c for c in changes if c.needs_governance],
        "glide": [
            {"market": c.market, "label": LABELS[c.parameter], "target": value_text(c.target), "updates": c.updates_to_target,
             "days": c.updates_to_target * c.min_delay.seconds / 86400,
             "route": f"DAO vote: {c.governance_reason}" if c.target_needs_governance else "steward updates"}
            for c in glide
        ],
        "peers": peers_context(recommendation),
        "calls": calls,
        "safe": safe,
        "inputs": inputs,
        "bundle_path": bundle_path,
        "data_range": data_range,
        "sources": sources,
        "repairs": repairs,
        "charts": charts,
        "signer": signer,
    }


def render_markdown(context: dict[str, Any]) -> bytes:
    return environment().get_template("report.md.j2").render(**context).encode("utf-8")
