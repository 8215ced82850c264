"""Current on-chain parameters of a venue, as read at one block (or from a committed file).

The snapshot is an input of the epoch and is pinned into the bundle (`inputs/snapshot.json`).
Two shapes are read: Steward's own JSON (written by the chain reader and used by the demo) and the
Aave v3 reserves CSV found in ../shared/data/aave (a bgd-labs configuration dump).
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, replace
from decimal import Decimal, InvalidOperation
from typing import Any

from risk.errors import DataError, StewardError
from risk.units import Bps, TokenAmount


@dataclass(frozen=True, slots=True)
class MarketState:
    """One reserve's current risk parameters. The bonus is the bonus only (5% → 500 bps)."""

    symbol: str
    asset: str
    decimals: int
    ltv: Bps
    liquidation_threshold: Bps
    liquidation_bonus: Bps
    supply_cap: TokenAmount
    borrow_cap: TokenAmount
    price_usd: Decimal | None
    liquidation_protocol_fee: Bps = Bps(0)  # noqa: RUF009 - Bps is immutable
    reserve_factor: Bps = Bps(0)  # noqa: RUF009

    def to_json(self) -> dict[str, Any]:
        return {
            "asset": self.asset,
            "borrow_cap": self.borrow_cap.to_whole_tokens(),
            "decimals": self.decimals,
            "liquidation_bonus": str(self.liquidation_bonus),
            "liquidation_protocol_fee": str(self.liquidation_protocol_fee),
            "liquidation_threshold": str(self.liquidation_threshold),
            "ltv": str(self.ltv),
            "price_usd": None if self.price_usd is None else f"{self.price_usd:f}",
            "reserve_factor": str(self.reserve_factor),
            "supply_cap": self.supply_cap.to_whole_tokens(),
        }


@dataclass(frozen=True, slots=True)
class VenueSnapshot:
    venue: str
    chain_id: int
    block: int | None
    markets: dict[str, MarketState]
    source: str
    safe_nonce: int = 0

    def market(self, symbol: str) -> MarketState:
        try:
            return self.markets[symbol]
        except KeyError:
            raise StewardError(
                f"market {symbol!r} is not in the snapshot of {self.venue}",
                f"the snapshot has: {', '.join(sorted(self.markets))}; check the policy's market symbols",
            ) from None

    def to_json_bytes(self) -> bytes:
        doc = {
            "block": self.block,
            "chain_id": self.chain_id,
            "markets": {s: m.to_json() for s, m in sorted(self.markets.items())},
            "safe_nonce": self.safe_nonce,
            "source": self.source,
            "venue": self.venue,
        }
        return (json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()


def _field(row: dict[str, Any], key: str, where: str) -> Any:
    if key not in row:
        raise DataError(f"{where}: field {key!r} is missing", "see risk/demo/snapshot.json for the expected fields")
    return row[key]


def _cap(value: Any, decimals: int, symbol: str, where: str) -> TokenAmount:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise DataError(f"{where}: cap {value!r} is not a whole number of tokens", "caps are integers, 0 = no cap")
    return TokenAmount.whole(value, decimals, symbol)


def _parse_market(symbol: str, row: dict[str, Any], where: str) -> MarketState:
    try:
        decimals = _field(row, "decimals", where)
        if isinstance(decimals, bool) or not isinstance(decimals, int):
            raise DataError(f"{where}: decimals {decimals!r} is not an integer", "e.g. 18")
        return MarketState(
            symbol=symbol,
            asset=str(_field(row, "asset", where)),
            decimals=decimals,
            ltv=Bps.parse(_field(row, "ltv", where), f"{where}.ltv"),
            liquidation_threshold=Bps.parse(_field(row, "liquidation_threshold", where), f"{where}.liquidation_threshold"),
            liquidation_bonus=Bps.parse(_field(row, "liquidation_bonus", where), f"{where}.liquidation_bonus"),
            supply_cap=_cap(_field(row, "supply_cap", where), decimals, symbol, f"{where}.supply_cap"),
            borrow_cap=_cap(_field(row, "borrow_cap", where), decimals, symbol, f"{where}.borrow_cap"),
            price_usd=None if row.get("price_usd") is None else Decimal(str(row["price_usd"])),
            liquidation_protocol_fee=Bps.parse(row.get("liquidation_protocol_fee", "0bps"), f"{where}.liquidation_protocol_fee"),
            reserve_factor=Bps.parse(row.get("reserve_factor", "0bps"), f"{where}.reserve_factor"),
        )
    except InvalidOperation:
        raise DataError(f"{where}: price_usd is not a number", "write it as a decimal string") from None


def parse_snapshot_json(data: bytes, name: str) -> VenueSnapshot:
    try:
        doc = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"{name}: not valid JSON ({exc})", "regenerate the snapshot with `steward epoch --rpc`") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("markets"), dict):
        raise DataError(f"{name}: no 'markets' mapping", "see risk/demo/snapshot.json for the format")
    markets = {sym: _parse_market(sym, row, f"{name}: markets.{sym}") for sym, row in doc["markets"].items()}
    return VenueSnapshot(
        venue=str(doc.get("venue", "")),
        chain_id=int(doc.get("chain_id", 0)),
        block=doc.get("block"),
        markets=markets,
        source=str(doc.get("source", name)),
        safe_nonce=int(doc.get("safe_nonce", 0)),
    )


_AAVE_CSV_PRICE_SCALE = {"8.0": 8, "8": 8, "18": 18, "18.0": 18}


def parse_aave_reserves_csv(data: bytes, name: str, chain_id: int, venue: str) -> VenueSnapshot:
    """Read an Aave v3 reserves dump (columns symbol, underlying, decimals, ltv, liquidationThreshold,
    liquidationBonus (10000 + bonus), supplyCap, borrowCap, oracleLatestAnswer, oracleDecimals, ...)."""
    reader = csv.DictReader(io.StringIO(data.decode("utf-8")))
    markets: dict[str, MarketState] = {}
    for line, row in enumerate(reader, start=2):
        where = f"{name}:{line}"
        try:
            lb_raw = int(row["liquidationBonus"])
            oracle_decimals = _AAVE_CSV_PRICE_SCALE.get(row.get("oracleDecimals") or "8", 8)
            answer = row.get("oracleLatestAnswer")
            doc = {
                "asset": row["underlying"],
                "decimals": int(row["decimals"]),
                "ltv": {"bps": int(row["ltv"])},
                "liquidation_threshold": {"bps": int(row["liquidationThreshold"])},
                "liquidation_bonus": {"bps": lb_raw - 10_000 if lb_raw else 0},
                "liquidation_protocol_fee": {"bps": int(row.get("liquidationProtocolFee") or 0)},
                "reserve_factor": {"bps": int(row.get("reserveFactor") or 0)},
                "supply_cap": int(row["supplyCap"]),
                "borrow_cap": int(row["borrowCap"]),
                "price_usd": str(Decimal(answer) / (Decimal(10) ** oracle_decimals)) if answer else None,
            }
        except (KeyError, ValueError, InvalidOperation) as exc:
            raise DataError(f"{where}: cannot read the reserve row ({exc})", "is this an Aave v3 reserves dump?") from None
        markets[row["symbol"]] = _parse_market(row["symbol"], doc, where)
    if not markets:
        raise DataError(f"{name}: no reserves", "the file has a header but no rows")
    return VenueSnapshot(venue=venue, chain_id=chain_id, block=None, markets=markets, source=name)


def restrict(snapshot: VenueSnapshot, symbols: list[str], venue: str) -> VenueSnapshot:
    """Keep the policy's markets only (in the order given), so the pinned snapshot is small."""
    return VenueSnapshot(
        venue=venue,
        chain_id=snapshot.chain_id,
        block=snapshot.block,
        markets={s: snapshot.market(s) for s in symbols},
        source=snapshot.source,
        safe_nonce=snapshot.safe_nonce,
    )


def with_prices(snapshot: VenueSnapshot, prices: dict[str, Decimal], note: str) -> VenueSnapshot:
    """Fill prices the snapshot lacks (a configuration dump has no oracle answers) and say so in `source`."""
    missing = [s for s, m in snapshot.markets.items() if m.price_usd is None]
    if not missing:
        return snapshot
    markets = {s: replace(m, price_usd=prices[s]) if m.price_usd is None else m for s, m in snapshot.markets.items()}
    source = f"{snapshot.source}; price_usd of {', '.join(missing)} {note}"
    return replace(snapshot, markets=markets, source=source)
