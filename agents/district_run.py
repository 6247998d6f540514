"""The district evacuation's run kind (``twin evacuate district``): request, runner, outputs, map layers.

Registered with :func:`twin.runkinds.register_kind` on import; the model
itself (:mod:`agents.district_evac`, numpy, numba, xarray) is imported only
inside the functions, so ``twin --help`` stays light.

A run reads a flood run (``flood.nc``), finds who must leave (cells whose ARR
hazard class reaches ``hazard_class``, or whose depth reaches
``depth_threshold``), spreads the 2020 census over the grid
(:mod:`agents.population`), gathers the people into groups at road nodes and
moves them to the shelters over the city's road graph while the same flood
closes and slows its streets (:mod:`agents.district_evac`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from twin.runkinds import RunContext, RunKind, RunOutputs, register_kind

KIND = "evacuate_district"
#: The assumed demo shelters shipped with the package (not the official list).
DEMO_SHELTERS = Path(__file__).parent / "data" / "futian_shelters_demo.csv"
#: Most frames drawn on the map (evenly thinned; first and last kept).
MAP_FRAMES = 61
#: Default people per agent: 20 walkers; 3 people by car (two cars at 1.5 a car), since a group longer than a
#: street's queue space can only enter it by the stuck-time rule.
WALK_GROUP, CAR_GROUP = 20, 3


class DistrictConsoleRequest(BaseModel):
    """What the console's form may send: the flood run and the scenario switches, no other files."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)

    flood: str = Field(description="Flood run", json_schema_extra={
        "twin_run": {"kind": "flood_forecast", "field": "flood"}})
    hazard_class: int | None = Field(default=None, ge=2, le=6, description="ARR hazard class that closes streets "
                                     "to walkers and marks who leaves (default 3)")
    depth_threshold: float | None = Field(default=None, gt=0.0, le=10.0, allow_inf_nan=False,
                                          description="Depth (m) instead of a hazard class")
    districts: list[str] | None = Field(default=None, min_length=1, max_length=20, description="Districts")
    mode: str = Field(default="walk", pattern="^(walk|car)$", description="walk or car")
    group_size: int | None = Field(default=None, ge=1, le=1000,
                                   description="People per agent (default 20 on foot, 3 by car: two cars)")
    seed: int = Field(default=0, ge=0, description="Random seed")
    max_hours: float = Field(default=4.0, gt=0.0, le=48.0, allow_inf_nan=False, description="Longest run (h)")
    departure_window_min: float = Field(default=10.0, ge=0.0, le=600.0, allow_inf_nan=False,
                                        description="Departures spread over (min)")

    @model_validator(mode="after")
    def _one_threshold(self):
        if self.hazard_class is not None and self.depth_threshold is not None:
            raise ValueError("give hazard_class or depth_threshold, not both")
        return self


class DistrictRequest(DistrictConsoleRequest):
    """Every parameter of a district evacuation (see ``twin evacuate district --help``)."""

    shelters: str | None = Field(default=None, description="Shelters CSV/GeoJSON (name, lon, lat, capacity)")
    roads: str | None = Field(default=None, description="Road network file (default: the city's)")
    zone: str | None = Field(default=None, description="Raster of who leaves (boolean or probability 0-1, any CRS) "
                             "instead of the flood's hazard class")
    zone_threshold: float = Field(default=0.5, gt=0.0, le=1.0, allow_inf_nan=False,
                                  description="Probability from which a cell of --zone leaves")


# ----------------------------------------------------------------------------- inputs
def read_shelters(path: str | Path):
    """Shelters from a CSV (``name, lon, lat, capacity``; ``#`` comment lines) or a GeoJSON/GeoPackage of points.

    Raises
    ------
    twin.errors.DataMissingError, twin.errors.DataError
        Naming the file: missing, unreadable, or without the columns.
    """
    import pandas as pd

    from twin.errors import DataError, DataMissingError, ValidationError

    p = Path(path)
    if not p.is_file():
        raise DataMissingError(f"shelters file not found: {p}")
    try:
        if p.suffix.lower() in (".csv", ".txt"):
            df = pd.read_csv(p, comment="#", encoding="utf-8")
        else:
            import geopandas as gpd

            gdf = gpd.read_file(p).to_crs("EPSG:4326")
            if not (gdf.geometry.geom_type == "Point").all():
                raise DataError(f"{p}: shelters must be points")
            df = pd.DataFrame(gdf.drop(columns="geometry"))
            df["lon"], df["lat"] = gdf.geometry.x.to_numpy(), gdf.geometry.y.to_numpy()
    except (DataError, DataMissingError):
        raise
    except Exception as exc:  # noqa: BLE001 - any reader failure: a bad shelters file
        raise DataError(f"{p}: cannot read the shelters ({type(exc).__name__}: {exc})") from exc
    from agents.district_evac import _check_shelters

    try:
        return _check_shelters(df)
    except ValidationError as exc:
        raise DataError(f"{p}: {exc}") from exc


def check_district(req: DistrictRequest, city: Any = None) -> None:
    """Checks before a run: files exist and read, districts are the city's (cheap: no grid, no graph).

    Raises
    ------
    twin.errors.RequestError
        Naming the field and its value.
    """
    from twin.errors import DataError, RequestError, TwinError

    if not Path(req.flood).exists():
        raise RequestError(f"flood={req.flood!r}: no such file", field="flood", value=req.flood)
    try:
        from twin.cli._util import check_input

        check_input(req.flood, "flood_run")
    except TwinError as exc:
        raise RequestError(f"flood={req.flood!r}: {exc}", field="flood", value=req.flood) from exc
    try:
        read_shelters(req.shelters or DEMO_SHELTERS)
    except DataError as exc:
        raise RequestError(f"shelters={req.shelters!r}: {exc}", field="shelters", value=req.shelters) from exc
    if req.roads is not None and not Path(req.roads).is_file():
        raise RequestError(f"roads={req.roads!r}: no such file", field="roads", value=req.roads)
    if req.zone is not None:
        try:
            check_input(req.zone, "dem")  # any raster with a CRS
        except TwinError as exc:
            raise RequestError(f"zone={req.zone!r}: {str(exc).replace('a DEM raster', 'a raster')}", field="zone",
                               value=req.zone) from exc
    if req.districts:
        from twin.city import City

        the_city = city if city is not None and not isinstance(city, str) else City(city or "shenzhen")
        t = the_city.districts()
        known = {str(v).casefold() for col in ("name", "name_zh", "adcode") for v in t[col]}
        for d in req.districts:
            if d.strip().casefold() not in known:
                raise RequestError(f"districts={req.districts!r}: {d!r} is not a district of {the_city.name}; "
                                   f"known: {', '.join(t['name'])}", field="districts", value=req.districts)


def _flood_path(path: str) -> Path:
    p = Path(path)
    return p / "flood.nc" if p.is_dir() else p


# ----------------------------------------------------------------------------- run
def run_district(req: DistrictRequest, ctx: RunContext):
    """Population, hazard zone, groups, road graph, simulation; returns the run's Dataset."""
    import numpy as np
    import xarray as xr

    from agents.city_roads import city_road_graph
    from agents.district_evac import EvacParams, simulate, walk_network
    from agents.population import evacuee_groups, hazard_zone, population_grid
    from agents.routing import Router
    from twin.city import City

    city = ctx.city if ctx.city is not None and not isinstance(ctx.city, str) else City(ctx.city or "shenzhen")
    duration = req.max_hours * 3600.0
    flood = xr.load_dataset(_flood_path(req.flood))
    roads = city_road_graph(city, districts=req.districts, path=req.roads)
    if req.mode == "walk":
        roads = walk_network(roads)
    ctx.report(0.0, duration, message=f"road graph: {roads.n_nodes} nodes, {roads.n_edges} edges ({req.mode})")
    shelters = read_shelters(req.shelters or DEMO_SHELTERS)
    close_class = req.hazard_class if req.hazard_class is not None else 3
    if req.zone is not None:
        zone = hazard_zone(zone_on_grid(req.zone, flood), probability_threshold=req.zone_threshold)
    else:
        zone = hazard_zone(flood, depth_threshold_m=req.depth_threshold,
                           hazard_class=None if req.depth_threshold is not None else close_class)
    people = population_grid(flood, city=city)
    if req.districts:
        zone = zone & _district_cells(flood, city, req.districts)
    params = EvacParams(mode=req.mode, close_class=close_class, depth_threshold_m=req.depth_threshold,
                        max_duration_s=duration, departure_window_s=req.departure_window_min * 60.0)
    base = np.array([roads.edge(e)["length_m"] for e in roads.edge_ids]) / params.walk_speed_mps
    group_size = req.group_size or (CAR_GROUP if req.mode == "car" else WALK_GROUP)
    origins = evacuee_groups(people, zone, Router(roads, base=base), group_size=group_size)
    ctx.report(0.0, duration, message=f"{origins['people'].sum():,.0f} people in the hazard zone, "
                                      f"{len(origins)} groups of up to {group_size}")

    def progress(t_s: float, total_s: float, message: str | None = None) -> None:
        ctx.report(t_s, total_s)

    res = simulate(roads, shelters, origins, flood=flood, params=params, seed=req.seed, progress=progress)
    ctx.extras["events"] = res.events
    ds = res.dataset
    frames = ds["frame"].to_numpy()
    evac = people.where(zone, 0.0)
    ds["population"] = people.astype("float32")
    ds["evacuees_origin"] = evac.astype("float32").assign_attrs(units="people", long_name="people who leave, per cell")
    for v in ("elevation", "land", "sea"):
        if v in flood:
            ds[v] = flood[v]
    depth = flood["depth"].interp(time=np.clip(frames, float(flood["time"][0]), float(flood["time"][-1])))
    ds["flood_depth"] = (("frame", "y", "x"), depth.to_numpy().astype("float32"),
                         {"units": "m", "long_name": "flood depth at the frame times (linear in time)"})
    ds.attrs.update({"crs": flood.attrs.get("crs", "EPSG:4547"),
                     "transform": np.asarray(flood.attrs["transform"], dtype=float) if "transform" in flood.attrs
                     else _transform_of(flood),
                     "flood": str(_flood_path(req.flood)), "shelters": str(req.shelters or DEMO_SHELTERS),
                     "title": f"District evacuation ({req.mode}) — {flood.attrs.get('region', 'flood run')}",
                     "population_source": "2020 census district totals spread uniformly over land cells "
                                          "(assumption, agents.population)"})
    return ds


def zone_on_grid(path: str | Path, grid):
    """A zone raster (boolean or probability, any CRS) on the flood grid's cells (nearest cell; NaN outside)."""
    import numpy as np

    from gis.raster import open_raster, reproject

    da = open_raster(path)
    da = da.astype("float64").where(np.isfinite(da))
    out = reproject(da, None, resampling="nearest", like=grid)
    return out.assign_coords(x=grid["x"], y=grid["y"])


def _transform_of(ds) -> Any:
    import numpy as np

    from gis.raster import transform_of

    return np.asarray(tuple(transform_of(ds))[:6], dtype=float)


def _district_cells(flood, city, districts):
    """Boolean (y, x): cells of the named districts on the flood grid."""
    from agents.population import grid_district_codes

    codes = grid_district_codes(flood, city)
    t = city.districts()
    wanted = set()
    for d in districts:
        for _, row in t.iterrows():
            if d.strip().casefold() in {str(row["name"]).casefold(), str(row["name_zh"]), str(row["adcode"])}:
                wanted.add(str(row["adcode"]))
    ids = [i for i, c in codes.items() if c in wanted]
    return flood["district"].isin(ids)


# ----------------------------------------------------------------------------- outputs
def summary_of(ds, events) -> dict:
    """The run's summary (figures of the Dataset's attrs and variables)."""
    import numpy as np

    a = ds.attrs
    q = ds["edge_max_queue"].to_numpy()
    worst = int(np.argmax(q)) if q.size else 0
    shelters = [{"name": str(n), "capacity": float(c), "arrivals": float(v)}
                for n, c, v in zip(ds["shelter_name"].values, ds["shelter_capacity"].values,
                                   ds["shelter_arrivals"].values, strict=True)]
    counts: dict[str, int] = {}
    for e in events:
        counts[e.kind] = counts.get(e.kind, 0) + 1
    return {
        "mode": a["mode"], "seed": a["seed"], "evacuees": a["evacuees"], "groups": a["groups"],
        "arrived": a["arrived"], "stranded": a["stranded"], "still_moving": a["still_moving"],
        "time_to_50pct_s": a["t50_s"], "time_to_clear_95pct_s": a["t95_s"], "time_to_clear_100pct_s": a["t100_s"],
        "time_to_95pct_of_arrivals_s": a["t95_of_arrivals_s"],
        "last_arrival_s": float(np.nanmax(np.where(ds["group_final_state"].values == 2,
                                                   ds["group_done_s"].values, np.nan)))
        if (ds["group_final_state"].values == 2).any() else None,
        "end_s": a["end_s"], "edges": int(ds.sizes["edge"]), "edges_closed": a["edges_closed"],
        "max_queue_people": float(q.max()) if q.size else 0.0,
        "max_queue_edge": {"id": str(ds["edge_id"].values[worst]), "name": str(ds["edge_name"].values[worst])},
        "max_density_p_m2": float(ds["edge_max_density"].max()),
        "people_forced_onto_full_edges": a.get("forced_moves_people", 0.0),
        "shelters": shelters, "events": counts,
    }


def write_district(ds, out_dir, req: DistrictRequest, ctx: RunContext) -> RunOutputs:
    """evacuation.nc, edges.parquet, shelters.csv, events.jsonl, evacuation_curve.png; the summary."""

    import geopandas as gpd
    import pandas as pd
    import shapely

    from twin.events import EventLog
    from twin.pipeline import write_run_events

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    events = ctx.extras.get("events") or EventLog()
    paths = {}
    enc = {v: {"zlib": True, "complevel": 4} for v in ("group_lon", "group_lat", "group_state", "edge_state",
                                                        "flood_depth") if v in ds}
    paths["evacuation"] = out / "evacuation.nc"
    ds.to_netcdf(paths["evacuation"], encoding=enc)
    cols = ["edge_id", "edge_name", "edge_length", "edge_width", "edge_flow_capacity", "edge_storage",
            "edge_people_through", "edge_peak_flow", "edge_max_queue", "edge_max_occupancy", "edge_max_density",
            "edge_first_closed", "edge_max_slow_factor"]
    table = pd.DataFrame({c.removeprefix("edge_") if c != "edge_id" else "id": ds[c].values for c in cols})
    gdf = gpd.GeoDataFrame(table, geometry=shapely.from_wkt(ds["edge_wkt"].values.astype(str)), crs="EPSG:4326")
    paths["edges"] = out / "edges.parquet"
    gdf.to_parquet(paths["edges"])
    sh = pd.DataFrame({"name": ds["shelter_name"].values, "lon": ds["shelter_lon"].values,
                       "lat": ds["shelter_lat"].values, "capacity": ds["shelter_capacity"].values,
                       "arrivals": ds["shelter_arrivals"].values})
    paths["shelters"] = out / "shelters.csv"
    sh.to_csv(paths["shelters"], index=False)
    paths["events"] = write_run_events(events.to_records(), out)
    paths["plot"] = plot_curve(ds, out / "evacuation_curve.png")
    return RunOutputs(paths=paths, summary=summary_of(ds, events))


def curve_figure(ds):
    """Evacuation curve: people at origin, moving, arrived and stranded over time (a matplotlib Figure)."""
    from viz.plots import new_figure

    fig = new_figure(7.0, 3.6)
    ax = fig.add_subplot()
    t_min = ds["time"].values / 60.0
    for name, colour in (("at_origin", "#f39c12"), ("moving", "#c0392b"), ("arrived", "#27ae60"),
                         ("stranded", "#8e44ad")):
        ax.plot(t_min, ds[name].values, color=colour, label=name.replace("_", " "))
    ax.set_xlabel("time since the evacuation order (min)")
    ax.set_ylabel("people")
    ax.set_title(f"District evacuation: {ds.attrs['evacuees']:,.0f} people, {ds.attrs['groups']} groups")
    ax.grid(alpha=0.3)
    ax.legend(loc="center right")
    return fig


def plot_curve(ds, path) -> Path:
    """The evacuation curve as a PNG at ``path``."""
    from viz.plots import save_png

    return save_png(curve_figure(ds), path)


def report_sections(ds, summary: dict, ctx: RunContext | None = None) -> list[str]:
    """Key figures, the evacuation curve, shelters, the most congested streets, stranding and assumptions."""
    import html

    import numpy as np

    from viz.report import figure_html

    def minutes(v) -> str:
        return "never" if v is None or not np.isfinite(v) else f"{v / 60:.1f} min"

    def table(head, rows) -> str:
        th = "".join(f"<th>{html.escape(h)}</th>" for h in head)
        body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>" for r in rows)
        return f"<table><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>"

    s = summary
    key = [("people in the hazard zone", f"{s['evacuees']:,.0f} in {s['groups']} groups"),
           ("at a shelter", f"{s['arrived']:,.0f}"), ("stranded", f"{s['stranded']:,.0f}"),
           ("still on their way at the end", f"{s['still_moving']:,.0f}"),
           ("50 % / 95 % / 100 % at a shelter", " / ".join(minutes(s[k]) for k in (
               "time_to_50pct_s", "time_to_clear_95pct_s", "time_to_clear_100pct_s"))),
           ("95 % of those who arrived", minutes(s["time_to_95pct_of_arrivals_s"])),
           ("street edges closed by the flood", f"{s['edges_closed']} of {s['edges']}"),
           ("longest queue", f"{s['max_queue_people']:,.0f} people"),
           ("highest density", f"{s['max_density_p_m2']:.2f} people/m²")]
    out = ["<section><h2>Key figures</h2>" + table(["", ""], key) + "</section>"]
    out.append("<section><h2>Evacuation curve</h2>" + figure_html(curve_figure(ds), "evacuation curve")
               + "</section>")
    out.append("<section><h2>Shelters</h2>" + table(
        ["shelter", "capacity", "arrivals"],
        [(x["name"], f"{x['capacity']:,.0f}", f"{x['arrivals']:,.0f}") for x in s["shelters"]]) + "</section>")
    q = ds["edge_max_queue"].values
    top = np.argsort(-q, kind="stable")[:10]
    out.append("<section><h2>Most congested streets</h2>" + table(
        ["edge", "street", "most queued (people)", "highest density (P/m²)", "people through", "closed at"],
        [(ds["edge_id"].values[i], ds["edge_name"].values[i] or "-", f"{q[i]:,.0f}",
          f"{ds['edge_max_density'].values[i]:.2f}", f"{ds['edge_people_through'].values[i]:,.0f}",
          minutes(ds["edge_first_closed"].values[i])) for i in top if q[i] > 0]) + "</section>")
    reasons = ds["group_strand_reason"].values[ds["group_final_state"].values == 3]
    people = ds["group_people"].values[ds["group_final_state"].values == 3]
    rows = [(r, f"{people[reasons == r].sum():,.0f}") for r in sorted(set(reasons.tolist()))]
    out.append("<section><h2>Stranded</h2>" + (table(["why", "people"], rows) if rows else "<p>nobody</p>")
               + "</section>")
    out.append("<section><h2>Assumptions</h2><ul>"
               "<li>Residents: 2020 census district totals spread uniformly over land cells (not measured).</li>"
               "<li>Walking 1.34 m/s (Weidmann 1993), 1.32 P/(s·m) of walkable width (SFPE), jam density 5.4 P/m²; "
               "walkable widths are road-class defaults.</li>"
               "<li>Streets close to walkers from ARR 2019 hazard class H3 (or the depth given); wading slows people "
               "(Li et al. 2026).</li>"
               f"<li>Shelters: {html.escape(str(ds.attrs.get('shelters', '')))}"
               + (" — ASSUMED demo shelters, not the official list." if "demo" in str(ds.attrs.get("shelters", ""))
                  else "") + "</li></ul></section>")
    return out


# ----------------------------------------------------------------------------- map
def district_layers(ds, *, warp=None, max_px: int | None = None, streets_assumed: bool = False) -> list:
    """Evacuees on the slider (moving, waiting, stranded), road status, shelters, flood depth.

    ``streets_assumed``: the walk network is an ASSUMED lattice (:mod:`gis.lattice_roads`): the
    street layer says so and starts hidden, as its dense straight edges would cover the flood.
    """
    import numpy as np
    import shapely

    from viz.layers import build
    from viz.layers.flood_depth import frame_indices

    times = ds["frame"].to_numpy().astype(float)
    keep = frame_indices(len(times), MAP_FRAMES) if len(times) > 1 else [0]
    t = times[keep]
    lon = ds["group_lon"].to_numpy()[keep].astype(float)
    lat = ds["group_lat"].to_numpy()[keep].astype(float)
    state = ds["group_state"].to_numpy()[keep]
    sets = []
    for code, label, colour in ((1, "Evacuees on the way", (220, 40, 40)), (0, "Evacuees not yet left", (245, 160, 20)),
                                (3, "Evacuees stranded", (130, 50, 170))):
        on = state == code
        sets.append(build("movers", t, np.where(on, lon, np.nan), np.where(on, lat, np.nan),
                          layer_id=f"evacuees_{('waiting', 'moving', '', 'stranded')[code]}", label=label,
                          color=colour, radius_m=12.0))
    es = ds["edge_state"].to_numpy()[keep]
    shown = np.flatnonzero((es > 0).any(axis=0))  # streets ever slowed or closed
    if len(shown):
        lines = list(shapely.from_wkt(ds["edge_wkt"].values[shown].astype(str)))
        sets.append(build("road_status", lines, es[:, shown], times_s=t, layer_id="evacuation_roads",
                          label=("ASSUMED lattice streets slowed / closed to evacuees" if streets_assumed
                                 else "Streets slowed / closed to evacuees"), visible=not streets_assumed,
                          values=ds["edge_max_queue"].values[shown],
                          value_label="most people queued", names=[str(n) or str(i) for n, i in zip(
                              ds["edge_name"].values[shown], ds["edge_id"].values[shown], strict=True)]))
    sets.append(build("facilities", ds["shelter_lon"].values, ds["shelter_lat"].values,
                      [str(n) for n in ds["shelter_name"].values], kind="shelter",
                      capacity=ds["shelter_capacity"].values, layer_id="shelters", label="Shelters"))
    if "flood_depth" in ds:
        depth = ds["flood_depth"].isel(frame=keep).rename(frame="time")
        depth = depth.assign_coords(time=t).assign_attrs(crs=ds.attrs["crs"], transform=ds.attrs["transform"])
        more = {} if max_px is None else {"max_px": max_px}
        sets.append(build("flood_depth", depth, max_frames=len(t), warp=warp, **more))
    return sets


def describe(params: dict[str, Any]) -> str:
    where = ", ".join(params.get("districts") or []) or "the flood's area"
    flood = params.get("flood")
    source = f"flood run #{flood}" if isinstance(flood, int) else Path(str(flood)).parent.name
    return f"{params.get('mode', 'walk')} evacuation of {where} from {source}"


def _command():
    from twin.cli.evacuate_district import district

    return district


register_kind(RunKind(
    name=KIND, title="District evacuation", request=DistrictRequest, console_request=DistrictConsoleRequest, run=run_district, write=write_district,
    layers=district_layers, report_sections=report_sections, output="evacuation.nc", cli_name="evacuate district", command=_command,
    describe=describe, check=check_district, duration_s=lambda req: req.max_hours * 3600.0,
    summary_keys=("evacuees", "arrived", "stranded", "time_to_clear_95pct_s", "edges_closed"),
    compare="evacuees_origin",
))

__all__ = ["DEMO_SHELTERS", "KIND", "DistrictConsoleRequest", "DistrictRequest", "check_district", "curve_figure", "district_layers", "plot_curve",
           "report_sections",
           "read_shelters", "run_district", "summary_of", "write_district", "zone_on_grid"]
