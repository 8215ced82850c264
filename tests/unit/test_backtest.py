"""risk.backtest: Kupiec, Christoffersen and the traffic light against independent computations and the
published Basel table; exceedance counting; tail quantiles without look-ahead; refusal of bad input."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy.stats import chi2
from scipy.stats import t as student_t

from risk.backtest import (
    Side,
    Tail,
    TailKind,
    Zone,
    backtest_losses,
    backtest_margin,
    christoffersen_independence,
    horizon_quantiles,
    kupiec_pof,
    standardised_moves,
    traffic_light,
)
from risk.errors import RiskInputError, UnitError
from risk.units import Ratio

C99 = Ratio.parse("99%")


def kupiec_by_hand(n: int, x: int, p: float) -> float:
    """Kupiec's LR from the binomial log-likelihoods, written out with math.log (no xlogy)."""
    log_l0 = (n - x) * math.log(1 - p) + (x * math.log(p) if x else 0.0)
    pi = x / n
    log_l1 = ((n - x) * math.log(1 - pi) if x < n else 0.0) + (x * math.log(pi) if x else 0.0)
    return -2.0 * (log_l0 - log_l1)


@pytest.mark.parametrize(("n", "x"), [(250, 5), (250, 2), (250, 0), (1000, 25), (500, 5), (100, 100)])
def test_kupiec_matches_the_likelihood_written_out(n: int, x: int) -> None:
    lr = kupiec_by_hand(n, x, 0.01)
    got = kupiec_pof(n, x, C99)
    assert got.test.statistic == pytest.approx(lr, rel=1e-12, abs=1e-12)
    assert got.test.p_value == pytest.approx(float(chi2.sf(lr, 1)), rel=1e-10)
    assert got.accept == bool(chi2.sf(lr, 1) > 0.05)


def test_kupiec_known_verdicts() -> None:
    # 250 days at 99%: 5 exceptions are within the acceptance region, 0 and 8 are not.
    assert kupiec_pof(250, 5, C99).accept
    assert not kupiec_pof(250, 8, C99).accept
    no_hits = kupiec_pof(250, 0, C99)
    assert no_hits.test.statistic == pytest.approx(-2 * 250 * math.log(0.99))
    assert not no_hits.accept  # too conservative is rejected too
    assert kupiec_pof(1000, 10, C99).test.statistic == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize(
    ("n", "x", "zone"),
    [(250, 0, Zone.GREEN), (250, 4, Zone.GREEN), (250, 5, Zone.YELLOW), (250, 9, Zone.YELLOW),
     (250, 10, Zone.RED), (250, 20, Zone.RED)],
)
def test_traffic_light_reproduces_the_basel_table(n: int, x: int, zone: Zone) -> None:
    assert traffic_light(n, x, C99).zone is zone


def test_traffic_light_cumulative_probability() -> None:
    # P(X <= 4) for Binomial(250, 1%), summed term by term.
    cum = sum(math.comb(250, k) * 0.01**k * 0.99 ** (250 - k) for k in range(5))
    assert traffic_light(250, 4, C99).cumulative_probability == pytest.approx(cum, rel=1e-10)


def test_christoffersen_matches_the_markov_likelihood_written_out() -> None:
    hits = np.array([0, 1, 1, 0, 0, 0, 1, 0, 0, 1, 1, 1, 0], dtype=bool)
    pairs = list(itertools.pairwise(hits))
    n = {(a, b): sum(1 for p in pairs if p == (a, b)) for a in (False, True) for b in (False, True)}
    n00, n01, n10, n11 = n[(False, False)], n[(False, True)], n[(True, False)], n[(True, True)]
    pi01, pi11, pi = n01 / (n00 + n01), n11 / (n10 + n11), (n01 + n11) / len(pairs)
    log_l0 = (n00 + n10) * math.log(1 - pi) + (n01 + n11) * math.log(pi)
    log_l1 = n00 * math.log(1 - pi01) + n01 * math.log(pi01) + n10 * math.log(1 - pi11) + n11 * math.log(pi11)
    got = christoffersen_independence(hits)
    assert got.statistic == pytest.approx(-2 * (log_l0 - log_l1), rel=1e-12)
    assert got.p_value == pytest.approx(float(chi2.sf(-2 * (log_l0 - log_l1), 1)), rel=1e-10)


def test_christoffersen_rejects_clusters_and_accepts_independent_hits() -> None:
    clustered = np.zeros(1000, dtype=bool)
    for start in (100, 400, 700):
        clustered[start : start + 4] = True  # 12 hits, in three runs of four
    assert not christoffersen_independence(clustered).accept
    rng = np.random.default_rng(7)
    independent = rng.random(1000) < 0.012
    assert independent.sum() > 5
    assert christoffersen_independence(independent).accept
    assert christoffersen_independence(np.zeros(50, dtype=bool)).statistic == 0.0


def test_backtest_margin_counts_losses_beyond_the_margin() -> None:
    returns = np.array([0.01, -0.05, 0.02, -0.015, 0.04, -0.001])
    margin = np.full(6, 0.03)
    long = backtest_margin(returns, margin, Side.LONG, C99)
    short = backtest_margin(returns, margin, Side.SHORT, C99)
    assert long.hit_indices == (1,)
    assert short.hit_indices == (4,)
    assert (long.n, long.exceedances) == (6, 1)
    assert long.kupiec.test.statistic == pytest.approx(kupiec_by_hand(6, 1, 0.01))
    assert long.conditional.statistic == pytest.approx(long.kupiec.test.statistic + long.independence.statistic)
    assert long.conditional.dof == 2
    with pytest.raises(ValueError):
        long.hits[0] = True  # results are read-only


def test_margin_equal_to_the_loss_is_not_an_exceedance() -> None:
    bt = backtest_losses(np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 2.5]), C99)
    assert bt.hit_indices == (2,)


@pytest.mark.parametrize(
    "call",
    [
        lambda: kupiec_pof(0, 0, C99),
        lambda: kupiec_pof(10, 11, C99),
        lambda: kupiec_pof(10, -1, C99),
        lambda: traffic_light(10, 11, C99),
        lambda: christoffersen_independence(np.array([True])),
        lambda: christoffersen_independence(np.array([0, 2, 1])),
        lambda: backtest_margin(np.array([]), np.array([]), Side.LONG, C99),
        lambda: backtest_margin(np.array([0.01]), np.array([0.02]), Side.LONG, C99),
        lambda: backtest_margin(np.array([0.01, 0.02]), np.array([0.02]), Side.LONG, C99),
        lambda: backtest_margin(np.array([0.01, np.nan]), np.array([0.02, 0.02]), Side.LONG, C99),
        lambda: backtest_margin(np.array([0.01, -1.2]), np.array([0.02, 0.02]), Side.LONG, C99),
        lambda: backtest_margin(np.array([0.01, 0.02]), np.array([0.02, -0.01]), Side.SHORT, C99),
        lambda: backtest_margin(np.array([0.01, 0.02]), np.array([0.02, 0.02]), "long", C99),
        lambda: kupiec_pof(10, 1, Ratio.parse("100%")),
        lambda: Tail(TailKind.STUDENT_T, df=2.0),
    ],
)
def test_bad_input_is_refused_with_a_risk_input_error(call) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(RiskInputError) as err:
        call()
    assert err.value.hint  # every refusal says what to do


def test_bare_float_coverage_is_a_unit_error() -> None:
    with pytest.raises(UnitError):
        kupiec_pof(250, 5, 0.99)  # type: ignore[arg-type]


def test_student_t_quantile_has_unit_variance_scaling() -> None:
    q = Tail(TailKind.STUDENT_T, df=4.0).parametric_quantile(0.99)
    # Var of t(4) is 4/2 = 2: the unit-variance quantile is t.ppf / sqrt(2).
    assert q == pytest.approx(float(student_t.ppf(0.99, 4)) / math.sqrt(2.0))
    assert q > Tail().parametric_quantile(0.99)


def test_filtered_historical_quantiles_use_only_completed_moves() -> None:
    rng = np.random.default_rng(3)
    h = 4
    lp = np.cumsum(rng.normal(0, 0.01, 400))
    sig = np.full(400, 0.01)
    std = standardised_moves(lp, sig, h)
    tail = Tail(TailKind.FILTERED_HISTORICAL, min_history=100)
    at = np.array([200, 300])
    lo, hi = horizon_quantiles(tail, (0.05, 0.95), std, at, h)
    # Moves starting at s <= t - h are complete at t: exactly t - h + 1 of them.
    assert lo[0] == pytest.approx(np.quantile(std[: 200 - h + 1], 0.05))
    assert hi[1] == pytest.approx(np.quantile(std[: 300 - h + 1], 0.95))
    # A crash after the decision cannot change the quantile in force at it.
    lp2 = lp.copy()
    lp2[250:] -= 1.0
    lo2, _ = horizon_quantiles(tail, (0.05, 0.95), standardised_moves(lp2, sig, h), at[:1], h)
    assert lo2[0] == lo[0]
    with pytest.raises(RiskInputError):
        horizon_quantiles(tail, (0.05, 0.95), std, np.array([50]), h)
