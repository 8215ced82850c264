"""Contract truth for the risk core: its health factors and liquidations against the real Aave v3 Pool.

For each collateral asset (WETH, WBTC, wstETH) the test takes the devnet book's single-collateral USDC
borrowers plus a few fresh ones (seeded sizes, health factors in 1.02–1.6), walks the asset's oracle
price down a seeded path (8–12 steps of −2…−6%, then gaps of −12% and −25% so that some positions
fall straight below 0.95 and some run out of collateral) and at
every step compares, position by position:

* ``Pool.getUserAccountData`` (collateral and debt in 8-decimal USD, LT, HF in wad) with
  `risk.book.Book.health_factors` on the same token amounts, price and LT;
* each ``liquidationCall(collateral, USDC, user, type(uint256).max, false)`` the liquidator sends to a
  position with HF < 1 (one call per position per step, as the core assumes) with a one-position
  `risk.lending.run_ledger` at that price: debt repaid, collateral received by the liquidator, the
  treasury's aToken fee, what the borrower keeps, and the health factor after;

and at the end the core's whole-path ledger (`run_ledger` and the scalar `tests/reference_lending.py`)
with the sum of what happened on chain.

Interest: the clock is frozen (``anvil_setBlockTimestampInterval 0``), so every block of the path has
the same timestamp and Aave accrues nothing (``updateState`` is a no-op within one second); the core is
nevertheless fed the amounts read from chain at every step, and the test checks that an untouched
position's debt did not move. Market parameters come from the chain (data provider, oracle), not from
the snapshot the devnet was built from.

Tolerances, from the Pool's integer arithmetic (GenericLogic / LiquidationLogic, core-v3 1.19.3):
* HF: the collateral and the debt are truncated to 1e-8 USD, ``percentMul(LT)`` and ``wadDiv`` round
  half up, so the relative error is below ``2/collateralBase + 1/debtBase`` plus float64 rounding.
* Token amounts: ``baseCollateral`` is floored, ``percentMul(bonus)``, ``percentDiv(bonus)`` and
  ``percentMul(fee)`` round half up, the aToken/debt-token burns round through ``rayDiv``: a few wei,
  plus float64 rounding of the core (about 1e-16 per operation on amounts up to 1e21 wei).

One modelling difference is asserted rather than hidden: when a liquidation takes all the collateral,
Aave v3.0 leaves the uncovered debt on the borrower's account (HF 0, nothing left to seize) where the
core writes it off (`Ledger.written_off_usd`; Aave v3.3 burns it as a reserve deficit).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import numpy as np
import pytest
from eth_utils import to_checksum_address
from reference_lending import reference_ledger

from governance import devnet as devnet_mod
from governance.artifacts import load_artifact
from governance.devnet_aave import load_reserve_specs
from governance.devnet_book import VARIABLE_RATE, BorrowerPlan, borrower_amounts
from governance.devnet_chain import Chain
from risk.book import Book
from risk.lending import Ledger, run_ledger
from risk.lending_params import LendingMarket

pytestmark = pytest.mark.e2e

AAVE = "@aave/core-v3"
DEBT = "USDC"
SEED = 20261121
FRESH_PER_ASSET = 6
# Two last steps: gaps of −12% (HF just above 1 lands below 0.95: full liquidations) and −25% (below
# LT·(1 + bonus): the collateral runs out)
GAPS = (0.88, 0.75)
WAD = 10**18
BASE = 10**8
BPS = 10_000
UINT256_MAX = 2**256 - 1
HF_FLOAT_RTOL = 1e-14  # float64 c·P·LT/d: a handful of roundings of 2^-53
TOKEN_ATOL = 4  # wei: one floor, three half-up percent roundings, one rayDiv in the burns
TOKEN_RTOL = 1e-13  # float64 token amounts in the core, a few operations per call, a few calls per path


def _contract(chain: Chain, address: str, name: str) -> Any:
    return chain.contract(address, load_artifact(AAVE, name))


@dataclass(frozen=True)
class Venue:
    """One collateral asset against USDC on the devnet, as the chain configures it."""

    symbol: str
    decimals: int
    asset: str
    token: Any
    a_token: Any
    treasury: str
    ltv: int  # bps
    lt: int  # bps
    bonus: int  # 10000 + bonus, bps
    fee: int  # protocol fee, bps of the bonus
    debt_asset: str
    debt_token: Any
    debt_vtoken: Any
    debt_unit: int
    pool: Any
    oracle: Any

    def price(self, asset: str) -> int:
        return int(self.oracle.functions.getAssetPrice(asset).call())

    def market(self, price_usd: float) -> LendingMarket:
        """The core's market at `price_usd`: keepers always act (no gas, infinite depth), as on chain."""
        return LendingMarket(self.symbol, price_usd, ltv=self.ltv / BPS, liquidation_threshold=self.lt / BPS,
                             liquidation_bonus=(self.bonus - BPS) / BPS, protocol_fee=self.fee / BPS)

    def book(self, collateral_wei: list[int], debt_units: list[int]) -> Book:
        usdc = self.price(self.debt_asset) / BASE
        n = len(collateral_wei)
        return Book((self.symbol,), np.zeros(n, dtype=np.int64),
                    np.array([c / 10**self.decimals for c in collateral_wei], dtype=np.float64),
                    np.array([d / self.debt_unit * usdc for d in debt_units], dtype=np.float64),
                    np.arange(n, dtype=np.int64))


def read_venue(chain: Chain, devnet: devnet_mod.Devnet, symbol: str) -> Venue:
    market, debt = devnet.markets[symbol], devnet.markets[DEBT]
    provider = _contract(chain, devnet.addresses["data_provider"], "AaveProtocolDataProvider")
    decimals, ltv, lt, bonus = provider.functions.getReserveConfigurationData(market["asset"]).call()[:4]
    a_token = _contract(chain, market["a_token"], "AToken")
    return Venue(
        symbol=symbol, decimals=decimals, asset=market["asset"],
        token=_contract(chain, market["asset"], "MintableERC20"), a_token=a_token,
        treasury=a_token.functions.RESERVE_TREASURY_ADDRESS().call(), ltv=ltv, lt=lt, bonus=bonus,
        fee=provider.functions.getLiquidationProtocolFee(market["asset"]).call(),
        debt_asset=debt["asset"], debt_token=_contract(chain, debt["asset"], "MintableERC20"),
        debt_vtoken=_contract(chain, debt["variable_debt_token"], "MintableERC20"),
        debt_unit=10 ** debt["decimals"], pool=_contract(chain, devnet.addresses["pool"], "Pool"),
        oracle=_contract(chain, devnet.addresses["oracle"], "AaveOracle"),
    )  # fmt: skip


@dataclass(frozen=True)
class State:
    collateral: int  # aToken wei
    debt: int  # variable debt, USDC units
    account: tuple[int, ...]  # getUserAccountData


def read_state(v: Venue, user: str) -> State:
    return State(v.a_token.functions.balanceOf(user).call(), v.debt_vtoken.functions.balanceOf(user).call(),
                 tuple(v.pool.functions.getUserAccountData(user).call()))


def open_fresh(chain: Chain, v: Venue, rng: np.random.Generator, n: int) -> list[str]:
    """`n` new single-collateral USDC borrowers at seeded sizes and health factors in [1.02, 1.6]."""
    specs = {s.symbol: s for s in load_reserve_specs()}
    low = max(1.02, v.lt / v.ltv * 1.002)  # below LT/LTV the Pool refuses the borrow
    users = []
    for _ in range(n):
        user = to_checksum_address("0x" + rng.bytes(20).hex())
        chain.rpc("anvil_impersonateAccount", [user])
        chain.rpc("anvil_setBalance", [user, hex(10**20)])
        plan = BorrowerPlan(((v.symbol, Decimal(int(rng.uniform(20_000, 400_000)))),), DEBT,
                            Decimal(f"{rng.uniform(low, 1.6):.4f}"))
        amounts = borrower_amounts(plan, specs)
        units = amounts.collateral[v.symbol]
        chain.transact("mint collateral", user, v.token, "mint", user, units)
        chain.transact("approve collateral", user, v.token, "approve", v.pool.address, units)
        chain.transact("supply", user, v.pool, "supply", v.asset, units, user, 0)
        chain.transact("borrow", user, v.pool, "borrow", v.debt_asset, amounts.debt[DEBT], VARIABLE_RATE, 0, user)
        users.append(user)
    return users


def book_borrowers(devnet: devnet_mod.Devnet, symbol: str) -> list[str]:
    return [b["address"] for b in devnet.book["borrowers"] if list(b["collateral"]) == [symbol] and list(b["debt"]) == [DEBT]]


def price_path(rng: np.random.Generator, start: int) -> list[int]:
    """Oracle answers (8 decimals): 8–12 seeded falls of 2–6%, then the two gaps."""
    factors = np.cumprod(1.0 + rng.uniform(-0.06, -0.02, int(rng.integers(8, 13))))
    factors = np.append(factors, factors[-1] * np.cumprod(GAPS))
    return [start] + [round(float(start * f)) for f in factors]


def close(chain_wei: int, core_wei: float, what: str, quantum: float = 0.0) -> None:
    """Equal up to the Pool's wei roundings, float64, and `quantum` wei of debt-unit granularity."""
    tol = TOKEN_ATOL + quantum + TOKEN_RTOL * abs(chain_wei)
    assert abs(chain_wei - core_wei) <= tol, f"{what}: chain {chain_wei}, core {core_wei:.6f} (tol {tol:.3g})"


def check_account(v: Venue, users: list[str], states: dict[str, State], price: float) -> None:
    """getUserAccountData against the core's Book on the same amounts (positions with debt)."""
    open_users = [u for u in users if states[u].debt > 0]
    book = v.book([states[u].collateral for u in open_users], [states[u].debt for u in open_users])
    core_hf = book.health_factors(price, v.lt / BPS)
    usdc = v.price(v.debt_asset) / BASE
    for user, hf, c_tokens, d_usd in zip(open_users, core_hf, book.collateral, book.debt_usd, strict=True):
        coll_base, debt_base, _, lt, _, chain_hf = states[user].account
        assert abs(coll_base - c_tokens * price * BASE) <= 1 + 1e-15 * coll_base, (user, coll_base, c_tokens)
        assert abs(debt_base - d_usd * BASE) <= 1 + 1e-15 * debt_base, (user, debt_base, d_usd, usdc)
        assert lt == (v.lt if coll_base > 0 else 0)
        bound = (2 / coll_base if coll_base else 0.0) + 1 / debt_base + HF_FLOAT_RTOL
        assert abs(chain_hf / WAD - hf) <= bound * max(hf, 1e-18) + 1e-18, (user, chain_hf, hf)
        assert (chain_hf < WAD) == (hf < 1.0)  # the same liquidation decision


@dataclass
class Flows:
    """What happened on chain over a path, in the units of the core's Ledger."""

    repaid_units: int = 0
    seized_wei: int = 0  # liquidator's plus treasury's
    fee_wei: int = 0
    liquidations: int = 0
    partial: int = 0
    full: int = 0
    short: int = 0


def seized_per_debt_unit(v: Venue, price: float) -> float:
    """Collateral wei (bonus included) that one unit of debt token buys at `price`."""
    return (v.price(v.debt_asset) / BASE) / v.debt_unit / price * (v.bonus / BPS) * 10**v.decimals


def liquidate(chain: Chain, v: Venue, liquidator: str, user: str, state: State, price: float, flows: Flows) -> None:
    """One liquidationCall on chain against a one-position run of the core at the same price."""
    ledger = run_ledger(v.book([state.collateral], [state.debt]), v.market(price), np.ones((1, 1)), cascade=False)
    assert ledger.liquidations[0] == 1
    before = (v.token.functions.balanceOf(liquidator).call(), v.debt_token.functions.balanceOf(liquidator).call(),
              v.a_token.functions.balanceOf(v.treasury).call())
    chain.transact("liquidationCall", liquidator, v.pool, "liquidationCall",
                   v.asset, v.debt_asset, user, UINT256_MAX, False)  # fmt: skip
    after = read_state(v, user)
    received = v.token.functions.balanceOf(liquidator).call() - before[0]
    paid = before[1] - v.debt_token.functions.balanceOf(liquidator).call()
    fee = v.a_token.functions.balanceOf(v.treasury).call() - before[2]
    # The debt token burns paid/index in scaled units (rayDiv, half up): its balance may move 1 unit off.
    assert abs((state.debt - after.debt) - paid) <= 1, (user, state.debt - after.debt, paid)
    repaid = paid

    usdc, unit = v.price(v.debt_asset) / BASE, 10**v.decimals
    # The Pool repays whole debt units: percentMul(debt, 50%) rounds half up, so the repayment is up to
    # half a unit off the core's real-valued half, and the collateral follows it with the bonus.
    half_unit = 0.5 * seized_per_debt_unit(v, price)
    close(repaid, ledger.repaid_usd[0] / usdc * v.debt_unit, f"{user} repaid USDC units", 0.5)
    close(received, (ledger.seized_tokens[0] - ledger.protocol_fee_tokens[0]) * unit, f"{user} collateral to liquidator",
          half_unit)
    close(fee, ledger.protocol_fee_tokens[0] * unit, f"{user} protocol fee to treasury", half_unit)
    close(after.collateral, (ledger.open_collateral_tokens[0] + ledger.returned_tokens[0]) * unit,
          f"{user} collateral kept", half_unit)
    hf_after = after.account[5]
    if ledger.written_off_usd[0] > 0:  # collateral ran out: Aave v3.0 keeps the debt on the account
        flows.short += 1
        assert after.collateral <= TOKEN_ATOL and hf_after < WAD // 10**6
        close(after.debt, ledger.written_off_usd[0] / usdc * v.debt_unit, f"{user} debt left without collateral")
    elif ledger.open_debt_usd[0] == 0:  # HF <= 0.95: the whole debt repaid, the rest stays the borrower's
        flows.full += 1
        assert state.account[5] <= 95 * WAD // 100 and after.debt == 0 and hf_after == UINT256_MAX
    else:  # close factor 50%
        flows.partial += 1
        assert state.account[5] > 95 * WAD // 100
        close(after.debt, ledger.open_debt_usd[0] / usdc * v.debt_unit, f"{user} debt left", 0.5)
        core_hf = ledger.open_collateral_tokens[0] * price * (v.lt / BPS) / ledger.open_debt_usd[0]
        coll_base, debt_base = after.account[:2]
        bound = (2 / coll_base + 1 / debt_base + (TOKEN_ATOL + half_unit) / after.collateral
                 + (TOKEN_ATOL + 0.5) / after.debt + TOKEN_RTOL)
        assert abs(hf_after / WAD - core_hf) <= bound * core_hf, (user, hf_after, core_hf)
    flows.repaid_units += repaid
    flows.seized_wei += received + fee
    flows.fee_wei += fee
    flows.liquidations += 1


def check_whole_path(v: Venue, start: list[State], end: dict[str, State], answers: list[int], flows: Flows) -> None:
    """The core's ledger over the whole path (engine and scalar reference) against the chain's sums."""
    usdc, unit = v.price(v.debt_asset) / BASE, 10**v.decimals
    book = v.book([s.collateral for s in start], [s.debt for s in start])
    paths = np.array([[a / answers[0] for a in answers]])
    market = v.market(answers[0] / BASE)
    ledger: Ledger = run_ledger(book, market, paths, cascade=False)
    reference = reference_ledger(book.collateral, book.debt_usd, market, paths, cascade=False)
    # Per-call roundings (a few collateral wei, half a debt unit) carry from step to step through the
    # positions' state: bound them by their sum, each valued in the other token at the path's worst
    # price (WBTC has 8 decimals: one satoshi is ~350 USDC units, so a later call repaying "all the
    # collateral's worth" moves by that much per satoshi of earlier rounding).
    n = max(flows.liquidations, 1)
    debt_per_wei = (answers[0] / BASE) / 10**v.decimals / usdc * v.debt_unit
    debt_tol = n * (TOKEN_ATOL * (1 + debt_per_wei) + 0.5)
    coll_tol = n * (TOKEN_ATOL + 0.5 * seized_per_debt_unit(v, min(answers) / BASE))
    open_debt = sum(s.debt for s in end.values() if s.collateral > TOKEN_ATOL)
    left_bare = sum(s.debt for s in end.values() if s.collateral <= TOKEN_ATOL)
    for source, core in (("run_ledger", {k: float(getattr(ledger, k)[0]) for k in reference}),
                         ("reference", {k: float(x[0]) for k, x in reference.items()})):
        assert int(core["liquidations"]) == flows.liquidations, (source, core["liquidations"], flows)
        for name, chain_value, core_value, tol in (
            ("repaid", flows.repaid_units, core["repaid_usd"] / usdc * v.debt_unit, debt_tol),
            ("seized", flows.seized_wei, core["seized_tokens"] * unit, coll_tol),
            ("protocol fee", flows.fee_wei, core["protocol_fee_tokens"] * unit, coll_tol),
            ("open debt", open_debt, core["open_debt_usd"] / usdc * v.debt_unit, debt_tol),
            ("debt left without collateral", left_bare, core["written_off_usd"] / usdc * v.debt_unit, debt_tol),
            ("collateral left with borrowers", sum(s.collateral for s in end.values()),
             (core["open_collateral_tokens"] + core["returned_tokens"]) * unit, coll_tol),
        ):
            assert abs(chain_value - core_value) <= tol + TOKEN_RTOL * abs(chain_value), (source, name, chain_value, core_value)


@pytest.fixture
def frozen_clock(chain: Chain):
    """Every block at the same timestamp: no interest accrues while the price moves."""
    chain.rpc("anvil_setBlockTimestampInterval", [0])
    yield
    chain.rpc("anvil_removeBlockTimestampInterval", [])


@pytest.mark.parametrize("symbol", ["WETH", "WBTC", "wstETH"])
def test_risk_core_matches_the_pool_along_a_falling_price(symbol, devnet, chain, restore_chain, frozen_clock):
    rng = np.random.default_rng([SEED, ["WETH", "WBTC", "wstETH"].index(symbol)])
    v = read_venue(chain, devnet, symbol)
    logic = _contract(chain, devnet.addresses["library_LiquidationLogic"], "LiquidationLogic")
    core = v.market(v.price(v.asset) / BASE)
    assert logic.functions.CLOSE_FACTOR_HF_THRESHOLD().call() == round(core.close_factor_full_hf * WAD)
    assert logic.functions.MAX_LIQUIDATION_CLOSE_FACTOR().call() == BPS

    liquidator = devnet.book["liquidator"]["address"]
    chain.transact("liquidator approves USDC", liquidator, v.debt_token, "approve", v.pool.address, UINT256_MAX)
    users = book_borrowers(devnet, symbol) + open_fresh(chain, v, rng, FRESH_PER_ASSET)
    start = [read_state(v, u) for u in users]
    answers = price_path(rng, v.price(v.asset))
    check_account(v, users, dict(zip(users, start, strict=True)), answers[0] / BASE)

    flows = Flows()
    untouched = dict(zip(users, start, strict=True))
    for answer in answers[1:]:
        devnet_mod.set_price(devnet, symbol, Decimal(answer).scaleb(-8))
        price = answer / BASE
        states = {u: read_state(v, u) for u in users}
        check_account(v, users, states, price)
        for user in users:
            s = states[user]
            if user in untouched:  # frozen clock: an untouched position's amounts do not move
                assert (s.collateral, s.debt) == (untouched[user].collateral, untouched[user].debt)
            if s.debt > 0 and s.collateral > TOKEN_ATOL and s.account[5] < WAD:
                untouched.pop(user, None)
                liquidate(chain, v, liquidator, user, s, price, flows)
    end = {u: read_state(v, u) for u in users}
    check_whole_path(v, start, end, answers, flows)
    # the path must reach every branch of the rules it claims to check
    assert flows.partial > 0 and flows.full > 0 and flows.short > 0, flows
