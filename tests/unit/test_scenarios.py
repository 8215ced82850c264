"""risk.scenarios*: the set's contract, seeding and chunking, crash replays, FHS and Monte Carlo.

Statistical checks use seeded generators and tolerances of a few standard errors; the deterministic
ones (replays, seeding, depeg recursions without noise) are exact.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from risk.errors import DataError, RiskInputError
from risk.market import MarketData
from risk.scenarios import (
    BLOCK_PATHS,
    Provenance,
    ScenarioSet,
    block_rng,
    concatenate,
    iter_chunks,
    sample_block,
    simulate,
)
from risk.scenarios_hist import (
    CRASH_WINDOWS,
    CrashWindow,
    FilteredHistorical,
    crash_windows,
    window_sigma,
)
from risk.scenarios_mc import Depeg, MonteCarlo
from risk.vol import GarchParams, VolEstimate

HOUR = 3600
T0 = 1_600_000_000 - 1_600_000_000 % HOUR


def corr(n: int, rho: float) -> np.ndarray:
    c = np.full((n, n), rho)
    np.fill_diagonal(c, 1.0)
    return c


def mc(**kw) -> MonteCarlo:
    base = {"symbols": ("ETH", "BTC"), "step_seconds": HOUR, "sigma_per_step": np.array([0.01, 0.008]), "correlation": corr(2, 0.6)}
    return MonteCarlo(**{**base, **kw})


# ------------------------------------------------------------------------------------- the set


def test_scenario_set_contract() -> None:
    rel = np.ones((3, 5, 2))
    rel[:, 1:, 0] = 1.1
    s = ScenarioSet("x", ("A", "B"), HOUR, rel, Provenance("test", "unit"))
    assert (s.paths, s.steps, s.horizon_seconds) == (3, 4, 4 * HOUR)
    assert not s.relative.flags.writeable
    assert np.allclose(s.log_returns()[:, 0, 0], math.log(1.1)) and np.all(s.log_returns()[:, 1:, :] == 0)
    assert np.array_equal(s.series("B"), np.ones((3, 5)))
    assert list(s.per_asset()) == ["A", "B"] and np.array_equal(s.per_asset()["A"], rel[:, :, 0])
    bad = [
        (np.ones((3, 5, 3)), "shape"),
        (np.full((3, 5, 2), 1.1), "start at 1.0"),
        (np.where(np.arange(5)[None, :, None] == 2, np.nan, 1.0) * np.ones((3, 5, 2)), "finite"),
        (np.ones((3, 5, 2), dtype=np.int64), "dtype"),
        (np.ones((3, 1, 2)), "shape"),
    ]
    for array, match in bad:
        with pytest.raises(RiskInputError, match=match):
            ScenarioSet("x", ("A", "B"), HOUR, array, Provenance("test", "unit"))
    with pytest.raises(RiskInputError, match="no asset"):
        s.series("C")


def test_block_rng_is_the_spawned_child_of_the_seed() -> None:
    for seed, block in ((0, 0), (42, 3), (2**63 - 1, 17)):
        child = np.random.SeedSequence(seed).spawn(block + 1)[block]
        expected = np.random.Generator(np.random.PCG64(child)).random(8)
        assert np.array_equal(block_rng(seed, block).random(8), expected)
    with pytest.raises(RiskInputError, match="seed"):
        block_rng(-1, 0)


# ----------------------------------------------------------------------------- crash windows


@pytest.fixture()
def market() -> MarketData:
    rng = np.random.default_rng(11)
    n = 200
    times = T0 + HOUR * np.arange(n)
    prices = np.column_stack([
        2000 * np.exp(np.cumsum(rng.standard_normal(n) * 0.02)),
        30000 * np.exp(np.cumsum(rng.standard_normal(n) * 0.01)),
        np.ones(n),  # a stablecoin that never moves
    ])
    return MarketData(HOUR, times, ("ETH", "BTC", "USDC"), prices)


def test_crash_window_replays_the_moves_exactly(market: MarketData) -> None:
    w = CrashWindow("test", T0 + 10 * HOUR, T0 + 60 * HOUR)
    (s,) = crash_windows(market, [w])
    window = market.prices[10:61]
    assert s.relative.shape == (1, 51, 3) and s.name == "test"
    assert np.array_equal(s.relative[0], window / window[0])  # bit for bit: no log/exp round trip
    assert s.provenance.method == "crash-window" and s.provenance.seed is None
    assert "50 steps" in s.provenance.source


def test_crash_window_runs_of_steps_are_every_start(market: MarketData) -> None:
    w = CrashWindow("test", T0 + 10 * HOUR, T0 + 60 * HOUR)
    (s,) = crash_windows(market, [w], steps=24)
    assert s.relative.shape == (51 - 24, 25, 3)
    for k in (0, 5, 26):
        part = market.prices[10 + k : 10 + k + 25]
        assert np.array_equal(s.relative[k], part / part[0])


def test_crash_window_rescale_scales_log_returns_exactly(market: MarketData) -> None:
    w = CrashWindow("test", T0 + 10 * HOUR, T0 + 60 * HOUR)
    r = np.diff(np.log(market.prices[10:61]), axis=0)
    then = np.sqrt(np.mean(r**2, axis=0))
    now = VolEstimate((0.005, 0.02, 0.0001), HOUR, "test", 100)
    (s,) = crash_windows(market, [w], rescale_to=now)
    got = np.diff(np.log(s.relative[0]), axis=0)
    factor = np.array([0.005 / then[0], 0.02 / then[1], 1.0])  # the flat stablecoin is left as is
    assert np.allclose(got, r * factor, rtol=1e-10, atol=1e-15)
    assert np.all(s.relative[0, :, 2] == 1.0)
    assert window_sigma(r) == pytest.approx(then, rel=1e-15)
    # the window's volatility given from outside (e.g. the calm before the crash)
    before = VolEstimate((0.01, 0.01, 0.01), HOUR, "before", 100)
    (s2,) = crash_windows(market, [w], rescale_to=now, window_vol={"test": before})
    assert np.allclose(np.diff(np.log(s2.relative[0]), axis=0), r * [0.5, 2.0, 0.01], rtol=1e-10, atol=1e-15)
    # the same scaling for runs of steps
    (s3,) = crash_windows(market, [w], rescale_to=now, steps=10)
    assert np.allclose(np.diff(np.log(s3.relative[7]), axis=0), r[7:17] * factor, rtol=1e-10, atol=1e-15)


def test_crash_window_errors(market: MarketData) -> None:
    with pytest.raises(DataError, match="not covered") as err:
        crash_windows(market, [CrashWindow("late", T0 + 150 * HOUR, T0 + 250 * HOUR)])
    assert "late" in err.value.cause
    with pytest.raises(DataError, match="2020-03-12"):
        crash_windows(market, CRASH_WINDOWS)  # the real windows are years away from this data
    w = CrashWindow("w", T0, T0 + 20 * HOUR)
    with pytest.raises(RiskInputError, match="3 at 3600"):
        crash_windows(market, [w], rescale_to=VolEstimate((0.01, 0.01), HOUR, "x", 1))
    with pytest.raises(RiskInputError, match="3 at 3600"):
        crash_windows(market, [w], rescale_to=VolEstimate((0.01, 0.01, 0.01), 60, "x", 1))
    with pytest.raises(RiskInputError, match="runs of 21"):
        crash_windows(market, [w], steps=21)
    with pytest.raises(RiskInputError):
        CrashWindow("backwards", T0 + 10, T0)


def test_crash_windows_are_the_five_named_events() -> None:
    assert [w.name for w in CRASH_WINDOWS] == ["2020-03-12", "2021-05-19", "2022-05 UST", "2022-06 stETH", "2022-11 FTX"]
    for w in CRASH_WINDOWS:
        assert w.start % 86400 == 0 and w.end % 86400 == 0 and w.start < w.end


# ----------------------------------------------------------------------------------------- FHS


def residuals(n: int = 3000) -> np.ndarray:
    rng = np.random.default_rng(21)
    c = np.array([[1.0, 0.7, -0.3], [0.7, 1.0, 0.0], [-0.3, 0.0, 1.0]])
    z = rng.standard_t(5, (n, 3)) * math.sqrt(3 / 5) @ np.linalg.cholesky(c).T
    return z


def test_fhs_resamples_whole_cross_sections_and_keeps_correlation() -> None:
    z = residuals()
    sigma = np.array([0.01, 0.02, 0.001])
    vol_path = np.tile(sigma * 3, (len(z), 1))  # any positive path: residuals are r / vol_path
    fhs = FilteredHistorical.from_returns(("A", "B", "C"), HOUR, z * vol_path, vol_path, sigma)
    s = simulate(fhs, seed=5, paths=2000, steps=24)
    r = s.log_returns()
    # every simulated hour is one historical hour of all three assets, times today's sigma
    rows = {tuple(np.round(x, 9)) for x in z}
    sample = (r.reshape(-1, 3)[:: 997] / sigma).round(9)
    assert all(tuple(x) in rows for x in sample)
    # so the cross-asset correlation is the residuals' (48,000 draws: s.e. of a correlation < 0.005)
    got, want = np.corrcoef(r.reshape(-1, 3).T), np.corrcoef(z.T)
    assert np.allclose(got, want, atol=0.02)
    assert r.reshape(-1, 3).std(axis=0) == pytest.approx(sigma * z.std(axis=0), rel=0.03)
    assert s.provenance.method == "filtered-historical" and s.provenance.seed == 5


def test_fhs_with_garch_follows_the_variance_forecast() -> None:
    z = residuals(20000)
    z = z / z.std(axis=0)  # unit variance, so E[r_k^2] is the GARCH forecast exactly
    params = (GarchParams(2e-6, 0.08, 0.9, 5.0),) * 3
    start = np.array([0.03, 0.003, 0.01])  # above, below and at the long-run level of 0.01
    fhs = FilteredHistorical(("A", "B", "C"), HOUR, z, start, garch=params)
    r = simulate(fhs, seed=9, paths=8192, steps=48).log_returns()
    for j in range(3):
        expected = params[j].variance_forecast(start[j] ** 2, 48)
        got = np.mean(r[:, :, j] ** 2, axis=0)
        # fat-tailed squares: 8192 paths give a few percent of noise per step
        assert got[[0, 10, 47]] == pytest.approx(expected[[0, 10, 47]], rel=0.12)
    assert "garch" in dict(fhs.describe().settings)["volatility"]


def test_fhs_bad_inputs() -> None:
    z = residuals(100)
    with pytest.raises(RiskInputError, match="differ in shape"):
        FilteredHistorical.from_returns(("A", "B", "C"), HOUR, z, np.ones((99, 3)), [0.01] * 3)
    with pytest.raises(RiskInputError, match="zero"):
        FilteredHistorical.from_returns(("A", "B", "C"), HOUR, z, np.zeros((100, 3)), [0.01] * 3)
    with pytest.raises(RiskInputError, match="current sigma"):
        FilteredHistorical(("A", "B", "C"), HOUR, z, np.array([0.01, -1.0, 0.01]))
    with pytest.raises(RiskInputError, match="do not match 2 assets"):
        FilteredHistorical(("A", "B"), HOUR, z, np.array([0.01, 0.01]))
    with pytest.raises(RiskInputError, match="one GarchParams per asset"):
        FilteredHistorical(("A", "B", "C"), HOUR, z, np.full(3, 0.01), garch=(GarchParams(1e-6, 0.1, 0.8, 5.0),))
    with pytest.raises(RiskInputError, match="non-explosive"):
        FilteredHistorical(("A", "B", "C"), HOUR, z, np.full(3, 0.01), garch=(GarchParams(1e-6, 0.3, 0.8, 5.0),) * 3)


# -------------------------------------------------------------------------------- Monte Carlo


def test_mc_correlation_and_variance_gaussian_and_t() -> None:
    c = np.array([[1.0, 0.8, 0.2], [0.8, 1.0, -0.4], [0.2, -0.4, 1.0]])
    sigma = np.array([0.01, 0.02, 0.005])
    for nu in (math.inf, 4.5):
        m = MonteCarlo(("A", "B", "C"), HOUR, sigma, c, nu=nu)
        r = simulate(m, seed=1, paths=2048, steps=48).log_returns().reshape(-1, 3)
        assert np.allclose(np.corrcoef(r.T), c, atol=0.02), nu
        # shocks are scaled to unit variance whatever nu; t's sample variance is noisier
        assert r.std(axis=0) == pytest.approx(sigma, rel=0.03 if nu == math.inf else 0.06)


def test_mc_tails_are_fat_and_joint() -> None:
    gauss = simulate(mc(), seed=2, paths=2048, steps=96).log_returns().reshape(-1, 2)
    fat = simulate(mc(nu=5.0), seed=2, paths=2048, steps=96).log_returns().reshape(-1, 2)
    assert abs(stats.kurtosis(gauss[:, 0])) < 0.1  # normal: excess kurtosis 0
    assert stats.kurtosis(fat[:, 0]) > 3.0  # t(5) scaled: excess kurtosis 6 (sample values run lower)
    # a shared chi-square makes extreme hours common to both assets: more joint 0.1% tails than Gaussian
    def joint_tail(r: np.ndarray) -> float:
        q = np.quantile(r, 0.001, axis=0)
        return float(np.mean((r[:, 0] < q[0]) & (r[:, 1] < q[1])))

    assert joint_tail(fat) > 1.5 * joint_tail(gauss)


def test_mc_jump_frequency_and_sizes() -> None:
    lam = 0.01
    m = mc(sigma_per_step=np.zeros(2), jump_intensity=lam, jump_mean=-0.02, jump_std=0.0)
    r = simulate(m, seed=3, paths=2048, steps=100).log_returns()
    cells = r.shape[0] * r.shape[1]
    jumps = -r / 0.02  # with no diffusion and no spread every return is a whole number of jumps
    assert np.allclose(jumps, np.round(jumps), atol=1e-9)
    per_asset = np.round(jumps).sum(axis=(0, 1))
    assert per_asset == pytest.approx([lam * cells] * 2, rel=3 / math.sqrt(lam * cells))  # Poisson: 3 s.e.
    hit = r != 0
    assert hit.mean() == pytest.approx(1 - math.exp(-lam), rel=0.05)
    # independent arrivals: both jump in the same hour at the rate lam**2
    assert (hit[..., 0] & hit[..., 1]).mean() < 5 * lam**2
    common = simulate(mc(sigma_per_step=np.zeros(2), jump_intensity=lam, jump_mean=-0.02, common_jumps=True), seed=3, paths=2048, steps=100)
    rc = common.log_returns()
    assert np.array_equal(rc[..., 0] != 0, rc[..., 1] != 0)
    assert (rc[..., 0] != 0).mean() == pytest.approx(1 - math.exp(-lam), rel=0.05)
    # arrivals are spread evenly: jump counts per path and per step are Poisson (variance = mean)
    for hits in (hit[..., 0], rc[..., 0] != 0):
        for counts in (hits.sum(axis=1), hits.sum(axis=0)):
            assert counts.var() / counts.mean() == pytest.approx(1.0, abs=4 * math.sqrt(2 / len(counts)))


def test_mc_jump_size_distribution() -> None:
    m = mc(sigma_per_step=np.zeros(2), jump_intensity=[0.02, 0.0], jump_mean=-0.05, jump_std=0.03)
    r = simulate(m, seed=4, paths=4096, steps=50).log_returns()
    assert np.all(r[..., 1] == 0)  # no intensity, no jumps
    sizes = r[..., 0][r[..., 0] != 0]
    single = sizes[np.abs(sizes - (-0.05)) < 0.15]  # almost all cells with a jump hold one
    assert single.mean() == pytest.approx(-0.05 * (1 + 0.01), abs=0.003)
    assert single.std() == pytest.approx(0.03, rel=0.1)


def test_mc_stablecoin_depeg_reverts_from_today() -> None:
    d = Depeg("USDC", None, half_life_steps=10.0, noise_per_step=0.0, start_deviation=-0.05)
    m = mc(symbols=("ETH", "USDC"), depegs=(d,))
    s = simulate(m, seed=6, paths=3, steps=40)
    k = np.arange(41)
    # x_t = x0 phi^t; relative to today's price: exp(x_t - x0)
    expected = np.exp(-0.05 * (0.5 ** (k / 10.0)) + 0.05)
    assert s.series("USDC") == pytest.approx(np.broadcast_to(expected, (3, 41)), rel=1e-12)
    assert s.series("USDC")[0, 10] == pytest.approx(math.exp(0.025), rel=1e-12)  # half the gap closed in a half-life


def test_mc_depeg_events_and_lst_following_its_base() -> None:
    steps, lam, size = 72, 0.002, 0.04
    usdc = Depeg("USDC", None, half_life_steps=math.inf, noise_per_step=0.0, event_intensity_per_step=lam, event_mean_size=size)
    steth = Depeg("stETH", "ETH", half_life_steps=24.0, noise_per_step=0.0)
    m = mc(symbols=("ETH", "stETH", "USDC"), sigma_per_step=np.array([0.01, 0.01, 0.0]), correlation=corr(3, 0.0), depegs=(usdc, steth))
    s = simulate(m, seed=7, paths=8192, steps=steps)
    # no noise or events: stETH moves exactly as ETH
    assert np.allclose(s.series("stETH"), s.series("ETH"), rtol=1e-14)
    final = s.series("USDC")[:, -1]
    assert np.all(np.diff(np.log(s.series("USDC")), axis=1) <= 0)  # events only ever push it down
    assert np.mean(final < 1) == pytest.approx(1 - math.exp(-lam * steps), rel=0.08)
    drops = -np.log(final[final < 1])
    assert drops.mean() == pytest.approx(size * (1 + lam * steps / 2), rel=0.08)  # exponential sizes, mostly one event


def test_mc_depeg_noise_moves_with_the_market() -> None:
    c = np.array([[1.0, 0.5], [0.5, 1.0]])
    d = Depeg("stETH", None, half_life_steps=math.inf, noise_per_step=0.001)
    m = MonteCarlo(("ETH", "stETH"), HOUR, np.array([0.01, 0.0]), c, nu=6.0, depegs=(d,))
    r = simulate(m, seed=8, paths=2048, steps=48).log_returns().reshape(-1, 2)
    assert r[:, 1].std() == pytest.approx(0.001, rel=0.05)
    assert np.corrcoef(r.T)[0, 1] == pytest.approx(0.5, abs=0.02)


def test_mc_garch_variance_follows_the_forecast() -> None:
    p = GarchParams(1e-6, 0.1, 0.85, 5.0)
    m = mc(sigma_per_step=np.array([0.02, 0.002]), garch=(p, p))
    r = simulate(m, seed=10, paths=8192, steps=60).log_returns()
    for j, s0 in enumerate((0.02, 0.002)):
        expected = p.variance_forecast(s0**2, 60)
        assert np.mean(r[:, [0, 20, 59], j] ** 2, axis=0) == pytest.approx(expected[[0, 20, 59]], rel=0.06)


def test_mc_is_deterministic_and_chunking_never_changes_paths() -> None:
    m = mc(nu=4.0, jump_intensity=0.01, jump_mean=-0.03, jump_std=0.02, symbols=("ETH", "BTC", "USDC"), sigma_per_step=np.array([0.01, 0.008, 0.0]),
           correlation=corr(3, 0.5), depegs=(Depeg("USDC", None, 24.0, 0.0005, 0.001, 0.02),))
    paths, block = 700, 128
    whole = simulate(m, seed=99, paths=paths, steps=30, block_paths=block)
    again = simulate(m, seed=99, paths=paths, steps=30, block_paths=block)
    assert whole.relative.tobytes() == again.relative.tobytes()
    assert not np.array_equal(whole.relative, simulate(m, seed=100, paths=paths, steps=30, block_paths=block).relative)
    for chunk in (block, 3 * block, 8 * block):
        parts = list(iter_chunks(m, seed=99, paths=paths, steps=30, chunk_paths=chunk, block_paths=block))
        assert all(p.paths <= chunk for p in parts)
        assert [p.provenance.first_path for p in parts] == list(range(0, paths, chunk))
        assert concatenate(parts).relative.tobytes() == whole.relative.tobytes()
    # any block alone (another worker), and fewer paths as a prefix of the same run
    assert np.array_equal(sample_block(m, seed=99, block=3, steps=30, block_paths=block), whole.relative[3 * block : 4 * block])
    assert np.array_equal(simulate(m, seed=99, paths=300, steps=30, block_paths=block).relative, whole.relative[:300])
    small = simulate(m, seed=99, paths=paths, steps=30, block_paths=block, dtype=np.float32)
    assert small.relative.dtype == np.float32 and np.array_equal(small.relative, whole.relative.astype(np.float32))
    prov = whole.provenance.to_json()
    assert (prov["seed"], prov["block_paths"], prov["method"]) == (99, block, "monte-carlo")
    assert list(prov) == sorted(prov) and "USDC" in prov["settings"]["depegs"]


def test_chunk_joining_refuses_gaps_and_foreign_chunks() -> None:
    parts = list(iter_chunks(mc(), seed=1, paths=300, steps=5, chunk_paths=64, block_paths=64))
    with pytest.raises(RiskInputError, match="does not follow"):
        concatenate([parts[0], parts[2]])
    other = next(iter_chunks(mc(), seed=2, paths=300, steps=5, chunk_paths=64, block_paths=64))
    with pytest.raises(RiskInputError, match="does not follow"):
        concatenate([parts[0], other])
    with pytest.raises(RiskInputError, match="multiple"):
        iter_chunks(mc(), seed=1, paths=300, steps=5, chunk_paths=100, block_paths=64)  # refused before any chunk
    assert BLOCK_PATHS % 64 == 0


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"correlation": np.array([[1.0, 0.9], [0.8, 1.0]])}, "symmetric"),
        ({"correlation": np.array([[1.0, 1.2], [1.2, 1.0]])}, "symmetric|entries"),
        ({"symbols": ("A", "B", "C"), "sigma_per_step": np.full(3, 0.01), "correlation": np.array([[1, 0.9, 0.9], [0.9, 1, -0.9], [0.9, -0.9, 1.0]])}, "semi-definite"),
        ({"nu": 2.0}, "nu"),
        ({"nu": float("nan")}, "nu"),
        ({"sigma_per_step": np.array([0.01, -0.01])}, r"\[0, 1\)"),
        ({"sigma_per_step": np.array([0.01, 0.01, 0.01])}, "2 assets"),
        ({"jump_intensity": -0.1}, ">= 0"),
        ({"jump_intensity": [0.1, 0.2], "common_jumps": True}, "one intensity"),
        ({"depegs": (Depeg("USDT", None, 10.0, 0.0),)}, "not in"),
        ({"depegs": (Depeg("BTC", "ETH", 10.0, 0.0), Depeg("ETH", None, 10.0, 0.0))}, "unpegged"),
        ({"step_seconds": 0}, "step"),
    ],
)
def test_mc_bad_inputs(kw: dict, match: str) -> None:
    with pytest.raises(RiskInputError, match=match):
        mc(**kw)


def test_bad_run_arguments_and_overflow() -> None:
    with pytest.raises(RiskInputError, match="paths"):
        simulate(mc(), seed=1, paths=0, steps=5)
    with pytest.raises(RiskInputError, match="steps"):
        simulate(mc(), seed=1, paths=5, steps=0)
    with pytest.raises(RiskInputError, match="seed"):
        simulate(mc(), seed=-3, paths=5, steps=5)
    with pytest.raises(RiskInputError, match="float64 or float32"):
        simulate(mc(), seed=1, paths=5, steps=5, dtype=np.int32)
    with pytest.raises(RiskInputError):
        Depeg("USDC", None, half_life_steps=0.0, noise_per_step=0.001)
    with pytest.raises(RiskInputError):
        Depeg("USDC", None, half_life_steps=5.0, noise_per_step=-0.001)
    huge = mc(sigma_per_step=np.zeros(2), jump_intensity=0.5, jump_mean=50.0)
    with pytest.raises(RiskInputError, match="overflow"):
        simulate(huge, seed=1, paths=8, steps=100, block_paths=8)
