"""Replaying real crashes against today's WETH parameters, through the API and through `steward backtest`.

The stated book: $1B of stable debt against WETH over 2,000 positions, health factors lognormal
(median 1.6, log-sd 0.35) above max(1, LT/LTV), debt sizes lognormal (log-sd 1.5), 5 whales holding
20%, generated with the seed named per crash. Parameters: Aave v3 Ethereum's WETH on 2023-10-31 (LTV
80.5%, LT 83%, bonus 5%, protocol fee 10%; ../shared/data/aave), a depth of $600M per 2% and $10 of
gas. The crash is one path over the window, hourly closes.

Measured (and asserted below, to 1e-9):

* 2020-03-12, Binance ETHUSDT 2020-03-11 → 2020-03-14 (ETH 202.20 → 96.62 at the trough, −52%): bad
  debt $1,316,827 (0.13% of the borrows), $759,130,337 of collateral liquidated, $722,981,273 repaid.
* 2022-11 FTX, CoinGecko WETH 2022-11-07 → 2022-11-11 (1,601.26 → 1,090.53, −32%): no bad debt,
  $293,100,253 liquidated, $279,143,098 repaid.

The figures are cross-checked against the scalar reference model (tests/reference_lending.py) on a
200-position book on the same path, and bad inputs get a clear error, never a number.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import typer
from reference_lending import FIELDS, reference_ledger
from typer.testing import CliRunner

from governance import cli
from governance.cli_backtest import register, run_backtest, window_table
from risk.book import Book, HfLognormal
from risk.data import load_series
from risk.data_files import load_prices_file
from risk.data_problems import DataOptions
from risk.lending import DepthCurve, LendingMarket, run_ledger, simulate_market
from risk.market import align

pytestmark = pytest.mark.realdata
REPO = Path(__file__).resolve().parents[2]
POLICY = REPO / "policies" / "aave-v3-ethereum.yaml"
SNAPSHOT = "aave/aave_v3_ethereum_reserves_2023-10-31.csv"
CRASHES = {
    "2020-03-12": ("market/binance_ethusdt_1h_cdd.csv", None, "2020-03-11T00:00:00Z", "2020-03-14T00:00:00Z", 20200312),
    "2022-11 FTX": ("market/coingecko_hourly_aave_v2_assets_2021_2023.csv", "WETH", "2022-11-07T00:00:00Z", "2022-11-11T00:00:00Z", 20221108),
}
MEASURED = {  # bad debt, liquidated collateral, repaid debt (USD)
    "2020-03-12": (1_316_826.9939926898, 759_130_336.9660008, 722_981_273.3009531),
    "2022-11 FTX": (0.0, 293_100_252.5675884, 279_143_097.6834175),
}


def _unix(text: str) -> int:
    return int(np.datetime64(text.rstrip("Z"), "s").astype(np.int64))


def _path(data: Path, crash: str) -> np.ndarray:
    file, symbol, start, end, _ = CRASHES[crash]
    # Only the rows that matter for the window are validated (the files have spikes and gaps elsewhere;
    # none inside these windows: no repair is allowed).
    table = window_table(load_prices_file(data / file, name=file), _unix(start), _unix(end), 6 * 3600)
    series, _ = load_series(table, symbol=symbol, options=DataOptions(max_gap_seconds=6 * 3600), name=file)
    market = align([series], 3600, start=_unix(start), end=_unix(end), max_gap_seconds=6 * 3600)
    prices = market.prices[:, 0]
    return (prices / prices[0])[None, :], float(prices[0])


def _market(price: float) -> LendingMarket:
    return LendingMarket("WETH", price, 0.805, 0.83, 0.05, 0.10, gas_usd=10.0, depth=DepthCurve(600e6, 0.02))


def _book(price: float, seed: int, n: int = 2000, debt: float = 1e9) -> Book:
    return Book.generate(np.random.default_rng(seed), n, debt, market="WETH", price_usd=price, liquidation_threshold=0.83,
                         ltv=0.805, hf=HfLognormal(1.6, 0.35), size_sigma=1.5, whales=5, whale_share=0.2)


@pytest.mark.parametrize("crash", list(CRASHES))
def test_replay_gives_the_stated_losses(shared_data: Path, crash: str) -> None:
    path, price = _path(shared_data, crash)
    loss = simulate_market(_book(price, CRASHES[crash][4]), _market(price), path)
    bad, liquidated, repaid = MEASURED[crash]
    assert loss.paths == 1 and loss.total_debt_usd == pytest.approx(1e9)
    assert float(loss.bad_debt_usd[0]) == pytest.approx(bad, rel=1e-9, abs=1e-6)
    assert float(loss.liquidated_usd[0]) == pytest.approx(liquidated, rel=1e-9)
    assert float(loss.repaid_usd[0]) == pytest.approx(repaid, rel=1e-9)
    assert loss.insolvency_probability == (1.0 if bad > 0 else 0.0)


@pytest.mark.parametrize(("crash", "first", "trough"), [("2020-03-12", 202.20, 96.62), ("2022-11 FTX", 1601.2635, 1090.5321)])
def test_the_crashes_are_the_ones_in_the_data(shared_data: Path, crash: str, first: float, trough: float) -> None:
    path, price = _path(shared_data, crash)
    assert price == pytest.approx(first) and float(path.min()) * price == pytest.approx(trough)


def test_replay_matches_the_scalar_reference_on_a_small_book(shared_data: Path) -> None:
    path, price = _path(shared_data, "2020-03-12")
    book, market = _book(price, 7, n=200, debt=50e6), _market(price)
    ledger = run_ledger(book, market, path)
    ref = reference_ledger(book.collateral, book.debt_usd, market, path, True)
    assert float(ledger.liquidations[0]) > 0 and float(ledger.insolvent_usd[0] + ledger.shortfall_usd[0]) > 0
    for name in FIELDS:
        assert np.allclose(getattr(ledger, name), ref[name], rtol=1e-9, atol=1e-6), name


# --- the same through `steward backtest` ------------------------------------------------------------------


def _app() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def main() -> None:  # a group, so the command is addressed by name as in `steward backtest`
        pass

    register(app, guarded=cli.guarded, out=cli.out, err=cli.err)
    return app


def _book_file(tmp: Path, book: Book) -> Path:
    rows = [{"collateral": {"WETH": float(c)}, "debt": {"USDC": float(d)}} for c, d in zip(book.collateral, book.debt_usd, strict=True)]
    out = tmp / "book.json"
    out.write_text(json.dumps({"positions": rows}))
    return out


@pytest.mark.parametrize("crash", list(CRASHES))
def test_backtest_command_replays_the_crash_with_the_stated_book(shared_data: Path, tmp_path: Path, crash: str) -> None:
    file, _symbol, start, end, seed = CRASHES[crash]
    price = _path(shared_data, crash)[1]
    book = _book_file(tmp_path, _book(price, seed))
    args = ["backtest", str(POLICY), "--prices", str(shared_data / file), "--market", "WETH", "--start", start, "--end", end,
            "--book", str(book), "--snapshot", str(shared_data / SNAPSHOT)]
    result = CliRunner().invoke(_app(), args)
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    loss = doc["markets"]["WETH"]["loss"]
    bad, liquidated, _ = MEASURED[crash]
    assert loss["mean_bad_debt_usd"] == pytest.approx(bad, rel=1e-9, abs=1e-6)
    assert loss["mean_liquidated_usd"] == pytest.approx(liquidated, rel=1e-9)
    params = doc["markets"]["WETH"]["parameters"]
    assert (params["ltv"], params["liquidation_threshold"], params["liquidation_bonus"]) == ("80.5%", "83%", "5%")
    assert doc["paths"] == 1 and doc["book"]["positions"] == 2000


def test_backtest_sets_override_the_snapshot_and_every_run_of_the_window_is_a_path(shared_data: Path) -> None:
    file, _s, start, end, _seed = CRASHES["2020-03-12"]
    common = {"market": "WETH", "start": start, "end": end, "snapshot": shared_data / SNAPSHOT, "window_steps": 24}
    today = run_backtest(POLICY, shared_data / file, sets=["WETH.total_debt=$1B"], **common)  # type: ignore[arg-type]
    safer = run_backtest(POLICY, shared_data / file, sets=["WETH.total_debt=$1B", "WETH.liquidation_threshold=75%", "WETH.ltv=72%"], **common)  # type: ignore[arg-type]
    assert today["paths"] == safer["paths"] == 72 - 24 + 1
    assert safer["markets"]["WETH"]["parameters"]["liquidation_threshold"] == "75%"
    # the generated book keeps its health factors: a lower threshold means more collateral behind the same debt
    assert safer["markets"]["WETH"]["loss"]["mean_bad_debt_usd"] <= today["markets"]["WETH"]["loss"]["mean_bad_debt_usd"]


# --- bad inputs: a clear error, never a number ------------------------------------------------------------


def _csv(tmp: Path, prices: list[float]) -> Path:
    lines = ["timestamp_utc,open,high,low,close,volume"]
    for i, p in enumerate(prices):
        lines.append(f"2020-03-11 {i:02d}:00:00,{p},{p},{p},{p},1")
    out = tmp / "eth.csv"
    out.write_text("\n".join(lines) + "\n")
    return out


@pytest.mark.parametrize(
    ("sets", "book_rows", "prices", "cause"),
    [
        ([], [], [200.0, 190.0, 180.0], "no position"),
        (["WETH.liquidation_bonus=0%"], None, [200.0, 190.0, 180.0], "liquidation_bonus"),
        (["WETH.liquidation_threshold=120%"], None, [200.0, 190.0, 180.0], "liquidation_threshold"),
        (["WETH.liquidation_threshold=0.83"], None, [200.0, 190.0, 180.0], "has no unit"),
        ([], None, [200.0, math.nan, 180.0], "data problem"),
        (["WETH.slope=1%"], None, [200.0, 190.0, 180.0], "unknown parameter"),
    ],
    ids=["empty book", "bonus 0", "LT above 100%", "ratio without unit", "NaN price", "unknown parameter"],
)
def test_bad_inputs_exit_2_with_the_cause(tmp_path: Path, shared_data: Path, sets: list[str], book_rows: list | None,
                                          prices: list[float], cause: str) -> None:
    args = ["backtest", str(POLICY), "--prices", str(_csv(tmp_path, prices)), "--market", "WETH",
            "--snapshot", str(shared_data / SNAPSHOT)]
    if book_rows is not None:
        (tmp_path / "book.json").write_text(json.dumps({"positions": book_rows}))
        args += ["--book", str(tmp_path / "book.json")]
    for s in sets:
        args += ["--set", s]
    result = CliRunner().invoke(_app(), args)
    assert result.exit_code == 2, result.output
    assert "error:" in result.stderr and cause in result.stderr and "hint:" in result.stderr
    assert result.stdout == ""
