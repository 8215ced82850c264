"""A routed epoch (policy `routing:`): steward calls first in the Safe batch, DAO-routed changes only in governor.json.

The demo policy plus a `routing:` section: a steward whose cap limit is 50% and which refuses WBTC,
so the demo's 50 bps collateral moves go to the steward, WBTC and the large cap moves to the DAO
(the Safe is not the risk admin) — or to the Safe batch when it is.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from governance.bundle import BundleError, read_bundle, write_bundle
from governance.chain import ChainError
from governance.chain_bundle import check_calls, check_routed, expected_values, load_chain_bundle
from governance.epoch_inputs import DEMO_POLICY, gather_inputs
from governance.pipeline import build_files, bundle_dir
from governance.safe import decode_tx_builder_batch, inner_calls, safe_tx_for_calls
from governance.simulate import require_code
from governance.venues.aave_steward import FUNCTIONS as STEWARD_FUNCTIONS
from governance.venues.aave_steward import (
    CapsUpdate,
    decode_steward_call,
    encode_caps_updates,
    values_set,
)
from governance.venues.aave_v3 import SET_SUPPLY_CAP, encode_call
from governance.verify import verify_bundle
from risk.errors import StewardError

STEWARD = "0x00000000000000000000000000000000000000A1"
GOVERNOR = "0x51A1ceB83B83F1985a81C295d1fF28Afef186E02"
CONFIGURATOR = "0x64b761D848206f447Fe2dd461b0c635Ec39EbB27"
GOVERNOR_SECTION = f'governor:\n  address: "{GOVERNOR}"\n'


def _routing(*, safe_is_risk_admin: bool) -> str:
    return (
        "routing:\n"
        f'  steward: "{STEWARD}"\n'
        f"  safe_is_risk_admin: {'true' if safe_is_risk_admin else 'false'}\n"
        "  limits:\n"
        '    supply_cap: {max_change: "50%", min_delay: "3d"}\n'
        '    borrow_cap: {max_change: "50%", min_delay: "3d"}\n'
        "  restricted_markets: [WBTC]\n"
    )


def _bundle(tmp: Path, text: str) -> tuple[dict[str, bytes], Path]:
    path = tmp / "policy.yaml"
    path.write_text(text)
    inputs = gather_inputs(path)
    files = build_files(inputs)
    target = bundle_dir(tmp / "out", inputs)
    write_bundle(files, target)
    return files, target


@pytest.fixture(scope="module")
def dao(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, bytes], Path]:
    """Steward + DAO routes (the Safe is not the pool's risk admin)."""
    return _bundle(tmp_path_factory.mktemp("routed-dao"), DEMO_POLICY.read_text() + GOVERNOR_SECTION + _routing(safe_is_risk_admin=False))


@pytest.fixture(scope="module")
def safe_admin(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, bytes], Path]:
    """Steward + Safe routes (the Safe holds the risk-admin role); no governor section needed."""
    return _bundle(tmp_path_factory.mktemp("routed-safe"), DEMO_POLICY.read_text() + _routing(safe_is_risk_admin=True))


def _doc(files: dict[str, bytes], rel: str) -> dict:  # type: ignore[type-arg]
    return json.loads(files[rel])  # type: ignore[no-any-return]


def _routes(files: dict[str, bytes]) -> dict[tuple[str, str], str]:
    markets = _doc(files, "recommendation.json")["routing"]["markets"]
    return {(s, p): r["route"] for s, params in markets.items() for p, r in params.items()}


def test_routes_are_in_recommendation_json_with_a_reason(dao: tuple[dict[str, bytes], Path]) -> None:
    files, _ = dao
    routing = _doc(files, "recommendation.json")["routing"]
    routes = _routes(files)
    assert routing["steward"] == STEWARD and routing["safe_is_risk_admin"] is False
    assert routing["counts"] == {"governance": 9, "risk_steward": 11, "safe": 0}
    assert {p: routes[("WBTC", p)] for p in ("ltv", "supply_cap")} == {"ltv": "governance", "supply_cap": "governance"}
    assert routing["markets"]["WBTC"]["ltv"]["rule"] == "steward_restricted_asset"
    assert routes[("WETH", "supply_cap")] == "risk_steward"  # 1.8M → 1.33M: −26%, within 50%
    usdc_cap = routing["markets"]["USDC"]["supply_cap"]
    assert usdc_cap["route"] == "governance" and "UpdateNotInRange" in usdc_cap["reason"]


def test_steward_calls_come_first_in_the_safe_batch_and_decode_to_the_steward_routes(dao: tuple[dict[str, bytes], Path]) -> None:
    files, _ = dao
    routes = _routes(files)
    rec = _doc(files, "recommendation.json")
    batch = decode_tx_builder_batch(_doc(files, "safe-tx-builder.json"))
    assert batch and all(to == STEWARD for to, _, _ in batch)  # nothing DAO-routed goes through the Safe
    names = [decode_steward_call(data)[0].name for _, _, data in batch]
    assert names == ["updateCollateralSide", "updateCaps"]
    set_by_steward = {}
    symbol_of = {m["asset"]: s for s, m in rec["markets"].items()}
    for _, _, data in batch:
        for asset, values in values_set(data).items():
            for param, value in values.items():
                set_by_steward[(symbol_of[asset], param)] = value
    steward_routed = {k for k, route in routes.items() if route == "risk_steward"}
    assert set(set_by_steward) == steward_routed
    for (symbol, param), value in set_by_steward.items():
        proposed = rec["markets"][symbol]["parameters"][param]["proposed"]
        assert value == proposed.get("bps", proposed.get("tokens"))
    assert {c["batch"] for c in _doc(files, "calls.json")} == {"safe", "governor"}


def test_dao_routed_changes_are_only_in_governor_json(dao: tuple[dict[str, bytes], Path]) -> None:
    files, _ = dao
    gov = _doc(files, "governor.json")
    assert set(gov["targets"]) == {CONFIGURATOR}
    # WBTC (restricted): its collateral and caps; USDC and wstETH: the caps moving more than 50%.
    assert [a["human"].split(" ")[0] + " " + a["signature"].split("(")[0] for a in gov["actions"]] == [
        "WBTC configureReserveAsCollateral", "WBTC setSupplyCap", "WBTC setBorrowCap", "wstETH setSupplyCap",
        "wstETH setBorrowCap", "USDC setSupplyCap", "USDC setBorrowCap",
    ]
    # The proposal's description lists the DAO's changes only.
    assert "WBTC" in gov["description"] and "WETH" not in gov["description"].split("## ")[1]


def test_verify_and_the_chain_steps_accept_the_routed_bundle(dao: tuple[dict[str, bytes], Path]) -> None:
    files, target = dao
    verify_bundle(target)
    cb = load_chain_bundle(target)  # check_calls (Safe batch) and check_routed (governor.json)
    rec = _doc(files, "recommendation.json")
    # The Safe's simulation expects the steward's values, and the DAO's parameters untouched.
    assert cb.expected["WETH"]["supply_cap"] == 1_330_000
    assert cb.expected["USDC"]["supply_cap"] == rec["markets"]["USDC"]["parameters"]["supply_cap"]["current"]["tokens"]
    assert cb.expected["WBTC"]["ltv"] == 7300
    assert expected_values(rec, "governor")["WBTC"]["ltv"] == 7350
    assert expected_values(rec, "governor")["WETH"]["supply_cap"] == 1_800_000  # the steward's, not the DAO's


def test_a_dao_routed_change_moved_into_the_safe_batch_is_refused(dao: tuple[dict[str, bytes], Path]) -> None:
    files, target = dao
    cb = load_chain_bundle(target)
    rec = _doc(files, "recommendation.json")
    calls = list(inner_calls(cb.safe_tx))
    moved = encode_call(CONFIGURATOR, SET_SUPPLY_CAP, (rec["markets"]["USDC"]["asset"], 3_520_000_000), "moved",
                        contract_label="PoolConfigurator")
    forged = safe_tx_for_calls([*calls, moved], safe_address=cb.safe_tx.safe_address, chain_id=cb.chain_id, nonce=cb.safe_tx.nonce)
    with pytest.raises(BundleError) as raised:
        check_calls(forged, rec, CONFIGURATOR, limits=cb.policy.routing.limits)  # type: ignore[union-attr]
    assert "USDC supply_cap is routed to a DAO proposal (governor.json), but the Safe batch sets it" in raised.value.problems


def test_a_steward_call_above_the_limit_is_refused(dao: tuple[dict[str, bytes], Path]) -> None:
    files, target = dao
    cb = load_chain_bundle(target)
    rec = _doc(files, "recommendation.json")
    collateral, _caps = inner_calls(cb.safe_tx)
    weth = rec["markets"]["WETH"]
    # WETH supply cap 1.8M → 500k: −72%, above the steward's 50%.
    big = encode_caps_updates(STEWARD, [CapsUpdate(weth["asset"], 500_000, None)], "too far")
    forged = safe_tx_for_calls([collateral, big], safe_address=cb.safe_tx.safe_address, chain_id=cb.chain_id, nonce=cb.safe_tx.nonce)
    with pytest.raises(BundleError) as raised:
        check_calls(forged, rec, CONFIGURATOR, limits=cb.policy.routing.limits)  # type: ignore[union-attr]
    problems = "\n".join(raised.value.problems)
    assert "call 1 (RiskSteward) WETH: supply_cap moves 1,300,000 tokens; the steward allows 50% of the current" in problems
    assert "the recommendation changes WETH borrow_cap but no call sets it" in problems


def test_a_steward_call_in_the_governor_proposal_or_a_missing_governor_json_is_refused(dao: tuple[dict[str, bytes], Path]) -> None:
    files, target = dao
    rec = _doc(files, "recommendation.json")
    cb = load_chain_bundle(target)
    with pytest.raises(BundleError, match="there is no governor.json"):
        check_routed({k: v for k, v in files.items() if k != "governor.json"}, rec, cb.policy, target)
    # The Safe batch offered as the Governor's proposal: steward calls are not the DAO's.
    with pytest.raises(BundleError) as raised:
        check_calls(cb.safe_tx, rec, CONFIGURATOR, batch="governor")
    assert any("not a PoolConfigurator setter" in p for p in raised.value.problems)
    assert any("the recommendation changes WBTC ltv but no call sets it" in p for p in raised.value.problems)


def test_the_report_has_a_routing_section(dao: tuple[dict[str, bytes], Path]) -> None:
    files, _ = dao
    md = files["report.md"].decode()
    assert "## Routing" in md
    assert "| WBTC | LTV | 73.00% → 73.50% | DAO proposal | the steward refuses WBTC (AssetIsRestricted)" in md
    assert "| WETH | supply cap |" in md and "| RiskSteward |" in md
    assert '<section id="routing">' in files["report.html"].decode()


def test_with_the_safe_as_risk_admin_the_safe_batch_carries_steward_then_configurator_calls(
    safe_admin: tuple[dict[str, bytes], Path],
) -> None:
    files, target = safe_admin
    assert "governor.json" not in files
    routes = _routes(files)
    assert set(routes.values()) == {"risk_steward", "safe"}
    batch = decode_tx_builder_batch(_doc(files, "safe-tx-builder.json"))
    targets = [to for to, _, _ in batch]
    n = targets.count(STEWARD)
    assert n == 2 and targets[:n] == [STEWARD] * n and set(targets[n:]) == {CONFIGURATOR}
    selectors = {f.selector for f in STEWARD_FUNCTIONS}
    assert all(bytes.fromhex(data[2:10]) in selectors for _, _, data in batch[:n])
    cb = load_chain_bundle(target)
    verify_bundle(target)
    assert cb.expected["WBTC"]["ltv"] == 7350  # the Safe route: the Safe's transaction sets it


def test_dao_routes_without_a_governor_section_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(DEMO_POLICY.read_text() + _routing(safe_is_risk_admin=False))
    with pytest.raises(StewardError) as raised:
        build_files(gather_inputs(path))
    assert "WBTC ltv" in raised.value.cause and "no `governor:` section" in raised.value.cause


def test_simulate_refuses_a_steward_without_code(dao: tuple[dict[str, bytes], Path]) -> None:
    _, target = dao
    cb = load_chain_bundle(target)

    class NoSteward(SimpleNamespace):
        chain_id = 1337

        def code(self, address: str, *, block: int) -> bytes:
            return b"" if address == STEWARD else b"\x60\x80"

    with pytest.raises(ChainError) as raised:
        require_code(NoSteward(), cb, block=7)  # type: ignore[arg-type]
    assert raised.value.cause.startswith(f"the RiskSteward {STEWARD} has no code on chain 1337 at block 7")
    assert "fork" in raised.value.hint


def test_a_routed_bundle_is_read_back_whole(dao: tuple[dict[str, bytes], Path]) -> None:
    files, target = dao
    assert read_bundle(target) == files


def test_the_governor_steps_check_the_dao_part_only(dao: tuple[dict[str, bytes], Path]) -> None:
    from governance import governor_chain

    gb = governor_chain.load_governor_bundle(dao[1])
    assert gb.expected["WBTC"]["ltv"] == 7350 and gb.expected["WETH"]["ltv"] == 8050  # WETH's LTV is the steward's
