"""Hypothesis-made bad policies through `steward validate`: never a crash, exit 0 or 2, every problem located.

Sources of bad input: structural mutations of the demo policy's data (dumped back to YAML); the
demo's text with YAML features spliced in (tags, !!binary, !!set, anchors, merge keys) or with
characters damaged; arbitrary text or bytes. The file stays under ~30 s: 100 examples per test.
"""

from __future__ import annotations

import copy
import io
import json
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from ruamel.yaml import YAML
from typer.testing import CliRunner

from governance.cli import app
from risk.policy import Policy

REPO = Path(__file__).resolve().parents[2]
DEMO_TEXT = (REPO / "risk" / "demo" / "policy.yaml").read_text()
DEMO_DATA = YAML(typ="safe", pure=True).load(DEMO_TEXT)
runner = CliRunner()

FUZZ = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Values people (and YAML) get wrong: units missing or doubled, YAML 1.1 words, hex, huge numbers.
TRICKY = st.sampled_from(
    [
        "82.5%", "8250bps", "$50M", "72h", "3d", "0x10", "no", "yes", "on", "1e18", "1e999999999%", "-5%",
        "$1e999999999", "99999999999999999999w", "bps", "percent", "usd", "hours", "file", "synthetic",
        "150%", "0%", "0s", "demo", "lending", "aave-v3", "ewma", "", " ", "~", "null", "NaN%",
        "0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2", "2022-11-15T00:00:00Z", "2022-13-45", "[x]", "{a: 1}",
    ]
)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats()
    | st.text(max_size=12)
    | TRICKY
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8) | TRICKY, inner, max_size=3),
    max_leaves=6,
)


def all_paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            out += all_paths(value, prefix + (key,))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            out += all_paths(value, prefix + (i,))
    return out


def retype(value: Any, how: int) -> Any:
    return [str(value), [value], {"value": value}, None, 1 if isinstance(value, str) else "1"][how]


@st.composite
def mutated_policies(draw: st.DrawFn) -> Any:
    """The demo's data after 1–3 mutations: delete, replace, insert an unknown key, or retype."""
    data: Any = copy.deepcopy(DEMO_DATA)
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        paths = all_paths(data)
        path = draw(st.sampled_from(paths))
        action = draw(st.sampled_from(["delete", "replace", "insert", "retype"]))
        if not path:  # the root itself
            if action == "replace":
                data = draw(VALUES)
            elif action == "insert" and isinstance(data, dict):
                data[draw(st.text(min_size=1, max_size=10))] = draw(VALUES)
            continue
        *parent_path, last = path
        parent = data
        for key in parent_path:
            parent = parent[key]
        if action == "delete":
            del parent[last]
        elif action == "replace":
            parent[last] = draw(VALUES)
        elif action == "retype":
            parent[last] = retype(parent[last], draw(st.integers(min_value=0, max_value=4)))
        elif isinstance(parent[last], dict):
            parent[last][draw(st.text(min_size=1, max_size=10) | TRICKY)] = draw(VALUES)
        else:
            parent[last] = draw(VALUES)
    return data


def dump_yaml(data: Any) -> str:
    stream = io.StringIO()
    YAML(typ="safe", pure=True).dump(data, stream)
    return stream.getvalue()


def expected_valid(data: Any) -> bool:
    """Oracle independent of the YAML layer: the same data as JSON straight into the model."""
    if not isinstance(data, dict):
        return False
    try:
        Policy.model_validate_json(json.dumps(data))
    except ValidationError:
        return False
    return True


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


def run_validate(path: Path):
    result = runner.invoke(app, ["validate", str(path)])
    # CliRunner catches everything: a crash shows up as an exception other than SystemExit.
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    return result


def assert_located_failure(result: Any, path: Path) -> None:
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("error: ")
    located = re.findall(rf"^  {re.escape(str(path))}:(\d+):(\d+): ", result.stderr, re.MULTILINE)
    assert located, result.stderr
    lines = max(1, len(path.read_bytes().splitlines()) + 1)
    assert all(1 <= int(line) <= lines and int(col) >= 1 for line, col in located), result.stderr


@FUZZ
@given(data=mutated_policies())
def test_mutated_policy_is_valid_or_exits_2_with_located_problems(workdir: Path, data: Any) -> None:
    path = workdir / "mutated.yaml"
    path.write_text(dump_yaml(data), encoding="utf-8")
    result = run_validate(path)
    if expected_valid(data):
        assert result.exit_code == 0, result.output
        assert "ok: 1 policy file(s) valid" in result.stdout
    else:
        assert_located_failure(result, path)


@st.composite
def damaged_text(draw: st.DrawFn) -> str:
    """The demo file with a few characters deleted, inserted or swapped for YAML punctuation."""
    text = DEMO_TEXT
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        i = draw(st.integers(min_value=0, max_value=len(text)))
        piece = draw(st.sampled_from([":", "-", " ", "\n", "\t", "[", "{", "}", "&a ", "*a", "!!", "<<: ", "'", '"', "#", "%", "|", ">", "?"]))
        if draw(st.booleans()):
            text = text[:i] + piece + text[i:]
        else:
            text = text[:i] + text[i + draw(st.integers(min_value=1, max_value=8)) :]
    return text


# Each replaces a value in the demo: YAML features a policy should not use, and merges that should work.
SPLICES = [
    "!custom x", "!custom {a: 1}", "!!binary aGVsbG8=", "!!set {a, b}", "!!omap [{a: 1}]", "!!pairs [{a: 1}]",
    "!!str 5", "!!int '5'", "!!float 1", "!!timestamp 2022-01-01", "!!null ''", "&anchor {a: 1}",
    "{<<: {min: '1%'}, max: '2%'}", "{<<: [{min: '3%'}, {max: '1%'}]}", "{<<: {extra: 1}, min: '1%', max: '2%'}",
    "{bps: 1e999999999}", "'1e999999999%'", "{usd: 1e999999999}", "0x0000000000000000000000000000000000000001",
    "[*x]", "*undefined",
]


@st.composite
def spliced_text(draw: st.DrawFn) -> str:
    lines = DEMO_TEXT.splitlines()
    candidates = [i for i, line in enumerate(lines) if re.match(r"^\s*(- )?[a-z_]+: \S", line)]
    for _ in range(draw(st.integers(min_value=1, max_value=2))):
        i = draw(st.sampled_from(candidates))
        key, _, _ = lines[i].partition(": ")
        lines[i] = f"{key}: {draw(st.sampled_from(SPLICES))}"
    return "\n".join(lines) + "\n"


@FUZZ
@given(text=damaged_text() | spliced_text())
def test_damaged_demo_text_never_crashes(workdir: Path, text: str) -> None:
    path = workdir / "damaged.yaml"
    path.write_text(text, encoding="utf-8")
    result = run_validate(path)
    if result.exit_code != 0:
        assert_located_failure(result, path)


YAMLISH = st.lists(
    st.sampled_from(
        ["a", "version", "venue", "markets", ": ", "- ", "\n", "  ", "[", "]", "{", "}", ",", "&x ", "*x", "!!str ",
         "!!binary ", "!!set ", "!tag ", "<<: ", "? ", "|", ">", "'", '"', "1", "0x10", "1e18", ".nan", "~", "%YAML 1.1\n---\n", "---\n", "...\n"]
    ),
    max_size=40,
).map("".join)


@FUZZ
@given(content=st.binary(max_size=300) | st.text(max_size=300).map(str.encode) | YAMLISH.map(str.encode))
def test_arbitrary_bytes_exit_2_without_traceback(workdir: Path, content: bytes) -> None:
    path = workdir / "noise.yaml"
    path.write_bytes(content)
    result = run_validate(path)
    assert result.exit_code in (0, 2)
    if result.exit_code == 2:
        assert_located_failure(result, path)
