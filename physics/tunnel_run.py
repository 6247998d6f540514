"""Run kind ``tunnel_forecast`` (``twin tunnel forecast``): construction vibration at metro tunnel linings.

Registered with :func:`twin.runkinds.register_kind` on import (top-level imports kept light). A run reads a
construction plan (GeoJSON points, see :func:`physics.tunnel_vibration.read_sources`), builds the tunnels of
the chosen metro lines (:func:`physics.tunnel_geometry.build_tunnels`), forecasts the PPV at every segment's
lining (:func:`physics.tunnel_vibration.forecast_vibration`) and writes

* ``tunnel_forecast.nc``: the forecast dataset (dims ``segment``, ``source``);
* ``segments.geojson`` and ``segments.parquet`` (GeoParquet): one LineString per segment in WGS 84 (the chord
  from its start to its end) with line, chainage, depth, diameter, PPV, source, frequency, limit, ratio;
* ``ppv_table.csv``: the segments with PPV above 1 % of their limit, worst first;
* ``sources.csv``: per source its nearest line and chainage, distance to the lining, largest PPV, limit, safe
  distance and (blasting) largest charge per delay;
* ``summary.json``, ``report.html`` and ``map.html`` (via the pipeline; layers of :mod:`viz.layers.tunnel`).

The alignments are approximate (straight between stations): every output says so.
"""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from twin.runkinds import RunContext, RunKind, RunOutputs, register_kind

KIND = "tunnel_forecast"
OUTPUT = "tunnel_forecast.nc"
TABLE_MIN_RATIO = 0.01
#: The packaged example plan near Line 1 (invented for the demo): the console form's default.
EXAMPLE_PLAN = Path(__file__).with_name("data") / "tunnel_examples" / "line1_construction_plan.geojson"


class TunnelOverrideSpec(BaseModel):
    """Depth and/or diameter of one line over a chainage range (:class:`physics.tunnel_geometry.TunnelOverride`)."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)

    line: str
    depth_m: float | None = Field(default=None, gt=0.0, le=200.0, allow_inf_nan=False)
    diameter_m: float | None = Field(default=None, gt=0.0, le=30.0, allow_inf_nan=False)
    chainage_from_m: float = Field(default=0.0, ge=0.0, allow_inf_nan=False)
    chainage_to_m: float = Field(default=1.0e9, gt=0.0, allow_inf_nan=False)


class TunnelForecastConsoleRequest(BaseModel):
    """What the console's form may send: the plan, the lines, the limit set, the segment length, a time.

    Attributes
    ----------
    sources : str
        GeoJSON FeatureCollection of construction sources (Points, lon/lat); default: the packaged
        example plan near Line 1 (:data:`EXAMPLE_PLAN`, invented for the demo).
    lines : list of str or None
        Metro lines to check (None: every line), e.g. ``["1", "Line 2"]``.
    limits : {"operating", "construction"}
        Limit set of ``tunnel_limits.toml``.
    segment_m : float
        Segment length (m).
    at : str or None
        Only the sources working at this time (ISO 8601 with zone); None: all of them.
    """

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)

    sources: str = Field(default=str(EXAMPLE_PLAN), description="Construction sources (GeoJSON points)")
    lines: list[str] | None = Field(default=None, min_length=1, max_length=40, description="Metro lines (none: all)")
    limits: str = Field(default="operating", pattern="^(operating|construction)$", description="Limit set")
    segment_m: float = Field(default=50.0, ge=5.0, le=1000.0, allow_inf_nan=False, description="Segment length (m)")
    at: str | None = Field(default=None, description="Only sources working at this time (ISO 8601 with zone)")

    @field_validator("at")
    @classmethod
    def _at(cls, v: str | None) -> str | None:
        if v is not None:
            t = datetime.fromisoformat(v)
            if t.tzinfo is None:
                raise ValueError("give a time zone, e.g. 2026-12-08T10:00+08:00")
        return v


class TunnelForecastRequest(TunnelForecastConsoleRequest):
    """Every parameter of a forecast (``twin tunnel forecast --help``): the console's plus

    Attributes
    ----------
    limits_file : str or None
        A table of the same layout as ``physics/tunnel_limits.toml``.
    events : str or None
        A DAS events GeoJSON to draw on the map (``tunnel_das_events``).
    depth_m, diameter_m : float or None
        Axis depth and outer diameter of every segment (None: the table's ``[tunnel]`` defaults).
    overrides : list of TunnelOverrideSpec or None
        Per line and chainage range, applied in order after the defaults.
    """

    limits_file: str | None = Field(default=None, description="Limits table TOML (default tunnel_limits.toml)")
    events: str | None = Field(default=None, description="DAS events GeoJSON drawn on the map")
    depth_m: float | None = Field(default=None, gt=0.0, le=200.0, allow_inf_nan=False,
                                  description="Depth of every tunnel axis (m; default tunnel_limits.toml, 15)")
    diameter_m: float | None = Field(default=None, gt=0.0, le=30.0, allow_inf_nan=False,
                                     description="Outer diameter of every tunnel (m; default tunnel_limits.toml, 6)")
    overrides: list[TunnelOverrideSpec] | None = Field(default=None, max_length=500,
                                                       description="Depth/diameter by line and chainage range")


def check_forecast(req: TunnelForecastRequest, city: Any = None) -> None:
    """Read and validate the sources, the limits table and the events file before anything runs."""
    from physics.tunnel_vibration import load_table, read_sources
    from twin.errors import RequestError, ValidationError

    for name in ("sources", "limits_file", "events"):
        v = getattr(req, name)
        if v is not None and not Path(v).is_file():
            raise RequestError(f"{name} = {v!r}: no such file", field=name, value=v)
    try:
        table = load_table(req.limits_file)
    except ValidationError as exc:
        raise RequestError(str(exc), field="limits_file", value=req.limits_file) from None
    if req.limits not in table["limits"]:
        raise RequestError(f"limits = {req.limits!r}: not in the table ({sorted(table['limits'])})",
                           field="limits", value=req.limits)
    if req.lines and req.overrides:
        from physics.tunnel_geometry import line_key

        chosen = {line_key(v) for v in req.lines}
        for o in req.overrides:
            if line_key(o.line) not in chosen:
                raise RequestError(f"overrides line = {o.line!r}: not among the lines checked ({req.lines})",
                                   field="overrides", value=o.line)
    try:
        read_sources(req.sources, table=table)
    except ValidationError as exc:
        raise RequestError(str(exc), field="sources", value=req.sources) from None


def run_forecast(req: TunnelForecastRequest, ctx: RunContext):
    """Build the tunnels and forecast the PPV per segment; progress per block of sources."""
    from physics.tunnel_geometry import build_tunnels
    from physics.tunnel_vibration import forecast_vibration

    city = ctx.city if ctx.city is not None else None
    tunnels = build_tunnels(city, select=req.lines, segment_m=req.segment_m, depth_m=req.depth_m,
                            diameter_m=req.diameter_m, overrides=[o.model_dump() for o in req.overrides or ()])
    ctx.report(0.0, 1.0, phase_detail="tunnels built", segments=tunnels.n_segments)
    ds = forecast_vibration(req.sources, tunnels=tunnels, limits=req.limits, limits_file=req.limits_file,
                            at=None if req.at is None else datetime.fromisoformat(req.at),
                            progress=lambda done, total: ctx.report(done, total))
    ds.attrs["sources_file"] = str(req.sources)
    if req.events:
        ds.attrs["events_geojson"] = str(Path(req.events).resolve())
    return ds


def summarise(ds) -> dict[str, Any]:
    """Counts, worst segment and per-source figures of a forecast (``summary.json``)."""
    import json

    import numpy as np

    ratio = ds["ratio"].values
    k = int(np.argmax(ratio)) if ratio.size else -1
    sid = ds["source_id"].values
    worst = None
    if k >= 0 and ds["source_index"].values[k] >= 0:
        worst = {"line": str(ds["line"].values[k]), "chainage_start_m": round(float(ds["chainage_start_m"][k]), 1),
                 "chainage_end_m": round(float(ds["chainage_end_m"][k]), 1),
                 "ppv_cm_s": float(ds["ppv_cm_s"][k]), "limit_cm_s": float(ds["limit_cm_s"][k]),
                 "ratio": float(ratio[k]), "source": str(sid[int(ds["source_index"][k])])}
    over = ds["over_limit"].values
    per_source = []
    for i in range(ds.sizes["source"]):
        q = float(ds["max_charge_kg"].values[i])
        per_source.append({
            "id": str(sid[i]), "type": str(ds["source_type"].values[i]), "active": bool(ds["active"].values[i]),
            "nearest_line": str(ds["nearest_line"].values[i]),
            "nearest_chainage_m": round(float(ds["nearest_chainage_m"].values[i]), 1),
            "in_protection_zone": bool(ds["in_zone"].values[i]),
            "min_distance_m": round(float(ds["min_distance_m"].values[i]), 2),
            "ppv_max_cm_s": float(ds["ppv_max_cm_s"].values[i]),
            "limit_cm_s": float(ds["source_limit_cm_s"].values[i]),
            "safe_distance_m": round(float(ds["safe_distance_m"].values[i]), 2),
            "max_charge_kg": None if not np.isfinite(q) else round(q, 3),
            "segments_over_limit": int(np.sum(over & (ds["source_index"].values == i))),
        })
    return {
        "limits": ds.attrs["limits"], "limits_title": ds.attrs["limits_title"],
        "lines": json.loads(ds.attrs["lines"]), "segments": int(ds.sizes["segment"]),
        "sources": int(ds.sizes["source"]), "sources_active": int(ds.attrs["n_active"]),
        "segments_over_limit": int(over.sum()), "max_ratio": float(ratio.max(initial=0.0)),
        "segments_over_half_limit": int(np.sum(ratio >= 0.5)), "worst_segment": worst,
        "per_source": per_source, "alignment": ds.attrs["alignment"],
        "protection_m": float(ds.attrs["protection_m"]), "warnings": json.loads(ds.attrs["warnings"]),
    }


def write_forecast(ds, out_dir, req: TunnelForecastRequest, ctx: RunContext) -> RunOutputs:
    """tunnel_forecast.nc, segments.geojson/.parquet, ppv_table.csv, sources.csv; the summary."""
    from physics.tunnel_vibration import segments_frame, sources_frame

    out = Path(out_dir)
    paths: dict[str, Path] = {}
    ds.to_netcdf(out / OUTPUT)
    paths["forecast"] = out / OUTPUT
    seg = segments_frame(ds)
    seg.to_file(out / "segments.geojson", driver="GeoJSON")
    paths["segments"] = out / "segments.geojson"
    seg.to_parquet(out / "segments.parquet")
    paths["segments_parquet"] = out / "segments.parquet"
    table = seg[seg["ratio"] >= TABLE_MIN_RATIO].drop(columns="geometry").sort_values("ratio", ascending=False)
    with open(out / "ppv_table.csv", "w", encoding="utf-8", newline="") as fh:
        fh.write(f"# PPV at the tunnel lining per segment with ratio >= {TABLE_MIN_RATIO}; limits "
                 f"{ds.attrs['limits']}; {ds.attrs['alignment']}\n")
        table.to_csv(fh, index=False, float_format="%.6g")
    paths["ppv_table"] = out / "ppv_table.csv"
    sources_frame(ds).drop(columns="geometry").to_csv(out / "sources.csv", index=False, float_format="%.6g")
    paths["sources"] = out / "sources.csv"
    return RunOutputs(paths=paths, summary=summarise(ds))


def tunnel_layers(ds, *, warp=None, max_px: int | None = None) -> list:
    """The run's map layers (:func:`viz.layers.tunnel.tunnel_layers`)."""
    from viz.layers.tunnel import tunnel_layers as layers

    return layers(ds, warp=warp, max_px=max_px)


def report_sections(ds, summary: dict, ctx: RunContext | None = None) -> list[str]:
    """Two tables: the sources (safe distance, max charge) and the segments over the limit."""
    import html

    def table(head: list[str], rows: list[list[Any]]) -> str:
        th = "".join(f"<th>{html.escape(h)}</th>" for h in head)
        body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>" for r in rows)
        return f"<table><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>"

    s = summary
    intro = (f"<p>{s['segments']} segments of lines {', '.join(s['lines'])}, {s['sources']} sources "
             f"({s['sources_active']} active), limits <b>{html.escape(s['limits_title'])}</b>: "
             f"<b>{s['segments_over_limit']}</b> segments over the limit, largest PPV/limit "
             f"{s['max_ratio']:.2f}. {html.escape(s['alignment'])}.</p>")
    src = table(["source", "type", "line", "chainage (m)", "in zone", "distance to lining (m)", "PPV max (cm/s)",
                 "limit (cm/s)", "safe distance (m)", "max charge (kg)", "segments over"],
                [[p["id"], p["type"], p["nearest_line"], f"{p['nearest_chainage_m']:,.0f}",
                  "yes" if p["in_protection_zone"] else "no", f"{p['min_distance_m']:.1f}", f"{p['ppv_max_cm_s']:.3g}",
                  f"{p['limit_cm_s']:.3g}", f"{p['safe_distance_m']:.1f}",
                  "–" if p["max_charge_kg"] is None else f"{p['max_charge_kg']:.3g}", p["segments_over_limit"]]
                 for p in s["per_source"]])
    over = ds["over_limit"].values
    sid = ds["source_id"].values
    rows = [[str(ds["line"].values[k]), f"{float(ds['chainage_start_m'][k]):,.0f}–{float(ds['chainage_end_m'][k]):,.0f}",
             f"{float(ds['ppv_cm_s'][k]):.3g}", f"{float(ds['f_hz'][k]):.0f}", f"{float(ds['limit_cm_s'][k]):.3g}",
             f"{float(ds['ratio'][k]):.2f}", str(sid[int(ds['source_index'][k])])]
            for k in sorted(over.nonzero()[0], key=lambda k: -float(ds["ratio"][k]))[:200]]
    seg = table(["line", "chainage (m)", "PPV (cm/s)", "f (Hz)", "limit (cm/s)", "ratio", "source"], rows) \
        if rows else "<p>No segment over the limit.</p>"
    warn = "".join(f"<li>{html.escape(w)}</li>" for w in s["warnings"])
    return [f"<section><h2>Forecast</h2>{intro}{'<ul>' + warn + '</ul>' if warn else ''}</section>",
            f"<section><h2>Sources</h2>{src}</section>",
            f"<section><h2>Segments over the limit</h2>{seg}</section>"]


def describe(params: dict[str, Any]) -> str:
    lines = ", ".join(params.get("lines") or []) or "all lines"
    return f"{Path(str(params.get('sources', '?'))).name} on {lines}, {params.get('limits', 'operating')} limits"


_OVERRIDE = re.compile(r"^\s*(?P<line>[^:]+?)\s*(?::\s*(?P<c0>[0-9.]+)\s*-\s*(?P<c1>[0-9.]+))?\s*:"
                       r"(?P<kv>\s*[a-z_]+\s*=\s*[0-9.]+\s*(?:,\s*[a-z_]+\s*=\s*[0-9.]+\s*)*)$")


def parse_override(text: str) -> dict[str, Any]:
    """``"1:8000-9500:depth=22,diameter=6.2"`` -> a :class:`TunnelOverrideSpec` dict; a bad one is a usage error."""
    import click

    m = _OVERRIDE.match(text)
    if m is None:
        raise click.BadParameter(f"{text!r}: give LINE[:FROM-TO]:depth=D[,diameter=D], e.g. 1:8000-9500:depth=22",
                                 param_hint="--override")
    out: dict[str, Any] = {"line": m["line"]}
    if m["c0"] is not None:
        out["chainage_from_m"], out["chainage_to_m"] = float(m["c0"]), float(m["c1"])
    for part in m["kv"].split(","):
        key, val = (p.strip() for p in part.split("="))
        if key not in ("depth", "diameter"):
            raise click.BadParameter(f"{text!r}: {key!r} is not depth or diameter", param_hint="--override")
        out[f"{key}_m"] = float(val)
    return out


def _command():
    import click

    from twin.cli._util import ExistingFile, echo_json, run_output_options, run_store, user_errors

    @click.command("forecast")
    @click.argument("sources", type=ExistingFile("a GeoJSON FeatureCollection of construction sources (Points)"),
                    metavar="SOURCES.geojson")
    @click.option("--line", "lines", multiple=True, metavar="LINE",
                  help="Metro line to check (repeat; e.g. --line 1 --line 2-8); default every line.")
    @click.option("--limits", type=click.Choice(["operating", "construction"]), default="operating",
                  show_default=True, help="Limit set: operating lines (stricter) or GB 6722 traffic tunnel.")
    @click.option("--segment-m", type=click.FloatRange(5.0, 1000.0), default=50.0, show_default=True,
                  help="Segment length along the tunnels (m).")
    @click.option("--limits-file", type=ExistingFile("a TOML table like physics/tunnel_limits.toml"), default=None,
                  help="Your own limits / ground / source-type table.")
    @click.option("--at", default=None, metavar="ISO8601",
                  help="Only the sources working at this time (their start/end); default all of them.")
    @click.option("--events", type=ExistingFile("a GeoJSON of detected DAS events"), default=None,
                  help="Detected DAS events (GeoJSON points with 'class') to draw on the map.")
    @click.option("--depth-m", type=click.FloatRange(0.0, 200.0, min_open=True), default=None,
                  help="Depth of every tunnel axis below ground (m); default 15 (tunnel_limits.toml).")
    @click.option("--diameter-m", type=click.FloatRange(0.0, 30.0, min_open=True), default=None,
                  help="Outer diameter of every tunnel (m); default 6 (tunnel_limits.toml).")
    @click.option("--override", "overrides", multiple=True, metavar="LINE[:FROM-TO]:depth=D[,diameter=D]",
                  help="Depth and/or diameter of one line, optionally over a chainage range in m (repeat), "
                       "e.g. 1:8000-9500:depth=22.")
    @click.option("--city", "city_name", default="shenzhen", show_default=True, metavar="NAME",
                  help="City whose metro lines are the tunnels (and whose basemap the map draws).")
    @run_output_options("tunnel_forecast.nc, segments.geojson, segments.parquet, ppv_table.csv, sources.csv, "
                        "summary.json, report.html, map.html",
                        map_help="Also write map.html (offline; segments coloured by PPV / limit, zone, sources).")
    def forecast(sources, lines, limits, segment_m, limits_file, at, events, depth_m, diameter_m, overrides,
                 city_name, out_dir, with_report, with_map, as_json, store_dir) -> None:
        """Forecast construction vibration (PPV) at the metro tunnel linings and check it against the limits.

        SOURCES.geojson holds Points (lon/lat) with "type" blasting (with "charge_kg" per delay), piling,
        drilling or excavation (optionally "v1_cm_s" at "r1_m", "f_hz"), and optionally "ground"
        (hard_rock, medium_rock, soft_rock, soil), "depth_m", "start"/"end" (ISO 8601 with zone).
        Tunnels follow approximate alignments (straight between stations).

        Example: twin tunnel forecast physics/data/tunnel_examples/line1_construction_plan.geojson
        --line 1 --out runs/tunnel
        """
        from twin import pipeline
        from twin.cli.kinds import ProgressBar, check_request

        params = {"sources": str(sources), "lines": list(lines) or None, "limits": limits, "segment_m": segment_m,
                  "limits_file": None if limits_file is None else str(limits_file), "at": at,
                  "events": None if events is None else str(events), "depth_m": depth_m, "diameter_m": diameter_m,
                  "overrides": [parse_override(o) for o in overrides] or None}
        with user_errors():
            city = None
            if city_name:
                from twin.city import City

                city = City(city_name)
            req = check_request(KIND, params, hints={"sources": "SOURCES"}, city=city)
            with ProgressBar("Tunnel vibration forecast") as bar, run_store(store_dir) as store:
                res = pipeline.run(KIND, req, out_dir, store=store, city=city, progress=bar.update,
                                   report=with_report, map=with_map)
        s = res.summary
        if as_json:
            echo_json(pipeline.clean_json(s))
            return
        click.echo(f"{s['segments']} segments of lines {', '.join(s['lines'])}, {s['sources']} sources; limits "
                   f"{s['limits']}: {s['segments_over_limit']} segments over the limit (largest PPV/limit "
                   f"{s['max_ratio']:.2f})")
        for p in s["per_source"]:
            extra = "" if p["max_charge_kg"] is None else f", max charge {p['max_charge_kg']:.3g} kg/delay"
            click.echo(f"  {p['id']} ({p['type']}): {p['min_distance_m']:.1f} m from line {p['nearest_line']}'s "
                       f"lining, PPV {p['ppv_max_cm_s']:.3g} cm/s (limit {p['limit_cm_s']:.3g}), safe distance "
                       f"{p['safe_distance_m']:.1f} m{extra}")
        click.echo(f"({s['alignment']})")
        click.echo(f"wrote {out_dir}/ ({', '.join(Path(p).name for p in res.paths.values())})")

    return forecast


TUNNEL_FORECAST = register_kind(RunKind(
    name=KIND, title="Tunnel vibration forecast", request=TunnelForecastRequest,
    console_request=TunnelForecastConsoleRequest, run=run_forecast,
    write=write_forecast, layers=tunnel_layers, report_sections=report_sections, output=OUTPUT,
    cli_name="tunnel forecast", command=_command, describe=describe, check=check_forecast,
    summary_keys=("segments_over_limit", "max_ratio", "sources"),
))

__all__ = ["EXAMPLE_PLAN", "TUNNEL_FORECAST", "TunnelForecastConsoleRequest", "TunnelForecastRequest", "TunnelOverrideSpec", "parse_override", "check_forecast", "report_sections", "run_forecast",
           "summarise", "tunnel_layers", "write_forecast"]
