"""The coast from GSHHG: the shapefile zip from its public upstream, cut to the city.

The shared data set's coast files were made with GMT from Debian's
``gmt-gshhg-full`` (``gmt coast -R113.6/114.8/22.3/22.95 -Df -W -M``, ``-N1`` and
``gmt grdlandmask ... -I1s -Df -N0/1/0/1/0``). Here the same GSHHG 2.3.7
full-resolution polygons come from the shapefile release (``gshhg-shp-2.3.7.zip``
from SOEST, mirrored by NOAA NCEI); pooch downloads the zip and its ``Unzip``
processor extracts only the full-resolution layers, which are cut to the same region:

* the shoreline: the boundaries of levels 1-4 (land, lakes, islands in lakes,
  ponds) clipped to the region, as LineStrings;
* the land mask: 1 arc-second, gridline-registered like GMT's (4321 x 2341 nodes
  over the region), 1 on land and islands in lakes, 0 on sea, lakes and ponds
  (GMT's ``-N0/1/0/1/0``), a node counting as inside when it is;
* the political border: the WDBII level-1 borders clipped to the region.

The results differ from the catalogued bytes (another writer), so each is
recorded in the data dir's provenance (:mod:`twin.fetch.provenance`).
"""

from __future__ import annotations

import json
import os
import shutil
import zipfile
from collections.abc import Sequence
from pathlib import Path

from twin.errors import DataIntegrityError
from twin.fetch.download import FetchProgress, NullProgress, RetryPolicy, download, say

GSHHG_ENV = "TWIN_GSHHG_URL"
GSHHG_VERSION = "2.3.7"
GSHHG_DEFAULT_URL = f"https://www.soest.hawaii.edu/pwessel/gshhg/gshhg-shp-{GSHHG_VERSION}.zip"
GSHHG_NOAA_URL = (
    f"https://www.ngdc.noaa.gov/mgg/shorelines/data/gshhg/latest/gshhg-shp-{GSHHG_VERSION}.zip"
)
#: GMT region the shared coast files were cut to (west, south, east, north).
COAST_REGION = (113.6, 22.3, 114.8, 22.95)
ARCSEC = 1.0 / 3600.0
COASTLINE_RELPATH = "{city}/coast/gshhg_full_coastline_sz.geojson"
LANDMASK_RELPATH = "{city}/coast/landmask_gshhg_full_1s_sz.tif"
BORDER_RELPATH = "{city}/coast/gshhg_political_border_sz.geojson"
LICENCE_RELPATH = "{city}/coast/LICENSE-gshhg.txt"
COPYRIGHT_RELPATH = "{city}/coast/COPYRIGHT_gmt-gshhg-full.txt"
LICENCE = "LGPL-3+ (GSHHG, Wessel and Smith; see LICENSE-gshhg.txt)"
#: Land value of each GSHHG level in the mask (GMT grdlandmask -N0/1/0/1/0).
LEVEL_VALUE = {1: 1, 2: 0, 3: 1, 4: 0}


def gshhg_url(base: str | None = None) -> str:
    """The zip's URL: ``base``, else ``$TWIN_GSHHG_URL``, else the SOEST release."""
    return base or os.environ.get(GSHHG_ENV) or GSHHG_DEFAULT_URL


def members(names: Sequence[str]) -> list[str]:
    """The zip members needed: full-resolution GSHHS L1-L4, WDBII border L1, licence texts."""
    want = []
    for n in names:
        leaf = n.rsplit("/", 1)[-1]
        stem, _, ext = leaf.rpartition(".")
        if ext.lower() not in ("shp", "shx", "dbf", "prj", "txt", "TXT"):
            continue
        if stem in {f"GSHHS_f_L{k}" for k in LEVEL_VALUE} or stem == "WDBII_border_f_L1":
            want.append(n)
        elif ext.lower() == "txt" and any(w in leaf.upper() for w in ("LICENSE", "COPYING")):
            want.append(n)
    return want


def _find(files: list[str], stem: str) -> str | None:
    for f in files:
        if Path(f).name == f"{stem}.shp":
            return f
    return None


def _lines(gdf, box) -> list:
    """Boundaries (polygons) or lines of ``gdf`` clipped to ``box``, as single LineStrings."""
    from shapely import make_valid
    from shapely.geometry import LineString, MultiLineString

    out = []
    for geom in gdf.geometry:
        if geom is None or geom.is_empty:
            continue
        geom = geom if geom.is_valid else make_valid(geom)  # a few full-res rings self-touch
        line = geom.boundary if geom.geom_type in ("Polygon", "MultiPolygon") else geom
        cut = line.intersection(box)
        parts = cut.geoms if hasattr(cut, "geoms") else [cut]
        for p in parts:
            if isinstance(p, LineString) and not p.is_empty:
                out.append(p)
            elif isinstance(p, MultiLineString):
                out.extend(p.geoms)
    return out


def _write_lines(path: Path, lines: list, source: str) -> None:
    feats = [
        {"type": "Feature", "properties": {"source": source, "seg": i},
         "geometry": {"type": "LineString",
                      "coordinates": [[round(x, 7), round(y, 7)] for x, y in ln.coords]}}
        for i, ln in enumerate(lines)
    ]
    part = path.with_name(path.name + ".part")
    part.write_text(json.dumps({"type": "FeatureCollection", "features": feats}), encoding="utf-8")
    os.replace(part, path)


def write_landmask(levels: dict[int, object], out: Path, region: Sequence[float] = COAST_REGION) -> Path:
    """Rasterise GSHHG levels (``{level: GeoDataFrame}``) to a 1″ uint8 land mask GeoTIFF."""
    import numpy as np
    import rasterio
    from rasterio.features import rasterize
    from rasterio.transform import from_origin

    west, south, east, north = region
    width = round((east - west) / ARCSEC) + 1
    height = round((north - south) / ARCSEC) + 1
    transform = from_origin(west - ARCSEC / 2, north + ARCSEC / 2, ARCSEC, ARCSEC)
    from shapely import make_valid
    from shapely.geometry import box

    # Clip first: a level-1 polygon is a whole continent. Lower levels first: lakes cut land.
    frame = box(west, south, east, north).buffer(10 * ARCSEC)
    shapes = [((geom if geom.is_valid else make_valid(geom)).intersection(frame), LEVEL_VALUE[k])
              for k in sorted(levels)
              for geom in levels[k].geometry if geom is not None and not geom.is_empty]
    shapes = [(g, v) for g, v in shapes if not g.is_empty]
    mask = np.zeros((height, width), dtype="uint8")
    if shapes:
        mask = rasterize(shapes, out_shape=(height, width), transform=transform, fill=0,
                         dtype="uint8")
    part = out.with_name(out.name + ".part")
    with rasterio.open(part, "w", driver="GTiff", width=width, height=height, count=1,
                       dtype="uint8", crs="EPSG:4326", transform=transform, nodata=255,
                       compress="deflate") as dst:
        dst.write(mask, 1)
        dst.update_tags(source=f"GSHHG {GSHHG_VERSION} full resolution, levels 1-4",
                        values="1 land, 0 water (sea, lakes, ponds)")
    os.replace(part, out)
    return out


def fetch_gshhg_coast(
    dest: str | os.PathLike,
    *,
    city: str = "shenzhen",
    url: str | None = None,
    sha256: str | None = None,
    region: Sequence[float] = COAST_REGION,
    force: bool = False,
    policy: RetryPolicy | None = None,
    progress: FetchProgress | None = None,
) -> list[Path]:
    """Build the coast files of ``city`` under ``dest`` from the GSHHG shapefile zip.

    The zip is kept in ``dest/<city>/coast/upstream/`` (not downloaded again while
    it is there, unless ``force``). Returns the paths written: shoreline GeoJSON,
    land-mask GeoTIFF, and when the zip has them the border GeoJSON and the licence.
    """
    import pooch

    progress = progress or NullProgress()
    dest = Path(dest)
    url = gshhg_url(url)
    cache = dest / city / "coast" / "upstream"
    zpath = cache / url.rsplit("/", 1)[-1]
    if force and zpath.exists():
        zpath.unlink()
    label = f"GSHHG {zpath.name}"
    dl = download(url, zpath, sha256=sha256, name=label, policy=policy, progress=progress)
    progress.file_finished(label, "downloaded")
    try:
        with zipfile.ZipFile(zpath) as zf:
            names = zf.namelist()
    except zipfile.BadZipFile as exc:
        zpath.unlink()
        raise DataIntegrityError(f"{url} is not a zip archive ({exc}); it was deleted") from exc
    wanted = members(names)
    files = pooch.Unzip(members=wanted, extract_dir="gshhg-shp")(str(zpath), "download", None)
    say(progress, f"extracted {len(files)} member(s) of {zpath.name}")
    try:
        return _build(dest, city, url, dl.sha256, files, region, progress)
    finally:
        shutil.rmtree(cache / "gshhg-shp", ignore_errors=True)  # the zip stays; the shapefiles go


def _build(dest: Path, city: str, url: str, zip_sha256: str, files: list[str],
           region: Sequence[float], progress: FetchProgress) -> list[Path]:
    """Cut the extracted shapefiles to ``region`` and write (and record) the coast files."""
    import geopandas as gpd
    from shapely.geometry import box as make_box

    from twin.fetch import provenance

    west, south, east, north = region
    box = make_box(west, south, east, north)
    levels = {}
    for k in LEVEL_VALUE:
        shp = _find(files, f"GSHHS_f_L{k}")
        if shp is None:
            if k == 1:
                raise DataIntegrityError(
                    f"{url} has no GSHHS_f_L1.shp (full-resolution shoreline); it is not the "
                    f"GSHHG {GSHHG_VERSION} shapefile release"
                )
            continue
        levels[k] = gpd.read_file(shp, bbox=tuple(region))
    sources = [{"url": url, "sha256": zip_sha256}]
    written: list[tuple[str, Path, list[str], str]] = []

    rel = COASTLINE_RELPATH.format(city=city)
    out = dest / rel
    out.parent.mkdir(parents=True, exist_ok=True)
    lines = [ln for k in sorted(levels) for ln in _lines(levels[k], box)]
    _write_lines(out, lines, f"GSHHG {GSHHG_VERSION} full-res shoreline L1-L4")
    written.append((rel, out, [], "boundaries of GSHHS_f_L1-L4 clipped to"))

    rel = LANDMASK_RELPATH.format(city=city)
    written.append((rel, write_landmask(levels, dest / rel, region), [],
                    "GSHHS_f_L1-L4 rasterised (1 land/island, 0 sea/lake/pond) at 1 arc-second, "
                    "gridline-registered over"))

    border = _find(files, "WDBII_border_f_L1")
    if border is not None:
        rel = BORDER_RELPATH.format(city=city)
        _write_lines(dest / rel, _lines(gpd.read_file(border, bbox=tuple(region)), box),
                     "GSHHG/WDBII political boundary L1")
        written.append((rel, dest / rel, [], "WDBII_border_f_L1 clipped to"))
    licences = [f for f in files if f.lower().endswith(".txt")]
    if licences:
        rel = LICENCE_RELPATH.format(city=city)
        (dest / rel).write_bytes(Path(sorted(licences)[0]).read_bytes())
        written.append((rel, dest / rel, [COPYRIGHT_RELPATH.format(city=city)],
                        f"licence text {Path(sorted(licences)[0]).name} of the zip; region"))
    for rel, _path, stands_for, how in written:
        provenance.add(dest, rel, city=city, sources=sources, licence=LICENCE,
                       stands_for=stands_for, method=f"{how} {tuple(region)} (twin.fetch.gshhg)")
    return [p for _, p, _, _ in written]
