"""The numbers of a room evacuation: pure functions over its trajectories Dataset.

The Dataset is :meth:`agents.crowd.CrowdModel.trajectories` as :func:`agents.room_run.simulate_room`
returns it (``x``, ``y`` (time, agent), ``exit_time``, ``exit_index``, the run's events as JSON in
``attrs["events"]``). :func:`analyse` adds what the outputs need; :func:`exits_table` and
:func:`summarise` read the analysed Dataset.

Local density is counted on square cells of :data:`DENSITY_CELL_M` (people per cell area inside the
walkable area, cells less than half walkable left out); an exit is *congested* while the density within
:data:`NEAR_EXIT_M` of it exceeds :data:`CONGESTED_P_M2`, and eased once it falls below :data:`EASED_P_M2`.

Imported (through :mod:`agents.room_run`) for ``twin --help``: numpy, pandas and shapely are imported
inside the functions.
"""

from __future__ import annotations

import math
from typing import Any

#: Side of the cells of the local-density count, m (4 m²: one person reads 0.25 P/m²).
DENSITY_CELL_M = 2.0
#: "Near an exit": within this distance of the exit segment, inside the walkable area, m.
NEAR_EXIT_M = 2.0
#: Density near an exit above which it counts as congested, P/m² (the brief's queueing threshold;
#: SFPE's standstill is 3.8 P/m²).
CONGESTED_P_M2 = 4.0
#: Density near a congested exit below which the congestion counts as eased, P/m² (hysteresis: a queue
#: fluctuating about the threshold is one congestion, not dozens).
EASED_P_M2 = 3.0
#: Window of the peak flow through an exit, s.
PEAK_WINDOW_S = 10.0


# ----------------------------------------------------------------------------- the place's areas
def free_area(g):
    """The walkable area less the solid walls (pillars), metric shapely geometry."""
    from shapely.geometry import Polygon
    from shapely.ops import unary_union

    solid = [w for w in g.walls if isinstance(w, Polygon)]
    return g.walkable.difference(unary_union(solid)) if solid else g.walkable


def free_walk_times(ds, g) -> Any:
    """Each person's time out with nobody else there: pre-movement + straight distance to the
    nearest exit open at the start / free speed, s (a lower bound of the exit time)."""
    import numpy as np
    import shapely

    exits = shapely.linestrings(g.exit_segments.reshape(-1, 2, 2))
    x0, y0 = ds["x"].values[0], ds["y"].values[0]
    pts = shapely.points(x0, y0)
    d = np.min(np.stack([shapely.distance(pts, e) for e in exits]), axis=0)
    return ds["premovement"].values + d / ds["free_speed"].values


# ----------------------------------------------------------------------------- events
def run_events(ds) -> list[dict]:
    """The run's event records (``attrs["events"]``), in time order once :func:`analyse` has run."""
    import json

    return json.loads(ds.attrs["events"])


def closure_events(ds) -> list[dict]:
    """The run's ``exit_closed`` event records (``data["exit"]`` names the exit)."""
    return [e for e in run_events(ds) if e["kind"] == "exit_closed"]


def event_counts(ds) -> dict[str, int]:
    """How many events of each kind the run had."""
    counts: dict[str, int] = {}
    for e in run_events(ds):
        counts[e["kind"]] = counts.get(e["kind"], 0) + 1
    return counts


def congestion_events(t, dens, exit_ids, threshold: float = CONGESTED_P_M2, eased: float = EASED_P_M2
                      ) -> list[dict]:
    """``exit_congested`` when the density near an exit rises above ``threshold``, ``exit_congestion_eased``
    when it falls below ``eased`` again (event records)."""
    from twin.events import Event

    out = []
    for j, eid in enumerate(exit_ids):
        above = False
        for k in range(len(t)):
            now = dens[k, j] > threshold if not above else dens[k, j] >= eased
            if now and not above:
                out.append(Event(time_s=float(t[k]), kind="exit_congested", source="crowd", severity="warning",
                                 message=f"exit {eid}: {dens[k, j]:.1f} P/m² within {NEAR_EXIT_M:g} m "
                                         f"(> {threshold:g})",
                                 data={"exit": str(eid), "density_p_m2": round(float(dens[k, j]), 2)}).to_record())
            elif above and not now:
                out.append(Event(time_s=float(t[k]), kind="exit_congestion_eased", source="crowd",
                                 message=f"exit {eid}: {dens[k, j]:.1f} P/m² near it",
                                 data={"exit": str(eid), "density_p_m2": round(float(dens[k, j]), 2)}).to_record())
            above = now
    return out


# ----------------------------------------------------------------------------- times and flows
def evac_time(exit_time) -> float:
    """Time the last person left (inf when someone is still inside)."""
    import numpy as np

    t = np.asarray(exit_time, dtype=float)
    return float(t.max()) if t.size and np.all(np.isfinite(t)) else (0.0 if not t.size else math.inf)


def quantile_time(exit_time, q: float) -> float:
    """Time by which a share ``q`` of everyone had left (inf when fewer ever did)."""
    import numpy as np

    t = np.sort(np.asarray(exit_time, dtype=float))
    if not t.size:
        return 0.0
    k = int(math.ceil(q * t.size)) - 1
    return float(t[k]) if np.isfinite(t[k]) else math.inf


def peak_flow(times, window_s: float = PEAK_WINDOW_S) -> float:
    """Largest number of passages in any window of ``window_s`` starting at a passage, / ``window_s`` (P/s)."""
    import numpy as np

    t = np.sort(np.asarray(times, dtype=float))
    if not t.size:
        return 0.0
    counts = np.searchsorted(t, t + window_s - 1e-9, side="right") - np.arange(t.size)
    return float(counts.max()) / window_s


def mean_walking_speed(ds) -> float:
    """Mean speed over every sample of people inside who had started moving, m/s."""
    import numpy as np

    v = ds["speed"].values
    started = ds["time"].values[:, None] >= ds["premovement"].values[None, :]
    ok = np.isfinite(v) & started
    ok[0] = False  # the first sample is before any step
    return float(v[ok].mean()) if ok.any() else math.nan


# ----------------------------------------------------------------------------- densities
def density_grid(ds, g, cell_m: float = DENSITY_CELL_M):
    """Maximum over the samples of people per m² on square cells (NaN where under half walkable).

    Returns
    -------
    (max_density (ny, nx), x_edges (nx + 1,), y_edges (ny + 1,), cell_area (ny, nx) m²)
    """
    import numpy as np
    import shapely

    xmin, ymin, xmax, ymax = g.bounds
    xe = xmin + cell_m * np.arange(int(math.ceil((xmax - xmin) / cell_m)) + 1)
    ye = ymin + cell_m * np.arange(int(math.ceil((ymax - ymin) / cell_m)) + 1)
    gx0, gy0 = np.meshgrid(xe[:-1], ye[:-1])
    cells = shapely.box(gx0, gy0, gx0 + cell_m, gy0 + cell_m)
    area = shapely.area(shapely.intersection(cells, free_area(g)))
    x, y = ds["x"].values, ds["y"].values
    best = np.zeros(area.shape)
    for k in range(x.shape[0]):
        ok = np.isfinite(x[k])
        if ok.any():
            h, _, _ = np.histogram2d(y[k, ok], x[k, ok], bins=(ye, xe))
            np.maximum(best, h, out=best)
    usable = area >= 0.5 * cell_m * cell_m
    dens = np.where(usable, best / np.where(usable, area, 1.0), np.nan)
    return dens, xe, ye, area


def near_exit_density(ds, g, radius_m: float = NEAR_EXIT_M):
    """People per m² within ``radius_m`` of each exit, inside the walkable area, at every sample: (time, exit)."""
    import numpy as np
    import shapely

    area_free = free_area(g)
    zones = [shapely.intersection(shapely.linestrings(s.reshape(2, 2)).buffer(radius_m), area_free)
             for s in g.exit_segments]
    x, y = ds["x"].values, ds["y"].values
    out = np.zeros((x.shape[0], len(zones)))
    for j, z in enumerate(zones):
        shapely.prepare(z)
        inside = shapely.contains_xy(z, np.nan_to_num(x, nan=-1e12), np.nan_to_num(y, nan=-1e12))
        out[:, j] = inside.sum(axis=1) / max(z.area, 1e-9)
    return out


# ----------------------------------------------------------------------------- the analysed Dataset
def _all_events(ds, near) -> list[dict]:
    """The run's events, the congestion events of ``near`` and ``room_cleared``, in time order."""
    from twin.events import Event

    t_out = ds["exit_time"].values
    events = run_events(ds) + congestion_events(ds["time"].values, near, list(ds["exit"].values))
    n, t_evac = int(ds.sizes["agent"]), evac_time(t_out)
    if n and math.isfinite(t_evac):
        events.append(Event(time_s=t_evac, kind="room_cleared", source="crowd",
                            message=f"everyone out ({n} people) after {t_evac:.1f} s").to_record())
    events.sort(key=lambda e: e["time_s"])
    return events


def _densest_cell(dens, xe, ye) -> dict[str, float]:
    """The largest density of the grid and its cell's centre (0 and NaN when no cell is walkable)."""
    import numpy as np

    if not np.isfinite(dens).any():
        return {"max_density_p_m2": 0.0, "max_density_x": math.nan, "max_density_y": math.nan}
    ky, kx = np.unravel_index(np.nanargmax(dens), dens.shape)
    return {"max_density_p_m2": float(dens[ky, kx]), "max_density_x": float(0.5 * (xe[kx] + xe[kx + 1])),
            "max_density_y": float(0.5 * (ye[ky] + ye[ky + 1]))}


def analyse(ds, g):
    """``ds`` with the analysis the outputs need: people out over time, near-exit density, the max-density
    grid, per-exit passages, the events (closures, congestion, room cleared) and key times in attrs."""
    import json

    import numpy as np

    t = ds["time"].values
    t_out = ds["exit_time"].values
    out_by_t = np.array([(t_out <= tk + 1e-9).sum() for tk in t])
    near = near_exit_density(ds, g)
    dens, xe, ye, area = density_grid(ds, g)
    events = _all_events(ds, near)
    ds = ds.assign(
        evacuated_count=("time", out_by_t, {"long_name": "people out by this time"}),
        near_exit_density=(("time", "exit"), near, {"units": "P/m2", "long_name":
                                                    f"people per m² within {NEAR_EXIT_M:g} m of the exit"}),
        max_density=(("cell_y", "cell_x"), dens, {"units": "P/m2", "long_name": "largest people per m² of "
                                                  f"{DENSITY_CELL_M:g} m cells over the run (NaN: not walkable)"}),
        cell_area=(("cell_y", "cell_x"), area, {"units": "m2", "long_name": "free walkable area of the cell"}),
    ).assign_coords(cell_xc=("cell_x", 0.5 * (xe[:-1] + xe[1:]), {"units": "m"}),
                    cell_yc=("cell_y", 0.5 * (ye[:-1] + ye[1:]), {"units": "m"}))
    ds.attrs.update(events=json.dumps(events), evacuation_time_s=evac_time(t_out), t95_s=quantile_time(t_out, 0.95),
                    density_cell_m=DENSITY_CELL_M, **_densest_cell(dens, xe, ye))
    return ds


def exits_table(ds):
    """Per exit: width, people, first/last passage, mean and peak (10 s) flow, closing time, near density."""
    import json

    import numpy as np
    import pandas as pd

    closed = {c["exit"]: c["at_s"] for c in json.loads(ds.attrs["closures"])}
    ev_closed = {e["data"]["exit"]: e["time_s"] for e in closure_events(ds)}
    widths = json.loads(ds.attrs["exit_width_m"])
    t_out, idx = ds["exit_time"].values, ds["exit_index"].values
    rows = []
    for j, eid in enumerate(ds["exit"].values):
        tj = np.sort(t_out[idx == j])
        span = float(tj[-1] - tj[0]) if tj.size > 1 else math.nan
        rows.append({
            "exit": str(eid), "width_m": widths[j], "people": int(tj.size),
            "first_passage_s": float(tj[0]) if tj.size else math.nan,
            "last_passage_s": float(tj[-1]) if tj.size else math.nan,
            "mean_flow_p_s": (tj.size - 1) / span if span and span > 0 else math.nan,
            "peak_flow_10s_p_s": peak_flow(tj),
            "closed_at_s": ev_closed.get(str(eid), math.nan) if str(eid) in closed else math.nan,
            "max_density_near_p_m2": float(ds["near_exit_density"].values[:, j].max()),
        })
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------- summary
def _densest_lonlat(ds) -> dict[str, float] | None:
    """Lon/lat of the densest cell's centre (None when there is none or the place has no CRS)."""
    if not (math.isfinite(ds.attrs["max_density_x"]) and "lon" in ds):
        return None
    from pyproj import Transformer

    lon, lat = Transformer.from_crs(ds.attrs["metric_crs"], "EPSG:4326", always_xy=True).transform(
        ds.attrs["max_density_x"], ds.attrs["max_density_y"])
    return {"lon": round(lon, 6), "lat": round(lat, 6)}


def repeat_stats(ds) -> dict[str, Any] | None:
    """Evacuation times over the repeated runs (None for one run)."""
    import numpy as np

    if "evac_time_run" not in ds:
        return None
    r = ds["evac_time_run"].values
    q = ds["t95_run"].values
    return {"runs": int(r.size), "seeds": [int(s) for s in ds["run_seed"].values],
            "mean_s": float(r.mean()), "p95_s": float(np.percentile(r, 95)), "min_s": float(r.min()),
            "max_s": float(r.max()), "t95_mean_s": float(q.mean())}


def summarise(ds) -> dict[str, Any]:
    """The run's summary: people, evacuation and 95 % times, per exit, max local density, mean speed."""
    import numpy as np

    n = int(ds.sizes["agent"])
    inside = int(np.count_nonzero(~np.isfinite(ds["exit_time"].values)))
    per_exit = {r["exit"]: {k: v for k, v in r.items() if k != "exit"} for r in exits_table(ds).to_dict("records")}
    fw = ds["free_walk_time"].values
    return {
        "place": ds.attrs["place_name"], "people": n, "people_out": n - inside, "people_inside_at_end": inside,
        "evacuation_time_s": ds.attrs["evacuation_time_s"], "t95_s": ds.attrs["t95_s"],
        "stalled_at_s": ds.attrs["stalled_at_s"],
        "free_walk_time_max_s": float(fw.max()) if n else 0.0,
        "walkable_area_m2": round(float(ds.attrs["walkable_area_m2"]), 1),
        "initial_density_p_m2": round(n / float(ds.attrs["walkable_area_m2"]), 4),
        "mean_speed_mps": mean_walking_speed(ds),
        "max_local_density_p_m2": float(ds.attrs["max_density_p_m2"]),
        "max_local_density_cell_m": float(ds.attrs["density_cell_m"]), "max_local_density_at": _densest_lonlat(ds),
        "exits": per_exit,
        "exits_congested": sorted({e["data"]["exit"] for e in run_events(ds) if e["kind"] == "exit_congested"}),
        "events": event_counts(ds), "evacuation_runs": repeat_stats(ds),
        "seed": int(ds.attrs["seed"]), "dt_s": float(ds.attrs["dt_s"]), "crs": ds.attrs["metric_crs"],
    }


__all__ = ["CONGESTED_P_M2", "DENSITY_CELL_M", "EASED_P_M2", "NEAR_EXIT_M", "PEAK_WINDOW_S", "analyse",
           "closure_events", "congestion_events", "density_grid", "evac_time", "event_counts", "exits_table",
           "free_area", "free_walk_times", "mean_walking_speed", "near_exit_density", "peak_flow", "quantile_time",
           "repeat_stats", "run_events", "summarise"]
