"""Aave v3 read at one block: the epoch's snapshot of current parameters, and the full reserve state
that simulation and reconciliation compare before and after a Safe transaction.

Values come from `AaveProtocolDataProvider` (configuration, caps, protocol fee, flags), `AaveOracle`
(prices in the base currency, USD with unit 1e8 on Aave v3) and `Pool.getConfiguration` (the packed
configuration word, for reserves outside the policy). The bonus is stored as 10000 + bonus; here it
is the bonus only, as in snapshots and recommendations.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

from eth_utils import to_checksum_address

from governance.artifacts import node_modules
from governance.chain import ChainError, ChainReader, ViewFn, connect
from risk.errors import StewardError
from risk.policy import Policy
from risk.snapshot import MarketState, VenueSnapshot
from risk.units import BPS_PER_ONE, Bps, TokenAmount

ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"

DP_CONFIGURATION = ViewFn(
    "getReserveConfigurationData(address)",
    ("uint256", "uint256", "uint256", "uint256", "uint256", "bool", "bool", "bool", "bool", "bool"),
)
DP_CAPS = ViewFn("getReserveCaps(address)", ("uint256", "uint256"))  # (borrow cap, supply cap), whole tokens
DP_PROTOCOL_FEE = ViewFn("getLiquidationProtocolFee(address)", ("uint256",))
DP_PAUSED = ViewFn("getPaused(address)", ("bool",))
DP_SILOED = ViewFn("getSiloedBorrowing(address)", ("bool",))
DP_FLASH_LOAN = ViewFn("getFlashLoanEnabled(address)", ("bool",))
DP_EMODE = ViewFn("getReserveEModeCategory(address)", ("uint256",))
DP_DEBT_CEILING = ViewFn("getDebtCeiling(address)", ("uint256",))
DP_UNBACKED_MINT_CAP = ViewFn("getUnbackedMintCap(address)", ("uint256",))
DP_RATE_STRATEGY = ViewFn("getInterestRateStrategyAddress(address)", ("address",))
DP_PROVIDER = ViewFn("ADDRESSES_PROVIDER()", ("address",))
POOL_PROVIDER = ViewFn("ADDRESSES_PROVIDER()", ("address",))
POOL_CONFIGURATION = ViewFn("getConfiguration(address)", ("uint256",))  # struct { uint256 data }
POOL_RESERVES = ViewFn("getReservesList()", ("address[]",))
PROVIDER_POOL = ViewFn("getPool()", ("address",))
PROVIDER_ORACLE = ViewFn("getPriceOracle()", ("address",))
PROVIDER_DATA_PROVIDER = ViewFn("getPoolDataProvider()", ("address",))
ORACLE_PRICE = ViewFn("getAssetPrice(address)", ("uint256",))
ORACLE_BASE_CURRENCY = ViewFn("BASE_CURRENCY()", ("address",))
ORACLE_BASE_UNIT = ViewFn("BASE_CURRENCY_UNIT()", ("uint256",))

# ReserveConfiguration.sol (v3.0): bit 61 is "borrowable in isolation" (no data-provider getter) and
# bits 252–255 are unused; every other field is read through the data provider.
_BORROWABLE_IN_ISOLATION_BIT = 61
_UNLISTED_BITS_MASK = ((1 << 256) - 1) ^ ((1 << 252) - 1)

# The parameters a recommendation sets, in the units it states them (bps, bonus only; whole tokens).
RECOMMENDED = ("ltv", "liquidation_threshold", "liquidation_bonus", "supply_cap", "borrow_cap")


@dataclass(frozen=True, slots=True)
class AaveAddresses:
    pool: str
    data_provider: str
    oracle: str


def resolve_addresses(reader: ChainReader, policy: Policy, *, block: int) -> AaveAddresses:
    """The pool, data provider and oracle at `block`: what the policy leaves out comes from the market's
    PoolAddressesProvider (reached through the data provider or the pool); what it gives must agree."""
    given = policy.venue.addresses
    if given.data_provider is not None:
        (provider,) = reader.read(to_checksum_address(given.data_provider), DP_PROVIDER, block=block)
    elif given.pool is not None:
        (provider,) = reader.read(to_checksum_address(given.pool), POOL_PROVIDER, block=block)
    else:
        raise StewardError(
            f"venue {policy.venue.name} has neither a data_provider nor a pool address",
            "add venue.addresses.data_provider (AaveProtocolDataProvider) or venue.addresses.pool to the policy",
        )
    found = {
        "pool": reader.read(provider, PROVIDER_POOL, block=block)[0],
        "data_provider": reader.read(provider, PROVIDER_DATA_PROVIDER, block=block)[0],
        "oracle": reader.read(provider, PROVIDER_ORACLE, block=block)[0],
    }
    resolved = {}
    for name, onchain in found.items():
        stated = getattr(given, name, None)
        if stated is not None and to_checksum_address(stated) != to_checksum_address(onchain):
            raise ChainError(
                f"the policy's {name} {stated} is not the one of the market's addresses provider {provider} ({onchain})",
                f"fix venue.addresses.{name} in the policy (or leave it out to use the provider's)",
            )
        resolved[name] = to_checksum_address(stated if stated is not None else onchain)
    return AaveAddresses(**resolved)


def _usd_unit(reader: ChainReader, oracle: str, block: int) -> int:
    (base,) = reader.read(oracle, ORACLE_BASE_CURRENCY, block=block)
    (unit,) = reader.read(oracle, ORACLE_BASE_UNIT, block=block)
    if to_checksum_address(base) != ZERO_ADDRESS or unit <= 0 or 10 ** (len(str(unit)) - 1) != unit:
        raise ChainError(
            f"oracle {oracle} prices in {base} with unit {unit}, not USD with a power-of-ten unit",
            "Steward reads Aave v3 oracles whose base currency is USD (address 0)",
        )
    return int(unit)


def _onchain_bonus_to_bps(raw: int) -> int:
    """10000 + bonus → bonus; 0 (collateral disabled) stays 0."""
    return raw - BPS_PER_ONE if raw >= BPS_PER_ONE else raw


def read_snapshot(reader: ChainReader, policy: Policy, *, block: int | None, safe: str | None) -> VenueSnapshot:
    """Every policy market's current parameters and oracle price, and the Safe's nonce, at one block.

    `block` None means the head at call time, then pinned: every read below names that block.
    """
    pinned = reader.block_number() if block is None else block
    head = reader.block_number() if block is not None else pinned
    if pinned < 0 or pinned > head:
        raise ChainError(f"block {pinned} is beyond the head of chain {reader.chain_id} ({head})", "pass a block at or below the head")
    addresses = resolve_addresses(reader, policy, block=pinned)
    unit = _usd_unit(reader, addresses.oracle, pinned)
    markets: dict[str, MarketState] = {}
    for market in policy.markets:
        asset = to_checksum_address(market.asset)
        where = f"{market.symbol} ({asset}) at block {pinned}"
        decimals, ltv, lt, bonus, reserve_factor, *_flags, active, _frozen = reader.read(
            addresses.data_provider, DP_CONFIGURATION, asset, block=pinned
        )
        if decimals == 0 and not active and lt == 0:
            raise ChainError(f"{where}: not a reserve of pool {addresses.pool}", "check the market's asset address in the policy")
        if decimals != market.decimals:
            raise ChainError(
                f"{where}: the chain says {decimals} decimals, the policy {market.decimals}",
                "fix markets[].decimals (or the asset address) in the policy",
            )
        borrow_cap, supply_cap = reader.read(addresses.data_provider, DP_CAPS, asset, block=pinned)
        (fee,) = reader.read(addresses.data_provider, DP_PROTOCOL_FEE, asset, block=pinned)
        (price,) = reader.read(addresses.oracle, ORACLE_PRICE, asset, block=pinned)
        if price <= 0:
            raise ChainError(f"{where}: oracle {addresses.oracle} prices it at {price}", "the asset has no working price source")
        markets[market.symbol] = MarketState(
            symbol=market.symbol,
            asset=asset,
            decimals=decimals,
            ltv=Bps(ltv),
            liquidation_threshold=Bps(lt),
            liquidation_bonus=Bps(_onchain_bonus_to_bps(bonus)),
            supply_cap=TokenAmount.whole(supply_cap, decimals, market.symbol),
            borrow_cap=TokenAmount.whole(borrow_cap, decimals, market.symbol),
            price_usd=Decimal(price) / Decimal(unit),
            liquidation_protocol_fee=Bps(fee),
            reserve_factor=Bps(reserve_factor),
        )
    nonce = 0
    if safe is not None:
        if not reader.code(safe, block=pinned):
            raise ChainError(f"no contract at the Safe address {safe} at block {pinned}", "check venue.addresses.safe")
        nonce = reader.safe_state(safe, block=pinned).nonce
    return VenueSnapshot(
        venue=policy.venue.name,
        chain_id=reader.chain_id,
        block=pinned,
        markets=markets,
        source=f"rpc chain {reader.chain_id} block {pinned}",
        safe_nonce=nonce,
    )


def snapshot_from_rpc(policy: Policy, rpc_url: str, *, block: int | None, timeout_s: float = 10.0) -> VenueSnapshot:
    """What `steward epoch --rpc URL [--block N]` pins: connect (checking the chain id), then read."""
    reader = connect(rpc_url, expected_chain_id=policy.venue.chain_id, timeout_s=timeout_s)
    return read_snapshot(reader, policy, block=block, safe=policy.venue.addresses.safe)


# --- the full state of reserves, for before/after comparisons ------------------------------------


def reserve_state(reader: ChainReader, addresses: AaveAddresses, asset: str, *, block: int) -> dict[str, Any]:
    """Every configuration value of one reserve at `block`, the recommended ones in recommendation units."""
    dp = addresses.data_provider
    decimals, ltv, lt, bonus, reserve_factor, collateral, borrowing, stable, active, frozen = reader.read(
        dp, DP_CONFIGURATION, asset, block=block
    )
    borrow_cap, supply_cap = reader.read(dp, DP_CAPS, asset, block=block)
    (word,) = reader.read(addresses.pool, POOL_CONFIGURATION, asset, block=block)
    return {
        "ltv": ltv,
        "liquidation_threshold": lt,
        "liquidation_bonus": _onchain_bonus_to_bps(bonus),
        "supply_cap": supply_cap,
        "borrow_cap": borrow_cap,
        "decimals": decimals,
        "reserve_factor": reserve_factor,
        "liquidation_protocol_fee": reader.read(dp, DP_PROTOCOL_FEE, asset, block=block)[0],
        "usage_as_collateral_enabled": collateral,
        "borrowing_enabled": borrowing,
        "stable_borrow_rate_enabled": stable,
        "active": active,
        "frozen": frozen,
        "paused": reader.read(dp, DP_PAUSED, asset, block=block)[0],
        "siloed_borrowing": reader.read(dp, DP_SILOED, asset, block=block)[0],
        "flash_loan_enabled": reader.read(dp, DP_FLASH_LOAN, asset, block=block)[0],
        "borrowable_in_isolation": bool(word >> _BORROWABLE_IN_ISOLATION_BIT & 1),
        "emode_category": reader.read(dp, DP_EMODE, asset, block=block)[0],
        "debt_ceiling": reader.read(dp, DP_DEBT_CEILING, asset, block=block)[0],
        "unbacked_mint_cap": reader.read(dp, DP_UNBACKED_MINT_CAP, asset, block=block)[0],
        "interest_rate_strategy": to_checksum_address(reader.read(dp, DP_RATE_STRATEGY, asset, block=block)[0]),
        "configuration_unused_bits": hex(word & _UNLISTED_BITS_MASK),
    }


def pool_state(
    reader: ChainReader, addresses: AaveAddresses, markets: Mapping[str, str], *, block: int
) -> dict[str, dict[str, Any]]:
    """The policy's markets in full (by symbol) and every other reserve's configuration word (by address)."""
    state = {symbol: reserve_state(reader, addresses, asset, block=block) for symbol, asset in markets.items()}
    listed = {to_checksum_address(a) for a in markets.values()}
    (reserves,) = reader.read(addresses.pool, POOL_RESERVES, block=block)
    for asset in sorted(to_checksum_address(a) for a in reserves):
        if asset not in listed:
            (word,) = reader.read(addresses.pool, POOL_CONFIGURATION, asset, block=block)
            state[asset] = {"configuration": hex(word)}
    return state


# --- Aave's error codes, named ---------------------------------------------------------------------

_ERRORS_SOL = Path("@aave") / "core-v3" / "contracts" / "protocol" / "libraries" / "helpers" / "Errors.sol"
_ERROR_LINE = re.compile(r"string public constant (\w+) = '(\d+)';")


@cache
def _aave_error_names() -> dict[str, str]:
    """Code → name, read from the Errors.sol shipped in the npm package (empty if it is not installed)."""
    try:
        text = (node_modules() / _ERRORS_SOL).read_text()
    except OSError:
        return {}
    return {code: name for name, code in _ERROR_LINE.findall(text)}


def explain_revert(reason: str) -> str:
    """'4' → '4 (CALLER_NOT_RISK_OR_POOL_ADMIN)' when the reason is an Aave error code."""
    name = _aave_error_names().get(reason.strip())
    return f"{reason} ({name})" if name else reason
