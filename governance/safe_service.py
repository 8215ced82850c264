"""Propose a SafeTx and its owners' signatures to the Safe Transaction Service, so Safe{Wallet} shows it.

The service's contract (safe-global/safe-transaction-service, `history/urls_v2.py`, `views_v2.py`,
`serializers.py`; camelCase JSON):

* `GET  /api/v1/safes/{address}/` → {address, nonce (string), threshold, owners, ...}; 404 unknown Safe.
* `GET  /api/v2/safes/{address}/multisig-transactions/?nonce__gte=N&executed=false` → paginated
  {count, next, previous, results: [{safeTxHash, nonce (string), ...}]} (only trusted ones unless
  trusted=false).
* `POST /api/v2/safes/{address}/multisig-transactions/` with {to, value, data, operation, safeTxGas,
  baseGas, gasPrice, gasToken, refundReceiver, nonce, contractTransactionHash, sender, signature,
  origin} → 201; 422 with field errors when the service's recomputed safeTxHash differs, a signer is
  not an owner, the sender is not a signer, the nonce was executed, ... Idempotent per safeTxHash
  (get_or_create), which is what makes a retry after a timeout safe.
* `GET  /api/v2/multisig-transactions/{safeTxHash}/` → the stored transaction and its confirmations.

Nothing is posted until every check passes: signatures recover to their signers, the signers and
the sender are owners, the nonce is not used, and no other transaction is queued at that nonce
(a conflict names the queued safeTxHash). After the POST the stored transaction is read back and
its hash recomputed from the returned fields. Timeouts, connection failures and 5xx answers are
retried with exponential backoff; any 4xx is final and reported with the service's own message.

The API key (api.safe.global requires one) is read from an environment variable and sent as
`Authorization: Bearer …`; it never appears in a message, an exception or a log.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests
from eth_utils import is_address, to_checksum_address

from governance.chain import redact_url
from governance.safe import (
    SafeTx,
    Signature,
    SignatureError,
    pack_signatures,
    safe_tx_hash,
)
from governance.safe_tx import SafeTxError
from risk.errors import StewardError

DEFAULT_TIMEOUT_S = 10.0
DEFAULT_RETRIES = 3
DEFAULT_BACKOFF_S = 0.5
ORIGIN = "steward"
_MAX_PAGES = 20
_QUEUE_PAGE = 100  # the service's DefaultPagination max_limit is 200


class SafeServiceError(StewardError):
    """The service refused, failed, or answered something inconsistent; says whether anything was posted."""


@dataclass(frozen=True, slots=True)
class SafeInfo:
    address: str
    nonce: int
    threshold: int
    owners: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class QueuedTx:
    safe_tx_hash: str
    nonce: int
    proposer: str | None


@dataclass(frozen=True, slots=True)
class ProposeOutcome:
    safe_tx_hash: str
    nonce: int
    service: str  # scheme://host only
    already_queued: bool
    confirmations: tuple[str, ...]
    warnings: tuple[str, ...]


class _Service:
    """HTTP to one service: retries transient failures only; never exposes the API key."""

    def __init__(self, base_url: str, api_key: str | None, *, timeout_s: float, retries: int, backoff_s: float,
                 sleep: Callable[[float], None]) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
            raise SafeServiceError(f"Safe service URL {redact_url(base_url)} is not an http(s) base URL",
                                   "pass e.g. --safe-service https://api.safe.global/tx-service/eth")
        if retries < 1 or timeout_s <= 0:
            raise SafeServiceError(f"retries {retries} and timeout {timeout_s} s must be positive", "use the defaults")
        self.base = base_url.rstrip("/")
        self.origin = f"{parts.scheme}://{parts.netloc}"
        self.endpoint = redact_url(base_url)
        self._key = api_key
        self._timeout = timeout_s
        self._retries = retries
        self._backoff = backoff_s
        self._sleep = sleep
        self._session = requests.Session()
        self._session.trust_env = False  # no proxy from the environment sees the key

    def _headers(self, body: bool) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        if body:
            headers["Content-Type"] = "application/json"
        if self._key:
            headers["Authorization"] = f"Bearer {self._key}"
        return headers

    def request(self, method: str, url: str, *, params: dict[str, str] | None = None,
                body: dict[str, Any] | None = None) -> tuple[int, Any]:
        """(status, parsed JSON or text) of the first answer below 500; transient failures are retried."""
        what = f"{method} {urlsplit(url).path}"
        last = "no answer"
        for attempt in range(self._retries):
            if attempt:
                self._sleep(self._backoff * 2 ** (attempt - 1))
            try:
                response = self._session.request(
                    method, url, params=params, headers=self._headers(body is not None),
                    data=None if body is None else json.dumps(body), timeout=self._timeout, allow_redirects=False,
                )
            except requests.Timeout:
                last = f"timed out after {self._timeout:g} s"
                continue
            except requests.ConnectionError:
                last = "connection failed"
                continue
            if response.status_code >= 500:
                last = f"HTTP {response.status_code}"
                continue
            return response.status_code, _parse(response)
        raise SafeServiceError(
            f"Safe service {self.endpoint}: {what} failed after {self._retries} tr{'y' if self._retries == 1 else 'ies'} ({last})",
            "the service is down or slow; try again later",
        )


def _parse(response: requests.Response) -> Any:
    if not response.content:
        return None
    try:
        return response.json()
    except ValueError:
        return response.text[:300]


def service_message(body: Any) -> str:
    """The service's error in one line: DRF field errors ('field: msg'), nonFieldErrors, detail or message."""
    if isinstance(body, dict):
        parts = []
        for key in sorted(body):
            value = body[key]
            msgs = value if isinstance(value, list) else [value]
            text = "; ".join(str(m) for m in msgs)
            parts.append(text if key in ("nonFieldErrors", "detail", "message") else f"{key}: {text}")
        return " | ".join(parts) or "(empty error)"
    if isinstance(body, list):
        return "; ".join(str(m) for m in body)
    return str(body or "(no message)")


def _refused(service: _Service, what: str, status: int, body: Any, *, posted: bool) -> SafeServiceError:
    hint = {
        401: "set the API key in the environment variable given by --api-key-env (default SAFE_API_KEY)",
        403: "the API key is not allowed for this service",
        429: "rate limited: wait and try again",
    }.get(status, "nothing was posted" if not posted else "check the transaction in Safe{Wallet}")
    return SafeServiceError(f"Safe service {service.endpoint} refused {what}: HTTP {status}: {service_message(body)}", hint)


def _safe_path(service: _Service, safe: str, version: str, tail: str = "") -> str:
    return f"{service.base}/api/{version}/safes/{safe}/{tail}"


def _int(value: Any, what: str) -> int:
    problem = SafeServiceError(f"the service answered {what} = {value!r}, not an integer", "is the URL a Safe Transaction Service?")
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise problem
    try:
        return int(value)
    except ValueError:
        raise problem from None


def fetch_safe_info(service: _Service, safe: str) -> SafeInfo:
    status, body = service.request("GET", _safe_path(service, safe, "v1"))
    if status == 404:
        raise SafeServiceError(f"Safe {safe} is not known to the service at {service.endpoint}",
                               "is the service the one for the Safe's chain, and the Safe indexed? nothing was posted")
    if status != 200 or not isinstance(body, dict):
        raise _refused(service, "the Safe lookup", status, body, posted=False)
    owners = body.get("owners")
    if not isinstance(owners, list) or not all(isinstance(o, str) and is_address(o) for o in owners):
        raise SafeServiceError(f"the service answered owners = {owners!r}", "is the URL a Safe Transaction Service?")
    return SafeInfo(address=safe, nonce=_int(body.get("nonce"), "nonce"), threshold=_int(body.get("threshold"), "threshold"),
                    owners=tuple(to_checksum_address(o) for o in owners))


def fetch_queue(service: _Service, safe: str, from_nonce: int) -> list[QueuedTx]:
    """Every not-executed transaction at nonce ≥ `from_nonce`, trusted or not, following pagination."""
    url: str | None = _safe_path(service, safe, "v2", "multisig-transactions/")
    params: dict[str, str] | None = {"nonce__gte": str(from_nonce), "executed": "false", "trusted": "false",
                                     "limit": str(_QUEUE_PAGE)}
    out: list[QueuedTx] = []
    for _ in range(_MAX_PAGES):
        if url is None:
            return out
        status, body = service.request("GET", url, params=params)
        if status != 200 or not isinstance(body, dict) or not isinstance(body.get("results"), list):
            raise _refused(service, "the queue lookup", status, body, posted=False)
        for tx in body["results"]:
            out.append(QueuedTx(safe_tx_hash=str(tx.get("safeTxHash", "")).lower(), nonce=_int(tx.get("nonce"), "nonce"),
                                proposer=tx.get("proposer")))
        url, params = body.get("next"), None  # `next` carries its own query
        if url is not None and not str(url).startswith(service.origin + "/"):
            raise SafeServiceError(f"the service's next page points to another host ({redact_url(str(url))})",
                                   "refusing to send the API key elsewhere; nothing was posted")
    raise SafeServiceError(f"more than {_MAX_PAGES * _QUEUE_PAGE} queued transactions", "clean the Safe's queue first; nothing was posted")


def request_body(tx: SafeTx, signatures: Sequence[Signature], *, sender: str, origin: str = ORIGIN) -> dict[str, Any]:
    """The POST body, as SafeMultisigTransactionSerializer reads it (camelCase; uint256 values as decimal strings)."""
    return {
        "to": tx.to,
        "value": str(tx.value),
        "data": ("0x" + tx.data.hex()) if tx.data else None,
        "operation": tx.operation,
        "safeTxGas": str(tx.safe_tx_gas),
        "baseGas": str(tx.base_gas),
        "gasPrice": str(tx.gas_price),
        "gasToken": tx.gas_token,
        "refundReceiver": tx.refund_receiver,
        "nonce": tx.nonce,
        "contractTransactionHash": "0x" + safe_tx_hash(tx).hex(),
        "sender": to_checksum_address(sender),
        "signature": "0x" + pack_signatures(signatures, tx=tx).hex(),
        "origin": origin,
    }


def _stored_tx(body: dict[str, Any], chain_id: int) -> SafeTx:
    try:
        return SafeTx(
            safe_address=body["safe"], chain_id=chain_id, to=body["to"], value=int(body["value"]),
            data=body.get("data") or "0x", operation=int(body["operation"]), safe_tx_gas=int(body["safeTxGas"]),
            base_gas=int(body["baseGas"]), gas_price=int(body["gasPrice"]),
            gas_token=body.get("gasToken") or "0x" + "00" * 20,
            refund_receiver=body.get("refundReceiver") or "0x" + "00" * 20, nonce=int(body["nonce"]),
        )
    except (KeyError, TypeError, ValueError, SafeTxError) as exc:
        raise SafeServiceError(f"the stored transaction does not parse ({exc})",
                               "it was posted; compare it in Safe{Wallet} before anyone signs") from None


def _check_locally(tx: SafeTx, signatures: Sequence[Signature], sender: str) -> str:
    if not isinstance(sender, str) or not is_address(sender):
        raise SafeServiceError(f"sender {sender!r} is not an address", "pass --sender with an owner's address")
    sender = to_checksum_address(sender)
    try:
        pack_signatures(signatures, tx=tx)  # recovers each one: it must come from the signer it names
    except SignatureError as exc:
        raise SafeServiceError(f"signatures: {exc.cause}", f"{exc.hint}; nothing was posted") from None
    signers = {s.signer for s in signatures}
    if sender not in signers:
        raise SafeServiceError(f"sender {sender} has not signed this transaction (signers: {', '.join(sorted(signers))})",
                               "the service requires the sender's own signature: pass --sender as one of the signers")
    return sender


def propose_to_service(
    base_url: str,
    safe_tx: SafeTx,
    signatures: Sequence[Signature],
    *,
    sender: str,
    api_key_env: str = "SAFE_API_KEY",
    timeout: float = DEFAULT_TIMEOUT_S,
    retries: int = DEFAULT_RETRIES,
    backoff_s: float = DEFAULT_BACKOFF_S,
    origin: str = ORIGIN,
    sleep: Callable[[float], None] = time.sleep,
) -> ProposeOutcome:
    """Check everything, post the SafeTx with the owners' signatures once, and read it back."""
    sender = _check_locally(safe_tx, signatures, sender)
    service = _Service(base_url, os.environ.get(api_key_env) or None, timeout_s=timeout, retries=retries,
                       backoff_s=backoff_s, sleep=sleep)
    ours = "0x" + safe_tx_hash(safe_tx).hex()
    safe = safe_tx.safe_address
    info = fetch_safe_info(service, safe)
    strangers = sorted({s.signer for s in signatures} - set(info.owners))
    if strangers:
        raise SafeServiceError(f"{', '.join(strangers)} not an owner of Safe {safe} (owners: {', '.join(info.owners)})",
                               "drop those signatures; nothing was posted")
    if safe_tx.nonce < info.nonce:
        raise SafeServiceError(f"the SafeTx uses nonce {safe_tx.nonce}, but Safe {safe} is already at nonce {info.nonce}",
                               "that nonce was executed; rebuild the bundle from a fresh snapshot. Nothing was posted")
    queue = fetch_queue(service, safe, info.nonce)
    conflicts = sorted({q.safe_tx_hash for q in queue if q.nonce == safe_tx.nonce and q.safe_tx_hash != ours})
    if conflicts:
        raise SafeServiceError(
            f"nonce {safe_tx.nonce} of Safe {safe} is already taken by queued transaction(s) {', '.join(conflicts)}",
            "only one can execute: reject or execute the queued one first, or rebuild with another nonce. Nothing was posted",
        )
    warnings = []
    before = sorted({q.nonce for q in queue if q.nonce < safe_tx.nonce})
    if safe_tx.nonce > info.nonce:
        gap = sorted(set(range(info.nonce, safe_tx.nonce)) - set(before))
        warnings.append(f"the Safe is at nonce {info.nonce}; nonces {before or 'none'} are queued before this one"
                        + (f", {gap} are missing: this transaction cannot execute until they do" if gap else ""))
    already = any(q.safe_tx_hash == ours for q in queue)
    if len(signatures) < info.threshold:
        warnings.append(f"{len(signatures)} of {info.threshold} required signatures: other owners sign in Safe{{Wallet}}")
    body = request_body(safe_tx, signatures, sender=sender, origin=origin)
    try:
        status, answer = service.request("POST", _safe_path(service, safe, "v2", "multisig-transactions/"), body=body)
    except SafeServiceError as exc:
        raise SafeServiceError(
            f"{exc.cause}; the proposal may or may not have been recorded",
            f"proposing again is safe (the service keys it by safeTxHash {ours})",
        ) from None
    if status not in (200, 201):
        raise _refused(service, "the proposal", status, answer, posted=False)
    status, stored = service.request("GET", f"{service.base}/api/v2/multisig-transactions/{ours}/")
    if status != 200 or not isinstance(stored, dict):
        raise _refused(service, f"reading back {ours} after posting it", status, stored, posted=True)
    returned = str(stored.get("safeTxHash", "")).lower()
    recomputed = "0x" + safe_tx_hash(_stored_tx(stored, safe_tx.chain_id)).hex()
    if returned != ours or recomputed != ours:
        raise SafeServiceError(
            f"the service stores safeTxHash {returned or '(none)'} (its fields hash to {recomputed}), ours is {ours}",
            "it was posted but differs from the bundle: do not sign it in Safe{Wallet}",
        )
    confirmations = tuple(sorted(to_checksum_address(c["owner"]) for c in stored.get("confirmations") or []
                                 if isinstance(c, dict) and is_address(str(c.get("owner", "")))))
    missing = sorted({s.signer for s in signatures} - set(confirmations))
    if missing:
        warnings.append(f"the service lists no confirmation from {', '.join(missing)}")
    return ProposeOutcome(safe_tx_hash=ours, nonce=safe_tx.nonce, service=service.endpoint, already_queued=already,
                          confirmations=confirmations, warnings=tuple(warnings))
