"""governance.watch_sinks: the webhook retries with backoff, gives up on refusals, drops the oldest event
when its queue is full (counted) and never blocks the caller, even on a receiver that hangs; a real
HTTP receiver gets each event as one JSON document; JSON lines are sorted and refuse NaN."""

from __future__ import annotations

import http.server
import io
import json
import threading
import time
from typing import Any

import pytest
import requests

from governance.watch_sinks import JsonLines, Webhook


class Response:
    def __init__(self, status: int) -> None:
        self.status_code = status


class Receiver:
    """A scripted POST: answers from `statuses` (then 200), optionally held until released."""

    def __init__(self, statuses: list[int | Exception] | None = None, hold: threading.Event | None = None) -> None:
        self.statuses, self.hold = list(statuses or []), hold
        self.bodies: list[dict[str, Any]] = []
        self.calls = 0

    def __call__(self, url: str, *, data: bytes, headers: dict[str, str], timeout: float) -> Response:
        self.calls += 1
        if self.hold is not None:
            self.hold.wait(10)
        status = self.statuses.pop(0) if self.statuses else 200
        if isinstance(status, Exception):
            raise status
        if status == 200:
            self.bodies.append(json.loads(data))
        return Response(status)


def test_failed_posts_are_retried_with_backoff_until_they_pass() -> None:
    waits: list[float] = []
    receiver = Receiver([500, requests.ConnectionError("refused"), 503])
    hook = Webhook("http://hook", post=receiver, sleep=waits.append)
    hook.put({"kind": "alert", "n": 1})
    hook.close()
    assert receiver.bodies == [{"kind": "alert", "n": 1}]
    assert waits == [0.5, 1.0, 2.0] and hook.stats.to_json() == {"dropped": 0, "failed": 0, "retried": 3, "sent": 1}


def test_a_refusal_is_not_retried_and_a_receiver_that_never_recovers_is_given_up() -> None:
    refusing = Receiver([400])
    hook = Webhook("http://hook", post=refusing, sleep=lambda s: None)
    hook.put({"n": 1})
    hook.close()
    assert refusing.calls == 1 and hook.stats.failed == 1 and hook.stats.retried == 0
    down = Receiver([500] * 10)
    hook = Webhook("http://hook", post=down, sleep=lambda s: None, backoff_s=(0.1, 0.2))
    hook.put({"n": 1})
    hook.put({"n": 2})
    hook.close()
    assert down.calls == 6 and hook.stats.failed == 2 and hook.stats.sent == 0  # 3 tries each


def test_a_hanging_receiver_never_blocks_the_loop_and_the_oldest_events_go_first() -> None:
    release = threading.Event()
    receiver = Receiver(hold=release)
    hook = Webhook("http://hook", capacity=10, post=receiver, sleep=lambda s: None)
    hook.put({"n": 0})
    while receiver.calls == 0:  # the first POST is in flight, and hangs
        time.sleep(0.001)
    started = time.perf_counter()
    for n in range(1, 1000):
        hook.put({"n": n})
    elapsed = time.perf_counter() - started
    assert elapsed < 0.5  # 1,000 puts while the receiver holds the first POST
    release.set()
    hook.close(timeout_s=5)
    delivered = [b["n"] for b in receiver.bodies]
    assert delivered[0] == 0 and delivered[1:] == list(range(990, 1000))  # the one in flight, then the newest ten
    assert hook.stats.dropped == 989 and hook.stats.sent == 11


def test_close_gives_up_after_its_time_and_counts_what_is_left() -> None:
    release = threading.Event()
    hook = Webhook("http://hook", post=Receiver(hold=release), sleep=lambda s: None)
    for n in range(5):
        hook.put({"n": n})
    started = time.perf_counter()
    hook.close(timeout_s=0.2)
    release.set()
    assert time.perf_counter() - started < 3 and hook.stats.dropped == 4


def test_a_real_receiver_gets_one_json_document_per_event() -> None:
    got: list[dict[str, Any]] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            got.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        hook = Webhook(f"http://127.0.0.1:{server.server_port}/events")
        for n in range(3):
            hook.put({"kind": "alert", "n": n, "value": 0.5})
        hook.close(timeout_s=10)
    finally:
        server.shutdown()
    assert got == [{"kind": "alert", "n": n, "value": 0.5} for n in range(3)] and hook.stats.sent == 3


def test_json_lines_are_sorted_and_refuse_nan() -> None:
    out = io.StringIO()
    lines = JsonLines(out, live=True)
    lines.write({"time": "t", "kind": "alert", "market": "X"})
    assert out.getvalue() == '{"kind": "alert", "market": "X", "time": "t"}\n'
    with pytest.raises(ValueError):
        lines.write({"value": float("nan")})


def test_the_live_view_draws_a_row_per_market_from_the_monitors_state() -> None:
    from rich.console import Console

    from governance.watch import Monitor
    from governance.watch_sinks import LiveView
    from risk.breaker_policy import BreakerPolicy
    from risk.watch_engine import WatchEngine
    from risk.watch_events import Update
    from risk.watch_health import generated_factory

    doc = {"version": 1, "breakers": {"name": "t", "markets": [{"symbol": "ETH", "sources": [{"name": "a", "file": "-"}]}],
                                       "rules": [{"name": "drop", "kind": "price_band", "threshold": "5%", "direction": "down"},
                                                 {"name": "vol", "kind": "vol_scaling", "threshold": "50%", "warmup": 1}]}}
    b = BreakerPolicy.model_validate_json(json.dumps(doc)).breakers
    engine = WatchEngine(b, health_factory=generated_factory(1, 1000, ["ETH"], {"ETH": 0.8}, 1.05))
    for k, price in enumerate([2000.0, 1990.0, 1500.0]):
        engine.process(Update(1_700_000_000 + 3600 * k, "ETH", "a", price, k))
    monitor = Monitor(engine, lambda doc: None)
    screen = io.StringIO()
    with LiveView(Console(file=screen, force_terminal=True, width=160, color_system=None), monitor.view_rows) as view:
        view.refresh(force=True)
    text = screen.getvalue()
    point = engine.markets[0].point
    assert point is not None and point.below > 0
    row = next(line for line in text.splitlines() if "│ ETH" in line)
    cells = [c.strip() for c in row.split("│")[1:-1]]
    assert cells == ["ETH", "1,500", "1/1", f"{engine.markets[0].vol * 100:.1f}%", "×3.00", "—", str(point.below), str(point.near),
                     f"${point.collateral_at_risk_usd / 1e6:,.2f}M", "vol 2023-11-15T00:13:20Z"]  # the last alert of the last update
    assert "3 updates used, 0 flagged, 2 alerts" in text
