"""A Comet snapshot read from a chain at one pinned block (a JSON-RPC stand-in: no Comet bytecode ships on npm)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from eth_abi import encode as abi_encode
from eth_call_standin import EthCallStandin

from governance.chain import ChainError, connect
from governance.pipeline_compound import gather_compound_inputs
from governance.venues.compound_read import (
    BASE_TOKEN,
    BASE_TOKEN_PRICE_FEED,
    ERC20_SYMBOL,
    GET_PRICE,
    STORE_FRONT_PRICE_FACTOR,
    read_comet_snapshot,
)
from governance.venues.compound_snapshot import CometSnapshot, parse_comet_snapshot_json
from governance.venues.compound_v3 import GET_ASSET_INFO_BY_ADDRESS
from risk.policy_load import load_policy

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "policies" / "compound-v3-example.yaml"
DEMO = parse_comet_snapshot_json((REPO / "risk" / "demo" / "comet_snapshot.json").read_bytes(), "comet_snapshot.json")
USDC = "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48"
USDC_FEED = "0x8fFfFfd4AfB6115b954Bd326cbe7B4BA576818f6"
BLOCK = 18_470_000


def _call(fn, *args) -> str:  # type: ignore[no-untyped-def]
    return "0x" + fn.encode(*args).hex()


def answers_for(snapshot: CometSnapshot, decimals_shift: int = 0) -> dict[tuple[str, str], bytes]:
    """The stand-in answers Comet would give for `snapshot`'s assets (prices to 8 decimals, as getPrice gives them)."""
    comet = snapshot.comet
    answers = {}
    for symbol, a in snapshot.assets.items():
        scale = 10 ** (a.decimals + decimals_shift)
        info = (a.offset, a.asset, a.price_feed, scale, a.borrow_collateral_factor.raw, a.liquidate_collateral_factor.raw,
                a.liquidation_factor.raw, a.supply_cap.to_whole_tokens() * scale)
        answers[(comet, _call(GET_ASSET_INFO_BY_ADDRESS, a.asset))] = abi_encode(list(GET_ASSET_INFO_BY_ADDRESS.outputs), [info])
        price = snapshot.prices[symbol]
        assert price is not None
        answers[(comet, _call(GET_PRICE, a.price_feed))] = abi_encode(["uint256"], [int(price * 10**8)])
    answers[(comet, _call(STORE_FRONT_PRICE_FACTOR))] = abi_encode(["uint256"], [snapshot.store_front_price_factor.raw])
    answers[(comet, _call(BASE_TOKEN))] = abi_encode(["address"], [USDC])
    answers[(comet, _call(BASE_TOKEN_PRICE_FEED))] = abi_encode(["address"], [USDC_FEED])
    answers[(comet, _call(GET_PRICE, USDC_FEED))] = abi_encode(["uint256"], [99_997_427])
    answers[(USDC, _call(ERC20_SYMBOL))] = abi_encode(["string"], ["USDC"])
    return answers


def policy_without_safe(folder: Path) -> Path:
    # The stand-in has no Safe to read a nonce from.
    text = EXAMPLE.read_text()
    safe_line = '    safe: "0x5300A1a15135EA4dc7aD5a167152C01EFc9b192A"\n'
    assert safe_line in text
    path = folder / "no-safe.yaml"
    path.write_text(text.replace("  addresses:\n" + safe_line, ""))
    return path


def test_every_read_names_the_pinned_block_and_the_snapshot_feeds_the_epoch(tmp_path: Path) -> None:
    path = policy_without_safe(tmp_path)
    policy = load_policy(path).policy
    with EthCallStandin(1337, answers_for(DEMO)) as node:
        snap = read_comet_snapshot(connect(node.url, expected_chain_id=1337), policy, block=BLOCK)
    assert {block for _, _, block in node.calls} == {hex(BLOCK)}
    assert snap.assets == DEMO.assets and snap.prices == DEMO.prices
    assert snap.store_front_price_factor == DEMO.store_front_price_factor
    assert (snap.base_symbol, snap.base_price_usd) == ("USDC", Decimal("0.99997427"))
    assert (snap.block, snap.chain_id, snap.source) == (BLOCK, 1337, f"rpc chain 1337 block {BLOCK}")
    inputs = gather_compound_inputs(path, comet=snap)  # the chain read takes the place of the file
    assert inputs.comet.block == BLOCK
    assert parse_comet_snapshot_json(inputs.comet.to_json_bytes(), "comet.json").assets == DEMO.assets


def test_a_policy_whose_decimals_differ_from_comet_is_refused(tmp_path: Path) -> None:
    policy = load_policy(policy_without_safe(tmp_path)).policy
    with (EthCallStandin(1337, answers_for(DEMO, decimals_shift=1)) as node,
          pytest.raises(ChainError, match=r"Comet says 19 decimals, the policy 18")):
        read_comet_snapshot(connect(node.url, expected_chain_id=1337), policy, block=BLOCK)


def test_steward_epoch_rpc_pins_the_comet_read(tmp_path: Path) -> None:
    """Through the CLI: needs the --rpc dispatch in governance/cli.py and governance.pipeline's dispatch."""
    import json

    from typer.testing import CliRunner

    from governance.cli import app

    path = policy_without_safe(tmp_path)
    text = path.read_text()
    for old, new in {"positions: 1000": "positions: 200", "paths: 1000": "paths: 150", "bootstrap_resamples: 200": "bootstrap_resamples: 10"}.items():
        text = text.replace(old, new)
    path.write_text(text)
    with EthCallStandin(1337, answers_for(DEMO)) as node:
        result = CliRunner().invoke(app, ["epoch", str(path), "--rpc", node.url, "--block", str(BLOCK), "--out", str(tmp_path / "out"),
                                          "--executor", "serial"])
    assert result.exit_code == 0, result.output
    bundle = tmp_path / "out" / "steward-demo-compound-v3" / "2023-10-31"
    pinned = parse_comet_snapshot_json((bundle / "inputs" / "comet.json").read_bytes(), "comet.json")
    assert pinned.block == BLOCK and pinned.assets == DEMO.assets
    assert json.loads((bundle / "manifest.json").read_text())["block"] == BLOCK
    assert not (bundle / "safe-tx.json").exists()  # no Safe in this policy: calls only
