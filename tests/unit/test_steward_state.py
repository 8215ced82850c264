"""`steward epoch --rpc` with a routed policy: the RiskSteward's limits, timelocks and restrictions are read at
the snapshot's block, pinned as inputs/steward.json, and routing uses them instead of the policy's copy.

The whole Aave read cannot be served by a stand-in node, so the seams are tested: the steward read at a block
(EthCallStandin), the pinned file's round trip, and an epoch built from a pinned state (demo policy + routing).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from pathlib import Path

import pytest
from eth_abi import encode as abi_encode
from eth_call_standin import EthCallStandin

from governance.bundle import BundleError, write_bundle
from governance.chain import ChainError, connect
from governance.chain_bundle import load_chain_bundle
from governance.epoch_inputs import DEMO_POLICY, DEMO_SNAPSHOT, gather_inputs, inputs_from_bundle
from governance.pipeline import build_files, bundle_dir
from governance.venues.aave_steward import GET_RISK_CONFIG, GET_TIMELOCK, IS_ADDRESS_RESTRICTED, RISK_COUNCIL
from governance.venues.aave_steward_state import (
    INPUT_STEWARD,
    parse_steward_state,
    read_steward_state,
    steward_state_bytes,
)
from governance.verify import verify_bundle
from risk.errors import StewardError
from risk.policy_load import load_policy
from risk.policy_routing import Routing, StewardLimits, StewardParamLimit
from risk.routing_chain import StewardState, disagreements, routing_time
from risk.snapshot import parse_snapshot_json
from risk.units import Duration, Ratio

STEWARD = "0x00000000000000000000000000000000000000A1"
GOVERNOR = "0x51A1ceB83B83F1985a81C295d1fF28Afef186E02"
ASSETS = {
    "WETH": "0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2",
    "WBTC": "0x2260FAC5E5542a773Aa44fBCfeDf7C193bc2C599",
    "wstETH": "0x7f39C581F595B53c5cb19bD0b3f8dA6c935E2Ca0",
    "USDC": "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48",
}
BLOCK = 18_460_000
AS_OF = dt.datetime(2023, 10, 31, tzinfo=dt.UTC)  # the demo market's last step
DAY = 86_400
ROUTING = (
    "routing:\n"
    f'  steward: "{STEWARD}"\n'
    "  limits:\n"
    '    supply_cap: {max_change: "50%", min_delay: "3d"}\n'
    '    borrow_cap: {max_change: "50%", min_delay: "3d"}\n'
    "  restricted_markets: [WBTC]\n"
)


def _policy_path(tmp: Path) -> Path:
    path = tmp / "policy.yaml"
    path.write_text(DEMO_POLICY.read_text() + f'governor:\n  address: "{GOVERNOR}"\n' + ROUTING)
    return path


def _limits(**changes: tuple[str, str]) -> StewardLimits:
    values = {name: StewardParamLimit(max_change=Ratio.parse(m), min_delay=Duration.parse(d)) for name, (m, d) in changes.items()}
    return StewardLimits(**values)


# --- the read at a block --------------------------------------------------------------------------


DEMO_SAFE = "0x5300A1a15135EA4dc7aD5a167152C01EFc9b192A"  # venue.addresses.safe of the demo policy


def _answers(restricted: set[str], supply_cap_update: int, council: str = DEMO_SAFE) -> dict[tuple[str, str], bytes]:
    pairs = [(3 * DAY, 50)] * 3 + [(2 * DAY, 3_000), (3 * DAY, 10_000), (3 * DAY, 2_000)] + [(3 * DAY, 100)] * 2
    pairs += [(3 * DAY, 2_000), (3 * DAY, 300), (DAY, 500), (DAY, 500)]
    answers = {(STEWARD, "0x" + GET_RISK_CONFIG.encode().hex()): abi_encode(list(GET_RISK_CONFIG.outputs), [tuple(pairs)])}
    for symbol, asset in ASSETS.items():
        debounce = (supply_cap_update if symbol == "WETH" else 0,) + (0,) * 10
        answers[(STEWARD, "0x" + GET_TIMELOCK.encode(asset).hex())] = abi_encode(list(GET_TIMELOCK.outputs), [debounce])
        answers[(STEWARD, "0x" + IS_ADDRESS_RESTRICTED.encode(asset).hex())] = abi_encode(["bool"], [symbol in restricted])
    answers[(STEWARD, "0x" + RISK_COUNCIL.encode().hex())] = abi_encode(["address"], [council])
    return answers


def test_the_steward_state_is_read_at_the_snapshot_s_block(tmp_path: Path) -> None:
    policy = load_policy(_policy_path(tmp_path)).policy
    updated = int(AS_OF.timestamp()) - DAY
    answers = _answers({"USDC"}, updated)
    with EthCallStandin(1337, answers, codes={STEWARD: b"\x60\x80"}, block_times={BLOCK: int(AS_OF.timestamp())}) as node:
        state = read_steward_state(connect(node.url, expected_chain_id=1337), policy, block=BLOCK)
    assert state is not None
    assert (state.steward, state.chain_id, state.block, state.block_time) == (STEWARD, 1337, BLOCK, AS_OF)
    assert state.limits.supply_cap.max_change_bps == 3_000 and state.limits.supply_cap.min_delay.seconds == 2 * DAY
    assert state.limits.ltv.max_change_bps == 50
    assert dict(state.last_updates) == {("WETH", "supply_cap"): dt.datetime.fromtimestamp(updated, dt.UTC)}
    assert state.restricted == frozenset({"USDC"})
    assert {block for _, _, block in node.calls} == {hex(BLOCK)}  # every read at the pinned block


def test_a_steward_without_code_at_the_block_is_named(tmp_path: Path) -> None:
    policy = load_policy(_policy_path(tmp_path)).policy
    with EthCallStandin(1337, _answers(set(), 0)) as node, pytest.raises(ChainError) as raised:
        read_steward_state(connect(node.url, expected_chain_id=1337), policy, block=BLOCK)
    assert raised.value.cause == f"the RiskSteward {STEWARD} (routing.steward in the policy) has no code on chain 1337 at block {BLOCK}"
    assert "remove routing.steward" in raised.value.hint and "deployed" in raised.value.hint
    assert not [c for c in node.calls]  # nothing read from an empty address


def test_a_safe_that_is_not_the_steward_s_council_is_refused(tmp_path: Path) -> None:
    policy = load_policy(_policy_path(tmp_path)).policy
    other = "0x00000000000000000000000000000000000000C0"
    answers = _answers(set(), 0, council=other)
    with EthCallStandin(1337, answers, codes={STEWARD: b"\x60\x80"}, block_times={BLOCK: int(AS_OF.timestamp())}) as node, \
            pytest.raises(ChainError) as raised:
        read_steward_state(connect(node.url, expected_chain_id=1337), policy, block=BLOCK)
    assert raised.value.cause == (f"the RiskSteward {STEWARD} takes calls from its risk council {other} only; "
                                  f"the policy's Safe {DEMO_SAFE} is not it")
    assert "council Safe" in raised.value.hint


def test_a_policy_without_a_steward_reads_nothing() -> None:
    assert read_steward_state(None, load_policy(DEMO_POLICY).policy, block=BLOCK) is None  # type: ignore[arg-type]


# --- the pinned file --------------------------------------------------------------------------------

STATE = StewardState(
    steward=STEWARD,
    chain_id=1337,
    block=BLOCK,
    block_time=AS_OF,
    # Looser caps than the policy's 50%, a tighter LTV limit.
    limits=_limits(supply_cap=("100%", "3d"), borrow_cap=("100%", "3d"), ltv=("0.25%", "3d")),
    last_updates={("WETH", "supply_cap"): AS_OF - dt.timedelta(days=1)},
    restricted=frozenset({"USDC"}),
)


def test_the_pinned_state_round_trips_in_canonical_json() -> None:
    data = steward_state_bytes(STATE)
    assert parse_steward_state(data, INPUT_STEWARD) == STATE
    doc = json.loads(data)
    assert list(doc) == sorted(doc) and doc["limits"]["ltv"] == {"max_percent_change": 25, "min_delay_seconds": 3 * DAY}
    assert doc["last_updates"] == {"WETH": {"supply_cap": "2023-10-30T00:00:00Z"}}
    assert doc["restricted_markets"] == ["USDC"] and doc["block_time"] == "2023-10-31T00:00:00Z"
    broken = json.dumps({**doc, "limits": {}}).encode()
    with pytest.raises(BundleError, match=f"{INPUT_STEWARD} cannot be read"):
        parse_steward_state(broken, INPUT_STEWARD)


# --- routing on the chain's values --------------------------------------------------------------------


def test_disagreements_name_each_value_the_policy_states_differently() -> None:
    routing = Routing.model_validate({
        "steward": STEWARD, "limits": {"supply_cap": {"max_change": Ratio.parse("50%")}},
        "restricted_markets": ("WBTC",),
    })
    lines = disagreements(routing, STATE)
    assert "supply_cap limit: the policy says ±50% every 3d, getRiskConfig() says ±100% every 3d" in lines
    assert "ltv limit: the policy says ±0.5% every 3d (its default), getRiskConfig() says ±0.25% every 3d" in lines
    assert "WETH supply_cap last update: the policy says never, getTimelock() says 2023-10-30T00:00:00Z" in lines
    assert any(line.startswith("WBTC: the policy lists it as restricted") for line in lines)
    assert any(line.startswith("USDC: the policy does not list it as restricted") for line in lines)
    assert len(lines) == 5  # borrow_cap agrees (100% is the default), nothing else differs
    assert disagreements(routing.model_copy(update={"limits": STATE.limits, "restricted_markets": ("USDC",),
                                                    "last_updates": {"WETH": {"supply_cap": AS_OF - dt.timedelta(days=1)}}}),
                         STATE) == ()


def test_routing_time_is_the_later_of_the_data_and_the_block() -> None:
    assert routing_time(AS_OF, None) == AS_OF
    assert routing_time(AS_OF - dt.timedelta(days=5), STATE) == AS_OF
    assert routing_time(AS_OF + dt.timedelta(days=1), STATE) == AS_OF + dt.timedelta(days=1)


def _demo_snapshot_at_block():  # type: ignore[no-untyped-def]
    return dataclasses.replace(parse_snapshot_json(DEMO_SNAPSHOT.read_bytes(), "snapshot.json"), block=BLOCK)


@pytest.fixture(scope="module")
def chain_bundle(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, bytes], Path]:
    tmp = tmp_path_factory.mktemp("steward-state")
    inputs = gather_inputs(_policy_path(tmp), snapshot=_demo_snapshot_at_block(), steward=STATE)
    files = build_files(inputs)
    target = bundle_dir(tmp / "out", inputs)
    write_bundle(files, target)
    return files, target


def _routing(files: dict[str, bytes]) -> dict:  # type: ignore[type-arg]
    return json.loads(files["recommendation.json"])["routing"]  # type: ignore[no-any-return]


def test_a_chain_delay_not_yet_elapsed_sends_the_change_past_the_steward(chain_bundle: tuple[dict[str, bytes], Path]) -> None:
    weth_cap = _routing(chain_bundle[0])["markets"]["WETH"]["supply_cap"]
    # Offline (the policy's values) this change goes to the steward (tests/unit/test_routed_bundle.py).
    assert weth_cap["route"] == "governance" and weth_cap["rule"] == "steward_delay"
    assert "DebounceNotRespected" in weth_cap["reason"] and weth_cap["steward_ready_at"] == "2023-11-02T00:00:00Z"


def test_the_chain_s_restrictions_and_limits_replace_the_policy_s(chain_bundle: tuple[dict[str, bytes], Path]) -> None:
    markets = _routing(chain_bundle[0])["markets"]
    assert {r["rule"] for r in markets["USDC"].values()} <= {"steward_restricted_asset", "steward_cannot_set_zero"}
    assert all(r["route"] == "governance" for r in markets["USDC"].values())
    assert not any(r["rule"] == "steward_restricted_asset" for r in markets["WBTC"].values())  # the policy's WBTC is not used
    assert markets["WBTC"]["supply_cap"]["route"] == "risk_steward"
    # The chain's cap limit (100%) takes wstETH's −86% supply-cap move that the policy's 50% would refuse.
    assert markets["wstETH"]["supply_cap"]["route"] == "risk_steward"
    # The chain's LTV limit (0.25%) refuses the demo's 50 bps LTV moves that the policy's 0.5% allowed.
    ltv_rules = {markets[s]["ltv"]["rule"] for s in markets if "ltv" in markets[s]}
    assert "within_steward_limit" not in ltv_rules


def test_the_bundle_pins_the_state_and_says_where_routing_values_came_from(chain_bundle: tuple[dict[str, bytes], Path]) -> None:
    files, _ = chain_bundle
    assert files[INPUT_STEWARD] == steward_state_bytes(STATE)
    manifest = json.loads(files["manifest.json"])
    assert "steward" in manifest["inputs"] and INPUT_STEWARD in manifest["files"] and manifest["block"] == BLOCK
    chain = _routing(files)["chain"]
    assert chain["block"] == BLOCK and chain["pinned"] == INPUT_STEWARD and len(chain["disagreements"]) == 6
    md = files["report.md"].decode()
    assert f"came from the chain: RiskSteward {STEWARD} at block {BLOCK} of chain 1337 (inputs/steward.json)" in md
    assert "- USDC: the policy does not list it as restricted, isAddressRestricted() says the steward refuses it" in md
    html = files["report.html"].decode()
    assert '<ul class="routing-disagreements">' in html and "getRiskConfig() says ±0.25% every 3d" in html


def test_verify_rebuilds_the_bundle_from_the_pinned_state(chain_bundle: tuple[dict[str, bytes], Path]) -> None:
    files, target = chain_bundle
    assert inputs_from_bundle(files, target).steward == STATE
    verify_bundle(target)
    # The signing checks use the pinned limits too: wstETH's −86% steward call is above the policy's 50%.
    assert load_chain_bundle(target).expected["wstETH"]["supply_cap"] == 116_000


def test_a_pinned_state_of_another_block_or_steward_is_refused(tmp_path: Path) -> None:
    path = _policy_path(tmp_path)
    with pytest.raises(StewardError, match="the pinned steward state is of"):
        gather_inputs(path, snapshot=_demo_snapshot_at_block(), steward=dataclasses.replace(STATE, block=BLOCK - 1))
    with pytest.raises(StewardError, match="the policy's steward is None"):
        gather_inputs(None, snapshot=_demo_snapshot_at_block(), steward=STATE)


# --- `steward epoch --rpc`: the steward is read at the snapshot's block ---------------------------------


def _epoch_cli(tmp: Path, node: EthCallStandin, monkeypatch: pytest.MonkeyPatch) -> tuple[int, str, Path]:
    """`steward epoch --rpc` with the pool read replaced by the demo snapshot at BLOCK (a stand-in serves the steward only)."""
    from typer.testing import CliRunner

    from governance import cli
    from governance.venues import aave_v3_read

    monkeypatch.setattr(aave_v3_read, "snapshot_from_rpc", lambda policy, rpc, *, block: _demo_snapshot_at_block())
    out = tmp / "out"
    result = CliRunner().invoke(cli.app, ["epoch", str(_policy_path(tmp)), "--rpc", node.url, "--out", str(out), "--executor", "serial"])
    return result.exit_code, " ".join(result.output.split()), out


def test_epoch_rpc_pins_the_steward_read_at_the_snapshot_s_block(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    answers = _answers({"USDC"}, int(AS_OF.timestamp()) - DAY)
    with EthCallStandin(1337, answers, codes={STEWARD: b"\x60\x80"}, block_times={BLOCK: int(AS_OF.timestamp())}) as node:
        code, output, out = _epoch_cli(tmp_path, node, monkeypatch)
    assert code == 0, output
    target = out / "steward-demo-aave-v3" / "2023-10-31"
    pinned = parse_steward_state((target / INPUT_STEWARD).read_bytes(), INPUT_STEWARD)
    assert pinned.block == BLOCK and pinned.restricted == frozenset({"USDC"})
    assert {block for _, _, block in node.calls} == {hex(BLOCK)}
    verify_bundle(target)


def test_epoch_rpc_with_a_steward_without_code_fails_and_writes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with EthCallStandin(1337, {}) as node:
        code, output, out = _epoch_cli(tmp_path, node, monkeypatch)
    assert code == 2
    assert f"error: the RiskSteward {STEWARD} (routing.steward in the policy) has no code on chain 1337 at block {BLOCK}" in output
    assert "hint: remove routing.steward from the policy" in output
    assert not out.exists()
