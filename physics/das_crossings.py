"""Road crossings over a metro tunnel from the map: where the DAS detector expects road vehicles from the start.

Road vehicles passing over a tunnel are short, still, broadband sources on the fibre below: the detector's
learned crossings (``DetectorParams.nuisance_*``) keep them from being reported as construction once three
passages have been seen at a site. Where roads cross the tunnel is known beforehand from the map: the tunnel's
centreline (:func:`physics.tunnel_geometry.build_tunnels`) intersected with the road network (the city's
``roads`` layer). :func:`road_crossings` gives their chainages, :func:`crossing_channels` the fibre channels, which
:class:`physics.das_detect.DasDetector` takes as ``known_sites`` (a known site from the first passage on).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from twin.errors import ValidationError


def road_crossings(tunnels: Any, line: Any, roads: Any = None) -> np.ndarray:
    """Chainages (m, sorted, unique to 1 m) where roads cross a tunnel line's centreline.

    Parameters
    ----------
    tunnels : physics.tunnel_geometry.Tunnels
        The tunnels (metric CRS, chainage along each line).
    line : str
        The line (``"1"``, ``"Line 1"``).
    roads : GeoDataFrame, twin.city.City, str or None
        Road centrelines (any CRS, LineStrings or MultiLineStrings), or a city (name) whose ``roads`` layer is
        read (None: Shenzhen from ``TWIN_DATA``).
    """
    from shapely.geometry import LineString

    key = tunnels._line(line)
    axis = LineString(tunnels.vertices[key])
    gdf = _roads(roads)
    if gdf.crs is None:
        raise ValidationError("roads: the road layer has no CRS; give a GeoDataFrame with its CRS set")
    gdf = gdf.to_crs(tunnels.crs)
    cand = gdf.geometry.iloc[list(gdf.sindex.query(axis, predicate="intersects"))]
    out: list[float] = []
    for geom in cand:
        hit = axis.intersection(geom)
        for pt in getattr(hit, "geoms", [hit]):
            if pt.is_empty:
                continue
            if pt.geom_type != "Point":  # a road along the axis for a stretch: its midpoint
                pt = pt.interpolate(0.5, normalized=True) if pt.geom_type == "LineString" else pt.centroid
            out.append(float(axis.project(pt)))
    if not out:
        return np.zeros(0)
    c = np.sort(np.asarray(out))
    keep = np.r_[True, np.diff(c) >= 1.0]
    return c[keep]


def crossing_channels(layout: Any, chainages_m: Any) -> np.ndarray:
    """The fibre channels (int, sorted, unique) nearest each crossing's chainage; crossings off the fibre left out."""
    ch = np.asarray(layout.channel(np.asarray(chainages_m, dtype=float)))
    return np.unique(ch[ch >= 0])


def _roads(roads: Any):
    import geopandas as gpd

    if isinstance(roads, gpd.GeoDataFrame):
        return roads
    from twin.city import City

    city = City("shenzhen") if roads is None else (City(roads) if isinstance(roads, str) else roads)
    return city.vector("roads")


__all__ = ["crossing_channels", "road_crossings"]
