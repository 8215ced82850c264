"""`steward validate`: every problem of every file, file:line:column and field, exit 2, no traceback."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from governance.cli import app

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "risk" / "demo" / "policy.yaml"
DEMO_TEXT = DEMO.read_text()
runner = CliRunner()  # click ≥ 8.2: stdout and stderr are kept apart, `output` interleaves both

WHERE = re.compile(r"^  (?P<file>\S+?):(?P<line>\d+):(?P<col>\d+): (?P<field>\S+): ", re.MULTILINE)


def set_value(text: str, key: str, value: str) -> str:
    """The demo with the first block-style `key: ...` line's value replaced (whatever the demo says today)."""
    new, n = re.subn(rf"(?m)^(\s*(?:- )?{key}: ).*$", lambda m: m.group(1) + value, text, count=1)
    assert n == 1, f"{key} not in the demo policy"
    return new


def second_symbol_as_first(text: str) -> str:
    first, second = re.findall(r"(?m)^\s*- symbol: (\S+)$", text)[:2]
    return text.replace(f"symbol: {second}", f"symbol: {first}", 1)


def invoke(*args: str):
    return runner.invoke(app, list(args))


def write(tmp_path: Path, name: str, text: str | bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return path


def test_valid_policy_exits_0(tmp_path: Path) -> None:
    result = invoke("validate", str(DEMO))
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "ok: 1 policy file(s) valid"
    assert result.stderr == ""


def test_several_valid_policies(tmp_path: Path) -> None:
    other = write(tmp_path, "copy.yaml", DEMO_TEXT)
    result = invoke("validate", str(DEMO), str(other))
    assert result.exit_code == 0 and "ok: 2 policy file(s) valid" in result.stdout


def test_every_problem_of_every_file_is_listed(tmp_path: Path) -> None:
    a = write(tmp_path, "a.yaml", set_value(set_value(DEMO_TEXT, "coverage", "0.99"), "chain_id", "-1"))
    b = write(tmp_path, "b.yaml", set_value(DEMO_TEXT, "paths", "many") + "colour: blue\n")
    ok = write(tmp_path, "ok.yaml", DEMO_TEXT)
    result = invoke("validate", str(a), str(ok), str(b))
    assert result.exit_code == 2
    assert result.stdout == ""
    err = result.stderr
    assert "Traceback" not in result.output
    assert err.startswith("error: 4 problem(s) in 3 policy file(s)\n")
    found = [(Path(m["file"]).name, int(m["line"]), int(m["col"]), m["field"]) for m in WHERE.finditer(err)]
    text_a, text_b = a.read_text().splitlines(), b.read_text().splitlines()
    assert found == [
        ("a.yaml", _line(text_a, "chain_id: -1"), 3, "venue.chain_id"),
        ("a.yaml", _line(text_a, "coverage: 0.99"), 3, "risk_appetite.coverage"),
        ("b.yaml", _line(text_b, "paths: many"), 3, "scenarios.paths"),
        ("b.yaml", _line(text_b, "colour: blue"), 1, "colour"),
    ]
    assert "ok.yaml" not in err
    assert "hint: fix each line listed" in err


def _line(lines: list[str], needle: str) -> int:
    (n,) = [i for i, line in enumerate(lines, 1) if needle in line]
    return n


def test_missing_file_exits_2_with_cause_and_hint(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    result = invoke("validate", str(missing))
    assert result.exit_code == 2
    assert f"{missing}: cannot read (No such file or directory)" in result.stderr
    assert "error: 1 problem(s) in 1 policy file(s)" in result.stderr
    assert "hint:" in result.stderr
    assert "Traceback" not in result.output


def test_missing_file_does_not_hide_the_others(tmp_path: Path) -> None:
    bad = write(tmp_path, "bad.yaml", set_value(DEMO_TEXT, "version", "2"))
    result = invoke("validate", str(tmp_path / "nope.yaml"), str(bad))
    assert result.exit_code == 2
    assert "nope.yaml: cannot read" in result.stderr and f"{bad}:" in result.stderr and "version" in result.stderr


def test_directory_is_a_problem_not_a_crash(tmp_path: Path) -> None:
    result = invoke("validate", str(tmp_path))
    assert result.exit_code == 2 and "cannot read" in result.stderr and "Traceback" not in result.output


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"\xff\xfe\x00", ":1:1: not UTF-8 text"),
        (b"- a list\n", ":1:1: a policy is a YAML mapping"),
        (b"venue: [unclosed\n", ":2:1: YAML syntax: expected ',' or ']'"),
        (b"", ":1:1: a policy is a YAML mapping"),
    ],
)
def test_files_that_are_not_policies(tmp_path: Path, content: bytes, expected: str) -> None:
    path = write(tmp_path, "x.yaml", content)
    result = invoke("validate", str(path))
    assert result.exit_code == 2
    assert f"{path}{expected}" in result.stderr
    assert "Traceback" not in result.output


def test_problem_lines_are_printed_verbatim_not_as_rich_markup(tmp_path: Path) -> None:
    # A message with [brackets] must not be eaten by rich's markup parser.
    path = write(tmp_path, "x.yaml", second_symbol_as_first(DEMO_TEXT))
    result = invoke("validate", str(path))
    assert "appears twice (markets[0] and markets[1])" in result.stderr


def test_no_arguments_is_a_usage_error() -> None:
    result = invoke("validate")
    assert result.exit_code == 2 and "Missing argument" in result.output


def test_debug_after_the_command_is_not_an_option(tmp_path: Path) -> None:
    # --debug belongs to the `steward` callback: it goes before the command name.
    result = invoke("validate", "--debug", str(DEMO))
    assert result.exit_code == 2 and "No such option: --debug" in result.output


def test_debug_before_the_command_raises_the_policy_error(tmp_path: Path) -> None:
    result = invoke("--debug", "validate", str(tmp_path / "nope.yaml"))
    assert result.exit_code == 1
    assert type(result.exception).__name__ == "PolicyError"
    assert result.exception.problems == (f"{tmp_path / 'nope.yaml'}: cannot read (No such file or directory)",)
    # and the next run without --debug is back to the short form
    again = invoke("validate", str(tmp_path / "nope.yaml"))
    assert again.exit_code == 2 and again.exception is not None and isinstance(again.exception, SystemExit)


def test_debug_prints_a_traceback_from_the_real_command(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    cmd = [sys.executable, "-c", "from governance.cli import app; app()", "--debug", "validate", str(missing)]
    proc = subprocess.run(cmd, check=False, capture_output=True, text=True, cwd=REPO, timeout=120)
    assert proc.returncode == 1
    assert "Traceback (most recent call last)" in proc.stderr
    assert "risk.errors.PolicyError: 1 problem(s) in 1 policy file(s)" in proc.stderr
    plain = subprocess.run(cmd[:3] + ["validate", str(missing)], check=False, capture_output=True, text=True, cwd=REPO, timeout=120)
    assert plain.returncode == 2 and "Traceback" not in plain.stderr and "cannot read" in plain.stderr
