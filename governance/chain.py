"""JSON-RPC reads pinned to one block, with timeouts, retries on connection errors and clear failures.

`connect` opens a `ChainReader` and checks the node's chain id against the one expected (the
policy's or the bundle's) before anything else is asked. Every read names its block explicitly:
an epoch reads all of its markets at one block, so the snapshot is one consistent state.

Only connection failures (refused, reset, timed out) are retried, with exponential backoff; an
answer from the node — a JSON-RPC error, a revert, an HTTP error status — is final. Writes
(`send_raw_transaction`) are never retried. Messages show the endpoint without its path or query,
where providers put API keys.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests
from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode
from eth_abi.exceptions import DecodingError
from eth_utils import function_signature_to_4byte_selector, keccak, to_checksum_address
from web3 import HTTPProvider

from risk.errors import StewardError

DEFAULT_TIMEOUT_S = 10.0
DEFAULT_RETRIES = 3
DEFAULT_BACKOFF_S = 0.25
_ERROR_STRING = bytes.fromhex("08c379a0")  # Error(string)
_PANIC = bytes.fromhex("4e487b71")  # Panic(uint256)


class ChainError(StewardError):
    """The chain cannot be reached, is not the expected one, or answered something unusable."""


class RpcError(ChainError):
    """The node answered a request with a JSON-RPC error (not retried)."""

    def __init__(self, cause: str, hint: str = "", *, code: int | None = None, data: str | None = None) -> None:
        super().__init__(cause, hint)
        self.code = code
        self.data = data


class CallReverted(RpcError):
    """An eth_call (or a gas estimate) reverted; `reason` is the decoded revert reason."""

    def __init__(self, cause: str, hint: str = "", *, reason: str, code: int | None = None, data: str | None = None) -> None:
        super().__init__(cause, hint, code=code, data=data)
        self.reason = reason


def redact_url(url: str) -> str:
    """scheme://host[:port], with '/…' when a path or query was dropped (API keys live there)."""
    parts = urlsplit(url)
    if not parts.scheme or not parts.hostname:
        return "<invalid URL>"
    host = parts.hostname if parts.port is None else f"{parts.hostname}:{parts.port}"
    dropped = (parts.path not in ("", "/")) or bool(parts.query) or bool(parts.username)
    return f"{parts.scheme}://{host}" + ("/…" if dropped else "")


@dataclass(frozen=True, slots=True)
class ViewFn:
    """A read-only contract function: `signature` like "getReserveCaps(address)", and its output types."""

    signature: str
    outputs: tuple[str, ...]

    @property
    def inputs(self) -> list[str]:
        inner = self.signature[self.signature.index("(") + 1 : -1]
        return [t for t in inner.split(",") if t]

    def encode(self, *args: Any) -> bytes:
        return function_signature_to_4byte_selector(self.signature) + abi_encode(self.inputs, list(args))

    def decode(self, raw: bytes, where: str) -> tuple[Any, ...]:
        try:
            return tuple(abi_decode(list(self.outputs), raw))
        except (DecodingError, UnicodeDecodeError, OverflowError) as exc:
            raise ChainError(
                f"{where}: {self.signature} returned {len(raw)} bytes that do not decode as ({','.join(self.outputs)}) ({exc})",
                "the address is probably not the contract the policy says it is",
            ) from None


def revert_reason(data: str | None, message: str) -> str:
    """The readable reason of a revert: Error(string), Panic(code), a custom error selector, or the node's message."""
    raw = b""
    if isinstance(data, str) and data.startswith("0x"):
        try:
            raw = bytes.fromhex(data[2:])
        except ValueError:
            raw = b""
    if raw[:4] == _ERROR_STRING:
        try:
            (text,) = abi_decode(["string"], raw[4:])
        except (DecodingError, UnicodeDecodeError):
            return f"malformed Error(string) ({message})"
        return str(text)
    if raw[:4] == _PANIC and len(raw) >= 36:
        return f"panic 0x{int.from_bytes(raw[4:36], 'big'):02x}"
    if len(raw) >= 4:
        return f"custom error 0x{raw[:4].hex()}"
    return message.removeprefix("execution reverted: ")


def _is_revert(error: Mapping[str, Any]) -> bool:
    message = str(error.get("message", "")).lower()
    return error.get("code") == 3 or "revert" in message


@dataclass(frozen=True, slots=True)
class SafeState:
    """What execution depends on: the Safe's nonce, owners and threshold at one block."""

    nonce: int
    owners: tuple[str, ...]
    threshold: int


SAFE_NONCE = ViewFn("nonce()", ("uint256",))
SAFE_OWNERS = ViewFn("getOwners()", ("address[]",))
SAFE_THRESHOLD = ViewFn("getThreshold()", ("uint256",))


class ChainReader:
    """A connection to one node of a known chain. Build it with `connect`."""

    def __init__(
        self,
        rpc_url: str,
        *,
        timeout_s: float,
        retries: int,
        backoff_s: float,
        sleep: Callable[[float], None],
    ) -> None:
        self.endpoint = redact_url(rpc_url)
        self.timeout_s = timeout_s
        self.retries = retries
        self.backoff_s = backoff_s
        self._sleep = sleep
        # web3's own retry loop is off: ours retries connection errors only, with our backoff.
        self._provider = HTTPProvider(rpc_url, request_kwargs={"timeout": timeout_s}, exception_retry_configuration=None)
        self.chain_id = 0  # set by connect() once checked

    # --- transport ---------------------------------------------------------------------------

    def request(self, method: str, params: Sequence[Any], *, retry: bool = True) -> Any:
        """One JSON-RPC request; connection errors are retried (when `retry`), node answers are final."""
        tries = self.retries if retry else 1
        last: Exception | None = None
        for attempt in range(tries):
            if attempt:
                self._sleep(self.backoff_s * 2 ** (attempt - 1))
            try:
                response = self._provider.make_request(method, list(params))  # type: ignore[arg-type]
            except (requests.ConnectionError, requests.Timeout) as exc:
                last = exc
                continue
            except requests.HTTPError as exc:
                status = exc.response.status_code if exc.response is not None else "?"
                raise ChainError(
                    f"RPC {self.endpoint} answered HTTP {status} to {method}",
                    "check the RPC URL and its API key (401/403), or the provider's rate limit (429)",
                ) from None
            except ValueError as exc:  # a body that is not JSON-RPC
                raise ChainError(f"RPC {self.endpoint} answered {method} with something that is not JSON-RPC ({exc})",
                                 "is the URL a JSON-RPC endpoint?") from None
            return self._result(method, response)
        reason = _short_reason(last) if last is not None else "no answer"
        raise ChainError(
            f"RPC {self.endpoint} unreachable after {tries} tr{'y' if tries == 1 else 'ies'}: {reason}",
            "check that the node runs and the URL is right (for the devnet: `steward devnet up`)",
        )

    def _result(self, method: str, response: Mapping[str, Any]) -> Any:
        error = response.get("error")
        if error is None:
            if "result" not in response:
                raise ChainError(f"RPC {self.endpoint} answered {method} without a result", "is it a JSON-RPC endpoint?")
            return response["result"]
        if not isinstance(error, Mapping):
            raise RpcError(f"{method} failed on {self.endpoint}: {error}")
        message = str(error.get("message", error))
        data = error.get("data")
        data = data if isinstance(data, str) else (data.get("data") if isinstance(data, Mapping) else None)
        code = error.get("code") if isinstance(error.get("code"), int) else None
        if method in ("eth_call", "eth_estimateGas") and _is_revert(error):
            reason = revert_reason(data, message)
            raise CallReverted(f"{method} reverted: {reason}", reason=reason, code=code, data=data)
        raise RpcError(f"{method} failed on {self.endpoint}: {message}", _hint_for(message), code=code, data=data)

    # --- reads, each at an explicit block -------------------------------------------------------

    def node_chain_id(self) -> int:
        return int(self.request("eth_chainId", []), 16)

    def block_number(self) -> int:
        return int(self.request("eth_blockNumber", []), 16)

    def call(self, to: str, data: bytes, *, block: int | str, sender: str | None = None) -> bytes:
        tx: dict[str, Any] = {"to": to_checksum_address(to), "data": "0x" + data.hex()}
        if sender is not None:
            tx["from"] = to_checksum_address(sender)
        result = self.request("eth_call", [tx, _tag(block)])
        return bytes.fromhex(result[2:])

    def read(self, address: str, fn: ViewFn, *args: Any, block: int) -> tuple[Any, ...]:
        """Call a view function at `block` and decode its outputs."""
        where = f"{fn.signature.split('(')[0]} on {address} at block {block}"
        try:
            raw = self.call(address, fn.encode(*args), block=block)
        except CallReverted as exc:
            raise ChainError(f"{where} reverted ({exc.reason})", "is the address the contract the policy names?") from None
        if not raw:
            code = self.code(address, block=block)
            raise ChainError(
                f"{where} returned nothing" + ("" if code else f": there is no contract at {address}"),
                "check the address in the policy and the chain the RPC serves",
            )
        return fn.decode(raw, where)

    def code(self, address: str, *, block: int | str) -> bytes:
        result = self.request("eth_getCode", [to_checksum_address(address), _tag(block)])
        return bytes.fromhex(result[2:])

    def balance(self, address: str, *, block: int | str) -> int:
        return int(self.request("eth_getBalance", [to_checksum_address(address), _tag(block)]), 16)

    def transaction_count(self, address: str, *, block: int | str) -> int:
        return int(self.request("eth_getTransactionCount", [to_checksum_address(address), _tag(block)]), 16)

    def block(self, block: int | str) -> Mapping[str, Any]:
        found = self.request("eth_getBlockByNumber", [_tag(block), False])
        if found is None:
            raise ChainError(f"block {block} does not exist on chain {self.chain_id}", "pick a block at or below the head")
        return found

    def receipt(self, tx_hash: str) -> Mapping[str, Any] | None:
        return self.request("eth_getTransactionReceipt", [tx_hash])

    def logs(self, address: str, topics: Sequence[str | None], *, from_block: int, to_block: int) -> list[Mapping[str, Any]]:
        query = {"address": to_checksum_address(address), "topics": list(topics),
                 "fromBlock": hex(from_block), "toBlock": hex(to_block)}
        return list(self.request("eth_getLogs", [query]))

    def safe_state(self, safe: str, *, block: int) -> SafeState:
        (nonce,) = self.read(safe, SAFE_NONCE, block=block)
        (owners,) = self.read(safe, SAFE_OWNERS, block=block)
        (threshold,) = self.read(safe, SAFE_THRESHOLD, block=block)
        return SafeState(nonce=nonce, owners=tuple(to_checksum_address(o) for o in owners), threshold=threshold)

    # --- writes (never retried) ------------------------------------------------------------------

    def send_raw_transaction(self, raw: bytes) -> str:
        """Broadcast a signed transaction once; a lost answer is reported with the locally computed hash."""
        local_hash = "0x" + keccak(raw).hex()
        try:
            return str(self.request("eth_sendRawTransaction", ["0x" + raw.hex()], retry=False))
        except ChainError as exc:
            if isinstance(exc, RpcError):
                raise
            raise ChainError(
                f"{exc.cause}; transaction {local_hash} may or may not have been broadcast",
                "look the hash up before retrying; `steward reconcile` finds the execution if it happened",
            ) from None

    def wait_for_receipt(self, tx_hash: str, *, timeout_s: float, poll_s: float = 0.5) -> Mapping[str, Any]:
        deadline = time.monotonic() + timeout_s
        while True:
            found = self.receipt(tx_hash)
            if found is not None:
                return found
            if time.monotonic() > deadline:
                raise ChainError(
                    f"transaction {tx_hash} not mined within {timeout_s:.0f} s",
                    "it may still be pending; run `steward reconcile` once it is mined",
                )
            self._sleep(poll_s)


def _tag(block: int | str) -> str:
    if isinstance(block, bool) or not isinstance(block, (int, str)):
        raise ChainError(f"block {block!r} is not a block number", "pass an integer block")
    return hex(block) if isinstance(block, int) else block


def _short_reason(exc: Exception) -> str:
    if isinstance(exc, requests.Timeout):
        return "timed out"
    text = str(exc)
    for marker in ("Connection refused", "Name or service not known", "No route to host", "Connection reset",
                   "nodename nor servname", "Temporary failure in name resolution"):
        if marker in text:
            return marker.lower()
    return type(exc).__name__


def _hint_for(message: str) -> str:
    lower = message.lower()
    if "missing trie node" in lower or ("state" in lower and ("pruned" in lower or "not available" in lower)):
        return "the node has pruned that block's state: use an archive node or a more recent --block"
    if "header not found" in lower or "unknown block" in lower:
        return "the block does not exist on this node yet"
    return ""


def connect(
    rpc_url: str,
    *,
    expected_chain_id: int,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    retries: int = DEFAULT_RETRIES,
    backoff_s: float = DEFAULT_BACKOFF_S,
    expected_by: str = "the policy's venue",
    sleep: Callable[[float], None] = time.sleep,
) -> ChainReader:
    """A reader on `rpc_url`, refusing a node that is unreachable or serves another chain than expected."""
    parts = urlsplit(rpc_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ChainError(f"RPC URL {redact_url(rpc_url)!s} is not an http(s) URL", "pass e.g. --rpc http://127.0.0.1:8545")
    if retries < 1 or timeout_s <= 0:
        raise ChainError(f"retries {retries} and timeout {timeout_s} s must be positive", "use the defaults")
    reader = ChainReader(rpc_url, timeout_s=timeout_s, retries=retries, backoff_s=backoff_s, sleep=sleep)
    got = reader.node_chain_id()
    if got != expected_chain_id:
        raise ChainError(
            f"RPC {reader.endpoint} serves chain {got}, but {expected_by} is on chain {expected_chain_id}",
            f"point --rpc at a node of chain {expected_chain_id}",
        )
    reader.chain_id = got
    return reader


GAS_MARGIN = 1.25  # over eth_estimateGas: the Safe's and the Governor's own gas checks make estimates tight


def fee_fields(reader: ChainReader) -> dict[str, int]:
    """EIP-1559 fees when the chain has a base fee (2 × base + tip), else the legacy gas price."""
    head = reader.block("latest")
    base = head.get("baseFeePerGas")
    if base is None:
        return {"gasPrice": int(reader.request("eth_gasPrice", []), 16)}
    try:
        tip = int(reader.request("eth_maxPriorityFeePerGas", []), 16)
    except ChainError:
        tip = 10**9
    return {"maxFeePerGas": 2 * int(base, 16) + tip, "maxPriorityFeePerGas": tip}


def send_transaction(
    reader: ChainReader,
    private_key: bytes,
    to: str,
    data: bytes,
    *,
    what: str,
    error: type[StewardError],
    explain: Callable[[CallReverted], str],
    receipt_timeout_s: float,
    after_revert_hint: str,
) -> Mapping[str, Any]:
    """Estimate, check the sender can pay, sign, send once, wait for the receipt.

    Every refusal before the send raises `error` with "nothing was sent"; a transaction mined but
    reverted raises `error` with `after_revert_hint`. The key is only passed to the signer.
    """
    from eth_account import Account

    sender = Account.from_key(private_key).address
    tx: dict[str, Any] = {"from": sender, "to": to_checksum_address(to), "data": "0x" + data.hex()}
    try:
        estimate = int(reader.request("eth_estimateGas", [tx]), 16)
    except CallReverted as exc:
        raise error(f"{what}: gas estimation reverted: {explain(exc)}", "nothing was sent") from None
    tx.update(fee_fields(reader), gas=int(estimate * GAS_MARGIN), nonce=reader.transaction_count(sender, block="pending"),
              chainId=reader.chain_id, value=0)
    cost = tx["gas"] * tx.get("maxFeePerGas", tx.get("gasPrice", 0))
    if (balance := reader.balance(sender, block="latest")) < cost:
        raise error(f"{what}: sender {sender} holds {balance} wei, the transaction may cost up to {cost} wei",
                    "fund the sender or use another account; nothing was sent")
    raw = Account.sign_transaction(tx, private_key).raw_transaction
    tx_hash = reader.send_raw_transaction(bytes(raw))
    receipt = reader.wait_for_receipt(tx_hash, timeout_s=receipt_timeout_s)
    if int(receipt["status"], 16) != 1:
        raise error(f"{what}: transaction {tx_hash} was mined but reverted (block {int(receipt['blockNumber'], 16)})",
                    after_revert_hint)
    return receipt
