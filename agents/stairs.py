"""SFPE hydraulic relations of egress elements: speed, specific flow, effective width, transitions.

The relations of the SFPE Handbook's hydraulic ("engineering") model of
emergency movement (Nelson & Mowrer 2002, SFPE Handbook 3rd ed. ch. 3-14;
Gwynne & Rosenbaum 2016, SFPE Handbook 5th ed. ch. 59 "Employing the
Hydraulic Model in Assessing Emergency Movement"):

* speed by density: ``S = k (1 - a D)`` with ``a = 0.266`` m²/P for
  ``0.54 <= D <= 3.8`` P/m²; below 0.54 P/m² people walk at ``0.85 k``
  (the speed at D = 0.54); at 3.8 P/m² and above movement stops;
* specific flow ``Fs = S D`` (P/s per metre of effective width); its
  maximum is at ``D = 1 / (2 a) = 1.88`` P/m², ``Fs,max = k / (4 a)``:
  1.32 P/s/m for corridors, ramps and doorways (k = 1.40 m/s), 0.94-1.16
  P/s/m for stairs;
* the constant ``k`` of a stair from its riser and tread (SFPE table
  :data:`STAIR_K`);
* effective width = clear width minus a boundary layer on each side
  (SFPE table :data:`BOUNDARY_LAYER_M`, after Pauls);
* a transition passes ``min(upstream flow, the element's maximum flow)``
  (the SFPE transition rule); what exceeds it queues before the element.

Merging at a stair landing (the floor's door stream and the stair stream from
above sharing the flight below) is not in the hydraulic model's equations;
the building simulation gives the floor stream a share ``floor_share`` of the
flight's capacity when both streams wait (default 0.5, the even split that
Galea, Sharp & Lawrence 2008, J. Fire Prot. Eng. 18(4), observed for a door
opposite the incoming flight, and Pathfinder's default; the share moves with
the door's position, so it is a parameter). See :func:`merge_split`.
"""

from __future__ import annotations

import math

import numpy as np

from twin.errors import ValidationError

#: Slope of the speed-density line (m²/P), SFPE ``a = 0.266``.
A_SPEED = 0.266
#: Density below which people walk at their unimpeded speed (P/m²).
D_FREE = 0.54
#: Density at which movement stops (P/m²).
D_JAM = 3.8
#: Density of the maximum specific flow, ``1 / (2 a)`` (P/m²).
D_MAX_FLOW = 1.0 / (2.0 * A_SPEED)
#: ``k`` of corridors, aisles, ramps and doorways (m/s), SFPE.
K_LEVEL = 1.40

#: SFPE stair constants: (riser mm, tread mm, k m/s); rows of the SFPE table
#: (7.5/10, 7/11, 6.5/12, 6.5/13 inches).
STAIR_K: tuple[tuple[float, float, float], ...] = (
    (191.0, 254.0, 1.00),
    (178.0, 279.0, 1.08),
    (165.0, 305.0, 1.16),
    (165.0, 330.0, 1.23),
)

#: Boundary layer on each side of an element (m), SFPE table after Pauls.
BOUNDARY_LAYER_M: dict[str, float] = {
    "stair_wall": 0.15,
    "handrail": 0.09,
    "theater_seat": 0.0,
    "corridor_wall": 0.20,
    "obstacle": 0.10,
    "wide_concourse": 0.46,
    "door": 0.15,
}


def speed(density, k: float = K_LEVEL):
    """SFPE speed (m/s) at ``density`` (P/m²) on an element of constant ``k`` (m/s).

    ``0.85 k`` below 0.54 P/m², ``k (1 - 0.266 D)`` up to 3.8 P/m², 0 beyond.
    """
    d = np.asarray(density, dtype=float)
    s = np.where(d < D_FREE, k * (1.0 - A_SPEED * D_FREE), k * (1.0 - A_SPEED * d))
    s = np.where(d >= D_JAM, 0.0, s)
    return float(s) if s.ndim == 0 else s


def specific_flow(density, k: float = K_LEVEL):
    """SFPE specific flow ``Fs = S D`` (P/s per m of effective width)."""
    return np.asarray(speed(density, k)) * np.asarray(density, dtype=float)


def max_specific_flow(k: float = K_LEVEL) -> float:
    """Maximum specific flow ``k / (4 a)`` (P/s/m), at ``D = 1.88`` P/m² (1.32 for k = 1.40)."""
    return k * (1.0 - A_SPEED * D_MAX_FLOW) * D_MAX_FLOW


def stair_k(riser_mm: float, tread_mm: float) -> float:
    """SFPE ``k`` (m/s) of a stair, interpolated linearly in riser/tread between the table rows.

    Raises
    ------
    ValidationError
        A riser/tread ratio outside the table's range (0.50-0.75): the SFPE
        relations were not measured there.
    """
    if not (riser_mm > 0 and tread_mm > 0 and math.isfinite(riser_mm) and math.isfinite(tread_mm)):
        raise ValidationError(f"riser_mm={riser_mm!r}, tread_mm={tread_mm!r}: give positive finite sizes")
    slope = riser_mm / tread_mm
    table = np.array([(r / t, k) for r, t, k in STAIR_K])  # slope falls as k rises
    lo, hi = table[:, 0].min(), table[:, 0].max()
    if not lo - 1e-9 <= slope <= hi + 1e-9:
        raise ValidationError(
            f"riser/tread {riser_mm:g}/{tread_mm:g} mm = {slope:.3f}: outside the SFPE stair table "
            f"({lo:.3f}-{hi:.3f}, i.e. 165/330 to 191/254 mm)")
    order = np.argsort(table[:, 0])
    return float(np.interp(slope, table[order, 0], table[order, 1]))


def effective_width(clear_width_m: float, element: str = "stair_wall") -> float:
    """Clear width minus the boundary layer of ``element`` on both sides (m).

    Raises
    ------
    ValidationError
        Unknown element, or nothing left of the width.
    """
    if element not in BOUNDARY_LAYER_M:
        raise ValidationError(f"element={element!r}: one of {sorted(BOUNDARY_LAYER_M)}")
    we = clear_width_m - 2.0 * BOUNDARY_LAYER_M[element]
    if not we > 0:
        raise ValidationError(f"width {clear_width_m!r} m: no effective width left after the "
                              f"{element} boundary layers (2 x {BOUNDARY_LAYER_M[element]} m)")
    return float(we)


def stair_travel_per_storey(storey_height_m: float, riser_mm: float, tread_mm: float,
                            landing_travel_m: float) -> float:
    """Travel distance (m) down one storey: along the slope of the flights plus the landings.

    The flights climb ``storey_height_m`` at the angle ``atan(riser/tread)``;
    the SFPE hydraulic model measures stair travel along that slope and adds
    the travel across the landings.
    """
    theta = math.atan2(riser_mm, tread_mm)
    return storey_height_m / math.sin(theta) + landing_travel_m


def transition_flow(upstream_p_s: float, *max_flows_p_s: float) -> float:
    """SFPE transition rule: the flow leaving a transition, ``min(upstream, each element's maximum)``."""
    return float(min((upstream_p_s, *max_flows_p_s)))


def merge_split(capacity: int, floor_waiting: int, stair_waiting: int, floor_share: float,
                carry: float = 0.0) -> tuple[int, int, float]:
    """Split ``capacity`` places on the flight below a landing between the floor and the stair streams.

    When both streams wait, the floor stream gets ``floor_share`` of the
    places (a fractional remainder is carried to the next call, so the split
    holds on average); places one stream cannot use go to the other.

    Returns
    -------
    (from_floor, from_stair, carry)
    """
    if floor_waiting + stair_waiting <= capacity:
        return floor_waiting, stair_waiting, carry
    x = floor_share * capacity + carry
    want = int(math.floor(x))
    carry = x - want
    take_floor = min(floor_waiting, want)
    take_stair = min(stair_waiting, capacity - take_floor)
    take_floor = min(floor_waiting, capacity - take_stair)
    return take_floor, take_stair, carry


__all__ = ["A_SPEED", "BOUNDARY_LAYER_M", "D_FREE", "D_JAM", "D_MAX_FLOW", "K_LEVEL", "STAIR_K",
           "effective_width", "max_specific_flow", "merge_split", "specific_flow", "speed", "stair_k",
           "stair_travel_per_storey", "transition_flow"]
