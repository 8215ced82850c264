"""risk.vol: each model recovers a known volatility from synthetic returns; GARCH checked against arch itself.

Synthetic data are drawn from seeded generators with a known sigma; tolerances are a few standard
errors of the estimator, so a wrong formula (a missing square root, a variance instead of a sigma, a
look-ahead) fails while sampling noise does not.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from arch import arch_model

from risk.errors import RiskInputError
from risk.vol import EWMA, GarchParams, GarchT, Realised, VolatilityModel

HOUR = 3600


def simulate_garch_t(rng: np.random.Generator, n: int, omega: float, alpha: float, beta: float, nu: float) -> tuple[np.ndarray, np.ndarray]:
    """Returns and the true sigma before each, from a GARCH(1,1) with unit-variance Student-t shocks."""
    z = rng.standard_t(nu, n) * math.sqrt((nu - 2) / nu)
    r, sigma = np.empty(n), np.empty(n + 1)
    sigma[0] = math.sqrt(omega / (1 - alpha - beta))
    for t in range(n):
        r[t] = sigma[t] * z[t]
        sigma[t + 1] = math.sqrt(omega + alpha * r[t] ** 2 + beta * sigma[t] ** 2)
    return r, sigma


TRUE = {"omega": 2e-6, "alpha": 0.08, "beta": 0.90, "nu": 5.0}


@pytest.fixture(scope="module")
def garch_data() -> tuple[np.ndarray, np.ndarray]:
    return simulate_garch_t(np.random.default_rng(7), 8000, **TRUE)


@pytest.fixture(scope="module")
def garch_fit(garch_data: tuple[np.ndarray, np.ndarray]):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any warning from numpy, scipy or arch fails the fit
        return GarchT().fit(garch_data[0])


def test_all_models_share_the_interface() -> None:
    models: list[VolatilityModel] = [EWMA(half_life_steps=72), GarchT(), Realised(window_steps=100)]
    r = np.random.default_rng(0).standard_normal((600, 2)) * [0.01, 0.03]
    for m in models:
        est = m.estimate(r, HOUR)
        assert len(est.sigma_per_step) == 2 and est.step_seconds == HOUR and est.model
        assert m.conditional_sigma(r).shape == r.shape
        # the second market is three times as volatile: every model must see it
        assert 2.4 < est.sigma_per_step[1] / est.sigma_per_step[0] < 3.6


def test_ewma_recovers_constant_sigma() -> None:
    r = np.random.default_rng(1).standard_normal((20000, 2)) * [0.01, 0.025]
    est = EWMA(half_life_steps=2000).estimate(r, HOUR)
    # effective sample ~ 2 * 2000 / ln 2 ≈ 5800 returns → sigma's relative s.e. ≈ 0.9%
    assert est.sigma_per_step == pytest.approx([0.01, 0.025], rel=0.03)
    assert est.observations == 20000


def test_ewma_conditional_sigma_has_no_look_ahead() -> None:
    r = np.random.default_rng(2).standard_normal((500, 1)) * 0.01
    m = EWMA(half_life_steps=20, warmup=24)
    before = m.conditional_sigma(r)
    bumped = r.copy()
    bumped[300] = 0.5  # a shock at t=300 may change sigma from t=301 on, never at or before 300
    after = m.conditional_sigma(bumped)
    assert np.array_equal(before[:301], after[:301])
    assert after[301, 0] > 3 * before[301, 0]
    # row t is the EWMA variance after return t-1
    assert np.allclose(before[1:] ** 2, m.variance_path(r)[:-1], rtol=1e-12)


def test_realised_tracks_a_regime_change() -> None:
    rng = np.random.default_rng(3)
    r = np.r_[rng.standard_normal(3000) * 0.01, rng.standard_normal(1000) * 0.03][:, None]
    est = Realised(window_steps=800).estimate(r, HOUR)
    # s.e. of a sample std over 800 returns ≈ 1/sqrt(1600) = 2.5%; the old regime is out of the window
    assert est.sigma_per_step[0] == pytest.approx(0.03, rel=0.08)
    assert est.observations == 800
    assert "800 returns" in est.model


def test_realised_conditional_sigma_uses_the_window_before_each_return() -> None:
    r = np.random.default_rng(4).standard_normal((300, 2)) * 0.02
    cs = Realised(window_steps=50).conditional_sigma(r)
    for t in (50, 51, 173, 299):
        assert cs[t] == pytest.approx(np.std(r[t - 50 : t], axis=0, ddof=1), rel=1e-10)
    assert np.array_equal(cs[:50], np.broadcast_to(cs[0], (50, 2)))  # warm-up: the first window's std
    assert cs[0] == pytest.approx(np.std(r[:50], axis=0, ddof=1), rel=1e-10)


def test_garch_recovers_the_generating_parameters(garch_fit, garch_data) -> None:
    (p,) = garch_fit.params
    assert p.alpha == pytest.approx(TRUE["alpha"], abs=0.03)
    assert p.beta == pytest.approx(TRUE["beta"], abs=0.03)
    assert p.nu == pytest.approx(TRUE["nu"], abs=1.5)
    assert p.omega == pytest.approx(TRUE["omega"], rel=0.6)
    _, sigma = garch_data
    fitted = garch_fit.conditional_sigma[:, 0]
    # the filtered path follows the true one closely once the backcast has worn off
    assert np.corrcoef(fitted[500:], sigma[500:-1])[0, 1] > 0.97
    assert garch_fit.next_sigma[0] == pytest.approx(sigma[-1], rel=0.1)


def test_garch_matches_arch_own_forecast(garch_data) -> None:
    r = garch_data[0]
    fit = GarchT().fit(r)
    res = arch_model(100 * r, mean="Zero", vol="GARCH", p=1, q=1, dist="t", rescale=False).fit(disp="off", show_warning=False)
    arch_var = res.forecast(horizon=5, reindex=False).variance.to_numpy()[0] / 100**2
    assert fit.forecast_sigma(5)[:, 0] ** 2 == pytest.approx(arch_var, rel=1e-9)
    assert fit.conditional_sigma[:, 0] == pytest.approx(res.conditional_volatility / 100, rel=1e-12)
    assert fit.scale == (100.0,)
    est = fit.estimate(HOUR)
    assert est.sigma_per_step == (pytest.approx(math.sqrt(arch_var[0]), rel=1e-9),)
    assert "GARCH(1,1)" in est.model and est.observations == len(r)


def test_garch_variance_forecast_reverts_to_the_long_run() -> None:
    p = GarchParams(omega=2e-6, alpha=0.08, beta=0.9, nu=5.0)
    f = p.variance_forecast(next_variance=4e-4, horizon_steps=2000)
    assert f[0] == 4e-4
    assert f[1] == pytest.approx(p.omega + p.persistence * 4e-4, rel=1e-12)  # one step of the recursion
    assert math.sqrt(f[-1]) == pytest.approx(p.unconditional_sigma, rel=1e-9)
    integrated = GarchParams(omega=1e-6, alpha=0.1, beta=0.9, nu=4.0)
    assert integrated.unconditional_sigma == math.inf
    assert integrated.variance_forecast(1e-4, 3) == pytest.approx([1e-4, 1.01e-4, 1.02e-4], rel=1e-12)


def test_garch_rescales_a_stablecoin_sized_series() -> None:
    r, sigma = simulate_garch_t(np.random.default_rng(8), 4000, omega=2e-10, alpha=0.08, beta=0.9, nu=5.0)  # ~1 bp a step
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fit = GarchT().fit(r)
    assert fit.scale[0] > 100.0  # percent alone would leave arch a variance of ~1e-4
    assert fit.next_sigma[0] == pytest.approx(sigma[-1], rel=0.15)
    assert fit.params[0].alpha + fit.params[0].beta == pytest.approx(0.98, abs=0.03)


def test_garch_fit_failures_are_risk_input_errors() -> None:
    rng = np.random.default_rng(0)
    with pytest.raises(RiskInputError, match="at least 250 returns"):
        GarchT().fit(rng.standard_normal(100) * 0.01)
    with pytest.raises(RiskInputError, match="all equal") as err:
        GarchT().fit(np.zeros((400, 2)), symbols=("ETH", "USDC"))
    assert "ETH" in err.value.cause and "EWMA" in err.value.hint
    with pytest.raises(RiskInputError, match="not finite"):
        GarchT().fit(np.r_[np.zeros(300), np.inf])


def test_garch_non_convergence_is_a_risk_input_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import arch.univariate.base as arch_base

    real = arch_base.minimize

    def two_iterations(*args, **kwargs):  # the real optimiser, stopped early: status 9 (iteration limit)
        kwargs["options"] = {**kwargs.get("options", {}), "maxiter": 2}
        return real(*args, **kwargs)

    monkeypatch.setattr(arch_base, "minimize", two_iterations)
    r = np.random.default_rng(5).standard_normal(1000) * 0.01
    with pytest.raises(RiskInputError, match="did not converge") as err:
        GarchT().fit(r, symbols=("ETH",))
    assert "ETH" in err.value.cause and "EWMA" in err.value.hint


def test_garch_forecast_horizon_must_be_a_step_or_more(garch_fit) -> None:
    assert garch_fit.forecast_sigma(3).shape == (3, 1)
    for bad in (0, -1, 2.5, True):
        with pytest.raises(RiskInputError, match="horizon"):
            garch_fit.forecast_sigma(bad)


def test_bad_inputs_are_risk_input_errors() -> None:
    r = np.random.default_rng(0).standard_normal((100, 1)) * 0.01
    with pytest.raises(RiskInputError):
        EWMA(half_life_steps=0).estimate(r, HOUR)
    with pytest.raises(RiskInputError, match="needs 200 returns"):
        Realised(window_steps=200).estimate(r, HOUR)
    with pytest.raises(RiskInputError, match="whole number"):
        Realised(window_steps=1).estimate(r, HOUR)
    with pytest.raises(RiskInputError):
        EWMA(half_life_steps=10).estimate(np.array([0.01]), HOUR)
