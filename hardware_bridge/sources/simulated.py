"""Simulated field devices for drills, demos and tests (seeded, reproducible).

Every device reports one datastream ``"{station}/{kind}"`` on
``sz/v1/{kind}/{station}/obs`` every ``interval_s`` seconds of simulated time,
with the payloads of :mod:`hardware_bridge.schema`, and a retained status on
``.../status``. The value model of a device is::

    value(t) = truth_kind(t) + drift_per_day * (t - t0) / 86400 + N(0, noise_sigma)

rounded to the instrument's resolution, where ``truth_kind`` is:

* ``rain_gauge`` — depth per interval (mm): a two-state (dry / raining) Markov
  chain per interval, wet-interval intensity exponential with mean
  ``rain_mean_mm_h``, tipping-bucket resolution 0.1 mm (no drift, no negative values);
* ``water_level`` — m: mean level plus a semidiurnal (M2, 12.42 h) tide;
* ``gnss_displacement`` — mm: creep at a constant rate (mm/day);
* ``inclinometer`` — deg: a small tilt with creep;
* ``gas_o2`` %vol 20.9, ``gas_h2s`` ppm 0, ``gas_co`` ppm 1, ``gas_lel`` %LEL 0
  (electrochemical / catalytic cells: small noise, zero drift), with rare
  excursions (O2 depletion, H2S release) of ``excursion_prob`` per interval;
* ``smoke`` — %/m obscuration near 0; ``heat`` — degC with a diurnal cycle;
* ``das_event`` / ``petrol_video_event`` — event kinds: a message only when a
  Poisson event (``event_rate_per_h``) happens, with an event object result.

Battery: starts in [0.6, 1.0], drains ``battery_per_msg`` per message; below
0.05 the device goes offline for good (status ``offline``, as its last will
would). Dropouts: each interval a reporting device goes silent with
probability ``dropout_prob`` for a geometric number of intervals (mean
``dropout_mean_intervals``), announced by an ``offline`` status and ended by
``online``. ``resend_prob`` repeats a reading unchanged (same datastream,
phenomenonTime and seq: an at-least-once re-send the store deduplicates).

All randomness comes from ``numpy.random.default_rng(SeedSequence(seed).spawn)``
per device: the same seed gives the same messages.
"""

from __future__ import annotations

import heapq
import json
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from hardware_bridge.schema import Kind, datastream_id, obs_topic, status_topic
from twin.errors import ValidationError

#: Per kind: unit on the wire, base value, noise sigma, resolution, drift sigma (unit/day).
_PROFILE: dict[Kind, tuple[str, float, float, float, float]] = {
    Kind.RAIN_GAUGE: ("mm", 0.0, 0.0, 0.1, 0.0),
    Kind.WATER_LEVEL: ("m", 1.2, 0.005, 0.001, 0.002),
    Kind.GNSS_DISPLACEMENT: ("mm", 0.0, 2.0, 0.1, 0.0),
    Kind.INCLINOMETER: ("deg", 0.05, 0.002, 0.0001, 0.0005),
    Kind.GAS_O2: ("%vol", 20.9, 0.05, 0.01, 0.02),
    Kind.GAS_H2S: ("ppm", 0.0, 0.1, 0.1, 0.05),
    Kind.GAS_CO: ("ppm", 1.0, 0.3, 0.1, 0.1),
    Kind.GAS_LEL: ("%LEL", 0.0, 0.3, 0.1, 0.1),
    Kind.SMOKE: ("%/m", 0.02, 0.01, 0.001, 0.0),
    Kind.HEAT: ("degC", 28.0, 0.2, 0.1, 0.0),
    Kind.DAS_EVENT: ("", 0.0, 0.0, 0.0, 0.0),
    Kind.PETROL_VIDEO_EVENT: ("", 0.0, 0.0, 0.0, 0.0),
}
_PREFIX = {
    Kind.RAIN_GAUGE: "RG", Kind.WATER_LEVEL: "WL", Kind.GNSS_DISPLACEMENT: "GN",
    Kind.INCLINOMETER: "IN", Kind.GAS_O2: "O2", Kind.GAS_H2S: "HS", Kind.GAS_CO: "CO",
    Kind.GAS_LEL: "LE", Kind.SMOKE: "SM", Kind.HEAT: "HT", Kind.DAS_EVENT: "DA",
    Kind.PETROL_VIDEO_EVENT: "PV",
}
M2_PERIOD_S = 12.4206 * 3600.0  # principal lunar semidiurnal tide


@dataclass(frozen=True)
class DeviceSpec:
    """One simulated device (see the module docstring for the model)."""

    kind: Kind
    station: str
    interval_s: float = 60.0
    noise_sigma: float | None = None
    drift_per_day: float | None = None
    battery_start: float | None = None
    battery_per_msg: float = 2e-5
    dropout_prob: float = 0.002
    dropout_mean_intervals: float = 5.0
    resend_prob: float = 0.0
    excursion_prob: float = 0.0005
    rain_wet_prob: float = 0.3
    rain_mean_mm_h: float = 8.0
    creep_mm_day: float = 0.5
    tide_amplitude_m: float = 0.8
    event_rate_per_h: float = 0.5
    firmware: str = "sim-1.0"

    @property
    def datastream(self) -> str:
        return datastream_id(self.station, self.kind)

    @property
    def unit(self) -> str:
        return _PROFILE[self.kind][0]


def make_devices(
    n: int,
    kinds: Sequence[Kind | str] | None = None,
    *,
    interval_s: float = 60.0,
    prefix: str = "SIM",
    **overrides: Any,
) -> list[DeviceSpec]:
    """``n`` devices, kinds taken round-robin from ``kinds`` (default: every kind).

    Stations are ``"{prefix}-{XX}-{i:04d}"`` with a two-letter code per kind.
    """
    if n < 0:
        raise ValidationError(f"devices n={n} must be >= 0")
    if not interval_s > 0 or not math.isfinite(interval_s):
        raise ValidationError(f"interval_s={interval_s!r} must be a positive number of seconds")
    try:
        ks = [Kind(k) for k in (kinds or list(Kind))]
    except ValueError as exc:
        raise ValidationError(f"unknown sensor kind in kinds={kinds!r}: {exc}; "
                              f"use {[k.value for k in Kind]}") from None
    if not ks:
        raise ValidationError("kinds=[] : give at least one sensor kind")
    out = []
    for i in range(n):
        k = ks[i % len(ks)]
        out.append(DeviceSpec(k, f"{prefix}-{_PREFIX[k]}-{i:04d}", interval_s=interval_s,
                              **overrides))
    return out


@dataclass(order=True)
class SimMessage:
    """A message a device sends at simulated time ``time``."""

    time: datetime
    order: int
    topic: str = field(compare=False)
    payload: bytes = field(compare=False)
    retain: bool = field(default=False, compare=False)
    kind: str = field(default="obs", compare=False)  # "obs" | "status"


def _iso(t: datetime) -> str:
    return t.astimezone(UTC).isoformat().replace("+00:00", "Z")


class _Device:
    def __init__(self, spec: DeviceSpec, rng: np.random.Generator, start: datetime) -> None:
        self.spec = spec
        self.rng = rng
        self.t0 = start
        unit, base, sigma, res, drift_sd = _PROFILE[spec.kind]
        self.base = base
        self.sigma = sigma if spec.noise_sigma is None else spec.noise_sigma
        self.res = res
        self.drift = (
            rng.normal(0.0, drift_sd) if spec.drift_per_day is None else spec.drift_per_day
        )
        self.battery = (
            float(rng.uniform(0.6, 1.0)) if spec.battery_start is None else spec.battery_start
        )
        self.phase = float(rng.uniform(0, 2 * math.pi))
        self.wet = False
        self.excursion = 0
        self.seq = 0

    def _status(self, t: datetime, state: str) -> bytes:
        rec: dict[str, Any] = {"state": state, "time": _iso(t)}
        if state == "online":
            rec["battery"] = round(max(self.battery, 0.0), 4)
            rec["firmware"] = self.spec.firmware
        return json.dumps(rec).encode()

    def _value(self, t_s: float) -> float | None:
        s, rng, k = self.spec, self.rng, self.spec.kind
        if k == Kind.RAIN_GAUGE:
            # two-state Markov chain: stay wet with prob 0.8, start raining with rain_wet_prob/4
            self.wet = rng.random() < (0.8 if self.wet else s.rain_wet_prob / 4)
            if not self.wet:
                return 0.0
            depth = rng.exponential(s.rain_mean_mm_h) * s.interval_s / 3600.0
            return round(depth / self.res) * self.res
        if k == Kind.WATER_LEVEL:
            truth = self.base + s.tide_amplitude_m * math.sin(2 * math.pi * t_s / M2_PERIOD_S + self.phase)
        elif k == Kind.GNSS_DISPLACEMENT:
            truth = s.creep_mm_day * t_s / 86400.0
        elif k == Kind.INCLINOMETER:
            truth = self.base + 1e-3 * s.creep_mm_day * t_s / 86400.0
        elif k in (Kind.GAS_O2, Kind.GAS_H2S, Kind.GAS_CO, Kind.GAS_LEL, Kind.SMOKE):
            if self.excursion == 0 and rng.random() < s.excursion_prob:
                self.excursion = int(rng.integers(3, 20))
            bump = 0.0
            if self.excursion:
                self.excursion -= 1
                bump = {Kind.GAS_O2: -2.5, Kind.GAS_H2S: 15.0, Kind.GAS_CO: 40.0,
                        Kind.GAS_LEL: 12.0, Kind.SMOKE: 3.0}[k]
            truth = self.base + bump
        elif k == Kind.HEAT:
            truth = self.base + 3.0 * math.sin(2 * math.pi * t_s / 86400.0 + self.phase)
        else:  # pragma: no cover - event kinds handled by the caller
            return None
        v = truth + self.drift * t_s / 86400.0 + rng.normal(0.0, self.sigma)
        if k == Kind.SMOKE:
            v = max(v, 0.0)
        if k == Kind.GAS_O2:
            v = min(max(v, 0.0), 100.0)
        return round(round(v / self.res) * self.res, 6)

    def _event(self) -> dict[str, Any] | None:
        s, rng = self.spec, self.rng
        p = 1.0 - math.exp(-s.event_rate_per_h * s.interval_s / 3600.0)
        if rng.random() >= p:
            return None
        if s.kind == Kind.DAS_EVENT:
            cls = ["intrusion", "excavation", "vehicle", "train", "water_leak", "unknown"]
            return {
                "position_m": round(float(rng.uniform(0, 20_000)), 1),
                "energy": round(float(rng.lognormal(2.0, 1.0)), 3),
                "class": cls[int(rng.integers(len(cls)))],
                "confidence": round(float(rng.uniform(0.5, 1.0)), 3),
            }
        viol = ["smoking", "phone", "open_flame", "other"]
        return {
            "station": s.station,
            "violation": viol[int(rng.integers(len(viol)))],
            "confidence": round(float(rng.uniform(0.5, 1.0)), 3),
            "camera": f"{s.station}-cam{int(rng.integers(1, 5))}",
        }

    def messages(self, duration_s: float) -> Iterator[tuple[datetime, str, bytes, bool, str]]:
        s, rng = self.spec, self.rng
        obs_t, st_t = obs_topic(s.kind, s.station), status_topic(s.kind, s.station)
        yield self.t0, st_t, self._status(self.t0, "online"), True, "status"
        silent = 0
        n_steps = int(math.floor(duration_s / s.interval_s + 1e-9))
        for i in range(1, n_steps + 1):
            t_s = i * s.interval_s
            t = self.t0 + timedelta(seconds=t_s)
            if self.battery < 0.05:
                yield t, st_t, self._status(t, "offline"), True, "status"
                return
            if silent:
                silent -= 1
                if silent == 0:
                    yield t, st_t, self._status(t, "online"), True, "status"
                else:
                    continue
            elif rng.random() < s.dropout_prob:
                silent = 1 + int(rng.geometric(1.0 / max(s.dropout_mean_intervals, 1.0)))
                yield t, st_t, self._status(t, "offline"), True, "status"
                continue
            if s.kind in (Kind.DAS_EVENT, Kind.PETROL_VIDEO_EVENT):
                result: Any = self._event()
                if result is None:
                    continue
                rec = {"datastream": s.datastream, "phenomenonTime": _iso(t),
                       "resultTime": _iso(t), "result": result, "seq": self.seq}
            else:
                result = self._value(t_s)
                rec = {"datastream": s.datastream, "phenomenonTime": _iso(t),
                       "resultTime": _iso(t + timedelta(seconds=float(rng.uniform(0, 1)))),
                       "result": result, "unit": s.unit, "seq": self.seq}
            self.seq += 1
            self.battery -= s.battery_per_msg
            payload = json.dumps(rec).encode()
            yield t, obs_t, payload, False, "obs"
            if rng.random() < s.resend_prob:
                yield t, obs_t, payload, False, "obs"


def simulate(
    devices: Sequence[DeviceSpec],
    start: datetime,
    duration_s: float,
    *,
    seed: int = 0,
) -> Iterator[SimMessage]:
    """Messages of all devices over ``[start, start + duration_s]``, in time order.

    ``start`` must be timezone-aware. Deterministic for a given ``seed``.
    """
    if start.tzinfo is None or start.utcoffset() is None:
        raise ValidationError(f"simulation start={start!r} is naive; give a timezone, e.g. UTC")
    if not (duration_s >= 0 and math.isfinite(duration_s)):
        raise ValidationError(f"duration_s={duration_s!r} must be a finite number >= 0")
    rngs = [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(len(devices))]
    gens = [_Device(d, r, start).messages(duration_s) for d, r in zip(devices, rngs, strict=True)]

    def tagged(i: int, g):
        for t, topic, payload, retain, kind in g:
            yield SimMessage(t, i, topic, payload, retain, kind)

    # heapq.merge is stable across iterables for equal keys (time, device index)
    yield from heapq.merge(*(tagged(i, g) for i, g in enumerate(gens)))


def with_defaults(spec: DeviceSpec, **changes: Any) -> DeviceSpec:
    """A copy of ``spec`` with some parameters changed."""
    return replace(spec, **changes)


__all__ = ["DeviceSpec", "SimMessage", "make_devices", "simulate", "with_defaults"]
