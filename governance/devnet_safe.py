"""Safe v1.4.1 on the devnet, deployed with safe-eth-py's own deployers.

safe-eth-py deploys Safe contracts through the Safe singleton factory (CREATE2, salt 0), whose
deployment transaction is pre-signed for chain id 1337; that is why the devnet's anvil runs with
`--chain-id 1337`. With the factory in place the singleton, proxy factory, fallback handler, simulate
accessor and MultiSendCallOnly land at deterministic addresses; `canonical` records, per contract,
whether that address is the one Safe publishes for v1.4.1 (safe-eth-py's `safe_deployments`), which
is what signers will see in Safe{Wallet}.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from eth_account.signers.local import LocalAccount
from eth_typing import URI
from safe_eth.eth import EthereumClient
from safe_eth.eth.contracts import (
    get_multi_send_call_only_V1_4_1_contract,
    get_safe_V1_4_1_contract,
    load_contract_interface,
)
from safe_eth.eth.exceptions import ContractAlreadyDeployed
from safe_eth.eth.utils import get_empty_tx_params
from safe_eth.safe import Safe
from safe_eth.safe.compatibility_fallback_handler import (
    CompatibilityFallbackHandlerV141,
)
from safe_eth.safe.proxy_factory import ProxyFactoryV141
from safe_eth.safe.safe import SafeV141
from safe_eth.safe.safe_deployments import default_safe_deployments

from governance.devnet_chain import DevnetError

SAFE_VERSION = "1.4.1"
ZERO = "0x0000000000000000000000000000000000000000"
# A fixed CREATE2 salt makes the Safe's address the same on every `devnet up`.
SAFE_SALT_NONCE = 1337
_CHAIN_HINT = "anvil must run with --chain-id 1337 (the factory's transaction is signed for it)"


@dataclass(frozen=True, slots=True)
class SafeDeployment:
    safe: str
    singleton: str
    singleton_name: str  # "SafeL2" with safe-eth-py's bytecode
    proxy_factory: str
    fallback_handler: str
    simulate_tx_accessor: str
    multisend_call_only: str
    # contract name (as in safe-deployments) -> deployed at Safe's published v1.4.1 address?
    canonical: dict[str, bool]


def _deploy_singleton_factory(client: EthereumClient, deployer: LocalAccount) -> None:
    """Send the factory's pre-signed chain-1337 transaction, using safe-eth-py's own helper.

    safe-eth-py keeps that transaction in its test mixin (which imports pytest), so the devnet
    needs the dev dependencies installed.
    """
    if client.get_singleton_factory_address():
        return
    try:
        from safe_eth.safe.tests.safe_test_case import SafeTestCaseMixin
    except ImportError as e:
        raise DevnetError(
            f"safe-eth-py's singleton-factory deployer cannot be imported ({e})",
            "install the dev dependencies: `make install` (pip install -e '.[dev]')",
        ) from None

    class _Holder:  # the three attributes the helper reads from its test class
        ethereum_client = client
        w3 = client.w3
        ethereum_test_account = deployer

    try:
        SafeTestCaseMixin.deploy_safe_singleton_factory.__func__(_Holder)  # type: ignore[attr-defined]
    except (AssertionError, ValueError) as e:
        raise DevnetError(f"Safe singleton factory: deployment failed ({e})", _CHAIN_HINT) from None
    client.clear_cache()
    if not client.get_singleton_factory_address():
        raise DevnetError("Safe singleton factory: no code at its address after deployment", _CHAIN_HINT)


def _deployed(step: str, deploy: Any) -> str:
    try:
        return str(deploy().contract_address)
    except ContractAlreadyDeployed as e:
        return str(e.address)
    except (AssertionError, ValueError) as e:
        raise DevnetError(f"Safe: deploying {step} failed ({e!r})", "see anvil.log in the devnet's state dir") from None


def deploy_safe(rpc_url: str, deployer: LocalAccount, owners: Sequence[str], threshold: int) -> SafeDeployment:
    """Deploy the Safe v1.4.1 contracts and one Safe proxy owned by `owners` with `threshold`."""
    client = EthereumClient(URI(rpc_url))
    _deploy_singleton_factory(client, deployer)
    w3 = client.w3

    singleton = _deployed("Safe singleton", lambda: SafeV141.deploy_contract(client, deployer))
    factory = _deployed("SafeProxyFactory", lambda: ProxyFactoryV141.deploy_contract(client, deployer))
    handler = _deployed(
        "CompatibilityFallbackHandler", lambda: CompatibilityFallbackHandlerV141.deploy_contract(client, deployer)
    )
    accessor = _deployed("SimulateTxAccessor", lambda: SafeV141.deploy_simulate_tx_accessor(client, deployer))
    multisend_tx = get_multi_send_call_only_V1_4_1_contract(w3).constructor().build_transaction(get_empty_tx_params())
    multisend = _deployed(
        "MultiSendCallOnly", lambda: client.deploy_and_initialize_contract(deployer, multisend_tx["data"])
    )

    initializer = (
        get_safe_V1_4_1_contract(w3, singleton)
        .functions.setup(list(owners), threshold, ZERO, b"", handler, ZERO, 0, ZERO)
        .build_transaction(get_empty_tx_params())["data"]
    )
    safe_address = _deployed(
        "Safe proxy",
        lambda: ProxyFactoryV141(factory, client).deploy_proxy_contract_with_nonce(
            deployer, singleton, initializer=bytes.fromhex(initializer[2:]), salt_nonce=SAFE_SALT_NONCE
        ),
    )

    safe = Safe(safe_address, client)  # type: ignore[abstract]
    version = safe.retrieve_version()
    got_owners = safe.retrieve_owners()
    got_threshold = safe.retrieve_threshold()
    if version != SAFE_VERSION or sorted(got_owners) != sorted(owners) or got_threshold != threshold:
        raise DevnetError(
            f"Safe {safe_address}: version {version}, {len(got_owners)} owners, threshold {got_threshold} "
            f"after setup (wanted {SAFE_VERSION}, {len(owners)}, {threshold})",
            "the Safe proxy was not initialised as requested",
        )

    published = default_safe_deployments[SAFE_VERSION]
    # safe-eth-py's "Safe v1.4.1" bytecode is the SafeL2 variant (it also emits per-tx events).
    singleton_name = load_contract_interface("Safe_V1_4_1.json").get("contractName", "Safe")
    deployed = {
        singleton_name: singleton,
        "SafeProxyFactory": factory,
        "CompatibilityFallbackHandler": handler,
        "SimulateTxAccessor": accessor,
        "MultiSendCallOnly": multisend,
    }
    # The first address listed is the one deployed through the singleton factory on every chain.
    canonical = {name: address == published.get(name, [None])[0] for name, address in deployed.items()}
    return SafeDeployment(
        safe=safe_address,
        singleton=singleton,
        singleton_name=singleton_name,
        proxy_factory=factory,
        fallback_handler=handler,
        simulate_tx_accessor=accessor,
        multisend_call_only=multisend,
        canonical=canonical,
    )
