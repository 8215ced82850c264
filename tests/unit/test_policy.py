"""Policy parsing: the demo loads, every mistake is reported at its line with its field path."""

from __future__ import annotations

import datetime as dt
import hashlib
from decimal import Decimal
from enum import StrEnum
from pathlib import Path

import pytest
from pydantic import ValidationError
from ruamel.yaml import YAML

from risk.errors import PolicyError
from risk.policy import (
    ChangeLimit,
    FilePriceSource,
    LendingParameter,
    Policy,
    Protocol,
    SyntheticPriceSource,
    VenueKind,
)
from risk.policy_load import MAX_VALUES, Problem, check_policy_text, load_policy
from risk.units import Duration, Ratio, Usd

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "risk" / "demo" / "policy.yaml"
DEMO_TEXT = DEMO.read_text()

# A frozen copy of the demo policy: the mutation tests below edit exact strings of it, so it must not
# follow later edits of risk/demo/policy.yaml (the demo file itself is tested above).
BASE = """\
version: 1
venue:
  name: steward-demo-aave-v3
  kind: lending
  protocol: aave-v3
  chain_id: 1337
  addresses:
    pool_configurator: "0x64b761D848206f447Fe2dd461b0c635Ec39EbB27"
    safe: "0x5300A1a15135EA4dc7aD5a167152C01EFc9b192A"
markets:
  - symbol: WETH
    asset: "0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2"
    decimals: 18
    price_source: {synthetic: demo}
    liquidity: {depth: "$600M", impact: "2%", liquidation_size: "$100M"}
  - symbol: WBTC
    asset: "0x2260FAC5E5542a773Aa44fBCfeDf7C193bc2C599"
    decimals: 8
    price_source: {synthetic: demo}
    liquidity: {depth: "$250M", impact: "2%", liquidation_size: "$50M"}
  - symbol: USDC
    asset: "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48"
    decimals: 6
    price_source: {synthetic: demo}
    liquidity: {depth: "$1B", impact: "0.5%", liquidation_size: "$100M"}
    bounds:
      ltv: {min: "0%", max: "80%"}
      liquidation_threshold: {min: "0%", max: "85%"}
      liquidation_bonus: {min: "3%", max: "10%"}
risk_appetite:
  coverage: "99%"
  var95_max: "0.5%"
  evar99_max: "2%"
  insolvency_probability_max: "1%"
  min_incentive_over_slippage: "1.5%"
  objective: max_borrowing_power
bounds:
  ltv: {min: "0%", max: "85%"}
  liquidation_threshold: {min: "0%", max: "88%"}
  liquidation_bonus: {min: "4%", max: "15%"}
change_limits:
  ltv: {max_absolute: "0.5%", min_delay: "3d"}
  liquidation_threshold: {max_absolute: "0.5%", min_delay: "3d"}
  liquidation_bonus: {max_absolute: "0.5%", min_delay: "3d"}
  supply_cap: {max_relative: "100%", min_delay: "3d"}
  borrow_cap: {max_relative: "100%", min_delay: "3d"}
scenarios:
  step: 1h
  lookback: 90d
  horizon: 72h
  ltv_buffer_horizon: 72h
  paths: 2000
  seed: 20231031
  volatility: {model: ewma, half_life: 72h}
data:
  max_gap: 6h
"""


def check(text: str | bytes, name: str = "p.yaml") -> tuple[Policy | None, list[Problem]]:
    return check_policy_text(text.encode() if isinstance(text, str) else text, name)


def problems_of(text: str | bytes) -> list[Problem]:
    policy, problems = check(text)
    assert policy is None and problems, "expected the policy to be refused"
    return problems


def line_of(text: str, needle: str) -> int:
    """1-based line of the only line containing `needle` (so expectations follow the fixture)."""
    hits = [i for i, line in enumerate(text.splitlines(), 1) if needle in line]
    assert len(hits) == 1, f"{needle!r} is on lines {hits}"
    return hits[0]


def base_with(old: str, new: str) -> str:
    assert BASE.count(old) >= 1, f"{old!r} not in BASE"
    return BASE.replace(old, new, 1)


# -- the demo policy ------------------------------------------------------------------------------


def assert_written_values(obj: object, written: object, path: str) -> int:
    """Every leaf of the YAML equals the policy's value at the same path; returns the leaves checked."""
    if isinstance(written, dict):
        return sum(assert_written_values(getattr(obj, key), value, f"{path}.{key}") for key, value in written.items())
    if isinstance(written, list):
        assert len(obj) == len(written), path  # type: ignore[arg-type]
        return sum(assert_written_values(o, w, f"{path}[{i}]") for i, (o, w) in enumerate(zip(obj, written)))  # type: ignore[call-overload]
    if isinstance(obj, (Ratio, Usd, Duration)):
        assert obj == type(obj).parse(written), path
    elif isinstance(obj, dt.datetime):
        assert obj == dt.datetime.fromisoformat(str(written)).astimezone(dt.UTC), path
    elif isinstance(obj, StrEnum):
        assert obj.value == written, path
    elif isinstance(obj, str) and str(written).startswith("0x"):
        assert obj.lower() == str(written).lower(), path  # addresses come back EIP-55 checksummed
    else:
        assert obj == written and type(obj) is type(written), path
    return 1


def test_demo_policy_loads_with_the_values_written_in_it() -> None:
    loaded = load_policy(DEMO)
    raw = YAML(typ="safe", pure=True).load(DEMO_TEXT)  # an independent reading of the same file
    assert loaded.policy.version == 1
    assert loaded.policy.venue.kind is VenueKind.LENDING and loaded.policy.venue.protocol is Protocol.AAVE_V3
    checked = assert_written_values(loaded.policy, raw, "policy")
    assert checked >= 40  # the demo states dozens of values; a vacuous walk would check none
    assert loaded.sha256 == hashlib.sha256(DEMO.read_bytes()).hexdigest()
    assert loaded.path == DEMO


def test_base_policy_values() -> None:
    policy, problems = check(BASE)
    assert problems == [] and policy is not None
    assert assert_written_values(policy, YAML(typ="safe", pure=True).load(BASE), "policy") >= 60
    weth = policy.market("WETH")
    assert isinstance(weth.price_source, SyntheticPriceSource)
    assert weth.liquidity is not None and weth.liquidity.depth == Usd(Decimal(600_000_000))
    assert policy.market("USDC").bounds is not None and policy.market("USDC").bounds.ltv.max == Ratio(Decimal("0.8"))
    assert policy.change_limits.ltv.max_absolute == Ratio(Decimal("0.005"))
    assert policy.scenarios.horizon == Duration(72 * 3600)


def test_policy_round_trips_through_its_own_json() -> None:
    policy = load_policy(DEMO).policy
    again = Policy.model_validate_json(policy.model_dump_json())
    assert again == policy
    dumped = policy.model_dump(mode="json")
    assert dumped["risk_appetite"]["coverage"] == str(policy.risk_appetite.coverage)
    assert dumped["scenarios"]["step"] == str(policy.scenarios.step)


def test_policy_helpers() -> None:
    policy, _ = check(BASE)
    assert policy is not None
    first = policy.markets[0]
    assert policy.market(first.symbol) is first
    with pytest.raises(PolicyError) as info:
        policy.market("NOPE")
    assert "'NOPE'" in info.value.cause and first.symbol in info.value.hint
    overridden = [m for m in policy.markets if m.bounds is not None]
    plain = [m for m in policy.markets if m.bounds is None]
    assert overridden and plain  # the demo has both kinds
    assert policy.bounds_for(overridden[0]) is overridden[0].bounds
    assert policy.bounds_for(plain[0]) is policy.bounds
    assert policy.change_limits.for_parameter(LendingParameter.SUPPLY_CAP) is policy.change_limits.supply_cap


def test_models_are_frozen() -> None:
    policy, _ = check(BASE)
    assert policy is not None
    with pytest.raises(ValidationError):
        policy.venue.name = "other"  # type: ignore[misc]
    with pytest.raises(ValidationError):
        policy.markets[0].decimals = 6  # type: ignore[misc]
    with pytest.raises(AttributeError):
        policy.markets.append(policy.markets[0])  # type: ignore[attr-defined]  # a tuple


def test_defaults_are_aave_steward_limits() -> None:
    text = strip_section(BASE, "change_limits")
    assert "change_limits" not in text
    policy, problems = check(text)
    assert problems == [] and policy is not None
    assert policy.change_limits.ltv == ChangeLimit(max_absolute=Ratio.parse("0.5%"))
    assert policy.change_limits.borrow_cap.max_relative == Ratio.parse("100%")
    assert policy.change_limits.ltv.min_delay == Duration.parse("3d")


def strip_section(text: str, key: str) -> str:
    """The YAML without the top-level `key:` block."""
    out, skipping = [], False
    for line in text.splitlines():
        if line.startswith(f"{key}:"):
            skipping = True
            continue
        if skipping and (line.startswith(" ") or not line.strip()):
            continue
        skipping = False
        out.append(line)
    return "\n".join(out) + "\n"


# -- a policy with many distinct mistakes -------------------------------------------------------------

BAD = """\
version: 1
venue:
  name: Demo Venue
  kind: lending
  protocol: aave-v4
  chain_id: 1
markets:
  - symbol: WETH
    asset: 0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2
    decimals: 18
    price_source: {synthetic: demo}
    liquidity: {depth: "$40M", impact: 0.02, liquidation_size: "$20M"}
risk_appetite:
  coverage: "99%"
  var95_max: "0.5%"
  evar99_max: "2%"
  insolvency_probabilty_max: "1%"
  min_incentive_over_slippage: "1.5%"
bounds:
  ltv: {min: "90%", max: "85%"}
change_limits:
  ltv: {max_absolute: "0.5%", max_relative: "10%"}
  liquidation_threshold: {min_delay: 3d}
scenarios:
  horizon: 24 hours
  paths: "2000"
"""


def test_every_mistake_is_reported_once_at_its_line_with_its_field() -> None:
    problems = problems_of(BAD)
    got = [(p.line, p.field) for p in problems]
    expected = [
        (line_of(BAD, "name: Demo Venue"), "venue.name"),
        (line_of(BAD, "protocol: aave-v4"), "venue.protocol"),
        (line_of(BAD, "asset: 0x"), "markets[0].asset"),
        (line_of(BAD, "impact: 0.02"), "markets[0].liquidity.impact"),
        (line_of(BAD, "risk_appetite:"), "risk_appetite.insolvency_probability_max"),
        (line_of(BAD, "insolvency_probabilty_max"), "risk_appetite.insolvency_probabilty_max"),
        (line_of(BAD, 'ltv: {min: "90%"'), "bounds.ltv"),
        (line_of(BAD, "max_relative"), "change_limits.ltv"),
        (line_of(BAD, "liquidation_threshold: {min_delay"), "change_limits.liquidation_threshold"),
        (line_of(BAD, "horizon: 24 hours"), "scenarios.horizon"),
        (line_of(BAD, 'paths: "2000"'), "scenarios.paths"),
    ]
    assert got == expected
    by_field = {p.field: p for p in problems}
    assert "pattern" in by_field["venue.name"].message
    assert "'aave-v3'" in by_field["venue.protocol"].message
    assert "quoted string" in by_field["markets[0].asset"].message and "quote it" in by_field["markets[0].asset"].message
    assert "bare number 0.02" in by_field["markets[0].liquidity.impact"].message
    assert "'2%'" in by_field["markets[0].liquidity.impact"].message
    assert by_field["risk_appetite.insolvency_probability_max"].message == "required field is missing"
    assert "did you mean 'insolvency_probability_max'" in by_field["risk_appetite.insolvency_probabilty_max"].message
    assert by_field["bounds.ltv"].message == "min 90% is above max 85%"
    assert by_field["change_limits.ltv"].message == "give exactly one of max_absolute or max_relative"
    assert by_field["change_limits.liquidation_threshold"].message == "give exactly one of max_absolute or max_relative"
    assert "'24 hours' is not a duration" in by_field["scenarios.horizon"].message
    assert "valid integer" in by_field["scenarios.paths"].message


def test_columns_point_at_the_key_inside_a_flow_mapping() -> None:
    (impact,) = [p for p in problems_of(BAD) if p.field.endswith("impact")]
    line = BAD.splitlines()[impact.line - 1]
    assert line[impact.column - 1 :].startswith("impact:")


def test_problem_text_is_file_line_column_field_message() -> None:
    p = Problem("a.yaml", 3, 5, "venue.name", "bad")
    assert str(p) == "a.yaml:3:5: venue.name: bad"
    assert str(Problem("a.yaml", 1, 1, "", "not UTF-8")) == "a.yaml:1:1: not UTF-8"


def test_load_policy_raises_with_every_problem(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(BAD)
    with pytest.raises(PolicyError) as info:
        load_policy(path)
    err = info.value
    assert err.cause == f"{path}: 11 problem(s) in the policy"
    assert len(err.problems) == 11 and all(p.startswith(f"{path}:") for p in err.problems)
    assert "steward validate" in err.hint


def test_display_name_replaces_the_path_in_messages(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(BAD)
    with pytest.raises(PolicyError) as info:
        load_policy(path, display_name="inputs/policy.yaml")
    assert all(p.startswith("inputs/policy.yaml:") for p in info.value.problems)


# -- one mistake at a time -----------------------------------------------------------------------------


def test_unknown_key_at_the_top_level() -> None:
    text = BASE + "scenarioz: {paths: 5}\n"
    (p,) = problems_of(text)
    assert (p.line, p.column, p.field) == (line_of(text, "scenarioz"), 1, "scenarioz")
    assert p.message == "unknown field; did you mean 'scenarios'?"


def test_unknown_key_without_a_near_miss() -> None:
    (p,) = problems_of(BASE + "colour: blue\n")
    assert p.field == "colour" and "unknown field (typo?)" in p.message and "schema.json" in p.message


def test_duplicate_market_symbol() -> None:
    text = BASE.replace("symbol: WBTC", "symbol: WETH")
    (p,) = problems_of(text)
    assert p.field == "markets" and p.line == line_of(text, "markets:")
    assert p.message == "market 'WETH' appears twice (markets[0] and markets[1])"


def test_duplicate_market_is_reported_alongside_other_problems() -> None:
    text = BASE.replace("symbol: WBTC", "symbol: WETH").replace('coverage: "99%"', "coverage: 0.99")
    assert [p.field for p in problems_of(text)] == ["markets", "risk_appetite.coverage"]


@pytest.mark.parametrize(
    ("old", "new", "field", "message"),
    [
        ('ltv: {min: "0%", max: "85%"}', 'ltv: {min: "86%", max: "85%"}', "bounds.ltv", "min 86% is above max 85%"),
        ('ltv: {min: "0%", max: "85%"}', 'ltv: {min: "-5%", max: "85%"}', "bounds.ltv.min", "-5% is out of range: must be at least 0% and at most 100%"),
        ('ltv: {min: "0%", max: "85%"}', 'ltv: {min: "0%", max: "185%"}', "bounds.ltv.max", "185% is out of range: must be at least 0% and at most 100%"),
        ('var95_max: "0.5%"', 'var95_max: "-0.5%"', "risk_appetite.var95_max", "-0.5% is out of range: must be at least 0% and at most 100%"),
        ('coverage: "99%"', 'coverage: "100%"', "risk_appetite.coverage", "coverage 100% must be at least 50% and below 100%"),
        ('coverage: "99%"', 'coverage: "49.99%"', "risk_appetite.coverage", "coverage 49.99% must be at least 50% and below 100%"),
        ('impact: "2%"', 'impact: "0%"', "markets[0].liquidity.impact", "0% is out of range: must be above 0% and at most 100%"),
        ('depth: "$600M"', 'depth: "$0"', "markets[0].liquidity.depth", "$0 is out of range: must be above $0"),
        ("half_life: 72h", "half_life: 0s", "scenarios.volatility.half_life", "0s is out of range: must be above 0s"),
        ("lookback: 90d", "lookback: 5h", "scenarios.lookback", "lookback 5h is under 10 steps of 1h"),
        ("step: 1h", "step: 0s", "scenarios.step", "0s is out of range: must be above 0s"),
        ('max_absolute: "0.5%", min_delay: "3d"', 'max_absolute: "-0.5%", min_delay: "3d"', "change_limits.ltv.max_absolute", "-0.5% is out of range: must be at least 0% and at most 100%"),
        ("paths: 2000", "paths: 0", "scenarios.paths", "Input should be greater than 0"),
        ("decimals: 18", "decimals: 37", "markets[0].decimals", "Input should be less than or equal to 36"),
        ("chain_id: 1337", "chain_id: 0", "venue.chain_id", "Input should be greater than 0"),
    ],
)
def test_values_out_of_range(old: str, new: str, field: str, message: str) -> None:
    text = base_with(old, new)
    (p,) = problems_of(text)
    assert (p.field, p.message) == (field, message)
    assert p.line == line_of(text, new)


@pytest.mark.parametrize(
    ("limit", "ok"),
    [
        ('{max_absolute: "0.5%"}', True),
        ('{max_relative: "30%"}', True),
        ('{max_absolute: "0%"}', True),  # pins the parameter
        ('{max_absolute: "0.5%", max_relative: "30%"}', False),
        ("{min_delay: 3d}", False),
        ("{}", False),
    ],
)
def test_change_limit_needs_exactly_one_kind(limit: str, ok: bool) -> None:
    text = base_with('ltv: {max_absolute: "0.5%", min_delay: "3d"}', f"ltv: {limit}")
    policy, problems = check(text)
    if ok:
        assert policy is not None and problems == []
    else:
        (p,) = problems
        assert (p.field, p.message) == ("change_limits.ltv", "give exactly one of max_absolute or max_relative")


def test_crash_window_must_end_after_it_starts() -> None:
    text = base_with("  volatility:", "  crash_windows:\n    - {name: ftx, start: 2022-11-12T00:00:00Z, end: 2022-11-06T00:00:00Z}\n  volatility:")
    (p,) = problems_of(text)
    assert p.field == "scenarios.crash_windows[0].end" and p.message == "window 'ftx' starts at or after its end"
    assert p.line == line_of(text, "name: ftx")


def test_timestamps_are_normalised_to_utc() -> None:
    window = "    - {name: x, start: 2022-11-15T00:00:00+02:00, end: \"2022-11-16\"}\n"
    policy, problems = check(base_with("  volatility:", "  crash_windows:\n" + window + "  volatility:"))
    assert problems == [] and policy is not None
    (w,) = policy.scenarios.crash_windows
    assert w.start == dt.datetime(2022, 11, 14, 22, tzinfo=dt.UTC)
    assert w.end == dt.datetime(2022, 11, 16, tzinfo=dt.UTC)


def test_price_source_errors_name_the_field_not_the_union_branch() -> None:
    (p,) = problems_of(base_with("price_source: {synthetic: demo}", "price_source: {synthetic: real}"))
    assert (p.field, p.message) == ("markets[0].price_source.synthetic", "Input should be 'demo'")
    (p,) = problems_of(base_with("price_source: {synthetic: demo}", "price_source: {file: x.csv, colum: close}"))
    assert p.field == "markets[0].price_source.colum" and "did you mean 'column'" in p.message
    (p,) = problems_of(base_with("price_source: {synthetic: demo}", "price_source: 5"))
    assert (p.field, p.message) == ("markets[0].price_source", "a price source is {file: ..., symbol: ...} or {synthetic: demo}")


def test_file_price_source() -> None:
    policy, problems = check(base_with("price_source: {synthetic: demo}", "price_source: {file: prices.csv, symbol: WETH}"))
    assert problems == [] and policy is not None
    assert policy.markets[0].price_source == FilePriceSource(file="prices.csv", symbol="WETH")


# -- YAML surprises --------------------------------------------------------------------------------------


def test_unquoted_hex_address_is_refused_with_a_hint() -> None:
    text = base_with('asset: "0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2"', "asset: 0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2")
    (p,) = problems_of(text)
    assert p.field == "markets[0].asset" and p.line == line_of(text, "asset: 0xC02a")
    assert "got the number 0xc02aaa39b223fe8d0a0e5c4f27ead9083c756cc2" in p.message
    assert 'quote it in YAML: "0xC02a..."' in p.message


def test_0x10_is_a_number_to_yaml() -> None:
    (p,) = problems_of(base_with('asset: "0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2"', "asset: 0x10"))
    assert "got the number 0x10" in p.message
    policy, problems = check(base_with("seed: 20231031", "seed: 0x10"))
    assert problems == [] and policy is not None and policy.scenarios.seed == 16  # an int field may take hex


def test_bad_address_checksum_and_length() -> None:
    (p,) = problems_of(base_with("0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2", "0xc02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2"))
    assert "wrong EIP-55 checksum" in p.message and "0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2" in p.message
    (p,) = problems_of(base_with("0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2", "0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756C"))
    assert "not a 20-byte hex address" in p.message
    policy, _ = check(base_with("0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2", "0xc02aaa39b223fe8d0a0e5c4f27ead9083c756cc2"))
    assert policy is not None and policy.markets[0].asset == "0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2"


@pytest.mark.parametrize("word", ["no", "yes", "on", "off", "y", "n"])
def test_yaml_1_1_booleans_stay_strings(word: str) -> None:
    policy, problems = check(base_with("symbol: WBTC", f"symbol: {word}").replace("name: steward-demo-aave-v3", f"name: {word}"))
    assert problems == [] and policy is not None
    assert policy.markets[1].symbol == word and policy.venue.name == word


def test_true_is_not_a_string_or_a_version() -> None:
    (p,) = problems_of(base_with("symbol: WBTC", "symbol: true"))
    assert p.field == "markets[1].symbol" and "valid string" in p.message
    (p,) = problems_of(base_with("version: 1", "version: true"))
    assert p.field == "version" and "integer 1" in p.message


def test_anchored_true_is_still_a_boolean() -> None:
    # ruamel gives an anchored `true` as ScalarBoolean, an int subclass: it must not pass as 1.
    (p,) = problems_of(base_with("version: 1", "version: &v true"))
    assert p.field == "version" and "bool" in p.message
    (p,) = problems_of(base_with("chain_id: 1337", "chain_id: &c true"))
    assert p.field == "venue.chain_id"


@pytest.mark.parametrize("value", ["1e18", "1.0e+18", "2000.0"])
def test_floats_are_not_integers(value: str) -> None:
    text = base_with("paths: 2000", f"paths: {value}")
    (p,) = problems_of(text)
    assert (p.field, p.line) == ("scenarios.paths", line_of(text, f"paths: {value}"))
    assert "valid integer" in p.message


def test_version_must_be_the_integer_one() -> None:
    for bad in ("1.0", '"1"', "2"):
        text = base_with("version: 1", f"version: {bad}")
        (p,) = problems_of(text)
        assert (p.field, p.line) == ("version", line_of(text, f"version: {bad}"))


def test_bare_float_ratio_is_refused() -> None:
    text = base_with('coverage: "99%"', "coverage: 0.99")
    (p,) = problems_of(text)
    assert (p.field, p.line) == ("risk_appetite.coverage", line_of(text, "coverage: 0.99"))
    assert "bare number 0.99 where a ratio is required" in p.message and "'99%'" in p.message


def test_ratio_spelled_with_a_unit_mapping() -> None:
    policy, problems = check(base_with('coverage: "99%"', "coverage: {bps: 9900}"))
    assert problems == [] and policy is not None and policy.risk_appetite.coverage == Ratio.parse("99%")


def test_merge_keys_load_and_errors_point_at_the_anchor() -> None:
    text = base_with(
        'liquidation_threshold: {min: "0%", max: "88%"}\n  liquidation_bonus',
        'liquidation_threshold: &lt {min: "0%", max: "88%"}\n  liquidation_bonus',
    ) + "snapshot:\n  <<: {file: s.json, extra: 1}\n"
    (p,) = problems_of(text)
    assert p.field == "snapshot.extra" and p.line == line_of(text, "<<: {file")
    ok, problems = check(base_with("data:\n", 'data:\n  <<: {spike_threshold: "30%", max_gap: 1h}\n'))
    assert problems == [] and ok is not None
    assert ok.data.spike_threshold == Ratio.parse("30%")  # merged in
    assert ok.data.max_gap == Duration.parse("6h")  # the explicit key wins over the merge


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("!custom x", "the YAML tag !custom is not supported; remove it"),
        ("!!binary aGVsbG8=", "binary data (!!binary) is not supported"),
        ("!!set {a, b}", "a set (!!set) is not supported; use a list"),
    ],
)
def test_unsupported_yaml_is_a_problem_not_a_crash(value: str, message: str) -> None:
    text = BASE + f"snapshot: {value}\n"
    (p,) = problems_of(text)
    assert (p.field, p.message, p.line) == ("snapshot", message, line_of(text, "snapshot:"))


def test_unsupported_value_does_not_hide_other_problems() -> None:
    text = base_with('coverage: "99%"', "coverage: 0.99") + "snapshot: !custom x\n"
    fields = [p.field for p in problems_of(text)]
    assert fields == ["risk_appetite.coverage", "snapshot"]


def test_alias_bomb_is_refused_quickly() -> None:
    lines = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    for prev, name in zip("abcdefgh", "bcdefghi"):
        lines.append(f"{name}: &{name} [{', '.join(['*' + prev] * 10)}]")
    (p,) = problems_of("\n".join(lines) + "\n")
    assert p.message == f"the YAML expands to more than {MAX_VALUES} values (aliases nested too deep?)"


def test_non_string_keys_are_unknown_fields_at_their_line() -> None:
    text = BASE + "1: x\n~: y\n2.5: z\n"
    got = [(p.field, p.line) for p in problems_of(text)]
    assert got == [("1", line_of(text, "1: x")), ("null", line_of(text, "~: y")), ("2.5", line_of(text, "2.5: z"))]
    # true == 1 for Python's dict, so ruamel sees a duplicate key: still a problem, not a crash.
    (p,) = problems_of(BASE + "1: x\ntrue: z\n")
    assert "duplicate key" in p.message and p.line == len(BASE.splitlines()) + 2


# -- files that are not policies ---------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["", "# only a comment\n", "- a\n- b\n", "just text\n", "42\n", "null\n"])
def test_root_must_be_a_mapping(text: str) -> None:
    (p,) = problems_of(text)
    assert (p.line, p.column, p.field) == (1, 1, "")
    assert p.message == "a policy is a YAML mapping (venue:, markets:, ...)"


def test_yaml_syntax_error_reports_its_line() -> None:
    text = base_with("  kind: lending", "  kind: [lending")
    (p,) = problems_of(text)
    assert p.message.startswith("YAML syntax: ")
    assert p.line > line_of(text, "kind: [lending") - 1  # the parser notices at or after the bracket
    text = base_with("  protocol: aave-v3", "  protocol: aave-v3\n bad indent: 1")
    (p,) = problems_of(text)
    assert p.line == line_of(text, "bad indent") and p.message.startswith("YAML syntax: ")


def test_duplicate_key_reports_the_second_occurrence() -> None:
    text = BASE + "version: 1\n"
    (p,) = problems_of(text)
    assert p.line == len(text.splitlines()) and 'duplicate key "version"' in p.message


def test_control_character_reports_its_position() -> None:
    (p,) = problems_of("version: 1\nvenue: \x00\n")
    assert (p.line, p.column) == (2, 8) and "\n" not in p.message


def test_non_utf8_bytes() -> None:
    (p,) = problems_of(b"version: 1\nvenue: \xff\xfe\n")
    assert (p.line, p.column) == (1, 1) and p.message == "not UTF-8 text (invalid start byte at byte 18)"


def test_load_policy_missing_file(tmp_path: Path) -> None:
    with pytest.raises(PolicyError) as info:
        load_policy(tmp_path / "nope.yaml")
    assert info.value.cause == f"policy file {tmp_path / 'nope.yaml'} not found"
    assert info.value.hint == "check the path (policies live in policies/)"


def test_load_policy_directory(tmp_path: Path) -> None:
    with pytest.raises(PolicyError) as info:
        load_policy(tmp_path)
    assert "is a directory" in info.value.cause and info.value.hint


def test_load_policy_unreadable_file(tmp_path: Path) -> None:
    path = tmp_path / "locked.yaml"
    path.write_text(BASE)
    path.chmod(0)
    try:
        if path.stat().st_mode & 0o777 == 0 and not _can_read(path):
            with pytest.raises(PolicyError) as info:
                load_policy(path)
            assert "cannot be read" in info.value.cause and "permission" in info.value.hint
        else:  # running as root: the file stays readable, so it must load
            assert load_policy(path).policy.version == 1
    finally:
        path.chmod(0o644)


def _can_read(path: Path) -> bool:
    try:
        path.read_bytes()
    except OSError:
        return False
    return True


def test_reused_anchor_is_legal_and_quiet(recwarn: pytest.WarningsRecorder) -> None:
    text = base_with("  max_gap: 6h", "  max_gap: &d 6h") + "snapshot: &d {file: s.json}\n"
    policy, problems = check(text)
    assert problems == [] and policy is not None and policy.snapshot is not None
    assert [w for w in recwarn if "anchor" in str(w.message)] == []
