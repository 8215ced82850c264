"""Real-data policies of a steward firm's two venues sharing one price file, for the multi-policy epoch tests."""

from __future__ import annotations

from pathlib import Path

PRICES = "market/coingecko_hourly_aave_v2_assets_2021_2023.csv"
ASSETS = {
    "WETH": ("0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2", 18, "$600M", "$100M"),
    "WBTC": ("0x2260FAC5E5542a773Aa44fBCfeDf7C193bc2C599", 8, "$250M", "$50M"),
    "LINK": ("0x514910771AF9Ca656af840dff83E8264EcF986CA", 18, "$40M", "$10M"),
}


def policy_text(venue: str, symbols: tuple[str, ...], seed: int = 1) -> str:
    """A real-data Aave v3 policy (rule-based: fast) over markets of the shared CoinGecko file."""
    markets = "".join(
        f"""  - symbol: {s}
    asset: "{ASSETS[s][0]}"
    decimals: {ASSETS[s][1]}
    price_source: {{file: {PRICES}, symbol: {s}}}
    liquidity: {{depth: "{ASSETS[s][2]}", impact: "2%", liquidation_size: "{ASSETS[s][3]}"}}
"""
        for s in symbols
    )
    return f"""version: 1
venue:
  name: {venue}
  kind: lending
  protocol: aave-v3
  chain_id: 1
  addresses:
    pool_configurator: "0x64b761D848206f447Fe2dd461b0c635Ec39EbB27"
    safe: "0x5300A1a15135EA4dc7aD5a167152C01EFc9b192A"
snapshot:
  file: aave/aave_v3_ethereum_reserve_configurations_2023-01.csv
markets:
{markets}risk_appetite:
  coverage: "99%"
  var95_max: "0.5%"
  evar99_max: "2%"
  insolvency_probability_max: "1%"
  min_incentive_over_slippage: "1.5%"
bounds:
  ltv: {{min: "0%", max: "85%"}}
  liquidation_threshold: {{min: "0%", max: "88%"}}
  liquidation_bonus: {{min: "4%", max: "15%"}}
scenarios:
  step: 1h
  lookback: 90d
  as_of: "2023-01-31T00:00:00Z"
  horizon: 72h
  ltv_buffer_horizon: 72h
  seed: {seed}
  volatility: {{model: ewma, half_life: 72h}}
data:
  max_gap: 6h
  repairs: [fill_gaps]
"""


def write_policies(folder: Path) -> list[Path]:
    paths = []
    for venue, symbols in (("firm-venue-a", ("WETH", "WBTC")), ("firm-venue-b", ("WETH", "LINK"))):
        path = folder / f"{venue}.yaml"
        path.write_text(policy_text(venue, symbols))
        paths.append(path)
    return paths


def bundles(out: Path) -> dict[str, bytes]:
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}
