"""Every number a voter reads in the report traces back to the bundle's own files.

Both reports (report.md and report.html) are parsed the way a reader sees them — tables, action lines,
sentences — into one structure, and every value is compared with recommendation.json, with calls.json
and with the calldata decoded independently of the encoder, and the safeTxHash with safe-tx.json.
Numbers are compared as numbers (80.50% ↔ 8050 bps), never as the same formatted string.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from functools import lru_cache
from html.parser import HTMLParser
from types import MappingProxyType
from typing import Any, ClassVar
from unittest import mock

import numpy as np
import pytest

from governance import pipeline
from governance.calls import decode_call
from governance.epoch_inputs import gather_inputs
from governance.pipeline import build_files
from governance.report_html import chart_inputs, render_html
from governance.venues.aave_v3 import FUNCTIONS
from risk.units import Duration

FORMATS = ("md", "html")
PARAMETER_OF_LABEL = {
    "LTV": "ltv",
    "Liquidation threshold": "liquidation_threshold",
    "Liquidation bonus": "liquidation_bonus",
    "Supply cap": "supply_cap",
    "Borrow cap": "borrow_cap",
}
MARKET_HEADER = ["Parameter", "Current", "Proposed", "Change", "Target", "Updates to target", "Limit per update", "Binding constraint"]
GLIDE_HEADER = ["Market", "Parameter", "Target", "Updates", "Earliest (days)", "Route to target"]
RISK_HEADER = ["Figure", "Limit", "Current", "Proposed", "Target"]
INTERVAL_HEADER = ["Parameter", "Target", "Low", "High", "Level", "Basis"]
SENSITIVITY_HEADER = ["Parameter", "Range simulated", "VaR95", "EVaR99", "Expected shortfall", "Insolvency probability"]
PEERS_HEADER = ["Market", "Threshold (ours)", "LTV (ours)", "Bonus (ours)", "Risk DAO CF", "Risk DAO mean max drop", "Gauntlet LLTV",
                "99% monthly drawdown", "Morpho bonus at our threshold"]


@lru_cache(maxsize=1)
def _demo() -> tuple[Mapping[str, bytes], dict[str, Any]]:
    inputs = gather_inputs(None)
    contexts: list[dict[str, Any]] = []
    real = pipeline.report_context
    with mock.patch.object(pipeline, "report_context", side_effect=lambda *a, **k: contexts.append(real(*a, **k)) or contexts[-1]):
        files = build_files(inputs)
    (context,) = contexts
    # Until the pipeline wires report.html (issue 6): add the chart data and render the page the way
    # build_files will. Once wired, the bundle's own report.html is the one tested.
    if "charts" not in context:
        context = {**context, "charts": chart_inputs(context["r"], inputs.market, inputs.policy.policy.change_limits)}
    if "report.html" not in files:
        files = {**files, "report.html": render_html(context)}
    return MappingProxyType(files), context


def demo_bundle() -> Mapping[str, bytes]:
    """The demo epoch's bundle files, report.html included."""
    return _demo()[0]


def demo_context() -> dict[str, Any]:
    """The report context the pipeline built for the demo epoch (a copy: tests may change it)."""
    return dict(_demo()[1])


def bundle_json(name: str) -> Any:
    return json.loads(demo_bundle()[name])


# --- what a reader sees, parsed from either format ---------------------------------------------------


@dataclass
class Table:
    section: str
    header: list[str]
    rows: list[list[str]]


@dataclass
class Action:
    human: str
    signature: str
    contract: str
    to: str


@dataclass
class Seen:
    tables: list[Table] = field(default_factory=list)
    actions: list[Action] = field(default_factory=list)
    metrics: dict[str, str] = field(default_factory=dict)  # market → its metrics sentence
    bindings: dict[str, str] = field(default_factory=dict)  # market → the lending core's binding sentence
    summary: str = ""
    safe_hash: str = ""
    safe_line: str = ""
    reproduce: str = ""
    calldata: dict[str, str] = field(default_factory=dict)  # appendix section → calldata shown
    main_prose: str = ""  # main text outside code spans and blocks
    appendix_prose: str = ""

    def table(self, section: str) -> Table:
        (t,) = [t for t in self.tables if t.section == section]
        return t


def _squash(text: str) -> str:
    return " ".join(text.split())


def parse_markdown(text: str) -> Seen:
    seen = Seen()
    main, _, appendix = text.partition("\n## Technical appendix")
    seen.main_prose = _squash(re.sub(r"```.*?```|`[^`]*`", " ", main, flags=re.DOTALL))
    seen.appendix_prose = _squash(re.sub(r"```.*?```|`[^`]*`", " ", appendix, flags=re.DOTALL))
    section, table, fence = "", None, None
    for line in text.splitlines():
        if fence is not None:
            if line.startswith("```"):
                seen.calldata[section] = "\n".join(fence)
                fence = None
            else:
                fence.append(line)
            continue
        if line.startswith("```") and section.startswith("Call "):
            fence = []
        if line.startswith("#"):
            section = line.lstrip("#").strip().replace("`", "")
        if line.startswith("|"):
            cells = [c.strip().replace("`", "") for c in line.strip().strip("|").split("|")]
            if table is None:
                table = Table(section, cells, [])
                seen.tables.append(table)
            elif not set("".join(cells)) <= set("-"):
                table.rows.append(cells)
        else:
            table = None
        if m := re.fullmatch(r"\d+\. \*\*(.+)\*\* — `(.+)` on (\S+) `(0x[0-9a-fA-F]{40})`", line):
            seen.actions.append(Action(*m.groups()))
        if line.startswith("Oracle price"):
            seen.metrics[section] = line
        if line.startswith("Binding constraint of the threshold:"):
            seen.bindings[section.split(":")[0]] = line
        if line.startswith("**Summary.**"):
            seen.summary = line.removeprefix("**Summary.**").strip()
        if m := re.search(r"safeTxHash `(0x[0-9a-fA-F]{64})`", line):
            seen.safe_hash = m.group(1)
        if line.startswith("Safe `"):
            seen.safe_line = line.replace("`", "")
        if line.startswith("Inputs pinned"):
            seen.reproduce = line.replace("`", "")
    return seen


@dataclass
class Node:
    tag: str
    attrs: dict[str, str]
    children: list[Node | str] = field(default_factory=list)

    def text(self, skip: tuple[str, ...] = ()) -> str:
        return "".join(c if isinstance(c, str) else ("" if c.tag in skip else c.text(skip)) for c in self.children)

    def iter(self, tag: str | None = None, cls: str | None = None) -> Iterator[Node]:
        for c in self.children:
            if isinstance(c, Node):
                if (tag is None or c.tag == tag) and (cls is None or cls in c.attrs.get("class", "").split()):
                    yield c
                yield from c.iter(tag, cls)

    def find(self, tag: str | None = None, cls: str | None = None, id: str | None = None) -> Node:
        for n in self.iter(tag, cls):
            if id is None or n.attrs.get("id") == id:
                return n
        raise AssertionError(f"no <{tag} class={cls} id={id}> in <{self.tag}>")


class _TreeBuilder(HTMLParser):
    VOID: ClassVar[frozenset[str]] = frozenset({"meta", "br", "hr", "img", "input", "link"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("#document", {})
        self.stack = [self.root]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, {k: v or "" for k, v in attrs})
        self.stack[-1].children.append(node)
        if tag not in self.VOID:
            self.stack.append(node)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.stack[-1].children.append(Node(tag, {k: v or "" for k, v in attrs}))

    def handle_endtag(self, tag: str) -> None:
        if tag in self.VOID:
            return
        while self.stack[-1].tag != tag:
            self.stack.pop()  # tolerate an unclosed element, as a browser does
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.stack[-1].children.append(data)


def html_tree(text: str) -> Node:
    builder = _TreeBuilder()
    builder.feed(text)
    builder.close()
    return builder.root


def _sections(root: Node) -> Iterator[tuple[str, Node]]:
    for s in root.iter("section"):
        heading = next((c for c in s.children if isinstance(c, Node) and c.tag in ("h2", "h3", "h4")), None)
        if heading is not None:
            yield _squash(heading.text()), s


def parse_html(text: str) -> Seen:
    root = html_tree(text)
    seen = Seen()
    main = root.find("main")
    appendix = [s for name, s in _sections(root) if s.attrs.get("id") == "appendix"]
    skip = ("code", "pre", "svg", "style")
    seen.main_prose = _squash("".join(c if isinstance(c, str) else ("" if any(c is a for a in appendix) or c.tag in skip else c.text(skip)) for c in main.children))
    seen.appendix_prose = _squash(appendix[0].text(skip)) if appendix else ""
    for name, section in _sections(root):
        direct_tables = [t for div in section.children if isinstance(div, Node) and div.tag == "div" for t in div.iter("table")]
        for t in direct_tables:
            header = [_squash(th.text()) for th in t.iter("th")]
            rows = [[_squash(td.text()) for td in tr.iter("td")] for tr in t.find("tbody").iter("tr")]
            seen.tables.append(Table(name, header, rows))
        if "market" in section.attrs.get("class", "").split():
            seen.metrics[name] = _squash(section.find("p", cls="metrics").text())
        if "risk" in section.attrs.get("class", "").split():
            seen.bindings[name.split(":")[0]] = _squash(section.find("p", cls="binding").text())
        if "call" in section.attrs.get("class", ""):
            seen.calldata[name] = section.find("pre", cls="calldata").text()
    for li in root.find("ol", cls="actions").iter("li"):
        seen.actions.append(
            Action(*(_squash(li.find(tag, cls=cls).text()) for tag, cls in (("strong", "human"), ("code", "signature"), ("span", "contract"), ("code", "to"))))
        )
    seen.summary = _squash(root.find("p", id="summary").text()).removeprefix("Summary.").strip()
    seen.safe_hash = _squash(root.find("p", id="safe-tx-hash").find("code").text())
    actions = root.find("section", id="actions")
    seen.safe_line = next(_squash(p.text()) for p in actions.iter("p") if _squash(p.text()).startswith("Safe "))
    seen.reproduce = next(_squash(p.text()) for p in root.find("section", id="reproduce").iter("p"))
    return seen


@lru_cache(maxsize=2)
def seen(fmt: str) -> Seen:
    text = demo_bundle()[f"report.{fmt}"].decode("utf-8")
    return parse_markdown(text) if fmt == "md" else parse_html(text)


# --- numbers as a reader reads them -----------------------------------------------------------------


def value_of(cell: str) -> dict[str, Any]:
    """'80.50%' → {'bps': 8050}; '1,800,000 WETH' → {'symbol': 'WETH', 'tokens': 1800000}."""
    if m := re.fullmatch(r"(\d+\.\d{2})%", cell):
        bps = Decimal(m.group(1)) * 100
        assert bps == bps.to_integral_value(), cell
        return {"bps": int(bps)}
    m = re.fullmatch(r"(\d{1,3}(?:,\d{3})*) (\S+)", cell)
    assert m, f"not a percentage or a token amount: {cell!r}"
    return {"symbol": m.group(2), "tokens": int(m.group(1).replace(",", ""))}


def raw(value: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in value.items() if k != "percent"}


def close_to_shown(shown: str, exact: float, scale: float = 1.0) -> bool:
    """Is `exact` (× scale) what `shown` rounds to, within half a unit of its last digit?"""
    digits = shown.replace(",", "")
    places = len(digits.partition(".")[2])
    return abs(Decimal(digits) - Decimal(repr(exact * scale))) <= Decimal(5) / 10 ** (places + 1)


# --- the checks, on both formats --------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_parameter_row_equals_recommendation_json(fmt: str) -> None:
    rec = bundle_json("recommendation.json")
    for symbol, market in rec["markets"].items():
        table = seen(fmt).table(symbol)
        assert table.header == MARKET_HEADER
        shown = {PARAMETER_OF_LABEL[row[0]]: row for row in table.rows}
        assert sorted(shown) == sorted(market["parameters"]) and len(table.rows) == len(shown)
        for name, p in market["parameters"].items():
            _label, current, proposed, delta, target, updates, limit, binding = shown[name]
            assert value_of(current) == raw(p["current"]), (symbol, name)
            assert value_of(proposed) == raw(p["proposed"]), (symbol, name)
            assert value_of(target) == raw(p["target"]), (symbol, name)
            assert int(updates) == p["updates_to_target"]
            assert limit == p["limit"]
            assert binding == "; ".join(p["binding"])
            check_delta(delta, p["current"], p["proposed"])


def check_delta(delta: str, current: dict[str, Any], proposed: dict[str, Any]) -> None:
    if raw(current) == raw(proposed):
        assert delta == "—"
    elif "bps" in current:
        m = re.fullmatch(r"([+-]\d+\.\d{2}) pp", delta)
        assert m and Decimal(m.group(1)) * 100 == proposed["bps"] - current["bps"], delta
    elif current["tokens"] == 0:
        assert delta == "new cap"
    else:
        m = re.fullmatch(r"([+-]\d+\.\d) ?%", delta)
        assert m and close_to_shown(m.group(1), (proposed["tokens"] - current["tokens"]) / current["tokens"], 100), delta


@pytest.mark.parametrize("fmt", FORMATS)
def test_glide_table_lists_exactly_the_multi_update_changes(fmt: str) -> None:
    rec = bundle_json("recommendation.json")
    table = seen(fmt).table("Glide path")
    assert table.header == GLIDE_HEADER
    label = {v: k for k, v in PARAMETER_OF_LABEL.items()}
    expected = {
        (symbol, label[name]): p
        for symbol, m in rec["markets"].items()
        for name, p in m["parameters"].items()
        if raw(p["current"]) != raw(p["proposed"]) and p["updates_to_target"] > 1
    }
    assert expected, "the demo epoch should have a glide path to check"
    assert sorted((r[0], r[1]) for r in table.rows) == sorted(expected) and len(table.rows) == len(expected)
    for market, parameter, target, updates, days, route in table.rows:
        p = expected[(market, parameter)]
        assert value_of(target) == raw(p["target"])
        assert int(updates) == p["updates_to_target"]
        assert int(days) == round(p["updates_to_target"] * Duration.parse(p["min_delay"]).seconds / 86400)
        assert route == (f"DAO vote: {p['governance_reason']}" if p["target_needs_governance"] else "steward updates")


METRIC_SENTENCE = re.compile(
    r"Oracle price \$([\d,.]+); volatility ([\d.]+)% annualised \(([\d.]+)% hourly\); adverse move over the liquidation "
    r"horizon ([\d.]+)%, over the LTV buffer horizon ([\d.]+)%; slippage at the stress liquidation size ([\d.]+)%\."
)


@pytest.mark.parametrize("fmt", FORMATS)
def test_market_figures_round_from_recommendation_json(fmt: str) -> None:
    rec = bundle_json("recommendation.json")
    assert sorted(seen(fmt).metrics) == sorted(rec["markets"])
    for symbol, sentence in seen(fmt).metrics.items():
        m = METRIC_SENTENCE.fullmatch(sentence)
        assert m, sentence
        x = rec["markets"][symbol]["metrics"]
        names = ("price_usd", "sigma_annualised", "sigma_hourly", "adverse_move_horizon", "adverse_move_ltv_buffer", "slippage_at_liquidation_size")
        for shown, name in zip(m.groups(), names, strict=True):
            assert close_to_shown(shown, x[name], 1 if name == "price_usd" else 100), (symbol, name, shown, x[name])


@pytest.mark.parametrize("fmt", FORMATS)
def test_summary_counts_the_changes(fmt: str) -> None:
    rec = bundle_json("recommendation.json")
    changed = [(s, n) for s, m in rec["markets"].items() for n, p in m["parameters"].items() if raw(p["current"]) != raw(p["proposed"])]
    m = re.match(r"(\d+) parameter changes? across (\d+) markets? of (\S+) \(", seen(fmt).summary)
    assert m, seen(fmt).summary
    assert (int(m.group(1)), int(m.group(2)), m.group(3)) == (len(changed), len({s for s, _ in changed}), rec["venue"])


FUNCTION = {f.signature: f for f in FUNCTIONS}
COLLATERAL_PART = re.compile(r"(LTV|liquidation threshold|liquidation bonus) (\d+\.\d{2}%)(?: → (\d+\.\d{2}%)| \(unchanged\))")
COLLATERAL_ARG = {"LTV": ("ltv", "ltv", 0), "liquidation threshold": ("liquidationThreshold", "liquidation_threshold", 0),
                  "liquidation bonus": ("liquidationBonus", "liquidation_bonus", 10_000)}


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_action_line_is_its_decoded_calldata(fmt: str) -> None:
    calls, rec = bundle_json("calls.json"), bundle_json("recommendation.json")
    actions = seen(fmt).actions
    assert len(actions) == len(calls) > 0
    for action, call in zip(actions, calls, strict=True):
        assert (action.human, action.signature, action.contract, action.to) == (call["human"], call["signature"], call["contract"], call["to"])
        function = FUNCTION[call["signature"]]
        decoded = dict(zip((i.name for i in function.inputs), decode_call(function, call["data"]), strict=True))
        assert {k: str(v) for k, v in decoded.items()} == call["args"]
        symbol = action.human.split(" ", 1)[0]
        market = rec["markets"][symbol]
        assert decoded["asset"] == market["asset"]
        if function.name == "configureReserveAsCollateral":
            parts = COLLATERAL_PART.findall(action.human)
            assert [p[0] for p in parts] == list(COLLATERAL_ARG)
            for label, before, after in parts:
                arg, parameter, offset = COLLATERAL_ARG[label]
                assert value_of(before) == raw(market["parameters"][parameter]["current"])
                assert decoded[arg] == value_of(after or before)["bps"] + offset
                assert decoded[arg] == market["parameters"][parameter]["proposed"]["bps"] + offset
        else:
            parameter = {"setSupplyCap": "supply_cap", "setBorrowCap": "borrow_cap"}[function.name]
            arg = {"setSupplyCap": "newSupplyCap", "setBorrowCap": "newBorrowCap"}[function.name]
            m = re.fullmatch(rf"{symbol} (?:supply|borrow) cap ([\d,]+ \S+) → ([\d,]+ \S+)", action.human)
            assert m, action.human
            assert value_of(m.group(1)) == raw(market["parameters"][parameter]["current"])
            assert value_of(m.group(2))["tokens"] == decoded[arg] == market["parameters"][parameter]["proposed"]["tokens"]


@pytest.mark.parametrize("fmt", FORMATS)
def test_safe_tx_hash_and_fields_equal_safe_tx_json(fmt: str) -> None:
    safe = bundle_json("safe-tx.json")
    assert seen(fmt).safe_hash == safe["safeTxHash"]
    m = re.fullmatch(r"Safe (0x[0-9a-fA-F]{40}) on chain (\d+), nonce (\d+): (.+) to (0x[0-9a-fA-F]{40})\.", seen(fmt).safe_line)
    assert m, seen(fmt).safe_line
    assert (m.group(1), m.group(2), m.group(3), m.group(5)) == (safe["safe"], safe["chainId"], safe["nonce"], safe["to"])
    assert m.group(4).startswith("DELEGATECALL") == (safe["operation"] == "1")


@pytest.mark.parametrize("fmt", FORMATS)
def test_appendix_shows_each_call_exactly_as_sent(fmt: str) -> None:
    calls = bundle_json("calls.json")
    for i, call in enumerate(calls, start=1):
        section = f"Call {i}: {call['signature']}"
        function = FUNCTION[call["signature"]]
        decoded = decode_call(function, seen(fmt).calldata[section])
        assert seen(fmt).calldata[section] == call["data"]
        table = seen(fmt).table(section)
        assert table.header == ["Argument", "Value as sent"]
        assert table.rows == [[i.name, str(v)] for i, v in zip(function.inputs, decoded, strict=True)]
    assert len(seen(fmt).calldata) == len(calls)


@pytest.mark.parametrize("fmt", FORMATS)
def test_pinned_input_hashes_are_the_bundle_inputs(fmt: str) -> None:
    files = demo_bundle()
    m = re.fullmatch(r"Inputs pinned in the bundle: policy sha256 (\w{64}), prices sha256 (\w{64}), snapshot sha256 (\w{64})\.", seen(fmt).reproduce)
    assert m, seen(fmt).reproduce
    expected = [hashlib.sha256(files[f"inputs/{n}"]).hexdigest() for n in ("policy.yaml", "prices.csv", "snapshot.json")]
    assert list(m.groups()) == expected


RAW_INTEGER = re.compile(r"(?<![\w.,])\d{5,}(?![\w.,%])")


@pytest.mark.parametrize("fmt", FORMATS)
def test_main_text_has_no_raw_on_chain_integers(fmt: str) -> None:
    """People's units in the main text: a bps integer above 9999, a whole-token cap or a wei amount
    would show as a bare run of 5+ digits; the appendix, which must show them, proves the probe works."""
    assert RAW_INTEGER.findall(seen(fmt).main_prose) == []
    calls = bundle_json("calls.json")
    caps_sent = {v for c in calls for k, v in c["args"].items() if k.endswith("Cap")}
    assert caps_sent and caps_sent <= set(RAW_INTEGER.findall(demo_bundle()[f"report.{fmt}"].decode()))


def test_markdown_and_html_show_the_same_tables_and_actions() -> None:
    md, html = seen("md"), seen("html")
    assert [(t.section, t.header, t.rows) for t in md.tables] == [(t.section, t.header, t.rows) for t in html.tables]
    assert md.actions == html.actions
    assert md.metrics == html.metrics


# --- the lending core's sections: risk figures, confidence, sensitivity, peers ------------------------


def _shown_number(cell: str) -> tuple[str, float]:
    """'$1,234' → ('1234', 1); '-$12.50' → ('12.50', -1); '0.725%' → ('0.725', 1)."""
    m = re.fullmatch(r"([+-]?)\$?([\d,]+(?:\.\d+)?)(%| pp)?", cell)
    assert m, f"not a number: {cell!r}"
    return m.group(2).replace(",", ""), -1.0 if m.group(1) == "-" else 1.0


def check_shown(cell: str, exact: float, scale: float = 1.0) -> None:
    digits, sign = _shown_number(cell)
    assert close_to_shown(digits, sign * exact, scale), (cell, exact)


FIGURE_KEYS = {
    "VaR95 (share of borrows)": ("var95_share", 100),
    "EVaR99 (share of borrows)": ("evar99_share", 100),
    "Insolvency probability": ("insolvency_probability", 100),
    "Expected shortfall, worst 5% (USD)": ("expected_shortfall_usd", 1),
    "Liquidations at risk, 95% (USD)": ("liquidations_at_risk_usd", 1),
}


def _core_markets() -> dict[str, Any]:
    markets = {s: m for s, m in bundle_json("recommendation.json")["markets"].items() if "risk" in m}
    assert markets, "the demo epoch runs the lending core: every market has a risk section"
    return markets


@pytest.mark.parametrize("fmt", FORMATS)
def test_risk_figures_equal_recommendation_json(fmt: str) -> None:
    for symbol, market in _core_markets().items():
        risk = market["risk"]
        table = seen(fmt).table(f"{symbol}: risk at today's, proposed and target parameters")
        assert table.header == RISK_HEADER
        assert [row[0] for row in table.rows] == list(FIGURE_KEYS)
        for label, limit, *columns in table.rows:
            key, scale = FIGURE_KEYS[label]
            limit_key = key if key in risk["limits"] else None
            if limit_key is None:
                assert limit == "—"
            else:
                check_shown(limit, risk["limits"][limit_key], 100)
            for cell, which in zip(columns, ("current", "proposed", "target"), strict=True):
                figures = risk["figures"][which]
                if figures is None:
                    assert cell == "—"
                else:
                    check_shown(cell, figures[key], scale)


BINDING_SENTENCE = re.compile(r"Binding constraint of the threshold: (.+)\. Objective (\w+): ([\d.]+)(%|x) at the target(?: — no admissible threshold meets the risk appetite)?; "
                              r"(\d+) simulations on the same paths and book draws(?:; (\d+)% of path resamples choose the same threshold)?\.")


@pytest.mark.parametrize("fmt", FORMATS)
def test_binding_sentence_names_the_constraint_that_binds_the_threshold(fmt: str) -> None:
    markets = _core_markets()
    assert sorted(seen(fmt).bindings) == sorted(markets)
    for symbol, market in markets.items():
        m = BINDING_SENTENCE.fullmatch(seen(fmt).bindings[symbol])
        assert m, seen(fmt).bindings[symbol]
        risk = market["risk"]
        assert m.group(1) == risk["binding"] == market["parameters"]["liquidation_threshold"]["binding"][0]
        assert m.group(2) == risk["objective"]["name"]
        check_shown(m.group(3), risk["objective"]["value"], 100 if m.group(4) == "%" else 1)
        assert int(m.group(5)) == risk["simulations"]
        if m.group(6) is not None:
            check_shown(m.group(6), risk["resample_agreement"], 100)


INTERVAL_PARAMETER = {"Liquidation threshold": "liquidation_threshold", "LTV": "ltv", "Liquidation bonus": "liquidation_bonus",
                      "Supply cap": "supply_cap", "Borrow cap": "borrow_cap"}


@pytest.mark.parametrize("fmt", FORMATS)
def test_confidence_intervals_equal_recommendation_json(fmt: str) -> None:
    for symbol, market in _core_markets().items():
        confidence = market["risk"]["confidence"]
        table = seen(fmt).table(f"{symbol}: confidence intervals")
        assert table.header == INTERVAL_HEADER
        assert sorted(INTERVAL_PARAMETER[r[0]] for r in table.rows) == sorted(confidence)
        for label, point, low, high, level, basis in table.rows:
            ci = confidence[INTERVAL_PARAMETER[label]]
            for cell, key in ((point, "point"), (low, "low"), (high, "high")):
                shown = value_of(cell)
                assert shown.get("bps", shown.get("tokens")) == ci[key], (symbol, label, key)
            assert ci["low"] <= ci["point"] <= ci["high"]
            check_shown(level, ci["level"], 100)
            assert basis == ci["note"]
        # the interval's point is the recommendation's own target
        for name in ("liquidation_threshold", "ltv", "liquidation_bonus"):
            assert confidence[name]["point"] == market["parameters"][name]["target"]["bps"]
        for name in ("supply_cap", "borrow_cap"):
            assert confidence[name]["point"] == market["parameters"][name]["target"]["tokens"]


@pytest.mark.parametrize("fmt", FORMATS)
def test_sensitivity_rows_equal_recommendation_json(fmt: str) -> None:
    for symbol, market in _core_markets().items():
        sens = market["risk"]["sensitivity"]
        table = seen(fmt).table(f"{symbol}: sensitivity per +1 bps at the target")
        assert table.header == SENSITIVITY_HEADER
        assert sorted(INTERVAL_PARAMETER[r[0]] for r in table.rows) == sorted(sens)
        for label, span, var95, evar99, shortfall, insolvency in table.rows:
            x = sens[INTERVAL_PARAMETER[label]]
            lo, hi = re.fullmatch(r"(\d+\.\d{2}%) \.\. (\d+\.\d{2}%)", span).groups()  # type: ignore[union-attr]
            assert (value_of(lo)["bps"], value_of(hi)["bps"]) == (x["low_bps"], x["high_bps"])
            check_shown(var95, x["var95_per_bps_usd"])
            check_shown(evar99, x["evar99_per_bps_usd"])
            check_shown(shortfall, x["expected_shortfall_per_bps_usd"])
            check_shown(insolvency, x["insolvency_probability_per_bps"], 100)


@pytest.mark.parametrize("fmt", FORMATS)
def test_peers_table_equals_recommendation_json(fmt: str) -> None:
    markets = _core_markets()
    table = seen(fmt).table("Peers on the same inputs")
    assert table.header == PEERS_HEADER
    assert sorted(r[0] for r in table.rows) == sorted(markets) and len(table.rows) == len(markets)
    for symbol, lt, ltv, bonus, riskdao, md, lltv, drawdown, morpho in table.rows:
        market = markets[symbol]
        peers, params = market["risk"]["peers"], market["parameters"]
        assert value_of(lt) == raw(params["liquidation_threshold"]["target"])
        assert value_of(ltv) == raw(params["ltv"]["target"])
        assert value_of(bonus) == raw(params["liquidation_bonus"]["target"])
        check_shown(riskdao, peers["riskdao"]["collateral_factor"], 100)
        check_shown(md, peers["riskdao"]["mean_max_drop"], 100)
        assert peers["riskdao"]["collateral_factor"] == pytest.approx(1 - peers["riskdao"]["mean_max_drop"] - peers["riskdao"]["incentive"])
        if peers["gauntlet_morpho_lltv"]["lltv"] == 0:
            assert lltv == "none"
        else:
            check_shown(lltv, peers["gauntlet_morpho_lltv"]["lltv"], 100)
        check_shown(drawdown, peers["gauntlet_morpho_lltv"]["drawdown_99_monthly"], 100)
        check_shown(morpho, peers["morpho_lif_at_recommended_threshold"] - 1, 100)


def test_tornado_and_loss_charts_draw_the_numbers_of_recommendation_json() -> None:
    markets = _core_markets()
    charts = {c.symbol: c for c in demo_context()["charts"]}
    html = demo_bundle()["report.html"].decode()
    drawn = 0
    for symbol, market in markets.items():
        sens = market["risk"]["sensitivity"]
        t = charts[symbol].tornado
        moves = any(s["expected_shortfall_usd"]["low"] != s["expected_shortfall_usd"]["base"]
                    or s["expected_shortfall_usd"]["high"] != s["expected_shortfall_usd"]["base"] for s in sens.values())
        assert (t is not None) == moves == (f'id="tornado-{symbol}"' in html)
        if t is not None:
            drawn += 1
            names, low, high, base = t
            by_label = {INTERVAL_PARAMETER[n.rsplit(" ", 3)[0]]: (lo, hi) for n, lo, hi in zip(names, low, high, strict=True)}
            for name, (lo, hi) in by_label.items():
                assert (lo, hi) == (sens[name]["expected_shortfall_usd"]["low"], sens[name]["expected_shortfall_usd"]["high"])
                assert base == sens[name]["expected_shortfall_usd"]["base"]
        losses = charts[symbol].losses
        if losses is not None:
            current, proposed = losses
            figures = market["risk"]["figures"]
            assert float(np.quantile(current, 0.95)) == pytest.approx(figures["current"]["var95_usd"])
            assert float(np.quantile(proposed, 0.95)) == pytest.approx(figures["proposed"]["var95_usd"])
        assert (losses is not None) == (f'id="losses-{symbol}"' in html)
    assert drawn, "the demo has a market whose shortfall moves with its parameters"
