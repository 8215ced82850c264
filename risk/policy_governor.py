"""Policy section `governor:`: the DAO's OpenZeppelin Governor that can take the bundle's actions as a proposal.

With this section an epoch also writes `governor.json` (targets, values, calldatas, description,
proposalId) and `steward propose BUNDLE --governor` submits it to `address`. The actions are the
same calls as the Safe batch; they run from the governor's executor — the `timelock`, when the
governor is timelocked, which must then hold the venue's risk-admin role.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from risk.fields import AddressField

# Bravo-style governors (Compound's GovernorBravo, Tally's defaults) refuse more actions than this.
BRAVO_MAX_ACTIONS = 10


class _Model(BaseModel):
    # Same settings as risk.policy.Model; this module cannot import risk.policy (it is imported by it).
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


class GovernorPolicy(_Model):
    """The governor proposals go to, and how many actions one proposal may carry."""

    address: AddressField = Field(description="The Governor contract (OpenZeppelin Governor: propose/queue/execute).")
    timelock: AddressField | None = Field(
        default=None, description="Its TimelockController, the executor of proposals (it must hold the risk-admin role)."
    )
    max_actions: int = Field(
        default=BRAVO_MAX_ACTIONS,
        ge=1,
        le=1000,
        description="Most actions in one proposal; an epoch with more calls is refused (Bravo-style governors: 10).",
    )
