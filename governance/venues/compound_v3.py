"""Compound v3 (Comet): parameter changes → Configurator calls, Comet's rules checked, the upgrade appended.

Units and rules (compound-finance/comet `Configurator.sol`, `Comet.sol`, `CometProxyAdmin.sol`):

* `updateAssetBorrowCollateralFactor(address cometProxy, address asset, uint64)`, likewise
  `updateAssetLiquidateCollateralFactor` and `updateAssetLiquidationFactor`: factors scaled by 1e18;
  `updateAssetSupplyCap(address cometProxy, address asset, uint128)`: the token's smallest unit.
* The Configurator only stores them. `CometProxyAdmin.deployAndUpgradeTo(configuratorProxy,
  cometProxy)` deploys a Comet built from the configuration, and that constructor packs each factor
  into 16 bits as `factor / 1e14` (4 decimals; finer digits are dropped) and the supply cap as whole
  tokens (`supplyCap / 10**decimals`), then requires borrowCF < liquidateCF (before and after the
  truncation, `BorrowCFTooLarge`) and liquidateCF ≤ 1e18 (`LiquidateCFTooLarge`).

So nothing takes effect without the upgrade call: `comet_calls` appends it exactly once, last.
Values finer than Comet keeps produce a warning naming the value that will actually be stored.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from eth_utils import to_checksum_address

from governance.calls import AbiInput, Call, FunctionAbi, decode_call, encode_call
from governance.chain import ChainError, ChainReader, ViewFn
from risk.errors import StewardError
from risk.units import WAD, Ratio, TokenAmount, Wad

FACTOR_DESCALE = WAD // 10**4  # Comet keeps 4 decimals of each 1e18 factor
_UINT16_MAX = 2**16 - 1
_UINT64_MAX = 2**64 - 1
_UINT128_MAX = 2**128 - 1


class CometParameter(StrEnum):
    BORROW_COLLATERAL_FACTOR = "borrow_collateral_factor"
    LIQUIDATE_COLLATERAL_FACTOR = "liquidate_collateral_factor"
    LIQUIDATION_FACTOR = "liquidation_factor"
    SUPPLY_CAP = "supply_cap"


C = CometParameter
_LABELS = {
    C.BORROW_COLLATERAL_FACTOR: "borrow collateral factor",
    C.LIQUIDATE_COLLATERAL_FACTOR: "liquidate collateral factor",
    C.LIQUIDATION_FACTOR: "liquidation factor",
    C.SUPPLY_CAP: "supply cap",
}


def _setter(name: str, value_name: str, value_type: str) -> FunctionAbi:
    return FunctionAbi(
        name,
        (
            AbiInput("cometProxy", "address", "address"),
            AbiInput("asset", "address", "address"),
            AbiInput(value_name, value_type, value_type),
        ),
    )


UPDATE_BORROW_CF = _setter("updateAssetBorrowCollateralFactor", "newBorrowCF", "uint64")
UPDATE_LIQUIDATE_CF = _setter("updateAssetLiquidateCollateralFactor", "newLiquidateCF", "uint64")
UPDATE_LIQUIDATION_FACTOR = _setter("updateAssetLiquidationFactor", "newLiquidationFactor", "uint64")
UPDATE_SUPPLY_CAP = _setter("updateAssetSupplyCap", "newSupplyCap", "uint128")
DEPLOY_AND_UPGRADE_TO = FunctionAbi(
    "deployAndUpgradeTo",
    (
        AbiInput("configuratorProxy", "address", "contract Deployable"),
        AbiInput("cometProxy", "address", "contract TransparentUpgradeableProxy"),
    ),
)
SETTERS = {
    C.BORROW_COLLATERAL_FACTOR: UPDATE_BORROW_CF,
    C.LIQUIDATE_COLLATERAL_FACTOR: UPDATE_LIQUIDATE_CF,
    C.LIQUIDATION_FACTOR: UPDATE_LIQUIDATION_FACTOR,
    C.SUPPLY_CAP: UPDATE_SUPPLY_CAP,
}
FUNCTIONS = (*SETTERS.values(), DEPLOY_AND_UPGRADE_TO)

# CometCore.AssetInfo {uint8 offset; address asset; address priceFeed; uint64 scale;
#   uint64 borrowCollateralFactor; uint64 liquidateCollateralFactor; uint64 liquidationFactor; uint128 supplyCap}
GET_ASSET_INFO_BY_ADDRESS = ViewFn(
    "getAssetInfoByAddress(address)", ("(uint8,address,address,uint64,uint64,uint64,uint64,uint128)",)
)


class CometRuleError(StewardError):
    """Values Comet's deploy would revert on (the rule is named), or that cannot be encoded."""


CometValue = Wad | TokenAmount


@dataclass(frozen=True, slots=True)
class CometAssetState:
    """One collateral asset as Comet reports it (getAssetInfoByAddress): factors already 4-decimal."""

    asset: str
    offset: int
    price_feed: str
    decimals: int
    borrow_collateral_factor: Wad
    liquidate_collateral_factor: Wad
    liquidation_factor: Wad
    supply_cap: TokenAmount

    def value(self, parameter: CometParameter) -> CometValue:
        value: CometValue = getattr(self, parameter.value)
        return value


@dataclass(frozen=True, slots=True)
class CometChange:
    """One parameter of one Comet collateral asset: current → proposed (factors as Wad, the cap as TokenAmount)."""

    market: str
    asset: str
    parameter: CometParameter
    current: CometValue
    proposed: CometValue

    @property
    def changed(self) -> bool:
        return self.proposed != self.current


@dataclass(frozen=True, slots=True)
class CometPackage:
    """The Configurator calls (upgrade last) and the warnings signers must read (e.g. truncation)."""

    calls: tuple[Call, ...]
    warnings: tuple[str, ...]


def comet_change(market: str, state: CometAssetState, parameter: CometParameter, proposed: Ratio | Wad | TokenAmount) -> CometChange:
    """A change from the current on-chain state; a Ratio becomes a Wad exactly (more than 18 decimals is an error)."""
    value: CometValue
    if parameter is C.SUPPLY_CAP:
        if not isinstance(proposed, TokenAmount):
            raise CometRuleError(f"{market}: a supply cap is a TokenAmount, got {proposed!r}", "use TokenAmount.whole(n, decimals)")
        value = proposed
    elif isinstance(proposed, Ratio):
        value = proposed.to_wad()
    elif isinstance(proposed, Wad):
        value = proposed
    else:
        raise CometRuleError(f"{market}: {parameter.value} must be a Ratio or a Wad, got {proposed!r}", "e.g. Ratio.parse('82.5%')")
    return CometChange(market, to_checksum_address(state.asset), parameter, state.value(parameter), value)


def _text(value: CometValue) -> str:
    return str(value.to_ratio()) if isinstance(value, Wad) else str(value)


def stored_factor(value: Wad) -> Wad:
    """What Comet keeps of a factor: floor to 4 decimals."""
    return Wad(value.raw // FACTOR_DESCALE * FACTOR_DESCALE)


def _final_state(market: str, changes: Sequence[CometChange], state: CometAssetState | None) -> dict[CometParameter, CometValue]:
    values: dict[CometParameter, CometValue] = {}
    if state is not None:
        values = {p: state.value(p) for p in C}
    for c in changes:
        values.setdefault(c.parameter, c.current)
    for c in changes:
        values[c.parameter] = c.proposed
    missing = [p.value for p in (C.BORROW_COLLATERAL_FACTOR, C.LIQUIDATE_COLLATERAL_FACTOR) if p not in values]
    if missing:
        raise CometRuleError(
            f"{market}: the current {', '.join(missing)} is unknown, so borrowCF < liquidateCF cannot be checked",
            "read the asset from Comet first (read_asset_state) and pass it in `states`",
        )
    return values


def _check_factor(market: str, parameter: CometParameter, value: CometValue) -> Wad:
    if not isinstance(value, Wad):
        raise CometRuleError(f"{market}: {parameter.value} {value!r} is not a Wad", "factors are 1e18-scaled (risk.units.Wad)")
    if value.raw > _UINT64_MAX:
        raise CometRuleError(f"{market}: {parameter.value} {value.raw} does not fit the Configurator's uint64",
                             "factors are at most 1e18 (100%)")
    if value.raw // FACTOR_DESCALE > _UINT16_MAX:
        raise CometRuleError(f"{market}: {parameter.value} {_text(value)} overflows Comet's 16-bit packing (factor / 1e14)",
                             "Comet rule: a factor above 6.5535 wraps silently when packed")
    return value


def check_comet_rules(market: str, values: Mapping[CometParameter, CometValue]) -> None:
    """Comet's deploy-time rules on the values it will hold after the upgrade; raises naming the rule broken."""
    factors = {p: _check_factor(market, p, v) for p, v in values.items() if p is not C.SUPPLY_CAP}
    bcf, lcf = factors[C.BORROW_COLLATERAL_FACTOR], factors[C.LIQUIDATE_COLLATERAL_FACTOR]
    if bcf.raw >= lcf.raw:
        raise CometRuleError(
            f"{market}: borrow collateral factor {_text(bcf)} is not below liquidate collateral factor {_text(lcf)}",
            "Comet rule: borrowCF < liquidateCF (BorrowCFTooLarge)",
        )
    if lcf.raw > WAD:
        raise CometRuleError(f"{market}: liquidate collateral factor {_text(lcf)} is above 100%",
                             "Comet rule: liquidateCF <= 1e18 (LiquidateCFTooLarge)")
    if stored_factor(bcf).raw >= stored_factor(lcf).raw:
        raise CometRuleError(
            f"{market}: kept to 4 decimals, borrow CF {_text(stored_factor(bcf))} is not below liquidate CF "
            f"{_text(stored_factor(lcf))}",
            "Comet rule: borrowCF < liquidateCF after truncation to 4 decimals (BorrowCFTooLarge); widen the gap",
        )
    lf = factors.get(C.LIQUIDATION_FACTOR)
    if lf is not None and lf.raw > WAD:
        raise CometRuleError(f"{market}: liquidation factor {_text(lf)} is above 100%",
                             "Steward rule: absorb would credit more than the collateral is worth")
    cap = values.get(C.SUPPLY_CAP)
    if cap is not None:
        if not isinstance(cap, TokenAmount):
            raise CometRuleError(f"{market}: supply cap {cap!r} is not a TokenAmount", "caps are in token units")
        if cap.raw > _UINT128_MAX or cap.raw // 10**cap.decimals > _UINT64_MAX:
            raise CometRuleError(f"{market}: supply cap {cap} overflows Comet's storage", "Comet keeps whole tokens in 64 bits")


def _truncation_warnings(market: str, change: CometChange) -> list[str]:
    p = change.proposed
    if isinstance(p, Wad) and p.raw % FACTOR_DESCALE:
        return [(f"{market} {_LABELS[change.parameter]}: {_text(p)} has more precision than Comet keeps; "
                 f"it will be stored as {_text(stored_factor(p))} (4 decimals)")]
    if isinstance(p, TokenAmount) and p.raw % 10**p.decimals:
        whole = TokenAmount(p.raw // 10**p.decimals * 10**p.decimals, p.decimals, p.symbol)
        return [f"{market} supply cap: {p} is not whole tokens; Comet keeps whole units, so it will be stored as {whole}"]
    return []


def comet_calls(
    changes: Sequence[CometChange],
    *,
    configurator: str,
    comet: str,
    proxy_admin: str,
    states: Mapping[str, CometAssetState] | None = None,
) -> CometPackage:
    """Configurator setters for every changed parameter (assets in first-seen order), then deployAndUpgradeTo.

    `states` (asset address → CometAssetState, read at the snapshot block) supply the values that do
    not change, so the rules are checked on what Comet will hold after the upgrade.
    """
    states = {to_checksum_address(a): s for a, s in (states or {}).items()}
    changed = [c for c in changes if c.changed]
    if not changed:
        return CometPackage(calls=(), warnings=())
    by_asset: dict[str, list[CometChange]] = {}
    for c in changed:
        by_asset.setdefault(to_checksum_address(c.asset), []).append(c)
    calls: list[Call] = []
    warnings: list[str] = []
    for asset, group in by_asset.items():
        market = group[0].market
        seen = [c.parameter for c in group]
        if len(set(seen)) != len(seen):
            raise CometRuleError(f"{market}: a parameter is changed twice", "give each parameter one change")
        check_comet_rules(market, _final_state(market, group, states.get(asset)))
        for c in sorted(group, key=lambda c: list(C).index(c.parameter)):
            warnings.extend(_truncation_warnings(market, c))
            value = c.proposed.raw
            calls.append(
                encode_call(
                    configurator, SETTERS[c.parameter], (comet, asset, value),
                    f"{market} {_LABELS[c.parameter]} {_text(c.current)} → {_text(c.proposed)}",
                    contract_label="Configurator",
                )
            )
    calls.append(
        encode_call(
            proxy_admin, DEPLOY_AND_UPGRADE_TO, (configurator, comet),
            f"deploy a Comet from the new configuration and upgrade {to_checksum_address(comet)} to it "
            "(nothing above takes effect without this)",
            contract_label="CometProxyAdmin",
        )
    )
    return CometPackage(calls=tuple(calls), warnings=tuple(warnings))


def batch_problems(calls: Sequence[tuple[str, str]], *, configurator: str, comet: str, proxy_admin: str) -> list[str]:
    """Independent check of a decoded batch (to, data): setters on the Configurator for this Comet, and the
    upgrade exactly once, last. An empty list means the batch has the shape `comet_calls` makes."""
    problems: list[str] = []
    configurator, comet, proxy_admin = (to_checksum_address(a) for a in (configurator, comet, proxy_admin))
    by_selector = {f.selector: f for f in FUNCTIONS}
    upgrades = []
    for i, (to, data) in enumerate(calls):
        fn = by_selector.get(bytes.fromhex(data[2:10]))
        if fn is None:
            problems.append(f"call {i}: selector {data[:10]} is not a Comet setter or the upgrade")
            continue
        args = decode_call(fn, data)
        if fn is DEPLOY_AND_UPGRADE_TO:
            upgrades.append(i)
            if to_checksum_address(to) != proxy_admin or args != (configurator, comet):
                problems.append(f"call {i}: deployAndUpgradeTo{args} on {to}, expected ({configurator}, {comet}) on {proxy_admin}")
        elif to_checksum_address(to) != configurator or args[0] != comet:
            problems.append(f"call {i}: {fn.name} on {to} for Comet {args[0]}, expected the Configurator {configurator} for {comet}")
    if calls and upgrades != [len(calls) - 1]:
        problems.append(f"deployAndUpgradeTo must appear exactly once, last; found at {upgrades or 'nowhere'}")
    return problems


def asset_state_from_info(info: tuple[Any, ...], symbol: str = "") -> CometAssetState:
    """CometAssetState from a decoded AssetInfo tuple."""
    offset, asset, price_feed, scale, bcf, lcf, lf, cap = info
    decimals = len(str(scale)) - 1
    if scale <= 0 or 10**decimals != scale:
        raise ChainError(f"Comet reports scale {scale} for {asset}, not a power of ten", "is the address a Comet?")
    return CometAssetState(
        asset=to_checksum_address(asset), offset=int(offset), price_feed=to_checksum_address(price_feed), decimals=decimals,
        borrow_collateral_factor=Wad(int(bcf)), liquidate_collateral_factor=Wad(int(lcf)), liquidation_factor=Wad(int(lf)),
        supply_cap=TokenAmount(int(cap), decimals, symbol),
    )


def read_asset_state(reader: ChainReader, comet: str, asset: str, *, block: int, symbol: str = "") -> CometAssetState:
    """An asset's current factors and cap from Comet (getAssetInfoByAddress) at `block`."""
    (info,) = reader.read(to_checksum_address(comet), GET_ASSET_INFO_BY_ADDRESS, to_checksum_address(asset), block=block)
    return asset_state_from_info(tuple(info), symbol)
