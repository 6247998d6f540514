"""Geometry of a tower drawn two ways: extruded storey slabs and a flat "floor strip" beside it.

Shared by the layer kinds of building runs (:mod:`viz.layers.building_evac`,
:mod:`viz.layers.fire_building`):

* each storey's slab is the footprint at the storey's base elevation as z,
  extruded by :data:`SLAB_FILL` of the storey height (a gap shows the floors
  apart when the view is pitched);
* the strip lays one rectangle per storey flat on the ground east of the
  footprint, the ground storey southmost, each as tall (north-south) as its
  storey is high, so the tower reads from straight above too.

Coordinates are local metres east/north of the footprint's mean point on an
equirectangular projection: exact enough over one building.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

#: Share of a storey's height a slab (or strip band) fills.
SLAB_FILL = 0.85
#: Metres per degree of latitude (and of longitude at the equator) on the equirectangular projection.
M_PER_DEG = 111_320.0


def frame_indices(n: int, max_frames: int) -> list[int]:
    """Indices of at most ``max_frames`` of ``n`` frames, evenly thinned, first and last kept."""
    if n <= max_frames:
        return list(range(n))
    return sorted({int(round(v)) for v in np.linspace(0, n - 1, max_frames)})


def local(lon0: float, lat0: float) -> tuple[Callable, Callable]:
    """``(to_m, to_deg)``: (lon, lat) <-> local metres east/north of (lon0, lat0)."""
    kx = M_PER_DEG * math.cos(math.radians(lat0))
    ky = M_PER_DEG

    def to_m(lon, lat):
        return (np.asarray(lon) - lon0) * kx, (np.asarray(lat) - lat0) * ky

    def to_deg(x, y):
        return lon0 + np.asarray(x) / kx, lat0 + np.asarray(y) / ky

    return to_m, to_deg


def square_footprint(lon: float, lat: float, area_m2: float) -> np.ndarray:
    """(4, 2) lon/lat corners of a square of ``area_m2`` centred on (lon, lat), counter-clockwise from SW."""
    half = math.sqrt(area_m2) / 2.0
    dlat = half / M_PER_DEG
    dlon = half / (M_PER_DEG * math.cos(math.radians(lat)))
    return np.array([[lon - dlon, lat - dlat], [lon + dlon, lat - dlat], [lon + dlon, lat + dlat],
                     [lon - dlon, lat + dlat]])


def _ring(lon, lat) -> list[list[float]]:
    return [[round(float(a), 7), round(float(b), 7)] for a, b in zip(lon, lat, strict=True)]


@dataclass
class Tower:
    """A tower's footprint, storeys and strip, in degrees and local metres (see :func:`tower`)."""

    ring: list[list[float]]          #: footprint ring, (lon, lat) rounded to 1e-7°
    elevation_m: np.ndarray          #: (S,) storey base above ground
    height_m: np.ndarray             #: (S,) storey height
    strip: list[list[list[float]]]   #: (S,) strip rectangles, lon/lat rings
    fx: np.ndarray                   #: footprint x (m east of its mean point)
    fy: np.ndarray                   #: footprint y (m north)
    width_m: float                   #: footprint width east-west (at least 10 m)
    strip_x0: float                  #: strip's west edge (m)
    strip_x1: float                  #: strip's east edge (m)
    y_base: float                    #: strip's south edge (m): the footprint's south
    to_deg: Callable                 #: local metres -> (lon, lat)

    def slab(self, f: int, scale: float = 1.0) -> list[list[float]]:
        """Footprint ring of storey ``f`` with its base elevation as z (``scale``: shrunk about its mean point)."""
        z = round(float(self.elevation_m[f]), 2)
        return [[a, b, z] for a, b in (self.ring if scale == 1.0 else self.scaled_ring(scale))]

    def scaled_ring(self, scale: float) -> list[list[float]]:
        """The footprint ring scaled by ``scale`` about its mean point (a tapering storey, an outline)."""
        lon, lat = self.to_deg(scale * self.fx, scale * self.fy)
        return _ring(lon, lat)

    def slab_extrusion(self, f: int) -> float:
        """Extruded height (m) of storey ``f``'s slab."""
        return round(float(SLAB_FILL * self.height_m[f]), 2)

    def box(self, xa: float, xb: float, ya: float, yb: float) -> list[list[float]]:
        """A lon/lat rectangle from local metres (west, east, south, north)."""
        lo, la = self.to_deg([xa, xb, xb, xa], [ya, ya, yb, yb])
        return _ring(lo, la)

    def band(self, f: int) -> tuple[float, float]:
        """South and north edge (m) of storey ``f``'s band in the strip."""
        ya = self.y_base + self.elevation_m[f]
        return ya, ya + SLAB_FILL * self.height_m[f]

    def top_m(self) -> float:
        """Height of the top storey's ceiling above ground."""
        return float(self.elevation_m[-1] + self.height_m[-1])

    def bounds(self, x_right: float | None = None) -> tuple[float, float, float, float]:
        """(west, south, east, north) of the footprint and the strip (to ``x_right``, default its edge)."""
        xs = np.concatenate([self.fx, [self.strip_x0, self.strip_x1 if x_right is None else x_right]])
        ys = np.concatenate([self.fy, [self.y_base, self.y_base + self.elevation_m[-1] + self.height_m[-1]]])
        blon, blat = self.to_deg([xs.min(), xs.max()], [ys.min(), ys.max()])
        return float(blon[0]), float(blat[0]), float(blon[1]), float(blat[1])


def tower(footprint, elevation_m, height_m) -> Tower:
    """The slabs' and strip's geometry of a tower.

    Parameters
    ----------
    footprint : array-like (n, 2)
        Footprint ring in (lon, lat) degrees, n >= 3.
    elevation_m, height_m : array-like (S,)
        Base elevation and height of each storey (m).
    """
    footprint = np.asarray(footprint, dtype=float)
    elev = np.asarray(elevation_m, dtype=float)
    heights = np.asarray(height_m, dtype=float)
    lon0, lat0 = footprint[:, 0].mean(), footprint[:, 1].mean()
    to_m, to_deg = local(lon0, lat0)
    fx, fy = to_m(footprint[:, 0], footprint[:, 1])
    width = max(fx.max() - fx.min(), 10.0)
    x0 = fx.max() + max(0.3 * width, 10.0)
    x1 = x0 + max(0.5 * width, 15.0)
    t = Tower(ring=_ring(footprint[:, 0], footprint[:, 1]), elevation_m=elev, height_m=heights, strip=[],
              fx=fx, fy=fy, width_m=float(width), strip_x0=float(x0), strip_x1=float(x1), y_base=float(fy.min()),
              to_deg=to_deg)
    t.strip = [t.box(x0, x1, *t.band(f)) for f in range(len(elev))]
    return t


__all__ = ["SLAB_FILL", "Tower", "frame_indices", "local", "square_footprint", "tower"]
