"""Invariants of risk.options over generated books: Greeks are the derivatives of the price (central
finite differences), put-call parity, no-arbitrage bounds and monotonicity, and the portfolio margin's
coherence (a long option never needs more than its premium, more scan range never lowers a short
straddle's margin, margins are subadditive and scale with size)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from risk.options import OptionBook, black76_price, greeks
from risk.options_margin import ScanRange, scenario_margin, span_grid

PROPS = settings(max_examples=150, deadline=None)


@dataclass(frozen=True)
class Contract:
    F: float
    K: float
    T: float
    vol: float
    call: bool
    r: float

    def book(self, **over: float) -> OptionBook:
        v = {"F": self.F, "K": self.K, "T": self.T, "vol": self.vol, "r": self.r} | over
        return OptionBook(forward=v["F"], strike=v["K"], expiry=v["T"], vol=v["vol"], is_call=self.call,
                          quantity=1.0, rate=v["r"])

    def price(self, **over: float) -> float:
        return float(black76_price(self.book(**over))[0])


contracts = st.builds(
    lambda F, m, T, vol, call, r: Contract(F, F * m, T, vol, call, r),
    st.floats(1.0, 1e5),
    st.floats(0.5, 2.0),
    st.floats(0.01, 3.0),
    st.floats(0.05, 2.0),
    st.booleans(),
    st.floats(-0.01, 0.1),
)


def close(got: float, want: float, rtol: float, atol: float) -> bool:
    return abs(got - want) <= rtol * abs(want) + atol


@PROPS
@given(contracts)
def test_greeks_are_central_differences_of_the_price(c: Contract) -> None:
    g = greeks(c.book())
    sd = c.vol * math.sqrt(c.T)
    # Steps scale with each variable's natural width so truncation and rounding both stay small.
    h_f = 1e-4 * c.F * sd
    fd_delta = (c.price(F=c.F + h_f) - c.price(F=c.F - h_f)) / (2 * h_f)
    assert close(float(g.delta[0]), fd_delta, 1e-5, 1e-8), (g.delta[0], fd_delta)

    d_up = float(greeks(c.book(F=c.F + h_f)).delta[0])
    d_dn = float(greeks(c.book(F=c.F - h_f)).delta[0])
    gamma_scale = 1.0 / (c.F * sd)
    assert close(float(g.gamma[0]), (d_up - d_dn) / (2 * h_f), 1e-5, 1e-9 * gamma_scale)

    h_v = 1e-5 * c.vol
    fd_vega = (c.price(vol=c.vol + h_v) - c.price(vol=c.vol - h_v)) / (2 * h_v)
    assert close(float(g.vega[0]), fd_vega, 1e-5, 1e-8 * c.F * math.sqrt(c.T))

    h_t = 1e-5 * c.T
    fd_theta = -(c.price(T=c.T + h_t) - c.price(T=c.T - h_t)) / (2 * h_t)
    assert close(float(g.theta[0]), fd_theta, 1e-5, 1e-8 * c.F * (c.vol / math.sqrt(c.T) + abs(c.r)))


@PROPS
@given(contracts)
def test_put_call_parity_and_no_arbitrage_bounds(c: Contract) -> None:
    call = Contract(c.F, c.K, c.T, c.vol, True, c.r).price()
    put = Contract(c.F, c.K, c.T, c.vol, False, c.r).price()
    disc = math.exp(-c.r * c.T)
    assert close(call - put, disc * (c.F - c.K), 0.0, 1e-11 * (c.F + c.K))
    tol = 1e-11 * (c.F + c.K)
    assert max(disc * (c.F - c.K), 0.0) - tol <= call <= disc * c.F + tol
    assert max(disc * (c.K - c.F), 0.0) - tol <= put <= disc * c.K + tol


@PROPS
@given(contracts, st.floats(1.001, 2.0), st.floats(1.001, 2.0))
def test_call_rises_with_forward_and_vol_put_falls_with_forward(c: Contract, kf: float, kv: float) -> None:
    tol = 1e-12 * (c.F + c.K)
    call = Contract(c.F, c.K, c.T, c.vol, True, c.r)
    put = Contract(c.F, c.K, c.T, c.vol, False, c.r)
    assert call.price(F=c.F * kf) >= call.price() - tol
    assert call.price(vol=c.vol * kv) >= call.price() - tol
    assert put.price(F=c.F * kf) <= put.price() + tol
    assert float(greeks(c.book()).gamma[0]) >= 0.0 and float(greeks(c.book()).vega[0]) >= 0.0


scans = st.floats(0.01, 0.6)
vol_shocks = st.floats(0.0, 0.9)


@PROPS
@given(contracts, scans, vol_shocks, st.floats(0.0, 1.0), st.floats(0.1, 50.0))
def test_a_long_option_never_needs_more_than_its_premium(
    c: Contract, scan: float, vshock: float, fraction: float, qty: float
) -> None:
    book = OptionBook(forward=c.F, strike=c.K, expiry=c.T, vol=c.vol, is_call=c.call, quantity=qty, rate=c.r)
    grid = span_grid(ScanRange.symmetric(scan), vshock, extreme_fraction=fraction)
    premium = qty * c.price()
    assert 0.0 <= scenario_margin(book, grid).margin <= premium * (1 + 1e-12) + 1e-12 * c.F


@PROPS
@given(st.floats(100.0, 1e5), st.floats(0.02, 2.0), st.floats(0.1, 1.5), scans, scans, vol_shocks)
def test_a_short_straddle_needs_more_as_the_scan_range_widens(
    F: float, T: float, vol: float, s1: float, s2: float, vshock: float
) -> None:
    book = OptionBook(forward=F, strike=F, expiry=T, vol=vol, is_call=[True, False], quantity=-1.0, rate=0.0)
    lo, hi = sorted((s1, s2))
    m_lo = scenario_margin(book, span_grid(ScanRange.symmetric(lo), vshock)).margin
    m_hi = scenario_margin(book, span_grid(ScanRange.symmetric(hi), vshock)).margin
    assert m_hi >= m_lo - 1e-9 * F
    if hi > lo * 1.01:
        assert m_hi > m_lo  # strictly, for a visibly wider range


books = st.integers(0, 2**32 - 1).map(lambda seed: np.random.default_rng(seed))


def random_book(rng: np.random.Generator, n: int) -> OptionBook:
    return OptionBook(forward=2000.0, strike=2000 * rng.uniform(0.5, 2.0, n), expiry=rng.uniform(0.01, 2.0, n),
                      vol=rng.uniform(0.2, 1.5, n), is_call=rng.random(n) < 0.5,
                      quantity=rng.normal(0.0, 5.0, n), rate=0.0)


@PROPS
@given(books, st.integers(1, 30), st.integers(1, 30), scans, vol_shocks, st.floats(0.01, 100.0))
def test_margin_is_subadditive_and_scales_with_size(
    rng: np.random.Generator, na: int, nb: int, scan: float, vshock: float, k: float
) -> None:
    a, b = random_book(rng, na), random_book(rng, nb)
    both = OptionBook(**{f: np.concatenate([getattr(a, f), getattr(b, f)])
                         for f in ("forward", "strike", "expiry", "vol", "is_call", "quantity", "rate")})
    grid = span_grid(ScanRange.symmetric(scan), vshock, horizon_years=1 / 365)
    m_a, m_b, m_ab = (scenario_margin(x, grid).margin for x in (a, b, both))
    assert m_ab <= m_a + m_b + 1e-9 * (1 + m_a + m_b)
    scaled = OptionBook(forward=a.forward, strike=a.strike, expiry=a.expiry, vol=a.vol, is_call=a.is_call,
                        quantity=k * a.quantity, rate=a.rate)
    assert math.isclose(scenario_margin(scaled, grid).margin, k * m_a, rel_tol=1e-9, abs_tol=1e-9)
