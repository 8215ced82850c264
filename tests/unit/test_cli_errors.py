"""Expected failures: one line of cause, one of hint, exit 2, no traceback (unless --debug)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from governance.cli import app

runner = CliRunner()
DEMO = Path(__file__).resolve().parents[2] / "risk" / "demo"


def _invoke(*args: str):
    result = runner.invoke(app, list(args))
    return result, result.output


def test_missing_policy_file(tmp_path: Path) -> None:
    result, out = _invoke("epoch", str(tmp_path / "nope.yaml"), "--out", str(tmp_path))
    assert result.exit_code == 2
    assert "error:" in out and "not found" in out and "hint:" in out
    assert "Traceback" not in out


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    result = runner.invoke(app, ["--debug", "epoch", str(tmp_path / "nope.yaml")])
    assert result.exit_code != 0
    assert result.exception is not None and type(result.exception).__name__ == "PolicyError"


def test_bad_policy_lists_problems(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text((DEMO / "policy.yaml").read_text().replace('coverage: "99%"', "coverage: 0.99"))
    result, out = _invoke("epoch", str(bad), "--out", str(tmp_path))
    assert result.exit_code == 2
    assert "risk_appetite.coverage" in out and "bad.yaml:" in out


def _file_policy(tmp_path: Path, csv_text: str) -> Path:
    (tmp_path / "prices.csv").write_text(csv_text)
    text = (DEMO / "policy.yaml").read_text().replace("price_source: {synthetic: demo}", "price_source: {file: prices.csv}")
    policy = tmp_path / "p.yaml"
    policy.write_text(text)
    return policy


def test_bad_data_names_file_and_row(tmp_path: Path) -> None:
    rows = ["timestamp_utc,open,high,low,close"]
    rows += [f"2023-01-01 {h:02d}:00:00,1,1,1,1" for h in range(5)]
    rows.insert(3, "2023-01-01 01:30:00,1,1,1,-5")
    policy = _file_policy(tmp_path, "\n".join(rows) + "\n")
    result, out = _invoke("epoch", str(policy), "--data", str(tmp_path), "--snapshot", str(DEMO / "snapshot.json"), "--out", str(tmp_path / "o"))
    assert result.exit_code == 2, out
    assert "prices.csv:4" in out and "hint:" in out and "Traceback" not in out
    assert not (tmp_path / "o").exists()  # nothing half-written


def test_missing_data_dir(tmp_path: Path) -> None:
    policy = _file_policy(tmp_path, "timestamp_utc,close\n")
    result, out = _invoke("epoch", str(policy), "--data", str(tmp_path / "nowhere"), "--snapshot", str(DEMO / "snapshot.json"))
    assert result.exit_code == 2
    assert "not found" in out and "--data" in out


def test_unknown_market_in_snapshot(tmp_path: Path) -> None:
    text = (DEMO / "policy.yaml").read_text().replace("symbol: USDC", "symbol: USDT")
    policy = tmp_path / "p.yaml"
    policy.write_text(text)
    result, out = _invoke("epoch", str(policy), "--out", str(tmp_path))
    assert result.exit_code == 2
    assert "USDT" in out and "hint:" in out


def test_wrong_chain_snapshot(tmp_path: Path) -> None:
    snap = tmp_path / "s.json"
    snap.write_text((DEMO / "snapshot.json").read_text().replace('"chain_id": 1337', '"chain_id": 1'))
    result, out = _invoke("epoch", "--snapshot", str(snap), "--out", str(tmp_path))
    assert result.exit_code == 2
    assert "chain 1" in out and "1337" in out


def test_verify_on_a_non_bundle(tmp_path: Path) -> None:
    result, out = _invoke("verify", str(tmp_path))
    assert result.exit_code == 2
    assert "manifest.json is missing" in out


@pytest.mark.parametrize("cmd", [["--help"], ["epoch", "--help"], ["verify", "--help"], ["validate", "--help"]])
def test_help_works(cmd: list[str]) -> None:
    assert runner.invoke(app, cmd).exit_code == 0


def test_brackets_in_hints_are_printed_as_written(tmp_path: Path) -> None:
    rows = ["timestamp_utc,close", "2023-01-01 00:00:00,1", "2023-01-01 00:00:00,1"]
    policy = _file_policy(tmp_path, "\n".join(rows) + "\n")
    result, out = _invoke("epoch", str(policy), "--data", str(tmp_path), "--snapshot", str(DEMO / "snapshot.json"))
    assert result.exit_code == 2
    assert "data.repairs: [drop_duplicates]" in out


def test_validate_recognises_breaker_policies(tmp_path: Path) -> None:
    repo = DEMO.parents[1]
    good = repo / "policies" / "eth-perp-breakers.yaml"
    result, out = _invoke("validate", str(good))
    assert result.exit_code == 0, out
    bad = tmp_path / "b.yaml"
    bad.write_text(good.read_text().replace("fresh_within", "fresh_withn", 1))
    result, out = _invoke("validate", str(bad))
    assert result.exit_code == 2 and "did you mean 'fresh_within'" in out
