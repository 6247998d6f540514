"""Full shallow-water flood model: finite volumes (HLL, hydrostatic reconstruction) behind ``FloodModel``.

:class:`FVFloodModel` takes the local-inertial model's arguments, forcings
and outputs (:class:`physics.flood.FloodModel`) and steps the full 2-D
shallow-water equations instead (advection kept), with the kernels of
:mod:`physics._kernels.flood_fv` (scheme, wet/dry, friction, porosity and
their sources in its docstring). Extra arguments: ``order`` (1, the default,
one fused sweep per step; 2: MUSCL and Heun, :mod:`physics._kernels.flood_fv2`) and ``cfl``.
"""

from __future__ import annotations

import numpy as np

from physics import flood as _flood
from physics._kernels import flood as K
from physics._kernels import flood_fv as KF
from physics._kernels import flood_fv2 as KF2
from twin.component import require_range
from twin.errors import ValidationError


class FVFloodModel(_flood.FloodModel):
    """Finite-volume 2-D flood model (HLL fluxes, Audusse et al. 2004 hydrostatic reconstruction; order 1 or 2).

    Parameters
    ----------
    order : int
        1 (first order in space and time, one fused sweep per step: the default) or 2 (MUSCL with
        minmod slopes of h, eta, u, v and Heun / SSP-RK2 in time; :mod:`physics._kernels.flood_fv2`).
    cfl : float
        Fraction of the positivity bound dt ((|u|+c)/dx + (|v|+c)/dy) / phi <= 1/2 of the
        hydrostatic reconstruction (Audusse et al. 2004 §2.3; 1/4 at order 2); default 0.9 (a 10 % margin for the
        rate being taken from the cell states of the step's start, while the HLL dry-front speed
        u + 2c can exceed |u| + c), in (0, 1].
    **kwargs
        As :class:`physics.flood.FloodModel`; ``theta``, ``alpha`` and ``wave_depth_cap_m``
        belong to the local-inertial scheme and are refused when set.

    The outputs ``surface_water__discharge_x/y`` are the mass fluxes (m²/s) at the faces of
    the last step of each advance; the cell momenta are ``hu``, ``hv`` (m²/s).
    """

    name = "FiniteVolumeFlood"
    cite_as = ("Audusse, Bouchut, Bristeau, Klein & Perthame 2004, SIAM J. Sci. Comput. 25:2050-2065; "
               "Harten, Lax & van Leer 1983, SIAM Rev. 25:35-61; Toro 2001, Shock-capturing methods for "
               "free-surface shallow flows, Wiley")
    scheme = "fv"

    def __init__(self, dem, *, order: int = 1, cfl: float = 0.9, **kwargs):
        if order not in (1, 2):
            raise ValidationError(f"order={order!r}: use 1 (first order) or 2 (MUSCL-minmod and Heun)")
        for k in ("theta", "alpha", "wave_depth_cap_m"):
            if kwargs.get(k) is not None:
                raise ValidationError(f"{k}={kwargs[k]!r} belongs to the local-inertial scheme; drop it with "
                                      "scheme='fv' (the step is set by cfl=)")
            kwargs.pop(k, None)
        self.order = order
        self.cfl = require_range(cfl, "cfl", 1e-3, 1.0)
        super().__init__(dem, **kwargs)
        self.refresh()  # the CFL rate of the initial state (the base sets the largest depth)

    # -- set-up -------------------------------------------------------------------
    def _kernel_setup(self) -> None:
        super()._kernel_setup()
        ny, nx = self.shape
        self.hu = np.zeros(self.shape, dtype=self.dtype)
        self.hv = np.zeros(self.shape, dtype=self.dtype)
        g = self._grid
        self._fv_grid = KF.FVGrid(
            h=self.h, hu=self.hu, hv=self.hv, zb=g.zb, n2=g.n2, phi=self.phi, fx=self.qx, fy=self.qy,
            cols=g.cols, ekind=g.ekind, evalue=g.evalue,
            ghost_w=np.zeros((KF.GHOST_ROWS, ny), dtype=self.dtype), ghost_e=np.zeros((KF.GHOST_ROWS, ny), dtype=self.dtype),
            ghost_n=np.zeros((KF.GHOST_ROWS, nx), dtype=self.dtype), ghost_s=np.zeros((KF.GHOST_ROWS, nx), dtype=self.dtype))
        self._fv_params = KF.FVParams(
            dx=float(self.dx), dy=float(self.dy), cfl=(0.5 if self.order == 1 else 0.25) * float(self.cfl),
            h_dry=float(self.h_dry),
            dt_max=float(self.dt_max), phi_min=float(self._phi_min), boundary_slope=float(self.boundary_slope),
            h_arrive=float(self.h_arrive))
        self._fv_blocks_for = (0, None)
        self._stage = None
        if self.order == 2:
            dt = self.dtype
            self._stage = KF2.Stage(
                h1=np.zeros(self.shape, dtype=dt), hu1=np.zeros(self.shape, dtype=dt),
                hv1=np.zeros(self.shape, dtype=dt), fx=np.zeros((4, ny, nx + 1), dtype=dt),
                fy=np.zeros((4, ny + 1, nx), dtype=dt), src=np.zeros((2, ny, nx), dtype=dt), zero_x=np.zeros((4, nx + 1), dtype=dt),
                zero_y=np.zeros((4, nx), dtype=dt))

    def refresh(self) -> None:
        """Re-read the state after an outside edit (the CFL rate of the next step)."""
        if not hasattr(self, "_fv_params"):
            return super().refresh()
        self._h_max_now = float(KF.rate_of(self.h, self.hu, self.hv, self.phi, self.h_dry, self.dx, self.dy))

    def _fv_blocks(self) -> KF.FVBlocks:
        """Row blocks (4 per numba thread) and their row buffers."""
        import numba

        n = numba.get_num_threads()
        if self._fv_blocks_for[0] != n:
            chunks = K.row_chunks(self._grid.cols, 4 * n)
            nb, nx, dt = chunks.size - 1, self.shape[1], self.dtype
            blocks = KF.FVBlocks(chunks=chunks, halo=np.zeros((nb - 1, 4, nx), dtype=dt),
                                 halo_vel=np.zeros((nb - 1, 2, 2, nx), dtype=dt),
                                 vel=np.zeros((nb, 2, 2, nx), dtype=dt), yrow=np.zeros((nb, 2, 4, nx), dtype=dt),
                                 xrow=np.zeros((nb, 4, nx + 1), dtype=dt), scratch=np.zeros((nb, 4, nx), dtype=dt))
            self._fv_blocks_for = (n, blocks)
        return self._fv_blocks_for[1]

    # -- stepping ---------------------------------------------------------------------
    _time_loop = staticmethod(KF.advance)

    def _advance(self, t_end: float, max_steps: int = 2**62) -> None:
        """Sub-steps (in numba) towards ``t_end`` while the rain block and hydrograph segments hold."""
        rain = np.ascontiguousarray(self.rain.rate(self.t), dtype=self.dtype)
        if rain.shape not in ((1, 1), self.shape):
            raise _flood.GridError(f"rain field has shape {rain.shape}, the DEM {self.shape}")
        self._forcing = self._forcing._replace(rain=rain)
        window = K.Window(t=float(self.t), t_end=float(t_end), t_next=float(self._next_change()),
                          h_max=float(self._h_max_now), max_steps=int(max_steps))
        if self.order == 2:
            t, n, rate = KF2.advance(self._fv_grid, self._stage, self._forcing, self._outputs, self._fv_params,
                                     self._params, window, self.dtype.type)
        else:
            t, n, rate = self._time_loop(self._fv_grid, self._fv_blocks(), self._forcing, self._outputs,
                                         self._fv_params, self._params, window, self.dtype.type)
        self.t = float(t)
        self.n_steps += int(n)
        self.cell_updates += int(n) * self.h.size
        self._h_max_now = float(rate)

    def cfl_dt(self) -> float:
        """Next step: min(dt_max, cfl/2 · phi_min / max((|u|+c)/dx + (|v|+c)/dy)) (see the kernels' cfl_dt)."""
        return float(KF.cfl_dt(self._h_max_now, self.t, self._forcing, self._fv_params))

    # -- outputs ------------------------------------------------------------------------
    def speed(self) -> np.ndarray:
        """Cell-centred speed |(hu, hv)| / h (m/s), 0 where the depth is below 1 mm."""
        h = self.h.astype(np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(h > 1e-3, np.hypot(self.hu.astype(np.float64), self.hv.astype(np.float64)) / h, 0.0)

    CHECKPOINT_ARRAYS = {**_flood.FloodModel.CHECKPOINT_ARRAYS, "hu": "hu", "hv": "hv"}

    def _dataset(self, *args, **kwargs):
        ds = super()._dataset(*args, **kwargs)
        ds.attrs["scheme"] = (f"finite volume, order {self.order}: HLL fluxes (upwind shear), hydrostatic reconstruction "
                              "(Audusse et al. 2004), implicit Manning friction")
        ds.attrs["order"] = self.order
        ds.attrs["cfl"] = self.cfl
        for k in ("theta", "alpha", "wave_depth_cap_m"):
            ds.attrs.pop(k, None)
        return ds
