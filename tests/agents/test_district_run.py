"""End to end: `twin evacuate district` on the real central Shenzhen roads and a real (short, coarse) Futian flood run."""

from __future__ import annotations

import json

import numpy as np
import pytest
import xarray as xr
from click.testing import CliRunner

import agents.district_run  # noqa: F401 - registers the kind
from twin.cli.evacuate_district import district


@pytest.fixture(scope="module")
def flood_run(twin_data, tmp_path_factory):
    """A real flood run: Futian, 1 h of the 2023-09-07 design storm at 150 m (about 8 s)."""
    from twin import pipeline

    out = tmp_path_factory.mktemp("flood")
    pipeline.run("flood_forecast", {"districts": ["Futian"], "hours": 1.0, "resolution": 150.0, "city": "shenzhen",
                                    "storm": "2023-09-07"}, out, report=False, map=False)
    return out / "flood.nc"


@pytest.fixture(scope="module")
def evac_run(flood_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("evac")
    res = CliRunner().invoke(district, ["--flood", str(flood_run), "--out", str(out), "--no-report", "--json"])
    assert res.exit_code == 0, res.output
    return out, json.loads(res.output[res.output.index("{"):])


def test_the_run_writes_its_files_and_a_consistent_summary(evac_run, flood_run):
    out, summary = evac_run
    for name in ("evacuation.nc", "edges.parquet", "shelters.csv", "events.jsonl", "evacuation_curve.png",
                 "summary.json", "map.html"):
        assert (out / name).is_file(), name
    with xr.open_dataset(out / "evacuation.nc") as ds:
        total = ds.attrs["evacuees"]
        s = (ds["at_origin"] + ds["moving"] + ds["arrived"] + ds["stranded"]).values
        np.testing.assert_allclose(s, total, atol=1e-6)  # conservation at every step
        assert ds["arrived"].attrs["units"] == "people" and ds.attrs["crs"] == "EPSG:4547"
        assert float(ds["evacuees_origin"].sum()) == pytest.approx(total, abs=1.0)  # groups hold the zone's people
        assert (ds["edge_max_occupancy"] <= ds["edge_storage"] + 1e-9).all()
        assert float(ds["shelter_arrivals"].sum()) == pytest.approx(summary["arrived"])
        assert (ds["shelter_arrivals"] <= ds["shelter_capacity"]).all()
    assert summary["evacuees"] == total > 1000 and summary["arrived"] > 0
    assert summary["arrived"] + summary["stranded"] + summary["still_moving"] == pytest.approx(total)
    import geopandas as gpd

    edges = gpd.read_parquet(out / "edges.parquet")
    assert edges.crs.to_epsg() == 4326 and len(edges) == summary["edges"] > 4000  # the real central graph
    assert {"max_queue", "max_density", "people_through", "first_closed"} <= set(edges.columns)
    from twin.events import Event

    events = [Event.parse(json.loads(line)) for line in (out / "events.jsonl").read_text().splitlines()]
    kinds = {e.kind for e in events}
    assert "road_closed" in kinds
    assert summary["events"]["road_closed"] == summary["edges_closed"] > 0


def test_futian_people_sum_back_to_the_census_on_the_real_grid(flood_run, city):
    """The grid holds Futian whole: its cells carry the census total, 1,553,225 (2020 yearbook table)."""
    from agents.population import grid_district_codes, population_grid

    with xr.open_dataset(flood_run) as fl:
        pop = population_grid(fl, city=city)
        futian = [i for i, c in grid_district_codes(fl, city).items() if c == "440304"][0]
        assert float(pop.where(fl["district"] == futian).sum()) == pytest.approx(1_553_225, rel=1e-9)


@pytest.mark.parametrize(("args", "message"), [
    pytest.param(["--shelters", "{bad}"], "shelters", id="shelters-without-columns"),
    pytest.param(["--districts", "Atlantis"], "Atlantis", id="unknown-district"),
    pytest.param(["--zone", "{bad}"], "zone", id="zone-not-a-raster"),
    pytest.param(["--hazard-class", "3", "--depth-threshold", "0.3"], "not both", id="two-thresholds"),
    pytest.param(["--hazard-class", "7"], "7", id="class-out-of-range"),
])
def test_bad_input_is_refused_in_one_line_before_anything_runs(flood_run, tmp_path, args, message):
    bad = tmp_path / "bad.csv"
    bad.write_text("name,x,y\nA,1,2\n", encoding="utf-8")
    args = [str(bad) if a == "{bad}" else a for a in args]
    res = CliRunner().invoke(district, ["--flood", str(flood_run), "--out", str(tmp_path / "o"), *args])
    assert res.exit_code != 0 and message in res.output
    assert "Traceback" not in res.output and not (tmp_path / "o").exists()


def test_a_file_that_is_not_a_flood_run_is_refused(tmp_path):
    fake = tmp_path / "flood.nc"
    fake.write_text("not netcdf", encoding="utf-8")
    res = CliRunner().invoke(district, ["--flood", str(fake), "--out", str(tmp_path / "o")])
    assert res.exit_code == 1 and "not a NetCDF file" in res.output and len(res.output.strip().splitlines()) == 1


@pytest.mark.browser
def test_the_map_moves_the_evacuees_on_the_slider(evac_run, chromium):
    from viz.browser import TWINMAP_READY_JS, BrowserSession
    from viz.layers.flood_depth import frame_indices

    out, _ = evac_run
    with xr.open_dataset(out / "evacuation.nc") as ds:
        keep = frame_indices(ds.sizes["frame"], agents.district_run.MAP_FRAMES)
        state = ds["group_state"].values[keep]
        lon = ds["group_lon"].values[keep]
    moving = (state == 1).sum(axis=1)
    k = int(np.argmax(moving))  # the frame with the most people on the way
    with BrowserSession(width=1000, height=700) as b:
        b.goto(out / "map.html", ready_js=TWINMAP_READY_JS, timeout=120)
        assert b.evaluate("map.frameCount") == len(keep)
        n_k = b.evaluate(f"map.setFrame({k}).then(() => map.pointsOf('evacuees_moving').length)")
        p_k = np.array(b.evaluate("map.pointsOf('evacuees_moving')"))
        p_next = np.array(b.evaluate(f"map.setFrame({k + 1}).then(() => map.pointsOf('evacuees_moving'))"))
        assert b.console_errors == [] and b.network_requests == []
    assert n_k == moving[k] > 0
    np.testing.assert_allclose(np.sort(p_k[:, 0]), np.sort(lon[k][state[k] == 1]), atol=1e-6)
    assert len(p_next) != len(p_k) or not np.allclose(np.sort(p_next[:, 0]), np.sort(p_k[:, 0]))


def test_shelters_read_from_csv_with_comments_and_from_geojson(tmp_path):
    from agents.district_run import DEMO_SHELTERS, read_shelters
    from twin.errors import DataError

    demo = read_shelters(DEMO_SHELTERS)
    assert 10 <= len(demo) <= 20 and (demo["capacity"] > 0).all()
    assert "ASSUMED" in DEMO_SHELTERS.read_text(encoding="utf-8").splitlines()[0]
    gj = tmp_path / "s.geojson"
    gj.write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"name": "A", "capacity": 500},
         "geometry": {"type": "Point", "coordinates": [114.0545, 22.556]}}]}), encoding="utf-8")
    s = read_shelters(gj)
    assert s.iloc[0][["name", "lon", "lat", "capacity"]].tolist() == ["A", 114.0545, 22.556, 500.0]
    bad = tmp_path / "bad.csv"
    bad.write_text("name,lon,lat,capacity\nA,114.05,22.55,0\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"bad\.csv.*capacity"):
        read_shelters(bad)


def test_a_zone_raster_says_who_leaves(flood_run, city, tmp_path):
    """A boolean GeoTIFF in lon/lat (a box in central Futian) replaces the flood's hazard class: the people
    who leave are the population of the flood-grid cells whose centres lie in the box."""
    import rasterio
    from rasterio.transform import from_origin

    from agents.population import population_grid
    from gis.crs import WGS84, transformer

    box = (114.045, 22.530, 114.065, 22.545)
    res = 0.0005
    t = from_origin(114.0, 22.6, res, res)
    rows, cols = 200, 200
    lon = 114.0 + res * (np.arange(cols) + 0.5)
    lat = 22.6 - res * (np.arange(rows) + 0.5)
    inside = ((lon[None, :] > box[0]) & (lon[None, :] < box[2]) & (lat[:, None] > box[1]) & (lat[:, None] < box[3]))
    path = tmp_path / "zone.tif"
    with rasterio.open(path, "w", driver="GTiff", width=cols, height=rows, count=1, dtype="uint8", crs=WGS84,
                       transform=t) as dst:
        dst.write(inside.astype("uint8"), 1)
    res_cli = CliRunner().invoke(district, ["--flood", str(flood_run), "--zone", str(path), "--out",
                                            str(tmp_path / "o"), "--no-map", "--no-report", "--json",
                                            "--max-hours", "0.25"])  # who leaves does not need the whole run
    assert res_cli.exit_code == 0, res_cli.output
    summary = json.loads(res_cli.output[res_cli.output.index("{"):])
    with xr.open_dataset(flood_run) as fl:
        pop = population_grid(fl, city=city)
        xx, yy = np.meshgrid(fl["x"].values, fl["y"].values)
        lo, la = transformer("EPSG:4547", WGS84).transform(xx, yy)
        in_box = (lo > box[0]) & (lo < box[2]) & (la > box[1]) & (la < box[3])
        expected = float(pop.values[in_box].sum())
        per_cell = float(pop.values[in_box].max())
    assert expected > 10_000
    assert summary["evacuees"] == pytest.approx(expected, abs=2 * per_cell)  # cells on the box's edge
