"""report.html of a derivative bundle: report.md's content as one self-contained page, with backtest and
breaker-replay charts whose numbers are the bundle's own (synthetic data; tests/realdata has the real epochs)."""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from derivatives_fixtures import write_data, write_policies
from markupsafe import Markup
from test_report_tables import Node, html_tree

from governance import charts
from governance.charts import ChartError
from governance.pipeline_derivatives import DerivativeInputs, _parsed_inputs, build_derivative_files, gather_derivative_inputs
from governance.report_derivatives_charts import BacktestChart, DerivativeCharts, derivative_charts
from governance.report_derivatives_html import render_derivative_html
from risk.recommend_derivatives import recommend_derivatives
from risk.recommendation_derivatives import DerivativeRecommendation


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("derivative-data")
    write_data(d)
    write_policies(d)
    return d


@pytest.fixture(scope="module")
def perps(folder: Path) -> dict[str, bytes]:
    return build_derivative_files(gather_derivative_inputs(folder / "perps.yaml", data_dir=folder))


@pytest.fixture(scope="module")
def options(folder: Path) -> dict[str, bytes]:
    return build_derivative_files(gather_derivative_inputs(folder / "options.yaml", data_dir=folder))


def svg_texts(svg: Node) -> list[str]:
    return [" ".join(t.text().split()) for t in svg.iter("text")]


def tables(html: str) -> list[tuple[str, str, list[list[str]]]]:
    """Every table of the page with the h3 and h4 above it: (market heading, sub-heading, rows of cell texts)."""
    out, h3, h4 = [], "", ""
    for node in html_tree(html).find("main").iter():
        if node.tag == "h3":
            h3, h4 = " ".join(node.text().split()), ""
        elif node.tag in ("h2", "h4"):
            h4 = " ".join(node.text().split())
        elif node.tag == "table":
            out.append((h3, h4, [[" ".join(c.text().split()) for c in tr.children if isinstance(c, Node)] for tr in node.iter("tr")]))
    return out


def test_the_page_loads_nothing_and_forbids_loading(perps: dict[str, bytes]) -> None:
    html = perps["report.html"].decode()
    tree = html_tree(html)
    for tag in ("script", "link", "img", "iframe", "object", "embed"):
        assert not list(tree.iter(tag)), tag
    for node in tree.iter():
        for attr in ("src", "href", "xlink:href", "srcset", "action"):
            if attr in node.attrs:
                assert node.attrs[attr].startswith("#"), f"<{node.tag} {attr}={node.attrs[attr]!r}> points outside the page"
    assert set(re.findall(r"https?://[^\s\"'<>]*", html)) == {"http://www.w3.org/2000/svg", "http://www.w3.org/1999/xlink"}  # XML namespaces
    assert all(u.startswith("#") for u in re.findall(r"url\(([^)]*)\)", html))
    (csp,) = [m for m in tree.iter("meta") if m.attrs.get("http-equiv") == "Content-Security-Policy"]
    assert csp.attrs["content"].startswith("default-src 'none'")
    ids = [n.attrs["id"] for n in tree.iter() if "id" in n.attrs]
    assert len(ids) == len(set(ids))
    assert "#010203" not in html and not any(list(svg.iter("style")) for svg in tree.iter("svg"))


def test_it_says_what_report_md_says(perps: dict[str, bytes]) -> None:
    """Every line of prose and every table cell of report.md is in the page (the HTML is rendered from it)."""
    text = " ".join(html_tree(perps["report.html"].decode()).find("main").text(skip=("svg",)).split())
    md = perps["report.md"].decode()
    for line in md.splitlines():
        plain = re.sub(r"\*\*|`|^#+ |^> |^- |^\d+\. ", "", line).strip()
        if not plain or set(plain) <= set("|-") or line.startswith("```"):
            continue
        for cell in (c.strip() for c in plain.strip("|").split("|")) if plain.startswith("|") else (plain,):
            assert cell.replace("**", "") in text, cell


def test_a_chart_per_backtest_and_per_crash_window_with_units_on_every_axis(perps: dict[str, bytes], options: dict[str, bytes]) -> None:
    tree = html_tree(perps["report.html"].decode())
    figures = {f.attrs["id"]: f for f in tree.iter("figure")}
    assert sorted(figures) == ["backtest-BTC", "backtest-ETH", "hedge-ETH", "replay-window-a-ETH"]
    for symbol in ("ETH", "BTC"):
        (svg,) = figures[f"backtest-{symbol}"].iter("svg")
        texts = svg_texts(svg)
        assert texts.count("Loss (% of notional)") == 2 and texts.count("Period start (UTC)") == 2
        assert f"{symbol}: MMF move, long side" in texts and f"{symbol}: MMF move, short side" in texts
    (svg,) = figures["replay-window-a-ETH"].iter("svg")
    texts = svg_texts(svg)
    assert {"Price (USD)", "1h move down (%)", "Time (UTC)", "policy threshold", "calibrated threshold"} <= set(texts)
    option_figures = {f.attrs["id"]: f for f in html_tree(options["report.html"].decode()).iter("figure")}
    assert sorted(option_figures) == ["backtest-ETH", "hedge-ETH"]  # no breaker policy named
    assert {"Loss (% of the ETH price)", "Period start (UTC)"} <= set(svg_texts(next(option_figures["backtest-ETH"].iter("svg"))))


def test_the_tables_show_recommendation_json(perps: dict[str, bytes]) -> None:
    rec = json.loads(perps["recommendation.json"])
    shown = tables(perps["report.html"].decode())
    checked = 0
    for symbol, market in rec["markets"].items():
        (params,) = [rows for h3, h4, rows in shown if h3.startswith(f"{symbol} (") and h4 == ""]
        by_label = {row[0]: row for row in params[1:]}
        assert len(by_label) == len(market["parameters"])
        for p in market["parameters"].values():
            row = next(r for r in params[1:] if r[2] == _text(p["proposed"]) and r[4] == _text(p["target"]) and r[5] == str(p["updates_to_target"]))
            assert row[1] == ("unknown" if p["current"] is None else _text(p["current"]))
            checked += 1
        (backtests,) = [rows for h3, h4, rows in shown if h3.startswith(f"{symbol} (") and h4 == "Backtests"]
        expected = {b["what"]: b for p in market["parameters"].values() for b in p["backtests"]}
        assert len(backtests) - 1 == len(expected)
        for row in backtests[1:]:
            b = expected[row[0]]
            assert row[1:4] == [str(b["periods"]), str(b["exceedances"]), f"{b['periods'] * (1 - b['coverage']):.1f}"]
            assert row[4:] == [f"{b['kupiec_p']:.3g}", f"{b['christoffersen_p']:.3g}", b["zone"], "accepted" if b["accepted"] else "rejected"]
            checked += 1
    assert checked > 10


def _text(value: dict[str, Any]) -> str:
    return value["percent"] if "bps" in value else f"${int(value['usd'].split('.')[0]):,}"


def test_the_captions_carry_the_backtests_and_the_first_alerts(perps: dict[str, bytes]) -> None:
    tree = html_tree(perps["report.html"].decode())
    rec = json.loads(perps["recommendation.json"])
    for symbol in ("ETH", "BTC"):
        caption = " ".join(tree.find("figure", id=f"backtest-{symbol}").find("figcaption").text().split())
        for b in rec["markets"][symbol]["parameters"]["mmf"]["backtests"]:
            assert (f"{b['what']}: {b['exceedances']} exceedances in {b['periods']} periods" in caption
                    and f"Kupiec p {b['kupiec_p']:.3g}, Christoffersen p {b['christoffersen_p']:.3g}, {b['zone']} zone" in caption)
    doc = json.loads(perps["breakers.json"])
    caption = " ".join(tree.find("figure", id="replay-window-a-ETH").find("figcaption").text().split())
    for r in doc["rules"]:
        (event,) = [e for e in r["policy"]["events"] if e["window"] == "window-a"]
        said = "no alert in the window" if event["first_alert"] is None else f"first alert {event['delay_hours']:.1f} h after its start"
        assert f"{r['rule']} ({r['policy']['threshold']}): {said}" in caption


def _recommend(inputs: DerivativeInputs) -> DerivativeRecommendation:
    funding, books = _parsed_inputs(inputs)
    return recommend_derivatives(inputs.policy.policy, inputs.market, funding=funding, books=books, epoch="e", as_of="a")


def test_charts_agree_with_the_figures_they_sit_next_to(folder: Path) -> None:
    """A chart whose periods disagree with the backtest table is refused, not drawn."""
    inputs = gather_derivative_inputs(folder / "options.yaml", data_dir=folder)
    rec = _recommend(inputs)
    (m,) = rec.markets
    b = m.changes[0].backtests[0]
    assert b.series is not None and int(b.series.hits.sum()) == b.exceedances
    tampered = dataclasses.replace(b, series=dataclasses.replace(b.series, margins=b.series.margins * 0))
    changes = tuple(dataclasses.replace(c, backtests=(tampered,)) for c in m.changes)
    bad = dataclasses.replace(rec, markets=(dataclasses.replace(m, changes=changes),))
    with pytest.raises(ChartError, match="disagree with the backtest's figures"):
        derivative_charts(bad, inputs.market, inputs.policy.policy, None, None)


@pytest.mark.parametrize("which", ["perps", "options"])
def test_a_hedging_chart_per_hedged_market_after_its_table_with_units_on_every_axis(which: str, request: pytest.FixtureRequest) -> None:
    files: dict[str, bytes] = request.getfixturevalue(which)
    rec = json.loads(files["recommendation.json"])
    hedged = sorted(s for s, m in rec["markets"].items() if m["hedging"] is not None)
    html = files["report.html"].decode()
    figures = {f.attrs["id"]: f for f in html_tree(html).iter("figure") if f.attrs["class"] == "hedge"}
    assert hedged and sorted(figures) == [f"hedge-{s}" for s in hedged]
    for symbol in hedged:
        (svg,) = figures[f"hedge-{symbol}"].iter("svg")
        texts = svg_texts(svg)
        assert {"Cumulative P&L (USD)", "Cumulative cost (USD)", "Time (UTC)", "unhedged vault", "fees and slippage paid"} <= set(texts)
        ticks = [t for t in texts if t.startswith(("$", "-$"))]
        assert len(ticks) >= 4  # USD ticks on both value axes
        # Placed right after the market's hedging table, before the next market.
        section = html[html.index(f"<h3>{symbol} ("):]
        after_table = section.index("</table>", section.index("<h4>Hedging</h4>"))
        next_market = section.find("<h3>", 1)
        assert after_table < section.index(f'id="hedge-{symbol}"') < (len(section) if next_market < 0 else next_market)


def test_the_hedging_caption_carries_the_hedging_figures(options: dict[str, bytes], perps: dict[str, bytes]) -> None:
    for files in (perps, options):
        rec = json.loads(files["recommendation.json"])
        tree = html_tree(files["report.html"].decode())
        for symbol, market in rec["markets"].items():
            h = market["hedging"]
            if h is None:
                continue
            bt = h["backtest"]
            chosen = next(c for c in h["candidates"] if c["measured_loss_at_coverage"] == bt["chosen_loss_at_coverage"]
                          and c["measured_cost_per_year"] == bt["chosen_cost_per_year"])
            caption = " ".join(tree.find("figure", id=f"hedge-{symbol}").find("figcaption").text().split())
            for said in (
                f"hedged {chosen['hedge_ratio'] * 100:.0f}% of its delta with a {chosen['band'] * 100:.0f}% rebalance band",
                f"Over {bt['windows']} horizons of {bt['horizon_steps']} steps ({bt['years']:.1f} years)",
                f"{bt['unhedged_loss_at_coverage'] * 100:.2f}% of notional unhedged, {bt['chosen_loss_at_coverage'] * 100:.2f}% hedged",
                f"loss avoided {bt['loss_avoided_at_coverage'] * 100:.2f}% of notional",
                f"cost paid {bt['chosen_cost_per_year'] * 100:.3f}% of notional a year ({bt['chosen_rebalances_per_year']:.0f} rebalances a year)",
            ):
                assert said in caption, (said, caption)
            # The same figures as the hedging table's prose in report.md.
            md = files["report.md"].decode()
            assert f"**loss avoided {bt['loss_avoided_at_coverage'] * 100:.2f}%** of notional for **{bt['chosen_cost_per_year'] * 100:.3f}% a year paid**" in md


def test_the_hedging_series_gives_the_tables_figures(folder: Path) -> None:
    """The hedge's steps sum to the backtest's figures, and are not in recommendation.json."""
    inputs = gather_derivative_inputs(folder / "perps.yaml", data_dir=folder)
    rec = _recommend(inputs)
    hedge = rec.market("ETH").hedge
    assert hedge is not None and hedge.backtest.series is not None
    bt, s = hedge.backtest, hedge.backtest.series
    assert len(s.book_pnl) == bt.windows * bt.horizon_steps == len(s.cost) and s.start + len(s.book_pnl) < len(inputs.market.times)
    unhedged = np.quantile(s.window_losses(s.book_pnl), bt.coverage)
    hedged = np.quantile(s.window_losses(s.hedged_pnl), bt.coverage)
    assert unhedged - hedged == pytest.approx(bt.loss_avoided, rel=1e-12, abs=1e-15)
    assert (s.cost / s.notional).sum() / bt.years == pytest.approx(bt.chosen.cost_per_year, rel=1e-12)
    # A perp vault loses its traders' constant USD skew times each step's return.
    closes = inputs.market.series("ETH")
    steps = closes[s.start + 1 : s.start + 1 + len(s.book_pnl)] / closes[s.start : s.start + len(s.book_pnl)] - 1
    np.testing.assert_allclose(s.book_pnl, -10e6 * steps, rtol=1e-12, atol=1e-6)
    without = dataclasses.replace(hedge, backtest=dataclasses.replace(bt, series=None))
    bare = dataclasses.replace(rec, markets=tuple(dataclasses.replace(m, hedge=without) if m.symbol == "ETH" else m for m in rec.markets))
    assert json.dumps(bare.to_json(), sort_keys=True) == json.dumps(rec.to_json(), sort_keys=True)  # recommendation.json: figures only


@pytest.mark.parametrize("field", ["cost", "hedge_pnl", "book_pnl", "steps"])
def test_a_hedging_chart_that_disagrees_with_its_table_is_refused(folder: Path, field: str) -> None:
    inputs = gather_derivative_inputs(folder / "perps.yaml", data_dir=folder)
    rec = _recommend(inputs)
    m = rec.market("ETH")
    assert m.hedge is not None and m.hedge.backtest.series is not None
    s = m.hedge.backtest.series
    if field == "steps":
        tampered = dataclasses.replace(s, **{n: getattr(s, n)[s.horizon_steps:] for n in ("book_pnl", "hedge_pnl", "cost", "notional")})
    else:
        tampered = dataclasses.replace(s, **{field: getattr(s, field) * 1.01})  # 1% off: a loss quantile or the cost moves
    hedge = dataclasses.replace(m.hedge, backtest=dataclasses.replace(m.hedge.backtest, series=tampered))
    bad = dataclasses.replace(rec, markets=tuple(dataclasses.replace(x, hedge=hedge) if x is m else x for x in rec.markets))
    with pytest.raises(ChartError, match="ETH hedging: the chart's"):
        derivative_charts(bad, inputs.market, inputs.policy.policy, None, None)


def test_markdown_cannot_inject_markup_or_links(perps: dict[str, bytes]) -> None:
    hostile = b'\n\n<img src="http://x/p.png"> [click](https://evil.example) <https://evil.example> ![i](http://x/i.png)\n'
    html = render_derivative_html({"r": _R()}, perps["report.md"] + hostile, DerivativeCharts({}, ())).decode()
    assert "<img" not in html and 'href="' not in html and "&lt;img src=" in html


@dataclasses.dataclass
class _R:
    venue: str = "v<b>"
    epoch: str = "e"


def test_a_chart_without_its_table_is_an_error(perps: dict[str, bytes]) -> None:
    md = perps["report.md"].replace(b"#### Backtests", b"#### Back tests")
    figures = DerivativeCharts({"ETH": BacktestChart("ETH", "t", Markup("<svg></svg>"), ())}, ())
    with pytest.raises(ChartError, match="no backtest table for ETH"):
        render_derivative_html({"r": _R()}, md, figures)


def test_a_hedging_chart_without_its_table_is_an_error(folder: Path, perps: dict[str, bytes]) -> None:
    inputs = gather_derivative_inputs(folder / "perps.yaml", data_dir=folder)
    figures = derivative_charts(_recommend(inputs), inputs.market, inputs.policy.policy, None, None)
    assert sorted(figures.hedges) == ["ETH"]
    md = perps["report.md"].replace(b"#### Hedging", b"#### Hedge")
    with pytest.raises(ChartError, match="no hedging table for ETH"):
        render_derivative_html({"r": _R()}, md, DerivativeCharts({}, (), figures.hedges))


def test_a_separate_process_draws_the_same_page(folder: Path, perps: dict[str, bytes]) -> None:
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from governance.pipeline_derivatives import build_derivative_files, gather_derivative_inputs\n"
        f"d = Path({str(folder)!r})\n"
        "sys.stdout.buffer.write(build_derivative_files(gather_derivative_inputs(d / 'perps.yaml', data_dir=d))['report.html'])\n"
    )
    drawn = subprocess.run([sys.executable, "-c", code], capture_output=True, check=True, timeout=300).stdout
    assert drawn == perps["report.html"]
    charts._DRAWN.clear()  # and in this process, drawn again rather than memoised
    assert build_derivative_files(gather_derivative_inputs(folder / "perps.yaml", data_dir=folder))["report.html"] == drawn


def test_backtest_series_are_the_periods_the_backtest_counted(folder: Path) -> None:
    inputs = gather_derivative_inputs(folder / "perps.yaml", data_dir=folder)
    rec = _recommend(inputs)
    closes = inputs.market.series("ETH")
    long, short = rec.market("ETH").changes[0].backtests
    assert long.series is not None and short.series is not None
    s = long.series
    # Period i runs from close start[i] to close start[i] + horizon: the long side loses the price's fall over it.
    realised = closes[s.start + s.horizon_steps] / closes[s.start] - 1
    np.testing.assert_allclose(s.losses, -realised, rtol=0, atol=1e-12)  # expm1 of a log difference
    np.testing.assert_allclose(short.series.losses, realised, rtol=0, atol=1e-12)
    assert np.all(np.diff(s.start) == s.horizon_steps) and s.start[-1] + s.horizon_steps < len(closes)
    assert (int(s.hits.sum()), len(s.start)) == (long.exceedances, long.periods)
