"""risk.options: Black-76 against numerical integration and a textbook value, the scenario engine
against a plain loop, grid shapes, scan-range calibration, the backtest's bookkeeping, bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.integrate import quad
from scipy.stats import norm

from risk.errors import RiskInputError, UnitError
from risk.options import OptionBook, black76_price, greeks
from risk.options_backtest import OptionTemplate, backtest_option_margin, straddle
from risk.options_calibration import recommend_scan_range, recommend_vol_shock
from risk.options_margin import ScanRange, deribit_grid, scenario_margin, span_grid
from risk.units import Ratio

C99 = Ratio.parse("99%")


def one(F: float, K: float, T: float, vol: float, call: bool, r: float = 0.0, q: float = 1.0) -> OptionBook:
    return OptionBook(forward=F, strike=K, expiry=T, vol=vol, is_call=call, quantity=q, rate=r)


def integrated_price(F: float, K: float, T: float, vol: float, call: bool, r: float) -> float:
    """Discounted expected payoff under the log-normal forward, by quadrature over the normal shock."""
    sd = vol * math.sqrt(T)

    def payoff(z: float) -> float:
        f_t = F * math.exp(-0.5 * sd * sd + sd * z)
        return max(f_t - K, 0.0) if call else max(K - f_t, 0.0)

    value, _ = quad(lambda z: payoff(z) * norm.pdf(z), -12, 12, limit=400, points=[math.log(K / F) / sd + 0.5 * sd])
    return math.exp(-r * T) * value


@pytest.mark.parametrize(
    ("F", "K", "T", "vol", "call", "r"),
    [(3000, 3000, 30 / 365, 0.8, True, 0.0), (3000, 2400, 0.5, 0.6, False, 0.05), (50, 80, 2.0, 1.2, True, 0.02),
     (20000, 21000, 7 / 365, 0.5, False, 0.0)],
)
def test_price_matches_the_integrated_payoff(F: float, K: float, T: float, vol: float, call: bool, r: float) -> None:
    got = float(black76_price(one(F, K, T, vol, call, r))[0])
    assert got == pytest.approx(integrated_price(F, K, T, vol, call, r), rel=1e-7, abs=1e-9 * F)


def test_textbook_value() -> None:
    # Hull, Options, Futures and Other Derivatives: European put on a futures price, F = K = 20,
    # r = 9%, T = 4 months, vol = 25% -> 1.12.
    assert float(black76_price(one(20, 20, 4 / 12, 0.25, False, 0.09))[0]) == pytest.approx(1.12, abs=5e-3)


def test_greeks_of_an_at_the_money_option_have_their_closed_forms() -> None:
    F, T, vol = 100.0, 0.25, 0.4
    g = greeks(one(F, F, T, vol, True))
    sd = vol * math.sqrt(T)
    assert g.delta[0] == pytest.approx(norm.cdf(0.5 * sd))
    assert g.gamma[0] == pytest.approx(norm.pdf(0.5 * sd) / (F * sd))
    assert g.vega[0] == pytest.approx(F * norm.pdf(0.5 * sd) * math.sqrt(T))
    assert g.theta[0] == pytest.approx(-F * norm.pdf(0.5 * sd) * vol / (2 * math.sqrt(T)))
    book = OptionBook(forward=F, strike=[90.0, 110.0], expiry=T, vol=vol, is_call=[True, False], quantity=[2.0, -3.0], rate=0.0)
    totals = greeks(book).totals(book.quantity)
    assert totals["delta"] == pytest.approx(2 * greeks(book).delta[0] - 3 * greeks(book).delta[1])
    assert list(totals) == sorted(totals)


def reference_margin(book: OptionBook, spots, vols, weights, horizon: float) -> float:  # type: ignore[no-untyped-def]
    """Worst weighted loss by plain loops over scenarios and options, with scipy.stats.norm."""

    def bs(F: float, K: float, T: float, v: float, call: bool, r: float) -> float:
        if T <= 0:
            return max(F - K, 0.0) if call else max(K - F, 0.0)
        sd = v * math.sqrt(T)
        d1 = math.log(F / K) / sd + sd / 2
        c = math.exp(-r * T) * (F * norm.cdf(d1) - K * norm.cdf(d1 - sd))
        return c if call else c - math.exp(-r * T) * (F - K)

    worst = 0.0
    for ds, dv, w in zip(spots, vols, weights, strict=True):
        loss = 0.0
        for i in range(len(book)):
            args = (book.strike[i], book.expiry[i], book.vol[i], bool(book.is_call[i]), book.rate[i])
            base = bs(book.forward[i], *args)
            shocked = bs(book.forward[i] * (1 + ds), args[0], args[1] - horizon, args[2] * (1 + dv), args[3], args[4])
            loss += book.quantity[i] * (base - shocked)
        worst = max(worst, w * loss)
    return worst


def mixed_book(n: int, seed: int) -> OptionBook:
    rng = np.random.default_rng(seed)
    expiry = rng.uniform(2 / 365, 1.0, n)
    expiry[:3] = (1 / 365, 2 / 365, 4 / 365)  # around a few days' look-ahead
    return OptionBook(forward=3000.0, strike=3000 * rng.uniform(0.6, 1.6, n), expiry=expiry,
                      vol=rng.uniform(0.4, 1.2, n), is_call=rng.random(n) < 0.5,
                      quantity=rng.integers(-5, 6, n).astype(float), rate=rng.uniform(0, 0.05, n))


@pytest.mark.parametrize("grid_kind", ["span", "deribit"])
def test_scenario_margin_matches_a_plain_loop(grid_kind: str) -> None:
    book = mixed_book(25, seed=1)
    horizon = 3 / 365  # some options expire within the look-ahead: they are worth their intrinsic value
    assert np.any(book.expiry <= horizon)
    if grid_kind == "span":
        grid = span_grid(ScanRange(0.15, 0.12), 0.3, vol_down=0.2, horizon_years=horizon)
    else:
        grid = deribit_grid(ScanRange.symmetric(0.16), 0.4, 0.2, extended_fraction=0.1, horizon_years=horizon)
    spots, vols, weights = grid.scenarios()
    got = scenario_margin(book, grid)
    assert got.margin == pytest.approx(reference_margin(book, spots, vols, weights, horizon), rel=1e-9)
    assert got.value == pytest.approx(float(black76_price(book) @ book.quantity))
    assert got.loss_grid.shape == (len(grid.spot_shocks), len(grid.vol_shocks))


def test_span_grid_has_sixteen_scenarios_in_the_cme_shape() -> None:
    grid = span_grid(ScanRange.symmetric(0.12), 0.25)
    spots, vols, weights = grid.scenarios()
    assert spots.size == 16
    assert sorted(set(np.round(spots[:14], 12))) == pytest.approx([-0.12, -0.08, -0.04, 0.0, 0.04, 0.08, 0.12])
    assert set(vols[:14]) == {0.25, -0.25}
    assert spots[14:] == pytest.approx([1.12**3 - 1, 0.88**3 - 1])  # extremes compound the scan's log move
    assert list(vols[14:]) == [0.0, 0.0] and list(weights[14:]) == [0.35, 0.35]


def test_deribit_grid_has_nine_buckets_three_vols_and_the_extended_table() -> None:
    grid = deribit_grid(ScanRange.symmetric(0.16), 0.5, 0.3, extended_fraction=0.2)
    assert grid.spot_shocks == pytest.approx([-0.16, -0.12, -0.08, -0.04, 0.0, 0.04, 0.08, 0.12, 0.16])
    assert grid.vol_shocks == (0.5, 0.0, -0.3)
    _, vols, weights = grid.scenarios()
    assert vols.size == 27 + 8 and set(vols[27:]) == {0.5} and set(weights[27:]) == {0.2}


def test_worst_scenario_is_reported() -> None:
    short_call = one(3000, 3300, 30 / 365, 0.8, True, q=-1.0)
    res = scenario_margin(short_call, span_grid(ScanRange.symmetric(0.1), 0.3, extreme_fraction=0.0))
    assert (res.worst_spot_shock, res.worst_vol_shock, res.worst_is_extreme) == (pytest.approx(0.1), 0.3, False)
    assert res.margin == pytest.approx(float(res.loss_grid.max()))


def test_scan_range_covers_the_two_sided_quantile() -> None:
    sigma, days = 0.8, 1.0
    scan = recommend_scan_range(sigma, days, C99)
    s = sigma * math.sqrt(days / 365)
    assert scan.up == pytest.approx(math.exp(norm.ppf(0.995) * s) - 1)
    assert scan.down == pytest.approx(1 - math.exp(norm.ppf(0.005) * s))
    moves = np.expm1(np.random.default_rng(2).normal(0, s, 2_000_000))
    assert np.mean((moves > scan.up) | (moves < -scan.down)) == pytest.approx(0.01, abs=3e-4)
    from risk.backtest import Tail, TailKind

    assert recommend_scan_range(sigma, days, C99, tail=Tail(TailKind.STUDENT_T, df=4.0)).up > scan.up


def test_vol_shock_is_read_from_the_volatility_history() -> None:
    assert recommend_vol_shock(np.full(100, 0.5), 5, C99) == (0.0, 0.0)
    path = np.exp(np.random.default_rng(4).normal(0, 0.1, 5000).cumsum() * 0.05) * 0.6
    up, down = recommend_vol_shock(path, 24, C99)
    d = np.log(path[24:] / path[:-24])
    assert up == pytest.approx(math.expm1(np.quantile(d, 0.995)))
    assert down == pytest.approx(-math.expm1(np.quantile(d, 0.005)))


def ewma_sigma_by_loop(closes: np.ndarray, half_life: float, warmup: int = 24) -> list[float]:
    r = [math.log(closes[i + 1] / closes[i]) for i in range(len(closes) - 1)]
    lam = 0.5 ** (1 / half_life)
    v = sum(x * x for x in r[:warmup]) / warmup
    out = []
    for x in r:
        v = lam * v + (1 - lam) * x * x
        out.append(math.sqrt(v))
    return out


def test_option_backtest_revalues_the_book_with_realised_price_and_volatility() -> None:
    closes = 2000 * np.exp(np.random.default_rng(8).normal(0, 0.008, 24 * 90).cumsum())
    tmpl = straddle(30 / 365, -1.0)
    res = backtest_option_margin(closes, steps_per_year=8760, horizon_steps=24, coverage=C99, template=tmpl,
                                 burn_in_steps=24 * 30)
    sig = ewma_sigma_by_loop(closes, 72.0)
    t = int(res.at[3])
    f0, f1 = closes[t + 1], closes[t + 25]
    v0, v1 = sig[t] * math.sqrt(8760), sig[t + 24] * math.sqrt(8760)

    def straddle_value(F: float, T: float, v: float) -> float:
        sd = v * math.sqrt(T)
        d1 = math.log(F / f0) / sd + sd / 2
        call = F * norm.cdf(d1) - f0 * norm.cdf(d1 - sd)
        return call + call - (F - f0)

    expected_loss = -(straddle_value(f0, 30 / 365, v0) - straddle_value(f1, 30 / 365 - 1 / 365, v1))
    assert res.losses[3] == pytest.approx(expected_loss, rel=1e-6)
    assert res.backtest.n == res.at.size == res.margins.size
    assert res.backtest.exceedances == int(np.sum(res.losses > res.margins))
    assert "no implied-volatility data" in res.implied_vol_source


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"vol": -0.2}, "vol"),
        ({"vol": 0.0}, "vol"),
        ({"expiry": -0.01}, "not in the future"),
        ({"expiry": 0.0}, "not in the future"),
        ({"forward": 0.0}, "forward"),
        ({"strike": float("nan")}, "not finite"),
        ({"quantity": float("inf")}, "not finite"),
        ({"strike": [100.0, 110.0], "vol": [0.5, 0.6, 0.7]}, "differ in length"),
        ({"strike": np.array([])}, "empty"),
        ({"strike": np.ones((2, 2))}, "1-D"),
    ],
)
def test_bad_books_are_refused(kwargs: dict[str, object], fragment: str) -> None:
    args: dict[str, object] = {"forward": 100.0, "strike": 100.0, "expiry": 0.1, "vol": 0.5, "is_call": True,
                               "quantity": 1.0, "rate": 0.0}
    args.update(kwargs)
    with pytest.raises(RiskInputError, match=fragment) as err:
        OptionBook(**args)  # type: ignore[arg-type]
    assert err.value.hint


@pytest.mark.parametrize(
    "call",
    [
        lambda: span_grid(ScanRange.symmetric(0.1), -0.1),
        lambda: span_grid(0.1, 0.3),  # type: ignore[arg-type]
        lambda: span_grid(ScanRange.symmetric(0.1), 0.3, extreme_fraction=1.5),
        lambda: span_grid(ScanRange.symmetric(0.1), 0.3, horizon_years=-1.0),
        lambda: ScanRange(0.1, 1.0),
        lambda: ScanRange(0.0, 0.1),
        lambda: deribit_grid(ScanRange.symmetric(0.16), 0.3, 0.2, extended_fraction=0.1, buckets=8),
        lambda: recommend_scan_range(-0.5, 1.0, C99),
        lambda: recommend_scan_range(0.5, 0.0, C99),
        lambda: recommend_vol_shock(np.array([0.5]), 1, C99),
        lambda: recommend_vol_shock(np.array([0.5, -0.1, 0.4]), 1, C99),
        lambda: backtest_option_margin(np.array([100.0]), steps_per_year=8760, horizon_steps=24, coverage=C99,
                                       template=straddle(30 / 365, -1.0)),
        lambda: backtest_option_margin(np.linspace(100, 200, 5000), steps_per_year=8760, horizon_steps=24,
                                       coverage=C99, template=OptionTemplate("1h", (1.0,), (1 / 8760,), (True,), (-1.0,))),
    ],
)
def test_bad_grid_and_calibration_inputs_are_refused(call) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(RiskInputError) as err:
        call()
    assert err.value.hint


def test_coverage_must_be_a_ratio() -> None:
    with pytest.raises(UnitError):
        recommend_scan_range(0.8, 1.0, 0.99)  # type: ignore[arg-type]
