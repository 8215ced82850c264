"""The demo market's constants are what fitting the shared real data gives (risk/demo/synthetic.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from risk.demo import synthetic
from risk.demo.fit import fit_garch_t_jump, fit_ou

pytestmark = pytest.mark.realdata


def _binance_closes(shared_data, pair: str) -> pd.DataFrame:
    df = pd.read_csv(shared_data / "market" / f"binance_{pair}_1h_cdd.csv", parse_dates=["timestamp_utc"]).iloc[1:]
    return df[(df.timestamp_utc >= "2019-01-01") & (df.timestamp_utc < "2021-12-01")]


@pytest.mark.parametrize(("pair", "expected"), [("ethusdt", synthetic.ETH), ("btcusdt", synthetic.BTC)])
def test_garch_t_jump_constants_are_refit_from_the_shared_data(shared_data, pair, expected) -> None:
    fitted = fit_garch_t_jump(_binance_closes(shared_data, pair).close.to_numpy())
    for name in ("omega", "alpha", "beta", "nu", "start_variance", "jump_intensity", "jump_mean", "jump_std"):
        assert getattr(fitted, name) == pytest.approx(getattr(expected, name), rel=1e-4), name


def test_eth_btc_correlation_is_refit(shared_data) -> None:
    e = _binance_closes(shared_data, "ethusdt").set_index("timestamp_utc").close
    b = _binance_closes(shared_data, "btcusdt").set_index("timestamp_utc").close
    j = pd.concat([e, b], axis=1, keys=["e", "b"], join="inner")
    rho = np.corrcoef(np.diff(np.log(j.e.to_numpy())), np.diff(np.log(j.b.to_numpy())))[0, 1]
    assert rho == pytest.approx(synthetic.ETH_BTC_CORRELATION, rel=1e-9)


def test_peg_processes_are_refit(shared_data) -> None:
    usdc = pd.read_csv(shared_data / "market" / "binance_usdcusdt_1h_cdd.csv")
    got = fit_ou(np.log(usdc.close.to_numpy()))
    assert (got.phi, got.sigma) == pytest.approx((synthetic.USDC_PEG.phi, synthetic.USDC_PEG.sigma), rel=1e-9)
    cg = pd.read_csv(shared_data / "market" / "coingecko_hourly_aave_v2_assets_2021_2023.csv", parse_dates=["timestamp_utc"])
    cg["h"] = cg.timestamp_utc.dt.floor("h")
    w = cg.pivot_table(index="h", columns="symbol", values="price_usd", aggfunc="last")[["WETH", "stETH"]].dropna()
    got = fit_ou(np.log(w.stETH.to_numpy() / w.WETH.to_numpy()))
    assert (got.phi, got.sigma) == pytest.approx((synthetic.STETH_DISCOUNT.phi, synthetic.STETH_DISCOUNT.sigma), rel=1e-9)


def test_synthetic_volatility_is_in_the_range_of_the_real_data() -> None:
    """The generated history's hourly volatility is within a factor of 2 of the fitted sample's."""
    paths = synthetic.generate(20231031, {"WETH": 1800.0, "WBTC": 35000.0, "wstETH": 2000.0, "USDC": 1.0})
    for sym, model in (("WETH", synthetic.ETH), ("WBTC", synthetic.BTC)):
        realised = np.std(np.diff(np.log(paths[sym])))
        assert 0.5 < realised / np.sqrt(model.start_variance) < 2.0, sym
