"""Drive headless Chromium through the DevTools protocol: open a page, record what it logs and what it
tries to fetch, read what a person would see, and take screenshots.

One browser process per `Browser`, started with its own throw-away profile and stopped (its own
process group only) on exit. The DevTools endpoint is read from the profile's ``DevToolsActivePort``
file, so Chromium's chatty stderr goes to a log file and never blocks a pipe.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import subprocess
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from websockets.sync.client import ClientConnection, connect

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--hide-scrollbars",
    "--remote-debugging-port=0",
)
_START_TIMEOUT_S = 30.0
_CALL_TIMEOUT_S = 60.0


class BrowserError(RuntimeError):
    pass


def find_chromium() -> Path | None:
    if CHROMIUM.is_file():
        return CHROMIUM
    found = shutil.which("chromium")
    return Path(found) if found else None


@dataclass
class Events:
    """What the page did: console errors (console.error, uncaught exceptions, browser log errors such as
    CSP violations) and the URL of every request it issued."""

    console_errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)

    def record(self, method: str, params: dict[str, Any]) -> None:
        if method == "Runtime.consoleAPICalled" and params["type"] in ("error", "assert"):
            self.console_errors.append(" ".join(str(a.get("value", a.get("description", ""))) for a in params["args"]))
        elif method == "Runtime.exceptionThrown":
            details = params["exceptionDetails"]
            self.console_errors.append(details.get("exception", {}).get("description", details["text"]))
        elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
            entry = params["entry"]
            self.console_errors.append(f"{entry['source']}: {entry['text']} {entry.get('url', '')}".strip())
        elif method == "Network.requestWillBeSent":
            self.requests.append(params["request"]["url"])


class Page:
    """One tab, attached through a flat DevTools session."""

    def __init__(self, ws: ClientConnection, session_id: str) -> None:
        self._ws = ws
        self._session = session_id
        self._next_id = 1_000
        self.events = Events()
        self._seen: list[str] = []
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.call(f"{domain}.enable")

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        self._next_id += 1
        msg_id = self._next_id
        self._ws.send(json.dumps({"id": msg_id, "method": method, "params": params, "sessionId": self._session}))
        deadline = time.monotonic() + _CALL_TIMEOUT_S
        while True:
            msg = self._receive(deadline, method)
            if msg.get("id") == msg_id:
                if "error" in msg:
                    raise BrowserError(f"{method}: {msg['error']}")
                return msg.get("result", {})

    def _receive(self, deadline: float, waiting_for: str) -> dict[str, Any]:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise BrowserError(f"timed out waiting for {waiting_for}")
        msg = json.loads(self._ws.recv(timeout=remaining))
        if "method" in msg and msg.get("sessionId") == self._session:
            self.events.record(msg["method"], msg.get("params", {}))
            self._seen.append(msg["method"])
        return msg

    def wait_for(self, event: str) -> None:
        deadline = time.monotonic() + _CALL_TIMEOUT_S
        while event not in self._seen:
            self._receive(deadline, event)
        self._seen.clear()

    def settle(self, seconds: float = 0.3) -> None:
        """Take in whatever events arrive in the next moment (late console messages, lazy requests)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                self._receive(deadline, "settle")
            except (TimeoutError, BrowserError):
                break

    def open(self, url: str) -> None:
        self._seen.clear()
        self.call("Page.navigate", url=url)
        self.wait_for("Page.loadEventFired")
        self.settle()

    def viewport(self, width: int, height: int) -> None:
        self.call("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1, mobile=False)

    def color_scheme(self, scheme: str) -> None:
        self.call("Emulation.setEmulatedMedia", features=[{"name": "prefers-color-scheme", "value": scheme}])

    def evaluate(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise BrowserError(f"{expression[:80]}...: {result['exceptionDetails']}")
        return result["result"].get("value")

    def screenshot(self, path: Path, clip: dict[str, float] | None = None) -> Path:
        """A PNG of the whole page (or of `clip`, in CSS pixels of the page)."""
        if clip is None:
            size = self.call("Page.getLayoutMetrics")["cssContentSize"]
            clip = {"x": 0, "y": 0, "width": size["width"], "height": size["height"]}
        shot = self.call("Page.captureScreenshot", format="png", captureBeyondViewport=True, clip={**clip, "scale": 1})
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(shot["data"]))
        return path


class Browser:
    """A headless Chromium with a private profile in `workdir`; use as a context manager."""

    def __init__(self, executable: Path, workdir: Path) -> None:
        self._executable = executable
        self._profile = workdir / "profile"
        self._log = workdir / "chromium.log"
        self._proc: subprocess.Popen[bytes] | None = None
        self._ws: ClientConnection | None = None
        self._stack = ExitStack()

    def __enter__(self) -> Self:
        self._profile.mkdir(parents=True, exist_ok=True)
        with self._log.open("wb") as log:
            self._proc = subprocess.Popen(
                [str(self._executable), *FLAGS, f"--user-data-dir={self._profile}", "about:blank"],
                stdout=log,
                stderr=log,
                start_new_session=True,  # its own process group: closing stops its helpers, nothing else
            )
        self._ws = self._stack.enter_context(connect(self._endpoint(), max_size=None, open_timeout=_START_TIMEOUT_S))
        return self

    def _endpoint(self) -> str:
        port_file = self._profile / "DevToolsActivePort"
        deadline = time.monotonic() + _START_TIMEOUT_S
        while time.monotonic() < deadline:
            assert self._proc is not None
            if self._proc.poll() is not None:
                raise BrowserError(f"chromium exited with {self._proc.returncode}; see {self._log}")
            if port_file.is_file():
                lines = port_file.read_text().split()
                if len(lines) == 2:
                    return f"ws://127.0.0.1:{lines[0]}{lines[1]}"
            time.sleep(0.05)
        raise BrowserError(f"chromium did not open its DevTools port within {_START_TIMEOUT_S:.0f} s; see {self._log}")

    def new_page(self) -> Page:
        assert self._ws is not None
        ws = self._ws
        ws.send(json.dumps({"id": 1, "method": "Target.createTarget", "params": {"url": "about:blank"}}))
        target = self._reply(1)["targetId"]
        ws.send(json.dumps({"id": 2, "method": "Target.attachToTarget", "params": {"targetId": target, "flatten": True}}))
        return Page(ws, self._reply(2)["sessionId"])

    def _reply(self, msg_id: int) -> dict[str, Any]:
        assert self._ws is not None
        while True:
            msg = json.loads(self._ws.recv(timeout=_CALL_TIMEOUT_S))
            if msg.get("id") == msg_id:
                if "error" in msg:
                    raise BrowserError(str(msg["error"]))
                return msg["result"]

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if self._ws is not None:
            try:
                self._ws.send(json.dumps({"id": 3, "method": "Browser.close"}))
            finally:
                self._stack.close()
        if self._proc is not None:
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self._proc.pid, signal.SIGKILL)
                self._proc.wait(timeout=10)
