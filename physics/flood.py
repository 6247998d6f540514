"""2-D urban flood model: local-inertial shallow water on a raster (numba kernels).

Entry points
------------
:func:`simulate` takes a DEM, Manning's n, rain, inflows, boundaries and a
duration and returns an ``xarray.Dataset`` of depths, speeds, maxima,
arrival times, flooded area and a volume balance. :class:`FloodModel` is the
component behind it (``step(dt)`` sub-steps under the CFL limit), for the
twin's clock and the scenario runner.

The scheme, its wet/dry handling and its mass conservation are described in
:mod:`physics._kernels.flood`. Units: metres, seconds, m³; rain in mm/h at
the edges, m/s inside.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import xarray as xr

from physics import flood_boundaries as FB
from physics._kernels import flood as K
from physics.forcing import MM_PER_H, Hydrograph, NoRain, Rain, UniformRain, WaterLevel
from twin.component import CellGrid, Component, FieldSpec, require_positive, require_range
from twin.errors import GridError, ValidationError

EDGES = FB.EDGES
BC_CODES = {"closed": K.CLOSED, "free": K.FREE}
SCHEMES = ("local_inertial", "fv")
TIME_STEPPINGS = ("global", "lts")
BALANCE_TERMS = tuple(K.VOLUME_COLUMNS)  # rain, infiltration, drainage, inflow, outflow, level_exchange


@dataclass
class Infiltration:
    """Infiltration losses: ``mode`` none | constant | green_ampt | scs_cn, parameters per cell or scalar.

    Use the constructors: :meth:`constant` (mm/h), :meth:`green_ampt`
    (Ks mm/h, wetting-front suction mm, moisture deficit -) and
    :meth:`scs_cn` (curve number 1-100).
    """

    mode: str = "none"
    p1: np.ndarray = field(default_factory=lambda: np.zeros((1, 1)))
    p2: np.ndarray = field(default_factory=lambda: np.zeros((1, 1)))

    MODES = {"none": 0, "constant": 1, "green_ampt": 2, "scs_cn": 3}

    @staticmethod
    def _arr(v) -> np.ndarray:
        a = np.asarray(v, dtype=np.float64)
        return a.reshape(1, 1) if a.ndim == 0 else a

    @classmethod
    def constant(cls, mm_h) -> Infiltration:
        a = cls._arr(mm_h)
        if np.any(a < 0) or not np.all(np.isfinite(a)):
            raise ValidationError(f"infiltration rate must be finite and >= 0 mm/h, got {a.min()}")
        return cls("constant", a * MM_PER_H)

    @classmethod
    def green_ampt(cls, ks_mm_h, suction_mm, moisture_deficit) -> Infiltration:
        """Green-Ampt (Chow, Maidment & Mays 1988 §4.3): f = Ks (1 + psi·dtheta / F)."""
        ks, psi, dth = cls._arr(ks_mm_h), cls._arr(suction_mm), cls._arr(moisture_deficit)
        if np.any(ks < 0) or np.any(psi < 0) or np.any((dth < 0) | (dth > 1)):
            raise ValidationError("green_ampt: need Ks >= 0 mm/h, suction >= 0 mm, 0 <= deficit <= 1")
        return cls("green_ampt", ks * MM_PER_H, psi / 1000.0 * dth)

    @classmethod
    def scs_cn(cls, cn) -> Infiltration:
        """SCS curve number (USDA NRCS TR-55): S = 25400/CN - 254 mm, Ia = 0.2 S."""
        c = cls._arr(cn)
        if np.any((c <= 0) | (c > 100)) or not np.all(np.isfinite(c)):
            raise ValidationError(f"scs_cn: curve numbers must lie in (0, 100], got {c.min()}..{c.max()}")
        return cls("scs_cn", (25400.0 / c - 254.0) / 1000.0)


def _grid_of(dem, dx) -> tuple[np.ndarray, float, float, dict]:
    if isinstance(dem, xr.DataArray):
        from gis.raster import cell_size, transform_of

        if dem.ndim != 2:
            raise GridError(f"dem must be 2-D (y, x), got dims {dem.dims}")
        ddx, ddy = cell_size(dem)
        meta = {"crs": dem.attrs.get("crs"), "transform": tuple(transform_of(dem))[:6],
                "x": dem["x"].values, "y": dem["y"].values}
        return np.asarray(dem.values, dtype=np.float64), ddx, ddy, meta
    z = np.asarray(dem, dtype=np.float64)
    if z.ndim != 2:
        raise GridError(f"dem must be a 2-D array, got shape {z.shape}")
    if dx is None:
        raise ValidationError("dx (cell size, m) is required when dem is a plain array")
    d = require_positive(dx, "dx")
    ny, nx = z.shape
    meta = {"crs": None, "transform": (d, 0.0, 0.0, 0.0, -d, ny * d),
            "x": (np.arange(nx) + 0.5) * d, "y": (ny - np.arange(ny) - 0.5) * d}
    return z, d, d, meta


def _cell_array(v, shape, name, dtype, *, lo=None) -> np.ndarray:
    a = np.asarray(v.values if isinstance(v, xr.DataArray) else v, dtype=np.float64)
    if a.ndim == 0:
        a = np.full(shape, float(a))
    if a.shape != shape:
        raise GridError(f"{name} has shape {a.shape}, the DEM {shape}")
    if not np.all(np.isfinite(a)):
        bad = a[~np.isfinite(a)]
        raise ValidationError(f"{name} has {bad.size} non-finite value(s) (e.g. {bad[0]}): give finite numbers")
    if lo is not None and np.any(a < lo):
        raise ValidationError(f"{name} must be >= {lo}, got {a.min()}")
    return np.ascontiguousarray(a, dtype=dtype)


class FloodModel(Component):
    """Local-inertial 2-D flood model on a regular grid.

    Keyword arguments are described in :func:`simulate`; one of them changes
    the physics and is off by default:

    ``wave_depth_cap_m`` (None: off) caps the depth in the pressure term of
    the momentum update, ``g min(h_f, cap) dt d(eta)/dx``, and with it the
    gravity-wave speed sqrt(g min(h, cap)) that sets the CFL step. Volumes
    are untouched (the depth update and the outflow limiter are the same), so
    the balance closes as without it and a lake stays at rest; the step is
    the CFL step of water ``cap`` deep, so the scheme is stable by the same
    analysis (see :meth:`cfl_dt`). What changes is water deeper than the cap:
    waves there cross at sqrt(g cap) instead of sqrt(g h) (a pond levels out
    more slowly), and a face deeper than the cap needs a surface slope h/cap
    times steeper to carry the same discharge (Manning steady state
    n² q² = h_f^(7/3) min(h_f, cap) S), so deep channels convey less and
    water upstream of them stands higher. A deliberate approximation for
    runs whose step is set by a few deep ponds, not a default.
    """

    name = "LocalInertialFlood"
    cite_as = ("Bates, Horritt & Fewtrell 2010, J. Hydrol. 387:33-45; "
               "de Almeida, Bates, Freer & Souvignet 2012, Water Resour. Res. 48:W05528")
    # attr: the array holding each field (Component.get/set). Bed, porosity and roughness are
    # fixed: the kernels' arrays, the CFL step and the storage are derived from them once.
    fields = {
        "topographic__elevation": FieldSpec(
            "m", "in", "bed elevation (given NaN = outside / blocked: held as 0 with porosity 0)",
            attr="z", fixed=True),
        "manning_n": FieldSpec(
            "s/m^(1/3)", "in", "Manning roughness (held squared, as n2: pass manning= to the "
            "constructor)", fixed=True),
        "porosity": FieldSpec("1", "in", "open fraction of a cell (0 = building)", optional=True,
                              attr="phi", fixed=True),
        "rainfall__rate": FieldSpec(
            "mm/h", "in", "rain, uniform or gridded, piecewise constant (a Rain object in .rain, "
            "read by rate(t) in m/s: pass rain= to the constructor)"),
        "surface_water__depth": FieldSpec("m", "inout", "water depth", attr="h", valid_min=0.0),
        "surface_water__discharge_x": FieldSpec("m2/s", "out", "unit discharge at x faces", at="face",
                                                attr="qx"),
        "surface_water__discharge_y": FieldSpec("m2/s", "out", "unit discharge at y faces", at="face",
                                                attr="qy"),
        "max_depth": FieldSpec("m", "out", "maximum depth so far", attr="hmax"),
        "time_of_max_depth": FieldSpec("s", "out", "time the maximum was reached", attr="tmax"),
        "arrival_time": FieldSpec("s", "out", "first time depth >= h_arrive (NaN never)",
                                  attr="tarr"),
    }

    #: the scheme's name (``FloodModel(scheme=...)``) and its description (the dataset's ``scheme`` attr)
    scheme = "local_inertial"
    scheme_description = "local inertial (Bates 2010) with q-centred diffusion (de Almeida 2012)"

    def __new__(cls, *args, **kwargs):
        """``scheme="fv"`` makes a :class:`physics.flood_fv.FVFloodModel` (a subclass); unknown schemes are refused."""
        scheme = kwargs.get("scheme", "local_inertial")
        if scheme not in SCHEMES:
            raise ValidationError(f"scheme={scheme!r} unknown; use one of {SCHEMES}")
        if cls is FloodModel and scheme == "fv":
            try:
                from physics.flood_fv import FVFloodModel
            except ImportError as e:
                raise ValidationError(f"scheme='fv': the finite-volume scheme is not available ({e}); use "
                                      "scheme='local_inertial'") from None
            cls = FVFloodModel
        return object.__new__(cls)

    def __init__(
        self,
        dem,
        *,
        scheme: str = "local_inertial",
        time_stepping: str = "global",
        lts_tile: int = 32,
        lts_max_level: int = 8,
        dx: float | None = None,
        manning=0.03,
        rain: Rain | None = None,
        infiltration: Infiltration | None = None,
        drainage_mm_h=0.0,
        inflows: Sequence[Hydrograph] = (),
        water_level: WaterLevel | None = None,
        boundaries: str | dict | FB.Boundaries | Sequence = "closed",
        boundary_slope: float = 1e-3,
        porosity=None,
        h0=None,
        theta: float = 0.7,
        alpha: float = 0.7,
        h_dry: float = 1e-5,
        wave_depth_cap_m: float | None = None,
        dt_max: float = 30.0,
        h_arrive: float = 0.15,
        dtype=np.float64,
        start_s: float = 0.0,
    ):
        z, self.dx, self.dy, self.meta = _grid_of(dem, dx)
        self.dtype = np.dtype(dtype)
        if self.dtype not in (np.dtype(np.float64), np.dtype(np.float32)):
            raise ValidationError(f"dtype={dtype!r}: use float64 or float32")
        shape = z.shape
        self.shape = shape
        blocked = ~np.isfinite(z)
        if blocked.all():
            raise GridError("the DEM has no finite cell")
        self.z = np.ascontiguousarray(np.where(blocked, 0.0, z), dtype=self.dtype)
        phi = np.ones(shape) if porosity is None else _cell_array(porosity, shape, "porosity", np.float64, lo=0.0)
        if np.any(phi > 1):
            raise ValidationError(f"porosity must be <= 1, got {phi.max()}")
        phi = np.where(blocked, 0.0, phi)
        self.phi = np.ascontiguousarray(phi, dtype=self.dtype)
        # Smallest open fraction: water in a cell of porosity phi rises 1/phi times faster, so
        # gravity waves run at sqrt(g h / phi) and the CFL step shrinks by sqrt(phi_min).
        if not np.any(phi > 0):
            raise ValidationError("porosity is 0 (blocked) in every cell: nothing can hold water")
        self._phi_min = float(phi[phi > 0].min())
        n = _cell_array(manning, shape, "manning", np.float64, lo=0.0)
        self.n2 = np.ascontiguousarray(n * n, dtype=self.dtype)
        self.rain = rain if rain is not None else NoRain()
        rates = getattr(self.rain, "rates", None)
        if isinstance(rates, np.ndarray) and rates.ndim == 3 and rates.shape[1:] != shape:
            raise GridError(f"rain field has shape {rates.shape[1:]}, the DEM {shape}: warp it onto the DEM grid "
                            "(GriddedRain.from_dataarray(da, like=dem))")
        self.infiltration = infiltration or Infiltration()
        if self.infiltration.mode not in Infiltration.MODES:
            raise ValidationError(f"infiltration mode {self.infiltration.mode!r} unknown")
        self._ip1 = np.ascontiguousarray(self.infiltration.p1, dtype=self.dtype)
        self._ip2 = np.ascontiguousarray(self.infiltration.p2, dtype=self.dtype)
        for a, nm in ((self._ip1, "infiltration parameter"), (self._ip2, "infiltration parameter")):
            if a.shape not in ((1, 1), shape):
                raise GridError(f"{nm} has shape {a.shape}, the DEM {shape}")
        self.infil_cum = np.zeros(shape, dtype=self.dtype)
        dr = np.asarray(drainage_mm_h, dtype=np.float64)
        dr = dr.reshape(1, 1) if dr.ndim == 0 else _cell_array(dr, shape, "drainage_mm_h", np.float64, lo=0.0)
        if np.any(dr < 0):
            raise ValidationError(f"drainage_mm_h must be >= 0, got {dr.min()}")
        self.drain = np.ascontiguousarray(dr * MM_PER_H, dtype=self.dtype)
        self.inflows = list(inflows)
        self._inflow = np.zeros(shape, dtype=self.dtype)
        self._inflow_cells = [self._cell_of(q.x, q.y, q.name) for q in self.inflows]
        self.water_level = water_level
        if water_level is not None and water_level.mask.shape != shape:
            raise GridError(f"water level mask has shape {water_level.mask.shape}, the DEM {shape}")
        if time_stepping not in TIME_STEPPINGS:
            raise ValidationError(f"time_stepping={time_stepping!r} unknown; use one of {TIME_STEPPINGS}")
        self.time_stepping = time_stepping
        if time_stepping == "lts":
            from physics.flood_lts import check_settings

            self.lts_tile, self.lts_max_level = check_settings(lts_tile, lts_max_level, prefix="lts_")
        self.boundary_slope = require_positive(boundary_slope, "boundary_slope")
        self.boundaries = self._boundaries(boundaries, water_level)
        self.bc = np.ascontiguousarray(self.boundaries.edge_code, dtype=np.int64)
        self.theta = require_range(theta, "theta", 0.0, 1.0)
        self.alpha = require_range(alpha, "alpha", 1e-3, 1 / math.sqrt(2))
        self.h_dry = require_positive(h_dry, "h_dry")
        self.wave_depth_cap_m = None if wave_depth_cap_m is None else require_positive(wave_depth_cap_m,
                                                                                         "wave_depth_cap_m")
        self._h_cap = K.BIG if wave_depth_cap_m is None else self.wave_depth_cap_m
        self.dt_max = require_positive(dt_max, "dt_max")
        self.h_arrive = require_positive(h_arrive, "h_arrive")
        h = np.zeros(shape) if h0 is None else _cell_array(h0, shape, "h0", np.float64, lo=0.0)
        self.h = np.ascontiguousarray(np.where(blocked, 0.0, h), dtype=self.dtype)
        ny, nx = shape
        self.qx = np.zeros((ny, nx + 1), dtype=self.dtype)
        self.qy = np.zeros((ny + 1, nx), dtype=self.dtype)
        self.hmax = self.h.copy()
        self.tmax = np.full(shape, start_s, dtype=self.dtype)
        self.tarr = np.full(shape, np.nan, dtype=self.dtype)
        self.tarr[self.h >= self.h_arrive] = start_s
        self._kernel_setup()
        self.t = float(start_s)
        self.n_steps = 0
        self.cell_updates = 0
        self._h_max_now = float(self.h.max())
        self.correction_m3 = 0.0
        self.storage0 = self.storage()

    # -- set-up helpers -------------------------------------------------------
    def _boundaries(self, spec, water_level: WaterLevel | None) -> FB.CompiledBoundaries:
        """The compiled edge, line and level boundaries (:mod:`physics.flood_boundaries`).

        ``water_level`` (the legacy tide) is a :class:`~physics.flood_boundaries.LevelCells`
        placed first: level specs in ``spec`` override it where they overlap.
        """
        b = FB.Boundaries.of(spec)
        if water_level is not None:
            b = FB.Boundaries((FB.LevelCells.from_water_level(water_level), *b.specs))
        z = np.where(self.phi > 0, self.z.astype(np.float64), np.nan)
        return FB.compile_boundaries(b, FB.Geometry(self.shape, tuple(self.meta["transform"]), z))

    def _cell_of(self, x: float, y: float, name: str) -> tuple[int, int]:
        t = self.meta["transform"]
        i = int(math.floor((x - t[2]) / t[0]))
        j = int(math.floor((y - t[5]) / t[4]))
        if not (0 <= j < self.shape[0] and 0 <= i < self.shape[1]):
            raise ValidationError(f"inflow {name!r} at ({x}, {y}) lies outside the grid")
        if self.phi[j, i] == 0:
            raise ValidationError(f"inflow {name!r} at ({x}, {y}) falls on a blocked cell ({j}, {i})")
        return j, i

    # -- state ----------------------------------------------------------------
    @property
    def cell_area(self) -> float:
        return self.dx * self.dy

    def storage(self) -> float:
        """Water volume on the grid (m³)."""
        return float(np.sum(self.phi.astype(np.float64) * self.h.astype(np.float64)) * self.cell_area)

    def balance(self) -> dict[str, float]:
        """Cumulative volumes (m³) since the start and the closure error.

        error = storage change - (rain - infiltration - drainage + inflow - outflow
                                  + level_exchange + correction)
        """
        acc = self._outputs.acc.sum(axis=0)
        terms = {name: float(acc[col]) for name, col in K.VOLUME_COLUMNS.items()}
        terms["correction"] = self.correction_m3
        storage = self.storage()
        expected = (terms["rain"] - terms["infiltration"] - terms["drainage"] + terms["inflow"]
                    - terms["outflow"] + terms["level_exchange"] + terms["correction"])
        err = (storage - self.storage0) - expected
        scale = max(terms["rain"] + terms["inflow"] + abs(terms["level_exchange"]), self.storage0, 1e-300)
        return {**terms, "storage": storage, "storage_initial": self.storage0,
                "error": err, "relative_error": abs(err) / scale}

    def add_correction(self, volume_m3: float) -> None:
        """Book water that a caller put into (+) or took out of (-) ``h`` outside the scheme.

        Data assimilation (e.g. nudging toward gauge levels) edits the depths
        directly; booking the volume here keeps the balance closed, and the
        time step is re-estimated from the edited depths.
        """
        v = float(volume_m3)
        if not math.isfinite(v):
            raise ValidationError(f"add_correction: volume_m3={volume_m3!r} must be finite")
        self.correction_m3 += v
        self.refresh()

    def refresh(self) -> None:
        """Re-read the depth field after an outside edit (for the CFL step)."""
        self._h_max_now = float(np.max(self.h))

    #: The arrays the steps change (a checkpoint's, by key -> attribute; the kernels hold them, so
    #: they are restored in place), ``acc`` being the volume accumulators of ``_outputs``.
    CHECKPOINT_ARRAYS = {"h": "h", "qx": "qx", "qy": "qy", "hmax": "hmax", "tmax": "tmax", "tarr": "tarr",
                         "infil_cum": "infil_cum", "inflow": "_inflow"}
    #: The scalars that go with them (key -> attribute, type).
    CHECKPOINT_SCALARS = {"t": ("t", float), "n_steps": ("n_steps", int), "cell_updates": ("cell_updates", int),
                          "h_max_now": ("_h_max_now", float), "correction_m3": ("correction_m3", float),
                          "storage0": ("storage0", float)}

    def checkpoint(self) -> dict[str, np.ndarray | float | int]:
        """The model's whole state: copies of the arrays the steps change and the scalars beside them.

        Keys: ``h``, ``qx``, ``qy`` (depth and discharges), ``hmax``, ``tmax``,
        ``tarr`` (maxima, their times, arrival times), ``infil_cum``
        (cumulative infiltration), ``inflow`` (the inflow of the last step),
        ``acc`` (the volume accumulators of :meth:`balance`), and ``t``,
        ``n_steps``, ``cell_updates``, ``h_max_now`` (the depth maximum the
        next CFL step starts from), ``correction_m3``, ``storage0``. The rest
        (bed, porosity, roughness, forcings, parameters) is fixed at
        construction: :meth:`restore` the dict into a model built with the
        same arguments, and it steps on bit for bit as this one does.
        Arrays are copies: stepping on does not change them.
        """
        out: dict[str, np.ndarray | float | int] = {
            key: np.array(getattr(self, attr), copy=True) for key, attr in self.CHECKPOINT_ARRAYS.items()}
        out["acc"] = np.array(self._outputs.acc, copy=True)
        out.update({key: kind(getattr(self, attr)) for key, (attr, kind) in self.CHECKPOINT_SCALARS.items()})
        return out

    def restore(self, state: Mapping[str, np.ndarray | float | int]) -> None:
        """Put a :meth:`checkpoint` back: arrays copied into the model's own (in place), scalars set.

        Raises
        ------
        ValidationError
            Naming a missing key, an array whose shape or dtype is not the
            model's (a checkpoint of another grid or precision), or depths and
            discharges that are not finite (negative depths too); nothing is
            changed then.
        """
        arrays = {**{key: getattr(self, attr) for key, attr in self.CHECKPOINT_ARRAYS.items()},
                  "acc": self._outputs.acc}
        missing = [k for k in (*arrays, *self.CHECKPOINT_SCALARS) if k not in state]
        if missing:
            raise ValidationError(f"FloodModel.restore: the checkpoint lacks {missing}; pass the dict "
                                  "FloodModel.checkpoint() returns")
        values = {k: np.asarray(state[k]) for k in arrays}
        for k, v in values.items():
            if v.shape != arrays[k].shape or v.dtype != arrays[k].dtype:
                raise ValidationError(
                    f"FloodModel.restore: {k!r} is {v.dtype}{list(v.shape)}, the model's {arrays[k].dtype}"
                    f"{list(arrays[k].shape)}; restore a checkpoint of a model built with the same grid "
                    "and dtype")
        for k in ("h", "qx", "qy"):
            if not np.all(np.isfinite(values[k])) or (k == "h" and np.any(values[k] < 0)):
                raise ValidationError(f"FloodModel.restore: {k!r} holds non-finite"
                                      f"{' or negative' if k == 'h' else ''} values; the checkpoint is damaged")
        scalars = {}
        for key, (_, kind) in self.CHECKPOINT_SCALARS.items():
            v = state[key]
            if isinstance(v, bool) or not isinstance(v, int | float | np.integer | np.floating) \
                    or not math.isfinite(float(v)):
                raise ValidationError(f"FloodModel.restore: {key}={v!r}: give a finite number (the "
                                      "checkpoint's)")
            scalars[key] = kind(v)
        for k, v in values.items():
            arrays[k][...] = v
        for key, (attr, _) in self.CHECKPOINT_SCALARS.items():
            setattr(self, attr, scalars[key])

    def cfl_dt(self) -> float:
        """Stable step: alpha * sqrt(theta) * min(dx, dy) / sqrt(g h_max), at most dt_max.

        Bates et al. (2010) give dt = alpha dx / sqrt(g h). With q-centred
        diffusion the von Neumann analysis of the linearised 2-D scheme at the
        (pi, pi) mode, where the averaged flux has amplification 2 theta - 1,
        gives the bound C = dt sqrt(g h) / dx <= sqrt(theta / 2); so the step
        carries a factor sqrt(theta) and alpha must stay <= 1/sqrt(2).
        With ``wave_depth_cap_m``, h_max is at most the cap (the pressure
        term sees no deeper water; see the class docstring). With a water level,
        h_max is at least the highest level over the next dt_max above the lowest
        level cell: a rising tide must not be stepped over with the step of the
        still-dry grid.
        (With alpha = 0.7, theta = 0.7 and no friction, the unscaled step grows
        round-off on a lake at rest into metre-scale waves within 300 steps.)
        """
        # the formula and the look-ahead are the kernels' (K.cfl_step), which step with them
        return float(K.cfl_step(self._h_max_now, self.t, self._forcing, self._params))

    # -- time stepping ----------------------------------------------------------
    def _kernel_setup(self) -> None:
        """The kernels' arguments (see :mod:`physics._kernels.flood`), built once for the run.

        The arrays are the model's own (``h``, ``qx``, ``hmax``, ...): the kernels update
        them in place. Only the rain (per forcing block) and the blocks (per thread count)
        are replaced later.
        """
        ny, nx = self.shape
        n2 = self.n2
        cb = self.boundaries
        ekind = np.ascontiguousarray(cb.edge_kind, dtype=np.int64)
        # per-face values: the normal-depth and free ghosts' bed drop S*d, fixed; discharge and stage per step
        d = np.array([self.dx, self.dx, self.dy, self.dy])[:, None]
        drop = np.where(ekind == FB.KIND_NORMAL_DEPTH, cb.edge_param * d,
                        np.where(ekind == FB.KIND_FREE, self.boundary_slope * d, 0.0))
        self._edge_value = np.ascontiguousarray(drop, dtype=self.dtype)
        edge_mode = np.where(ekind == FB.KIND_DISCHARGE, K.EDGE_MEAN,
                             np.where(ekind == FB.KIND_STAGE, K.EDGE_END, K.EDGE_FIXED)).astype(np.int64)
        # held-level cells: the kernels' own table of level series, mask = 1 + its row
        lv_ids = np.unique(cb.level_cells[cb.level_cells > 0]) - 1
        if lv_ids.size > 255:
            raise ValidationError(f"{lv_ids.size} level series: at most 255 (LevelCells / LineStage specs)")
        lut = np.zeros(cb.series_n.size + 1, dtype=np.uint8)
        lut[lv_ids + 1] = np.arange(1, lv_ids.size + 1)
        self._level_mask = np.ascontiguousarray(lut[cb.level_cells])
        has_level = lv_ids.size > 0
        ml = max(int(cb.series_n[lv_ids].max()) if has_level else 1, 1)
        level_t = np.zeros((max(lv_ids.size, 1), ml))
        level_v = np.zeros_like(level_t)
        level_n = np.ones(max(lv_ids.size, 1), dtype=np.int64)
        for r, s in enumerate(lv_ids):
            n = cb.series_n[s]
            level_t[r, :n], level_v[r, :n], level_n[r] = cb.series_t[s, :n], cb.series_v[s, :n], n
        if not has_level:
            level_n = np.zeros(0, dtype=np.int64)
        # the discharge series (edges, lines): a step ends on each of their knots (_next_change)
        qs = np.unique(np.concatenate([cb.edge_series[ekind == FB.KIND_DISCHARGE], cb.line_series]).astype(np.int64))
        self._knot_t = np.ascontiguousarray(cb.series_t[qs].reshape(qs.size, cb.series_t.shape[1]))
        self._knot_n = np.ascontiguousarray(cb.series_n[qs])
        # the boundary series the edges and lines read (level series stay out: their cells read level_now)
        zmin = np.where(np.isin(np.arange(cb.series_n.size), lv_ids), np.inf, cb.series_zmin)
        self._grid = K.Grid(
            h=self.h, zb=K.blocked_bed(self.z, self.phi),
            n2=np.ascontiguousarray(n2[:1, :1]) if np.all(n2 == n2.flat[0]) else n2,
            phi=self.phi, qx=self.qx, qy=self.qy, cols=K.active_columns(self.phi), bc=self.bc,
            phi_binary=bool(np.all((self.phi == 0) | (self.phi == 1))), ekind=ekind, evalue=self._edge_value)
        k = len(self.inflows)
        m = max((q.times_s.size for q in self.inflows), default=1)
        in_t = np.zeros((k, m))
        in_q = np.zeros((k, m))
        in_n = np.zeros(k, dtype=np.int64)
        for a, q in enumerate(self.inflows):
            in_t[a, :q.times_s.size] = q.times_s
            in_q[a, :q.times_s.size] = q.discharge_m3s
            in_n[a] = q.times_s.size
        self._forcing = K.Forcing(
            rain=np.zeros((1, 1), dtype=self.dtype),  # replaced per forcing block (_advance)
            infil_mode=Infiltration.MODES[self.infiltration.mode], infil_p1=self._ip1,
            infil_p2=self._ip2, infil_cum=self.infil_cum, drain_rate=self.drain,
            inflow=self._inflow if (k or cb.line_cells.shape[0]) else np.zeros((1, 1), dtype=self.dtype),
            inflow_cells=np.array(self._inflow_cells, dtype=np.int64).reshape(k, 2),
            inflow_t=in_t, inflow_q=in_q, inflow_n=in_n, level_mask=self._level_mask,
            level_rows=np.ascontiguousarray(self._level_mask.any(axis=1), dtype=np.uint8),
            level_t=level_t, level_v=level_v, has_level=has_level,
            z_level_min=float(self.z[self._level_mask.astype(bool)].min()) if has_level else 0.0,
            level_n=level_n, level_now=np.zeros(max(lv_ids.size, 1), dtype=self.dtype),
            edge_value=self._edge_value, edge_mode=np.ascontiguousarray(edge_mode),
            edge_series=np.ascontiguousarray(cb.edge_series, dtype=np.int64),
            series_t=np.ascontiguousarray(cb.series_t), series_v=np.ascontiguousarray(cb.series_v),
            series_n=np.ascontiguousarray(cb.series_n, dtype=np.int64), series_zmin=np.ascontiguousarray(zmin),
            line_cells=np.ascontiguousarray(cb.line_cells, dtype=np.int64),
            line_length=np.ascontiguousarray(cb.line_length), line_series=np.ascontiguousarray(cb.line_series))
        self._outputs = K.Outputs(hmax=self.hmax, tmax=self.tmax, tarr=self.tarr,
                                  acc=np.zeros((ny, K.ACC_COLUMNS)))
        # float() throughout: a Python int or numpy scalar here would compile another specialisation
        self._params = K.Params(
            dx=float(self.dx), dy=float(self.dy), theta=float(self.theta), alpha=float(self.alpha),
            h_dry=float(self.h_dry), dt_max=float(self.dt_max), phi_min=float(self._phi_min),
            boundary_slope=float(self.boundary_slope), h_arrive=float(self.h_arrive),
            h_cap=float(self._h_cap))
        self._blocks_for = (0, None)

    def _blocks(self) -> K.Blocks:
        """Row blocks (4 per numba thread, equal open span) and their row buffers."""
        import numba

        n = numba.get_num_threads()
        if self._blocks_for[0] != n:
            chunks = K.row_chunks(self._grid.cols, 4 * n)
            nb, nx, dt = chunks.size - 1, self.shape[1], self.dtype
            blocks = K.Blocks(
                chunks=chunks,
                halo_x=np.zeros((nb - 1, 2, nx + 1), dtype=dt), halo_y=np.zeros((nb - 1, 3, nx), dtype=dt),
                halo_f=np.ones((nb - 1, 2, nx + 2), dtype=dt),
                roll_x=np.zeros((nb, 3, nx + 1), dtype=dt), roll_y=np.zeros((nb, 4, nx), dtype=dt),
                roll_f=np.ones((nb, 3, nx + 2), dtype=dt))
            self._blocks_for = (n, blocks)
        return self._blocks_for[1]

    # the time loop in numba (tests swap in the two-pass reference, tests/physics/flood_two_pass.py)
    _time_loop = staticmethod(K.advance)

    def _advance(self, t_end: float, max_steps: int = 2**62) -> None:
        """Sub-steps (in numba) towards ``t_end`` while the rain block and hydrograph segments hold.

        With ``time_stepping="lts"``: :func:`physics.flood_lts.advance` instead.
        """
        if self.time_stepping == "lts":
            from physics.flood_lts import advance

            advance(self, t_end, max_steps, tile=self.lts_tile, max_level=self.lts_max_level)
            return
        rain = np.ascontiguousarray(self.rain.rate(self.t), dtype=self.dtype)
        if rain.shape not in ((1, 1), self.shape):
            raise GridError(f"rain field has shape {rain.shape}, the DEM {self.shape}")
        self._forcing = self._forcing._replace(rain=rain)
        window = K.Window(t=float(self.t), t_end=float(t_end), t_next=float(self._next_change()),
                          h_max=float(self._h_max_now), max_steps=int(max_steps))
        t, n, hm = self._time_loop(self._grid, self._blocks(), self._forcing, self._outputs, self._params,
                                   window, self.dtype.type)
        self.t = float(t)
        self.n_steps += int(n)
        self.cell_updates += int(n) * self.h.size
        self._h_max_now = float(hm)

    def warm_up(self) -> float:
        """Compile the time loop for this model's argument types, or load it from numba's cache; returns s.

        The loop is called once with room for no step, so the state is unchanged
        (a run is bit-identical with or without this call); the first real step
        then starts at once, and a caller can time the model apart from the
        compiling (``compile_s`` of :func:`physics.flood_city.run_city_flood`).
        The exact argument types matter (precision, read-only arrays): a tiny
        stand-in model could compile another specialisation.
        """
        t0 = time.perf_counter()
        self._advance(self.t, max_steps=0)
        return time.perf_counter() - t0

    def _next_change(self) -> float:
        nxt = self.rain.next_change(self.t)
        for q in self.inflows:
            k = np.searchsorted(q.times_s, self.t, side="right")
            if k < q.times_s.size:
                nxt = min(nxt, float(q.times_s[k]))
        if self._knot_n.size:
            # edge and line discharges are stepped as their mean over a step: steps end on their knots
            nxt = min(nxt, float(FB.next_knot(self.t, self._knot_t, self._knot_n)))
        return nxt

    def step(self, dt: float) -> float:
        """Advance by ``dt`` seconds in CFL-limited sub-steps; returns the time elapsed."""
        dt = require_positive(dt, "dt")
        t_end = self.t + dt
        while self.t < t_end - 1e-9:
            # each sub-step: min(cfl_dt(), t_end - t, max(next forcing change - t, 1e-6)), looped in numba
            self._advance(t_end)
        return dt

    run_one_step = step

    # -- outputs ------------------------------------------------------------------
    def speed(self) -> np.ndarray:
        """Cell-centred speed |q| / h (m/s), 0 where the depth is below 1 mm."""
        qxc = 0.5 * (self.qx[:, :-1] + self.qx[:, 1:]).astype(np.float64)
        qyc = 0.5 * (self.qy[:-1, :] + self.qy[1:, :]).astype(np.float64)
        h = self.h.astype(np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            v = np.where(h > 1e-3, np.hypot(qxc, qyc) / h, 0.0)
        return v

    def run(
        self,
        duration_s: float,
        output_every_s: float | None = None,
        *,
        progress: Callable[[float, float], None] | None = None,
        progress_every_s: float | None = None,
        store_fields: bool = True,
        flood_depth_m: float | None = None,
    ) -> xr.Dataset:
        """Run for ``duration_s`` and return the output Dataset (see :func:`simulate`).

        ``progress(t, duration_s)`` (simulated seconds since the start) is
        called after each output interval or, with ``progress_every_s``, after
        each chunk of at most that many seconds: every output interval is then
        advanced by :meth:`step` calls of at most ``progress_every_s``. A
        chunk's end is also a sub-step's end, so a chunked run's results are
        not those of an unchunked run (each is reproducible).
        """
        duration_s = require_positive(duration_s, "duration_s")
        every = require_positive(output_every_s or duration_s, "output_every_s")
        chunk = (None if progress_every_s is None
                 else require_positive(progress_every_s, "progress_every_s"))
        thr = self.h_arrive if flood_depth_m is None else flood_depth_m
        t0 = self.t
        times = [t0]
        frames_h, frames_v = [], []
        series = {k: [] for k in (*BALANCE_TERMS, "correction", "storage", "error", "relative_error")}
        area = []

        def record():
            b = self.balance()
            for k in series:
                series[k].append(b[k])
            area.append(float(np.count_nonzero(self.h >= thr)) * self.cell_area)
            if store_fields:
                frames_h.append(self.h.astype(np.float32))
                frames_v.append(self.speed().astype(np.float32))

        record()
        n_out = int(math.ceil(duration_s / every - 1e-9))
        for k in range(1, n_out + 1):
            target = t0 + min(k * every, duration_s)
            if chunk is None:
                self.step(target - self.t)
            else:
                # The end step(target - t) would aim at, so chunked intervals end where it would.
                t_end = self.t + (target - self.t)
                while self.t < t_end - 1e-9:
                    self.step(min(chunk, t_end - self.t))
                    if progress is not None:
                        progress(self.t - t0, duration_s)
            times.append(self.t)
            record()
            if progress is not None and chunk is None:
                progress(self.t - t0, duration_s)
        return self._dataset(np.asarray(times), frames_h, frames_v, series, area, thr)

    def _dataset(self, times, frames_h, frames_v, series, area, thr) -> xr.Dataset:
        coords = {"time": ("time", times, {"units": "s", "long_name": "time since start"}),
                  "y": ("y", self.meta["y"], {"units": "m", "standard_name": "projection_y_coordinate",
                                              "long_name": "cell-centre northing"}),
                  "x": ("x", self.meta["x"], {"units": "m", "standard_name": "projection_x_coordinate",
                                              "long_name": "cell-centre easting"})}
        ds = xr.Dataset(coords=coords)
        if frames_h:
            ds["depth"] = (("time", "y", "x"), np.stack(frames_h), {"units": "m", "long_name": "water depth"})
            ds["speed"] = (("time", "y", "x"), np.stack(frames_v), {"units": "m/s", "long_name": "flow speed"})
        ds["max_depth"] = (("y", "x"), self.hmax.astype(np.float32), {"units": "m", "long_name": "maximum depth"})
        ds["time_of_max_depth"] = (("y", "x"), self.tmax.astype(np.float32),
                                   {"units": "s", "long_name": "time of maximum depth"})
        ds["arrival_time"] = (("y", "x"), self.tarr.astype(np.float32),
                              {"units": "s", "long_name": f"first time depth >= {self.h_arrive} m (NaN: never)"})
        ds["flooded_area"] = ("time", np.asarray(area), {"units": "m2", "long_name": f"area with depth >= {thr} m"})
        for k, v in series.items():
            units = "1" if k == "relative_error" else "m3"
            ds[f"volume_{k}"] = ("time", np.asarray(v), {"units": units, "long_name": f"cumulative {k}"})
        ds.attrs.update({
            "model": self.name, "scheme": self.scheme_description, "time_stepping": self.time_stepping,
            "theta": self.theta, "alpha": self.alpha, "h_dry_m": self.h_dry, "dtype": self.dtype.name,
            "wave_depth_cap_m": "none" if self.wave_depth_cap_m is None else self.wave_depth_cap_m,
            "cell_size_m": self.dx, "steps": self.n_steps, "cell_updates": self.cell_updates,
            "h_arrive_m": self.h_arrive, "cite_as": self.cite_as,
        })
        if self.meta.get("crs"):
            ds.attrs["crs"] = self.meta["crs"]
        ds.attrs["transform"] = tuple(self.meta["transform"])
        return ds

    # -- the Component contract: grid and consistency after set() -----------------------
    def cell_grid(self) -> CellGrid:
        """Cell centres, CRS and transform of the model's grid (labels of :meth:`get`)."""
        return CellGrid(x=self.meta["x"], y=self.meta["y"], crs=self.meta.get("crs"),
                        transform=tuple(self.meta["transform"]))

    def _field_changed(self, name: str, previous: np.ndarray) -> None:
        """Keep the model consistent after ``set(name, ...)`` (see :meth:`Component.set`).

        Depth set from outside is water the scheme did not move (data
        assimilation, a hot start): its volume, sum(phi (h - h_before)) * cell
        area, is booked with :meth:`add_correction`, which also refreshes the
        CFL depth, so the balance still closes. Water on blocked cells
        (porosity 0) is refused: they hold none.
        """
        if name != "surface_water__depth":
            return
        # only the changed cells: a nudge touches hundreds of cells out of millions
        j, i = np.nonzero(self.h != previous)
        phi = self.phi[j, i].astype(np.float64)
        if np.any(phi == 0):
            k = int(np.argmax(phi == 0))
            raise ValidationError(
                f"surface_water__depth: depth {float(self.h[j[k], i[k]])!r} m at blocked cell "
                f"({j[k]}, {i[k]}) (porosity 0); leave blocked cells at their depth")
        dh = self.h[j, i].astype(np.float64) - previous[j, i].astype(np.float64)
        self.add_correction(float(np.sum(phi * dh)) * self.cell_area)


def simulate(
    dem,
    duration_s: float,
    *,
    rain: Rain | float | None = None,
    output_every_s: float | None = None,
    progress: Callable[[float, float], None] | None = None,
    store_fields: bool = True,
    **kwargs,
) -> xr.Dataset:
    """Run the flood model and return its outputs.

    Parameters
    ----------
    dem : DataArray (raster convention, metric CRS) or 2-D array (give ``dx``)
        Bed elevation (m); NaN cells are outside the domain.
    duration_s : float
        Simulated time (s).
    rain : Rain, float (constant mm/h over the whole run) or None
    output_every_s : float
        Interval of the depth/speed frames (default: only start and end).
    **kwargs
        Passed to :class:`FloodModel`: ``manning``, ``infiltration``,
        ``drainage_mm_h``, ``inflows``, ``water_level``, ``boundaries``,
        ``porosity``, ``theta``, ``alpha``, ``dtype``, ``h_arrive``,
        ``wave_depth_cap_m`` (off by default; see :class:`FloodModel`),
        ``scheme`` ("local_inertial", or "fv": :class:`physics.flood_fv.FVFloodModel`),
        ``time_stepping`` ("global", or "lts": :func:`physics.flood_lts.advance`, with ``lts_tile``
        cells a tile edge, default 32, and ``lts_max_level`` the finest level, default 8), ...

        ``boundaries``: "closed" (default) or "free" for every edge, an edge ->
        kind dict, or edge/line/level specs (:mod:`physics.flood_boundaries`:
        EdgeDischarge, EdgeStage, EdgeNormalDepth, EdgeZeroGradient, EdgeClosed,
        EdgeFree, LineDischarge, LineStage, LevelCells; or a
        :class:`~physics.flood_boundaries.Boundaries`).

    Returns
    -------
    Dataset with ``depth``/``speed`` (time, y, x), ``max_depth``,
    ``time_of_max_depth``, ``arrival_time`` (y, x), ``flooded_area`` and
    ``volume_*`` series (time): rain, infiltration, drainage, inflow,
    outflow, level_exchange, storage, error, relative_error.
    """
    if isinstance(rain, int | float):
        rain = UniformRain.constant(float(rain), duration_s)
    model = FloodModel(dem, rain=rain, **kwargs)
    return model.run(duration_s, output_every_s, progress=progress, store_fields=store_fields)
