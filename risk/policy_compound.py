"""Policy section `compound:`: the Compound v3 (Comet) contracts a `compound-v3` lending venue's proposal calls.

A Comet market is changed in two steps, by two contracts: the Configurator stores each asset's new
factors and caps (`configurator`, its proxy), then `CometProxyAdmin.deployAndUpgradeTo(configurator,
comet)` (`proxy_admin`) deploys a Comet built from them and points the Comet proxy (`comet`) at it.
The Safe that sends both is `venue.addresses.safe`, as for every venue.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field

from risk.errors import PolicyError
from risk.fields import AddressField

if TYPE_CHECKING:  # risk.policy imports this module
    from risk.policy import Policy


class CompoundSection(BaseModel):
    # Same settings as risk.policy.Model; this module cannot import risk.policy (it is imported by it).
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)

    configurator: AddressField = Field(description="Configurator proxy: stores the asset configurations (updateAsset* setters).")
    comet: AddressField = Field(description="Comet proxy: the market whose collateral assets the policy lists.")
    proxy_admin: AddressField = Field(description="CometProxyAdmin: deployAndUpgradeTo makes the stored configuration live.")


def compound_section(policy: Policy) -> CompoundSection:
    """The policy's `compound:` section, or a PolicyError saying how to write it."""
    section = getattr(policy, "compound", None)
    if section is None:
        raise PolicyError(
            f"venue {policy.venue.name} is compound-v3 but the policy has no compound: section",
            "add compound: {configurator: 0x..., comet: 0x..., proxy_admin: 0x...} (see policies/compound-v3-example.yaml)",
        )
    return section
