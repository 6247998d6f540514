"""The fire model's building description: the file format, its checks, and the network it builds.

A fire building file is the evacuation's building file (``agents/building.py``:
``[storeys]``, ``[[floors]]`` with ``refuge``, ``[[stairs]]``, ``[occupancy]``)
plus a ``[fire]`` table, so the fire and the evacuation see the same storeys,
refuge floors and stairs floor by floor. Either the file holds the shared
tables itself, or it names the evacuation file with ``building = "<path>"``
(relative to the fire file) and holds only ``[fire]``. Location, storeys,
file reading and the refuge-floor rule are :mod:`twin.building_file`'s (both
models use them; physics does not import agents); this module reads the
floors strictly, the evacuation-only keys (people, exits,
movement) are left to the evacuation loader. Units are in the key names::

    building = "../../../agents/data/tower_30_residential.toml"   # or the shared tables here

    [fire]
    occupancy = "dwelling"     # EN 1991-1-2 Table E.4 class: fuel load and growth (FUEL_LOAD_MJ_M2)
    fuel_load_mj_m2 = 948.0    # optional; default the class's 80 % fractile
    growth = "medium"          # optional; default the class's rate (GROWTH_BY_OCCUPANCY)
    lining = "concrete"        # rooms' linings: "gypsum" or "concrete" (physics.fire_network)
    architectural_height_m = 599.1   # optional: the top (crown, spire) above the storeys
    sources = ["..."]          # where the facts come from
    assumptions = ["..."]      # every assumed value, said as such

    [fire.plate]               # the floor plate of every storey
    area_m2 = 600.0            # gross area of the ground storey (default occupancy.floor_area_m2)
    top_area_m2 = 400.0        # optional: the top storey's, linear in between (a tapering tower)
    perimeter_m = 100.0        # optional: facade length (default that of a square plate)
    ceiling_height_m = 2.8     # floor to ceiling of rooms, lobby, corridor (default the storey height)
    corridor_area_m2 = 0.0     # a corridor between rooms and lobby (0: rooms open on the lobby)
    corridor_door_width_m = 1.2
    corridor_door_open = 0.0   # open fraction of the corridor-lobby door

    [[fire.rooms]]             # the net plate (plate - lobby - corridor - shafts) split by share
    name = "flat A"
    share = 0.25               # the shares add up to 1
    door_width_m = 0.9         # its door to the corridor (or lobby)
    door_open = 0.0            # 0 closed (with leakage), 1 open
    occupancy = "dwelling"     # optional: this room's fuel class
    windows = true             # glazing on its share of the facade

    [fire.core]
    lobby_area_m2 = 25.0       # the lift/stair lobby (front room) of every storey
    lobby_pressurised = false  # pressurised front room, design_dp_pa 25 (GB 51251-2017 §3.4.4)
    entrance_width_m = 2.0     # the ground lobby's door to the outside (closed, with leakage)
    [[fire.core.stairs]]       # optional per stair of [[stairs]], by name
    name = "A"
    area_m2 = 10.0             # plan area (default: a dog-leg enclosure from [[stairs]] width/riser/tread)
    pressurised = true
    design_dp_pa = 50.0        # stair-corridor pressure difference (GB 51251-2017 §3.4.4: 40-50 Pa)
    [[fire.core.lifts]]        # lift shafts (one shaft compartment per storey of the span)
    name = "fire lift"
    cars = 1                   # cars in the shaft (landing-door leakage per car)
    car_area_m2 = 6.5          # plan area per car
    bottom = 0                 # lowest and highest storey of the shaft
    top = 29
    express_to = 10            # optional: no landing doors from bottom+1 to this storey
    # stops = [0, 15, 29]      # or instead: the storeys with landing doors (default every one)
    fire_lift = true
    [[fire.core.smoke_shafts]] # smoke-control shafts, a damper on each storey, open at the roof
    name = "smoke shaft"
    area_m2 = 2.0
    serves = "corridor"        # or "lobby"
    damper_leak_m2 = 0.01      # leakage of a closed damper

    [fire.refuge]              # refuge floors come from [[floors]] refuge = true
    area_m2 = 930.0            # the refuge area (default the net plate; the rest is plant)
    pressurised = true         # design_dp_pa 25 (GB 51251-2017 §3.4.4: 25-30 Pa)

    [fire.sprinklers]
    installed = true
    response = "quick"         # RTI 50 (m·s)^½ quick, 100 standard (SPRINKLER_RTI)
    activation_c = 68.0        # link rating (NFPA 13 ordinary classification 57-77 °C)
    spacing_m2 = 12.0          # floor area per head
    depth_m = 0.1              # link below the ceiling
    control = "held"           # "held": HRR held at activation; "decay": Evans (1993) decay
    spray_density_mm_min = 6.0 # for "decay" (GB 50084-2017 Table 5.0.1: light 4, ordinary I 6)

    [fire.detectors]
    installed = true
    kind = "smoke"             # smoke: 13 K rise, RTI 5 (DETECTOR_DEFAULTS); heat: 57 °C, RTI 100
    locations = ["room", "corridor", "lobby", "refuge"]

    [fire.glazing]
    type = "double"            # fall-out temperature 450 °C single, 600 °C double (GLAZING_BREAK_C)
    fraction = 0.4             # glazed share of the facade length
    sill_m = 0.9               # above the room's floor
    head_m = 2.4

    [fire.leakage]
    tightness = "average"      # Klote & Milke wall and door leakage (LEAKAGE_RATIO), or give:
    exterior_wall_ratio = 1.7e-4   # leakage area / wall area
    door_m2 = 0.021            # a closed single door
    lift_door_m2 = 0.06        # a closed lift landing door

Every problem of a file is listed at once, each with its path in the file,
the value and what is allowed (:func:`load_fire_building`); nothing runs on a
bad file. :func:`build_network` turns a checked description into the
:class:`~physics.fire_network.FireNetwork` the zone model runs on, one storey
after another: the lobby, the corridor, the rooms (or the refuge area and plant
on a refuge floor) with doors, windows and wall leakage; each stair, lift shaft
and smoke shaft a column of compartments joined by ceiling vents of its
cross-section. The network's ``attrs`` carry what the zone model needs beyond
the arrays: ``pressurisation_pa`` (N, NaN where not pressurised),
``fuel_load_mj_m2``, ``hrrpua_kw_m2`` and ``growth`` per compartment, and the
sprinkler, detector and glazing parameters.

:func:`fire_building_from_osm` describes a simple tower from an OSM
feature's ``building:levels``, ``height`` and footprint by the rules of
``agents.building.tower_from_osm`` plus stated fire defaults.
:data:`EXAMPLES` are the two example buildings of the package.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from physics.fire_network import CONCRETE, GYPSUM, OUTSIDE, FireNetwork, NetworkBuilder
from twin.building_file import Location, Storeys, read_description, refuge_floors
from twin.errors import DataIntegrityError, DataMissingError, ValidationError, describe_problems

DATA_DIR = Path(__file__).parent / "data" / "fire_buildings"
#: The example buildings (package data): a generic residential tower and Ping An Finance Centre.
EXAMPLES = {"tower_30_residential": DATA_DIR / "tower_30_residential.toml",
            "ping_an_finance_centre": DATA_DIR / "ping_an_finance_centre.toml"}

# ----------------------------------------------------------------------------- defaults with sources
#: Fire load densities q_f (MJ/m² of floor), EN 1991-1-2:2002 Annex E Table E.4:
#: (average, 80 % fractile). The characteristic value of Annex E is the 80 % fractile.
FUEL_LOAD_MJ_M2 = {
    "dwelling": (780.0, 948.0), "hospital": (230.0, 280.0), "hotel": (310.0, 377.0),
    "library": (1500.0, 1824.0), "office": (420.0, 511.0), "classroom": (285.0, 347.0),
    "shopping": (600.0, 730.0), "theatre": (300.0, 365.0), "transport": (100.0, 122.0),
}
#: Fire growth rate and heat release rate per unit area (kW/m²) by occupancy,
#: EN 1991-1-2:2002 Annex E Table E.5 (t_α = 600 / 300 / 150 s for slow / medium / fast).
GROWTH_BY_OCCUPANCY = {
    "dwelling": ("medium", 250.0), "hospital": ("medium", 250.0), "hotel": ("medium", 250.0),
    "library": ("fast", 250.0), "office": ("medium", 250.0), "classroom": ("medium", 250.0),
    "shopping": ("fast", 250.0), "theatre": ("fast", 500.0), "transport": ("slow", 250.0),
}
#: Leakage area per unit wall area (A/A_w) of commercial buildings, Klote & Milke, *Principles of
#: Smoke Management* (ASHRAE/SFPE 2002), Table 5.1 (typical leakage areas for walls and floors).
LEAKAGE_RATIO = {
    "tight": {"exterior_wall": 0.50e-4, "stair_wall": 0.14e-4, "lift_wall": 0.18e-3},
    "average": {"exterior_wall": 0.17e-3, "stair_wall": 0.11e-3, "lift_wall": 0.84e-3},
    "loose": {"exterior_wall": 0.35e-3, "stair_wall": 0.35e-3, "lift_wall": 0.18e-2},
}
#: A closed single door 0.9 x 2.1 m: 3 mm gaps at the jambs and head and a 6 mm undercut,
#: 5.1 m x 3 mm + 0.9 m x 6 mm = 0.021 m² (the crack-area method of Klote & Milke 2002, ch. 5).
DOOR_LEAK_M2 = 0.021
#: A closed lift landing door (m²): the typical elevator-door leakage area of Klote & Milke 2002 ch. 5
#: (after Tamura & Shaw's measurements), about 0.06 m².
LIFT_DOOR_LEAK_M2 = 0.06
#: Glazing fall-out temperature of the hot layer (°C): Babrauskas, "Glass breakage in fires" (1997/98):
#: thin single glazing falls out from about 450 °C room gas temperature; double glazing about 600 °C.
GLAZING_BREAK_C = {"single": 450.0, "double": 600.0}
#: Sprinkler response time index (m·s)^½: NFPA 13 §3.3 defines quick response as RTI <= 50;
#: standard response heads have RTI >= 80 (the SFPE Handbook gives 80-350); 100 is assumed.
SPRINKLER_RTI = {"quick": 50.0, "standard": 100.0}
#: Detectors as links (NFPA 72 Annex B): a smoke detector as a low-RTI link responding to a 13 K
#: rise (Heskestad & Delichatsios); RTI 5 (m·s)^½ is assumed. A heat detector: 57 °C rating,
#: RTI 100 (m·s)^½ assumed.
DETECTOR_DEFAULTS = {"smoke": {"rti": 5.0, "delta_t_k": 13.0, "activation_c": None},
                     "heat": {"rti": 100.0, "delta_t_k": None, "activation_c": 57.0}}
#: Design pressure differences of pressurised spaces against the corridor (Pa), GB 51251-2017
#: §3.4.4: stairs 40-50 Pa, front rooms (lobbies) and refuge floors 25-30 Pa.
DESIGN_DP_PA = {"stair": 50.0, "lobby": 25.0, "refuge": 25.0}
LININGS = {"gypsum": GYPSUM, "concrete": CONCRETE}
DOOR_HEIGHT_M = 2.1
OCCUPANCY_CLASSES = tuple(FUEL_LOAD_MJ_M2)
Occupancy = Literal["dwelling", "hospital", "hotel", "library", "office", "classroom", "shopping",
                    "theatre", "transport"]
Growth = Literal["slow", "medium", "fast", "ultrafast"]


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


class _Shared(BaseModel):
    """A table shared with the evacuation: the keys the fire model uses are checked, the rest are
    the evacuation loader's (``agents.building``)."""

    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)


# ----------------------------------------------------------------------------- shared tables
class SharedOccupancy(_Shared):
    floor_area_m2: float = Field(gt=0.0, le=200_000.0, allow_inf_nan=False)


class SharedFloor(_Shared):
    index: int = Field(ge=0)
    refuge: bool = False


class SharedStair(_Shared):
    name: str | None = Field(default=None, max_length=40)
    width_m: float = Field(ge=0.6, le=6.0, allow_inf_nan=False)
    riser_mm: float = Field(default=175.0, ge=100.0, le=250.0, allow_inf_nan=False)
    tread_mm: float = Field(default=260.0, ge=200.0, le=400.0, allow_inf_nan=False)
    door_width_m: float = Field(default=0.9, ge=0.6, le=6.0, allow_inf_nan=False)


# ----------------------------------------------------------------------------- fire tables
class Plate(_Strict):
    area_m2: float | None = Field(default=None, gt=0.0, le=200_000.0, allow_inf_nan=False)
    top_area_m2: float | None = Field(default=None, gt=0.0, le=200_000.0, allow_inf_nan=False)
    perimeter_m: float | None = Field(default=None, gt=0.0, le=5_000.0, allow_inf_nan=False)
    ceiling_height_m: float | None = Field(default=None, ge=2.2, le=12.0, allow_inf_nan=False)
    corridor_area_m2: float = Field(default=0.0, ge=0.0, le=50_000.0, allow_inf_nan=False)
    corridor_door_width_m: float = Field(default=1.2, ge=0.6, le=10.0, allow_inf_nan=False)
    corridor_door_open: float = Field(default=0.0, ge=0.0, le=1.0, allow_inf_nan=False)


class Room(_Strict):
    name: str = Field(min_length=1, max_length=40, pattern=r"^[^/]+$")
    share: float = Field(gt=0.0, le=1.0, allow_inf_nan=False)
    door_width_m: float = Field(default=0.9, ge=0.6, le=10.0, allow_inf_nan=False)
    door_open: float = Field(default=0.0, ge=0.0, le=1.0, allow_inf_nan=False)
    occupancy: Occupancy | None = None
    windows: bool = True


class StairFire(_Strict):
    name: str = Field(min_length=1, max_length=40)
    area_m2: float | None = Field(default=None, gt=0.0, le=500.0, allow_inf_nan=False)
    pressurised: bool = False
    design_dp_pa: float | None = Field(default=None, ge=5.0, le=150.0, allow_inf_nan=False)


class Lift(_Strict):
    name: str = Field(min_length=1, max_length=40, pattern=r"^[^/]+$")
    cars: int = Field(default=1, ge=1, le=20)
    car_area_m2: float = Field(default=6.5, gt=0.0, le=50.0, allow_inf_nan=False)
    bottom: int = Field(default=0, ge=0)
    top: int | None = Field(default=None, ge=0)
    express_to: int | None = Field(default=None, ge=0)
    stops: list[int] | None = Field(default=None, min_length=1)
    fire_lift: bool = False

    @model_validator(mode="after")
    def _stops(self) -> Lift:
        if self.express_to is not None and self.stops is not None:
            raise ValueError("give express_to or stops, not both")
        return self


class SmokeShaft(_Strict):
    name: str = Field(min_length=1, max_length=40, pattern=r"^[^/]+$")
    area_m2: float = Field(gt=0.0, le=100.0, allow_inf_nan=False)
    bottom: int = Field(default=0, ge=0)
    top: int | None = Field(default=None, ge=0)
    serves: Literal["corridor", "lobby"] | None = None
    damper_leak_m2: float = Field(default=0.01, ge=0.0, le=1.0, allow_inf_nan=False)


class Core(_Strict):
    lobby_area_m2: float = Field(default=25.0, gt=0.0, le=10_000.0, allow_inf_nan=False)
    lobby_pressurised: bool = False
    entrance_width_m: float = Field(default=2.0, ge=0.6, le=50.0, allow_inf_nan=False)
    stairs: list[StairFire] = Field(default_factory=list, max_length=20)
    lifts: list[Lift] = Field(default_factory=list, max_length=40)
    smoke_shafts: list[SmokeShaft] = Field(default_factory=list, max_length=20)


class Refuge(_Strict):
    area_m2: float | None = Field(default=None, gt=0.0, le=100_000.0, allow_inf_nan=False)
    pressurised: bool = False
    design_dp_pa: float | None = Field(default=None, ge=5.0, le=150.0, allow_inf_nan=False)


class Sprinklers(_Strict):
    installed: bool = False
    response: Literal["quick", "standard"] = "quick"
    rti: float | None = Field(default=None, gt=0.0, le=500.0, allow_inf_nan=False)
    activation_c: float = Field(default=68.0, ge=40.0, le=350.0, allow_inf_nan=False)
    spacing_m2: float = Field(default=12.0, ge=4.0, le=40.0, allow_inf_nan=False)
    depth_m: float = Field(default=0.1, ge=0.0, le=1.0, allow_inf_nan=False)
    control: Literal["held", "decay"] = "held"
    spray_density_mm_min: float = Field(default=6.0, gt=0.0, le=50.0, allow_inf_nan=False)


class Detectors(_Strict):
    installed: bool = True
    kind: Literal["smoke", "heat"] = "smoke"
    rti: float | None = Field(default=None, gt=0.0, le=500.0, allow_inf_nan=False)
    locations: list[Literal["room", "corridor", "lobby", "refuge"]] = \
        Field(default_factory=lambda: ["room", "corridor", "lobby", "refuge"])


class Glazing(_Strict):
    type: Literal["single", "double"] = "double"
    fraction: float = Field(default=0.4, ge=0.0, le=1.0, allow_inf_nan=False)
    sill_m: float = Field(default=0.9, ge=0.0, le=10.0, allow_inf_nan=False)
    head_m: float = Field(default=2.4, gt=0.0, le=12.0, allow_inf_nan=False)
    break_c: float | None = Field(default=None, ge=100.0, le=1200.0, allow_inf_nan=False)

    @model_validator(mode="after")
    def _order(self) -> Glazing:
        if self.head_m <= self.sill_m:
            raise ValueError(f"head_m={self.head_m!r} must be above sill_m={self.sill_m!r}")
        return self


class Leakage(_Strict):
    tightness: Literal["tight", "average", "loose"] = "average"
    exterior_wall_ratio: float | None = Field(default=None, ge=0.0, le=0.05, allow_inf_nan=False)
    stair_wall_ratio: float | None = Field(default=None, ge=0.0, le=0.05, allow_inf_nan=False)
    lift_wall_ratio: float | None = Field(default=None, ge=0.0, le=0.05, allow_inf_nan=False)
    door_m2: float = Field(default=DOOR_LEAK_M2, ge=0.0, le=1.0, allow_inf_nan=False)
    lift_door_m2: float = Field(default=LIFT_DOOR_LEAK_M2, ge=0.0, le=1.0, allow_inf_nan=False)

    def ratio(self, which: str) -> float:
        given = getattr(self, f"{which}_ratio")
        return LEAKAGE_RATIO[self.tightness][which] if given is None else given


class Fire(_Strict):
    occupancy: Occupancy
    fuel_load_mj_m2: float | None = Field(default=None, gt=0.0, le=20_000.0, allow_inf_nan=False)
    growth: Growth | None = None
    lining: Literal["gypsum", "concrete"] = "gypsum"
    architectural_height_m: float | None = Field(default=None, gt=0.0, le=1_500.0, allow_inf_nan=False)
    plate: Plate = Plate()
    rooms: list[Room] = Field(min_length=1, max_length=60)
    core: Core = Core()
    refuge: Refuge = Refuge()
    sprinklers: Sprinklers = Sprinklers()
    detectors: Detectors = Detectors()
    glazing: Glazing = Glazing()
    leakage: Leakage = Leakage()
    sources: list[str] = Field(default_factory=list, max_length=100)
    assumptions: list[str] = Field(default_factory=list, max_length=200)


class FireBuildingSpec(_Strict):
    """A fire building description (see the module docstring)."""

    name: str = Field(min_length=1, max_length=200)
    building: str | None = None
    location: Location | None = None
    storeys: Storeys
    occupancy: SharedOccupancy
    floors: list[SharedFloor] = Field(default_factory=list)
    stairs: list[SharedStair] = Field(min_length=1, max_length=20)
    exits: Any = None
    movement: Any = None
    fire: Fire

    @model_validator(mode="after")
    def _refs(self) -> FireBuildingSpec:
        problems = _shared_problems(self) + _core_problems(self)
        if not problems:
            problems = _geometry_problems(self)
        if problems:
            raise ValueError("; ".join(problems))
        return self

    # ------------------------------------------------------------------ derived
    @property
    def n_storeys(self) -> int:
        return self.storeys.n

    def storey_heights_m(self) -> np.ndarray:
        return self.storeys.heights()

    def storey_base_m(self) -> np.ndarray:
        h = self.storey_heights_m()
        return np.concatenate([[0.0], np.cumsum(h)[:-1]])

    def refuge_floors(self) -> list[int]:
        return sorted(f.index for f in self.floors if f.refuge)

    def stair_names(self) -> list[str]:
        return [s.name or f"stair {chr(65 + i)}" for i, s in enumerate(self.stairs)]

    def plate_area_m2(self, storey: int) -> float:
        """Gross plate of ``storey``: linear from the ground's to the top's when ``top_area_m2`` is given."""
        p = self.fire.plate
        base = p.area_m2 if p.area_m2 is not None else self.occupancy.floor_area_m2
        if p.top_area_m2 is None or self.n_storeys == 1:
            return base
        return base + (p.top_area_m2 - base) * storey / (self.n_storeys - 1)

    def perimeter_m(self, storey: int) -> float:
        p = self.fire.plate
        return p.perimeter_m if p.perimeter_m is not None else 4.0 * math.sqrt(self.plate_area_m2(storey))

    def room_height_m(self, storey: int) -> float:
        h = float(self.storey_heights_m()[storey])
        c = self.fire.plate.ceiling_height_m
        return h if c is None else min(c, h)

    def stair_area_m2(self, i: int) -> float:
        """Plan area of stair ``i``: the file's, else a dog-leg enclosure (two flights side by side,
        a landing at each end): (2w + 0.2) x (run of half a storey's treads + 2w)."""
        name = self.stair_names()[i]
        given = {s.name: s for s in self.fire.core.stairs}.get(name)
        if given is not None and given.area_m2 is not None:
            return given.area_m2
        s = self.stairs[i]
        return dogleg_stair_area_m2(s.width_m, s.riser_mm, s.tread_mm, float(self.storey_heights_m().max()))

    def lift_span(self, lift: Lift) -> tuple[int, int]:
        return lift.bottom, self.n_storeys - 1 if lift.top is None else lift.top

    def lift_stops(self, lift: Lift) -> set[int]:
        lo, hi = self.lift_span(lift)
        if lift.stops is not None:
            return set(lift.stops)
        if lift.express_to is not None:
            return {lo} | set(range(lift.express_to + 1, hi + 1))
        return set(range(lo, hi + 1))

    def shaft_span(self, shaft: SmokeShaft) -> tuple[int, int]:
        return shaft.bottom, self.n_storeys - 1 if shaft.top is None else shaft.top

    def shafts_area_m2(self, storey: int) -> float:
        """Plan area of the stairs, lifts and smoke shafts on ``storey``."""
        area = sum(self.stair_area_m2(i) for i in range(len(self.stairs)))
        for lift in self.fire.core.lifts:
            lo, hi = self.lift_span(lift)
            area += lift.cars * lift.car_area_m2 if lo <= storey <= hi else 0.0
        for sh in self.fire.core.smoke_shafts:
            lo, hi = self.shaft_span(sh)
            area += sh.area_m2 if lo <= storey <= hi else 0.0
        return area

    def net_area_m2(self, storey: int) -> float:
        """The plate left for rooms (or refuge and plant): plate - lobby - corridor - shafts."""
        f = self.fire
        return (self.plate_area_m2(storey) - f.core.lobby_area_m2 - f.plate.corridor_area_m2
                - self.shafts_area_m2(storey))


def dogleg_stair_area_m2(width_m: float, riser_mm: float, tread_mm: float, storey_height_m: float) -> float:
    """Plan area of a dog-leg stair enclosure (assumed geometry): two flights of width ``width_m``
    side by side with 0.2 m between, each running half a storey's treads, a landing of the
    flight's width at each end: (2w + 0.2) x (run + 2w)."""
    risers = math.ceil(storey_height_m / (riser_mm / 1000.0))
    run = (math.ceil(risers / 2) - 1) * tread_mm / 1000.0
    return (2.0 * width_m + 0.2) * (run + 2.0 * width_m)


def _shared_problems(spec: FireBuildingSpec) -> list[str]:
    n, out, seen = spec.storeys.n, [], set()
    for i, f in enumerate(spec.floors):
        if f.index >= n:
            out.append(f"floors.{i}.index={f.index}: the building has floors 0-{n - 1}")
        if f.index in seen:
            out.append(f"floors.{i}.index={f.index}: that floor is given twice")
        seen.add(f.index)
        if f.refuge and f.index == 0 and n > 1:
            out.append(f"floors.{i}: the ground floor (index 0) cannot be a refuge floor")
    names = spec.stair_names()
    if len(set(names)) != len(names):
        out.append(f"stairs: names {names} repeat; give each stair its own name")
    return out


def _core_problems(spec: FireBuildingSpec) -> list[str]:
    f, n, out = spec.fire, spec.storeys.n, []
    total = sum(r.share for r in f.rooms)
    if abs(total - 1.0) > 1e-6:
        out.append(f"fire.rooms: shares add up to {total:g}; they split the net plate and must add up to 1")
    room_names = [r.name for r in f.rooms]
    if len(set(room_names)) != len(room_names):
        out.append(f"fire.rooms: names {room_names} repeat")
    names = spec.stair_names()
    for i, s in enumerate(f.core.stairs):
        if s.name not in names:
            out.append(f"fire.core.stairs.{i}.name={s.name!r}: not a stair of [[stairs]] (one of {names})")
        if s.design_dp_pa is not None and not s.pressurised:
            out.append(f"fire.core.stairs.{i}.design_dp_pa: given for a stair that is not pressurised")
    shafts = [("fire.core.lifts", x, spec.lift_span(x)) for x in f.core.lifts] + \
        [("fire.core.smoke_shafts", x, spec.shaft_span(x)) for x in f.core.smoke_shafts]
    for i, (where, x, (lo, hi)) in enumerate(shafts):
        k = i if where == "fire.core.lifts" else i - len(f.core.lifts)
        if not lo <= hi < n:
            out.append(f"{where}.{k} ({x.name!r}): bottom={lo}, top={hi}: need 0 <= bottom <= top <= {n - 1}")
            continue
        if isinstance(x, Lift):
            bad = sorted(s for s in spec.lift_stops(x) if not lo <= s <= hi)
            if bad:
                out.append(f"{where}.{k} ({x.name!r}): stops {bad} are outside its span {lo}-{hi}")
            if x.express_to is not None and not lo <= x.express_to < hi:
                out.append(f"{where}.{k} ({x.name!r}): express_to={x.express_to}: must lie in {lo}-{hi - 1}")
    core_names = [x.name for x in f.core.lifts + f.core.smoke_shafts] + names
    dup = sorted({c for c in core_names if core_names.count(c) > 1})
    if dup:
        out.append(f"fire.core: names {dup} are used twice (stairs, lifts and smoke shafts need their own)")
    if f.refuge.design_dp_pa is not None and not f.refuge.pressurised:
        out.append("fire.refuge.design_dp_pa: given for refuge floors that are not pressurised")
    if f.architectural_height_m is not None and f.architectural_height_m < float(spec.storeys.heights().sum()):
        out.append(f"fire.architectural_height_m={f.architectural_height_m!r}: below the top of the storeys "
                   f"({float(spec.storeys.heights().sum()):g} m)")
    return out


def _geometry_problems(spec: FireBuildingSpec) -> list[str]:
    f, out = spec.fire, []
    lowest = min(spec.room_height_m(s) for s in range(spec.n_storeys))
    if lowest < DOOR_HEIGHT_M:
        out.append(f"fire.plate.ceiling_height_m: rooms {lowest:g} m high cannot hold {DOOR_HEIGHT_M} m doors")
    if f.glazing.fraction > 0 and f.glazing.head_m > lowest + 1e-9:
        out.append(f"fire.glazing.head_m={f.glazing.head_m!r}: above the lowest room ceiling ({lowest:g} m)")
    bad = [s for s in range(spec.n_storeys) if spec.net_area_m2(s) <= 0.0]
    if bad:
        s = bad[0]
        out.append(f"fire.plate: storey {s} has no area left for rooms (plate {spec.plate_area_m2(s):.1f} m² - "
                   f"lobby - corridor - shafts {spec.shafts_area_m2(s):.1f} m² <= 0"
                   + (f"; {len(bad)} such storeys" if len(bad) > 1 else "") + "): enlarge the plate or shrink the core")
    refuge_area = f.refuge.area_m2
    if refuge_area is not None:
        small = [s for s in spec.refuge_floors() if refuge_area > spec.net_area_m2(s) + 1e-9]
        if small:
            out.append(f"fire.refuge.area_m2={refuge_area!r}: larger than the net plate of refuge storey {small[0]} "
                       f"({spec.net_area_m2(small[0]):.1f} m²)")
    return out


# ----------------------------------------------------------------------------- loading
def parse_fire_building(data: dict, source: str = "fire building") -> FireBuildingSpec:
    """The checked description of ``data`` (shared tables and ``[fire]`` in one dict).

    Raises
    ------
    ValidationError
        Listing every problem with its path in the file and its value.
    """
    import pydantic

    try:
        return FireBuildingSpec.model_validate(data)
    except pydantic.ValidationError as exc:
        raise ValidationError(describe_problems(exc, source)) from None


def merged_description(path: str | Path) -> dict:
    """The fire file's dict with the shared tables of the evacuation file it names (``building``).

    The fire file may not repeat a table of the file it names (one place per fact)."""
    p = Path(path)
    data = read_description(p)
    ref = data.get("building")
    if ref is None:
        return data
    if not isinstance(ref, str):
        raise ValidationError(f"{p}: building={ref!r}: give the evacuation building file's path as a string")
    base = read_description((p.parent / ref).resolve())
    both = sorted((set(base) & set(data)) - {"name"})
    if both:
        raise ValidationError(f"{p}: tables {both} are both here and in {ref}: keep them in one file")
    if "fire" in base:
        raise ValidationError(f"{p}: {ref} has its own [fire] table: name a building file without one")
    return {**base, **data}


def evacuation_tables(path: str | Path) -> dict:
    """The evacuation's part of a fire building file (its own tables or those of the file it names),
    without ``[fire]``: what ``agents.building.parse_building`` reads."""
    return {k: v for k, v in merged_description(path).items() if k not in ("fire", "building")}


def load_fire_building(path: str | Path) -> FireBuildingSpec:
    """Read and check a fire building file (see the module docstring); every problem is listed."""
    return parse_fire_building(merged_description(path), source=str(path))


def load_example(name: str) -> FireBuildingSpec:
    """One of :data:`EXAMPLES` by name."""
    if name not in EXAMPLES:
        raise ValidationError(f"example {name!r}: one of {sorted(EXAMPLES)}")
    return load_fire_building(EXAMPLES[name])


# ----------------------------------------------------------------------------- the network
class _Net:
    """Builder state: the network builder and the per-compartment fire attributes."""

    def __init__(self, spec: FireBuildingSpec):
        self.spec = spec
        f = spec.fire
        refuge = np.zeros(spec.n_storeys, bool)
        refuge[spec.refuge_floors()] = True
        self.b = NetworkBuilder(spec.name, storey_heights_m=spec.storey_heights_m(), refuge=refuge)
        self.pressure: list[float] = []
        self.fuel: list[float] = []
        self.hrrpua: list[float] = []
        self.growth: list[str] = []
        self.sprinkled = {"room", "corridor", "lobby", "refuge"} if f.sprinklers.installed else set()
        self.detected = set(f.detectors.locations) if f.detectors.installed else set()

    def add(self, storey: int, name: str, kind: str, area: float, *, occupancy: str | None = None,
            height: float | None = None, lining: dict | None = None, dp: float = math.nan,
            fuel: bool = True) -> int:
        f = self.spec.fire
        occ = occupancy or f.occupancy
        load = (f.fuel_load_mj_m2 if occupancy is None and f.fuel_load_mj_m2 is not None
                else FUEL_LOAD_MJ_M2[occ][1]) if fuel else 0.0
        growth, hrrpua = GROWTH_BY_OCCUPANCY[occ]
        if f.growth is not None and occupancy is None:
            growth = f.growth
        self.pressure.append(dp)
        self.fuel.append(load)
        self.hrrpua.append(hrrpua)
        self.growth.append(growth)
        return self.b.compartment(f"{storey}/{name}", kind=kind, storey=storey, area_m2=area, height_m=height,
                                  lining=lining or CONCRETE, sprinklered=kind in self.sprinkled,
                                  detector=kind in self.detected)

    def door(self, a: int, b: int, width: float, open_fraction: float, leak_m2: float, *,
             kind: str = "door") -> None:
        """A door (and, when it is not fully open, its leakage as a separate vent)."""
        self.b.vent(a, b, bottom_m=0.0, top_m=DOOR_HEIGHT_M, width_m=width, kind=kind,
                    open_fraction=open_fraction)
        if open_fraction < 1.0 and leak_m2 > 0:
            self.leak(a, b, leak_m2, DOOR_HEIGHT_M)

    def leak(self, a: int, b: int, area_m2: float, height_m: float) -> None:
        """Leakage spread over ``height_m`` from ``a``'s floor, always open."""
        if area_m2 > 0:
            self.b.vent(a, b, bottom_m=0.0, top_m=height_m, width_m=area_m2 / height_m, kind="leak")

    def facade(self, room: int, storey: int, facade_m: float, height_m: float) -> None:
        """Windows on ``facade_m`` of facade (glazing fraction) and the wall's leakage to the outside."""
        g, lk = self.spec.fire.glazing, self.spec.fire.leakage
        width = g.fraction * facade_m
        if width > 0:
            brk = g.break_c if g.break_c is not None else GLAZING_BREAK_C[g.type]
            self.b.vent(room, OUTSIDE, bottom_m=g.sill_m, top_m=g.head_m, width_m=width, kind="window",
                        open_fraction=0.0, break_c=brk)
        self.leak(room, OUTSIDE, lk.ratio("exterior_wall") * facade_m * height_m, height_m)


def _storey(net: _Net, s: int, shafts: dict[str, list[int]]) -> None:
    """The compartments and wall vents of storey ``s``."""
    spec, f = net.spec, net.spec.fire
    lk, h, hr = f.leakage, float(spec.storey_heights_m()[s]), spec.room_height_m(s)
    lobby_dp = DESIGN_DP_PA["lobby"] if f.core.lobby_pressurised else math.nan
    lobby = net.add(s, "lobby", "lobby", f.core.lobby_area_m2, height=hr, dp=lobby_dp, fuel=False)
    hub = lobby
    if f.plate.corridor_area_m2 > 0:
        hub = net.add(s, "corridor", "corridor", f.plate.corridor_area_m2, height=hr, fuel=False)
        net.door(hub, lobby, f.plate.corridor_door_width_m, f.plate.corridor_door_open, lk.door_m2)
    if s == 0:
        net.door(lobby, OUTSIDE, f.core.entrance_width_m, 0.0, lk.door_m2, kind="outside_door")
    net_area, perimeter = spec.net_area_m2(s), spec.perimeter_m(s)
    lining = LININGS[f.lining]
    if s in spec.refuge_floors():
        area = f.refuge.area_m2 if f.refuge.area_m2 is not None else net_area
        dp = (f.refuge.design_dp_pa or DESIGN_DP_PA["refuge"]) if f.refuge.pressurised else math.nan
        ref = net.add(s, "refuge", "refuge", area, height=hr, lining=lining, dp=dp, fuel=False)
        net.door(ref, lobby, 1.2, 0.0, lk.door_m2)
        net.facade(ref, s, perimeter * area / net_area, hr)
        if net_area - area > 1e-6:
            plant = net.add(s, "plant", "room", net_area - area, height=hr, lining=lining)
            net.door(plant, hub, 0.9, 0.0, lk.door_m2)
            net.facade(plant, s, perimeter * (net_area - area) / net_area, hr)
    else:
        for r in f.rooms:
            room = net.add(s, r.name, "room", r.share * net_area, occupancy=r.occupancy, height=hr, lining=lining)
            net.door(room, hub, r.door_width_m, r.door_open, lk.door_m2)
            if r.windows:
                net.facade(room, s, r.share * perimeter, hr)
    _core_storey(net, s, h, lobby, hub, shafts)


def _core_storey(net: _Net, s: int, h: float, lobby: int, hub: int, shafts: dict[str, list[int]]) -> None:
    """This storey's compartment of every stair, lift shaft and smoke shaft, with doors and leakage."""
    spec, f = net.spec, net.spec.fire
    lk = f.leakage
    given = {x.name: x for x in f.core.stairs}
    for i, (name, stair) in enumerate(zip(spec.stair_names(), spec.stairs, strict=True)):
        sf = given.get(name)
        dp = (sf.design_dp_pa or DESIGN_DP_PA["stair"]) if sf is not None and sf.pressurised else math.nan
        area = spec.stair_area_m2(i)
        c = net.add(s, f"stair {name}", "stair", area, dp=dp, fuel=False)
        net.door(lobby, c, stair.door_width_m, 0.0, 0.0, kind="shaft_door")
        wall = lk.ratio("stair_wall") * 4.0 * math.sqrt(area) * h
        net.leak(c, lobby, lk.door_m2 + wall, min(h, spec.room_height_m(s)))
        if s == 0:
            net.door(c, OUTSIDE, stair.door_width_m, 0.0, lk.door_m2, kind="outside_door")
        shafts.setdefault(f"stair {name}", []).append(c)
    for lift in f.core.lifts:
        lo, hi = spec.lift_span(lift)
        if not lo <= s <= hi:
            continue
        area = lift.cars * lift.car_area_m2
        c = net.add(s, lift.name, "lift", area, fuel=False)
        stop = s in spec.lift_stops(lift)
        if stop:
            net.b.vent(lobby, c, bottom_m=0.0, top_m=DOOR_HEIGHT_M, width_m=1.1 * lift.cars, kind="shaft_door",
                       open_fraction=0.0)
        wall = lk.ratio("lift_wall") * 4.0 * math.sqrt(area) * h
        net.leak(c, lobby, wall + (lift.cars * lk.lift_door_m2 if stop else 0.0), min(h, spec.room_height_m(s)))
        shafts.setdefault(lift.name, []).append(c)
    for sh in f.core.smoke_shafts:
        lo, hi = spec.shaft_span(sh)
        if not lo <= s <= hi:
            continue
        c = net.add(s, sh.name, "smoke_shaft", sh.area_m2, fuel=False)
        serves = hub if (sh.serves or "corridor") == "corridor" else lobby
        side = math.sqrt(sh.area_m2)
        net.b.vent(serves, c, bottom_m=spec.room_height_m(s) - min(side, 1.0), top_m=spec.room_height_m(s),
                   width_m=side, kind="shaft_door", open_fraction=0.0)
        net.leak(c, serves, sh.damper_leak_m2, spec.room_height_m(s))
        shafts.setdefault(sh.name, []).append(c)


def build_network(spec: FireBuildingSpec) -> FireNetwork:
    """The :class:`~physics.fire_network.FireNetwork` of a checked description (see the module docstring).

    Shafts (stairs, lifts, smoke shafts) are columns of compartments joined by
    ceiling vents of their plan area; a smoke shaft opens to the outside at
    its top (a roof vent). Compartments are named ``"<storey>/<name>"``.
    """
    net = _Net(spec)
    shafts: dict[str, list[int]] = {}
    for s in range(spec.n_storeys):
        _storey(net, s, shafts)
    smoke = {x.name for x in spec.fire.core.smoke_shafts}
    for name, column in shafts.items():
        area = float(net.b._c[column[0]]["area_m2"])
        for lo, hi in zip(column[:-1], column[1:], strict=True):
            net.b.ceiling_vent(lo, hi, area_m2=area, kind="shaft")
        if name in smoke:
            net.b.ceiling_vent(column[-1], OUTSIDE, area_m2=area, kind="roof_vent")
    return net.b.build(**_attrs(net))


def _attrs(net: _Net) -> dict:
    spec, f = net.spec, net.spec.fire
    sp, de = f.sprinklers, f.detectors
    det = dict(DETECTOR_DEFAULTS[de.kind])
    if de.rti is not None:
        det["rti"] = de.rti
    return {
        "source": "physics.fire_building", "occupancy": f.occupancy,
        "pressurisation_pa": np.asarray(net.pressure, float), "fuel_load_mj_m2": np.asarray(net.fuel, float),
        "hrrpua_kw_m2": np.asarray(net.hrrpua, float), "growth": tuple(net.growth),
        "sprinklers": {"installed": sp.installed, "rti": sp.rti or SPRINKLER_RTI[sp.response],
                       "activation_c": sp.activation_c, "spacing_m2": sp.spacing_m2, "depth_m": sp.depth_m,
                       "control": sp.control, "spray_density_mm_min": sp.spray_density_mm_min},
        "detectors": {"installed": de.installed, "kind": de.kind, **det},
        "glazing_break_c": f.glazing.break_c or GLAZING_BREAK_C[f.glazing.type],
        "architectural_height_m": f.architectural_height_m or float(spec.storey_heights_m().sum()),
        "lon": spec.location.lon if spec.location else None, "lat": spec.location.lat if spec.location else None,
        "stairs": spec.stair_names(), "refuge_floors": spec.refuge_floors(),
    }


# ----------------------------------------------------------------------------- OSM towers
def _number(value: Any) -> float | None:
    try:
        x = float(str(value).strip().removesuffix("m").strip())
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) and x > 0 else None


def _footprint(feature: Any) -> tuple[float, float, float, list[tuple[float, float]]]:
    """Area (m², EPSG:4547), centroid lon/lat and outer ring of a feature's (multi)polygon."""
    import shapely
    import shapely.geometry
    from pyproj import Transformer

    geom = feature.get("geometry") if isinstance(feature, dict) else feature.geometry
    geom = shapely.geometry.shape(geom) if isinstance(geom, dict) else geom
    if geom is None or geom.geom_type not in ("Polygon", "MultiPolygon"):
        raise ValidationError(f"OSM feature geometry {getattr(geom, 'geom_type', None)!r}: need a (multi)polygon "
                              "footprint")
    poly = max(geom.geoms, key=lambda g: g.area) if geom.geom_type == "MultiPolygon" else geom
    to_metric = Transformer.from_crs("EPSG:4326", "EPSG:4547", always_xy=True)
    metric = shapely.transform(geom, lambda xy: np.column_stack(to_metric.transform(xy[:, 0], xy[:, 1])))
    c = geom.centroid
    return float(metric.area), float(c.x), float(c.y), [tuple(p) for p in list(poly.exterior.coords)[:-1]]


def fire_building_from_osm(feature: Any, *, use: str | None = None) -> FireBuildingSpec:
    """A simple tower's fire description from an OSM feature (GeoJSON dict or a GeoDataFrame row).

    Shared tables by the rules of ``agents.building.tower_from_osm`` (mirrored
    here, not imported): storeys = ``building:levels``; storey height =
    ``height`` / levels, else 3.0 m residential / 4.0 m business; plate = the
    footprint; two stairs for a high-rise (> 27 m residential, > 24 m
    otherwise) or a plate over 650 m², else one (GB 50016-2014); refuge floors
    over 100 m within every 50 m (§5.5.23). Fire defaults (assumptions unless
    cited): occupancy dwelling or office (EN 1991-1-2 Table E.4/E.5); four
    rooms of equal share, residential doors closed, office doors open; a 25 m²
    lobby (40 m² business); a lift shaft of one car, two from 33 m residential
    / 24 m business (GB 50016-2014 §7.3.1: fire lifts), one a fire lift;
    sprinklers in residential towers over 100 m and business towers over 24 m
    (§8.3.3); detectors over 54 m residential (§8.4.2), in every business
    tower; pressurised stairs over 100 m residential and 50 m business (GB
    51251-2017 §3.1.2); concrete linings residential, gypsum business.
    """
    props = feature.get("properties", {}) if isinstance(feature, dict) else feature
    levels_raw = props.get("building:levels", props.get("levels"))
    levels = _number(levels_raw)
    if levels is None or levels != int(levels) or not 1 <= levels <= 200:
        raise ValidationError(f"OSM building:levels={levels_raw!r}: need a whole number of storeys 1-200")
    levels = int(levels)
    area, lon, lat, ring = _footprint(feature)
    kind = use or ("residential" if str(props.get("building", "")) in
                   ("residential", "apartments", "house", "dormitory", "yes") else "business")
    if kind not in ("residential", "business"):
        raise ValidationError(f"use={kind!r}: one of ['business', 'residential']")
    res = kind == "residential"
    height = _number(props.get("height", props.get("height_m")))
    storey = height / levels if height else (3.0 if res else 4.0)
    if not 2.0 <= storey <= 12.0:
        raise ValidationError(f"OSM height={height!r} over {levels} levels gives {storey:.2f} m storeys: "
                              "outside 2-12 m; fix the tags or give the building file by hand")
    top = storey * levels
    n_stairs = 2 if (top > (27.0 if res else 24.0) or area > 650.0) and levels > 1 else 1
    lobby = 25.0 if res else 40.0
    shafts = n_stairs * 12.0 + 13.0
    if area - lobby - shafts < 0.3 * area:
        raise ValidationError(f"OSM footprint {area:.0f} m²: too small for a {levels}-storey tower's core "
                              f"(lobby, {n_stairs} stair(s), lifts); give the building file by hand")
    cars = 2 if top > (33.0 if res else 24.0) else 1
    label = str(props.get("name") or "") or f"OSM building {props.get('osmid', '')}".strip()
    desc = {
        "name": f"{label} ({levels} storeys, {kind}; generated, assumed layout)",
        "location": {"lon": lon, "lat": lat, "label": "OpenStreetMap footprint",
                     "footprint": [[float(x), float(y)] for x, y in ring]},
        "storeys": {"count": levels, "height_m": storey},
        "occupancy": {"floor_area_m2": area},
        "floors": [{"index": i, "refuge": True} for i in refuge_floors([storey * i for i in range(levels)], top)],
        "stairs": [{"name": chr(65 + i), "width_m": 1.1 if res else 1.2,
                    "riser_mm": 175.0 if res else 165.0, "tread_mm": 260.0 if res else 280.0,
                    "door_width_m": 0.9} for i in range(n_stairs)],
        "fire": {
            "occupancy": "dwelling" if res else "office", "lining": "concrete" if res else "gypsum",
            "plate": {"ceiling_height_m": min(storey, 2.8 if res else 3.0)},
            "rooms": [{"name": f"{'flat' if res else 'office'} {i + 1}", "share": 0.25,
                       "door_open": 0.0 if res else 1.0} for i in range(4)],
            "core": {"lobby_area_m2": lobby,
                     "stairs": [{"name": chr(65 + i), "pressurised": top > (100.0 if res else 50.0)}
                                for i in range(n_stairs)],
                     "lifts": [{"name": "lifts", "cars": cars, "fire_lift": cars > 1}]},
            "sprinklers": {"installed": top > (100.0 if res else 24.0), "spacing_m2": 12.0},
            "detectors": {"installed": (top > 54.0) if res else True},
            "glazing": {"head_m": min(2.4, storey - 0.2)},
            "sources": ["OpenStreetMap building:levels, height and footprint"],
            "assumptions": ["layout generated by physics.fire_building.fire_building_from_osm (see its docstring)"],
        },
    }
    return parse_fire_building(desc, source=f"OSM {label}")


# ----------------------------------------------------------------------------- IFC (optional)
_STAIR_WORDS = ("stair", "楼梯")
_LIFT_WORDS = ("lift", "elevator", "电梯")
_LOBBY_WORDS = ("lobby", "前室", "hall", "门厅")
_CORRIDOR_WORDS = ("corridor", "走道", "走廊")


def _space_class(space: Any) -> str:
    text = f"{space.Name or ''} {getattr(space, 'LongName', None) or ''}".lower()
    for cls, words in (("stair", _STAIR_WORDS), ("lift", _LIFT_WORDS), ("lobby", _LOBBY_WORDS),
                       ("corridor", _CORRIDOR_WORDS)):
        if any(w in text for w in words):
            return cls
    return "room"


def _space_area(space: Any) -> float | None:
    import ifcopenshell.util.element as ue

    for props in ue.get_psets(space, qtos_only=True).values():
        for key in ("NetFloorArea", "GrossFloorArea"):
            if isinstance(props.get(key), int | float) and props[key] > 0:
                return float(props[key])
    return None


def _ifc_storeys(model: Any, scale: float) -> list[tuple[float, Any]]:
    """Storeys at or above grade (elevation >= 0), lowest first, elevations in m."""
    rows = [(float(s.Elevation or 0.0) * scale, s) for s in model.by_type("IfcBuildingStorey")]
    return sorted((r for r in rows if r[0] >= -1e-6), key=lambda r: r[0])


def fire_building_from_ifc(path: str | Path, *, occupancy: str = "office", top_storey_height_m: float | None = None,
                           sprinklers: bool = False) -> FireBuildingSpec:
    """A fire description from an IFC model (needs the optional ``ifc`` extra: ``ifcopenshell``).

    Read: the storeys at or above grade (``IfcBuildingStorey.Elevation``: storey
    heights are the differences, the top one ``top_storey_height_m`` or the one
    below it); the spaces of each storey (``IfcSpace`` with a
    ``NetFloorArea``/``GrossFloorArea`` quantity), told apart by name into
    stairs, lifts, lobby, corridor and rooms (English or Chinese words); the
    doors' ``OverallWidth``. The description's one floor layout is the storey
    with the most rooms (assumption: a tower of repeated floors): its rooms with
    their shares, lobby and corridor areas; the plate is their sum plus the
    shafts. Stairs: the most stair spaces on a storey (or ``IfcStair``
    elements), their mean area; lifts: one shaft of as many cars as the most
    lift spaces on a storey, 6.5 m² each. Everything else takes the file
    format's defaults.
    """
    try:
        import ifcopenshell
        import ifcopenshell.util.element as ue
        import ifcopenshell.util.unit as uu
    except ImportError:
        raise ValidationError("reading IFC needs ifcopenshell: pip install 'shenzhen-twin[ifc]'") from None
    p = Path(path)
    if not p.is_file():
        raise DataMissingError(f"{p}: no such IFC file")
    try:
        model = ifcopenshell.open(str(p))
    except Exception as exc:  # ifcopenshell raises its own parser errors
        raise DataIntegrityError(f"{p}: not a readable IFC model ({exc})") from exc
    scale = uu.calculate_unit_scale(model)
    storeys = _ifc_storeys(model, scale)
    if not storeys:
        raise ValidationError(f"{p}: no IfcBuildingStorey at or above grade: the fire model needs storeys")
    elev = [e for e, _ in storeys]
    heights = list(np.diff(elev))
    heights.append(top_storey_height_m or (heights[-1] if heights else 3.0))
    spaces = [sorted((x for x in ue.get_decomposition(s) if x.is_a("IfcSpace")),
                     key=lambda x: (x.Name or "", x.GlobalId)) for _, s in storeys]
    typical = max(range(len(storeys)), key=lambda i: (sum(_space_class(x) == "room" for x in spaces[i]), -i))
    no_area = [x.Name or x.GlobalId for x in spaces[typical] if _space_area(x) is None]
    if no_area:
        raise ValidationError(f"{p}: spaces {no_area} of storey {storeys[typical][1].Name!r} have no "
                              "NetFloorArea/GrossFloorArea quantity (Qto_SpaceBaseQuantities): add it")
    by_class: dict[str, list[tuple[str, float]]] = {}
    for x in spaces[typical]:
        by_class.setdefault(_space_class(x), []).append((getattr(x, "LongName", None) or x.Name or x.GlobalId,
                                                         _space_area(x)))
    rooms = by_class.get("room", [])
    if not rooms:
        raise ValidationError(f"{p}: storey {storeys[typical][1].Name!r} has no room spaces (only "
                              f"{sorted(by_class)}): the fire model needs rooms")
    def count(cls: str) -> int:
        return max(sum(_space_class(x) == cls for x in row) for row in spaces)

    n_stairs = max(count("stair"), len(model.by_type("IfcStair")), 1)
    stair_areas = [a for _, a in by_class.get("stair", [])]
    stair_area = float(np.mean(stair_areas)) if stair_areas else None
    cars = count("lift")
    doors = [float(d.OverallWidth) * scale for _, s in storeys for d in ue.get_decomposition(s)
             if d.is_a("IfcDoor") and d.OverallWidth]
    door = min(max(float(np.median(doors)) if doors else 0.9, 0.6), 10.0)
    lobby = sum(a for _, a in by_class.get("lobby", [])) or 25.0
    corridor = sum(a for _, a in by_class.get("corridor", []))
    total = sum(a for _, a in rooms)
    names = [f"{n} {i + 1}" if [m for m, _ in rooms].count(n) > 1 else n for i, (n, _) in enumerate(rooms)]
    stair_tables = [{"name": chr(65 + i), "width_m": 1.1} for i in range(n_stairs)]
    desc = {
        "name": str(model.by_type("IfcBuilding")[0].Name if model.by_type("IfcBuilding") else p.stem),
        "storeys": {"heights_m": [float(h) for h in heights]},
        "occupancy": {"floor_area_m2": 0.0},   # set below: the rooms, lobby, corridor and shafts
        "stairs": stair_tables,
        "fire": {
            "occupancy": occupancy,
            "plate": {"corridor_area_m2": corridor},
            "rooms": [{"name": n.replace("/", "-")[:40], "share": a / total, "door_width_m": door}
                      for n, (_, a) in zip(names, rooms, strict=True)],
            "core": {"lobby_area_m2": lobby,
                     "stairs": [{"name": s["name"], "area_m2": stair_area} for s in stair_tables] if stair_area
                     else [],
                     "lifts": [{"name": "lifts", "cars": cars}] if cars else []},
            "sprinklers": {"installed": sprinklers},
            "glazing": {"head_m": min(2.4, min(heights) - 0.2)},
            "sources": [f"IFC model {p.name}"],
            "assumptions": ["layout of the storey with the most rooms repeated on every storey "
                            "(physics.fire_building.fire_building_from_ifc)"],
        },
    }
    stair_each = stair_area or dogleg_stair_area_m2(1.1, 175.0, 260.0, max(heights))
    desc["occupancy"]["floor_area_m2"] = total + lobby + corridor + n_stairs * stair_each + cars * 6.5
    return parse_fire_building(desc, source=str(p))


__all__ = ["DESIGN_DP_PA", "DETECTOR_DEFAULTS", "DOOR_LEAK_M2", "EXAMPLES", "FUEL_LOAD_MJ_M2",
           "GLAZING_BREAK_C", "GROWTH_BY_OCCUPANCY", "LEAKAGE_RATIO", "LIFT_DOOR_LEAK_M2", "SPRINKLER_RTI",
           "FireBuildingSpec", "build_network", "evacuation_tables", "fire_building_from_ifc", "fire_building_from_osm", "load_example", "load_fire_building",
           "merged_description", "parse_fire_building"]
