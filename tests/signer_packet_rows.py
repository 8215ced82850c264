"""Read back signer-packet.md's table and compare it with the simulation.json it was rendered from
(shared by tests/unit/test_signer_packet.py and tests/e2e/test_simulate.py)."""

from __future__ import annotations

import json
import re

LABELS = {"LTV": "ltv", "Liquidation threshold": "liquidation_threshold", "Liquidation bonus": "liquidation_bonus",
          "Supply cap": "supply_cap", "Borrow cap": "borrow_cap"}


def packet_rows(text: str) -> list[list[str]]:
    body = text.partition("## Every parameter the run touched")[2].partition("\n## ")[0]
    lines = [line for line in body.splitlines() if line.startswith("|")][2:]
    return [[c.strip() for c in line.strip().strip("|").split("|")] for line in lines]


def on_chain(cell: str) -> int | str | None:
    """The value in backticks (an int when it is one); None for a cell without one ("—", "not in the proposal")."""
    m = re.search(r"`([^`]*)`", cell)
    if m is None:
        return None
    return int(m.group(1)) if m.group(1).isdigit() else m.group(1)


def as_recorded(value: object) -> int | str | None:
    return value if value is None or (isinstance(value, int) and not isinstance(value, bool)) else str(value)


def check_rows_match(packet: bytes, simulation: bytes) -> int:
    """Every row's before/after/recommended is simulation.json's, and ✓ exactly when after == recommended."""
    sim = json.loads(simulation)
    rows = packet_rows(packet.decode())
    pre, post = sim["pre_state"], sim["post_state"]
    touched = {(m, p) for m in sim["expected"] for p in sim["expected"][m]} | {
        (m, p) for m in set(pre) | set(post) for p in set(pre.get(m, {})) | set(post.get(m, {}))
        if pre.get(m, {}).get(p) != post.get(m, {}).get(p)}
    assert len(rows) == len(touched)
    for market, label, before, after, recommended, mark in rows:
        market, param = market.strip("`"), LABELS.get(label, label)
        assert (market, param) in touched
        assert on_chain(before) == as_recorded(sim["pre_state"].get(market, {}).get(param))
        assert on_chain(after) == as_recorded(sim["post_state"].get(market, {}).get(param))
        wanted = sim["expected"].get(market, {}).get(param)
        assert on_chain(recommended) == wanted
        assert mark == ("✓" if wanted is not None and wanted == sim["post_state"].get(market, {}).get(param) else "✗")
    return len(rows)


def report_packet_table(text: str, heading: str) -> list[list[str]]:
    """The cells of the table under `### heading` in a report's "Signer packet" section (report.md)."""
    body = text.partition("## Signer packet")[2].partition(f"### {heading}")[2].partition("\n### ")[0]
    lines = [line for line in body.splitlines() if line.startswith("|")][2:]
    return [[c.strip() for c in line.strip().strip("|").split("|")] for line in lines]
