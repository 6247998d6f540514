"""The HTML report of a flood run (viz.report): content, offline, rendered in real Chromium.

A small real run (physics.flood.simulate on a 40 x 60 bowl) for the content
checks; one run of the real city (Futian at 90 m, 30 min, ~10 s) for the
report of a `twin flood run` output folder.
"""

from __future__ import annotations

import base64
import io
import json
import re

import numpy as np
import pytest
import xarray as xr
from affine import Affine
from click.testing import CliRunner
from PIL import Image

from gis.raster import make_grid
from physics.flood import simulate
from physics.flood_io import write_flood_outputs
from physics.forcing import UniformRain
from twin.errors import DataMissingError, ValidationError
from viz import plots as P
from viz.browser import count_non_background, screenshot
from viz.offline import assert_offline
from viz.report import balance_table, write_flood_report

D = 10.0


@pytest.fixture(scope="module")
def run():
    ny, nx = 40, 60
    yy, xx = np.mgrid[0:ny, 0:nx]
    z = 0.02 * np.hypot(xx - 30, yy - 20) * D + 0.5 * np.sin(xx / 5.0)
    dem = make_grid(z, Affine(D, 0, 500000.0, 0, -D, 2500000.0), "EPSG:4547", name="elevation", units="m")
    rain = UniformRain([0.0, 600.0, 1200.0, 1800.0], [20.0, 80.0, 10.0])
    ds = simulate(dem, 2400.0, rain=rain, output_every_s=300.0, manning=0.03, drainage_mm_h=5.0)
    ds.attrs.update(storm=json.dumps({"name": "test storm 测试", "method": "given", "total_mm": rain.total_mm,
                                      "peak_mm_h": 80.0, "duration_h": 0.5}), region="bowl")
    return ds


def _images(page: str) -> list[Image.Image]:
    out = []
    for b64 in re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page):
        im = Image.open(io.BytesIO(base64.b64decode(b64)))
        im.load()
        out.append(im)
    return out


def test_report_holds_the_run_numbers(run, tmp_path):
    ds = run
    path = write_flood_report(ds, tmp_path, top_n=5)
    assert path == tmp_path / "report.html"
    page = path.read_text(encoding="utf-8")
    assert_offline(page)
    assert "<script" not in page.lower()
    # the volume balance: rain and drainage in m³, closure error relative
    assert f"{float(ds['volume_rain'][-1]):,.0f}" in page
    assert f"{-float(ds['volume_drainage'][-1]):,.0f}" in page
    assert f"{float(ds['volume_relative_error'][-1]):.2e}" in page
    # mean rain received = the storm's depth
    assert f"{P.rain_series(ds)['cumulative_mm'][-1]:.1f} mm" in page
    assert "18.3 mm" in page  # 20·10 + 80·10 + 10·10 min of mm/h
    # maximum depth and the deepest places with lon/lat
    assert f"{float(ds['max_depth'].max()):.2f} m" in page
    for p in P.deepest_locations(ds, 5):
        assert f"<td class=\"n\">{p['lon']:.5f}</td><td class=\"n\">{p['lat']:.5f}</td>" in page
    # flooded area ever >= 0.15 m
    md = ds["max_depth"].values
    assert f"{np.count_nonzero(md >= 0.15) * D * D / 1e6:.3f}" in page
    assert "test storm 测试" in page and 'charset="utf-8"' in page
    # three embedded figures, real PNGs of a useful size
    ims = _images(page)
    assert len(ims) == 3 and all(im.format == "PNG" and im.size[0] >= 800 for im in ims)


def test_balance_table_terms_sum_to_the_error(run):
    rows, err, rel = balance_table(run)
    # + adds water to the surface, - removes it (storage change included): the terms sum to -error
    assert sum(v for _, v in rows) == pytest.approx(-err, abs=1e-6)
    assert rel == pytest.approx(float(run["volume_relative_error"][-1]))


def test_report_from_run_folder_with_hit_rate(run, tmp_path):
    hit = {"n_in_domain": 201, "hits": 120, "hit_rate": 120 / 201, "random_hit_rate": 0.38, "ratio": 1.57,
           "p_value": 3.9e-10, "radius_m": 100.0, "depth_m": 0.15}
    write_flood_outputs(run, tmp_path / "run", hitrate=hit)
    path = write_flood_report(tmp_path / "run", tmp_path / "rep")
    page = path.read_text(encoding="utf-8")
    assert "Waterlogging spots" in page and "120 (60 %)" in page and "1.57" in page and "3.9e-10" in page
    # flood.nc is stored in float32: the numbers are those of the file
    back = xr.load_dataset(tmp_path / "run" / "flood.nc")
    assert f"{float(back['max_depth'].max()):.2f} m" in page
    # the same from the flood.nc path
    page2 = write_flood_report(tmp_path / "run" / "flood.nc", tmp_path / "rep2").read_text(encoding="utf-8")
    assert "Waterlogging spots" in page2


def test_report_bad_inputs(run, tmp_path):
    with pytest.raises(DataMissingError, match="flood.nc"):
        write_flood_report(tmp_path / "nothing", tmp_path / "out")
    with pytest.raises(ValidationError, match="volume_rain"):
        write_flood_report(run.drop_vars("volume_rain"), tmp_path / "out")
    with pytest.raises(ValidationError, match="max_depth"):
        write_flood_report(run.assign(max_depth=run["max_depth"].expand_dims(band=1)), tmp_path / "out")
    bad = tmp_path / "bad.nc"
    bad.write_text("not netcdf")
    with pytest.raises(ValidationError, match="bad.nc") as err:
        write_flood_report(bad, tmp_path / "out")
    assert "\n" not in str(err.value) and "Consider" not in str(err.value)  # no xarray backend hints
    assert not (tmp_path / "out" / "report.html").exists()


def test_report_names_the_district_of_every_deepest_place(run, tmp_path):
    top = P.deepest_locations(run, 1)[0]
    i = int(np.argmin(np.abs(run["x"].values - top["x"])))
    ids = np.full(run["max_depth"].shape, -1, np.int16)
    ids[:, i + 1:] = 0  # the deepest cell's centre lies 10 m outside the district
    ds = run.assign(district=(("y", "x"), ids)).assign_attrs(district_names=json.dumps(["Futian"]))
    page = write_flood_report(ds, tmp_path, top_n=3).read_text(encoding="utf-8")
    rows = re.findall(r"<tr><td>\d+</td>(?:<td[^>]*>[^<]*</td>)*</tr>", page)  # the deepest places
    districts = [re.search(r"<td>([^<]*)</td></tr>$", r).group(1) for r in rows]
    assert len(rows) == 3 and districts[0] == "Futian (10 m outside)"
    assert "–" not in districts, districts


def test_report_renders_offline_in_chromium(run, chromium, tmp_path):
    path = write_flood_report(run, tmp_path)
    blank = tmp_path / "blank.html"
    blank.write_text("<!DOCTYPE html><html><body style='background:#f4f6f8'></body></html>")
    shots, reqs = {}, {}
    for name, html in (("report", path), ("blank", blank)):
        r = screenshot(html, tmp_path / f"{name}.png", width=1000, height=1600, ready_js=None, timeout=90)
        assert r.network_requests == [], r.network_requests
        assert all(u.startswith(("file:", "data:")) for u in r.requests)
        assert not r.console_errors
        shots[name], reqs[name] = count_non_background(r.png_path), r.requests
    assert shots["blank"] == 0
    assert shots["report"] > 0.15 * 1000 * 1600
    # the browser decoded the three embedded figures (data: URLs, nothing else)
    assert sum(u.startswith("data:image/png;base64,") for u in reqs["report"]) == 3


def test_cli_flood_report(run, tmp_path):
    from twin.cli import main

    write_flood_outputs(run, tmp_path / "run")
    r = CliRunner().invoke(main, ["flood", "report", str(tmp_path / "run"), "--out", str(tmp_path / "rep"),
                                  "--top", "3"])
    assert r.exit_code == 0, r.output
    page = (tmp_path / "rep" / "report.html").read_text(encoding="utf-8")
    assert len(re.findall(r'<td class="n">11\d\.\d{5}</td><td class="n">2\d\.\d{5}</td>', page)) == 3
    r = CliRunner().invoke(main, ["flood", "report", str(tmp_path / "run"), "--point", "10", "10"])
    assert r.exit_code != 0 and "outside the flood grid" in r.output


# ------------------------------------------------------------------------------- the real city
@pytest.fixture(scope="module")
def futian_run(twin_data, tmp_path_factory):
    from physics.flood_city import city_flood_setup, run_city_flood

    setup = city_flood_setup("shenzhen", resolution=90, districts="Futian", hours=0.5)
    ds = run_city_flood(setup, output_every_s=600.0)
    out = tmp_path_factory.mktemp("futian")
    write_flood_outputs(ds, out, districts=setup["context"]["districts_gdf"])
    return ds, out


def test_real_city_report(futian_run, chromium, tmp_path):
    ds, folder = futian_run
    path = write_flood_report(folder, tmp_path)
    page = path.read_text(encoding="utf-8")
    storm = json.loads(ds.attrs["storm"])
    # rain falls on land and sea cells: the mean received is the storm's depth
    rs = P.rain_series(ds)
    assert rs["cumulative_mm"][-1] == pytest.approx(storm["total_mm"], rel=1e-9)
    assert f"{storm['total_mm']:.1f} mm" in page
    assert "Futian" in page and "EPSG:4547" in page
    # the sea takes water: its row is in the balance table
    assert "exchanged with the sea" in page
    # every listed place is in Shenzhen
    for lon, lat in re.findall(r'<td class="n">(11\d\.\d{5})</td><td class="n">(2\d\.\d{5})</td>', page):
        assert 113.7 < float(lon) < 114.7 and 22.4 < float(lat) < 22.9
    r = screenshot(path, tmp_path / "shot.png", width=1200, height=1400, ready_js=None, timeout=90)
    assert r.network_requests == [] and count_non_background(r.png_path) > 0.15 * 1200 * 1400


def test_real_city_deepest_places_have_districts_and_clear_labels(futian_run):
    ds, _ = futian_run
    top = P.deepest_locations(ds, 10)
    assert len(top) == 10
    assert all(P.district_label(p) != "–" for p in top), [P.district_label(p) for p in top]
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    fig = P.max_depth_figure(ds)
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    r = canvas.get_renderer()
    ax = fig.axes[0]
    labels = [t.get_bbox_patch().get_window_extent(r) for t in ax.texts
              if t.get_gid() == "district-label" and t.get_visible()]
    markers = [m.get_window_extent(r) for m in ax.lines if m.get_gid() == "deepest-marker"]
    assert labels and len(markers) == 10
    for a in labels:
        for b in markers:
            assert not (min(a.x1, b.x1) > max(a.x0, b.x0) and min(a.y1, b.y1) > max(a.y0, b.y0)), (a, b)


def test_cli_flood_run_writes_the_report(tmp_path):
    from gis.raster import write_geotiff
    from twin.cli import main

    z = np.tile(np.linspace(2.0, 0.0, 40), (30, 1)).astype(np.float32)
    dem = write_geotiff(make_grid(z, Affine(20, 0, 300000, 0, -20, 2500000), "EPSG:32650", units="m"),
                        tmp_path / "dem.tif")
    args = ["flood", "run", "--dem", str(dem), "--rain-mm-h", "60", "--hours", "0.5", "--output-every", "600"]
    r = CliRunner().invoke(main, [*args, "--out", str(tmp_path / "o")])
    assert r.exit_code == 0, r.output
    assert "report.html" in r.output
    page = (tmp_path / "o" / "report.html").read_text(encoding="utf-8")
    assert_offline(page)
    assert "30.0 mm" in page  # 60 mm/h for half an hour, received over the whole DEM
    s = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert f"{s['volumes_m3']['rain']:,.0f}" in page
    r = CliRunner().invoke(main, [*args, "--out", str(tmp_path / "n"), "--no-report"])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "n" / "summary.json").exists() and not (tmp_path / "n" / "report.html").exists()
