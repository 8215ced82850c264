"""The voters' report of a perps or options epoch, from the values the transactions are built from.

Uses `governance.report`'s jinja2 environment (StrictUndefined, unit filters) with the template
``templates/report_derivatives.md.j2``; this module only arranges the recommendation, the calls, the
Safe summary and the breaker calibration into rows the template loops over.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from jinja2 import Environment

from governance.report import environment
from risk.breaker_changes import BreakerChange, threshold_text
from risk.breakers_calibrate import CalibrationReport, Figures
from risk.recommendation_derivatives import (
    BacktestFigures,
    DerivativeChange,
    DerivativeMarketRecommendation,
    DerivativeRecommendation,
    value_text,
)
from risk.units import Bps

TEMPLATE = "report_derivatives.md.j2"


def delta_text(change: DerivativeChange) -> str:
    """The change in people's units: percentage points for ratios, percent for USD caps."""
    if change.current is None:
        return "new"
    if not change.changed:
        return "—"
    if isinstance(change.current, Bps) and isinstance(change.proposed, Bps):
        return f"{(change.proposed.value - change.current.value) / 100:+.2f} pp"
    cur, new = change.current.value, change.proposed.value  # type: ignore[union-attr]
    return "new cap" if cur == 0 else f"{float((new - cur) / cur) * 100:+.1f}%"


def signed_usd(x: float) -> str:
    """USD with its sign in front: -$1,510,072 (the report's `usd` filter is for amounts >= 0)."""
    return f"{'-' if x < 0 else ''}${abs(x):,.0f}"


def _rows(m: DerivativeMarketRecommendation) -> list[dict[str, Any]]:
    return [
        {
            "label": c.label, "current": value_text(c.current), "proposed": value_text(c.proposed), "delta": delta_text(c),
            "target": value_text(c.target), "updates": c.updates_to_target, "limit": c.limit_text, "binding": "; ".join(c.binding),
            "note": c.note or "—",
        }
        for c in m.changes
    ]


def _backtests(m: DerivativeMarketRecommendation) -> list[BacktestFigures]:
    seen: dict[str, BacktestFigures] = {}
    for c in m.changes:
        for b in c.backtests:
            seen.setdefault(b.what, b)
    return list(seen.values())


def _threshold_rows(report: CalibrationReport) -> list[dict[str, Any]]:
    def events(f: Figures) -> str:
        found = [f"{d.window} ({d.market}): {d.delay_seconds / 3600:.0f} h" for d in f.detections if d.detected and d.delay_seconds is not None]
        return "; ".join(found) or "none"

    return [
        {
            "rule": r.rule, "kind": r.kind, "markets": ", ".join(r.markets), "threshold": r.policy.threshold,
            "rate": r.policy.false_alarms_per_month, "false_alarms": r.policy.false_alarms, "calm_months": r.policy.calm_months,
            "calibrated": "—" if r.calibrated is None else r.calibrated.threshold,
            "calibrated_rate": None if r.calibrated is None else r.calibrated.false_alarms_per_month,
            "limit": r.max_false_alarms_per_month, "detects": r.detects, "detections": events(r.policy),
            "missed": ", ".join(r.policy.missed) or "none",
        }
        for r in report.rules
    ]


def report_context(
    recommendation: DerivativeRecommendation, *, calls: list[dict[str, Any]], safe: dict[str, Any] | None, inputs: dict[str, str],
    bundle_path: str, data_range: str, sources: list[dict[str, str]], repairs: list[dict[str, Any]], breakers: CalibrationReport | None,
    breaker_changes: tuple[BreakerChange, ...] = (), signer: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The template's data; `signer`: the signer packet (`signer_packet_venues.derivative_signer_context`), or None."""
    changes = recommendation.changes
    markets = [
        {"symbol": m.symbol, "kind": m.kind, "f": m.figures, "rows": _rows(m), "backtests": _backtests(m), "hedge": m.hedge, "notes": m.notes}
        for m in recommendation.markets
    ]
    breaker_context = None
    if breakers is not None:
        breaker_context = {
            "name": breakers.name, "rules": _threshold_rows(breakers), "skipped": list(breakers.skipped),
            "missed": list(breakers.policy.missed), "not_covered": list(breakers.policy.not_covered), "ok": breakers.ok,
            "delay_hours": breakers.max_detection_delay_seconds / 3600,
            "onchain": [
                {"rule": c.rule, "what": f"{', '.join(c.markets)} {c.label}", "current": threshold_text(c.current), "proposed": threshold_text(c.proposed),
                 "source": c.source, "limit": c.limit, "sent": c.changed, "note": c.note or "—"}
                for c in breaker_changes
            ],
            "reported_only": [r.rule for r in breakers.rules if r.rule not in {c.rule for c in breaker_changes}],
            # The data hold no open-interest history: an epoch skips OI caps (no series), said in words, not only in a skipped line.
            "oi_cap_skipped": [note.split(": ")[0] for note in breakers.skipped if "open-interest" in note],
        }
    return {
        "r": recommendation, "markets": markets, "n_changes": len(changes), "n_markets_changed": len({c.market for c in changes}),
        "new_values": [c for c in changes if c.current is None], "calls": calls, "safe": safe, "inputs": inputs, "bundle_path": bundle_path,
        "data_range": data_range, "sources": sources, "repairs": repairs, "breakers": breaker_context,
        "signer": signer,
    }


@lru_cache(maxsize=1)
def _environment() -> Environment:
    env = environment().overlay()  # the shared filters, plus signed amounts
    env.filters["signed_usd"] = signed_usd
    return env


def render_derivative_markdown(context: dict[str, Any]) -> bytes:
    return _environment().get_template(TEMPLATE).render(**context).encode("utf-8")
