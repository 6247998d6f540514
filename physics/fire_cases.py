"""Reference fire cases shared by the zone model's tests, the CFAST driver and the benchmark.

Issue 14 compares the zone model side by side with NIST CFAST on one room, on
two rooms joined by a door and on a three-storey stack with a stair shaft. Each
case is a :class:`FireCase`: a :class:`~physics.fire_network.FireNetwork`, the
fires in it as heat-release tables (:class:`TabulatedFire`), the run length and
the inside and outside temperatures. The zone model reads the fires as a heat
release per compartment (:meth:`FireCase.q_kw`); :mod:`physics.fire_cfast`
writes the same case as a CFAST input, so both see identical geometry and fires.

- :func:`one_room`: the MQH room of ``docs/references.md`` (4×4×2.4 m, 16 mm
  gypsum k 0.16 W/mK, ρ 790 kg/m³, c 900 J/kgK, door 1×2 m, 500 kW);
- :func:`two_rooms`: that fire room and a 4×6 m neighbour joined by a door, the
  neighbour's outside door the only opening to outside;
- :func:`three_storey_stack`: a room per storey beside a stair shaft of one
  compartment per storey joined by ceiling vents, fire on the ground floor,
  doors to the shaft open, leakage to outside everywhere;
- :func:`tower`: the same stack ``storeys`` high with the doors to the shaft
  closed (leaking) except on the fire floor, a medium-height case (CFAST
  runs it only isothermal, see :func:`tower`).

The fuel is propane (C3H8, 46.0 MJ/kg; soot yield 0.024 and CO yield 0.005 kg/kg,
Tewarson's table in the SFPE Handbook): a clean, well-documented gas whose
yields both models take as given.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from physics.fire_correlations import growth_alpha
from physics.fire_network import CONCRETE, OUTSIDE, FireNetwork, NetworkBuilder
from twin.errors import ValidationError

#: The gypsum of the references.md MQH room (CFAST's own gypsum board): k 0.16 W/mK, ρ 790 kg/m³,
#: c 900 J/kgK, 16 mm.
MQH_GYPSUM = {"k": 0.16, "rho": 790.0, "c": 900.0, "thickness_m": 0.016}
#: Propane (SFPE Handbook, Tewarson: ΔH_c 46.0 MJ/kg, y_soot 0.024, y_CO 0.005).
PROPANE = {"formula": (3.0, 8.0, 0.0, 0.0, 0.0), "heat_of_combustion_kj_kg": 46000.0,
           "soot_yield": 0.024, "co_yield": 0.005}


@dataclass(frozen=True)
class TabulatedFire:
    """A fire in one compartment: its heat release table and what it burns.

    ``time_s`` and ``hrr_kw`` are the table (linear between points, held after
    the last); ``area_m2`` the burning area (its diameter sets the plume's
    virtual origin); ``radiative_fraction`` the share of the heat release
    radiated from the flame; ``formula`` the fuel's atoms (C, H, O, N, Cl);
    ``location_xy`` the fire's position on the floor plan (the centre if None);
    ``height_m`` the fire's base above the floor.
    """

    compartment: str
    time_s: tuple[float, ...]
    hrr_kw: tuple[float, ...]
    area_m2: float = 1.0
    radiative_fraction: float = 0.35
    heat_of_combustion_kj_kg: float = PROPANE["heat_of_combustion_kj_kg"]
    soot_yield: float = PROPANE["soot_yield"]
    co_yield: float = PROPANE["co_yield"]
    formula: tuple[float, float, float, float, float] = PROPANE["formula"]
    location_xy: tuple[float, float] | None = None
    height_m: float = 0.0
    name: str = "fire"

    def __post_init__(self):
        t, q = np.asarray(self.time_s, float), np.asarray(self.hrr_kw, float)
        where = f"fire {self.name!r}"
        if t.ndim != 1 or len(t) < 1 or t.shape != q.shape:
            raise ValidationError(f"{where}: time_s and hrr_kw must be 1-D of the same length >= 1, "
                                  f"got {t.shape} and {q.shape}")
        if not (np.all(np.isfinite(t)) and t[0] >= 0 and np.all(np.diff(t) > 0)):
            raise ValidationError(f"{where}: time_s={list(t)} must start at >= 0 s and increase")
        bad = np.flatnonzero(~(np.isfinite(q) & (q >= 0)))
        if len(bad):
            raise ValidationError(f"{where}: hrr_kw[{bad[0]}]={float(q[bad[0]])!r} must be a finite number >= 0 kW")
        for name in ("area_m2", "heat_of_combustion_kj_kg"):
            v = float(getattr(self, name))
            if not (np.isfinite(v) and v > 0):
                raise ValidationError(f"{where}: {name}={v!r} must be a finite number > 0")
        for name, hi in (("radiative_fraction", 1.0), ("soot_yield", 1.0), ("co_yield", 1.0),
                         ("height_m", np.inf)):
            v = float(getattr(self, name))
            if not (0.0 <= v <= hi) or np.isnan(v) or np.isinf(v):
                raise ValidationError(f"{where}: {name}={v!r} must lie in 0..{hi:g}")

    def hrr_at(self, t_s) -> np.ndarray:
        """Heat release (kW) at ``t_s``: linear in the table, 0 before its first time, held after its last."""
        t = np.asarray(t_s, float)
        q = np.interp(t, self.time_s, self.hrr_kw)
        return np.where(t < self.time_s[0], 0.0, q)

    @property
    def peak_kw(self) -> float:
        return float(max(self.hrr_kw))

    def zone_fuel(self) -> dict:
        """This fuel as the zone model takes it (``FireZoneModel(fuel=...)``): CO2 from the carbon left after CO
        and soot (H2O untracked)."""
        c, h, o, n, cl = self.formula
        carbon = 12.011 * c / (12.011 * c + 1.008 * h + 16.0 * o + 14.007 * n + 35.45 * cl)
        co2 = (carbon - self.co_yield * 12.011 / 28.01 - self.soot_yield) * 44.01 / 12.011
        return {"heat_of_combustion_kj_kg": self.heat_of_combustion_kj_kg, "co": self.co_yield,
                "soot": self.soot_yield, "co2": co2, "h2o": 0.0}


def t2_fire(compartment: str, *, growth: str | float = "fast", peak_kw: float, t_end_s: float,
            points: int = 12, **kw) -> TabulatedFire:
    """A t² fire (α of ``growth``, fire_correlations.GROWTH_ALPHA) rising to ``peak_kw`` and held to ``t_end_s``.

    The ramp is tabulated at ``points`` times so that a model interpolating
    linearly (CFAST) follows the parabola within 1 % of the peak.
    """
    alpha = growth_alpha(growth)
    t_peak = float(np.sqrt(peak_kw / alpha))
    if t_peak >= t_end_s:
        raise ValidationError(f"t2_fire: the {growth} ramp reaches {peak_kw:g} kW at {t_peak:.0f} s, after "
                              f"t_end_s={t_end_s:g}: give a longer run or a smaller peak")
    t = np.linspace(0.0, t_peak, points)
    q = np.minimum(alpha * t * t, peak_kw)
    return TabulatedFire(compartment, tuple(np.append(t, t_end_s)), tuple(np.append(q, peak_kw)), **kw)


def steady_fire(compartment: str, *, hrr_kw: float, t_end_s: float, **kw) -> TabulatedFire:
    """A fire burning at ``hrr_kw`` from t = 0 (the references.md MQH case)."""
    return TabulatedFire(compartment, (0.0, float(t_end_s)), (float(hrr_kw), float(hrr_kw)), **kw)


@dataclass(frozen=True)
class FireCase:
    """A network, its fires, the run length and the ambient temperatures: one comparison case."""

    name: str
    network: FireNetwork
    fires: tuple[TabulatedFire, ...]
    t_end_s: float
    t_in_c: float = 20.0
    t_out_c: float = 20.0
    description: str = ""
    source: str = ""
    attrs: dict = field(default_factory=dict)

    def __post_init__(self):
        for f in self.fires:
            self.network.index(f.compartment)  # names the missing compartment

    def q_kw(self, t_s: float) -> np.ndarray:
        """Heat release (kW) per compartment at ``t_s`` (N,): the zone model's fire input."""
        q = np.zeros(self.network.n_compartments)
        for f in self.fires:
            q[self.network.index(f.compartment)] += float(f.hrr_at(t_s))
        return q


def _fire(room: str, growth, peak_kw: float, t_end_s: float, area_m2: float) -> TabulatedFire:
    if growth is None:
        return steady_fire(room, hrr_kw=peak_kw, t_end_s=t_end_s, area_m2=area_m2)
    return t2_fire(room, growth=growth, peak_kw=peak_kw, t_end_s=t_end_s, area_m2=area_m2)


def one_room(*, growth: str | float | None = "fast", hrr_kw: float = 500.0, t_end_s: float = 900.0,
             fire_area_m2: float = 1.0) -> FireCase:
    """The references.md MQH room: 4×4×2.4 m, 16 mm gypsum (:data:`MQH_GYPSUM`), door 1×2 m, 500 kW.

    ``growth=None`` burns 500 kW from t = 0 as the reference does; the default
    reaches it on a fast t² ramp (103 s). The fire area (1 m², 500 kW/m²) sets
    CFAST's plume origin: a smaller fire entrains less and runs hotter.
    """
    b = NetworkBuilder("one room", storey_heights_m=[2.4])
    room = b.compartment("room", kind="room", storey=0, area_m2=16.0, lining=MQH_GYPSUM)
    b.vent(room, OUTSIDE, bottom_m=0.0, top_m=2.0, width_m=1.0, kind="outside_door")
    net = b.build(source="references.md, High-rise fire: MQH example room")
    return FireCase("one_room", net, (_fire("room", growth, hrr_kw, t_end_s, fire_area_m2),), t_end_s,
                    description=f"4x4x2.4 m gypsum room, door 1x2 m, {hrr_kw:g} kW "
                                + ("steady" if growth is None else f"after a {growth} t² ramp"),
                    source="docs/references.md (MQH room; CFAST 279 °C at 540 s)")


def two_rooms(*, growth: str | float | None = "fast", hrr_kw: float = 500.0, t_end_s: float = 900.0,
              fire_area_m2: float = 1.0) -> FireCase:
    """The MQH fire room and a 4×6×2.4 m neighbour joined by a 1×2 m door; the neighbour's 1×2 m door opens outside."""
    b = NetworkBuilder("two rooms", storey_heights_m=[2.4])
    fire = b.compartment("fire room", kind="room", storey=0, area_m2=16.0, lining=MQH_GYPSUM)
    nxt = b.compartment("next room", kind="room", storey=0, area_m2=24.0, lining=MQH_GYPSUM)
    b.vent(fire, nxt, bottom_m=0.0, top_m=2.0, width_m=1.0, kind="door")
    b.vent(nxt, OUTSIDE, bottom_m=0.0, top_m=2.0, width_m=1.0, kind="outside_door")
    net = b.build(source="issue 14: two rooms joined by a door")
    return FireCase("two_rooms", net, (_fire("fire room", growth, hrr_kw, t_end_s, fire_area_m2),), t_end_s,
                    description=f"fire room 4x4 m + neighbour 4x6 m, 2.4 m high, doors 1x2 m, {hrr_kw:g} kW",
                    source="issue 14 (CFAST comparison case 2)")


def _stack(name: str, storeys: int, *, fire_storey: int, storey_height_m: float, room_area_m2: float,
           stair_area_m2: float, stair_opening_m2: float, open_doors: str, leak_m2: float,
           door_gap_m2: float) -> FireNetwork:
    """A room per storey beside a stair (one compartment per storey, ceiling vents between them)."""
    b = NetworkBuilder(name, storey_heights_m=[storey_height_m] * storeys)
    stairs = []
    slot_h = 2.0  # leakage as a 2 m high slot: its area spread over the wall's height
    for s in range(storeys):
        room = b.compartment(f"room {s}", kind="room", storey=s, area_m2=room_area_m2, lining=MQH_GYPSUM)
        stair = b.compartment(f"stair {s}", kind="stair", storey=s, area_m2=stair_area_m2, lining=CONCRETE)
        stairs.append(stair)
        door_open = open_doors == "all" or s == fire_storey
        if door_open:
            b.vent(room, stair, bottom_m=0.0, top_m=2.1, width_m=0.9, kind="shaft_door")
        else:  # a closed door's gaps: a 2 m high slot of the gap area
            b.vent(room, stair, bottom_m=0.05, top_m=0.05 + slot_h, width_m=door_gap_m2 / slot_h, kind="leak")
        b.vent(room, OUTSIDE, bottom_m=0.3, top_m=0.3 + slot_h, width_m=leak_m2 / slot_h, kind="leak")
        b.vent(stair, OUTSIDE, bottom_m=0.3, top_m=0.3 + slot_h, width_m=leak_m2 / slot_h, kind="leak")
        if s == fire_storey:  # the fire room's open door to outside feeds the fire
            b.vent(room, OUTSIDE, bottom_m=0.0, top_m=2.0, width_m=1.0, kind="outside_door")
    for lo, hi in zip(stairs[:-1], stairs[1:], strict=True):
        b.ceiling_vent(lo, hi, area_m2=stair_opening_m2, kind="shaft")
    return b.build(source=f"{name}: fire_cases")


def three_storey_stack(*, growth: str | float | None = "fast", hrr_kw: float = 1000.0, t_end_s: float = 900.0,
                       fire_area_m2: float = 2.0) -> FireCase:
    """Three 3 m storeys: a 5×5 m gypsum room and a 3×5 m concrete stair on each, fire in the ground-floor room.

    The doors from the rooms into the stair (0.9×2.1 m) are open on every storey;
    the stair compartments are joined by 4 m² openings (the stair's well); every
    room and stair compartment leaks 0.02 m² to outside (a tight wall,
    A/A_w ≈ 3.5e-4, NFPA 92 table); the fire room's 1×2 m door to outside is open.
    """
    net = _stack("three-storey stack", 3, fire_storey=0, storey_height_m=3.0, room_area_m2=25.0,
                 stair_area_m2=15.0, stair_opening_m2=4.0, open_doors="all", leak_m2=0.02, door_gap_m2=0.02)
    return FireCase("three_storey_stack", net, (_fire("room 0", growth, hrr_kw, t_end_s, fire_area_m2),),
                    t_end_s, description=f"3 storeys x (room 5x5 m + stair 3x5 m), 3 m storeys, doors to the "
                                         f"stair open, {hrr_kw:g} kW on the ground floor",
                    source="issue 14 (CFAST comparison case 3)")


def tower(storeys: int = 10, *, fire_storey: int = 1, growth: str | float | None = "fast",
          hrr_kw: float = 1000.0, t_end_s: float = 900.0, t_in_c: float = 20.0, t_out_c: float = 20.0,
          fire_area_m2: float = 2.0) -> FireCase:
    """``storeys`` 3 m storeys of the stack; the doors to the stair closed (0.02 m² gaps) except on the fire floor.

    Isothermal by default (20 °C inside and out). Pass ``t_out_c`` for a stack
    effect (Shenzhen winter ≈ 5–10 °C outside, 20 °C inside): the zone model
    runs it, but CFAST 8.0.0.dev354 does not — with 5 °C outside its time step
    collapses at ≈ 160–170 s on this tower and on the three-storey stack alike
    ("100 consecutive time steps with size below 0.1" or no progress), while a
    1 K difference runs. So the CFAST reference of this case is isothermal,
    unless the stair is written as CFAST one-zone shafts
    (``fire_cfast.cfast_input(..., one_zone_shafts=True)``), which run.
    """
    if not (2 <= storeys <= 40) or not (0 <= fire_storey < storeys):
        raise ValidationError(f"tower: storeys={storeys!r} must be 2..40 and fire_storey={fire_storey!r} "
                              f"one of them (CFAST holds at most 100 compartments)")
    net = _stack(f"{storeys}-storey tower", storeys, fire_storey=fire_storey, storey_height_m=3.0,
                 room_area_m2=25.0, stair_area_m2=15.0, stair_opening_m2=4.0, open_doors="fire",
                 leak_m2=0.02, door_gap_m2=0.02)
    return FireCase(f"tower_{storeys}", net, (_fire(f"room {fire_storey}", growth, hrr_kw, t_end_s,
                                                    fire_area_m2),),
                    t_end_s, t_in_c=t_in_c, t_out_c=t_out_c,
                    description=f"{storeys} storeys, fire on storey {fire_storey}, doors to the stair closed "
                                f"elsewhere, {t_out_c:g} °C outside / {t_in_c:g} °C inside",
                    source="issue 14 (medium-height tower)")


#: The comparison cases by name (issue 14's three plus the tower).
CASES = {"one_room": one_room, "two_rooms": two_rooms, "three_storey_stack": three_storey_stack,
         "tower": tower}
