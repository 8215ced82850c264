"""`steward backtest`: replay a price history against any parameter set; the loss distribution as JSON.

    steward backtest POLICY --prices CSV [--market SYMBOL] [--start T] [--end T] [--window-steps N]
                     [--book FILE] [--snapshot FILE] [--data DIR] [--set MARKET.param=value ...] [--no-cascade]
                     [--repair KIND ...]

The history (a file read as the policy reads its markets' sources: the source's symbol in a long file,
the `close` (or the source's column) of an OHLCV/wide file; resampled on the policy's step) becomes
one path from `--start` to `--end`, or with `--window-steps N` every run of N steps in it. Prices are
relative to the first one, which is also the price the book is valued at. Only the rows that can
matter for the range are validated (a bad row elsewhere in the file does not stop a replay);
`--repair KIND` allows one of the data repairs on top of the policy's, and each one applied is listed.

Parameters start from the snapshot (`--snapshot`, else the policy's `snapshot.file` under `--data`)
and each `--set MARKET.param=value` overrides one: `ltv`, `liquidation_threshold`,
`liquidation_bonus` (the bonus only: 5% for Aave's 10500), `liquidation_protocol_fee`, `depth`
(USD), `impact`, `gas` (USD), `total_debt` (USD, generated books). Ratios and amounts need their
unit (`83%`, `8300bps`, `$10`). The book is `--book FILE` (JSON ``{"positions": [{"collateral":
{"WETH": 12.5}, "debt": {"USDC": 10000}}]}``: token amounts; debt assets that are not a replayed
market count as $1 stablecoins) or, without it, the policy's `lending_core` book generated at the
parameters. Bad inputs — an empty book, a NaN price, a bonus <= 0, LT > 100% — exit 2 with the cause.

stdout: one JSON document (sorted keys): per market the figures of `risk.lending.LossDistribution`,
the parameters used, and the venue's per-path sum when several markets are replayed.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import numpy as np
import typer
from rich.console import Console

from risk.data_text import iso_utc
from risk.errors import DataError, PolicyError, RiskInputError

T = TypeVar("T")
Guarded = Callable[[Callable[[], T]], T]
RATIO_KEYS = ("ltv", "liquidation_threshold", "liquidation_bonus", "liquidation_protocol_fee", "impact")
USD_KEYS = ("depth", "gas", "total_debt")


def _unix(text: str, what: str) -> int:
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise RiskInputError(f"{what} {text!r} is not an ISO-8601 time", "e.g. 2020-03-11 or 2020-03-11T00:00:00Z") from None
    return int((moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)).timestamp())


def parse_sets(items: list[str], markets: list[str]) -> dict[str, dict[str, str]]:
    """``MARKET.param=value`` (or ``param=value`` with one market) → {market: {param: value text}}."""
    out: dict[str, dict[str, str]] = {m: {} for m in markets}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not value.strip():
            raise PolicyError(f"--set {item!r} is not MARKET.param=value", "e.g. --set WETH.liquidation_threshold=83%")
        market, dot, param = key.strip().rpartition(".")
        if not dot:
            if len(markets) != 1:
                raise PolicyError(f"--set {item!r} names no market and {len(markets)} are replayed", f"write it as MARKET.{key}={value}")
            market = markets[0]
        if market not in out:
            raise PolicyError(f"--set {item!r}: market {market!r} is not replayed", f"replayed: {', '.join(markets)}")
        if param not in RATIO_KEYS + USD_KEYS:
            raise PolicyError(f"--set {item!r}: unknown parameter {param!r}", f"parameters: {', '.join(RATIO_KEYS + USD_KEYS)}")
        out[market][param] = value.strip()
    return out


def loss_json(loss: Any) -> dict[str, Any]:
    """The figures of a `LossDistribution` (USD, shares of its borrows, a probability)."""
    return {
        "evar99_share": loss.evar99 / loss.total_debt_usd,
        "evar99_usd": loss.evar99,
        "expected_shortfall_usd": loss.expected_shortfall,
        "insolvency_probability": loss.insolvency_probability,
        "liquidations_at_risk_usd": loss.liquidations_at_risk,
        "max_bad_debt_usd": float(np.max(loss.bad_debt_usd)),
        "mean_bad_debt_usd": loss.mean_bad_debt,
        "mean_deficit_usd": loss.mean_deficit,
        "mean_liquidated_usd": float(np.mean(loss.liquidated_usd)),
        "mean_repaid_usd": float(np.mean(loss.repaid_usd)),
        "paths": loss.paths,
        "total_debt_usd": loss.total_debt_usd,
        "var95_share": loss.var95 / loss.total_debt_usd,
        "var95_usd": loss.var95,
    }


def window_table(table: Any, lo: int | None, hi: int | None, max_gap: int) -> Any:
    """The rows that can matter for [lo, hi] (and any row whose time does not parse, so it is reported)."""
    import pandas as pd

    from risk.data_files import TIME, PriceTable

    if lo is None and hi is None:
        return table
    t = pd.to_datetime(table.frame[TIME], format="ISO8601", utc=True, errors="coerce")
    seconds = t.dt.tz_localize(None).to_numpy().astype("datetime64[s]").astype(np.int64)
    keep = t.isna().to_numpy() | (((lo is None) | (seconds >= (lo or 0) - max_gap)) & ((hi is None) | (seconds <= (hi or 0))))
    # the original index is kept: problems still name the file's own line numbers
    return PriceTable(table.name, table.shape, table.frame.loc[keep], table.first_row)


def _history(policy: Any, prices: Path, symbols: list[str], start: str | None, end: str | None, repairs: list[str]) -> tuple[Any, list[Any]]:
    from dataclasses import replace

    from governance.epoch_inputs import data_options
    from risk.data import load_series
    from risk.data_files import load_prices_file
    from risk.data_problems import REPAIR_KINDS
    from risk.market import align

    options = data_options(policy)
    unknown = [r for r in repairs if r not in REPAIR_KINDS]
    if unknown:
        raise PolicyError(f"--repair {', '.join(unknown)}: unknown repair", f"repairs: {', '.join(REPAIR_KINDS)}")
    options = replace(options, repairs=options.repairs | frozenset(repairs))
    lo = None if start is None else _unix(start, "--start")
    hi = None if end is None else _unix(end, "--end")
    table = window_table(load_prices_file(prices, name=prices.name), lo, hi, options.max_gap_seconds)
    series, applied = [], []
    for symbol in symbols:
        source = policy.market(symbol).price_source
        column = getattr(source, "column", "close")
        if table.shape == "long":
            s, r = load_series(table, symbol=getattr(source, "symbol", None) or symbol, options=options, name=prices.name)
        else:
            s, r = load_series(table, symbol=symbol, column=column if column in table.frame.columns else "close", options=options, name=prices.name)
        series.append(s if s.symbol == symbol else replace(s, symbol=symbol))
        applied.extend(r)
    step = policy.scenarios.step.seconds
    lo = None if lo is None else -(-lo // step) * step  # the first grid time at or after --start
    return align(series, step, start=lo, end=hi, max_gap_seconds=options.max_gap_seconds), applied


def _snapshot(policy: Any, snapshot: Path | None, data: Path | None) -> Any:
    from risk.snapshot import parse_aave_reserves_csv, parse_snapshot_json

    if snapshot is None and policy.snapshot is not None:
        from governance.epoch_inputs import default_data_dir

        snapshot = (data or default_data_dir()) / policy.snapshot.file
    if snapshot is None:
        return None
    if not snapshot.is_file():
        raise DataError(f"snapshot {snapshot} not found", "pass --snapshot FILE or --data DIR")
    raw = snapshot.read_bytes()
    if snapshot.suffix.lower() == ".csv":
        return parse_aave_reserves_csv(raw, snapshot.name, policy.venue.chain_id, policy.venue.name)
    return parse_snapshot_json(raw, snapshot.name)


def _parameters(policy: Any, symbol: str, snap: Any, sets: dict[str, str]) -> dict[str, Any]:
    from risk.units import Ratio, Usd

    values: dict[str, Any] = {}
    if snap is not None and symbol in snap.markets:
        state = snap.markets[symbol]
        values.update(ltv=state.ltv.to_ratio(), liquidation_threshold=state.liquidation_threshold.to_ratio(),
                      liquidation_bonus=state.liquidation_bonus.to_ratio(), liquidation_protocol_fee=state.liquidation_protocol_fee.to_ratio())
    market = policy.market(symbol)
    if market.liquidity is not None:
        values.update(depth=market.liquidity.depth, impact=market.liquidity.impact)
    core = policy.lending_core
    if core is not None:
        values["gas"] = core.optimiser.gas
        if core.market(symbol) is not None:
            values["total_debt"] = core.market(symbol).total_debt
    for key, text in sets.items():
        values[key] = Ratio.parse(text, f"--set {symbol}.{key}") if key in RATIO_KEYS else Usd.parse(text, f"--set {symbol}.{key}")
    values.setdefault("liquidation_protocol_fee", Ratio.parse("0%"))
    values.setdefault("gas", Usd.parse("$0"))
    missing = [k for k in ("ltv", "liquidation_threshold", "liquidation_bonus") if k not in values]
    if missing:
        raise PolicyError(f"{symbol}: no {', '.join(missing)} (no snapshot has this market)",
                          f"pass --snapshot FILE or --set {symbol}.{missing[0]}=...")
    return values


def _book(policy: Any, symbols: list[str], start_prices: dict[str, float], params: dict[str, dict[str, Any]], book_file: Path | None) -> Any:
    from risk.book import Book, Position
    from risk.optimize import BookModel

    if book_file is not None:
        try:
            doc = json.loads(book_file.read_bytes())
            rows = doc["positions"]
            positions = [Position(collateral=dict(r.get("collateral", {})), debt=dict(r.get("debt", {}))) for r in rows]
        except (OSError, json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, AttributeError) as exc:
            raise DataError(f"--book {book_file}: not a book file ({exc})", 'write {"positions": [{"collateral": {"WETH": 1.5}, "debt": {"USDC": 1000}}]}') from None
        if not positions:
            raise DataError(f"--book {book_file}: no position", "an empty book has no liquidation risk to replay; list positions")
        assets = {a for p in positions for a in (*p.collateral, *p.debt)}
        prices = {a: start_prices.get(a, 1.0) for a in assets}
        lts = {a: params[a]["liquidation_threshold"].as_float() if a in params else 0.0 for a in assets}
        stray = sorted(a for p in positions for a in p.collateral if a not in params)
        if stray:
            raise DataError(f"--book {book_file}: collateral {', '.join(stray)} is not a replayed market", "replay its prices too, or drop those positions")
        return Book.from_positions(positions, prices, lts)
    core = policy.lending_core
    if core is None:
        raise PolicyError("no --book and the policy has no lending_core book", "pass --book FILE or add lending_core.markets to the policy")
    books = []
    for i, symbol in enumerate(symbols):
        if core.market(symbol) is None:
            raise PolicyError(f"lending_core.markets has no {symbol}", f"add {{symbol: {symbol}, total_debt: ...}} to lending_core.markets, or pass --book FILE")
        shape, p = core.shape(symbol), params[symbol]
        model = BookModel(shape.positions, p["total_debt"].as_float(), shape.health_factor.median, shape.health_factor.sigma,
                          shape.size_sigma, shape.whales, shape.whale_share.as_float(), (policy.scenarios.seed, 2, [m.symbol for m in policy.markets].index(symbol)))
        books.append(model.build(symbol, start_prices[symbol], p["liquidation_threshold"].as_float(), p["ltv"].as_float()))
    return Book.concat(books)


def run_backtest(
    policy_path: Path, prices: Path, *, market: str | None = None, start: str | None = None, end: str | None = None,
    window_steps: int | None = None, book: Path | None = None, snapshot: Path | None = None, data: Path | None = None,
    sets: list[str] | None = None, cascade: bool = True, repairs: list[str] | None = None,
) -> dict[str, Any]:
    """The command's document (see the module docstring)."""
    from risk.lending import (
        DepthCurve,
        LendingMarket,
        LossDistribution,
        simulate_market,
    )
    from risk.policy_load import load_policy
    from risk.recommend import liquidation_style
    from risk.scenarios_hist import CrashWindow, crash_windows

    policy = load_policy(policy_path).policy
    if not prices.is_file():
        raise DataError(f"--prices {prices}: file not found", "check the path")
    table_symbols = [m.symbol for m in policy.markets] if market is None else [policy.market(market).symbol]
    symbols = _present(policy, prices, table_symbols) if market is None else table_symbols
    history, applied = _history(policy, prices, symbols, start, end, repairs or [])
    window = CrashWindow("replay", int(history.times[0]), int(history.times[-1]))
    length = len(history.times) - 1
    if window_steps is not None and not 1 <= window_steps <= length:
        raise RiskInputError(f"--window-steps {window_steps} for a history of {length} steps", f"use 1..{length}")
    (replay,) = crash_windows(history, [window], steps=window_steps)
    start_prices = {s: float(history.series(s)[0]) for s in symbols}
    per_set = parse_sets(sets or [], symbols)
    params = {s: _parameters(policy, s, _snapshot(policy, snapshot, data), per_set[s]) for s in symbols}
    the_book = _book(policy, symbols, start_prices, params, book)
    losses, used = {}, {}
    for s in symbols:
        p = params[s]
        depth = DepthCurve.from_units(p["depth"], p["impact"]) if "depth" in p and "impact" in p else DepthCurve()
        lm = LendingMarket.from_units(s, price=_usd(start_prices[s]), ltv=p["ltv"], liquidation_threshold=p["liquidation_threshold"],
                                      liquidation_bonus=p["liquidation_bonus"], protocol_fee=p["liquidation_protocol_fee"], gas=p["gas"], depth=depth,
                                      style=liquidation_style(policy))
        if s not in the_book.markets:
            raise RiskInputError(f"the book has no position in {s}", "give positions with that collateral, or replay another market")
        losses[s] = simulate_market(the_book, lm, replay.series(s), cascade=cascade)
        used[s] = {k: str(v) for k, v in sorted(p.items())} | {"start_price_usd": start_prices[s]}
    doc: dict[str, Any] = {
        "book": {"positions": len(the_book), "source": str(book) if book else "policy lending_core (generated)"},
        "cascade": cascade,
        "history": {"end": iso_utc(int(history.times[-1])), "start": iso_utc(int(history.times[0])), "step_seconds": history.step_seconds,
                    "steps": length, "window_steps": window_steps},
        "markets": {s: {"loss": loss_json(losses[s]), "parameters": used[s]} for s in symbols},
        "paths": replay.paths,
        "repairs": [r.to_json() for r in applied],
    }
    if len(symbols) > 1:
        doc["venue"] = loss_json(LossDistribution.aggregate(policy.venue.name, tuple(losses.values())))
    return doc


def _usd(x: float) -> Any:
    from decimal import Decimal

    from risk.units import Usd

    if not math.isfinite(x) or x <= 0:
        raise RiskInputError(f"start price {x!r}", "prices must be finite and positive")
    return Usd(Decimal(repr(x)))


def _present(policy: Any, prices: Path, symbols: list[str]) -> list[str]:
    """The policy markets a file has prices for (a long file: by symbol; a one-series file: the only market, else ask)."""
    from risk.data_files import load_prices_file

    table = load_prices_file(prices, name=prices.name)
    if table.shape == "long":
        have = set(table.frame["symbol"].dropna().astype(str))
        found = [s for s in symbols if (getattr(policy.market(s).price_source, "symbol", None) or s) in have]
        if not found:
            raise DataError(f"--prices {prices.name} has none of the policy's markets ({', '.join(symbols)})", "pass a file with their symbols")
        return found
    if len(symbols) != 1:
        raise DataError(f"--prices {prices.name} holds one series and the policy has {len(symbols)} markets", "add --market SYMBOL")
    return symbols


def register(app: typer.Typer, *, guarded: Guarded[Any], out: Console, err: Console) -> None:
    """Add `steward backtest` to `app`."""

    @app.command("backtest")
    def backtest_cmd(
        policy: Annotated[Path, typer.Argument(help="A lending policy.")],
        prices: Annotated[Path, typer.Option("--prices", help="Price history: CSV/Parquet (long, OHLCV or wide).")],
        market: Annotated[str | None, typer.Option("--market", help="Replay only this policy market.")] = None,
        start: Annotated[str | None, typer.Option("--start", help="First time replayed (ISO-8601, UTC).")] = None,
        end: Annotated[str | None, typer.Option("--end", help="Last time replayed (ISO-8601, UTC).")] = None,
        window_steps: Annotated[int | None, typer.Option("--window-steps", help="Every run of N steps as a path (default: one path).")] = None,
        book: Annotated[Path | None, typer.Option("--book", help="Positions JSON (default: the policy's generated book).")] = None,
        snapshot: Annotated[Path | None, typer.Option("--snapshot", help="Current parameters (Steward JSON or Aave reserves CSV).")] = None,
        data: Annotated[Path | None, typer.Option("--data", help="Data folder for the policy's snapshot file.")] = None,
        set_: Annotated[list[str] | None, typer.Option("--set", help="MARKET.param=value, e.g. WETH.liquidation_threshold=83%.")] = None,
        no_cascade: Annotated[bool, typer.Option("--no-cascade", help="Keepers' sales do not move the price.")] = False,
        repair: Annotated[list[str] | None, typer.Option("--repair", help="Allow a data repair (e.g. remove_spikes); listed in the output.")] = None,
    ) -> None:
        """Replay a price history against a parameter set: the loss distribution as JSON on stdout."""

        def body() -> None:
            doc = run_backtest(policy, prices, market=market, start=start, end=end, window_steps=window_steps, book=book,
                               snapshot=snapshot, data=data, sets=set_, cascade=not no_cascade, repairs=repair)
            sys.stdout.write(json.dumps(doc, indent=2, sort_keys=True, allow_nan=False) + "\n")

        guarded(body)
