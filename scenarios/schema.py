"""Typed scenario files: what a what-if run, a forecast or a drill is made of (pydantic v2).

A scenario names the city and its area of interest, the start instant and the
duration, the models it runs with their parameters, the hazards, the sensors
and the injects of a drill, the populations, the stations and units, the road
network (``[roads]``: a file, or the ASSUMED lattice where no street data exists), the
outputs and the seed. Every table refuses keys it does not know
(``extra="forbid"``); instants are ISO 8601 with a zone; durations state their
unit (``"6 h"``, ``"30 min"``, ``"90 s"``, ``"2 d"`` or ISO 8601 ``"PT6H"``).

**Models are open by registration.** ``[models.<kind>]`` is a table of the
run kind ``<kind>`` (:func:`twin.runkinds.get_kind`); it is validated by that
kind's own request model in :mod:`scenarios.files`, with the scenario's shared
values passed down (:data:`SHARED_FIELDS`: area, duration, seed, rain, tide and
surge, slope zones and fills, shelters, stations), so a later model (fire,
tunnel) joins the scenario files by registering its kind, with no edit here.
Here the table is only required to be a table.

**Hazards no model consumes yet**: fire origins (``[[hazards.fires]]``) and
construction sources (``[[hazards.construction]]``) are typed and checked, and
kept in the validated scenario for the fire and vibration models to come; no
run reads them today.

The JSON Schema of a scenario file (:func:`scenario_json_schema`) carries the
request schema of every registered kind under ``models``.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    PlainSerializer,
    Tag,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from hardware_bridge.schema import KINDS, STATION_RE, AwareTime, Kind

# ----------------------------------------------------------------------------- durations
_UNITS_S = {"s": 1.0, "sec": 1.0, "second": 1.0, "seconds": 1.0,
            "min": 60.0, "minute": 60.0, "minutes": 60.0,
            "h": 3600.0, "hr": 3600.0, "hour": 3600.0, "hours": 3600.0,
            "d": 86400.0, "day": 86400.0, "days": 86400.0}
_DURATION_RE = re.compile(r"^\s*\+?\s*(\d+(?:\.\d*)?|\.\d+)\s*([a-z]+)\s*$")
_ISO_RE = re.compile(r"^P(?:(\d+(?:\.\d+)?)D)?(?:T(?:(\d+(?:\.\d+)?)H)?(?:(\d+(?:\.\d+)?)M)?(?:(\d+(?:\.\d+)?)S)?)?$")
DURATION_PATTERN = (r"^\s*\+?\s*(\d+(\.\d*)?|\.\d+)\s*(s|sec|seconds?|min|minutes?|h|hr|hours?|d|days?)\s*$"
                    r"|^P(\d+(\.\d+)?D)?(T(\d+(\.\d+)?H)?(\d+(\.\d+)?M)?(\d+(\.\d+)?S)?)?$")
DURATION_HELP = "a duration with its unit: '6 h', '30 min', '90 s', '2 d' or ISO 8601 'PT6H'"


def parse_duration(value: Any) -> float:
    """Seconds of a duration written with its unit (``"6 h"``, ``"+45 min"``, ``"PT1H30M"``).

    Raises
    ------
    ValueError
        For a bare number (the unit must be stated) or text that is not a duration
        (pydantic reports it on the field, with the value).
    """
    if isinstance(value, bool) or isinstance(value, int | float):
        raise ValueError(f"a bare number has no unit: give {DURATION_HELP}")
    if not isinstance(value, str):
        raise ValueError(f"not a duration: give {DURATION_HELP}")
    m = _DURATION_RE.match(value.lower())
    if m and m.group(2) in _UNITS_S:
        return float(m.group(1)) * _UNITS_S[m.group(2)]
    m = _ISO_RE.match(value.strip().upper())
    if m and value.strip().upper() not in ("P", "PT") and not value.strip().upper().endswith("T"):
        d, h, mi, s = (float(g) if g else 0.0 for g in m.groups())
        return d * 86400.0 + h * 3600.0 + mi * 60.0 + s
    raise ValueError(f"not a duration: give {DURATION_HELP}")


def format_duration(seconds: float) -> str:
    """The canonical text of a duration: the largest of d, h, min, s that divides it (``"6 h"``)."""
    for unit, size in (("d", 86400.0), ("h", 3600.0), ("min", 60.0)):
        if seconds >= size and float(seconds / size).is_integer():
            return f"{int(seconds // size)} {unit}"
    return f"{seconds:g} s"


Duration = Annotated[
    float,
    BeforeValidator(parse_duration),
    PlainSerializer(format_duration, return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "pattern": DURATION_PATTERN, "description": DURATION_HELP,
                    "examples": ["6 h", "30 min", "PT1H30M"]}),
]
Instant = Annotated[datetime, WithJsonSchema({"type": "string", "format": "date-time",
                                              "description": "ISO 8601 instant with a zone, "
                                                             "e.g. 2023-09-07T17:00:00+08:00"})]
Lon = Annotated[float, Field(ge=-180.0, le=180.0, allow_inf_nan=False, description="longitude (WGS 84, deg)")]
Lat = Annotated[float, Field(ge=-90.0, le=90.0, allow_inf_nan=False, description="latitude (WGS 84, deg)")]
FilePath = Annotated[str, Field(min_length=1, max_length=1024,
                                description="a file, relative to the scenario file (or absolute)")]

#: Incident kinds of the dispatch model (:data:`agents.dispatch.INCIDENT_TYPES`; a test keeps them equal).
INCIDENT_KINDS = ("fire", "medical", "flood_rescue", "collapse")
#: Unit types of the dispatch model (:data:`agents.dispatch.UNIT_TYPES`).
UNIT_TYPES = ("engine", "ambulance", "rescue")
#: Inject kinds of a drill timeline.
INJECT_KINDS = ("sensor_value", "incident", "road_lost", "station_lost")
#: Construction activities (typed for the vibration model to come).
CONSTRUCTION_KINDS = ("excavation", "piling", "tunnelling", "blasting", "dewatering", "demolition")


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


# ----------------------------------------------------------------------------- time and area
class TimeWindow(_Strict):
    """When the scenario happens.

    Attributes
    ----------
    start : datetime
        ISO 8601 instant with a zone (TOML datetimes are accepted as they are).
    duration : float
        Simulated length (s), written with its unit; more than 0, at most 7 days.
    step : float or None
        The coupled runner's step (s), written with its unit; None: the runner's default.
    """

    start: Annotated[AwareTime, WithJsonSchema({"type": "string", "format": "date-time",
                                                "description": "ISO 8601 instant with a zone"})]
    duration: Duration = Field(gt=0.0, le=7 * 86400.0)
    step: Duration | None = Field(default=None, gt=0.0, le=86400.0)

    @property
    def hours(self) -> float:
        return self.duration / 3600.0


class Area(_Strict):
    """The area of interest: exactly one of districts of the city, a bounding box or a polygon file.

    Attributes
    ----------
    districts : list of str or "all"
        District names (English, Chinese, or adcodes) of the scenario's city; ``"all"``: the whole city.
    bbox : [lon_min, lat_min, lon_max, lat_max] or None
        WGS 84 degrees.
    polygon : str or None
        A GeoJSON/GeoPackage polygon file, relative to the scenario file.
    buffer_m : float
        Margin kept around the area (m).
    """

    districts: list[Annotated[str, Field(min_length=1, max_length=64)]] | Literal["all"] | None = None
    bbox: tuple[Lon, Lat, Lon, Lat] | None = Field(default=None, strict=False)
    polygon: FilePath | None = None
    buffer_m: float = Field(default=0.0, ge=0.0, le=50_000.0, allow_inf_nan=False)

    @model_validator(mode="after")
    def _one(self) -> Area:
        given = [n for n in ("districts", "bbox", "polygon") if getattr(self, n) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of districts, bbox, polygon (given: {given or 'none'})")
        if self.bbox is not None and not (self.bbox[0] < self.bbox[2] and self.bbox[1] < self.bbox[3]):
            raise ValueError("bbox must be [lon_min, lat_min, lon_max, lat_max] with min < max")
        if isinstance(self.districts, list) and not self.districts:
            raise ValueError("districts is empty: name at least one, or write districts = \"all\"")
        return self

    @property
    def whole_city(self) -> bool:
        return self.districts == "all"


# ----------------------------------------------------------------------------- hazards
class Rain(_Strict):
    """Rain: one of a design storm, a uniform rate, or a rain file (CSV hyetograph or gridded NetCDF).

    Attributes
    ----------
    storm : str or None
        A design storm of recorded maxima (``physics.flood_city.STORMS``, e.g. ``"2023-09-07"``).
    rate_mm_h : float or None
        Uniform rain rate (mm/h).
    file : str or None
        CSV ``time_h, mm_h`` or gridded NetCDF ``rain (time, y, x)`` in mm/h.
    storm_duration : float or None
        Length of the storm or uniform rain (s; default: the scenario's duration).
    method : str
        Hyetograph of the design storm: ``alternating_block`` or ``chicago``.
    peak_fraction : float
        Position of the storm's peak in its length (0-1).
    """

    storm: str | None = None
    rate_mm_h: float | None = Field(default=None, ge=0.0, le=500.0, allow_inf_nan=False)
    file: FilePath | None = None
    storm_duration: Duration | None = Field(default=None, gt=0.0, le=7 * 86400.0)
    method: Literal["alternating_block", "chicago"] = "alternating_block"
    peak_fraction: float = Field(default=0.5, ge=0.0, le=1.0, allow_inf_nan=False)

    @model_validator(mode="after")
    def _one(self) -> Rain:
        given = [n for n in ("storm", "rate_mm_h", "file") if getattr(self, n) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of storm, rate_mm_h, file (given: {given or 'none'})")
        return self


class Sea(_Strict):
    """Sea level at the coast: still tide level and a storm-surge peak (m, the DEM's vertical datum)."""

    tide_m: float = Field(default=0.0, ge=-5.0, le=10.0, allow_inf_nan=False)
    surge_m: float = Field(default=0.0, ge=0.0, le=10.0, allow_inf_nan=False)


class FireOrigin(_Strict):
    """Where and when a fire starts. Typed and kept; **no model consumes it yet** (the fire model will)."""

    lon: Lon
    lat: Lat
    after: Duration = Field(default=0.0, ge=0.0)
    building: str | None = Field(default=None, max_length=200)
    floor: int | None = Field(default=None, ge=-10, le=200)
    peak_hrr_kw: float | None = Field(default=None, gt=0.0, le=1e7, allow_inf_nan=False)


class ConstructionSource(_Strict):
    """A construction site as a vibration or ground-movement source.

    Typed and kept; **no model consumes it yet** (the vibration model will).
    A point (``lon``, ``lat``) or a polygon file.
    """

    name: str = Field(min_length=1, max_length=200)
    kind: Literal[CONSTRUCTION_KINDS]
    lon: Lon | None = None
    lat: Lat | None = None
    polygon: FilePath | None = None
    depth_m: float | None = Field(default=None, ge=0.0, le=200.0, allow_inf_nan=False)
    after: Duration = Field(default=0.0, ge=0.0)

    @model_validator(mode="after")
    def _where(self) -> ConstructionSource:
        point = self.lon is not None and self.lat is not None
        if point == (self.polygon is not None) or (self.lon is None) != (self.lat is None):
            raise ValueError("give either lon and lat, or polygon")
        return self


class SlopeHazard(_Strict):
    """Slope inputs: soil zones (raster of codes or polygons with ``zone``) and fills (GeoJSON with ``thickness_m``)."""

    zones: FilePath | None = None
    fills: FilePath | None = None


class Hazards(_Strict):
    """The hazards of a scenario (each optional)."""

    rain: Rain | None = None
    sea: Sea | None = None
    slope: SlopeHazard | None = None
    fires: list[FireOrigin] = Field(default_factory=list, max_length=100)
    construction: list[ConstructionSource] = Field(default_factory=list, max_length=1000)


# ----------------------------------------------------------------------------- sensors and injects
Station = Annotated[str, Field(pattern=f"^{STATION_RE.pattern}$")]


class SensorThresholds(_Strict):
    """A sensor's own alert levels, by severity (:class:`twin.events.Severity`, the bridge's levels), in
    the kind's SI unit (m for a water level); each level given must lie above the less severe ones."""

    info: float | None = Field(default=None, allow_inf_nan=False)
    advisory: float | None = Field(default=None, allow_inf_nan=False)
    warning: float | None = Field(default=None, allow_inf_nan=False)
    alarm: float | None = Field(default=None, allow_inf_nan=False)

    @field_validator("advisory", "warning", "alarm")
    @classmethod
    def _rising(cls, value: float | None, info: ValidationInfo) -> float | None:
        names = list(cls.model_fields)  # least severe first
        given = [(k, info.data[k]) for k in names[:names.index(info.field_name)] if info.data.get(k) is not None]
        if value is not None and given and not value > given[-1][1]:
            raise ValueError(f"must be above {given[-1][0]} = {given[-1][1]!r}: levels rise with severity")
        return value

    def levels(self) -> dict[str, float]:
        """The levels given, least severe first (what :meth:`AlertEngine.set_thresholds
        <hardware_bridge.fusion.alerts.AlertEngine.set_thresholds>` and :class:`twin.sensors.Sensor` take)."""
        return {k: v for k, v in self.model_dump().items() if v is not None}


class Sensor(_Strict):
    """A sensor at a place (a station of the bridge): the drill's ``sensor_value`` injects name them.

    ``thresholds`` (optional): its own alert levels in the kind's SI unit, e.g. ``{advisory = 0.15,
    warning = 0.3, alarm = 0.5}`` m for a water level; the coupled run's alert engine and the live
    bridge of a drill use them for this station (:mod:`hardware_bridge.fusion.alerts`: kinds
    :data:`~hardware_bridge.fusion.alerts.THRESHOLD_METRICS`; rain gauges and O2 take theirs from the
    alert config).
    """

    station: Station
    kind: Kind = Field(strict=False)
    lon: Lon
    lat: Lat
    name: str = Field(default="", max_length=200)
    thresholds: SensorThresholds | None = None

    @field_validator("thresholds")
    @classmethod
    def _for_the_kind(cls, value: SensorThresholds | None, info: ValidationInfo) -> SensorThresholds | None:
        kind = info.data.get("kind")
        if value is None or kind is None:
            return value
        from hardware_bridge.fusion.alerts import threshold_problems

        problems = threshold_problems(kind.value, value.levels())
        if problems:
            raise ValueError("; ".join(f"{lv} = {v!r}: {why}" if lv else why for lv, v, why in problems))
        return value


class SensorValue(_Strict):
    """A reading published as if live: a number with its unit, or an event result for event kinds.

    The unit must be one the bridge accepts for the kind and the value must lie in
    the kind's plausible range (:func:`hardware_bridge.units.to_si`); an event
    kind's result is checked by its event model (:data:`hardware_bridge.schema.KINDS`).
    """

    station: Station
    sensor: Kind = Field(strict=False)
    value: float | None = Field(default=None, allow_inf_nan=False)
    unit: str | None = None
    result: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _per_kind(self) -> SensorValue:
        spec = KINDS[self.sensor]
        if spec.is_event:
            if self.result is None or self.value is not None:
                raise ValueError(f"sensor kind {self.sensor.value!r} reports events: give result "
                                 f"(a table of {spec.event_model.__name__}), not value")
            spec.event_model.model_validate(self.result)
            return self
        if self.value is None or self.unit is None:
            raise ValueError(f"sensor kind {self.sensor.value!r} needs value and unit "
                             f"(one of {', '.join(spec.accepted_units)})")
        from hardware_bridge.units import to_si
        from twin.errors import ValidationError

        try:
            to_si(self.sensor, self.value, self.unit, field="value")
        except ValidationError as exc:
            raise ValueError(str(exc)) from None
        return self


class IncidentPayload(_Strict):
    """An incident for dispatch: where, which kind, optionally its needs and time on scene."""

    lon: Lon
    lat: Lat
    incident: Literal[INCIDENT_KINDS]
    needs: dict[Literal[UNIT_TYPES], Annotated[int, Field(ge=0, le=50)]] | None = None
    on_scene: Duration | None = Field(default=None, gt=0.0, le=86400.0)


class RoadLost(_Strict):
    """A road lost (collapsed, blocked): the road edge nearest to a point, or an OSM way; optionally reopened."""

    lon: Lon | None = None
    lat: Lat | None = None
    osm_way: int | None = Field(default=None, ge=1)
    reason: str = Field(default="", max_length=500)
    lasts: Duration | None = Field(default=None, gt=0.0)

    @model_validator(mode="after")
    def _where(self) -> RoadLost:
        point = self.lon is not None and self.lat is not None
        if point == (self.osm_way is not None) or (self.lon is None) != (self.lat is None):
            raise ValueError("give either lon and lat (the nearest road), or osm_way")
        return self


class StationLost(_Strict):
    """A station lost (out of service): its id in the scenario's stations file."""

    station: str = Field(min_length=1, max_length=64)
    reason: str = Field(default="", max_length=500)


class _Inject(_Strict):
    after: Duration | None = Field(default=None, ge=0.0, description="offset from the scenario's start")
    at: Instant | None = Field(default=None, description="instant (ISO 8601 with a zone)")
    note: str = Field(default="", max_length=1000)

    @field_validator("at", mode="before")
    @classmethod
    def _aware(cls, v: Any) -> Any:
        from hardware_bridge.schema import _parse_time

        return None if v is None else _parse_time(v)

    @model_validator(mode="after")
    def _when(self):
        if (self.after is None) == (self.at is None):
            raise ValueError("give exactly one of after (an offset such as '45 min') or at (an instant)")
        return self


class SensorValueInject(_Inject):
    kind: Literal["sensor_value"]
    payload: SensorValue


class IncidentInject(_Inject):
    kind: Literal["incident"]
    payload: IncidentPayload


class RoadLostInject(_Inject):
    kind: Literal["road_lost"]
    payload: RoadLost


class StationLostInject(_Inject):
    kind: Literal["station_lost"]
    payload: StationLost


def _inject_kind(v: Any) -> str | None:
    return v.get("kind") if isinstance(v, dict) else getattr(v, "kind", None)


Inject = Annotated[
    Annotated[SensorValueInject, Tag("sensor_value")] | Annotated[IncidentInject, Tag("incident")]
    | Annotated[RoadLostInject, Tag("road_lost")] | Annotated[StationLostInject, Tag("station_lost")],
    Discriminator(_inject_kind, custom_error_type="inject_kind",
                  custom_error_message=f"kind must be one of {list(INJECT_KINDS)}"),
]


# ----------------------------------------------------------------------------- people, units, outputs
class Populations(_Strict):
    """Who is there: residents from the 2020 census spread over each district's land (an assumption
    of :mod:`agents.population`), and the shelters they walk to (CSV/GeoJSON; default: the demo list)."""

    residents: Literal["census2020"] = "census2020"
    shelters: FilePath | None = None


class Stations(_Strict):
    """Stations and their units: a CSV ``id, name, kind, lon, lat, engines, ambulances, rescue``
    (default: the assumed demo stations of :mod:`agents.dispatch_run`)."""

    file: FilePath | None = None


class Roads(_Strict):
    """The run's road network: the city's road layer (nothing set), a road file, or the lattice fallback.

    Attributes
    ----------
    file : str or None
        A road network of the user's (GeoJSON edges, OSM XML ``.osm``, Overpass JSON), relative
        to the scenario file; read by :func:`gis.roads.load_road_graph`.
    lattice : bool
        True: where no street data covers the area, an ASSUMED lattice walk network over the
        run's land cells (:func:`gis.lattice_roads.lattice_road_graph`).
    spacing_m : float or None
        Lattice node spacing (m; default 200, rounded to whole cells). Only with ``lattice``.
    circuity : float or None
        Lattice edge length / straight line (default 1.3). Only with ``lattice``.
    """

    file: FilePath | None = None
    lattice: bool = False
    spacing_m: float | None = Field(default=None, gt=0.0, le=5000.0, allow_inf_nan=False)
    circuity: float | None = Field(default=None, ge=1.0, le=3.0, allow_inf_nan=False)

    @model_validator(mode="after")
    def _one(self) -> Roads:
        if self.file is not None and self.lattice:
            raise ValueError("give either file (a road network) or lattice = true (an assumed lattice), not both")
        shaped = [n for n in ("spacing_m", "circuity") if getattr(self, n) is not None]
        if shaped and not self.lattice:
            raise ValueError(f"{' and '.join(shaped)} shape the lattice: set lattice = true, or leave them out")
        return self


class Outputs(_Strict):
    """What a run writes besides its fields and tables."""

    report: bool = True
    map: bool = True
    frame_every: Duration | None = Field(default=None, gt=0.0, le=86400.0)
    formats: list[Literal["netcdf", "zarr", "geoparquet", "geotiff"]] = Field(
        default_factory=lambda: ["netcdf", "geoparquet"])


class Note(_Strict):
    """A source of a number or an assumption, and what it is about (a key of the file, e.g. ``hazards.sea.surge_m``)."""

    about: str = Field(min_length=1, max_length=200)
    text: str = Field(min_length=1, max_length=4000)


# ----------------------------------------------------------------------------- the scenario
#: Scenario values passed down to every model section whose request has the field:
#: request field -> (path in the scenario file, how to read it from a :class:`Scenario`).
#: A model section's own value wins.
SHARED_FIELDS: dict[str, str] = {
    "city": "city",
    "districts": "area.districts",
    "hours": "time.duration",
    "seed": "seed",
    "storm": "hazards.rain.storm",
    "rain_mm_h": "hazards.rain.rate_mm_h",
    "rain_file": "hazards.rain.file",
    "storm_hours": "hazards.rain.storm_duration",
    "method": "hazards.rain.method",
    "peak_fraction": "hazards.rain.peak_fraction",
    "tide_m": "hazards.sea.tide_m",
    "surge_m": "hazards.sea.surge_m",
    "zones": "hazards.slope.zones",
    "fills": "hazards.slope.fills",
    "shelters": "populations.shelters",
    "stations": "stations.file",
}


class Scenario(_Strict):
    """A scenario file, validated (see the module docstring).

    Attributes
    ----------
    name : str
        Identifier (``[a-z][a-z0-9_]*``).
    title, description : str
        What it is, for people.
    city : str
        A shipped city manifest (``twin/cities/<city>.toml``).
    seed : int
        The seed of every random draw of the run (>= 0).
    time : TimeWindow
    area : Area
        Default: the whole city.
    hazards : Hazards
    models : dict
        ``kind name -> table`` of parameters, checked by the kind's own request
        (:func:`scenarios.files.model_requests`).
    sensors : list of Sensor
    injects : list of inject
        The drill timeline: ``sensor_value``, ``incident``, ``road_lost``, ``station_lost``.
    populations : Populations
    stations : Stations
    roads : Roads or None
        The road network (None: the city's road layer).
    outputs : Outputs
    sources, assumptions : list of Note
        Where the numbers come from, and what is assumed, each about a key of the file.
    """

    name: str = Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")
    title: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=20_000)
    city: str = Field(default="shenzhen", pattern=r"^[a-z][a-z0-9_]{0,63}$")
    seed: int = Field(default=0, ge=0, le=2**63 - 1)
    time: TimeWindow
    area: Area = Field(default_factory=lambda: Area(districts="all"))
    hazards: Hazards = Field(default_factory=Hazards)
    models: dict[Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")], dict[str, Any]] = Field(min_length=1)
    sensors: list[Sensor] = Field(default_factory=list, max_length=10_000)
    injects: list[Inject] = Field(default_factory=list, max_length=10_000)
    populations: Populations = Field(default_factory=Populations)
    stations: Stations = Field(default_factory=Stations)
    roads: Roads | None = None
    outputs: Outputs = Field(default_factory=Outputs)
    sources: list[Note] = Field(default_factory=list)
    assumptions: list[Note] = Field(default_factory=list)

    def shared(self) -> dict[str, Any]:
        """The values of :data:`SHARED_FIELDS` this scenario sets, by request field name (hours in h)."""
        out: dict[str, Any] = {"city": self.city, "seed": self.seed, "hours": self.time.hours}
        if isinstance(self.area.districts, list):
            out["districts"] = list(self.area.districts)
        rain = self.hazards.rain
        if rain is not None:
            out.update({"storm": rain.storm, "rain_mm_h": rain.rate_mm_h, "rain_file": rain.file,
                        "method": rain.method, "peak_fraction": rain.peak_fraction,
                        "storm_hours": None if rain.storm_duration is None else rain.storm_duration / 3600.0})
        if self.hazards.sea is not None:
            out.update(tide_m=self.hazards.sea.tide_m, surge_m=self.hazards.sea.surge_m)
        if self.hazards.slope is not None:
            out.update(zones=self.hazards.slope.zones, fills=self.hazards.slope.fills)
        out.update(shelters=self.populations.shelters, stations=self.stations.file)
        return {k: v for k, v in out.items() if v is not None}


# ----------------------------------------------------------------------------- JSON Schema
def scenario_json_schema() -> dict[str, Any]:
    """JSON Schema (2020-12) of a scenario file, with every registered kind's request under ``models``.

    A kind's fields that the scenario passes down (:data:`SHARED_FIELDS`) or that another
    model of the scenario supplies (a field marked ``twin_run``) are not required there.
    """
    from twin.runkinds import kinds

    schema = Scenario.model_json_schema()
    defs = schema.setdefault("$defs", {})
    props = {}
    for k in kinds():
        sub = k.request.model_json_schema()
        sub_defs = sub.pop("$defs", {})
        rename = {f"#/$defs/{n}": f"#/$defs/{k.name}__{n}" for n in sub_defs}
        for n, d in sub_defs.items():
            defs[f"{k.name}__{n}"] = _rewrite_refs(d, rename)
        sub = _rewrite_refs(sub, rename)
        linked = {n for n, f in k.request.model_fields.items()
                  if isinstance(f.json_schema_extra, dict) and "twin_run" in f.json_schema_extra}
        req = [n for n in sub.get("required", []) if n not in SHARED_FIELDS and n not in linked]
        sub["required"] = req
        if not req:
            sub.pop("required")
        sub["description"] = f"{k.title} (run kind {k.name!r}): " + (sub.get("description") or "")
        props[k.name] = sub
    schema["properties"]["models"] = {
        "type": "object", "minProperties": 1, "properties": props, "additionalProperties": False,
        "description": "models enabled, each a table of its run kind's parameters"}
    # the loader names a scenario after its file when the file has no name
    schema["required"] = [r for r in schema.get("required", []) if r != "name"]
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "Shenzhen Twin scenario"
    return schema


def _rewrite_refs(node: Any, rename: dict[str, str]) -> Any:
    if isinstance(node, dict):
        return {k: (rename.get(v, v) if k == "$ref" and isinstance(v, str) else _rewrite_refs(v, rename))
                for k, v in node.items()}
    if isinstance(node, list):
        return [_rewrite_refs(v, rename) for v in node]
    return node


__all__ = ["DURATION_HELP", "INCIDENT_KINDS", "INJECT_KINDS", "SHARED_FIELDS", "UNIT_TYPES", "Area",
           "ConstructionSource", "Duration", "FireOrigin", "Hazards", "IncidentPayload", "Inject", "Note",
           "Outputs", "Populations", "Rain", "RoadLost", "Roads", "Scenario", "Sea", "Sensor", "SensorValue",
           "SlopeHazard", "StationLost", "Stations", "TimeWindow", "format_duration", "parse_duration",
           "scenario_json_schema"]
