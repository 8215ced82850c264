"""A JSON-RPC endpoint on loopback for tests that need a node's answers but not a chain.

Subclasses say what each request gets (`respond`); this class serves it over HTTP in a thread and is a
context manager (started on enter, shut down on exit).
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self


def rpc_error(request: dict[str, Any], code: int = -32601, message: str = "method not found") -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request["id"], "error": {"code": code, "message": message}}


def rpc_result(request: dict[str, Any], result: Any) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request["id"], "result": result}


class JsonRpcServer:
    """Serves `respond(request) -> (HTTP status, JSON body or raw bytes)` at `url`."""

    def respond(self, request: dict[str, Any]) -> tuple[int, Any]:  # pragma: no cover - overridden
        raise NotImplementedError

    def __init__(self) -> None:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                status, body = server.respond(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(status)
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
