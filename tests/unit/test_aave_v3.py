"""Aave v3 calls: the ABI matches the real contract, each call decodes back, Aave's rules are named."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from governance.calls import decode_call
from governance.epoch_inputs import gather_inputs
from governance.pipeline import build_files
from governance.venues import aave_v3
from risk.units import Bps, TokenAmount

REPO = Path(__file__).resolve().parents[2]
ARTIFACT = REPO / "node_modules/@aave/core-v3/artifacts/contracts/protocol/pool/PoolConfigurator.sol/PoolConfigurator.json"


def test_function_fragments_match_the_real_pool_configurator_abi() -> None:
    if not ARTIFACT.is_file():
        pytest.skip("node_modules/@aave/core-v3 not installed (run `make install`)")
    abi = json.loads(ARTIFACT.read_text())["abi"]
    real = {f["name"]: [(i["name"], i["type"]) for i in f["inputs"]] for f in abi if f["type"] == "function"}
    for fn in aave_v3.FUNCTIONS:
        assert real[fn.name] == [(i.name, i.type) for i in fn.inputs], fn.signature


def test_selectors_are_keccak_of_the_signatures() -> None:
    """Computed with pycryptodome's keccak, independently of eth_utils used by the encoder."""
    from Crypto.Hash import keccak

    for fn in aave_v3.FUNCTIONS:
        digest = keccak.new(digest_bits=256, data=fn.signature.encode()).digest()[:4]
        assert fn.selector == digest, fn.signature


@pytest.mark.parametrize(
    ("ltv", "lt", "bonus", "rule"),
    [
        (8400, 8300, 500, "ltv <= liquidationThreshold"),
        (8000, 8300, 0, "liquidationBonus > 10000"),
        (8000, 9600, 500, "liquidationThreshold x liquidationBonus / 10000 <= 10000"),
        (0, 0, 500, "LT = 0 disables collateral"),
    ],
)
def test_collateral_rules_name_the_rule(ltv: int, lt: int, bonus: int, rule: str) -> None:
    with pytest.raises(aave_v3.AaveRuleError) as info:
        aave_v3.check_collateral_rules("WETH", Bps(ltv), Bps(lt), Bps(bonus))
    assert rule in info.value.hint


def test_valid_collateral_passes() -> None:
    aave_v3.check_collateral_rules("WETH", Bps(8000), Bps(8300), Bps(500))
    aave_v3.check_collateral_rules("WETH", Bps(0), Bps(0), Bps(0))


def test_caps_above_36_bits_are_refused() -> None:
    with pytest.raises(aave_v3.AaveRuleError, match="maximum"):
        aave_v3.check_cap("USDC", "supply cap", TokenAmount.whole(aave_v3.MAX_CAP + 1, 6, "USDC"))
    assert aave_v3.check_cap("USDC", "supply cap", TokenAmount.whole(aave_v3.MAX_CAP, 6, "USDC")) == aave_v3.MAX_CAP


def test_every_call_of_the_demo_decodes_to_the_recommendation() -> None:
    inputs = gather_inputs(None)
    files = build_files(inputs)
    rec = json.loads(files["recommendation.json"])
    calls = json.loads(files["calls.json"])
    by_name = {f.name: f for f in aave_v3.FUNCTIONS}
    by_asset = {m["asset"]: m for m in rec["markets"].values()}
    assert calls, "the demo should propose changes"
    for call in calls:
        fn = by_name[call["signature"].split("(")[0]]
        args = decode_call(fn, call["data"])
        params = by_asset[args[0]]["parameters"]
        if fn is aave_v3.CONFIGURE_RESERVE_AS_COLLATERAL:
            assert args[1] == params["ltv"]["proposed"]["bps"]
            assert args[2] == params["liquidation_threshold"]["proposed"]["bps"]
            assert args[3] == 10_000 + params["liquidation_bonus"]["proposed"]["bps"]
        elif fn is aave_v3.SET_SUPPLY_CAP:
            assert args[1] == params["supply_cap"]["proposed"]["tokens"]
        else:
            assert args[1] == params["borrow_cap"]["proposed"]["tokens"]
        assert call["to"] == "0x64b761D848206f447Fe2dd461b0c635Ec39EbB27"
        assert call["value"] == "0"
    # a call per changed parameter group, and none for unchanged ones
    changed = {(m, p) for m, v in rec["markets"].items() for p, c in v["parameters"].items() if c["proposed"] != c["current"]}
    caps = sum(1 for _, p in changed if p.endswith("_cap"))
    collateral_markets = {m for m, p in changed if not p.endswith("_cap")}
    assert len(calls) == caps + len(collateral_markets)
