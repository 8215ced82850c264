"""Exact liquidation engine over paths × steps that never visits a (path, step, position) triple.

The model is the one `tests/reference_lending.py` spells out position by position. The engine gets
the same numbers (to rounding) from three facts:

* **Affine state.** Write a position as ``w = collateral/debt`` at the start. Every position liquidated
  by the same calls at the same prices keeps ``debt = γ·d`` and ``collateral = c + β·d`` with scalars
  ``γ = (1 - close_factor)^generation`` and ``β`` (each partial call at price P subtracts
  ``close_factor·γ·(1+bonus)/P``). So HF < 1, HF <= 0.95, "collateral short" and "underwater at the
  end" are all thresholds on ``w``.
* **Cohorts.** With the book sorted by ``w`` (riskiest first), the positions of a path that share
  (generation, β) and a keeper-profitability subset form a *cohort*: a contiguous index range of the
  sorted book intersected with that subset. A liquidation takes a prefix of a cohort; sums over it
  come from prefix sums of the subset (count, Σd, Σc) and one `searchsorted` per threshold.
* **Profitability subsets.** A keeper's decision depends on the nominal repayment ``q·γ·d`` only, so
  for each generation the positions split into "close-factor call profitable" / "only the full call
  profitable" / "none". A cohort's subset is refined by these splits and cached by content.

Whole-position markets (`LiquidationStyle.WHOLE_POSITION`, Comet's absorb) are the same engine with no
profitable close-factor call (`BookSubsets` gives that subset no member) and the full call acting at
HF < 1: every cohort is "full call" or "stuck" and stays at generation 0.

Per step, only paths whose price fell below some cohort's trigger price (the price at which its first
member becomes actionable) are touched, and within them only the triggered cohorts. Work therefore
scales with the number of liquidation *events* (a new low crossing some cohort), not with positions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from risk.lending_cohorts import BookSubsets, CohortArena
from risk.lending_params import LendingMarket

_ACT_BELOW_1 = 1  # the close-factor call is profitable: acts as soon as HF < 1
_ACT_BELOW_FULL = 2  # only the full call is profitable: acts once HF <= close_factor_full_hf (< 1 for whole positions)
_STUCK = 3  # no call is profitable at this generation: only the end-of-path shortfall matters
# Slack on the trigger filter only; which positions act is then decided exactly by searchsorted.
_FILTER_SLACK = 1e-9


@dataclass(frozen=True, eq=False)
class Ledger:
    """Per-path totals of one market's liquidations; every array has shape (paths,).

    USD amounts are valued at the price of the step the flow happened; tokens are the market's
    collateral asset. ``written_off_usd`` is the debt left without collateral when a liquidation took
    all of it; ``insolvent_usd`` is the part of it the collateral's value did not cover (the rest is
    the bonus paid out of the last collateral). Conservation, on every path:
    ``seized + open_collateral + returned`` = the book's collateral and
    ``repaid + written_off + open_debt`` = the book's debt.
    """

    repaid_usd: np.ndarray
    seized_usd: np.ndarray
    seized_tokens: np.ndarray
    protocol_fee_usd: np.ndarray
    protocol_fee_tokens: np.ndarray
    sold_usd: np.ndarray
    written_off_usd: np.ndarray
    insolvent_usd: np.ndarray
    shortfall_usd: np.ndarray
    open_debt_usd: np.ndarray
    open_collateral_tokens: np.ndarray
    returned_tokens: np.ndarray
    liquidations: np.ndarray
    final_price_usd: np.ndarray

    def __post_init__(self) -> None:
        for value in self.__dict__.values():
            value.setflags(write=False)

    @property
    def bad_debt_usd(self) -> np.ndarray:
        """Collateral shortfall: at liquidations that took all the collateral, plus open positions at the end, USD."""
        return self.insolvent_usd + self.shortfall_usd

    @property
    def deficit_usd(self) -> np.ndarray:
        """All debt left unbacked (Aave's deficit): write-offs, bonus included, plus the end shortfall, USD."""
        return self.written_off_usd + self.shortfall_usd


def _gammas(close_factor: float, count: int) -> np.ndarray:
    # Same recurrence as a position's debt (d -= cf·d) so that power-of-two close factors stay exact.
    g = np.empty(count)
    g[0] = 1.0
    for k in range(1, count):
        g[k] = g[k - 1] - close_factor * g[k - 1]
    return g


class _Engine:
    """One market's state across all paths: the sorted book, its subsets, live cohorts and per-step flows."""

    def __init__(self, collateral: np.ndarray, debt: np.ndarray, market: LendingMarket, paths: np.ndarray,
                 segment_slots: int) -> None:
        self.market = market
        self.paths = paths
        n_paths, n_cols = paths.shape
        w = collateral / debt
        order = np.argsort(w, kind="stable")
        self.w = w[order]
        self.gammas = _gammas(market.close_factor, n_cols + 1)
        self.sets = BookSubsets(self.w, collateral[order], debt[order], market, self.gammas)
        self.table = CohortArena(n_paths, segment_slots)
        self.stuck: list[dict[str, np.ndarray]] = []
        # per step: (path, repaid, seized tokens, seized USD, fee tokens, fee USD, sold, written off, insolvent,
        # returned, calls)
        self.events: list[tuple[np.ndarray, ...]] = []
        self.sold_step = np.zeros(n_paths)
        self.maxtrig = np.full(n_paths, -np.inf)

    # -- cohort bookkeeping -------------------------------------------------------------------
    def _trigger(self, lo: np.ndarray, hi: np.ndarray, mask: np.ndarray, gen: np.ndarray, beta: np.ndarray,
                 kind: np.ndarray) -> np.ndarray:
        """Price below which a cohort's riskiest member becomes actionable (-inf if it has no member)."""
        m = self.market
        top = self.sets.next[mask, lo]
        x = self.w[np.minimum(top, self.w.size - 1)] + beta
        level = np.where(kind == _ACT_BELOW_1, 1.0, m.full_call_hf) * self.gammas[gen] / m.liquidation_threshold
        # collateral at or below zero is actionable at any price
        trig = np.divide(level, x, out=np.full(x.shape, np.inf), where=x > 0)
        return np.where(top < hi, trig, -np.inf)

    def _add(self, path: np.ndarray, lo: np.ndarray, hi: np.ndarray, mask: np.ndarray, gen: np.ndarray,
             beta: np.ndarray, kind: np.ndarray) -> None:
        """Add cohorts, dropping empty ones; stuck cohorts wait aside for the end of the path."""
        nonempty = (self.sets.count[mask, hi] - self.sets.count[mask, lo]) > 0
        stuck = nonempty & (kind == _STUCK)
        if stuck.any():
            self.stuck.append({"path": path[stuck], "lo": lo[stuck], "hi": hi[stuck], "mask": mask[stuck],
                               "gen": gen[stuck], "beta": beta[stuck]})
        live = nonempty & (kind != _STUCK)
        if live.any():
            p, lo, hi, mask, gen, beta, kind = (a[live] for a in (path, lo, hi, mask, gen, beta, kind))
            trig = self._trigger(lo, hi, mask, gen, beta, kind)
            self.table.append(p, lo=lo, hi=hi, mask=mask, gen=gen, beta=beta, trig=trig, kind=kind.astype(np.int8))

    def _split_kinds(self, path: np.ndarray, lo: np.ndarray, hi: np.ndarray, mask: np.ndarray, gen: np.ndarray,
                     beta: np.ndarray) -> None:
        """Add cohorts after splitting each subset by what a keeper would do at its generation."""
        kinds = (("below_1", _ACT_BELOW_1), ("below_full", _ACT_BELOW_FULL), ("stuck", _STUCK))
        self._add(
            np.tile(path, 3),
            np.tile(lo, 3),
            np.tile(hi, 3),
            np.concatenate([self.sets.derive_many(mask, op, gen) for op, _ in kinds]),
            np.tile(gen, 3),
            np.tile(beta, 3),
            np.repeat(np.array([k for _, k in kinds], dtype=np.int8), path.size),
        )

    # -- one step -----------------------------------------------------------------------------
    def step(self, price: np.ndarray) -> None:
        """Liquidate what `price` (USD, one per path) makes actionable; keepers' sales land in `sold_step`."""
        t = self.table
        self.sold_step[:] = 0.0
        active = np.flatnonzero(price < self.maxtrig * (1 + _FILTER_SLACK))
        if active.size == 0:
            return
        idx, owner = t.segments(active)
        hit = price[owner] < t.trig[idx] * (1 + _FILTER_SLACK)
        if not hit.any():
            return
        path = owner[hit]
        self._liquidate(path, idx[hit], price[path])
        self.refresh(path[np.concatenate([[True], path[1:] != path[:-1]])])  # path is sorted

    def refresh(self, rows: np.ndarray) -> None:
        """Recompute the highest trigger price of the given paths' cohorts."""
        rows = rows[self.table.used[rows] > 0]
        self.maxtrig[rows] = -np.inf
        if rows.size:
            idx, _ = self.table.segments(rows)
            used = self.table.used[rows]
            self.maxtrig[rows] = np.maximum.reduceat(self.table.trig[idx], np.cumsum(used) - used)

    def _liquidate(self, path: np.ndarray, slot: np.ndarray, price: np.ndarray) -> None:
        """Apply one step's calls to the triggered cohorts in arena `slot` (owned by `path`, at `price`).

        Each cohort's liquidatable prefix splits, by thresholds on w and by keeper profitability, into:
        collateral short (all seized, rest written off), full calls (closed), and close-factor calls
        (moved to new cohorts of the next generation); the rest of the cohort stays as it was.
        """
        m, t, sets = self.market, self.table, self.sets
        lo, hi, mask = t.lo[slot], t.hi[slot], t.mask[slot]
        gen, beta, kind = t.gen[slot], t.beta[slot], t.kind[slot]
        g = self.gammas[gen]
        lt, b, cf = m.liquidation_threshold, m.liquidation_bonus, m.close_factor
        below_1 = kind == _ACT_BELOW_1

        w = self.w

        def cut(threshold: np.ndarray, side: str, a: np.ndarray, z: np.ndarray) -> np.ndarray:
            """First index in [a, z] whose w is not below (side left) / not at or below (right) the threshold."""
            first = w[np.minimum(a, w.size - 1)]
            need = (a < z) & ((first < threshold) if side == "left" else (first <= threshold))
            out = a.copy()
            if need.any():
                out[need] = np.clip(np.searchsorted(w, threshold[need], side=side), a[need], z[need])
            return out

        # HF < 1  <=>  w < γ/(P·LT) − β ; HF <= hf_full  <=>  w <= hf_full·γ/(P·LT) − β (HF < 1 for whole positions)
        s1 = cut(g / (price * lt) - beta, "left", lo, hi)
        s_full = cut(m.full_call_hf * g / (price * lt) - beta, "right" if m.partial_calls else "left", lo, np.where(below_1, s1, hi))
        s_act = np.where(below_1, s1, s_full)
        # collateral short of repay·(1+b)/P  <=>  w < q·γ·(1+b)/P − β
        short_full = cut(g * (1 + b) / price - beta, "left", lo, s_full)
        short_share_thr = cf * g * (1 + b) / price - beta
        short_share_in_full = cut(short_share_thr, "left", lo, s_full)
        short_share_in_part = cut(short_share_thr, "left", s_full, s_act)

        derived_full = sets.derive_many(mask, "full", gen)
        derived_share = sets.derive_many(mask, "not_full", gen)
        m_full = np.where(below_1, derived_full, mask)  # a full-only cohort has only "full" members
        m_share = np.where(below_1, derived_share, sets.empty)

        # underwater (collateral worth less than the debt)  <=>  w < γ/P − β
        under_thr = g / price - beta
        under_full = cut(under_thr, "left", lo, short_full)
        under_share = cut(under_thr, "left", lo, short_share_in_full)
        under_part = cut(under_thr, "left", s_full, short_share_in_part)

        # prefix (count, Σd, Σc) of each subset at the cut points, then differences between them
        full_pts = [sets.at(m_full, x) for x in (lo, under_full, short_full, s_full)]
        share_pts = [sets.at(m_share, x) for x in (lo, under_share, short_share_in_full, s_full)]
        part_pts = [sets.at(mask, x) for x in (s_full, under_part, short_share_in_part, s_act)]

        def between(pts: list[tuple[np.ndarray, ...]], i: int, j: int) -> tuple[np.ndarray, ...]:
            return tuple(b_ - a_ for a_, b_ in zip(pts[i], pts[j], strict=True))

        def total(i: int, j: int) -> tuple[np.ndarray, ...]:
            parts = (between(full_pts, i, j), between(share_pts, i, j), between(part_pts, i, j))
            return tuple(x + y + z for x, y, z in zip(*parts, strict=True))

        # collateral runs out: all of it is seized and the debt left behind is written off (Aave's
        # deficit); the part the collateral's value did not cover is bad debt
        n_short, d_short, c_short = total(0, 2)
        seized_short = c_short + beta * d_short
        repaid_short = seized_short * price / (1 + b)
        written = g * d_short - repaid_short
        _, d_under, c_under = total(0, 1)
        insolvent = np.maximum(g * d_under - (c_under + beta * d_under) * price, 0.0)
        # full liquidation: close, the borrower keeps what the seizure leaves
        n_full, d_full, c_full = between(full_pts, 2, 3)
        seized_full = g * d_full * (1 + b) / price
        returned = c_full + beta * d_full - seized_full
        # close-factor liquidation: the debt shrinks by cf and the position moves to the next generation
        n_share_a, d_share_a, _ = between(share_pts, 2, 3)
        n_share_b, d_share_b, _ = between(part_pts, 2, 3)
        repaid_share = cf * g * (d_share_a + d_share_b)
        repaid = repaid_short + g * d_full + repaid_share
        seized = seized_short + seized_full + repaid_share * (1 + b) / price
        calls = n_short + n_full + n_share_a + n_share_b
        fee = m.protocol_fee * b / (1 + b) * seized

        # the untouched rest of each cohort keeps its place; an emptied cohort frees its slot
        t.lo[slot] = s_act
        trig = self._trigger(s_act, hi, mask, gen, beta, kind)
        t.trig[slot] = trig
        t.kind[slot] = np.where(trig == -np.inf, 0, kind)

        new_beta = beta - cf * g * (1 + b) / price
        moved = np.concatenate([n_share_a, n_share_b]) > 0
        if moved.any():
            self._split_kinds(
                np.concatenate([path, path])[moved],
                np.concatenate([short_share_in_full, short_share_in_part])[moved],
                np.concatenate([s_full, s_act])[moved],
                np.concatenate([m_share, mask])[moved],
                np.concatenate([gen + 1, gen + 1])[moved],
                np.concatenate([new_beta, new_beta])[moved],
            )

        sold = (seized - fee) * price
        self.sold_step += np.bincount(path, weights=sold, minlength=self.paths.shape[0])
        self.events.append(
            (path, repaid, seized, seized * price, fee, fee * price, sold, written, insolvent, returned, calls)
        )

    # -- end of the path ----------------------------------------------------------------------
    def finish(self, final_price: np.ndarray) -> Ledger:
        """Totals per path, with open positions valued at `final_price` (USD, one per path)."""
        t = self.table
        idx, owner = t.segments(np.arange(final_price.size))
        idx, owner = idx[t.kind[idx] != 0], owner[t.kind[idx] != 0]
        parts = [{"path": owner, "lo": t.lo[idx], "hi": t.hi[idx], "mask": t.mask[idx],
                  "gen": t.gen[idx], "beta": t.beta[idx]}, *self.stuck]
        cat = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
        path, lo, hi, mask, beta = cat["path"], cat["lo"], cat["hi"], cat["mask"], cat["beta"]
        g = self.gammas[cat["gen"]]
        price = final_price[path]
        # underwater at the end  <=>  collateral·P < debt  <=>  w < γ/P − β
        s_under = np.clip(np.searchsorted(self.w, g / price - beta, side="left"), lo, hi)
        _, d0, c0 = self.sets.at(mask, lo)
        _, d1, c1 = self.sets.at(mask, s_under)
        _, d2, c2 = self.sets.at(mask, hi)
        sd, sc, sd_all, sc_all = d1 - d0, c1 - c0, d2 - d0, c2 - c0
        shortfall = np.maximum(g * sd - price * (sc + beta * sd), 0.0)
        n_paths = final_price.size

        def total(values: np.ndarray) -> np.ndarray:
            return np.bincount(path, weights=values, minlength=n_paths)

        if self.events:
            cols = [np.concatenate(col) for col in zip(*self.events, strict=True)]
        else:
            cols = [np.zeros(0, dtype=np.int64)] + [np.zeros(0)] * 10
        flows = [np.bincount(cols[0], weights=col, minlength=n_paths) for col in cols[1:]]
        repaid, seized_tokens, seized_usd, fee_tokens, fee_usd, sold, written, insolvent, returned, calls = flows
        return Ledger(
            repaid_usd=repaid,
            seized_usd=seized_usd,
            seized_tokens=seized_tokens,
            protocol_fee_usd=fee_usd,
            protocol_fee_tokens=fee_tokens,
            sold_usd=sold,
            written_off_usd=written,
            insolvent_usd=insolvent,
            shortfall_usd=total(shortfall),
            open_debt_usd=total(g * sd_all),
            open_collateral_tokens=total(sc_all + beta * sd_all),
            returned_tokens=returned,
            liquidations=np.rint(calls).astype(np.int64),
            final_price_usd=final_price.copy(),
        )


def run_market(
    collateral: np.ndarray,
    debt: np.ndarray,
    market: LendingMarket,
    paths: np.ndarray,
    cascade: bool,
    *,
    segment_slots: int = 32,
) -> Ledger:
    """Liquidate one market's positions along every path (inputs already validated by `risk.lending`).

    Parameters
    ----------
    collateral : numpy.ndarray
        Collateral per position, tokens of the market's asset, shape (n,), >= 0.
    debt : numpy.ndarray
        Stable debt per position, USD, shape (n,), > 0.
    market : LendingMarket
        Rules and depth.
    paths : numpy.ndarray
        Price multipliers of `market.price_usd`, shape (paths, steps + 1), finite and > 0.
    cascade : bool
        Whether the USD sold by keepers at a step lowers the price of every later step.
    segment_slots : int
        Cohort slots each path starts with (a tuning knob: a path that needs more moves to a larger
        segment); results do not depend on it.

    Returns
    -------
    Ledger
        Per-path totals.
    """
    engine = _Engine(collateral, debt, market, paths, segment_slots)
    n_paths = paths.shape[0]
    rows = np.arange(n_paths)
    zeros = np.zeros(n_paths, dtype=np.int64)
    engine._split_kinds(rows, zeros, np.full(n_paths, collateral.size, dtype=np.int64),
                        np.full(n_paths, engine.sets.all, dtype=np.int64), zeros, np.zeros(n_paths))
    engine.refresh(rows)
    impact = np.ones(n_paths)
    price = market.price_usd * paths[:, 0]
    for step in range(paths.shape[1]):
        price = market.price_usd * paths[:, step] * impact
        engine.step(price)
        if cascade and not market.depth.is_infinite:
            sold = engine.sold_step
            hit = sold > 0
            impact[hit] *= market.depth.price_factor(sold[hit])
    return engine.finish(price)
