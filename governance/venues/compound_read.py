"""Read a Comet snapshot from a chain at one block: what `steward epoch --rpc` pins for a Compound v3 venue.

Per policy market, `Comet.getAssetInfoByAddress` (factors as stored, the supply cap, the price feed) and
`Comet.getPrice(priceFeed)` (USD, 8 decimals); Comet-wide, `storeFrontPriceFactor()`, the base token and
its price; the Safe's nonce. Every read names the same block. There is no devnet Comet (its bytecode is
not published on npm), so this is tested against a JSON-RPC stand-in answering from a table.
"""

from __future__ import annotations

from decimal import Decimal

from eth_utils import to_checksum_address

from governance.chain import ChainError, ChainReader, ViewFn, connect
from governance.venues.compound_snapshot import CometSnapshot
from governance.venues.compound_v3 import read_asset_state
from risk.policy import Policy
from risk.policy_compound import compound_section
from risk.units import WAD, Wad

STORE_FRONT_PRICE_FACTOR = ViewFn("storeFrontPriceFactor()", ("uint256",))
GET_PRICE = ViewFn("getPrice(address)", ("uint256",))
BASE_TOKEN = ViewFn("baseToken()", ("address",))
BASE_TOKEN_PRICE_FEED = ViewFn("baseTokenPriceFeed()", ("address",))
ERC20_SYMBOL = ViewFn("symbol()", ("string",))
PRICE_SCALE = Decimal(10**8)  # Comet's getPrice: USD with 8 decimals


def _price(reader: ChainReader, comet: str, feed: str, where: str, block: int) -> Decimal:
    (price,) = reader.read(comet, GET_PRICE, feed, block=block)
    if price <= 0:
        raise ChainError(f"{where}: Comet prices it at {price} (feed {feed})", "the asset has no working price feed")
    return Decimal(price) / PRICE_SCALE


def read_comet_snapshot(reader: ChainReader, policy: Policy, *, block: int | None) -> CometSnapshot:
    """Every policy market's Comet configuration and price, and the Safe's nonce, at one block (None: the head, then pinned)."""
    section = compound_section(policy)
    pinned = reader.block_number() if block is None else block
    comet = to_checksum_address(section.comet)
    assets, prices = {}, {}
    for market in policy.markets:
        where = f"{market.symbol} ({market.asset}) at block {pinned}"
        state = read_asset_state(reader, comet, market.asset, block=pinned, symbol=market.symbol)
        if state.asset != to_checksum_address(market.asset):
            raise ChainError(f"{where}: Comet {comet} answers for {state.asset}", "is the asset a collateral of this Comet?")
        if state.decimals != market.decimals:
            raise ChainError(f"{where}: Comet says {state.decimals} decimals, the policy {market.decimals}",
                             "fix markets[].decimals (or the asset address) in the policy")
        assets[market.symbol] = state
        prices[market.symbol] = _price(reader, comet, state.price_feed, where, pinned)
    (factor,) = reader.read(comet, STORE_FRONT_PRICE_FACTOR, block=pinned)
    if factor > WAD:
        raise ChainError(f"Comet {comet} reports a storefront price factor of {factor} (above 1e18)", "is the address a Comet?")
    (base,) = reader.read(comet, BASE_TOKEN, block=pinned)
    (base_feed,) = reader.read(comet, BASE_TOKEN_PRICE_FEED, block=pinned)
    (base_symbol,) = reader.read(to_checksum_address(base), ERC20_SYMBOL, block=pinned)
    nonce = 0
    safe = policy.venue.addresses.safe
    if safe is not None:
        if not reader.code(safe, block=pinned):
            raise ChainError(f"no contract at the Safe address {safe} at block {pinned}", "check venue.addresses.safe")
        nonce = reader.safe_state(safe, block=pinned).nonce
    return CometSnapshot(
        venue=policy.venue.name, chain_id=reader.chain_id, block=pinned, comet=comet, store_front_price_factor=Wad(int(factor)),
        assets=assets, prices=prices, source=f"rpc chain {reader.chain_id} block {pinned}", safe_nonce=nonce,
        base_symbol=str(base_symbol), base_price_usd=_price(reader, comet, to_checksum_address(base_feed), f"base {base_symbol}", pinned),
    )


def comet_snapshot_from_rpc(policy: Policy, rpc_url: str, *, block: int | None, timeout_s: float = 10.0) -> CometSnapshot:
    """What `steward epoch --rpc URL [--block N]` pins for a Compound v3 venue: connect (checking the chain id), then read."""
    reader = connect(rpc_url, expected_chain_id=policy.venue.chain_id, timeout_s=timeout_s)
    compound_section(policy)  # before connecting: a policy without its contracts is refused offline
    return read_comet_snapshot(reader, policy, block=block)
