"""Where the monitor's events go: JSON lines on stdout, a webhook, and a live view in the terminal.

* `JsonLines` writes one line per event (sorted keys, no NaN), from any thread, flushed per line
  when `live` (someone is reading as it happens) or in blocks (a fast replay into a file).
* `Webhook` POSTs each event from a background thread: a bounded queue that drops its *oldest* entry
  when full (counted), retries a failed POST with exponential backoff, and never blocks the loop;
  `close` gives it a bounded time to drain.
* `LiveView` draws a table per market (price, freshness, volatility, margin multiplier, LTV the venue
  policy would set, positions below 1 and near it, collateral at risk, last alert) with rich, on
  stderr, redrawn a few times a second; JSON lines keep going to stdout.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Any, Self

import requests

RETRY_BACKOFF_S = (0.5, 1.0, 2.0, 4.0, 8.0)


def json_line(doc: dict[str, Any]) -> str:
    return json.dumps(doc, sort_keys=True, allow_nan=False, ensure_ascii=False) + "\n"


class JsonLines:
    """Thread-safe JSON-lines writer."""

    def __init__(self, stream: IO[str], *, live: bool) -> None:
        self._stream, self._live, self._lock = stream, live, threading.Lock()
        self.lines = 0

    def write(self, doc: dict[str, Any]) -> None:
        line = json_line(doc)
        with self._lock:
            self._stream.write(line)
            self.lines += 1
            if self._live:
                self._stream.flush()

    def flush(self) -> None:
        with self._lock:
            self._stream.flush()


@dataclass
class WebhookStats:
    sent: int = 0
    retried: int = 0
    failed: int = 0
    dropped: int = 0

    def to_json(self) -> dict[str, int]:
        return {"dropped": self.dropped, "failed": self.failed, "retried": self.retried, "sent": self.sent}


class Webhook:
    """POST events to `url` in the background; see the module doc for the queue and retry rules."""

    def __init__(self, url: str, *, capacity: int = 1000, timeout_s: float = 5.0, backoff_s: tuple[float, ...] = RETRY_BACKOFF_S,
                 post: Callable[..., Any] | None = None, sleep: Callable[[float], None] | None = None) -> None:
        self.url, self.timeout_s, self.backoff_s = url, timeout_s, backoff_s
        self.stats = WebhookStats()
        self._queue: deque[dict[str, Any]] = deque()
        self._capacity = capacity
        self._cv = threading.Condition()
        self._closing = False
        self._post = post or requests.post
        self._stop_wait = threading.Event()
        self._sleep = sleep or (lambda s: self._stop_wait.wait(s))
        self._thread = threading.Thread(target=self._run, name="steward-webhook", daemon=True)
        self._thread.start()

    def put(self, doc: dict[str, Any]) -> None:
        """Queue an event; never blocks (a full queue drops its oldest event)."""
        with self._cv:
            if len(self._queue) >= self._capacity:
                self._queue.popleft()
                self.stats.dropped += 1
            self._queue.append(doc)
            self._cv.notify()

    def pending(self) -> int:
        with self._cv:
            return len(self._queue)

    def _deliver(self, doc: dict[str, Any]) -> None:
        body = json_line(doc).encode()
        for attempt in range(len(self.backoff_s) + 1):
            if attempt:
                self.stats.retried += 1
                self._sleep(self.backoff_s[attempt - 1])
            try:
                response = self._post(self.url, data=body, headers={"Content-Type": "application/json"}, timeout=self.timeout_s)
                if 200 <= response.status_code < 300:
                    self.stats.sent += 1
                    return
                if 400 <= response.status_code < 500 and response.status_code not in (408, 429):
                    break  # the receiver refuses this event: retrying the same body cannot help
            except requests.RequestException:
                pass
            if self._closing and self._stop_wait.is_set():
                break
        self.stats.failed += 1

    def _run(self) -> None:
        while True:
            with self._cv:
                while not self._queue and not self._closing:
                    self._cv.wait()
                if not self._queue:
                    return
                doc = self._queue.popleft()
            self._deliver(doc)

    def close(self, timeout_s: float = 5.0) -> None:
        """Stop taking events; deliver what is queued within `timeout_s`, then give up on the rest (counted as dropped)."""
        with self._cv:
            self._closing = True
            self._cv.notify()
        self._thread.join(timeout_s)
        if self._thread.is_alive():
            self._stop_wait.set()  # cut retry sleeps short
            self._thread.join(1.0)
        with self._cv:
            self.stats.dropped += len(self._queue)
            self._queue.clear()


def _fmt(x: float | None, kind: str) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "—"
    if kind == "pct":
        return f"{x * 100:.1f}%"
    if kind == "usd":
        return f"${x / 1e6:,.2f}M" if abs(x) >= 1e6 else f"${x:,.0f}"
    if kind == "x":
        return f"×{x:.2f}"
    return f"{x:,.6g}"


class LiveView:
    """A rich table on stderr, redrawn at most `fps` times a second from `rows()`."""

    def __init__(self, console: Any, rows: Callable[[], tuple[str, list[dict[str, Any]]]], *, fps: float = 4.0, redirect_stdout: bool = False) -> None:
        from rich.live import Live

        self._rows, self._period, self._last = rows, 1.0 / fps, 0.0
        self._live = Live(self._render(), console=console, auto_refresh=False, redirect_stdout=redirect_stdout, redirect_stderr=False, transient=False)

    def _render(self) -> Any:
        from rich.table import Table

        title, rows = self._rows()
        table = Table(title=title, expand=False)
        for name in ("market", "price", "fresh", "vol", "margin", "LTV now", "below 1", "near 1", "collateral at risk", "last alert"):
            table.add_column(name, justify="left" if name in ("market", "last alert") else "right")
        for r in rows:
            style = "bold red" if r["below"] else None
            table.add_row(r["market"], _fmt(r["price"], "num"), r["fresh"], _fmt(r["vol"], "pct"), _fmt(r["margin"], "x"), _fmt(r["ltv"], "pct"),
                          str(r["below"] if r["below"] is not None else "—"), str(r["near"] if r["near"] is not None else "—"),
                          _fmt(r["at_risk"], "usd"), r["alert"], style=style)
        return table

    def __enter__(self) -> Self:
        self._live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.refresh(force=True)
        self._live.__exit__(*exc)

    def refresh(self, *, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self._last >= self._period:
            self._last = now
            self._live.update(self._render(), refresh=True)
