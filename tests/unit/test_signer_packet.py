"""The signer packet: every number in it traces to recommendation.json and calls.json, red flags show up
where a signer looks, and signer-packet.md is exactly what simulation.json renders (verify catches edits)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from eth_abi import encode as abi_encode
from signer_packet_rows import check_rows_match
from test_report_tables import demo_bundle, demo_context, parse_html, parse_markdown, value_of

from governance import jsonio
from governance.bundle import SIGNER_PACKET, SIMULATION, BundleError, sha256, write_bundle
from governance.calls import encode_call
from governance.chain_bundle import expected_values, write_attachment
from governance.pipeline import calls_json
from governance.report import environment
from governance.report_html import environment as html_environment
from governance.safe import MULTISEND_CALL_ONLY_141, MultiSendTx, Operation, SafeTx, flag_unusual, safe_tx_json, unusual_by_call
from governance.safe_tx import MULTISEND_SELECTOR, pack_multisend
from governance.signer_packet import allowed_targets, lending_signer_context
from governance.signer_packet_attachment import render_signer_packet
from governance.venues.aave_v3 import SET_SUPPLY_CAP
from governance.verify import verify_bundle
from risk.policy_load import check_policy_text

DECODED, STATE = "Calls, decoded", "Expected state change"
BONUS = re.compile(r"(\d+\.\d{2})% bonus")
STRANGER = "0x00000000000000000000000000000000DeaDBeef"


def bundle_json(name: str) -> Any:
    return json.loads(demo_bundle()[name])


def demo_policy():
    policy, problems = check_policy_text(demo_bundle()["inputs/policy.yaml"], "inputs/policy.yaml")
    assert policy is not None, problems
    return policy


def seen(fmt: str):
    text = demo_bundle()[f"report.{fmt}"].decode("utf-8")
    return parse_markdown(text) if fmt == "md" else parse_html(text)


def decoded_rows(fmt: str) -> list[tuple[int, str, str, str]]:
    """(call number, argument, meaning, as sent) for every row of the decoded-calls table."""
    table = seen(fmt).table(DECODED)
    assert table.header == ["Call", "Contract", "Function", "Argument", "Meaning", "As sent"]
    out, call = [], 0
    for row in table.rows:
        call = int(row[0]) if row[0] else call  # a call's first row names it; the next rows are its arguments
        out.append((call, row[3], row[4], row[5]))
    return out


@pytest.mark.parametrize("fmt", ["md", "html"])
def test_each_decoded_argument_is_calls_json_and_the_recommendation(fmt: str) -> None:
    calls, rec = bundle_json("calls.json"), bundle_json("recommendation.json")
    by_asset = {m["asset"]: (symbol, m["parameters"]) for symbol, m in rec["markets"].items()}
    rows = decoded_rows(fmt)
    shown = {(n, name): sent for n, name, _, sent in rows}  # the report keeps ABI order, calls.json sorts its keys
    assert len(shown) == len(rows)
    assert shown == {(i, name): value for i, c in enumerate(calls, start=1) for name, value in c["args"].items()}
    table = seen(fmt).table(DECODED)
    firsts = [r for r in table.rows if r[0]]
    assert [(r[1], r[2]) for r in firsts] == [(f"{c['contract']} {c['to']}", c["signature"]) for c in calls]
    for n, name, meaning, sent in rows:
        symbol, params = by_asset[calls[n - 1]["args"]["asset"]]
        if name == "asset":
            assert meaning == symbol
            continue
        param = {"ltv": "ltv", "liquidationThreshold": "liquidation_threshold", "liquidationBonus": "liquidation_bonus",
                 "newSupplyCap": "supply_cap", "newBorrowCap": "borrow_cap"}[name]
        proposed = {k: v for k, v in params[param]["proposed"].items() if k != "percent"}
        if name == "liquidationBonus":
            m = BONUS.fullmatch(meaning)
            assert m, meaning
            assert round(float(m.group(1)) * 100) == int(sent) - 10_000 == proposed["bps"]
        else:
            assert value_of(meaning) == proposed
            assert int(sent) == proposed.get("bps", proposed.get("tokens"))


@pytest.mark.parametrize("fmt", ["md", "html"])
def test_the_state_table_is_current_to_proposed_of_every_parameter(fmt: str) -> None:
    rec = bundle_json("recommendation.json")
    table = seen(fmt).table(STATE)
    assert table.header == ["Market", "Parameter", "Now", "After", "Change"]
    labels = {"LTV": "ltv", "Liquidation threshold": "liquidation_threshold", "Liquidation bonus": "liquidation_bonus",
              "Supply cap": "supply_cap", "Borrow cap": "borrow_cap"}
    assert len(table.rows) == sum(len(m["parameters"]) for m in rec["markets"].values())
    for market, label, now, after, change in table.rows:
        p = rec["markets"][market]["parameters"][labels[label]]
        assert value_of(now) == {k: v for k, v in p["current"].items() if k != "percent"}
        assert value_of(after) == {k: v for k, v in p["proposed"].items() if k != "percent"}
        assert (change == "—") == (p["current"] == p["proposed"])


def test_the_packet_names_the_safe_tx_hash_no_flags_and_the_commands() -> None:
    md = demo_bundle()["report.md"].decode()
    packet = md.partition("## Signer packet")[2].partition("\n## ")[0]
    safe = bundle_json("safe-tx.json")
    assert f"safeTxHash `{safe['safeTxHash']}`" in packet and f"nonce {safe['nonce']}" in packet
    assert "**No flags:" in packet
    assert all(c["flags"] == [] for c in bundle_json("calls.json"))
    for command in ("steward verify", "steward simulate", "steward sign"):
        assert f"{command} proposals/steward-demo-aave-v3/2023-10-31" in packet


# --- flags ------------------------------------------------------------------------------------------


def _render(context: dict[str, Any], fmt: str) -> str:
    env = environment() if fmt == "md" else html_environment()
    return env.from_string(f'{{% import "_signer_packet.{fmt}.j2" as p %}}{{{{ p.signer_packet(s) }}}}').render(s=context)


def _context_for(tx: SafeTx, calls_doc: list[dict[str, Any]]) -> dict[str, Any]:
    doc = safe_tx_json(tx)
    safe = {"safe": doc["safe"], "chain_id": tx.chain_id, "nonce": tx.nonce, "to": doc["to"], "operation": "?", "hash": doc["safeTxHash"]}
    return lending_signer_context(
        demo_context()["r"], policy=demo_policy(), calls=calls_doc, files={"safe-tx.json": jsonio.dumps(doc)}, safe=safe,
        bundle_path="proposals/x/y", snapshot_block=None,
    )


def test_calls_json_flags_a_value_transfer_and_a_target_outside_the_allow_list() -> None:
    policy = demo_policy()
    configurator = policy.venue.addresses.pool_configurator
    asset = policy.markets[0].asset
    ok = encode_call(configurator, SET_SUPPLY_CAP, (asset, 1), "fine", contract_label="PoolConfigurator")
    paid = encode_call(configurator, SET_SUPPLY_CAP, (asset, 1), "pays", value=5, contract_label="PoolConfigurator")
    stranger = encode_call(STRANGER, SET_SUPPLY_CAP, (asset, 1), "elsewhere")
    docs = calls_json([ok, paid, stranger], policy)
    assert docs[0]["flags"] == []
    assert docs[1]["flags"] == [f"call to {paid.to} sends 5 wei of native currency"]
    assert docs[2]["flags"] == [f"call to {stranger.to}: target is not in the allow-list"]
    assert calls_json([stranger])[0]["flags"] == []  # no policy, no allow-list: only value is judged
    assert set(allowed_targets(policy)) == {configurator}


def test_a_delegatecall_elsewhere_and_odd_batch_entries_are_flagged_in_the_report() -> None:
    policy = demo_policy()
    safe, configurator = policy.venue.addresses.safe, policy.venue.addresses.pool_configurator
    data = encode_call(configurator, SET_SUPPLY_CAP, (policy.markets[0].asset, 1), "x").data
    rogue = SafeTx(safe, policy.venue.chain_id, STRANGER, 0, bytes.fromhex(data[2:]), Operation.DELEGATECALL, nonce=7)
    entries = [MultiSendTx(0, configurator, 0, data), MultiSendTx(0, configurator, 9, data), MultiSendTx(1, STRANGER, 0, data)]
    batch_data = MULTISEND_SELECTOR + abi_encode(["bytes"], [pack_multisend(entries)])
    batch = SafeTx(safe, policy.venue.chain_id, MULTISEND_CALL_ONLY_141, 0, batch_data, Operation.DELEGATECALL, nonce=7)

    own, per_call = unusual_by_call(batch, allowed_targets=[configurator])
    assert own == [] and per_call[0] == [] and len(per_call[1]) == 1 and len(per_call[2]) == 2
    assert flag_unusual(batch, allowed_targets=[configurator]) == [*own, *per_call[1], *per_call[2]]

    for tx, wanted in ((rogue, [f"DELEGATECALL to {STRANGER}, not MultiSendCallOnly 1.4.1", f"call to {STRANGER}: target is not in the allow-list"]),
                       (batch, [f"call 1 to {configurator} sends 9 wei", f"call 2 to {STRANGER} is a DELEGATECALL inside the batch",
                                f"call 2 to {STRANGER}: target is not in the allow-list"])):
        context = _context_for(tx, calls_json([], policy))
        assert len(context["flags"]) == len(wanted)
        for fmt in ("md", "html"):
            text = _render(context, fmt)
            assert "No flags" not in text and f"{len(wanted)} flags: look at each twice" in text
            for line in wanted:
                assert line in text, (fmt, line)


# --- signer-packet.md ---------------------------------------------------------------------------------


def _simulation(core: dict[str, bytes], *, tamper: bool = False) -> bytes:
    """A passing simulation.json of this bundle as `steward simulate` writes it: each parameter current → proposed."""
    rec = json.loads(core["recommendation.json"])
    post = expected_values(rec)
    pre = {s: {p: int(c["current"].get("bps", c["current"].get("tokens"))) for p, c in m["parameters"].items()}
           for s, m in rec["markets"].items()}
    for state in (pre, post):
        state["WETH"] = {**state["WETH"], "reserve_factor": 1500}
    if tamper:
        post["WETH"] = {**post["WETH"], "supply_cap": post["WETH"]["supply_cap"] + 1, "reserve_factor": 1600}
    doc = {
        "block": 123, "bundle_manifest_sha256": sha256(core["manifest.json"]), "chain_id": 1337, "changed": [],
        "differences": ["WETH supply_cap: wrong"] if tamper else [], "execution_tx": None, "expected": expected_values(rec),
        "gas_used": 456_789, "mode": "simulate", "ok": not tamper, "post_state": post, "pre_state": pre,
        "revert_reason": None, "reverted": False, "safe_tx_hash": json.loads(core["safe-tx.json"])["safeTxHash"],
        "unexpected_changes": ["WETH reserve_factor: 1500 → 1600"] if tamper else [],
    }
    return jsonio.dumps(doc)


def test_the_packet_rows_are_simulation_json() -> None:
    core = dict(demo_bundle())
    good, bad = _simulation(core), _simulation(core, tamper=True)
    n = check_rows_match(render_signer_packet(core, good), good)
    assert n == sum(len(m["parameters"]) for m in bundle_json("recommendation.json")["markets"].values())
    text = render_signer_packet(core, bad).decode()
    assert check_rows_match(text.encode(), bad) == n + 1  # the reserve factor that moved
    assert text.count("✗") == 2 and "**FAILED.**" in text and "WETH reserve_factor: 1500 → 1600" in text
    assert render_signer_packet(core, b"not json") is None


def test_verify_rerenders_the_packet_and_catches_an_edit(tmp_path: Path) -> None:
    bundle = tmp_path / "bundle"
    write_bundle(dict(demo_bundle()), bundle)
    simulation = _simulation(dict(demo_bundle()))
    write_attachment(bundle, SIMULATION, simulation)  # as every chain step writes it: the packet follows
    packet = (bundle / SIGNER_PACKET).read_bytes()
    check_rows_match(packet, simulation)
    assert verify_bundle(bundle)[1] == 2

    (bundle / SIGNER_PACKET).write_bytes(packet.replace(b"\xe2\x9c\x97", b"\xe2\x9c\x93") + b"\n")  # an edited packet
    with pytest.raises(BundleError) as err:
        verify_bundle(bundle)
    assert any(SIGNER_PACKET in p and "differs" in p for p in err.value.problems)

    reconciled = json.loads(simulation)
    reconciled.update(mode="reconcile", execution_tx="0x" + "ab" * 32)
    write_attachment(bundle, SIMULATION, jsonio.dumps(reconciled))  # a later step rewrites both
    assert b"Reconciled after the Safe's execution" in (bundle / SIGNER_PACKET).read_bytes()
    assert verify_bundle(bundle)[1] == 2

    (bundle / SIMULATION).unlink()
    with pytest.raises(BundleError) as err:
        verify_bundle(bundle)
    assert any("without the simulation.json" in p for p in err.value.problems)
