"""The building evacuation's run kind (``evacuate_building``): request, runner, outputs, map layers.

Registered with :func:`twin.runkinds.register_kind` on import, so the run
pipeline, ``twin evacuate building`` and the console find it. The request
names one building: a description file (``building``, see
:mod:`agents.building`), a tower from an OSM buildings GeoJSON (``osm`` and
``osm_id``; the tallest when no id), or a generated tower (``levels`` and
``floor_area_m2``, :func:`agents.building.tower_from_osm`).

This module is imported for ``twin --help``: it imports numpy, xarray and
the model only inside its functions.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from twin.runkinds import RunContext, RunKind, RunOutputs, register_kind

KIND = "evacuate_building"


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


class BuildingConsoleRequest(_Strict):
    """A generated tower (what the console's form may send)."""

    levels: int | None = Field(default=None, ge=1, le=200, description="Storeys", examples=[30])
    floor_area_m2: float | None = Field(default=None, gt=0.0, le=200_000.0, allow_inf_nan=False,
                                        description="Floor plate (m²)", examples=[600.0])
    use: Literal["residential", "business"] = Field(default="residential",
                                                    description="Use of a generated tower (levels)")
    seed: int = Field(default=0, ge=0, le=2**32 - 1, description="Seed")


class BuildingRequest(BuildingConsoleRequest):
    """Every parameter of a building evacuation (``twin evacuate building --help``).

    Exactly one source: ``building`` (a file), ``osm`` (+ ``osm_id``), or
    ``levels`` with ``floor_area_m2``.
    """

    building: str | None = None
    osm: str | None = None
    osm_id: str | None = Field(default=None, max_length=40)
    aset: str | None = None
    dt: float = Field(default=0.5, ge=0.05, le=1.0, allow_inf_nan=False)
    record_every_s: float = Field(default=5.0, gt=0.0, le=600.0, allow_inf_nan=False)
    max_time_s: float = Field(default=6 * 3600.0, gt=0.0, le=7 * 86_400.0, allow_inf_nan=False)
    runs: int = Field(default=1, ge=1, le=1000)

    @model_validator(mode="after")
    def _one_source(self) -> BuildingRequest:
        given = [n for n, v in (("building", self.building), ("osm", self.osm), ("levels", self.levels)) if v is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of building (a file), osm (a buildings GeoJSON) or levels "
                             f"(with floor_area_m2); got {given or 'none'}")
        if self.levels is not None and self.floor_area_m2 is None:
            raise ValueError("levels needs floor_area_m2 (the floor plate, m²)")
        if self.levels is None and self.floor_area_m2 is not None:
            raise ValueError("floor_area_m2 goes with levels (a file or OSM footprint has its own)")
        if self.osm_id is not None and self.osm is None:
            raise ValueError("osm_id needs osm (the buildings GeoJSON)")
        steps = self.record_every_s / self.dt
        if abs(steps - round(steps)) > 1e-6 * steps:
            raise ValueError(f"record_every_s={self.record_every_s!r} must be a whole number of dt={self.dt!r} s steps")
        return self


# ----------------------------------------------------------------------------- building of a request
def building_spec(req: BuildingRequest):
    """The checked :class:`agents.building.BuildingSpec` a request names.

    Raises
    ------
    twin.errors.RequestError
        Naming ``building``, ``osm`` or ``osm_id`` and the value, with the file's problems.
    """
    from agents.building import load_building, osm_towers, tower_from_osm, tower_from_osm_row
    from twin.errors import DataError, RequestError, ValidationError

    if req.levels is not None:
        try:
            return tower_from_osm(req.levels, req.floor_area_m2, use=req.use)
        except ValidationError as exc:
            raise RequestError(f"levels={req.levels!r}: {exc}", field="levels", value=req.levels) from exc
    if req.building is not None:
        try:
            return load_building(Path(req.building).expanduser())
        except (DataError, ValidationError) as exc:
            raise RequestError(f"building={req.building!r}: {exc}", field="building", value=req.building) from exc
    try:
        towers = osm_towers(Path(req.osm).expanduser())
    except DataError as exc:
        raise RequestError(f"osm={req.osm!r}: {exc}", field="osm", value=req.osm) from exc
    if req.osm_id is not None:
        towers = towers[towers["osmid"].astype(str) == req.osm_id] if "osmid" in towers else towers.iloc[:0]
        if towers.empty:
            raise RequestError(f"osm_id={req.osm_id!r}: no building with that id and building:levels in {req.osm}",
                               field="osm_id", value=req.osm_id)
    if towers.empty:
        raise RequestError(f"osm={req.osm!r}: no building with building:levels", field="osm", value=req.osm)
    return tower_from_osm_row(towers.iloc[0])  # its use from the OSM building tag


def _aset(req: BuildingRequest, n_floors: int) -> dict[int, float] | None:
    from agents.building import load_aset
    from twin.errors import DataError, RequestError

    if req.aset is None:
        return None
    try:
        return load_aset(Path(req.aset).expanduser(), n_floors)
    except DataError as exc:
        raise RequestError(f"aset={req.aset!r}: {exc}", field="aset", value=req.aset) from exc


def check_building(req: BuildingRequest, city: Any = None) -> None:
    """Read and check the building (and ASET file) before anything runs; no simulation."""
    spec = building_spec(req)
    _aset(req, spec.storeys.n)


def hydraulic_estimate_s(tower) -> float:
    """A rough evacuation time for progress bars: median pre-movement + people above ground / stair capacity."""
    from agents.stairs import max_specific_flow

    cap = sum(max_specific_flow(k) * w for k, w in zip(tower.stair_k, tower.stair_width_eff_m, strict=True))
    pre = tower.spec.movement.premovement.params()
    pre_s = pre.get("median_s", pre.get("high_s", pre.get("value_s", 60.0)))
    return float(pre_s) + float(tower.people[1:].sum()) / cap + 60.0


# ----------------------------------------------------------------------------- run
def run_building(req: BuildingRequest, ctx: RunContext):
    """Resolve the building and evacuate it (:func:`agents.building_evac.simulate`)."""
    from agents.building import resolve
    from agents.building_evac import simulate

    spec = building_spec(req)
    tower = resolve(spec, _aset(req, spec.storeys.n))
    estimate = hydraulic_estimate_s(tower)
    ctx.report(0.0, estimate, message=f"{tower.name}: {tower.n_floors} storeys, {int(tower.people.sum())} people, "
                                      f"{tower.n_stairs} stair(s), {len(tower.exit_names)} exit(s)")

    def progress(t: float, _max: float, info: dict) -> None:
        ctx.report(t, max(estimate, t), out=info["out"], people=info["people"])

    ds = simulate(tower, seed=req.seed, dt=req.dt, record_every_s=req.record_every_s,
                  max_time_s=req.max_time_s, progress=None if req.runs > 1 else progress)
    if req.runs > 1:
        ds = with_repeats(ds, tower, req, ctx)
    return ds


def with_repeats(ds, tower, req: BuildingRequest, ctx: RunContext):
    """``ds`` with ``rset_run`` (run): the RSET of seeds ``seed``, ``seed + 1``, ... (``req.runs`` runs).

    IMO MSC.1/Circ.1533 judges an evacuation by the 95th percentile of at
    least 50 runs with different random draws; the first run is ``ds`` itself.
    """
    import numpy as np

    from agents.building_evac import simulate

    rset = [float(ds.attrs["rset_s"])]
    for i in range(1, req.runs):
        ctx.report(float(i), float(req.runs), runs_done=i)
        rset.append(float(simulate(tower, seed=req.seed + i, dt=req.dt, record_every_s=req.record_every_s,
                                   max_time_s=req.max_time_s).attrs["rset_s"]))
    seeds = np.arange(req.seed, req.seed + req.runs)
    return ds.assign(rset_run=("run", np.array(rset), {"long_name": "RSET of each run (seed = coordinate)",
                                                       "units": "s"})).assign_coords(run_seed=("run", seeds))


def floors_table(ds):
    """Per floor: people, RSET, time to safety, ASET, RSET − ASET, first queue time (a DataFrame)."""
    import pandas as pd

    q = ds["queue_formed"].min("stair", skipna=True)
    return pd.DataFrame({
        "floor": ds["floor"].values, "elevation_m": ds["floor_elevation"].values,
        "people": ds["people_initial"].values, "refuge": ds["refuge"].values.astype(bool),
        "rset_s": ds["rset_floor"].values, "time_to_safety_s": ds["exit_time_floor"].values,
        "aset_s": ds["aset"].values, "rset_minus_aset_s": ds["rset_minus_aset"].values,
        "first_queue_s": q.values})


def occupants_table(ds):
    """One row per occupant: floor, stair, exit, speed, pre-movement, times (a DataFrame)."""
    import pandas as pd

    where = {3: "exit", 4: "refuge"}
    return pd.DataFrame({
        "occupant": ds["occupant"].values, "floor": ds["occ_floor"].values, "stair": ds["occ_stair"].values,
        "exit": ds["occ_exit"].values, "speed_mps": ds["occ_speed"].values.round(3),
        "premovement_s": ds["premovement"].values.round(2), "at_door_s": ds["t_at_door"].values.round(2),
        "left_floor_s": ds["t_leave_floor"].values, "safe_s": ds["t_safe"].values,
        "safe_in": [where.get(int(v), "inside") for v in ds["safe_in"].values]})


def summarise(ds) -> dict[str, Any]:
    """The run's summary (RSET, per-floor maxima, people, peak flows, unsafe floors)."""
    import json

    import numpy as np

    rset_f = ds["rset_floor"].values
    margin = ds["rset_minus_aset"].values
    unsafe = [int(f) for f in ds["floor"].values[np.isfinite(margin) & (margin > 0)]]
    stairs = json.loads(ds.attrs["stair_names"])
    exits = json.loads(ds.attrs["exit_names"])
    ok = np.isfinite(rset_f)
    worst = int(ds["floor"].values[ok][np.argmax(rset_f[ok])]) if ok.any() else None
    return {
        "building": ds.attrs["building"], "location": {"lon": ds.attrs["lon"], "lat": ds.attrs["lat"],
                                                       "label": ds.attrs["location_label"]},
        "floors": int(ds.sizes["floor"]), "people": int(ds.attrs["people"]),
        "rset_s": ds.attrs["rset_s"], "people_not_safe": int(ds.attrs["people_not_safe"]),
        "people_out": int(ds["people_out"].values[-1]), "people_in_refuge": int(ds["people_in_refuge"].values[-1]),
        "rset_floor_max_s": float(np.nanmax(rset_f)) if ok.any() else None, "slowest_floor": worst,
        "time_to_safety_floor_max_s": float(np.nanmax(ds["exit_time_floor"].values)) if ok.any() else None,
        "premovement_mean_s": float(ds["premovement"].mean()) if ds.sizes["occupant"] else None,
        "peak_exit_flow_30s_p_s": {exits[e]: _peak(ds["exit_flow"].values[:, e], ds) for e in range(len(exits))},
        "peak_stair_flow_30s_p_s": {stairs[s]: max([_peak(ds["stair_flow"].values[:, f, s], ds)
                                                    for f in range(1, ds.sizes["floor"])], default=0.0)
                                    for s in range(len(stairs))},
        "stair_capacity_p_s": dict(zip(stairs, json.loads(ds.attrs["stair_capacity_p_s"]), strict=True)),
        "exit_capacity_p_s": dict(zip(exits, json.loads(ds.attrs["exit_capacity_p_s"]), strict=True)),
        "max_queue_at_a_stair_door": int(ds["door_queue"].values.max(initial=0)),
        "floors_rset_after_aset": unsafe,
        "events": _event_counts(ds),
        "rset_runs": _repeat_stats(ds),
        "seed": int(ds.attrs["seed"]), "dt_s": float(ds.attrs["dt_s"]),
    }


def _repeat_stats(ds) -> dict[str, Any] | None:
    """RSET statistics over repeated runs (None for one run); a run with people left counts as inf."""
    import numpy as np

    if "rset_run" not in ds:
        return None
    r = np.where(np.isfinite(ds["rset_run"].values), ds["rset_run"].values, np.inf)
    return {"runs": int(r.size), "mean_s": float(r.mean()), "p50_s": float(np.percentile(r, 50)),
            "p95_s": float(np.percentile(r, 95)), "max_s": float(r.max()), "min_s": float(r.min())}


def _peak(flow, ds, window_s: float = 30.0) -> float:
    """Largest mean of ``flow`` (P/s per record interval) over ``window_s`` (whole people pass a door in
    bursts, so one 5 s interval can read above the element's capacity)."""
    import numpy as np

    k = max(1, int(round(window_s / float(ds.attrs["record_every_s"]))))
    f = np.asarray(flow[1:], dtype=float)
    if f.size < k:
        return float(f.mean()) if f.size else 0.0
    return float(np.convolve(f, np.ones(k) / k, mode="valid").max())


def _event_counts(ds) -> dict[str, int]:
    import json

    out: dict[str, int] = {}
    for e in json.loads(ds.attrs["events"]):
        out[e["kind"]] = out.get(e["kind"], 0) + 1
    return out


def curve_figure(ds):
    """The evacuation curve: people out (and in refuge, on the stairs) over time, RSET marked."""
    from viz.plots import new_figure, style

    t = ds["time"].values / 60.0
    with style():
        fig = new_figure(7.0, 3.8)
        ax = fig.add_subplot()
        ax.plot(t, ds["people_out"].values, label="out of the building", color="#1f77b4")
        if int(ds["people_in_refuge"].values[-1]):
            ax.plot(t, ds["people_in_refuge"].values, label="in a refuge floor", color="#2ca02c")
        ax.plot(t, ds["people_in_stair"].values.sum(axis=1), label="on the stairs", color="#ff7f0e", lw=1)
        rset = float(ds.attrs["rset_s"])
        if math.isfinite(rset):
            ax.axvline(rset / 60.0, color="#d62728", ls="--", lw=1, label=f"RSET {rset:.0f} s")
        ax.set_xlabel("time after the alarm (min)")
        ax.set_ylabel("people")
        ax.set_title(f"Evacuation curve — {ds.attrs['building']}")
        ax.legend(loc="best")
    return fig


def floors_figure(ds):
    """People still on each floor over time (floor vs time, colour = people), floor RSETs marked."""
    import numpy as np

    from viz.plots import new_figure, style

    t = ds["time"].values / 60.0
    with style():
        fig = new_figure(7.0, 4.2)
        ax = fig.add_subplot()
        data = ds["people_on_floor"].values.T.astype(float)
        data[data == 0] = np.nan
        mesh = ax.pcolormesh(t, ds["floor"].values, data, shading="nearest", cmap="YlOrRd")
        fig.colorbar(mesh, ax=ax, label="people still on the floor")
        ax.scatter(ds["rset_floor"].values / 60.0, ds["floor"].values, s=6, color="k", label="floor cleared")
        ax.set_xlabel("time after the alarm (min)")
        ax.set_ylabel("floor (0 = ground)")
        ax.set_title("People per floor over time")
        ax.legend(loc="lower right")
    return fig


def report_sections(ds, summary: dict, ctx: RunContext | None = None) -> list[str]:
    """The report: key figures, the two plots, the floors table, the events (HTML sections)."""
    import html
    import json

    from viz.report import figure_html, summary_section

    def img(fig, alt: str) -> str:
        return figure_html(fig, alt)

    def cell(v) -> str:
        if isinstance(v, float):
            return "–" if not math.isfinite(v) else f"{v:.0f}"
        return html.escape(str(v))

    table = floors_table(ds)
    head = "".join(f"<th>{html.escape(c)}</th>" for c in table.columns)
    body = "".join("<tr>" + "".join(f"<td>{cell(v)}</td>" for v in row) + "</tr>"
                   for row in table.itertuples(index=False))
    events = json.loads(ds.attrs["events"])
    ev = "".join(f"<tr><td>{e['time_s']:.0f}</td><td>{html.escape(e['severity'])}</td>"
                 f"<td>{html.escape(e['message'])}</td></tr>" for e in events[:200])
    return [
        summary_section({k: v for k, v in summary.items() if k not in ("request", "files")}),
        "<section><h2>Evacuation over time</h2>" + img(curve_figure(ds), "evacuation curve")
        + img(floors_figure(ds), "people per floor over time") + "</section>",
        f"<section><h2>Floors</h2><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></section>",
        "<section><h2>Events</h2><table><thead><tr><th>time (s)</th><th>severity</th><th>event</th></tr>"
        f"</thead><tbody>{ev}</tbody></table></section>",
        "<section><h2>Model</h2><p>" + html.escape(
            "SFPE hydraulic relations per occupant (agents.building_evac): speed by density "
            "S = k(1 - 0.266 D), maximum specific flows 1.32 P/s/m (doors) and by riser/tread (stairs), "
            "effective widths, transitions pass the smaller flow, landings split by floor_share. "
            f"Location: {ds.attrs['location_label']}.") + "</p></section>",
    ]


def write_building(ds, out_dir, req: BuildingRequest, ctx: RunContext) -> RunOutputs:
    """evacuation.nc, floors.csv, occupants.csv, events.jsonl, two plots; the summary."""
    import json

    from twin.pipeline import write_run_events

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"evacuation": out / "evacuation.nc", "floors": out / "floors.csv",
             "occupants": out / "occupants.csv", "events": out / "events.jsonl"}
    ds.to_netcdf(paths["evacuation"])
    floors_table(ds).to_csv(paths["floors"], index=False, float_format="%.1f")
    occupants_table(ds).to_csv(paths["occupants"], index=False, float_format="%.2f")
    write_run_events(json.loads(ds.attrs["events"]), out)
    from viz.plots import save_png

    paths["evacuation_curve"] = save_png(curve_figure(ds), out / "evacuation_curve.png")
    paths["people_per_floor"] = save_png(floors_figure(ds), out / "people_per_floor.png")
    return RunOutputs(paths=paths, summary=summarise(ds))


def building_layers(ds, *, warp=None, max_px: int | None = None) -> list:
    """The building's floors on the time slider (:mod:`viz.layers.building_evac`)."""
    from viz.layers import build

    return [build("building_evac", ds)]


def map_view(ds, view: dict) -> dict:
    """The view the run's map opens on: pitched 50° and zoomed out a little so the floor slabs stand up.

    Looking straight down, the extruded slabs show only the roof (the flat floor strip still reads).
    """
    return {**view, "zoom": min(view["zoom"] - 1.2, 18.0), "pitch": 50.0, "bearing": -20.0}


def describe(params: dict[str, Any]) -> str:
    if params.get("building"):
        return f"{Path(params['building']).name}, seed {params.get('seed', 0)}"
    if params.get("osm"):
        return f"OSM {params.get('osm_id') or 'tallest'} in {Path(params['osm']).name}"
    return f"{params.get('levels')} storeys x {params.get('floor_area_m2')} m² {params.get('use', 'residential')}"


def _command():
    from twin.cli.evacuate_building import building

    return building


EVACUATE_BUILDING = register_kind(RunKind(
    name=KIND, title="Building evacuation", request=BuildingRequest, console_request=BuildingConsoleRequest,
    run=run_building, write=write_building, layers=building_layers, report_sections=report_sections,
    output="evacuation.nc",
    cli_name="evacuate building", command=_command, describe=describe,
    summary_keys=("rset_s", "people", "people_not_safe", "rset_floor_max_s"),
    check=check_building, map_view=map_view,
))

__all__ = ["EVACUATE_BUILDING", "BuildingConsoleRequest", "BuildingRequest", "building_layers", "building_spec",
           "check_building", "floors_table", "occupants_table", "map_view", "run_building", "summarise",
           "write_building"]
