"""A local stand-in for the Safe Transaction Service: the four endpoints Steward uses, with the real
service's request and response shapes and its refusals (safe-global/safe-transaction-service v6:
`history/urls_v2.py`, `views_v2.py`, `views.py` SafeInfoView, `serializers.py`
SafeMultisigTransactionSerializer, `filters.py` MultisigTransactionFilter; camelCase JSON):

* GET  /api/v1/safes/{address}/                         422 non-checksummed, 404 unknown Safe
* GET  /api/v2/safes/{address}/multisig-transactions/   filters nonce, nonce__gte/__lt, executed,
                                                         trusted (default true), safe_tx_hash; limit/offset
* POST /api/v2/safes/{address}/multisig-transactions/   400 malformed JSON; 422 with field errors
                                                         (DRF messages) or nonFieldErrors; 201 empty
* GET  /api/v2/multisig-transactions/{safeTxHash}/      404 unknown

Like the service, it recomputes the safeTxHash from the posted fields (with safe-eth-py, the library the
service itself uses) and recovers each signature's owner. It listens on 127.0.0.1 on an ephemeral port;
faults are injected per endpoint (`fail_next`), and every request is recorded (`log`).
"""

from __future__ import annotations

import datetime as dt
import json
import re
import threading
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qs, urlencode, urlsplit

from eth_utils import to_checksum_address
from hexbytes import HexBytes
from safe_eth.eth.utils import fast_is_checksum_address
from safe_eth.safe.safe_signature import SafeSignature
from safe_eth.safe.safe_tx import SafeTx as RefSafeTx

ZERO = "0x" + "00" * 20
_REQUIRED = "This field is required."
_NULL = "This field may not be null."
_INT = "A valid integer is required."


@dataclass
class StandinSafe:
    address: str
    owners: list[str]
    threshold: int
    nonce: int


@dataclass
class StoredTx:
    fields: dict[str, Any]
    safe_tx_hash: str
    proposer: str
    trusted: bool
    origin: str | None
    executed: bool = False
    confirmations: dict[str, str] = field(default_factory=dict)  # owner → signature hex
    submission: str = ""


class SafeServiceStandin:
    """Use as a context manager: `with SafeServiceStandin(chain_id=1) as svc: svc.url ...`."""

    def __init__(self, *, chain_id: int, api_key: str | None = None, delay_s: float = 1.0,
                 delegatecall_allowed_to: Collection[str] | None = None) -> None:
        self.chain_id = chain_id
        self.api_key = api_key
        self.delay_s = delay_s
        # None: DELEGATE_CALL allowed to anything (the service's default); else only to these (trusted) targets.
        self.delegatecall_allowed_to = None if delegatecall_allowed_to is None else {to_checksum_address(a) for a in delegatecall_allowed_to}
        self.safes: dict[str, StandinSafe] = {}
        self.txs: dict[str, StoredTx] = {}
        self.log: list[tuple[str, str, str]] = []  # (method, path, query)
        self.auth_seen: list[str | None] = []
        self._faults: dict[str, list[str]] = {}
        # Rewrites what GET /multisig-transactions/{hash}/ answers: a service storing something else.
        self.detail_hook: Callable[[dict[str, Any]], dict[str, Any]] | None = None
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- setup -----------------------------------------------------------------------------------

    def add_safe(self, address: str, owners: Sequence[str], threshold: int, nonce: int) -> None:
        address = to_checksum_address(address)
        self.safes[address] = StandinSafe(address, [to_checksum_address(o) for o in owners], threshold, nonce)

    def fail_next(self, endpoint: str, mode: str, times: int = 1) -> None:
        """endpoint ∈ {info, list, post, detail}; mode ∈ {500, 503, timeout}; applied to the next `times` requests."""
        assert endpoint in ("info", "list", "post", "detail") and mode in ("500", "503", "timeout")
        self._faults.setdefault(endpoint, []).extend([mode] * times)

    def queue(self, safe: str, fields: dict[str, Any], *, proposer: str, signatures: dict[str, str] | None = None,
              trusted: bool = True, executed: bool = False) -> str:
        """Put a transaction in the queue directly (as if another client had proposed it); returns its hash."""
        safe = to_checksum_address(safe)
        record = {"safe": safe, **fields}
        h = self._hash(record)
        self.txs[h] = StoredTx(record, h, to_checksum_address(proposer), trusted, None, executed,
                               dict(signatures or {}), _now())
        return h

    @property
    def posts(self) -> list[tuple[str, str, str]]:
        return [e for e in self.log if e[0] == "POST"]

    # --- server ----------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> Self:
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_: Any) -> None:  # quiet
                return

            def do_GET(self) -> None:
                standin._dispatch(self, "GET")

            def do_POST(self) -> None:
                standin._dispatch(self, "POST")

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        assert self._server is not None and self._thread is not None
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    # --- dispatch --------------------------------------------------------------------------------

    def _dispatch(self, h: BaseHTTPRequestHandler, method: str) -> None:
        parts = urlsplit(h.path)
        with self._lock:
            self.log.append((method, parts.path, parts.query))
            self.auth_seen.append(h.headers.get("Authorization"))
        routes = [
            ("GET", r"^/api/v1/safes/([^/]+)/$", "info", self._safe_info),
            ("GET", r"^/api/v2/safes/([^/]+)/multisig-transactions/$", "list", self._list),
            ("POST", r"^/api/v2/safes/([^/]+)/multisig-transactions/$", "post", self._post),
            ("GET", r"^/api/v2/multisig-transactions/([^/]+)/$", "detail", self._detail),
        ]
        for verb, pattern, name, handler in routes:
            m = re.match(pattern, parts.path)
            if m and verb == method:
                break
        else:
            return self._send(h, 404, {"detail": "Not found."})
        if (auth := self._auth_problem(h)) is not None:
            return self._send(h, 401, {"detail": auth})
        with self._lock:
            fault = self._faults.get(name, []).pop(0) if self._faults.get(name) else None
        if fault in ("500", "503"):
            return self._send_raw(h, int(fault), b"<h1>Server Error</h1>", "text/html")
        if fault == "timeout":
            time.sleep(self.delay_s)  # then answer as usual: a late answer the client has given up on
        body = None
        if method == "POST":
            raw = h.rfile.read(int(h.headers.get("Content-Length") or 0))
            try:
                body = json.loads(raw)
            except ValueError as exc:
                return self._send(h, 400, {"detail": f"JSON parse error - {exc}"})
        query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        status, payload = handler(m.group(1), query, body, h)
        self._send(h, status, payload)

    def _auth_problem(self, h: BaseHTTPRequestHandler) -> str | None:
        if self.api_key is None:
            return None
        header = h.headers.get("Authorization")
        if header is None:
            return "Authentication credentials were not provided."
        if header != f"Bearer {self.api_key}":
            return "Invalid token."
        return None

    def _send(self, h: BaseHTTPRequestHandler, status: int, payload: Any) -> None:
        data = b"" if payload is None else json.dumps(payload).encode()
        self._send_raw(h, status, data, "application/json")

    @staticmethod
    def _send_raw(h: BaseHTTPRequestHandler, status: int, data: bytes, kind: str) -> None:
        try:
            h.send_response(status)
            h.send_header("Content-Type", kind)
            h.send_header("Content-Length", str(len(data)))
            h.end_headers()
            h.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (timeout)

    # --- endpoints -------------------------------------------------------------------------------

    @staticmethod
    def _checksum_error(address: str) -> tuple[int, Any]:
        return 422, {"code": 1, "message": "Checksum address validation failed", "arguments": [address]}

    def _safe_info(self, address: str, _q: dict[str, str], _b: Any, _h: Any) -> tuple[int, Any]:
        if not fast_is_checksum_address(address):
            return self._checksum_error(address)
        safe = self.safes.get(address)
        if safe is None:
            return 404, None
        return 200, {
            "address": safe.address, "nonce": str(safe.nonce), "threshold": safe.threshold, "owners": list(safe.owners),
            "masterCopy": "0x29fcB43b46531BcA003ddC8FCB67FFE91900C762", "modules": [],
            "fallbackHandler": "0xfd0732Dc9E303f09fCEf3a7388Ad10A83459Ec99", "guard": ZERO, "moduleGuard": ZERO,
            "version": "1.4.1",
        }

    def _list(self, address: str, q: dict[str, str], _b: Any, h: BaseHTTPRequestHandler) -> tuple[int, Any]:
        if not fast_is_checksum_address(address):
            return self._checksum_error(address)
        errors: dict[str, list[str]] = {}
        flags = {}
        for name, default in (("executed", None), ("trusted", "true")):
            raw = q.get(name, default)
            if raw is None:
                flags[name] = None
            elif raw.lower() in ("true", "1"):
                flags[name] = True
            elif raw.lower() in ("false", "0"):
                flags[name] = False
            else:
                errors[name] = ["Select a valid choice."]
        bounds = {}
        for name in ("nonce", "nonce__gte", "nonce__gt", "nonce__lte", "nonce__lt", "limit", "offset"):
            if name in q:
                try:
                    bounds[name] = int(q[name])
                except ValueError:
                    errors[name] = ["Enter a number."]
        if errors:
            return 400, errors
        rows = [t for t in self.txs.values() if t.fields["safe"] == address]
        if flags["executed"] is not None:
            rows = [t for t in rows if t.executed == flags["executed"]]
        if flags["trusted"]:
            rows = [t for t in rows if t.trusted]
        tests = {"nonce": int.__eq__, "nonce__gte": int.__ge__, "nonce__gt": int.__gt__, "nonce__lte": int.__le__,
                 "nonce__lt": int.__lt__}
        for name, op in tests.items():
            if name in bounds:
                rows = [t for t in rows if op(int(t.fields["nonce"]), bounds[name])]
        if "safe_tx_hash" in q:
            rows = [t for t in rows if t.safe_tx_hash == q["safe_tx_hash"].lower()]
        rows.sort(key=lambda t: (int(t.fields["nonce"]), t.submission), reverse=True)  # "-nonce", "-created"
        limit = min(bounds.get("limit", 100), 200)
        offset = bounds.get("offset", 0)
        page = rows[offset: offset + limit]
        base = f"http://{h.headers.get('Host')}{urlsplit(h.path).path}"
        def link(off: int) -> str:
            return base + "?" + urlencode({**q, "limit": limit, "offset": off})
        return 200, {
            "count": len(rows),
            "next": link(offset + limit) if offset + limit < len(rows) else None,
            "previous": link(max(0, offset - limit)) if offset > 0 else None,
            "results": [self._tx_json(t) for t in page],
            "countUniqueNonce": len({t.fields["nonce"] for t in rows}),
        }

    def _detail(self, safe_tx_hash: str, _q: dict[str, str], _b: Any, _h: Any) -> tuple[int, Any]:
        tx = self.txs.get(safe_tx_hash.lower())
        if tx is None:
            return 404, {"detail": "No MultisigTransaction matches the given query."}
        doc = self._tx_json(tx)
        return 200, doc if self.detail_hook is None else self.detail_hook(doc)

    def _tx_json(self, t: StoredTx) -> dict[str, Any]:
        f = t.fields
        safe = self.safes.get(f["safe"])
        return {
            "safe": f["safe"], "to": f["to"], "value": str(f["value"]), "data": f["data"], "operation": f["operation"],
            "gasToken": f["gasToken"], "safeTxGas": str(f["safeTxGas"]), "baseGas": str(f["baseGas"]),
            "gasPrice": str(f["gasPrice"]), "refundReceiver": f["refundReceiver"], "nonce": str(f["nonce"]),
            "executionDate": None, "submissionDate": t.submission, "modified": t.submission, "blockNumber": None,
            "transactionHash": None, "safeTxHash": t.safe_tx_hash, "proposer": t.proposer, "proposedByDelegate": None,
            "executor": None, "isExecuted": t.executed, "isSuccessful": None, "ethGasPrice": None, "maxFeePerGas": None,
            "maxPriorityFeePerGas": None, "gasUsed": None, "fee": None, "payment": None,
            "origin": json.dumps(t.origin or {}) if not isinstance(t.origin, str) else t.origin, "dataDecoded": None,
            "confirmationsRequired": safe.threshold if safe else 0,
            "confirmations": [
                {"owner": o, "submissionDate": t.submission, "transactionHash": None, "signature": s, "signatureType": "EOA"}
                for o, s in sorted(t.confirmations.items())
            ],
            "trusted": t.trusted, "signatures": None,
        }

    # --- POST: the serializer's field checks, then its validate() --------------------------------

    def _hash(self, f: dict[str, Any]) -> str:
        ref = RefSafeTx(None, f["safe"], f["to"], int(f["value"]), HexBytes(f["data"] or b""), int(f["operation"]),
                        int(f["safeTxGas"]), int(f["baseGas"]), int(f["gasPrice"]), f["gasToken"] or ZERO,
                        f["refundReceiver"] or ZERO, safe_nonce=int(f["nonce"]), safe_version="1.4.1", chain_id=self.chain_id)
        return "0x" + bytes(ref.safe_tx_hash).hex()

    def _post(self, address: str, _q: dict[str, str], body: Any, _h: Any) -> tuple[int, Any]:
        if not fast_is_checksum_address(address):
            return self._checksum_error(address)
        if not isinstance(body, dict):
            return 400, {"nonFieldErrors": ["Invalid data. Expected a dictionary, but got list."]}
        errors: dict[str, list[str]] = {}
        v: dict[str, Any] = {"safe": address}
        for name in ("value", "safeTxGas", "baseGas", "gasPrice", "nonce", "operation"):
            v[name] = _integer(body, name, errors)
        if "operation" not in errors and v["operation"] not in (0, 1, 2):
            errors["operation"] = ["Unknown operation"]
        v["to"] = _address(body, "to", errors, required=True, zero=True)
        v["sender"] = _address(body, "sender", errors, required=True, zero=False)
        v["gasToken"] = _address(body, "gasToken", errors, required=False, zero=True)
        v["refundReceiver"] = _address(body, "refundReceiver", errors, required=False, zero=True)
        v["data"] = _hex(body, "data", errors, required=False)
        v["contractTransactionHash"] = _hex(body, "contractTransactionHash", errors, required=True, exact=32)
        v["signature"] = _hex(body, "signature", errors, required=False, min_len=65)
        origin = body.get("origin")
        if origin is not None and (not isinstance(origin, str) or len(origin) > 200):
            errors["origin"] = ["Ensure this field has no more than 200 characters." if isinstance(origin, str) else "Not a valid string."]
        if errors:
            return 422, errors
        return self._validate_and_save(v, origin)

    def _validate_and_save(self, v: dict[str, Any], origin: str | None) -> tuple[int, Any]:
        def refuse(message: str) -> tuple[int, Any]:
            return 422, {"nonFieldErrors": [message]}

        if not v["to"] and not v["data"]:
            return refuse("`data` and `to` cannot both be null")
        if v["operation"] == 2:
            return refuse("Operation CREATE not supported. Please use Safe CreateLib")
        if (v["operation"] == 1 and self.delegatecall_allowed_to is not None
                and v["to"] not in self.delegatecall_allowed_to):
            return refuse("Operation DELEGATE_CALL is not allowed")
        fields = {k: v[k] for k in ("safe", "to", "value", "data", "operation", "safeTxGas", "baseGas", "gasPrice",
                                     "gasToken", "refundReceiver", "nonce")}
        fields["data"] = "0x" + v["data"].hex() if v["data"] else None
        fields["gasToken"] = fields["gasToken"] or ZERO
        fields["refundReceiver"] = fields["refundReceiver"] or ZERO
        computed = self._hash(fields)
        provided = "0x" + v["contractTransactionHash"].hex()
        if computed != provided:
            return refuse(f"Contract-transaction-hash={computed} does not match provided contract-tx-hash={provided}")
        safe = self.safes.get(v["safe"])
        executed = [t for t in self.txs.values() if t.fields["safe"] == v["safe"] and int(t.fields["nonce"]) == v["nonce"] and t.executed]
        if executed or (safe is not None and v["nonce"] < safe.nonce):
            if any(t.safe_tx_hash == computed for t in executed):
                return refuse(f"Tx with safe-tx-hash={computed} for safe={v['safe']} was already executed in tx-hash=0x")
            return refuse(f"Tx with nonce={v['nonce']} for safe={v['safe']} already executed in tx-hash=0x")
        if safe is None:
            return refuse(f"Could not get Safe {v['safe']} owners from blockchain, check contract exists on network "
                          f"CHAIN_{self.chain_id}")
        if v["sender"] not in safe.owners:
            return refuse(f"Sender={v['sender']} is not an owner or delegate. Current owners={safe.owners}. Delegates=set()")
        parsed = SafeSignature.parse_signature(v["signature"] or b"", HexBytes(computed))
        signers: list[str] = []
        for sig in parsed:
            owner = sig.owner
            if owner not in safe.owners:
                return refuse(f"Signer={owner} is not an owner or delegate. Current owners={safe.owners}. Delegates=set()")
            if owner in signers:
                return refuse(f"Signature for owner={owner} is duplicated")
            signers.append(owner)
        if signers and v["sender"] not in signers:
            return refuse(f"Signature does not match sender={v['sender']}. Calculated owners={signers}")
        with self._lock:
            stored = self.txs.get(computed)
            if stored is None:
                stored = StoredTx(fields, computed, v["sender"], bool(parsed), origin, submission=_now())
                self.txs[computed] = stored
            elif parsed and not stored.trusted:
                stored.trusted, stored.origin = True, origin
            for sig in parsed:
                stored.confirmations.setdefault(sig.owner, "0x" + bytes(sig.export_signature()).hex())
        return 201, None


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _integer(body: dict[str, Any], name: str, errors: dict[str, list[str]]) -> int | None:
    # DRF IntegerField: ints or numeric strings ("12", "12.0"); bools, floats with a fraction, text refused.
    if name not in body:
        errors[name] = [_REQUIRED]
        return None
    raw = body[name]
    if raw is None:
        errors[name] = [_NULL]
        return None
    if isinstance(raw, bool) or not isinstance(raw, (int, str, float)) or (isinstance(raw, str) and len(raw) > 1000):
        errors[name] = [_INT]
        return None
    try:
        value = int(re.sub(r"\.0*\s*$", "", str(raw)))
    except ValueError:
        errors[name] = [_INT]
        return None
    if value < 0:
        errors[name] = ["Ensure this value is greater than or equal to 0."]
        return None
    return value


def _address(body: dict[str, Any], name: str, errors: dict[str, list[str]], *, required: bool, zero: bool) -> str | None:
    if name not in body or body[name] is None:
        if required:
            errors[name] = [_REQUIRED if name not in body else _NULL]
        return None
    raw = body[name]
    if not fast_is_checksum_address(raw):
        errors[name] = [f"Address {raw} is not checksumed"]
        return None
    if int(raw, 16) == 0 and not zero:
        errors[name] = ["0x0 address is not allowed"]
        return None
    return str(raw)


def _hex(body: dict[str, Any], name: str, errors: dict[str, list[str]], *, required: bool, exact: int | None = None,
         min_len: int | None = None) -> bytes | None:
    if name not in body:
        if required:
            errors[name] = [_REQUIRED]
        return None
    raw = body[name]
    if raw is None:
        if required:
            errors[name] = [_NULL]
        return None
    if not isinstance(raw, str):
        errors[name] = [f"{raw} is not a hexadecimal value."]
        return None
    text = raw.strip().removeprefix("0x")
    if not text:
        if required:
            errors[name] = ["This field may not be blank."]
        return None
    try:
        data = bytes(HexBytes(text))
    except ValueError:
        errors[name] = [f"{raw} is not a hexadecimal value."]
        return None
    if exact is not None and len(data) != exact:
        errors[name] = [f"Ensure this field has {'at least' if len(data) < exact else 'no more than'} {exact} hexadecimal chars (not counting 0x)."]
        return None
    if min_len is not None and len(data) < min_len:
        errors[name] = [f"Ensure this field has at least {min_len} hexadecimal chars (not counting 0x)."]
        return None
    return data
