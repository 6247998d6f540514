"""Tests for twin.clock: the master simulation clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from twin.clock import SimClock
from twin.errors import ClockError

CST = timezone(timedelta(hours=8))


def test_start_is_stored_in_utc_and_now_follows_sim_time():
    clock = SimClock(datetime(2024, 6, 1, 8, 0, tzinfo=CST))
    assert clock.start == datetime(2024, 6, 1, 0, 0, tzinfo=UTC)
    assert clock.start.utcoffset() == timedelta(0)
    clock.advance(90.5)
    assert clock.now_s == 90.5
    assert clock.now == datetime(2024, 6, 1, 0, 1, 30, 500000, tzinfo=UTC)
    local = clock.now_local
    assert local.utcoffset() == timedelta(hours=8)
    assert (local.hour, local.minute, local.second) == (8, 1, 30)
    assert clock.seconds_at("2024-06-01T09:00:00+08:00") == 3600.0


def test_naive_start_is_refused():
    with pytest.raises(ClockError, match="no timezone"):
        SimClock(datetime(2024, 6, 1))


def test_every_fires_at_exact_times_without_drift():
    clock = SimClock()
    seen: list[tuple[float, float]] = []
    clock.every(0.1, lambda t: seen.append((t, clock.now_s)))
    clock.advance_to(1.0)
    expected = [k * 0.1 for k in range(1, 11)]
    assert [t for t, _ in seen] == expected  # includes the call at exactly t=1.0
    assert [now for _, now in seen] == expected  # the clock reads the same exact time
    clock.advance_to(100.0)
    assert len(seen) == 1000
    assert seen[-1] == (100.0, 100.0)
    assert seen[999][0] == 1000 * 0.1


def test_every_first_until_and_order_of_simultaneous_callbacks():
    clock = SimClock(now_s=10.0)
    calls: list[tuple[str, float]] = []
    clock.every(5.0, lambda t: calls.append(("a", t)), first_s=10.0, until_s=20.0)
    clock.every(10.0, lambda t: calls.append(("b", t)))
    clock.advance_to(30.0)
    assert calls == [
        ("a", 10.0),
        ("a", 15.0),
        ("a", 20.0),
        ("b", 20.0),
        ("b", 30.0),
    ]


def test_cancel_stops_a_periodic_callback():
    clock = SimClock()
    times: list[float] = []
    handle = clock.every(1.0, times.append)
    clock.advance_to(3.0)
    handle.cancel()
    clock.advance_to(10.0)
    assert times == [1.0, 2.0, 3.0]
    assert handle.calls == 3


def test_physics_component_stepped_by_every_reaches_the_clock_time():
    class Tank:
        """dV/dt = q with q = 2 m3/s: V(t) = 2 t."""

        def __init__(self) -> None:
            self.volume = 0.0

        def step(self, dt: float) -> None:
            self.volume += 2.0 * dt

    tank = Tank()
    clock = SimClock()
    clock.every(0.5, lambda t: tank.step(0.5))
    clock.advance(60.0)
    assert tank.volume == pytest.approx(120.0, abs=1e-12)


def test_process_passthrough_runs_simpy_generators():
    clock = SimClock()
    log: list[float] = []

    def proc(env):
        while True:
            log.append(env.now)
            yield env.timeout(7.0)

    clock.process(proc(clock.env))
    clock.advance_to(21.0)
    assert log == [0.0, 7.0, 14.0, 21.0]


def test_advance_to_now_runs_pending_events_and_keeps_time():
    clock = SimClock(now_s=5.0)
    hits: list[float] = []
    clock.every(1.0, hits.append, first_s=5.0)
    clock.advance_to(5.0)
    assert hits == [5.0]
    assert clock.now_s == 5.0


def test_going_back_raises_naming_both_times():
    clock = SimClock()
    clock.advance_to(100.0)
    with pytest.raises(ClockError, match=r"t=50\.0 s.*current time 100\.0 s"):
        clock.advance_to(50.0)
    with pytest.raises(ClockError, match="-1.0"):
        clock.advance(-1.0)
    assert clock.now_s == 100.0


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_times_are_refused(bad):
    with pytest.raises(ClockError, match="not finite"):
        SimClock().advance_to(bad)


def test_bad_periods_are_refused():
    clock = SimClock(now_s=10.0)
    with pytest.raises(ClockError, match="period_s=0.0"):
        clock.every(0.0, print)
    with pytest.raises(ClockError, match="first_s=5.0"):
        clock.every(1.0, print, first_s=5.0)


def test_clock_round_trips_through_dict():
    clock = SimClock("2024-06-01T00:00:00+08:00")
    clock.advance_to(1234.5)
    again = SimClock.from_dict(clock.to_dict())
    assert again.start == clock.start
    assert again.now_s == 1234.5
    assert again.now == clock.now


def test_periodic_callbacks_run_before_processes_at_the_same_instant():
    clock = SimClock()
    order: list[tuple[str, float]] = []

    def observer(env):
        while True:
            yield env.timeout(1.0)
            order.append(("observe", env.now))

    clock.process(observer(clock.env))  # registered first, yet runs after the step
    clock.every(1.0, lambda t: order.append(("step", t)))
    clock.advance_to(2.0)
    assert order == [("step", 1.0), ("observe", 1.0), ("step", 2.0), ("observe", 2.0)]


def test_exception_in_a_callback_propagates_and_stops_it():
    clock = SimClock()
    calls: list[float] = []

    def boom(t: float) -> None:
        calls.append(t)
        if t == 2.0:
            raise RuntimeError("solver diverged")

    clock.every(1.0, boom)
    with pytest.raises(RuntimeError, match="solver diverged"):
        clock.advance_to(5.0)
    clock.advance_to(5.0)
    assert calls == [1.0, 2.0]
