"""Bootstrap intervals of the optimiser's choice and finite-difference sensitivities of VaR / EVaR."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pytest

from risk.errors import RiskInputError
from risk.lending import LossDistribution
from risk.optimize import Point, RiskLimits
from risk.uncertainty import _order_stats, bootstrap, fixed_interval, sensitivities

LIMITS = RiskLimits(var95_share=0.005, evar99_share=0.02, insolvency_probability=0.01)
N = 2000
DEBT = 1e9


def _loss(bad: np.ndarray) -> LossDistribution:
    z = np.zeros_like(bad)
    return LossDistribution("X", DEBT, bad, bad.copy(), z, z.copy(), z.copy())


def _with_bad_paths(k: int, seed: int = 0, size: float = 1e5) -> LossDistribution:
    bad = np.zeros(N)
    bad[np.random.default_rng(seed).choice(N, k, replace=False)] = size
    return _loss(bad)


def _point(lt: int, loss: LossDistribution) -> Point:
    return Point(lt, lt - 250, 500, loss.var95 / DEBT, loss.evar99 / DEBT, loss.insolvency_probability, ())


def test_order_statistics_match_numpy_quantiles() -> None:
    x = np.random.default_rng(3).lognormal(size=(7, 1001))
    assert np.allclose(_order_stats(x, (0.95, 0.99)), np.quantile(x, [0.95, 0.99], axis=1).T, rtol=0, atol=1e-12)


def test_a_threshold_far_inside_the_limit_has_a_point_interval() -> None:
    # 0.2% of paths insolvent against a 1% limit: no resample of 2,000 paths reaches 1%
    curve = {8000: _loss(np.zeros(N)), 8100: _with_bad_paths(4), 8200: _with_bad_paths(200)}
    boot = bootstrap(curve, LIMITS, _point(8100, curve[8100]), ltv_buffer_bps=250, resamples=300, level=0.9,
                     rng=np.random.default_rng(1))
    assert (boot.threshold.low, boot.threshold.point, boot.threshold.high) == (8100, 8100, 8100)
    assert (boot.ltv.low, boot.ltv.high) == (7850, 7850) and boot.agreement == 1.0


def test_a_threshold_on_the_limit_has_an_interval_across_the_candidates() -> None:
    # exactly 1% of paths insolvent at 81%: about half the resamples exceed the limit and fall back to 80%
    curve = {8000: _loss(np.zeros(N)), 8100: _with_bad_paths(20), 8200: _with_bad_paths(200)}
    target = _point(8100, curve[8100])
    boot = bootstrap(curve, LIMITS, target, ltv_buffer_bps=250, resamples=400, level=0.9, rng=np.random.default_rng(2))
    assert (boot.threshold.low, boot.threshold.high) == (8000, 8100)
    assert 0.3 < boot.agreement < 0.7
    assert boot.var95_low <= target.var95_share <= boot.var95_high


def test_bootstrap_is_reproducible_from_its_seed() -> None:
    curve = {8000: _loss(np.zeros(N)), 8100: _with_bad_paths(20)}
    target = _point(8100, curve[8100])
    runs = [bootstrap(curve, LIMITS, target, ltv_buffer_bps=250, resamples=50, level=0.9, rng=np.random.default_rng(5)) for _ in range(2)]
    assert runs[0] == runs[1]


@pytest.mark.parametrize(("resamples", "level"), [(0, 0.9), (10, 1.0), (10, 0.0)])
def test_bootstrap_refuses_bad_settings(resamples: int, level: float) -> None:
    curve = {8000: _loss(np.zeros(N))}
    with pytest.raises(RiskInputError):
        bootstrap(curve, LIMITS, _point(8000, curve[8000]), ltv_buffer_bps=250, resamples=resamples, level=level, rng=np.random.default_rng(0))


def test_bootstrap_needs_the_target_on_the_curve() -> None:
    curve = {8000: _loss(np.zeros(N))}
    with pytest.raises(RiskInputError, match="was not simulated"):
        bootstrap(curve, LIMITS, _point(8100, curve[8000]), ltv_buffer_bps=250, resamples=10, level=0.9, rng=np.random.default_rng(0))


def test_fixed_interval_is_the_point() -> None:
    i = fixed_interval("liquidation_bonus", 450, 0.9, "liquidity")
    assert (i.low, i.point, i.high, i.resamples) == (450, 450, 450, 0)


class _Linear:
    """A stand-in evaluator whose bad debt grows linearly in each parameter (known slopes)."""

    slopes: ClassVar[dict[int, float]] = {0: 3.0, 1: 0.5, 2: -2.0}  # USD of bad debt per bps of LT, LTV, bonus on the affected paths

    def __init__(self) -> None:
        self.calls: list[tuple[int, int, int]] = []

    def loss(self, lt: int, ltv: int, bonus: int) -> LossDistribution:
        self.calls.append((lt, ltv, bonus))
        level = 1e6 + self.slopes[0] * lt + self.slopes[1] * ltv + self.slopes[2] * bonus
        bad = np.zeros(N)
        bad[: N // 10] = level  # 10% of paths: VaR95, EVaR99 and the shortfall all read this level
        return _loss(bad)


def test_sensitivities_are_central_differences_per_bps() -> None:
    ev = _Linear()
    target = Point(8000, 7750, 500, 0.0, 0.0, 0.0, ())
    out = {s.parameter: s for s in sensitivities(ev, target, 25)}  # type: ignore[arg-type]
    for i, name in enumerate(("liquidation_threshold", "ltv", "liquidation_bonus")):
        s = out[name]
        assert s.kind == "central" and s.high_bps - s.low_bps == 50
        assert s.var95_per_bps == pytest.approx(_Linear.slopes[i])
        assert s.evar99_per_bps == pytest.approx(_Linear.slopes[i])
        assert s.shortfall_per_bps == pytest.approx(_Linear.slopes[i])
        assert s.insolvency_per_bps == 0.0
    assert out["liquidation_threshold"].to_json()["var95_per_bps_share"] == pytest.approx(3.0 / DEBT)


def test_sensitivities_go_one_sided_at_an_admissibility_edge() -> None:
    ev = _Linear()
    # LTV one step below LT: LTV + h would exceed LT, LT - h would go below LTV
    target = Point(8000, 7990, 500, 0.0, 0.0, 0.0, ())
    out = {s.parameter: s for s in sensitivities(ev, target, 25)}  # type: ignore[arg-type]
    assert out["ltv"].kind == "backward" and (out["ltv"].low_bps, out["ltv"].high_bps) == (7965, 7990)
    assert out["liquidation_threshold"].kind == "forward"
    assert out["ltv"].var95_per_bps == pytest.approx(0.5)
    assert all(lt * (10_000 + b) < 10**8 and 0 <= ltv <= lt and b > 0 for lt, ltv, b in ev.calls)
    with pytest.raises(RiskInputError):
        sensitivities(ev, target, 0)  # type: ignore[arg-type]
