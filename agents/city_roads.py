"""The city's routable road network for evacuation and dispatch.

:func:`city_road_graph` reads the city's ``drive_roads`` layer (for Shenzhen
the raw OpenStreetMap Overpass answer of central Shenzhen,
``osm/central_drive_overpass_20241006.json``, or the one ``twin data fetch``
builds), keeps the part inside the city's districts — the answer holds a
strip of Hong Kong south of the Shenzhen River, whose roads must not carry
Shenzhen's evacuees or fire engines —, optionally only the districts asked
for (grown by a margin so that boundary streets stay), and returns its
largest strongly connected part, so every node can reach every other.

A user's own network (GeoJSON edges, OSM XML, Overpass JSON) is read the same
way with ``path=``; it is clipped to the city too unless ``clip=False``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from gis.roads import RoadGraph, load_road_graph
from twin.errors import GraphError, ValidationError

#: Margin (m) around the districts asked for: roads on a district's edge and the
#: junctions just beyond it stay routable (a boundary street is often the
#: district line itself).
DISTRICT_MARGIN_M = 500.0


def city_road_graph(city=None, *, districts: Sequence[str] | None = None,
                    path: str | os.PathLike | None = None, clip: bool = True,
                    margin_m: float = DISTRICT_MARGIN_M) -> RoadGraph:
    """The routable road graph of ``city`` (default: Shenzhen).

    Parameters
    ----------
    city : twin.city.City, optional
        The city whose ``drive_roads`` layer and districts are used.
    districts : list of str, optional
        District names or adcodes (English, Chinese or 6-digit code): keep the
        roads within them (plus ``margin_m``); None: the whole city.
    path : path, optional
        A road file of the user's (GeoJSON edges, ``.osm`` XML or Overpass
        ``.json``) instead of the city's layer.
    clip : bool
        Keep only the roads inside the city (or ``districts``). False keeps
        the file's whole network (e.g. a test network outside the city).
    margin_m : float
        Growth of the districts' outline, metres (only with ``districts``).

    Returns
    -------
    gis.roads.RoadGraph
        The largest strongly connected part of the clipped network.

    Raises
    ------
    twin.errors.DataMissingError
        When the city's road layer is not on disk (says how to get it).
    twin.errors.ValidationError
        For an unknown district name.
    twin.errors.GraphError
        When no road is left inside the area.
    """
    if city is None:
        from twin.city import City

        city = City("shenzhen")
    graph = load_road_graph(path if path is not None else city.files("drive_roads")[0])
    if clip:
        area, what = _area(city, districts)
        graph = graph.within(area, buffer_m=margin_m if districts else 0.0)
        if graph.n_edges == 0:
            raise GraphError(f"no road of {path or 'the city road layer'} lies inside {what}: "
                             "pass path= a road file that covers it (GeoJSON edges, OSM XML, Overpass "
                             "JSON), or clip=False to keep a file's whole network")
    return graph.largest_scc()


def _area(city, districts: Sequence[str] | None):
    """(polygon in WGS 84, description) of the city or of some of its districts."""
    gdf = city.districts()
    if not districts:
        return gdf.geometry.union_all(), f"the city {city.name!r}"
    keys = {str(v).casefold(): i for i, row in gdf.iterrows()
            for v in (row["name"], row["name_zh"], row["adcode"])}
    rows = []
    for d in districts:
        i = keys.get(str(d).strip().casefold())
        if i is None:
            raise ValidationError(f"districts={d!r}: not a district of {city.name}; known: "
                                  f"{', '.join(gdf['name'])}")
        rows.append(i)
    return gdf.geometry.iloc[sorted(set(rows))].union_all(), "districts " + ", ".join(map(str, districts))


__all__ = ["DISTRICT_MARGIN_M", "city_road_graph"]
