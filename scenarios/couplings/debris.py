"""The debris coupling: new slope failures run out, bury roads and buildings, close edges, move people.

Each step (default period 3600 s, the slope's; and at set-up, for failures
at t = 0) that follows ``slope_failure`` events (its own cursor in the event
log), the cells that failed since its last step (``slope_failed`` = 1, not
yet released) release their soil down to the slip surface (``slip_depth``,
the depth of the minimum factor of safety). Each 8-connected body of them
(a *cluster*) is routed down the ground — the slope's elevation with its
fills (shared ``slope_setup``) plus the debris already deposited — by
:func:`physics.slope_runout.runout` (energy line: travel angle from the
volume, Corominas 1996, or ``travel_angle_deg``), and its deposit is added
to ``debris_depth`` (m, cumulative). Per cluster:

* the assets under at least ``closed_m`` (0.1 m) of its deposit
  (:func:`physics.slope_runout.assets_hit`): the run's road graph's edges
  (shared ``road_graph``) and the city's buildings, metro lines and
  stations (:func:`physics.slope_runout.city_assets`, read once for the grid);
* an ``incident`` (``collapse``) at the centroid of the buildings and road
  edges hit, when it hits any (``id`` ``debris-<t>-<k>``; ``buildings``, ``roads``: counts);
* a ``people_to_move`` event: the residents of the deposit's footprint and
  its sources grown by ``buffer_m`` (100 m), from the census density of
  :func:`agents.population.population_grid` (district totals spread over
  land cells: an assumption), at the zone's centroid, ``reason`` ``"debris"``;
  none when the zone holds nobody.

The road edges hit are closed on the graph under the reason ``"debris"``
(never reopened within the run: nobody clears the debris) and one
``road_closed`` event per step lists them (``{"n", "edges", "reason": "debris"}``).
The ``debris`` coupling runs in the consequences phase, after the slope
(physics) of the same instant and before every router (response): a
failure at ``t`` closes its roads before any route is computed at ``t``.

Parameters: ``travel_angle_deg`` (default: per slide from its volume),
``closed_m`` (0.1), ``buffer_m`` (100).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from scenarios.coupling import Coupling, CouplingContext, register_coupling
from twin.errors import ValidationError

PARAMS = ("travel_angle_deg", "closed_m", "buffer_m")
DEFAULTS = {"travel_angle_deg": None, "closed_m": 0.1, "buffer_m": 100.0}
REASON = "debris"
ASSET_COLUMNS = ("t_s", "cluster", "kind", "id", "name", "deposit_depth_m")


def _params(params: dict[str, Any]) -> dict[str, Any]:
    """The checked parameters with their defaults; every problem listed at once."""
    problems = [f"unknown parameter(s) {sorted(k for k in params if k not in PARAMS)}; "
                f"allowed: {list(PARAMS)}"] if any(k not in PARAMS for k in params) else []
    out = DEFAULTS | params
    limits = {"travel_angle_deg": (0.0, 90.0), "closed_m": (0.0, math.inf), "buffer_m": (-1e-12, math.inf)}
    for k, (lo, hi) in limits.items():
        v = out[k]
        if v is None and k == "travel_angle_deg":
            continue
        if isinstance(v, bool) or not isinstance(v, int | float) or not (math.isfinite(v) and lo < v < hi):
            what = "an angle in (0, 90) degrees" if k == "travel_angle_deg" else \
                "a thickness > 0 m" if k == "closed_m" else "a distance >= 0 m"
            problems.append(f"{k}={v!r}: give {what}")
    if problems:
        raise ValidationError("couplings.debris: " + "; ".join(problems))
    return out


def debris_from_scenario(section: dict[str, Any], scenario: Any = None) -> dict[str, Any]:
    """The debris's parameters from a scenario section (``travel_angle_deg`` of the slope section too)."""
    return {k: v for k, v in section.items() if k in PARAMS and v is not None}


def setup_debris(ctx: CouplingContext) -> None:
    """Read the people and the city's assets of the grid once; release the failures of t = 0."""
    from agents.population import population_grid

    ctx.own.update(p=_params(dict(ctx.params)), cursor=0, released=np.zeros(ctx.state.shape, bool),
                   debris=np.zeros(ctx.state.shape), source=np.zeros(ctx.state.shape), assets=[],
                   closed=[], clusters=[])
    ctx.own["people"] = np.nan_to_num(population_grid(ctx.state.static, city=ctx.city).values)
    ctx.own["sources"] = _city_assets(ctx)
    _publish(ctx)
    step_debris(ctx, ctx.state.clock.now_s, 0.0)


#: The city's asset layers read for the grid (the roads are the run's graph's, shared by ``roads``).
ASSET_LAYERS = ("buildings", "metro_lines", "metro_stations")


def _city_assets(ctx: CouplingContext) -> dict:
    """The buildings, metro lines and stations of the city's layers that meet the grid.

    :func:`physics.slope_runout.city_assets` would also read the whole city's
    road graph (seconds) only for it to be replaced by the run's graph; a
    ``roads=False`` switch there is requested. A layer the city lacks, or
    with nothing in the grid, is left out and noted in the summary.
    """
    from scenarios.couplings.roads import grid_outline_wgs84
    from twin.errors import ConfigError, DataError

    box = grid_outline_wgs84(ctx.domain)
    out, notes = {}, []
    for layer in ASSET_LAYERS:
        try:
            gdf = ctx.city.vector(layer)
        except (DataError, ConfigError) as exc:
            notes.append(f"{layer}: the city has no such layer on disk ({exc})")
            continue
        sub = gdf[gdf.intersects(box)]
        if sub.empty:
            notes.append(f"{layer}: no feature in the run's grid")
        else:
            out[layer] = sub
    ctx.summary["asset_notes"] = notes
    return out


def _new_failures(ctx: CouplingContext) -> bool:
    """Whether ``slope_failure`` events came since the last look (the cursor moves on)."""
    events = ctx.state.events
    seen = any(e.kind == "slope_failure" for e in events[ctx.own["cursor"]:])
    ctx.own["cursor"] = len(events)
    return seen


def step_debris(ctx: CouplingContext, t: float, dt: float) -> None:
    """Release the cells failed since the last step, cluster by cluster (module docstring)."""
    from physics.slope_runout import label_slides

    o, st = ctx.own, ctx.state
    if not _new_failures(ctx):
        return
    failed = np.asarray(st.field("slope_failed").values) > 0.5
    new = failed & ~o["released"]
    if not new.any():
        return
    slip = np.nan_to_num(np.asarray(st.field("slip_depth").values, float))
    labels, n = label_slides(new & (slip > 0))
    o["released"] |= new
    closed: list[str] = []
    for k in range(1, n + 1):
        closed += _cluster(ctx, t, len(o["clusters"]) + 1, np.where(labels == k, slip, 0.0))
    _publish(ctx)
    if closed:
        ctx.emit("road_closed", f"{len(closed)} road edges closed by landslide debris", severity="warning",
                 data={"n": len(closed), "edges": closed, "reason": REASON})


def _cluster(ctx: CouplingContext, t: float, k: int, source: np.ndarray) -> list[str]:
    """Run one cluster out, add its deposit; its assets, incident and people; the edges it closes."""
    from physics.slope_runout import runout

    o, dom, p = ctx.own, ctx.domain, ctx.own["p"]
    ground = ctx.shared["slope_setup"]["elevation"] + o["debris"]
    kw = {} if p["travel_angle_deg"] is None else {"travel_angle_deg": float(p["travel_angle_deg"])}
    res = runout(ground, dom.resolution_m, source, **kw)
    dep = np.nan_to_num(np.asarray(res.deposit, float))
    o["debris"] += dep
    o["source"] += source
    hits = _assets(ctx, dep)
    zone = _zone(dom, (dep >= p["closed_m"]) | (source > 0), p["buffer_m"])
    people = float(o["people"][zone].sum())
    o["clusters"].append({"t_s": float(t), "cluster": k, "cells": int((source > 0).sum()),
                          "volume_m3": float(res.source_volume_m3), "people": people,
                          "assets": len(hits)})
    for _, a in hits.iterrows():
        o["assets"].append({"t_s": float(t), "cluster": k, "kind": a["kind"], "id": str(a["id"]),
                            "name": str(a["name"]), "deposit_depth_m": float(a["deposit_depth_m"]),
                            "wkt": a.geometry.wkt})
    closed = _close_roads(ctx, hits)
    struck = hits[hits["kind"].isin(["building", "road"])]
    if len(struck):
        c = struck.geometry.union_all().centroid
        ctx.emit("incident", f"landslide debris on {len(struck)} buildings/road edges", severity="alarm",
                 data={"lon": float(c.x), "lat": float(c.y), "incident": "collapse", "id": f"debris-{t:g}-{k}",
                       "buildings": int((struck["kind"] == "building").sum()),
                       "roads": int((struck["kind"] == "road").sum())})
    if people > 0:
        lon, lat = _centroid_lonlat(dom, zone)
        ctx.emit("people_to_move", f"{people:,.0f} people in and near the debris of cluster {k}",
                 severity="warning", data={"lon": lon, "lat": lat, "people": int(round(people)),
                                           "reason": REASON})
    return closed


def _assets(ctx: CouplingContext, dep: np.ndarray):
    """The assets under ``closed_m`` of this deposit: the road graph's edges and the city's others."""
    from physics.slope_runout import assets_hit

    da = ctx.domain.grid_dataarray(dep, "debris_depth", "m")
    graph = ctx.shared.get("road_graph")
    roads = {"roads": graph} if graph is not None else {}
    return assets_hit(da, min_depth_m=ctx.own["p"]["closed_m"], **ctx.own["sources"], **roads)


def _close_roads(ctx: CouplingContext, hits) -> list[str]:
    """Close the graph's edges hit (reason ``debris``); the ids newly closed, as text."""
    graph = ctx.shared.get("road_graph")
    if graph is None:
        return []
    by_text = {str(e): e for e in graph.edge_ids}
    ids = [i for i in hits.loc[hits["kind"] == "road", "id"] if i in by_text and i not in ctx.own["closed"]]
    if ids:
        graph.close_edges([by_text[i] for i in ids], reason=REASON)
        ctx.own["closed"] += ids
    return ids


def _zone(dom, footprint: np.ndarray, buffer_m: float) -> np.ndarray:
    """Cells within ``buffer_m`` of the footprint (cell centres), the footprint included."""
    from scipy import ndimage

    if not footprint.any():
        return footprint
    return ndimage.distance_transform_edt(~footprint) * dom.resolution_m <= buffer_m + 1e-9


def _centroid_lonlat(dom, mask: np.ndarray) -> tuple[float, float]:
    from gis.crs import WGS84, transformer

    rows, cols = np.nonzero(mask)
    lon, lat = transformer(dom.crs, WGS84).transform(float(dom.x[cols].mean()), float(dom.y[rows].mean()))
    return float(lon), float(lat)


def _publish(ctx: CouplingContext) -> None:
    ctx.state.set_field("debris_depth", ctx.own["debris"].copy(), "m",
                        "landslide debris thickness deposited so far", copy=False)


def finish_debris(ctx: CouplingContext) -> None:
    o, res = ctx.own, ctx.domain.resolution_m
    ctx.summary.update(clusters=o["clusters"], roads_closed=len(o["closed"]),
                       deposit_volume_m3=float(o["debris"].sum() * res ** 2),
                       deposit_area_m2=float(np.count_nonzero(o["debris"] >= o["p"]["closed_m"]) * res ** 2),
                       people_to_move=float(sum(c["people"] for c in o["clusters"])),
                       assets_hit=len(o["assets"]))


def save_debris(ctx: CouplingContext) -> dict:
    """The released cells, the deposit and sources, the cursor, the edges closed, clusters and assets."""
    o = ctx.own
    return {"released": o["released"].copy(), "debris": o["debris"].copy(), "source": o["source"].copy(),
            "cursor": o["cursor"], "closed": list(o["closed"]), "clusters": list(o["clusters"]),
            "assets": list(o["assets"])}


def restore_debris(ctx: CouplingContext, saved: dict) -> None:
    """Put a :func:`save_debris` state back and close its edges again on the rebuilt graph (no events)."""
    o = ctx.own
    o["released"] = np.asarray(saved["released"], bool)
    o["debris"] = np.asarray(saved["debris"], float)
    o["source"] = np.asarray(saved["source"], float)
    o["cursor"] = int(saved["cursor"])
    o["clusters"], o["assets"] = list(saved["clusters"]), list(saved["assets"])
    o["closed"] = []
    graph = ctx.shared.get("road_graph")
    if graph is not None and saved["closed"]:
        by_text = {str(e): e for e in graph.edge_ids}
        graph.close_edges([by_text[i] for i in saved["closed"]], reason=REASON)
    o["closed"] = list(saved["closed"])
    _publish(ctx)


# ----------------------------------------------------------------------------- outputs
def assets_table(ctx: CouplingContext):
    """The assets hit, one row per asset and cluster (GeoDataFrame, EPSG:4326)."""
    import geopandas as gpd
    import pandas as pd
    import shapely

    rows = ctx.own["assets"]
    frame = pd.DataFrame({c: [r[c] for r in rows] for c in ASSET_COLUMNS})
    geoms = shapely.from_wkt([r["wkt"] for r in rows]) if rows else []
    return gpd.GeoDataFrame(frame, geometry=gpd.GeoSeries(geoms, crs="EPSG:4326"), crs="EPSG:4326")


def debris_tables(ctx: CouplingContext) -> dict:
    return {"assets_hit": assets_table(ctx)}


def debris_dataset(ctx: CouplingContext):
    """Deposit, sources and assets hit as a Dataset of ``slope.nc``'s names (the runout layers')."""
    import xarray as xr

    dom, o = ctx.domain, ctx.own
    ds = xr.Dataset(coords={"y": ("y", dom.y), "x": ("x", dom.x)})
    ds["runout_depth"] = (("y", "x"), o["debris"].astype(np.float32), {"units": "m"})
    ds["runout_source"] = (("y", "x"), o["source"].astype(np.float32), {"units": "m"})
    rows = o["assets"]
    if rows:
        ds["asset_kind"] = ("asset", np.array([r["kind"] for r in rows], dtype=object))
        ds["asset_id"] = ("asset", np.array([r["id"] for r in rows], dtype=object))
        ds["asset_name"] = ("asset", np.array([r["name"] for r in rows], dtype=object))
        ds["asset_depth_m"] = ("asset", np.array([r["deposit_depth_m"] for r in rows], float))
        ds["asset_wkt"] = ("asset", np.array([r["wkt"] for r in rows], dtype=object))
    ds.attrs.update(crs=dom.crs, transform=tuple(float(v) for v in tuple(dom.transform)[:6]))
    return ds


def debris_layers(ctx: CouplingContext, times_s) -> list:
    """The runout deposit, its sources and the assets hit (the slope run's runout layers)."""
    from viz.layers import build
    from viz.layers._raster import MAX_PX, MercatorWarp

    ds = debris_dataset(ctx)
    warp = MercatorWarp.for_grid(ds, max_px=MAX_PX)
    sets = []
    if "asset_wkt" in ds:
        s = build("slope_assets", ds)
        if s.layers:
            sets.append(s)
    sets.append(build("slope_runout", ds, warp=warp, label="Landslide debris"))
    sets.append(build("slope_runout_source", ds, warp=warp))
    return sets


def debris_report(ctx: CouplingContext) -> list[str]:
    """One HTML section: each cluster's time, cells, volume, people and assets; the edges closed."""
    s = ctx.summary
    rows = "".join(f"<tr><td>{c['t_s'] / 3600.0:g}</td><td>{c['cluster']}</td><td>{c['cells']:,}</td>"
                   f"<td>{c['volume_m3']:,.0f}</td><td>{c['people']:,.0f}</td><td>{c['assets']:,}</td></tr>"
                   for c in s.get("clusters", []))
    return [f"<section><h2>Landslide debris</h2><p>{len(s.get('clusters', []))} failure clusters ran out: "
            f"{s.get('deposit_volume_m3', 0.0):,.0f} m³ deposited, {s.get('deposit_area_m2', 0.0) / 1e4:.1f} ha at "
            f"least {ctx.own['p']['closed_m']:g} m deep; {s.get('roads_closed', 0)} road edges closed; "
            f"{s.get('people_to_move', 0.0):,.0f} people to move (census density, an assumption).</p>"
            "<table><tr><th>t (h)</th><th>cluster</th><th>cells</th><th>volume (m³)</th><th>people</th>"
            f"<th>assets hit</th></tr>{rows}</table></section>"]


register_coupling(Coupling(
    name="debris", phase="consequences", period_s=3600.0,
    reads=("slope_failed", "slip_depth", "slope_setup", "road_graph", "event:slope_failure"),
    writes=("debris_depth", "event:road_closed", "event:incident", "event:people_to_move"),
    setup=setup_debris, step=step_debris, finish=finish_debris, save=save_debris, restore=restore_debris,
    from_scenario=debris_from_scenario, layers=debris_layers, tables=debris_tables, report=debris_report,
    doc="runout of new slope failures: debris_depth, roads closed (reason debris), collapse incidents, "
        "people to move"))
