"""A JSON-RPC endpoint on loopback that answers eth_chainId and eth_call from a table, for read paths
(ChainReader → ViewFn → decode) of contracts whose bytecode no registry ships (RiskSteward, Comet).

`answers` maps (contract address, calldata hex) to the raw return bytes; an unknown call answers an
empty result, as a node does for an address without code. Every eth_call is recorded in `calls`.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

from eth_utils import to_checksum_address


class EthCallStandin:
    def __init__(self, chain_id: int, answers: dict[tuple[str, str], bytes]) -> None:
        self.chain_id = chain_id
        self.answers = {(to_checksum_address(a), d.lower()): r for (a, d), r in answers.items()}
        self.calls: list[tuple[str, str, str]] = []  # (to, data, block)
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                method, params = request["method"], request.get("params", [])
                if method == "eth_chainId":
                    result: Any = hex(standin.chain_id)
                elif method == "eth_call":
                    to, data = to_checksum_address(params[0]["to"]), params[0]["data"].lower()
                    standin.calls.append((to, data, params[1]))
                    result = "0x" + standin.answers.get((to, data), b"").hex()
                elif method == "eth_getCode":
                    result = "0x"
                else:
                    body = {"jsonrpc": "2.0", "id": request["id"], "error": {"code": -32601, "message": "method not found"}}
                    return self._send(body)
                self._send({"jsonrpc": "2.0", "id": request["id"], "result": result})

            def _send(self, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *_: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)

    def __enter__(self) -> Self:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.server.shutdown()
        self.server.server_close()
