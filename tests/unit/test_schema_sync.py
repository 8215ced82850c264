"""`policies/schema.json` is exactly what `steward schema` prints from the models."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from ruamel.yaml import YAML
from typer.testing import CliRunner

from governance.cli import app
from risk.units import Duration, Ratio

REPO = Path(__file__).resolve().parents[2]
SCHEMA = REPO / "policies" / "schema.json"


@pytest.fixture(scope="module")
def printed() -> str:
    result = CliRunner().invoke(app, ["schema"])
    assert result.exit_code == 0, result.output
    return result.stdout


def test_committed_schema_matches_the_models(printed: str) -> None:
    assert SCHEMA.is_file(), "policies/schema.json is missing: run `make schema`"
    assert SCHEMA.read_text() == printed, "policies/schema.json is out of date: run `make schema`"


def test_schema_output_is_stable_json(printed: str) -> None:
    schema = json.loads(printed)
    assert printed == json.dumps(schema, indent=2, sort_keys=True) + "\n"
    assert schema["title"] == "Policy" and schema["additionalProperties"] is False
    assert sorted(schema["required"]) == ["venue", "version"]  # markets, risk_appetite: lending venues only (validator)


def test_every_section_of_the_demo_is_in_the_schema(printed: str) -> None:
    schema = json.loads(printed)
    demo = YAML(typ="safe", pure=True).load((REPO / "risk" / "demo" / "policy.yaml").read_text())
    assert set(demo) <= set(schema["properties"])
    market = schema["$defs"]["Market"]
    assert set(demo["markets"][0]) <= set(market["properties"])
    assert market["additionalProperties"] is False
    assert market["properties"]["price_source"]["oneOf"] == [
        {"$ref": "#/$defs/FilePriceSource"},
        {"$ref": "#/$defs/SyntheticPriceSource"},
    ]


@pytest.mark.parametrize("text", ["82.5%", "8250bps", "8250BPS", " 0.5 % ", "1e1%", "-1%", "1_000bps"])
def test_ratio_pattern_accepts_what_the_parser_accepts(printed: str, text: str) -> None:
    schema = json.loads(printed)
    ratio = schema["$defs"]["RiskAppetite"]["properties"]["coverage"]
    (string_form,) = [b for b in ratio["anyOf"] if b.get("type") == "string"]
    Ratio.parse(text)  # the parser takes it ...
    assert re.match(string_form["pattern"], text)  # ... so an editor must not flag it


@pytest.mark.parametrize("text", ["0.825", "82.5", "82.5 percent"])
def test_ratio_pattern_refuses_bare_numbers(printed: str, text: str) -> None:
    ratio = json.loads(printed)["$defs"]["RiskAppetite"]["properties"]["coverage"]
    (string_form,) = [b for b in ratio["anyOf"] if b.get("type") == "string"]
    assert not re.match(string_form["pattern"], text)


def test_duration_mapping_keys_match_the_parser(printed: str) -> None:
    step = json.loads(printed)["$defs"]["Scenarios"]["properties"]["step"]
    (mapping,) = [b for b in step["anyOf"] if b.get("type") == "object"]
    keys = mapping["propertyNames"]["enum"]
    assert sorted(keys) == ["days", "hours", "minutes", "seconds", "weeks"]
    assert [Duration.parse({k: 1}).seconds for k in keys] == [
        {"seconds": 1, "minutes": 60, "hours": 3600, "days": 86400, "weeks": 604800}[k] for k in keys
    ]
