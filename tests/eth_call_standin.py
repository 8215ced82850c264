"""A JSON-RPC endpoint on loopback that answers eth_chainId and eth_call from a table, for read paths
(ChainReader → ViewFn → decode) of contracts whose bytecode no registry ships (RiskSteward, Comet).

`answers` maps (contract address, calldata hex) to the raw return bytes; an unknown call answers an
empty result, as a node does for an address without code. Every eth_call is recorded in `calls`.
`codes` gives addresses some bytecode (eth_getCode; none by default) and `block_times` the timestamp
eth_getBlockByNumber answers for a block number.
"""

from __future__ import annotations

from typing import Any

from eth_utils import to_checksum_address
from jsonrpc_standin import JsonRpcServer, rpc_error, rpc_result


class EthCallStandin(JsonRpcServer):
    def __init__(
        self, chain_id: int, answers: dict[tuple[str, str], bytes], *,
        codes: dict[str, bytes] | None = None, block_times: dict[int, int] | None = None,
    ) -> None:
        self.chain_id = chain_id
        self.answers = {(to_checksum_address(a), d.lower()): r for (a, d), r in answers.items()}
        self.codes = {to_checksum_address(a): c for a, c in (codes or {}).items()}
        self.block_times = dict(block_times or {})
        self.calls: list[tuple[str, str, str]] = []  # (to, data, block)
        super().__init__()

    def respond(self, request: dict[str, Any]) -> tuple[int, Any]:
        method, params = request["method"], request.get("params", [])
        if method == "eth_chainId":
            return 200, rpc_result(request, hex(self.chain_id))
        if method == "eth_call":
            to, data = to_checksum_address(params[0]["to"]), params[0]["data"].lower()
            self.calls.append((to, data, params[1]))
            return 200, rpc_result(request, "0x" + self.answers.get((to, data), b"").hex())
        if method == "eth_getCode":
            return 200, rpc_result(request, "0x" + self.codes.get(to_checksum_address(params[0]), b"").hex())
        if method == "eth_getBlockByNumber" and int(params[0], 16) in self.block_times:
            n = int(params[0], 16)
            return 200, rpc_result(request, {"number": hex(n), "timestamp": hex(self.block_times[n])})
        return 200, rpc_error(request)
