"""Charts for the HTML report: plain arrays in, one inline SVG string out, the same bytes on every run.

Three choices make an SVG fit a self-contained page that voters may read in light or dark mode:

* **Ink follows the page.** Text, axes, ticks and grid are drawn in a sentinel colour that is rewritten
  to ``currentColor``, so the page's CSS text colour (dark on light, light on dark) paints them; every
  background is transparent.
* **Series colours read on both backgrounds.** `PALETTE` holds mid-luminance colours with at least 3:1
  contrast against `LIGHT_BG` and `DARK_BG` (the page uses the same two constants; a test checks it).
* **Determinism.** A fixed ``svg.hashsalt`` per chart (which also keeps element ids unique when several
  SVGs share one page), no date or creator metadata, and text kept as text (``svg.fonttype: none``) so
  no glyph outline depends on the fonts installed where the bundle is rebuilt.

Each public function draws one kind of chart from numpy arrays with their units in the docstring and
returns the ``<svg>`` element as a string. The report only calls the functions whose data exists.
"""

from __future__ import annotations

import functools
import hashlib
import io
import re
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal
from xml.sax.saxutils import quoteattr

import matplotlib
import matplotlib.dates as mdates
import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator

from risk.errors import StewardError

LIGHT_BG = "#ffffff"
DARK_BG = "#16181d"
PALETTE = {
    "series": "#3b82f6",  # blue: the data itself (price path, distribution before)
    "current": "#dc2626",  # red: today's on-chain parameters
    "proposed": "#16a34a",  # green: this proposal
    "target": "#ea580c",  # orange: where the rule wants to end up
    "other": "#8b5cf6",  # violet: a second series (distribution after)
}
_INK = "#010203"  # sentinel, rewritten to currentColor; no chart colour may equal it
_WIDTH_IN = 8.0


class ChartError(StewardError):
    """Arrays a chart cannot be drawn from (shape, length or non-finite values)."""


# Drawing is a pure function of a chart's data, and matplotlib takes ~0.4 s a chart: a process that
# builds the same report twice (an epoch and its verify, the test suite) draws each chart once. The
# key is every argument's exact bytes; two separate processes still draw independently (and a test
# holds their SVGs byte-identical).
_DRAWN: OrderedDict[str, str] = OrderedDict()
_DRAWN_KEPT = 128


def _fingerprint(value: object, digest: Any) -> None:
    if isinstance(value, np.ndarray):
        digest.update(f"ndarray{value.dtype.str}{value.shape}".encode())
        digest.update(np.ascontiguousarray(value).tobytes())
    elif isinstance(value, (list, tuple)):
        digest.update(f"{type(value).__name__}[{len(value)}]".encode())
        for item in value:
            _fingerprint(item, digest)
    elif hasattr(value, "__dataclass_fields__"):
        digest.update(type(value).__name__.encode())
        for name in value.__dataclass_fields__:
            _fingerprint(getattr(value, name), digest)
    else:
        digest.update(f"{type(value).__name__}:{value!r};".encode())


def _memoised(draw_chart: Callable[..., str]) -> Callable[..., str]:
    @functools.wraps(draw_chart)
    def wrapper(*args: Any, **kwargs: Any) -> str:
        digest = hashlib.sha256(draw_chart.__name__.encode())
        _fingerprint(args, digest)
        _fingerprint(tuple(sorted(kwargs.items())), digest)
        key = digest.hexdigest()
        if key not in _DRAWN:
            _DRAWN[key] = draw_chart(*args, **kwargs)
            while len(_DRAWN) > _DRAWN_KEPT:
                _DRAWN.popitem(last=False)
        return _DRAWN[key]

    return wrapper


@dataclass(frozen=True, slots=True)
class Level:
    """A horizontal line on a price chart: a USD price and what it means."""

    label: str
    price_usd: float
    kind: Literal["current", "proposed", "target"]


@dataclass(frozen=True, slots=True)
class GlidePanel:
    """One parameter's value after each steward update: ``values[0]`` today, ``values[1]`` this
    proposal, then each later update (normally ending at ``target``). ``unit`` is ``"%"`` (values in
    percent) or a token symbol; ``step_days`` is the minimum delay between two updates, in days."""

    label: str
    unit: str
    values: tuple[float, ...]
    target: float
    step_days: float


def _style(salt: str) -> dict[str, object]:
    ink = {k: _INK for k in ("text.color", "axes.edgecolor", "axes.labelcolor", "xtick.color", "ytick.color", "grid.color")}
    return {
        **ink,
        "svg.hashsalt": salt,
        "svg.fonttype": "none",
        "figure.facecolor": "none",
        "axes.facecolor": "none",
        "savefig.facecolor": "none",
        "savefig.edgecolor": "none",
        "legend.frameon": False,
        "axes.grid": True,
        "grid.alpha": 0.18,
        "axes.spines.top": False,
        "axes.spines.right": False,
        "font.family": "sans-serif",
        "font.sans-serif": ["DejaVu Sans"],
        "font.size": 10.0,
        "axes.titlesize": 10.0,
        "path.simplify": True,
    }


_PROLOG = re.compile(r"\A.*?(?=<svg\b)", re.DOTALL)
_METADATA = re.compile(r"\s*<metadata>.*?</metadata>", re.DOTALL)
# matplotlib's <style>*{...}</style> would apply to the whole HTML page once inlined: the same two
# properties go on the root element as (inherited) presentation attributes instead.
_GLOBAL_STYLE = re.compile(r'\s*<defs>\s*<style type="text/css">\*\{stroke-linejoin: round; stroke-linecap: butt\}</style>\s*</defs>')
# Group ids (figure_1, axes_1, ...) repeat in every chart and nothing references them; the ids that
# are referenced (markers, clip paths) are hashes salted per chart, hence unique on the page.
_GROUP_ID = re.compile(r'<g id="[^"]*"')
_SIZE = re.compile(r'<svg([^>]*?) width="[^"]*" height="[^"]*"')


def _render(salt: str, title: str, height_in: float, draw: Callable[[Figure], None]) -> str:
    """Draw with the house style and return the bare ``<svg>`` element, sized by CSS through its viewBox."""
    with matplotlib.rc_context(_style(salt)):
        # `draw` lays out with one tight_layout pass, or fixed margins on small multiples; constrained
        # layout costs ~1 s a chart, and every `steward verify` rebuilds the report.
        fig = Figure(figsize=(_WIDTH_IN, height_in))
        draw(fig)
        buf = io.StringIO()
        fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None})
    svg = _METADATA.sub("", _PROLOG.sub("", buf.getvalue(), count=1), count=1)
    svg, n_style = _GLOBAL_STYLE.subn("", svg, count=1)
    if n_style != 1:
        raise ChartError(f"chart {salt}: matplotlib's SVG preamble changed", "update _GLOBAL_STYLE in governance/charts.py")
    svg = _GROUP_ID.sub("<g", svg)
    if _INK not in svg:
        raise ChartError(f"chart {salt}: no ink drawn", "this is a bug in governance/charts.py")
    svg = svg.replace(_INK, "currentColor")
    label = quoteattr(title)
    root = f'class="chart" role="img" aria-label={label} stroke-linejoin="round" stroke-linecap="butt"'
    svg, n_root = _SIZE.subn(lambda m: f"<svg{m.group(1)} {root}", svg, count=1)
    if n_root != 1:
        raise ChartError(f"chart {salt}: no sized <svg> root in matplotlib's output", "update _SIZE in governance/charts.py")
    return svg.strip() + "\n"


def _finite(name: str, a: np.ndarray, n: int | None = None) -> np.ndarray:
    arr = np.asarray(a, dtype=np.float64)
    if arr.ndim != 1 or len(arr) == 0 or (n is not None and len(arr) != n):
        raise ChartError(f"{name}: shape {arr.shape}, expected ({n if n is not None else 'n'},)", "pass one value per point")
    if not np.all(np.isfinite(arr)):
        raise ChartError(f"{name}: contains NaN or infinite values", "drop or repair them before charting")
    return arr


def usd_tick(x: float, _pos: object = None) -> str:
    """Axis ticks in USD: cents below $10, whole dollars with thousands separators above."""
    return f"${x:,.3f}" if abs(x) < 10 else f"${x:,.0f}"


def compact_tick(x: float, _pos: object = None) -> str:
    """Token amounts on an axis: 605k, 1.8M, 3.5B (the unit is in the axis label)."""
    for div, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(x) >= div:
            return f"{x / div:.3g}{suffix}"
    return f"{x:.3g}"


def percent_tick(x: float, _pos: object = None) -> str:
    return f"{x:.1f}%"


@_memoised
def price_levels(salt: str, times: np.ndarray, prices_usd: np.ndarray, levels: Sequence[Level], *, title: str) -> str:
    """Price history with horizontal levels (e.g. the liquidation price of a position at max LTV).

    Parameters
    ----------
    times : numpy.ndarray
        Unix seconds UTC, shape (T,).
    prices_usd : numpy.ndarray
        Price in USD at each time, shape (T,).
    levels : sequence of Level
        Horizontal lines in USD; the legend carries their labels.
    """
    t = np.asarray(times, dtype=np.int64)
    p = _finite("prices_usd", prices_usd, len(t))

    def draw(fig: Figure) -> None:
        ax = fig.add_subplot()
        dates = t.astype("datetime64[s]")
        ax.plot(dates, p, color=PALETTE["series"], linewidth=1.1, label="price (hourly, USD)")
        for lv in levels:
            ax.axhline(lv.price_usd, color=PALETTE[lv.kind], linewidth=1.4, linestyle="--" if lv.kind == "current" else "-", label=lv.label)
        ax.plot(dates[-1:], p[-1:], "o", color=PALETTE["series"], markersize=5, label=f"last price {usd_tick(float(p[-1]))}")
        locator = mdates.AutoDateLocator(minticks=4, maxticks=8)
        ax.xaxis.set_major_locator(locator)
        # The offset under the axis names the year only (its default, "2023-Nov", reads as a tick).
        ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator, offset_formats=["", "%Y", "%Y", "%Y", "%Y", "%Y"]))
        ax.yaxis.set_major_formatter(FuncFormatter(usd_tick))
        ax.set_xlabel("Date (UTC)")
        ax.set_ylabel("Price (USD)")
        # Above the plot, where no price can hide behind it.
        ax.legend(loc="lower left", bbox_to_anchor=(0, 1.01), ncols=2, fontsize=8.5, borderaxespad=0)
        fig.tight_layout(pad=0.4)

    return _render(salt, title, 3.8, draw)


@_memoised
def glide_path(salt: str, panels: Sequence[GlidePanel], *, title: str) -> str:
    """Small multiples, one per parameter: its value after each update, today and this proposal marked."""
    if not panels:
        raise ChartError(f"chart {salt}: no parameter to draw", "draw a glide path only for changed parameters")
    cols = min(3, len(panels))
    rows = -(-len(panels) // cols)

    def draw(fig: Figure) -> None:
        axes = fig.subplots(rows, cols, squeeze=False)
        for ax in axes.flat[len(panels):]:
            ax.set_visible(False)
        for ax, panel in zip(axes.flat, panels, strict=False):
            v = _finite(panel.label, np.asarray(panel.values))
            x = np.arange(len(v))
            ax.step(x, v, where="post", color=PALETTE["series"], linewidth=0.9)
            ax.plot(x[2:], v[2:], ".", color=PALETTE["series"], markersize=5, label="later updates")
            ax.axhline(panel.target, color=PALETTE["target"], linestyle=":", linewidth=1.6, label="target")
            ax.plot(x[:1], v[:1], "o", markerfacecolor="none", color=PALETTE["current"], markersize=7, label="today")
            if len(v) > 1:
                ax.plot(x[1:2], v[1:2], "o", color=PALETTE["proposed"], markersize=7, label="this proposal")
            ax.set_title(panel.label)
            ax.xaxis.set_major_locator(MaxNLocator(integer=True, nbins=6))
            pad = max(0.5, 0.05 * len(v))  # keeps today's marker off the axis on long glides
            ax.set_xlim(-pad, len(v) - 1 + pad)
            ax.set_xlabel(f"Update (one every {panel.step_days:g} days)")
            if panel.unit == "%":
                ax.yaxis.set_major_formatter(FuncFormatter(percent_tick))
                ax.set_ylabel("Value (%)")
            else:
                ax.yaxis.set_major_formatter(FuncFormatter(compact_tick))
                ax.set_ylabel(f"Cap ({panel.unit})")
        handles, labels = axes.flat[0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="upper center", ncols=4, fontsize=8.5)
        # Fixed margins (inches): tick labels here are short ("80.5%", "1.25M"), and tight_layout on
        # small multiples would double the report's rendering time.
        h, gap = fig.get_figheight(), 0.95  # gap between rows: x label, tick labels and the next title
        axes_h = (h - 1.15 - gap * (rows - 1)) / rows
        fig.subplots_adjust(left=0.8 / _WIDTH_IN, right=1 - 0.1 / _WIDTH_IN, top=1 - 0.65 / h, bottom=0.5 / h, wspace=0.5, hspace=gap / axes_h)

    return _render(salt, title, 1.15 + 2.2 * rows, draw)


@_memoised
def loss_distribution(salt: str, before: np.ndarray, after: np.ndarray, *, unit: str, quantile: float, title: str) -> str:
    """Two loss distributions over the same scenarios (current vs proposed parameters), quantile marked.

    ``before`` and ``after`` are one loss per scenario path in ``unit`` (e.g. "USD");
    ``quantile`` is the VaR level in (0, 1), e.g. 0.95.
    """
    b, a = _finite("before", before), _finite("after", after)
    if not 0 < quantile < 1:
        raise ChartError(f"quantile {quantile} outside (0, 1)", "e.g. 0.95")

    def draw(fig: Figure) -> None:
        ax = fig.add_subplot()
        edges = np.histogram_bin_edges(np.concatenate([b, a]), bins=40)
        for data, key, name in ((b, "current", "current parameters"), (a, "proposed", "proposed parameters")):
            q = float(np.quantile(data, quantile))
            ax.hist(data, bins=edges, histtype="step", linewidth=1.4, color=PALETTE[key], label=name)
            ax.axvline(q, color=PALETTE[key], linestyle="--", linewidth=1.1, label=f"{quantile:.0%} quantile: {compact_tick(q)} {unit}")
        ax.xaxis.set_major_formatter(FuncFormatter(compact_tick))
        ax.set_xlabel(f"Loss per scenario ({unit})")
        ax.set_ylabel("Scenarios (count)")
        ax.legend(fontsize=8.5)
        fig.tight_layout(pad=0.4)

    return _render(salt, title, 3.2, draw)


@_memoised
def tornado(salt: str, names: Sequence[str], low: np.ndarray, high: np.ndarray, base: float, *, unit: str, title: str) -> str:
    """Sensitivity tornado: the output when each input moves to its low / high value, widest bar on top.

    ``low``, ``high`` and ``base`` are the output in ``unit`` (e.g. "% LTV"), one per name.
    """
    lo, hi = _finite("low", low, len(names)), _finite("high", high, len(names))
    order = np.argsort(-np.abs(hi - lo), kind="stable")[::-1]  # widest last = drawn at the top

    def draw(fig: Figure) -> None:
        ax = fig.add_subplot()
        y = np.arange(len(order))
        ax.barh(y, lo[order] - base, left=base, color=PALETTE["current"], label="input at its low value")
        ax.barh(y, hi[order] - base, left=base, color=PALETTE["proposed"], label="input at its high value")
        ax.axvline(base, color=_INK, linewidth=1.0)
        ax.set_yticks(y, [names[i] for i in order])
        ax.set_xlabel(f"Output ({unit})")
        ax.set_ylabel("Input varied")
        ax.legend(fontsize=8.5)
        fig.tight_layout(pad=0.4)

    return _render(salt, title, 1.2 + 0.35 * len(names), draw)
