"""risk.recommend_derivatives on a seeded synthetic market: values quantised on the safe side, change limits,
the venue's rules, backtest figures attached to their parameters, and recommendation JSON."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from derivatives_fixtures import write_data, write_policies

from governance import jsonio
from governance.pipeline_derivatives import DerivativeInputs, gather_derivative_inputs
from risk.derivative_inputs import parse_book_csv, parse_funding_csv
from risk.errors import DataError, RiskInputError
from risk.policy_derivatives import DerivativeParameter
from risk.policy_load import load_policy
from risk.recommend_derivatives import recommend_derivatives
from risk.recommendation_derivatives import DerivativeRecommendation, OptionFigures, PerpFigures
from risk.units import Bps, Usd

D = DerivativeParameter


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("derivatives")
    write_data(d)
    write_policies(d)
    return d


def _recommend(inputs: DerivativeInputs) -> DerivativeRecommendation:
    funding = {"BTC": parse_funding_csv(inputs.file("inputs/funding-BTC.csv"), "funding.csv")} if inputs.file("inputs/funding-BTC.csv") else {}
    books = {}
    if inputs.file("inputs/book-ETH-reference.csv") is not None:
        books = {"ETH": {role: parse_book_csv(inputs.file(f"inputs/book-ETH-{role}.csv"), role) for role in ("reference", "vault")}}  # type: ignore[arg-type]
    return recommend_derivatives(inputs.policy.policy, inputs.market, funding=funding, books=books, epoch="e", as_of="t")


@pytest.fixture(scope="module")
def perps(folder: Path) -> DerivativeRecommendation:
    return _recommend(gather_derivative_inputs(folder / "perps.yaml", data_dir=folder))


@pytest.fixture(scope="module")
def options(folder: Path) -> DerivativeRecommendation:
    return _recommend(gather_derivative_inputs(folder / "options.yaml", data_dir=folder))


def test_margins_are_rounded_up_to_whole_bps(perps: DerivativeRecommendation) -> None:
    btc = perps.market("BTC")
    f = btc.figures
    assert isinstance(f, PerpFigures)
    mmf = btc.change(D.MMF).target
    assert isinstance(mmf, Bps) and f.mmf <= mmf.as_float() < f.mmf + 1e-4
    imf = btc.change(D.IMF).target
    assert isinstance(imf, Bps) and f.imf <= imf.as_float() < f.imf + 1e-4
    fee = btc.change(D.LIQUIDATION_FEE).target
    assert isinstance(fee, Bps) and f.liquidation_fee <= fee.as_float() < f.liquidation_fee + 1e-4
    # Caps round down to three significant figures of whole USD.
    lower = btc.change(D.OI_CAP_LOWER).target
    assert isinstance(lower, Usd) and f.oi_cap_lower_usd is not None
    assert float(lower.value) <= f.oi_cap_lower_usd and float(lower.value) > 0.99 * f.oi_cap_lower_usd
    assert len(str(int(lower.value)).rstrip("0")) <= 3


def test_without_current_values_the_target_is_proposed_and_said_so(perps: DerivativeRecommendation) -> None:
    for c in perps.market("BTC").changes:
        assert c.current is None and c.proposed == c.target and c.changed
        assert c.note == "no current value in the policy: proposed = target"


def test_change_limits_and_the_venue_rule(perps: DerivativeRecommendation) -> None:
    eth = perps.market("ETH")
    mmf, imf = eth.change(D.MMF), eth.change(D.IMF)
    assert mmf.current == Bps(300) and isinstance(mmf.target, Bps) and mmf.target.value > 800  # synthetic vol: ~8% over 8 h
    assert mmf.proposed == Bps(800) and mmf.updates_to_target == 2  # at most 5 pp per update
    assert "change limit: ±5.00 pp per update, every 3d" in mmf.binding
    # IMF may move 0.25 pp, which would leave it below the new MMF: the venue's rule lifts it, and says so.
    assert imf.proposed == mmf.proposed and imf.binding[-1] == "venue rule: IMF >= MMF"
    upper = eth.change(D.OI_CAP_UPPER)  # caps move by a relative limit: $10M → $15M, then on toward the target
    assert upper.current == Usd.parse("$10M") and upper.proposed == Usd.parse("$15M") and upper.target == Usd.parse("$27.5M")
    assert upper.updates_to_target == 3 and upper.binding[-1] == "change limit: ±50% per update, every 3d"
    fee = eth.change(D.LIQUIDATION_FEE)
    assert fee.current == Bps(100) and fee.limit_text == "no limit in the policy" and fee.proposed == fee.target


def test_backtests_go_with_the_parameters_they_test(perps: DerivativeRecommendation) -> None:
    eth = perps.market("ETH")
    assert [b.what for b in eth.change(D.MMF).backtests] == ["MMF move, long side", "MMF move, short side"]
    assert eth.change(D.OI_CAP_LOWER).backtests == ()  # derived from depth, nothing to backtest
    (hedge_bt,) = eth.change(D.HEDGE_RATIO).backtests
    assert hedge_bt.periods == eth.hedge.backtest.windows  # type: ignore[union-attr]
    for b in eth.change(D.MMF).backtests:
        assert b.periods > 300 and 0 <= b.exceedances < b.periods and 0 <= b.kupiec_p <= 1 and b.zone in ("green", "yellow", "red")


def test_option_parameters(options: DerivativeRecommendation) -> None:
    eth = options.market("ETH")
    f = eth.figures
    assert isinstance(f, OptionFigures) and f.grid == "deribit-9x3"
    scan = eth.change(D.SCAN_RANGE)
    assert isinstance(scan.target, Bps) and max(f.scan_up, f.scan_down) <= scan.target.as_float() < max(f.scan_up, f.scan_down) + 1e-4
    assert scan.current == Bps(1000) and scan.proposed == Bps(1100)  # one pp per update
    down = eth.change(D.VOL_SHOCK_DOWN).proposed
    assert isinstance(down, Bps) and 0 < down.value < 10_000
    assert "stands in for implied volatility" in f.implied_vol_source and options.notes == (f.implied_vol_source,)
    assert eth.hedge is not None and {c.hedge_ratio for c in eth.hedge.backtest.candidates} == {0.0, 1.0}


def test_recommendation_json_is_complete_and_canonical(perps: DerivativeRecommendation, options: DerivativeRecommendation) -> None:
    for rec in (perps, options):
        text = jsonio.dumps(rec.to_json())
        assert text == jsonio.dumps(json.loads(text))  # plain JSON, sorted, no NaN
    doc = perps.to_json()
    eth = doc["markets"]["ETH"]
    assert set(eth["parameters"]) == {"mmf", "imf", "liquidation_fee", "oi_cap_lower", "oi_cap_upper", "hedge_ratio", "rebalance_band"}
    assert eth["parameters"]["mmf"]["current"] == {"bps": 300, "percent": "3.00%"}
    assert eth["parameters"]["oi_cap_lower"]["proposed"]["usd"].isdigit()
    assert eth["parameters"]["mmf"]["backtests"][0]["what"] == "MMF move, long side"
    hedging = eth["hedging"]
    assert hedging["backtest"]["loss_avoided_at_coverage"] == pytest.approx(
        hedging["backtest"]["unhedged_loss_at_coverage"] - hedging["backtest"]["chosen_loss_at_coverage"])
    assert len(hedging["candidates"]) == 5 and doc["markets"]["BTC"]["hedging"] is None


def test_same_inputs_same_recommendation(folder: Path, perps: DerivativeRecommendation) -> None:
    again = _recommend(gather_derivative_inputs(folder / "perps.yaml", data_dir=folder))
    assert jsonio.dumps(again.to_json()) == jsonio.dumps(perps.to_json())


def test_a_lending_policy_is_refused() -> None:
    lending = load_policy(Path(__file__).resolve().parents[2] / "policies" / "aave-v3-ethereum.yaml").policy
    with pytest.raises(RiskInputError, match="is a lending venue"):
        recommend_derivatives(lending, None, funding={}, books={}, epoch="e", as_of="t")  # type: ignore[arg-type]


def test_funding_and_book_files_are_checked_with_their_line() -> None:
    with pytest.raises(DataError, match=r"f\.csv:3: time is not after the previous row's"):
        parse_funding_csv(b"timestamp_utc,funding_rate\n2021-01-01 08:00:00,0.1\n2021-01-01 00:00:00,0.1\n", "f.csv")
    with pytest.raises(DataError, match=r"f\.csv:2: funding rate 'x' is not a number"):
        parse_funding_csv(b"timestamp_utc,funding_rate\n2021-01-01 08:00:00,x\n2021-01-01 16:00:00,0.1\n", "f.csv")
    with pytest.raises(DataError, match=r"b\.csv:3: kind 'cal' is not call or put"):
        parse_book_csv(b"kind,moneyness_pct,expiry_days,quantity\ncall,100,30,1\ncal,100,30,1\n", "b.csv")
    with pytest.raises(DataError, match=r"b\.csv:2: expiry_days 1\.5 is not a positive whole number of days"):
        parse_book_csv(b"kind,moneyness_pct,expiry_days,quantity\nput,95,1.5,1\n", "b.csv")
    f = parse_funding_csv(b"timestamp_utc,funding_rate\n2021-01-01 00:00:00,0.1\n2021-01-01 08:00:00,-0.2\n2021-01-01 16:00:00,0.3\n", "f.csv")
    assert f.until(int(np.datetime64("2021-01-01T08:00:00").astype(int))).tolist() == [0.1, -0.2]  # nothing after "now"
