"""Unit types: every accepted spelling, every refusal with a useful message, exact conversions."""

from __future__ import annotations

from decimal import Decimal

import pytest

from risk.errors import UnitError
from risk.units import (
    BPS_PER_ONE,
    RAY,
    UINT256_MAX,
    WAD,
    Bps,
    Duration,
    Ratio,
    Ray,
    TokenAmount,
    Usd,
    Wad,
)
from risk.units_parse import MAX_DURATION_SECONDS

D = Decimal


# -- parsing: every accepted form -------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("82.5%", "0.825"),
        (" 82.5 % ", "0.825"),
        ("0%", "0"),
        ("100%", "1"),
        ("300%", "3"),
        ("-1.5%", "-0.015"),
        (".5%", "0.005"),
        ("1e1%", "0.1"),
        ("1_000%", "10"),
        ("8250bps", "0.825"),
        ("8250 bps", "0.825"),
        ("8250BPS", "0.825"),
        ("0.5bps", "0.00005"),
        ({"bps": 8250}, "0.825"),
        ({"bps": "8250"}, "0.825"),
        ({"percent": "82.5"}, "0.825"),
        ({"percent": 82}, "0.82"),
        ({"ratio": "0.825"}, "0.825"),
        ({"ratio": 1}, "1"),
    ],
)
def test_ratio_parses_every_written_form(raw: object, expected: str) -> None:
    assert Ratio.parse(raw).value == D(expected)


def test_parse_keeps_every_digit_written() -> None:
    # 32 significant digits: Decimal's default 28-digit context would round this.
    r = Ratio.parse("12.345678901234567890123456789012%")
    assert r.value == D("0.12345678901234567890123456789012")
    assert str(r) == "12.345678901234567890123456789012%"


def test_parse_passes_units_through_and_converts_bps() -> None:
    r = Ratio.parse("1%")
    assert Ratio.parse(r) is r
    assert Ratio.parse(Bps(125)) == Ratio(D("0.0125"))
    assert Bps.parse("82.5%") == Bps(8250)
    assert Bps.parse({"bps": 7}) == Bps(7)


# -- parsing: refusals --------------------------------------------------------------------------


def test_bare_float_is_refused_with_both_readings_in_the_hint() -> None:
    with pytest.raises(UnitError) as info:
        Ratio.parse(0.825, "risk_appetite.coverage")
    err = info.value
    assert err.cause == "risk_appetite.coverage: bare number 0.825 where a ratio is required"
    assert "'82.5%' if 0.825 is a fraction of one" in err.hint
    assert "'0.825%' if a percentage" in err.hint


def test_bare_int_is_refused() -> None:
    with pytest.raises(UnitError) as info:
        Ratio.parse(82, "ltv")
    assert info.value.cause == "ltv: bare number 82 where a ratio is required"
    assert "'8200%' if 82 is a fraction of one" in info.value.hint and "'82%' if a percentage" in info.value.hint


@pytest.mark.parametrize("raw", [float("inf"), float("-inf"), float("nan")])
def test_non_finite_floats_are_refused_with_a_sane_hint(raw: float) -> None:
    with pytest.raises(UnitError) as info:
        Ratio.parse(raw)
    assert "bare number" in info.value.cause
    assert "Infinity" not in info.value.hint and "NaN" not in info.value.hint
    assert "'82.5%'" in info.value.hint


@pytest.mark.parametrize("raw", [True, False, None, [], ["82.5%"], object()])
def test_non_numbers_are_refused(raw: object) -> None:
    with pytest.raises(UnitError) as info:
        Ratio.parse(raw, "bounds.ltv.max")
    assert info.value.cause.startswith("bounds.ltv.max: ")
    assert "is not a ratio" in info.value.cause
    assert "82.5%" in info.value.hint


@pytest.mark.parametrize("raw", ["82.5", "0.825", "82.5 percent", "abc", "", "5%%", "%5", "1.2.3%", "0x10%"])
def test_strings_without_a_unit_or_number_are_refused(raw: str) -> None:
    with pytest.raises(UnitError) as info:
        Ratio.parse(raw, "impact")
    assert info.value.cause.startswith("impact: ")
    assert info.value.hint  # every refusal says how to fix it


def test_unitless_string_names_the_missing_unit() -> None:
    with pytest.raises(UnitError) as info:
        Ratio.parse("82.5", "ltv")
    assert info.value.cause == "ltv: '82.5' has no unit"
    assert "'82.5%'" in info.value.hint and "'8250bps'" in info.value.hint


@pytest.mark.parametrize(
    "raw",
    [{"bps": 8250.0}, {"bps": True}, {"bps": None}, {"bps": "lots"}, {"bps": 1, "percent": 2}, {"basis": 5}, {}],
)
def test_malformed_mappings_are_refused(raw: dict) -> None:
    with pytest.raises(UnitError) as info:
        Ratio.parse(raw)
    assert info.value.hint


def test_boolean_inside_a_mapping_is_called_a_boolean() -> None:
    with pytest.raises(UnitError) as info:
        Ratio.parse({"bps": True}, "ltv")
    assert info.value.cause == "ltv: True is a boolean, not a number"
    assert "true/false" in info.value.hint


def test_float_inside_a_mapping_is_called_inexact() -> None:
    with pytest.raises(UnitError) as info:
        Ratio.parse({"bps": 82.5}, "ltv")
    assert info.value.cause == "ltv: 82.5 is a bare float, which is not exact"


@pytest.mark.parametrize("raw", ["1e999999999%", {"bps": "1e101"}, "1e-200%", "NaN%", {"bps": "Infinity"}, "1" * 101 + "%"])
def test_absurd_numbers_are_refused_not_crashed(raw: object) -> None:
    with pytest.raises(UnitError):
        Ratio.parse(raw)


def test_unit_error_is_a_value_error_so_pydantic_reports_it() -> None:
    with pytest.raises(ValueError):
        Ratio.parse(0.5)


# -- exactness of Ratio -> Bps ------------------------------------------------------------------


def test_to_bps_is_exact() -> None:
    assert Ratio.parse("82.55%").to_bps() == Bps(8255)
    assert Ratio.parse("0%").to_bps() == Bps(0)
    assert Ratio.parse("-0.5%").to_bps() == Bps(-50)


def test_to_bps_refuses_to_drop_precision_unless_told_how() -> None:
    r = Ratio.parse("82.555%")
    with pytest.raises(UnitError) as info:
        r.to_bps()
    assert "82.555% is not a whole number of basis points (8255.5 bps)" == info.value.cause
    assert "rounding=" in info.value.hint
    assert r.to_bps("down") == Bps(8255)
    assert r.to_bps("up") == Bps(8256)
    assert r.to_bps("nearest") == Bps(8256)  # 8255.5 → even neighbour 8256
    assert Ratio.parse("82.565%").to_bps("nearest") == Bps(8256)  # 8256.5 → 8256 (half to even)
    assert Ratio.parse("82.5551%").to_bps("nearest") == Bps(8256)
    assert Ratio.parse("-0.015%").to_bps("down") == Bps(-2)  # down means toward -inf
    assert Ratio.parse("-0.015%").to_bps("up") == Bps(-1)


def test_unknown_rounding_is_a_unit_error() -> None:
    with pytest.raises(UnitError) as info:
        Ratio.parse("1.234%").to_wad("sideways")  # type: ignore[arg-type]
    assert "'sideways'" in info.value.cause and "'down'" in info.value.hint


def test_bps_from_float_names_its_direction() -> None:
    assert Bps.from_float(0.825, "down") == Bps(8250)
    assert Bps.from_float(0.825, "up") == Bps(8250)
    assert Bps.from_float(0.82551, "down") == Bps(8255)
    assert Bps.from_float(0.82551, "up") == Bps(8256)
    assert Bps.from_float(1e-300, "up") == Bps(1)
    assert Bps.from_float(1e-300, "down") == Bps(0)
    assert Bps.from_float(3, "down") == Bps(30000)
    for bad in (float("nan"), float("inf"), True, "0.5"):
        with pytest.raises(UnitError):
            Bps.from_float(bad, "down")  # type: ignore[arg-type]
    with pytest.raises(UnitError):
        Bps.from_float(1e300, "down")  # 1e304 bps: refused, not minutes of int building


def test_ratio_from_float_quantises_to_nearest() -> None:
    assert Ratio.from_float(0.1 + 0.2) == Ratio(D("0.300000000000"))
    assert Ratio.from_float(0.8251, Decimal("0.001")) == Ratio.parse("82.5%")
    assert Ratio.from_float(1e20) == Ratio(D("1e20"))  # wider than Decimal's default 28 digits
    with pytest.raises(UnitError):
        Ratio.from_float(float("nan"))


# -- Wad and Ray ----------------------------------------------------------------------------------


def test_wad_and_ray_conversions_are_exact() -> None:
    r = Ratio.parse("82.5%")
    assert r.to_wad() == Wad(825 * 10**15)
    assert r.to_ray() == Ray(825 * 10**24)
    assert Wad(825 * 10**15).to_ratio() == r
    assert Ray(825 * 10**24).to_ratio() == r
    assert Ratio.parse("100%").to_wad().raw == WAD
    assert Ratio.parse("100%").to_ray().raw == RAY


def test_wad_refuses_digits_below_one_wei() -> None:
    r = Ratio(D("0.1234567890123456789"))  # 19 decimals
    with pytest.raises(UnitError) as info:
        r.to_wad()
    assert "in wad is not an integer (123456789012345678.9)" in info.value.cause
    assert r.to_wad("down") == Wad(123456789012345678)
    assert r.to_wad("up") == Wad(123456789012345679)
    assert r.to_ray() == Ray(123456789012345678900000000)


def test_thirty_digit_ratio_is_not_silently_rounded_into_a_wad() -> None:
    # Under Decimal's default 28-digit context this product rounds to a whole wad and passes.
    with pytest.raises(UnitError):
        Ratio(D("0.1000000000000000000000000000001")).to_wad()


@pytest.mark.parametrize("raw", [0, 1, 10**28 + 1, 2**255 + 12345, UINT256_MAX])
def test_wad_and_ray_round_trip_across_the_whole_uint256_range(raw: int) -> None:
    assert Wad(raw).to_ratio().to_wad() == Wad(raw)
    assert Ray(raw).to_ratio().to_ray() == Ray(raw)


@pytest.mark.parametrize("cls", [Wad, Ray])
def test_wad_and_ray_are_uint256(cls: type) -> None:
    assert cls(UINT256_MAX).raw == UINT256_MAX
    for bad in (-1, UINT256_MAX + 1):
        with pytest.raises(UnitError) as info:
            cls(bad)
        assert "outside uint256" in info.value.cause
    for bad in (1.0, True, "1", D(1)):
        with pytest.raises(UnitError):
            cls(bad)


def test_conversion_above_uint256_is_refused() -> None:
    with pytest.raises(UnitError):
        Ratio(D("1e60")).to_wad()  # 1e78 > 2**256
    assert Ratio(D("1e59")).to_wad() == Wad(10**77)
    with pytest.raises(UnitError):
        Ratio.parse("-1%").to_wad()


# -- token amounts -------------------------------------------------------------------------------


def test_from_units_is_exact() -> None:
    assert TokenAmount.from_units("1.5", 18, "WETH") == TokenAmount(1_500_000_000_000_000_000, 18, "WETH")
    assert TokenAmount.from_units("0.000001", 6, "USDC").raw == 1
    assert TokenAmount.from_units(7, 8, "WBTC").raw == 700_000_000
    assert TokenAmount.from_units("1_000", 0, "X").raw == 1000
    assert TokenAmount.from_units("1." + "0" * 35 + "1", 36).raw == 10**36 + 1


def test_from_units_refuses_more_decimals_than_the_token_has() -> None:
    with pytest.raises(UnitError) as info:
        TokenAmount.from_units("0.0000001", 6, "USDC")
    assert info.value.cause == "0.0000001 USDC has more than 6 decimals"
    assert "1e-6" in info.value.hint


@pytest.mark.parametrize("amount", [1.5, True, None, "one", "-1"])
def test_from_units_refuses_inexact_or_invalid_amounts(amount: object) -> None:
    with pytest.raises(UnitError):
        TokenAmount.from_units(amount, 18, "WETH")


def test_float_amount_hint_is_about_tokens() -> None:
    with pytest.raises(UnitError) as info:
        TokenAmount.from_units(1.5, 18, "WETH")
    assert info.value.cause == "WETH amount: 1.5 is a bare float, which is not exact"
    assert "'1.5'" in info.value.hint and "bps" not in info.value.hint


def test_to_whole_tokens() -> None:
    assert TokenAmount.whole(41_200, 18, "WETH").to_whole_tokens() == 41_200
    half = TokenAmount.from_units("2.5", 8, "WBTC")
    with pytest.raises(UnitError):
        half.to_whole_tokens()
    assert half.to_whole_tokens("down") == 2
    assert half.to_whole_tokens("up") == 3
    assert half.to_whole_tokens("nearest") == 2


def test_to_whole_tokens_is_exact_for_huge_supplies() -> None:
    # A trillion 18-decimal tokens plus one wei: 31 digits, rounded away by a 28-digit context.
    amount = TokenAmount(10**30 + 1, 18, "SHIB")
    with pytest.raises(UnitError):
        amount.to_whole_tokens()
    assert amount.to_whole_tokens("down") == 10**12
    assert amount.to_decimal() == D("1000000000000.000000000000000001")
    assert str(amount) == "1000000000000.000000000000000001 SHIB"


def test_token_amount_validates_its_fields() -> None:
    for raw, decimals, symbol in [(-1, 18, "X"), (1, 37, "X"), (1, -1, "X"), (1, "18", "X"), (1, True, "X"), (1, 18, 5)]:
        with pytest.raises(UnitError):
            TokenAmount(raw, decimals, symbol)  # type: ignore[arg-type]
    with pytest.raises(UnitError):
        TokenAmount.whole(1.5, 18)  # type: ignore[arg-type]
    with pytest.raises(UnitError):
        TokenAmount.from_units("1", 40)


def test_token_amounts_add_and_subtract_within_one_token() -> None:
    a, b = TokenAmount.whole(3, 6, "USDC"), TokenAmount.whole(2, 6, "USDC")
    assert a + b == TokenAmount.whole(5, 6, "USDC")
    assert a - b == TokenAmount.whole(1, 6, "USDC")
    with pytest.raises(UnitError):
        _ = b - a  # below zero is not a token amount
    assert b < a and a >= b


def test_token_amounts_of_different_tokens_do_not_mix() -> None:
    usdc, dai = TokenAmount.whole(1, 6, "USDC"), TokenAmount.whole(1, 18, "DAI")
    with pytest.raises(UnitError) as info:
        usdc + dai
    assert "TokenAmount (1 USDC)" in info.value.cause and "TokenAmount (1 DAI)" in info.value.cause
    with pytest.raises(UnitError):
        _ = usdc < TokenAmount.whole(1, 6, "USDT")
    assert (usdc == TokenAmount.whole(1, 6, "USDT")) is False


# -- Usd and Duration -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("$50M", "50000000"),
        ("$50m", "50000000"),
        ("$2.5k", "2500"),
        ("$1B", "1000000000"),
        ("2500000 USD", "2500000"),
        ("50_000_000 USD", "50000000"),
        ("$ 7", "7"),
        ("$1.25", "1.25"),
        ({"usd": 2500000}, "2500000"),
        ({"usd": "2.5e6"}, "2500000"),
    ],
)
def test_usd_parses(raw: object, expected: str) -> None:
    assert Usd.parse(raw).value == D(expected)


@pytest.mark.parametrize("raw", [50_000_000, 5e7, "50M", "50000000", {"usd": 1.5}, {"dollars": 5}, None, "$", "$1e999999"])
def test_usd_refusals(raw: object) -> None:
    with pytest.raises(UnitError) as info:
        Usd.parse(raw, "liquidity.depth")
    assert info.value.cause.startswith("liquidity.depth: ")
    assert info.value.hint


def test_usd_text() -> None:
    assert str(Usd.parse("$50M")) == "$50,000,000"
    assert str(Usd.parse("$1234.50")) == "$1,234.5"
    assert Usd.parse("$50M").as_float() == 50e6
    with pytest.raises(UnitError):
        Usd(5.0)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("raw", "seconds"),
    [
        ("72h", 72 * 3600),
        ("3d", 3 * 86400),
        ("2w", 14 * 86400),
        ("90m", 5400),
        ("45s", 45),
        (" 1 h ", 3600),
        ("0s", 0),
        ({"hours": 72}, 72 * 3600),
        ({"days": 3}, 3 * 86400),
        ({"seconds": 1}, 1),
        ({"minutes": 2}, 120),
        ({"weeks": 1}, 7 * 86400),
    ],
)
def test_duration_parses(raw: object, seconds: int) -> None:
    assert Duration.parse(raw).seconds == seconds


@pytest.mark.parametrize(
    "raw",
    ["72", 72, 72.0, "72H", "1.5h", "-1h", "3 days", {"hours": 1.5}, {"hours": True}, {"hours": -1}, {"years": 1}, None, "9" * 4000 + "s"],
)
def test_duration_refusals(raw: object) -> None:
    with pytest.raises(UnitError) as info:
        Duration.parse(raw, "scenarios.horizon")
    assert info.value.cause.startswith("scenarios.horizon: ")
    assert "'72h'" in info.value.hint or "at most" in info.value.hint


def test_duration_has_an_upper_limit_and_whole_non_negative_seconds() -> None:
    assert Duration.parse({"seconds": MAX_DURATION_SECONDS}).seconds == MAX_DURATION_SECONDS
    with pytest.raises(UnitError):
        Duration.parse({"seconds": MAX_DURATION_SECONDS + 1})
    for bad in (-1, 1.5, True):
        with pytest.raises(UnitError):
            Duration(bad)  # type: ignore[arg-type]


def test_duration_text_and_hours() -> None:
    assert str(Duration.parse("72h")) == "3d"
    assert str(Duration.parse("90d")) == "90d"
    assert str(Duration.parse("14d")) == "2w"
    assert str(Duration.parse("61s")) == "61s"
    assert str(Duration(0)) == "0s"
    assert Duration.parse("90m").hours == 1.5


# -- mixing units -------------------------------------------------------------------------------------

SAMPLES = [
    Ratio.parse("1%"),
    Bps(100),
    Wad(10**16),
    Ray(10**25),
    TokenAmount.whole(1, 18, "WETH"),
    Usd.parse("$1"),
    Duration.parse("1h"),
]
PAIRS = [(a, b) for a in SAMPLES for b in SAMPLES if type(a) is not type(b)]


@pytest.mark.parametrize(("a", "b"), PAIRS, ids=[f"{type(a).__name__}-{type(b).__name__}" for a, b in PAIRS])
def test_mixing_units_raises_naming_both(a: object, b: object) -> None:
    names = (type(a).__name__, type(b).__name__)
    for op in (lambda: a + b, lambda: a - b, lambda: a < b, lambda: a >= b, lambda: a == b, lambda: a != b):
        with pytest.raises(UnitError) as info:
            op()
        assert all(name in info.value.cause for name in names), info.value.cause
        assert "different units" in info.value.cause
        assert info.value.hint


def test_ratio_and_bps_mix_error_text() -> None:
    with pytest.raises(UnitError) as info:
        Ratio.parse("82.5%") + Bps(8250)
    assert info.value.cause == "cannot add Ratio (82.5%) and Bps (8250bps): different units"
    assert "to_ratio()" in info.value.hint


@pytest.mark.parametrize("unit", SAMPLES, ids=[type(u).__name__ for u in SAMPLES])
@pytest.mark.parametrize("number", [1, 0.5])
def test_bare_numbers_do_not_mix_on_either_side(unit: object, number: float) -> None:
    for op in (lambda: unit + number, lambda: number + unit, lambda: number - unit, lambda: unit < number):
        with pytest.raises(UnitError) as info:
            op()
        assert type(unit).__name__ in info.value.cause and type(number).__name__ in info.value.cause
        assert f"a bare {type(number).__name__} has no unit" in info.value.hint
    assert (unit == number) is False  # equality with a non-unit is simply False


def test_sum_of_ratios_needs_a_ratio_start() -> None:
    parts = [Ratio.parse("1%"), Ratio.parse("2%")]
    assert sum(parts, Ratio.parse("0%")) == Ratio.parse("3%")
    with pytest.raises(UnitError):
        sum(parts)  # starts at int 0


def test_units_without_arithmetic_raise_type_error_not_a_mixing_error() -> None:
    with pytest.raises(TypeError):
        Usd.parse("$1") + Usd.parse("$2")  # type: ignore[operator]
    with pytest.raises(TypeError):
        Duration(1) + Duration(2)  # type: ignore[operator]


# -- same-unit arithmetic, ordering, hashing ---------------------------------------------------------


def test_same_unit_arithmetic_is_exact() -> None:
    assert Ratio.parse("0.1%") + Ratio.parse("0.2%") == Ratio.parse("0.3%")
    assert Ratio.parse("82.5%") - Ratio.parse("0.5%") == Ratio.parse("82%")
    long = Ratio(D("0.1234567890123456789012345678901"))
    assert (long + Ratio.parse("0%")).value == long.value  # no 28-digit rounding
    assert Bps(8250) + Bps(50) == Bps(8300)
    assert Bps(8250) - Bps(8300) == Bps(-50)
    assert -Bps(5) == Bps(-5) and abs(Bps(-5)) == Bps(5)
    assert Bps(8250).as_float() == 0.825 and Ratio.parse("82.5%").as_float() == 0.825
    assert float(Ratio.parse("82.5%")) == 0.825


def test_ordering_within_a_unit() -> None:
    assert Ratio.parse("1%") < Ratio.parse("2%") <= Ratio.parse("2%")
    assert Ratio.parse("3%") > Ratio.parse("2%") >= Ratio.parse("200bps")
    assert sorted([Bps(3), Bps(-1), Bps(2)]) == [Bps(-1), Bps(2), Bps(3)]
    assert Duration.parse("1d") > Duration.parse("23h")
    assert Usd.parse("$1M") < Usd.parse("$1.5M")
    assert Wad(1) < Wad(2) and Ray(2) > Ray(1)


def test_equality_and_hashing() -> None:
    assert Ratio.parse("82.5%") == Ratio.parse("8250bps") == Ratio.parse({"percent": "82.50"})
    assert hash(Ratio.parse("82.5%")) == hash(Ratio.parse("82.50%"))
    assert len({Ratio.parse("82.5%"), Ratio.parse("8250bps"), Ratio.parse("82.6%")}) == 2
    assert {Bps(1): "a"}[Bps(1)] == "a"
    assert len({TokenAmount(1, 6, "USDC"), TokenAmount(1, 6, "USDT"), TokenAmount(1, 6, "USDC")}) == 2
    assert Ratio.parse("0%") == Ratio.parse("-0%")


def test_units_are_frozen() -> None:
    r = Ratio.parse("1%")
    with pytest.raises(AttributeError):
        r.value = D(2)  # type: ignore[misc]
    with pytest.raises(AttributeError):
        Bps(1).value = 2  # type: ignore[misc]


def test_text_forms() -> None:
    assert str(Ratio.parse("82.50%")) == "82.5%"
    assert str(Ratio.parse("8250bps")) == "82.5%"
    assert str(Ratio(D("1E+2"))) == "10000%"
    assert repr(Ratio.parse("1%")) == "Ratio('1%')"
    assert str(Bps(8250)) == "8250bps" and repr(Bps(8250)) == "Bps(8250)"
    assert str(Wad(5)) == "5 wad" and str(Ray(5)) == "5 ray"
    assert str(TokenAmount.from_units("1.50", 18, "WETH")) == "1.5 WETH"
    assert str(TokenAmount.whole(1000, 6)) == "1000"


def test_constants() -> None:
    assert (BPS_PER_ONE, WAD, RAY) == (10_000, 10**18, 10**27)
