"""governance.governor: the proposal id, the timelock operation id, the description and governor.json.

Independent references: the ABI encoding of `hashProposal`'s and `hashOperationBatch`'s arguments
written out word by word here (not eth-abi), and the offline demo epoch run through the pipeline.
The e2e tests check the same ids against the devnet's real Governor and TimelockController.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from eth_utils import keccak, to_checksum_address
from hypothesis import given, settings
from hypothesis import strategies as st
from jinja2 import UndefinedError
from typer.testing import CliRunner

from governance import cli
from governance.bundle import BundleError, write_bundle
from governance.epoch_inputs import DEMO_POLICY, gather_inputs
from governance.governor import (
    GOVERNOR_JSON,
    TEMPLATE,
    GovernorError,
    GovernorProposal,
    proposal_from_json,
    proposal_id,
    timelock_operation_id,
    timelock_salt,
)
from governance.governor_chain import load_governor_bundle
from governance.pipeline import bundle_dir
from governance.report import environment
from risk.policy_load import check_policy_text

GOVERNOR = "0x51A1ceB83B83F1985a81C295d1fF28Afef186E02"
TIMELOCK = "0x8A791620dd6260079BF849Dc5567aDC3F2FdC318"


# --- ABI encoding by hand: 32-byte words, head offsets, tails -------------------------------------


def _word(n: int) -> bytes:
    return n.to_bytes(32, "big")


def _bytes_tail(b: bytes) -> bytes:
    return _word(len(b)) + b + bytes(-len(b) % 32)


def _bytes_array(items: list[bytes]) -> bytes:
    tails = [_bytes_tail(b) for b in items]
    offsets, pos = [], 32 * len(items)  # relative to the first word after the length
    for tail in tails:
        offsets.append(_word(pos))
        pos += len(tail)
    return _word(len(items)) + b"".join(offsets) + b"".join(tails)


def _hand_encoded(targets: list[str], values: list[int], calldatas: list[bytes], statics: list[bytes]) -> bytes:
    """abi.encode(address[], uint256[], bytes[], <bytes32 statics...>)."""
    tails = [
        _word(len(targets)) + b"".join(bytes(12) + bytes.fromhex(t[2:]) for t in targets),
        _word(len(values)) + b"".join(_word(v) for v in values),
        _bytes_array(calldatas),
    ]
    head_size = 32 * (3 + len(statics))
    offsets = [head_size, head_size + len(tails[0]), head_size + len(tails[0]) + len(tails[1])]
    return b"".join(_word(o) for o in offsets) + b"".join(statics) + b"".join(tails)


addresses = st.binary(min_size=20, max_size=20).map(lambda b: to_checksum_address("0x" + b.hex()))
actions = st.lists(st.tuples(addresses, st.integers(0, 2**256 - 1), st.binary(max_size=100)), min_size=1, max_size=12)


@settings(max_examples=60, deadline=None)
@given(actions=actions, description=st.text(max_size=200))
def test_proposal_id_is_the_hash_of_the_hand_encoded_arguments(actions, description):
    targets, values, calldatas = (list(x) for x in zip(*actions, strict=True))
    descr_hash = keccak(description.encode("utf-8"))
    want = int.from_bytes(keccak(_hand_encoded(targets, values, calldatas, [descr_hash])), "big")
    assert proposal_id(targets, values, calldatas, descr_hash) == want
    proposal = GovernorProposal(GOVERNOR, 1337, tuple(targets), tuple(values), tuple(calldatas), description)
    assert proposal.proposal_id == want


@settings(max_examples=30, deadline=None)
@given(actions=actions, description=st.text(max_size=50), governor=addresses)
def test_timelock_operation_id_is_hash_operation_batch_with_the_governors_salt(actions, description, governor):
    targets, values, calldatas = (list(x) for x in zip(*actions, strict=True))
    descr_hash = keccak(description.encode("utf-8"))
    # bytes20(governor) ^ descriptionHash: the address XORs the first 20 bytes, the last 12 stay
    raw = bytes.fromhex(governor[2:])
    salt = bytes(a ^ b for a, b in zip(raw, descr_hash[:20], strict=True)) + descr_hash[20:]
    assert timelock_salt(governor, descr_hash) == salt
    want = keccak(_hand_encoded(targets, values, calldatas, [bytes(32), salt]))
    assert timelock_operation_id(targets, values, calldatas, salt) == want
    proposal = GovernorProposal(governor, 1, tuple(targets), tuple(values), tuple(calldatas), description, timelock=TIMELOCK)
    assert proposal.timelock_operation_id == want


def test_the_description_hash_is_over_utf8_bytes():
    text = "LTV 80.50% → 80.00% — epoch"
    proposal = GovernorProposal(GOVERNOR, 1, (GOVERNOR,), (0,), (b"",), text)
    assert proposal.description_hash == keccak(text.encode("utf-8")) != keccak(text.encode("utf-16"))


@pytest.mark.parametrize(
    ("targets", "values", "calldatas"),
    [((), (), ()), ((GOVERNOR,), (0, 0), (b"",)), ((GOVERNOR,), (-1,), (b"",)), ((GOVERNOR,), (2**256,), (b"",))],
)
def test_a_malformed_proposal_is_refused(targets, values, calldatas):
    with pytest.raises(GovernorError):
        GovernorProposal(GOVERNOR, 1, targets, values, calldatas, "x")


# --- the offline demo epoch with a governor ---------------------------------------------------------


def _policy_with_governor(tmp_path: Path, extra: str) -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(DEMO_POLICY.read_text() + f"governor:\n  address: \"{GOVERNOR}\"\n  timelock: \"{TIMELOCK}\"\n{extra}")
    return path


@pytest.fixture(scope="module")
def demo_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, bytes], Path]:
    tmp = tmp_path_factory.mktemp("gov-demo")
    from governance import pipeline

    inputs = gather_inputs(_policy_with_governor(tmp, "  max_actions: 12\n"))
    files = pipeline.build_files(inputs)
    again = pipeline.build_files(inputs)
    target = bundle_dir(tmp / "out", inputs)
    write_bundle(files, target)
    assert again == files  # same inputs, same bytes
    return files, target


def test_governor_json_carries_the_safe_batchs_calls_with_numbers_as_strings(demo_files):
    files, _ = demo_files
    doc = json.loads(files[GOVERNOR_JSON])
    calls = json.loads(files["calls.json"])
    assert [(c["to"], c["value"], c["data"]) for c in calls] == list(
        zip(doc["targets"], doc["values"], doc["calldatas"], strict=True)
    )
    assert doc["governor"] == GOVERNOR and doc["timelock"] == TIMELOCK and doc["chainId"] == "1337"
    assert all(isinstance(v, str) for v in doc["values"]) and doc["proposalId"].isdigit()
    proposal = proposal_from_json(doc)
    assert str(proposal.proposal_id) == doc["proposalId"]
    assert "0x" + proposal.description_hash.hex() == doc["descriptionHash"]
    manifest = json.loads(files["manifest.json"])
    assert GOVERNOR_JSON in manifest["files"]


def test_the_description_names_the_changes_inputs_and_verify_command(demo_files):
    files, _ = demo_files
    description = json.loads(files[GOVERNOR_JSON])["description"]
    manifest = json.loads(files["manifest.json"])
    rec = json.loads(files["recommendation.json"])
    for symbol, market in rec["markets"].items():
        for change in market["parameters"].values():
            if change["proposed"] != change["current"] and "percent" in change["proposed"]:
                row = f"| {symbol} |"
                assert row in description
                assert f"{change['current']['percent']} | {change['proposed']['percent']} |" in description
    for digest in manifest["inputs"].values():
        assert f"`{digest}`" in description
    assert f"steward verify proposals/{rec['venue']}/{rec['epoch']}" in description
    assert f"steward {manifest['steward_version']}" in description


def test_the_template_fails_on_a_missing_value():
    template = environment().get_template(TEMPLATE)
    context = {
        "venue": "v", "protocol": "aave-v3", "chain_id": 1, "epoch": "e", "as_of": "t", "changes": [], "actions": [],
        "inputs": {"policy": "a", "prices": "b", "snapshot": "c"}, "bundle_path": "p", "version": "0", "block": None,
    }
    assert "steward verify p" in template.render(**context)
    for key in ("inputs", "bundle_path", "version"):
        with pytest.raises(UndefinedError):
            template.render(**{k: v for k, v in context.items() if k != key})


def test_the_bundle_verifies_and_loads_and_a_changed_description_is_caught(demo_files, tmp_path, monkeypatch):
    _, target = demo_files
    gb = load_governor_bundle(target)  # runs `steward verify` first, which rebuilds governor.json too
    assert gb.proposal.proposal_id == int(json.loads((target / GOVERNOR_JSON).read_text())["proposalId"])

    forged = tmp_path / "forged"
    shutil.copytree(target, forged)
    path = forged / GOVERNOR_JSON
    doc = json.loads(path.read_text())
    doc["description"] = doc["description"].replace("Risk parameter update", "Routine update")
    path.write_text(json.dumps(doc))
    with pytest.raises(GovernorError, match="proposalId .* does not follow"):
        proposal_from_json(doc)
    with pytest.raises(BundleError) as raised:
        load_governor_bundle(forged)
    assert any("governor.json" in p for p in raised.value.problems)


def test_more_calls_than_the_policys_action_limit_fail_the_epoch(tmp_path, monkeypatch, demo_files):
    from governance import pipeline

    n = len(json.loads(demo_files[0][GOVERNOR_JSON])["targets"])
    inputs = gather_inputs(_policy_with_governor(tmp_path, f"  max_actions: {n - 1}\n"))
    with pytest.raises(GovernorError) as raised:
        pipeline.build_files(inputs)
    assert raised.value.cause == (f"{n} calls, but one proposal to governor {GOVERNOR} may carry at most {n - 1} "
                                  "actions (governor.max_actions)")


def test_the_governor_section_of_a_policy_is_strict(tmp_path):
    for extra, problem in (("  max_actions: 0\n", "max_actions"), ("  maximum: 3\n", "maximum"),
                           ("  max_actions: \"10\"\n", "max_actions")):
        text = _policy_with_governor(tmp_path, extra).read_bytes()
        policy, problems = check_policy_text(text, "policy.yaml")
        assert policy is None and any(problem in str(p) for p in problems), (extra, problems)
    policy, _ = check_policy_text(_policy_with_governor(tmp_path, "").read_bytes(), "policy.yaml")
    assert policy is not None and policy.governor is not None and policy.governor.max_actions == 10


def test_without_a_governor_section_the_bundle_has_no_governor_json(monkeypatch):
    from governance import pipeline

    assert GOVERNOR_JSON not in pipeline.build_files(gather_inputs(None))


def _cli(*args: object) -> tuple[int, str]:
    result = CliRunner().invoke(cli.app, [str(a) for a in args])  # the real command line
    return result.exit_code, result.output


def test_propose_needs_a_route_and_a_bundle_with_governor_json(tmp_path, monkeypatch):
    from governance import pipeline

    inputs = gather_inputs(None)  # the demo policy has no governor section
    target = bundle_dir(tmp_path / "out", inputs)
    write_bundle(pipeline.build_files(inputs), target)
    keystore = tmp_path / "none.json"  # never read: both refusals come first
    code, out = _cli("propose", target, "--rpc", "http://127.0.0.1:9", "--keystore", keystore)
    assert code == 2 and "give exactly one of --safe-service URL or --governor" in out
    code, out = _cli("propose", target, "--governor", "--rpc", "http://127.0.0.1:9", "--keystore", keystore)
    assert code == 2 and f"{target}/governor.json is missing" in out and "`governor:` section" in out
