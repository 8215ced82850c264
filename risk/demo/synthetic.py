"""The demo venue's price history: synthetic, seeded, and fitted to real data.

The embedded demo must run on a machine without ../shared/data, so its prices are generated. They
are generated from models fitted to the real hourly data in ../shared/data, with the fitted numbers
written down here; `tests/realdata/test_demo_fit.py` refits them from the shared files and checks
they match, so the constants cannot drift from their source.

* WETH and WBTC: zero-mean GARCH(1,1) with standardised Student-t shocks (`arch`), fitted on Binance
  ETHUSDT / BTCUSDT hourly closes 2019-01-01 .. 2021-12-01 (first row dropped: a known spike), plus
  compound-Poisson jumps. Jump intensity is the *excess* rate of |standardised residual| > 6 over the
  rate the fitted t already implies; jump sizes are the mean and spread of those residual returns.
  The two assets' normal shocks are correlated (ρ fitted on the same window).
* wstETH: WETH times (1 + d) where the log discount d follows an Ornstein-Uhlenbeck process fitted on
  CoinGecko stETH/WETH 2021-01 .. 2023-02 (the June 2022 discount included). The wstETH/stETH
  exchange rate is taken as constant over the window.
* USDC: an OU process around $1 fitted on Binance USDCUSDT hourly closes.

The fitted GARCH has alpha + beta within 1e-4 of one (integrated GARCH): volatility shocks are very
persistent at the hourly step. The generator starts from the sample variance, so the demo's 120 days
stay well behaved.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DEMO_END = "2023-10-31T00:00:00Z"  # the snapshot's date: the history ends here
DEMO_STEPS = 120 * 24  # hourly


@dataclass(frozen=True, slots=True)
class GarchTJump:
    """Hourly log-return model; omega in (decimal return)**2."""

    omega: float
    alpha: float
    beta: float
    nu: float
    start_variance: float
    jump_intensity: float  # jumps per step
    jump_mean: float  # log return
    jump_std: float


@dataclass(frozen=True, slots=True)
class OrnsteinUhlenbeck:
    """Log deviation x: x_{t+1} = phi x_t + sigma e_t (hourly)."""

    phi: float
    sigma: float


# Fitted with risk.demo.fit (see tests/realdata/test_demo_fit.py); arch 8.0, 25,541 returns each.
ETH = GarchTJump(
    omega=4.4856812651133386e-07,
    alpha=0.06045764217763266,
    beta=0.9395423600110262,
    nu=3.408252696559724,
    start_variance=0.00010282482115349834,
    jump_intensity=0.0003185774960183117,
    jump_mean=-0.02350529877514856,
    jump_std=0.06804430338430947,
)
BTC = GarchTJump(
    omega=2.1656027406648016e-07,
    alpha=0.05763089763307023,
    beta=0.942369368016731,
    nu=3.1815938689728562,
    start_variance=6.690297040487151e-05,
    jump_intensity=0.0008131164345674361,
    jump_mean=-0.006964491036441946,
    jump_std=0.057869963765092416,
)
ETH_BTC_CORRELATION = 0.8229617083325229
# stETH/WETH from 18,366 hourly CoinGecko points (last price per hour, both present).
STETH_DISCOUNT = OrnsteinUhlenbeck(phi=0.8909982510808285, sigma=0.008397637273399988)
# Binance USDCUSDT hourly closes 2020-08 .. 2021-12.
USDC_PEG = OrnsteinUhlenbeck(phi=0.9483030362044073, sigma=0.000210927208405671)


def _garch_t_paths(model: GarchTJump, normals: np.ndarray, chi2: np.ndarray, jumps: np.ndarray,
                   jump_sizes: np.ndarray) -> np.ndarray:
    """Log returns for one asset; the GARCH recursion is inherently sequential in time."""
    steps = normals.shape[0]
    shocks = normals * np.sqrt((model.nu - 2.0) / chi2)  # standardised Student-t
    out = np.empty(steps)
    var = model.start_variance
    for t in range(steps):
        r = np.sqrt(var) * shocks[t]
        out[t] = r
        var = model.omega + model.alpha * r * r + model.beta * var
    return out + jumps * jump_sizes


def _ou(model: OrnsteinUhlenbeck, normals: np.ndarray) -> np.ndarray:
    x = np.empty(normals.shape[0])
    level = 0.0
    for t in range(normals.shape[0]):
        level = model.phi * level + model.sigma * normals[t]
        x[t] = level
    return x


def generate(seed: int, anchors: dict[str, float], steps: int = DEMO_STEPS) -> dict[str, np.ndarray]:
    """Prices for WETH, WBTC, wstETH and USDC, `steps + 1` points each, ending at the anchor prices.

    Parameters
    ----------
    seed : int
        Seed of the `numpy.random.Generator` (PCG64) that drives every shock.
    anchors : dict[str, float]
        Final USD price of each asset (the snapshot's oracle prices); paths are scaled to end there.
    steps : int
        Number of hourly steps.
    """
    rng = np.random.Generator(np.random.PCG64(seed))
    z = rng.standard_normal((steps, 2))
    z[:, 1] = ETH_BTC_CORRELATION * z[:, 0] + np.sqrt(1 - ETH_BTC_CORRELATION**2) * z[:, 1]
    chi2 = rng.chisquare((ETH.nu, BTC.nu), size=(steps, 2))
    jumps = rng.random((steps, 2)) < np.array([ETH.jump_intensity, BTC.jump_intensity])
    jump_sizes = rng.standard_normal((steps, 2)) * [ETH.jump_std, BTC.jump_std] + [ETH.jump_mean, BTC.jump_mean]
    eth = _garch_t_paths(ETH, z[:, 0], chi2[:, 0], jumps[:, 0], jump_sizes[:, 0])
    btc = _garch_t_paths(BTC, z[:, 1], chi2[:, 1], jumps[:, 1], jump_sizes[:, 1])
    discount = _ou(STETH_DISCOUNT, rng.standard_normal(steps + 1))
    peg = _ou(USDC_PEG, rng.standard_normal(steps + 1))

    def anchored(log_returns: np.ndarray, final: float) -> np.ndarray:
        level = np.concatenate([[0.0], np.cumsum(log_returns)])
        return final * np.exp(level - level[-1])

    weth = anchored(eth, anchors["WETH"])
    wsteth = weth * np.exp(discount - discount[-1]) * (anchors["wstETH"] / anchors["WETH"])
    return {
        "WETH": weth,
        "WBTC": anchored(btc, anchors["WBTC"]),
        "wstETH": wsteth,
        "USDC": anchors["USDC"] * np.exp(peg - peg[-1]),
    }
