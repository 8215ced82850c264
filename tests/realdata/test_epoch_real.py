"""A real-data epoch: Aave v3 Ethereum on CoinGecko prices, 2023-01 configuration (../shared/data)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from governance.cli import app

pytestmark = pytest.mark.realdata
POLICY = Path(__file__).resolve().parents[2] / "policies" / "aave-v3-ethereum.yaml"
runner = CliRunner()


@pytest.fixture(scope="module")
def bundle(shared_data, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("real")
    result = runner.invoke(app, ["epoch", str(POLICY), "--data", str(shared_data), "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out / "aave-v3-ethereum" / "2023-01-31"


def test_real_epoch_verifies(bundle: Path) -> None:
    result = runner.invoke(app, ["verify", str(bundle)])
    assert result.exit_code == 0, result.output


def test_real_epoch_pins_the_sources_and_repairs(bundle: Path, shared_data: Path) -> None:
    import hashlib

    manifest = json.loads((bundle / "manifest.json").read_text())
    (source,) = manifest["sources"]
    assert source["name"] == "market/coingecko_hourly_aave_v2_assets_2021_2023.csv"
    assert source["sha256"] == hashlib.sha256((shared_data / source["name"]).read_bytes()).hexdigest()
    # the 12 h CoinGecko hole of 2022-10-07 is repaired, as the policy allows, and recorded
    weth = [r for r in manifest["repairs"] if "WETH" in r["detail"]]
    assert weth and weth[0]["kind"] == "fill_gaps" and weth[0]["rows"] == [214864]


def test_real_epoch_values(bundle: Path) -> None:
    rec = json.loads((bundle / "recommendation.json").read_text())
    weth = rec["markets"]["WETH"]
    # The 2023-01 configuration, as the snapshot has it.
    assert weth["parameters"]["liquidation_threshold"]["current"]["bps"] == 8250
    assert rec["markets"]["WBTC"]["parameters"]["liquidation_bonus"]["current"]["bps"] == 625
    # Prices at as_of come from the data (the snapshot had none): WETH traded near $1,560 on 2023-01-31.
    assert 1500 < weth["metrics"]["price_usd"] < 1650
    # Stablecoins are far calmer than WETH over the same 90 days. (CoinGecko's USDC quotes carry about
    # 0.1% hourly noise, which EWMA reads as ~15% annualised: real, and a reason for noise-robust estimators.)
    usdc = rec["markets"]["USDC"]["metrics"]["sigma_annualised"]
    assert 0.05 < usdc < 0.2 and usdc < weth["metrics"]["sigma_annualised"] / 2
    # Every proposed move is within the 50 bps steward limit.
    for market in rec["markets"].values():
        for name in ("ltv", "liquidation_threshold", "liquidation_bonus"):
            p = market["parameters"][name]
            assert abs(p["proposed"]["bps"] - p["current"]["bps"]) <= 50
    snapshot = json.loads((bundle / "inputs" / "snapshot.json").read_text())
    assert "taken from the market data at 2023-01-31T00:00:00Z" in snapshot["source"]
