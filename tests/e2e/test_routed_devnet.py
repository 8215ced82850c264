"""A routed bundle on the devnet: the DAO part through the real Governor + Timelock, reconciled; the
steward part refused by `steward simulate` (the devnet has no RiskSteward: no bytecode is published).

The devnet policy gets a `routing:` section naming a steward address without code and refusing WBTC:
WBTC's changes go to the DAO (governor.json), the others within the steward's limits to the Safe batch.
A Safe-route bundle (the Safe as risk admin, steward limits of 0) runs through the Safe and reconciles.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from governance import cli, governor_chain
from governance.bundle import SIMULATION, write_bundle
from governance.chain import connect
from governance.demo_chain import devnet_policy_text
from governance.devnet_governor import (
    MAX_OPERATIONS,
    TIMELOCK_MIN_DELAY_S,
    VOTING_DELAY_BLOCKS,
    VOTING_PERIOD_BLOCKS,
    advance,
    with_governor,
)
from governance.epoch_inputs import gather_inputs
from governance.pipeline import build_files, bundle_dir
from governance.signing import execute_bundle, sign_bundle
from governance.venues.aave_v3_read import pool_state, read_snapshot, resolve_addresses
from risk.policy_load import load_policy

pytestmark = pytest.mark.e2e

STEWARD = "0x00000000000000000000000000000000000000A1"  # no code on the devnet
ROUTING = f'routing:\n  steward: "{STEWARD}"\n  restricted_markets: [WBTC]\n'
_ZERO = ", ".join(f'{p}: {{max_change: "0%"}}' for p in ("ltv", "liquidation_threshold", "liquidation_bonus", "supply_cap", "borrow_cap"))
SAFE_ROUTING = f'routing:\n  steward: "{STEWARD}"\n  safe_is_risk_admin: true\n  limits: {{{_ZERO}}}\n'


def _cli(*args: object) -> tuple[int, str]:
    result = CliRunner().invoke(cli.app, [str(a) for a in args])
    return result.exit_code, result.output


def _routed_epoch(devnet, state: Path, out: Path, routing: str) -> Path:
    text = with_governor(devnet_policy_text(devnet), devnet.addresses["governor"], devnet.addresses["timelock"],
                         max_actions=MAX_OPERATIONS)
    state.mkdir(parents=True, exist_ok=True)
    policy_path = state / "policy.yaml"
    policy_path.write_bytes(text + routing.encode())
    policy = load_policy(policy_path, None).policy
    reader = connect(devnet.rpc_url, expected_chain_id=policy.venue.chain_id)
    snapshot_path = state / "snapshot.json"
    snapshot_path.write_bytes(read_snapshot(reader, policy, block=None, safe=policy.venue.addresses.safe).to_json_bytes())
    inputs = gather_inputs(policy_path, snapshot_path=snapshot_path)
    target = bundle_dir(out, inputs)
    write_bundle(build_files(inputs), target)
    return target


@pytest.fixture(scope="module")
def routed_bundle(session, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _routed_epoch(session.devnet, tmp_path_factory.mktemp("routed-state"), tmp_path_factory.mktemp("routed-out"), ROUTING)


def _routes(bundle: Path) -> dict[tuple[str, str], str]:
    markets = json.loads((bundle / "recommendation.json").read_text())["routing"]["markets"]
    return {(s, p): r["route"] for s, params in markets.items() for p, r in params.items()}


def test_simulate_refuses_the_steward_calls_naming_the_steward(devnet, routed_bundle: Path) -> None:
    routes = _routes(routed_bundle)
    assert "risk_steward" in routes.values() and "governance" in routes.values()
    code, out = _cli("simulate", routed_bundle, "--rpc", devnet.rpc_url)
    assert code != 0
    assert f"the RiskSteward {STEWARD} has no code on chain {devnet.chain_id}" in " ".join(out.split())
    assert not (routed_bundle / SIMULATION).exists()  # never reported OK, nothing written


def test_the_dao_part_runs_through_the_governor_and_reconciles(
    devnet, chain, routed_bundle: Path, make_keystores, restore_chain: None,
) -> None:
    voters = make_keystores({"voter0": devnet.owner_keys[0], "voter1": devnet.owner_keys[1]})
    keys = {0: voters["voter0"], 1: voters["voter1"]}

    def step(name: str, i: int) -> tuple[int, str]:
        if name == "propose":
            return _cli("propose", routed_bundle, "--governor", "--rpc", devnet.rpc_url, "--keystore", keys[i],
                        "--password-env", "STEWARD_TEST_PASSWORD")
        return _cli("governor", name, routed_bundle, "--rpc", devnet.rpc_url, "--keystore", keys[i],
                    "--password-env", "STEWARD_TEST_PASSWORD")

    gb = governor_chain.load_governor_bundle(routed_bundle)
    reader = connect(devnet.rpc_url, expected_chain_id=devnet.chain_id)

    def state() -> dict[str, dict[str, int]]:
        block = reader.block_number()
        return pool_state(reader, resolve_addresses(reader, gb.policy, block=block), gb.markets, block=block)

    before = state()
    code, out = step("propose", 0)
    assert code == 0, out
    advance(chain, blocks=VOTING_DELAY_BLOCKS + 1)
    assert step("vote", 0)[0] == 0 and step("vote", 1)[0] == 0
    advance(chain, blocks=VOTING_PERIOD_BLOCKS + 1)
    code, out = step("queue", 1)
    assert code == 0, out
    advance(chain, seconds=TIMELOCK_MIN_DELAY_S)
    code, out = step("execute", 0)
    assert code == 0, out
    assert ": OK;" in out and "nothing else changed" in out
    doc = json.loads((routed_bundle / SIMULATION).read_text())
    assert doc["ok"] is True and doc["changed"] and not doc["unexpected_changes"]
    after = state()
    routes = _routes(routed_bundle)
    for (symbol, param), route in routes.items():
        if route == "governance":
            assert after[symbol][param] == gb.expected[symbol][param] != before[symbol][param]
        else:  # the steward's part is not the Governor's: untouched
            assert after[symbol][param] == before[symbol][param]


def test_the_safe_route_runs_through_the_safe_and_reconciles(devnet, tmp_path: Path, restore_chain: None) -> None:
    bundle = _routed_epoch(devnet, tmp_path / "state", tmp_path / "out", SAFE_ROUTING)
    routes = _routes(bundle)
    assert set(routes.values()) == {"safe"} and not (bundle / "governor.json").exists()
    assert all(r["rule"] == "above_steward_limit" for m in json.loads((bundle / "recommendation.json").read_text())
               ["routing"]["markets"].values() for r in m.values())
    code, out = _cli("simulate", bundle, "--rpc", devnet.rpc_url)
    assert code == 0, out
    for key in devnet.owner_keys[:2]:
        sign_bundle(bundle, bytes.fromhex(key[2:]), rpc_url=devnet.rpc_url)
    done = execute_bundle(bundle, devnet.rpc_url, bytes.fromhex(devnet.owner_keys[0][2:]))
    assert done.reconciliation.ok and len(done.reconciliation.changed) == len(routes)


def test_epoch_rpc_refuses_a_steward_without_code_on_the_devnet(devnet, tmp_path: Path) -> None:
    policy_path = tmp_path / "policy.yaml"
    policy_path.write_bytes(devnet_policy_text(devnet) + ROUTING.encode())
    out = tmp_path / "out"
    code, output = _cli("epoch", policy_path, "--rpc", devnet.rpc_url, "--out", out, "--executor", "serial")
    assert code == 2, output
    said = " ".join(output.split())
    assert f"the RiskSteward {STEWARD} (routing.steward in the policy) has no code on chain {devnet.chain_id} at block" in said
    assert "remove routing.steward" in said and not out.exists()
