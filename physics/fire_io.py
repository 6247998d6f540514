"""Outputs of a fire run: ``fire.nc``, ``events.jsonl``, ``aset.csv``, the plots, and the run's summary.

:func:`write_fire_outputs` writes the files of a :class:`physics.fire_sim.FireResult` (or of its
Dataset, the ``fire.nc`` contract) into a folder; the ``fire`` run kind
(:mod:`physics.fire_run`) and the fire-evacuation run kind reuse it for their fire part.

* ``fire.nc``: the Dataset as it is, except that booleans (``refuge``) are stored as int8
  0/1 (NetCDF has no boolean type) with ``flag_values``/``flag_meanings``;
* ``events.jsonl``: one :class:`twin.events.Event` record per line (the format the run
  pipeline stores with a run), kinds :data:`EVENT_KINDS` (``fire_detector``,
  ``fire_flashover`` ...; the bridge's ``fire_origin``/``fire_spread`` are detected fires,
  not model predictions, so they are not reused), the model's own event in ``data``;
* ``aset.csv``: ``floor,aset_s`` (:func:`physics.fire_tenability.write_aset_csv`), the
  file ``twin evacuate building --aset`` reads;
* ``layers.png``, ``tenability.png``, ``hrr.png`` (:mod:`physics.fire_plots`).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

#: The twin event kind of each model event (``physics.fire_sim.FIRE_EVENT_KINDS``) and its severity.
EVENT_KINDS = {
    "ignition": ("fire_ignition", "alarm"),
    "detector": ("fire_detector", "warning"),
    "sprinkler": ("fire_sprinkler", "warning"),
    "flashover": ("fire_flashover", "alarm"),
    "glazing_broken": ("fire_glazing_broken", "warning"),
    "spread": ("fire_facade_spread", "alarm"),
    "floor_untenable": ("fire_floor_untenable", "alarm"),
    "burnout": ("fire_burnout", "info"),
}
#: Minutes at which the summary counts the storeys already untenable.
UNTENABLE_BY_MIN = (10, 20, 30, 60)
#: Storeys listed with their ASET in the summary (the earliest first).
ASET_ROWS = 10
NC_NAME = "fire.nc"


def _is_dataset(obj: Any) -> bool:
    import xarray as xr

    return isinstance(obj, xr.Dataset)


def dataset_of(result: Any):
    """The Dataset of a :class:`~physics.fire_sim.FireResult` (or the Dataset itself)."""
    return result if _is_dataset(result) else result.dataset


def events_of(result: Any) -> list[dict]:
    """The model's events (``{"time_s", "kind", "storey", "compartment", "device", "detail"}``), time-ordered.

    From ``result.events``, or from the Dataset's ``attrs["events"]`` (JSON) when given a Dataset.
    """
    ev = None if _is_dataset(result) else getattr(result, "events", None)
    if ev is None:
        ev = json.loads(dataset_of(result).attrs.get("events", "[]") or "[]")
    return sorted((dict(e) for e in ev), key=lambda e: float(e["time_s"]))


def storey_label(storey: int | None) -> str:
    """``"L<n>"`` of a storey index (0 = ground = L1); ``"–"`` for None."""
    return "–" if storey is None else f"L{int(storey) + 1}"


def event_message(e: dict) -> str:
    """One line of a model event, e.g. ``"flashover in 12/flat A (L13): ..."``."""
    where = e.get("compartment") or (f"storey {e['storey']}" if e.get("storey") is not None else "the building")
    label = f" ({storey_label(e['storey'])})" if e.get("storey") is not None else ""
    device = f", {e['device']}" if e.get("device") else ""
    detail = f": {e['detail']}" if e.get("detail") else ""
    return f"{str(e['kind']).replace('_', ' ')} in {where}{label}{device}{detail}"


def event_records(result: Any, *, source: str | None = None) -> list:
    """The model's events as :class:`twin.events.Event` objects (kinds :data:`EVENT_KINDS`)."""
    from twin.events import Event

    ds = dataset_of(result)
    src = source or f"fire model: {ds.attrs.get('building', 'building')}"
    out = []
    for e in events_of(result):
        kind, severity = EVENT_KINDS.get(str(e["kind"]), (f"fire_{e['kind']}", "info"))
        data = {k: e.get(k) for k in ("storey", "compartment", "device", "detail")}
        data["fire_kind"] = str(e["kind"])
        data["floor_label"] = storey_label(e.get("storey"))
        out.append(Event.parse({"time_s": float(e["time_s"]), "kind": kind, "source": src, "severity": severity,
                                "message": event_message(e), "data": _plain(data)}))
    return out


def _plain(d: dict) -> dict:
    """``d`` with numpy scalars as Python values (JSON for the event log)."""
    out = {}
    for k, v in d.items():
        out[k] = v.item() if hasattr(v, "item") else v
    return out


def for_netcdf(ds):
    """``ds`` ready for NetCDF: boolean variables and coordinates as int8 0/1 with flag attributes."""
    out = ds.copy()
    for name in [*out.data_vars, *out.coords]:
        v = out[name]
        if v.dtype == bool:
            attrs = {**v.attrs, "flag_values": [0, 1], "flag_meanings": "false true"}
            attrs.setdefault("units", "1")
            out[name] = v.astype("int8").assign_attrs(attrs)
    return out


def write_netcdf(result: Any, path: str | Path) -> Path:
    """Write the fire Dataset as NetCDF (``fire.nc``, numeric variables zlib-compressed) and return the path."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    ds = for_netcdf(dataset_of(result))
    enc = {name: {"zlib": True, "complevel": 4} for name, v in ds.data_vars.items() if v.dtype.kind in "fiu"}
    ds.to_netcdf(p, encoding=enc)
    return p


def write_fire_outputs(result: Any, out_dir: str | Path, *, plots: bool = True,
                       events: bool = True) -> dict[str, Path]:
    """Write the files of a fire run into ``out_dir`` (created) and return them by role.

    Parameters
    ----------
    result : physics.fire_sim.FireResult or xarray.Dataset
        The run (its ``dataset`` and ``events``), or the Dataset alone (events from ``attrs["events"]``).
    out_dir : path
    plots : bool
        Also write ``layers.png``, ``tenability.png`` and ``hrr.png``.
    events : bool
        Also write ``events.jsonl`` (a caller merging other events writes its own).

    Returns
    -------
    dict
        ``{"fire", "aset", "events", "layers_plot", "tenability_plot", "hrr_plot"}`` → path (those written).
    """
    from physics.fire_tenability import write_aset_csv

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ds = dataset_of(result)
    paths = {"fire": write_netcdf(ds, out / NC_NAME), "aset": write_aset_csv(ds, out / "aset.csv")}
    if events:
        from twin.pipeline import write_run_events

        paths["events"] = write_run_events(event_records(result), out)
    if plots:
        from physics.fire_plots import hrr_figure, layers_figure, tenability_figure
        from viz.plots import save_png

        paths["layers_plot"] = save_png(layers_figure(ds), out / "layers.png")
        paths["tenability_plot"] = save_png(tenability_figure(ds), out / "tenability.png")
        paths["hrr_plot"] = save_png(hrr_figure(ds), out / "hrr.png")
    return paths


# ----------------------------------------------------------------------------- summary
def _first(events: list[dict], kind: str) -> float | None:
    t = [float(e["time_s"]) for e in events if e["kind"] == kind]
    return min(t) if t else None


def _c(k: float) -> float | None:
    return None if not math.isfinite(k) else round(k - 273.15, 1)


def aset_table(ds) -> list[dict]:
    """Storeys untenable within the run, earliest first: storey, label, ASET (s and min), refuge."""
    import numpy as np

    aset = np.asarray(ds["aset_s"].values, float)
    refuge = np.asarray(ds["refuge"].values).astype(bool) if "refuge" in ds else np.zeros(aset.size, bool)
    storeys = np.asarray(ds["storey"].values, int)
    order = [i for i in np.argsort(aset, kind="stable") if np.isfinite(aset[i])]
    return [{"storey": int(storeys[i]), "floor_label": storey_label(int(storeys[i])), "aset_s": float(aset[i]),
             "aset_min": round(float(aset[i]) / 60.0, 2), "refuge": bool(refuge[i])} for i in order]


def summarise(result: Any, *, run_time_s: float | None = None) -> dict[str, Any]:
    """The summary of a fire run (what ``summary.json`` holds besides the request and files).

    Origin, the first detector, sprinkler and flashover times, ASET of the first
    :data:`ASET_ROWS` untenable storeys, storeys untenable by 10/20/30/60 min (None past the run's
    end), the storeys that burn (origin and facade spread),
    peak heat release and temperatures (°C), and the wall time of the simulation.
    """
    import numpy as np

    ds = dataset_of(result)
    ev = events_of(result)
    a = ds.attrs
    table = aset_table(ds)
    aset = np.asarray(ds["aset_s"].values, float)
    duration = float(a.get("duration_s", float(ds["time"].values[-1])))
    by_min = {str(m): (sorted(int(s) for s in ds["storey"].values[np.isfinite(aset) & (aset <= 60.0 * m)])
                       if 60.0 * m <= duration + 1e-9 else None) for m in UNTENABLE_BY_MIN}
    kinds = ds["compartment_kind"].values.astype(str)
    tu = np.asarray(ds["upper_layer__temperature"].values, float)
    stair = kinds == "stair"
    hrr_total = np.asarray(ds["heat_release_rate"].values, float).sum(axis=1)
    ign = np.asarray(ds["ignition_s"].values, float) if "ignition_s" in ds else np.full(aset.size, np.nan)
    origin = int(a.get("origin_storey", -1))
    counts: dict[str, int] = {}
    for e in ev:
        counts[e["kind"]] = counts.get(e["kind"], 0) + 1
    return {
        "building": a.get("building"),
        "origin": {"storey": origin, "floor_label": storey_label(origin), "compartment": a.get("origin_compartment")},
        "growth": a.get("growth"), "sprinklers": a.get("sprinklers"), "season": a.get("season"),
        "t_outside_c": _c(float(a.get("t_outside_k", float("nan")))),
        "duration_s": duration, "dt_s": a.get("dt_s"),
        "storeys": int(ds.sizes["storey"]), "compartments": int(ds.sizes["compartment"]),
        "first_detector_s": _first(ev, "detector"), "first_sprinkler_s": _first(ev, "sprinkler"),
        "flashover_s": _first(ev, "flashover"), "first_glazing_broken_s": _first(ev, "glazing_broken"),
        "first_untenable_s": float(np.nanmin(aset)) if np.isfinite(aset).any() else None,
        "storeys_untenable": int(np.isfinite(aset).sum()),
        "aset_first_storeys": table[:ASET_ROWS],
        "storeys_untenable_by_min": {k: None if v is None else len(v) for k, v in by_min.items()},
        "storeys_untenable_by_min_list": by_min,
        "storeys_burning": sorted(int(s) for s in ds["storey"].values[np.isfinite(ign)]),
        "peak_heat_release_kw": float(hrr_total.max()) if hrr_total.size else 0.0,
        "peak_heat_release_s": float(ds["time"].values[int(np.argmax(hrr_total))]) if hrr_total.size else None,
        "max_upper_temperature_c": _c(float(np.nanmax(tu))) if tu.size else None,
        "max_origin_floor_temperature_c": _c(float(np.nanmax(ds["floor_temperature_max"].values[:, origin])))
        if 0 <= origin < ds.sizes["storey"] else None,
        "max_stair_temperature_c": _c(float(np.nanmax(tu[:, stair]))) if stair.any() else None,
        "events": counts,
        "run_time_s": None if run_time_s is None else round(float(run_time_s), 2),
        "faster_than_real_time": None if not run_time_s else round(duration / float(run_time_s), 1),
    }


__all__ = ["ASET_ROWS", "EVENT_KINDS", "UNTENABLE_BY_MIN", "aset_table", "dataset_of", "event_message",
           "event_records", "events_of", "for_netcdf", "storey_label", "summarise", "write_fire_outputs",
           "write_netcdf"]
