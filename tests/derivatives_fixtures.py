"""A small synthetic data folder and policies for the derivative pipeline's unit tests (seeded, no real data)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

START = np.datetime64("2021-01-01T00:00:00")
HOURS = 3000


def _stamps(n: int, step_hours: int = 1) -> list[str]:
    return [str(START + np.timedelta64(i * step_hours, "h")).replace("T", " ") for i in range(n)]


def write_data(folder: Path, seed: int = 0) -> Path:
    """prices.csv (wide: ETH, BTC hourly), funding.csv (8-hourly), reference.csv and vault.csv option books."""
    rng = np.random.default_rng(seed)
    eth = 2000.0 * np.exp(np.cumsum(rng.standard_t(4, HOURS) * 0.007))
    btc = 40000.0 * np.exp(np.cumsum(rng.standard_t(4, HOURS) * 0.005))
    folder.mkdir(parents=True, exist_ok=True)
    rows = ["timestamp_utc,ETH,BTC", *(f"{t},{e!r},{b!r}" for t, e, b in zip(_stamps(HOURS), eth.tolist(), btc.tolist(), strict=True))]
    (folder / "prices.csv").write_text("\n".join(rows) + "\n")
    funding = rng.normal(1e-4, 2e-4, HOURS // 8 + 10)
    rows = ["timestamp_utc,funding_rate", *(f"{t},{f!r}" for t, f in zip(_stamps(funding.size, 8), funding.tolist(), strict=True))]
    (folder / "funding.csv").write_text("\n".join(rows) + "\n")
    (folder / "reference.csv").write_text("kind,moneyness_pct,expiry_days,quantity\ncall,100,30,-1\nput,100,30,-1\n")
    (folder / "vault.csv").write_text("kind,moneyness_pct,expiry_days,quantity\ncall,100,30,-100\nput,95,14,-50\n")
    return folder


# The smallest valid breaker policy: one market, one source, one price-band rule (tests mutate it).
MINIMAL_BREAKERS = """\
version: 1
breakers:
  name: t
  markets:
    - symbol: ETH
      sources:
        - {name: a, file: a.csv}
  rules:
    - name: r
      kind: price_band
      threshold: "5%"
"""

BREAKERS = """\
version: 1
breakers:
  name: test-breakers
  markets:
    - symbol: ETH
      sources:
        - {name: file, file: prices.csv, column: ETH}
        - {name: other, file: other.csv, column: close}
      open_interest: {file: oi.csv}   # no such file: an epoch has no open-interest series, so the OI cap is skipped
  rules:
    - name: drop-1h
      kind: price_band
      window: 1h
      direction: down
      threshold: "3%"
      calibrate: {min: "1%", max: "10%", step: "0.5%"}
      current: "20%"
      setters:
        - label: Guardian
          contract: "0x00000000000000000000000000000000000000cc"
          function: setDropBand(bytes32,uint32,uint16)
          args:
            - {name: market, text: ETH-USD}
            - {name: windowSeconds, parameter: window, unit: seconds}
            - {name: maxDropBps, parameter: threshold, unit: bps}
    - {name: spread, kind: divergence, threshold: "2%", detects: false}
    - {name: oi, kind: oi_cap, threshold: "$50M"}
  calibration:
    max_false_alarms_per_month: 2
    max_detection_delay: 24h
    calm_margin: 1d
    crash_windows:
      - {name: window-a, start: "2021-02-10T00:00:00Z", end: "2021-02-11T00:00:00Z"}
"""

PERPS = """\
version: 1
venue:
  name: test-perps
  kind: perps
  protocol: generic
  chain_id: 10
  addresses: {safe: "0x5300A1a15135EA4dc7aD5a167152C01EFc9b192A"}
scenarios: {step: 1h, lookback: 120d, as_of: "2021-05-01T00:00:00Z", seed: 3}
perps:
  safe_nonce: 7
  breakers: breakers.yaml
  markets:
    - symbol: ETH
      price_source: {file: prices.csv, column: ETH}
      liquidation_horizon: 8h
      tail: {kind: filtered-historical, min_history: 200}
      burn_in: 10d
      initial_buffer: "50%"
      liquidity: {depth: "$20M", impact: "1%", liquidation_size: "$1M", incentive: "0.5%"}
      current: {mmf: "3%", imf: "3.5%", liquidation_fee: "1%", oi_cap_upper: "$10M"}
      change_limits:
        mmf: {max_absolute: "5%"}
        imf: {max_absolute: "0.25%"}
        oi_cap_upper: {max_relative: "50%"}
      hedging:
        skew: "$10M"
        horizon: 24h
        max_loss: "3%"
        cost_budget: "2%"
        fee: "0.04%"
        depth: "$20M"
        impact: "1%"
        ratios: ["0%", "50%", "100%"]
        bands: ["5%", "20%"]
      setters:
        - label: Engine
          contract: "0x00000000000000000000000000000000000000AA"
          function: setMargin(bytes32,uint256,uint256)
          args:
            - {name: key, text: ETH-USD}
            - {name: imfWad, parameter: imf, unit: wad}
            - {name: mmfWad, parameter: mmf, unit: wad}
        - label: Vault
          contract: "0x00000000000000000000000000000000000000bb"
          function: setHedge(uint256,uint256)
          args:
            - {name: ratioBps, parameter: hedge_ratio, unit: bps}
            - {name: bandBps, parameter: rebalance_band, unit: bps}
    - symbol: BTC
      price_source: {file: prices.csv, column: BTC}
      liquidation_horizon: 8h
      tail: {kind: normal}
      burn_in: 10d
      initial_buffer: "50%"
      liquidity: {depth: "$50M", impact: "1%", liquidation_size: "$2M"}
      funding: {file: funding.csv}
      setters:
        - contract: "0x00000000000000000000000000000000000000AA"
          function: setCaps(bytes32,uint256,uint256)
          args:
            - {name: key, text: BTC-USD}
            - {name: lower, parameter: oi_cap_lower, unit: e6}
            - {name: upper, parameter: oi_cap_upper, unit: e6}
"""

OPTIONS = """\
version: 1
venue:
  name: test-options
  kind: options
  protocol: generic
  chain_id: 10
  addresses: {safe: "0x5300A1a15135EA4dc7aD5a167152C01EFc9b192A"}
scenarios: {step: 1h, lookback: 120d, as_of: "2021-05-01T00:00:00Z", seed: 3}
options:
  markets:
    - symbol: ETH
      price_source: {file: prices.csv, column: ETH}
      scan_horizon: 24h
      tail: {kind: filtered-historical, min_history: 200}
      burn_in: 10d
      grid: deribit
      extreme_fraction: "20%"
      reference_book: {file: reference.csv}
      current: {scan_range: "10%", vol_shock_up: "40%"}
      change_limits: {scan_range: {max_absolute: "1%"}}
      hedging:
        book: {file: vault.csv}
        max_loss: "20%"
        cost_budget: "5%"
        fee: "0.04%"
        ratios: ["0%", "100%"]
        bands: ["5%"]
      setters:
        - contract: "0x00000000000000000000000000000000000000AA"
          function: setScan(bytes32,uint256,uint256,uint256)
          args:
            - {name: underlying, text: ETH}
            - {name: scan, parameter: scan_range, unit: bps}
            - {name: up, parameter: vol_shock_up, unit: ray}
            - {name: down, parameter: vol_shock_down, unit: e6}
"""


def write_policies(folder: Path) -> tuple[Path, Path]:
    (folder / "breakers.yaml").write_text(BREAKERS)
    (folder / "perps.yaml").write_text(PERPS)
    (folder / "options.yaml").write_text(OPTIONS)
    return folder / "perps.yaml", folder / "options.yaml"
