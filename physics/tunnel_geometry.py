"""Metro tunnels from the metro lines: segments with chainage, depth, diameter and the protection zone.

The alignments are ``shenzhen/metro/sz_metro_lines_approx.geojson`` (the city layer ``metro_lines``):
**straight segments between consecutive stations, not the real track** (curves are cut, and 19 stations
without coordinates are skipped: see the data README). Every output says so (:data:`ALIGNMENT_NOTE`).

Geometry lives in the twin's working CRS (:data:`gis.crs.WORKING_CRS`, EPSG:4547 CGCS2000 / GK CM 114E:
metres, x east, y north, scale error below 55 ppm over Shenzhen). A line's chainage is the distance in m
along its polyline from its first station (the first vertex of the geojson's LineString). Each line is cut
into ``n = max(1, round(L / segment_m))`` segments of equal length ``L / n`` (so within half a segment of
``segment_m``).

Each segment has a depth to the tunnel axis and an outer diameter: the defaults of
``physics/tunnel_limits.toml`` ``[tunnel]`` (axis 15 m, outer diameter 6 m: assumptions typical of
shield-driven running tunnels), overridden by line and chainage range with :class:`TunnelOverride`.
The protection zone reaches ``protection_m`` (default 50 m, same table, with its source) beyond the
tunnel's outer edge in plan: a point is inside when its horizontal distance to the axis is at most
``diameter / 2 + protection_m``.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from twin.errors import ValidationError

LIMITS_FILE = Path(__file__).with_name("tunnel_limits.toml")
DEFAULT_SEGMENT_M = 50.0
ALIGNMENT_NOTE = ("approximate alignments: straight segments between consecutive stations "
                  "(sz_metro_lines_approx.geojson), not the real track")


def tunnel_defaults(path: Path | str = LIMITS_FILE) -> dict[str, Any]:
    """The ``[tunnel]`` table (axis_depth_m, outer_diameter_m, protection_zone_m, source, verified)."""
    return tomllib.loads(Path(path).read_text(encoding="utf-8"))["tunnel"]


def line_key(name: Any) -> str:
    """A line name as the geojson spells it: ``"Line 1"``, ``"1号线"``, ``1`` -> ``"1"``."""
    s = str(name).strip()
    for prefix in ("Line ", "line ", "L"):
        if s.startswith(prefix) and len(s) > len(prefix) and s[len(prefix)].isdigit():
            s = s[len(prefix):]
    return s.replace("号线", "").replace(" Branch", "支").strip()


@dataclass(frozen=True)
class TunnelOverride:
    """Depth and/or outer diameter for one line over a chainage range (segment midpoints inside it).

    Attributes
    ----------
    line : str
        Line name (``"1"``, ``"Line 1"`` or ``"1号线"``).
    depth_m, diameter_m : float or None
        Depth to the tunnel axis below ground (m) and outer diameter (m); None keeps the value.
    chainage_from_m, chainage_to_m : float
        Range of chainage it applies to (default: the whole line).
    """

    line: str
    depth_m: float | None = None
    diameter_m: float | None = None
    chainage_from_m: float = 0.0
    chainage_to_m: float = math.inf

    def __post_init__(self) -> None:
        for name in ("depth_m", "diameter_m"):
            v = getattr(self, name)
            if v is not None and not (math.isfinite(v) and v > 0):
                raise ValidationError(f"override {name} = {v!r} on line {self.line!r}: must be > 0 m")
        if not self.chainage_to_m > self.chainage_from_m:
            raise ValidationError(f"override chainage_from_m = {self.chainage_from_m!r}, chainage_to_m = "
                                  f"{self.chainage_to_m!r} on line {self.line!r}: 'to' must exceed 'from'")


@dataclass
class Tunnels:
    """Tunnel segments of some metro lines, in a metric CRS.

    Attributes
    ----------
    crs : str
        The metric CRS of every coordinate (the working CRS).
    vertices, chainage : dict line -> ndarray
        Polyline vertices ``(n, 2)`` (x, y) and their chainage ``(n,)`` in m.
    seg_line, seg_index : ndarray
        Per segment: its line (str) and its index along the line (0 from the first station).
    seg_c0, seg_c1 : ndarray
        Chainage (m) at the segment's start and end.
    depth_m, diameter_m : ndarray
        Depth to the axis and outer diameter (m) per segment.
    protection_m : float
        Width of the protection zone beyond the outer edge (m).
    pieces : dict of ndarray
        Straight pieces ordered by segment: ``ax, ay, bx, by`` (m), ``seg`` (segment row) and
        ``start`` (index of each segment's first piece, for ``np.minimum.reduceat``).
    """

    crs: str
    vertices: dict[str, np.ndarray]
    chainage: dict[str, np.ndarray]
    seg_line: np.ndarray
    seg_index: np.ndarray
    seg_c0: np.ndarray
    seg_c1: np.ndarray
    depth_m: np.ndarray
    diameter_m: np.ndarray
    protection_m: float
    pieces: dict[str, np.ndarray] = field(repr=False)
    note: str = ALIGNMENT_NOTE

    @property
    def lines(self) -> list[str]:
        return list(self.vertices)

    @property
    def n_segments(self) -> int:
        return int(self.seg_c0.size)

    def length_m(self, line: str) -> float:
        """Length of a line's polyline (m)."""
        return float(self.chainage[self._line(line)][-1])

    def _line(self, line: Any) -> str:
        key = line_key(line)
        if key not in self.vertices:
            raise ValidationError(f"line = {line!r}: not among the tunnels (lines: {self.lines})")
        return key

    def chainage_to_point(self, line: Any, chainage_m: Any) -> tuple[np.ndarray, np.ndarray]:
        """Points (x, y) at ``chainage_m`` along ``line`` (arrays in, arrays out).

        Raises
        ------
        ValidationError
            For an unknown line or a chainage outside [0, length].
        """
        key = self._line(line)
        c = np.asarray(chainage_m, dtype=np.float64)
        cum, v = self.chainage[key], self.vertices[key]
        bad = ~np.isfinite(c) | (c < -1e-6) | (c > cum[-1] + 1e-6)
        if np.any(bad):
            raise ValidationError(f"chainage_m = {c[bad].flat[0]!r} on line {key!r}: outside 0..{cum[-1]:.1f} m")
        return np.interp(c, cum, v[:, 0]), np.interp(c, cum, v[:, 1])

    def locator(self, line: Any):
        """A function ``chainage_m -> (x, y, lon, lat)`` along ``line`` (e.g. a DAS detector's ``locate``).

        Chainages outside the line are clipped to its ends (a fibre may run past the last station).
        """
        from gis.crs import WGS84, transformer

        key = self._line(line)
        to_ll = transformer(self.crs, WGS84)
        length = self.length_m(key)

        def at(chainage_m: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
            c = np.clip(np.asarray(chainage_m, dtype=np.float64), 0.0, length)
            x, y = self.chainage_to_point(key, c)
            lon, lat = to_ll.transform(x, y)
            return x, y, np.asarray(lon), np.asarray(lat)

        return at

    def locate(self, x: Any, y: Any, line: Any = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Nearest line, chainage on it (m) and horizontal offset from the axis (m, >= 0) of points (x, y).

        ``line`` restricts the search to one line.
        """
        px = np.atleast_1d(np.asarray(x, dtype=np.float64))
        py = np.atleast_1d(np.asarray(y, dtype=np.float64))
        keys = [self._line(line)] if line is not None else self.lines
        best_d = np.full(px.shape, np.inf)
        best_c = np.zeros(px.shape)
        best_l = np.empty(px.shape, dtype=object)
        for key in keys:
            v, cum = self.vertices[key], self.chainage[key]
            a, b = v[:-1], v[1:]
            d2, t = _point_leg(px, py, a[:, 0], a[:, 1], b[:, 0], b[:, 1])
            j = np.argmin(d2, axis=1)
            rows = np.arange(px.size)
            d = np.sqrt(d2[rows, j])
            c = cum[j] + t[rows, j] * (cum[j + 1] - cum[j])
            better = d < best_d
            best_d[better], best_c[better], best_l[better] = d[better], c[better], key
        return best_l, best_c, best_d

    def segment_at(self, line: Any, chainage_m: Any) -> np.ndarray:
        """Row of the segment holding ``chainage_m`` on ``line``."""
        key = self._line(line)
        c = np.asarray(chainage_m, dtype=np.float64)
        rows = np.flatnonzero(self.seg_line == key)
        k = np.searchsorted(self.seg_c1[rows], c, side="left")
        return rows[np.clip(k, 0, rows.size - 1)]

    def in_protection_zone(self, x: Any, y: Any, line: Any = None) -> np.ndarray:
        """True where a point is within ``protection_m`` of the tunnel's outer edge (in plan)."""
        lines, c, off = self.locate(x, y, line)
        radius = np.empty(off.shape)
        for key in set(lines):
            here = lines == key
            radius[here] = self.diameter_m[self.segment_at(key, c[here])] / 2
        return off <= radius + self.protection_m

    def segment_table(self):
        """The segments as a GeoDataFrame in :attr:`crs` (LineString per segment)."""
        import geopandas as gpd
        from shapely.geometry import LineString

        geoms = []
        for ln, c0, c1 in zip(self.seg_line, self.seg_c0, self.seg_c1, strict=True):
            cum = self.chainage[ln]
            inner = cum[(cum > c0) & (cum < c1)]
            cs = np.concatenate([[c0], inner, [c1]])
            x, y = self.chainage_to_point(ln, cs)
            geoms.append(LineString(np.column_stack([x, y])))
        return gpd.GeoDataFrame({
            "line": self.seg_line, "segment": self.seg_index, "chainage_start_m": self.seg_c0,
            "chainage_end_m": self.seg_c1, "depth_m": self.depth_m, "diameter_m": self.diameter_m,
        }, geometry=geoms, crs=self.crs)

    def zone_table(self):
        """Protection zones as a GeoDataFrame (one polygon per line, plan view, in :attr:`crs`)."""
        import geopandas as gpd
        from shapely.ops import unary_union

        seg = self.segment_table()
        polys, names = [], []
        for ln, part in seg.groupby("line", sort=False):
            polys.append(unary_union([g.buffer(d / 2 + self.protection_m, cap_style="flat")
                                      for g, d in zip(part.geometry, part["diameter_m"], strict=True)]))
            names.append(ln)
        return gpd.GeoDataFrame({"line": names, "protection_m": self.protection_m}, geometry=polys, crs=self.crs)


def _point_leg(px, py, ax, ay, bx, by) -> tuple[np.ndarray, np.ndarray]:
    """Squared distance ``(n_points, n_legs)`` from points to straight legs, and the clipped parameter t."""
    dx, dy = bx - ax, by - ay
    len2 = np.maximum(dx * dx + dy * dy, 1e-12)
    t = ((px[:, None] - ax) * dx + (py[:, None] - ay) * dy) / len2
    np.clip(t, 0.0, 1.0, out=t)
    qx = ax + t * dx - px[:, None]
    qy = ay + t * dy - py[:, None]
    return qx * qx + qy * qy, t


def metro_lines(city: Any = None):
    """The metro lines layer (``metro_lines`` of the city manifest) in WGS 84.

    Raises
    ------
    twin.errors.DataMissingError
        When the file is not in the data directory (the message names it and how to get it).
    """
    from twin.city import City

    city = city if city is not None else City("shenzhen")
    if isinstance(city, str):
        city = City(city)
    return city.vector("metro_lines")


def build_tunnels(lines: Any = None, *, select: Iterable[Any] | None = None, segment_m: float = DEFAULT_SEGMENT_M,
                  depth_m: float | None = None, diameter_m: float | None = None,
                  overrides: Sequence[TunnelOverride | dict] = (), protection_m: float | None = None,
                  crs: str | None = None) -> Tunnels:
    """Tunnels of the metro lines, cut into segments with chainage, depth and diameter.

    Parameters
    ----------
    lines : GeoDataFrame, twin.city.City, str or None
        LineStrings with a ``line`` column (any CRS), or a city (name) whose ``metro_lines`` layer is read
        (None: Shenzhen from ``TWIN_DATA``).
    select : iterable of str, optional
        Only these lines (``"1"``, ``"Line 1"``, ``"1号线"``).
    segment_m : float
        Target segment length (m, > 0).
    depth_m, diameter_m, protection_m : float, optional
        Defaults for every segment (None: ``tunnel_limits.toml`` ``[tunnel]``).
    overrides : sequence of TunnelOverride or dict
        Per line and chainage range, applied in order (a later one wins).
    crs : str, optional
        Metric CRS (default :data:`gis.crs.WORKING_CRS`).
    """
    import geopandas as gpd

    from gis.crs import WORKING_CRS

    defaults = tunnel_defaults()
    depth = _positive("depth_m", depth_m if depth_m is not None else defaults["axis_depth_m"])
    diam = _positive("diameter_m", diameter_m if diameter_m is not None else defaults["outer_diameter_m"])
    prot = protection_m if protection_m is not None else defaults["protection_zone_m"]
    if not (math.isfinite(prot) and prot >= 0):
        raise ValidationError(f"protection_m = {prot!r}: must be >= 0 m")
    _positive("segment_m", segment_m)
    crs = crs or WORKING_CRS
    gdf = lines if isinstance(lines, gpd.GeoDataFrame) else metro_lines(lines)
    if "line" not in gdf.columns:
        raise ValidationError(f"lines: no 'line' column (columns: {list(gdf.columns)})")
    gdf = gdf.to_crs(crs)
    wanted = None if select is None else {line_key(s) for s in select}
    known = [line_key(v) for v in gdf["line"]]
    if wanted is not None and wanted - set(known):
        raise ValidationError(f"line = {sorted(wanted - set(known))}: not in the metro lines (lines: {known})")
    verts, cums = {}, {}
    for key, geom in zip(known, gdf.geometry, strict=True):
        if wanted is not None and key not in wanted:
            continue
        if geom is None or geom.is_empty or geom.geom_type != "LineString":
            raise ValidationError(f"line {key!r}: geometry {getattr(geom, 'geom_type', None)!r}, need a LineString")
        v = np.asarray(geom.coords, dtype=np.float64)[:, :2]
        step = np.hypot(*np.diff(v, axis=0).T)
        v = np.vstack([v[:1], v[1:][step > 1e-9]])
        verts[key] = v
        cums[key] = np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(v, axis=0).T))])
    seg_line, seg_index, c0s, c1s = [], [], [], []
    for key, cum in cums.items():
        n = max(1, round(cum[-1] / segment_m))
        edges = np.linspace(0.0, cum[-1], n + 1)
        seg_line += [key] * n
        seg_index.append(np.arange(n))
        c0s.append(edges[:-1])
        c1s.append(edges[1:])
    seg_line_a = np.array(seg_line, dtype=object)
    c0 = np.concatenate(c0s)
    c1 = np.concatenate(c1s)
    depth_a = np.full(c0.size, depth)
    diam_a = np.full(c0.size, diam)
    mid = (c0 + c1) / 2
    for ov in overrides:
        ov = ov if isinstance(ov, TunnelOverride) else TunnelOverride(**ov)
        key = line_key(ov.line)
        if key not in cums:
            raise ValidationError(f"override line = {ov.line!r}: not among the tunnels (lines: {list(cums)})")
        hit = (seg_line_a == key) & (mid >= ov.chainage_from_m) & (mid < ov.chainage_to_m)
        if ov.depth_m is not None:
            depth_a[hit] = ov.depth_m
        if ov.diameter_m is not None:
            diam_a[hit] = ov.diameter_m
    tun = Tunnels(crs=crs, vertices=verts, chainage=cums, seg_line=seg_line_a,
                  seg_index=np.concatenate(seg_index), seg_c0=c0, seg_c1=c1, depth_m=depth_a,
                  diameter_m=diam_a, protection_m=float(prot), pieces={})
    tun.pieces = _pieces(tun)
    return tun


def _pieces(tun: Tunnels) -> dict[str, np.ndarray]:
    """Straight pieces of every segment (cut at the stations), ordered by segment row."""
    ax, ay, bx, by, seg = [], [], [], [], []
    for key, cum in tun.chainage.items():
        rows = np.flatnonzero(tun.seg_line == key)
        for r in rows:
            c0, c1 = tun.seg_c0[r], tun.seg_c1[r]
            inner = cum[(cum > c0) & (cum < c1)]
            cs = np.concatenate([[c0], inner, [c1]])
            x, y = tun.chainage_to_point(key, cs)
            ax.append(x[:-1]), ay.append(y[:-1]), bx.append(x[1:]), by.append(y[1:])
            seg.append(np.full(cs.size - 1, r))
    seg_a = np.concatenate(seg)
    start = np.flatnonzero(np.r_[True, seg_a[1:] != seg_a[:-1]])
    return {"ax": np.concatenate(ax), "ay": np.concatenate(ay), "bx": np.concatenate(bx),
            "by": np.concatenate(by), "seg": seg_a, "start": start}


def _positive(name: str, value: float) -> float:
    v = float(value)
    if not (math.isfinite(v) and v > 0):
        raise ValidationError(f"{name} = {value!r}: must be > 0")
    return v


def horizontal_distance_to_segments(tun: Tunnels, x: Any, y: Any) -> np.ndarray:
    """Horizontal distance (m) from points to every segment's axis, shape ``(n_points, n_segments)``.

    The minimum over each segment's straight pieces (``np.minimum.reduceat``); numpy, chunked so that
    the temporary ``(points, pieces)`` arrays stay below ~64 MB.
    """
    px = np.atleast_1d(np.asarray(x, dtype=np.float64))
    py = np.atleast_1d(np.asarray(y, dtype=np.float64))
    p = tun.pieces
    out = np.empty((px.size, tun.n_segments))
    chunk = max(1, 2_000_000 // max(1, p["ax"].size))
    for i in range(0, px.size, chunk):
        d2, _ = _point_leg(px[i:i + chunk], py[i:i + chunk], p["ax"], p["ay"], p["bx"], p["by"])
        out[i:i + chunk] = np.sqrt(np.minimum.reduceat(d2, p["start"], axis=1))
    return out
