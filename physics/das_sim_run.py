"""The DAS simulator's run kind ``tunnel_simulate`` (``twin tunnel simulate``): a simulated fibre record on disk.

Registered with :func:`twin.runkinds.register_kind` on import (top-level imports kept light). A run streams the
record of :class:`physics.das_simulate.DasSimulator` chunk by chunk into ``das.nc`` (:func:`physics.das_io.write_das`,
memory bounded by one chunk) while it runs, then writes ``das.truth.csv`` beside it; the pipeline adds
``summary.json``. The dataset handed to the pipeline holds only the coupling gain per channel and the truth table
(the record itself stays in ``das.nc``). No map or report: the record is raw data for ``twin tunnel detect``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from twin.runkinds import RunContext, RunKind, RunOutputs, register_kind

KIND = "tunnel_simulate"
OUTPUT = "das.nc"
TRUTH = "das.truth.csv"
DEFAULT_START = "2026-12-04T09:00:00+08:00"


def check_start_time(value: str) -> None:
    """A record's ``start_time``: ISO 8601 with its zone (:func:`twin.clock.as_utc`), else a RequestError naming
    the field, the value and an example."""
    from twin.clock import as_utc
    from twin.errors import ClockError, RequestError

    try:
        as_utc(value, "start_time")
    except ClockError as exc:
        raise RequestError(str(exc), field="start_time", value=value) from None


class DasSimRequest(BaseModel):
    """A simulated DAS record (``twin tunnel simulate --help``).

    Attributes
    ----------
    km : float
        Fibre length (km); channels = km * 1000 / dx_m.
    minutes : float
        Record length (min).
    seed : int
    line : str
        Metro line as ``sz_metro_lines_approx.geojson`` names it (e.g. "1").
    chainage0_m : float
        Chainage of channel 0 along the line (m).
    direction : int
        +1: chainage grows with the channel, -1: it shrinks.
    events : int
        Injected events (drilling, piling, excavation, intrusion in turn, at random places and times).
    trains_per_hour : float
        Trains each way.
    noise : float
        White instrument noise density (1/s/sqrt(Hz)).
    dx_m, fs_hz : float
        Channel spacing (m) and sampling rate (Hz).
    chunk_s : float
        Chunk written at a time (s); the record does not depend on it.
    start_time : str
        Time of the first sample (ISO 8601 with zone); fixed by default so a seed gives the same file.
    compress : bool
        zlib level 1 in the file.
    stations : list of float or None
        Chainages (m) of stations on the fibre: trains brake, dwell 30 s and accelerate there.
    stations_from_line : bool
        Add the line's stations from ``sz_metro_lines_approx.geojson`` (vertices of the approximate alignment,
        chainage as :func:`physics.tunnel_geometry.build_tunnels` gives it).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    km: float = Field(default=1.0, gt=0.0, le=50.0, allow_inf_nan=False, description="Fibre length (km)")
    minutes: float = Field(default=3.0, gt=0.0, le=24 * 60.0, allow_inf_nan=False, description="Record length (min)")
    seed: int = Field(default=7, ge=0, description="Random seed")
    line: str = Field(default="1", min_length=1, max_length=40, description="Metro line")
    chainage0_m: float = Field(default=0.0, allow_inf_nan=False, description="Chainage of channel 0 (m)")
    direction: int = Field(default=1, ge=-1, le=1, description="+1 or -1")
    events: int = Field(default=8, ge=0, le=10_000, description="Injected events")
    trains_per_hour: float = Field(default=20.0, ge=0.0, le=60.0, allow_inf_nan=False,
                                   description="Trains per hour each way")
    noise: float = Field(default=5e-9, gt=0.0, le=1e-5, allow_inf_nan=False,
                         description="White noise density (1/s/sqrt(Hz))")
    dx_m: float = Field(default=1.0, ge=0.1, le=50.0, allow_inf_nan=False, description="Channel spacing (m)")
    fs_hz: float = Field(default=1000.0, ge=200.0, le=20_000.0, allow_inf_nan=False, description="Sampling rate (Hz)")
    chunk_s: float = Field(default=1.0, gt=0.0, le=60.0, allow_inf_nan=False, description="Chunk length (s)")
    start_time: str = Field(default=DEFAULT_START, description="First sample's time (ISO 8601 with zone)")
    compress: bool = Field(default=False, description="zlib-compress the record")
    stations: list[float] | None = Field(default=None, max_length=200,
                                         description="Station chainages on the fibre (m): trains stop there")
    stations_from_line: bool = Field(default=False, description="Stations of the line from the metro data")


class DasSimConsoleRequest(BaseModel):
    """What the console's form may send: a small record (at most 2 km x 5 min, 480 MB a minute at 2 km)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    km: float = Field(default=0.5, gt=0.0, le=2.0, allow_inf_nan=False, description="Fibre length (km)")
    minutes: float = Field(default=1.0, gt=0.0, le=5.0, allow_inf_nan=False, description="Record length (min)")
    seed: int = Field(default=7, ge=0, description="Random seed")
    line: str = Field(default="1", min_length=1, max_length=40, description="Metro line")
    events: int = Field(default=4, ge=0, le=100, description="Injected events")
    trains_per_hour: float = Field(default=20.0, ge=0.0, le=60.0, allow_inf_nan=False,
                                   description="Trains per hour each way")


def _simulator(req: DasSimRequest):
    from physics.das_layout import FibreLayout
    from physics.das_simulate import DasSimulator, SimConfig
    from twin.errors import ValidationError

    if req.direction == 0:
        raise ValidationError("direction = 0: give +1 or -1")
    n = int(round(req.km * 1000.0 / req.dx_m))
    layout = FibreLayout(n_channel=n, dx_m=req.dx_m, fs_hz=req.fs_hz, line=req.line, chainage0_m=req.chainage0_m,
                         direction=req.direction)
    cfg = SimConfig(noise_density=req.noise, trains_per_hour=req.trains_per_hour,
                    stops_m=_stops_on_fibre(req, layout))
    return DasSimulator(layout, req.minutes * 60.0, req.seed, cfg, n_events=req.events)


def line_stations_m(line: str) -> list[float]:
    """Chainages (m) of a metro line's stations (the approximate alignment's vertices; needs the metro data)."""
    from physics.tunnel_geometry import build_tunnels, line_key

    tun = build_tunnels(select=[line])
    return [float(c) for c in tun.chainage[line_key(line)]]


def _stops_on_fibre(req: DasSimRequest, layout) -> tuple[float, ...]:
    chainages = list(req.stations or [])
    if req.stations_from_line:
        chainages += line_stations_m(req.line)
    pos = [(c - layout.chainage0_m) * layout.direction for c in chainages]
    return tuple(sorted(p for p in pos if 0.0 <= p <= layout.length_m))


def check_simulate(req: DasSimRequest, city: Any = None) -> None:
    """Refuse a bad start time, a zero direction or a record too big for the disk before anything runs."""
    import shutil

    from twin.errors import RequestError

    check_start_time(req.start_time)
    if req.direction == 0:
        raise RequestError("direction = 0: give +1 or -1", field="direction", value=0)
    size = 4.0 * req.km * 1000.0 / req.dx_m * req.fs_hz * req.minutes * 60.0
    free = shutil.disk_usage(Path.cwd()).free
    if size > 0.9 * free:
        raise RequestError(f"the record needs {size / 1e9:.1f} GB and {free / 1e9:.1f} GB are free: "
                           "give fewer --km or --minutes, or --compress", field="minutes", value=req.minutes)


def run_simulate(req: DasSimRequest, ctx: RunContext):
    """Stream the record into ``<out>/das.nc``; return the coupling and the truth as a small Dataset."""
    import numpy as np
    import xarray as xr

    from physics.das_io import write_das

    sim = _simulator(req)
    fs = sim.layout.fs_hz
    out = Path(ctx.out_dir or ".")
    out.mkdir(parents=True, exist_ok=True)
    total = sim.duration_s
    n_chunks = [0]

    def progress(n_written: int) -> None:
        n_chunks[0] += 1
        ctx.report(n_written / fs, total, chunks=n_chunks[0])

    n = write_das(out / OUTPUT, sim.layout, sim.chunks(req.chunk_s), req.start_time,
                  f"Shenzhen Twin DAS simulator, seed {req.seed}", compress=req.compress, progress=progress)
    truth = sim.truth
    ds = xr.Dataset({"coupling_gain": ("channel", sim.gain)},
                    coords={"channel": np.arange(sim.layout.n_channel, dtype=np.int32)})
    ds.attrs.update(sim.layout.to_attrs())
    ds.attrs.update(n_time=n, duration_s=total, noise_std=sim.sigma_white, seed=req.seed,
                    truth_json=truth.to_json(orient="records"))
    return ds


def summarise(ds, out: Path) -> dict[str, Any]:
    import pandas as pd

    truth = pd.read_json(__import__("io").StringIO(ds.attrs["truth_json"]), orient="records")
    counts = truth["class"].value_counts().to_dict() if len(truth) else {}
    size = (out / OUTPUT).stat().st_size
    return {"channels": int(ds.sizes["channel"]), "fs_hz": float(ds.attrs["fs_hz"]),
            "dx_m": float(ds.attrs["dx_m"]), "duration_s": float(ds.attrs["duration_s"]),
            "line": ds.attrs["line"], "chainage0_m": float(ds.attrs["chainage0_m"]),
            "direction": int(ds.attrs["direction"]), "seed": int(ds.attrs["seed"]),
            "noise_std_1_s": float(ds.attrs["noise_std"]), "rows_by_class": {k: int(v) for k, v in counts.items()},
            "events": int(sum(v for k, v in counts.items() if k not in ("train", "vehicle"))),
            "file_mb": size / 1e6, "mb_per_minute": size / 1e6 / (float(ds.attrs["duration_s"]) / 60.0)}


def write_simulate(ds, out_dir, req: DasSimRequest, ctx: RunContext) -> RunOutputs:
    """Write ``das.truth.csv`` (``das.nc`` is already written by the run)."""
    import io

    import pandas as pd

    from physics.das_io import TRUTH_COLUMNS, TRUTH_EXTRA, write_truth

    out = Path(out_dir)
    truth = pd.read_json(io.StringIO(ds.attrs["truth_json"]), orient="records")
    if truth.empty:
        truth = pd.DataFrame(columns=[*TRUTH_COLUMNS, *TRUTH_EXTRA])
    paths = {"das": out / OUTPUT, "truth": write_truth(out / TRUTH, truth)}
    return RunOutputs(paths=paths, summary=summarise(ds, out))


def simulate_layers(ds, *, warp=None, max_px: int | None = None) -> list:
    """No map layer: a DAS record is raw data (``twin tunnel detect`` maps what it finds)."""
    return []


def describe(params: dict[str, Any]) -> str:
    return (f"{params.get('km', 1.0)} km x {params.get('minutes', 3.0)} min of line {params.get('line', '1')}, "
            f"{params.get('events', 8)} events, seed {params.get('seed', 7)}")


def _command():
    import click

    from twin.cli._util import echo_json, user_errors

    @click.command("simulate")
    @click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), required=True,
                  help="Output folder: das.nc, das.truth.csv, summary.json.")
    @click.option("--km", type=click.FloatRange(0.001, 50.0), default=1.0, show_default=True, help="Fibre length (km).")
    @click.option("--minutes", type=click.FloatRange(0.001, 1440.0), default=3.0, show_default=True,
                  help="Record length (min). 2 km at 1 kHz is about 480 MB a minute.")
    @click.option("--seed", type=click.IntRange(0), default=7, show_default=True, help="Random seed.")
    @click.option("--line", default="1", show_default=True, help="Metro line (as the metro geojson names it).")
    @click.option("--chainage0", "chainage0_m", type=float, default=0.0, show_default=True,
                  help="Chainage of channel 0 along the line (m).")
    @click.option("--direction", type=click.Choice(["1", "-1"]), default="1", show_default=True,
                  help="+1: chainage grows with the channel number; -1: it shrinks.")
    @click.option("--events", type=click.IntRange(0, 10_000), default=8, show_default=True,
                  help="Injected events (drilling, piling, excavation, intrusion).")
    @click.option("--trains-per-hour", type=click.FloatRange(0.0, 60.0), default=20.0, show_default=True,
                  help="Trains per hour each way.")
    @click.option("--noise", type=click.FloatRange(1e-12, 1e-5), default=5e-9, show_default=True,
                  help="White instrument noise density (1/s per sqrt(Hz)).")
    @click.option("--dx", "dx_m", type=click.FloatRange(0.1, 50.0), default=1.0, show_default=True,
                  help="Channel spacing (m).")
    @click.option("--fs", "fs_hz", type=click.FloatRange(200.0, 20_000.0), default=1000.0, show_default=True,
                  help="Sampling rate (Hz).")
    @click.option("--chunk-s", type=click.FloatRange(0.001, 60.0), default=1.0, show_default=True,
                  help="Seconds written at a time (the record does not depend on it).")
    @click.option("--start", "start_time", default=DEFAULT_START, show_default=True,
                  help="Time of the first sample (ISO 8601 with zone).")
    @click.option("--compress", is_flag=True,
                  help="zlib-compress the record (simulated noise shrinks only ~14 % and writing is ~8x slower).")
    @click.option("--station", "stations", type=float, multiple=True, metavar="CHAINAGE",
                  help="Chainage (m) of a station on the fibre, where trains stop (repeat).")
    @click.option("--stations-from-line", is_flag=True,
                  help="Also stop at the line's stations on the fibre (from the metro data's approximate alignment).")
    @click.option("--json", "as_json", is_flag=True, help="Print summary.json to stdout.")
    def simulate(out_dir, as_json, direction, stations, **values) -> None:
        """Simulate a fibre-optic DAS record along a metro tunnel: noise, coupling, trains, road traffic and
        injected drilling, piling, excavation and intrusion events; writes das.nc (strain rate, 1/s) and
        das.truth.csv (every event, train passage and vehicle).

        Example: twin tunnel simulate --out runs/das --km 0.5 --minutes 1 --events 4
        """
        from twin import pipeline
        from twin.cli.kinds import ProgressBar, check_request

        params = {**values, "direction": int(direction), "stations": list(stations) or None}
        with user_errors():
            req = check_request(KIND, params, hints={"start_time": "--start"})
            with ProgressBar("DAS record (chunks written)") as bar:
                res = pipeline.run(KIND, req, out_dir, progress=bar.update, report=False, map=False)
        s = res.summary
        if as_json:
            echo_json(pipeline.clean_json(s))
            return
        click.echo(f"{s['channels']} channels x {s['duration_s']:.0f} s at {s['fs_hz']:.0f} Hz "
                   f"({s['file_mb']:.1f} MB, {s['mb_per_minute']:.0f} MB/min); noise std {s['noise_std_1_s']:.3g} 1/s; "
                   f"truth rows {json.dumps(s['rows_by_class'])}; done in {res.wall_s:.1f} s")
        click.echo(f"wrote {out_dir}/ ({', '.join(Path(p).name for p in res.paths.values())})")

    return simulate


TUNNEL_SIMULATE = register_kind(RunKind(
    name=KIND, title="DAS record simulation", request=DasSimRequest, console_request=DasSimConsoleRequest,
    run=run_simulate, write=write_simulate,
    layers=simulate_layers, output=OUTPUT, cli_name="tunnel simulate", command=_command, describe=describe,
    check=check_simulate, summary_keys=("channels", "duration_s", "events", "file_mb"),
    duration_s=lambda req: req.minutes * 60.0,
))
