"""Figures of flood runs and sensor feeds (viz.plots).

The flood figures are checked against the numbers of a small real run of the
model (physics.flood.simulate on a 40 x 60 bowl, a few seconds): what a figure
draws must equal what the Dataset holds, and the Dataset's rain must equal the
rain that was prescribed. Sensor figures use a real Store with alert events
from the real AlertEngine and the packaged alerts.toml.
"""

from __future__ import annotations

import json
import os
import warnings
from datetime import UTC, datetime, timedelta

import matplotlib.dates as mdates
import numpy as np
import pytest
import xarray as xr
from affine import Affine
from click.testing import CliRunner
from PIL import Image

from gis.raster import make_grid
from hardware_bridge.fusion import Reading
from hardware_bridge.fusion.alerts import AlertEngine
from physics.flood import simulate
from physics.forcing import UniformRain
from twin.errors import ValidationError
from twin.store import Store
from viz import plots as P
from viz.browser import count_non_background

D = 10.0
ORIGIN = (500000.0, 2500000.0)
RAIN = ([0.0, 600.0, 1200.0, 1800.0], [20.0, 80.0, 10.0])  # block edges (s), rates (mm/h)


def _dem():
    ny, nx = 40, 60
    yy, xx = np.mgrid[0:ny, 0:nx]
    z = 0.02 * np.hypot(xx - 30, yy - 20) * D + 0.5 * np.sin(xx / 5.0)
    return make_grid(z, Affine(D, 0, ORIGIN[0], 0, -D, ORIGIN[1]), "EPSG:4547", name="elevation", units="m")


@pytest.fixture(scope="module")
def run():
    """A 40-minute rain-on-grid run in a closed bowl, frames every 5 min."""
    rain = UniformRain(*RAIN)
    ds = simulate(_dem(), 2400.0, rain=rain, output_every_s=300.0, manning=0.03, drainage_mm_h=5.0)
    return ds, rain


# ------------------------------------------------------------------------- numbers
def test_rain_series_is_the_prescribed_rain(run):
    ds, rain = run
    rs = P.rain_series(ds)
    t = ds["time"].values
    area = ds.sizes["y"] * ds.sizes["x"] * D * D
    assert rs["rain_area_m2"] == pytest.approx(area)
    np.testing.assert_allclose(rs["cumulative_mm"], ds["volume_rain"].values / area * 1000.0, rtol=1e-12)
    # and the model's rain volume is the prescribed hyetograph (independent of the dataset)
    np.testing.assert_allclose(rs["cumulative_mm"], [rain.depth_mm(0.0, s) for s in t], rtol=1e-9, atol=1e-12)
    # 5-minute frames inside 10-minute blocks: each interval's mean is its block's rate
    expect = [20, 20, 80, 80, 10, 10, 0, 0]
    np.testing.assert_allclose(rs["intensity_mm_h"], expect, rtol=1e-9, atol=1e-9)


def test_area_by_class_adds_up_to_flooded_area(run):
    ds, _ = run
    ac = P.area_by_class(ds)
    assert ac["km2"].shape == (4, ds.sizes["time"])
    assert ac["km2"].sum() > 0
    # the model's flooded_area counts cells >= h_arrive (0.15 m), the lowest class edge
    assert ds.attrs["h_arrive_m"] == P.DEPTH_CLASSES_M[0]
    np.testing.assert_allclose(ac["km2"].sum(axis=0), ds["flooded_area"].values / 1e6, rtol=1e-12)
    h = ds["depth"].isel(time=-1).values
    assert ac["km2"][-1, -1] == pytest.approx(np.count_nonzero(h >= 1.0) * D * D / 1e6)
    assert ac["km2"][1, -1] == pytest.approx(np.count_nonzero((h >= 0.3) & (h < 0.5)) * D * D / 1e6)


def test_balance_series_closes(run):
    ds, _ = run
    b = P.balance_series(ds)
    net = b["rain"] + b["inflow"] - b["infiltration"] - b["drainage"] - b["outflow"] - b["to_sea"] + b["correction"]
    np.testing.assert_allclose(b["storage_change"] - net, b["error"], atol=1e-9)
    assert b["drainage"][-1] > 0 and b["storage_change"][-1] > 0
    assert abs(b["relative_error"][-1]) < 1e-12


def test_depth_at_in_working_crs_and_lonlat(run):
    ds, _ = run
    j, i = 20, 30
    x, y = float(ds["x"][i]), float(ds["y"][j])
    np.testing.assert_array_equal(P.depth_at(ds, x, y), ds["depth"].values[:, j, i])
    lon, lat = P.lonlat_of(ds, [x], [y])
    np.testing.assert_array_equal(P.depth_at(ds, lon[0], lat[0], crs="EPSG:4326"), ds["depth"].values[:, j, i])
    with pytest.raises(ValidationError, match="outside the flood grid"):
        P.depth_at(ds, 114.5, 22.0, crs="EPSG:4326")


def test_deepest_locations_are_separated_maxima(run):
    ds, _ = run
    top = P.deepest_locations(ds, 5, min_separation_m=100.0)
    md = ds["max_depth"].values
    assert top[0]["max_depth_m"] == pytest.approx(float(md.max()))
    depths = [p["max_depth_m"] for p in top]
    assert depths == sorted(depths, reverse=True)
    for a in top:
        for b in top:
            if a is not b:
                assert np.hypot(a["x"] - b["x"], a["y"] - b["y"]) >= 100.0
    assert 113.9 < top[0]["lon"] < 114.1 and 22.5 < top[0]["lat"] < 22.7  # EPSG:4547 near Shenzhen


# ------------------------------------------------------------------------- figures
def test_rain_depth_figure_draws_the_dataset_numbers(run):
    ds, _ = run
    rs = P.rain_series(ds)
    fig = P.rain_depth_figure(ds)
    by = {ax.get_ylabel(): ax for ax in fig.axes}
    ax_rate, ax_cum, ax_depth = by["rain intensity (mm/h)"], by["cumulative rain (mm)"], by["water depth (m)"]
    heights = [p.get_height() for p in ax_rate.patches]
    np.testing.assert_allclose(heights, rs["intensity_mm_h"])
    np.testing.assert_allclose(ax_cum.lines[0].get_ydata(), ds["volume_rain"].values / rs["rain_area_m2"] * 1000)
    top = P.deepest_locations(ds, 1)[0]
    np.testing.assert_allclose(ax_depth.lines[0].get_ydata(), P.depth_at(ds, top["x"], top["y"]))
    assert len(fig.axes) == 3 and ax_depth.get_xlabel() == "time since start of run (h)"


def test_rain_depth_figure_at_given_lonlat_points(run):
    ds, _ = run
    x, y = float(ds["x"][10]), float(ds["y"][5])
    lon, lat = P.lonlat_of(ds, [x], [y])
    fig = P.rain_depth_figure(ds, {"gauge A": (lon[0], lat[0])}, crs="EPSG:4326")
    line = [ax for ax in fig.axes if ax.get_ylabel() == "water depth (m)"][0].lines[0]
    assert line.get_label() == "gauge A"
    np.testing.assert_allclose(line.get_ydata(), ds["depth"].values[:, 5, 10])


def test_area_balance_figure(run):
    ds, _ = run
    fig = P.area_balance_figure(ds)
    axa, axb, axc = fig.axes[:3]
    assert axa.get_ylabel() == "flooded land area (km²)"
    assert "m³" in axb.get_ylabel() and axc.get_ylabel().startswith("|error|")
    # the rain line of the balance panel is volume_rain in the panel's unit (m³ for this small run)
    rain_line = [ln for ln in axb.lines if ln.get_label() == "rain received"][0]
    np.testing.assert_allclose(rain_line.get_ydata(), ds["volume_rain"].values)
    np.testing.assert_allclose(axc.lines[0].get_ydata(),
                               np.maximum(np.abs(ds["volume_relative_error"].values), 1e-17))
    # the stacked parts reach the rain line at the end (the balance closes)
    tops = [c.get_paths()[0].vertices[:, 1].max() for c in axb.collections]
    assert max(tops) == pytest.approx(float(ds["volume_rain"][-1]), rel=1e-9)


def _depth_pixels(png) -> int:
    rgb = np.asarray(Image.open(png).convert("RGB"), dtype=np.int16)
    hits = 0
    for c in P.DEPTH_COLOURS:
        ref = np.array([int(c[k:k + 2], 16) for k in (1, 3, 5)])
        hits += int((np.abs(rgb - ref).max(axis=-1) <= 12).sum())
    return hits


def test_max_depth_png_has_the_size_and_the_water(run, tmp_path):
    ds, _ = run
    fig = P.max_depth_figure(ds, dem=_dem())
    path = P.save_png(fig, tmp_path / "md.png", dpi=100)
    w, h = (fig.get_size_inches() * 100).round().astype(int)
    with Image.open(path) as im:
        assert im.format == "PNG" and im.size == (w, h)
    assert count_non_background(path) > 0.2 * w * h
    wet = _depth_pixels(path)
    # the same map with no water: the depth colours disappear (the colour bar keeps a few)
    dry = ds.copy()
    dry["max_depth"] = ds["max_depth"] * 0
    path2 = P.save_png(P.max_depth_figure(dry, dem=_dem(), top_n=0), tmp_path / "dry.png", dpi=100)
    assert wet > _depth_pixels(path2) + 500


def test_bad_inputs_name_the_variable(run):
    ds, _ = run
    with pytest.raises(ValidationError, match="volume_rain"):
        P.rain_series(ds.drop_vars("volume_rain"))
    with pytest.raises(ValidationError, match="'max_depth' has dims"):
        P.max_depth_figure(ds.assign(max_depth=ds["max_depth"].transpose("x", "y")))
    with pytest.raises(ValidationError, match="depth"):
        P.rain_depth_figure(ds.drop_vars(["depth", "speed"]), (ORIGIN[0] + 5, ORIGIN[1] - 5))
    with pytest.raises(ValidationError, match="xarray.Dataset"):
        P.area_balance_figure({"volume_rain": [1, 2]})
    with pytest.raises(ValidationError, match="pair of numbers"):
        P.rain_depth_figure(ds, {"a": "here"})
    # without frames the rain panel and the flooded-area series still draw
    fig = P.area_balance_figure(ds.drop_vars(["depth", "speed"]))
    assert fig.axes[0].get_ylabel() == "flooded land area (km²)"
    assert len(P.rain_depth_figure(ds.drop_vars(["depth", "speed"])).axes) == 2


def test_cjk_text_renders_with_a_cjk_font(tmp_path):
    fams = P.font_families()
    if len(fams) < 2:
        if os.environ.get("CI"):
            pytest.fail("no CJK font found: CI must install fonts-noto-cjk")
        pytest.skip("no CJK font installed")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with P.style():
            fig = P.new_figure(3, 1)
            fig.text(0.1, 0.5, "福田区 暴雨红色预警", fontsize=14)
        P.save_png(fig, tmp_path / "cjk.png")
    assert not [w for w in caught if "missing from font" in str(w.message)]
    assert count_non_background(tmp_path / "cjk.png") > 200


# ------------------------------------------------------------------------- sensors
T0 = datetime(2023, 9, 7, 10, 0, tzinfo=UTC)


@pytest.fixture
def store(tmp_path):
    """A store with a rain gauge (5-min depths) and an H2S detector crossing both alert levels."""
    eng = AlertEngine()
    with Store.open(tmp_path / "store") as st:
        readings = []
        for k in range(72):
            t = T0 + timedelta(minutes=5 * k)
            mm = 12.0 * np.exp(-(((k - 36) / 10.0) ** 2))
            st.put_observation("RG-0001/rain_gauge", t, mm / 1000.0, "m")
            readings.append(Reading("RG-0001/rain_gauge", "rain_gauge", t, mm / 1000.0, station="RG-0001", unit="m"))
        for k in range(120):
            t = T0 + timedelta(minutes=3 * k)
            ppm = 5.0 + 20.0 * np.exp(-(((k - 60) / 15.0) ** 2))
            st.put_observation("GS-01/gas_h2s", t, ppm * 1e-6, "1")
            readings.append(Reading("GS-01/gas_h2s", "gas_h2s", t, ppm * 1e-6, station="GS-01", unit="1"))
        for e in eng.evaluate(readings):
            st.put_event(e)
        yield st


def test_sensor_figure_gas_levels_and_events(store):
    fig = P.sensor_figure(store, "GS-01/gas_h2s")
    ax = fig.axes[0]
    obs = store.observations("GS-01/gas_h2s")
    np.testing.assert_allclose(ax.lines[0].get_ydata(), [o.value * 1e6 for o in obs])
    assert ax.get_ylabel() == "H₂S (ppm)" and "UTC+8" in ax.get_xlabel()
    hlines = {round(float(ln.get_ydata()[0]), 6) for ln in ax.lines
              if len(ln.get_ydata()) == 2 and ln.get_ydata()[0] == ln.get_ydata()[1]}
    assert {7.06, 14.1} <= hlines  # warning and alarm levels of alerts.toml
    events = [e for e in store.events() if e.source == "GS-01/gas_h2s" and e.kind == "threshold_crossed"]
    assert {e.severity.value for e in events} == {"warning", "alarm"}
    vlines = {round(float(mdates.date2num(ln.get_xdata()[0])), 6) for ln in ax.lines
              if len(ln.get_xdata()) == 2 and ln.get_xdata()[0] == ln.get_xdata()[1]}
    for e in events:
        when = datetime.fromisoformat(e.data["phenomenon_time"])
        assert round(float(mdates.date2num(when)), 6) in vlines
    assert "2023-09-07 18:00" in ax.get_title()  # 10:00 UTC shown in Shenzhen time


def _hlines(ax) -> set[float]:
    return {round(float(ln.get_ydata()[0]), 6) for ln in ax.lines
            if len(ln.get_ydata()) == 2 and ln.get_ydata()[0] == ln.get_ydata()[1]}


def test_co_stored_in_mol_per_mol_is_drawn_in_ppm(store):
    ppm = [2.0, 8.0, 30.0, 60.0, 250.0, 40.0, 5.0]
    for k, v in enumerate(ppm):
        store.put_observation("CO-01/gas_co", T0 + timedelta(minutes=k), v * 1e-6, "1")  # SI: mol/mol
    fig = P.sensor_figure(store, "CO-01/gas_co")
    ax = fig.axes[0]
    assert ax.get_ylabel() == "CO (ppm)"
    np.testing.assert_allclose(ax.lines[0].get_ydata(), np.array(ppm), rtol=1e-12)  # value * 1e6
    rules = [r for r in AlertEngine().rules_for("gas_co", "CO-01") if r.metric == "ppm"]
    assert rules and {round(r.threshold, 6) for r in rules} <= _hlines(ax)  # thresholds on the same scale
    assert all(f"{r.threshold:g} ppm" in " ".join(t.get_text() for t in ax.texts) for r in rules)


def test_heat_in_kelvin_is_drawn_in_celsius(store):
    for k, c in enumerate([22.0, 35.0, 61.0, 80.0]):
        store.put_observation("HT-01/heat", T0 + timedelta(minutes=k), c + 273.15, "K")
    ax = P.sensor_figure(store, "HT-01/heat").axes[0]
    assert ax.get_ylabel() == "temperature (°C)"
    np.testing.assert_allclose(ax.lines[0].get_ydata(), [22.0, 35.0, 61.0, 80.0], atol=1e-9)


@pytest.mark.parametrize("kind", ["gas_co", "gas_h2s", "gas_o2", "gas_lel", "smoke", "heat", "water_level",
                                  "gnss_displacement", "inclinometer"])
def test_alert_thresholds_are_in_the_display_unit_of_their_kind(kind):
    # the rules of alerts.toml are written in the operator's unit per metric: the one the plots draw
    from hardware_bridge.display import display_unit
    from hardware_bridge.fusion.alerts import METRIC_UNITS, METRICS, READING_METRICS

    unit = display_unit(kind).unit
    for m in METRICS[kind]:
        if m in READING_METRICS or m in P._FROM_BASELINE:
            assert METRIC_UNITS[m] == unit, (kind, m)


def test_a_threshold_in_another_unit_is_listed_not_drawn(store, monkeypatch):
    from hardware_bridge.fusion import alerts

    store.put_observation("CO-02/gas_co", T0, 8e-6, "1")
    store.put_observation("CO-02/gas_co", T0 + timedelta(minutes=1), 9e-6, "1")
    monkeypatch.setitem(alerts.METRIC_UNITS, "ppm", "mg/m3")
    ax = P.sensor_figure(store, "CO-02/gas_co").axes[0]
    assert ax.get_ylabel() == "CO (ppm)" and not _hlines(ax)
    assert "threshold in mg/m3, plotted in ppm" in " ".join(t.get_text() for t in ax.texts)


def test_sensor_figure_rain_windows(store):
    fig = P.sensor_figure(store, "RG-0001/rain_gauge")
    axw = fig.axes[1]
    obs = store.observations("RG-0001/rain_gauge")
    v = np.array([o.value for o in obs]) * 1000.0
    three_h = [ln for ln in axw.lines if ln.get_label() == "rain in last 3 h"][0].get_ydata()
    k = 50  # a window of 36 readings (3 h of 5-min depths) ends at reading k
    assert three_h[k] == pytest.approx(v[k - 35:k + 1].sum())
    labels = " ".join(t.get_text() for t in axw.texts)
    assert "≥ 100 mm: alarm in 3 h" in labels and "≥ 50 mm" in labels
    assert fig.axes[0].get_ylabel() == "rain per reading (mm)"
    assert axw.get_ylabel() == "rain in trailing window (mm)"


def test_sensor_figure_bad_ids(store):
    with pytest.raises(ValidationError, match="STATION/KIND"):
        P.sensor_figure(store, "nonsense")
    with pytest.raises(ValidationError, match="GS-02/gas_h2s"):
        P.sensor_figure(store, "GS-02/gas_h2s")


def test_cli_bridge_plot(store, tmp_path):
    from twin.cli import main

    out = tmp_path / "h2s.png"
    r = CliRunner().invoke(main, ["bridge", "plot", "--store", str(store.root), "--datastream", "GS-01/gas_h2s",
                                  "--out", str(out), "--since", "2023-09-07T11:00:00Z"])
    assert r.exit_code == 0, r.output
    with Image.open(out) as im:
        assert im.format == "PNG" and im.size[0] > 600
    r = CliRunner().invoke(main, ["bridge", "plot", "--store", str(store.root), "--datastream", "X/gas_co",
                                  "--out", str(out)])
    assert r.exit_code != 0 and "X/gas_co" in r.output


def test_dataset_round_trip_through_netcdf(run, tmp_path):
    from physics.flood_io import write_flood_netcdf

    ds, _ = run
    path = write_flood_netcdf(ds, tmp_path / "flood.nc")
    back = xr.load_dataset(path)
    np.testing.assert_allclose(P.rain_series(back)["cumulative_mm"], P.rain_series(ds)["cumulative_mm"])
    np.testing.assert_allclose(P.area_by_class(back)["km2"], P.area_by_class(ds)["km2"], atol=1e-12)


# ------------------------------------------------------------------------- layout of the flood figures
LONG = {"region": "shenzhen (whole city) with the 500 m margin kept around its outline",
        "storm": '{"name": "2023-09-07 Shenzhen record storm, 6 h, alternating-block", "total_mm": 349.7}'}


def _drawn(fig):
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return canvas.get_renderer()


@pytest.mark.parametrize("make", [
    pytest.param(lambda ds: P.area_balance_figure(ds), id="area_balance"),
    pytest.param(lambda ds: P.rain_depth_figure(ds), id="rain_depth"),
    pytest.param(lambda ds: P.max_depth_figure(ds, dem=_dem()), id="max_depth"),
])
def test_long_titles_stay_inside_the_figure(run, make):
    ds = run[0].copy()
    ds.attrs.update(LONG)
    fig = make(ds)
    r = _drawn(fig)
    titles = [ax.title for ax in fig.axes if ax.title.get_text()]
    assert titles and any("whole city" in t.get_text() for t in titles)
    for t in titles:
        bb = t.get_window_extent(r)
        assert bb.x0 >= 0 and bb.x1 <= fig.bbox.x1 and bb.y1 <= fig.bbox.y1, (t.get_text(), bb)


def test_wrap_once_prefers_the_dash_then_the_dot():
    assert P._wrap_once("a · b — c") == "a · b\nc"
    assert P._wrap_once("t\nlong one · two · three four") == "t\nlong one · two\nthree four"
    assert P._wrap_once("unbreakable") == "unbreakable"


def _with_districts(ds, ids, names):
    out = ds.copy()
    out["district"] = (("y", "x"), ids.astype(np.int16))
    out.attrs["district_names"] = json.dumps(names)
    return out


def test_deepest_place_just_outside_the_districts_takes_the_nearest(run):
    ds = run[0]
    top = P.deepest_locations(ds, 1)[0]
    j = int(np.argmin(np.abs(ds["y"].values - top["y"])))
    i = int(np.argmin(np.abs(ds["x"].values - top["x"])))
    ids = np.full(ds["max_depth"].shape, -1)
    ids[:, i + 1:] = 0  # the district starts one cell east of the deepest cell (10 m away)
    p = P.deepest_locations(_with_districts(ds, ids, ["Futian"]), 1)[0]
    assert p["district"] == "Futian" and p["district_distance_m"] == pytest.approx(D)
    assert P.district_label(p) == "Futian (10 m outside)"
    ids[:, :] = -1
    ids[:, i + 20:] = 0  # 200 m away: beyond the tolerance (150 m at 10 m cells)
    p = P.deepest_locations(_with_districts(ds, ids, ["Futian"]), 1)[0]
    assert p["district"] is None and P.district_label(p) == P.OUTSIDE_DISTRICTS
    ids[j, i] = 0
    p = P.deepest_locations(_with_districts(ds, ids, ["Futian"]), 1)[0]
    assert P.district_label(p) == "Futian" and p["district_distance_m"] == 0.0
    assert P.district_label(P.deepest_locations(ds, 1)[0]) == "–"  # a run without districts


def _overlaps(a, b) -> bool:
    return min(a.x1, b.x1) > max(a.x0, b.x0) and min(a.y1, b.y1) > max(a.y0, b.y0)


def _labels_and_markers(fig):
    r = _drawn(fig)
    ax = fig.axes[0]
    labels = [t for t in ax.texts if t.get_gid() == "district-label" and t.get_visible()]
    markers = [m for m in ax.lines if m.get_gid() == "deepest-marker"]
    return r, ax, labels, markers


def test_district_labels_do_not_cover_the_numbered_places(run):
    import geopandas as gpd
    from shapely.geometry import box

    ds = run[0]
    top = P.deepest_locations(ds, 3)
    x, y = top[0]["x"], top[0]["y"]
    # a district centred on the deepest place: its label's first place is under marker 1
    ids = np.full(ds["max_depth"].shape, -1)
    j = int(np.argmin(np.abs(ds["y"].values - y)))
    i = int(np.argmin(np.abs(ds["x"].values - x)))
    ids[j - 8:j + 9, i - 8:i + 9] = 0
    polys = gpd.GeoDataFrame({"name": ["Centre district"]}, geometry=[box(x - 80, y - 80, x + 80, y + 80)],
                             crs="EPSG:4547")
    for fig in (P.max_depth_figure(_with_districts(ds, ids, ["Centre district"]), dem=_dem(), top_n=3),
                P.max_depth_figure(ds, districts=polys, dem=_dem(), top_n=3)):
        r, ax, labels, markers = _labels_and_markers(fig)
        assert len(labels) == 1 and len(markers) == 3
        lab = labels[0].get_bbox_patch().get_window_extent(r)
        assert lab.x0 >= ax.bbox.x0 and lab.x1 <= ax.bbox.x1
        for m in markers:
            assert not _overlaps(lab, m.get_window_extent(r)), (lab, m.get_window_extent(r))
