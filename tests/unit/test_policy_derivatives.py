"""Perps and options sections of a policy: what validates, what is refused and where the problem is reported."""

from __future__ import annotations

from pathlib import Path

import pytest

from risk.policy import Policy, VenueKind
from risk.policy_derivatives import (
    DerivativeParameter,
    OnChainUnit,
    OptionMarket,
    PerpMarket,
    SetterArg,
    derivative_section,
    signature_parts,
)
from risk.policy_load import check_policy_text, load_policy
from risk.units import Ratio, Usd

REPO = Path(__file__).resolve().parents[2]

PERPS = """\
version: 1
venue: {name: test-perps, kind: perps, protocol: generic, chain_id: 1}
perps:
  markets:
    - symbol: ETH
      price_source: {file: prices.csv, symbol: ETH}
      initial_buffer: "50%"
      liquidity: {depth: "$20M", impact: "1%", liquidation_size: "$1M"}
      current: {mmf: "3%", oi_cap_upper: "$50M"}
      change_limits: {mmf: {max_absolute: "0.5%"}}
      setters:
        - contract: "0x00000000000000000000000000000000000000aa"
          function: setMargin(bytes32,uint256,uint256)
          args:
            - {name: key, text: ETH-USD}
            - {name: imf, parameter: imf, unit: wad}
            - {name: mmf, parameter: mmf, unit: bps, rounding: up}
"""


def problems(text: str) -> list[tuple[str, str]]:
    policy, found = check_policy_text(text.encode(), "p.yaml")
    assert policy is None, "expected problems"
    return [(p.field, p.message) for p in found]


def test_a_perps_policy_validates_without_lending_sections() -> None:
    policy, found = check_policy_text(PERPS.encode(), "p.yaml")
    assert found == [] and policy is not None
    assert policy.venue.kind is VenueKind.PERPS and policy.markets == () and policy.risk_appetite is None
    market = derivative_section(policy).markets[0]
    assert isinstance(market, PerpMarket)
    assert market.current.mmf == Ratio.parse("3%") and market.current.oi_cap_upper == Usd.parse("$50M")  # type: ignore[union-attr]
    assert market.setters[0].parameters == (DerivativeParameter.IMF, DerivativeParameter.MMF)
    assert market.coverage == Ratio.parse("99%") and market.liquidation_horizon.seconds == 86400  # defaults


def test_the_example_policies_validate() -> None:
    perps = load_policy(REPO / "policies" / "dydx-style-perps.yaml").policy
    options = load_policy(REPO / "policies" / "options-venue.yaml").policy
    assert [m.symbol for m in derivative_section(perps).markets] == ["ETH", "BTC"]
    (eth,) = derivative_section(options).markets
    assert isinstance(eth, OptionMarket) and eth.hedging is not None and len(eth.hedging.book.legs or ()) == 4


def test_the_venue_kind_decides_which_sections_are_needed() -> None:
    assert problems(PERPS.replace("kind: perps", "kind: options")) == [("", "an options venue needs options")]
    lending = PERPS.replace("kind: perps", "kind: lending")
    assert problems(lending) == [("", "a lending venue needs markets and risk_appetite")]
    both = PERPS + "options: {markets: [{symbol: ETH, price_source: {file: p.csv}, reference_book: {legs: [{kind: call, moneyness: '100%', expiry: 30d, quantity: 1}]}}]}\n"
    assert problems(both) == [("", "a perps venue has no options section; remove it or change venue.kind")]


@pytest.mark.parametrize(
    ("old", "new", "field", "message"),
    [
        ("{name: imf, parameter: imf, unit: wad}", "{name: imf, parameter: imf}", "perps.markets[0].setters[0].args[1]",
         "argument 'imf': a parameter needs its on-chain unit, and only a parameter has one"),
        ("{name: imf, parameter: imf, unit: wad}", "{name: imf, parameter: imf, unit: raw}", "perps.markets[0].setters[0].args[1]",
         "argument 'imf': unit raw needs decimals, and only raw takes them"),
        ("{name: imf, parameter: imf, unit: wad}", "{name: imf, parameter: imf, unit: e6, rounding: down}", "perps.markets[0].setters[0].args[1]",
         "argument 'imf': rounding applies to bps, wad, ray or whole-token; e6 must be exact"),
        ("{name: imf, parameter: imf, unit: wad}", "{name: imf, parameter: imf, unit: whole-token}", "perps.markets[0].setters[0].args[1]",
         "argument 'imf': imf is a ratio; in whole tokens it would be 0 or 1 (use bps, wad, ray or e6)"),
        ("{name: key, text: ETH-USD}", "{name: key, text: ETH-USD, constant: 1}", "perps.markets[0].setters[0].args[0]",
         "argument 'key': give exactly one of parameter, constant or text (got constant, text)"),
        ("{name: key, text: ETH-USD}", "{name: key, text: " + "x" * 33 + "}", "perps.markets[0].setters[0].args[0]",
         "argument 'key': text '" + "x" * 33 + "' is longer than 32 bytes"),
        ("setMargin(bytes32,uint256,uint256)", "setMargin(bytes32,uint256)", "perps.markets[0].setters[0]",
         "setMargin(bytes32,uint256) takes 2 argument(s); args lists 3"),
        ("setMargin(bytes32,uint256,uint256)", "setMargin(bytes32,uint256,address)", "perps.markets[0].setters[0]",
         "setMargin(bytes32,uint256,address): argument 'mmf' carries mmf, which needs a uint type, not address"),
        ("setMargin(bytes32,uint256,uint256)", "setMargin(bytes32, uint256, uint256)", "perps.markets[0].setters[0].function",
         "'setMargin(bytes32, uint256, uint256)' is not a function signature like setMarginParams(bytes32,uint256,uint256) (no spaces, no tuples)"),
        ("{name: imf, parameter: imf, unit: wad}", "{name: imf, parameter: scan_range, unit: wad}", "perps.markets[0]",
         "setters[0] writes scan_range, which a PerpMarket does not have (mmf, imf, liquidation_fee, oi_cap_lower, oi_cap_upper, hedge_ratio, rebalance_band)"),
        ("{name: imf, parameter: imf, unit: wad}", "{name: imf, parameter: hedge_ratio, unit: wad}", "perps.markets[0]",
         "setters[0] writes hedge_ratio, but the market has no hedging section"),
        ("{name: imf, parameter: imf, unit: wad}", "{name: imf, parameter: oi_cap_lower, unit: bps}", "perps.markets[0].setters[0].args[1]",
         "argument 'imf': oi_cap_lower is a USD amount, not basis points"),
        ('current: {mmf: "3%", oi_cap_upper: "$50M"}', 'current: {mmf: 0.03}', "perps.markets[0].current.mmf",
         "ratio: bare number 0.03 where a ratio is required (hint: say the unit: '3%' if 0.03 is a fraction of one, '0.03%' if a percentage)"),
    ],
)
def test_setter_and_value_problems_are_reported_at_their_field(old: str, new: str, field: str, message: str) -> None:
    assert old in PERPS
    found = problems(PERPS.replace(old, new))
    assert (field, message) in found, found


def test_fee_and_cap_setters_need_liquidity() -> None:
    text = PERPS.replace('      liquidity: {depth: "$20M", impact: "1%", liquidation_size: "$1M"}\n', "").replace(
        "{name: imf, parameter: imf, unit: wad}", "{name: imf, parameter: oi_cap_lower, unit: e6}")
    assert ("perps.markets[0]", "setters write oi_cap_lower, which come from the order book: add liquidity") in problems(text)


def test_student_t_needs_df_and_only_it() -> None:
    text = PERPS.replace('      initial_buffer: "50%"\n', '      initial_buffer: "50%"\n      tail: {kind: student-t}\n')
    assert ("perps.markets[0].tail", "df is given for, and only for, kind: student-t") in problems(text)
    policy, found = check_policy_text(text.replace("kind: student-t}", "kind: student-t, df: 4}").encode(), "p.yaml")
    assert found == [] and derivative_section(policy).markets[0].tail.tail().df == 4.0  # type: ignore[union-attr]


def test_markets_appear_once() -> None:
    body = PERPS[PERPS.index("    - symbol: ETH"):]
    assert ("perps.markets", "market 'ETH' appears twice (markets[0] and markets[1])") in problems(PERPS + body)


def test_hedging_needs_both_depth_and_impact() -> None:
    text = PERPS + """      hedging: {skew: "$10M", max_loss: "2%", cost_budget: "1%", fee: "0.04%", depth: "$20M", ratios: ["100%"], bands: ["5%"]}\n"""
    assert ("perps.markets[0].hedging", "give both depth and impact of the hedge market, or neither") in problems(text)
    zero = text.replace('skew: "$10M"', 'skew: "$0"').replace('depth: "$20M", ', "")
    assert ("perps.markets[0].hedging.skew", "a skew of $0 leaves nothing to hedge") in problems(zero)


def test_signature_parts() -> None:
    assert signature_parts("f()") == ("f", ())
    assert signature_parts("setCaps(bytes32,uint256[],address)") == ("setCaps", ("bytes32", "uint256[]", "address"))
    with pytest.raises(ValueError, match="not a function signature"):
        signature_parts("setCaps((uint256,uint256))")


def test_setter_arg_model_directly() -> None:
    arg = SetterArg(name="x", parameter=DerivativeParameter.MMF, unit=OnChainUnit.RAW, decimals=8)
    assert arg.decimals == 8
    assert Policy.model_json_schema()["properties"]["perps"]  # the sections are part of the schema
