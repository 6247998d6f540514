"""Hazard of floodwater to people (and cars) from depth and velocity: pure, vectorised functions.

Three published criteria, each a function of arrays of depth ``D`` (m) and
velocity ``V`` (m/s), any shape (broadcast):

* :func:`hazard_class` — the combined flood hazard curves H1-H6 of
  Australian Rainfall and Runoff 2019 (ARR, Book 6 ch. 7, "Safety Design
  Criteria"; Smith, Davey & Cox 2014, the AIDR Guideline 7-3 *Flood Hazard*
  tabulates the same curves). A point is in the first class whose three
  limits all hold (limits inclusive)::

      class  D·V max  D max  V max   vulnerability (ARR)
      H1     0.3      0.3    2.0     generally safe for people, vehicles, buildings
      H2     0.6      0.5    2.0     unsafe for small vehicles
      H3     0.6      1.2    2.0     unsafe for vehicles, children and the elderly
      H4     1.0      2.0    2.0     unsafe for vehicles and people
      H5     4.0      4.0    4.0     unsafe for vehicles and people; buildings need special engineering
      H6     beyond H5               unsafe for vehicles and people; all buildings vulnerable to failure

* :func:`people_stability` — the people-stability categories of Cox, Shand &
  Blacka 2010 (ARR Revision Project 10, *Appropriate Safety Criteria for
  People*), which ARR 2019 adopts for people: by D·V with an upper depth
  limit of 0.5 m for children (height × mass 25-50 m·kg) and 1.2 m for
  adults (> 50 m·kg), and 3.0 m/s for velocity.

* :func:`walking_speed_factor` — how much slower people wade in shallow water.
  (Cars: the depth-disruption curve of Pregnolato et al. 2017 in
  :mod:`agents.road_hazard`.)

Which class closes a street for people on foot
----------------------------------------------
A district evacuation moves everybody, children and the elderly included,
so a street is closed to walkers from **H3** on (:data:`PEDESTRIAN_CLOSE_CLASS`):
ARR marks H3 unsafe for children and the elderly and H4 unsafe for all
people. The H2 limits (D ≤ 0.5 m, D·V ≤ 0.6 m²/s) are also Cox et al.'s upper
depth limit for children. The threshold is a parameter (``close_class``).

Walking speed in water
----------------------
Li, Song, Zhang & Bode (2026), *Impacts of water depth on pedestrian speed,
gait and stability* (Acta Polytechnica CTU Proceedings 57:226; 188 people
walking in still water 0, 0.35, 0.60, 0.90 m deep): from dry ground to
0.35 m the mean speed fell by 38.6 % (men) and 44.8 % (women), and "further
increases in depth resulted in progressively smaller changes". We take the
mean of the two, a 41.7 % fall at 0.35 m, linear in depth from dry ground
(Bernardini et al. 2020, Safety Science 123:104563, also fit speeds linear
in depth over 0.2-0.7 m), and hold the 0.35 m value deeper: deeper water
slows people a little more, so the factor is an upper bound there; the
default closure at H3 (D > 0.5 m) keeps the range short.
"""

from __future__ import annotations

import numpy as np

#: ARR 2019 combined hazard curves: (D·V max m²/s, D max m, V max m/s) of H1..H5; H6 beyond.
HAZARD_LIMITS: tuple[tuple[float, float, float], ...] = (
    (0.3, 0.3, 2.0),  # H1
    (0.6, 0.5, 2.0),  # H2
    (0.6, 1.2, 2.0),  # H3
    (1.0, 2.0, 2.0),  # H4
    (4.0, 4.0, 4.0),  # H5
)

#: ARR's vulnerability text of each class (index 1..6).
HAZARD_TEXT = {
    1: "generally safe for vehicles, people and buildings",
    2: "unsafe for small vehicles",
    3: "unsafe for vehicles, children and the elderly",
    4: "unsafe for vehicles and people",
    5: "unsafe for vehicles and people; buildings vulnerable to structural damage",
    6: "unsafe for vehicles and people; all building types vulnerable to failure",
}

#: First class closed to people on foot (H3: unsafe for children and the elderly, ARR 2019).
PEDESTRIAN_CLOSE_CLASS = 3

#: Cox et al. 2010 people-stability categories (return values of :func:`people_stability`).
STABILITY = ("safe", "low", "moderate", "significant", "extreme")

#: Cox et al. 2010: D·V band edges (m²/s) and the category of each band, per group.
_COX_DV_EDGES = {
    "adult": ((0.6, 1), (0.8, 2), (1.2, 3)),  # ≤0.6 low, ≤0.8 moderate, ≤1.2 significant, beyond extreme
    "child": ((0.4, 1), (0.6, 3)),  # ≤0.4 low, ≤0.6 significant, beyond extreme
}
_COX_DEPTH_LIMIT_M = {"adult": 1.2, "child": 0.5}
_COX_VELOCITY_LIMIT_MPS = 3.0

#: Li et al. 2026: mean fall of walking speed from dry ground to 0.35 m of still water (men 38.6 %, women 44.8 %).
WADE_DEPTH_M = 0.35
WADE_SPEED_FALL = (0.386 + 0.448) / 2.0


def _dv(depth, velocity) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    d = np.clip(np.nan_to_num(np.asarray(depth, dtype=float), nan=0.0), 0.0, None)
    v = np.abs(np.nan_to_num(np.asarray(velocity, dtype=float), nan=0.0))
    d, v = np.broadcast_arrays(d, v)
    return d, v, d * v


def hazard_class(depth, velocity) -> np.ndarray:
    """ARR 2019 combined hazard class (1..6) of each depth/velocity pair.

    Parameters
    ----------
    depth : array_like
        Water depth (m); NaN and negative values count as dry.
    velocity : array_like
        Flow speed (m/s), broadcast against ``depth``; NaN counts as still water.

    Returns
    -------
    ndarray of int8
        1 for H1 (dry ground included) ... 6 for H6; limits are inclusive
        (D·V = 0.3, D = 0.3, V = 2.0 is still H1).

    Examples
    --------
    >>> hazard_class([0.0, 0.3, 0.31, 1.2, 2.5], [0.0, 1.0, 0.0, 0.5, 0.0]).tolist()
    [1, 1, 2, 3, 5]
    """
    d, v, dv = _dv(depth, velocity)
    out = np.full(d.shape, 6, dtype=np.int8)
    for k in range(len(HAZARD_LIMITS), 0, -1):  # from H5 down, so the lowest class that fits wins
        dv_max, d_max, v_max = HAZARD_LIMITS[k - 1]
        out[(dv <= dv_max) & (d <= d_max) & (v <= v_max)] = k
    return out


def people_stability(depth, velocity, group: str = "adult") -> np.ndarray:
    """Cox et al. 2010 stability category index of people standing in the flow.

    0 ``safe`` (dry), 1 ``low``, 2 ``moderate``, 3 ``significant``, 4
    ``extreme`` (names in :data:`STABILITY`). Beyond the group's depth limit
    (children 0.5 m, adults 1.2 m) or 3.0 m/s the hazard is extreme whatever D·V.

    Parameters
    ----------
    depth, velocity : array_like
        m and m/s (broadcast).
    group : {"adult", "child"}
        Adults: height × mass > 50 m·kg; children: 25-50 m·kg. (Infants and
        frail people have no safe flood depth in Cox et al.)

    Returns
    -------
    ndarray of int8
    """
    if group not in _COX_DV_EDGES:
        raise ValueError(f"group={group!r}: choose 'adult' or 'child'")
    d, v, dv = _dv(depth, velocity)
    out = np.full(d.shape, 4, dtype=np.int8)
    for edge, cat in reversed(_COX_DV_EDGES[group]):
        out[dv <= edge] = cat
    out[(d > _COX_DEPTH_LIMIT_M[group]) | (v > _COX_VELOCITY_LIMIT_MPS)] = 4
    out[d <= 0.0] = 0
    return out


def walking_speed_factor(depth) -> np.ndarray:
    """Walking speed in water over walking speed on dry ground (Li et al. 2026; module doc).

    ``1 − 0.417·D/0.35`` for D ≤ 0.35 m, held at 0.583 deeper; 1 on dry ground.
    """
    d = np.clip(np.nan_to_num(np.asarray(depth, dtype=float), nan=0.0), 0.0, None)
    return 1.0 - WADE_SPEED_FALL * np.minimum(d, WADE_DEPTH_M) / WADE_DEPTH_M


__all__ = ["HAZARD_LIMITS", "HAZARD_TEXT", "PEDESTRIAN_CLOSE_CLASS", "STABILITY", "hazard_class", "people_stability",
           "walking_speed_factor"]
