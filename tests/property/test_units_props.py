"""Round trips and rounding bounds of the unit types, for every value hypothesis can think of."""

from __future__ import annotations

import math
from decimal import Context, Decimal

from hypothesis import example, given, settings
from hypothesis import strategies as st

from risk.errors import UnitError
from risk.units import (
    UINT256_MAX,
    Bps,
    Duration,
    Ratio,
    Ray,
    TokenAmount,
    Usd,
    Wad,
)
from risk.units_parse import MAX_DURATION_SECONDS

# Per test, not a global profile: this module must not change other modules' settings.
SETTINGS = settings(max_examples=200, deadline=None)

uint256 = st.integers(min_value=0, max_value=UINT256_MAX)
# Reference arithmetic for the checks: wide enough that nothing here is ever rounded (the default
# context's 28 digits would round the very values these tests are about).
WIDE = Context(prec=500, Emax=10**6, Emin=-(10**6))


def shift(n: int | Decimal, places: int) -> Decimal:
    """``n * 10**places`` exactly, by moving the exponent."""
    sign, digits, exponent = Decimal(n).as_tuple()
    return Decimal((sign, digits, int(exponent) + places))


def fixed_point(places: int) -> st.SearchStrategy[Decimal]:
    """Exact decimals with at most `places` decimals whose scaled value fits uint256 (small ones often)."""
    raw = st.integers(min_value=0, max_value=UINT256_MAX) | st.integers(min_value=0, max_value=10**30)
    return raw.map(lambda n: shift(n, -places))


@st.composite
def decimals(draw: st.DrawFn) -> Decimal:
    """Any finite Decimal a person could write: up to 60 digits, exponents well inside the limits."""
    digits = draw(st.lists(st.integers(0, 9), min_size=1, max_size=60))
    exponent = draw(st.integers(min_value=-60, max_value=30))
    sign = draw(st.integers(0, 1))
    return Decimal((sign, tuple(digits), exponent))


@SETTINGS
@given(st.integers(min_value=-(10**60), max_value=10**60))
@example(0)
@example(1)
@example(-1)
@example(10_000)
def test_bps_to_ratio_to_bps(n: int) -> None:
    assert Bps(n).to_ratio().to_bps() == Bps(n)
    assert WIDE.multiply(Bps(n).to_ratio().value, 10_000) == n


@SETTINGS
@given(fixed_point(18))
@example(Decimal("0.825"))
@example(shift(UINT256_MAX, -18))
def test_ratio_to_wad_to_ratio_is_exact_up_to_18_decimals(d: Decimal) -> None:
    r = Ratio(d)
    wad = r.to_wad()
    assert wad.raw == int(shift(d, 18))
    assert wad.to_ratio() == r


@SETTINGS
@given(fixed_point(27))
@example(shift(UINT256_MAX, -27))
def test_ratio_to_ray_to_ratio_is_exact_up_to_27_decimals(d: Decimal) -> None:
    r = Ratio(d)
    assert r.to_ray().to_ratio() == r
    assert r.to_ray().raw == int(shift(d, 27))


@SETTINGS
@given(uint256)
def test_wad_and_ray_to_ratio_and_back(raw: int) -> None:
    assert Wad(raw).to_ratio().to_wad() == Wad(raw)
    assert Ray(raw).to_ratio().to_ray() == Ray(raw)


@SETTINGS
@given(st.integers(min_value=1, max_value=10**30), st.integers(min_value=19, max_value=40))
def test_digits_below_one_wei_are_never_dropped_silently(n: int, places: int) -> None:
    d = shift(n, -places)
    in_wei = shift(d, 18)
    exact = in_wei == in_wei.to_integral_value()
    try:
        wad = Ratio(d).to_wad()
    except ValueError:
        assert not exact
    else:
        assert exact and wad.raw == int(in_wei)
    down, up = Ratio(d).to_wad("down").raw, Ratio(d).to_wad("up").raw
    assert Decimal(down) <= in_wei <= Decimal(up) and up - down == (0 if exact else 1)


@SETTINGS
@given(decimals())
@example(Decimal("0.825"))
@example(Decimal("-0"))
@example(Decimal("1E+30"))
@example(Decimal("0.12345678901234567890123456789012345"))
def test_str_of_a_ratio_parses_back_to_the_same_ratio(d: Decimal) -> None:
    r = Ratio(d)
    text = str(r)
    assert text.endswith("%") and "E" not in text
    assert Ratio.parse(text) == r
    assert Ratio.parse(text).value == d  # equal as numbers, every digit kept


@SETTINGS
@given(decimals())
def test_bps_rounding_brackets_the_ratio(d: Decimal) -> None:
    r = Ratio(d)
    down, up, nearest = r.to_bps("down"), r.to_bps("up"), r.to_bps("nearest")
    assert down.to_ratio() <= r <= up.to_ratio()
    assert up.value - down.value in (0, 1)
    assert nearest in (down, up)
    assert WIDE.subtract(nearest.to_ratio().value, d).copy_abs() <= Decimal("0.00005")


@SETTINGS
@given(st.integers(min_value=0, max_value=10**40), st.integers(min_value=0, max_value=36), st.text(max_size=5))
def test_whole_tokens_to_raw_to_whole_tokens(tokens: int, decimals_: int, symbol: str) -> None:
    if tokens * 10**decimals_ > UINT256_MAX:
        tokens = UINT256_MAX // 10**decimals_
    amount = TokenAmount.whole(tokens, decimals_, symbol)
    assert amount.raw == tokens * 10**decimals_
    assert amount.to_whole_tokens() == tokens
    assert TokenAmount.from_units(tokens, decimals_, symbol) == amount


@SETTINGS
@given(uint256, st.integers(min_value=0, max_value=36))
def test_raw_to_decimal_text_to_raw(raw: int, decimals_: int) -> None:
    amount = TokenAmount(raw, decimals_, "T")
    assert TokenAmount.from_units(str(amount.to_decimal()), decimals_, "T") == amount
    whole = amount.to_whole_tokens("down")
    assert whole == raw // 10**decimals_
    assert amount.to_whole_tokens("up") == -(-raw // 10**decimals_)


finite_floats = st.floats(allow_nan=False, allow_infinity=False, min_value=-1e6, max_value=1e6)


@SETTINGS
@given(finite_floats)
@example(0.825)
@example(0.1 + 0.2)
@example(5e-324)
@example(-0.0)
def test_bps_from_float_brackets_the_float(x: float) -> None:
    down, up = Bps.from_float(x, "down"), Bps.from_float(x, "up")
    # As ratios, against the number the float prints as (what the risk core meant) ...
    meant = Ratio(Decimal(repr(x)))
    assert down.to_ratio() <= meant <= up.to_ratio()
    # ... and as floats, since float rounding is monotone.
    assert down.as_float() <= x <= up.as_float()
    assert up.value - down.value in (0, 1)
    in_bps = shift(Decimal(repr(x)), 4)
    assert (up == down) == (in_bps == in_bps.to_integral_value())


@SETTINGS
@given(finite_floats, finite_floats)
def test_bps_from_float_is_monotone(a: float, b: float) -> None:
    lo, hi = min(a, b), max(a, b)
    for rounding in ("down", "up", "nearest"):
        assert Bps.from_float(lo, rounding) <= Bps.from_float(hi, rounding)


@SETTINGS
@given(st.floats(allow_nan=False, allow_infinity=False, min_value=-1e12, max_value=1e12))
def test_ratio_from_float_is_within_half_a_quantum(x: float) -> None:
    r = Ratio.from_float(x)
    assert WIDE.subtract(r.value, Decimal(repr(x))).copy_abs() <= Decimal("0.5e-12")
    assert math.isclose(r.as_float(), x, rel_tol=0, abs_tol=1e-12 * max(1.0, abs(x)))


@SETTINGS
@given(st.integers(min_value=0, max_value=MAX_DURATION_SECONDS))
def test_duration_text_parses_back(seconds: int) -> None:
    d = Duration(seconds)
    assert Duration.parse(str(d)) == d


@SETTINGS
@given(decimals(), decimals())
def test_ratio_addition_is_exact_and_ordered(a: Decimal, b: Decimal) -> None:
    ra, rb = Ratio(a), Ratio(b)
    total = ra + rb
    assert total.value == WIDE.add(a, b)
    assert total - rb == ra
    assert (ra < rb) == (a < b) and (ra == rb) == (a == b)


# Anything YAML can produce, plus the texts most likely to reach Decimal's corners.
ANY_VALUE = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**120), max_value=10**120)
    | st.floats()
    | st.text(max_size=30)
    | st.from_regex(r"\A[+-]?[0-9_]{0,8}(\.[0-9]{0,8})?([eE][+-]?[0-9]{1,12})?\s?(%|bps|BPS|[smhdw]| USD)?\Z")
    | st.from_regex(r"\A\$[0-9.]{1,8}([eE][+-]?[0-9]{1,12})?[kKmMbB]?\Z"),
    lambda inner: st.dictionaries(st.sampled_from(["bps", "percent", "ratio", "usd", "hours", "days", "x"]), inner, max_size=2)
    | st.lists(inner, max_size=2),
    max_leaves=4,
)


@SETTINGS
@given(ANY_VALUE)
def test_parsers_return_a_unit_or_raise_unit_error(raw: object) -> None:
    for parse, back in ((Ratio.parse, Ratio), (Usd.parse, Usd), (Duration.parse, Duration)):
        try:
            value = parse(raw)
        except UnitError as exc:
            assert exc.cause and exc.hint
            continue
        assert isinstance(value, back)
        if isinstance(value, Ratio):
            value.to_bps("nearest")  # converting a parsed ratio is bounded, never a hang or overflow
            assert math.isfinite(value.as_float())
        if isinstance(value, Usd):
            assert math.isfinite(value.as_float())
    try:
        TokenAmount.from_units(raw, 18, "T")
    except UnitError as exc:
        assert exc.cause and exc.hint
