"""governance.pipeline_derivatives on a synthetic data folder: the bundle pins every input, rebuilds from them
byte for byte, packages the setter calls into a Safe batch, and measures the named breaker policy."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from derivatives_fixtures import write_data, write_policies

from governance.bundle import check_against_manifest, diff_files, load_manifest, read_bundle, sha256, write_bundle
from governance.calls import decode_call
from governance.pipeline_derivatives import (
    build_derivative_files,
    derivative_inputs_from_bundle,
    gather_derivative_inputs,
    is_derivative_bundle,
)
from governance.safe import decode_tx_builder_batch, verify_tx_builder_checksum
from governance.venues.generic import function_abi
from risk.breaker_policy import check_breaker_policy_text
from risk.errors import DataError, PolicyError
from risk.policy_load import load_policy


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("derivative-data")
    write_data(d)
    write_policies(d)
    return d


@pytest.fixture(scope="module")
def perps_bundle(folder: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, bytes]]:
    files = build_derivative_files(gather_derivative_inputs(folder / "perps.yaml", data_dir=folder))
    target = tmp_path_factory.mktemp("bundles") / "test-perps" / "2021-05-01"
    write_bundle(files, target)
    return target, files


def _rebuild(bundle: Path) -> list[str]:
    core = read_bundle(bundle)
    return diff_files(build_derivative_files(derivative_inputs_from_bundle(core, bundle)), core, bundle)


def test_the_bundle_pins_every_input(folder: Path, perps_bundle: tuple[Path, dict[str, bytes]]) -> None:
    bundle, files = perps_bundle
    assert sorted(files) == ["breakers.json", "calls.json", "inputs/breakers.yaml", "inputs/funding-BTC.csv", "inputs/policy.yaml",
                             "inputs/prices.csv", "manifest.json", "recommendation.json", "report.html", "report.md", "safe-tx-builder.json",
                             "safe-tx.json"]
    assert files["inputs/funding-BTC.csv"] == (folder / "funding.csv").read_bytes()  # verbatim
    assert files["inputs/breakers.yaml"] == (folder / "breakers.yaml").read_bytes()
    manifest = json.loads(files["manifest.json"])
    assert manifest["seed"] == 3 and manifest["epoch"] == "2021-05-01" and manifest["block"] is None
    assert [s["name"] for s in manifest["sources"]] == ["funding.csv", "prices.csv"]
    assert manifest["sources"][1]["sha256"] == sha256((folder / "prices.csv").read_bytes())
    assert manifest["inputs"]["funding-BTC"] == sha256(files["inputs/funding-BTC.csv"])
    assert check_against_manifest(read_bundle(bundle), load_manifest(read_bundle(bundle), bundle), bundle) == []
    # 120 days of hourly closes up to as_of, both ends included
    assert files["inputs/prices.csv"].count(b"\n") == 1 + 120 * 24 + 1


def test_the_bundle_rebuilds_byte_for_byte_and_a_change_is_caught(perps_bundle: tuple[Path, dict[str, bytes]]) -> None:
    bundle, _ = perps_bundle
    assert is_derivative_bundle(read_bundle(bundle))
    assert _rebuild(bundle) == []
    rec = bundle / "recommendation.json"
    original = rec.read_bytes()
    try:
        rec.write_bytes(original.replace(b'"bps": 800', b'"bps": 700', 1))
        assert _rebuild(bundle) == [f"{bundle}/recommendation.json: differs from the rebuild from inputs/"]
    finally:
        rec.write_bytes(original)


def test_the_calls_and_the_safe_batch_carry_the_recommendation(folder: Path, perps_bundle: tuple[Path, dict[str, bytes]]) -> None:
    _, files = perps_bundle
    rec = json.loads(files["recommendation.json"])
    calls = json.loads(files["calls.json"])
    policy = load_policy(folder / "perps.yaml").policy
    eth_setters = policy.perps.markets[0].setters  # type: ignore[union-attr]
    margin = next(c for c in calls if c["signature"] == "setMargin(bytes32,uint256,uint256)")
    _, imf, mmf = decode_call(function_abi(eth_setters[0]), margin["data"])
    eth = rec["markets"]["ETH"]["parameters"]
    assert (imf, mmf) == (eth["imf"]["proposed"]["bps"] * 10**14, eth["mmf"]["proposed"]["bps"] * 10**14)
    hedge = next(c for c in calls if c["signature"] == "setHedge(uint256,uint256)")
    assert hedge["args"] == {"ratioBps": str(rec["markets"]["ETH"]["parameters"]["hedge_ratio"]["proposed"]["bps"]),
                             "bandBps": str(rec["markets"]["ETH"]["parameters"]["rebalance_band"]["proposed"]["bps"])}
    batch = json.loads(files["safe-tx-builder.json"])
    assert verify_tx_builder_checksum(batch)
    assert decode_tx_builder_batch(batch) == [(c["to"], int(c["value"]), c["data"]) for c in calls]
    safe_tx = json.loads(files["safe-tx.json"])
    assert int(safe_tx["nonce"]) == 7 and safe_tx["safe"] == "0x5300A1a15135EA4dc7aD5a167152C01EFc9b192A"
    report = files["report.md"].decode()
    assert safe_tx["safeTxHash"] in report and margin["data"] in report


def test_breakers_are_measured_on_the_pinned_prices(perps_bundle: tuple[Path, dict[str, bytes]]) -> None:
    _, files = perps_bundle
    doc = json.loads(files["breakers.json"])
    assert doc["name"] == "test-breakers" and doc["measured_on"].startswith("inputs/prices.csv (2881 steps")
    (rule,) = doc["rules"]  # the divergence rule needs a second source: skipped, and said so
    assert rule["rule"] == "drop-1h" and rule["policy"]["threshold"] == "3%"
    assert doc["skipped"] == ["ETH spread: skipped (divergence needs 2 sources, 1 given)", "ETH oi: skipped (no open-interest series)"]
    assert rule["policy"]["false_alarms_per_month"] == pytest.approx(rule["policy"]["false_alarms"] / rule["policy"]["calm_months"])
    report = files["report.md"].decode()
    assert "## Circuit breakers: thresholds and their measured rates" in report and "| drop-1h | price_band | ETH | 3% |" in report
    assert "Open-interest caps (ETH oi) are not measured: the data hold no real open-interest history" in report


def test_the_calibrated_breaker_threshold_is_packaged_in_the_same_safe_batch(perps_bundle: tuple[Path, dict[str, bytes]]) -> None:
    _, files = perps_bundle
    doc = json.loads(files["breakers.json"])
    (change,) = doc["onchain"]
    (rule,) = doc["rules"]
    assert change["rule"] == "drop-1h" and change["source"] == "calibrated" and change["current"] == "20.00%"
    assert float(change["proposed"].rstrip("%")) / 100 == pytest.approx(rule["calibrated"]["threshold_value"])  # no change limit: the calibrated one
    calls = json.loads(files["calls.json"])
    (row,) = [c for c in calls if c.get("rule") == "drop-1h"]
    assert calls[-1] == row  # after the venue's own calls
    function = function_abi(check_breaker_policy_text(files["inputs/breakers.yaml"], "b")[0].breakers.rules[0].setters[0])  # type: ignore[union-attr]
    key, window, bps = decode_call(function, row["data"])
    assert (key, window) == (b"ETH-USD".ljust(32, b"\0"), 3600) and bps / 10_000 == pytest.approx(rule["calibrated"]["threshold_value"])
    batch = json.loads(files["safe-tx-builder.json"])
    assert decode_tx_builder_batch(batch)[-1] == (row["to"], 0, row["data"])
    report = files["report.md"].decode()
    assert f"**ETH price drop over 1h 20.00% → {change['proposed']} (rule drop-1h)**" in report
    assert f"| drop-1h | ETH price drop over 1h | 20.00% | {change['proposed']} | calibrated |" in report


def test_an_options_bundle_pins_its_book_files_and_says_what_stands_in_for_implied_volatility(folder: Path, tmp_path: Path) -> None:
    files = build_derivative_files(gather_derivative_inputs(folder / "options.yaml", data_dir=folder))
    assert files["inputs/book-ETH-reference.csv"] == (folder / "reference.csv").read_bytes()
    assert files["inputs/book-ETH-vault.csv"] == (folder / "vault.csv").read_bytes()
    assert "realised volatility (EWMA) stands in for implied volatility" in files["report.md"].decode()
    write_bundle(files, tmp_path / "b")
    assert _rebuild(tmp_path / "b") == []


def test_missing_inputs_are_named(folder: Path, tmp_path: Path) -> None:
    for name in ("prices.csv", "breakers.yaml", "perps.yaml"):
        (tmp_path / name).write_bytes((folder / name).read_bytes())
    with pytest.raises(DataError, match="market BTC funding: file funding.csv not found under"):
        gather_derivative_inputs(tmp_path / "perps.yaml", data_dir=tmp_path)
    (tmp_path / "funding.csv").write_bytes((folder / "funding.csv").read_bytes())
    (tmp_path / "breakers.yaml").unlink()
    with pytest.raises(PolicyError, match="breaker policy breakers.yaml not found next to it"):
        gather_derivative_inputs(tmp_path / "perps.yaml", data_dir=tmp_path)


def test_a_lending_bundle_is_not_taken_for_a_derivative_one() -> None:
    lending = (Path(__file__).resolve().parents[2] / "policies" / "aave-v3-ethereum.yaml").read_bytes()
    assert not is_derivative_bundle({"inputs/policy.yaml": lending})
    assert not is_derivative_bundle({})
