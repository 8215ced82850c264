"""report.html in real headless Chromium, looked at the way a voter would.

The page is opened from a file, in light and in dark colour schemes: it must log no error, fetch
nothing but itself, show every proposed value and the safeTxHash as visible text, draw every chart
at a readable size with units on its axes, keep text and chart ink in contrast with the background,
and fit a phone's width. Screenshots go to tests/artifacts/ (report.png, report-dark.png).

Chromium comes from Debian (`/usr/bin/chromium`); without it these tests skip, except in CI where
`make test` installs it and a missing browser is a failure.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from browser import Browser, Page, find_chromium
from derivatives_fixtures import write_data, write_policies
from PIL import Image
from unit.test_report_tables import demo_bundle

from governance.pipeline_derivatives import build_derivative_files, gather_derivative_inputs

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "tests" / "artifacts"
DESKTOP = (1280, 900)
PHONE = (390, 844)

CHARTS_JS = """[...document.querySelectorAll('svg.chart')].map(s => {
  const r = s.getBoundingClientRect(), cs = getComputedStyle(s);
  const texts = [...s.querySelectorAll('text')];
  return {figure: s.closest('figure').id, x: r.x + scrollX, y: r.y + scrollY, width: r.width, height: r.height,
          visible: cs.display !== 'none' && cs.visibility !== 'hidden' && Number(cs.opacity) > 0,
          texts: texts.map(t => t.textContent.trim()),
          drawnTexts: texts.filter(t => { const b = t.getBoundingClientRect(); return b.width > 0 && b.height > 0; }).length,
          ink: getComputedStyle(texts[0]).fill};
})"""
ROWS_JS = """Object.fromEntries([...document.querySelectorAll('section.market')].map(s => [s.querySelector('h3').innerText,
  [...s.querySelectorAll('tbody tr')].map(tr => [...tr.cells].map(td => {
    const r = td.getBoundingClientRect();
    return r.width > 0 && r.height > 0 ? td.innerText.trim() : null;  // null: not drawn
  }))]))"""
COLOURS_JS = """({page: getComputedStyle(document.documentElement).backgroundColor,
  text: getComputedStyle(document.body).color,
  muted: getComputedStyle(document.querySelector('.metrics')).color,
  th: getComputedStyle(document.querySelector('th')).color,
  thBackground: getComputedStyle(document.querySelector('th')).backgroundColor})"""


def require_chromium() -> Path:
    exe = find_chromium()
    if exe is None:
        if os.environ.get("CI") == "true":
            pytest.fail("chromium is required in CI and /usr/bin/chromium is missing: `make test` installs it")
        pytest.skip("chromium not installed: `make test` installs it (apt-get install chromium)")
    return exe


def rgb(css: str) -> tuple[int, int, int]:
    m = re.fullmatch(r"rgba?\((\d+), (\d+), (\d+)(?:, [\d.]+)?\)", css)
    assert m, css
    return int(m.group(1)), int(m.group(2)), int(m.group(3))


def luminance(c: tuple[int, ...]) -> float:
    lin = [x / 255 / 12.92 if x / 255 <= 0.03928 else ((x / 255 + 0.055) / 1.055) ** 2.4 for x in c[:3]]
    return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]


def contrast(a: tuple[int, ...], b: tuple[int, ...]) -> float:
    hi, lo = sorted((luminance(a), luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    exe = require_chromium()
    with Browser(exe, tmp_path_factory.mktemp("chromium")) as b:
        yield b


@pytest.fixture(scope="module")
def report_url() -> str:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / "report.html"
    path.write_bytes(demo_bundle()["report.html"])
    return path.as_uri()


@pytest.fixture(scope="module")
def seen(browser: Browser, report_url: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Open the report once and record, per colour scheme, what it shows; screenshots to tests/artifacts/."""
    page = browser.new_page()
    page.viewport(*DESKTOP)
    out: dict[str, Any] = {}
    for scheme in ("light", "dark"):
        page.color_scheme(scheme)
        page.open(report_url)
        shot = page.screenshot(ARTIFACTS / ("report.png" if scheme == "light" else "report-dark.png"))
        charts = page.evaluate(CHARTS_JS)
        crops = tmp_path_factory.mktemp(f"charts-{scheme}")
        out[scheme] = {
            "text": page.evaluate("document.body.innerText"),
            "rows": page.evaluate(ROWS_JS),
            "charts": charts,
            "colours": page.evaluate(COLOURS_JS),
            "fits": page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"),
            "screenshot": shot,
            "chart_pixels": [_pixels(page, c, crops / f"{c['figure']}.png") for c in charts],
        }
    page.viewport(*PHONE)
    page.open(report_url)
    out["phone_fits"] = page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    out["events"] = page.events
    return out


def _pixels(page: Page, chart: dict[str, Any], path: Path) -> np.ndarray:
    """The chart as a reader sees it: RGB pixels, shape (n, 3)."""
    page.screenshot(path, clip={k: chart[k] for k in ("x", "y", "width", "height")})
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"), dtype=np.float64).reshape(-1, 3)


def luminances(pixels: np.ndarray) -> np.ndarray:
    c = pixels / 255
    lin = np.where(c <= 0.03928, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    return lin @ np.array([0.2126, 0.7152, 0.0722])


def test_no_console_errors_and_no_request_leaves_the_file(seen: dict[str, Any], report_url: str) -> None:
    events = seen["events"]
    assert events.console_errors == []
    assert events.requests and report_url in events.requests
    assert [u for u in events.requests if not u.startswith(("file://", "data:"))] == []


def test_the_harness_sees_errors_and_outside_requests(browser: Browser, tmp_path: Path) -> None:
    """The checks above can fail: the report with one outside image slipped in is caught twice (the
    request, and the page's own Content-Security-Policy blocking it), and a script's console.error is seen."""
    leak = "http://127.0.0.1:9/pixel.png"  # a closed local port: nothing leaves the machine
    tampered = tmp_path / "tampered.html"
    tampered.write_bytes(demo_bundle()["report.html"].replace(b"</main>", f'<img src="{leak}"></main>'.encode()))
    page = browser.new_page()
    page.open(tampered.as_uri())
    assert leak in page.events.requests
    assert any(leak in e and "Content Security Policy" in e for e in page.events.console_errors)
    noisy = tmp_path / "noisy.html"
    noisy.write_text('<p>x</p><script>console.error("boom")</script>')
    page.open(noisy.as_uri())
    assert any("boom" in e for e in page.events.console_errors)


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_a_reader_sees_every_proposed_value_and_the_safe_tx_hash(seen: dict[str, Any], scheme: str) -> None:
    text, rows = seen[scheme]["text"], seen[scheme]["rows"]
    rec = json.loads(demo_bundle()["recommendation.json"])
    assert sorted(rows) == sorted(rec["markets"])
    label = {"ltv": "LTV", "liquidation_threshold": "Liquidation threshold", "liquidation_bonus": "Liquidation bonus",
             "supply_cap": "Supply cap", "borrow_cap": "Borrow cap"}
    for symbol, market in rec["markets"].items():
        shown: dict[str, list[str]] = {}
        for row in rows[symbol]:  # the proposed-changes table comes first; later tables reuse the labels
            shown.setdefault(row[0], row)
        for name, p in market["parameters"].items():
            cur, new = (v["percent"] if "bps" in v else f"{v['tokens']:,} {v['symbol']}" for v in (p["current"], p["proposed"]))
            assert shown[label[name]][1:3] == [cur, new], (symbol, name)
    for call in json.loads(demo_bundle()["calls.json"]):
        assert call["human"] in text
    assert json.loads(demo_bundle()["safe-tx.json"])["safeTxHash"] in text


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_every_chart_is_drawn_at_a_readable_size_with_units_on_its_axes(seen: dict[str, Any], scheme: str) -> None:
    charts = seen[scheme]["charts"]
    markets = json.loads(demo_bundle()["recommendation.json"])["markets"]
    figures = {c["figure"] for c in charts}
    # price and glide for every market; the risk core's loss and tornado charts where they have data
    assert {f"{kind}-{s}" for s in markets for kind in ("price", "glide")} <= figures
    assert figures <= {f"{kind}-{s}" for s in markets for kind in ("price", "glide", "losses", "tornado")}
    for c in charts:
        assert c["visible"] and c["width"] >= 600 and c["height"] >= 200, c["figure"]
        assert c["drawnTexts"] == len(c["texts"]) > 10, c["figure"]
        if c["figure"].startswith("price-"):
            assert {"Price (USD)", "Date (UTC)"} <= set(c["texts"])
        elif c["figure"].startswith("glide-"):
            assert "Update (one every 3 days)" in c["texts"]
            assert any(re.fullmatch(r"Value \(%\)|Cap \(\S+\)", t) for t in c["texts"])
        elif c["figure"].startswith("tornado-"):
            assert "Input varied" in c["texts"] and any(t.startswith("Output (") for t in c["texts"])
        else:
            assert "Loss per scenario (USD)" in c["texts"]


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_text_and_chart_ink_stand_out_from_the_background(seen: dict[str, Any], scheme: str) -> None:
    colours = seen[scheme]["colours"]
    page = rgb(colours["page"])
    assert (luminance(page) > 0.8) if scheme == "light" else (luminance(page) < 0.05)
    assert contrast(rgb(colours["text"]), page) >= 7
    assert contrast(rgb(colours["muted"]), page) >= 4.5
    assert contrast(rgb(colours["th"]), rgb(colours["thBackground"])) >= 7
    for c in seen[scheme]["charts"]:
        assert contrast(rgb(c["ink"]), page) >= 7, c["figure"]


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_screenshots_show_the_scheme_and_inked_charts(seen: dict[str, Any], scheme: str) -> None:
    with Image.open(seen[scheme]["screenshot"]) as im:
        assert im.width == DESKTOP[0] and im.height > 3 * DESKTOP[1]
        corner = im.convert("RGB").getpixel((2, 2))
    page = rgb(seen[scheme]["colours"]["page"])
    assert corner == page
    for chart, pixels in zip(seen[scheme]["charts"], seen[scheme]["chart_pixels"], strict=True):
        # Ink is what contrasts with the page: axes, labels and lines a reader can make out.
        lum, bg = luminances(pixels), luminance(page)
        ratio = (np.maximum(lum, bg) + 0.05) / (np.minimum(lum, bg) + 0.05)
        assert np.mean(ratio >= 3) > 0.01, (chart["figure"], float(np.mean(ratio >= 3)))


def test_the_page_fits_a_desktop_and_a_phone_without_sideways_scrolling(seen: dict[str, Any]) -> None:
    assert seen["light"]["fits"] and seen["dark"]["fits"]
    assert seen["phone_fits"]


@pytest.fixture(scope="module")
def derivative_report_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A perps venue's report.html (synthetic data: backtest charts, a hedging chart and a breaker replay)."""
    folder = tmp_path_factory.mktemp("derivative-data")
    write_data(folder)
    write_policies(folder)
    path = ARTIFACTS / "report-derivatives.html"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path.write_bytes(build_derivative_files(gather_derivative_inputs(folder / "perps.yaml", data_dir=folder))["report.html"])
    return path.as_uri()


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_the_derivative_report_logs_no_error_fetches_nothing_and_draws_its_charts(
    browser: Browser, derivative_report_url: str, scheme: str
) -> None:
    page = browser.new_page()
    page.viewport(*DESKTOP)
    page.color_scheme(scheme)
    page.open(derivative_report_url)
    assert page.events.console_errors == []
    assert derivative_report_url in page.events.requests
    assert [u for u in page.events.requests if not u.startswith(("file://", "data:"))] == []
    charts = page.evaluate(CHARTS_JS)
    assert sorted(c["figure"] for c in charts) == ["backtest-BTC", "backtest-ETH", "hedge-ETH", "replay-window-a-ETH"]
    background = rgb(page.evaluate("getComputedStyle(document.documentElement).backgroundColor"))
    for c in charts:
        assert c["visible"] and c["width"] >= 600 and c["height"] >= 200, c["figure"]
        assert c["drawnTexts"] == len(c["texts"]) > 10, c["figure"]
        assert contrast(rgb(c["ink"]), background) >= 7, c["figure"]
        units = {
            "backtest": {"Period start (UTC)", "Loss (% of notional)"},
            "hedge": {"Cumulative P&L (USD)", "Cumulative cost (USD)", "Time (UTC)"},
            "replay": {"Price (USD)", "Time (UTC)", "1h move down (%)"},
        }[c["figure"].split("-")[0]]
        assert units <= set(c["texts"]), c["figure"]
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
