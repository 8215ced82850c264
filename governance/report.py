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
from risk.recommendation import ParameterChange, Recommendation, value_text
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
    env.filters.update(value=value_text, delta=delta_text, pct=pct, usd=usd)
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
) -> dict[str, Any]:
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
        markets.append({"symbol": m.symbol, "asset": m.asset, "metrics": m.metrics, "rows": rows})
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
             "days": c.updates_to_target * c.min_delay.seconds / 86400}
            for c in glide
        ],
        "calls": calls,
        "safe": safe,
        "inputs": inputs,
        "bundle_path": bundle_path,
        "data_range": data_range,
        "sources": sources,
        "repairs": repairs,
        "charts": charts,
    }


def render_markdown(context: dict[str, Any]) -> bytes:
    return environment().get_template("report.md.j2").render(**context).encode("utf-8")
