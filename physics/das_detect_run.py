"""The DAS detector's run kind ``tunnel_detect`` (``twin tunnel detect FILE|--live``): events from a fibre record.

Registered with :func:`twin.runkinds.register_kind` on import (top-level imports kept light). A run feeds
:class:`physics.das_detect.DasDetector` chunk by chunk, from a DAS file (:func:`physics.das_io.iter_das`) or, with
``live``, from the simulator (:class:`physics.das_simulate.DasSimulator`) paced at ``speed`` × real time, so only
one chunk is in memory. With ``publish`` every non-train event goes to the bridge's MQTT broker as a ``das_event``
observation as soon as it is reported (:mod:`physics.das_publish`). Events are placed on the map along their metro
line (:meth:`physics.tunnel_geometry.Tunnels.locator`) when the metro data is there; without it they carry chainage
only and the summary says why.

Outputs: ``events.nc`` (one row per event), ``events.csv``, ``events.geojson`` (when placed) and the pipeline's
``summary.json`` (counts per class, detector settings and latency, throughput, and — when the record has a truth
table beside it — the metrics of :func:`physics.das_metrics.evaluate`).
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from twin.runkinds import RunContext, RunKind, RunOutputs, register_kind

KIND = "tunnel_detect"
OUTPUT = "events.nc"
COLUMNS = ("event_class", "confidence", "onset_s", "end_s", "duration_s", "channel", "chainage_m", "length_m",
           "energy", "peak_frequency_hz", "snr_db", "speed_mps", "track_id", "segment", "x", "y", "lon", "lat",
           "offset_m", "inside_zone", "nuisance_site")
#: Yes/no columns: stored in events.nc as 1.0 / 0.0 (NaN: unknown), written as true / false / empty.
BOOL_COLUMNS = ("inside_zone", "nuisance_site")


def _events_frame(ds, line: str = ""):
    """The events of ``events.nc`` as a DataFrame: the line first, yes/no columns as booleans (None: unknown)."""
    import pandas as pd

    df = pd.DataFrame({c: ds[c].values for c in COLUMNS})
    for c in BOOL_COLUMNS:
        df[c] = pd.array([None if not math.isfinite(v) else bool(v) for v in df[c].astype(float)], dtype="boolean")
    df.insert(0, "line", line)
    return df


class DasDetectRequest(BaseModel):
    """A detection run (``twin tunnel detect --help``).

    Attributes
    ----------
    file : str or None
        DAS file (NetCDF, ``twin tunnel simulate``'s ``das.nc``); None with ``live``.
    live : bool
        Detect on the simulator's stream as it is generated (``km``, ``minutes``, ``seed``, ``events``, ``noise``).
    speed : float
        Live pacing: chunks are released at ``speed`` × real time (``inf``: as fast as they come).
    chunk_s : float
        Chunk length (s) fed to the detector.
    publish : str or None
        ``HOST:PORT`` of the MQTT broker of ``twin bridge run``: every non-train event is published there.
    station : str
        The interrogator's station id on the bridge.
    locate : bool
        Place events on the map along their line (needs the metro data).
    truth : str or None
        Truth CSV for the metrics (default: ``<stem>.truth.csv`` beside the file when it exists).
    crossings : {"learned", "map"}
        Road crossings over the tunnel: learned from the passages seen (three at a site), or also known from the
        start where the city's ``roads`` layer crosses the line's centreline (:mod:`physics.das_crossings`).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    file: str | None = Field(default=None, description="DAS file (NetCDF)")
    live: bool = Field(default=False, description="Detect on the simulator's live stream")
    speed: float = Field(default=1.0, gt=0.0, description="Live pacing (x real time; inf: unpaced)")
    chunk_s: float = Field(default=1.0, gt=0.0, le=60.0, allow_inf_nan=False, description="Chunk length (s)")
    km: float = Field(default=2.0, gt=0.0, le=50.0, allow_inf_nan=False, description="Live: fibre length (km)")
    minutes: float = Field(default=10.0, gt=0.0, le=24 * 60.0, allow_inf_nan=False, description="Live: minutes")
    seed: int = Field(default=7, ge=0, description="Live: simulator seed")
    events: int = Field(default=8, ge=0, le=10_000, description="Live: injected events")
    noise: float = Field(default=5e-9, gt=0.0, le=1e-5, allow_inf_nan=False, description="Live: noise density")
    line: str = Field(default="1", min_length=1, max_length=40, description="Live: metro line")
    chainage0_m: float = Field(default=0.0, allow_inf_nan=False, description="Live: chainage of channel 0 (m)")
    start_time: str | None = Field(default=None, description="Live: time of the first sample (ISO 8601 with zone; "
                                   "default: when the run starts)")
    publish: str | None = Field(default=None, description="MQTT broker HOST:PORT to publish das_event messages to")
    station: str = Field(default="DAS-L1", min_length=1, max_length=64, description="Station id on the bridge")
    locate: bool = Field(default=True, description="Place events on the map along the line")
    truth: str | None = Field(default=None, description="Truth CSV for the metrics")
    ratio_on: float = Field(default=5.0, gt=1.0, le=1000.0, allow_inf_nan=False, description="Trigger STA/LTA")
    min_snr_db: float = Field(default=12.0, ge=0.0, le=60.0, allow_inf_nan=False, description="Smallest event SNR")
    crossings: Literal["learned", "map"] = Field(default="learned", description="Road crossings: learned, or also "
                                                 "from the map (roads layer x the line)")


def check_detect(req: DasDetectRequest, city: Any = None) -> None:
    """Exactly one of a file or ``live``; the file exists; a live start time has its zone."""

    from twin.errors import RequestError

    if (req.file is None) == (not req.live):
        raise RequestError("give a DAS FILE or --live (not both, not neither)", field="file", value=req.file)
    if req.file is not None and not Path(req.file).is_file():
        raise RequestError(f"file = {req.file!r}: no such DAS file (write one with `twin tunnel simulate`)",
                           field="file", value=req.file)
    if req.start_time is None:
        return
    from physics.das_sim_run import check_start_time

    check_start_time(req.start_time)


def _source(req: DasDetectRequest):
    """(layout, start datetime, source text, duration_s, iterator of (t0, chunk), truth frame or None)."""
    import datetime as dt

    from physics.das_io import iter_das, read_das_info, read_truth, truth_path

    if req.file is not None:
        info = read_das_info(req.file)
        tp = Path(req.truth) if req.truth else truth_path(req.file)
        truth = read_truth(tp) if tp.is_file() else None
        return info.layout, info.start_time, info.source, info.duration_s, iter_das(req.file, req.chunk_s), truth
    from physics.das_layout import FibreLayout
    from physics.das_simulate import DasSimulator, SimConfig

    n = int(round(req.km * 1000.0))
    layout = FibreLayout(n_channel=n, line=req.line, chainage0_m=req.chainage0_m)
    sim = DasSimulator(layout, req.minutes * 60.0, req.seed, SimConfig(noise_density=req.noise), n_events=req.events)

    def chunks():
        t = 0.0
        for ch in sim.chunks(req.chunk_s):
            yield t, ch
            t += ch.shape[0] / layout.fs_hz

    start = (dt.datetime.fromisoformat(req.start_time) if req.start_time
             else dt.datetime.now(dt.UTC).replace(microsecond=0))
    return (layout, start, f"Shenzhen Twin DAS simulator, seed {req.seed} (live)",
            sim.duration_s, chunks(), sim.truth)


def _locator(layout, want: bool) -> tuple[Any, str]:
    if not want:
        return None, "not asked (--no-locate)"
    try:
        from physics.tunnel_geometry import build_tunnels

        return build_tunnels(select=[layout.line]).locator(layout.line), "tunnel alignment of line " + layout.line
    except Exception as exc:  # no metro data, an unknown line: chainage only, said in the summary
        return None, f"chainage only: {exc}"


def _map_crossings(layout) -> tuple[Any, str]:
    """The fibre's channels under road crossings from the map (:mod:`physics.das_crossings`), and what they are."""
    from physics.das_crossings import crossing_channels, road_crossings
    from physics.tunnel_geometry import build_tunnels

    chainages = road_crossings(build_tunnels(select=[layout.line]), layout.line)
    channels = crossing_channels(layout, chainages)
    return channels, (f"map: {len(channels)} of the {len(chainages)} road crossings of line {layout.line} "
                      "(city roads layer) on the fibre")


def run_detect(req: DasDetectRequest, ctx: RunContext):
    """Detect events chunk by chunk (paced and published when asked); a Dataset with one row per event."""
    import numpy as np
    import pandas as pd
    import xarray as xr

    from physics.das_detect import DasDetector, DetectorParams, bands_for_rate

    layout, start, source, duration, chunks, truth = _source(req)
    locate, placed = _locator(layout, req.locate)
    params = DetectorParams(ratio_on=req.ratio_on, min_snr_db=req.min_snr_db, bands=bands_for_rate(layout.fs_hz))
    sites, crossings = (_map_crossings(layout) if req.crossings == "map"
                        else (None, "learned (three passages at a site)"))
    det = DasDetector(layout, params, locate=locate, known_sites=sites)
    pub = None
    if req.publish:
        from physics.das_publish import DasPublisher

        pub = DasPublisher(req.publish, station=req.station, start_time=start, dx_m=layout.dx_m, line=layout.line)
    events, busy, wall0, n_pub = [], 0.0, time.perf_counter(), 0
    paced = req.live and math.isfinite(req.speed)
    try:
        for t0, chunk in chunks:
            if paced:  # a chunk is released once its last sample is due
                due = wall0 + (t0 + chunk.shape[0] / layout.fs_hz) / req.speed
                time.sleep(max(0.0, due - time.perf_counter()))
            tb = time.perf_counter()
            new = det.push(t0, chunk)
            if pub is not None and new:
                n_pub += pub.publish(new)
            busy += time.perf_counter() - tb
            events.extend(new)
            ctx.report(t0 + chunk.shape[0] / layout.fs_hz, duration, events=len(events))
        new = det.flush()
        if pub is not None and new:
            n_pub += pub.publish(new)
        events.extend(new)
    finally:
        if pub is not None:
            pub.close()
    wall = time.perf_counter() - wall0
    df = pd.DataFrame([e.as_row() for e in events], columns=list(COLUMNS))
    for c in BOOL_COLUMNS:
        df[c] = [np.nan if v is None else float(v) for v in df[c]]
    ds = xr.Dataset({c: ("event", df[c].to_numpy(dtype=str if c == "event_class" else float)) for c in COLUMNS},
                    coords={"event": np.arange(len(df), dtype=np.int32)})
    summary = {
        "source": source, "file": req.file, "live": req.live, "start_time": start.isoformat(),
        "channels": layout.n_channel, "dx_m": layout.dx_m, "fs_hz": layout.fs_hz, "line": layout.line,
        "duration_s": duration, "events": len(df),
        "by_class": {k: int(v) for k, v in df["event_class"].value_counts().items()},
        "detector": {**params.as_dict(), "latency_s": params.latency_s}, "placed": placed, "crossings": crossings,
        "published": n_pub if pub is not None else None, "broker": req.publish, "station": req.station,
        "wall_s": wall, "busy_s": busy, "x_real_time": duration / busy if busy > 0 else None,
        "samples_per_s": layout.n_channel * duration * layout.fs_hz / busy if busy > 0 else None,
    }
    if truth is not None and len(truth):
        from physics.das_metrics import evaluate

        m = evaluate(events, truth, n_channel=layout.n_channel, dx_m=layout.dx_m, duration_s=duration)
        m.pop("per_event")
        summary["metrics"] = m
    ds.attrs["summary_json"] = json.dumps(summary, default=float)
    return ds


def write_detect(ds, out_dir, req: DasDetectRequest, ctx: RunContext) -> RunOutputs:
    """``events.nc``, ``events.csv`` and ``events.geojson`` (events with a map point)."""

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ds.to_netcdf(out / OUTPUT)
    df = _events_frame(ds, json.loads(ds.attrs["summary_json"]).get("line", ""))
    paths = {"events": out / OUTPUT, "csv": out / "events.csv"}
    df.to_csv(paths["csv"], index=False, float_format="%.6g")
    fc = events_geojson(ds, json.loads(ds.attrs["summary_json"]).get("line", ""))
    if fc["features"]:
        paths["geojson"] = out / "events.geojson"
        paths["geojson"].write_text(json.dumps(fc, ensure_ascii=False))
    return RunOutputs(paths=paths, summary=json.loads(ds.attrs["summary_json"]))


def events_geojson(ds, line: str = "") -> dict:
    """The events with a map point as a GeoJSON FeatureCollection (properties: the line and every column but
    lon/lat; ``inside_zone`` and ``nuisance_site`` true / false / null)."""
    import numpy as np
    import pandas as pd

    df = _events_frame(ds, line).dropna(subset=["lon", "lat"])

    def value(v):
        if v is None or v is pd.NA:
            return None
        if isinstance(v, bool | np.bool_):
            return bool(v)
        return v if not isinstance(v, float) or math.isfinite(v) else None

    feats = [{"type": "Feature", "geometry": {"type": "Point", "coordinates": [r.lon, r.lat]},
              "properties": {k: value(v) for k, v in r._asdict().items() if k not in ("lon", "lat", "Index")}}
             for r in df.itertuples()]
    return {"type": "FeatureCollection", "features": feats}


def detect_layers(ds, *, warp=None, max_px: int | None = None) -> list:
    """The events with a map point, coloured by class (the tunnel layer's ``tunnel_das_events``)."""
    from viz.layers import build

    fc = events_geojson(ds, json.loads(ds.attrs["summary_json"]).get("line", ""))
    return [build("tunnel_das_events", fc)] if fc["features"] else []


def describe(params: dict[str, Any]) -> str:
    if params.get("live"):
        return f"live: {params.get('km', 2.0)} km x {params.get('minutes', 10.0)} min, seed {params.get('seed', 7)}"
    return f"{Path(str(params.get('file'))).name}"


def _map_city(wanted: bool):
    """The city whose basemap (districts, metro lines) the events' map draws under them; None without its data."""
    if not wanted:
        return None
    from twin.city import City
    from twin.errors import DataMissingError

    try:
        city = City("shenzhen")
        city.vector("metro_lines")
    except DataMissingError:
        return None
    return city


def _command():
    import click

    from twin.cli._util import echo_json, user_errors

    @click.command("detect")
    @click.argument("file", required=False, type=click.Path(dir_okay=False, path_type=Path))
    @click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), required=True,
                  help="Output folder: events.nc, events.csv, events.geojson, summary.json.")
    @click.option("--live", is_flag=True, help="Detect on the simulator's stream as it is generated (no FILE).")
    @click.option("--speed", type=float, default=1.0, show_default=True,
                  help="Live: release chunks at N x real time (inf: as fast as they come).")
    @click.option("--chunk-s", type=click.FloatRange(0.001, 60.0), default=1.0, show_default=True,
                  help="Seconds fed to the detector at a time.")
    @click.option("--km", type=click.FloatRange(0.001, 50.0), default=2.0, show_default=True, help="Live: fibre km.")
    @click.option("--minutes", type=click.FloatRange(0.001, 1440.0), default=10.0, show_default=True,
                  help="Live: record length (min).")
    @click.option("--seed", type=click.IntRange(0), default=7, show_default=True, help="Live: simulator seed.")
    @click.option("--events", type=click.IntRange(0, 10_000), default=8, show_default=True,
                  help="Live: injected events.")
    @click.option("--line", default="1", show_default=True, help="Live: metro line of the fibre.")
    @click.option("--publish", default=None, metavar="HOST:PORT",
                  help="Publish every non-train event as a das_event message to this MQTT broker (twin bridge run).")
    @click.option("--station", default="DAS-L1", show_default=True, help="Station id of the interrogator.")
    @click.option("--no-locate", is_flag=True, help="Chainage only (do not place events on the map).")
    @click.option("--truth", default=None, type=click.Path(dir_okay=False),
                  help="Truth CSV for the metrics (default: <stem>.truth.csv beside FILE).")
    @click.option("--map/--no-map", "with_map", default=True, show_default=True,
                  help="Write map.html: the events placed on the line, on the offline map, coloured by class.")
    @click.option("--crossings", type=click.Choice(["learned", "map"]), default="learned", show_default=True,
                  help="Road crossings over the tunnel: learned from the passages seen, or also known from the start "
                       "where the city's roads layer crosses the line (no alarm for a first vehicle there).")
    @click.option("--json", "as_json", is_flag=True, help="Print summary.json to stdout.")
    def detect(file, out_dir, no_locate, with_map, as_json, **values) -> None:
        """Detect drilling, piling, excavation and intrusion near a metro tunnel in a fibre-optic DAS record,
        streaming (chunk by chunk, bounded memory); trains and road vehicles are recognised and not alerted.

        \b
        Examples:
          twin tunnel detect runs/das/das.nc --out runs/det
          twin tunnel detect --live --km 1 --minutes 5 --speed 1 --publish 127.0.0.1:1883 --out runs/live
        """
        from twin import pipeline
        from twin.cli.kinds import ProgressBar, check_request

        params = {**values, "file": str(file) if file else None, "locate": not no_locate}
        with user_errors():
            req = check_request(KIND, params)
            with ProgressBar("DAS detection (s of record)") as bar:
                res = pipeline.run(KIND, req, out_dir, progress=bar.update, report=False, map=False)
            if with_map and detect_layers(res.dataset):  # a map only of events placed on the line
                from viz.run_map import write_run_map

                res.paths["map"] = write_run_map(res.kind, res.dataset, Path(out_dir) / "map.html",
                                                 city=_map_city(True))["path"]
        s = res.summary
        if as_json:
            echo_json(pipeline.clean_json(s))
            return
        xrt = s.get("x_real_time")
        click.echo(f"{s['events']} events {json.dumps(s['by_class'])} in {s['duration_s']:.0f} s of record, "
                   f"{s['channels']} channels; detector {xrt:.1f}x real time" if xrt else f"{s['events']} events")
        if s.get("published") is not None:
            click.echo(f"published {s['published']} das_event messages to {s['broker']} as {s['station']}")
        if "metrics" in s:
            m = s["metrics"]
            click.echo(f"against the truth: detection {m['detection_rate']:.0%} (SNR >= {m['min_snr_db']:g} dB), "
                       f"{m['false_alarms']} false alarms, localisation median {m['localisation_median_m']:.1f} m")
        click.echo(f"wrote {out_dir}/ ({', '.join(Path(p).name for p in res.paths.values())})")

    return detect


TUNNEL_DETECT = register_kind(RunKind(
    name=KIND, title="DAS event detection", request=DasDetectRequest, run=run_detect, write=write_detect,
    layers=detect_layers, output=OUTPUT, cli_name="tunnel detect", command=_command, describe=describe,
    check=check_detect, summary_keys=("events", "by_class", "x_real_time"),
    duration_s=lambda req: req.minutes * 60.0 if req.live else 0.0,
))

__all__ = ["TUNNEL_DETECT", "DasDetectRequest", "check_detect", "detect_layers", "events_geojson", "run_detect",
           "write_detect"]
