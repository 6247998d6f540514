"""Compare two finished runs of one kind (``twin compare RUN_A RUN_B``): difference maps and a KPI table.

:func:`compare_runs` takes two run folders (the ``--out`` of ``twin <kind> run``,
or their main NetCDF) of the same run kind and writes into ``out_dir``:

``compare.nc``
    For each compared grid variable ``V``, ``V_b_minus_a`` (B − A on A's grid,
    float32, NaN where either run has no value) with a CF ``spatial_ref`` and
    ``crs``/``transform`` attrs; the statistics are in each variable's attrs.
    Compared: the kind's ``compare`` variable (else the first ``(y, x)``
    variable), then every other floating-point ``(y, x)`` variable both runs
    have, except the inputs in :data:`STATIC_GRID_VARIABLES` (terrain, soil
    depth, population: held fixed between runs, their difference is not a
    result). Time-resolved fields (``(time, y, x)``) are not differenced; their
    maxima are. When the grids differ (resolution, extent), B is resampled
    onto A's grid (nearest cell) and ``compare.json`` says so.
``compare.csv`` and ``compare.json``
    The KPI table: the kind's ``summary_keys``, then the KPIs of
    :data:`KPIS` present in either summary (flooded area, slope failure,
    roads closed, people at risk, response times p50/p90), with A, B, B − A
    and the relative change (B − A) / |A|. ``compare.json`` also holds the
    request fields that differ, the grid statement and the difference
    statistics.
``map.html``
    The split view A | B of ``twin flood map --compare``, for any kind: each
    half is the run's own map page scene (:func:`viz.run_map.run_scene`, the
    kind's layers, time sliders kept in step), and the "show difference"
    toggle puts the B − A layers (``diff`` kind of :mod:`viz.layers`, one per
    compared variable, the main one shown) in the right half. Runs without a
    model grid (a building, agents on roads) get the same split view of their
    two maps without a difference layer: the split view needs no grid, the
    difference does.
``compare.html``
    An offline report: what differs in the requests, the KPI table, and per
    compared variable the difference statistics and a difference map.

How a folder's kind is told: ``summary.json``'s ``kind`` (written by the run
pipeline), else the one kind whose main output file (``RunKind.output``) the
folder holds.
"""

from __future__ import annotations

import csv
import html
import json
import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from twin.errors import DataMissingError, GridError, ValidationError

COMPARE_NC = "compare.nc"
COMPARE_CSV = "compare.csv"
COMPARE_JSON = "compare.json"
MAP_HTML = "map.html"
REPORT_HTML = "compare.html"
SUMMARY_NAME = "summary.json"

#: Grid inputs not differenced by default: held fixed between the runs of a comparison.
STATIC_GRID_VARIABLES = frozenset({"elevation", "slope", "soil_depth", "population", "aspect"})

#: Default threshold of "B exceeds A" by a variable's units; others: 1 % of the largest |A|, |B|.
THRESHOLDS_BY_UNITS = {"m": 0.05, "s": 60.0, "1": 0.05, "people": 1.0, "m/s": 0.1}


def _roads_closed_max(summary: Mapping[str, Any]) -> Any:
    """Most road edges closed at once, from a dispatch run's ``road_changes`` (None without)."""
    changes = summary.get("road_changes")
    if not isinstance(changes, list):
        return None
    return max((int(c.get("closed_total", 0)) for c in changes if isinstance(c, Mapping)), default=0)


#: KPIs compared when a summary has them: (key, label, group, path in the summary or a function
#: of the summary). A path to a dict gives one row per number in it.
KPIS: tuple[tuple[str, str, str, tuple[str, ...] | Callable[[Mapping], Any]], ...] = (
    ("flooded_area_max_km2", "flooded area, maximum (km²)", "flooded area", ("flooded_area_max_km2",)),
    ("max_depth_m", "maximum depth (m)", "flooded area", ("max_depth_m",)),
    ("area_failing_km2", "area with FS < 1 (km²)", "slope failure", ("area_failing_km2",)),
    ("cells_failing", "cells with FS < 1", "slope failure", ("cells_failing",)),
    ("runout_area_ge_0_1m_km2", "runout deposit >= 0.1 m (km²)", "slope failure", ("runout_area_ge_0_1m_km2",)),
    ("assets_hit", "assets reached by runout", "slope failure", ("assets_hit",)),
    ("edges_closed", "road edges closed", "roads closed", ("edges_closed",)),
    ("roads_closed_max", "road edges closed at once (most)", "roads closed", _roads_closed_max),
    ("reroutes", "units rerouted", "roads closed", ("reroutes",)),
    ("unreachable_incidents", "incidents unreachable when called", "roads closed", ("unreachable_incidents",)),
    ("evacuees", "people evacuating", "people at risk", ("evacuees",)),
    ("stranded", "people stranded", "people at risk", ("stranded",)),
    ("people_not_safe", "people not safe at the end", "people at risk", ("people_not_safe",)),
    ("people_inside_at_end", "people inside at the end", "people at risk", ("people_inside_at_end",)),
    ("time_to_clear_95pct_s", "time to clear 95 % (s)", "people at risk", ("time_to_clear_95pct_s",)),
    ("rset_s", "RSET (s)", "people at risk", ("rset_s",)),
    ("evacuation_time_s", "evacuation time (s)", "people at risk", ("evacuation_time_s",)),
    ("response_s.p50", "response time p50 (s)", "response times", ("response_s", "p50")),
    ("response_s.p90", "response time p90 (s)", "response times", ("response_s", "p90")),
    ("call_to_arrival_s.p50", "call to arrival p50 (s)", "response times", ("call_to_arrival_s", "p50")),
    ("call_to_arrival_s.p90", "call to arrival p90 (s)", "response times", ("call_to_arrival_s", "p90")),
    ("within_5min_share", "incidents reached within 5 min (share)", "response times", ("within_5min_share",)),
    ("never_reached", "incidents never reached", "response times", ("never_reached",)),
)


# ----------------------------------------------------------------------------- runs
@dataclass(frozen=True)
class Run:
    """A finished run folder: its kind, summary and main Dataset (opened lazily; :meth:`close` it)."""

    folder: Path
    kind: Any
    summary: dict
    dataset: xr.Dataset

    @property
    def name(self) -> str:
        return self.folder.name

    def close(self) -> None:
        """Close the main NetCDF file."""
        self.dataset.close()


def kind_of(folder: str | os.PathLike) -> tuple[Any, dict]:
    """The run kind of a run folder and its summary (``{}`` without ``summary.json``).

    Raises
    ------
    twin.errors.DataMissingError
        When the folder has neither a summary naming its kind nor exactly one kind's main file.
    twin.errors.ValidationError
        When ``summary.json`` is not JSON or names an unknown kind.
    """
    from twin.runkinds import get_kind, kinds

    folder = Path(folder)
    summary: dict = {}
    path = folder / SUMMARY_NAME
    if path.is_file():
        try:
            summary = json.loads(path.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise ValidationError(f"{path}: not JSON ({exc}); is it a run's summary.json?") from None
        if not isinstance(summary, dict):
            raise ValidationError(f"{path}: a JSON {type(summary).__name__}, expected the run's summary object")
        if summary.get("kind"):
            return get_kind(str(summary["kind"])), summary
    found = [k for k in kinds() if (folder / k.output).is_file()]
    if len(found) == 1:
        return found[0], summary
    outputs = sorted({k.output for k in kinds()})
    if not found:
        raise DataMissingError(f"run folder {str(folder)!r}: no summary.json naming its kind and none of the "
                               f"run kinds' main files {outputs}: give the --out folder of a `twin ... run`")
    raise DataMissingError(f"run folder {str(folder)!r}: no summary.json naming its kind, and its files fit "
                           f"several kinds {[k.name for k in found]}: keep the run's summary.json next to them")


def open_run(path: str | os.PathLike) -> Run:
    """A run folder (or its main NetCDF file) opened: kind, summary and the main Dataset (lazy).

    Raises
    ------
    twin.errors.DataMissingError
        When the path does not exist, or the folder lacks its kind's main file.
    """
    p = Path(path)
    if not p.exists():
        raise DataMissingError(f"run {str(p)!r} not found: give a run's --out folder or its main .nc file")
    folder = p if p.is_dir() else p.parent
    kind, summary = kind_of(folder)
    main = folder / kind.output
    if not main.is_file():
        raise DataMissingError(f"run folder {str(folder)!r} ({kind.name}) has no {kind.output}: "
                               "was the run interrupted?")
    try:
        ds = xr.open_dataset(main)  # lazy: a city run's depth frames are read only where a layer needs them
    except (OSError, ValueError) as exc:
        raise DataMissingError(f"{main}: cannot be read as NetCDF ({exc})") from None
    return Run(folder=folder, kind=kind, summary=summary, dataset=ds)


# ----------------------------------------------------------------------------- grids
def has_grid(ds: xr.Dataset) -> bool:
    """True for a run on a model grid: ``x``/``y`` dimensions and a ``crs``."""
    return "x" in ds.dims and "y" in ds.dims and bool(ds.attrs.get("crs"))


def _is_field(ds: xr.Dataset, name: str) -> bool:
    v = ds[name]
    return v.dims == ("y", "x") and np.issubdtype(v.dtype, np.floating)


def grid_variables(kind: Any, a: xr.Dataset, b: xr.Dataset, variables: Sequence[str] | None = None) -> list[str]:
    """Grid variables of runs ``a`` and ``b`` to difference (module docstring), the main one first.

    Parameters
    ----------
    variables : list of str, optional
        Instead of the default choice; each must be a ``(y, x)`` variable of both runs.

    Raises
    ------
    twin.errors.ValidationError
        For a requested variable that is not a ``(y, x)`` field of both runs.
    """
    if not (has_grid(a) and has_grid(b)):
        return []
    if variables is not None:
        for name in variables:
            if name not in a or name not in b or a[name].dims != ("y", "x") or b[name].dims != ("y", "x"):
                both = sorted(n for n in a.data_vars if n in b and a[n].dims == ("y", "x") == b[n].dims)
                raise ValidationError(f"variables={name!r}: not a (y, x) variable of both runs; "
                                      f"they share {both}")
        return list(dict.fromkeys(variables))
    out = []
    main = kind.compare
    if main is None:  # the first result grid (not a held-fixed input such as the terrain)
        main = next((str(n) for n in a.data_vars if n in b and n not in STATIC_GRID_VARIABLES
                     and _is_field(a, n) and _is_field(b, n)), None)
    if main is not None and main in a and main in b:
        out.append(main)
    out += [str(n) for n in a.data_vars if n not in out and n in b and n not in STATIC_GRID_VARIABLES
            and _is_field(a, n) and _is_field(b, n)]
    return out


def grid_of(ds: xr.Dataset, name: str) -> xr.DataArray:
    """Variable ``name`` of a run with the run's ``crs`` and ``transform`` in its attrs."""
    from gis.raster import transform_of

    da = ds[name].copy(deep=False)
    da.attrs = {**da.attrs, "crs": da.attrs.get("crs") or ds.attrs["crs"],
                "transform": tuple(transform_of(ds))[:6]}
    return da


def same_grid(a: xr.DataArray, b: xr.DataArray) -> bool:
    """True when ``a`` and ``b`` lie on the same cells (shape, CRS, transform)."""
    from gis.raster import transform_of

    return (a.shape == b.shape and a.attrs.get("crs") == b.attrs.get("crs")
            and np.allclose(tuple(transform_of(a))[:6], tuple(transform_of(b))[:6]))


def on_grid_of(a: xr.DataArray, b: xr.DataArray) -> xr.DataArray:
    """``b`` on ``a``'s cells: itself on the same grid, else resampled (nearest cell; NaN outside ``b``)."""
    from gis.raster import reproject

    if same_grid(a, b):
        return b
    if not a.attrs.get("crs") or not b.attrs.get("crs"):
        raise GridError("compare: the runs' grids differ and one has no crs to resample it by")
    return reproject(b.astype("float64"), a.attrs["crs"], resampling="nearest", like=a)


def cell_area_km2(a: xr.DataArray) -> float | None:
    """Area of one cell (km²) of a projected grid; None for a geographic one."""
    import pyproj

    from gis.raster import transform_of

    if not pyproj.CRS.from_user_input(a.attrs["crs"]).is_projected:
        return None
    t = transform_of(a)
    return abs(t.a * t.e) / 1e6


def default_threshold(units: str, a: np.ndarray, b: np.ndarray) -> float:
    """Threshold of "B exceeds A" for a variable: by units (:data:`THRESHOLDS_BY_UNITS`), else 1 % of max |A|, |B|."""
    if units in THRESHOLDS_BY_UNITS:
        return THRESHOLDS_BY_UNITS[units]
    vals = np.abs(np.concatenate([a[np.isfinite(a)], b[np.isfinite(b)]]))
    top = float(vals.max()) if vals.size else 0.0
    return 0.01 * top if top > 0 else 0.0


def difference_stats(d: np.ndarray, a: np.ndarray, b: np.ndarray, *, threshold: float,
                     area_km2: float | None, x: np.ndarray, y: np.ndarray, crs: str) -> dict[str, Any]:
    """Statistics of a B − A grid ``d`` (A's and B-on-A's values ``a``, ``b``).

    Returns
    -------
    dict
        ``cells_compared`` (both finite), ``cells_only_a``/``cells_only_b`` (a value in one run only),
        ``min``, ``max``, ``mean`` of B − A, ``threshold``, ``cells_b_above`` (B − A > threshold),
        ``cells_b_below`` (B − A < −threshold), their areas (km², None on a geographic grid),
        ``max_at``/``min_at`` (x, y and lon, lat of the cell where B − A is highest above 0 /
        lowest below 0; None when no cell is).
    """
    fa, fb = np.isfinite(a), np.isfinite(b)
    ok = np.isfinite(d)
    above, below = ok & (d > threshold), ok & (d < -threshold)
    out: dict[str, Any] = {
        "cells_compared": int(ok.sum()), "cells_only_a": int((fa & ~fb).sum()), "cells_only_b": int((fb & ~fa).sum()),
        "min": float(np.min(d[ok])) if ok.any() else None, "max": float(np.max(d[ok])) if ok.any() else None,
        "mean": float(np.mean(d[ok])) if ok.any() else None, "threshold": float(threshold),
        "cells_b_above": int(above.sum()), "cells_b_below": int(below.sum()),
        "area_b_above_km2": None if area_km2 is None else float(above.sum() * area_km2),
        "area_b_below_km2": None if area_km2 is None else float(below.sum() * area_km2),
    }
    # where B − A is largest above 0 and lowest below 0 (None when nothing is)
    pos, neg = ok & (d > 0), ok & (d < 0)
    out["max_at"] = _place(int(np.nanargmax(np.where(pos, d, np.nan))), x, y, crs, d.shape) if pos.any() else None
    out["min_at"] = _place(int(np.nanargmin(np.where(neg, d, np.nan))), x, y, crs, d.shape) if neg.any() else None
    return out


def _place(flat: int, x: np.ndarray, y: np.ndarray, crs: str, shape: tuple[int, int]) -> dict[str, float]:
    from pyproj import Transformer

    j, i = np.unravel_index(flat, shape)
    xx, yy = float(x[i]), float(y[j])
    lon, lat = Transformer.from_crs(crs, "EPSG:4326", always_xy=True).transform(xx, yy)
    return {"x": xx, "y": yy, "lon": round(float(lon), 6), "lat": round(float(lat), 6)}


# ----------------------------------------------------------------------------- KPIs
def _get(summary: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    v: Any = summary
    for part in path:
        if not isinstance(v, Mapping) or part not in v:
            return None
        v = v[part]
    return v


def _number(v: Any) -> float | int | None:
    if isinstance(v, bool) or not isinstance(v, int | float):
        return None
    return v if math.isfinite(v) else None


def _leaves(v: Any, key: str) -> list[tuple[str, Any]]:
    """(key, value) of a summary entry: itself, or each number of a dict (keys joined with '.')."""
    if isinstance(v, Mapping):
        out = []
        for k, x in v.items():
            out += _leaves(x, f"{key}.{k}")
        return out
    return [(key, v)]


def _label(key: str) -> str:
    units = (("_km2", "km²"), ("_m2", "m²"), ("_s", "s"), ("_m", "m"), ("_pct", "%"))
    head, _, tail = key.partition(".")
    for suffix, unit in units:
        if head.endswith(suffix):
            head = f"{head[: -len(suffix)]} ({unit})"
            break
    return head.replace("_", " ") + (f" [{tail}]" if tail else "")


def kpi_rows(kind: Any, a: Mapping[str, Any], b: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The KPI table of two summaries: the kind's ``summary_keys``, then :data:`KPIS` either run has.

    Returns
    -------
    list of dict
        ``{"key", "label", "group", "a", "b", "b_minus_a", "relative_change"}`` per row; a value
        a run lacks (or that is not a finite number) is None, and so are its differences;
        ``relative_change`` is (B − A) / |A| (None when A is 0).
    """
    known = {k: label for k, label, _, _ in KPIS}
    specs: list[tuple[str, str | None, str, tuple[str, ...] | Callable]] = [
        (k, known.get(k), f"{kind.name} summary", (k,)) for k in kind.summary_keys]
    specs += [(k, label, group, get) for k, label, group, get in KPIS]
    rows: list[dict[str, Any]] = []
    seen: set[str] = set()
    for key, label, group, get in specs:
        va = get(a) if callable(get) else _get(a, get)
        vb = get(b) if callable(get) else _get(b, get)
        if va is None and vb is None:
            continue
        la, lb = dict(_leaves(va, key)), dict(_leaves(vb, key))
        for k in dict.fromkeys([*la, *lb]):
            if k in seen:
                continue
            na, nb = _number(la.get(k)), _number(lb.get(k))
            if na is None and nb is None:
                continue
            seen.add(k)
            diff = None if na is None or nb is None else nb - na
            rel = None if diff is None or na == 0 else diff / abs(na)
            lab = label if label is not None and k == key else (
                f"{label} [{k[len(key) + 1:]}]" if label is not None else _label(k))
            rows.append({"key": k, "label": lab, "group": group, "a": na, "b": nb, "b_minus_a": diff,
                         "relative_change": rel})
    return rows


def request_differences(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Request fields whose values differ between two summaries: ``[{"field", "a", "b"}]``."""
    ra, rb = a.get("request") or {}, b.get("request") or {}
    if not isinstance(ra, Mapping) or not isinstance(rb, Mapping):
        return []
    return [{"field": k, "a": ra.get(k), "b": rb.get(k)} for k in dict.fromkeys([*ra, *rb])
            if ra.get(k) != rb.get(k)]


# ----------------------------------------------------------------------------- the comparison
@dataclass
class Comparison:
    """What :func:`compare_runs` found and wrote.

    Attributes
    ----------
    kind : twin.runkinds.RunKind
    a, b : Run
    differences : dict
        Variable name → B − A DataArray on A's grid (empty for runs without a grid).
    stats : dict
        Variable name → :func:`difference_stats`.
    kpis : list of dict
        :func:`kpi_rows`.
    grid : dict
        ``{"gridded", "same_grid", "resampled", "crs", "shape", "transform"}``; ``resampled`` is the
        sentence saying how B was put on A's grid (None on the same grid or without a grid).
    requests : list of dict
        :func:`request_differences`.
    paths : dict
        Role → file written.
    """

    kind: Any
    a: Run
    b: Run
    differences: dict[str, xr.DataArray]
    stats: dict[str, dict[str, Any]]
    kpis: list[dict[str, Any]]
    grid: dict[str, Any]
    requests: list[dict[str, Any]] = field(default_factory=list)
    paths: dict[str, Path] = field(default_factory=dict)

    @property
    def main_variable(self) -> str | None:
        return next(iter(self.differences), None)

    def to_json(self) -> dict[str, Any]:
        """The content of ``compare.json``."""
        def run(r: Run) -> dict[str, Any]:
            return {"path": str(r.folder), "title": str(r.dataset.attrs.get("title") or r.kind.title),
                    "request": r.summary.get("request")}

        return {"kind": self.kind.name, "title": self.title, "a": run(self.a), "b": run(self.b),
                "request_differences": self.requests, "grid": self.grid,
                "variables": {v: {"units": str(d.attrs.get("units", "")), **self.stats[v]}
                              for v, d in self.differences.items()},
                "main_variable": self.main_variable, "kpis": self.kpis,
                "files": {role: p.name for role, p in self.paths.items()}}

    @property
    def title(self) -> str:
        return f"{self.kind.title}: {self.a.name} (A) and {self.b.name} (B)"


def compare(a: Run, b: Run, *, thresholds: Mapping[str, float] | None = None,
            variables: Sequence[str] | None = None) -> Comparison:
    """The differences, statistics and KPI table of two opened runs of one kind (nothing written).

    Raises
    ------
    twin.errors.ValidationError
        When the runs are of different kinds (naming both), or a threshold names a variable not compared.
    """
    if a.kind.name != b.kind.name:
        raise ValidationError(f"runs of different kinds: {str(a.folder)!r} is {a.kind.name!r}, "
                              f"{str(b.folder)!r} is {b.kind.name!r}; compare two runs of one kind")
    names = grid_variables(a.kind, a.dataset, b.dataset, variables)
    thresholds = dict(thresholds or {})
    for name in thresholds:
        if name not in names:
            raise ValidationError(f"threshold for {name!r}: not a compared variable; compared: {names}")
    diffs: dict[str, xr.DataArray] = {}
    stats: dict[str, dict[str, Any]] = {}
    grid: dict[str, Any] = {"gridded": bool(names), "same_grid": None, "resampled": None}
    for name in names:
        ga, gb = grid_of(a.dataset, name), grid_of(b.dataset, name)
        same = same_grid(ga, gb)
        gbb = on_grid_of(ga, gb)
        va = np.asarray(ga.values, dtype=np.float32)
        vb = np.asarray(gbb.values, dtype=np.float32)
        d = vb - va
        units = str(ga.attrs.get("units", ""))
        thr = float(thresholds.get(name, default_threshold(units, va, vb)))
        long = str(ga.attrs.get("long_name") or name.replace("_", " "))
        diffs[name] = xr.DataArray(d, dims=("y", "x"), coords={"y": ga["y"].values, "x": ga["x"].values},
                                   name=f"{name}_b_minus_a",
                                   attrs={"units": units, "long_name": f"B - A of {long}",
                                          "crs": ga.attrs["crs"], "transform": ga.attrs["transform"]})
        stats[name] = difference_stats(d, va, vb, threshold=thr, area_km2=cell_area_km2(ga),
                                       x=ga["x"].values, y=ga["y"].values, crs=ga.attrs["crs"])
        grid.update(same_grid=same, crs=ga.attrs["crs"], shape=list(ga.shape),
                    transform=[float(v) for v in ga.attrs["transform"]])
        if not same:
            grid["resampled"] = (f"B's grid {list(gb.shape)} (transform {[float(v) for v in gb.attrs['transform']]}) "
                                 f"differs from A's: B was resampled onto A's grid (nearest cell; "
                                 "NaN where B has no cell)")
    return Comparison(kind=a.kind, a=a, b=b, differences=diffs, stats=stats,
                      kpis=kpi_rows(a.kind, a.summary, b.summary), grid=grid,
                      requests=request_differences(a.summary, b.summary))


def compare_runs(a: str | os.PathLike | Run, b: str | os.PathLike | Run, out_dir: str | os.PathLike, *,
                 city: Any = "auto", thresholds: Mapping[str, float] | None = None,
                 variables: Sequence[str] | None = None, map: bool = True, report: bool = True) -> Comparison:
    """Compare two finished runs of one kind and write the files of the module docstring.

    Parameters
    ----------
    a, b : path or Run
        Run folders (or their main NetCDF); A is the reference: differences are B − A on A's grid.
    out_dir : path
        Folder for ``compare.nc`` (gridded kinds), ``compare.csv``, ``compare.json``, ``map.html``,
        ``compare.html`` (created).
    city : str, twin.city.City, None or "auto"
        City whose districts, coast and metro the maps draw; "auto": ``shenzhen`` unless A is a run
        on a plain DEM (a grid without a ``district`` variable).
    thresholds : mapping, optional
        Variable → threshold of "B exceeds A" (default :func:`default_threshold`).
    variables : list of str, optional
        Grid variables to difference instead of the default choice (:func:`grid_variables`).
    map, report : bool
        Also write ``map.html`` and ``compare.html``.

    Returns
    -------
    Comparison
        The runs opened here from paths are closed on return (their differences, statistics and
        KPIs are kept in memory).

    Raises
    ------
    twin.errors.ValidationError
        Runs of different kinds (both named), a bad variable or threshold.
    twin.errors.DataMissingError
        A folder that is not a run.
    """
    opened: list[Run] = []

    def run_of(x: str | os.PathLike | Run) -> Run:
        if isinstance(x, Run):
            return x
        opened.append(open_run(x))
        return opened[-1]

    try:
        ra, rb = run_of(a), run_of(b)
        return _compare_and_write(ra, rb, Path(out_dir), city=city, thresholds=thresholds,
                                  variables=variables, map=map, report=report)
    finally:
        for r in opened:
            r.close()


def _compare_and_write(ra: Run, rb: Run, out: Path, *, city: Any, thresholds: Mapping[str, float] | None,
                       variables: Sequence[str] | None, map: bool, report: bool) -> Comparison:
    """:func:`compare_runs` on opened runs."""
    cmp = compare(ra, rb, thresholds=thresholds, variables=variables)
    out.mkdir(parents=True, exist_ok=True)
    if cmp.differences:
        cmp.paths["netcdf"] = write_compare_nc(cmp, out / COMPARE_NC)
    cmp.paths["csv"] = write_kpi_csv(cmp.kpis, out / COMPARE_CSV)
    if city == "auto":
        ds = ra.dataset
        city = None if has_grid(ds) and "district" not in ds else "shenzhen"
    if map:
        cmp.paths["map"] = write_compare_map(cmp, out / MAP_HTML, city=city)
    if report:
        cmp.paths["report"] = write_compare_report(cmp, out / REPORT_HTML)
    cmp.paths["json"] = out / COMPARE_JSON
    from twin.pipeline import write_json

    write_json(cmp.to_json(), cmp.paths["json"])
    return cmp


# ----------------------------------------------------------------------------- files
def write_compare_nc(cmp: Comparison, path: str | os.PathLike) -> Path:
    """``compare.nc``: each B − A grid with its statistics in its attrs, CF georeferencing."""
    from gis.raster import write_netcdf

    data = {}
    for name, d in cmp.differences.items():
        st = cmp.stats[name]
        attrs = {"units": d.attrs["units"], "long_name": d.attrs["long_name"]}
        attrs.update({k: v for k, v in st.items() if isinstance(v, int | float)})
        data[d.name] = xr.DataArray(d.values, dims=d.dims, coords=d.coords, attrs=attrs)
    first = next(iter(cmp.differences.values()))
    ds = xr.Dataset(data, attrs={
        "title": f"B - A: {cmp.title}", "kind": cmp.kind.name, "run_a": str(cmp.a.folder),
        "run_b": str(cmp.b.folder), "crs": first.attrs["crs"], "transform": list(first.attrs["transform"]),
        "grid": "A's grid" + ("" if cmp.grid["same_grid"] else "; " + str(cmp.grid["resampled"])),
        "main_variable": str(cmp.main_variable)})
    return write_netcdf(ds, path)


KPI_COLUMNS = ("key", "label", "group", "a", "b", "b_minus_a", "relative_change")


def write_kpi_csv(rows: list[dict[str, Any]], path: str | os.PathLike) -> Path:
    """``compare.csv``: one row per KPI (:data:`KPI_COLUMNS`; an absent value is an empty cell)."""
    path = Path(path)
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=KPI_COLUMNS)
        w.writeheader()
        for r in rows:
            w.writerow({k: "" if r.get(k) is None else r[k] for k in KPI_COLUMNS})
    return path



# ----------------------------------------------------------------------------- map page
def diff_ramp(units: str, d: np.ndarray) -> Any:
    """Diverging ramp of a B − A grid: the flood's (±2 m) for metres, else the same colours scaled
    to a round number above the largest |B − A|."""
    from viz.layers._raster import Ramp
    from viz.layers.diff import DIFF_RAMP

    if units == "m":
        return DIFF_RAMP
    ok = np.abs(d[np.isfinite(d)])
    top = float(ok.max()) if ok.size and ok.max() > 0 else 1.0
    mag = 10.0 ** math.floor(math.log10(top))
    scale = next(m * mag for m in (1.0, 2.0, 5.0, 10.0) if m * mag >= top)
    return Ramp([(float(v) * scale / 2.0, tuple(int(c) for c in col))
                 for v, col in zip(DIFF_RAMP.values, DIFF_RAMP.colours, strict=True)], transparent_below=False)


def _short_name(da: xr.DataArray, name: str) -> str:
    """A variable's ``long_name`` when it fits a layer panel (<= 32 characters), else its name."""
    long = str(da.attrs.get("long_name") or "")
    return long if long and len(long) <= 32 else name


@dataclass(frozen=True)
class _DifferenceKind:
    """The B − A layers of a comparison in the shape of a run kind, so :func:`viz.run_map.run_scene`
    draws them on A's basemap with the city's vectors and labels, as it draws any run."""

    cmp: Comparison
    map_view: Any = None

    @property
    def name(self) -> str:
        return f"{self.cmp.kind.name}_compare"

    @property
    def title(self) -> str:
        return f"B − A: {self.cmp.title}"

    def layers(self, ds: xr.Dataset, warp: Any = None, max_px: int | None = None) -> list:
        from viz.layers import build
        from viz.layers._raster import MAX_PX

        sets = []
        for k, (name, d) in enumerate(self.cmp.differences.items()):
            a = grid_of(self.cmp.a.dataset, name)
            b = a.copy(data=np.asarray(a.values, dtype=np.float32) + d.values)  # B on A's grid
            units = str(d.attrs.get("units", ""))
            long = _short_name(a, name)
            s = build("diff", a, b, title=f"{long}: B − A", units=units, ramp=diff_ramp(units, d.values),
                      threshold=self.cmp.stats[name]["threshold"], max_px=max_px or MAX_PX,
                      layer_id="diff" if k == 0 else f"diff_{name}", label=f"B − A: {long}")
            s.visible = k == 0
            sets.append(s)
        return sets


def write_compare_map(cmp: Comparison, path: str | os.PathLike, *, city: Any = None) -> Path:
    """``map.html``: split view A | B of the runs' own map scenes (views and time sliders in step),
    with the B − A layers behind the "show difference" toggle when the runs have a grid."""
    from viz.page import write_page
    from viz.run_map import run_scene

    sa = run_scene(cmp.kind, cmp.a.dataset, city=city, title=f"A: {cmp.a.name}")
    sb = run_scene(cmp.kind, cmp.b.dataset, city=city, title=f"B: {cmp.b.name}")
    sb.view = dict(sa.view)
    diff = None
    if cmp.differences:
        main = cmp.main_variable
        long = _short_name(cmp.a.dataset[main], main)
        diff = run_scene(_DifferenceKind(cmp), cmp.a.dataset, city=city, title=f"B − A: {long}")
        diff.view = dict(sa.view)
    return write_page(sa.to_json(), path, title=cmp.title,
                      compare=(sb.to_json(), diff.to_json() if diff is not None else None))


# ----------------------------------------------------------------------------- report
def _fmt(v: Any) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return number_text(v)
    return html.escape(json.dumps(v, ensure_ascii=False) if isinstance(v, list | dict) else str(v))


def number_text(v: float | int | None) -> str:
    """A KPI value as text: thousands separated from 1000 on, else 4 significant digits; "–" for None."""
    if v is None:
        return "–"
    if isinstance(v, int) or abs(v) >= 1000:
        return f"{v:,.0f}"
    return f"{v:.4g}"


def _html_table(head: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    th = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{_fmt(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>"


#: Row names of the difference statistics (:func:`difference_stats`) in the report.
STAT_LABELS = {
    "cells_compared": "cells with a value in both runs", "cells_only_a": "cells with a value in A only",
    "cells_only_b": "cells with a value in B only", "min": "lowest B − A", "max": "highest B − A",
    "mean": "mean B − A", "threshold": "threshold", "cells_b_above": "cells where B exceeds A by > threshold",
    "cells_b_below": "cells where B is below A by > threshold",
    "area_b_above_km2": "area where B exceeds A by > threshold (km²)",
    "area_b_below_km2": "area where B is below A by > threshold (km²)",
    "max_at": "highest B − A at (lon, lat)", "min_at": "lowest B − A at (lon, lat)",
}


def _percent(v: float | None) -> str | None:
    return None if v is None else f"{100.0 * v:+.1f} %"


def difference_figure(cmp: Comparison, name: str) -> Any:
    """Matplotlib figure of the B − A grid of ``name`` (over A's hillshade when A has an elevation)."""
    from gis.raster import transform_of
    from viz import plots as P

    d = cmp.differences[name]
    t = transform_of(d)
    h, w = d.shape
    extent = [t.c / 1e3, (t.c + t.a * w) / 1e3, (t.f + t.e * h) / 1e3, t.f / 1e3]
    ok = np.abs(d.values[np.isfinite(d.values)])
    top = float(ok.max()) if ok.size and ok.max() > 0 else 1.0
    with P.style():
        fig = P.new_figure(7.0, 7.0 * h / max(w, 1) * 0.9 + 0.6)
        ax = fig.add_subplot()
        ds = cmp.a.dataset
        if "elevation" in ds and ds["elevation"].shape == d.shape:
            shade = P.hillshade_array(np.asarray(ds["elevation"].values, float), abs(t.a), abs(t.e))
            ax.imshow(shade, cmap="gray", extent=extent, vmin=0, vmax=1, alpha=0.5)
        im = ax.imshow(np.ma.masked_invalid(d.values), cmap="RdBu_r", vmin=-top, vmax=top, extent=extent)
        fig.colorbar(im, ax=ax, shrink=0.8, label=f"B − A ({d.attrs.get('units', '')})")
        ax.set_xlabel(f"x (km, {d.attrs['crs']})")
        ax.set_ylabel("y (km)")
        ax.set_title(f"{name}: B − A (red: B higher, blue: B lower)")
    return fig


def report_sections(cmp: Comparison) -> list[str]:
    """HTML sections of ``compare.html``: runs, request differences, KPIs, differences."""
    from viz.report import figure_html

    a, b = cmp.a, cmp.b
    runs = _html_table(["", "folder", "title", "request"], [
        [r, str(x.folder), str(x.dataset.attrs.get("title") or x.kind.title),
         x.kind.describe_params(x.summary.get("request") or {})] for r, x in (("A", a), ("B", b))])
    req = (_html_table(["field", "A", "B"], [[r["field"], r["a"], r["b"]] for r in cmp.requests])
           if cmp.requests else "<p>Both runs have the same request.</p>")
    out = [f"<section><h2>Runs</h2>{runs}<h2>What differs in the requests</h2>{req}</section>"]
    kpis = _html_table(["KPI", "group", "A", "B", "B − A", "change"], [
        [r["label"], r["group"], r["a"], r["b"], r["b_minus_a"], _percent(r["relative_change"])]
        for r in cmp.kpis])
    out.append(f"<section><h2>Key figures</h2>{kpis}<p class=\"note\">From the runs' summary.json; "
               "change is (B − A) / |A|.</p></section>")
    if not cmp.differences:
        out.append("<section><h2>Difference maps</h2><p>These runs have no result grid to difference (no "
                   "model grid, or only inputs on it), so there is no B − A map: map.html shows the two "
                   "runs side by side (A | B).</p></section>")
        return out
    grid = cmp.grid["resampled"] or "Both runs are on the same grid: B − A is a cell-by-cell subtraction."
    out.append(f"<section><h2>Difference maps</h2><p>{html.escape(grid)}</p></section>")
    for name, d in cmp.differences.items():
        st = cmp.stats[name]
        units = str(d.attrs.get("units", ""))
        rows = [[STAT_LABELS.get(k, k), v] for k, v in st.items() if not isinstance(v, dict)]
        rows += [[STAT_LABELS.get(k, k), f"{v['lon']:.5f}, {v['lat']:.5f}"] for k, v in st.items()
                 if isinstance(v, dict)]
        out.append(f"<section><h2>{html.escape(d.attrs['long_name'])} ({html.escape(units)})</h2>"
                   + _html_table(["statistic", "value"], rows)
                   + figure_html(difference_figure(cmp, name), f"B − A of {name}",
                                 f"B − A of {html.escape(name)}; above/below: |B − A| > {st['threshold']:g} "
                                 f"{html.escape(units)}")
                   + "</section>")
    return out


def write_compare_report(cmp: Comparison, path: str | os.PathLike) -> Path:
    """``compare.html``: an offline report (no scripts, nothing loaded) of the comparison."""
    from viz.offline import assert_offline
    from viz.report import report_page

    page = report_page(cmp.title, f"{cmp.kind.title} · A = {cmp.a.folder} · B = {cmp.b.folder}",
                       report_sections(cmp), "Shenzhen Twin · twin compare · this page loads nothing from the network")
    assert_offline(page)
    path = Path(path)
    path.write_text(page, encoding="utf-8")
    return path

__all__ = ["COMPARE_CSV", "COMPARE_JSON", "COMPARE_NC", "KPIS", "KPI_COLUMNS", "MAP_HTML", "REPORT_HTML",
           "STATIC_GRID_VARIABLES", "STAT_LABELS", "THRESHOLDS_BY_UNITS", "Comparison", "Run",
           "cell_area_km2", "compare", "compare_runs", "default_threshold", "diff_ramp", "difference_figure",
           "difference_stats", "grid_of", "grid_variables", "has_grid", "kind_of", "kpi_rows", "number_text",
           "on_grid_of", "open_run", "report_sections", "request_differences", "same_grid",
           "write_compare_map", "write_compare_nc", "write_compare_report", "write_kpi_csv"]
