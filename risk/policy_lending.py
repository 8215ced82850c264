"""Policy section `lending_core:`: the borrower books, the scenario engine and the optimiser settings.

With this section `steward epoch` recommends lending parameters with the lending risk core
(`risk.optimize`: simulated loss distributions against the risk appetite) instead of the foundation's
closed-form rule (`risk.rule`). Three parts:

* **Books.** Per market, the borrows backed by that collateral (`total_debt`) and how they are spread:
  positions, a lognormal health-factor distribution, the size dispersion and the whales. Defaults for
  every market sit in `book`; a market's entry overrides any of them. The book is *generated*, seeded
  from ``scenarios.seed``; its health factors are assumed to keep their distribution when the
  parameters move (borrowers re-lever to the health factors they hold today).
* **Scenarios.** Monte Carlo paths (Student-t copula, jumps, depegs), filtered historical paths (EWMA
  residuals), and replays of ``scenarios.crash_windows`` (every run of the horizon inside a window,
  its moves rescaled from the volatility before the crash to today's). The horizon, step and seed are
  the `scenarios` section's.
* **Optimiser.** The grid of liquidation thresholds (every `lt_step` from the highest admissible
  one down, scanned until the optimum is known), the buffer between LTV and threshold, the
  keeper's gas, the bootstrap resamples behind each confidence interval, and the finite-difference
  step of the sensitivities.
"""

from __future__ import annotations

from typing import Annotated, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from risk.fields import (
    DurationField,
    RatioField,
    UsdField,
    duration_in,
    ratio_in,
    usd_in,
)
from risk.units import Duration, Ratio, Usd

SYMBOL_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$"  # as risk.policy's (it cannot be imported from here)

Share = Annotated[RatioField, ratio_in("0%", "100%")]
PositiveShare = Annotated[RatioField, ratio_in("0%", "100%", lo_open=True)]


class _Model(BaseModel):
    # Same settings as risk.policy.Model; this module cannot import risk.policy (it is imported by it).
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


def _whole_bps(value: Ratio, what: str) -> Ratio:
    bps = value.value * 10_000
    if bps != bps.to_integral_value():
        raise ValueError(f"{what} {value} is not a whole number of basis points")
    return value


class HealthFactors(_Model):
    """Lognormal health factors: ``median · exp(sigma · Z)``, conditioned on HF >= max(1, LT / LTV)."""

    median: float = Field(default=1.6, gt=0, le=100, description="Median health factor (dimensionless).")
    sigma: float = Field(default=0.35, ge=0, le=5, description="Log standard deviation of the health factors.")


class BookShape(_Model):
    """How a market's borrows are spread over positions (defaults for every market)."""

    positions: int = Field(default=2000, ge=1, le=1_000_000, description="Positions simulated, whales included.")
    health_factor: HealthFactors = HealthFactors()
    size_sigma: float = Field(default=1.5, ge=0, le=10, description="Log standard deviation of ordinary positions' debt.")
    whales: int = Field(default=0, ge=0, le=10_000, description="Positions that share `whale_share` of the debt equally.")
    whale_share: Annotated[RatioField, ratio_in("0%", "100%", hi_open=True)] = Field(
        default=Ratio.parse("0%"), description="Share of the market's borrows the whales hold."
    )

    @model_validator(mode="after")
    def _whales_and_share(self) -> Self:
        if (self.whales > 0) != (self.whale_share.value > 0):
            raise ValueError(f"{self.whales} whales with whale_share {self.whale_share}: give both or neither")
        if self.whales >= self.positions:
            raise ValueError(f"{self.whales} whales among {self.positions} positions: whales must be fewer")
        return self


class MarketBook(_Model):
    """One market's borrows; unset fields take the `book` defaults."""

    symbol: str = Field(pattern=SYMBOL_PATTERN, description="A market of the policy.")
    total_debt: Annotated[UsdField, usd_in("$0", lo_open=True)] = Field(description="Borrows backed by this collateral, USD.")
    positions: int | None = Field(default=None, ge=1, le=1_000_000)
    health_factor: HealthFactors | None = None
    size_sigma: float | None = Field(default=None, ge=0, le=10)
    whales: int | None = Field(default=None, ge=0, le=10_000)
    whale_share: Annotated[RatioField, ratio_in("0%", "100%", hi_open=True)] | None = None

    def shape(self, default: BookShape) -> BookShape:
        """The defaults with this market's overrides (validated together: whales need a share)."""
        given = {k: getattr(self, k) for k in ("positions", "health_factor", "size_sigma", "whales", "whale_share")}  # not symbol
        return BookShape(**{**default.model_dump(), **{k: v for k, v in given.items() if v is not None}})


class Jumps(_Model):
    """Compound-Poisson jumps in log price: `per_year` arrivals, sizes N(mean, std)."""

    per_year: float = Field(ge=0, le=10_000, description="Expected jumps a year.")
    mean: Annotated[RatioField, ratio_in("-100%", "100%")] = Field(description="Mean log size, e.g. '-6%'.")
    std: Annotated[RatioField, ratio_in("0%", "100%")] = Field(description="Standard deviation of the log size.")
    common: bool = Field(default=True, description="One arrival for all assets (market-wide events).")


class DepegSpec(_Model):
    """A pegged asset priced by a mean-reverting deviation from its peg with jump-to-discount events."""

    symbol: str = Field(pattern=SYMBOL_PATTERN)
    peg_to: str | None = Field(default=None, pattern=SYMBOL_PATTERN, description="None: the USD numeraire; else the asset it tracks.")
    half_life: Annotated[DurationField, duration_in("0s", lo_open=True)] = Duration.parse("24h")
    noise: Annotated[RatioField, ratio_in("0%", "100%")] = Field(default=Ratio.parse("0.05%"), description="Log noise per step.")
    events_per_year: float = Field(default=0.0, ge=0, le=10_000)
    mean_size: Annotated[RatioField, ratio_in("0%", "100%")] = Field(default=Ratio.parse("0%"), description="Mean log drop of an event.")


class MonteCarloSettings(_Model):
    """Monte Carlo paths: volatility (EWMA, the policy's) and correlation (Pearson) from the lookback."""

    paths: int = Field(default=2000, ge=0, le=1_000_000, description="0 switches Monte Carlo off.")
    nu: float | None = Field(default=4.0, gt=2, le=1000, description="Student-t degrees of freedom; null for Gaussian shocks.")
    jumps: Jumps | None = None
    depegs: tuple[DepegSpec, ...] = ()


class FilteredHistoricalSettings(_Model):
    """Filtered historical paths: EWMA-standardised lookback residuals times today's volatility."""

    paths: int = Field(default=2000, ge=0, le=1_000_000, description="0 switches filtered historical simulation off.")


class CrashReplay(_Model):
    """Replay `scenarios.crash_windows`; the volatility before each crash is measured over `lead_in`."""

    lead_in: Annotated[DurationField, duration_in("0s", lo_open=True)] = Field(
        default=Duration.parse("14d"), description="History before each window used to measure the calm it started from."
    )


class OptimiserSettings(_Model):
    """The candidate grid and the uncertainty estimates."""

    lt_step: PositiveShare = Field(default=Ratio.parse("1%"), description="Spacing of the liquidation-threshold grid.")
    below_feasible: int = Field(
        default=4, ge=0, le=200, description="Grid points simulated below the highest feasible threshold (for the bootstrap)."
    )
    ltv_buffer: Share = Field(default=Ratio.parse("2.5%"), description="LTV = threshold - buffer.")
    gas: Annotated[UsdField, usd_in("$0")] = Field(default=Usd.parse("$10"), description="Keeper's gas for one liquidation.")
    bootstrap_resamples: int = Field(default=200, ge=0, le=100_000, description="Path resamples per confidence interval (0: none).")
    confidence: Annotated[RatioField, ratio_in("50%", "100%", hi_open=True)] = Ratio.parse("90%")
    sensitivity_step: PositiveShare = Field(default=Ratio.parse("0.25%"), description="Finite-difference step (central).")
    max_steward_updates: int | None = Field(
        default=None, ge=1, le=1000, description="A glide path longer than this is flagged for a DAO vote."
    )
    cascade: bool = Field(default=True, description="Keepers' sales lower the price of later steps (depth curve).")

    @field_validator("lt_step", "ltv_buffer", "sensitivity_step")
    @classmethod
    def _bps(cls, value: Ratio, info: object) -> Ratio:
        return _whole_bps(value, getattr(info, "field_name", "value"))


class LendingCore(_Model):
    """The lending risk core's inputs (see the module docstring)."""

    book: BookShape = BookShape()
    markets: tuple[MarketBook, ...] = Field(min_length=1, description="One entry per policy market: its borrows and book overrides.")
    monte_carlo: MonteCarloSettings = MonteCarloSettings()
    filtered_historical: FilteredHistoricalSettings = FilteredHistoricalSettings()
    crash_replay: CrashReplay | None = Field(default=None, description="Replay scenarios.crash_windows; omit to leave them out.")
    optimiser: OptimiserSettings = OptimiserSettings()

    @field_validator("markets")
    @classmethod
    def _unique(cls, markets: tuple[MarketBook, ...]) -> tuple[MarketBook, ...]:
        seen: dict[str, int] = {}
        for i, book in enumerate(markets):
            if book.symbol in seen:
                raise ValueError(f"market {book.symbol!r} appears twice (markets[{seen[book.symbol]}] and markets[{i}])")
            seen[book.symbol] = i
        return markets

    @model_validator(mode="after")
    def _some_paths(self) -> Self:
        if self.monte_carlo.paths == 0 and self.filtered_historical.paths == 0 and self.crash_replay is None:
            raise ValueError("no scenario: give monte_carlo.paths or filtered_historical.paths > 0, or crash_replay")
        for i, book in enumerate(self.markets):
            try:
                book.shape(self.book)
            except ValueError as exc:  # pydantic's ValidationError is a ValueError
                raise ValueError(f"markets[{i}] ({book.symbol}): {_first_message(exc)}") from None
        return self

    @property
    def symbols(self) -> tuple[str, ...]:
        return tuple(b.symbol for b in self.markets)

    def market(self, symbol: str) -> MarketBook | None:
        """The entry of `symbol`, or None."""
        return next((b for b in self.markets if b.symbol == symbol), None)

    def shape(self, symbol: str) -> BookShape:
        book = self.market(symbol)
        if book is None:
            raise KeyError(symbol)
        return book.shape(self.book)


def _first_message(exc: ValueError) -> str:
    errors = getattr(exc, "errors", None)
    if callable(errors):
        found = errors()
        if found:
            return str(found[0].get("msg", exc))
    return str(exc)


def per_step(per_year: float, step_seconds: int) -> float:
    """An annual rate as a rate per step (365-day year)."""
    return per_year * step_seconds / (365 * 86400)

