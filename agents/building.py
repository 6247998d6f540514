"""Building description for evacuation: the file format, its checks, and a tower generator.

A building file is TOML (``.toml``) or JSON (``.json``) with these tables
(units in the key names; ``agents/data/tower_30_residential.toml`` is a
complete example)::

    name = "30-storey residential tower"

    [location]                 # optional: where the map draws the tower
    lon = 114.0505             # WGS84 degrees
    lat = 22.5367
    label = "..."              # optional, e.g. "demo location"
    footprint = [[114.0503, 22.5365], ...]   # optional polygon (lon, lat)

    [storeys]                  # give count (with height_m) or heights_m
    count = 30                 # storeys above ground, ground floor included
    height_m = 3.0             # storey height (m)
    # heights_m = [4.5, 3.0, ...]   # one per storey, ground first

    [occupancy]
    floor_area_m2 = 600.0      # floor plate (gross, m²)
    load_factor_m2_per_person = 18.6   # or people_per_floor = 32
    ground_floor_people = 0    # the ground floor's own people (they walk to the exits)
    travel_m = 20.0            # farthest travel to the nearest stair door (m); people's
                               # distances are uniform in [0, travel_m]

    [[floors]]                 # optional per-floor overrides (index 0 = ground)
    index = 15
    people = 0                 # this floor's people
    travel_m = 25.0
    aset_s = 900.0             # available safe egress time of the floor (s)
    refuge = true              # a refuge floor

    [[stairs]]                 # at least one; all serve every floor
    name = "A"
    width_m = 1.2              # clear width between walls (m)
    riser_mm = 175.0           # SFPE k from riser/tread (agents.stairs.stair_k)
    tread_mm = 260.0
    door_width_m = 0.9         # clear width of each floor's door into the stair
    landing_travel_m = 2.4     # travel across the landings per storey (default 2 x width)
    exit = 0                   # index of the ground exit door it discharges to
    boundary = "stair_wall"    # or "handrail": the SFPE boundary layer

    [[exits]]                  # ground-floor exit doors
    name = "North door"
    width_m = 1.2

    [movement]
    demographics = "shenzhen_census_2020"   # or "weidmann_adult", "rimea_age"
    floor_share = 0.5          # the floor stream's share of a landing (agents.stairs.merge_split)
    refuge_mode = "stop"       # people reaching a refuge floor stay ("stop") or go on ("continue")
    [movement.premovement]     # agents.demographics.premovement_sample
    dist = "lognormal"
    median_s = 60.0
    sigma = 0.5

A ``[fire]`` table (the fire model's compartments, core, sprinklers...: :mod:`physics.fire_building`)
may sit in the same file; the evacuation ignores it, so one file describes the building for both
(``physics/data/fire_buildings/ping_an_finance_centre.toml``).

Every problem of a file is listed at once, each with its path in the file,
the value and what is allowed (:func:`load_building`); nothing runs on a bad
file. :func:`resolve` turns a valid description into the per-floor arrays the
simulation uses (:class:`Tower`).

:func:`tower_from_osm` builds a description of a simple tower from OSM's
``building:levels`` and footprint area, by rules stated (and cited) in its
docstring; :func:`osm_towers` reads them from a buildings GeoJSON.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from twin.building_file import Location, Storeys, read_description, refuge_floors
from twin.errors import DataIntegrityError, DataMissingError, ValidationError, describe_problems

#: Default map location when a file gives none: the Ping An Finance Centre site, Futian (a demo site).
DEMO_LON, DEMO_LAT = 114.0505, 22.5367
DEMO_LABEL = "demo location: Ping An Finance Centre site, Futian (not the building's own)"

#: Gross floor area per occupant (m²/person), IBC 2018 Table 1004.5 (also used by the SFPE
#: Handbook): residential 200 ft² gross, business 150 ft² gross.
LOAD_FACTOR_M2 = {"residential": 18.6, "business": 13.9}


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


class Occupancy(_Strict):
    """Floor plate and people per floor (by load factor or a count)."""

    floor_area_m2: float = Field(gt=0.0, le=200_000.0, allow_inf_nan=False)
    load_factor_m2_per_person: float | None = Field(default=None, ge=0.5, le=1000.0, allow_inf_nan=False)
    people_per_floor: int | None = Field(default=None, ge=0, le=20_000)
    ground_floor_people: int = Field(default=0, ge=0, le=20_000)
    travel_m: float = Field(default=20.0, ge=0.0, le=500.0, allow_inf_nan=False)

    @model_validator(mode="after")
    def _one(self) -> Occupancy:
        if (self.load_factor_m2_per_person is None) == (self.people_per_floor is None):
            raise ValueError("give either load_factor_m2_per_person or people_per_floor, not both or neither")
        return self


class FloorOverride(_Strict):
    """Values of one floor that differ from the defaults."""

    index: int = Field(ge=0)
    people: int | None = Field(default=None, ge=0, le=20_000)
    travel_m: float | None = Field(default=None, ge=0.0, le=500.0, allow_inf_nan=False)
    aset_s: float | None = Field(default=None, gt=0.0, le=86_400.0, allow_inf_nan=False)
    refuge: bool = False


class Stair(_Strict):
    """One stair serving every floor down to the ground."""

    name: str | None = Field(default=None, max_length=40)
    width_m: float = Field(ge=0.6, le=6.0, allow_inf_nan=False)
    riser_mm: float = Field(default=175.0, ge=100.0, le=250.0, allow_inf_nan=False)
    tread_mm: float = Field(default=260.0, ge=200.0, le=400.0, allow_inf_nan=False)
    door_width_m: float = Field(default=0.9, ge=0.6, le=6.0, allow_inf_nan=False)
    landing_travel_m: float | None = Field(default=None, ge=0.0, le=50.0, allow_inf_nan=False)
    exit: int | None = Field(default=None, ge=0)
    boundary: Literal["stair_wall", "handrail"] = "stair_wall"

    @model_validator(mode="after")
    def _table(self) -> Stair:
        from agents.stairs import stair_k

        try:
            stair_k(self.riser_mm, self.tread_mm)
        except ValidationError as exc:
            raise ValueError(str(exc)) from None
        return self


class ExitDoor(_Strict):
    """A ground-floor exit door."""

    name: str | None = Field(default=None, max_length=40)
    width_m: float = Field(ge=0.6, le=20.0, allow_inf_nan=False)


class Premovement(_Strict):
    """Pre-movement time distribution (:func:`agents.demographics.premovement_sample`)."""

    dist: Literal["lognormal", "uniform", "constant"] = "lognormal"
    median_s: float | None = Field(default=None, gt=0.0, le=86_400.0, allow_inf_nan=False)
    sigma: float | None = Field(default=None, ge=0.0, le=5.0, allow_inf_nan=False)
    shift_s: float | None = Field(default=None, ge=0.0, le=86_400.0, allow_inf_nan=False)
    low_s: float | None = Field(default=None, ge=0.0, le=86_400.0, allow_inf_nan=False)
    high_s: float | None = Field(default=None, ge=0.0, le=86_400.0, allow_inf_nan=False)
    value_s: float | None = Field(default=None, ge=0.0, le=86_400.0, allow_inf_nan=False)

    @model_validator(mode="after")
    def _params(self) -> Premovement:
        allowed = {"lognormal": {"median_s", "sigma", "shift_s"}, "uniform": {"low_s", "high_s"},
                   "constant": {"value_s"}}[self.dist]
        extra = sorted(k for k, v in self.params_all().items() if v is not None and k not in allowed)
        if extra:
            raise ValueError(f"{', '.join(extra)}: not parameters of the {self.dist} distribution "
                             f"(it takes {', '.join(sorted(allowed))})")
        if self.dist == "uniform" and self.low_s is not None and self.high_s is not None \
                and self.high_s < self.low_s:
            raise ValueError(f"high_s={self.high_s!r} is below low_s={self.low_s!r}")
        return self

    def params_all(self) -> dict[str, float | None]:
        return {k: getattr(self, k) for k in ("median_s", "sigma", "shift_s", "low_s", "high_s", "value_s")}

    def params(self) -> dict[str, float]:
        """The parameters given (the sampler's defaults for the rest)."""
        return {k: v for k, v in self.params_all().items() if v is not None}


class Movement(_Strict):
    """Population and behaviour."""

    demographics: Literal["shenzhen_census_2020", "weidmann_adult", "rimea_age"] = "shenzhen_census_2020"
    premovement: Premovement = Premovement()
    floor_share: float = Field(default=0.5, ge=0.0, le=1.0, allow_inf_nan=False)
    refuge_mode: Literal["stop", "continue"] = "stop"


class BuildingSpec(_Strict):
    """A building description (see the module docstring)."""

    name: str = Field(min_length=1, max_length=200)
    location: Location | None = None
    storeys: Storeys
    occupancy: Occupancy
    floors: list[FloorOverride] = Field(default_factory=list)
    stairs: list[Stair] = Field(min_length=1, max_length=20)
    exits: list[ExitDoor] = Field(min_length=1, max_length=20)
    movement: Movement = Movement()
    #: The fire model's tables (:mod:`physics.fire_building`): one file serves the evacuation and the
    #: fire; the evacuation does not read them (the fire loader checks them).
    fire: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _refs(self) -> BuildingSpec:
        n = self.storeys.n
        problems = []
        seen = set()
        for i, f in enumerate(self.floors):
            if f.index >= n:
                problems.append(f"floors.{i}.index={f.index}: the building has floors 0-{n - 1}")
            if f.index in seen:
                problems.append(f"floors.{i}.index={f.index}: that floor is given twice")
            seen.add(f.index)
        for i, s in enumerate(self.stairs):
            if s.exit is not None and s.exit >= len(self.exits):
                problems.append(f"stairs.{i}.exit={s.exit}: there are exits 0-{len(self.exits) - 1}")
        if n > 1 and any(f.refuge and f.index == 0 for f in self.floors):
            problems.append("floors: the ground floor (index 0) cannot be a refuge floor")
        if problems:
            raise ValueError("; ".join(problems))
        return self


# ----------------------------------------------------------------------------- loading
def parse_building(data: dict, source: str = "building") -> BuildingSpec:
    """The checked description of ``data`` (a dict read from TOML or JSON).

    Raises
    ------
    ValidationError
        Listing every problem with its path in the file and its value.
    """
    import pydantic

    try:
        return BuildingSpec.model_validate(data)
    except pydantic.ValidationError as exc:
        raise ValidationError(describe_problems(exc, source)) from None


def load_building(path: str | Path) -> BuildingSpec:
    """Read and check a building file; every problem is listed with its path in the file.

    Raises
    ------
    DataMissingError, DataIntegrityError
        See :func:`read_description`.
    ValidationError
        The description breaks the schema (see :func:`parse_building`).
    """
    return parse_building(read_description(path), source=str(path))


def load_aset(path: str | Path, n_floors: int) -> dict[int, float]:
    """ASET per floor from a CSV with columns ``floor,aset_s`` (s; floor 0 = ground).

    Raises
    ------
    DataMissingError, DataIntegrityError
        A missing file, a missing column, a floor outside ``0..n_floors-1``,
        an ASET not a positive number (names the row).
    """
    import csv

    p = Path(path)
    if not p.is_file():
        raise DataMissingError(f"{p}: no such ASET file (CSV with columns floor,aset_s)")
    out: dict[int, float] = {}
    with p.open(encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        if reader.fieldnames is None or not {"floor", "aset_s"} <= set(reader.fieldnames):
            raise DataIntegrityError(f"{p}: needs columns floor,aset_s (has {reader.fieldnames})")
        for row_no, row in enumerate(reader, start=2):
            try:
                floor, aset = int(row["floor"]), float(row["aset_s"])
            except (TypeError, ValueError):
                raise DataIntegrityError(f"{p} line {row_no}: floor={row['floor']!r}, aset_s={row['aset_s']!r}: "
                                         "expected a whole floor number and seconds") from None
            if not 0 <= floor < n_floors:
                raise DataIntegrityError(f"{p} line {row_no}: floor={floor}: the building has floors "
                                         f"0-{n_floors - 1}")
            if not (math.isfinite(aset) and aset > 0):
                raise DataIntegrityError(f"{p} line {row_no}: aset_s={aset!r}: must be a positive number of s")
            out[floor] = aset
    return out


# ----------------------------------------------------------------------------- resolved tower
@dataclass(frozen=True)
class Tower:
    """A checked building as per-floor and per-element arrays (what the simulation runs on).

    Floors are indexed from the ground (0). Widths in m, speeds in m/s.
    """

    name: str
    lon: float
    lat: float
    location_label: str
    footprint: list[tuple[float, float]]
    storey_height_m: Any        # (F,)
    floor_elevation_m: Any      # (F,) height of each floor above ground
    people: Any                 # (F,) int
    travel_m: Any               # (F,)
    aset_s: Any                 # (F,) NaN where not given
    refuge: Any                 # (F,) bool
    stair_names: list[str]
    stair_k: Any                # (S,)
    stair_width_eff_m: Any      # (S,)
    stair_length_m: Any         # (S, F) travel down storey f -> f-1 (column 0 unused)
    stair_door_width_eff_m: Any  # (S,)
    stair_exit: Any             # (S,) int
    exit_names: list[str]
    exit_width_eff_m: Any       # (E,)
    spec: BuildingSpec

    @property
    def n_floors(self) -> int:
        return len(self.people)

    @property
    def n_stairs(self) -> int:
        return len(self.stair_k)


def square_footprint(lon: float, lat: float, area_m2: float) -> list[tuple[float, float]]:
    """A square of ``area_m2`` centred on (lon, lat), in degrees (when a file gives no footprint)."""
    half = math.sqrt(area_m2) / 2.0
    dlat = half / 111_320.0
    dlon = half / (111_320.0 * math.cos(math.radians(lat)))
    return [(lon - dlon, lat - dlat), (lon + dlon, lat - dlat), (lon + dlon, lat + dlat),
            (lon - dlon, lat + dlat)]


def resolve(spec: BuildingSpec, aset: dict[int, float] | None = None) -> Tower:
    """The arrays of a checked description; ``aset`` (floor -> s) overrides the file's ``aset_s``."""
    import numpy as np

    from agents.stairs import effective_width, stair_k, stair_travel_per_storey

    n = spec.storeys.n
    heights = np.array(spec.storeys.heights_m if spec.storeys.heights_m is not None
                       else [spec.storeys.height_m] * n, dtype=float)
    elev = np.concatenate([[0.0], np.cumsum(heights[:-1])])
    occ = spec.occupancy
    per_floor = occ.people_per_floor if occ.people_per_floor is not None else \
        int(math.floor(occ.floor_area_m2 / occ.load_factor_m2_per_person))
    people = np.full(n, per_floor, dtype=np.int64)
    if n > 1:  # a single-storey building's one floor has the floor's people
        people[0] = occ.ground_floor_people
    travel = np.full(n, occ.travel_m)
    aset_s = np.full(n, np.nan)
    refuge = np.zeros(n, dtype=bool)
    for f in spec.floors:
        if f.people is not None:
            people[f.index] = f.people
        if f.travel_m is not None:
            travel[f.index] = f.travel_m
        if f.aset_s is not None:
            aset_s[f.index] = f.aset_s
        refuge[f.index] = f.refuge
    for floor, value in (aset or {}).items():
        aset_s[floor] = value
    n_exits = len(spec.exits)
    ks, we, lengths, door_we, exits = [], [], [], [], []
    for i, s in enumerate(spec.stairs):
        ks.append(stair_k(s.riser_mm, s.tread_mm))
        we.append(effective_width(s.width_m, s.boundary))
        landing = s.landing_travel_m if s.landing_travel_m is not None else 2.0 * s.width_m
        lengths.append([stair_travel_per_storey(h, s.riser_mm, s.tread_mm, landing) for h in
                        np.concatenate([[heights[0]], heights[:-1]])])
        door_we.append(effective_width(s.door_width_m, "door"))
        exits.append(s.exit if s.exit is not None else i % n_exits)
    loc = spec.location
    lon, lat = (loc.lon, loc.lat) if loc is not None else (DEMO_LON, DEMO_LAT)
    label = (loc.label or "as given in the building file") if loc is not None else DEMO_LABEL
    footprint = [(float(x), float(y)) for x, y in loc.footprint] if loc is not None and loc.footprint else \
        square_footprint(lon, lat, occ.floor_area_m2)
    return Tower(
        name=spec.name, lon=lon, lat=lat, location_label=label, footprint=footprint,
        storey_height_m=heights, floor_elevation_m=elev, people=people, travel_m=travel, aset_s=aset_s,
        refuge=refuge, stair_names=[s.name or f"stair {chr(65 + i)}" for i, s in enumerate(spec.stairs)],
        stair_k=np.array(ks), stair_width_eff_m=np.array(we), stair_length_m=np.array(lengths),
        stair_door_width_eff_m=np.array(door_we), stair_exit=np.array(exits, dtype=np.int64),
        exit_names=[e.name or f"exit {i + 1}" for i, e in enumerate(spec.exits)],
        exit_width_eff_m=np.array([effective_width(e.width_m, "door") for e in spec.exits]), spec=spec)


# ----------------------------------------------------------------------------- OSM towers
def tower_from_osm(levels: int, footprint_area_m2: float, *, use: str = "residential",
                   height_m: float | None = None, name: str | None = None, lon: float | None = None,
                   lat: float | None = None, footprint: list[tuple[float, float]] | None = None,
                   premovement: dict | None = None) -> BuildingSpec:
    """A simple tower's description from OSM ``building:levels`` and its footprint area.

    Rules (assumptions, each labelled with its source):

    * storeys = ``levels`` (ground included); storey height = OSM ``height`` /
      levels when given, else 3.0 m residential / 4.0 m business (assumption:
      typical floor-to-floor heights);
    * floor plate = the footprint area (an extruded footprint: assumption);
    * people: floor plate / load factor, 18.6 m²/person residential and
      13.9 m²/person business (IBC 2018 Table 1004.5, gross); the ground floor
      is a lobby with nobody of its own (assumption);
    * stairs (GB 50016-2014): two stairs when the building is a high-rise
      (> 27 m residential, > 24 m otherwise) — §5.5.25 asks two exits per
      residential unit above 54 m and from 27 m when a floor exceeds 650 m²
      or travel exceeds 10 m, §5.5.8 two for public buildings — or when a
      floor exceeds 650 m²; else one. Clear width 1.1 m (§5.5.30:
      residential stairs and ground exit doors >= 1.10 m; §5.5.18: 1.2 m for
      other high-rise buildings' ground exit doors and, by the 1.0 m per 100
      people of §5.5.21, wider stairs for crowded business floors); riser/tread
      175/260 mm residential (GB 50096-2011 §6.3.2), 165/280 mm business
      (assumption); stair doors 0.9 m (§5.5.30 / §5.5.18 minimum);
    * one ground exit door per stair (assumption);
    * travel to the nearest stair door <= 20 m (the §5.5.29 / §5.5.17 limit
      for dead-end travel in high-rise buildings);
    * refuge floors over 100 m: the highest floor within each 50 m of
      height (GB 50016-2014 §5.5.23), people reaching one stay there.

    Returns
    -------
    BuildingSpec
        Checked like a file (the same schema).
    """
    if use not in LOAD_FACTOR_M2:
        raise ValidationError(f"use={use!r}: one of {sorted(LOAD_FACTOR_M2)}")
    if isinstance(levels, bool) or not isinstance(levels, int) or not 1 <= levels <= 200:
        raise ValidationError(f"levels={levels!r}: a whole number of storeys, 1-200")
    if not (math.isfinite(footprint_area_m2) and footprint_area_m2 > 0):
        raise ValidationError(f"footprint_area_m2={footprint_area_m2!r}: must be a positive area")
    storey = height_m / levels if height_m else (3.0 if use == "residential" else 4.0)
    top = storey * levels
    residential = use == "residential"
    high_rise = top > (27.0 if residential else 24.0)
    n_stairs = 2 if (high_rise or footprint_area_m2 > 650.0) and levels > 1 else 1
    per_floor = int(math.floor(footprint_area_m2 / LOAD_FACTOR_M2[use]))
    width = 1.1 if residential else max(1.2, round(per_floor / 100.0 * 1.0 / n_stairs + 0.049, 1))
    riser, tread = (175.0, 260.0) if residential else (165.0, 280.0)
    elevations = [storey * i for i in range(levels)]
    floors = [{"index": i, "refuge": True, "people": 0} for i in refuge_floors(elevations, top)]
    desc: dict[str, Any] = {
        "name": name or f"{levels}-storey {use} tower (generated, assumed layout)",
        "storeys": {"count": levels, "height_m": storey},
        "occupancy": {"floor_area_m2": float(footprint_area_m2),
                      "load_factor_m2_per_person": LOAD_FACTOR_M2[use], "ground_floor_people": 0,
                      "travel_m": 20.0},
        "floors": floors,
        "stairs": [{"name": chr(65 + i), "width_m": width, "riser_mm": riser, "tread_mm": tread,
                    "door_width_m": 0.9, "exit": i} for i in range(n_stairs)],
        "exits": [{"name": f"exit {chr(65 + i)}", "width_m": 1.1 if residential else 1.2}
                  for i in range(n_stairs)],
        "movement": {"premovement": premovement or {"dist": "lognormal", "median_s": 60.0, "sigma": 0.5}},
    }
    if lon is not None and lat is not None:
        desc["location"] = {"lon": float(lon), "lat": float(lat), "label": "OpenStreetMap footprint"}
        if footprint:
            desc["location"]["footprint"] = [[float(x), float(y)] for x, y in footprint]
    return parse_building(desc, source="tower_from_osm")


def _levels(value: Any) -> int | None:
    try:
        n = int(float(str(value).strip()))
    except (TypeError, ValueError):
        return None
    return n if n >= 1 else None


def osm_towers(path: str | Path, *, min_levels: int = 1) -> Any:
    """Buildings of an OSM buildings GeoJSON with ``building:levels`` >= ``min_levels``.

    Returns
    -------
    geopandas.GeoDataFrame
        Columns osmid, name, building, levels (int), height_m (float or NaN),
        area_m2 (footprint area in EPSG:4547), lon, lat (centroid), geometry
        (WGS84), tallest first.
    """
    import geopandas as gpd
    import numpy as np

    p = Path(path)
    if not p.is_file():
        raise DataMissingError(f"{p}: no such buildings file (GeoJSON with building:levels)")
    gdf = gpd.read_file(p)
    if "building:levels" not in gdf.columns:
        raise DataIntegrityError(f"{p}: no 'building:levels' column (has {list(gdf.columns)[:10]})")
    gdf = gdf.to_crs("EPSG:4326") if gdf.crs is not None else gdf.set_crs("EPSG:4326")
    gdf["levels"] = [_levels(v) for v in gdf["building:levels"]]
    gdf = gdf[gdf["levels"].notna() & gdf.geometry.notna()].copy()
    gdf["levels"] = gdf["levels"].astype(int)
    gdf = gdf[gdf["levels"] >= min_levels]
    gdf = gdf[gdf.geometry.geom_type.isin(["Polygon", "MultiPolygon"])]
    gdf["height_m"] = [float(h) if _levels(h) else np.nan for h in gdf.get("height", [None] * len(gdf))]
    metric = gdf.geometry.to_crs("EPSG:4547")
    gdf["area_m2"] = metric.area
    cent = metric.centroid.to_crs("EPSG:4326")
    gdf["lon"], gdf["lat"] = cent.x, cent.y
    keep = [c for c in ("osmid", "name", "building") if c in gdf.columns]
    out = gdf[keep + ["levels", "height_m", "area_m2", "lon", "lat", "geometry"]]
    return out.sort_values(["levels", "area_m2"], ascending=False).reset_index(drop=True)


def tower_from_osm_row(row: Any, *, use: str | None = None) -> BuildingSpec:
    """:func:`tower_from_osm` of one row of :func:`osm_towers` (its footprint and height kept)."""
    geom = row.geometry
    poly = max(geom.geoms, key=lambda g: g.area) if geom.geom_type == "MultiPolygon" else geom
    kind = use or ("residential" if str(row.get("building", "")) in
                   ("residential", "apartments", "house", "dormitory", "yes") else "business")
    height = float(row["height_m"]) if math.isfinite(float(row["height_m"])) else None
    label = str(row.get("name") or "") or f"OSM building {row.get('osmid', '')}".strip()
    return tower_from_osm(int(row["levels"]), float(row["area_m2"]), use=kind, height_m=height,
                          name=f"{label} ({int(row['levels'])} storeys, {kind})", lon=float(row["lon"]),
                          lat=float(row["lat"]), footprint=list(poly.exterior.coords)[:-1])


__all__ = ["DEMO_LABEL", "DEMO_LAT", "DEMO_LON", "LOAD_FACTOR_M2", "BuildingSpec", "Tower", "load_aset",
           "load_building", "osm_towers", "parse_building", "read_description", "resolve", "tower_from_osm",
           "tower_from_osm_row"]
