"""Road closures and slow-downs from a flood run's depth and speed fields.

Vehicle speed in standing water follows the depth–disruption function of
Pregnolato, Ford, Wilkinson & Dawson (2017), "The impact of flooding on road
transport: a depth-disruption function", Transportation Research Part D 55,
67–81 (their eq. 4, fitted to experiments, expert judgement and videos)::

    v(w) = 0.0009 w² − 0.5529 w + 86.9448   km/h,  w = water depth in mm,

with the road impassable (v = 0) from w = 300 mm on. The curve is read as
the *highest safe speed* through water of depth w, so a vehicle drives at
``min(free-flow speed, v(w))``: the speed factor is ``min(1, v(w) / v_free)``.
A proportional reading (``v(w) / v(0)`` × the road's own speed) would slow a
20 km/h lane already at a few millimetres of water, which the experiments
behind the curve do not show (they drove at 20–30 km/h through 0.1–0.2 m).

Moving water can also carry a vehicle away before it is deep: an edge also
closes when depth × flow speed exceeds a vehicle-stability limit. The default
0.6 m²/s is the limit for large 4WD vehicles of Shand, Smith, Cox & Blacka
(2011), "Australian Rainfall & Runoff Revision Project 10: Appropriate
Safety Criteria for Vehicles" (Table 6), and the H3/H4 boundary of the
combined hazard curves of Australian Rainfall and Runoff 2019 (Book 6,
Chapter 7, Table 6.7.4: "unsafe for vehicles" above D·V = 0.6 m²/s);
fire engines and ambulances are heavier, so this is conservative.

Each edge is sampled in EPSG:4547 at its vertices and at points every
≤ half a cell along it; its depth (and D·V) at a time is the maximum over
those points. Points outside the flood grid, sea cells and NaN count as dry.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from twin.errors import DataError, ValidationError

if TYPE_CHECKING:  # pragma: no cover
    import xarray as xr

    from gis.roads import RoadGraph

#: Pregnolato et al. 2017, eq. 4: coefficients of v(w) in km/h for w in mm.
PREGNOLATO_COEFFS_KMH = (0.0009, -0.5529, 86.9448)
#: Depth from which a road is impassable (Pregnolato et al. 2017), m.
PREGNOLATO_CLOSED_M = 0.3
#: Vehicle-stability limit on depth × velocity (Shand et al. 2011; ARR 2019 H3/H4), m²/s.
VEHICLE_DV_LIMIT = 0.6

OPEN, SLOWED, CLOSED = 0, 1, 2
FLOOD_REASON = "flood"


def pregnolato_speed_kmh(depth_m: Any, closed_m: float = PREGNOLATO_CLOSED_M) -> np.ndarray:
    """Highest safe vehicle speed (km/h) in water ``depth_m`` metres deep; 0 when closed.

    Examples
    --------
    >>> float(pregnolato_speed_kmh(0.0))
    86.9448
    >>> float(pregnolato_speed_kmh(0.3))
    0.0
    """
    w = np.maximum(np.asarray(depth_m, dtype=float), 0.0) * 1000.0
    a, b, c = PREGNOLATO_COEFFS_KMH
    v = a * w * w + b * w + c
    return np.where(w >= closed_m * 1000.0, 0.0, np.maximum(v, 0.0))


def speed_factor(depth_m: Any, free_speed_mps: Any, closed_m: float = PREGNOLATO_CLOSED_M
                 ) -> np.ndarray:
    """``min(1, v(w) / v_free)``: the share of free-flow speed left (0 = closed)."""
    v = pregnolato_speed_kmh(depth_m, closed_m) / 3.6
    return np.minimum(1.0, v / np.asarray(free_speed_mps, dtype=float))


@dataclass(frozen=True)
class RoadHazard:
    """Per time step and edge: flood state of a road graph.

    Attributes
    ----------
    times_s : ndarray (T,)
        The flood's output times, s.
    edge_ids : list
        Edge ids, in :attr:`gis.roads.RoadGraph.edge_ids` order.
    depth_m, dv_m2s : ndarray (T, E)
        Maximum depth and depth × speed along each edge.
    speed_factor : ndarray (T, E)
        Share of free-flow speed left (1 open, 0 closed).
    state : ndarray (T, E) of int8
        0 open, 1 slowed, 2 closed.
    """

    times_s: np.ndarray
    edge_ids: list
    depth_m: np.ndarray
    dv_m2s: np.ndarray
    speed_factor: np.ndarray
    state: np.ndarray

    @property
    def time_factor(self) -> np.ndarray:
        """Travel-time multiplier (>= 1; 1 where closed: closure is separate)."""
        f = np.where(self.state == CLOSED, 1.0, self.speed_factor)
        return 1.0 / np.maximum(f, 1e-12)

    def at(self, t_s: float) -> int:
        """Index of the flood frame in force at ``t_s`` (the last one at or before it)."""
        return max(0, int(np.searchsorted(self.times_s, t_s, side="right")) - 1)

    def counts(self) -> dict[str, list[int]]:
        """Edges open, slowed and closed per time step."""
        return {name: (self.state == k).sum(axis=1).astype(int).tolist()
                for k, name in ((OPEN, "open"), (SLOWED, "slowed"), (CLOSED, "closed"))}


def classify(depth_m: np.ndarray, dv_m2s: np.ndarray, free_speed_mps: np.ndarray, *,
             closed_m: float = PREGNOLATO_CLOSED_M, dv_limit: float | None = VEHICLE_DV_LIMIT
             ) -> tuple[np.ndarray, np.ndarray]:
    """(speed factor, state) from depth and D·V per edge (broadcasts over leading axes)."""
    f = speed_factor(depth_m, free_speed_mps, closed_m)
    closed = f <= 0.0
    if dv_limit is not None:
        closed |= dv_m2s > dv_limit
    f = np.where(closed, 0.0, f)
    state = np.where(closed, CLOSED, np.where(f < 1.0, SLOWED, OPEN)).astype(np.int8)
    return f, state


def edge_sample_points(roads: RoadGraph, spacing_m: float) -> tuple[np.ndarray, np.ndarray]:
    """EPSG:4547 points along every edge (vertices + every ≤ ``spacing_m``) and their edge index.

    Returns
    -------
    xy : ndarray (P, 2)
        east, north in metres.
    edge : ndarray (P,) of int
        Edge index (into ``roads.edge_ids``), non-decreasing.
    """
    import shapely

    from gis.crs import WGS84, WORKING_CRS, transformer

    if not (np.isfinite(spacing_m) and spacing_m > 0):
        raise ValidationError(f"spacing_m={spacing_m!r}: give a positive distance in metres")
    geoms = np.array([roads.edge(e)["geometry"] for e in roads.edge_ids], dtype=object)
    coords, idx = shapely.get_coordinates(geoms, return_index=True)
    east, north = transformer(WGS84, WORKING_CRS).transform(coords[:, 0], coords[:, 1])
    lines = shapely.linestrings(np.column_stack([east, north]), indices=idx)
    dense = shapely.segmentize(lines, spacing_m)
    xy, edge = shapely.get_coordinates(dense, return_index=True)
    return xy, edge.astype(np.int64)


def open_flood(flood: str | Any) -> xr.Dataset:
    """A flood Dataset (or the path of a ``flood.nc``), checked: depth (time, y, x), EPSG:4547.

    Raises
    ------
    twin.errors.DataError
        Naming the file and what is missing.
    """
    import xarray as xr

    from twin.errors import DataMissingError

    if isinstance(flood, xr.Dataset):
        ds, name = flood, "flood dataset"
    else:
        from pathlib import Path

        path = Path(flood)
        if not path.exists():
            raise DataMissingError(f"flood file not found: {path}")
        try:
            ds = xr.open_dataset(path)
        except Exception as exc:  # noqa: BLE001 - any reader failure means "not a flood.nc"
            raise DataError(f"{path}: not a NetCDF flood run ({exc})") from exc
        name = str(path)
    if "depth" not in ds:
        raise DataError(f"{name}: no 'depth' variable; give the flood.nc of `twin flood run`")
    if tuple(ds["depth"].dims) != ("time", "y", "x"):
        raise DataError(f"{name}: depth has dims {ds['depth'].dims}, expected ('time', 'y', 'x')")
    crs = str(ds.attrs.get("crs", "EPSG:4547"))
    if crs.upper() != "EPSG:4547":
        raise DataError(f"{name}: crs {crs!r}; road hazards read flood grids in EPSG:4547")
    if ds.sizes["x"] < 2 or ds.sizes["y"] < 2 or ds.sizes["time"] < 1:
        raise DataError(f"{name}: grid {dict(ds.sizes)} is too small (need ≥ 2×2 cells, ≥ 1 time)")
    return ds


def sample_along_edges(roads: RoadGraph, ds, spacing_m: float | None = None
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Flood depth and speed at points along every edge, at every flood output time.

    Points are each edge's vertices and points every ``spacing_m`` (default: half
    the cell size) in EPSG:4547 (:func:`edge_sample_points`); each reads the cell
    it falls in. Points outside the grid, on sea cells or on NaN read dry.

    Returns
    -------
    depth, speed : ndarray (n_times, n_points)
        m and m/s, ≥ 0.
    edge : ndarray (n_points,)
        Index (in ``roads.edge_ids``) of the edge each point belongs to, ascending.
    """
    x = ds["x"].to_numpy().astype(float)
    y = ds["y"].to_numpy().astype(float)
    dx, dy = x[1] - x[0], y[1] - y[0]
    spacing = float(spacing_m) if spacing_m is not None else 0.5 * min(abs(dx), abs(dy))
    xy, edge = edge_sample_points(roads, spacing)
    ix = np.floor((xy[:, 0] - (x[0] - dx / 2)) / dx).astype(np.int64)
    iy = np.floor((xy[:, 1] - (y[0] - dy / 2)) / dy).astype(np.int64)
    inside = (ix >= 0) & (ix < len(x)) & (iy >= 0) & (iy < len(y))
    ixc, iyc = np.clip(ix, 0, len(x) - 1), np.clip(iy, 0, len(y) - 1)
    dry = ~inside
    if "sea" in ds:
        dry |= ds["sea"].to_numpy()[iyc, ixc].astype(bool)
    depth = ds["depth"].to_numpy()[:, iyc, ixc].astype(float)
    speed = ds["speed"].to_numpy()[:, iyc, ixc].astype(float) if "speed" in ds else np.zeros_like(depth)
    depth = np.where(dry | ~np.isfinite(depth), 0.0, np.maximum(depth, 0.0))
    speed = np.where(dry | ~np.isfinite(speed), 0.0, np.abs(speed))
    return depth, speed, edge


def road_hazard(roads: RoadGraph, flood: str | Any, *, closed_m: float = PREGNOLATO_CLOSED_M,
                dv_limit: float | None = VEHICLE_DV_LIMIT, spacing_m: float | None = None
                ) -> RoadHazard:
    """Flood state of every edge at every flood output time.

    Parameters
    ----------
    roads : gis.roads.RoadGraph
    flood : xarray.Dataset or path
        A flood run (``depth`` and, if present, ``speed`` (time, y, x) on a
        regular EPSG:4547 grid; ``sea`` cells are ignored).
    closed_m : float
        Depth that closes a road (Pregnolato et al. 2017: 0.3 m).
    dv_limit : float or None
        Depth × velocity that closes a road (m²/s); None: depth only.
    spacing_m : float, optional
        Sampling distance along edges (default: half the cell size).
    """
    ds = open_flood(flood)
    depth, speed, edge = sample_along_edges(roads, ds, spacing_m)
    dv = depth * speed
    starts = np.searchsorted(edge, np.arange(len(roads.edge_ids)))
    edge_depth = np.maximum.reduceat(depth, starts, axis=1)
    edge_dv = np.maximum.reduceat(dv, starts, axis=1)
    free = np.array([roads.edge(e)["speed_mps"] for e in roads.edge_ids])
    f, state = classify(edge_depth, edge_dv, free, closed_m=closed_m, dv_limit=dv_limit)
    return RoadHazard(times_s=ds["time"].to_numpy().astype(float), edge_ids=list(roads.edge_ids),
                      depth_m=edge_depth, dv_m2s=edge_dv, speed_factor=f, state=state)


def apply_hazard(roads: RoadGraph, hazard: RoadHazard, t_index: int, reason: str = FLOOD_REASON
                 ) -> dict[str, list]:
    """Put the flood state of frame ``t_index`` on the road graph (under ``reason``).

    Edges that dry out are reopened (for ``reason`` only: other hazards stay).

    Returns
    -------
    dict
        Edge ids ``closed`` (newly), ``reopened`` (were closed, now not) and
        ``slowed`` (slow factor now > 1).
    """
    if list(roads.edge_ids) != hazard.edge_ids:
        raise ValidationError("apply_hazard: the hazard was computed for another road graph")
    state = hazard.state[t_index]
    ids = np.array(hazard.edge_ids, dtype=object)
    was_closed = np.array([reason in roads.edge(e)["closed_by"] for e in hazard.edge_ids])
    roads.reopen(list(ids), reason=reason)
    closed = state == CLOSED
    if closed.any():
        roads.close_edges(closed, reason)
    factor = hazard.time_factor[t_index]
    for i in np.flatnonzero(state == SLOWED):
        roads.slow_edges([ids[i]], float(factor[i]), reason)
    return {"closed": ids[closed & ~was_closed].tolist(),
            "reopened": ids[was_closed & ~closed].tolist(),
            "slowed": ids[state == SLOWED].tolist()}


def transitions(hazard: RoadHazard) -> list[tuple[int, int, int, int]]:
    """State changes ``(t_index, edge_index, old, new)`` in time order (old = open before t 0)."""
    prev = np.vstack([np.zeros((1, hazard.state.shape[1]), np.int8), hazard.state[:-1]])
    t, e = np.nonzero(hazard.state != prev)
    return [(int(a), int(b), int(prev[a, b]), int(hazard.state[a, b])) for a, b in zip(t, e, strict=True)]
