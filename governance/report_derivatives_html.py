"""The derivative venue's HTML report: report.md's content, as HTML, with the charts beside the tables they show.

The page body is report.md itself rendered by markdown-it (CommonMark + tables), so the two reports
cannot say different things: one template (``report_derivatives.md.j2``) writes every sentence and
number. Raw HTML in the Markdown is escaped (``html: False``) and links, images and autolinks are off,
so text from a policy can neither inject markup nor make the page fetch anything. The charts' figures
(macros of ``templates/_report_derivatives_figures.html.j2``) go into the token stream after the table they belong
to: each market's backtest and hedging tables, and the end of the circuit-breaker section. The page shell is the
lending report's: inline CSS for light and dark, a Content-Security-Policy that forbids every fetch.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import Any

from markdown_it import MarkdownIt
from markdown_it.token import Token
from markupsafe import Markup

from governance import charts, report_html
from governance.charts import ChartError
from governance.report_derivatives_charts import DerivativeCharts

HTML_TEMPLATE = "report_derivatives.html.j2"
FIGURES_TEMPLATE = "_report_derivatives_figures.html.j2"


@lru_cache(maxsize=1)
def _markdown() -> MarkdownIt:
    return MarkdownIt("commonmark", {"html": False}).enable("table").disable(["link", "image", "autolink"])


def _html(content: str) -> Token:
    token = Token("html_block", "", 0)
    token.content = content if content.endswith("\n") else content + "\n"
    return token


def _heading(tokens: list[Token], i: int) -> tuple[str, str] | None:
    """(tag, text) when tokens[i] opens a heading."""
    if tokens[i].type != "heading_open":
        return None
    return tokens[i].tag, tokens[i + 1].content


def _section_end(tokens: list[Token], start: int, tags: tuple[str, ...]) -> int:
    """Index of the next heading with one of `tags` after `start`, or the end."""
    for j in range(start + 1, len(tokens)):
        h = _heading(tokens, j)
        if h is not None and h[0] in tags:
            return j
    return len(tokens)


def _find(tokens: list[Token], lo: int, hi: int, match: Callable[[str, str], bool]) -> int | None:
    for j in range(lo, hi):
        h = _heading(tokens, j)
        if h is not None and match(*h):
            return j
    return None


def _table_end(tokens: list[Token], symbol: str, heading: str) -> int:
    """Index of the end of the first table under ``#### {heading}`` in market ``symbol``'s section."""
    market = _find(tokens, 0, len(tokens), lambda tag, text: tag == "h3" and text.startswith(f"{symbol} ("))
    end = len(tokens) if market is None else _section_end(tokens, market, ("h2", "h3"))
    sub = None if market is None else _find(tokens, market, end, lambda tag, text: tag == "h4" and text == heading)
    table = None if sub is None else next((j for j in range(sub, end) if tokens[j].type == "table_close"), None)
    if table is None:
        raise ChartError(f"report.md has no {heading.lower()} table for {symbol}",
                         f"templates/report_derivatives.md.j2 must keep '#### {heading}' and its table per market")
    return table


def _placements(tokens: list[Token], figures: DerivativeCharts, render: dict[str, Callable[..., str]]) -> dict[int, list[str]]:
    """Where each figure goes: token index → HTML inserted before that token."""
    at: dict[int, list[str]] = {}
    for symbol, chart in figures.backtests.items():
        market = _find(tokens, 0, len(tokens), lambda tag, text, s=symbol: tag == "h3" and text.startswith(f"{s} ("))
        backtests = None if market is None else _find(tokens, market, _section_end(tokens, market, ("h2", "h3")), lambda tag, text: text == "Backtests")
        table = None if backtests is None else next((j for j in range(backtests, len(tokens)) if tokens[j].type == "table_close"), None)
        if table is None:
            raise ChartError(f"report.md has no backtest table for {symbol}", "templates/report_derivatives.md.j2 must keep '#### Backtests' per market")
        at.setdefault(table + 1, []).append(render["backtest_figure"](chart))
    for symbol, hedge in figures.hedges.items():
        at.setdefault(_table_end(tokens, symbol, "Hedging") + 1, []).append(render["hedge_figure"](hedge))
    if figures.replays:
        section = _find(tokens, 0, len(tokens), lambda tag, text: tag == "h2" and text.startswith("Circuit breakers"))
        if section is None:
            raise ChartError("report.md has no circuit-breaker section", "templates/report_derivatives.md.j2 must keep '## Circuit breakers: ...'")
        end = _section_end(tokens, section, ("h1", "h2"))
        at.setdefault(end, []).extend(render["replay_figure"](r) for r in figures.replays)
    return at


def markdown_body(markdown: bytes, figures: DerivativeCharts, render: dict[str, Callable[..., str]]) -> Markup:
    """report.md as HTML, tables in sideways-scrolling boxes, each figure after its table."""
    md = _markdown()
    tokens = md.parse(markdown.decode("utf-8"))
    at = _placements(tokens, figures, render)
    out: list[Token] = []
    for i, token in enumerate(tokens):
        out.extend(_html(html) for html in at.get(i, ()))
        if token.type == "table_open":
            out.append(_html('<div class="scroll">'))
        out.append(token)
        if token.type == "table_close":
            out.append(_html("</div>"))
    out.extend(_html(html) for html in at.get(len(tokens), ()))
    return Markup(md.renderer.render(out, md.options, {}))


def render_derivative_html(context: dict[str, Any], markdown: bytes, figures: DerivativeCharts) -> bytes:
    """The HTML report from `report_context(...)`'s dict, the report.md rendered from it, and the drawn charts."""
    env = report_html.environment()
    macros = env.get_template(FIGURES_TEMPLATE).module
    render = {"backtest_figure": macros.backtest_figure, "hedge_figure": macros.hedge_figure, "replay_figure": macros.replay_figure}  # type: ignore[attr-defined]
    template = env.get_template(HTML_TEMPLATE)
    body = markdown_body(markdown, figures, render)
    return template.render(r=context["r"], body=body, light_bg=charts.LIGHT_BG, dark_bg=charts.DARK_BG).encode("utf-8")
