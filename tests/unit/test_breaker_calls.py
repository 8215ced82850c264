"""Breaker thresholds on chain: the rule's setters in the policy (refused at their line when they cannot
carry what they name), the threshold change under the rule's limit, calls encoded and decoded back to the
same values, a tampered call caught, and a value that does not fit its ABI type named with its rule."""

from __future__ import annotations

import dataclasses
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from governance.calls import decode_call
from governance.venues.breaker_calls import breaker_calls_for, breaker_calls_json, prove_breaker_calls
from governance.venues.generic import GenericSetterError, function_abi
from risk.breaker_changes import BreakerChange, breaker_changes, step
from risk.breaker_policy import Breakers, check_breaker_policy_text, load_breaker_policy
from risk.breakers_calibrate import CalibrationReport, Coverage, Figures, RuleCalibration
from risk.errors import StewardError
from risk.policy import ChangeLimit
from risk.units import Duration, Ratio, Usd

GUARDIAN = "0x00000000000000000000000000000000000000AA"

POLICY = f"""\
version: 1
breakers:
  name: t
  markets:
    - symbol: ETH
      sources:
        - {{name: a, file: a.csv}}
  rules:
    - name: band
      kind: price_band
      window: 1h
      direction: down
      threshold: "5%"
      current: "8%"
      change_limit: {{max_absolute: "2%"}}
      setters:
        - label: Guardian
          contract: "{GUARDIAN.lower()}"
          function: setDropBand(bytes32,uint32,uint16)
          args:
            - {{name: market, text: ETH-USD}}
            - {{name: windowSeconds, parameter: window, unit: seconds}}
            - {{name: maxDropBps, parameter: threshold, unit: bps}}
    - name: stale
      kind: staleness
      threshold: 2h
      current: 3h
      setters:
        - contract: "{GUARDIAN.lower()}"
          function: setMaxStaleness(bytes32,uint256)
          args:
            - {{name: market, text: ETH-USD}}
            - {{name: maxAgeSeconds, parameter: threshold, unit: seconds}}
    - name: vol
      kind: vol_scaling
      threshold: "150%"
      setters:
        - contract: "{GUARDIAN.lower()}"
          function: setVol(uint256,uint256)
          args:
            - {{name: thresholdWad, parameter: threshold, unit: wad}}
            - {{name: maxScaleRay, parameter: max_scale, unit: ray}}
    - name: quiet
      kind: peg
      threshold: "5%"
"""


def parse(text: str) -> Breakers:
    policy, found = check_breaker_policy_text(text.encode(), "b.yaml")
    assert policy is not None, found
    return policy.breakers


def problems(text: str) -> list[str]:
    policy, found = check_breaker_policy_text(text.encode(), "b.yaml")
    assert policy is None
    return [str(p) for p in found]


def figures(threshold: str, meets: bool = True) -> Figures:
    return Figures(threshold, 0.0, 0, 0, 1.0, 0.0, (), (), (), meets)


def report(*rules: RuleCalibration) -> CalibrationReport:
    nothing = Coverage((), (), (), True)
    return CalibrationReport("t", 1.0, 86400, 0, rules, nothing, nothing, ())


def measured(name: str, kind: str, chosen: Ratio | Duration | None) -> RuleCalibration:
    return RuleCalibration(name, kind, "ratio", ("ETH",), True, 1.0, 10, figures("x"), None if chosen is None else figures(str(chosen)), chosen)


def test_the_calibrated_threshold_moves_from_current_by_at_most_the_limit() -> None:
    b = parse(POLICY)
    changes = breaker_changes(b, report(measured("band", "price_band", Ratio.parse("4.5%")), measured("stale", "staleness", Duration.parse("1h")),
                                        measured("vol", "vol_scaling", None)))
    band, stale, vol = changes  # `quiet` has no setter: no change, no call
    assert (band.current, band.target, band.proposed, band.source) == (Ratio.parse("8%"), Ratio.parse("4.5%"), Ratio.parse("6%"), "calibrated")
    assert band.human == "ETH price drop over 1h 8.00% → 6.00%" and "change limit binds: target 4.50%" in band.note
    assert (stale.proposed, stale.source) == (Duration.parse("1h"), "calibrated")  # no limit: straight to the target
    assert (vol.current, vol.proposed, vol.source) == (None, Ratio.parse("150%"), "policy") and "no current value" in vol.note
    # a rule the epoch could not measure (skipped) keeps the policy's threshold, and says so
    (band_only,) = breaker_changes(parse(POLICY.split("    - name: stale")[0]), report())
    assert band_only.target == Ratio.parse("5%") and band_only.source == "policy" and "not measured" in band_only.note


def test_limit_steps_round_toward_current() -> None:
    assert step(Ratio.parse("8%"), Ratio.parse("2%"), ChangeLimit(max_absolute=Ratio.parse("1.5%"))) == Ratio.parse("6.5%")
    assert step(Ratio.parse("200%"), Ratio.parse("100%"), ChangeLimit(max_relative=Ratio.parse("25%"))) == Ratio.parse("150%")
    assert step(Duration(3 * 3600), Duration(3600), ChangeLimit(max_relative=Ratio.parse("50%"))) == Duration(5400)
    assert step(Duration(7), Duration(100), ChangeLimit(max_relative=Ratio.parse("50%"))) == Duration(10)  # 10.5 → 10: never past the limit
    assert step(Duration(7), Duration(1), ChangeLimit(max_relative=Ratio.parse("50%"))) == Duration(4)  # 3.5 → 4
    assert step(Usd.parse("$10"), Usd.parse("$100"), ChangeLimit(max_relative=Ratio.parse("15%"))) == Usd.parse("$11")
    assert step(Ratio.parse("8%"), Ratio.parse("8%"), ChangeLimit(max_absolute=Ratio.parse("0%"))) == Ratio.parse("8%")


def _changes(b: Breakers, band: str = "4.5%") -> tuple[BreakerChange, ...]:
    return breaker_changes(b, report(measured("band", "price_band", Ratio.parse(band)), measured("stale", "staleness", Duration.parse("1h"))))


def test_calls_decode_back_to_the_proposed_thresholds_and_the_rules_settings() -> None:
    b = parse(POLICY)
    changes = _changes(b)
    calls = breaker_calls_for(b, changes)
    prove_breaker_calls(calls, b, changes)
    band, stale, vol = calls
    setters = [r.setters[0] for r in b.rules[:3]]
    assert decode_call(function_abi(setters[0]), band.data) == (b"ETH-USD".ljust(32, b"\0"), 3600, 600)
    assert decode_call(function_abi(setters[1]), stale.data) == (b"ETH-USD".ljust(32, b"\0"), 3600)
    assert decode_call(function_abi(setters[2]), vol.data) == (15 * 10**17, 3 * 10**27)  # 150% in wad, max_scale 300% in ray
    assert band.human == "ETH price drop over 1h 8.00% → 6.00% (rule band)" and band.to == GUARDIAN
    rows = breaker_calls_json(calls, b, changes)
    assert [r["rule"] for r in rows] == ["band", "stale", "vol"]
    assert rows[0]["args"] == {"market": "0x" + b"ETH-USD".ljust(32, b"\0").hex(), "windowSeconds": "3600", "maxDropBps": "600"}
    assert rows[0]["units"]["maxDropBps"] == "threshold in basis points (10000 = 100%)" and rows[0]["units"]["windowSeconds"] == "window in seconds"


def test_an_unchanged_threshold_sends_nothing() -> None:
    b = parse(POLICY.replace('current: "8%"', 'current: "4.5%"'))
    changes = _changes(b)
    assert not changes[0].changed
    assert [c.human.split(" (rule ")[1] for c in breaker_calls_for(b, changes)] == ["stale)", "vol)"]


def test_a_tampered_call_is_caught() -> None:
    b = parse(POLICY)
    changes = _changes(b)
    calls = breaker_calls_for(b, changes)
    other = breaker_calls_for(b, _changes(b, "7%"))  # the same function with another threshold
    with pytest.raises(StewardError, match=r"breaker rule band setters\[0\] setDropBand\(bytes32,uint32,uint16\) argument 'maxDropBps': 700 in bps"):
        prove_breaker_calls([other[0], *calls[1:]], b, changes)
    with pytest.raises(StewardError, match="2 breaker call"):
        prove_breaker_calls(calls[:2], b, changes)


@given(bps=st.integers(1, 65_535), seconds=st.integers(1, 10**8))
def test_every_whole_bps_threshold_and_window_round_trips(bps: int, seconds: int) -> None:
    b = parse(POLICY.split("    - name: stale")[0].replace('      current: "8%"\n      change_limit: {max_absolute: "2%"}\n', ""))
    band = b.rules[0].model_copy(update={"window": Duration(seconds)})
    b = b.model_copy(update={"rules": (band,)})
    (change,) = breaker_changes(b, report(measured("band", "price_band", Ratio(Decimal(bps) / 10_000))))
    (call,) = breaker_calls_for(b, (change,))
    prove_breaker_calls([call], b, (change,))
    assert decode_call(call.function, call.data)[1:] == (seconds, bps)


def test_a_threshold_that_does_not_fit_its_type_names_the_rule_and_setter() -> None:
    b = parse(POLICY.replace("setDropBand(bytes32,uint32,uint16)", "setDropBand(bytes32,uint32,uint8)"))
    with pytest.raises(GenericSetterError, match=r"breaker rule band setters\[0\] setDropBand\(bytes32,uint32,uint8\) argument 'maxDropBps': "
                                                 r"threshold 6.00% is 600 in bps, which does not fit uint8"):
        breaker_calls_for(b, _changes(b))
    b = parse(POLICY)
    with pytest.raises(GenericSetterError, match=r"breaker rule band .* argument 'maxDropBps': 7.125% is not a whole number in bps"):
        breaker_calls_for(b, breaker_changes(b, report(measured("band", "price_band", Ratio.parse("7.125%")))))
    with pytest.raises(GenericSetterError, match=r"breaker rule band .* argument 'windowSeconds': window 1h is 3600 in seconds, which does not fit uint8"):
        b = parse(POLICY.replace("setDropBand(bytes32,uint32,uint16)", "setDropBand(bytes32,uint8,uint16)"))
        breaker_calls_for(b, _changes(b))


def test_setter_mistakes_are_reported_at_their_line() -> None:
    (unknown,) = problems(POLICY.replace("parameter: threshold, unit: bps", "parameter: treshold, unit: bps"))
    assert unknown.startswith("b.yaml:23:34: breakers.rules[0].setters[0].args[2].parameter:") and "'threshold'" in unknown
    (unit,) = problems(POLICY.replace("parameter: threshold, unit: bps", "parameter: threshold, unit: seconds"))
    assert unit == ("b.yaml:16:7: breakers.rules[0].setters: setters[0] argument 'maxDropBps': the threshold of a price_band rule is a ratio; "
                    "write it in bps, wad, ray, e6, raw, not seconds")
    (staleness,) = problems(POLICY.replace("name: maxAgeSeconds, parameter: threshold, unit: seconds", "name: maxAgeSeconds, parameter: threshold, unit: bps"))
    assert staleness.startswith("b.yaml:28:7: breakers.rules[1].setters:") and "is a duration; write it in seconds, not bps" in staleness
    (foreign,) = problems(POLICY.replace("name: maxScaleRay, parameter: max_scale", "name: maxScaleRay, parameter: window"))
    assert "breakers.rules[2].setters: setters[0] argument 'maxScaleRay': a vol_scaling rule has no window; it has threshold, half_life, max_scale, cooldown" in foreign
    (no_threshold,) = problems(POLICY.replace("name: maxAgeSeconds, parameter: threshold", "name: maxAgeSeconds, parameter: cooldown"))
    assert "breakers.rules[1].setters: setters[0] setMaxStaleness(bytes32,uint256) carries no threshold" in no_threshold
    (points,) = problems(POLICY.replace("      current: 3h\n", '      current: 3h\n      change_limit: {max_absolute: "1%"}\n'))
    assert points.startswith("b.yaml:28:7: breakers.rules[1].change_limit:") and "limit it relatively" in points
    (unset,) = problems(POLICY.replace("      window: 1h\n", ""))
    assert "breakers.rules[0]" in unset and "carries the rule's window, which the rule does not set" in unset
    (count,) = problems(POLICY.replace("setMaxStaleness(bytes32,uint256)", "setMaxStaleness(bytes32)"))
    assert "setMaxStaleness(bytes32) takes 1 argument(s); args lists 2" in count


def test_the_example_peg_kill_switch_sends_the_discount_in_wad_per_asset() -> None:
    b = load_breaker_policy(Path(__file__).resolve().parents[2] / "policies" / "usdc-usdt-peg-breaker.yaml").policy.breakers
    (change,) = breaker_changes(b, report(measured("depeg-kill-switch", "peg", Ratio.parse("1.25%"))))
    (call,) = breaker_calls_for(b, (change,))
    prove_breaker_calls([call], b, (change,))
    assert call.human == "USDC, UST peg kill switch, max discount 5.00% → 3.00% (rule depeg-kill-switch)"  # 2 pp per update toward 1.25%
    assert decode_call(call.function, call.data) == ("0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48", 3 * 10**16)


def test_a_calibrated_threshold_that_misses_a_window_or_the_limit_says_so() -> None:
    b = parse(POLICY)
    rule = measured("band", "price_band", Ratio.parse("6%"))
    missing = dataclasses.replace(rule, calibrated=dataclasses.replace(rule.calibrated, missed=("crash:ETH",), meets_false_alarm_limit=False))
    band = breaker_changes(b, report(missing))[0]
    assert band.note == "no candidate meets the false-alarm limit: the one with the fewest; misses crash:ETH at this threshold"
