"""A real Aave v3 market on the devnet, deployed from the `@aave/core-v3` npm artifacts.

The order follows Aave's own deployment: addresses provider → ACL manager and roles → logic libraries →
Pool and PoolConfigurator implementations, put behind their proxies by the provider → oracle and data
provider → token implementations and rate strategies → `initReserves` → per-reserve risk parameters.
Reserves are mintable test tokens (`MintableERC20`) priced by `MockAggregator`s (8-decimal USD answers,
like Chainlink) through the real `AaveOracle` (base currency USD, unit 1e8). The reserves and their
parameters are the demo venue's, read from `risk/demo/snapshot.json`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from importlib import resources
from pathlib import Path
from typing import Any

from governance.artifacts import load_artifact
from governance.devnet_chain import Chain, DevnetError
from risk.errors import DataError, UnitError
from risk.units import BPS_PER_ONE, Bps, Ratio

AAVE = "@aave/core-v3"
ORACLE_DECIMALS = 8
ZERO = "0x0000000000000000000000000000000000000000"
MARKET_ID = "Steward Devnet"

# The Pool's external logic libraries; FlashLoanLogic itself links BorrowLogic, so it is deployed last.
_POOL_LIBRARIES = ("SupplyLogic", "BorrowLogic", "LiquidationLogic", "EModeLogic", "BridgeLogic", "PoolLogic")


@dataclass(frozen=True, slots=True)
class ReserveSpec:
    """One reserve of the demo venue as the snapshot states it (bonus is the bonus only)."""

    symbol: str
    decimals: int
    ltv: Bps
    liquidation_threshold: Bps
    liquidation_bonus: Bps
    reserve_factor: Bps
    liquidation_protocol_fee: Bps
    supply_cap: int  # whole tokens
    borrow_cap: int  # whole tokens
    price_usd: Decimal
    borrowing_enabled: bool = True

    @property
    def onchain_bonus(self) -> int:
        """What `configureReserveAsCollateral` takes: 10000 + bonus, in bps."""
        return BPS_PER_ONE + self.liquidation_bonus.value

    @property
    def price_answer(self) -> int:
        return price_answer(self.price_usd)


@dataclass(frozen=True, slots=True)
class RateStrategy:
    """Variable-rate curve of `DefaultReserveInterestRateStrategy` (stable borrowing stays off)."""

    optimal_usage: Ratio
    base_rate: Ratio
    slope1: Ratio
    slope2: Ratio


# Illustrative curves in the shape of Aave v3 Ethereum's (stablecoin vs volatile); the risk
# parameters under test come from the snapshot, these only make borrowing accrue plausibly.
_STABLE_CURVE = RateStrategy(Ratio.parse("90%"), Ratio.parse("0%"), Ratio.parse("4%"), Ratio.parse("60%"))
_VOLATILE_CURVE = RateStrategy(Ratio.parse("45%"), Ratio.parse("0%"), Ratio.parse("4%"), Ratio.parse("300%"))
RATE_STRATEGIES = {
    "USDC": _STABLE_CURVE,
    "WETH": RateStrategy(Ratio.parse("80%"), Ratio.parse("0%"), Ratio.parse("3.3%"), Ratio.parse("80%")),
}


def price_answer(price_usd: Decimal) -> int:
    """A USD price as the 8-decimal integer a Chainlink USD feed answers (rounded half-even)."""
    if not isinstance(price_usd, Decimal) or not price_usd.is_finite() or price_usd <= 0:
        raise UnitError(f"price {price_usd!r} is not a positive Decimal", "pass e.g. Decimal('1816.85')")
    answer = int(price_usd.scaleb(ORACLE_DECIMALS).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))
    if answer <= 0:
        raise UnitError(f"price {price_usd} rounds to 0 at {ORACLE_DECIMALS} decimals", "use a larger price")
    return answer


def demo_snapshot_path() -> Path:
    return Path(str(resources.files("risk.demo") / "snapshot.json"))


def load_reserve_specs(path: Path | None = None) -> tuple[ReserveSpec, ...]:
    """The demo venue's reserves from its snapshot, sorted by symbol."""
    path = path or demo_snapshot_path()
    try:
        markets = json.loads(path.read_text())["markets"]
    except (OSError, ValueError, KeyError) as e:
        raise DataError(f"{path}: cannot read the reserves ({e})", "the snapshot must hold a 'markets' map") from None
    specs = []
    for symbol in sorted(markets):
        row = markets[symbol]
        where = f"{path}: markets.{symbol}"
        try:
            specs.append(
                ReserveSpec(
                    symbol=symbol,
                    decimals=int(row["decimals"]),
                    ltv=Bps.parse(row["ltv"], f"{where}.ltv"),
                    liquidation_threshold=Bps.parse(row["liquidation_threshold"], f"{where}.liquidation_threshold"),
                    liquidation_bonus=Bps.parse(row["liquidation_bonus"], f"{where}.liquidation_bonus"),
                    reserve_factor=Bps.parse(row["reserve_factor"], f"{where}.reserve_factor"),
                    liquidation_protocol_fee=Bps.parse(
                        row["liquidation_protocol_fee"], f"{where}.liquidation_protocol_fee"
                    ),
                    supply_cap=int(row["supply_cap"]),
                    borrow_cap=int(row["borrow_cap"]),
                    price_usd=Decimal(str(row["price_usd"])),
                    borrowing_enabled=bool(row.get("borrowing_enabled", True)),
                )
            )
        except KeyError as e:
            raise DataError(f"{where}: missing field {e}", "see risk/demo/snapshot.json for the fields") from None
    return tuple(specs)


@dataclass(frozen=True, slots=True)
class AaveMarket:
    """What the market deployment leaves behind: named addresses and, per symbol, its tokens."""

    addresses: dict[str, str]
    markets: dict[str, dict[str, Any]]


class _Deployer:
    """Deploys and calls as `admin`, filing each address under a name in `addresses`."""

    def __init__(self, chain: Chain, admin: str, addresses: dict[str, str]) -> None:
        self.chain, self.admin, self.addresses = chain, admin, addresses

    def deploy(self, key: str, contract: str, *args: Any, libraries: dict[str, str] | None = None) -> str:
        artifact = load_artifact(AAVE, contract)
        address = self.chain.deploy(f"deploy {key}", self.admin, artifact, args, libraries=libraries)
        self.addresses[key] = address
        return address

    def call(self, key: str, contract: str, function: str, *args: Any, label: str = "") -> None:
        target = self.chain.contract(self.addresses[key], load_artifact(AAVE, contract))
        step = f"{label}: {contract}.{function}" if label else f"{contract}.{function}"
        self.chain.transact(step, self.admin, target, function, *args)

    def read(self, key: str, contract: str, function: str, *args: Any) -> Any:
        target = self.chain.contract(self.addresses[key], load_artifact(AAVE, contract))
        return getattr(target.functions, function)(*args).call()


def deploy_aave(chain: Chain, admin: str, treasury: str, specs: tuple[ReserveSpec, ...]) -> AaveMarket:
    """Deploy and configure the market; `admin` ends up ACL admin, pool admin and emergency admin."""
    a: dict[str, str] = {"pool_admin": admin, "treasury": treasury}
    d = _Deployer(chain, admin, a)
    tokens = {s.symbol: d.deploy(f"token_{s.symbol}", "MintableERC20", s.symbol, s.symbol, s.decimals) for s in specs}
    feeds = {s.symbol: d.deploy(f"aggregator_{s.symbol}", "MockAggregator", s.price_answer) for s in specs}

    provider = d.deploy("pool_addresses_provider", "PoolAddressesProvider", MARKET_ID, admin)
    d.call("pool_addresses_provider", "PoolAddressesProvider", "setACLAdmin", admin)
    d.deploy("acl_manager", "ACLManager", provider)
    d.call("pool_addresses_provider", "PoolAddressesProvider", "setACLManager", a["acl_manager"])
    d.call("acl_manager", "ACLManager", "addPoolAdmin", admin)
    d.call("acl_manager", "ACLManager", "addEmergencyAdmin", admin)

    libraries = {name: d.deploy(f"library_{name}", name) for name in _POOL_LIBRARIES}
    libraries["FlashLoanLogic"] = d.deploy("library_FlashLoanLogic", "FlashLoanLogic", libraries=libraries)
    libraries["ConfiguratorLogic"] = d.deploy("library_ConfiguratorLogic", "ConfiguratorLogic")

    # Implementations are initialised too, as Aave does, so that nobody else can; the provider
    # then puts each behind its proxy and initialises the proxy.
    d.deploy("pool_impl", "Pool", provider, libraries=libraries)
    d.call("pool_impl", "Pool", "initialize", provider)
    d.call("pool_addresses_provider", "PoolAddressesProvider", "setPoolImpl", a["pool_impl"])
    a["pool"] = d.read("pool_addresses_provider", "PoolAddressesProvider", "getPool")
    d.deploy("pool_configurator_impl", "PoolConfigurator", libraries=libraries)
    d.call("pool_configurator_impl", "PoolConfigurator", "initialize", provider)
    d.call("pool_addresses_provider", "PoolAddressesProvider", "setPoolConfiguratorImpl", a["pool_configurator_impl"])
    a["pool_configurator"] = d.read("pool_addresses_provider", "PoolAddressesProvider", "getPoolConfigurator")

    symbols = [s.symbol for s in specs]
    sources = ([tokens[x] for x in symbols], [feeds[x] for x in symbols])
    d.deploy("oracle", "AaveOracle", provider, *sources, ZERO, ZERO, 10**ORACLE_DECIMALS)
    d.call("pool_addresses_provider", "PoolAddressesProvider", "setPriceOracle", a["oracle"])
    d.deploy("data_provider", "AaveProtocolDataProvider", provider)
    d.call("pool_addresses_provider", "PoolAddressesProvider", "setPoolDataProvider", a["data_provider"])

    d.deploy("a_token_impl", "AToken", a["pool"])
    d.deploy("stable_debt_token_impl", "StableDebtToken", a["pool"])
    d.deploy("variable_debt_token_impl", "VariableDebtToken", a["pool"])
    strategies = {s.symbol: _deploy_strategy(d, provider, s.symbol) for s in specs}

    inputs = [
        (
            a["a_token_impl"],
            a["stable_debt_token_impl"],
            a["variable_debt_token_impl"],
            s.decimals,
            strategies[s.symbol],
            tokens[s.symbol],
            treasury,
            ZERO,  # no incentives controller on the devnet
            f"Aave Devnet {s.symbol}",
            f"aDev{s.symbol}",
            f"Aave Devnet Variable Debt {s.symbol}",
            f"variableDebtDev{s.symbol}",
            f"Aave Devnet Stable Debt {s.symbol}",
            f"stableDebtDev{s.symbol}",
            b"",
        )
        for s in specs
    ]
    d.call("pool_configurator", "PoolConfigurator", "initReserves", inputs)
    for s in specs:
        _configure_reserve(d, tokens[s.symbol], s)

    markets: dict[str, dict[str, Any]] = {}
    for s in specs:
        a_token, _stable, variable = d.read(
            "data_provider", "AaveProtocolDataProvider", "getReserveTokensAddresses", tokens[s.symbol]
        )
        markets[s.symbol] = {
            "asset": tokens[s.symbol],
            "decimals": s.decimals,
            "aggregator": feeds[s.symbol],
            "a_token": a_token,
            "variable_debt_token": variable,
            "interest_rate_strategy": strategies[s.symbol],
        }
    return AaveMarket(addresses=a, markets=markets)


def _deploy_strategy(d: _Deployer, provider: str, symbol: str) -> str:
    curve = RATE_STRATEGIES.get(symbol, _VOLATILE_CURVE)
    return d.deploy(
        f"rate_strategy_{symbol}",
        "DefaultReserveInterestRateStrategy",
        provider,
        curve.optimal_usage.to_ray().raw,
        curve.base_rate.to_ray().raw,
        curve.slope1.to_ray().raw,
        curve.slope2.to_ray().raw,
        0,  # stable slope 1 (stable borrowing is disabled)
        0,  # stable slope 2
        0,  # base stable rate offset
        0,  # stable rate excess offset
        Ratio.parse("20%").to_ray().raw,  # optimal stable-to-total debt ratio (must be ≤ 1)
    )


def _configure_reserve(d: _Deployer, asset: str, s: ReserveSpec) -> None:
    if s.liquidation_threshold.value * s.onchain_bonus > BPS_PER_ONE**2 or s.ltv > s.liquidation_threshold:
        raise DevnetError(
            f"{s.symbol}: ltv {s.ltv}, threshold {s.liquidation_threshold}, bonus {s.liquidation_bonus} "
            "break Aave's rules",
            "need ltv ≤ LT and LT × (1 + bonus) ≤ 100%; fix risk/demo/snapshot.json",
        )
    steps = (
        ("configureReserveAsCollateral", (s.ltv.value, s.liquidation_threshold.value, s.onchain_bonus)),
        ("setReserveBorrowing", (s.borrowing_enabled,)),
        ("setReserveFactor", (s.reserve_factor.value,)),
        ("setLiquidationProtocolFee", (s.liquidation_protocol_fee.value,)),
        ("setSupplyCap", (s.supply_cap,)),
        ("setBorrowCap", (s.borrow_cap,)),
    )
    for function, args in steps:
        d.call("pool_configurator", "PoolConfigurator", function, asset, *args, label=s.symbol)
