"""Calibrating circuit breakers on history: few false alarms in calm time, every labelled crash caught in time.

For each rule, the rule's value at every update is computed once (`risk.breakers.rule_values`); the
candidate thresholds of the rule's ``calibrate`` grid are then swept together (`sweep`). For a
threshold, on each market the rule watches:

* **false alarms** are the alerts (with the rule's cooldown, exactly as `replay` raises them) at times
  in *calm* time: the rule's data range (first to last update with a value) — restricted to the
  policy's ``calm_periods`` when it lists any — minus every crash window widened by ``calm_margin``
  on both sides. Pooled over markets, per month of calm time (a month is 365.25 / 12 days).
* **detection** of a crash window (on the markets it labels, default all) is the first alert in
  ``[start, end]``; its delay is that alert's time minus ``start``. The window is *missed* when there
  is no alert within ``max_detection_delay`` of its start, and *not covered* when the rule's data do not
  span ``[start, min(end, start + max_detection_delay)]`` (it then counts neither way).

The calibrated threshold is the most sensitive candidate (the smallest; candidates are ascending)
whose false alarms per month stay within the limit; when none does, the one with the fewest (the
smallest among ties) is reported and flagged. False alarms need not fall as the threshold rises (a
higher one can split one cooldown into two alerts), hence the search over all candidates.

Each rule must meet the false-alarm limit; the *breaker* must catch every labelled window: a window
is caught when some rule with ``detects: true`` alerts within the maximum delay (a sharp crash trips a
1h band, a slow one a 48h band). Every figure is a function of the alert list only, so replaying the
policy with the same thresholds reproduces them exactly.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from risk.breaker_calibration import Calibration
from risk.breaker_policy import Breakers
from risk.breaker_rules import threshold_float, threshold_unit
from risk.breakers import fires, missing_input, rule_values
from risk.breakers_feed import MarketStream
from risk.data_text import iso_utc
from risk.errors import PolicyError
from risk.units import Duration, Ratio, Usd

MONTH_SECONDS = 365.25 / 12 * 86400
_SWEEP_BLOCK = 256  # candidates per block: bounds the candidates × updates boolean matrix
_KEY_STRIDE = 1 << 40  # > any span of unix seconds plus a cooldown: keeps candidates apart in one sorted key


def label(threshold: Any) -> str:
    """A threshold as a policy writes it: '6.5%', '3h', '50000000 USD'."""
    if isinstance(threshold, Usd):
        return f"{threshold.value:f} USD"
    if isinstance(threshold, (Ratio, Duration)):
        return str(threshold)
    raise PolicyError(f"threshold {threshold!r} has no unit", "thresholds are ratios, durations or USD amounts")


@dataclass(frozen=True, slots=True)
class Detection:
    """One crash window on one market: the first alert in it (unix s) and its delay in seconds, if any."""

    window: str
    market: str
    first_alert: int | None
    delay_seconds: int | None
    detected: bool
    rule: str = ""

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "delay_hours": None if self.delay_seconds is None else self.delay_seconds / 3600,
            "detected": self.detected,
            "first_alert": None if self.first_alert is None else iso_utc(self.first_alert),
            "market": self.market,
            "window": self.window,
        }
        if self.rule:
            out["rule"] = self.rule
        return out


@dataclass(frozen=True, slots=True)
class Figures:
    """What one threshold does on history (false alarms pooled over the rule's markets)."""

    threshold: str
    threshold_value: float
    alerts: int
    false_alarms: int
    calm_months: float
    false_alarms_per_month: float
    detections: tuple[Detection, ...]
    missed: tuple[str, ...]
    not_covered: tuple[str, ...]
    meets_false_alarm_limit: bool
    spans: tuple[tuple[str, int, int], ...] = ()  # (market, first, last update with a value), unix s
    labelled: tuple[tuple[str, str], ...] = ()  # every (window, market) pair judged, covered or not

    def to_json(self) -> dict[str, Any]:
        return {
            "spans": {m: [iso_utc(a), iso_utc(b)] for m, a, b in self.spans},
            "alerts": self.alerts,
            "calm_months": self.calm_months,
            "events": [d.to_json() for d in self.detections],
            "false_alarms": self.false_alarms,
            "false_alarms_per_month": self.false_alarms_per_month,
            "meets_false_alarm_limit": self.meets_false_alarm_limit,
            "missed": list(self.missed),
            "not_covered": list(self.not_covered),
            "threshold": self.threshold,
            "threshold_value": self.threshold_value,
        }


@dataclass(frozen=True, slots=True)
class RuleCalibration:
    rule: str
    kind: str
    unit: str
    markets: tuple[str, ...]
    detects: bool
    max_false_alarms_per_month: float
    candidates: int
    policy: Figures
    calibrated: Figures | None
    chosen: Ratio | Duration | Usd | None = None  # the calibrated threshold in its unit (breaker setters send it)

    @property
    def matches_policy(self) -> bool:
        return self.calibrated is not None and self.calibrated.threshold_value == self.policy.threshold_value

    def to_json(self) -> dict[str, Any]:
        return {
            "calibrated": None if self.calibrated is None else self.calibrated.to_json(),
            "candidates": self.candidates,
            "kind": self.kind,
            "markets": list(self.markets),
            "max_false_alarms_per_month": self.max_false_alarms_per_month,
            "matches_policy": self.matches_policy,
            "detects": self.detects,
            "policy": self.policy.to_json(),
            "rule": self.rule,
            "unit": self.unit,
        }


@dataclass(frozen=True, slots=True)
class Coverage:
    """The breaker's catch of the labelled windows at one set of thresholds: the earliest detecting rule per window and market."""

    detections: tuple[Detection, ...]
    missed: tuple[str, ...]
    not_covered: tuple[str, ...]
    false_alarm_limit_met: bool

    @property
    def ok(self) -> bool:
        return self.false_alarm_limit_met and not self.missed

    def to_json(self) -> dict[str, Any]:
        return {
            "events": [d.to_json() for d in self.detections],
            "false_alarm_limit_met": self.false_alarm_limit_met,
            "missed": list(self.missed),
            "not_covered": list(self.not_covered),
            "ok": self.ok,
        }


@dataclass(frozen=True, slots=True)
class CalibrationReport:
    """Per rule, the figures at the policy's and the calibrated threshold; for the breaker, its catch of each window at both."""

    name: str
    max_false_alarms_per_month: float
    max_detection_delay_seconds: int
    calm_margin_seconds: int
    rules: tuple[RuleCalibration, ...]
    policy: Coverage
    calibrated: Coverage
    skipped: tuple[str, ...]

    @property
    def ok(self) -> bool:
        """The policy's own thresholds meet the targets."""
        return self.policy.ok

    def to_json(self) -> dict[str, Any]:
        return {
            "calibrated": self.calibrated.to_json(),
            "calm_margin_hours": self.calm_margin_seconds / 3600,
            "max_detection_delay_hours": self.max_detection_delay_seconds / 3600,
            "max_false_alarms_per_month": self.max_false_alarms_per_month,
            "name": self.name,
            "ok": self.ok,
            "policy": self.policy.to_json(),
            "rules": [r.to_json() for r in self.rules],
            "skipped": list(self.skipped),
        }


# ------------------------------------------------------------------------------------------ calm time


@dataclass(frozen=True, slots=True)
class MarketHistory:
    """One rule's values on one market, with what calibration needs around them."""

    market: str
    times: np.ndarray
    values: np.ndarray
    span: tuple[int, int]
    calm: tuple[tuple[int, int], ...]  # disjoint closed intervals, unix s
    cuts: tuple[tuple[int, int], ...]  # crash windows ± margin, closed

    @property
    def calm_seconds(self) -> int:
        return sum(b - a for a, b in self.calm)

    def in_calm(self, t: np.ndarray) -> np.ndarray:
        inside = np.zeros(len(t), bool)
        for a, b in self.calm:
            inside |= (t >= a) & (t <= b)
        for a, b in self.cuts:
            inside &= ~((t >= a) & (t <= b))
        return inside


def _ts(x: Any) -> int:
    return int(x.timestamp())


def _calm_intervals(span: tuple[int, int], calibration: Calibration, cuts: Sequence[tuple[int, int]]) -> tuple[tuple[int, int], ...]:
    lo, hi = span
    periods = [(_ts(p.start), _ts(p.end)) for p in calibration.calm_periods] or [(lo, hi)]
    pieces = sorted((max(a, lo), min(b, hi)) for a, b in periods if min(b, hi) > max(a, lo))
    for c, d in cuts:
        pieces = [piece for a, b in pieces for piece in ((a, min(b, c)), (max(a, d), b)) if piece[1] > piece[0]]
    merged: list[tuple[int, int]] = []
    for a, b in pieces:  # explicit calm periods may overlap: count their time once
        if merged and a <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], b))
        else:
            merged.append((a, b))
    return tuple(merged)


def history(rule: Any, stream: MarketStream, calibration: Calibration) -> MarketHistory:
    """A rule's values on one market, its span (first to last update with a value) and its calm time."""
    times, values = rule_values(rule, stream)
    defined = times[~np.isnan(values)]
    margin = calibration.calm_margin.seconds
    cuts = tuple((_ts(w.start) - margin, _ts(w.end) + margin) for w in calibration.crash_windows)
    if len(defined) == 0:  # e.g. divergence with never two fresh sources: no calm time, nothing covered
        return MarketHistory(stream.market, times, values, (0, -1), (), cuts)
    span = (int(defined[0]), int(defined[-1]))
    return MarketHistory(stream.market, times, values, span, _calm_intervals(span, calibration, cuts), cuts)


# ----------------------------------------------------------------------------------------- figures


def figures(rule: Any, histories: Sequence[MarketHistory], alert_times: Sequence[np.ndarray], threshold: Any, calibration: Calibration, limit: float) -> Figures:
    """Figures of one threshold from the alert times it gives on each market (same order as `histories`)."""
    max_delay = calibration.max_detection_delay.seconds
    false_alarms = sum(int(h.in_calm(t).sum()) for h, t in zip(histories, alert_times))
    calm_months = sum(h.calm_seconds for h in histories) / MONTH_SECONDS
    per_month = false_alarms / calm_months if calm_months > 0 else 0.0
    detections, missed, not_covered, labelled = [], [], [], []
    for w in calibration.crash_windows:
        start, end = _ts(w.start), _ts(w.end)
        for h, t in zip(histories, alert_times):
            if w.markets is not None and h.market not in w.markets:
                continue
            labelled.append((w.name, h.market))
            if not (h.span[0] <= start and h.span[1] >= min(end, start + max_delay)):
                not_covered.append(f"{w.name}:{h.market}")
                continue
            inside = t[(t >= start) & (t <= end)]
            first = int(inside[0]) if len(inside) else None
            delay = None if first is None else first - start
            detected = delay is not None and delay <= max_delay
            detections.append(Detection(w.name, h.market, first, delay, detected))
            if not detected and rule.detects:
                missed.append(f"{w.name}:{h.market}")
    meets = per_month <= limit
    return Figures(
        threshold=label(threshold),
        threshold_value=threshold_float(threshold),
        alerts=sum(len(t) for t in alert_times),
        false_alarms=false_alarms,
        calm_months=calm_months,
        false_alarms_per_month=per_month,
        detections=tuple(detections),
        missed=tuple(missed),
        not_covered=tuple(not_covered),
        meets_false_alarm_limit=meets,
        spans=tuple((h.market, h.span[0], h.span[1]) for h in histories if h.span[1] >= h.span[0]),
        labelled=tuple(labelled),
    )


def coverage(calibration: Calibration, rules: Sequence[tuple[str, bool, Figures]]) -> Coverage:
    """The breaker's catch of each labelled window: the earliest alert of any detecting rule.

    Parameters
    ----------
    rules : sequence of (rule name, detects, Figures)
        Every rule's figures at the thresholds considered.
    """
    max_delay = calibration.max_detection_delay.seconds
    best: dict[tuple[str, str], Detection] = {}
    labelled: list[tuple[str, str]] = []
    covered: set[tuple[str, str]] = set()
    for name, detects, fig in rules:
        labelled += [k for k in fig.labelled if k not in labelled]
        for d in fig.detections:
            key = (d.window, d.market)
            if not detects:
                continue
            covered.add(key)
            if d.first_alert is not None and (key not in best or d.first_alert < (best[key].first_alert or 0)):
                best[key] = Detection(d.window, d.market, d.first_alert, d.delay_seconds, d.delay_seconds is not None and d.delay_seconds <= max_delay, name)
    order = {w.name: i for i, w in enumerate(calibration.crash_windows)}
    labelled.sort(key=lambda k: (order[k[0]], k[1]))
    detections = tuple(best.get(k, Detection(k[0], k[1], None, None, False)) for k in labelled if k in covered)
    missed = tuple(f"{d.window}:{d.market}" for d in detections if not d.detected)
    not_covered = tuple(f"{w}:{m}" for w, m in labelled if (w, m) not in covered)
    return Coverage(detections, missed, not_covered, all(f.meets_false_alarm_limit for _, _, f in rules))


def alert_times(h: MarketHistory, threshold: float, cooldown: int) -> np.ndarray:
    """Times (unix s) of the alerts one threshold raises on one market's history."""
    return h.times[fires(h.times, h.values, threshold, cooldown)]


def sweep(h: MarketHistory, thresholds: np.ndarray, cooldown: int) -> tuple[np.ndarray, np.ndarray]:
    """All candidates at once: (candidate index, alert time) of every alert, by candidate then time.

    Equal to `fires` per candidate: the first exceedance of each candidate alerts, then the first one
    at least `cooldown` seconds after the last alert, and so on; the chains of all candidates are
    followed together, one step per alert of the busiest candidate.
    """
    if cooldown <= 0:
        raise PolicyError(f"cooldown {cooldown} s is not positive", "rules alert at most once per cooldown; e.g. 24h")
    ks, ts = [], []
    for lo in range(0, len(thresholds), _SWEEP_BLOCK):
        k, e = np.nonzero(h.values[None, :] > thresholds[lo : lo + _SWEEP_BLOCK, None])
        if not len(k):
            continue
        t = h.times[e]
        key = k.astype(np.int64) * _KEY_STRIDE + (t - h.times[0])  # sorted: by candidate, then time
        after = np.searchsorted(key, key + cooldown, side="left")
        end = np.searchsorted(k, k, side="right")  # one past each candidate's last exceedance
        alert = np.zeros(len(k), bool)
        frontier = np.flatnonzero(np.r_[True, np.diff(k) != 0])
        while len(frontier):
            alert[frontier] = True
            step = after[frontier]
            frontier = step[step < end[frontier]]
        ks.append(k[alert] + lo)
        ts.append(t[alert])
    if not ks:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(ks), np.concatenate(ts)


def _choose(rule: Any, histories: Sequence[MarketHistory], limit: float) -> tuple[Any, int]:
    """The calibrated candidate: the most sensitive within the false-alarm limit, else the fewest false alarms."""
    grid = rule.calibrate.candidates()
    values = np.array([threshold_float(c) for c in grid])
    false_alarms = np.zeros(len(grid), np.int64)
    for h in histories:
        k, t = sweep(h, values, rule.cooldown.seconds)
        false_alarms += np.bincount(k[h.in_calm(t)], minlength=len(grid))
    months = sum(h.calm_seconds for h in histories) / MONTH_SECONDS
    rate = false_alarms / months if months > 0 else np.zeros(len(grid))
    within = np.flatnonzero(rate <= limit)
    best = int(within[0]) if len(within) else int(np.argmin(rate))
    return grid[best], len(grid)


def _at(rule: Any, histories: Sequence[MarketHistory], threshold: Any, calibration: Calibration, budget: float) -> Figures:
    times = [alert_times(h, threshold_float(threshold), rule.cooldown.seconds) for h in histories]
    return figures(rule, histories, times, threshold, calibration, budget)


def calibrate(breakers: Breakers, streams: Mapping[str, MarketStream]) -> CalibrationReport:
    """Measure every rule at the policy's threshold and, for rules with a ``calibrate`` grid, choose one.

    Parameters
    ----------
    breakers : Breakers
        The policy; its ``calibration`` section sets the false-alarm limit (alerts per month of calm
        time), the maximum detection delay, the calm margin and the labelled crash windows.
    streams : mapping of market symbol to MarketStream
        Every market of the policy, loaded from its sources.

    Returns
    -------
    CalibrationReport
        Per rule: threshold, false alarms (count and per month), detection delay per crash window
        (hours), missed and uncovered windows — at the policy's threshold and at the calibrated one.

    Raises
    ------
    PolicyError
        The policy has no ``calibration`` section, or a market has no stream.
    """
    calibration = breakers.calibration
    if calibration is None:
        raise PolicyError(f"breakers {breakers.name}: no calibration section", "add calibration: {max_false_alarms_per_month, max_detection_delay, crash_windows}")
    missing = [m.symbol for m in breakers.markets if m.symbol not in streams]
    if missing:
        raise PolicyError(f"breakers {breakers.name}: no data for market(s) {', '.join(missing)}", "calibration needs every market's sources")
    limit = float(calibration.max_false_alarms_per_month)
    rules, skipped = [], []
    for rule in breakers.rules:
        histories = []
        for market in breakers.markets:
            if rule.markets is not None and market.symbol not in rule.markets:
                continue
            why = missing_input(rule, streams[market.symbol])
            if why:
                skipped.append(f"{market.symbol} {rule.name}: skipped ({why})")
                continue
            histories.append(history(rule, streams[market.symbol], calibration))
        if not histories:
            continue

        budget = limit if rule.max_false_alarms_per_month is None else float(rule.max_false_alarms_per_month)
        chosen, calibrated, count = None, None, 0
        if rule.calibrate is not None:
            chosen, count = _choose(rule, histories, budget)
            calibrated = _at(rule, histories, chosen, calibration, budget)
        markets = tuple(h.market for h in histories)
        at_policy = _at(rule, histories, rule.threshold, calibration, budget)
        rules.append(RuleCalibration(rule.name, rule.kind, threshold_unit(rule.kind), markets, rule.detects, budget, count, at_policy, calibrated, chosen))
    policy = coverage(calibration, [(r.rule, r.detects, r.policy) for r in rules])
    tuned = coverage(calibration, [(r.rule, r.detects, r.calibrated or r.policy) for r in rules])
    return CalibrationReport(breakers.name, limit, calibration.max_detection_delay.seconds, calibration.calm_margin.seconds, tuple(rules), policy, tuned, tuple(skipped))
