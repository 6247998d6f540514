"""What a scenario run writes beside ``fields.nc``: tables, events, headline KPIs, report and map.

Called by the runner once the clock has stopped (the ``outputs`` hook of
:func:`scenarios.runner.run_coupled`, built by :func:`scenario_outputs`):

* when the scenario's ``outputs.formats`` has ``geoparquet`` (the default),
  each coupling's :attr:`~scenarios.coupling.Coupling.tables` ->
  ``<name>.parquet`` (GeoParquet when the table has geometry);
* and ``events.parquet``: every event of the run, a point where its data has
  ``lon`` and ``lat`` (else no geometry), data as JSON text;
* headline KPIs into ``summary.json`` (``kpis``): read from the couplings'
  summaries under the keys of :data:`KPI_KEYS` (last coupling of the schedule
  first); flooded area and cells with FS < 1 computed from ``fields.nc`` and
  incidents counted from the events when no coupling reports them;
* ``report.html`` (offline): the scenario's title and description, KPIs,
  the run (grid, time, hash), the schedule with why each coupling runs,
  each coupling's report sections, events by kind, sources and assumptions;
* ``map.html`` (offline, one time slider over the frames of ``fields.nc``):
  the basemap, one layer per known field of the state (:data:`FIELD_LAYERS`:
  water depth, factor of safety, debris depth) unless the coupling writing
  it draws layers on the slider itself, and every coupling's
  ``layers(ctx, times_s)``. The map has one slider: a layer set on other
  frame times is resampled to the run's (each frame shows the set's last
  frame at or before it; listed in the summary's ``map.resampled``).

* when ``outputs.formats`` has ``zarr``: ``fields.zarr``, the Dataset of
  ``fields.nc`` (same variables, coordinates and attributes) as a Zarr store
  (:func:`write_zarr`), for chunked and cloud reading;
* when it has ``geotiff``: per field of the state, its worst value over the
  run as a GeoTIFF with the run's CRS and transform (:func:`write_geotiffs`,
  through :func:`gis.raster.write_geotiff`): ``<field>_max.tif``, the
  maximum over the frames (NaN where the field never had a value), except
  for the fields of :data:`GEOTIFF_MIN` where lower is worse
  (``factor_of_safety_min.tif``).

A part that fails (a coupling's table, layer or report section, a format)
does not stop the others: it is listed in the summary's ``output_problems``.
"""

from __future__ import annotations

import html
import json
import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from twin.errors import ValidationError

EVENTS_PARQUET = "events.parquet"
REPORT_NAME = "report.html"
MAP_NAME = "map.html"
#: Depth (m) from which a cell counts as flooded when the KPI comes from ``fields.nc``.
FLOODED_M = 0.15
_TABLE_NAME = re.compile(r"[a-z][a-z0-9_]*")
ZARR_NAME = "fields.zarr"
#: Fields whose worst value over a run is the minimum (``<field>_min.tif``); every other: the maximum.
GEOTIFF_MIN = ("factor_of_safety",)
#: Formats of ``outputs.formats`` a scenario run writes (fields.nc always; the others when asked).
WRITTEN_FORMATS = ("netcdf", "geoparquet", "zarr", "geotiff")

#: Headline KPI -> the keys of a coupling's summary it is read from (``a.b``: key b of the dict a);
#: the couplings are searched from the last of the schedule back (the responders, which see every
#: incident, before the injects that made one).
KPI_KEYS: dict[str, tuple[str, ...]] = {
    "flooded_area_m2": ("flooded_area_m2",),
    "max_water_depth_m": ("max_depth_m", "max_water_depth_m"),
    "roads_closed_max": ("closed_max", "roads_closed_max"),
    "people_ordered": ("people_ordered",),
    "people_arrived": ("people_arrived",),
    "people_stranded": ("people_stranded",),
    "incidents": ("incidents_total", "n_incidents", "incidents"),
    "response_time_median_s": ("response_s.p50", "response_time_median_s"),
    "response_time_p90_s": ("response_s.p90", "response_time_p90_s"),
    "cells_fs_below_1": ("cells_fs_below_1",),
    "slope_failed_area_m2": ("area_failed_m2", "failed_area_m2"),
    "fire_first_alarm_s": ("first_alarm_s",),
    "fire_flashover_s": ("flashover_s",),
    "floors_untenable_15min": ("floors_untenable_by_15min",),
    "floors_untenable_30min": ("floors_untenable_by_30min",),
    "people_caught": ("people_caught",),
    "smallest_margin_s": ("smallest_margin_s",),
}
KPI_LABELS = {
    "flooded_area_m2": ("Flooded area (≥ 0.15 m)", "km²", 1e-6),
    "max_water_depth_m": ("Maximum water depth", "m", 1.0),
    "roads_closed_max": ("Road edges closed (max)", "", 1.0),
    "people_ordered": ("People ordered to move", "", 1.0),
    "people_arrived": ("People arrived at shelters", "", 1.0),
    "people_stranded": ("People stranded", "", 1.0),
    "incidents": ("Incidents", "", 1.0),
    "response_time_median_s": ("Response time, median", "min", 1 / 60),
    "response_time_p90_s": ("Response time, 90th percentile", "min", 1 / 60),
    "cells_fs_below_1": ("Cells with FS < 1", "", 1.0),
    "slope_failed_area_m2": ("Slope failed area", "km²", 1e-6),
    "fire_first_alarm_s": ("First fire alarm (since ignition)", "min", 1 / 60),
    "fire_flashover_s": ("Flashover (since ignition)", "min", 1 / 60),
    "floors_untenable_15min": ("Storeys untenable by 15 min", "", 1.0),
    "floors_untenable_30min": ("Storeys untenable by 30 min", "", 1.0),
    "people_caught": ("People caught by smoke", "", 1.0),
    "smallest_margin_s": ("Smallest ASET − RSET margin", "min", 1 / 60),
}


# ----------------------------------------------------------------------------- the hook
def scenario_outputs(translation: Any, *, map: bool = True, report: bool = True,
                     progress: Callable[[dict], None] | None = None) -> Callable:
    """The runner's ``outputs`` hook of a translated scenario (:class:`scenarios.translate.Translation`)."""
    def hook(run, out: Path) -> dict[str, Path]:
        return write_outputs(run, out, translation, map=map, report=report, progress=progress)

    return hook


def write_outputs(run, out: Path, translation: Any, *, map: bool = True, report: bool = True,
                  progress: Callable[[dict], None] | None = None) -> dict[str, Path]:
    """Write tables, ``events.parquet``, KPIs (into ``run.summary``), report and map; returns the paths."""
    say = progress or (lambda _p: None)
    out = Path(out)
    problems: list[str] = []
    formats = list(getattr(translation.scenario.outputs, "formats", ["netcdf", "geoparquet"]))
    problems += [f"outputs.formats: {f} is not written by a scenario run (fields.nc and GeoParquet are)"
                 for f in formats if f not in WRITTEN_FORMATS]
    paths: dict[str, Path] = {}
    paths |= write_coupling_files(run, out, problems)
    if "geoparquet" in formats:
        paths |= write_tables(run, out, problems)
        paths["events_table"] = write_events_table(run.state.events, out / EVENTS_PARQUET)
    for fmt, writer in (("zarr", _zarr_paths), ("geotiff", write_geotiffs)):
        if fmt in formats:
            try:
                paths |= writer(out)
            except Exception as exc:  # noqa: BLE001 - the run's other files stay; the failure is listed
                problems.append(f"outputs.formats: {fmt} not written: {type(exc).__name__}: {exc}")
    run.summary["kpis"] = headline_kpis(run, out)
    run.summary["enabled"] = dict(translation.reasons)
    if map:  # before the report, which lists the map's problems too
        say({"phase": "writing map", "fraction": 1.0})
        try:
            info = write_map(run, out, translation, problems)
            paths["map"] = info["path"]
            run.summary["map"] = {k: info[k] for k in ("frames", "bytes", "layers", "resampled")}
        except Exception as exc:  # noqa: BLE001 - the run's files stay; the failure is listed
            problems.append(f"map.html not written: {type(exc).__name__}: {exc}")
    if report:
        say({"phase": "writing report", "fraction": 1.0})
        paths["report"] = write_report(run, out, translation, problems)
    run.summary["output_problems"] = problems
    return paths


# ----------------------------------------------------------------------------- tables
def write_coupling_files(run, out: Path, problems: list[str]) -> dict[str, Path]:
    """Each coupling's own files (:attr:`scenarios.coupling.Coupling.files`); problems listed."""
    paths: dict[str, Path] = {}
    for c in run.order:
        if c.files is None:
            continue
        try:
            made = c.files(run.contexts[c.name], out) or {}
        except Exception as exc:  # noqa: BLE001 - one coupling's files must not lose the run's other outputs
            problems.append(f"{c.name}.files: {type(exc).__name__}: {exc}")
            continue
        paths |= {f"{c.name}:{name}": Path(p) for name, p in made.items()}
    return paths


def write_tables(run, out: Path, problems: list[str]) -> dict[str, Path]:
    """Each coupling's tables as ``<name>.parquet`` (GeoParquet with geometry); problems listed."""
    paths: dict[str, Path] = {}
    owner: dict[str, str] = {}
    for c in run.order:
        if c.tables is None:
            continue
        try:
            tables = c.tables(run.contexts[c.name]) or {}
        except Exception as exc:  # noqa: BLE001 - one coupling's table must not lose the run's other outputs
            problems.append(f"{c.name}.tables: {type(exc).__name__}: {exc}")
            continue
        for name, df in tables.items():
            if not isinstance(name, str) or not _TABLE_NAME.fullmatch(name) or name in ("events", "fields"):
                problems.append(f"{c.name}.tables: name {name!r} refused (use [a-z][a-z0-9_]*, not "
                                "events or fields)")
                continue
            if name in owner:
                problems.append(f"{c.name}.tables: {name!r} is already written by {owner[name]}")
                continue
            try:
                paths[f"table:{name}"] = write_table(df, out / f"{name}.parquet")
                owner[name] = c.name
            except Exception as exc:  # noqa: BLE001
                problems.append(f"{c.name}.tables[{name!r}]: {type(exc).__name__}: {exc}")
    return paths


def write_table(df, path: Path) -> Path:
    """A DataFrame as Parquet, a GeoDataFrame (or a frame with a ``geometry`` column) as GeoParquet."""
    import geopandas as gpd
    import pandas as pd

    if not isinstance(df, pd.DataFrame):
        raise ValidationError(f"{path.name}: a table is a pandas DataFrame or GeoDataFrame, "
                              f"got {type(df).__name__}")
    if not isinstance(df, gpd.GeoDataFrame) and "geometry" in df.columns:
        df = gpd.GeoDataFrame(df, geometry="geometry", crs="EPSG:4326")
    df.to_parquet(path, index=False)
    return path


def events_table(events):
    """A GeoDataFrame of events: a point where ``data`` has finite ``lon`` and ``lat``, data as JSON."""
    import geopandas as gpd
    from shapely.geometry import Point

    rows, geoms = [], []
    for e in events:
        d = e.data or {}
        lon, lat = d.get("lon"), d.get("lat")
        ok = all(isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
                 for v in (lon, lat))
        geoms.append(Point(float(lon), float(lat)) if ok else None)
        rows.append({"time_s": float(e.time_s), "wall_time": e.wall_time.isoformat(), "kind": e.kind,
                     "source": e.source, "severity": str(getattr(e.severity, "value", e.severity)),
                     "message": e.message, "data": json.dumps(d, ensure_ascii=False, default=str)})
    cols = ["time_s", "wall_time", "kind", "source", "severity", "message", "data"]
    return gpd.GeoDataFrame(rows, columns=cols, geometry=geoms, crs="EPSG:4326")


def write_events_table(events, path: Path) -> Path:
    """``events.parquet`` (GeoParquet) of :func:`events_table`."""
    events_table(events).to_parquet(path, index=False)
    return path


# ----------------------------------------------------------------------------- field formats
def _fields(out: Path):
    """``fields.nc`` of the run in ``out``, loaded and closed, its NetCDF encodings dropped."""
    import xarray as xr

    from scenarios.runner import FIELDS_NAME

    with xr.open_dataset(out / FIELDS_NAME) as opened:
        ds = opened.load()
    for v in ds.variables.values():
        v.encoding = {}
    return ds


def write_zarr(out: Path) -> Path:
    """``fields.zarr``: the run's ``fields.nc`` as a Zarr store (the same values, coordinates and attrs).

    Zarr format 2 with consolidated metadata: what every Zarr reader opens in one
    request (zarr-python 2 and 3, GDAL; format 3 does not standardise consolidation yet).
    Read it with ``xarray.open_zarr``; an existing store of that name is replaced.
    """
    path = Path(out) / ZARR_NAME
    _fields(Path(out)).to_zarr(path, mode="w", zarr_format=2, consolidated=True)
    return path


def _zarr_paths(out: Path) -> dict[str, Path]:
    return {"fields_zarr": write_zarr(out)}


def worst_over_time(da):
    """The worst value of a (time, y, x) field at each cell: max, or min for :data:`GEOTIFF_MIN`.

    NaN frames are skipped (``numpy.fmax``/``fmin``); a cell NaN in every frame stays NaN.
    """
    values = np.asarray(da.values)
    reduce = np.fmin if da.name in GEOTIFF_MIN else np.fmax
    return reduce.reduce(values, axis=0)


def write_geotiffs(out: Path) -> dict[str, Path]:
    """Per field of ``fields.nc`` with a time axis, its worst value over the run as a GeoTIFF with CRS.

    ``<field>_max.tif`` (``<field>_min.tif`` for :data:`GEOTIFF_MIN`), in the run's
    CRS and transform, units and a long name saying what was reduced; written by
    :func:`gis.raster.write_geotiff`. Returns ``{"geotiff:<file stem>": path}``.
    """
    from affine import Affine

    from gis.raster import make_grid, write_geotiff

    out = Path(out)
    ds = _fields(out)
    transform = Affine(*(float(v) for v in ds.attrs["transform"][:6]))
    paths: dict[str, Path] = {}
    for name, da in ds.data_vars.items():
        if da.dims != ("time", "y", "x") or da.dtype.kind not in "fiub":
            continue
        how = "min" if name in GEOTIFF_MIN else "max"
        values = worst_over_time(da)
        if values.dtype == np.bool_:
            values = values.astype(np.uint8)
        grid = make_grid(values, transform, ds.attrs["crs"], name=f"{name}_{how}",
                         units=str(da.attrs.get("units", "")),
                         long_name=f"{how}imum over the run of {da.attrs.get('long_name', name)}")
        stem = f"{name}_{how}"
        paths[f"geotiff:{stem}"] = write_geotiff(grid, out / f"{stem}.tif")
    return paths


# ----------------------------------------------------------------------------- KPIs
def headline_kpis(run, out: Path) -> dict[str, Any]:
    """The headline KPIs: from the couplings' summaries (:data:`KPI_KEYS`), else from fields and events.

    Returns ``{kpi: {"value": number, "from": coupling name or "fields.nc" or "events"}}``.
    """
    kpis: dict[str, Any] = {}
    for kpi, keys in KPI_KEYS.items():
        for c in reversed(run.order):
            s = run.contexts[c.name].summary
            v = next((v for v in (_dotted(s, k) for k in keys) if _number(v)), None)
            if v is not None:
                kpis[kpi] = {"value": float(v), "from": c.name}
                break
    kpis.update({k: v for k, v in _field_kpis(run, out).items() if k not in kpis})
    if "incidents" not in kpis:
        n = sum(1 for e in run.state.events if e.kind == "incident")
        if n:
            kpis["incidents"] = {"value": float(n), "from": "events"}
    return kpis


def _dotted(d: dict, key: str) -> Any:
    for part in key.split("."):
        d = d.get(part) if isinstance(d, dict) else None
    return d


def _number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _field_kpis(run, out: Path) -> dict[str, Any]:
    import xarray as xr

    from scenarios.runner import FIELDS_NAME

    kpis: dict[str, Any] = {}
    with xr.open_dataset(out / FIELDS_NAME) as ds:
        cell = float(run.config.resolution_m) ** 2
        if "max_water_depth" in ds:
            last = np.asarray(ds["max_water_depth"].isel(time=-1).values)
            kpis["flooded_area_m2"] = {"value": float(np.count_nonzero(last >= FLOODED_M) * cell),
                                       "from": FIELDS_NAME}
        if "factor_of_safety" in ds:
            fs = np.asarray(ds["factor_of_safety"].values)
            low = np.isfinite(fs) & (fs < 1.0)
            kpis["cells_fs_below_1"] = {"value": float(np.count_nonzero(low.any(axis=0))),
                                        "from": FIELDS_NAME}
    return kpis


def kpi_lines(kpis: dict[str, Any]) -> list[str]:
    """``label: value unit`` lines of the KPIs (for the command line)."""
    out = []
    for k, v in kpis.items():
        label, unit, scale = KPI_LABELS.get(k, (k, "", 1.0))
        out.append(f"{label}: {_fmt(v['value'] * scale)}{(' ' + unit) if unit else ''}")
    return out


def _fmt(v: float) -> str:
    if float(v).is_integer() and abs(v) < 1e12:
        return f"{int(v):,}"
    return f"{v:,.3g}" if abs(v) < 1000 else f"{v:,.0f}"


# ----------------------------------------------------------------------------- report
def write_report(run, out: Path, tr: Any, problems: list[str]) -> Path:
    """``report.html``: the scenario, KPIs, the run, the schedule, couplings' sections, events, notes."""
    from viz.offline import assert_offline
    from viz.report import report_page

    sc = tr.scenario
    sections = [_overview(sc, run.summary.get("kpis", {})), _run_section(run, tr), _schedule(run, tr)]
    for c in run.order:
        if c.report is None:
            continue
        try:
            sections += [str(s) for s in c.report(run.contexts[c.name]) or []]
        except Exception as exc:  # noqa: BLE001
            problems.append(f"{c.name}.report: {type(exc).__name__}: {exc}")
    sections.append(_events_section(run))
    sections.append(_notes("Sources", sc.sources))
    sections.append(_notes("Assumptions", sc.assumptions))
    sections.append(_couplings_summary(run))
    if problems:
        items = "".join(f"<li>{html.escape(p)}</li>" for p in problems)
        sections.append(f"<section><h2>Output problems</h2><ul class=\"warn\">{items}</ul></section>")
    page = report_page(sc.title, f"scenario {sc.name} · seed {sc.seed}", sections,
                       "Shenzhen Twin · coupled scenario run · this page loads nothing from the network")
    assert_offline(page)
    path = out / REPORT_NAME
    path.write_text(page, encoding="utf-8")
    return path


def _table(head: list[str] | None, rows: list[list[Any]]) -> str:
    """An HTML table of escaped cells; without ``head``, the first column is the row's header."""
    if head is None:
        body = "".join(f"<tr><th>{html.escape(str(r[0]))}</th>"
                       + "".join(f"<td>{html.escape(str(c))}</td>" for c in r[1:]) + "</tr>" for r in rows)
        return f"<table><tbody>{body}</tbody></table>"
    th = "".join(f"<th>{html.escape(str(h))}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>"


def _overview(sc: Any, kpis: dict[str, Any]) -> str:
    cards = "".join(
        f"<div class=\"card\"><b>{html.escape(_fmt(v['value'] * KPI_LABELS.get(k, (k, '', 1.0))[2]))}"
        f" {html.escape(KPI_LABELS.get(k, (k, '', 1.0))[1])}</b>"
        f"<span>{html.escape(KPI_LABELS.get(k, (k, '', 1.0))[0])} · {html.escape(v['from'])}</span></div>"
        for k, v in kpis.items())
    desc = "".join(f"<p>{html.escape(p.strip())}</p>" for p in sc.description.split("\n\n") if p.strip())
    return (f"<section><h2>Scenario</h2>{desc}"
            + (f"<div class=\"cards\">{cards}</div>" if cards else "<p class=\"note\">No KPI reported.</p>")
            + "</section>")


def _run_section(run, tr: Any) -> str:
    cfg, s = run.config, run.summary
    rows = [["scenario", tr.scenario.name], ["start", cfg.start],
            ["simulated", f"{cfg.duration_s / 3600:g} h of the scenario's {tr.scenario.time.hours:g} h"],
            ["grid", f"{cfg.resolution_m:g} m cells, {s['grid']['shape'][0]} × {s['grid']['shape'][1]}, "
                     f"{_where(cfg, s)}"],
            ["frames", f"{s['frames']} every {cfg.output_every_s / 60:g} min"],
            ["seed", cfg.seed], ["config sha256", s["config_sha256"]],
            ["scenario hash", run.manifest_extra.get("scenario_hash", "")]]
    if s.get("resumed_from_s") is not None:
        rows.append(["resumed from", f"{s['resumed_from_s']:g} s"])
    return "<section><h2>Run</h2>" + _table(None, rows) + "</section>"


def _where(cfg, summary: dict[str, Any]) -> str:
    """The run's area in words: its districts, its bbox/polygon area (the grid's label), or the whole city."""
    if cfg.districts:
        return ", ".join(cfg.districts)
    if getattr(cfg, "area", None):
        return f"{summary['grid'].get('label') or cfg.area} (+{cfg.buffer_m:g} m)"
    return "whole city"


def _schedule(run, tr: Any) -> str:
    rows = [[i + 1, c.name, c.phase, f"{run.periods[c.name]:g} s", ", ".join(c.reads) or "–",
             ", ".join(c.optional_reads) or "–", ", ".join(c.writes) or "–", tr.reasons.get(c.name, "given")]
            for i, c in enumerate(run.order)]
    return ("<section><h2>Schedule</h2><p class=\"note\">At each instant the couplings due run in this "
            "order: by phase (forcing, physics, consequences, response), then writers before readers "
            "(of reads and of reads when present).</p>"
            + _table(["#", "coupling", "phase", "period", "reads", "reads when present", "writes", "why"], rows)
            + "</section>")


def _events_section(run) -> str:
    counts: dict[str, int] = {}
    for e in run.state.events:
        counts[e.kind] = counts.get(e.kind, 0) + 1
    rows = [[k, n] for k, n in sorted(counts.items())]
    return "<section><h2>Events</h2>" + (_table(["kind", "count"], rows) if rows
                                          else "<p class=\"note\">No events.</p>") + "</section>"


def _notes(title: str, notes) -> str:
    if not notes:
        return f"<section><h2>{title}</h2><p class=\"note\">None given.</p></section>"
    return f"<section><h2>{title}</h2>" + _table(["about", "text"], [[n.about, n.text] for n in notes]) \
        + "</section>"


def _couplings_summary(run) -> str:
    rows = []

    def walk(prefix: str, v: Any) -> None:
        if isinstance(v, dict):
            for k, x in v.items():
                walk(f"{prefix}.{k}", x)
        else:
            text = f"{v:.4g}" if isinstance(v, float) else str(v)
            rows.append([prefix, text if len(text) <= 200 else text[:200] + " …"])

    for c in run.order:
        walk(c.name, run.contexts[c.name].summary)
    return "<section><h2>Couplings' summaries</h2>" + _table(["entry", "value"], rows) + "</section>"


# ----------------------------------------------------------------------------- map
#: Field of the state -> how the map draws it: (label, units, colour ramp: depth, fs or runout).
FIELD_LAYERS: dict[str, tuple[str, str, str]] = {
    "water_depth": ("Water depth", "m", "depth"),
    "factor_of_safety": ("Factor of safety", "", "fs"),
    "debris_depth": ("Debris depth", "m", "runout"),
}


def _ramp(which: str):
    from viz.layers.flood_depth import DEPTH_RAMP
    from viz.layers.slope import FS_CLASSES, RUNOUT_RAMP

    return {"depth": DEPTH_RAMP, "fs": FS_CLASSES, "runout": RUNOUT_RAMP}[which]


def field_layer(da, name: str, *, warp, layer_id: str | None = None):
    """One framed raster layer of a field ``da`` (time, y, x) of ``fields.nc`` (:data:`FIELD_LAYERS`)."""
    from viz.layers import build
    from viz.layers._raster import raster_frame, raster_layer
    from viz.layers.flood_depth import time_label
    from viz.scene import LayerSet

    label, units, which = FIELD_LAYERS[name]
    layer_id = layer_id or f"field_{name}"
    times = [float(t) for t in da["time"].values]
    if which == "depth":
        return build("flood_depth", da, max_frames=max(2, len(times)), warp=warp, layer_id=layer_id,
                     label=label)
    ramp = _ramp(which)
    opts = {"units": units, "name": label, "step": 0.01, "nodata_text": "not modelled"}
    patches = [raster_frame(warp(v), ramp, **opts) for v in np.asarray(da.values)]
    layer = raster_layer(layer_id, warp(np.asarray(da.values[0])), ramp, warp.bounds, **opts)
    return LayerSet(layers=[layer], legends=[ramp.legend(layer_id, label, units)], label=label,
                    times_s=times, labels=[time_label(t) for t in times],
                    frames={layer_id: [{}] + patches[1:]}, bounds=warp.bounds)


def _accept(sets, times: list[float], who: str, problems: list[str], resampled: list[str]) -> list:
    """The layer sets that can go on the run's slider; sets on other frame times are resampled."""
    from viz.scene import LayerSet

    ok = []
    for s in sets or []:
        if not isinstance(s, LayerSet):
            problems.append(f"{who}.layers: {type(s).__name__} is not a viz.scene.LayerSet")
        elif s.frames and (s.times_s is None or len(s.times_s) != len(times)
                           or not np.allclose(s.times_s, times, rtol=0, atol=1e-6)):
            if not s.times_s:
                problems.append(f"{who}.layers: {s.label or s.layer_ids()} has frames but no times_s: "
                                "left off the map")
                continue
            ok.append(resample(s, times))
            resampled.append(f"{who}: {s.label or s.layer_ids()} ({len(s.times_s)} frames)")
        else:
            ok.append(s)
    return ok


def resample(s, times: list[float]):
    """A framed layer set put on other frame times: each time shows the set's last frame at or before it.

    A frame patch replaces its layer's props for that frame (frame 0's is often
    ``{}``: the layer as built), so picking patches is exact for what each frame
    showed; a time before the set's first frame shows its first.
    """
    import dataclasses

    own = np.asarray(s.times_s, float)
    pick = [max(0, int(np.searchsorted(own, t + 1e-6, side="right")) - 1) for t in times]
    frames = {lid: [patches[k] for k in pick] for lid, patches in s.frames.items()}
    initial = None
    if s.initial_frame is not None:
        initial = next((i for i, k in enumerate(pick) if k >= s.initial_frame), len(times) - 1)
    return dataclasses.replace(s, times_s=list(times), labels=None, frames=frames, initial_frame=initial)


def map_scene(run, out: Path, tr: Any, problems: list[str]):
    """The run's one-slider :class:`viz.scene.Scene` (module docstring)."""
    import xarray as xr

    from scenarios.runner import FIELDS_NAME
    from viz.citymap import view_for_bounds
    from viz.layers import build
    from viz.layers._raster import MercatorWarp
    from viz.layers.basemap import grid_basemap_inputs
    from viz.scene import Scene

    with xr.open_dataset(out / FIELDS_NAME) as opened:
        ds = opened.load()
    ds.attrs["transform"] = tuple(float(v) for v in ds.attrs["transform"])[:6]
    times = [float(t) for t in ds["time"].values]
    warp = MercatorWarp.for_grid(ds)
    scene = Scene(title=tr.scenario.title)
    vec = _city_vectors(run.config.city, problems)
    shade, water = grid_basemap_inputs(ds)
    scene.add(build("basemap", shade, water=water, districts=vec.get("districts"), coast=vec.get("coast")))
    own, drawn_by, resampled = [], {}, []
    for c in run.order:
        if c.layers is None:
            continue
        try:
            sets = _accept(c.layers(run.contexts[c.name], list(times)), times, c.name, problems, resampled)
        except Exception as exc:  # noqa: BLE001
            problems.append(f"{c.name}.layers: {type(exc).__name__}: {exc}")
            continue
        own += sets
        if any(s.frames for s in sets):
            drawn_by.update({w: c.name for w in c.writes})
    fields = []
    for name in FIELD_LAYERS:
        if name in ds and "time" in ds[name].dims and name not in drawn_by:
            da = ds[name].copy(deep=False)
            da.attrs = {**da.attrs, "crs": ds.attrs["crs"], "transform": ds.attrs["transform"]}
            fields.append(field_layer(da, name, warp=warp))
    ids = {i for s in scene.sets for i in s.layer_ids()}
    for s in fields + own:
        dup = ids & set(s.layer_ids())
        if dup:
            problems.append(f"map: layer id(s) {sorted(dup)} drawn twice: the second is left off")
            continue
        ids |= set(s.layer_ids())
        scene.add(s)
    v = view_for_bounds(*warp.bounds)
    scene.view = {"longitude": v.longitude, "latitude": v.latitude, "zoom": v.zoom}
    for c in run.order:
        if c.map_view is not None:
            try:
                scene.view = dict(c.map_view(run.contexts[c.name], dict(scene.view)))
            except Exception as exc:  # noqa: BLE001 - the grid's view stays
                problems.append(f"{c.name}.map_view: {type(exc).__name__}: {exc}")
    scene.resampled = resampled
    return scene


def _city_vectors(city: str, problems: list[str]) -> dict:
    try:
        from viz.flood_map import _city_layers

        return _city_layers(city)
    except Exception as exc:  # noqa: BLE001 - the map still draws without district outlines
        problems.append(f"map: city outlines left off ({type(exc).__name__}: {exc})")
        return {}


def write_map(run, out: Path, tr: Any, problems: list[str]) -> dict[str, Any]:
    """Write ``map.html``; returns ``{"path", "bytes", "frames", "layers"}``."""
    from viz.page import write_page

    scene = map_scene(run, out, tr, problems)
    js = scene.to_json()
    path = write_page(js, out / MAP_NAME, title=scene.title)
    tl = js.get("timeline")
    return {"path": path, "bytes": path.stat().st_size, "frames": len(tl["times_s"]) if tl else 0,
            "layers": [t["label"] for t in js.get("toggles", [])], "resampled": scene.resampled}


__all__ = ["EVENTS_PARQUET", "FIELD_LAYERS", "GEOTIFF_MIN", "KPI_KEYS", "MAP_NAME", "REPORT_NAME", "ZARR_NAME",
           "events_table", "worst_over_time", "write_geotiffs", "write_zarr",
           "field_layer", "headline_kpis", "kpi_lines", "map_scene", "scenario_outputs", "write_events_table",
           "write_coupling_files", "write_map", "write_outputs", "write_report", "write_table", "write_tables"]
