"""risk.data on the shared real files: the known warts are found where they are, real crashes are not.

Expected findings are cross-checked against an independent plain-Python reading of the same files
(csv + datetime), so the module is not tested against itself.
"""

from __future__ import annotations

import csv
import itertools
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from risk.data import find_problems, load_series
from risk.data_files import PriceTable, load_prices_file
from risk.data_problems import DataOptions
from risk.errors import DataError
from risk.market import resample

pytestmark = pytest.mark.realdata

HOUR = 3600
BINANCE = ("btc", "eth", "sol", "usdc")
COINGECKO = "coingecko_hourly_aave_v2_assets_2021_2023.csv"


def unix(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp())


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def gap_lines(times: list[int], lines: list[int], limit: int) -> list[int]:
    """Lines that follow more than `limit` seconds without data, by a plain loop."""
    return [lines[i] for i in range(1, len(times)) if times[i] - times[i - 1] > limit]


@pytest.fixture(scope="module")
def market(shared_data: Path) -> Path:
    return shared_data / "market"


@pytest.fixture(scope="module")
def coingecko(market: Path) -> PriceTable:
    return load_prices_file(market / COINGECKO)


@pytest.fixture(scope="module")
def coingecko_raw(market: Path) -> dict[str, tuple[list[int], list[float], list[int]]]:
    """Per symbol: times, prices and line numbers, read with the csv module."""
    by_symbol: dict[str, list[tuple[int, float, int]]] = {}
    for line, r in enumerate(read_rows(market / COINGECKO), start=2):
        by_symbol.setdefault(r["symbol"], []).append((unix(r["timestamp_utc"]), float(r["price_usd"]), line))
    return {s: tuple(list(x) for x in zip(*raw)) for s, raw in by_symbol.items()}  # type: ignore[misc]


def test_btc_first_row_open_is_reported_as_line_2(market: Path) -> None:
    path = market / "binance_btcusdt_1h_cdd.csv"
    first = read_rows(path)[0]
    assert (first["open"], first["close"]) == ("16199.91", "4308.83")  # the wart the README describes
    problems = find_problems(path)
    assert str(problems[0]) == "binance_btcusdt_1h_cdd.csv:2 open: spike — 16199.91 vs neighbours ~4308.83 (reverts next bar)"
    with pytest.raises(DataError) as err:
        load_series(path)
    assert "binance_btcusdt_1h_cdd.csv:2 open: spike" in err.value.cause
    assert "data.repairs: [remove_spikes]" in err.value.hint


def test_btc_loads_with_remove_spikes_and_keeps_every_close(market: Path) -> None:
    path = market / "binance_btcusdt_1h_cdd.csv"
    rows = read_rows(path)
    series, repairs = load_series(path, symbol="BTC", options=DataOptions(repairs=frozenset({"remove_spikes"})))
    # the spike is in open/high only: the close series keeps every row and the finding is recorded
    assert series.prices.tolist() == [float(r["close"]) for r in rows]
    assert series.times.tolist() == [unix(r["timestamp_utc"]) for r in rows]
    assert [(r.kind, r.rows) for r in repairs] == [("remove_spikes", (2,))]
    assert "left the high/open spike(s) in place" in repairs[0].detail


@pytest.mark.parametrize("coin", BINANCE)
def test_binance_files_have_only_the_spikes_listed_and_no_gap_over_the_limit(market: Path, coin: str) -> None:
    path = market / f"binance_{coin}usdt_1h_cdd.csv"
    rows = read_rows(path)
    times = [unix(r["timestamp_utc"]) for r in rows]
    lines = list(range(2, len(rows) + 2))
    assert all(b > a for a, b in itertools.pairwise(times))  # sorted, no duplicates: checked independently
    assert all(float(r[c]) > 0 for r in rows for c in ("open", "high", "low", "close"))
    problems = find_problems(path)
    # Verified by hand: BTC and ETH open with a bar whose open and high belong to another price level;
    # ETH 2017-08-22 04:00 has a low of 144.21 inside a ~280 market; USDC 2021-12-04 08:00 a low of 0.2.
    expected = {
        "btc": {(2, "open"), (2, "high")},
        "eth": {(2, "open"), (2, "high"), (122, "low")},
        "sol": set(),
        "usdc": {(11729, "low")},
    }[coin]
    assert {(p.row, p.column) for p in problems if p.kind == "spike"} == expected
    assert {p.kind for p in problems} <= {"spike"}
    # the files do have gaps (hours missing upstream), all within the default 6 h limit
    assert gap_lines(times, lines, 6 * HOUR) == []
    short = gap_lines(times, lines, HOUR)
    assert short, "expected some missing hours in the Binance file"
    assert [p.row for p in find_problems(path, options=DataOptions(max_gap_seconds=HOUR)) if p.kind == "gap"] == short


def test_eth_2020_03_12_crash_is_not_a_spike(market: Path) -> None:
    path = market / "binance_ethusdt_1h_cdd.csv"
    rows = read_rows(path)
    window = [i for i, r in enumerate(rows) if "2020-03-12" <= r["timestamp_utc"] < "2020-03-14"]
    closes = np.array([float(rows[i]["close"]) for i in window])
    # the crash is really in the data: a fall of more than 35% (log) from the first close that lasts
    drop = np.log(closes.min() / closes[0])
    assert drop < -0.35 and closes[-1] < closes[0] * 0.75
    first, last = window[0] + 2, window[-1] + 2
    assert [str(p) for p in find_problems(path) if first <= p.row <= last] == []
    series, _ = load_series(path, options=DataOptions(repairs=frozenset({"remove_spikes"})))
    inside = (series.times >= unix(rows[window[0]]["timestamp_utc"])) & (series.times <= unix(rows[window[-1]]["timestamp_utc"]))
    assert series.prices[inside].tolist() == closes.tolist()


def test_coingecko_weth_gap_is_found_filled_and_resampled_hourly(coingecko: PriceTable, coingecko_raw: dict) -> None:
    times, prices, lines = coingecko_raw["WETH"]
    expected_gaps = gap_lines(times, lines, 6 * HOUR)
    assert expected_gaps, "the WETH series has a gap above 6 h"
    problems = find_problems(coingecko, symbol="WETH")
    assert [p.row for p in problems if p.kind == "gap"] == expected_gaps
    assert {p.kind for p in problems} == {"gap"}
    with pytest.raises(DataError) as err:
        load_series(coingecko, symbol="WETH")
    assert f"{COINGECKO}:{expected_gaps[0]} timestamp_utc: gap" in err.value.cause and "fill_gaps" in err.value.hint

    series, (repair,) = load_series(coingecko, symbol="WETH", options=DataOptions(repairs=frozenset({"fill_gaps"})))
    assert (repair.kind, list(repair.rows)) == ("fill_gaps", expected_gaps)
    hourly = resample(series, HOUR, max_gap_seconds=6 * HOUR)
    assert np.all(np.diff(hourly.times) == HOUR) and hourly.times[0] >= times[0] and hourly.times[-1] <= times[-1]
    # carrying forward never invents a price, and each grid value is the last raw one at or before it
    at = np.searchsorted(np.array(times), hourly.times, side="right") - 1
    assert hourly.prices.tolist() == [prices[i] for i in at]

    # without the repair, a looser load still passes but the hourly grid refuses the stale stretch
    loose, _ = load_series(coingecko, symbol="WETH", options=DataOptions(max_gap_seconds=13 * HOUR))
    before_gap = times[lines.index(expected_gaps[0]) - 1]
    first_stale = -(-(before_gap + 6 * HOUR + 1) // HOUR) * HOUR
    with pytest.raises(DataError) as err:
        resample(loose, HOUR, max_gap_seconds=6 * HOUR)
    iso = "%Y-%m-%dT%H:%M:%SZ"
    assert f"WETH: no observation within 6 h before {datetime.fromtimestamp(first_stale, UTC):{iso}}.." in err.value.cause
    assert f"(last one {datetime.fromtimestamp(before_gap, UTC):{iso}})" in err.value.cause


def test_coingecko_inventory_matches_an_independent_reading(coingecko: PriceTable, coingecko_raw: dict) -> None:
    assert len(coingecko_raw) == 13
    report = []
    for symbol, (times, prices, lines) in sorted(coingecko_raw.items()):
        assert all(b > a for a, b in itertools.pairwise(times)) and min(prices) > 0
        problems = find_problems(coingecko, symbol=symbol)
        assert [p.row for p in problems if p.kind == "gap"] == gap_lines(times, lines, 6 * HOUR)
        spikes = [p.row for p in problems if p.kind == "spike"]
        report.append(f"{symbol}: {len(problems)} problem(s), gaps>6h at {gap_lines(times, lines, 6 * HOUR)[:3]}…, spikes at {spikes}")
        # Verified by hand: only UST (after its collapse, trading at a few cents) has reverting bars:
        # 2022-05-29 15:07 at 0.0549 between 0.0255s, 2022-09-11 00:07 at 0.0831 between ~0.062.
        assert spikes == ([174020, 176525] if symbol == "UST" else [])
        assert {p.kind for p in problems} <= {"gap", "spike"}
    print("\n".join(report))
