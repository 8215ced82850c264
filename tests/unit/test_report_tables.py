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

import pytest

from governance import pipeline
from governance.calls import decode_call
from governance.pipeline import build_files, gather_inputs
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
GLIDE_HEADER = ["Market", "Parameter", "Target", "Updates", "Earliest (days)"]


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
        heading = next((c for c in s.children if isinstance(c, Node) and c.tag in ("h2", "h3")), None)
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
        if "market" in section.attrs.get("class", ""):
            seen.metrics[name] = _squash(section.find("p", cls="metrics").text())
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
    for market, parameter, target, updates, days in table.rows:
        p = expected[(market, parameter)]
        assert value_of(target) == raw(p["target"])
        assert int(updates) == p["updates_to_target"]
        assert int(days) == round(p["updates_to_target"] * Duration.parse(p["min_delay"]).seconds / 86400)


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
