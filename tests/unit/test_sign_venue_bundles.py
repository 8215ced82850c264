"""Signing a perps bundle and a Compound v3 bundle offline: `steward sign` checks their batches by decoding the
signed bytes against recommendation.json (and the breaker policy), refuses a tampered call naming it, simulate
refuses them before any RPC, and their reports carry a signer packet whose numbers are the bundle's own."""

from __future__ import annotations

import json
import shutil
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from derivatives_fixtures import write_data, write_policies
from eth_account import Account
from signer_packet_rows import report_packet_table
from typer.testing import CliRunner

from governance import chain_bundle
from governance.bundle import BundleError, write_bundle
from governance.calls import Call, FunctionAbi
from governance.chain_bundle import load_chain_bundle
from governance.chain_bundle_venues import check_derivative_calls
from governance.cli import app
from governance.pipeline_compound import build_compound_files, gather_compound_inputs
from governance.pipeline_derivatives import build_derivative_files, gather_derivative_inputs
from governance.safe import safe_tx_for_calls, safe_tx_json
from governance.signer_packet import allowed_targets, call_flags
from governance.signing import SigningError, execute_bundle
from governance.simulate import simulate
from risk.policy_load import load_policy

OWNER_KEY = bytes.fromhex("59c6995e998f97a0a8a1b5b3c6c6b1a1b2c3d4e5f60718293a4b5c6d7e8f9012")
PASSWORD = "correct horse battery staple"
REPO = Path(__file__).resolve().parents[2]
SMALL = {"positions: 1000": "positions: 200", "paths: 1000": "paths: 150", "bootstrap_resamples: 200": "bootstrap_resamples: 10"}
UNKNOWN = "0x00000000000000000000000000000000000000dd"  # checksummed (digits only but dd)
runner = CliRunner()


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("venue-bundles")
    write_data(folder)
    write_policies(folder)
    perps = folder / "proposals" / "test-perps" / "2021-05-01"
    write_bundle(build_derivative_files(gather_derivative_inputs(folder / "perps.yaml", data_dir=folder)), perps)
    text = (REPO / "policies" / "compound-v3-example.yaml").read_text()
    for old, new in SMALL.items():
        text = text.replace(old, new)
    (folder / "compound.yaml").write_text(text)
    inputs = gather_compound_inputs(folder / "compound.yaml")
    compound = folder / "proposals" / "steward-demo-compound-v3" / inputs.epoch
    write_bundle(build_compound_files(inputs), compound)
    return {"perps": perps, "compound": compound}


@pytest.fixture(params=["perps", "compound"])
def bundle(request: pytest.FixtureRequest, built: dict[str, Path], tmp_path: Path) -> Path:
    copy = tmp_path / request.param
    shutil.copytree(built[request.param], copy)
    return copy


@pytest.fixture
def keystore(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "owner.json"
    path.write_text(json.dumps(Account.encrypt(OWNER_KEY, PASSWORD, kdf="scrypt", iterations=2**10)))
    monkeypatch.setenv("STEWARD_TEST_PW", PASSWORD)
    return path


def _sign(bundle: Path, keystore: Path) -> Any:
    return runner.invoke(app, ["sign", str(bundle), "--keystore", str(keystore), "--password-env", "STEWARD_TEST_PW"])


def _words(text: str) -> str:
    return " ".join(text.split())  # rich wraps long lines


def test_steward_sign_signs_both_kinds_offline(bundle: Path, keystore: Path) -> None:
    result = _sign(bundle, keystore)
    assert result.exit_code == 0, result.output
    signer = Account.from_key(OWNER_KEY).address
    doc = json.loads((bundle / "signatures" / f"{signer}.json").read_text())
    assert doc["safeTxHash"] == json.loads((bundle / "safe-tx.json").read_text())["safeTxHash"]
    assert load_chain_bundle(bundle).kind == ("derivative" if bundle.name == "perps" else "compound-v3")
    assert runner.invoke(app, ["verify", str(bundle)]).exit_code == 0  # the signature is an attachment verify accepts


def _forge(bundle: Path, index: int, old: int, new: int, extra: list[Any] | None = None) -> None:
    """Rewrite safe-tx.json (consistently hashed) with call `index`'s 32-byte word `old` replaced by `new`."""
    calls = json.loads((bundle / "calls.json").read_text())
    tx = json.loads((bundle / "safe-tx.json").read_text())

    class Raw:
        def __init__(self, to: str, data: str) -> None:
            self.to, self.value, self.data = to, 0, data

    raw = [Raw(c["to"], c["data"]) for c in calls]
    word, forged = f"{old:064x}", f"{new:064x}"
    assert word in raw[index].data
    raw[index].data = raw[index].data.replace(word, forged, 1)
    forged_tx = safe_tx_for_calls([*raw, *(extra or [])], safe_address=tx["safe"], chain_id=int(tx["chainId"]), nonce=int(tx["nonce"]))
    (bundle / "safe-tx.json").write_text(json.dumps(safe_tx_json(forged_tx)))


def test_a_tampered_inner_call_is_refused_by_sign_naming_the_call(bundle: Path, keystore: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # `steward verify` would stop this forgery first (safe-tx.json differs from the rebuild); without it, as if the
    # pipeline itself had encoded a wrong value, the independent decode of the signed bytes must still refuse it.
    monkeypatch.setattr(chain_bundle, "verify_core", lambda *a, **k: None)
    rec = json.loads((bundle / "recommendation.json").read_text())
    if bundle.name == "perps":
        imf = rec["markets"]["ETH"]["parameters"]["imf"]["proposed"]["bps"] * 10**14  # setMargin's imfWad, in wad
        _forge(bundle, 0, imf, imf + 10**16)
        named = "ETH setMargin(bytes32,uint256,uint256) argument 'imfWad'"
    else:
        calls = json.loads((bundle / "calls.json").read_text())
        i = next(i for i, c in enumerate(calls) if c["signature"].startswith("updateAssetSupplyCap") and c["human"].startswith("WETH"))
        cap = int(calls[i]["args"]["newSupplyCap"])
        _forge(bundle, i, cap, cap + 10**18)
        named = f"call {i} (updateAssetSupplyCap on WETH) sends {cap + 10**18}, the recommendation says {cap}"
    result = _sign(bundle, keystore)
    assert result.exit_code == 2
    assert "the Safe transaction's calls do not match recommendation.json" in _words(result.output)
    assert named in _words(result.output)
    assert not (bundle / "signatures").exists()


def test_simulate_refuses_both_kinds_before_any_rpc(bundle: Path) -> None:
    with pytest.raises(BundleError, match="cannot be simulated or reconciled"):
        simulate(bundle, "http://127.0.0.1:1")  # nothing listens there: the refusal comes first
    assert not (bundle / "simulation.json").exists()


def test_execute_refuses_both_kinds_before_any_rpc(bundle: Path) -> None:
    key = bytes.fromhex("8b3a350cf5c34c9194ca85829a2df0ec3153be0318b5e2d3348e872092edffba")
    with pytest.raises(SigningError, match="runs Aave v3 bundles only.*nothing was sent"):
        execute_bundle(bundle, "http://127.0.0.1:1", key)  # nothing listens there: the refusal comes first


def _percent(bps: int) -> str:
    return f"{Decimal(bps) / 100:.2f}%"


def test_the_perps_packet_numbers_are_the_bundles(built: dict[str, Path]) -> None:
    bundle = built["perps"]
    report = (bundle / "report.md").read_text()
    rec = json.loads((bundle / "recommendation.json").read_text())
    calls = json.loads((bundle / "calls.json").read_text())
    state = {(r[0], r[1]): r[2:] for r in report_packet_table(report, "Expected state change")}
    eth_imf = rec["markets"]["ETH"]["parameters"]["imf"]
    assert state[("ETH", "Initial margin (IMF)")][:2] == [_percent(eth_imf["current"]["bps"]), _percent(eth_imf["proposed"]["bps"])]
    cap = rec["markets"]["BTC"]["parameters"]["oi_cap_upper"]
    assert state[("BTC", "OI cap, upper (IMF reaches 100%)")][:2] == ["unknown", f"${int(Decimal(cap['proposed']['usd'])):,}"]
    drop = json.loads((bundle / "breakers.json").read_text())["onchain"][0]
    assert state[("ETH", f"Breaker drop-1h: {drop['label']}")][:2] == [drop["current"], drop["proposed"]]
    decoded = report_packet_table(report, "Calls, decoded")
    args = [(r[3], r[4], r[5].strip("`")) for r in decoded]
    assert len(args) == sum(len(c["args"]) for c in calls)
    assert sorted(raw for _, _, raw in args) == sorted(v for c in calls for v in c["args"].values())  # calls.json sorts keys
    assert ("imfWad", f"{_percent(eth_imf['proposed']['bps'])} (imf)", str(eth_imf["proposed"]["bps"] * 10**14)) in args
    assert ("upper", f"${int(Decimal(cap['proposed']['usd'])):,} (oi_cap_upper)", str(int(Decimal(cap["proposed"]["usd"])) * 10**6)) in args
    assert ("maxDropBps", f"{drop['proposed']} (threshold)", str(int(Decimal(drop["proposed"].rstrip("%")) * 100))) in args
    assert json.loads((bundle / "safe-tx.json").read_text())["safeTxHash"] in report.partition("## Signer packet")[2]
    assert all(c["flags"] == [] for c in calls) and "steward simulate" not in report.partition("### Reproduce and check")[2]
    assert "Signer packet" in (bundle / "report.html").read_text()


def test_the_compound_packet_numbers_are_the_bundles(built: dict[str, Path]) -> None:
    bundle = built["compound"]
    report = (bundle / "report.md").read_text()
    rec = json.loads((bundle / "recommendation.json").read_text())
    calls = json.loads((bundle / "calls.json").read_text())
    state = {(r[0], r[1]): r[2:] for r in report_packet_table(report, "Expected state change")}
    ltv = rec["markets"]["WETH"]["parameters"]["ltv"]
    assert state[("WETH", "Borrow collateral factor (↔ LTV)")][:2] == [_percent(ltv["current"]["bps"]), _percent(ltv["proposed"]["bps"])]
    supply = rec["markets"]["WETH"]["parameters"]["supply_cap"]
    assert state[("WETH", "Supply cap")][:2] == [f"{supply['current']['tokens']:,} WETH", f"{supply['proposed']['tokens']:,} WETH"]
    decoded = [(r[3], r[4], r[5].strip("`")) for r in report_packet_table(report, "Calls, decoded")]
    assert sorted(raw for _, _, raw in decoded) == sorted(v for c in calls for v in c["args"].values())
    assert ("newBorrowCF", _percent(ltv["proposed"]["bps"]), str(ltv["proposed"]["bps"] * 10**14)) in decoded
    assert ("newSupplyCap", f"{supply['proposed']['tokens']:,} WETH", str(supply["proposed"]["tokens"] * 10**18)) in decoded
    assert all(c["flags"] == [] for c in calls)
    assert json.loads((bundle / "safe-tx.json").read_text())["safeTxHash"] in report.partition("## Signer packet")[2]
    assert 'id="signer-packet"' in (bundle / "report.html").read_text()


def test_an_unknown_target_in_a_derivative_batch_is_flagged_and_refused(built: dict[str, Path], tmp_path: Path) -> None:
    bundle = tmp_path / "perps"
    shutil.copytree(built["perps"], bundle)
    policy = load_policy(bundle / "inputs" / "policy.yaml").policy
    allowed = allowed_targets(policy)
    assert "0x00000000000000000000000000000000000000AA" in allowed and UNKNOWN not in allowed
    stray = Call(UNKNOWN, 0, "0xdeadbeef", FunctionAbi("stray", ()), (), "stray call")
    assert call_flags(stray, allowed) == [f"call to {UNKNOWN}: target is not in the allow-list"]
    cb = load_chain_bundle(bundle)
    files = {p.relative_to(bundle).as_posix(): p.read_bytes() for p in bundle.rglob("*") if p.is_file()}
    calls = json.loads(files["calls.json"])
    tx = json.loads(files["safe-tx.json"])

    class Raw:
        def __init__(self, to: str, data: str) -> None:
            self.to, self.value, self.data = to, 0, data

    forged = safe_tx_for_calls([*(Raw(c["to"], c["data"]) for c in calls), Raw(UNKNOWN, "0xdeadbeef")], safe_address=tx["safe"],
                               chain_id=int(tx["chainId"]), nonce=int(tx["nonce"]))
    with pytest.raises(BundleError) as raised:
        check_derivative_calls(forged, json.loads(files["recommendation.json"]), files, cb.policy)
    problems = _words(" ".join(raised.value.problems))
    assert f"call {len(calls)} to {UNKNOWN}: target is not in the allow-list" in problems
    assert f"call {len(calls)} to {UNKNOWN}: selector 0xdeadbeef is not a setter the policy names" in problems
