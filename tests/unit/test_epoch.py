"""The bundle: same inputs give the same bytes; verify catches any changed byte; writes are atomic."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from governance import bundle as bundle_mod
from governance.cli import app
from governance.epoch_inputs import gather_inputs
from governance.pipeline import build_files

runner = CliRunner()
EXPECTED_FILES = {
    "calls.json",
    "inputs/policy.yaml",
    "inputs/prices.csv",
    "inputs/snapshot.json",
    "manifest.json",
    "recommendation.json",
    "report.html",
    "report.md",
    "safe-tx-builder.json",
    "safe-tx.json",
}


def _epoch(out: Path, *extra: str) -> Path:
    result = runner.invoke(app, ["epoch", "--out", str(out), *extra])
    assert result.exit_code == 0, result.output
    return out / "steward-demo-aave-v3" / "2023-10-31"


def _files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def demo_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _epoch(tmp_path_factory.mktemp("a"))


def test_bundle_has_every_artefact(demo_bundle: Path) -> None:
    assert set(_files(demo_bundle)) == EXPECTED_FILES


def test_same_inputs_give_byte_identical_bundles(demo_bundle: Path, tmp_path: Path) -> None:
    again = _epoch(tmp_path)
    assert _files(again) == _files(demo_bundle)


def test_a_different_seed_gives_a_different_bundle(demo_bundle: Path, tmp_path: Path) -> None:
    other = _epoch(tmp_path, "--seed", "7")
    assert _files(other)["inputs/prices.csv"] != _files(demo_bundle)["inputs/prices.csv"]
    assert json.loads(_files(other)["manifest.json"])["seed"] == 7


def test_manifest_lists_every_file_with_its_hash(demo_bundle: Path) -> None:
    files = _files(demo_bundle)
    manifest = json.loads(files["manifest.json"])
    assert set(manifest["files"]) == EXPECTED_FILES - {"manifest.json"}
    for rel, digest in manifest["files"].items():
        assert bundle_mod.sha256(files[rel]) == digest
    assert manifest["seed"] == 20231031 and manifest["chain_id"] == 1337
    text = files["manifest.json"].decode()
    assert "/tmp" not in text and "/work" not in text  # no absolute paths inside


def test_verify_passes_on_a_fresh_bundle(demo_bundle: Path) -> None:
    result = runner.invoke(app, ["verify", str(demo_bundle)])
    assert result.exit_code == 0, result.output
    assert "verified: 10 files" in result.output


@pytest.mark.parametrize("rel", sorted(EXPECTED_FILES))
def test_verify_fails_naming_the_file_when_any_byte_changes(demo_bundle: Path, tmp_path: Path, rel: str) -> None:
    copy = tmp_path / "b"
    shutil.copytree(demo_bundle, copy)
    path = copy / rel
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle] = (data[middle] + 1) % 256 or 1
    path.write_bytes(bytes(data))
    result = runner.invoke(app, ["verify", str(copy)])
    assert result.exit_code == 2, result.output
    assert rel in result.output
    assert "Traceback" not in result.output


def test_verify_fails_when_a_consistent_forgery_does_not_follow_from_inputs(demo_bundle: Path, tmp_path: Path) -> None:
    """Edit a call *and* fix the manifest's hash: only the rebuild from inputs/ can catch this."""
    copy = tmp_path / "forged"
    shutil.copytree(demo_bundle, copy)
    calls = json.loads((copy / "calls.json").read_text())
    calls[0]["human"] = calls[0]["human"].replace("→", "->")
    (copy / "calls.json").write_text(json.dumps(calls, indent=2, sort_keys=True) + "\n")
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["files"]["calls.json"] = bundle_mod.sha256((copy / "calls.json").read_bytes())
    (copy / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    result = runner.invoke(app, ["verify", str(copy)])
    assert result.exit_code == 2
    assert "calls.json: differs from the rebuild" in result.output


def test_verify_reports_extra_and_missing_files(demo_bundle: Path, tmp_path: Path) -> None:
    copy = tmp_path / "c"
    shutil.copytree(demo_bundle, copy)
    (copy / "report.md").unlink()
    (copy / "extra.txt").write_text("x")
    result = runner.invoke(app, ["verify", str(copy)])
    assert result.exit_code == 2
    assert "report.md: missing" in result.output and "extra.txt: not listed in the manifest" in result.output


def test_interrupted_write_leaves_no_half_bundle(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    inputs = gather_inputs(None)
    files = build_files(inputs)
    target = tmp_path / "venue" / "epoch"
    calls = {"n": 0}
    real_fsync = bundle_mod.os.fsync

    def failing_fsync(fd: int) -> None:
        calls["n"] += 1
        if calls["n"] == 4:
            raise OSError(28, "No space left on device")
        real_fsync(fd)

    monkeypatch.setattr(bundle_mod.os, "fsync", failing_fsync)
    with pytest.raises(OSError):
        bundle_mod.write_bundle(files, target)
    assert not target.exists()
    assert list((tmp_path / "venue").iterdir()) == []  # the temporary folder was removed too


def test_interrupted_rewrite_keeps_the_previous_bundle(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "epoch"
    bundle_mod.write_bundle({"a.txt": b"old"}, target)
    monkeypatch.setattr(bundle_mod.os, "fsync", lambda fd: (_ for _ in ()).throw(OSError(5, "I/O error")))
    with pytest.raises(OSError):
        bundle_mod.write_bundle({"a.txt": b"new"}, target)
    assert (target / "a.txt").read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["epoch"]


def test_bundle_paths_cannot_escape(tmp_path: Path) -> None:
    with pytest.raises(bundle_mod.BundleError):
        bundle_mod.write_bundle({"../evil": b"x"}, tmp_path / "b")


def test_calls_in_every_artefact_agree(demo_bundle: Path) -> None:
    """calls.json, the Tx Builder file and the SafeTx's MultiSend all carry the same calls."""
    from governance.safe import decode_tx_builder_batch, inner_calls, safe_tx_from_json, verify_tx_builder_checksum

    files = _files(demo_bundle)
    calls = [(c["to"], int(c["value"]), c["data"]) for c in json.loads(files["calls.json"])]
    batch = json.loads(files["safe-tx-builder.json"])
    assert verify_tx_builder_checksum(batch)
    assert decode_tx_builder_batch(batch) == calls
    safe_tx = safe_tx_from_json(json.loads(files["safe-tx.json"]))
    assert [(c.to, c.value, c.data) for c in inner_calls(safe_tx)] == calls
    assert batch["createdAt"] == 1698710400000  # 2023-10-31T00:00Z, the data's as-of, not the clock


def test_verify_recomputes_once_per_distinct_inputs(demo_bundle: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Chain steps verify the same bundle repeatedly: the rebuild is done once, and never skipped."""
    from governance import verify as verify_mod

    monkeypatch.setattr(verify_mod, "_REBUILDS", type(verify_mod._REBUILDS)())
    calls = {"n": 0}
    real = verify_mod._rebuild_uncached

    def counting(*args, **kwargs):
        calls["n"] += 1
        return real(*args, **kwargs)

    monkeypatch.setattr(verify_mod, "_rebuild_uncached", counting)
    verify_mod.verify_bundle(demo_bundle)
    verify_mod.verify_bundle(demo_bundle)
    assert calls["n"] == 1
    other = _epoch(tmp_path, "--seed", "7")  # different inputs/prices.csv → a new rebuild
    verify_mod.verify_bundle(other)
    assert calls["n"] == 2
