"""What every kind of bundle pins and how it is read back: the policy, prices, manifest, sources.

Lending (Aave v3), Compound v3 and perps/options bundles each pin more of their own inputs; this is
the part they share, so `steward verify` reads a bundle's common inputs one way whatever its kind.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from governance.bundle import MANIFEST, BundleError
from risk.market import MarketData
from risk.policy import Policy
from risk.policy_load import LoadedPolicy, check_policy_text

INPUT_POLICY = "inputs/policy.yaml"
INPUT_PRICES = "inputs/prices.csv"
INPUT_HISTORY = "inputs/history.csv"  # lending venues: the crash windows' prices, when replayed


@dataclass(frozen=True)
class Source:
    """A file the inputs were taken from: its name relative to the data folder and its hash."""

    name: str
    sha256: str

    def to_json(self) -> dict[str, str]:
        return {"name": self.name, "sha256": self.sha256}


@dataclass(frozen=True)
class PinnedCommon:
    """A bundle's inputs every kind has, read back: the pinned policy and prices, and the manifest's run facts."""

    policy: LoadedPolicy
    market: MarketData
    seed: int
    epoch: str
    sources: tuple[Source, ...]
    repairs: tuple[dict[str, Any], ...]


def pinned_policy(files: dict[str, bytes]) -> Policy | None:
    """A bundle's pinned policy if it validates (None otherwise: the rebuild then reports why)."""
    text = files.get(INPUT_POLICY)
    if text is None:
        return None
    policy, _ = check_policy_text(text, INPUT_POLICY)
    return policy


def read_pinned(files: dict[str, bytes], bundle: Path, *also: str) -> PinnedCommon:
    """The common inputs of `bundle`; BundleError if they, or any of the kind's own inputs `also`, are missing."""
    for rel in (INPUT_POLICY, INPUT_PRICES, *also, MANIFEST):
        if rel not in files:
            raise BundleError(f"{bundle}/{rel} is missing", "a bundle cannot be rebuilt without its inputs")
    policy, problems = check_policy_text(files[INPUT_POLICY], f"{bundle}/{INPUT_POLICY}")
    if policy is None:
        raise BundleError(f"{bundle}/{INPUT_POLICY} no longer validates: {problems[0]}", "the pinned policy was modified")
    manifest = json.loads(files[MANIFEST])
    return PinnedCommon(
        policy=LoadedPolicy(policy=policy, path=bundle / INPUT_POLICY, text=files[INPUT_POLICY]),
        market=MarketData.from_csv_bytes(files[INPUT_PRICES], INPUT_PRICES),
        seed=int(manifest["seed"]),
        epoch=str(manifest["epoch"]),
        sources=tuple(Source(s["name"], s["sha256"]) for s in manifest.get("sources", [])),
        repairs=tuple(manifest.get("repairs", [])),
    )
