"""Drivable roads from OpenStreetMap through the Overpass API.

One Overpass query asks for the drivable ways of the catalogue's bounding box
and their nodes (osmnx's ``drive`` filter: no footways, cycleways, service
roads or ways closed to cars). The raw answer is kept as Overpass JSON, like
the shared ``osm/central_drive_overpass_20241006.json``, and turned into
directed road edges (GeoJSON, one row per direction, columns ``id``, ``u``,
``v``, ``highway``, ``name``, ``osm_way``, ``oneway``, ``maxspeed``, ``lanes``,
``length_m``) that :func:`gis.roads.load_road_graph` reads; the city manifest
lists that file as the ``roads`` layer's alternative. Ways are split at
intersections with :func:`gis.osm.split_ways`, directions follow
:func:`gis.osm.oneway_direction`, so the edges are those
:meth:`gis.roads.RoadGraph.from_osm_xml` would build from the same ways.

Data © OpenStreetMap contributors, ODbL 1.0. The bounding box is a rectangle:
it takes in the north of Hong Kong too.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

from twin.errors import DataIntegrityError, FetchError
from twin.fetch.download import FetchProgress, NullProgress, RetryPolicy, download

OVERPASS_ENV = "TWIN_OVERPASS_URL"
OVERPASS_DEFAULT_URL = "https://overpass-api.de/api/interpreter"
OVERPASS_RELPATH = "{city}/osm/drive_overpass_{city}.json"
EDGES_RELPATH = "{city}/roads/osm_drive_edges.geojson"
LICENCE = "ODbL 1.0 (© OpenStreetMap contributors)"
# osmnx's "drive" network filter (osmnx/_overpass.py), as one Overpass way selector.
DRIVE_FILTER = (
    '["highway"]["area"!~"yes"]'
    '["highway"!~"abandoned|bridleway|bus_guideway|construction|corridor|cycleway|elevator|'
    'escalator|footway|no|path|pedestrian|planned|platform|proposed|raceway|razed|service|'
    'steps|track"]'
    '["motor_vehicle"!~"no"]["motorcar"!~"no"]'
    '["service"!~"alley|driveway|emergency_access|parking|parking_aisle|private"]'
)


def overpass_url(base: str | None = None) -> str:
    """The interpreter URL: ``base``, else ``$TWIN_OVERPASS_URL``, else overpass-api.de."""
    return base or os.environ.get(OVERPASS_ENV) or OVERPASS_DEFAULT_URL


def drive_query(bbox: Sequence[float], timeout_s: int = 600) -> str:
    """The Overpass QL query for the drivable ways of bbox (west, south, east, north) and their nodes."""
    west, south, east, north = bbox
    return (
        f"[out:json][timeout:{timeout_s}];"
        f"(way{DRIVE_FILTER}({south},{west},{north},{east});>;);out body;"
    )


def read_overpass(path: str | os.PathLike) -> tuple[dict[int, tuple[float, float]], list]:
    """Node coordinates ``{id: (lon, lat)}`` and :class:`gis.osm.OsmWay` list of an Overpass JSON answer."""
    from gis.osm import read_overpass_json

    return read_overpass_json(path)


def edges_geojson(coords: dict[int, tuple[float, float]], ways: list, out: str | os.PathLike) -> int:
    """Write the directed drivable edges of ``ways`` to GeoJSON; returns the number of edges."""
    from shapely.geometry import LineString

    from gis import osm
    from gis.roads import DRIVABLE_CLASSES, EXCLUDED_SERVICE, geodesic_length_m

    kept = [w for w in ways if w.tags.get("highway") in DRIVABLE_CLASSES
            and osm.is_motor_accessible(w.tags) and w.tags.get("service") not in EXCLUDED_SERVICE]
    feats = []
    for seg in osm.split_ways(kept, coords):
        tags = seg.tags
        direction = osm.oneway_direction(tags)
        pts = [coords[n] for n in seg.nodes]
        length = geodesic_length_m(LineString(pts))
        for sign in (1, -1):
            if direction not in (0, sign):
                continue
            nodes = seg.nodes if sign == 1 else seg.nodes[::-1]
            line = pts if sign == 1 else pts[::-1]
            key = f"{seg.way_id}#{seg.seq}" if sign == 1 else f"-{seg.way_id}#{seg.seq}"
            feats.append({"type": "Feature", "properties": {
                "id": key, "u": nodes[0], "v": nodes[-1], "highway": tags["highway"],
                "name": tags.get("name"), "osm_way": seg.way_id, "oneway": direction != 0,
                "maxspeed": tags.get("maxspeed"), "lanes": tags.get("lanes"),
                "length_m": round(length, 2)},
                "geometry": {"type": "LineString", "coordinates": [list(p) for p in line]}})
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    part = out.with_name(out.name + ".part")
    part.write_text(json.dumps({"type": "FeatureCollection", "features": feats}), encoding="utf-8")
    os.replace(part, out)
    return len(feats)


def fetch_osm_roads(
    dest: str | os.PathLike,
    bbox: Sequence[float],
    *,
    city: str = "shenzhen",
    url: str | None = None,
    force: bool = False,
    policy: RetryPolicy | None = None,
    progress: FetchProgress | None = None,
    stands_for: dict[str, Sequence[str]] | None = None,
) -> list[Path]:
    """Ask Overpass for the drivable roads of bbox; write the raw answer and the road edges.

    ``stands_for`` maps ``"answer"`` and ``"edges"`` to the catalogue files each
    replaces (recorded in the provenance). A kept answer is re-used unless ``force``.
    """
    from twin.fetch import provenance

    progress = progress or NullProgress()
    dest = Path(dest)
    stands_for = stands_for or {}
    url = overpass_url(url)
    query = drive_query(bbox)
    rel = OVERPASS_RELPATH.format(city=city)
    answer = dest / rel
    if force and answer.exists():
        answer.unlink()
    dl = download(url, answer, name=rel, policy=policy, progress=progress, method="POST",
                  body={"data": query})
    progress.file_finished(rel, "downloaded")
    try:
        doc = json.loads(answer.read_text(encoding="utf-8"))
    except ValueError as exc:
        answer.unlink()
        raise FetchError(f"{url} did not answer with JSON ({exc}); nothing was kept") from exc
    remark = doc.get("remark") or ""
    if "error" in remark.lower() or "elements" not in doc:
        answer.unlink()
        raise FetchError(f"Overpass at {url} failed: {remark or 'no elements'}; try again later "
                         f"or give another interpreter with --overpass-url / ${OVERPASS_ENV}")
    coords, ways = read_overpass(answer)
    edges_rel = EDGES_RELPATH.format(city=city)
    n = edges_geojson(coords, ways, dest / edges_rel)
    if n == 0:
        raise DataIntegrityError(f"the Overpass answer from {url} holds no drivable way in {tuple(bbox)}")
    source = [{"url": url, "query": query, "sha256": dl.sha256,
               "osm_base": (doc.get("osm3s") or {}).get("timestamp_osm_base")}]
    provenance.add(dest, rel, city=city, sources=source, licence=LICENCE,
                   stands_for=list(stands_for.get("answer", ())),
                   method=f"Overpass API answer to the drive query for bbox {tuple(bbox)}")
    provenance.add(dest, edges_rel, city=city, sources=source, licence=LICENCE,
                   stands_for=list(stands_for.get("edges", ())),
                   method=f"{n} directed edges: drivable ways split at intersections "
                          "(gis.osm.split_ways), one row per allowed direction")
    return [answer, dest / edges_rel]
