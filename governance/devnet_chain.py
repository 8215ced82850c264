"""Talking to the devnet's anvil: raw JSON-RPC, transactions from unlocked accounts, named steps.

Every transaction the devnet sends carries a `step` ("deploy Pool implementation", "WETH:
configureReserveAsCollateral") so that a revert becomes a `DevnetError` naming the contract and the
step, with anvil's revert reason. Anvil's default accounts are unlocked, so transactions go through
`eth_sendTransactionSync` (EIP-7966; anvil returns the receipt once the block is mined): one round trip per
transaction. A reverted transaction is replayed with `eth_call` on the state before it for its reason.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from eth_abi import encode as abi_encode
from eth_utils import collapse_if_tuple, to_checksum_address
from web3 import Web3
from web3.contract import Contract

from governance.artifacts import Artifact
from risk.errors import StewardError

# A fixed, generous gas limit rather than anvil's estimate: the estimate runs on a pending block
# whose timestamp can differ from the mined one, and Aave's interest accrual costs more gas in a new
# second, so estimated transactions sometimes ran out of gas. Only gas used is paid; the limit stays
# under EIP-7825's per-transaction cap (2**24).
TX_GAS_LIMIT = 15_000_000


class DevnetError(StewardError):
    """The devnet cannot start, is not running, or a deployment step reverted."""


class Chain:
    """A web3 connection to one anvil, with checked transactions and deployments."""

    def __init__(self, rpc_url: str, *, timeout_s: float = 30.0) -> None:
        self.rpc_url = rpc_url
        self.w3 = Web3(Web3.HTTPProvider(rpc_url, request_kwargs={"timeout": timeout_s}))

    def rpc(self, method: str, params: Sequence[Any], *, step: str = "") -> Any:
        try:
            response = self.w3.provider.make_request(method, list(params))  # type: ignore[arg-type]
        except OSError as e:
            raise DevnetError(
                f"{step or method}: the devnet at {self.rpc_url} does not answer ({e})",
                "start it with `steward devnet up`",
            ) from None
        if "error" in response:
            error = response["error"]
            message = error.get("message", str(error)) if isinstance(error, Mapping) else str(error)
            raise DevnetError(f"{step or method} failed: {message}", "the devnet state is not what this step expects")
        return response["result"]

    def contract(self, address: str, artifact: Artifact) -> Contract:
        return self.w3.eth.contract(address=to_checksum_address(address), abi=list(artifact.abi))

    def send(self, step: str, sender: str, to: str | None, data: str, *, value: int = 0) -> Mapping[str, Any]:
        """Send one transaction from an unlocked account and return its (successful) receipt."""
        tx: dict[str, Any] = {"from": sender, "data": data, "value": hex(value), "gas": hex(TX_GAS_LIMIT)}
        if to is not None:
            tx["to"] = to
        # anvil ≥ 1.3 answers eth_sendTransactionSync with the receipt once the block is mined.
        receipt = self.rpc("eth_sendTransactionSync", [tx], step=step)
        if receipt is None:
            raise DevnetError(f"{step}: the transaction was not mined", "anvil must run with automine (the default)")
        tx_hash = receipt["transactionHash"]
        if int(receipt["status"], 16) != 1:
            raise DevnetError(
                f"{step}: transaction {tx_hash} reverted ({self._revert_reason(tx, int(receipt['blockNumber'], 16))})",
                "the revert reason is the contract's error (Aave: a code in Errors.sol)",
            )
        return receipt

    def _revert_reason(self, tx: Mapping[str, Any], block: int) -> str:
        """Replay a mined, reverted transaction on the state before its block to read why."""
        try:
            response = self.w3.provider.make_request("eth_call", [dict(tx), hex(block - 1)])  # type: ignore[arg-type]
        except OSError:
            return "reason unavailable"
        error = response.get("error")
        if isinstance(error, Mapping):
            return str(error.get("message", error))
        return "no revert reason on replay"

    def transact(self, step: str, sender: str, contract: Contract, function: str, *args: Any) -> Mapping[str, Any]:
        data = contract.encode_abi(function, args=list(args))
        return self.send(step, sender, contract.address, data)

    def deploy(
        self,
        step: str,
        sender: str,
        artifact: Artifact,
        args: Sequence[Any] = (),
        *,
        libraries: Mapping[str, str] | None = None,
    ) -> str:
        """Deploy `artifact` (linking `libraries`) with constructor `args`; return its address."""
        code = artifact.link(libraries or {}) if artifact.libraries else artifact.bytecode
        constructor = next((e for e in artifact.abi if e.get("type") == "constructor"), None)
        types = [collapse_if_tuple(dict(i)) for i in constructor["inputs"]] if constructor else []
        if len(types) != len(args):
            raise DevnetError(f"{step}: {artifact.name} takes {len(types)} constructor arguments, got {len(args)}", "")
        data = code + abi_encode(types, list(args)).hex()
        receipt = self.send(f"{step} ({artifact.name})", sender, None, data)
        address = receipt.get("contractAddress")
        if not address:
            raise DevnetError(f"{step}: deploying {artifact.name} created no contract", "")
        return to_checksum_address(address)

    def block_number(self) -> int:
        return int(self.rpc("eth_blockNumber", []), 16)

    def chain_id(self) -> int:
        return int(self.rpc("eth_chainId", []), 16)

    def has_code(self, address: str) -> bool:
        return self.rpc("eth_getCode", [address, "latest"]) not in ("0x", "0x0", None)
