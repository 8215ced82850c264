"""A Compound v3 (Comet) epoch, offline, on the demo market: the lending core's recommendation becomes Configurator
calls that decode back to it, the upgrade comes once and last, Comet's rules and 4-decimal storage are enforced and
shown, and the bundle rebuilds from its inputs byte for byte."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from governance.bundle import diff_files, read_bundle, write_bundle
from governance.calls import decode_call
from governance.cli import app
from governance.pipeline_compound import (
    CompoundInputs,
    build_compound_files,
    compound_inputs_from_bundle,
    gather_compound_inputs,
    is_compound_bundle,
)
from governance.report import environment
from governance.safe import decode_tx_builder_batch
from governance.venues import compound_v3
from governance.venues.compound_mapping import compound_context
from governance.venues.compound_snapshot import parse_comet_snapshot_json
from governance.venues.compound_v3 import (
    DEPLOY_AND_UPGRADE_TO,
    FUNCTIONS,
    CometPackage,
    CometParameter,
    CometRuleError,
    batch_problems,
    comet_calls,
    comet_change,
)
from risk.errors import DataError, PolicyError, StewardError
from risk.policy import LendingParameter
from risk.policy_load import load_policy
from risk.units import Ratio

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "policies" / "compound-v3-example.yaml"
DEMO_COMET = REPO / "risk" / "demo" / "comet_snapshot.json"
runner = CliRunner()

# The example policy with fewer paths, positions and resamples, so the epoch takes a few seconds.
SMALL = {
    "positions: 1000": "positions: 200",
    "paths: 1000": "paths: 150",
    "bootstrap_resamples: 200": "bootstrap_resamples: 10",
}


def small_policy(folder: Path) -> Path:
    text = EXAMPLE.read_text()
    for old, new in SMALL.items():
        assert old in text
        text = text.replace(old, new)
    path = folder / "compound.yaml"
    path.write_text(text)
    return path


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, CompoundInputs, dict[str, bytes]]:
    folder = tmp_path_factory.mktemp("compound")
    inputs = gather_compound_inputs(small_policy(folder))
    files = build_compound_files(inputs)
    target = folder / "proposals" / "steward-demo-compound-v3" / inputs.epoch
    write_bundle(files, target)
    return target, inputs, files


def test_the_bundle_has_every_artefact_and_pins_the_comet_snapshot(built: tuple[Path, CompoundInputs, dict[str, bytes]]) -> None:
    _, _, files = built
    assert sorted(files) == ["calls.json", "inputs/comet.json", "inputs/policy.yaml", "inputs/prices.csv", "manifest.json",
                             "recommendation.json", "report.html", "report.md", "safe-tx-builder.json", "safe-tx.json"]
    pinned = parse_comet_snapshot_json(files["inputs/comet.json"], "inputs/comet.json")
    assert sorted(pinned.assets) == ["WBTC", "WETH", "wstETH"] and pinned.comet == "0xc3d688B66703497DAA19211EEdff47f25384cdc3"
    assert all(p is not None for p in pinned.prices.values())  # computed on exactly these prices
    assert is_compound_bundle(files)
    rec = json.loads(files["recommendation.json"])
    assert rec["protocol"] == "compound-v3"
    for market in rec["markets"].values():
        assert sorted(market["parameters"]) == ["liquidation_bonus", "liquidation_threshold", "ltv", "supply_cap"]  # no borrow cap
        assert "borrow_cap" not in market["risk"]["confidence"]


def _raw(param: str, proposed: dict, decimals: int) -> int:
    if param == "supply_cap":
        return int(proposed["tokens"]) * 10**decimals
    bps = int(proposed["bps"])
    return 10**18 - bps * 10**14 if param == "liquidation_bonus" else bps * 10**14


def test_every_call_decodes_to_the_recommendation_and_the_upgrade_is_last(built: tuple[Path, CompoundInputs, dict[str, bytes]]) -> None:
    _, inputs, files = built
    section = inputs.policy.policy.compound
    rec = json.loads(files["recommendation.json"])
    calls = json.loads(files["calls.json"])
    by_selector = {f.selector: f for f in FUNCTIONS}
    names = {"ltv": "updateAssetBorrowCollateralFactor", "liquidation_threshold": "updateAssetLiquidateCollateralFactor",
             "liquidation_bonus": "updateAssetLiquidationFactor", "supply_cap": "updateAssetSupplyCap"}
    expected = set()
    for symbol, market in rec["markets"].items():
        state = inputs.comet.asset(symbol)
        for param, p in market["parameters"].items():
            if p["current"] != p["proposed"]:
                expected.add((names[param], (section.comet, state.asset, _raw(param, p["proposed"], state.decimals))))
    decoded = [(by_selector[bytes.fromhex(c["data"][2:10])], c) for c in calls]
    got = {(fn.name, decode_call(fn, c["data"])) for fn, c in decoded[:-1]}
    assert expected and got == expected
    upgrades = [i for i, (fn, _) in enumerate(decoded) if fn is DEPLOY_AND_UPGRADE_TO]
    assert upgrades == [len(calls) - 1]
    last = calls[-1]
    assert last["to"] == section.proxy_admin and decode_call(DEPLOY_AND_UPGRADE_TO, last["data"]) == (section.configurator, section.comet)
    assert all(c["to"] == section.configurator for c in calls[:-1])
    assert batch_problems([(c["to"], c["data"]) for c in calls], configurator=section.configurator, comet=section.comet,
                          proxy_admin=section.proxy_admin) == []
    batch = decode_tx_builder_batch(json.loads(files["safe-tx-builder.json"]))
    assert [(to, data) for to, _, data in batch] == [(c["to"], c["data"]) for c in calls]


def test_the_report_states_the_mapping_and_shows_comet_values(built: tuple[Path, CompoundInputs, dict[str, bytes]]) -> None:
    _, _, files = built
    md = files["report.md"].decode()
    assert "## Compound v3 (Comet): what the Configurator will store" in md
    assert md.index("## Compound v3 (Comet)") < md.index("## Proposed changes")
    method = md[md.index("## Method and assumptions"):]
    for phrase in ("borrow collateral factor", "liquidate collateral factor", "1 - liquidation factor",
                   "Simulation: whole-position liquidations as Comet's absorb (all of the debt as soon as HF < 1",
                   "absorb takes a whole position as soon as it is liquidatable", "Still approximated", "storefront discount",
                   "no per-asset borrow cap", "not published on npm"):
        assert phrase in method, phrase
    assert "close factor 50%" not in method  # the Aave simulation is not what was run
    assert "| WETH | liquidation factor | 95% |" in md
    assert "Borrow cap" not in md
    assert 'id="compound"' in files["report.html"].decode()


def test_the_bundle_rebuilds_byte_for_byte_and_a_changed_byte_is_caught(built: tuple[Path, CompoundInputs, dict[str, bytes]]) -> None:
    bundle, _, _ = built
    core = read_bundle(bundle)
    assert diff_files(build_compound_files(compound_inputs_from_bundle(core, bundle)), core, bundle) == []
    tampered = dict(core)
    tampered["calls.json"] = core["calls.json"].replace(b'"value": "0"', b'"value": "1"', 1)
    assert tampered["calls.json"] != core["calls.json"]
    assert diff_files(build_compound_files(compound_inputs_from_bundle(tampered, bundle)), tampered, bundle) == [
        f"{bundle}/calls.json: differs from the rebuild from inputs/"
    ]


def test_steward_verify_passes_and_fails_on_any_changed_byte(built: tuple[Path, CompoundInputs, dict[str, bytes]], tmp_path: Path) -> None:
    """Through the CLI: needs governance.pipeline's dispatch to governance.pipeline_compound."""
    bundle, _, _ = built
    result = runner.invoke(app, ["verify", str(bundle)])
    assert result.exit_code == 0, result.output
    copy = tmp_path / "proposals" / "steward-demo-compound-v3" / bundle.name
    shutil.copytree(bundle, copy)
    comet = copy / "inputs" / "comet.json"
    comet.write_bytes(comet.read_bytes().replace(b'"82.5%"', b'"82.4%"', 1))
    result = runner.invoke(app, ["verify", str(copy)])
    assert result.exit_code != 0 and "inputs/comet.json" in result.output


def _equal_factors(real):  # type: ignore[no-untyped-def]
    """`for_comet` with the first market's borrow CF proposed equal to its liquidate CF."""

    def wrapped(rec, comet):  # type: ignore[no-untyped-def]
        rec = real(rec, comet)
        m = rec.markets[0]
        lt = m.change(LendingParameter.LIQUIDATION_THRESHOLD)
        changes = tuple(dataclasses.replace(c, proposed=lt.proposed) if c.parameter is LendingParameter.LTV else c for c in m.changes)
        return dataclasses.replace(rec, markets=(dataclasses.replace(m, changes=changes), *rec.markets[1:]))

    return wrapped


def test_borrow_cf_not_below_liquidate_cf_is_refused_naming_the_rule(built: tuple[Path, CompoundInputs, dict[str, bytes]],
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from governance import pipeline_compound

    _, inputs, _ = built
    monkeypatch.setattr(pipeline_compound, "for_comet", _equal_factors(pipeline_compound.for_comet))
    with pytest.raises(CometRuleError) as err:
        build_compound_files(inputs)
    assert "is not below liquidate collateral factor" in err.value.cause and "BorrowCFTooLarge" in err.value.hint


def test_steward_epoch_writes_the_same_bundle_and_writes_nothing_when_refused(built: tuple[Path, CompoundInputs, dict[str, bytes]],
                                                                            tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Through the CLI: needs governance.pipeline's dispatch to governance.pipeline_compound."""
    from governance import pipeline_compound

    _, _, files = built
    policy = small_policy(tmp_path)
    result = runner.invoke(app, ["epoch", str(policy), "--out", str(tmp_path / "out"), "--executor", "serial"])
    assert result.exit_code == 0, result.output
    assert read_bundle(tmp_path / "out" / "steward-demo-compound-v3" / "2023-10-31") == files  # same inputs, same bytes
    monkeypatch.setattr(pipeline_compound, "for_comet", _equal_factors(pipeline_compound.for_comet))
    result = runner.invoke(app, ["epoch", str(policy), "--out", str(tmp_path / "refused"), "--executor", "serial"])
    assert result.exit_code != 0 and "BorrowCFTooLarge" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "refused").exists()


def test_a_value_finer_than_4_decimals_is_warned_about_in_the_report(built: tuple[Path, CompoundInputs, dict[str, bytes]],
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """The core recommends whole basis points (exactly Comet's 4 decimals), so the guard is tested on Comet changes:
    the warning comet_calls gives reaches both reports, and the table marks what Comet will store."""
    from governance import pipeline_compound

    _, inputs, _ = built
    section = inputs.policy.policy.compound
    weth = inputs.comet.asset("WETH")
    finer = comet_change("WETH", weth, CometParameter.LIQUIDATE_COLLATERAL_FACTOR, Ratio.parse("89.5555%"))
    package = comet_calls([finer], configurator=section.configurator, comet=section.comet, proxy_admin=section.proxy_admin,
                          states={weth.asset: weth})
    assert package.warnings == (("WETH liquidate collateral factor: 89.5555% has more precision than Comet keeps; "
                                 "it will be stored as 89.55% (4 decimals)"),)
    section_md = environment().get_template("report_compound.md.j2").render(compound=compound_context(package, [finer], section, inputs.comet))
    assert "89.5555%" in section_md and "**89.55%** (truncated)" in section_md and package.warnings[0] in section_md

    real = compound_v3.comet_calls

    def with_warning(*args, **kwargs) -> CometPackage:  # type: ignore[no-untyped-def]
        built_package = real(*args, **kwargs)
        return dataclasses.replace(built_package, warnings=(*built_package.warnings, package.warnings[0]))

    monkeypatch.setattr(pipeline_compound, "comet_calls", with_warning)
    files = build_compound_files(inputs)
    assert f"- ⚠ {package.warnings[0]}" in files["report.md"].decode()
    assert "has more precision than Comet keeps" in files["report.html"].decode()


def test_the_example_policy_loads_and_names_its_comet_contracts() -> None:
    policy = load_policy(EXAMPLE).policy
    assert policy.venue.protocol.value == "compound-v3" and policy.compound is not None
    assert policy.compound.proxy_admin == "0x1EC63B5883C3481134FD50D5DAebc83Ecd2E8779"


def test_the_lending_core_simulates_comet_venues_with_whole_positions_and_aave_venues_with_its_close_factor() -> None:
    from risk.lending_params import LiquidationStyle
    from risk.recommend import liquidation_style

    assert liquidation_style(load_policy(EXAMPLE).policy) is LiquidationStyle.WHOLE_POSITION
    assert liquidation_style(load_policy(REPO / "policies" / "aave-v3-ethereum.yaml").policy) is LiquidationStyle.AAVE


def test_a_policy_without_its_compound_section_is_refused(tmp_path: Path) -> None:
    text = EXAMPLE.read_text()
    start = text.index("compound:\n")
    end = text.index("markets:\n")
    path = tmp_path / "no-section.yaml"
    path.write_text(text[:start] + text[end:])
    with pytest.raises(PolicyError, match="no compound: section"):
        gather_compound_inputs(path)


def test_sections_a_compound_bundle_cannot_carry_are_refused_not_ignored(tmp_path: Path) -> None:
    path = tmp_path / "with-governor.yaml"
    path.write_text(EXAMPLE.read_text() + 'governor:\n  address: "0x0000000000000000000000000000000000000abc"\n')
    with pytest.raises(PolicyError, match="governor cannot be packaged for a compound-v3 venue"):
        gather_compound_inputs(path)


def test_a_snapshot_of_another_comet_or_finer_than_comet_keeps_is_refused(tmp_path: Path) -> None:
    policy = small_policy(tmp_path)
    other = tmp_path / "other.json"
    other.write_bytes(DEMO_COMET.read_bytes().replace(b"0xc3d688B66703497DAA19211EEdff47f25384cdc3", b"0x0000000000000000000000000000000000000001"))
    with pytest.raises(StewardError, match="policy's compound.comet"):
        gather_compound_inputs(policy, snapshot_path=other)
    finer = tmp_path / "finer.json"
    finer.write_bytes(DEMO_COMET.read_bytes().replace(b'"82.5%"', b'"82.555%"', 1))
    with pytest.raises(DataError, match=r"finer.json: assets.WETH.borrow_collateral_factor: 82.555% has more than 4 decimals"):
        gather_compound_inputs(policy, snapshot_path=finer)
