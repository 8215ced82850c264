"""The lending risk core on the real-data policy: Aave v3 Ethereum, CoinGecko prices, crash replays.

`policies/aave-v3-ethereum.yaml` with its `lending_core` section, recommended from the pinned inputs
the pipeline gathers (the 90-day lookback, the 2023-01 reserve configuration) plus the crash history
(`risk.recommend.history_span`: the policy's three 2022 windows and 14 days before each), assembled
here as `gather_inputs` will pin it. Every market must come out with a binding constraint, confidence
intervals, peers on the same inputs and a glide path; the same inputs must give the same bytes.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from governance import jsonio
from governance.epoch_inputs import data_options, gather_inputs, renamed_series
from risk.data import load_series
from risk.data_files import load_prices_file
from risk.market import MarketData, align
from risk.parallel import serial_map
from risk.peers import LLTV_GRID, morpho_lif
from risk.recommend import history_span, recommend
from risk.recommendation import Recommendation

pytestmark = pytest.mark.realdata
POLICY = Path(__file__).resolve().parents[2] / "policies" / "aave-v3-ethereum.yaml"
RISK_LIMITS = ("VaR95 <=", "EVaR99 <=", "insolvency probability <=")


def crash_history(policy, data: Path) -> MarketData:
    """The prices `gather_inputs` pins as inputs/history.csv: every policy market over `history_span`."""
    span = history_span(policy)
    assert span is not None
    options, tables, series = data_options(policy), {}, []
    for market in policy.markets:
        src = market.price_source
        if src.file not in tables:
            tables[src.file] = load_prices_file(data / src.file, name=src.file)
        s, _ = load_series(tables[src.file], symbol=src.symbol, column=src.column, options=options, name=src.file)
        series.append(renamed_series(s, market.symbol))
    return align(series, policy.scenarios.step.seconds, start=span[0], end=span[1], max_gap_seconds=options.max_gap_seconds)


@pytest.fixture(scope="module")
def inputs(shared_data: Path):
    inp = gather_inputs(POLICY, data_dir=shared_data)
    return inp, crash_history(inp.policy.policy, shared_data)


@pytest.fixture(scope="module")
def rec(inputs) -> Recommendation:
    inp, history = inputs
    m = inp.market
    return recommend(inp.policy.policy, m.symbols, m.prices, m.step_seconds, inp.snapshot, epoch=inp.epoch, as_of="2023-01-31T00:00:00Z",
                     history=history)


def test_history_span_covers_the_crash_windows_and_their_lead_in(inputs) -> None:
    inp, history = inputs
    assert history_span(inp.policy.policy) == (int(np.datetime64("2022-04-23", "s").astype(int)), int(np.datetime64("2022-11-12", "s").astype(int)))
    assert history.symbols == inp.market.symbols and history.step_seconds == 3600 and np.all(np.isfinite(history.prices))


def test_scenarios_pool_monte_carlo_filtered_historical_and_every_crash_run(rec: Recommendation) -> None:
    parts = {p.name: p for p in rec.scenarios}
    assert parts["monte-carlo"].paths == 1000 and parts["filtered-historical"].paths == 1000
    # every 72 h run inside each window: 7 days, 10 days and 6 days of hours
    assert (parts["2022-05 UST"].paths, parts["2022-06 stETH discount"].paths, parts["2022-11 FTX"].paths) == (168 - 71, 240 - 71, 144 - 71)
    assert rec.horizon_steps == 72
    assert "rescale" in parts["2022-11 FTX"].provenance["settings"]


def test_every_market_has_a_binding_constraint_and_risk_limits_bind_somewhere(rec: Recommendation) -> None:
    kinds = set()
    for m in rec.markets:
        a = m.analysis
        assert a is not None and a.binding
        lt = m.change(_p("liquidation_threshold"))
        assert lt.binding[0] == a.binding
        kinds.add("risk" if a.binding.startswith(RISK_LIMITS) else "static")
        target = next(p for p in a.candidates if p.lt_bps == lt.target.value)
        assert target.feasible
        if a.binding.startswith(RISK_LIMITS):
            looser = next(p for p in a.candidates if p.lt_bps == lt.target.value + 1)
            assert looser.violated[0] == a.binding  # the next basis point breaks exactly the named limit
            assert all(not p.feasible for p in a.candidates if p.lt_bps > lt.target.value)
        ltv, lb = m.change(_p("ltv")), m.change(_p("liquidation_bonus"))
        assert ltv.target.value == lt.target.value - 250 and lt.target.value * (10_000 + lb.target.value) < 10**8
    assert kinds == {"risk", "static"}, "this epoch shows both kinds: crash replays bind some markets, bounds others"


def test_confidence_intervals_and_sensitivities(rec: Recommendation) -> None:
    widths = []
    for m in rec.markets:
        a = m.analysis
        for name in ("liquidation_threshold", "ltv", "liquidation_bonus", "supply_cap", "borrow_cap"):
            i = a.interval(name)
            assert i.low <= i.point <= i.high and i.level == 0.9
        ci = a.interval("liquidation_threshold")
        assert ci.resamples == 200 and ci.point == m.change(_p("liquidation_threshold")).target.value
        widths.append(ci.high - ci.low)
        assert a.var95_interval is not None and a.var95_interval[0] <= a.target.var95_share <= a.var95_interval[1]
        assert {s.parameter for s in a.sensitivities} == {"liquidation_threshold", "ltv", "liquidation_bonus"}
    assert max(widths) > 0, "some threshold is uncertain on these paths"


def test_peers_on_the_same_inputs(rec: Recommendation) -> None:
    for m in rec.markets:
        p = m.analysis.peers
        lt = m.change(_p("liquidation_threshold")).target.value / 10_000
        bonus = m.change(_p("liquidation_bonus")).target.value / 10_000
        assert p.riskdao.collateral_factor == pytest.approx(1 - p.riskdao.mean_max_drop - bonus)
        assert p.gauntlet.lltv in LLTV_GRID and 0 < p.gauntlet.drawdown < 1 and p.gauntlet.windows == 90 * 24 - 30 * 24 + 1
        assert p.morpho_lif_at_threshold == pytest.approx(morpho_lif(lt))
    dd = {m.symbol: m.analysis.peers.gauntlet.drawdown for m in rec.markets}
    assert dd["USDC"] < 0.05 < dd["WETH"], "a stablecoin's monthly drawdown is far below ETH's"


def test_glide_path_and_the_steward_limit(rec: Recommendation) -> None:
    glide = [c for c in rec.changes if c.updates_to_target > 1]
    assert glide
    for m in rec.markets:
        for name in ("ltv", "liquidation_threshold", "liquidation_bonus"):
            c = m.change(_p(name))
            assert abs(c.proposed.value - c.current.value) <= 50
            steps = -(-abs(c.target.value - c.current.value) // 50)
            assert c.updates_to_target == steps
            # the policy allows 20 steward updates: a longer glide is flagged for a DAO vote (this update is not)
            assert c.target_needs_governance == (steps > 20) and not c.needs_governance
    assert any(c.target_needs_governance for c in rec.changes), "LINK's LTV is 69 updates away"
    doc = json.loads(jsonio.dumps(rec.to_json()))
    assert all("risk" in m for m in doc["markets"].values())


def test_same_inputs_give_the_same_bytes_serially_or_in_worker_processes(inputs) -> None:
    """A reduced copy (fewer paths; WETH, whose threshold is refined, and DAI) serialises identically
    whether its markets run here or in two worker processes (`risk.parallel` TaskMap)."""
    from governance.executors import LocalExecutor

    inp, history = inputs
    policy = inp.policy.policy
    core = policy.lending_core
    small = policy.model_copy(update={"lending_core": core.model_copy(update={
        "monte_carlo": core.monte_carlo.model_copy(update={"paths": 200}),
        "filtered_historical": core.filtered_historical.model_copy(update={"paths": 200}),
        "optimiser": core.optimiser.model_copy(update={"bootstrap_resamples": 40}),
        "book": core.book.model_copy(update={"positions": 300}),
    })})
    symbols = ("WETH", "DAI")
    cols = [inp.market.symbols.index(s) for s in symbols]

    def run(task_map) -> bytes:
        return jsonio.dumps(recommend(small, symbols, inp.market.prices[:, cols], 3600, inp.snapshot, epoch="e", as_of="a",
                                      history=history, task_map=task_map).to_json())

    serial = run(serial_map)
    with LocalExecutor(2) as executor:
        parallel = run(executor.map)
    assert serial == parallel
    doc = json.loads(serial)
    assert doc["scenarios"]["parts"][-1]["name"] == "2022-11 FTX" and len(doc["markets"]["WETH"]["risk"]["candidates"]) > 5


def _p(name: str):
    from risk.policy import LendingParameter

    return LendingParameter(name)
