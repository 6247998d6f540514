"""Walkable areas, walls and exits of a pedestrian simulation, from shapely or GeoJSON.

:class:`Geometry` takes a walkable polygon (holes are obstacles) or rooms to
be merged, optional internal walls (lines or polygons) and exits (line
segments on the boundary of the walkable area), and turns them into arrays
in metres: wall segments (n, 4) ``x0, y0, x1, y1`` and exit segments (m, 4)
with ids and an open flag. Input in lon/lat (or any CRS) is projected with
pyproj at this edge into a metric CRS (a local azimuthal equidistant
projection about the area's centre unless ``metric_crs`` is given);
:meth:`Geometry.to_lonlat` projects results back.

Invalid input raises :class:`twin.errors.ValidationError` naming the
element: a self-intersecting polygon, an exit not on the boundary, agents
placed outside the walkable area or inside a wall's clearance.

GeoJSON (:meth:`Geometry.from_geojson`): a FeatureCollection whose features
carry a ``role`` property:

* ``"walkable"`` - Polygon or MultiPolygon (several are merged);
* ``"exit"`` - LineString of two points on the walkable boundary, with an
  ``id`` property (default ``exit<k>``);
* ``"wall"`` - LineString or Polygon inside the walkable area (internal
  walls, pillars).

Coordinates are lon/lat (WGS84, RFC 7946) unless the collection has a
legacy ``crs`` member (``{"type": "name", "properties": {"name":
"EPSG:4547"}}``) or the caller passes ``crs=``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import shapely
from shapely.geometry import LineString, MultiPolygon, Polygon, shape
from shapely.ops import unary_union

from twin.errors import CRSError, DataIntegrityError, ValidationError

#: Exits within this distance (m) of the walkable boundary count as on it.
BOUNDARY_TOLERANCE_M = 0.01


def _segments(geom) -> np.ndarray:
    """Every straight piece of a line or polygon boundary geometry, (k, 4)."""
    out = []
    for part in getattr(geom, "geoms", [geom]):
        if part.is_empty:
            continue
        if isinstance(part, Polygon):
            rings = [part.exterior, *part.interiors]
        elif hasattr(part, "geoms"):
            out.append(_segments(part))
            continue
        else:
            rings = [part]
        for ring in rings:
            xy = np.asarray(ring.coords, dtype=np.float64)[:, :2]
            if len(xy) >= 2:
                out.append(np.hstack([xy[:-1], xy[1:]]))
    if not out:
        return np.zeros((0, 4))
    seg = np.vstack(out)
    return seg[np.hypot(seg[:, 2] - seg[:, 0], seg[:, 3] - seg[:, 1]) > 1e-9]


def _check_polygon(poly, name: str) -> None:
    if poly.is_empty:
        raise ValidationError(f"{name}: the polygon is empty")
    if not poly.is_valid:
        raise ValidationError(
            f"{name}: invalid polygon ({shapely.is_valid_reason(poly)}); "
            "fix it (e.g. remove the self-intersection) and try again"
        )


@dataclass
class Geometry:
    """The walkable area of a simulation, in metres.

    Parameters
    ----------
    walkable : shapely Polygon or MultiPolygon
        Where people may be (holes are obstacles), in ``crs`` units.
    exits : dict of str to LineString (or ((x0, y0), (x1, y1)))
        Exit segments on the walkable boundary, by id.
    walls : list of LineString or Polygon, optional
        Internal walls and obstacles inside the walkable area.
    crs : str or None
        CRS of the input coordinates (e.g. ``"EPSG:4326"``); None means the
        input is already in metres in a local frame.
    metric_crs : str, optional
        The metric CRS to project to (default: local azimuthal equidistant
        about the centre, exact distances within a building or district).
    """

    walkable: Polygon | MultiPolygon
    exits: dict
    walls: list = field(default_factory=list)
    crs: str | None = None
    metric_crs: str | None = None

    def __post_init__(self) -> None:
        self._to_metric = None
        self._to_input = None
        walk = self.walkable
        if isinstance(walk, list | tuple):
            walk = unary_union([Polygon(p) if not hasattr(p, "geom_type") else p for p in walk])
        _check_polygon(walk, "walkable")
        if self.crs is not None:
            self._set_projection(walk)
            walk = self.project_geometry(walk)
        self.walkable = walk
        self.exit_ids: list[str] = []
        ex = []
        for eid, line in self.exits.items():
            line = line if hasattr(line, "geom_type") else LineString(line)
            if self.crs is not None:
                line = self.project_geometry(line)
            coords = np.asarray(line.coords, dtype=np.float64)
            if coords.shape[0] != 2 or line.length <= 0:
                raise ValidationError(f"exit {eid!r}: must be a straight segment of two points")
            if walk.boundary.distance(line.interpolate(0.5, normalized=True)) > BOUNDARY_TOLERANCE_M:
                raise ValidationError(f"exit {eid!r}: is not on the boundary of the walkable area")
            for end in (line.coords[0], line.coords[1]):
                if walk.boundary.distance(shapely.Point(end)) > BOUNDARY_TOLERANCE_M:
                    raise ValidationError(
                        f"exit {eid!r}: end {tuple(round(c, 3) for c in end)} is not on the "
                        "boundary of the walkable area"
                    )
            self.exit_ids.append(str(eid))
            ex.append(coords[:, :2].ravel())
        if not ex:
            raise ValidationError("exits: a walkable area needs at least one exit")
        self.exit_segments = np.asarray(ex, dtype=np.float64).reshape(-1, 4)
        self.exit_open = np.ones(len(ex), dtype=bool)
        inner = []
        for k, wall in enumerate(self.walls):
            wall = wall if hasattr(wall, "geom_type") else LineString(wall)
            if self.crs is not None:
                wall = self.project_geometry(wall)
            if isinstance(wall, Polygon):
                _check_polygon(wall, f"wall {k}")
            elif not wall.is_valid or wall.length <= 0:
                raise ValidationError(f"wall {k}: invalid line")
            inner.append(wall)
        self.walls = inner
        cut = unary_union([LineString(s.reshape(2, 2)).buffer(1e-6) for s in self.exit_segments])
        self._boundary_walls = _segments(walk.boundary.difference(cut))
        self._inner_walls = _segments(unary_union(inner)) if inner else np.zeros((0, 4))

    # -- projection ----------------------------------------------------------
    def _set_projection(self, walk) -> None:
        from pyproj import CRS, Transformer

        try:
            src = CRS.from_user_input(self.crs)
        except Exception as err:
            raise CRSError(f"crs: {self.crs!r} is not a CRS pyproj knows") from err
        if self.metric_crs is None:
            c = walk.centroid
            lonlat = Transformer.from_crs(src, "EPSG:4326", always_xy=True).transform(c.x, c.y)
            self.metric_crs = (
                f"+proj=aeqd +lat_0={lonlat[1]:.8f} +lon_0={lonlat[0]:.8f} +datum=WGS84 +units=m"
            )
        dst = CRS.from_user_input(self.metric_crs)
        fwd = Transformer.from_crs(src, dst, always_xy=True)
        back = Transformer.from_crs(dst, "EPSG:4326", always_xy=True)
        self._to_metric = fwd.transform
        self._to_input = back.transform

    @property
    def has_crs(self) -> bool:
        """True when the input had a CRS (so results can go back to lon/lat)."""
        return self._to_input is not None

    def project_geometry(self, geom):
        """A shapely geometry from the input CRS into the metric frame (identity without a CRS)."""
        if self._to_metric is None:
            return geom
        return shapely.transform(geom, self._to_metric, interleaved=False)

    def to_lonlat(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Metric coordinates back to lon/lat degrees (WGS84); needs a ``crs``."""
        if self._to_input is None:
            raise CRSError("crs: this geometry was given in local metres; no lon/lat exists")
        return self._to_input(np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64))

    def project(self, x, y) -> tuple[np.ndarray, np.ndarray]:
        """Input-CRS coordinates to the metric frame (identity without a ``crs``)."""
        x = np.asarray(x, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        if self._to_metric is None:
            return x, y
        return self._to_metric(x, y)

    # -- arrays ----------------------------------------------------------------
    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(xmin, ymin, xmax, ymax) of the walkable area, m."""
        return tuple(float(b) for b in self.walkable.bounds)

    def wall_segments(self) -> np.ndarray:
        """Wall segments (k, 4) in metres: the boundary less open exits, closed exits, inner walls."""
        closed = self.exit_segments[~self.exit_open]
        return np.vstack([self._boundary_walls, closed, self._inner_walls])

    def exit_index(self, exit_id: str) -> int:
        """Index of an exit by id; ValidationError naming it when unknown."""
        try:
            return self.exit_ids.index(str(exit_id))
        except ValueError:
            raise ValidationError(
                f"exit {exit_id!r}: no such exit (known: {', '.join(self.exit_ids)})"
            ) from None

    def check_positions(self, xy: np.ndarray, clearance: float = 0.0) -> None:
        """Raise ValidationError naming the first agent outside the area or within ``clearance`` of a wall."""
        xy = np.asarray(xy, dtype=np.float64)
        inside = shapely.contains_xy(self.walkable, xy[:, 0], xy[:, 1])
        if not inside.all():
            k = int(np.flatnonzero(~inside)[0])
            raise ValidationError(
                f"agents: agent {k} at ({xy[k, 0]:.3f}, {xy[k, 1]:.3f}) m is outside the walkable area"
            )
        walls = self.wall_segments()
        if clearance > 0 and walls.size:
            lines = shapely.linestrings(walls.reshape(-1, 2, 2))
            tree = shapely.STRtree(lines)
            pts = shapely.points(xy)
            hit, _ = tree.query(pts, predicate="dwithin", distance=clearance)
            if hit.size:
                k = int(hit.min())
                raise ValidationError(
                    f"agents: agent {k} at ({xy[k, 0]:.3f}, {xy[k, 1]:.3f}) m is within "
                    f"{clearance} m of a wall"
                )
        if self._inner_walls.size:
            solid = [w for w in self.walls if isinstance(w, Polygon)]
            if solid:
                inwall = shapely.contains_xy(unary_union(solid), xy[:, 0], xy[:, 1])
                if inwall.any():
                    k = int(np.flatnonzero(inwall)[0])
                    raise ValidationError(f"agents: agent {k} is inside wall/obstacle")

    # -- readers ---------------------------------------------------------------
    @classmethod
    def from_rooms(cls, rooms, exits, walls=(), **kw) -> Geometry:
        """Merge room polygons into one walkable area (shared edges vanish: doors are their overlaps)."""
        polys = [r if hasattr(r, "geom_type") else Polygon(r) for r in rooms]
        for k, p in enumerate(polys):
            _check_polygon(p, f"room {k}")
        return cls(unary_union(polys), exits, list(walls), **kw)

    @classmethod
    def from_geojson(cls, path: str | Path, crs: str | None = None, metric_crs: str | None = None):
        """Read a walkable area, exits and walls from GeoJSON (format in the module docstring)."""
        path = Path(path)
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise
        except (OSError, ValueError) as err:
            raise DataIntegrityError(f"{path}: not readable JSON ({err})") from err
        if doc.get("type") != "FeatureCollection":
            raise DataIntegrityError(f"{path}: expected a GeoJSON FeatureCollection")
        if crs is None:
            crs = (doc.get("crs") or {}).get("properties", {}).get("name", "EPSG:4326")
        walk, exits, walls = [], {}, []
        for k, feat in enumerate(doc.get("features", [])):
            props = feat.get("properties") or {}
            role = props.get("role")
            try:
                geom = shape(feat["geometry"])
            except Exception as err:
                raise DataIntegrityError(f"{path}: feature {k}: bad geometry ({err})") from err
            if role == "walkable":
                walk.append(geom)
            elif role == "exit":
                exits[str(props.get("id", f"exit{len(exits)}"))] = geom
            elif role == "wall":
                walls.append(geom)
            else:
                raise DataIntegrityError(
                    f"{path}: feature {k}: role {role!r} is not walkable, exit or wall"
                )
        if not walk:
            raise DataIntegrityError(f"{path}: no feature with role 'walkable'")
        return cls(unary_union(walk), exits, walls, crs=crs, metric_crs=metric_crs)
