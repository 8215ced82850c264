"""risk.data on small synthetic files: each problem found at its file, line and column; repairs only when allowed."""

from __future__ import annotations

import calendar
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from risk.data import PriceSeries, find_problems, load_series
from risk.data_files import load_prices_file
from risk.data_problems import REPAIR_KINDS, DataOptions, Problem, Repair
from risk.errors import DataError
from risk.market import MarketData, align, resample

T0 = calendar.timegm((2021, 1, 1, 0, 0, 0))
HOUR = 3600
OHLCV_HEADER = "timestamp_utc,open,high,low,close,volume"


def stamp(t: int) -> str:
    return pd.Timestamp(t, unit="s").strftime("%Y-%m-%d %H:%M:%S")


def ohlcv_rows(closes: list[float], *, start: int = T0, step: int = HOUR) -> list[list[object]]:
    """Bars that open at the previous close, like exchange data."""
    rows, prev = [], closes[0]
    for i, c in enumerate(closes):
        rows.append([stamp(start + i * step), prev, max(prev, c), min(prev, c), c, 1.0])
        prev = c
    return rows


def write(tmp_path: Path, name: str, header: str, rows: list[list[object]]) -> Path:
    path = tmp_path / name
    path.write_text("\n".join([header, *(",".join(str(x) for x in r) for r in rows)]) + "\n")
    return path


def calm(n: int = 12) -> list[float]:
    return [100.0 + (i % 3) for i in range(n)]


def allow(*kinds: str) -> DataOptions:
    return DataOptions(repairs=frozenset(kinds))


def only(problems: tuple[Problem, ...]) -> set[tuple[str, int, str, str]]:
    return {(p.file, p.row, p.column, p.kind) for p in problems}


# ----------------------------------------------------------------------------------------- clean files


def test_clean_ohlcv_loads_every_row_with_utc_seconds(tmp_path: Path) -> None:
    closes = calm()
    path = write(tmp_path, "eth_1h.csv", OHLCV_HEADER, ohlcv_rows(closes))
    series, repairs = load_series(path)
    assert repairs == ()
    assert series.symbol == "eth_1h" and series.source == "eth_1h.csv"
    assert series.times.tolist() == [T0 + i * HOUR for i in range(len(closes))]
    assert series.prices.tolist() == closes
    assert not series.prices.flags.writeable


def test_column_and_symbol_and_name_are_honoured(tmp_path: Path) -> None:
    rows = ohlcv_rows(calm())
    path = write(tmp_path, "x.csv", OHLCV_HEADER, rows)
    series, _ = load_series(path, symbol="ETH", column="open", name="market/x.csv")
    assert series.symbol == "ETH" and series.source == "market/x.csv"
    assert series.prices.tolist() == [r[1] for r in rows]


def test_milliseconds_are_floored_and_offsets_converted_to_utc(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "p.csv",
        "timestamp_utc,price",
        [["2021-01-01 00:00:00.912", 1.0], ["2021-01-01T03:00:00+02:00", 2.0], ["2021-01-01 02:00:00", 3.0]],
    )
    series, _ = load_series(path, column="price")
    assert series.symbol == "price"
    assert series.times.tolist() == [T0, T0 + HOUR, T0 + 2 * HOUR]


# ----------------------------------------------------------------------------- each problem, each repair


def test_unsorted_row_is_named_and_sorted_only_when_allowed(tmp_path: Path) -> None:
    rows = ohlcv_rows(calm())
    rows[4], rows[5] = rows[5], rows[4]  # line 6 now holds hour 5, line 7 hour 4
    path = write(tmp_path, "u.csv", OHLCV_HEADER, rows)
    assert only(find_problems(path)) == {("u.csv", 7, "timestamp_utc", "unsorted")}
    with pytest.raises(DataError) as err:
        load_series(path)
    assert "u.csv:7 timestamp_utc: unsorted" in err.value.cause
    assert "data.repairs: [sort]" in err.value.hint
    series, repairs = load_series(path, options=allow("sort"))
    assert np.all(np.diff(series.times) == HOUR)
    assert repairs == (Repair("u.csv", "sort", (7,), 1, repairs[0].detail),)


def test_duplicate_keeps_the_first_row_when_allowed(tmp_path: Path) -> None:
    rows = ohlcv_rows(calm())
    dup = list(rows[3])
    dup[4] = 999.0
    rows.insert(4, dup)  # line 6 repeats the time of line 5 with another close
    path = write(tmp_path, "d.csv", OHLCV_HEADER, rows)
    problems = find_problems(path)
    assert only(problems) == {("d.csv", 6, "timestamp_utc", "duplicate")}
    assert "repeats line 5" in problems[0].detail and "999.0" in problems[0].detail
    with pytest.raises(DataError, match="drop_duplicates"):
        load_series(path)
    series, (repair,) = load_series(path, options=allow("drop_duplicates"))
    assert series.prices[3] == rows[3][4] and 999.0 not in series.prices
    assert (repair.kind, repair.rows, repair.count) == ("drop_duplicates", (6,), 1)


@pytest.mark.parametrize(
    ("cell", "kind", "detail"),
    [("", "nan", "missing value"), ("abc", "nan", "'abc' is not a finite number"), ("inf", "nan", "'inf' is not a finite number"), ("0", "non_positive", "0.0 is not a positive price"), ("-3.5", "non_positive", "-3.5")],
)
def test_invalid_close_is_named_and_dropped_when_allowed(tmp_path: Path, cell: str, kind: str, detail: str) -> None:
    rows = ohlcv_rows(calm())
    rows[6][4] = cell  # line 8
    path = write(tmp_path, "n.csv", OHLCV_HEADER, rows)
    problems = find_problems(path)
    assert only(problems) == {("n.csv", 8, "close", kind)}
    assert detail in problems[0].detail
    with pytest.raises(DataError, match="drop_invalid"):
        load_series(path)
    series, (repair,) = load_series(path, options=allow("drop_invalid"))
    assert len(series.times) == len(rows) - 1 and T0 + 6 * HOUR not in series.times
    assert (repair.kind, repair.rows) == ("drop_invalid", (8,))


def test_invalid_other_column_is_a_problem_but_the_row_is_kept(tmp_path: Path) -> None:
    rows = ohlcv_rows(calm())
    rows[2][2] = ""  # high missing on line 4
    path = write(tmp_path, "h.csv", OHLCV_HEADER, rows)
    assert only(find_problems(path)) == {("h.csv", 4, "high", "nan")}
    series, (repair,) = load_series(path, options=allow("drop_invalid"))
    assert len(series.times) == len(rows)
    assert repair.rows == (4,) and "the series uses close only" in repair.detail


def test_bad_timestamp_is_named(tmp_path: Path) -> None:
    rows = ohlcv_rows(calm())
    rows[1][0] = "yesterday"
    path = write(tmp_path, "t.csv", OHLCV_HEADER, rows)
    problems = find_problems(path)
    assert only(problems) == {("t.csv", 3, "timestamp_utc", "bad_timestamp")}
    assert "'yesterday'" in problems[0].detail
    series, _ = load_series(path, options=allow("drop_invalid"))
    assert len(series.times) == len(rows) - 1


def test_blank_line_keeps_line_numbers_and_is_reported(tmp_path: Path) -> None:
    rows = ohlcv_rows(calm())
    path = tmp_path / "blank.csv"
    text = "\n".join([OHLCV_HEADER, *(",".join(str(x) for x in r) for r in rows)]) + "\n"
    path.write_text(text.replace("\n" + stamp(T0 + 3 * HOUR), "\n\n" + stamp(T0 + 3 * HOUR)))  # line 5 blank
    problems = find_problems(path)
    assert {(p.row, p.column, p.kind) for p in problems} == {(5, c, "nan") for c in ("open", "high", "low", "close")} | {(5, "timestamp_utc", "bad_timestamp")}
    assert "missing time" in [p.detail for p in problems if p.column == "timestamp_utc"]
    series, _ = load_series(path, options=allow("drop_invalid"))
    assert len(series.times) == len(rows)


def test_gap_above_limit_is_named_and_filled_by_carrying_forward(tmp_path: Path) -> None:
    closes = calm(20)
    rows = ohlcv_rows(closes)
    del rows[5:13]  # 9 h between line 6 (hour 4) and line 7 (hour 13)
    path = write(tmp_path, "g.csv", OHLCV_HEADER, rows)
    problems = find_problems(path)
    assert only(problems) == {("g.csv", 7, "timestamp_utc", "gap")}
    assert problems[0].detail.startswith("9 h without data since 2021-01-01T04:00:00Z (line 6)")
    with pytest.raises(DataError) as err:
        load_series(path)
    assert "fill_gaps" in err.value.hint and "max_gap" in err.value.hint
    assert load_series(path, options=DataOptions(max_gap_seconds=9 * HOUR))[1] == ()  # 9 h is not above a 9 h limit
    series, (repair,) = load_series(path, options=allow("fill_gaps"))
    assert series.times.tolist() == [T0 + i * HOUR for i in range(20)]
    assert series.prices[5:13].tolist() == [closes[4]] * 8
    assert (repair.kind, repair.rows, repair.count) == ("fill_gaps", (7,), 1)
    assert "inserting 8 point(s) every 3600 s" in repair.detail


def test_close_spike_is_dropped_but_a_lasting_crash_is_not_flagged(tmp_path: Path) -> None:
    closes = calm(12)
    closes[5] = 200.0  # one bar at twice the price, then back
    rows = ohlcv_rows(closes)
    rows[6][1] = closes[4]  # the next bar opens where the market was, not at the bad close
    path = write(tmp_path, "s.csv", OHLCV_HEADER, rows)
    problems = find_problems(path)
    assert only(problems) == {("s.csv", 7, "close", "spike")}
    assert problems[0].detail == f"200.0 vs neighbours ~{closes[4]} (reverts next bar)"
    series, (repair,) = load_series(path, options=allow("remove_spikes"))
    assert 200.0 not in series.prices and len(series.times) == len(rows) - 1
    assert (repair.kind, repair.rows) == ("remove_spikes", (7,))

    crash = [100.0] * 5 + [60.0] * 7  # -51% in log terms, and it stays down
    assert find_problems(write(tmp_path, "crash.csv", OHLCV_HEADER, ohlcv_rows(crash))) == ()
    # a V: down 40% and back up, but the next bar opens at the low, so the low was traded
    v_shape = [100.0] * 5 + [60.0] + [100.0] * 6
    assert find_problems(write(tmp_path, "v.csv", OHLCV_HEADER, ohlcv_rows(v_shape))) == ()


def test_first_row_open_spike_is_found_against_its_own_close_and_the_next_bar(tmp_path: Path) -> None:
    rows = ohlcv_rows(calm())
    rows[0][1] = rows[0][2] = 400.0  # like the shared BTC file: open (and high) far above the close
    path = write(tmp_path, "b.csv", OHLCV_HEADER, rows)
    problems = find_problems(path)
    assert only(problems) == {("b.csv", 2, "open", "spike"), ("b.csv", 2, "high", "spike")}
    assert str(problems[0]) == "b.csv:2 open: spike — 400.0 vs neighbours ~100.0 (reverts next bar)"
    series, (repair,) = load_series(path, options=allow("remove_spikes"))
    assert len(series.times) == len(rows)  # the close column is sound: nothing dropped, the finding recorded
    assert repair.rows == (2,) and "left the high/open spike(s) in place" in repair.detail


def test_wick_in_low_is_a_spike_of_the_low_column(tmp_path: Path) -> None:
    rows = ohlcv_rows(calm())
    rows[7][3] = 50.0
    assert only(find_problems(write(tmp_path, "w.csv", OHLCV_HEADER, rows))) == {("w.csv", 9, "low", "spike")}


def test_threshold_is_an_option(tmp_path: Path) -> None:
    closes = calm(12)
    closes[5] = 120.0  # log move ≈ 0.17
    rows = ohlcv_rows(closes)
    rows[6][1] = closes[4]
    path = write(tmp_path, "th.csv", OHLCV_HEADER, rows)
    assert find_problems(path) == ()
    assert only(find_problems(path, options=DataOptions(spike_threshold=0.1))) == {("th.csv", 7, "close", "spike")}


def test_only_allowed_repairs_are_applied_and_the_rest_reported(tmp_path: Path) -> None:
    closes = calm(30)
    closes[20] = 300.0
    rows = ohlcv_rows(closes)
    rows[21][1] = closes[19]
    rows[2], rows[3] = rows[3], rows[2]
    path = write(tmp_path, "m.csv", OHLCV_HEADER, rows)
    with pytest.raises(DataError) as err:
        load_series(path, options=allow("sort"))
    assert err.value.cause.startswith("m.csv: 1 data problem(s) in m: m.csv:22 close: spike")
    assert "[remove_spikes]" in err.value.hint and "sort" not in err.value.hint
    series, repairs = load_series(path, options=allow("sort", "remove_spikes", "fill_gaps"))
    assert [r.kind for r in repairs] == ["sort", "remove_spikes"]
    assert [r.rows for r in repairs] == [(5,), (22,)]
    assert 300.0 not in series.prices


def test_error_lists_ten_problems_and_counts_all(tmp_path: Path) -> None:
    rows = ohlcv_rows(calm(40))
    for i in range(0, 40, 3):
        rows[i][4] = ""
    with pytest.raises(DataError) as err:
        load_series(write(tmp_path, "many.csv", OHLCV_HEADER, rows))
    cause = err.value.cause
    assert cause.startswith("many.csv: 14 data problem(s) in many: many.csv:2 close: nan — missing value;")
    assert cause.count("many.csv:") == 1 + 10 and cause.endswith("… and 4 more")


def test_repair_rows_are_capped_at_twenty_and_json_is_sorted(tmp_path: Path) -> None:
    rows = ohlcv_rows(calm(60))
    for i in range(0, 50, 2):
        rows[i][4] = "-1"
    _, (repair,) = load_series(write(tmp_path, "r.csv", OHLCV_HEADER, rows), options=allow("drop_invalid"))
    assert repair.count == 25 and repair.rows == tuple(range(2, 42, 2))
    doc = repair.to_json()
    assert list(doc) == sorted(doc) and json.loads(json.dumps(doc)) == doc
    assert doc["rows"] == list(range(2, 42, 2)) and doc["kind"] == "drop_invalid"


def test_options_refuse_unknown_repairs_and_bad_limits() -> None:
    assert set(REPAIR_KINDS) == {"sort", "drop_duplicates", "drop_invalid", "remove_spikes", "fill_gaps"}
    with pytest.raises(DataError, match="interpolate"):
        DataOptions(repairs=frozenset({"interpolate"}))
    with pytest.raises(DataError):
        DataOptions(max_gap_seconds=0)
    with pytest.raises(DataError):
        DataOptions(spike_threshold=float("nan"))


# ------------------------------------------------------------------------------ shapes, formats, errors


def long_rows() -> list[list[object]]:
    """Two symbols interleaved at irregular times, as in the CoinGecko file."""
    rows = []
    for i in range(10):
        rows.append([stamp(T0 + i * HOUR + 17 * i), "AAA", 10.0 + i])
        rows.append([stamp(T0 + i * HOUR + 300 + 5 * i), "BBB", 2000.0 - i])
    return rows


def test_long_file_selects_symbol_and_names_lines_of_the_whole_file(tmp_path: Path) -> None:
    rows = long_rows()
    rows[9][2] = -1.0  # BBB's 5th row, line 11
    path = write(tmp_path, "long.csv", "timestamp_utc,symbol,price_usd", rows)
    assert load_prices_file(path).shape == "long"
    series, _ = load_series(path, symbol="AAA")
    assert series.symbol == "AAA" and series.prices.tolist() == [10.0 + i for i in range(10)]
    assert series.times.tolist() == [T0 + i * HOUR + 17 * i for i in range(10)]
    assert only(find_problems(path, symbol="BBB")) == {("long.csv", 11, "BBB", "non_positive")}
    with pytest.raises(DataError, match="AAA, BBB"):
        load_series(path)
    with pytest.raises(DataError, match="did you mean 'AAA'"):
        load_series(path, symbol="aaa")


def test_long_file_spike_is_judged_on_neighbouring_observations(tmp_path: Path) -> None:
    rows = long_rows()
    rows[8][2] = 50.0  # AAA's 5th observation, line 10
    assert only(find_problems(write(tmp_path, "l.csv", "timestamp_utc,symbol,price_usd", rows), symbol="AAA")) == {("l.csv", 10, "AAA", "spike")}


def test_a_jump_that_does_not_come_back_is_not_a_spike(tmp_path: Path) -> None:
    def problems(prices: list[float]) -> set[tuple[str, int, str, str]]:
        rows = [[stamp(T0 + i * HOUR), p] for i, p in enumerate(prices)]
        return only(find_problems(write(tmp_path, "j.csv", "timestamp_utc,price", rows), column="price"))

    assert problems([100.0, 100.0, 300.0, 105.0, 105.0]) == {("j.csv", 4, "price", "spike")}
    # far above both neighbours, but they disagree (the market moved 59% in log terms): not a reverting bar
    assert problems([100.0, 100.0, 300.0, 180.0, 180.0]) == set()


def test_parquet_both_shapes_with_record_numbers(tmp_path: Path) -> None:
    rows = ohlcv_rows(calm())
    rows[3][4] = -2.0
    wide = pd.DataFrame(rows, columns=OHLCV_HEADER.split(","))
    wide["timestamp_utc"] = pd.to_datetime(wide["timestamp_utc"])  # a real timestamp column, not text
    wide.index = wide.index * 10 + 7  # a stored index must not change the record numbers
    wide.to_parquet(tmp_path / "w.parquet")
    assert only(find_problems(tmp_path / "w.parquet")) == {("w.parquet", 4, "close", "non_positive")}
    series, _ = load_series(tmp_path / "w.parquet", options=allow("drop_invalid"))
    assert series.times[0] == T0 and len(series.times) == len(rows) - 1

    pd.DataFrame(long_rows(), columns=["timestamp_utc", "symbol", "price_usd"]).to_parquet(tmp_path / "l.parquet")
    from_parquet, _ = load_series(tmp_path / "l.parquet", symbol="BBB")
    from_csv, _ = load_series(write(tmp_path, "l.csv", "timestamp_utc,symbol,price_usd", long_rows()), symbol="BBB")
    assert np.array_equal(from_parquet.times, from_csv.times) and np.array_equal(from_parquet.prices, from_csv.prices)


def test_unknown_columns_name_found_and_expected(tmp_path: Path) -> None:
    path = write(tmp_path, "q.csv", "date,price", [["2021-01-01", 1.0], ["2021-01-02", 2.0]])
    with pytest.raises(DataError) as err:
        load_series(path)
    assert err.value.cause == "q.csv: unknown columns date,price"
    assert "timestamp_utc,symbol,price_usd" in err.value.hint and "timestamp_utc,open,high,low,close" in err.value.hint
    with pytest.raises(DataError, match="no price column 'close' in columns timestamp_utc,price"):
        load_series(write(tmp_path, "p.csv", "timestamp_utc,price", [[stamp(T0), 1.0]]))
    with pytest.raises(DataError, match="not a price column"):
        load_series(write(tmp_path, "o.csv", OHLCV_HEADER, ohlcv_rows(calm())), column="volume")


def test_empty_header_only_single_row_and_missing_files(tmp_path: Path) -> None:
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(DataError, match="empty.csv: file is empty"):
        load_series(tmp_path / "empty.csv")
    with pytest.raises(DataError, match="header.csv: no data rows"):
        load_series(write(tmp_path, "header.csv", OHLCV_HEADER, []))
    with pytest.raises(DataError, match="one.csv: 1 valid row"):
        load_series(write(tmp_path, "one.csv", OHLCV_HEADER, ohlcv_rows([100.0])))
    with pytest.raises(DataError, match="nope.csv: file not found"):
        load_series(tmp_path / "nope.csv")
    with pytest.raises(DataError, match="unknown file type"):
        load_series(write(tmp_path, "x.json", OHLCV_HEADER, ohlcv_rows(calm())))


# ------------------------------------------------------------------------------------ resample and align


def last_at_or_before(times: list[int], prices: list[float], t: int) -> float:
    return [p for s, p in zip(times, prices) if s <= t][-1]


def test_resample_carries_the_last_observation_onto_an_aligned_grid() -> None:
    rng = np.random.default_rng(7)
    times = np.cumsum(rng.integers(600, 5400, size=200)) + T0 + 123
    prices = np.exp(rng.normal(0, 0.01, size=200).cumsum()) * 50
    series = PriceSeries("X", times, prices, "x.csv")
    out = resample(series, HOUR, max_gap_seconds=2 * HOUR)
    assert out.times[0] == -(-times[0] // HOUR) * HOUR and out.times[-1] == times[-1] // HOUR * HOUR
    assert np.all(out.times % HOUR == 0) and np.all(np.diff(out.times) == HOUR)
    assert out.prices.tolist() == [last_at_or_before(times.tolist(), prices.tolist(), int(t)) for t in out.times]
    part = resample(series, HOUR, start=int(out.times[10]) - 1, end=int(out.times[20]) + 1, max_gap_seconds=2 * HOUR)
    assert np.array_equal(part.times, out.times[10:21])


def test_resample_names_symbol_and_range_of_a_stale_stretch() -> None:
    times = np.array([T0, T0 + HOUR, T0 + 10 * HOUR, T0 + 11 * HOUR])
    series = PriceSeries("X", times, np.array([1.0, 2.0, 3.0, 4.0]), "x.csv")
    with pytest.raises(DataError) as err:
        resample(series, HOUR, max_gap_seconds=3 * HOUR)
    assert "x.csv X: no observation within 3 h before 2021-01-01T05:00:00Z..2021-01-01T09:00:00Z" in err.value.cause
    assert "last one 2021-01-01T01:00:00Z" in err.value.cause
    with pytest.raises(DataError, match="no observation at or before 2020-12-31T23:00:00Z"):
        resample(series, HOUR, start=T0 - HOUR, max_gap_seconds=20 * HOUR)


def test_align_uses_the_overlap_and_refuses_disjoint_series() -> None:
    a = PriceSeries("A", T0 + HOUR * np.arange(10), np.arange(1.0, 11.0), "a.csv")
    b = PriceSeries("B", T0 + HOUR * np.arange(4, 20), np.arange(1.0, 17.0), "b.csv")
    market = align([a, b], HOUR, max_gap_seconds=HOUR)
    assert market.symbols == ("A", "B") and market.times.tolist() == (T0 + HOUR * np.arange(4, 10)).tolist()
    assert market.series("A").tolist() == [5.0, 6.0, 7.0, 8.0, 9.0, 10.0] and market.series("B").tolist() == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    assert np.allclose(market.log_returns(), np.diff(np.log(market.prices), axis=0)) and market.log_returns().shape == (5, 2)
    c = PriceSeries("C", T0 + HOUR * np.arange(30, 40), np.ones(10), "c.csv")
    with pytest.raises(DataError) as err:
        align([a, c], HOUR, max_gap_seconds=HOUR)
    assert "A 2021-01-01T00:00:00Z..2021-01-01T09:00:00Z" in err.value.cause and "C 2021-01-02T06:00:00Z..2021-01-02T15:00:00Z" in err.value.cause
    with pytest.raises(DataError, match="A given more than once"):
        align([a, a], HOUR, max_gap_seconds=HOUR)


# --------------------------------------------------------------------------------------------- MarketData


def market(prices: np.ndarray, symbols: tuple[str, ...] = ("WETH", "WBTC")) -> MarketData:
    return MarketData(HOUR, T0 + HOUR * np.arange(prices.shape[0]), symbols, prices)


def test_csv_is_canonical() -> None:
    data = market(np.array([[1.5, 30000.0], [0.1, 1e-07]])).to_csv_bytes()
    assert data == b"timestamp_utc,WETH,WBTC\n2021-01-01T00:00:00Z,1.5,30000.0\n2021-01-01T01:00:00Z,0.1,1e-07\n"


positive_floats = st.floats(min_value=0.0, exclude_min=True, allow_nan=False, allow_infinity=False)


@settings(max_examples=200, deadline=None)
@given(st.integers(2, 6), st.integers(1, 3), st.data())
def test_csv_round_trip_is_exact(rows: int, cols: int, data: st.DataObject) -> None:
    values = np.array(data.draw(st.lists(positive_floats, min_size=rows * cols, max_size=rows * cols))).reshape(rows, cols)
    original = market(values, tuple(f"S{j}" for j in range(cols)))
    blob = original.to_csv_bytes()
    back = MarketData.from_csv_bytes(blob, "inputs/market.csv")
    assert back == original and back.prices.tobytes() == original.prices.tobytes()
    assert back.to_csv_bytes() == blob


def test_from_csv_bytes_names_the_line_at_fault() -> None:
    good = market(np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])).to_csv_bytes().decode()
    cases = {
        good.replace("T01:00:00Z", "T01:30:00Z"): "m.csv:3: times are not a fixed grid",
        good.replace(",4.0", ",-4.0"): "m.csv:3: prices must be finite and positive",
        good.replace(",4.0", ",4"): "m.csv:3: not in canonical form",
        good.replace(",4.0", ",x"): "m.csv:3: a price is not a number",
        good.replace("\n", "\r\n"): "m.csv:1: symbols",
        good.replace("WBTC", "WETH"): "m.csv:1: symbols",
        good.rstrip("\n"): "not ending in a newline",
        "date,WETH\n": "m.csv:1: header",
    }
    for text, message in cases.items():
        with pytest.raises(DataError, match=message.replace(".", r"\.")):
            MarketData.from_csv_bytes(text.encode(), "m.csv")


def test_market_data_slice_and_validation() -> None:
    m = market(np.arange(1.0, 21.0).reshape(10, 2))
    part = m.slice(T0 + 2 * HOUR, T0 + 5 * HOUR)
    assert part.times.tolist() == [T0 + h * HOUR for h in range(2, 6)] and part.prices[0].tolist() == [5.0, 6.0]
    with pytest.raises(DataError, match="holds 1 of its times"):
        m.slice(T0, T0)
    with pytest.raises(DataError, match="no symbol 'DAI'"):
        m.series("DAI")
    with pytest.raises(DataError, match="not a grid"):
        MarketData(HOUR, np.array([T0, T0 + 2 * HOUR]), ("A",), np.ones((2, 1)))
    with pytest.raises(DataError, match="finite and positive"):
        market(np.array([[1.0, math.nan], [1.0, 1.0]]))
    with pytest.raises(DataError, match="distinct"):
        market(np.ones((2, 2)), ("A", "A"))
    with pytest.raises(DataError, match="absolute path"):
        PriceSeries("X", np.array([T0, T0 + 1]), np.ones(2), "/abs/x.csv")
