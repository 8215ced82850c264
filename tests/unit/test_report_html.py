"""report.html: one self-contained, escaped, deterministic page whose charts show the bundle's numbers.

What a person sees in a browser is tested in tests/e2e/test_report_browser.py; here the markup and the
chart data are checked against the bundle's own files.
"""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
import sys
from collections import Counter
from typing import Any

import numpy as np
import pytest
from test_report_tables import (
    PARAMETER_OF_LABEL,
    Node,
    demo_bundle,
    demo_context,
    html_tree,
)

from governance import charts
from governance.report import render_markdown
from governance.report_html import glide_values, render_html
from risk.policy import ChangeLimit, LendingParameter
from risk.recommendation import ParameterChange
from risk.units import Bps, Duration, Ratio, TokenAmount


def page() -> str:
    return demo_bundle()["report.html"].decode("utf-8")


def rec() -> dict[str, Any]:
    return json.loads(demo_bundle()["recommendation.json"])


def svg_texts(svg: Node) -> list[str]:
    return [" ".join(t.text().split()) for t in svg.iter("text")]


def contrast(a: str, b: str) -> float:
    """WCAG 2 contrast ratio of two #rrggbb colours."""

    def luminance(h: str) -> float:
        c = [int(h[i : i + 2], 16) / 255 for i in (1, 3, 5)]
        c = [x / 12.92 if x <= 0.03928 else ((x + 0.055) / 1.055) ** 2.4 for x in c]
        return 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2]

    hi, lo = sorted((luminance(a), luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


# --- self-contained and safe ---------------------------------------------------------------------------


def test_page_loads_nothing_and_forbids_loading() -> None:
    html = page()
    tree = html_tree(html)
    assert not list(tree.iter("script")) and not list(tree.iter("link")) and not list(tree.iter("img")) and not list(tree.iter("iframe"))
    for node in tree.iter():
        for attr in ("src", "href", "xlink:href", "srcset", "action"):
            if attr in node.attrs:
                assert node.attrs[attr].startswith("#"), f"<{node.tag} {attr}={node.attrs[attr]!r}> points outside the page"
    urls = re.findall(r"url\(([^)]*)\)", html)
    assert urls and all(u.startswith("#") for u in urls), "only in-page references (SVG clip paths)"
    assert "@import" not in html and "@font-face" not in html
    csp = [m for m in tree.iter("meta") if m.attrs.get("http-equiv") == "Content-Security-Policy"]
    assert csp and csp[0].attrs["content"].startswith("default-src 'none'")


def test_ids_are_unique_and_every_in_page_reference_resolves() -> None:
    tree = html_tree(page())
    ids = Counter(n.attrs["id"] for n in tree.iter() if "id" in n.attrs)
    assert ids and max(ids.values()) == 1, [k for k, v in ids.items() if v > 1]
    refs = {a[1:] for n in tree.iter() for k, a in n.attrs.items() if k in ("href", "xlink:href")} | {
        u[1:] for u in re.findall(r"url\((#[^)]*)\)", page())
    }
    assert refs and refs <= set(ids)


def test_all_text_is_escaped() -> None:
    context = demo_context()
    hostile = "<img src=x onerror=alert(1)> & \"quoted\""
    context["calls"] = [{**c, "human": hostile} for c in context["calls"]]
    context["data_range"] = hostile
    html = render_html(context).decode()
    assert "<img src=x" not in html
    assert html.count("&lt;img src=x onerror=alert(1)&gt; &amp; &#34;quoted&#34;") == len(context["calls"]) + 1


def test_svgs_carry_no_page_wide_style_and_follow_the_page_colour() -> None:
    tree = html_tree(page())
    svgs = list(tree.iter("svg"))
    assert svgs
    for svg in svgs:
        assert not list(svg.iter("style")), "a <style> inside an inline SVG styles the whole page"
        assert svg.attrs["role"] == "img" and svg.attrs["aria-label"] and "viewbox" in svg.attrs
        assert "width" not in svg.attrs, "sized by CSS through its viewBox"
    assert "#010203" not in page() and "currentColor" in page()


def test_chart_colours_read_on_both_page_backgrounds() -> None:
    css = html_tree(page()).find("style").text()
    assert f"--bg: {charts.LIGHT_BG}" in css and f"--bg: {charts.DARK_BG}" in css
    for name, colour in charts.PALETTE.items():
        assert contrast(colour, charts.LIGHT_BG) >= 3 and contrast(colour, charts.DARK_BG) >= 3, name


def test_rendering_twice_gives_the_same_bytes() -> None:
    context = demo_context()
    charts._DRAWN.clear()  # draw for real both times (charts are memoised per process)
    first = render_html(context)
    charts._DRAWN.clear()
    assert first == render_html(context) == demo_bundle()["report.html"]


def test_a_separate_process_draws_the_same_report() -> None:
    code = (
        "import sys\n"
        "from governance.epoch_inputs import gather_inputs\nfrom governance.pipeline import build_files\n"
        "sys.stdout.buffer.write(build_files(gather_inputs(None))['report.html'])\n"
    )
    drawn = subprocess.run([sys.executable, "-c", code], capture_output=True, check=True, timeout=300).stdout
    assert drawn == demo_bundle()["report.html"]


def test_a_report_without_chart_data_draws_no_chart() -> None:
    html = render_html({**demo_context(), "charts": None}).decode()
    assert "<svg" not in html and "<figure" not in html
    assert json.loads(demo_bundle()["safe-tx.json"])["safeTxHash"] in html


# --- the charts show the bundle's numbers ------------------------------------------------------------


def test_each_market_has_a_price_chart_and_a_glide_chart_with_units_on_every_axis() -> None:
    tree = html_tree(page())
    markets = rec()["markets"]
    for symbol, market in markets.items():
        price = tree.find("figure", id=f"price-{symbol}").find("svg")
        texts = svg_texts(price)
        assert "Price (USD)" in texts and "Date (UTC)" in texts
        changed = [p for p in market["parameters"].values() if p["current"] != p["proposed"]]
        glide = tree.find("figure", id=f"glide-{symbol}").find("svg")
        texts = svg_texts(glide)
        units = {"%" if "bps" in p["current"] else p["current"]["symbol"] for p in changed}
        for unit in units:
            assert ("Value (%)" if unit == "%" else f"Cap ({unit})") in texts
        assert texts.count("Update (one every 3 days)") == len(changed)


def test_liquidation_levels_are_entry_times_ltv_over_lt() -> None:
    tree = html_tree(page())
    for symbol, market in rec()["markets"].items():
        caption = " ".join(tree.find("figure", id=f"price-{symbol}").find("figcaption").text().split())
        entry = market["metrics"]["price_usd"]
        p = market["parameters"]
        for kind, key in (("today", "current"), ("proposed", "proposed")):
            ltv, lt = p["ltv"][key]["bps"], p["liquidation_threshold"][key]["bps"]
            m = re.search(rf"{kind} \(LTV ([\d.]+)%, LT ([\d.]+)%\) \$([\d,.]+), a fall of ([\d.]+)%", caption)
            assert m, caption
            assert (round(float(m.group(1)) * 100), round(float(m.group(2)) * 100)) == (ltv, lt)
            shown, fall = float(m.group(3).replace(",", "")), float(m.group(4))
            places = len(m.group(3).partition(".")[2])
            assert abs(shown - entry * ltv / lt) <= 0.5 * 10**-places, (symbol, kind)
            assert abs(fall - 100 * (1 - ltv / lt)) <= 0.005, (symbol, kind)


def test_chart_data_is_the_pinned_prices_and_the_recommendation() -> None:
    bundle, r = demo_bundle(), rec()
    rows = list(csv.DictReader(io.StringIO(bundle["inputs/prices.csv"].decode())))
    for c in demo_context()["charts"]:
        assert np.array_equal(c.prices_usd, np.array([float(row[c.symbol]) for row in rows]))
        assert c.entry_usd == r["markets"][c.symbol]["metrics"]["price_usd"] == c.prices_usd[-1]


def test_glide_paths_run_from_current_through_proposed_to_target_in_the_reported_updates() -> None:
    r = rec()
    checked = 0
    for c in demo_context()["charts"]:
        params = {k: v for k, v in r["markets"][c.symbol]["parameters"].items() if v["current"] != v["proposed"]}
        assert sorted(PARAMETER_OF_LABEL[panel.label] for panel in c.glide) == sorted(params)
        for panel in c.glide:
            p = params[PARAMETER_OF_LABEL[panel.label]]
            unit, key = (100, "bps") if "bps" in p["current"] else (1, "tokens")
            assert panel.unit == ("%" if unit == 100 else p["current"]["symbol"])
            assert [round(v * unit) for v in (panel.values[0], panel.values[1], panel.values[-1], panel.target)] == [
                p["current"][key], p["proposed"][key], p["target"][key], p["target"][key]
            ]
            if not any(b.startswith("aave:") for b in p["binding"]):  # Aave's own rules may shorten a step
                assert len(panel.values) - 1 == p["updates_to_target"], (c.symbol, panel.label)
                checked += 1
    assert checked > 10


def _change(current: Bps | TokenAmount, proposed: Bps | TokenAmount, target: Bps | TokenAmount) -> ParameterChange:
    return ParameterChange(
        market="X", asset="0x0", parameter=LendingParameter.LTV, current=current, proposed=proposed, target=target,
        limit_text="", binding=(), updates_to_target=0, min_delay=Duration(259200), needs_governance=False,
    )


def test_glide_values_step_at_the_limit_and_stop_at_the_target() -> None:
    half_pp = ChangeLimit(max_absolute=Ratio.parse("0.5%"))
    assert glide_values(_change(Bps(8050), Bps(8000), Bps(7874)), half_pp) == (8050, 8000, 7950, 7900, 7874)
    doubling = ChangeLimit(max_relative=Ratio.parse("100%"))
    cap = lambda n: TokenAmount.whole(n, 6, "USDC")
    assert glide_values(_change(cap(1_000), cap(2_000), cap(7_000)), doubling) == (1_000, 2_000, 4_000, 7_000)
    # Aave's rules moved a pinned parameter: the path stops there, short of the target.
    assert glide_values(_change(Bps(600), Bps(550), Bps(400)), ChangeLimit(max_absolute=Ratio.parse("0%"))) == (600, 550)


# --- chart functions for the risk-core results still to come -----------------------------------------


def test_loss_distribution_and_tornado_draw_labelled_deterministic_svgs() -> None:
    rng = np.random.default_rng(7)
    before, after = rng.lognormal(10, 1, 2000), rng.lognormal(9.5, 1, 2000)
    a = charts.loss_distribution("loss-X", before, after, unit="USD", quantile=0.95, title="Bad debt")
    charts._DRAWN.clear()
    assert a == charts.loss_distribution("loss-X", before, after, unit="USD", quantile=0.95, title="Bad debt")
    texts = svg_texts(html_tree(a).find("svg"))
    assert "Loss per scenario (USD)" in texts and "Scenarios (count)" in texts
    q = charts.compact_tick(float(np.quantile(after, 0.95)))
    assert f"95% quantile: {q} USD" in texts
    t = charts.tornado("tornado-X", ["volatility", "liquidity", "bonus"], np.array([70.0, 74, 75]), np.array([80.0, 78, 76]), 76.5, unit="% LTV", title="LTV")
    texts = svg_texts(html_tree(t).find("svg"))
    assert "Output (% LTV)" in texts and "Input varied" in texts
    assert [x for x in texts if x in ("volatility", "liquidity", "bonus")] == ["bonus", "liquidity", "volatility"]  # widest on top


def test_charts_refuse_arrays_they_cannot_draw() -> None:
    t = np.arange(5) * 3600
    with pytest.raises(charts.ChartError, match="NaN"):
        charts.price_levels("p", t, np.array([1.0, 2, np.nan, 3, 4]), [], title="x")
    with pytest.raises(charts.ChartError, match="shape"):
        charts.price_levels("p", t, np.ones(4), [], title="x")
    with pytest.raises(charts.ChartError, match="no parameter"):
        charts.glide_path("g", [], title="x")


def test_both_reports_say_which_changes_need_a_dao_vote_in_the_same_words() -> None:
    context = {**demo_context(), "charts": None}
    assert context["governance"] == []  # the demo needs no vote: set one to see the sentence
    change = context["r"].markets[0].changes[0]
    context["governance"] = [change]
    sentence = f"{change.market} {change.parameter.value} (a risk steward cannot set it to zero)."
    assert f"**Needs a DAO vote:** {sentence}" in render_markdown(context).decode()
    vote = html_tree(render_html(context).decode()).find("p", id="needs-vote")
    assert " ".join(vote.text().split()) == f"Needs a DAO vote: {sentence}"
