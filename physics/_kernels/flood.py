"""Numba kernels of the local-inertial shallow-water scheme (pure: arrays in, arrays out).

Scheme: Bates, Horritt & Fewtrell (2010, J. Hydrol. 387:33) with the
q-centred numerical diffusion of de Almeida, Bates, Freer & Souvignet (2012,
WRR 48:W05528). For a face between cells L and R (unit discharge q, m²/s):

    h_f   = max(eta_L, eta_R) - max(z_L, z_R)                (flow depth at the face)
    q_c   = theta * q_t + (1 - theta)/2 * (q_{t,left} + q_{t,right})
    r     = q_c - g h_f dt (eta_R - eta_L)/dx
    q_new (1 + b |q_new|) = r,  b = g dt n² / h_f^(7/3)  =>  q_new = 2 r / (1 + sqrt(1 + 4 b |r|))

with q = 0 where h_f <= h_dry or either cell is blocked. (With a wave-depth
cap h_cap, the h_f of the pressure term r is min(h_f, h_cap); see
``FloodModel(wave_depth_cap_m=...)``. By default h_cap = BIG: no effect.)
In the q-centred
average a neighbouring face that is a wall (a closed edge, or a face of a
blocked cell) counts as q_t itself (zero gradient), not as 0. The face
Manning n² is the mean of the two cells' n².

Friction is implicit in q_new. Bates et al. and de Almeida et al. divide by
(1 + b |q_t|) with the old discharge; that linearisation has the growth
factor (1 - b q)/(1 + b q) -> -1 where friction is stiff (shallow water on
slopes), and on a 1 % tilted plane under rain it locks into an odd-even
checkerboard of depths (every other cell nearly dry). Both forms share the
Manning steady state n² q² = h_f^(10/3) |S|.

Mass is conserved exactly (to round-off) by the flux form of the depth
update, and depths never go negative because each cell's outflow over a step
is limited to the water it holds: outgoing fluxes of a cell whose outflow
volume exceeds its storage are scaled by storage / outflow (the donor's
factor), never by clipping depths.

Layout
------
``h``, ``n2``, ``phi`` are (ny, nx) cell arrays (depth m, Manning n² s²/m^(2/3),
porosity 0-1 with 0 = blocked). ``zb`` is the bed (m) with blocked cells
raised to :data:`BIG` (see :func:`blocked_bed`): a face next to a blocked
cell then has h_f = 0 and no flux, without reading ``phi``. ``qx`` is
(ny, nx+1): ``qx[j, i]`` crosses the face between cells (j, i-1) and (j, i),
positive towards +i (east). ``qy`` is (ny+1, nx): ``qy[j, i]`` crosses the
face between (j-1, i) and (j, i), positive towards +j (south on a north-up
grid). Boundary faces are ``qx[:, 0]``, ``qx[:, nx]``, ``qy[0, :]``,
``qy[ny, :]``. All arrays share one float dtype (float64 or float32); the
arithmetic runs in that dtype (float32 end to end), volumes are summed in
float64.

Boundaries (physics/flood_boundaries.py, compiled per face and cell): ``Grid.bc`` per edge is
CLOSED (every face a wall), FREE (the legacy edge, every face) or FACES (``Grid.ekind`` per face:
discharge, stage, normal depth, zero gradient, free, closed; values in ``Grid.evalue``; see
:func:`_edge_face`). An edge face's outflow is limited by its cell's factor, its inflow by the ghost's
(1); volumes out go to the ``outflow`` column, volumes in to ``inflow``. Line sources add to the
``inflow`` field, held-level cells (``level_mask`` = 1 + their series) to ``level_exchange``.
:func:`begin_step` refreshes the time-varying values once per step: a discharge as the mean of its
series over the step (the model ends steps on its knots: exact volume), a stage at the step's end.

``cols`` (ny, 3) holds each row's span [lo, hi) of open cells (and whether all of it has porosity 1)
(:func:`active_columns`); nothing outside it is read or written (faces
there stay 0), so the blocked margin of a city grid costs nothing.
``chunks`` splits the rows into contiguous blocks of about equal open-cell
count (:func:`row_chunks`); each block is one parallel work item.

A step is one sweep over the grid (:func:`fused_pass`), block by block; row
by row it computes the unlimited new fluxes of the row's faces, then the
row's outflow-limiting factors (the factor of cell (j, i) applies to every
face it drains), then the update of the row above it (:func:`_update_row`):
limited fluxes (each scaled by its donor's factor) into ``qx``/``qy``;
depths advanced with rain, infiltration, drainage, inflows and fixed-level
(tide) cells; maxima and the volume balance per row (``Outputs.acc``, its
columns named ``ACC_*``). The unlimited fluxes and factors live in small
rolling row buffers per block (served by the caches); the rows next to a
block boundary are computed first into halo buffers read by both blocks (see
its docstring). The same arithmetic as two passes over the whole grid is the
test reference (tests/physics/flood_two_pass.py) the sweep must match bit
for bit.

The kernels take their arguments grouped by role in namedtuples:
:class:`Grid` (state and geometry), :class:`Blocks` (parallel blocks and
their buffers), :class:`Forcing`, :class:`Outputs`, :class:`Params` (scheme
parameters) and, per call or step, :class:`Window`, :class:`Step` and
:class:`Coefficients`. :func:`advance` is the time loop; :func:`cfl_step`
is the one CFL formula (also behind ``FloodModel.cfl_dt``).

The face friction term uses h_f^(-7/3) = r^7 with r = h_f^(-1/3) from a
bit-level first guess and Newton steps r <- r (4 - h_f r³)/3 (exact to a few
ulp, and, unlike ``cbrt``, it vectorises).

Bytes per cell-update (memory traffic counted as in STREAM, each array read
or written once per pass, the 3-row stencils served by the caches; B = 8
float64, 4 float32; uniform rain, no infiltration/inflow/level cells): in
the two-pass form, pass 1 reads h, zb, qx, qy and writes qx_s, qy_s, fp (7 B); pass 2 reads
qx_s, qy_s, fp, h, hmax (and phi in rows with porosity other than 1) and
writes qx, qy, h, hmax (9 B, 10 B with phi), plus the rare tmax/tarr
writes: 16 B = 128 B (float64), 64 B (float32) on an all-open grid. The
fused sweep reads h, zb, qx, qy, hmax and writes qx, qy, h, hmax: 9 B = 72 B
(float64), 36 B (float32), plus the halo rows at block boundaries (a few rows
per block). See :func:`bytes_per_cell_update`.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from numba import njit, prange, types
from numba.extending import intrinsic, overload

from physics import flood_boundaries as FB
from physics.flood_boundaries import values_at

G = 9.80665
BIG = 1e30  # bed of blocked cells in ``zb``: BIG + h == BIG in float32 and float64

# Boundary codes per edge (west, east, north, south): Grid.bc.
CLOSED = 0  # every face a wall
FREE = 1  # every face the legacy free edge (dry ghost cell boundary_slope*dx lower)
FACES = 2  # per-face kinds: Grid.ekind / Grid.evalue (physics.flood_boundaries.KIND_*)

# Per-face kinds (the same codes as physics.flood_boundaries.KIND_*; see _edge_face)
K_CLOSED = FB.KIND_CLOSED
K_FREE = FB.KIND_FREE
K_DISCHARGE = FB.KIND_DISCHARGE
K_STAGE = FB.KIND_STAGE
K_NORMAL_DEPTH = FB.KIND_NORMAL_DEPTH
K_ZERO_GRADIENT = FB.KIND_ZERO_GRADIENT
# Forcing.edge_mode: how begin_step refreshes Grid.evalue of a face from its series
EDGE_FIXED = 0  # not at all (closed, zero gradient; free and normal depth hold their drop, set once)
EDGE_MEAN = 1  # signed mean of the series over the step (discharge: exact volume for linear series)
EDGE_END = 2  # the series at the step's end (stage)

_MAGIC64 = 0x553EF0FF289DD794
_MAGIC32 = 0x54A2FA8C


# Columns of ``Outputs.acc`` (one row per grid row): this step's volumes (m³) of the row, summed
# over the run, and the row's largest depth after the step (m, for the next CFL step).
ACC_RAIN = 0
ACC_INFILTRATION = 1
ACC_DRAINAGE = 2
ACC_INFLOW = 3
ACC_OUTFLOW = 4  # through the grid edges
ACC_LEVEL_EXCHANGE = 5  # added (+) or taken (-) by fixed-level cells
ACC_ROW_MAX = 6
ACC_COLUMNS = 7
# the volume-balance terms and their columns
VOLUME_COLUMNS = {"rain": ACC_RAIN, "infiltration": ACC_INFILTRATION, "drainage": ACC_DRAINAGE,
                  "inflow": ACC_INFLOW, "outflow": ACC_OUTFLOW, "level_exchange": ACC_LEVEL_EXCHANGE}


# --------------------------------------------------------------------------
# Arguments of the kernels, by role (numba takes namedtuples of arrays and scalars; a field is
# read by name, so two swapped values can no longer pass unnoticed)
# --------------------------------------------------------------------------
class Grid(NamedTuple):
    """The stepped grid: its state (updated in place) and fixed geometry (see Layout above)."""

    h: np.ndarray  # depth (m), (ny, nx)
    zb: np.ndarray  # bed (m), blocked cells at BIG (:func:`blocked_bed`)
    n2: np.ndarray  # Manning n² (s²/m^(2/3)), (ny, nx) or (1, 1) for one value
    phi: np.ndarray  # porosity 0-1, 0 = blocked
    qx: np.ndarray  # unit discharge at x faces (m²/s), (ny, nx+1)
    qy: np.ndarray  # unit discharge at y faces (m²/s), (ny+1, nx)
    cols: np.ndarray  # int64 (ny, 3): open span [lo, hi) per row, 1 if all of it has porosity 1
    bc: np.ndarray  # int64 (4,): CLOSED, FREE or FACES for the west, east, north, south edges
    phi_binary: bool  # porosity only 0 or 1: the outflow limiter does not read phi
    ekind: np.ndarray  # int64 (4, L), L = max(ny, nx): per-face kind K_* of a FACES edge (face p of the edge:
    #                    row p for west/east, column p for north/south)
    evalue: np.ndarray  # (4, L) the faces' values in the arrays' dtype: discharge K_DISCHARGE (m²/s, signed
    #                    along +x/+y), level K_STAGE (m), ghost-bed drop S*d K_NORMAL_DEPTH / boundary_slope*d
    #                    K_FREE (m); refreshed by begin_step (the same array as Forcing.edge_value)


class Blocks(NamedTuple):
    """The parallel work items of a step and their row buffers (see :func:`fused_pass`)."""

    chunks: np.ndarray  # int64 row boundaries of the blocks (:func:`row_chunks`)
    halo_x: np.ndarray  # (nblocks-1, 2, nx+1) zeros: x-face fluxes of the rows at each boundary
    halo_y: np.ndarray  # (nblocks-1, 3, nx) zeros: y-face fluxes at each boundary
    halo_f: np.ndarray  # (nblocks-1, 2, nx+2) ones: outflow factors of the rows at each boundary
    roll_x: np.ndarray  # (nblocks, 3, nx+1) zeros: rolling x-face flux rows of each block
    roll_y: np.ndarray  # (nblocks, 4, nx) zeros: rolling y-face flux rows
    roll_f: np.ndarray  # (nblocks, 3, nx+2) ones: rolling outflow-factor rows


class Forcing(NamedTuple):
    """Sources and sinks. Cell inputs are (ny, nx), or (1, 1) for one value everywhere."""

    rain: np.ndarray  # rate (m/s) over the whole cell area, constant within one advance()
    infil_mode: int  # 0 none, 1 constant, 2 Green-Ampt, 3 SCS curve number (see _update_row)
    infil_p1: np.ndarray  # capacity (m/s), Ks (m/s) or S (m) by mode
    infil_p2: np.ndarray  # Green-Ampt suction head x moisture deficit (m)
    infil_cum: np.ndarray  # (ny, nx) depth infiltrated (Green-Ampt) or rain so far (SCS) (m)
    drain_rate: np.ndarray  # drainage capacity (m/s)
    inflow: np.ndarray  # (ny, nx) inflow of the step per cell (m³/s), set by advance(); (1, 1) zeros
    inflow_cells: np.ndarray  # int64 (k, 2): (j, i) of k hydrographs
    inflow_t: np.ndarray  # (k, m) their sample times (s), the first inflow_n[k] used
    inflow_q: np.ndarray  # (k, m) their discharges (m³/s)
    inflow_n: np.ndarray  # int64 (k,) samples per hydrograph
    level_mask: np.ndarray  # uint8 (ny, nx): s + 1 = fixed-level cell held at level series s (0: none)
    level_rows: np.ndarray  # uint8 (ny,): 1 = the row holds fixed-level cells
    level_t: np.ndarray  # (S_l, M) level series: times (s), the first level_n[s] used
    level_v: np.ndarray  # (S_l, M) and levels (m)
    has_level: bool  # whether there is a level series
    z_level_min: float  # lowest bed of the fixed-level cells (m), for the CFL look-ahead
    level_n: np.ndarray  # int64 (S_l,) knots per level series
    level_now: np.ndarray  # (S_l,) arrays' dtype: each level series at the step's end (set by begin_step)
    edge_value: np.ndarray  # Grid.evalue (the same array), refreshed per step
    edge_mode: np.ndarray  # int64 (4, L): EDGE_FIXED, EDGE_MEAN or EDGE_END
    edge_series: np.ndarray  # int64 (4, L): row of series_t/series_v (-1: none)
    series_t: np.ndarray  # (S, M) boundary series (edges, lines): knots (s)
    series_v: np.ndarray  # (S, M) values (m²/s or m)
    series_n: np.ndarray  # int64 (S,)
    series_zmin: np.ndarray  # (S,) lowest bed under a stage series (m; inf: not a stage), CFL look-ahead
    line_cells: np.ndarray  # int64 (k, 2) line-source cells: f.inflow += q(series) * length (m³/s)
    line_length: np.ndarray  # (k,) metres of line in the cell
    line_series: np.ndarray  # int64 (k,)


class Outputs(NamedTuple):
    """What the steps record, updated in place."""

    hmax: np.ndarray  # running maximum depth (m)
    tmax: np.ndarray  # its time (s)
    tarr: np.ndarray  # first time the maximum reached h_arrive (s; NaN: never)
    acc: np.ndarray  # float64 (ny, ACC_COLUMNS): row volumes and row maxima (ACC_* columns)


class Params(NamedTuple):
    """Scheme parameters, fixed for the run (float64)."""

    dx: float  # cell size (m) along x
    dy: float  # and along y
    theta: float  # q-centred weighting (de Almeida et al. 2012)
    alpha: float  # CFL factor
    h_dry: float  # faces with flow depth <= h_dry carry nothing (m)
    dt_max: float  # longest step (s)
    phi_min: float  # smallest open porosity (waves run at sqrt(g h / phi))
    boundary_slope: float  # bed slope to the ghost cell of a free edge
    h_arrive: float  # depth that counts as arrival (m)
    h_cap: float  # wave-depth cap (m; BIG: none)


class Window(NamedTuple):
    """One call of :func:`advance`: where it starts and how far it may go."""

    t: float  # start (s)
    t_end: float  # stop at (s)
    t_next: float  # next change of a piecewise-constant forcing (s): no step starts after it
    h_max: float  # largest depth now (m)
    max_steps: int


class Step(NamedTuple):
    """One step: its length, its end and the fixed water level at its end."""

    dt: float  # s
    t_new: float  # s
    level: float  # m


class Coefficients(NamedTuple):
    """A step's constants in the arrays' dtype (:func:`coefficients`)."""

    zero: float
    one: float
    half: float
    dt: float
    theta: float
    th2: float  # (1 - theta) / 2
    h_dry: float
    h_cap: float
    gdt: float  # g dt
    gdtdx: float  # g dt / dx
    gdtdy: float  # g dt / dy
    bsx: float  # boundary_slope dx: drop to the ghost cell of the west and east edges
    bsy: float  # boundary_slope dy: north and south
    area: float  # dx dy
    dtdx: float  # dt dx (a y face's volume per unit discharge)
    dtdy: float  # dt dy (an x face's)
    dta: float  # dt dx dy
    t_new: float
    level: float
    h_arrive: float
    c02: float  # 0.2, 0.8 of the SCS runoff
    c08: float
    mm: float  # 1 mm, floor of the Green-Ampt infiltrated depth


class UniformRows(NamedTuple):
    """Rows standing in for one-value inputs (served by L1: the cell loops have no branches on them)."""

    ones: np.ndarray  # (nx,) porosity of an all-open row
    ones_p: np.ndarray  # (nx+2,) padding factor row
    n2: np.ndarray  # (nx,) or (0,) when n2 is a grid
    rain: np.ndarray
    infil_p1: np.ndarray
    infil_p2: np.ndarray
    drain_rate: np.ndarray
    inflow: np.ndarray
    no_level: np.ndarray  # uint8 zeros: a row without fixed-level cells


# Not fastmath: inlined into advance()'s time loop, a fastmath ``gdt / dx`` became
# ``gdt * (1 / dx)`` with 1 / dx hoisted out of the loop (allowed by arcp), which rounds
# differently for some dt (Futian+Luohu at 90 m: first at t = 600 s, dt = 9.5047546885362 s).
# IEEE arithmetic here gives the values d012e27's fused_pass computed, wherever this is inlined.
@njit(cache=True, error_model="numpy")
def coefficients(step, p, F):
    """The step's :class:`Coefficients` in the float class ``F`` of the arrays (IEEE arithmetic)."""
    zero = F(0.0)
    one = F(1.0)
    half = F(0.5)
    dt = F(step.dt)
    dx = F(p.dx)
    dy = F(p.dy)
    theta = F(p.theta)
    bslope = F(p.boundary_slope)
    gdt = F(G) * dt
    area = dx * dy
    return Coefficients(zero=zero, one=one, half=half, dt=dt, theta=theta, th2=half * (one - theta),
                        h_dry=F(p.h_dry), h_cap=F(p.h_cap), gdt=gdt, gdtdx=gdt / dx, gdtdy=gdt / dy,
                        bsx=bslope * dx, bsy=bslope * dy, area=area, dtdx=dt * dx, dtdy=dt * dy,
                        dta=dt * area, t_new=F(step.t_new), level=F(step.level), h_arrive=F(p.h_arrive),
                        c02=F(0.2), c08=F(0.8), mm=F(1e-3))


@njit(cache=True)
def uniform_rows(g, f):
    """The :class:`UniformRows` of a grid and its forcing (rain fixed: one per :func:`advance`)."""
    nx = g.h.shape[1]
    dtype = g.h.dtype
    return UniformRows(
        ones=np.ones(nx, dtype=dtype), ones_p=np.ones(nx + 2, dtype=dtype),
        n2=np.full(nx, g.n2[0, 0]) if g.n2.shape[0] == 1 else np.empty(0, dtype=g.n2.dtype),
        rain=np.full(nx, f.rain[0, 0]) if f.rain.shape[0] == 1 else np.empty(0, dtype=dtype),
        infil_p1=np.full(nx, f.infil_p1[0, 0]) if f.infil_p1.shape[0] == 1 else np.empty(0, dtype=dtype),
        infil_p2=np.full(nx, f.infil_p2[0, 0]) if f.infil_p2.shape[0] == 1 else np.empty(0, dtype=dtype),
        drain_rate=np.full(nx, f.drain_rate[0, 0]) if f.drain_rate.shape[0] == 1 else np.empty(0, dtype=dtype),
        inflow=np.full(nx, f.inflow[0, 0]) if f.inflow.shape[0] == 1 else np.empty(0, dtype=dtype),
        no_level=np.zeros(nx, dtype=np.uint8))


@njit(inline="always")
def _row(a, uniform_row, j):
    # row j of a cell input, or its uniform row when the input is one value
    return uniform_row if a.shape[0] == 1 else a[j]



# --------------------------------------------------------------------------
# h^(-1/3) without libm (vectorisable)
# --------------------------------------------------------------------------
@intrinsic
def _bits(typingctx, x):
    ity = types.int64 if x.bitwidth == 64 else types.int32

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], context.get_value_type(ity))

    return ity(x), codegen


@intrinsic
def _float_of_bits(typingctx, i, like):
    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], context.get_value_type(like))

    return like(i, like), codegen


def rcbrt(a):  # pragma: no cover - replaced by the overload in jitted code
    """a^(-1/3) for a > 0 (jitted code only)."""
    return a ** (-1.0 / 3.0)


@overload(rcbrt, inline="always", jit_options={"fastmath": True, "error_model": "numpy"})
def _rcbrt_ov(a):
    if isinstance(a, types.Float) and a.bitwidth == 64:
        def impl(a):
            i = _bits(a)
            r = _float_of_bits(np.int64(_MAGIC64) - np.int64(float(i) * (1.0 / 3.0)), a)
            r = r * (4.0 - a * r * r * r) * (1.0 / 3.0)
            r = r * (4.0 - a * r * r * r) * (1.0 / 3.0)
            r = r * (4.0 - a * r * r * r) * (1.0 / 3.0)
            r = r * (4.0 - a * r * r * r) * (1.0 / 3.0)
            return r
        return impl
    if isinstance(a, types.Float) and a.bitwidth == 32:
        def impl(a):
            i = _bits(a)
            third = np.float32(1.0 / 3.0)
            four = np.float32(4.0)
            r = _float_of_bits(np.int32(_MAGIC32 - np.int32(np.float32(i) * third)), a)
            r = r * (four - a * r * r * r) * third
            r = r * (four - a * r * r * r) * third
            r = r * (four - a * r * r * r) * third
            return r
        return impl
    return None


@njit(inline="always", fastmath=True, error_model="numpy")
def _flux(q0, qa, qb, zl, zr, hl, hr, n2f, gdtd, cf):
    # gdtd: g dt / (the face's spacing), cf: the step's Coefficients
    zero = cf.zero
    one = cf.one
    h_dry = cf.h_dry
    etal = zl + hl
    etar = zr + hr
    hf = max(etal, etar) - max(zl, zr)
    r = rcbrt(max(hf, h_dry))
    r2 = r * r
    r7 = r2 * r2 * r2 * r
    qc = cf.theta * q0 + cf.th2 * (qa + qb)
    rr = qc - gdtd * min(hf, cf.h_cap) * (etar - etal)  # h_cap: see FloodModel(wave_depth_cap_m)
    b = cf.gdt * n2f * r7
    # friction implicit in the new discharge: q (1 + b |q|) = rr, root written without cancellation
    q = (one + one) * rr / (one + np.sqrt(one + (one + one + one + one) * b * abs(rr)))
    return q if hf > h_dry else zero


@njit(inline="always")
def _lim(q, f_left, f_right, zero):
    # A face's flux is scaled by the factor of the cell it drains.
    return q * (f_left if q > zero else f_right)


@njit(inline="always")
def infiltration(infil_mode, v, r, p1, p2, cum, cf):
    """One cell's infiltration over a step: (volume vi <= v (m³), new cumulative depth or rain (m)).

    ``v``: the water the cell holds after fluxes, rain and inflow (m³); ``r`` the rain rate (m/s);
    ``p1``, ``p2``, ``cum``: the cell's parameters and cumulative (see :func:`_update_row`). Shared
    with the finite-volume kernel.
    """
    zero = cf.zero
    vi = zero
    cum_new = cum
    if infil_mode == 1:
        vi = min(p1 * cf.dta, v)
    elif infil_mode == 2:
        vi = min(p1 * (cf.one + p2 / max(cum, cf.mm)) * cf.dta, v)
        cum_new = cum + vi / cf.area
    elif infil_mode == 3:
        pn = cum + r * cf.dt
        d0 = cum - cf.c02 * p1
        d1 = pn - cf.c02 * p1
        q0 = d0 * d0 / (cum + cf.c08 * p1) if d0 > zero else zero
        q1 = d1 * d1 / (pn + cf.c08 * p1) if d1 > zero else zero
        cum_new = pn
        vi = min((r * cf.dt - (q1 - q0)) * cf.area, v)
    return vi, cum_new


@njit(inline="always", fastmath=True, error_model="numpy")
def _edge_face(kind, val, low, q0, qin, zc, hc, n2f, gdtd, cf):
    """Unlimited flux of an edge face of kind ``kind`` (K_*), value ``val`` (see Grid.evalue).

    ``low``: the ghost cell is on the low-index side (west, north edge; outflow q < 0),
    else on the high side (east, south; outflow q > 0). ``q0`` the face's flux, ``qin``
    the face one cell inside (old, limited), ``zc``/``hc`` the edge cell's bed and depth.

    K_DISCHARGE: ``val`` (signed; 0 where the edge cell is blocked). K_STAGE: the
    ordinary face with a ghost cell at level ``val`` over the edge cell's bed (in or
    out). K_NORMAL_DEPTH: the ordinary face with a ghost of the same depth on a bed
    ``val`` = S d lower (water-surface slope S: at steady state n² q² = h^(10/3) S),
    outflow only. K_FREE: the legacy ghost, dry and ``val`` lower, outflow only.
    K_ZERO_GRADIENT: ``qin``, outflow only. Outflows are limited by the edge cell's
    factor like every other; inflows by the ghost's (1). The q-centred average of stage and
    normal-depth faces is q0 itself (see below).
    """
    zero = cf.zero
    if kind == K_DISCHARGE:
        return val if zc < BIG else zero
    if kind == K_ZERO_GRADIENT:
        return min(qin, zero) if low else max(qin, zero)
    if kind == K_CLOSED:
        return zero
    if kind == K_STAGE:
        zg = zc
        hg = max(val - zc, zero)
    elif kind == K_NORMAL_DEPTH:
        zg = zc - val
        hg = hc
    else:  # K_FREE
        zg = zc - val
        hg = zero
    # the q-centred average of a stage or normal-depth face extrapolates the discharge linearly through
    # the ghost (its neighbour beyond = 2 q0 - qin): q_c = q0, so a steady flow with rain or a line source
    # has no dt-dependent offset at the edge. The legacy free edge keeps its average (neighbour q0).
    qg = q0 if kind != K_FREE else qin
    if low:
        q = _flux(q0, q0, qg, zg, zc, hg, hc, n2f, gdtd, cf)
        return q if kind == K_STAGE else min(q, zero)
    q = _flux(q0, qg, q0, zc, zg, hc, hg, n2f, gdtd, cf)
    return q if kind == K_STAGE else max(q, zero)


# --------------------------------------------------------------------------
# Set-up helpers
# --------------------------------------------------------------------------
def blocked_bed(z: np.ndarray, phi: np.ndarray) -> np.ndarray:
    """``z`` with blocked cells (``phi == 0``) raised to :data:`BIG` (same dtype)."""
    return np.ascontiguousarray(np.where(phi > 0, z, BIG), dtype=z.dtype)


def active_columns(phi: np.ndarray) -> np.ndarray:
    """(ny, 3) int64: per row the span [lo, hi) from the first to past the last open cell (lo = hi: none)
    and 1 when every cell of the span has porosity 1 (the update pass then does not read ``phi``)."""
    phi = np.asarray(phi)
    open_ = phi > 0
    ny, nx = open_.shape
    any_ = open_.any(axis=1)
    lo = np.where(any_, np.argmax(open_, axis=1), 0)
    hi = np.where(any_, nx - np.argmax(open_[:, ::-1], axis=1), 0)
    col = np.arange(nx)[None, :]
    span = (col >= lo[:, None]) & (col < hi[:, None])
    full = (any_ & np.all((phi == 1) | ~span, axis=1)).astype(np.int64)
    return np.ascontiguousarray(np.stack([lo, hi, full], axis=1).astype(np.int64))


def row_chunks(cols: np.ndarray, n: int) -> np.ndarray:
    """Row boundaries (int64, first 0, last ny) of at most ``n`` non-empty blocks of about equal open span."""
    ny = cols.shape[0]
    n = max(1, min(int(n), ny))
    w = (cols[:, 1] - cols[:, 0]).astype(np.float64) + 1.0  # an empty row costs a little too
    cum = np.concatenate([[0.0], np.cumsum(w)])
    targets = cum[-1] * np.arange(1, n) / n
    cuts = np.searchsorted(cum, targets)
    b = np.unique(np.concatenate([[0], np.clip(cuts, 1, ny - 1) if ny > 1 else [], [ny]]).astype(np.int64))
    return b


def bytes_per_cell_update(itemsize: int, *, gridded_rain=False, infiltration="none", drainage_grid=False,
                          inflow=False, level=False, phi_binary=True, phi_read=1.0, n2_grid=False,
                          fused=True) -> dict:
    """Memory traffic per open-span cell and step (STREAM counting: no write-allocate), by pass.

    ``fused``: the one-sweep step (:func:`fused_pass`, key ``fused_pass``), else
    the two passes of the same arithmetic (keys ``flux_pass``, ``update_pass``;
    the test reference tests/physics/flood_two_pass.py); ``total`` in both.

    ``phi_read`` is the share of cells in rows whose span is not all of
    porosity 1 (only those rows read ``phi`` in the update pass; see
    :func:`active_columns`); ``n2_grid`` a Manning field per cell (not one value);
    ``level`` True or the share of cells in rows holding fixed-level cells.
    """
    b = itemsize
    p1 = 7 * b + (0 if phi_binary else b)  # h, zb, qx, qy read; qx_s, qy_s, fp written; (phi)
    p1 += b if n2_grid else 0
    p2 = 9 * b + phi_read * b  # qx_s, qy_s, fp, h, hmax (phi) read; qx, qy, h, hmax written
    p2 += b if gridded_rain else 0
    p2 += b if drainage_grid else 0
    p2 += b if inflow else 0
    p2 += {"none": 0, "constant": b, "green_ampt": 4 * b, "scs_cn": 3 * b}.get(infiltration, 0)
    p2 += (1 + b) * float(level)  # level mask and bed in rows with fixed-level cells (share, or True)
    if fused:
        # as the update pass, with zb, qx, qy read instead of qx_s, qy_s, fp; phi once (every row when not binary)
        p = p2 - phi_read * b + (b if not phi_binary else phi_read * b)
        p += b if n2_grid else 0
        return {"fused_pass": p, "total": p}
    return {"flux_pass": p1, "update_pass": p2, "total": p1 + p2}


# --------------------------------------------------------------------------
# Unlimited fluxes and outflow factors of one row
# --------------------------------------------------------------------------
# Each row kernel below is an inline wrapper taking the namedtuples and a compiled ``*_impl``
# taking only the arrays it reads. A compiled callee raises and drops the reference count of
# every array it is passed (atomic NRT_incref/NRT_decref on counters all threads share), a
# namedtuple's arrays included: with whole Grid/Forcing/Outputs/UniformRows tuples, _update_row
# alone did 41 increfs on entry per row (d012e27: 24), and a step ran ~2 % slower at 1000x1000
# (~6 % at 250x250, 1 thread). The wrappers unpack the tuples in the caller, so the calls pass
# what they did before the arguments were grouped; _update_row_impl keeps d012e27's body and
# returns the row's volumes, and the compiled cell loops match d012e27's instruction for
# instruction.
@njit(inline="always")
def _x_faces(j, g, n2r, sj, lo, hi, cf):
    """Unlimited fluxes of the x faces of row j (open span [lo, hi), Manning row ``n2r``) into ``sj``."""
    _x_faces_impl(j, g.h, g.zb, g.qx, g.bc, n2r, sj, lo, hi, cf, g.ekind[0, j], g.evalue[0, j], g.ekind[1, j],
                  g.evalue[1, j])


@njit(fastmath=True, cache=True, error_model="numpy")
def _x_faces_impl(j, h, zb, qx, bc, n2r, sj, lo, hi, cf, kw, vw, ke, ve):
    # kw, vw / ke, ve: kind and value of the west / east edge face of the row (bc FACES)
    nx = h.shape[1]
    zero = cf.zero
    half = cf.half
    gdtd = cf.gdtdx
    bslope_dx = cf.bsx
    hj = h[j]
    zj = zb[j]
    qj = qx[j]
    # interior faces i in [lo+1, hi) between cells i-1 and i; the neighbouring face is a wall
    # when the cell beyond it is blocked (zb = BIG) or it is a closed edge
    a = lo + 1
    b = hi
    if a < b:
        # first face: its west neighbour may be the edge
        for i in range(a, min(a + 1, b)):
            q0 = qj[i]
            if i == 1:
                qa = qj[0] if bc[0] != CLOSED else q0
            else:
                qa = q0 if zj[i - 2] >= BIG else qj[i - 1]
            if i == nx - 1:
                qb = qj[nx] if bc[1] != CLOSED else q0
            else:
                qb = q0 if zj[i + 1] >= BIG else qj[i + 1]
            sj[i] = _flux(q0, qa, qb, zj[i - 1], zj[i], hj[i - 1], hj[i], half * (n2r[i - 1] + n2r[i]),
                          gdtd, cf)
        # bulk: 2 <= i <= nx - 2, on views shifted so that the loop index k starts at 0 and every
        # access is view[k] (indexing one row at i-2 .. i+1 compiles to gathers, ~5x slower)
        i0 = max(a + 1, 2)
        i1 = max(min(b, nx - 1), i0)
        hl = hj[i0 - 1:i1 - 1]
        hr = hj[i0:i1]
        zll = zj[i0 - 2:i1 - 2]
        zl = zj[i0 - 1:i1 - 1]
        zr = zj[i0:i1]
        zrr = zj[i0 + 1:i1 + 1]
        qw = qj[i0 - 1:i1 - 1]
        qc = qj[i0:i1]
        qe = qj[i0 + 1:i1 + 1]
        nl = n2r[i0 - 1:i1 - 1]
        nr = n2r[i0:i1]
        out = sj[i0:i1]
        for k in range(i1 - i0):
            q0 = qc[k]
            qa = q0 if zll[k] >= BIG else qw[k]
            qb = q0 if zrr[k] >= BIG else qe[k]
            out[k] = _flux(q0, qa, qb, zl[k], zr[k], hl[k], hr[k], half * (nl[k] + nr[k]), gdtd, cf)
        # last face when it touches the east edge (and was not the first)
        if b == nx and nx - 1 > a:
            i = nx - 1
            q0 = qj[i]
            qa = q0 if zj[i - 2] >= BIG else qj[i - 1]
            qb = qj[nx] if bc[1] != CLOSED else q0
            sj[i] = _flux(q0, qa, qb, zj[i - 1], zj[i], hj[i - 1], hj[i], half * (n2r[i - 1] + n2r[i]),
                          gdtd, cf)
    # west and east edges (ghost cell lower by bslope*dx, outflow only)
    if lo == 0 and hi > 0:
        q = zero
        if bc[0] == FREE:
            q = _flux(qj[0], qj[0], qj[1], zj[0] - bslope_dx, zj[0], zero, hj[0], n2r[0], gdtd, cf)
            q = min(q, zero)
        elif bc[0] == FACES:
            q = _edge_face(kw, vw, True, qj[0], qj[1], zj[0], hj[0], n2r[0], gdtd, cf)
        sj[0] = q
    if hi == nx and lo < hi:
        q = zero
        if bc[1] == FREE:
            q = _flux(qj[nx], qj[nx - 1], qj[nx], zj[nx - 1], zj[nx - 1] - bslope_dx, hj[nx - 1], zero,
                      n2r[nx - 1], gdtd, cf)
            q = max(q, zero)
        elif bc[1] == FACES:
            q = _edge_face(ke, ve, False, qj[nx], qj[nx - 1], zj[nx - 1], hj[nx - 1], n2r[nx - 1], gdtd, cf)
        sj[nx] = q


@njit(inline="always")
def _y_faces(j, g, n2a, n2b, out, a, b, cf):
    """Unlimited flux at the y faces between rows j-1 and j, columns [a, b), into ``out``."""
    _y_faces_impl(j, g.h, g.zb, g.qy, g.bc, n2a, n2b, out, a, b, cf)


@njit(fastmath=True, cache=True, error_model="numpy")
def _y_faces_impl(j, h, zb, qy, bc, n2a, n2b, out, a, b, cf):
    ny = h.shape[0]
    half = cf.half
    gdtd = cf.gdtdy
    hu = h[j - 1]
    hd = h[j]
    zu = zb[j - 1]
    zd = zb[j]
    q0r = qy[j]
    qar = qy[j - 1]
    qbr = qy[j + 1]
    # walls: row j-2 blocked (or closed north edge at j == 1); row j+1 blocked (or closed south edge)
    if j == 1:
        wa_edge = bc[2] == CLOSED
        za = zu  # unused
    else:
        wa_edge = False
        za = zb[j - 2]
    if j == ny - 1:
        wb_edge = bc[3] == CLOSED
        zbb = zd  # unused
    else:
        wb_edge = False
        zbb = zb[j + 1]
    # views from column a, so that the loop index starts at 0 (a loop over range(a, b) with a
    # runtime start keeps numba's negative-index wraparound and compiles to gathers)
    b = max(a, b)
    hu = hu[a:b]
    hd = hd[a:b]
    zu = zu[a:b]
    zd = zd[a:b]
    za = za[a:b]
    zbb = zbb[a:b]
    q0r = q0r[a:b]
    qar = qar[a:b]
    qbr = qbr[a:b]
    n2a = n2a[a:b]
    n2b = n2b[a:b]
    out = out[a:b]
    for i in range(b - a):
        q0 = q0r[i]
        # (at j == 1 / ny - 1 za / zbb are the face's own rows: a blocked cell there makes the
        # face itself dry, so the neighbour test cannot change its value)
        qa = q0 if (wa_edge or za[i] >= BIG) else qar[i]
        qb = q0 if (wb_edge or zbb[i] >= BIG) else qbr[i]
        out[i] = _flux(q0, qa, qb, zu[i], zd[i], hu[i], hd[i], half * (n2a[i] + n2b[i]), gdtd, cf)


@njit(inline="always")
def _top_edge(g, n2r, out, lo, hi, cf):
    """Unlimited outflow through the north edge (faces ``qy[0]``) of the span [lo, hi) into ``out``."""
    _top_edge_impl(g.h, g.zb, g.phi, g.qy, g.bc, n2r, out, lo, hi, cf, g.ekind[2], g.evalue[2])


@njit(fastmath=True, cache=True, error_model="numpy")
def _top_edge_impl(h, zb, phi, qy, bc, n2r, out, lo, hi, cf, ekr, evr):
    zero = cf.zero
    if bc[2] == FACES:
        for i in range(lo, hi):
            out[i] = _edge_face(ekr[i], evr[i], True, qy[0, i], qy[1, i], zb[0, i], h[0, i], n2r[i], cf.gdtdy, cf)
    elif bc[2] == FREE:
        for i in range(lo, hi):
            q = zero
            if phi[0, i] > 0:
                q = _flux(qy[0, i], qy[0, i], qy[1, i], zb[0, i] - cf.bsy, zb[0, i], zero, h[0, i], n2r[i],
                          cf.gdtdy, cf)
                q = min(q, zero)
            out[i] = q


@njit(inline="always")
def _bottom_edge(g, n2r, out, lo, hi, cf):
    """Unlimited outflow through the south edge (faces ``qy[ny]``) of the span [lo, hi) into ``out``."""
    _bottom_edge_impl(g.h, g.zb, g.phi, g.qy, g.bc, n2r, out, lo, hi, cf, g.ekind[3], g.evalue[3])


@njit(fastmath=True, cache=True, error_model="numpy")
def _bottom_edge_impl(h, zb, phi, qy, bc, n2r, out, lo, hi, cf, ekr, evr):
    ny = h.shape[0]
    zero = cf.zero
    if bc[3] == FACES:
        for i in range(lo, hi):
            out[i] = _edge_face(ekr[i], evr[i], False, qy[ny, i], qy[ny - 1, i], zb[ny - 1, i], h[ny - 1, i], n2r[i],
                                cf.gdtdy, cf)
    elif bc[3] == FREE:
        for i in range(lo, hi):
            q = zero
            if phi[ny - 1, i] > 0:
                q = _flux(qy[ny, i], qy[ny - 1, i], qy[ny, i], zb[ny - 1, i], zb[ny - 1, i] - cf.bsy,
                          h[ny - 1, i], zero, n2r[i], cf.gdtdy, cf)
                q = max(q, zero)
            out[i] = q


@njit(fastmath=True, cache=True, error_model="numpy")
def _limit_row(hrow, prow, sxrow, above, below, frow, lo, hi, cf):
    """Outflow factors min(1, phi dx dy h / out) of a row's span [lo, hi) into the padded ``frow``.

    The factor of cell i is ``frow[i + 1]``; ``out = dt (dy (max(qx_E, 0) - min(qx_W, 0))
    + dx (max(qy_S, 0) - min(qy_N, 0)))`` from the unlimited fluxes (``sxrow``: x faces,
    ``above``/``below``: y faces).
    """
    zero = cf.zero
    one = cf.one
    dtdy = cf.dtdy
    dtdx = cf.dtdx
    area = cf.area
    hi = max(lo, hi)
    hj = hrow[lo:hi]
    sw = sxrow[lo:hi]
    se = sxrow[lo + 1:hi + 1]
    ab = above[lo:hi]
    be = below[lo:hi]
    pr = prow[lo:hi]
    fr = frow[lo + 1:hi + 1]
    for i in range(hi - lo):  # from 0: see _y_faces
        out = (dtdy * (max(se[i], zero) - min(sw[i], zero))
               + dtdx * (max(be[i], zero) - min(ab[i], zero)))
        vol = pr[i] * area * hj[i]
        lim = out > vol
        fr[i] = vol / (out if lim else one) if lim else one


# --------------------------------------------------------------------------
# Limited fluxes, depths, sources, maxima and volumes of one row
# --------------------------------------------------------------------------
@njit(inline="always")
def _update_row(j, g, f, o, cf, u, sxj, sya, syb, fu, fc_, fd):
    """Row j of a step from its unlimited fluxes and outflow factors.

    ``sxj``: the row's x faces; ``sya``/``syb``: the y faces above and below;
    ``fu``/``fc_``/``fd``: the padded factor rows of rows j-1, j, j+1. Limited
    fluxes (each scaled by its donor's factor) go into ``qx``/``qy``. Per open
    cell, in order: flux divergence; rain (m/s over the whole cell area,
    routed to its open part, i.e. divided by porosity); inflow (m³/s);
    infiltration, then drainage (m/s capacity), each limited to the water
    present; fixed-level cells (``level_mask`` = 1, only looked at in rows
    with ``level_rows`` = 1) set to ``max(level - z, 0)``. Blocked cells
    (phi = 0) keep their depth and take no rain. ``o.acc[j]`` receives the
    step's volumes (m³) and the row's new largest depth (``ACC_*`` columns);
    ``hmax``/``tmax`` hold the running maximum and its time; ``tarr`` the
    first time the depth reached ``h_arrive`` (set when the maximum first
    crosses it, so NaN means never).

    Infiltration by ``f.infil_mode``: 0 none; 1 constant capacity ``p1``
    (m/s); 2 Green-Ampt, capacity ``p1 * (1 + p2 / F)`` with ``p1`` = Ks
    (m/s), ``p2`` = suction head x moisture deficit (m), ``F`` =
    ``infil_cum`` the depth infiltrated so far (floored at 1 mm); 3 SCS curve
    number on the rain: of the step's rain dP the part dP - dQ infiltrates,
    Q = (P - 0.2 S)² / (P + 0.8 S) for P > 0.2 S, ``p1`` = S (m),
    ``infil_cum`` = P, the cumulative rain (m).

    Inline (in the caller): picks the row's forcing rows (its uniform rows
    for one-value inputs), calls :func:`_update_row_impl` with only the
    arrays it reads and adds the volumes it returns to ``o.acc[j]``.
    """
    ny, nx = g.h.shape
    lo = g.cols[j, 0]
    hi = g.cols[j, 1]
    if lo >= hi:
        o.acc[j, ACC_ROW_MAX] = 0.0
    else:
        lmr = f.level_mask[j] if f.level_rows[j] else u.no_level
        v_rain, v_inf, v_drn, v_in, v_out, v_lvl, row_max = _update_row_impl(
            j, ny, nx, lo, hi, g.h, g.zb, g.phi, g.qx, g.qy, sxj, sya, syb, fu, fc_, fd, g.cols,
            _row(f.rain, u.rain, j), _row(f.infil_p1, u.infil_p1, j), _row(f.infil_p2, u.infil_p2, j),
            _row(f.drain_rate, u.drain_rate, j), _row(f.inflow, u.inflow, j),
            lmr, o.hmax, o.tmax, o.tarr, f.infil_cum, u.ones, f.infil_mode, cf, f.level_now)
        acc = o.acc[j]
        acc[ACC_RAIN] += v_rain
        acc[ACC_INFILTRATION] += v_inf
        acc[ACC_DRAINAGE] += v_drn
        acc[ACC_INFLOW] += v_in
        acc[ACC_OUTFLOW] += v_out
        acc[ACC_LEVEL_EXCHANGE] += v_lvl
        acc[ACC_ROW_MAX] = row_max


@njit(fastmath=True, cache=True, error_model="numpy")
def _update_row_impl(j, ny, nx, lo, hi, h, zb, phi, qx, qy, sxj, sya, syb, fu, fc_, fd, cols, rr, p1r, p2r, drr,
                     inr, lmr, hmax, tmax, tarr, infil_cum, ones, infil_mode, cf, levels):
    """:func:`_update_row` of an open row on its arrays (``rr`` .. ``lmr``: the row's forcing rows, ``levels``
    the level series at the step's end); returns the row's (rain, infiltration, drainage, inflow, boundary
    outflow, level exchange) volumes and max depth. Edge faces: water leaving counts as outflow, water
    entering (discharge and stage edges) as inflow."""
    zero = cf.zero
    one = cf.one
    dt = cf.dt
    dtdx = cf.dtdx
    dtdy = cf.dtdy
    dta = cf.dta
    area = cf.area
    t_new = cf.t_new
    h_arrive = cf.h_arrive
    hj = h[j]
    zj = zb[j]
    pj = ones if cols[j, 2] else phi[j]  # porosity 1 over the row's span: not read
    qxj = qx[j]
    qyj = qy[j]
    hmj = hmax[j]
    tmj = tmax[j]
    taj = tarr[j]
    icj = infil_cum[j]
    v_rain = 0.0
    v_inf = 0.0
    v_drn = 0.0
    v_in = 0.0
    v_lvl = 0.0
    row_max = zero
    # views from column lo: the loop index starts at 0 (see _y_faces)
    fcw = fc_[lo:hi]
    fcc = fc_[lo + 1:hi + 1]
    fce = fc_[lo + 2:hi + 2]
    fuc = fu[lo + 1:hi + 1]
    fdc = fd[lo + 1:hi + 1]
    sxw = sxj[lo:hi]
    sxe = sxj[lo + 1:hi + 1]
    syn = sya[lo:hi]
    sys_ = syb[lo:hi]
    v_qxj = qxj[lo:hi]
    v_qyj = qyj[lo:hi]
    v_pj = pj[lo:hi]
    v_hj = hj[lo:hi]
    v_rr = rr[lo:hi]
    v_inr = inr[lo:hi]
    v_p1r = p1r[lo:hi]
    v_p2r = p2r[lo:hi]
    v_icj = icj[lo:hi]
    v_drr = drr[lo:hi]
    v_lmr = lmr[lo:hi]
    v_zj = zj[lo:hi]
    v_hmj = hmj[lo:hi]
    v_tmj = tmj[lo:hi]
    v_taj = taj[lo:hi]
    for i in range(hi - lo):
        fc = fcc[i]
        qw = _lim(sxw[i], fcw[i], fc, zero)
        qe = _lim(sxe[i], fc, fce[i], zero)
        qn = _lim(syn[i], fuc[i], fc, zero)
        qs = _lim(sys_[i], fc, fdc[i], zero)
        v_qxj[i] = qw
        v_qyj[i] = qn
        p = v_pj[i]
        opn = p > zero
        pa = p * area
        h0 = v_hj[i]
        dvol = dtdy * (qw - qe) + dtdx * (qn - qs)
        r = v_rr[i]
        vr = r * dta
        vin = v_inr[i] * dt
        v = max(pa * h0 + dvol + vr + vin, zero)  # < 0 by round-off only
        vi = zero
        if infil_mode != 0:  # (the parameters and infil_cum are read only then: no traffic without infiltration)
            vi, cum_new = infiltration(infil_mode, v, r, v_p1r[i], v_p2r[i], v_icj[i], cf)
            if opn and infil_mode >= 2:
                v_icj[i] = cum_new
        v -= vi
        vd = min(v_drr[i] * dta, v)
        v -= vd
        hn = v / (pa if opn else one)
        if v_lmr[i]:
            target = max(levels[v_lmr[i] - 1] - v_zj[i], zero)
            v_lvl += (target - hn) * pa
            hn = target
        hn = hn if opn else h0
        v_hj[i] = hn
        if opn:
            v_rain += vr
            v_inf += vi
            v_drn += vd
            v_in += vin
            row_max = max(row_max, hn)
        hm = v_hmj[i]
        if hn > hm:
            v_hmj[i] = hn
            v_tmj[i] = t_new
            if hn >= h_arrive and hm < h_arrive:
                v_taj[i] = t_new
    # the face east of the row's last open cell
    qxj[hi] = _lim(sxj[hi], fc_[hi], fc_[hi + 1], zero)
    # edge faces: outflow (legacy free edges only ever flow out) or inflow (discharge, stage)
    v_out = 0.0
    if lo == 0:
        if qxj[0] > zero:
            v_in += dtdy * qxj[0]
        else:
            v_out -= dtdy * qxj[0]
    if hi == nx:
        if qxj[nx] < zero:
            v_in -= dtdy * qxj[nx]
        else:
            v_out += dtdy * qxj[nx]
    if j == 0:
        for i in range(lo, hi):
            if qyj[i] > zero:
                v_in += dtdx * qyj[i]
            else:
                v_out -= dtdx * qyj[i]
    if j == ny - 1:
        qyb = qy[ny]
        for i in range(lo, hi):
            qyb[i] = _lim(syb[i], fc_[i + 1], one, zero)
            if qyb[i] < zero:
                v_in -= dtdx * qyb[i]
            else:
                v_out += dtdx * qyb[i]
    return v_rain, v_inf, v_drn, v_in, v_out, v_lvl, row_max


# --------------------------------------------------------------------------
# The step: one sweep over each block of rows
# --------------------------------------------------------------------------
@njit(inline="always")
def _sx_row(k, sxrow, g, n2k, cf):
    """Unlimited x-face fluxes of row k into ``sxrow`` (the faces just outside an open span read as 0)."""
    _sx_row_impl(k, sxrow, g.h, g.zb, g.qx, g.cols, g.bc, n2k, cf, g.ekind[0, k], g.evalue[0, k], g.ekind[1, k],
                 g.evalue[1, k])


@njit(fastmath=True, cache=True, error_model="numpy")
def _sx_row_impl(k, sxrow, h, zb, qx, cols, bc, n2k, cf, kw, vw, ke, ve):
    nx = h.shape[1]
    lo = cols[k, 0]
    hi = cols[k, 1]
    if lo < hi:
        if lo > 0:
            sxrow[lo] = cf.zero
        if hi < nx:
            sxrow[hi] = cf.zero
        _x_faces_impl(k, h, zb, qx, bc, n2k, sxrow, lo, hi, cf, kw, vw, ke, ve)


@njit(inline="always")
def _sy_row(k, out, g, u, cf):
    """Unlimited fluxes of the y faces above row k (k = 0: north edge, k = ny: south edge) into ``out``;
    0 where the rows k-1 and k read it and there is no face flux."""
    _sy_row_impl(k, out, g.h, g.zb, g.n2, g.phi, g.qy, g.cols, g.bc, u.n2, cf, g.ekind, g.evalue)


@njit(fastmath=True, cache=True, error_model="numpy")
def _sy_row_impl(k, out, h, zb, n2, phi, qy, cols, bc, n2u, cf, ekind, evalue):
    ny = h.shape[0]
    zero = cf.zero
    if k == 0 or k == ny:
        jr = 0 if k == 0 else ny - 1
        lo = cols[jr, 0]
        hi = cols[jr, 1]
        n2r = _row(n2, n2u, jr)
        if bc[2 if k == 0 else 3] == CLOSED:
            for i in range(lo, hi):
                out[i] = zero
        elif k == 0:
            _top_edge_impl(h, zb, phi, qy, bc, n2r, out, lo, hi, cf, ekind[2], evalue[2])
        else:
            _bottom_edge_impl(h, zb, phi, qy, bc, n2r, out, lo, hi, cf, ekind[3], evalue[3])
        return
    l1 = cols[k - 1, 0]
    h1 = cols[k - 1, 1]
    l2 = cols[k, 0]
    h2 = cols[k, 1]
    a = max(l1, l2)
    b = max(a, min(h1, h2))
    for i in range(min(l1, l2), a):
        out[i] = zero
    for i in range(b, max(h1, h2)):
        out[i] = zero
    _y_faces_impl(k, h, zb, qy, bc, _row(n2, n2u, k - 1), _row(n2, n2u, k), out, a, b, cf)


@njit(inline="always")
def _fp_row(k, frow, g, u, sxrow, above, below, cf):
    """Outflow factors of row k into the padded row ``frow``; 1 where rows k-1..k+1 read it outside row k."""
    _fp_row_impl(k, frow, g.h[k], u.ones if (g.phi_binary or g.cols[k, 2]) else g.phi[k], g.cols, sxrow, above,
                 below, cf)


@njit(fastmath=True, cache=True, error_model="numpy")
def _fp_row_impl(k, frow, hrow, prow, cols, sxrow, above, below, cf):
    ny = cols.shape[0]
    nx = hrow.shape[0]
    one = cf.one
    lo = cols[k, 0]
    hi = cols[k, 1]
    ulo = lo
    uhi = hi + 2
    if k > 0:
        ulo = min(ulo, cols[k - 1, 0])
        uhi = max(uhi, cols[k - 1, 1] + 2)
    if k < ny - 1:
        ulo = min(ulo, cols[k + 1, 0])
        uhi = max(uhi, cols[k + 1, 1] + 2)
    uhi = min(uhi, nx + 2)
    for i in range(ulo, lo + 1):
        frow[i] = one
    for i in range(max(hi, lo) + 1, uhi):
        frow[i] = one
    _limit_row(hrow, prow, sxrow, above, below, frow, lo, hi, cf)


@njit(inline="always")
def _in_halo(k, c, j0, j1, nch, w):
    # row (or face) k is taken from the halo of the block's top (k < j0 + w) or bottom (k >= j1 - 1) boundary
    return (c > 0 and k < j0 + w) or (c < nch - 1 and k >= j1 - 1)


@njit(inline="always")
def _pick(k, c, j0, j1, nch, w, halo, roll, ones_p, ny):
    if k < 0 or k > ny - 1 + w - 1:  # fp rows -1 and ny: the padding (w = 2 for y faces: none)
        return ones_p
    if c > 0 and k < j0 + w:
        return halo[c - 1, k - j0 + 1]
    if c < nch - 1 and k >= j1 - 1:
        return halo[c, k - j1 + 1]
    return roll[c, k % roll.shape[1]]


@njit(parallel=True, cache=True, fastmath=True, nogil=True, error_model="numpy")
def fused_pass(g, blocks, f, o, cf, u):
    """One step (coefficients ``cf``, :func:`coefficients`) in one sweep per block of rows.

    Per block of rows [j0, j1), in order m = j0-1 .. j1: the unlimited fluxes
    of the y faces above row m+1 and of the x faces of row m, the outflow
    factors of row m (:func:`_limit_row`), then the update of row m-1
    (:func:`_update_row`). The unlimited fluxes and factors live in small
    rolling row buffers of the block (``blocks.roll_*``, see
    :class:`Blocks`): they never go through memory as whole fields. Rows near
    a block boundary b (the y faces above rows b-1, b, b+1, the factors of
    rows b-1, b) read rows of the neighbouring block, which updates them in
    place; they are computed first, from the state at the start of the step,
    into halo buffers (``blocks.halo_*``) read by both blocks, so a face
    between blocks gets the same limited flux on both sides. The same
    arithmetic in two passes over the whole grid (unlimited fluxes and
    factors of every cell, then the updates) is the reference this sweep is
    compared with bit for bit (tests/physics/flood_two_pass.py).
    """
    ny = g.h.shape[0]
    chunks = blocks.chunks
    hx = blocks.halo_x
    hy = blocks.halo_y
    hf = blocks.halo_f
    rx = blocks.roll_x
    ry = blocks.roll_y
    rf = blocks.roll_f
    ones = u.ones
    ones_p = u.ones_p
    nch = chunks.size - 1
    # halo of each boundary b, from the state at the start of the step
    for c in prange(nch - 1):
        b = chunks[c + 1]
        for r in range(2):
            k = b - 1 + r
            _sx_row(k, hx[c, r], g, _row(g.n2, u.n2, k), cf)
        for r in range(3):
            _sy_row(b - 1 + r, hy[c, r], g, u, cf)
        for r in range(2):
            _fp_row(b - 1 + r, hf[c, r], g, u, hx[c, r], hy[c, r], hy[c, r + 1], cf)
    for c in prange(nch):
        j0 = chunks[c]
        j1 = chunks[c + 1]
        for m in range(j0 - 1, j1 + 1):
            k = m + 1
            if k <= j1 and not _in_halo(k, c, j0, j1, nch, 2):
                _sy_row(k, ry[c, k % 4], g, u, cf)
            if m >= j0 and m < j1:
                sx = rx[c, m % 3]
                _sx_row(m, sx, g, _row(g.n2, u.n2, m), cf)
                if not _in_halo(m, c, j0, j1, nch, 1):
                    _fp_row(m, rf[c, m % 3], g, u, sx, _pick(m, c, j0, j1, nch, 2, hy, ry, ones, ny),
                            _pick(m + 1, c, j0, j1, nch, 2, hy, ry, ones, ny), cf)
            j = m - 1
            if j < j0:
                continue
            _update_row(j, g, f, o, cf, u, rx[c, j % 3],
                        _pick(j, c, j0, j1, nch, 2, hy, ry, ones, ny),
                        _pick(j + 1, c, j0, j1, nch, 2, hy, ry, ones, ny),
                        _pick(j - 1, c, j0, j1, nch, 1, hf, rf, ones_p, ny),
                        _pick(j, c, j0, j1, nch, 1, hf, rf, ones_p, ny),
                        _pick(j + 1, c, j0, j1, nch, 1, hf, rf, ones_p, ny))


# --------------------------------------------------------------------------
# Time stepping
# --------------------------------------------------------------------------
@njit(cache=True, nogil=True)
def _hydro_at(ts, qs, n, t):
    # Hydrograph.at: linear between samples, zero outside them
    if t < ts[0] or t > ts[n - 1]:
        return 0.0
    return np.interp(t, ts[:n], qs[:n])


@njit(cache=True, nogil=True)
def _series_max(ts, vs, t, t1):
    # highest value of a series (linear, held beyond its knots) over [t, t1]
    lv = max(np.interp(t, ts, vs), np.interp(t1, ts, vs))
    for k in range(ts.size):
        if ts[k] > t and ts[k] < t1:
            lv = max(lv, vs[k])
    return lv


@njit(cache=True, nogil=True)
def ahead_depth(h_max, t, f, p):
    """Largest depth the coming step must allow for: h_max, the held-level and stage series over [t, t+dt_max]."""
    hm = h_max
    t1 = t + p.dt_max
    if f.has_level:
        # highest level over the coming step: a rising tide must not be stepped over with the
        # step of the still-dry grid
        for s in range(f.level_n.size):
            hm = max(hm, _series_max(f.level_t[s, :f.level_n[s]], f.level_v[s, :f.level_n[s]], t, t1)
                     - f.z_level_min)
    for s in range(f.series_n.size):
        # stage edges and lines: the ghost cell's depth over the same window
        if f.series_zmin[s] < np.inf:
            hm = max(hm, _series_max(f.series_t[s, :f.series_n[s]], f.series_v[s, :f.series_n[s]], t, t1)
                     - f.series_zmin[s])
    return hm


@njit(cache=True, nogil=True)
def cfl_step(h_max, t, f, p):
    """Stable step (s) from ``t``: min(dt_max, alpha sqrt(theta) min(dx, dy) / sqrt(g h / phi_min)).

    ``h`` is the largest depth ``h_max`` or the highest fixed water level
    over [t, t + dt_max] (linear between samples) above the lowest level
    cell, at most ``p.h_cap``; dt_max when it is <= h_dry. See
    :meth:`physics.flood.FloodModel.cfl_dt` for the bound.
    """
    hm = min(ahead_depth(h_max, t, f, p), p.h_cap)
    if hm <= p.h_dry:
        return p.dt_max
    return min(p.dt_max, p.alpha * math.sqrt(p.theta) * min(p.dx, p.dy) / math.sqrt(G * hm / p.phi_min))


@njit(cache=True, nogil=True)
def begin_step(t, h_max, w, f, p):
    """The :class:`Step` from ``t`` (dt = min(CFL step, t_end - t, max(t_next - t, 1e-6))).

    Sets ``f.inflow`` to the mean of the hydrographs at t and t + dt (exact
    for piecewise-linear ones), plus each line-source cell's length times the
    mean of its series; ``f.level_now`` to each level series at t + dt
    (``Step.level``: the first's); the edge faces' values ``f.edge_value``:
    discharge faces (EDGE_MEAN) the signed mean of their series over the step
    (exact volume when no knot falls inside it: the model's ``t_next`` stops
    at every knot), stage faces (EDGE_END) the level at t + dt.
    """
    dt = min(cfl_step(h_max, t, f, p), w.t_end - t, max(w.t_next - t, 1e-6))
    t_new = t + dt
    for k in range(f.inflow_cells.shape[0]):
        f.inflow[f.inflow_cells[k, 0], f.inflow_cells[k, 1]] = 0.0
    for k in range(f.line_cells.shape[0]):
        f.inflow[f.line_cells[k, 0], f.line_cells[k, 1]] = 0.0
    for k in range(f.inflow_cells.shape[0]):
        n = f.inflow_n[k]
        f.inflow[f.inflow_cells[k, 0], f.inflow_cells[k, 1]] += 0.5 * (
            _hydro_at(f.inflow_t[k], f.inflow_q[k], n, t) + _hydro_at(f.inflow_t[k], f.inflow_q[k], n, t_new))
    level = 0.0
    if f.has_level:
        for s in range(f.level_n.size):
            n = f.level_n[s]
            f.level_now[s] = np.interp(t_new, f.level_t[s, :n], f.level_v[s, :n])
        level = np.interp(t_new, f.level_t[0, :f.level_n[0]], f.level_v[0, :f.level_n[0]])
    if f.series_n.size:
        v0 = values_at(t, f.series_t, f.series_v, f.series_n)
        v1 = values_at(t_new, f.series_t, f.series_v, f.series_n)
        for k in range(f.line_cells.shape[0]):
            s = f.line_series[k]
            f.inflow[f.line_cells[k, 0], f.line_cells[k, 1]] += f.line_length[k] * 0.5 * (v0[s] + v1[s])
        for e in range(4):
            sign = 1.0
            if e == 1 or e == 3:
                sign = -1.0
            for q in range(f.edge_mode.shape[1]):
                m = f.edge_mode[e, q]
                if m == EDGE_MEAN:
                    s = f.edge_series[e, q]
                    f.edge_value[e, q] = sign * 0.5 * (v0[s] + v1[s])
                elif m == EDGE_END:
                    f.edge_value[e, q] = v1[f.edge_series[e, q]]
    return Step(dt=dt, t_new=t_new, level=level)



@njit(cache=True, nogil=True)
def advance(g, blocks, f, o, p, w, F):
    """Steps from ``w.t`` while ``t < t_end - 1e-9`` and the piecewise-constant forcings hold (``t < t_next``).

    Each step: :func:`begin_step`, then :func:`fused_pass` in the float class
    ``F`` of the arrays (np.float64 or np.float32). At most ``w.max_steps``
    steps.

    Returns (t, steps taken, largest depth now).
    """
    u = uniform_rows(g, f)
    t = w.t
    h_max = w.h_max
    nsteps = 0
    while t < w.t_end - 1e-9 and (nsteps == 0 or t < w.t_next) and nsteps < w.max_steps:
        step = begin_step(t, h_max, w, f, p)
        fused_pass(g, blocks, f, o, coefficients(step, p, F), u)
        h_max = o.acc[:, ACC_ROW_MAX].max()
        t = step.t_new
        nsteps += 1
    return t, nsteps, h_max
