"""Running window sums of the AlertEngine (rain depth over 1/3/6/12 h).

The sums are kept incrementally (exact partial sums), so they must equal a fresh
exact summation of the window after any sequence of in-order, late and
duplicate-time readings, and an out-of-order stream must raise the same alerts
as the same readings in order.
"""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta

import pytest

from hardware_bridge.fusion import Reading
from hardware_bridge.fusion.alerts import AlertEngine

STEP = 300.0  # 5-minute gauge


def storm(n=400, seed=3, station="RG-1"):
    """Depths (m per 5 min) of two bursts with dry spells: every rain level is crossed and cleared."""
    rng = random.Random(seed)
    out = []
    for k in range(n):
        burst = 1.0 if 30 <= k < 70 else 0.6 if 200 <= k < 260 else 0.0
        v = max(0.0, rng.gauss(0.0045 * burst, 0.0015 * burst)) if burst else 0.0
        out.append(Reading(f"{station}/rain_gauge", "rain_gauge", STEP * (k + 1), v, unit="m",
                           station=station))
    return out


def shuffled(rs, seed=7, max_shift=4):
    """Each reading moved up to ``max_shift`` places later (well inside a 300 s watermark x 4)."""
    rng = random.Random(seed)
    keyed = [(i + rng.uniform(0, max_shift), r) for i, r in enumerate(rs)]
    return [r for _, r in sorted(keyed, key=lambda p: p[0])]


def decisions(events):
    return [(e.kind, e.severity.value, e.data.get("metric"), e.data.get("window_h"),
             e.data.get("from"), e.data.get("to")) for e in events]


def feed(rs):
    eng = AlertEngine()
    out = []
    for r in rs:  # one reading per call, as the bridge's commits deliver them
        out.extend(eng.evaluate(r))
    return eng, out


def test_out_of_order_stream_raises_the_in_order_alerts():
    rs = storm()
    order = shuffled(rs)
    assert order != rs and sum(a is not b for a, b in zip(order, rs, strict=True)) > 100
    in_eng, in_events = feed(rs)
    ooo_eng, ooo_events = feed(order)
    got = decisions(in_events)
    # the first burst reaches red and clears step by step; the second one (its 12 h sum with the
    # first one's tail, then its own 1 h and 3 h sums) reaches orange
    assert [d[1] for d in got if d[0] == "threshold_crossed"] == ["info", "warning", "alarm", "info",
                                                                  "info", "warning"]
    assert [d[4:] for d in got if d[0] == "alert_cleared"] == [
        ("alarm", "warning"), ("warning", "advisory"), ("advisory", "info"), ("info", None),
        ("info", None), ("warning", "advisory"), ("advisory", "info"), ("info", None)]
    assert decisions(ooo_events) == got
    assert ooo_eng.active() == in_eng.active()


def test_a_late_reading_that_completes_a_sum_alerts_at_once():
    t0 = datetime(2024, 6, 1, tzinfo=UTC)

    def r(k, mm):
        return Reading("RG-9/rain_gauge", "rain_gauge", t0 + timedelta(seconds=STEP * k), mm / 1000,
                       unit="m", station="RG-9")

    rs = [r(k, 10.0) for k in range(1, 11)]  # 100 mm in 50 min: red at the 10th reading
    in_order = [e for e in feed(rs)[1] if e.severity.value == "alarm"]
    assert len(in_order) == 1 and in_order[0].data["value"] == pytest.approx(100.0)
    eng = AlertEngine()
    for x in rs[:4] + rs[5:]:  # the 5th reading arrives last
        eng.evaluate(x)
    assert eng.active()["RG-9/rain_gauge"].value == "warning"  # 90 mm so far
    (alarm,) = eng.evaluate(rs[4])
    assert alarm.severity.value == "alarm" and alarm.data["value"] == pytest.approx(100.0)
    # the event names the newest reading; the late one is recorded
    assert alarm.data["phenomenon_time"] == rs[-1].time.isoformat()
    assert alarm.data["late_reading_time"] == rs[4].time.isoformat()
    # a late reading older than every window changes nothing
    assert eng.evaluate(r(-200, 500.0)) == []


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_running_sums_equal_an_exact_resummation(seed):
    rng = random.Random(seed)
    eng = AlertEngine()
    ds = "RG-5/rain_gauge"
    base, newest = [], -math.inf
    for k in range(3000):
        t = STEP * k + rng.choice([0.0, 0.0, 0.0, -STEP * rng.randint(1, 12), 0.5])  # late, equal-ish
        v = rng.choice([0.0, 1e-4, 0.1 / 3, rng.random() * 0.01, 7e-3])
        eng.evaluate(Reading(ds, "rain_gauge", t, v, unit="m", station="RG-5"))
        base.append((t, v))
        newest = max(newest, t)
        if k % 97 == 0 or k > 2950:
            st = eng._streams[ds]
            for win in st.windows:
                want = math.fsum(v for t_, v in base if newest - win.w < t_ <= newest)
                assert win.total() == want, (k, win.w)  # exact, not approximately
                assert st.times[win.lo] > newest - win.w >= (st.times[win.lo - 1] if win.lo else -1e300)
