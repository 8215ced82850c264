"""The lending risk core's recommendation as a Comet configuration: the mapping, the changes, the proof, the report rows.

Mapping (stated in every Compound report's method section, `COMPOUND_METHOD`): LTV ↔ borrow collateral
factor, liquidation threshold ↔ liquidate collateral factor, liquidation bonus ↔ liquidation penalty
(1 − liquidation factor), the protocol's share of the bonus ↔ 1 − storefront price factor, supply cap
↔ supply cap. Comet has no per-asset borrow cap, so the core's borrow cap is dropped (`for_comet`) and
never becomes a call. The core recommends whole basis points, which Comet's 4 decimals hold exactly;
`comet_calls` still warns about any finer value, and the report shows what Comet will store.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from governance.calls import Call, decode_call
from governance.venues.compound_snapshot import CometSnapshot
from governance.venues.compound_v3 import (
    DEPLOY_AND_UPGRADE_TO,
    SETTERS,
    CometChange,
    CometPackage,
    CometParameter,
    batch_problems,
    comet_change,
    stored_factor,
)
from risk.errors import StewardError
from risk.policy import LendingParameter
from risk.policy_compound import CompoundSection
from risk.recommendation import MarketRecommendation, Recommendation
from risk.units import WAD, Ratio, TokenAmount, Wad

P, C = LendingParameter, CometParameter
COMET_PARAMETER = {  # the lending core's parameter → the Comet asset field it sets
    P.LTV: C.BORROW_COLLATERAL_FACTOR,
    P.LIQUIDATION_THRESHOLD: C.LIQUIDATE_COLLATERAL_FACTOR,
    P.LIQUIDATION_BONUS: C.LIQUIDATION_FACTOR,
    P.SUPPLY_CAP: C.SUPPLY_CAP,
}
ROW_LABELS = {
    "LTV": "Borrow collateral factor (↔ LTV)",
    "Liquidation threshold": "Liquidate collateral factor (↔ liquidation threshold)",
    "Liquidation bonus": "Liquidation penalty = 1 − liquidation factor (↔ bonus)",
}
COMET_LABELS = {
    C.BORROW_COLLATERAL_FACTOR: "borrow collateral factor",
    C.LIQUIDATE_COLLATERAL_FACTOR: "liquidate collateral factor",
    C.LIQUIDATION_FACTOR: "liquidation factor",
    C.SUPPLY_CAP: "supply cap",
}
COMPOUND_METHOD = (
    ("Compound v3 (Comet) mapping: the core's LTV is the borrow collateral factor, its liquidation threshold the liquidate "
     "collateral factor, its liquidation bonus the liquidation penalty 1 - liquidation factor, the protocol's share of the bonus "
     "1 - the storefront price factor ({storefront}), the supply cap the supply cap (whole tokens)."),
    ("Modelled as Comet does it: absorb takes a whole position as soon as it is liquidatable, so the simulator repays all of "
     "a position's debt once its HF at the liquidate collateral factor is below 1, with no close factor and no partial call; "
     "it happens when the buyer's share of the penalty covers gas and slippage, else the position stays open."),
    ("Still approximated: absorb takes all the collateral, credits the borrower its value x liquidation factor and the "
     "protocol sells it through buyCollateral at the storefront discount; the simulator seizes debt x (1 + penalty) of "
     "collateral, returns the rest to the borrower and pays the buyer the storefront factor's share ({storefront}) of the "
     "penalty as it sells into the depth curve. Bad debt is the collateral's shortfall against the debt at that step's price; "
     "on Comet the reserves bear whatever the storefront sale does not raise back, which the simulator does not track."),
    "Comet has no per-asset borrow cap: the core's borrow cap is not proposed.",
    ("Comet's rules are checked on the values it will hold after the upgrade: borrow CF < liquidate CF (before and after "
     "truncation to 4 decimals), liquidate CF <= 100%; Aave's LT x (1 + bonus) <= 100% is kept as an extra, conservative limit."),
    ("Nothing takes effect before CometProxyAdmin.deployAndUpgradeTo, the last call. Not simulated on a devnet: Comet's "
     "bytecode is not published on npm, so `steward simulate` cannot run this bundle."),
)


def for_comet(rec: Recommendation, comet: CometSnapshot) -> Recommendation:
    """The core's recommendation as Comet can take it: no borrow cap, the mapping in the method section."""
    markets = []
    for m in rec.markets:
        changes = tuple(c for c in m.changes if c.parameter is not P.BORROW_CAP)
        analysis = m.analysis
        if analysis is not None:
            analysis = dataclasses.replace(analysis, intervals=tuple(i for i in analysis.intervals if i.parameter != "borrow_cap"))
        markets.append(MarketRecommendation(m.symbol, m.asset, m.metrics, changes, analysis))
    storefront = str(comet.store_front_price_factor.to_ratio())
    method = rec.method + tuple(line.format(storefront=storefront) for line in COMPOUND_METHOD)
    return dataclasses.replace(rec, markets=tuple(markets), method=method)


def comet_value(parameter: LendingParameter, value: Any) -> Ratio | Wad | TokenAmount:
    """One recommended value in Comet's unit: factors as ratios (the penalty turned into the liquidation factor), caps as tokens."""
    if parameter is P.SUPPLY_CAP:
        assert isinstance(value, TokenAmount)
        return value
    ratio = value.to_ratio()
    return Wad(WAD - ratio.to_wad().raw) if parameter is P.LIQUIDATION_BONUS else ratio


def comet_changes(rec: Recommendation, comet: CometSnapshot) -> list[CometChange]:
    """Every recommended parameter as a change of the Comet asset (current values from the snapshot)."""
    changes = []
    for m in rec.markets:
        state = comet.asset(m.symbol)
        for c in m.changes:
            change = comet_change(m.symbol, state, COMET_PARAMETER[c.parameter], comet_value(c.parameter, c.proposed))
            if change.changed != c.changed:  # the snapshot mapping is exact, so this is a bug, never data
                raise StewardError(f"{m.symbol} {c.parameter.value}: the Comet change and the recommendation disagree on changing it",
                                   "do not sign: this is a bug in packaging")
            changes.append(change)
    return changes


def _intended(rec: Recommendation, comet: CometSnapshot, section: CompoundSection) -> list[tuple[str, tuple[Any, ...]]]:
    """What the calls must say, read from recommendation.json's own numbers (not from the encoder's values)."""
    return intended_calls(rec.to_json()["markets"], comet, section)


def intended_calls(markets: dict[str, Any], comet: CometSnapshot, section: CompoundSection) -> list[tuple[str, tuple[Any, ...]]]:
    """(signature, arguments) of every call recommendation.json's `markets` asks for: the setters of each changed
    parameter, sorted, then the upgrade; [] when nothing changes. Signers' tools read it from the bundle's file."""
    setters = []
    for symbol, market in markets.items():
        state = comet.asset(symbol)
        for name, p in market["parameters"].items():
            if p["current"] == p["proposed"]:
                continue
            parameter = COMET_PARAMETER[P(name)]
            if parameter is C.SUPPLY_CAP:
                raw = int(p["proposed"]["tokens"]) * 10**state.decimals
            elif parameter is C.LIQUIDATION_FACTOR:
                raw = 10**18 - int(p["proposed"]["bps"]) * 10**14
            else:
                raw = int(p["proposed"]["bps"]) * 10**14
            setters.append((SETTERS[parameter].signature, (section.comet, state.asset, raw)))
    return [*sorted(setters), (DEPLOY_AND_UPGRADE_TO.signature, (section.configurator, section.comet))] if setters else []


def prove_comet_calls(calls: tuple[Call, ...], rec: Recommendation, comet: CometSnapshot, section: CompoundSection) -> None:
    """Decode every call and compare with the recommendation; the batch must end with the upgrade, once."""
    decoded = [(c.function.signature, decode_call(c.function, c.data)) for c in calls]
    intended = _intended(rec, comet, section)
    setters_ok = sorted(decoded[:-1]) == intended[:-1] and decoded[-1:] == intended[-1:]
    if not setters_ok:
        raise StewardError(f"the calls decode to {decoded}, the recommendation says {intended}", "do not sign: this is a bug in packaging")
    problems = batch_problems([(c.to, c.data) for c in calls], configurator=section.configurator, comet=section.comet,
                              proxy_admin=section.proxy_admin)
    if problems:
        raise StewardError(f"the Comet batch is malformed: {'; '.join(problems)}", "do not sign: this is a bug in packaging")


# ------------------------------------------------------------------------------------- the bundle


def _text(value: Wad | TokenAmount) -> str:
    return str(value.to_ratio()) if isinstance(value, Wad) else f"{value.to_whole_tokens():,} {value.symbol}"


def compound_context(package: CometPackage, changes: list[CometChange], section: CompoundSection, comet: CometSnapshot) -> dict[str, Any]:
    """The report's Compound section: each change in Comet's own units, as sent and as Comet will store it."""
    rows = []
    for c in changes:
        if not c.changed:
            continue
        stored = stored_factor(c.proposed) if isinstance(c.proposed, Wad) else c.proposed
        rows.append({"market": c.market, "parameter": COMET_LABELS[c.parameter], "current": _text(c.current),
                     "sent": _text(c.proposed), "stored": _text(stored), "truncated": stored != c.proposed})
    return {"configurator": section.configurator, "comet": section.comet, "proxy_admin": section.proxy_admin,
            "storefront": str(comet.store_front_price_factor.to_ratio()), "rows": rows, "warnings": list(package.warnings)}
