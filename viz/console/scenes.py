"""Scenes the console serves: the basemap, a run's forecast, two runs compared, and the live sensors.

A scene is the JSON dict of the viz contract (``title``, ``view``, ``layers``
— deck.gl layer JSON as pydeck emits it —, ``legends``, ``timeline``); the page
hands it to ``TwinMap``. Scenes are built once and cached (the basemap per
process, the forecast per finished run, the compare per pair of runs; a few
of each), except the sensors layer, which follows the live state.
"""

from __future__ import annotations

import html
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

from twin.errors import DataMissingError
from twin.sensor_status import STATUS_COLOURS
from viz.layers.sensors import status_points_layer

#: Colours of the sensor statuses (RGBA) as JSON lists: :data:`twin.sensor_status.STATUS_COLOURS`.
STATUS_COLORS = {k: list(v) for k, v in STATUS_COLOURS.items()}
BASE_VECTORS = ("coast", "roads", "metro_lines", "metro_stations")
BASE_MAX_PX = 1600
FORECAST_MAX_PX = 1024
#: Title of the forecast scene when no forecast cycle was issued (``twin forecast`` issues them).
NO_FORECAST = "No forecast issued yet: `twin forecast` issues them; pick a run in the list to show it"
CACHED_SCENES = 6  # forecasts (and compares) kept: the one shown, a compared pair, a few picked back


def empty_scene(title: str, view: dict[str, float] | None = None) -> dict[str, Any]:
    """A valid scene with no layers."""
    return {"title": title,
            "view": view or {"longitude": 114.06, "latitude": 22.6, "zoom": 9.5},
            "layers": [], "legends": [], "timeline": None}


def base_scene(city: Any, resolution: float = 90.0) -> dict[str, Any]:
    """The city's basemap: hillshade with water, districts, coast, roads and metro, and their labels.

    Built from the layer kinds of :mod:`viz.layers` (``basemap``, ``roads``, ``metro``);
    optional vector layers the city lacks are left out.
    """
    from gis.raster import make_grid, transform_of
    from gis.terrain import hillshade
    from viz.flood_map import add_labels
    from viz.layers import build
    from viz.scene import Scene

    ds = city.static(resolution, terrain=False)
    shade = hillshade(ds["elevation"])
    water = make_grid((ds["land"].values == 0).astype("uint8"), transform_of(ds), ds.attrs["crs"],
                      name="water")
    vec = {name: _optional_vector(city, name) for name in BASE_VECTORS}
    sets = [build("basemap", shade, water=water, districts=city.districts(), coast=vec["coast"],
                  max_px=BASE_MAX_PX)]
    if vec["roads"] is not None:
        sets.append(build("roads", vec["roads"]))
    if vec["metro_lines"] is not None or vec["metro_stations"] is not None:
        sets.append(build("metro", vec["metro_lines"], vec["metro_stations"]))
    scene = Scene(title=f"{city.manifest.city.title} — basemap", sets=sets)
    add_labels(scene, {"districts": city.districts(), **vec})
    return {**scene.to_json(), "bounds": scene.bounds()}


def _optional_vector(city: Any, name: str) -> Any:
    try:
        return city.vector(name)
    except DataMissingError:
        if not city.manifest.layers[name].optional:
            raise
        return None


def _shown(e: dict[str, Any]) -> str:
    """A row's reading as the console shows it: its display form (``shown``), else the stored SI value."""
    shown = e.get("shown") or {}
    if shown.get("value") is not None:
        return str(shown["value"])
    return "—" if e.get("value") is None else f"{e['value']:.4g} {e.get('unit') or ''}".strip()


def sensors_layer(entries: list[dict[str, Any]]) -> dict[str, Any]:
    """deck.gl ScatterplotLayer JSON of the located sensors, coloured by status (readings in display units)."""
    points = []
    for e in entries:
        tip = html.escape(f"{e['id']}: {_shown(e)} ({e['status']})")
        points.append({"id": e["id"], "lon": e.get("lon"), "lat": e.get("lat"), "status": e["status"],
                       "tooltip": tip})
    return status_points_layer(points)


def forecast_scene(run: dict[str, Any], run_dir: Path, ds: Any = None) -> dict[str, Any]:
    """Scene of a finished run: the layers its kind registers (:attr:`twin.runkinds.RunKind.layers`).

    Built from the kind's main output in ``run_dir`` (or ``ds``, that output already open);
    ``run`` (the run id) is added to it.
    """
    from twin.runkinds import get_kind
    from viz.layers._raster import MercatorWarp
    from viz.scene import Scene

    kind = get_kind(run["kind"])
    title = f"{kind.title} #{run['id']}: {kind.describe_params(run.get('params') or {})}"
    if ds is None:
        ds = _open_output(run, run_dir)
    if not is_gridded(ds):
        return _gridless_scene(kind, ds, title, run["id"])
    warp = MercatorWarp.for_grid(ds, max_px=FORECAST_MAX_PX)
    scene = Scene(title=title, sets=kind.layers(ds, warp=warp, max_px=FORECAST_MAX_PX))
    return {**scene.to_json(), "bounds": scene.bounds(), "run": run["id"], "gridded": True}


def is_gridded(ds: Any) -> bool:
    """True for a run on a model grid (``x``/``y`` dimensions): a flood; False for agents on roads, a building."""
    return "x" in ds.dims and "y" in ds.dims


def _gridless_scene(kind: Any, ds: Any, title: str, run_id: int) -> dict[str, Any]:
    """Scene of a run without a model grid, as its offline map draws it (:func:`viz.run_map.run_scene`).

    Only the kind's own layers are kept (the console draws its basemap under them); ``bounds``
    is the extent the map opens on and ``view`` keeps the kind's ``map_view`` (e.g. the pitch
    that stands a building's floors up), which the page uses instead of fitting the bounds.
    """
    from viz.run_map import layers_bounds, run_scene

    scene = run_scene(kind, ds, city=None, title=title, max_px=FORECAST_MAX_PX)
    bounds = layers_bounds(scene.sets) or scene.bounds()
    return {**scene.to_json(), "bounds": list(bounds) if bounds is not None else None, "run": run_id,
            "gridded": False}


def _open_output(run: dict[str, Any], run_dir: Path) -> Any:
    import xarray as xr

    from twin.runkinds import get_kind

    path = Path(run_dir) / get_kind(run["kind"]).output
    try:
        with xr.open_dataset(path) as ds:
            return ds.load()
    except (OSError, ValueError) as exc:
        raise DataMissingError(f"run {run['id']}: cannot read {path}: {exc}") from exc


def compared_variable(kind: Any, ds: Any) -> str:
    """The variable of ``ds`` the A/B compare differences: the kind's ``compare``, else the first 2-D one."""
    from twin.errors import ValidationError

    if kind.compare is not None:
        if kind.compare not in ds:
            raise ValidationError(f"run kind {kind.name!r} compares {kind.compare!r}, which its "
                                  f"output lacks (has {sorted(ds.data_vars)})")
        return kind.compare
    for name, v in ds.data_vars.items():
        if v.dims == ("y", "x"):
            return str(name)
    raise ValidationError(f"run kind {kind.name!r}: its output has no (y, x) variable to compare")


def compare_scene(a: tuple[dict[str, Any], Path], b: tuple[dict[str, Any], Path]) -> dict[str, Any]:
    """Two finished runs of one kind for ``TwinMap.compare``: ``{"a", "b", "diff", "variable", "title"}``.

    ``a`` and ``b`` are the runs' forecast scenes (:func:`forecast_scene`); ``diff``
    is a scene of the B − A difference of the compared variable
    (:func:`compared_variable`) on A's grid, the ``diff`` layer kind of :mod:`viz.layers`.
    """
    from twin.errors import ValidationError
    from twin.runkinds import get_kind
    from viz.layers import build
    from viz.scene import Scene

    (ra, da), (rb, db) = a, b
    if ra["kind"] != rb["kind"]:
        raise ValidationError(f"runs {ra['id']} ({ra['kind']}) and {rb['id']} ({rb['kind']}) are of "
                              "different kinds: compare two runs of one kind")
    kind = get_kind(ra["kind"])
    dsa, dsb = _open_output(ra, da), _open_output(rb, db)
    if not (is_gridded(dsa) and is_gridded(dsb)):
        raise ValidationError(f"{kind.title} runs have no map grid, so there is no B − A difference map "
                              f"to show: compare runs {ra['id']} and {rb['id']} by their summaries "
                              "in the run list, or show each on the map")
    var = compared_variable(kind, dsa)

    def grid(ds: Any) -> Any:
        g = ds[var].copy(deep=False)
        g.attrs = {**{k: ds.attrs[k] for k in ("crs", "transform") if k in ds.attrs}, **g.attrs}
        return g

    ga, gb = grid(dsa), grid(dsb)
    units = str(ga.attrs.get("units", ""))
    name = str(ga.attrs.get("long_name") or var.replace("_", " "))
    title = f"#{rb['id']} − #{ra['id']}: {name}"
    diff = Scene(title=title, sets=[build("diff", ga, gb, title=f"{name} B − A", units=units,
                                          max_px=FORECAST_MAX_PX)])
    sa, sb = forecast_scene(ra, da, dsa), forecast_scene(rb, db, dsb)
    return {"a": {**sa, "title": "A: " + sa["title"]}, "b": {**sb, "title": "B: " + sb["title"]},
            "diff": {**diff.to_json(), "bounds": diff.bounds()}, "variable": var, "units": units,
            "title": f"{kind.title}: #{ra['id']} (A) and #{rb['id']} (B)", "runs": [ra["id"], rb["id"]]}


class SceneCache:
    """Builds each scene once (thread-safe): the basemap, the forecast per run id, the compare per pair."""

    def __init__(self, city: Any, *, base_resolution: float = 90.0) -> None:
        self.city = city
        self.base_resolution = float(base_resolution)
        self._lock = threading.Lock()
        self._base: dict[str, Any] | None = None
        self._scenes: OrderedDict[Any, dict[str, Any]] = OrderedDict()

    def _cached(self, key: Any, make: Any) -> dict[str, Any]:
        with self._lock:
            if key in self._scenes:
                self._scenes.move_to_end(key)
                return self._scenes[key]
            scene = make()
            self._scenes[key] = scene
            while len(self._scenes) > CACHED_SCENES:
                self._scenes.popitem(last=False)
            return scene

    def base(self) -> dict[str, Any]:
        with self._lock:
            if self._base is None:
                self._base = base_scene(self.city, self.base_resolution)
            return self._base

    def forecast(self, latest: tuple[dict[str, Any], Path] | None) -> dict[str, Any]:
        if latest is None:
            out = empty_scene(NO_FORECAST)
            out["run"] = None
            return out
        run, run_dir = latest
        return self._cached(("forecast", run["id"]), lambda: forecast_scene(run, run_dir))

    def compare(self, a: tuple[dict[str, Any], Path], b: tuple[dict[str, Any], Path]) -> dict[str, Any]:
        return self._cached(("compare", a[0]["id"], b[0]["id"]), lambda: compare_scene(a, b))


__all__ = ["NO_FORECAST", "STATUS_COLORS", "SceneCache", "base_scene", "compare_scene", "compared_variable", "empty_scene",
           "forecast_scene", "sensors_layer"]
