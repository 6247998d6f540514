"""Edge, line and level boundaries of the flood models: the public description and its compiled form.

The description is scheme-free: frozen dataclasses checked on construction
(:class:`EdgeDischarge`, :class:`EdgeStage`, :class:`EdgeNormalDepth`,
:class:`EdgeZeroGradient`, :class:`EdgeClosed`, :class:`EdgeFree`,
:class:`LineDischarge`, :class:`LineStage`, :class:`LevelCells`), gathered in
a :class:`Boundaries`. :func:`compile_boundaries` turns it, on a grid, into
:class:`CompiledBoundaries`: per edge face a kind code (``KIND_*``) and an
index into one table of time series, per cell a level-series index, and the
cells a polyline crosses with the length of line in each. Both schemes
(local-inertial: :mod:`physics._kernels.flood`; finite volume:
``physics.flood_fv``) apply the same compiled form.

Conventions
-----------
* Edges ``west``, ``east``, ``north``, ``south``; the faces of an edge are
  numbered along it from the grid's first row (north, j = 0) for west/east and
  from its first column (west, i = 0) for north/south: ``ny`` faces for
  west/east, ``nx`` for north/south. A ``cells=(a, b)`` range is [a, b) in that
  numbering; ``span_m=(c0, c1)`` a coordinate range (y for west/east, x for
  north/south, in the grid's CRS, either order) selecting the faces whose
  cell centre lies in it. Without either, the whole edge.
* Discharge per unit width q (m²/s) is positive INTO the domain, whatever the
  edge. Stage (level) is a water-surface elevation (m, the DEM's datum).
* A series is constant (``times_s=None``, one value) or a hydrograph: times
  (s, strictly increasing) and values, linear between knots, held at the
  first value before the first knot and at the last after the last.
* Specs apply in order: a later spec overrides an earlier one on the faces
  (or cells) they share; faces no spec names are closed.

Boundary file (TOML or JSON; ``twin flood run --boundaries FILE``)::

    [[edge]]                      # one table per edge spec
    edge = "west"                 # west | east | north | south
    kind = "discharge"            # discharge | stage | normal_depth | zero_gradient | closed | free
    q_m2s = 2.5                   # discharge: constant, or
    # times_s = [0, 3600, 7200]   #   a hydrograph: times_s and q_m2s lists
    # q_m2s = [0.5, 4.0, 0.5]
    span_m = [2530000.0, 2530300.0]   # optional: or cells = [10, 20]

    [[edge]]
    edge = "east"
    kind = "normal_depth"
    slope = "bed"                 # a number (m/m) or "bed"

    [[edge]]
    edge = "south"
    kind = "stage"
    level_m = 1.2                 # constant, or times_s + level_m lists

    [[line]]                      # a polyline inside the grid
    kind = "discharge"            # discharge (q m²/s per metre of line) | stage
    xy = [[x0, y0], [x1, y1]]     # the grid's CRS
    q_m2s = 0.3

``kind = "free"`` is the legacy edge: a dry ghost cell ``boundary_slope·dx``
lower than the edge cell, outflow only (it draws the outlet down; prefer
``normal_depth``).
"""

from __future__ import annotations

import json
import math
import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
from numba import njit

from twin.errors import ValidationError

EDGES = ("west", "east", "north", "south")
#: Sign of an edge face's discharge (+x east / +y south, the kernels' axes) for flow into the domain.
INWARD_SIGN = (1.0, -1.0, 1.0, -1.0)

# Kind codes of an edge face (CompiledBoundaries.edge_kind)
KIND_CLOSED = 0  # wall: no flux
KIND_FREE = 1  # legacy: dry ghost cell boundary_slope*dx lower, outflow only
KIND_DISCHARGE = 2  # given q (m²/s) into the domain; 0 where the edge cell is blocked
KIND_STAGE = 3  # ghost cell at the given level over the edge cell's bed, the scheme's ordinary face
KIND_NORMAL_DEPTH = 4  # water-surface slope := given slope (edge_param), outflow only
KIND_ZERO_GRADIENT = 5  # flux := the flux of the face one cell inside, outflow only
KIND_NAMES = {"closed": KIND_CLOSED, "free": KIND_FREE, "discharge": KIND_DISCHARGE, "stage": KIND_STAGE,
              "normal_depth": KIND_NORMAL_DEPTH, "zero_gradient": KIND_ZERO_GRADIENT}

#: Smallest slope "bed" gives a normal-depth face (a flat or adverse bed would stop all outflow).
BED_SLOPE_MIN = 1e-4
#: Cells inward over which slope="bed" averages the bed's fall to the edge.
BED_SLOPE_CELLS = 3


# --------------------------------------------------------------------------
# Series
# --------------------------------------------------------------------------
def _series(values, times_s, what: str) -> tuple[np.ndarray, np.ndarray]:
    """(times, values) float64 of a constant or a hydrograph, checked."""
    v = np.atleast_1d(np.asarray(values, dtype=np.float64))
    if times_s is None:
        if v.size != 1:
            raise ValidationError(f"{what}: {v.size} values without times_s; give one value or times_s")
        t = np.zeros(1)
    else:
        t = np.atleast_1d(np.asarray(times_s, dtype=np.float64))
        if t.ndim != 1 or t.size == 0 or t.shape != v.shape:
            raise ValidationError(f"{what}: times_s has {t.size} entries and the values {v.size}; give one value "
                                  "per time")
        if not np.all(np.isfinite(t)):
            raise ValidationError(f"{what}: times_s must be finite, got {t.tolist()}")
        if t.size > 1 and np.any(np.diff(t) <= 0):
            k = int(np.argmax(np.diff(t) <= 0))
            raise ValidationError(f"{what}: times_s must increase strictly, got {t[k]} then {t[k + 1]} s")
    if not np.all(np.isfinite(v)):
        raise ValidationError(f"{what}: values must be finite, got {v.tolist()}")
    return t, v


@njit(cache=True, nogil=True)
def values_at(t, series_t, series_v, series_n):
    """Every series at ``t`` (float64 (S,)): linear between knots, held before the first and after the last."""
    s = series_n.size
    out = np.empty(s)
    for k in range(s):
        n = series_n[k]
        out[k] = np.interp(t, series_t[k, :n], series_v[k, :n])
    return out


@njit(cache=True, nogil=True)
def next_knot(t, series_t, series_n):
    """The first knot of any series after ``t`` (s; inf: none)."""
    nxt = np.inf
    for k in range(series_n.size):
        for m in range(series_n[k]):
            if series_t[k, m] > t:
                nxt = min(nxt, series_t[k, m])
                break
    return nxt


# --------------------------------------------------------------------------
# Specs
# --------------------------------------------------------------------------
@dataclass(frozen=True)
class _EdgeSpec:
    edge: str
    cells: tuple[int, int] | None = None
    span_m: tuple[float, float] | None = None

    def __post_init__(self):
        if self.edge not in EDGES:
            raise ValidationError(f"{type(self).__name__}: edge={self.edge!r} unknown; use one of {EDGES}")
        if self.cells is not None and self.span_m is not None:
            raise ValidationError(f"{type(self).__name__}({self.edge}): give cells or span_m, not both")
        if self.cells is not None:
            c = tuple(self.cells)
            if len(c) != 2 or any(isinstance(x, bool) or int(x) != x for x in c) or not 0 <= c[0] < c[1]:
                raise ValidationError(f"{type(self).__name__}({self.edge}): cells={self.cells!r}; give two "
                                      "integers 0 <= a < b (faces [a, b) along the edge)")
            object.__setattr__(self, "cells", (int(c[0]), int(c[1])))
        if self.span_m is not None:
            s = tuple(float(x) for x in self.span_m)
            if len(s) != 2 or not all(math.isfinite(x) for x in s):
                raise ValidationError(f"{type(self).__name__}({self.edge}): span_m={self.span_m!r}; give two "
                                      "finite coordinates (m, the grid's CRS)")
            object.__setattr__(self, "span_m", (min(s), max(s)))

    kind = "closed"

    def series(self) -> tuple[np.ndarray, np.ndarray] | None:
        return None


@dataclass(frozen=True)
class EdgeClosed(_EdgeSpec):
    """A wall along (part of) an edge: no flux (the default of every face)."""

    kind = "closed"


@dataclass(frozen=True)
class EdgeFree(_EdgeSpec):
    """The legacy ``free`` edge: a dry ghost cell ``boundary_slope·dx`` below the edge cell, outflow only.

    It drains the edge cell towards a dry, lower neighbour, so it draws the
    water down at the outlet (on a steady channel about half the normal depth,
    and the figure depends on the cell size). Kept as it was; use
    :class:`EdgeNormalDepth` for an outlet.
    """

    kind = "free"


@dataclass(frozen=True)
class EdgeZeroGradient(_EdgeSpec):
    """Transmissive outflow: the face flux is that of the face one cell inside (outflow only)."""

    kind = "zero_gradient"


@dataclass(frozen=True)
class EdgeDischarge(_EdgeSpec):
    """Discharge per unit width ``q_m2s`` (m²/s, >= 0, into the domain), constant or with ``times_s``."""

    q_m2s: float | Sequence[float] = 0.0
    times_s: Sequence[float] | None = None
    kind = "discharge"

    def __post_init__(self):
        super().__post_init__()
        t, v = _series(self.q_m2s, self.times_s, f"EdgeDischarge({self.edge}) q_m2s")
        if np.any(v < 0):
            raise ValidationError(f"EdgeDischarge({self.edge}): q_m2s must be >= 0 m²/s (into the domain), got "
                                  f"{v.min()}; use an outflow kind to take water out")
        object.__setattr__(self, "_t", t)
        object.__setattr__(self, "_v", v)

    def series(self):
        return self._t, self._v


@dataclass(frozen=True)
class EdgeStage(_EdgeSpec):
    """Water-surface elevation ``level_m`` (m) beyond the edge, constant or with ``times_s``: in- or outflow."""

    level_m: float | Sequence[float] = 0.0
    times_s: Sequence[float] | None = None
    kind = "stage"

    def __post_init__(self):
        super().__post_init__()
        t, v = _series(self.level_m, self.times_s, f"EdgeStage({self.edge}) level_m")
        object.__setattr__(self, "_t", t)
        object.__setattr__(self, "_v", v)

    def series(self):
        return self._t, self._v


@dataclass(frozen=True)
class EdgeNormalDepth(_EdgeSpec):
    """Outflow at normal depth: the face's water-surface slope is ``slope`` (m/m > 0) or ``"bed"``.

    ``"bed"``: the bed's fall towards the edge over the last
    :data:`BED_SLOPE_CELLS` cells of the face's row (or column), at least
    :data:`BED_SLOPE_MIN`. At steady state the face carries Manning's
    q = n⁻¹ h^(5/3) S^(1/2) for the edge cell's depth h.
    """

    slope: float | str = "bed"
    kind = "normal_depth"

    def __post_init__(self):
        super().__post_init__()
        s = self.slope
        if isinstance(s, str):
            if s != "bed":
                raise ValidationError(f"EdgeNormalDepth({self.edge}): slope={s!r}; give a number > 0 (m/m) or 'bed'")
        elif isinstance(s, bool) or not isinstance(s, int | float) or not (math.isfinite(s) and s > 0):
            raise ValidationError(f"EdgeNormalDepth({self.edge}): slope={s!r}; give a number > 0 (m/m) or 'bed'")


def _check_xy(xy, what: str) -> np.ndarray:
    a = np.asarray(xy, dtype=np.float64)
    if a.ndim != 2 or a.shape[1] != 2 or a.shape[0] < 2 or not np.all(np.isfinite(a)):
        raise ValidationError(f"{what}: xy must be at least two finite (x, y) points, got shape {a.shape}")
    if np.any(np.hypot(*np.diff(a, axis=0).T) == 0):
        raise ValidationError(f"{what}: xy repeats a point; give distinct consecutive vertices")
    return a


@dataclass(frozen=True)
class LineDischarge:
    """A line source: ``q_m2s`` (m²/s per metre of line, >= 0) along the polyline ``xy`` (grid CRS).

    Each cell the line crosses receives q times the length of line inside it
    (m³/s), as a point inflow does.
    """

    xy: Sequence[Sequence[float]]
    q_m2s: float | Sequence[float] = 0.0
    times_s: Sequence[float] | None = None
    kind = "discharge"

    def __post_init__(self):
        object.__setattr__(self, "_xy", _check_xy(self.xy, "LineDischarge"))
        t, v = _series(self.q_m2s, self.times_s, "LineDischarge q_m2s")
        if np.any(v < 0):
            raise ValidationError(f"LineDischarge: q_m2s must be >= 0 m²/s, got {v.min()}")
        object.__setattr__(self, "_t", t)
        object.__setattr__(self, "_v", v)

    def series(self):
        return self._t, self._v


@dataclass(frozen=True)
class LineStage:
    """The cells the polyline ``xy`` crosses held at the level ``level_m`` (m), constant or with ``times_s``."""

    xy: Sequence[Sequence[float]]
    level_m: float | Sequence[float] = 0.0
    times_s: Sequence[float] | None = None
    kind = "stage"

    def __post_init__(self):
        object.__setattr__(self, "_xy", _check_xy(self.xy, "LineStage"))
        t, v = _series(self.level_m, self.times_s, "LineStage level_m")
        object.__setattr__(self, "_t", t)
        object.__setattr__(self, "_v", v)

    def series(self):
        return self._t, self._v


@dataclass(frozen=True, eq=False)
class LevelCells:
    """Cells (``mask`` != 0, the grid's shape) held at the level ``level_m`` (m), constant or with ``times_s``.

    :class:`physics.forcing.WaterLevel` is one of these (its mask and series).
    """

    mask: np.ndarray
    level_m: float | Sequence[float] = 0.0
    times_s: Sequence[float] | None = None
    name: str = "level"
    kind = "stage"

    def __post_init__(self):
        m = np.asarray(self.mask)
        if m.ndim != 2:
            raise ValidationError(f"LevelCells {self.name!r}: mask must be 2-D, got shape {m.shape}")
        object.__setattr__(self, "mask", m.astype(bool))
        t, v = _series(self.level_m, self.times_s, f"LevelCells {self.name!r} level_m")
        object.__setattr__(self, "_t", t)
        object.__setattr__(self, "_v", v)

    @classmethod
    def from_water_level(cls, wl) -> LevelCells:
        return cls(mask=wl.mask, level_m=wl.level_m, times_s=wl.times_s, name=wl.name)

    def series(self):
        return self._t, self._v


Spec = (EdgeClosed | EdgeFree | EdgeZeroGradient | EdgeDischarge | EdgeStage | EdgeNormalDepth | LineDischarge
        | LineStage | LevelCells)
_EDGE_CLASSES = {"closed": EdgeClosed, "free": EdgeFree, "zero_gradient": EdgeZeroGradient,
                 "discharge": EdgeDischarge, "stage": EdgeStage, "normal_depth": EdgeNormalDepth}


@dataclass(frozen=True)
class Boundaries:
    """An ordered set of boundary specs (later ones override earlier ones where they overlap)."""

    specs: tuple = ()

    def __post_init__(self):
        specs = tuple(self.specs)
        for s in specs:
            if not isinstance(s, _EdgeSpec | LineDischarge | LineStage | LevelCells):
                raise ValidationError(f"Boundaries: {s!r} is not a boundary spec (EdgeDischarge, EdgeStage, ...)")
        object.__setattr__(self, "specs", specs)

    @classmethod
    def of(cls, spec) -> Boundaries:
        """From a :class:`Boundaries`, a sequence of specs, an edge -> kind dict or one kind for every edge.

        The dict form is the legacy one: ``{"west": "free"}`` (values "closed"
        or "free", or spec objects for that edge).
        """
        if isinstance(spec, Boundaries):
            return spec
        if isinstance(spec, str):
            spec = dict.fromkeys(EDGES, spec)
        if isinstance(spec, dict):
            bad = set(spec) - set(EDGES)
            if bad:
                raise ValidationError(f"boundaries: unknown edge(s) {sorted(bad)}; use {EDGES}")
            out = []
            for edge in EDGES:
                kind = spec.get(edge, "closed")
                if isinstance(kind, _EdgeSpec):
                    out.append(kind)
                elif kind in ("closed", "free"):
                    out.append(_EDGE_CLASSES[kind](edge))
                else:
                    raise ValidationError(f"boundaries[{edge!r}]={kind!r}: use 'closed', 'free' or a spec "
                                          "(EdgeDischarge, EdgeStage, EdgeNormalDepth, EdgeZeroGradient)")
            return cls(tuple(out))
        if isinstance(spec, Iterable):
            return cls(tuple(spec))
        raise ValidationError(f"boundaries={spec!r}: give 'closed', 'free', an edge dict or a list of specs")


# --------------------------------------------------------------------------
# The file format
# --------------------------------------------------------------------------
_EDGE_KEYS = {"edge", "kind", "cells", "span_m", "q_m2s", "level_m", "times_s", "slope"}
_LINE_KEYS = {"kind", "xy", "q_m2s", "level_m", "times_s"}


def _from_table(tab: dict, where: str, line: bool):
    if not isinstance(tab, dict):
        raise ValidationError(f"{where}: expected a table, got {tab!r}")
    keys = _LINE_KEYS if line else _EDGE_KEYS
    bad = sorted(set(tab) - keys)
    if bad:
        raise ValidationError(f"{where}: unknown key(s) {bad}; allowed {sorted(keys)}")
    kind = tab.get("kind")
    kinds = ("discharge", "stage") if line else tuple(_EDGE_CLASSES)
    if kind not in kinds:
        raise ValidationError(f"{where}.kind={kind!r}: use one of {kinds}")
    allowed = {"discharge": {"q_m2s", "times_s"}, "stage": {"level_m", "times_s"}, "normal_depth": {"slope"}}
    extra = sorted(set(tab) - {"edge", "kind", "cells", "span_m", "xy"} - allowed.get(kind, set()))
    if extra:
        raise ValidationError(f"{where}: key(s) {extra} do not apply to kind {kind!r}")
    need = {"discharge": "q_m2s", "stage": "level_m"}.get(kind)
    if need and need not in tab:
        raise ValidationError(f"{where}: kind {kind!r} needs {need}")
    args = {k: v for k, v in tab.items() if k != "kind"}
    try:
        if line:
            if "xy" not in tab:
                raise ValidationError(f"{where}: a line needs xy = [[x, y], ...]")
            return (LineDischarge if kind == "discharge" else LineStage)(**args)
        if "edge" not in tab:
            raise ValidationError(f"{where}: needs edge = one of {EDGES}")
        return _EDGE_CLASSES[kind](**args)
    except ValidationError as e:
        raise ValidationError(f"{where}: {e}") from None
    except (TypeError, ValueError) as e:
        raise ValidationError(f"{where}: {e}") from None


def parse_boundaries(data: dict, source: str = "boundaries") -> Boundaries:
    """:class:`Boundaries` from the parsed file (``edge`` and ``line`` arrays of tables; see the module)."""
    if not isinstance(data, dict):
        raise ValidationError(f"{source}: expected a table with [[edge]] / [[line]] entries")
    bad = sorted(set(data) - {"edge", "line"})
    if bad:
        raise ValidationError(f"{source}: unknown top-level key(s) {bad}; use [[edge]] and [[line]] tables")
    specs = []
    for key, line in (("edge", False), ("line", True)):
        tabs = data.get(key, [])
        if not isinstance(tabs, list):
            raise ValidationError(f"{source}: {key} must be an array of tables ([[{key}]])")
        specs += [_from_table(tab, f"{source}: {key}[{k}]", line) for k, tab in enumerate(tabs)]
    if not specs:
        raise ValidationError(f"{source}: no [[edge]] or [[line]] entry")
    return Boundaries(tuple(specs))


def load_boundaries(path: str | Path) -> Boundaries:
    """:class:`Boundaries` from a TOML (``.toml``) or JSON file; ValidationError naming the entry and field."""
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as e:
        raise ValidationError(f"boundaries file {str(p)!r}: cannot read it ({e.strerror})") from None
    try:
        data = json.loads(text) if p.suffix.lower() == ".json" else tomllib.loads(text)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as e:
        raise ValidationError(f"boundaries file {str(p)!r}: not valid {p.suffix.lstrip('.') or 'TOML'} ({e})") \
            from None
    return parse_boundaries(data, source=p.name)


# --------------------------------------------------------------------------
# Compiled form
# --------------------------------------------------------------------------
class Geometry(NamedTuple):
    """The grid a spec is compiled on: its shape, affine transform (dx, 0, x0, 0, -dy, y0) and bed (NaN: blocked)."""

    shape: tuple[int, int]
    transform: tuple
    z: np.ndarray


class CompiledBoundaries(NamedTuple):
    """Boundaries on a grid: per edge face and per cell arrays, and one table of series.

    Edge arrays are (4, L), L = max(ny, nx), rows in :data:`EDGES` order,
    entry p = the edge's face p (see the module's conventions); entries past
    the edge's length are closed.
    """

    edge_kind: np.ndarray  # int64 (4, L): KIND_* per face
    edge_series: np.ndarray  # int64 (4, L): row of the series table (discharge, stage), -1 none
    edge_param: np.ndarray  # float64 (4, L): normal-depth slope S (m/m), 0 otherwise
    edge_code: np.ndarray  # int64 (4,): 0 all closed, 1 all free (legacy), 2 per-face kinds
    series_t: np.ndarray  # float64 (S, M): knots (s), first series_n[k] used
    series_v: np.ndarray  # float64 (S, M): values (m²/s or m)
    series_n: np.ndarray  # int64 (S,)
    line_cells: np.ndarray  # int64 (k, 2): (j, i) of line-source cells
    line_length: np.ndarray  # float64 (k,): metres of line in the cell
    line_series: np.ndarray  # int64 (k,)
    level_cells: np.ndarray  # int64 (ny, nx): 1 + row of the series table of a held-level cell, 0 none
    series_zmin: np.ndarray  # float64 (S,): lowest bed under a stage series (for the CFL look-ahead), inf if none

    @property
    def has_edges(self) -> bool:
        return bool(np.any(self.edge_code == 2))

    def knots(self) -> np.ndarray:
        """Every knot time of every series, sorted (s)."""
        if self.series_n.size == 0:
            return np.zeros(0)
        return np.unique(np.concatenate([self.series_t[k, :n] for k, n in enumerate(self.series_n)]))


def edge_length(edge: str | int, shape: tuple[int, int]) -> int:
    k = EDGES.index(edge) if isinstance(edge, str) else edge
    return shape[0] if k < 2 else shape[1]


def _edge_faces(s: _EdgeSpec, geom: Geometry) -> np.ndarray:
    ny, nx = geom.shape
    n = edge_length(s.edge, geom.shape)
    what = f"{type(s).__name__}({s.edge})"
    if s.cells is not None:
        a, b = s.cells
        if b > n:
            raise ValidationError(f"{what}: cells={s.cells} past the edge's {n} faces; give 0 <= a < b <= {n}")
        return np.arange(a, b)
    if s.span_m is not None:
        t = geom.transform
        k = EDGES.index(s.edge)
        c = (t[5] + (np.arange(ny) + 0.5) * t[4]) if k < 2 else (t[2] + (np.arange(nx) + 0.5) * t[0])
        idx = np.nonzero((c >= s.span_m[0]) & (c <= s.span_m[1]))[0]
        if idx.size == 0:
            raise ValidationError(f"{what}: span_m={s.span_m} holds no cell centre of the edge (from {c.min():.1f} "
                                  f"to {c.max():.1f} m); widen it")
        return idx
    return np.arange(n)


def _edge_cell(k: int, p: int, shape) -> tuple[int, int]:
    ny, nx = shape
    return [(p, 0), (p, nx - 1), (0, p), (ny - 1, p)][k]


def _bed_slope(k: int, p: int, z: np.ndarray, d: float) -> float:
    """Mean fall of the bed towards edge k over the last BED_SLOPE_CELLS cells of line p, at least BED_SLOPE_MIN."""
    line = [z[p, :], z[p, ::-1], z[:, p], z[::-1, p]][k]
    m = min(BED_SLOPE_CELLS, line.size - 1)
    if m < 1 or not np.all(np.isfinite(line[:m + 1])):
        return BED_SLOPE_MIN
    return max((float(line[m]) - float(line[0])) / (m * d), BED_SLOPE_MIN)


def line_cells(xy: np.ndarray, geom: Geometry) -> tuple[np.ndarray, np.ndarray]:
    """Cells (k, 2) a polyline crosses and the length of line (m) inside each (parts outside the grid dropped)."""
    t = geom.transform
    dx, x0, dy, y0 = t[0], t[2], -t[4], t[5]
    ny, nx = geom.shape
    acc: dict[tuple[int, int], float] = {}
    for (xa, ya), (xb, yb) in zip(xy[:-1], xy[1:], strict=True):
        # parameters where the segment crosses grid lines, sorted; each piece lies in one cell
        ca, cb = (xa - x0) / dx, (xb - x0) / dx
        ra, rb = (y0 - ya) / dy, (y0 - yb) / dy
        ts = [0.0, 1.0]
        for a, b in ((ca, cb), (ra, rb)):
            if a != b:
                lo, hi = sorted((a, b))
                ts += [(g - a) / (b - a) for g in range(math.ceil(lo), math.floor(hi) + 1)]
        ts = np.unique(np.clip(ts, 0.0, 1.0))
        seg = math.hypot(xb - xa, yb - ya)
        for u0, u1 in zip(ts[:-1], ts[1:], strict=True):
            if u1 <= u0:
                continue
            um = 0.5 * (u0 + u1)
            i = math.floor(ca + um * (cb - ca))
            j = math.floor(ra + um * (rb - ra))
            if 0 <= j < ny and 0 <= i < nx:
                acc[(j, i)] = acc.get((j, i), 0.0) + (u1 - u0) * seg
    if not acc:
        return np.zeros((0, 2), dtype=np.int64), np.zeros(0)
    cells = np.array(list(acc), dtype=np.int64)
    return cells, np.array(list(acc.values()))


def compile_boundaries(spec, geometry: Geometry) -> CompiledBoundaries:
    """:class:`CompiledBoundaries` of ``spec`` (anything :meth:`Boundaries.of` takes) on ``geometry``.

    Raises ValidationError for a line outside the grid, a level mask of
    another shape, a range past an edge.
    """
    b = Boundaries.of(spec)
    ny, nx = geometry.shape
    z = np.asarray(geometry.z, dtype=np.float64)
    blocked = ~np.isfinite(z)
    L = max(ny, nx)
    kind = np.zeros((4, L), dtype=np.int64)
    sidx = np.full((4, L), -1, dtype=np.int64)
    param = np.zeros((4, L))
    level = np.zeros((ny, nx), dtype=np.int64)
    series: list[tuple[np.ndarray, np.ndarray]] = []
    zmin: list[float] = []
    lc, ll, ls = [], [], []

    def add(s, z_under=math.inf) -> int:
        series.append(s.series())
        zmin.append(z_under)
        return len(series) - 1

    for s in b.specs:
        if isinstance(s, _EdgeSpec):
            k = EDGES.index(s.edge)
            faces = _edge_faces(s, geometry)
            code = KIND_NAMES[s.kind]
            kind[k, faces] = code
            sidx[k, faces] = -1
            param[k, faces] = 0.0
            if code in (KIND_DISCHARGE, KIND_STAGE):
                cz = np.array([z[_edge_cell(k, p, geometry.shape)] for p in faces])
                zu = float(np.nanmin(cz)) if code == KIND_STAGE and np.isfinite(cz).any() else math.inf
                sidx[k, faces] = add(s, zu)
            elif code == KIND_NORMAL_DEPTH:
                d = abs(geometry.transform[0] if k < 2 else geometry.transform[4])  # the cells' spacing across
                param[k, faces] = [s.slope if s.slope != "bed" else _bed_slope(k, p, z, d) for p in faces]
        elif isinstance(s, LineDischarge):
            cells, length = line_cells(s._xy, geometry)
            keep = ~blocked[cells[:, 0], cells[:, 1]] if cells.size else np.zeros(0, dtype=bool)
            if not keep.any():
                raise ValidationError("LineDischarge: the line crosses no open cell of the grid; check xy is in the "
                                      "grid's CRS")
            k = add(s)
            lc.append(cells[keep])
            ll.append(length[keep])
            ls.append(np.full(int(keep.sum()), k, dtype=np.int64))
        else:
            if isinstance(s, LineStage):
                cells, _ = line_cells(s._xy, geometry)
                m = np.zeros((ny, nx), dtype=bool)
                m[cells[:, 0], cells[:, 1]] = True
                what = "LineStage: the line"
            else:
                if s.mask.shape != (ny, nx):
                    raise ValidationError(f"LevelCells {s.name!r}: mask has shape {s.mask.shape}, the grid "
                                          f"{(ny, nx)}")
                m = s.mask
                what = f"LevelCells {s.name!r}: the mask"
            if not (m & ~blocked).any():
                raise ValidationError(f"{what} covers no open cell of the grid")
            # blocked cells may stay in the mask: the schemes never change their depth
            level[m] = add(s, float(z[m & ~blocked].min())) + 1
    S = len(series)
    M = max((t.size for t, _ in series), default=1)
    st = np.zeros((S, M))
    sv = np.zeros((S, M))
    sn = np.zeros(S, dtype=np.int64)
    for k, (t, v) in enumerate(series):
        st[k, :t.size] = t
        sv[k, :t.size] = v
        sn[k] = t.size
    code = np.zeros(4, dtype=np.int64)
    for k in range(4):
        row = kind[k, :edge_length(k, geometry.shape)]
        code[k] = 0 if np.all(row == KIND_CLOSED) else 1 if np.all(row == KIND_FREE) else 2
    def cat(xs, shape, dt):
        return np.concatenate(xs).astype(dt) if xs else np.zeros(shape, dtype=dt)

    return CompiledBoundaries(
        edge_kind=kind, edge_series=sidx, edge_param=param, edge_code=code, series_t=st, series_v=sv,
        series_n=sn, line_cells=cat(lc, (0, 2), np.int64).reshape(-1, 2), line_length=cat(ll, 0, np.float64),
        line_series=cat(ls, 0, np.int64), level_cells=level, series_zmin=np.asarray(zmin, dtype=np.float64))
