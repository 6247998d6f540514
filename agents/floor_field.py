"""Floor field: geodesic distance to the open exits on a grid, and the desired walking direction.

The walkable area of a :class:`agents.geometry.Geometry` is rasterised on
square cells (``cell_m``, default 0.2 m; a cell is walkable when its centre
is inside the area and more than one cell from an internal wall). Each open
exit gets an *apron*: the cells just outside the area beyond the exit
segment (``apron_m`` deep), which are the sources (distance 0). The distance
of every walkable cell to the nearest source is the shortest path on a
16-neighbour stencil (:func:`agents._kernels.pedestrians.dijkstra16`: no move
cuts a blocked cell; in open space it exceeds the Euclidean distance by at
most 2.75 %, exact along the stencil's 16 directions) with a cost per metre
that rises near walls,

    c = 1 + wall_weight * max(0, 1 - d_wall / wall_range_m),

so that routes keep off walls and corners (d_wall from a Euclidean distance
transform of the walkable cells). The desired direction is -grad(distance),
central differences at cell centres (one-sided next to blocked cells),
interpolated bilinearly to each agent and normalised.
:meth:`FloorField.recompute` runs again after an exit opens or closes.
"""

from __future__ import annotations

import math

import numpy as np
import shapely
from shapely.geometry import Polygon

from agents._kernels import pedestrians as K
from agents.geometry import Geometry
from twin.errors import ValidationError


class FloorField:
    """Distance-to-exit field of a :class:`Geometry` and its descent directions.

    Parameters
    ----------
    geometry : Geometry
        Walkable area and exits (its ``exit_open`` flags are read on every
        :meth:`recompute`).
    cell_m : float
        Grid cell size, m (0.05-1).
    wall_range_m, wall_weight : float
        Wall-distance term of the cost (see the module docstring); 0 weight
        turns it off.
    apron_m : float
        Depth of the source strip beyond each open exit, m.

    Attributes
    ----------
    distance : ndarray (ny, nx)
        Distance to the nearest open exit, m (inf where blocked or cut off).
    x0, y0, h : float
        Lower-left corner of the grid and the cell size, m.
    """

    def __init__(
        self,
        geometry: Geometry,
        cell_m: float = 0.2,
        wall_range_m: float = 0.5,
        wall_weight: float = 1.0,
        apron_m: float = 1.0,
    ) -> None:
        if not (0.05 <= cell_m <= 1.0):
            raise ValidationError(f"cell_m: {cell_m!r} m is outside 0.05-1 m")
        if wall_range_m <= 0 or wall_weight < 0:
            raise ValidationError(
                f"wall_range_m/wall_weight: need > 0 and >= 0, got {wall_range_m!r}, {wall_weight!r}"
            )
        self.geometry = geometry
        self.h = float(cell_m)
        self.wall_range_m = float(wall_range_m)
        self.wall_weight = float(wall_weight)
        apron = max(float(apron_m), 3 * self.h)
        xmin, ymin, xmax, ymax = geometry.bounds
        pad = apron + 2 * self.h
        self.x0, self.y0 = xmin - pad, ymin - pad
        self.nx = int(math.ceil((xmax + pad - self.x0) / self.h))
        self.ny = int(math.ceil((ymax + pad - self.y0) / self.h))
        xc = self.x0 + (np.arange(self.nx) + 0.5) * self.h
        yc = self.y0 + (np.arange(self.ny) + 0.5) * self.h
        gx, gy = np.meshgrid(xc, yc)
        inside = shapely.contains_xy(geometry.walkable, gx, gy)
        if geometry.walls:
            pts = shapely.points(gx.ravel(), gy.ravel())
            tree = shapely.STRtree(geometry.walls)
            hit, _ = tree.query(pts, predicate="dwithin", distance=self.h)
            blocked = np.zeros(gx.size, dtype=bool)
            blocked[hit] = True
            inside &= ~blocked.reshape(gx.shape)
        self._inside = inside
        self._aprons = []
        for seg in geometry.exit_segments:
            self._aprons.append(self._apron_cells(seg, apron, gx, gy, inside))
        self.recompute()

    def _apron_cells(self, seg, depth, gx, gy, inside) -> np.ndarray:
        a, b = seg[:2], seg[2:]
        t = (b - a) / np.linalg.norm(b - a)
        n = np.array([-t[1], t[0]])
        mid = 0.5 * (a + b)
        if self.geometry.walkable.contains(shapely.Point(*(mid + 0.05 * n))):
            n = -n
        rect = Polygon([a, b, b + depth * n, a + depth * n])
        return shapely.contains_xy(rect, gx, gy) & ~inside

    def recompute(self) -> None:
        """Distances and directions for the exits open now (``geometry.exit_open``)."""
        from scipy import ndimage

        sources = np.zeros_like(self._inside)
        for k, cells in enumerate(self._aprons):
            if self.geometry.exit_open[k]:
                sources |= cells
        if not sources.any():
            raise ValidationError("exits: every exit is closed; at least one must stay open")
        free = self._inside | sources
        d_wall = ndimage.distance_transform_edt(np.pad(free, 1)) [1:-1, 1:-1] * self.h
        cost = 1.0 + self.wall_weight * np.clip(1.0 - d_wall / self.wall_range_m, 0.0, None)
        dist = np.where(sources, 0.0, np.inf)
        K.dijkstra16(np.ascontiguousarray(free), cost, dist, self.h)
        dist[~free] = np.inf
        self.distance = dist
        self.free = free
        self.sources = sources
        self.grad_x, self.grad_y = _gradient(dist, self.h)
        self.kernel_field = K.Field(self.grad_x, self.grad_y, self.x0, self.y0, self.h)

    def directions(self, pos: np.ndarray, active: np.ndarray, out: np.ndarray) -> np.ndarray:
        """Unit desired directions at ``pos`` (n, 2) into ``out`` (numba, bilinear)."""
        return K.field_directions(pos, active, self.kernel_field, out)

    def distance_near(self, xy: np.ndarray) -> np.ndarray:
        """Smallest distance to an open exit over the 3 x 3 cells around points (n, 2), m
        (inf: no walkable cell near, or no way out from there)."""
        xy = np.asarray(xy, dtype=np.float64)
        ix = ((xy[:, 0] - self.x0) / self.h).astype(int)
        iy = ((xy[:, 1] - self.y0) / self.h).astype(int)
        best = np.full(xy.shape[0], np.inf)
        for dy in (-1, 0, 1):
            for dx in (-1, 0, 1):
                jx = np.clip(ix + dx, 0, self.nx - 1)
                jy = np.clip(iy + dy, 0, self.ny - 1)
                best = np.minimum(best, self.distance[jy, jx])
        return best

    def distance_at(self, xy: np.ndarray) -> np.ndarray:
        """Distance to the nearest open exit at points (n, 2), m (nearest cell)."""
        xy = np.asarray(xy, dtype=np.float64)
        ix = np.clip(((xy[:, 0] - self.x0) / self.h).astype(int), 0, self.nx - 1)
        iy = np.clip(((xy[:, 1] - self.y0) / self.h).astype(int), 0, self.ny - 1)
        return self.distance[iy, ix]


def _gradient(dist: np.ndarray, h: float) -> tuple[np.ndarray, np.ndarray]:
    """Gradient of ``dist`` at cell centres: central where both neighbours are finite,
    one-sided where one is, 0 where none is or the cell itself is not finite."""
    out = []
    for axis in (1, 0):
        d = np.moveaxis(dist, axis, 0)
        fwd = np.full_like(d, np.nan)
        bwd = np.full_like(d, np.nan)
        with np.errstate(invalid="ignore"):
            fwd[:-1] = d[1:] - d[:-1]
            bwd[1:] = d[1:] - d[:-1]
            fwd[~np.isfinite(fwd)] = np.nan
            bwd[~np.isfinite(bwd)] = np.nan
            g = np.where(
                np.isnan(fwd), bwd, np.where(np.isnan(bwd), fwd, 0.5 * (fwd + bwd))
            )
        g = np.where(np.isfinite(g) & np.isfinite(d), g / h, 0.0)
        out.append(np.ascontiguousarray(np.moveaxis(g, 0, axis)))
    return out[0], out[1]
