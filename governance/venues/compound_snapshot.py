"""Current configuration of a Comet's collateral assets: the pinned input of a Compound v3 epoch (`inputs/comet.json`).

What `Comet.getAssetInfoByAddress` reports per asset (factors as Comet keeps them, 4 decimals; the
supply cap in whole tokens) plus the Comet-wide `storeFrontPriceFactor`, the block, the Safe's nonce
and, optionally, the oracle price of each asset and of the base asset (the demo market is anchored on
them). `risk/demo/comet_snapshot.json` is an example. Factors are written as percentages ("82.5%"),
exactly as stored; a value finer than Comet can hold is refused, naming the file and field.

`to_venue_snapshot` gives the lending risk core its view (`risk.snapshot.VenueSnapshot`), with the
mapping stated in `governance.pipeline_compound`: borrow CF → LTV, liquidate CF → liquidation
threshold, 1 − liquidation factor → bonus, 1 − storefront price factor → the protocol's share of the
bonus, and no borrow cap (Comet has none per asset; 0 is "no cap").
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from decimal import Decimal, InvalidOperation
from typing import Any

from eth_utils import is_address, to_checksum_address

from governance.venues.compound_v3 import FACTOR_DESCALE, CometAssetState
from risk.errors import DataError, UnitError
from risk.snapshot import MarketState, VenueSnapshot
from risk.units import WAD, Bps, Ratio, TokenAmount, Wad

_FACTORS = ("borrow_collateral_factor", "liquidate_collateral_factor", "liquidation_factor")
_HINT = "see risk/demo/comet_snapshot.json for the format"


@dataclass(frozen=True, slots=True)
class CometSnapshot:
    """One Comet's collateral assets (by the policy's symbols) as read at `block` (None: a committed file)."""

    venue: str
    chain_id: int
    block: int | None
    comet: str
    store_front_price_factor: Wad
    assets: dict[str, CometAssetState]
    prices: dict[str, Decimal | None]  # per asset symbol; None until filled from the market data
    source: str
    safe_nonce: int = 0
    base_symbol: str | None = None
    base_price_usd: Decimal | None = None

    def asset(self, symbol: str) -> CometAssetState:
        try:
            return self.assets[symbol]
        except KeyError:
            raise DataError(
                f"market {symbol!r} is not a collateral asset in the Comet snapshot ({self.source})",
                f"the snapshot has: {', '.join(sorted(self.assets)) or 'nothing'}; check the policy's market symbols",
            ) from None

    def restricted(self, symbols: list[str], venue: str) -> CometSnapshot:
        """The policy's markets only, in its order (the pinned file stays small)."""
        assets = {s: self.asset(s) for s in symbols}
        return replace(self, venue=venue, assets=assets, prices={s: self.prices.get(s) for s in symbols})

    def with_prices(self, prices: dict[str, Decimal], note: str) -> CometSnapshot:
        missing = [s for s, p in self.prices.items() if p is None]
        if not missing:
            return self
        filled = {s: prices[s] if p is None else p for s, p in self.prices.items()}
        return replace(self, prices=filled, source=f"{self.source}; price_usd of {', '.join(missing)} {note}")

    def to_venue_snapshot(self) -> VenueSnapshot:
        """The lending core's view of these assets (exact: Comet's 4 decimals are whole basis points)."""
        fee = Ratio(1 - self.store_front_price_factor.to_ratio().value).to_bps("up")  # the keeper's share rounded down
        markets = {}
        for symbol, a in self.assets.items():
            markets[symbol] = MarketState(
                symbol=symbol, asset=a.asset, decimals=a.decimals,
                ltv=_bps(a.borrow_collateral_factor, f"{symbol} borrow_collateral_factor"),
                liquidation_threshold=_bps(a.liquidate_collateral_factor, f"{symbol} liquidate_collateral_factor"),
                liquidation_bonus=_bps(Wad(WAD - a.liquidation_factor.raw), f"{symbol} 1 - liquidation_factor"),
                supply_cap=a.supply_cap, borrow_cap=TokenAmount(0, a.decimals, symbol),
                price_usd=self.prices.get(symbol), liquidation_protocol_fee=fee,
            )
        return VenueSnapshot(venue=self.venue, chain_id=self.chain_id, block=self.block, markets=markets, source=self.source,
                             safe_nonce=self.safe_nonce)

    def to_json_bytes(self) -> bytes:
        doc: dict[str, Any] = {
            "assets": {s: _asset_json(a, self.prices.get(s)) for s, a in sorted(self.assets.items())},
            "block": self.block,
            "chain_id": self.chain_id,
            "comet": self.comet,
            "safe_nonce": self.safe_nonce,
            "source": self.source,
            "store_front_price_factor": str(self.store_front_price_factor.to_ratio()),
            "venue": self.venue,
        }
        if self.base_symbol is not None:
            doc["base"] = {"price_usd": None if self.base_price_usd is None else f"{self.base_price_usd:f}", "symbol": self.base_symbol}
        return (json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()


def _bps(value: Wad, what: str) -> Bps:
    try:
        return value.to_ratio().to_bps()
    except UnitError:  # pragma: no cover - parse_comet_snapshot_json refuses such values first
        raise DataError(f"{what} {value.to_ratio()} is finer than Comet keeps", "Comet stores 4 decimals") from None


def _asset_json(a: CometAssetState, price: Decimal | None) -> dict[str, Any]:
    return {
        "asset": a.asset,
        "borrow_collateral_factor": str(a.borrow_collateral_factor.to_ratio()),
        "decimals": a.decimals,
        "liquidate_collateral_factor": str(a.liquidate_collateral_factor.to_ratio()),
        "liquidation_factor": str(a.liquidation_factor.to_ratio()),
        "offset": a.offset,
        "price_feed": a.price_feed,
        "price_usd": None if price is None else f"{price:f}",
        "supply_cap": a.supply_cap.to_whole_tokens(),
    }


def _get(row: dict[str, Any], key: str, where: str) -> Any:
    if key not in row:
        raise DataError(f"{where}: field {key!r} is missing", _HINT)
    return row[key]


def _int(row: dict[str, Any], key: str, where: str, lo: int = 0) -> int:
    value = _get(row, key, where)
    if isinstance(value, bool) or not isinstance(value, int) or value < lo:
        raise DataError(f"{where}.{key}: {value!r} is not a whole number >= {lo}", _HINT)
    return value


def _address(row: dict[str, Any], key: str, where: str) -> str:
    value = _get(row, key, where)
    if not isinstance(value, str) or not is_address(value):
        raise DataError(f"{where}.{key}: {value!r} is not an address", "a 0x-prefixed 20-byte hex address, quoted")
    return to_checksum_address(value)


def _factor(row: dict[str, Any], key: str, where: str) -> Wad:
    try:
        wad = Ratio.parse(_get(row, key, where), f"{where}.{key}").to_wad()
    except UnitError as exc:
        raise DataError(exc.cause, exc.hint) from None
    if wad.raw > WAD:
        raise DataError(f"{where}.{key}: {wad.to_ratio()} is above 100%", "Comet's factors are at most 1e18")
    if wad.raw % FACTOR_DESCALE:
        raise DataError(f"{where}.{key}: {wad.to_ratio()} has more than 4 decimals", "Comet stores factors to 4 decimals; copy what it reports")
    return wad


def _price(raw: Any, where: str) -> Decimal | None:
    if raw is None:
        return None
    try:
        price = Decimal(str(raw)) if isinstance(raw, str) else None
    except InvalidOperation:
        price = None
    if price is None or not price.is_finite() or price <= 0:
        raise DataError(f"{where}.price_usd: {raw!r} is not a positive decimal string", "e.g. \"1816.85\", or null")
    return price


def _asset(symbol: str, row: Any, where: str) -> tuple[CometAssetState, Decimal | None]:
    if not isinstance(row, dict):
        raise DataError(f"{where}: not a mapping", _HINT)
    decimals = _int(row, "decimals", where)
    if decimals > 36:
        raise DataError(f"{where}.decimals: {decimals} is not a token's decimals", "e.g. 18")
    state = CometAssetState(
        asset=_address(row, "asset", where), offset=_int(row, "offset", where), price_feed=_address(row, "price_feed", where),
        decimals=decimals, borrow_collateral_factor=_factor(row, "borrow_collateral_factor", where),
        liquidate_collateral_factor=_factor(row, "liquidate_collateral_factor", where),
        liquidation_factor=_factor(row, "liquidation_factor", where),
        supply_cap=TokenAmount.whole(_int(row, "supply_cap", where), decimals, symbol),
    )
    return state, _price(row.get("price_usd"), where)


def parse_comet_snapshot_json(data: bytes, name: str) -> CometSnapshot:
    """Read a Comet snapshot; every problem names the file and the field."""
    try:
        doc = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"{name}: not valid JSON ({exc})", _HINT) from None
    if not isinstance(doc, dict) or not isinstance(doc.get("assets"), dict) or not doc["assets"]:
        raise DataError(f"{name}: no 'assets' mapping", _HINT)
    parsed = {sym: _asset(sym, row, f"{name}: assets.{sym}") for sym, row in doc["assets"].items()}
    base = doc.get("base")
    if base is not None and (not isinstance(base, dict) or not isinstance(base.get("symbol"), str)):
        raise DataError(f"{name}: base must be {{symbol, price_usd}}", _HINT)
    block = doc.get("block")
    if block is not None and (isinstance(block, bool) or not isinstance(block, int) or block < 0):
        raise DataError(f"{name}: block {block!r} is not a block number", "a whole number, or null for a committed file")
    return CometSnapshot(
        venue=str(doc.get("venue", "")), chain_id=_int(doc, "chain_id", name, lo=0), block=block,
        comet=_address(doc, "comet", name), store_front_price_factor=_storefront(doc, name),
        assets={s: a for s, (a, _) in parsed.items()}, prices={s: p for s, (_, p) in parsed.items()},
        source=str(doc.get("source", name)), safe_nonce=_int(doc, "safe_nonce", name) if "safe_nonce" in doc else 0,
        base_symbol=None if base is None else base["symbol"],
        base_price_usd=None if base is None else _price(base.get("price_usd"), f"{name}: base"),
    )


def _storefront(doc: dict[str, Any], name: str) -> Wad:
    try:
        wad = Ratio.parse(_get(doc, "store_front_price_factor", name), f"{name}: store_front_price_factor").to_wad()
    except UnitError as exc:
        raise DataError(exc.cause, exc.hint) from None
    if wad.raw > WAD:
        raise DataError(f"{name}: store_front_price_factor {wad.to_ratio()} is above 100%", "Comet requires it <= 1e18")
    return wad
