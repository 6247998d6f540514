"""The twin's master clock: one :class:`simpy.Environment` in seconds.

Simulation time ``t`` is a float number of seconds since the clock's
``start`` instant (a timezone-aware datetime, stored in UTC; shown in
Asia/Shanghai local time, UTC+8, by :attr:`SimClock.now_local`)::

    now = start + timedelta(seconds=t)

Everything that moves in the twin moves under this clock: physics components
are stepped at a fixed period with :meth:`SimClock.every` (e.g.
``clock.every(dt, lambda t: component.step(dt))``) and discrete-event models
are simpy processes registered with :meth:`SimClock.process`. Time only goes
forward: asking for an earlier time raises :class:`~twin.errors.ClockError`.

Semantics of :meth:`SimClock.advance_to`: every callback and process event
scheduled at a time ``<= t`` has run when the call returns, in time order.
At one instant, the periodic callbacks of :meth:`SimClock.every` run first,
in registration order, then the ordinary process events in the order they
were scheduled (simpy's FIFO rule).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from typing import Any

import simpy

from twin.errors import ClockError
from twin.instants import parse_instant

DISPLAY_TZ_NAME = "Asia/Shanghai"
DEFAULT_START = datetime(2024, 1, 1, tzinfo=UTC)


def display_tz() -> tzinfo:
    """Asia/Shanghai (UTC+8, no daylight saving since 1991); a fixed +08:00 if tzdata is absent."""
    try:
        from zoneinfo import ZoneInfo

        return ZoneInfo(DISPLAY_TZ_NAME)
    except Exception:  # pragma: no cover - only on machines without a tz database
        return timezone(timedelta(hours=8), "CST")


def as_utc(value: datetime | str, what: str = "start") -> datetime:
    """Parse/check a timezone-aware datetime (or ISO-8601 string) and return it in UTC.

    The twin's one instant parser (:func:`twin.instants.parse_instant`), raising the clock's error.

    Raises
    ------
    ClockError
        When the value is naive (no timezone) or not an ISO-8601 string, naming ``what`` and the value.
    """
    return parse_instant(value, what, error=ClockError)


def _finite(value: float, what: str) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError) as exc:
        raise ClockError(f"{what}={value!r} is not a number of seconds") from exc
    if not math.isfinite(out):
        raise ClockError(f"{what}={value!r} is not finite; give a finite number of seconds")
    return out


@dataclass(eq=False)
class Periodic:
    """Handle of a callback registered with :meth:`SimClock.every`.

    Attributes
    ----------
    period_s : float
        Period in seconds.
    first_s : float
        Simulation time of the first call.
    origin_s : float
        Call times are ``origin_s + k * period_s`` for k = k0, k0 + 1, ...
        (computed from ``k``, so no drift builds up).
    until_s : float or None
        Last time a call may happen (inclusive); ``None`` for no end.
    calls : int
        How many times the callback has run.
    """

    period_s: float
    first_s: float
    origin_s: float
    k0: int
    until_s: float | None
    callback: Callable[[float], Any] = field(repr=False)
    calls: int = 0
    cancelled: bool = False

    def cancel(self) -> None:
        """Stop calling the callback (calls already made stay made)."""
        self.cancelled = True


_LAST = 2  # a scheduling priority after simpy's URGENT (0) and NORMAL (1)


class _Tick(simpy.Event):
    """An event that fires at absolute time ``at`` with a chosen scheduling priority."""

    def __init__(self, env: simpy.Environment, at: float, priority: float) -> None:
        super().__init__(env)
        self._ok = True
        self._value = None
        env.schedule(self, priority, at - env.now)  # type: ignore[arg-type]


class SimClock:
    """Master simulation clock wrapping one :class:`simpy.Environment`.

    Parameters
    ----------
    start : datetime or str
        The real-world instant that simulation time 0 stands for; must be
        timezone-aware (stored in UTC). Default 2024-01-01T00:00:00Z.
    now_s : float
        Initial simulation time in seconds (used when restoring a snapshot).
    """

    def __init__(self, start: datetime | str = DEFAULT_START, now_s: float = 0.0) -> None:
        self._start = as_utc(start, "start")
        self._env = simpy.Environment(initial_time=_finite(now_s, "now_s"))
        self._n_periodic = 0

    # ------------------------------------------------------------------ time
    @property
    def env(self) -> simpy.Environment:
        """The underlying simpy environment (for models that need it directly)."""
        return self._env

    @property
    def start(self) -> datetime:
        """The instant of simulation time 0, in UTC."""
        return self._start

    @property
    def now_s(self) -> float:
        """Simulation time in seconds since :attr:`start`."""
        return float(self._env.now)

    @property
    def now(self) -> datetime:
        """The instant simulation time stands for, ``start + now_s`` (UTC)."""
        return self.at(self.now_s)

    @property
    def now_local(self) -> datetime:
        """:attr:`now` in Asia/Shanghai local time (for display)."""
        return self.now.astimezone(display_tz())

    def at(self, t_s: float) -> datetime:
        """The UTC instant of simulation time ``t_s``."""
        return self._start + timedelta(seconds=float(t_s))

    def seconds_at(self, when: datetime | str) -> float:
        """Simulation time (s) of a timezone-aware instant: ``(when - start)`` in seconds."""
        return (as_utc(when, "when") - self._start).total_seconds()

    # -------------------------------------------------------------- stepping
    def advance_to(self, t_s: float) -> None:
        """Run every scheduled callback and process event up to and including ``t_s``.

        Raises
        ------
        ClockError
            If ``t_s`` is earlier than the current time or not finite.
        """
        t = _finite(t_s, "t_s")
        now = self.now_s
        if t < now:
            raise ClockError(
                f"cannot move the clock back: requested t={t!r} s is before the current "
                f"time {now!r} s ({self.now.isoformat()}); the clock only goes forward — "
                "restore a snapshot to go back"
            )
        env = self._env
        if t > now:
            # A no-op event at t (after everything else at t) carries the clock to t
            # even when nothing else is scheduled. Unlike env.run(until=t), stepping
            # leaves no stop event behind when a callback raises.
            _Tick(env, t, _LAST)
        while env.peek() <= t:
            env.step()

    def advance(self, dt_s: float) -> None:
        """Advance the clock by ``dt_s >= 0`` seconds (see :meth:`advance_to`)."""
        dt = _finite(dt_s, "dt_s")
        if dt < 0:
            raise ClockError(
                f"cannot advance by dt={dt!r} s: negative steps would move the clock back "
                f"from {self.now_s!r} s to {self.now_s + dt!r} s"
            )
        self.advance_to(self.now_s + dt)

    def every(
        self,
        period_s: float,
        callback: Callable[[float], Any],
        *,
        first_s: float | None = None,
        until_s: float | None = None,
    ) -> Periodic:
        """Call ``callback(t)`` every ``period_s`` seconds.

        Call times are ``now_s + k * period_s``, k = 1, 2, ... by default, or
        ``first_s + k * period_s``, k = 0, 1, ... when ``first_s`` is given;
        each is computed from ``k`` (no accumulated drift). At one
        instant, periodic callbacks run in registration order and before the
        ordinary simpy process events of that instant, so processes see the
        state the stepped components have reached.

        Parameters
        ----------
        period_s : float
            Period in seconds, > 0.
        callback : callable
            Called with the simulation time of the call. If it raises, the
            exception propagates out of :meth:`advance_to` and this periodic
            callback stops.
        first_s : float, optional
            Time of the first call; default ``now_s + period_s`` (a component
            stepped by ``dt`` has then reached the time it is called at).
            Must not be earlier than now.
        until_s : float, optional
            No calls after this time.

        Returns
        -------
        Periodic
            Handle whose :meth:`Periodic.cancel` stops the calls.
        """
        period = _finite(period_s, "period_s")
        if period <= 0:
            raise ClockError(f"period_s={period!r} must be > 0 seconds")
        now = self.now_s
        first = now + period if first_s is None else _finite(first_s, "first_s")
        if first < now:
            raise ClockError(
                f"first_s={first!r} s is before the current time {now!r} s; "
                "periodic callbacks can only be scheduled from now on"
            )
        until = None if until_s is None else _finite(until_s, "until_s")
        origin, k0 = (now, 1) if first_s is None else (first, 0)
        handle = Periodic(
            period_s=period,
            first_s=first,
            origin_s=origin,
            k0=k0,
            until_s=until,
            callback=callback,
        )
        # simpy orders events at one instant by (priority, schedule order); URGENT=0 and
        # NORMAL=1. Priorities in (0, 1), increasing with registration, put periodic
        # callbacks after simpy's own urgent events and before ordinary ones, in order.
        self._n_periodic += 1
        priority = 0.5 - 0.5 / (self._n_periodic + 1)
        self._schedule_tick(handle, k0, priority)
        return handle

    def _schedule_tick(self, h: Periodic, k: int, priority: float) -> None:
        t = h.origin_s + k * h.period_s
        if h.cancelled or (h.until_s is not None and t > h.until_s):
            return
        tick = _Tick(self._env, t, priority)

        def fire(_event: simpy.Event) -> None:
            if h.cancelled:
                return
            h.callback(t)
            h.calls += 1
            self._schedule_tick(h, k + 1, priority)

        tick.callbacks.append(fire)

    def process(self, generator: Generator[simpy.Event, Any, Any]) -> simpy.Process:
        """Register a simpy process generator with the master environment."""
        return self._env.process(generator)

    def timeout(self, delay_s: float, value: Any = None) -> simpy.Timeout:
        """A simpy timeout event on the master environment (for use inside processes)."""
        return self._env.timeout(delay_s, value)

    # ----------------------------------------------------------- persistence
    def to_dict(self) -> dict[str, Any]:
        """``{"start": ISO-8601 UTC, "now_s": float}`` (what a snapshot keeps)."""
        return {"start": self._start.isoformat(), "now_s": self.now_s}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SimClock:
        """Rebuild a clock at the saved time (periodic callbacks are not saved: re-register them)."""
        try:
            return cls(start=data["start"], now_s=data["now_s"])
        except KeyError as exc:
            raise ClockError(f"clock record {data!r} lacks {exc.args[0]!r}") from exc

    def __repr__(self) -> str:
        return f"SimClock(start={self._start.isoformat()!r}, now_s={self.now_s!r})"
