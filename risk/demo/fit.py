"""Fit the demo market's models to real prices (the source of the constants in `synthetic.py`).

Run by `tests/realdata/test_demo_fit.py` on ../shared/data; not used at run time.
"""

from __future__ import annotations

import numpy as np
from arch import arch_model
from scipy import stats

from risk.demo.synthetic import GarchTJump, OrnsteinUhlenbeck

JUMP_THRESHOLD = 6.0  # standardised residuals beyond this count as jump candidates


def fit_garch_t_jump(close: np.ndarray) -> GarchTJump:
    """GARCH(1,1)-t on hourly log returns (in percent for the optimiser, reported in decimals)."""
    pct = 100.0 * np.diff(np.log(close))
    res = arch_model(pct, mean="Zero", vol="GARCH", p=1, q=1, dist="t").fit(disp="off")
    p = res.params
    nu = float(p["nu"])
    z = pct / res.conditional_volatility
    tail = np.abs(z) > JUMP_THRESHOLD
    implied = 2.0 * stats.t.sf(JUMP_THRESHOLD * np.sqrt(nu / (nu - 2.0)), nu)
    jumps = pct[tail] / 100.0
    return GarchTJump(
        omega=float(p["omega"]) * 1e-4,
        alpha=float(p["alpha[1]"]),
        beta=float(p["beta[1]"]),
        nu=nu,
        start_variance=float(np.var(pct / 100.0)),
        jump_intensity=float(max(0.0, tail.mean() - implied)),
        jump_mean=float(jumps.mean()),
        jump_std=float(jumps.std()),
    )


def fit_ou(log_deviation: np.ndarray) -> OrnsteinUhlenbeck:
    """AR(1) through the origin: phi by least squares, sigma from the residuals."""
    x0, x1 = log_deviation[:-1], log_deviation[1:]
    phi = float(np.dot(x0, x1) / np.dot(x0, x0))
    return OrnsteinUhlenbeck(phi=phi, sigma=float(np.std(x1 - phi * x0)))
