"""Fusion of normalised sensor observations into the twin's models and alerts.

The fusion modules work on plain records so they do not depend on how the
bridge parsed or stored an observation. A :class:`Reading` is one
observation in SI units:

* ``datastream_id`` — the stream it belongs to (hysteresis and dedup are per stream);
* ``kind`` — the sensor kind (``rain_gauge``, ``water_level``, ``gnss_displacement``,
  ``inclinometer``, ``gas_o2``, ``gas_h2s``, ``gas_co``, ``gas_lel``, ``smoke``, ``heat``,
  ``das_event``, ``petrol_video_event``);
* ``time`` — the phenomenon time: a timezone-aware ``datetime`` or seconds (float);
* ``value`` — the SI value (None for event kinds, whose summary is in ``result``);
* ``x``/``y`` in the working metric CRS (EPSG:4547) or ``lon``/``lat`` in WGS84;
* ``station`` — the station / space the sensor belongs to.

:func:`as_readings` accepts Readings, dicts with those keys or a pandas
DataFrame with those columns (``phenomenon_time`` is accepted for ``time``).

Modules: :mod:`.rain_grid` (gauges → gridded rain for the flood model),
:mod:`.levels` (water-level gauges → boundary series and nudging of the flood
state), :mod:`.alerts` (threshold rules → :class:`twin.events.Event`),
:mod:`.confined` (confined-space gas limits and entry permits),
:mod:`.inverse_velocity` (inverse-velocity failure-time forecasts from GNSS /
inclinometer displacement series).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import numpy as np

from twin.errors import CRSError, ValidationError

WORK_CRS = "EPSG:4547"

__all__ = ["WORK_CRS", "Reading", "as_readings", "from_normalized", "seconds_of", "with_xy"]


@dataclass(frozen=True)
class Reading:
    """One normalised observation (SI units); see the module docstring for the fields."""

    datastream_id: str
    kind: str
    time: datetime | float
    value: float | None = None
    x: float | None = None
    y: float | None = None
    lon: float | None = None
    lat: float | None = None
    station: str = ""
    unit: str = ""
    result: dict[str, Any] | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.datastream_id, str) or not self.datastream_id:
            raise ValidationError(f"reading datastream_id={self.datastream_id!r} must be a non-empty string")
        if not isinstance(self.kind, str) or not self.kind:
            raise ValidationError(f"reading {self.datastream_id!r}: kind={self.kind!r} must be a non-empty string")
        if isinstance(self.time, datetime):
            if self.time.tzinfo is None or self.time.tzinfo.utcoffset(self.time) is None:
                raise ValidationError(
                    f"reading {self.datastream_id!r}: time={self.time!r} is naive; give a timezone-aware UTC time"
                )
        elif isinstance(self.time, bool) or not isinstance(self.time, int | float | np.number) \
                or not math.isfinite(float(self.time)):
            raise ValidationError(
                f"reading {self.datastream_id!r}: time={self.time!r} must be an aware datetime or finite seconds"
            )
        if self.value is not None:
            v = self.value
            if isinstance(v, bool) or not isinstance(v, int | float | np.number) or not math.isfinite(float(v)):
                raise ValidationError(
                    f"reading {self.datastream_id!r}: value={v!r} must be a finite number (or None for events)"
                )

    @property
    def t(self) -> float:
        """Phenomenon time in seconds (POSIX seconds for a datetime)."""
        return seconds_of(self.time)


def seconds_of(time: datetime | float, origin: datetime | float | None = None) -> float:
    """Seconds of ``time`` relative to ``origin`` (POSIX epoch when None).

    Datetimes and seconds cannot be mixed: a float ``time`` with a datetime
    ``origin`` (or the reverse) is rejected.
    """
    if isinstance(time, datetime):
        if time.tzinfo is None:
            raise ValidationError(f"time={time!r} is naive; give a timezone-aware UTC time")
        if origin is None:
            return time.timestamp()
        if not isinstance(origin, datetime):
            raise ValidationError(f"time={time!r} is a datetime but origin={origin!r} is not")
        return (time - origin).total_seconds()
    t = float(time)
    if origin is None:
        return t
    if isinstance(origin, datetime):
        raise ValidationError(f"time={time!r} is in seconds but origin={origin!r} is a datetime")
    return t - float(origin)


_COLUMNS = ("datastream_id", "kind", "time", "value", "x", "y", "lon", "lat", "station", "unit", "result")


def _from_mapping(rec: dict[str, Any]) -> Reading:
    rec = dict(rec)
    if "time" not in rec and "phenomenon_time" in rec:
        rec["time"] = rec.pop("phenomenon_time")
    kw = {}
    for k in _COLUMNS:
        v = rec.get(k)
        if v is None:
            continue
        if isinstance(v, float) and math.isnan(v) and k != "value":
            continue
        if k == "time" and hasattr(v, "to_pydatetime"):
            v = v.to_pydatetime()
        if k == "value" and isinstance(v, float) and math.isnan(v):
            continue
        kw[k] = v
    missing = [k for k in ("datastream_id", "kind", "time") if k not in kw]
    if missing:
        raise ValidationError(f"reading record {rec!r} lacks {missing}")
    return Reading(**kw)


def as_readings(obj) -> list[Reading]:
    """Readings from Readings, dicts, or a pandas DataFrame with the :class:`Reading` columns."""
    if hasattr(obj, "to_dict") and hasattr(obj, "columns"):
        return [_from_mapping(r) for r in obj.to_dict("records")]
    if isinstance(obj, Reading):
        return [obj]
    out = []
    for r in obj:
        out.append(r if isinstance(r, Reading) else _from_mapping(r))
    return out


def with_xy(readings: Iterable[Reading], crs: str = WORK_CRS) -> list[Reading]:
    """Readings with ``x``/``y`` filled in ``crs`` from ``lon``/``lat`` (WGS84) where missing."""
    from pyproj import Transformer

    readings = list(readings)
    need = [r for r in readings if r.x is None or r.y is None]
    if not need:
        return readings
    for r in need:
        if r.lon is None or r.lat is None:
            raise CRSError(
                f"reading {r.datastream_id!r} has neither x/y ({crs}) nor lon/lat (WGS84): give a position"
            )
    tr = Transformer.from_crs("EPSG:4326", crs, always_xy=True)
    out = []
    for r in readings:
        if r.x is None or r.y is None:
            x, y = tr.transform(r.lon, r.lat)
            r = replace(r, x=float(x), y=float(y))
        out.append(r)
    return out


def from_normalized(obs, positions=None) -> Reading:
    """A :class:`Reading` from the bridge's normalised observation (duck-typed).

    ``obs`` has ``datastream_id``, ``kind``, ``station``, ``phenomenon_time``,
    ``value``, ``unit`` and ``event`` (``hardware_bridge.validate.NormalizedObservation``).
    ``positions`` gives the station's place: a mapping station -> (lon, lat)
    in WGS84, or a :class:`twin.sensors.SensorRegistry` (sensor id = station).
    """
    lon = lat = None
    st = getattr(obs, "station", "") or ""
    if positions is not None and st:
        if hasattr(positions, "get") and not isinstance(positions, dict):
            try:
                sensor = positions.get(st)
                lon, lat = sensor.lon, sensor.lat
            except Exception:  # noqa: BLE001 - unknown station: no position
                lon = lat = None
        elif st in positions:
            lon, lat = positions[st]
    return Reading(
        datastream_id=obs.datastream_id,
        kind=str(getattr(obs.kind, "value", obs.kind)),
        time=obs.phenomenon_time,
        value=obs.value,
        lon=lon,
        lat=lat,
        station=st,
        unit=getattr(obs, "unit", "") or "",
        result=getattr(obs, "event", None),
    )
