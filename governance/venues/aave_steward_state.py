"""The RiskSteward's state read at the epoch's pinned block, and pinned as `inputs/steward.json`.

`steward epoch --rpc` reads the steward named by the policy's `routing.steward` at the same block as
the pool: its limits (getRiskConfig), each market's last update times (getTimelock) and restriction
(isAddressRestricted); its risk council (RISK_COUNCIL) must be the policy's Safe, which sends the calls. The file keeps the chain's integers (basis points, seconds) so `steward
verify` rebuilds the routes from exactly what was read.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from eth_utils import to_checksum_address

from governance import jsonio
from governance.bundle import BundleError
from governance.chain import ChainError, ChainReader, connect
from governance.venues.aave_steward import read_council, read_last_updates, read_restricted, read_risk_config
from risk.data_text import iso_utc
from risk.policy import Policy
from risk.policy_routing import StewardLimits, StewardParameter
from risk.routing_chain import StewardState
from risk.units import Duration, Ratio

INPUT_STEWARD = "inputs/steward.json"


def read_steward_state(reader: ChainReader, policy: Policy, *, block: int) -> StewardState | None:
    """The policy's steward at `block`, or None when the policy names no steward.

    A steward without code at that block is refused: every read would return nothing, and routing on
    the policy's copy would package calls to an address that cannot take them.
    """
    routing = policy.routing
    if routing is None or routing.steward is None:
        return None
    steward = to_checksum_address(routing.steward)
    if not reader.code(steward, block=block):
        raise ChainError(
            f"the RiskSteward {steward} (routing.steward in the policy) has no code on chain {reader.chain_id} at block {block}",
            "remove routing.steward from the policy, or point --rpc at a chain where the steward is deployed",
        )
    safe = policy.venue.addresses.safe
    council = read_council(reader, steward, block=block)
    if safe is not None and council != to_checksum_address(safe):
        # onlyRiskCouncil: every steward call the Safe batch carries would revert.
        raise ChainError(
            f"the RiskSteward {steward} takes calls from its risk council {council} only; the policy's Safe {to_checksum_address(safe)} is not it",
            "set venue.addresses.safe to the steward's council Safe, or remove routing.steward from the policy",
        )
    markets = {m.symbol: to_checksum_address(m.asset) for m in policy.markets}
    header = reader.block(block)
    return StewardState(
        steward=steward,
        chain_id=reader.chain_id,
        block=block,
        block_time=dt.datetime.fromtimestamp(int(str(header["timestamp"]), 0), dt.UTC),
        limits=read_risk_config(reader, steward, block=block),
        last_updates=read_last_updates(reader, steward, markets, block=block),
        restricted=read_restricted(reader, steward, markets, block=block),
    )


def steward_state_from_rpc(policy: Policy, rpc_url: str, *, block: int, timeout_s: float = 10.0) -> StewardState | None:
    """What `steward epoch --rpc` pins next to the pool snapshot (same block)."""
    if policy.routing is None or policy.routing.steward is None:
        return None
    reader = connect(rpc_url, expected_chain_id=policy.venue.chain_id, timeout_s=timeout_s)
    return read_steward_state(reader, policy, block=block)


def _iso(t: dt.datetime) -> str:
    return iso_utc(int(t.timestamp()))


def steward_state_json(state: StewardState) -> dict[str, Any]:
    limits = {
        p.value: {
            "max_percent_change": state.limits.for_parameter(p).max_change_bps,
            "min_delay_seconds": state.limits.for_parameter(p).min_delay.seconds,
        }
        for p in StewardParameter
    }
    last: dict[str, dict[str, str]] = {}
    for (market, parameter), t in sorted(state.last_updates.items()):
        last.setdefault(market, {})[parameter] = _iso(t)
    return {
        "block": state.block,
        "block_time": _iso(state.block_time),
        "chain_id": state.chain_id,
        "last_updates": last,
        "limits": limits,
        "restricted_markets": sorted(state.restricted),
        "steward": state.steward,
    }


def steward_state_bytes(state: StewardState) -> bytes:
    """inputs/steward.json: canonical JSON (sorted keys), the same bytes for the same state."""
    return jsonio.dumps(steward_state_json(state))


def _time(text: Any) -> dt.datetime:
    if not isinstance(text, str) or not text.endswith("Z"):
        raise ValueError(f"{text!r} is not a UTC time like 2024-01-31T00:00:00Z")
    return dt.datetime.fromisoformat(text[:-1]).replace(tzinfo=dt.UTC)


def parse_steward_state(data: bytes, where: str) -> StewardState:
    """inputs/steward.json read back; a malformed file names itself and what is wrong."""
    try:
        doc = json.loads(data)
        limits = StewardLimits.model_validate({
            p.value: {
                "max_change": Ratio.parse({"bps": int(doc["limits"][p.value]["max_percent_change"])}),
                "min_delay": Duration(int(doc["limits"][p.value]["min_delay_seconds"])),
            }
            for p in StewardParameter
        })
        last = {
            (str(market), StewardParameter(parameter).value): _time(t)
            for market, params in doc["last_updates"].items()
            for parameter, t in params.items()
        }
        return StewardState(
            steward=to_checksum_address(doc["steward"]),
            chain_id=int(doc["chain_id"]),
            block=int(doc["block"]),
            block_time=_time(doc["block_time"]),
            limits=limits,
            last_updates=last,
            restricted=frozenset(str(m) for m in doc["restricted_markets"]),
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:  # pydantic's ValidationError is a ValueError
        raise BundleError(f"{where} cannot be read ({type(exc).__name__}: {exc})", "the pinned steward state was modified") from None



def bundle_steward_limits(files: dict[str, bytes], policy: Policy, bundle: Any) -> StewardLimits | None:
    """The limits a bundle's steward calls were routed under: the pinned chain state's, else the policy's."""
    if INPUT_STEWARD in files:
        return parse_steward_state(files[INPUT_STEWARD], f"{bundle}/{INPUT_STEWARD}").limits
    return None if policy.routing is None else policy.routing.limits


__all__ = [
    "INPUT_STEWARD",
    "bundle_steward_limits",
    "parse_steward_state",
    "read_steward_state",
    "steward_state_bytes",
    "steward_state_from_rpc",
]
