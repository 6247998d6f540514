"""The Copernicus GLO-30 DEM: keyless public tiles, mosaicked and cropped to the city.

The Copernicus GLO-30 DSM tiles of the public AWS open-data bucket need no key
and no account; the tiles covering the catalogue's bounding box are downloaded
(:mod:`twin.fetch.download`), checked (CRS, placement), mosaicked and cropped.
It is the default DEM when there is no mirror: the city manifest lists the
built file as the ``elevation`` layer's alternative to the SRTM file.

rasterio is imported inside the functions.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path

from twin.errors import ConfigError, DataIntegrityError
from twin.fetch.download import FetchProgress, NullProgress, RetryPolicy, download

COPERNICUS_ENV = "TWIN_COPERNICUS_URL"
COPERNICUS_DEFAULT_URL = "https://copernicus-dem-30m.s3.amazonaws.com"
COPERNICUS_DEM_RELPATH = "{city}/terrain/copernicus_glo30_{city}.tif"
COPERNICUS_NODATA = -9999.0
COPERNICUS_LICENCE = ("Copernicus DEM GLO-30 licence: free use with attribution "
                      "'produced using Copernicus WorldDEM-30 (c) DLR e.V. 2010-2014 and "
                      "(c) Airbus Defence and Space GmbH 2014-2018 provided under COPERNICUS "
                      "by the European Union and ESA; all rights reserved'")


def copernicus_tile_name(lat: int, lon: int) -> str:
    """Name of the GLO-30 tile whose south-west corner is (lat, lon), integer degrees.

    E.g. ``copernicus_tile_name(22, 113) == "Copernicus_DSM_COG_10_N22_00_E113_00_DEM"``.
    """
    ns = "N" if lat >= 0 else "S"
    ew = "E" if lon >= 0 else "W"
    return f"Copernicus_DSM_COG_10_{ns}{abs(lat):02d}_00_{ew}{abs(lon):03d}_00_DEM"


def copernicus_tiles(bbox: Sequence[float]) -> list[tuple[int, int, str]]:
    """The (lat, lon, name) of every 1°×1° tile that intersects bbox (west, south, east, north)."""
    west, south, east, north = bbox
    if not (west < east and south < north):
        raise ConfigError(f"bbox {tuple(bbox)} is empty: expected west < east and south < north")
    lats = range(math.floor(south), math.ceil(north))
    lons = range(math.floor(west), math.ceil(east))
    return [(la, lo, copernicus_tile_name(la, lo)) for la in lats for lo in lons]


def copernicus_url(base: str | None, name: str) -> str:
    """``{base}/{name}/{name}.tif``; base defaults to ``$TWIN_COPERNICUS_URL`` or the AWS bucket."""
    base = (base or os.environ.get(COPERNICUS_ENV) or COPERNICUS_DEFAULT_URL).rstrip("/")
    return f"{base}/{name}/{name}.tif"


def check_copernicus_tile(path: str | os.PathLike, lat: int, lon: int) -> None:
    """Check a tile opens, is EPSG:4326 and covers the cell [lon, lon+1] × [lat, lat+1].

    The cell edges may be off by up to one pixel (GLO-30 tiles are pixel-centred
    on whole degrees). Raises :class:`DataIntegrityError` otherwise.
    """
    import rasterio
    from rasterio.errors import RasterioIOError

    try:
        with rasterio.open(path) as src:
            crs, b, res = src.crs, src.bounds, src.res
    except RasterioIOError as exc:
        raise DataIntegrityError(f"Copernicus tile {path} does not open as a raster: {exc}") from exc
    if crs is None or crs.to_epsg() != 4326:
        raise DataIntegrityError(f"Copernicus tile {path} has CRS {crs}, expected EPSG:4326")
    tx, ty = res[0] * 1.01, res[1] * 1.01
    if not (
        b.left <= lon + tx and b.right >= lon + 1 - tx and b.bottom <= lat + ty and b.top >= lat + 1 - ty
    ):
        raise DataIntegrityError(
            f"Copernicus tile {path} has bounds {tuple(b)}, which do not cover its cell "
            f"lon {lon}..{lon + 1}, lat {lat}..{lat + 1}"
        )


def mosaic_copernicus(
    tiles: Sequence[str | os.PathLike],
    bbox: Sequence[float],
    out: str | os.PathLike,
    nodata: float = COPERNICUS_NODATA,
) -> Path:
    """Mosaic tiles with ``rasterio.merge.merge``, crop to bbox, write a float32 GeoTIFF.

    The output grid starts at the bbox's north-west corner with the first tile's
    resolution (nearest-neighbour sampling); cells with no tile data get ``nodata``.
    The file is written to ``out.part`` and renamed onto ``out``.
    """
    import rasterio
    from rasterio.merge import merge

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    west, south, east, north = bbox
    srcs = [rasterio.open(t) for t in tiles]
    try:
        src_nodata = srcs[0].nodata
        arr, transform = merge(
            srcs, bounds=(west, south, east, north), nodata=nodata, dtype="float32"
        )
    finally:
        for s in srcs:
            s.close()
    data = arr[0].astype("float32")
    if src_nodata is not None and src_nodata != nodata:
        data[data == src_nodata] = nodata
    part = out.with_name(out.name + ".part")
    profile = {
        "driver": "GTiff",
        "height": data.shape[0],
        "width": data.shape[1],
        "count": 1,
        "dtype": "float32",
        "crs": "EPSG:4326",
        "transform": transform,
        "nodata": nodata,
        "compress": "deflate",
        "predictor": 3,
        "tiled": data.shape[0] >= 256 and data.shape[1] >= 256,
    }
    if profile["tiled"]:
        profile.update(blockxsize=256, blockysize=256)
    with rasterio.open(part, "w", **profile) as dst:
        dst.write(data, 1)
        dst.update_tags(
            source="Copernicus GLO-30 DSM (ESA / Airbus), AWS open data copernicus-dem-30m",
            tiles=",".join(Path(t).stem for t in tiles),
            units="m",
            vertical_datum="EGM2008",
        )
    os.replace(part, out)
    return out


def fetch_copernicus_dem(
    dest: str | os.PathLike,
    bbox: Sequence[float],
    *,
    city: str = "shenzhen",
    base_url: str | None = None,
    force: bool = False,
    policy: RetryPolicy | None = None,
    progress: FetchProgress | None = None,
    stands_for: Sequence[str] = (),
) -> Path:
    """Download the GLO-30 tiles covering bbox, check them, mosaic to ``<city>/terrain/``.

    Tiles are cached in ``dest/<city>/terrain/copernicus_tiles/`` (re-used when they
    pass :func:`check_copernicus_tile`, unless ``force``). The mosaic is recorded in the
    data dir's provenance (:mod:`twin.fetch.provenance`) with the tiles' URLs and
    SHA-256, standing for the catalogue files ``stands_for`` (the SRTM DEM). Returns
    the path of ``dest/<city>/terrain/copernicus_glo30_<city>.tif``.
    """
    from twin.fetch import provenance
    from twin.files import file_sha256

    dest = Path(dest)
    sources = []
    tile_dir = dest / city / "terrain" / "copernicus_tiles"
    paths = []
    for lat, lon, name in copernicus_tiles(bbox):
        path = tile_dir / f"{name}.tif"
        label = f"{city}/terrain/copernicus_tiles/{name}.tif"
        url = copernicus_url(base_url, name)
        if path.exists() and force:
            path.unlink()
        if path.exists():
            try:
                check_copernicus_tile(path, lat, lon)
                paths.append(path)
                sources.append({"url": url, "sha256": file_sha256(path)[0]})
                (progress or NullProgress()).file_finished(label, "skipped")
                continue
            except DataIntegrityError:
                path.unlink()
        dl = download(url, path, name=label, policy=policy, progress=progress)
        sources.append({"url": url, "sha256": dl.sha256})
        try:
            check_copernicus_tile(path, lat, lon)
        except DataIntegrityError:
            path.unlink()
            raise
        (progress or NullProgress()).file_finished(label, "downloaded")
        paths.append(path)
    rel = COPERNICUS_DEM_RELPATH.format(city=city)
    out = mosaic_copernicus(paths, bbox, dest / rel)
    provenance.add(
        dest, rel, city=city, sources=sources, licence=COPERNICUS_LICENCE,
        stands_for=list(stands_for),
        method=f"Copernicus GLO-30 DSM tiles mosaicked (rasterio.merge) and cropped to bbox "
               f"{tuple(bbox)}; float32, nodata {COPERNICUS_NODATA:g}; heights above EGM2008",
    )
    return out

