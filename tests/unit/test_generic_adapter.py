"""governance.venues.generic: units on chain and back, calls built from the policy's setter specs, and the
independent decode-and-compare check catching a call that does not say what the recommendation says."""

from __future__ import annotations

import dataclasses
from decimal import Decimal

import pytest
from eth_abi import encode as abi_encode
from hypothesis import given
from hypothesis import strategies as st

from governance.calls import decode_call
from governance.venues.generic import (
    GenericSetterError,
    calls_for,
    calls_json,
    constant_value,
    function_abi,
    onchain_value,
    prove_calls,
    value_back,
)
from risk.errors import StewardError
from risk.policy import Policy
from risk.policy_derivatives import DerivativeParameter, OnChainUnit, Rounding, Setter, SetterArg
from risk.policy_load import check_policy_text
from risk.recommendation_derivatives import (
    DerivativeChange,
    DerivativeMarketRecommendation,
    DerivativeRecommendation,
    PerpFigures,
)
from risk.units import Bps, Usd

D = DerivativeParameter
ENGINE = "0x00000000000000000000000000000000000000AA"

POLICY = f"""\
version: 1
venue: {{name: test-perps, kind: perps, protocol: generic, chain_id: 1}}
perps:
  markets:
    - symbol: ETH
      price_source: {{file: prices.csv}}
      initial_buffer: "50%"
      liquidity: {{depth: "$20M", impact: "1%", liquidation_size: "$1M"}}
      setters:
        - label: Engine
          contract: "{ENGINE.lower()}"
          function: setMargin(bytes32,uint256,uint16)
          args:
            - {{name: key, text: ETH-USD}}
            - {{name: imfWad, parameter: imf, unit: wad}}
            - {{name: mmfBps, parameter: mmf, unit: bps}}
        - contract: "{ENGINE.lower()}"
          function: setCaps(address,uint256,uint256)
          args:
            - {{name: market, constant: "0x00000000000000000000000000000000000000bb"}}
            - {{name: lower, parameter: oi_cap_lower, unit: e6}}
            - {{name: upper, parameter: oi_cap_upper, unit: whole-token}}
"""


def arg(parameter: D = D.MMF, unit: OnChainUnit = OnChainUnit.BPS, **kw: object) -> SetterArg:
    return SetterArg(name="x", parameter=parameter, unit=unit, **kw)  # type: ignore[arg-type]


def policy() -> Policy:
    p, found = check_policy_text(POLICY.encode(), "p.yaml")
    assert p is not None, found
    return p


def change(parameter: D, current: Bps | Usd | None, proposed: Bps | Usd) -> DerivativeChange:
    return DerivativeChange("ETH", parameter, current, proposed, proposed, "no limit in the policy", ("rule",), 1, ())


FIGURES = PerpFigures(price_usd=2000.0, step_seconds=3600, horizon_steps=8, sigma_per_step=0.01, sigma_annualised=0.9,
                      volatility_model="EWMA", tail="normal", move_long=0.05, move_short=0.06, funding_long=0.0, funding_short=0.0,
                      slippage=0.001, mmf=0.061, imf=0.09, liquidation_fee=0.006, oi_cap_lower_usd=2e7, oi_cap_upper_usd=5e7)


def recommendation(*changes: DerivativeChange) -> DerivativeRecommendation:
    market = DerivativeMarketRecommendation("ETH", "perp", FIGURES, changes)
    return DerivativeRecommendation("test-perps", "generic", 1, "perps", "e1", "2021-01-01T00:00:00Z", (), (), (market,))


@pytest.mark.parametrize(
    ("value", "spec", "raw"),
    [
        (Bps(350), arg(), 350),
        (Bps(350), arg(unit=OnChainUnit.WAD), 35 * 10**15),
        (Bps(350), arg(unit=OnChainUnit.RAY), 35 * 10**24),
        (Bps(350), arg(unit=OnChainUnit.E6), 35_000),
        (Bps(350), arg(unit=OnChainUnit.RAW, decimals=8), 3_500_000),
        (Usd.parse("$40M"), arg(D.OI_CAP_UPPER, OnChainUnit.WAD), 40 * 10**24),
        (Usd.parse("$40M"), arg(D.OI_CAP_UPPER, OnChainUnit.E6), 40 * 10**12),
        (Usd.parse("$40M"), arg(D.OI_CAP_UPPER, OnChainUnit.WHOLE_TOKEN), 40_000_000),
        (Usd.parse("$40M"), arg(D.OI_CAP_UPPER, OnChainUnit.RAW, decimals=30), 40 * 10**36),
        (Usd.parse("$1.5"), arg(D.OI_CAP_UPPER, OnChainUnit.WHOLE_TOKEN, rounding=Rounding.DOWN), 1),
        (Usd.parse("$1.5"), arg(D.OI_CAP_UPPER, OnChainUnit.WHOLE_TOKEN, rounding=Rounding.UP), 2),
    ],
)
def test_values_on_chain_and_back(value: Bps | Usd, spec: SetterArg, raw: int) -> None:
    assert onchain_value(value, spec) == raw
    back = value_back(raw, spec, value)
    exact = value.to_ratio().value if isinstance(value, Bps) else value.value
    if spec.rounding is None:
        assert back == exact
    else:
        assert abs(back - exact) < 1 and (back <= exact if spec.rounding is Rounding.DOWN else back >= exact)


def test_inexact_conversions_are_refused_with_the_argument_named() -> None:
    with pytest.raises(GenericSetterError) as err:
        onchain_value(Usd.parse("$0.5"), arg(D.OI_CAP_UPPER, OnChainUnit.WHOLE_TOKEN), "where")
    assert err.value.cause == "where: $0.5 is not a whole number in whole-token"
    assert err.value.hint == "write it in a finer unit, or name a rounding (down, up, nearest)"
    with pytest.raises(GenericSetterError, match=r"0\.01% is not a whole number in raw \(2 decimals\)") as err:
        onchain_value(Bps(1), arg(unit=OnChainUnit.RAW, decimals=2))
    assert err.value.hint == "write it in a finer unit"


@given(bps=st.integers(0, 10_000), unit=st.sampled_from([OnChainUnit.BPS, OnChainUnit.WAD, OnChainUnit.RAY, OnChainUnit.E6]),
       decimals=st.integers(4, 36))
def test_every_whole_bps_ratio_round_trips_exactly(bps: int, unit: OnChainUnit, decimals: int) -> None:
    for spec in (arg(unit=unit), arg(unit=OnChainUnit.RAW, decimals=decimals)):
        assert value_back(onchain_value(Bps(bps), spec), spec, Bps(bps)) == Bps(bps).to_ratio().value


@given(dollars=st.integers(0, 10**15), cents=st.integers(0, 99))
def test_usd_amounts_round_trip_exactly(dollars: int, cents: int) -> None:
    usd = Usd(Decimal(dollars) + Decimal(cents) / 100)
    for spec in (arg(D.OI_CAP_LOWER, OnChainUnit.E6), arg(D.OI_CAP_LOWER, OnChainUnit.WAD), arg(D.OI_CAP_LOWER, OnChainUnit.RAW, decimals=30)):
        assert value_back(onchain_value(usd, spec), spec, usd) == usd.value


def test_calls_fire_for_changed_parameters_and_decode_to_the_recommendation() -> None:
    rec = recommendation(change(D.MMF, Bps(300), Bps(450)), change(D.IMF, Bps(700), Bps(700)),
                         change(D.OI_CAP_LOWER, Usd.parse("$20M"), Usd.parse("$20M")), change(D.OI_CAP_UPPER, Usd.parse("$50M"), Usd.parse("$50M")))
    calls = calls_for(policy(), rec)
    assert len(calls) == 1  # the caps did not change: their setter does not fire
    (call,) = calls
    assert call.to == ENGINE and call.function.signature == "setMargin(bytes32,uint256,uint16)" and call.contract_label == "Engine"
    assert decode_call(call.function, call.data) == (b"ETH-USD".ljust(32, b"\0"), 7 * 10**16, 450)
    assert call.human == "ETH: Initial margin (IMF) 7.00% (unchanged); Maintenance margin (MMF) 3.00% → 4.50%"
    prove_calls(calls, policy(), rec)
    (row,) = calls_json(calls, policy(), rec)
    assert row["args"]["key"] == "0x" + b"ETH-USD".ljust(32, b"\0").hex()
    assert row["units"] == {"key": "text 'ETH-USD' as bytes32", "imfWad": "imf in wad (1e18 = 1)", "mmfBps": "mmf in basis points (10000 = 100%)"}


def test_a_new_value_fires_its_setter_and_constants_are_encoded() -> None:
    rec = recommendation(change(D.MMF, Bps(300), Bps(300)), change(D.IMF, Bps(700), Bps(700)),
                         change(D.OI_CAP_LOWER, None, Usd.parse("$20M")), change(D.OI_CAP_UPPER, None, Usd.parse("$50M")))
    (call,) = calls_for(policy(), rec)
    assert decode_call(call.function, call.data) == ("0x00000000000000000000000000000000000000bb", 20 * 10**12, 50_000_000)
    assert call.human == "ETH: OI cap, lower (IMF starts rising) unknown → $20,000,000; OI cap, upper (IMF reaches 100%) unknown → $50,000,000"


def test_prove_calls_catches_a_call_that_says_something_else() -> None:
    rec = recommendation(change(D.MMF, Bps(300), Bps(450)), change(D.IMF, Bps(700), Bps(700)),
                         change(D.OI_CAP_LOWER, None, Usd.parse("$20M")), change(D.OI_CAP_UPPER, None, Usd.parse("$50M")))
    calls = calls_for(policy(), rec)
    f = calls[0].function
    forged = "0x" + (f.selector + abi_encode(f.types, [b"ETH-USD".ljust(32, b"\0"), 7 * 10**16, 451])).hex()
    with pytest.raises(StewardError, match=r"mmfBps.*451 in bps is 0\.0451, the recommendation says 0\.045"):
        prove_calls([dataclasses.replace(calls[0], data=forged), calls[1]], policy(), rec)
    with pytest.raises(StewardError, match="setter\\(s\\) should fire"):
        prove_calls(calls[:1], policy(), rec)
    wrong_target = dataclasses.replace(calls[1], to="0x00000000000000000000000000000000000000cc")
    with pytest.raises(StewardError, match="is not setCaps"):
        prove_calls([calls[0], wrong_target], policy(), rec)


def test_a_value_that_does_not_fit_its_type_is_refused() -> None:
    text = POLICY.replace("{name: mmfBps, parameter: mmf, unit: bps}", "{name: mmfBps, parameter: mmf, unit: wad}")
    p, _ = check_policy_text(text.encode(), "p.yaml")
    rec = recommendation(change(D.MMF, Bps(300), Bps(450)), change(D.IMF, Bps(700), Bps(700)),
                         change(D.OI_CAP_LOWER, None, Usd.parse("$20M")), change(D.OI_CAP_UPPER, None, Usd.parse("$50M")))
    with pytest.raises(GenericSetterError, match=r"4\.50% is 45000000000000000 in wad, which does not fit uint16"):
        calls_for(p, rec)  # type: ignore[arg-type]


def test_a_setter_for_a_parameter_without_a_value_is_refused() -> None:
    rec = recommendation(change(D.MMF, Bps(300), Bps(450)), change(D.IMF, Bps(700), Bps(700)))
    with pytest.raises(GenericSetterError, match="writes oi_cap_lower, which this recommendation has no value for"):
        calls_for(policy(), rec)


def test_constants_must_fit_their_types() -> None:
    def c(value: object, abi_type: str) -> object:
        return constant_value(SetterArg(name="c", constant=value), abi_type, "where")  # type: ignore[arg-type]

    assert c("0x00000000000000000000000000000000000000bb", "address") == "0x00000000000000000000000000000000000000bb"
    assert c("0x" + "ab" * 32, "bytes32") == bytes.fromhex("ab" * 32)
    assert c(255, "uint8") == 255 and c(-1, "int8") == -1 and c(True, "bool") is True
    for value, abi_type, message in (
        (256, "uint8", "does not fit uint8"), ("0xabcd", "bytes32", "2 bytes for bytes32"), (1, "address", "not an address"),
        (True, "uint256", "not an integer"), ("yes", "bool", "not a boolean"), ("0xzz", "bytes2", "not hex"),
    ):
        with pytest.raises(GenericSetterError, match=message):
            c(value, abi_type)


def test_function_abi_needs_canonical_types() -> None:
    setter = Setter(contract=ENGINE, function="setFee(uint)", args=(SetterArg(name="fee", parameter=D.MMF, unit=OnChainUnit.BPS),))
    with pytest.raises(GenericSetterError, match="write uint256, not uint"):
        function_abi(setter)
    bad = Setter(contract=ENGINE, function="setFee(uint7)", args=(SetterArg(name="fee", parameter=D.MMF, unit=OnChainUnit.BPS),))
    with pytest.raises(GenericSetterError, match="ABI type 'uint7' is not valid"):
        function_abi(bad)
    ok = Setter(contract=ENGINE, function="setFee(uint256)", args=(SetterArg(name="fee", parameter=D.MMF, unit=OnChainUnit.BPS),))
    assert function_abi(ok).selector.hex() == "69fe0e2d"  # keccak256("setFee(uint256)")[:4]
