"""Read OpenStreetMap XML or Overpass JSON and cut highway ways into road segments.

This module knows OSM tag semantics and nothing about routing: it returns
node coordinates and *undirected* segments (a run of OSM nodes between two
graph nodes, with the tags of its way); :mod:`gis.roads` turns them into
directed, timed edges.

Reading
-------
:func:`read_osm_xml` walks the file once with ``xml.etree.ElementTree.iterparse``
and clears every element after use, so memory holds only node coordinates
(about 100 bytes a node: fine for district and city extracts; use a PBF
tool such as pyosmium for a whole province) and the ways that ``keep_way``
accepts. Relations are ignored (turn restrictions are not modelled).
:func:`read_overpass_json` reads an Overpass API answer in JSON (``[out:json]``:
``{"elements": [{"type": "node", "id", "lat", "lon"}, {"type": "way", "id",
"nodes", "tags"}, ...]}``) into the same two results.

Splitting rule (:func:`split_ways`)
-----------------------------------
A way is cut at

* its two ends,
* every node referenced by more than one *kept* way (an intersection), and
* every node that occurs more than once in the way itself (a loop).

Nodes that only a dropped way (a footway crossing, a building corner)
touches do not split a road. A way referencing nodes absent from the file
(an extract clipped at its edge) is broken into runs of present nodes.

Tag semantics
-------------
:func:`oneway_direction` follows the OSM wiki "Key:oneway": ``yes``/``true``
/``1`` forward only, ``-1``/``reverse`` backward only, ``no``/``false``/``0``
both ways; ``junction=roundabout`` or ``circular`` and ``highway=motorway``
/``motorway_link`` imply ``oneway=yes`` unless the way says otherwise.
``reversible``/``alternating`` (direction changes by time of day) are
treated as two-way, as osmnx does: an emergency vehicle can be let through.
:func:`parse_maxspeed` reads ``maxspeed`` in km/h (the OSM default unit),
``"30 mph"`` (x 1.609344), ``"50 km/h"``/``"50 kmh"``; for lists such as
``"60;80"`` the lowest value; symbolic values (``none``, ``signals``,
``walk``, ``CN:urban``) give ``None`` so the class default applies.
"""

from __future__ import annotations

import json
import os
import re
import warnings
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from twin.errors import DataIntegrityError, DataMissingError

MPH_TO_KMH = 1.609344

#: Values of access-type tags that shut a way to ordinary motor traffic.
CLOSED_ACCESS = frozenset({"no", "private"})
#: Values of ``emergency=*`` that open it again to emergency vehicles.
EMERGENCY_OPEN = frozenset({"yes", "designated", "permissive"})

_ONEWAY_FORWARD = frozenset({"yes", "true", "1"})
_ONEWAY_BACKWARD = frozenset({"-1", "reverse"})
_ONEWAY_NO = frozenset({"no", "false", "0", "reversible", "alternating"})
_IMPLIED_ONEWAY_HIGHWAYS = frozenset({"motorway", "motorway_link"})
_NUMBER = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(mph|km/h|kmh|kph)?\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class OsmWay:
    """One OSM way: its id, node references in order, and tags."""

    id: int
    nodes: tuple[int, ...]
    tags: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class OsmSegment:
    """Part of a way between two graph nodes (``nodes[0]`` and ``nodes[-1]``).

    ``seq`` numbers the segments of a way from 0 in drawing order.
    """

    way_id: int
    seq: int
    nodes: tuple[int, ...]
    tags: dict[str, str]


def _check_path(path: str | os.PathLike, what: str = "OSM XML file", give: str = "a .osm file") -> Path:
    path = Path(path)
    if not path.exists():
        raise DataMissingError(f"{what} not found: {path} (give the path of {give})")
    return path


def _kept(coords: dict[int, tuple[float, float]], ways: list[OsmWay]):
    """Only the coordinates of nodes the kept ways reference."""
    used = {n for w in ways for n in w.nodes}
    return {n: c for n, c in coords.items() if n in used}, ways


def read_osm_xml(
    path: str | os.PathLike,
    keep_way: Callable[[dict[str, str]], bool] | None = None,
) -> tuple[dict[int, tuple[float, float]], list[OsmWay]]:
    """Stream an OSM XML file into node coordinates and the ways to keep.

    Parameters
    ----------
    path : OSM XML (``.osm``/``.xml``, API 0.6 schema).
    keep_way : predicate on a way's tags; ``None`` keeps every way.

    Returns
    -------
    coords : ``{node id: (lon, lat)}`` in degrees, only for nodes the kept
        ways reference.
    ways : kept ways in file order.

    Raises
    ------
    DataMissingError : the file does not exist.
    DataIntegrityError : the XML is malformed, or a node lacks lat/lon.
    """
    path = _check_path(path)
    coords: dict[int, tuple[float, float]] = {}
    ways: list[OsmWay] = []
    try:
        for _event, el in ET.iterparse(path, events=("end",)):
            tag = el.tag
            if tag == "node":
                try:
                    coords[int(el.get("id"))] = (float(el.get("lon")), float(el.get("lat")))
                except (TypeError, ValueError) as err:
                    raise DataIntegrityError(
                        f"{path}: node id={el.get('id')!r} has lat={el.get('lat')!r} "
                        f"lon={el.get('lon')!r}; every node needs numeric lat and lon"
                    ) from err
                el.clear()
            elif tag == "way":
                tags = {c.get("k"): c.get("v") for c in el if c.tag == "tag"}
                if keep_way is None or keep_way(tags):
                    refs = tuple(int(c.get("ref")) for c in el if c.tag == "nd")
                    ways.append(OsmWay(int(el.get("id")), refs, tags))
                el.clear()
            elif tag == "relation":
                el.clear()
    except ET.ParseError as err:
        raise DataIntegrityError(
            f"{path} is not well-formed OSM XML ({err}); re-download it or check it is not truncated"
        ) from err
    return _kept(coords, ways)


def is_overpass_json(path: str | os.PathLike, head_bytes: int = 65536) -> bool:
    """True when the JSON file at ``path`` looks like an Overpass answer (an ``"elements"`` key
    near its start; GeoJSON has ``"features"``), without parsing the whole file."""
    with open(path, "rb") as fh:
        head = fh.read(head_bytes)
    return b'"elements"' in head and b'"FeatureCollection"' not in head


def read_overpass_json(
    path: str | os.PathLike,
    keep_way: Callable[[dict[str, str]], bool] | None = None,
) -> tuple[dict[int, tuple[float, float]], list[OsmWay]]:
    """Read an Overpass API JSON answer into node coordinates and the ways to keep.

    Same results as :func:`read_osm_xml` (coordinates only of nodes the kept
    ways reference; ways in file order); other element types are ignored.

    Raises
    ------
    DataMissingError : the file does not exist.
    DataIntegrityError : not JSON, no ``elements`` list, or a node/way lacking
        its coordinates/ids (the message names the element).
    """
    path = _check_path(path, "Overpass JSON file", "an Overpass API answer saved as .json")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        elements = doc["elements"]
        if not isinstance(elements, list):
            raise TypeError(f"'elements' is a {type(elements).__name__}, not a list")
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as err:
        raise DataIntegrityError(
            f"{path} is not an Overpass JSON answer ({type(err).__name__}: {err}); "
            "ask Overpass with [out:json] and save the whole answer"
        ) from err
    coords: dict[int, tuple[float, float]] = {}
    ways: list[OsmWay] = []
    for el in elements:
        kind = el.get("type") if isinstance(el, dict) else None
        try:
            if kind == "node":
                coords[int(el["id"])] = (float(el["lon"]), float(el["lat"]))
            elif kind == "way":
                tags = {str(k): str(v) for k, v in (el.get("tags") or {}).items()}
                if keep_way is None or keep_way(tags):
                    ways.append(OsmWay(int(el["id"]), tuple(int(n) for n in el["nodes"]), tags))
        except (KeyError, TypeError, ValueError) as err:
            raise DataIntegrityError(
                f"{path}: {kind} id={el.get('id')!r} lacks a valid {err}; every node needs numeric "
                "lat and lon and every way its node ids (query with `out body;` and `>;`)"
            ) from err
    return _kept(coords, ways)


def _runs_with_coords(nodes: Iterable[int], coords: dict) -> list[list[int]]:
    """Split a node list into runs of nodes that have coordinates; drop repeats in a row."""
    runs: list[list[int]] = [[]]
    for n in nodes:
        if n not in coords:
            if runs[-1]:
                runs.append([])
            continue
        if runs[-1] and runs[-1][-1] == n:
            continue
        runs[-1].append(n)
    return [r for r in runs if len(r) >= 2]


def split_ways(ways: list[OsmWay], coords: dict[int, tuple[float, float]]) -> list[OsmSegment]:
    """Cut ways into segments at ends, shared nodes and self-repeated nodes (see module doc)."""
    runs_by_way: list[tuple[OsmWay, list[list[int]]]] = []
    missing = 0
    for w in ways:
        missing += sum(1 for n in w.nodes if n not in coords)
        runs_by_way.append((w, _runs_with_coords(w.nodes, coords)))
    if missing:
        warnings.warn(
            f"{missing} node references of kept ways have no coordinates in the file "
            "(clipped extract); those ways were broken at the gaps",
            stacklevel=2,
        )
    use: Counter[int] = Counter()
    for _w, runs in runs_by_way:
        for n in {n for r in runs for n in r}:
            use[n] += 1
    segments: list[OsmSegment] = []
    for w, runs in runs_by_way:
        seq = 0
        for run in runs:
            inside = Counter(run)
            start = 0
            for i in range(1, len(run)):
                n = run[i]
                if i == len(run) - 1 or use[n] > 1 or inside[n] > 1:
                    segments.append(OsmSegment(w.id, seq, tuple(run[start : i + 1]), w.tags))
                    seq += 1
                    start = i
    return segments


def oneway_direction(tags: dict[str, str]) -> int:
    """+1 forward only, -1 backward only, 0 both directions (see module doc)."""
    value = (tags.get("oneway") or "").strip().lower()
    if value in _ONEWAY_FORWARD:
        return 1
    if value in _ONEWAY_BACKWARD:
        return -1
    if value in _ONEWAY_NO:
        return 0
    if tags.get("junction", "").lower() in ("roundabout", "circular"):
        return 1
    if tags.get("highway") in _IMPLIED_ONEWAY_HIGHWAYS:
        return 1
    return 0


def parse_maxspeed(value: str | None) -> float | None:
    """A ``maxspeed`` tag value in km/h, or ``None`` when absent or symbolic."""
    if value is None:
        return None
    best: float | None = None
    for part in str(value).split(";"):
        m = _NUMBER.match(part)
        if not m:
            continue
        kmh = float(m.group(1))
        if (m.group(2) or "").lower() == "mph":
            kmh *= MPH_TO_KMH
        if kmh > 0 and (best is None or kmh < best):
            best = kmh
    return best


def is_motor_accessible(tags: dict[str, str]) -> bool:
    """False for areas and for ways closed to motor traffic (unless open to emergency)."""
    if tags.get("area") == "yes":
        return False
    closed = any(
        tags.get(k, "").lower() in CLOSED_ACCESS
        for k in ("access", "vehicle", "motor_vehicle", "motorcar")
    )
    if closed and tags.get("emergency", "").lower() not in EMERGENCY_OPEN:
        return False
    return True
