"""The devnet's borrower book: real Aave positions at a spread of health factors.

Suppliers put liquidity in every reserve; borrowers post WETH / WBTC / wstETH collateral and borrow
USDC or WETH. Each borrower is planned by USD collateral and a target health factor; the token amounts
follow from the oracle prices and the reserves' liquidation thresholds the way the Pool values them
(8-decimal USD base amounts), rounding the debt down so the realised HF is at or just above target.
A plan that the Pool would refuse (debt above the LTV limit) is an error here, before any transaction.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal
from typing import Any

from governance.artifacts import load_artifact
from governance.devnet_aave import AAVE, ReserveSpec
from governance.devnet_chain import Chain, DevnetError
from risk.units import BPS_PER_ONE

VARIABLE_RATE = 2


@dataclass(frozen=True, slots=True)
class BorrowerPlan:
    collateral_usd: tuple[tuple[str, Decimal], ...]
    debt: str
    target_hf: Decimal


def _plan(collateral: Sequence[tuple[str, int]], debt: str, hf: str) -> BorrowerPlan:
    return BorrowerPlan(tuple((s, Decimal(usd)) for s, usd in collateral), debt, Decimal(hf))


# USD each supplier deposits in every reserve.
SUPPLIER_USD: tuple[Decimal, ...] = tuple(Decimal(x) for x in (2_000_000, 3_000_000, 5_000_000, 10_000_000))
# Single-asset WBTC positions cannot start below LT/LTV = 1.068 (the LTV caps the borrow), hence
# the lowest targets use WETH or wstETH collateral.
BORROWERS: tuple[BorrowerPlan, ...] = (
    _plan([("WETH", 150_000)], "USDC", "1.05"),
    _plan([("wstETH", 400_000)], "WETH", "1.08"),
    _plan([("WETH", 250_000)], "USDC", "1.12"),
    _plan([("WBTC", 600_000)], "USDC", "1.15"),
    _plan([("wstETH", 120_000)], "USDC", "1.25"),
    _plan([("WBTC", 300_000)], "WETH", "1.35"),
    _plan([("WETH", 80_000), ("WBTC", 70_000)], "USDC", "1.5"),
    _plan([("WETH", 1_000_000)], "USDC", "1.7"),
    _plan([("wstETH", 200_000), ("WETH", 100_000)], "USDC", "1.9"),
    _plan([("WBTC", 2_000_000)], "USDC", "2.2"),
    _plan([("WETH", 500_000)], "USDC", "2.6"),
    _plan([("wstETH", 50_000)], "WETH", "3.0"),
)
LIQUIDATOR_USD = Decimal(5_000_000)  # held (not supplied) in each borrowable asset


def _units(usd: Decimal, spec: ReserveSpec) -> int:
    """Token units (smallest unit) worth `usd` at the spec's oracle price, rounded down."""
    return int((usd * 10**spec.decimals / spec.price_usd).to_integral_value(rounding=ROUND_FLOOR))


def _base(units: int, spec: ReserveSpec) -> int:
    """The Pool's value of `units`: 8-decimal USD, rounded down as GenericLogic does."""
    return units * spec.price_answer // 10**spec.decimals


@dataclass(frozen=True, slots=True)
class BorrowerAmounts:
    collateral: dict[str, int]
    debt: dict[str, int]
    target_hf: Decimal


def borrower_amounts(plan: BorrowerPlan, specs: Mapping[str, ReserveSpec]) -> BorrowerAmounts:
    """Collateral and debt token amounts that give `plan.target_hf` at the specs' prices."""
    collateral = {symbol: _units(usd, specs[symbol]) for symbol, usd in plan.collateral_usd}
    weighted_lt = sum(_base(u, specs[s]) * specs[s].liquidation_threshold.value for s, u in collateral.items())
    weighted_ltv = sum(_base(u, specs[s]) * specs[s].ltv.value for s, u in collateral.items())
    debt_spec = specs[plan.debt]
    debt_base = Decimal(weighted_lt) / BPS_PER_ONE / plan.target_hf
    debt_units = int((debt_base * 10**debt_spec.decimals / debt_spec.price_answer).to_integral_value(ROUND_FLOOR))
    if _base(debt_units, debt_spec) * BPS_PER_ONE > weighted_ltv:
        raise DevnetError(
            f"borrower book: HF {plan.target_hf} on {dict(plan.collateral_usd)} is below what the LTV allows",
            "raise the target HF or use collateral with LT/LTV below it (governance/devnet_book.py)",
        )
    return BorrowerAmounts(collateral, {plan.debt: debt_units}, plan.target_hf)


def open_book(
    chain: Chain,
    minter: str,
    pool: str,
    tokens: Mapping[str, str],
    specs: Sequence[ReserveSpec],
    suppliers: Sequence[str],
    borrowers: Sequence[str],
    liquidator: str,
) -> dict[str, Any]:
    """Open every position on chain; return the book as recorded in devnet.json."""
    by_symbol = {s.symbol: s for s in specs}
    if len(borrowers) != len(BORROWERS) or len(suppliers) != len(SUPPLIER_USD):
        raise DevnetError("borrower book: account count does not match the plan", "a bug in governance/devnet.py")
    token_art = load_artifact(AAVE, "MintableERC20")
    pool_c = chain.contract(pool, load_artifact(AAVE, "Pool"))
    erc20 = {s: chain.contract(a, token_art) for s, a in tokens.items()}

    def supply(account: str, symbol: str, units: int) -> None:
        step = f"book: {account} supplies {symbol}"
        chain.transact(step + " (mint)", minter, erc20[symbol], "mint", account, units)
        chain.transact(step + " (approve)", account, erc20[symbol], "approve", pool, units)
        chain.transact(step, account, pool_c, "supply", tokens[symbol], units, account, 0)

    book_suppliers = []
    for account, usd in zip(suppliers, SUPPLIER_USD, strict=True):
        supplied = {s.symbol: _units(usd, s) for s in specs}
        for symbol, units in supplied.items():
            supply(account, symbol, units)
        book_suppliers.append({"address": account, "supplied": supplied})

    book_borrowers = []
    for account, plan in zip(borrowers, BORROWERS, strict=True):
        amounts = borrower_amounts(plan, by_symbol)
        for symbol, units in amounts.collateral.items():
            supply(account, symbol, units)
        for symbol, units in amounts.debt.items():
            chain.transact(
                f"book: {account} borrows {symbol} (target HF {plan.target_hf})",
                account,
                pool_c,
                "borrow",
                tokens[symbol],
                units,
                VARIABLE_RATE,
                0,
                account,
            )
        book_borrowers.append(
            {
                "address": account,
                "collateral": amounts.collateral,
                "debt": amounts.debt,
                "target_health_factor": str(plan.target_hf),
            }
        )

    held = {p.debt for p in BORROWERS}
    balances = {symbol: _units(LIQUIDATOR_USD, by_symbol[symbol]) for symbol in sorted(held)}
    for symbol, units in balances.items():
        chain.transact(f"book: fund liquidator with {symbol}", minter, erc20[symbol], "mint", liquidator, units)
    return {
        "suppliers": book_suppliers,
        "borrowers": book_borrowers,
        "liquidator": {"address": liquidator, "balances": balances},
    }
