"""Sensors of the twin: one validated record per sensor and a registry of them.

A :class:`Sensor` is where a measurement comes from: a rain gauge, a water
level gauge, a camera, a tide gauge... Positions are WGS84 longitude and
latitude in degrees (EPSG:4326); convert GCJ-02/BD-09 positions from Chinese
map services with :mod:`gis.coords` first.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

import pydantic
from pydantic import BaseModel, ConfigDict, Field

from twin.errors import ValidationError

if TYPE_CHECKING:  # pragma: no cover
    import geopandas as gpd


class Sensor(BaseModel):
    """One sensor (pydantic v2, strict, immutable).

    Attributes
    ----------
    id : str
        Unique id within the twin (non-empty, no surrounding whitespace).
    kind : str
        What it measures, e.g. ``"rain_gauge"``, ``"water_level"``.
    name : str
        Human-readable name (may be Chinese).
    lon, lat : float
        WGS84 longitude in [-180, 180] and latitude in [-90, 90], degrees.
    unit : str
        Unit of its observations (UCUM/CF style, e.g. ``"mm"``, ``"m"``). Sensors of the
        hardware bridge give the SI unit it stores (``"1"`` for a gas fraction, ``"K"``); what
        people are shown (ppm, °C) comes from :mod:`hardware_bridge.display`.
    properties : dict
        Free-form JSON-compatible metadata (operator, elevation, ...; simulated devices carry
        ``simulated``, their ``site`` and ``site_source``, see
        :mod:`hardware_bridge.sources.placement`).
    thresholds : dict[str, float]
        Named alert levels in ``unit``, e.g. ``{"warning": 2.5, "alarm": 3.0}``. Named by
        severity (``info``, ``advisory``, ``warning``, ``alarm``) and rising with it, they are
        the station's own alert rules in the bridge
        (:meth:`hardware_bridge.fusion.alerts.AlertEngine.use_sensors`; a running ``twin bridge
        run`` picks up registry changes); other names are only shown (sensor status, forecasts).

    Direct construction raises :class:`pydantic.ValidationError` on bad
    input; :meth:`parse` raises :class:`twin.errors.ValidationError`.
    """

    model_config = ConfigDict(strict=True, frozen=True, extra="forbid")

    id: str = Field(min_length=1, pattern=r"^\S(.*\S)?$")
    kind: str = Field(min_length=1)
    name: str = ""
    lon: float = Field(ge=-180.0, le=180.0, allow_inf_nan=False)
    lat: float = Field(ge=-90.0, le=90.0, allow_inf_nan=False)
    unit: str = ""
    properties: dict[str, Any] = Field(default_factory=dict)
    thresholds: dict[str, float] = Field(default_factory=dict)

    @classmethod
    def parse(cls, record: dict[str, Any]) -> Sensor:
        """Validate a record (e.g. from JSON), raising :class:`twin.errors.ValidationError`."""
        try:
            return cls.model_validate(record)
        except pydantic.ValidationError as exc:
            sid = record.get("id", "?") if isinstance(record, dict) else "?"
            raise ValidationError(f"sensor {sid!r} is invalid: {_describe(exc)}") from exc

    def to_record(self) -> dict[str, Any]:
        """JSON-compatible dict that :meth:`parse` accepts."""
        return self.model_dump(mode="json")


def _describe(exc: pydantic.ValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "record"
        parts.append(f"{loc}={err.get('input')!r}: {err['msg']}")
    return "; ".join(parts)


class SensorRegistry:
    """The sensors of a twin, by id (insertion-ordered).

    Supports ``len``, ``in`` (by id), iteration over :class:`Sensor` records
    and ``==`` (same sensors in the same order).
    """

    def __init__(self, sensors: Iterable[Sensor] = ()) -> None:
        self._by_id: dict[str, Sensor] = {}
        for s in sensors:
            self.add(s)

    def add(self, sensor: Sensor | dict[str, Any]) -> Sensor:
        """Register a sensor (a :class:`Sensor` or a record dict).

        Raises
        ------
        ValidationError
            If the id is already registered, or the record is invalid.
        """
        if not isinstance(sensor, Sensor):
            sensor = Sensor.parse(sensor)
        if sensor.id in self._by_id:
            raise ValidationError(
                f"sensor id {sensor.id!r} is already registered "
                f"(as kind {self._by_id[sensor.id].kind!r}); ids must be unique — "
                "remove the old sensor first or choose another id"
            )
        self._by_id[sensor.id] = sensor
        return sensor

    def get(self, sensor_id: str) -> Sensor:
        """The sensor with this id (raises :class:`ValidationError` if unknown)."""
        try:
            return self._by_id[sensor_id]
        except KeyError:
            raise ValidationError(
                f"sensor id {sensor_id!r} is not registered ({len(self)} sensors known); "
                "add it first or check the id"
            ) from None

    def remove(self, sensor_id: str) -> Sensor:
        """Unregister and return the sensor with this id."""
        sensor = self.get(sensor_id)
        del self._by_id[sensor_id]
        return sensor

    def by_kind(self, kind: str) -> list[Sensor]:
        """Sensors of one kind, in registration order."""
        return [s for s in self._by_id.values() if s.kind == kind]

    def kinds(self) -> dict[str, int]:
        """Count of sensors per kind."""
        out: dict[str, int] = {}
        for s in self._by_id.values():
            out[s.kind] = out.get(s.kind, 0) + 1
        return out

    def ids(self) -> list[str]:
        return list(self._by_id)

    def __iter__(self) -> Iterator[Sensor]:
        return iter(list(self._by_id.values()))

    def __len__(self) -> int:
        return len(self._by_id)

    def __contains__(self, sensor_id: object) -> bool:
        return sensor_id in self._by_id

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SensorRegistry):
            return NotImplemented
        return list(self._by_id.items()) == list(other._by_id.items())

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"SensorRegistry({len(self)} sensors, kinds={self.kinds()})"

    # ------------------------------------------------------------ conversion
    def to_records(self) -> list[dict[str, Any]]:
        """JSON-compatible list of dicts (one per sensor, registration order)."""
        return [s.to_record() for s in self._by_id.values()]

    @classmethod
    def from_records(cls, records: Iterable[dict[str, Any]]) -> SensorRegistry:
        """Rebuild a registry from :meth:`to_records` output (validating every record)."""
        return cls(Sensor.parse(r) for r in records)

    def to_geodataframe(self) -> gpd.GeoDataFrame:
        """Point GeoDataFrame in EPSG:4326, one row per sensor, indexed by nothing special.

        Columns: id, kind, name, unit, properties, thresholds, geometry.
        """
        import geopandas as gpd
        from shapely.geometry import Point

        rows = list(self._by_id.values())
        data = {
            "id": [s.id for s in rows],
            "kind": [s.kind for s in rows],
            "name": [s.name for s in rows],
            "unit": [s.unit for s in rows],
            "properties": [dict(s.properties) for s in rows],
            "thresholds": [dict(s.thresholds) for s in rows],
        }
        geom = [Point(s.lon, s.lat) for s in rows]
        return gpd.GeoDataFrame(data, geometry=geom, crs="EPSG:4326")
