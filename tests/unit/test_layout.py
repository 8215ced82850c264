"""The pure core stays pure: `risk` never imports `governance` or chain/network/template libraries."""

from __future__ import annotations

import ast
from pathlib import Path

RISK = Path(__file__).resolve().parents[2] / "risk"
FORBIDDEN = ("governance", "web3", "jinja2", "requests", "eth_account", "safe_eth", "urllib", "socket", "http")


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_risk_imports_nothing_from_the_io_layer() -> None:
    offenders = {
        str(p.relative_to(RISK.parent)): sorted(_imports(p) & set(FORBIDDEN))
        for p in RISK.rglob("*.py")
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_the_check_can_fail(tmp_path: Path) -> None:
    bad = tmp_path / "m.py"
    bad.write_text("from governance.cli import app\nimport web3\n")
    assert _imports(bad) & set(FORBIDDEN) == {"governance", "web3"}
