"""Numba kernels of the local-inertial shallow-water scheme (pure: arrays in, arrays out).

Scheme: Bates, Horritt & Fewtrell (2010, J. Hydrol. 387:33) with the
q-centred numerical diffusion of de Almeida, Bates, Freer & Souvignet (2012,
WRR 48:W05528). For a face between cells L and R (unit discharge q, m²/s):

    h_f   = max(eta_L, eta_R) - max(z_L, z_R)                (flow depth at the face)
    q_c   = theta * q_t + (1 - theta)/2 * (q_{t,left} + q_{t,right})
    r     = q_c - g h_f dt (eta_R - eta_L)/dx
    q_new (1 + b |q_new|) = r,  b = g dt n² / h_f^(7/3)  =>  q_new = 2 r / (1 + sqrt(1 + 4 b |r|))

with q = 0 where h_f <= h_dry or either cell is blocked. In the q-centred
average a neighbouring face that is a wall (a closed edge, or a face of a
blocked cell) counts as q_t itself (zero gradient), not as 0.

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
``h``, ``z``, ``n2``, ``phi`` are (ny, nx) cell arrays (depth m, bed m,
Manning n² s²/m^(2/3), porosity 0-1 with 0 = blocked). ``qx`` is (ny, nx+1):
``qx[j, i]`` crosses the face between cells (j, i-1) and (j, i), positive
towards +i (east). ``qy`` is (ny+1, nx): ``qy[j, i]`` crosses the face
between (j-1, i) and (j, i), positive towards +j (south on a north-up grid).
Boundary faces are ``qx[:, 0]``, ``qx[:, nx]``, ``qy[0, :]``, ``qy[ny, :]``.

Each step is three passes, parallel over rows:
  1. :func:`fluxes` reads the current fluxes (``qx``, ``qy``) and writes the
     unlimited new ones into scratch arrays (``qx_s``, ``qy_s``);
  2. :func:`limiter` computes each cell's outflow-scaling factor;
  3. :func:`update_depth` writes the limited fluxes back into ``qx``/``qy``
     and advances depths with rain, infiltration, drainage, inflows and
     fixed-level (tide) cells, accumulating the volume balance per row.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

G = 9.80665

# Boundary codes per edge (west, east, north, south).
CLOSED = 0
FREE = 1


@njit(inline="always", fastmath=True)
def _face_flux(q0, qa, qb, zl, zr, hl, hr, n2f, dt, inv_d, theta, h_dry):
    etal = zl + hl
    etar = zr + hr
    hf = max(etal, etar) - max(zl, zr)
    if hf <= h_dry:
        return 0.0
    qc = theta * q0 + 0.5 * (1.0 - theta) * (qa + qb)
    r = qc - G * hf * dt * (etar - etal) * inv_d
    b = G * dt * n2f / (hf * hf * np.cbrt(hf))
    # friction implicit in the new discharge: q (1 + b |q|) = r, root written without cancellation
    return 2.0 * r / (1.0 + np.sqrt(1.0 + 4.0 * b * abs(r)))


@njit(parallel=True, cache=True, fastmath=True)
def fluxes(h, z, n2, phi, qx, qy, qx_s, qy_s, dt, dx, dy, theta, h_dry, bc, bslope):
    """Pass 1: unlimited local-inertial fluxes into ``qx_s``/``qy_s``.

    ``bc`` holds the boundary code of the west, east, north and south edges
    (0 closed, 1 free outflow); ``bslope`` the bed slope assumed beyond a
    free edge (a ghost cell lower by ``bslope * d``; outflow only).
    """
    ny, nx = h.shape
    inv_dx = 1.0 / dx
    inv_dy = 1.0 / dy
    for j in prange(ny):
        # x faces of row j
        for i in range(1, nx):
            if phi[j, i - 1] == 0.0 or phi[j, i] == 0.0:
                qx_s[j, i] = 0.0
                continue
            n2f = 0.5 * (n2[j, i - 1] + n2[j, i])
            # a neighbouring face that is a wall (closed edge, blocked cell) is replaced by this
            # face in the q-centred average: averaging with its q = 0 would damp this face by
            # (1 - theta)/2 per step, a loss that grows as dt shrinks
            qa = qx[j, i] if (bc[0] != FREE if i == 1 else phi[j, i - 2] == 0.0) else qx[j, i - 1]
            qb = qx[j, i] if (bc[1] != FREE if i == nx - 1 else phi[j, i + 1] == 0.0) else qx[j, i + 1]
            qx_s[j, i] = _face_flux(qx[j, i], qa, qb, z[j, i - 1], z[j, i],
                                    h[j, i - 1], h[j, i], n2f, dt, inv_dx, theta, h_dry)
        # west and east edges
        qx_s[j, 0] = 0.0
        if bc[0] == FREE and phi[j, 0] > 0.0:
            zg = z[j, 0] - bslope * dx
            q = _face_flux(qx[j, 0], qx[j, 0], qx[j, 1], zg, z[j, 0], 0.0, h[j, 0],
                           n2[j, 0], dt, inv_dx, theta, h_dry)
            qx_s[j, 0] = min(q, 0.0)
        qx_s[j, nx] = 0.0
        if bc[1] == FREE and phi[j, nx - 1] > 0.0:
            zg = z[j, nx - 1] - bslope * dx
            q = _face_flux(qx[j, nx], qx[j, nx - 1], qx[j, nx], z[j, nx - 1], zg, h[j, nx - 1], 0.0,
                           n2[j, nx - 1], dt, inv_dx, theta, h_dry)
            qx_s[j, nx] = max(q, 0.0)
        # y faces above row j (between rows j-1 and j)
        if j == 0:
            for i in range(nx):
                qy_s[0, i] = 0.0
                if bc[2] == FREE and phi[0, i] > 0.0:
                    zg = z[0, i] - bslope * dy
                    q = _face_flux(qy[0, i], qy[0, i], qy[1, i], zg, z[0, i], 0.0, h[0, i],
                                   n2[0, i], dt, inv_dy, theta, h_dry)
                    qy_s[0, i] = min(q, 0.0)
        else:
            for i in range(nx):
                if phi[j - 1, i] == 0.0 or phi[j, i] == 0.0:
                    qy_s[j, i] = 0.0
                    continue
                n2f = 0.5 * (n2[j - 1, i] + n2[j, i])
                qa = qy[j, i] if (bc[2] != FREE if j == 1 else phi[j - 2, i] == 0.0) else qy[j - 1, i]
                qb = qy[j, i] if (bc[3] != FREE if j == ny - 1 else phi[j + 1, i] == 0.0) else qy[j + 1, i]
                qy_s[j, i] = _face_flux(qy[j, i], qa, qb, z[j - 1, i], z[j, i],
                                        h[j - 1, i], h[j, i], n2f, dt, inv_dy, theta, h_dry)
        if j == ny - 1:
            for i in range(nx):
                qy_s[ny, i] = 0.0
                if bc[3] == FREE and phi[ny - 1, i] > 0.0:
                    zg = z[ny - 1, i] - bslope * dy
                    q = _face_flux(qy[ny, i], qy[ny - 1, i], qy[ny, i], z[ny - 1, i], zg,
                                   h[ny - 1, i], 0.0, n2[ny - 1, i], dt, inv_dy, theta, h_dry)
                    qy_s[ny, i] = max(q, 0.0)
    return qx_s, qy_s


@njit(parallel=True, cache=True, fastmath=True)
def limiter(h, phi, qx_s, qy_s, f, dt, dx, dy):
    """Pass 2: per-cell factor (0-1] so that a cell's outflow over ``dt`` never exceeds its water.

    ``out = dt * (dy * (max(qx_E, 0) - min(qx_W, 0)) + dx * (max(qy_S, 0) - min(qy_N, 0)))``;
    ``f = min(1, phi * dx * dy * h / out)``.
    """
    ny, nx = h.shape
    area = dx * dy
    for j in prange(ny):
        for i in range(nx):
            out = dt * (dy * (max(qx_s[j, i + 1], 0.0) - min(qx_s[j, i], 0.0))
                        + dx * (max(qy_s[j + 1, i], 0.0) - min(qy_s[j, i], 0.0)))
            vol = phi[j, i] * area * h[j, i]
            f[j, i] = 1.0 if out <= vol else (vol / out if out > 0.0 else 1.0)
    return f


@njit(inline="always")
def _limited(q, f_left, f_right):
    # A face's flux is scaled by the factor of the cell it drains.
    return q * f_left if q > 0.0 else q * f_right


@njit(parallel=True, cache=True, fastmath=False)
def update_depth(h, z, phi, qx, qy, qx_s, qy_s, f, dt, dx, dy, t_new,
                 rain, infil_mode, ip1, ip2, infil_cum, drain_rate, inflow, level_mask, level,
                 hmax, tmax, tarr, h_arrive, row_acc):
    """Pass 3: limited fluxes into ``qx``/``qy``; depths advanced; maxima and volumes tracked.

    Per cell, in order: flux divergence; rain (``rain`` m/s over the whole
    cell area, routed to its open part, i.e. divided by porosity);
    ``inflow`` (m³/s); infiltration, then drainage (m/s capacity), each
    limited to the water present; fixed-level cells (``level_mask`` = 1)
    set to ``max(level - z, 0)``. ``row_acc[j, k]`` receives this step's
    volumes (m³) for row j: 0 rain, 1 infiltration, 2 drainage, 3 inflow,
    4 boundary outflow (edges), 5 level-cell exchange (+ added),
    6 max depth of the row (m) for the next time step.
    Infiltration by ``infil_mode``: 0 none; 1 constant capacity ``ip1``
    (m/s); 2 Green-Ampt, capacity ``ip1 * (1 + ip2 / F)`` with ``ip1`` = Ks
    (m/s), ``ip2`` = suction head x moisture deficit (m), ``F`` =
    ``infil_cum`` the depth infiltrated so far (floored at 1 mm); 3 SCS curve
    number on the rain: of the step's rain dP the part dP - dQ infiltrates,
    Q = (P - 0.2 S)² / (P + 0.8 S) for P > 0.2 S, ``ip1`` = S (m),
    ``infil_cum`` = P, the cumulative rain (m).
    ``rain``, ``ip1``, ``ip2`` and ``drain_rate`` are arrays of shape
    (ny, nx), or (1, 1) to apply one value everywhere.
    """
    ny, nx = h.shape
    area = dx * dy
    rain_uniform = rain.shape[0] == 1
    p1_uniform = ip1.shape[0] == 1
    p2_uniform = ip2.shape[0] == 1
    drn_uniform = drain_rate.shape[0] == 1
    for j in prange(ny):
        # write back limited fluxes owned by row j: x faces of the row, y face above it
        for i in range(nx + 1):
            fl = f[j, i - 1] if i > 0 else 1.0
            fr = f[j, i] if i < nx else 1.0
            qx[j, i] = _limited(qx_s[j, i], fl, fr)
        for i in range(nx):
            fu = f[j - 1, i] if j > 0 else 1.0
            qy[j, i] = _limited(qy_s[j, i], fu, f[j, i])
        if j == ny - 1:
            for i in range(nx):
                qy[ny, i] = _limited(qy_s[ny, i], f[ny - 1, i], 1.0)
        v_rain = 0.0
        v_inf = 0.0
        v_drn = 0.0
        v_in = 0.0
        v_out = 0.0
        v_lvl = 0.0
        row_max = 0.0
        for i in range(nx):
            p = phi[j, i]
            if p == 0.0:
                continue
            fl = f[j, i - 1] if i > 0 else 1.0
            fr = f[j, i + 1] if i < nx - 1 else 1.0
            fu = f[j - 1, i] if j > 0 else 1.0
            fd = f[j + 1, i] if j < ny - 1 else 1.0
            fc = f[j, i]
            qw = _limited(qx_s[j, i], fl, fc)
            qe = _limited(qx_s[j, i + 1], fc, fr)
            qn = _limited(qy_s[j, i], fu, fc)
            qs = _limited(qy_s[j + 1, i], fc, fd)
            dvol = dt * (dy * (qw - qe) + dx * (qn - qs))
            if i == 0:
                v_out -= dt * dy * qw
            if i == nx - 1:
                v_out += dt * dy * qe
            if j == 0:
                v_out -= dt * dx * qn
            if j == ny - 1:
                v_out += dt * dx * qs
            r = rain[0, 0] if rain_uniform else rain[j, i]
            vr = r * dt * area
            vin = inflow[j, i] * dt
            v = p * area * h[j, i] + dvol + vr + vin
            if v < 0.0:  # round-off only: the limiter makes outflow <= storage
                v = 0.0
            vi = 0.0
            if infil_mode == 1:
                c1 = ip1[0, 0] if p1_uniform else ip1[j, i]
                vi = min(c1 * dt * area, v)
            elif infil_mode == 2:
                c1 = ip1[0, 0] if p1_uniform else ip1[j, i]
                c2 = ip2[0, 0] if p2_uniform else ip2[j, i]
                vi = min(c1 * (1.0 + c2 / max(infil_cum[j, i], 1e-3)) * dt * area, v)
                infil_cum[j, i] += vi / area
            elif infil_mode == 3:
                s_ = ip1[0, 0] if p1_uniform else ip1[j, i]
                p0 = infil_cum[j, i]
                p1 = p0 + r * dt
                q0 = (p0 - 0.2 * s_) ** 2 / (p0 + 0.8 * s_) if p0 > 0.2 * s_ else 0.0
                q1 = (p1 - 0.2 * s_) ** 2 / (p1 + 0.8 * s_) if p1 > 0.2 * s_ else 0.0
                infil_cum[j, i] = p1
                vi = min((r * dt - (q1 - q0)) * area, v)
            v -= vi
            cd = drain_rate[0, 0] if drn_uniform else drain_rate[j, i]
            vd = min(cd * dt * area, v)
            v -= vd
            hn = v / (p * area)
            if level_mask[j, i]:
                target = level - z[j, i]
                if target < 0.0:
                    target = 0.0
                v_lvl += (target - hn) * p * area
                hn = target
            h[j, i] = hn
            v_rain += vr
            v_inf += vi
            v_drn += vd
            v_in += vin
            if hn > row_max:
                row_max = hn
            if hn > hmax[j, i]:
                hmax[j, i] = hn
                tmax[j, i] = t_new
            if hn >= h_arrive and np.isnan(tarr[j, i]):
                tarr[j, i] = t_new
        row_acc[j, 0] += v_rain
        row_acc[j, 1] += v_inf
        row_acc[j, 2] += v_drn
        row_acc[j, 3] += v_in
        row_acc[j, 4] += v_out
        row_acc[j, 5] += v_lvl
        row_acc[j, 6] = row_max
    return h


@njit(parallel=True, cache=True)
def max_depth(h):
    """Largest depth of the grid (for the CFL time step)."""
    ny, nx = h.shape
    rows = np.zeros(ny)
    for j in prange(ny):
        m = 0.0
        for i in range(nx):
            if h[j, i] > m:
                m = h[j, i]
        rows[j] = m
    return rows.max()
