"""Scenarios on the shared real data: every named crash window is found where it is, with the fall measured.

Each replayed drawdown is checked twice: against a plain-Python reading of the same CSV rows (csv +
datetime + bisect, no pandas or numpy), so the replay is not tested against itself, and against the
figure written in `risk.scenarios_hist`'s docstring, so the documentation cannot drift from the data.
"""

from __future__ import annotations

import bisect
import csv
import warnings
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from risk.data import load_series
from risk.data_files import load_prices_file
from risk.data_problems import DataOptions
from risk.errors import DataError
from risk.market import MarketData, align
from risk.scenarios import simulate
from risk.scenarios_hist import CRASH_WINDOWS, FilteredHistorical, crash_windows
from risk.vol import EWMA, PERSISTENCE_TOLERANCE, GarchT

pytestmark = pytest.mark.realdata

HOUR = 3600
COINGECKO = "coingecko_hourly_aave_v2_assets_2021_2023.csv"
CG_SYMBOLS = ("WETH", "WBTC", "stETH", "UST", "USDC", "USDT", "DAI")
WINDOWS = {w.name: w for w in CRASH_WINDOWS}


def unix(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp())


def drawdown(prices: list[float]) -> float:
    """Largest peak-to-trough fall, by a plain loop."""
    peak, worst = prices[0], 0.0
    for p in prices:
        peak = max(peak, p)
        worst = max(worst, 1 - p / peak)
    return worst


@pytest.fixture(scope="module")
def binance(shared_data: Path) -> MarketData:
    options = DataOptions(repairs=frozenset({"remove_spikes"}))  # BTC's first open is a known bad print
    series = [load_series(shared_data / "market" / f"binance_{s.lower()}usdt_1h_cdd.csv", symbol=s, options=options)[0] for s in ("ETH", "BTC")]
    return align(series, HOUR, max_gap_seconds=6 * HOUR)


@pytest.fixture(scope="module")
def coingecko(shared_data: Path) -> MarketData:
    table = load_prices_file(shared_data / "market" / COINGECKO)
    options = DataOptions(repairs=frozenset({"remove_spikes", "fill_gaps"}))
    series = [load_series(table, symbol=s, options=options)[0] for s in CG_SYMBOLS]
    return align(series, HOUR, start=unix("2022-01-01T00:00:00"), end=unix("2023-02-25T00:00:00"), max_gap_seconds=6 * HOUR)


def plain_binance(shared_data: Path, coin: str, start: int, end: int) -> list[float]:
    with (shared_data / "market" / f"binance_{coin}usdt_1h_cdd.csv").open(newline="") as f:
        return [float(r["close"]) for r in csv.DictReader(f) if start <= unix(r["timestamp_utc"]) <= end]


@pytest.fixture(scope="module")
def coingecko_rows(shared_data: Path) -> dict[str, tuple[list[int], list[float]]]:
    """Per symbol, times and prices as the csv module reads them."""
    rows: dict[str, tuple[list[int], list[float]]] = {}
    with (shared_data / "market" / COINGECKO).open(newline="") as f:
        for r in csv.DictReader(f):
            times, prices = rows.setdefault(r["symbol"], ([], []))
            times.append(unix(r["timestamp_utc"]))
            prices.append(float(r["price_usd"]))
    return rows


def plain_coingecko(rows: dict[str, tuple[list[int], list[float]]], symbol: str, start: int, end: int) -> list[float]:
    """The last observation at or before each hour of the window."""
    times, prices = rows[symbol]
    return [prices[bisect.bisect_right(times, t) - 1] for t in range(start, end + 1, HOUR)]


@pytest.mark.parametrize(
    ("window", "coin", "measured"),
    [("2020-03-12", "eth", 0.5223), ("2020-03-12", "btc", 0.4803), ("2021-05-19", "eth", 0.3687), ("2021-05-19", "btc", 0.2233)],
)
def test_binance_crash_windows(binance: MarketData, shared_data: Path, window: str, coin: str, measured: float) -> None:
    w = WINDOWS[window]
    (s,) = crash_windows(binance, [w])
    assert s.steps == 72 and s.paths == 1
    path = s.series(coin.upper())[0]
    plain = plain_binance(shared_data, coin, w.start, w.end)
    assert len(plain) == 73  # the window has every hour in the file
    assert np.allclose(path, np.array(plain) / plain[0], rtol=1e-15)
    assert drawdown(path.tolist()) == pytest.approx(drawdown(plain), rel=1e-12)
    assert drawdown(plain) == pytest.approx(measured, abs=5e-5)


@pytest.mark.parametrize(
    ("window", "symbol", "measured"),
    [("2022-05 UST", "UST", 0.9078), ("2022-05 UST", "WETH", 0.3268), ("2022-06 stETH", "WETH", 0.5008), ("2022-11 FTX", "WETH", 0.3197), ("2022-11 FTX", "WBTC", 0.2595)],
)
def test_coingecko_crash_windows(coingecko: MarketData, coingecko_rows: dict, window: str, symbol: str, measured: float) -> None:
    w = WINDOWS[window]
    (s,) = crash_windows(coingecko, [w])
    plain = plain_coingecko(coingecko_rows, symbol, w.start, w.end)
    path = s.series(symbol)[0]
    assert len(path) == len(plain)
    assert np.allclose(path, np.array(plain) / plain[0], rtol=1e-15)
    assert drawdown(plain) == pytest.approx(measured, abs=5e-5)


def test_steth_discount_widens_in_its_window(coingecko: MarketData, coingecko_rows: dict) -> None:
    w = WINDOWS["2022-06 stETH"]
    steth, weth = (plain_coingecko(coingecko_rows, s, w.start, w.end) for s in ("stETH", "WETH"))
    ratio = [a / b for a, b in zip(steth, weth)]
    assert ratio[0] == pytest.approx(0.9734, abs=5e-5) and min(ratio) == pytest.approx(0.9306, abs=5e-5)
    (s,) = crash_windows(coingecko, [w])
    # the replay keeps the discount's path: relative stETH / relative WETH is the ratio over its start
    replay = s.series("stETH")[0] / s.series("WETH")[0]
    assert np.allclose(replay, np.array(ratio) / ratio[0], rtol=1e-12)


def test_a_window_outside_the_data_names_both_ranges(binance: MarketData) -> None:
    with pytest.raises(DataError, match="2022-05 UST.*2017-08-17"):
        crash_windows(binance, CRASH_WINDOWS)


def test_rescaled_replay_of_2021_05_19_at_december_2021_volatility(binance: MarketData) -> None:
    now = EWMA(half_life_steps=72).estimate(binance.log_returns()[-24 * 90 :], HOUR)
    w = WINDOWS["2021-05-19"]
    (raw,) = crash_windows(binance, [w])
    (scaled,) = crash_windows(binance, [w], rescale_to=now)
    r = raw.log_returns()[0]
    factor = np.asarray(now.sigma_per_step) / np.sqrt(np.mean(r**2, axis=0))
    assert np.all(factor < 1)  # December 2021 was calmer than the crash itself
    assert np.allclose(scaled.log_returns()[0], r * factor, rtol=1e-10, atol=1e-15)
    assert drawdown(scaled.series("ETH")[0].tolist()) < drawdown(raw.series("ETH")[0].tolist())


def test_garch_fit_on_real_eth_converges(binance: MarketData) -> None:
    part = binance.slice(unix("2019-01-01T00:00:00"), unix("2021-12-01T00:00:00"))
    r = part.log_returns()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no numpy, scipy or arch warning on real data
        fit = GarchT().fit(r, part.symbols)
    for p in fit.params:
        assert 0.95 < p.persistence <= 1.0 + PERSISTENCE_TOLERANCE  # hourly crypto volatility is very persistent
        assert 0.01 < p.alpha < 0.2 and 2.5 < p.nu < 6  # fat tails
    ewma = EWMA(half_life_steps=72).estimate(r, HOUR)
    assert np.all(np.abs(np.log(fit.next_sigma / np.asarray(ewma.sigma_per_step))) < np.log(2))
    # filtered historical simulation from these residuals keeps ETH/BTC's co-movement
    fhs = FilteredHistorical.from_returns(part.symbols, HOUR, r, fit.conditional_sigma, fit.next_sigma, source="Binance ETH/BTC 2019-2021")
    sim = simulate(fhs, seed=0, paths=2048, steps=24).log_returns().reshape(-1, 2)
    z = r / fit.conditional_sigma
    assert np.corrcoef(sim.T)[0, 1] == pytest.approx(np.corrcoef(z.T)[0, 1], abs=0.02)
    # the fitted parameters drive GARCH-evolving FHS as they come out of the fit (integrated GARCH included)
    evolving = FilteredHistorical.from_returns(part.symbols, HOUR, r, fit.conditional_sigma, fit.next_sigma, garch=fit.params)
    assert simulate(evolving, seed=0, paths=256, steps=24).paths == 256
