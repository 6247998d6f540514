"""Pure-numpy reference of one step of the local-inertial flood scheme (tests only).

Written from the formulas in the docstring of :mod:`physics._kernels.flood`
(Bates, Horritt & Fewtrell 2010; de Almeida et al. 2012), vectorised with
numpy and sharing no code with the numba kernels, so that the kernels can be
checked against it to round-off:

    h_f   = max(eta_L, eta_R) - max(z_L, z_R)
    q_c   = theta q + (1 - theta)/2 (q_left + q_right)
    r     = q_c - g h_f dt (eta_R - eta_L)/dx
    q_new = root of q (1 + b |q|) = r,  b = g dt n² / h_f^(7/3)   (0 if h_f <= h_dry)

where a neighbouring face that is a wall (closed edge, face of a blocked
cell) enters the average as q itself,

then each cell's outflow is scaled by min(1, storage / outflow volume) (the
donor's factor), and depths are advanced with rain, inflow, infiltration,
drainage and fixed-level cells in that order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

G = 9.80665
CLOSED, FREE = 0, 1


@dataclass
class State:
    """Everything one step reads and writes (float64 copies)."""

    h: np.ndarray
    qx: np.ndarray
    qy: np.ndarray
    infil_cum: np.ndarray
    hmax: np.ndarray
    tmax: np.ndarray
    tarr: np.ndarray


def _face(q0, qa, qb, zl, zr, hl, hr, n2f, dt, d, theta, h_dry, h_cap=np.inf):
    etal, etar = zl + hl, zr + hr
    hf = np.maximum(etal, etar) - np.maximum(zl, zr)
    wet = hf > h_dry
    hs = np.where(wet, hf, 1.0)
    qc = theta * q0 + 0.5 * (1.0 - theta) * (qa + qb)
    r = qc - G * np.minimum(hs, h_cap) * dt * (etar - etal) / d  # optional wave-depth cap
    b = G * dt * n2f / hs ** (7.0 / 3.0)
    # implicit friction: the root of b |q| q + q - r = 0 with the sign of r
    q = 2.0 * r / (1.0 + np.sqrt(1.0 + 4.0 * b * np.abs(r)))  # the stable form of the quadratic root
    return np.where(wet, q, 0.0)


def fluxes(h, z, n2, phi, qx, qy, dt, dx, dy, theta, h_dry, bc, bslope, h_cap=np.inf):
    """Unlimited new face fluxes (qx (ny, nx+1), qy (ny+1, nx)); ``bc`` = codes of W, E, N, S."""
    ny, nx = h.shape
    qxs = np.zeros_like(qx)
    qys = np.zeros_like(qy)
    open_ = phi > 0
    # walls: faces that can never carry flow (closed edges, faces of blocked cells); in the
    # q-centred average a wall neighbour is replaced by the face's own q (zero gradient)
    wall_x = ~(np.pad(open_, ((0, 0), (1, 0))) & np.pad(open_, ((0, 0), (0, 1))))
    wall_x[:, 0] = (bc[0] != FREE) | ~open_[:, 0]
    wall_x[:, -1] = (bc[1] != FREE) | ~open_[:, -1]
    wall_y = ~(np.pad(open_, ((1, 0), (0, 0))) & np.pad(open_, ((0, 1), (0, 0))))
    wall_y[0, :] = (bc[2] != FREE) | ~open_[0, :]
    wall_y[-1, :] = (bc[3] != FREE) | ~open_[-1, :]
    q0 = qx[:, 1:-1]
    qa = np.where(wall_x[:, :-2], q0, qx[:, :-2])
    qb = np.where(wall_x[:, 2:], q0, qx[:, 2:])
    q = _face(q0, qa, qb, z[:, :-1], z[:, 1:], h[:, :-1], h[:, 1:],
              0.5 * (n2[:, :-1] + n2[:, 1:]), dt, dx, theta, h_dry, h_cap)
    qxs[:, 1:-1] = np.where(wall_x[:, 1:-1], 0.0, q)
    q0 = qy[1:-1, :]
    qa = np.where(wall_y[:-2, :], q0, qy[:-2, :])
    qb = np.where(wall_y[2:, :], q0, qy[2:, :])
    q = _face(q0, qa, qb, z[:-1, :], z[1:, :], h[:-1, :], h[1:, :],
              0.5 * (n2[:-1, :] + n2[1:, :]), dt, dy, theta, h_dry, h_cap)
    qys[1:-1, :] = np.where(wall_y[1:-1, :], 0.0, q)
    zero = np.zeros(1)
    if bc[0] == FREE:  # west: ghost on the left, outflow (q < 0) only
        q = _face(qx[:, 0], qx[:, 0], qx[:, 1], z[:, 0] - bslope * dx, z[:, 0], zero, h[:, 0],
                  n2[:, 0], dt, dx, theta, h_dry, h_cap)
        qxs[:, 0] = np.where(open_[:, 0], np.minimum(q, 0.0), 0.0)
    if bc[1] == FREE:  # east
        q = _face(qx[:, -1], qx[:, -2], qx[:, -1], z[:, -1], z[:, -1] - bslope * dx, h[:, -1], zero,
                  n2[:, -1], dt, dx, theta, h_dry, h_cap)
        qxs[:, -1] = np.where(open_[:, -1], np.maximum(q, 0.0), 0.0)
    if bc[2] == FREE:  # north (row 0)
        q = _face(qy[0, :], qy[0, :], qy[1, :], z[0, :] - bslope * dy, z[0, :], zero, h[0, :],
                  n2[0, :], dt, dy, theta, h_dry, h_cap)
        qys[0, :] = np.where(open_[0, :], np.minimum(q, 0.0), 0.0)
    if bc[3] == FREE:  # south (last row)
        q = _face(qy[-1, :], qy[-2, :], qy[-1, :], z[-1, :], z[-1, :] - bslope * dy, h[-1, :], zero,
                  n2[-1, :], dt, dy, theta, h_dry, h_cap)
        qys[-1, :] = np.where(open_[-1, :], np.maximum(q, 0.0), 0.0)
    return qxs, qys


def limiter(h, phi, qxs, qys, dt, dx, dy):
    """Donor factor f = min(1, phi dx dy h / outflow volume) per cell."""
    out = dt * (dy * (np.maximum(qxs[:, 1:], 0) - np.minimum(qxs[:, :-1], 0))
                + dx * (np.maximum(qys[1:, :], 0) - np.minimum(qys[:-1, :], 0)))
    vol = phi * dx * dy * h
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(out <= vol, 1.0, np.where(out > 0, vol / out, 1.0))


def limit(qxs, qys, f):
    """Scale each face flux by the factor of the cell it drains (1 outside the grid)."""
    fp = np.pad(f, 1, constant_values=1.0)
    fl, fr = fp[1:-1, :-1], fp[1:-1, 1:]  # cells left / right of each x face
    fu, fd = fp[:-1, 1:-1], fp[1:, 1:-1]  # cells above / below each y face
    return np.where(qxs > 0, qxs * fl, qxs * fr), np.where(qys > 0, qys * fu, qys * fd)


def step(st: State, z, n2, phi, dt, dx, dy, *, t_new, theta=0.7, h_dry=1e-5, bc=(0, 0, 0, 0),
         bslope=1e-3, rain=0.0, infil_mode=0, ip1=0.0, ip2=0.0, drain=0.0, inflow=0.0,
         level_mask=None, level=0.0, h_arrive=0.15, h_cap=np.inf):
    """Advance ``st`` in place by one step; returns this step's volumes (m³).

    ``rain``, ``ip1``, ``ip2``, ``drain`` are m/s / m, scalars or (ny, nx);
    ``inflow`` m³/s per cell. Infiltration modes: 0 none, 1 constant
    capacity, 2 Green-Ampt, 3 SCS curve number (see the kernel docstring).
    """
    ny, nx = st.h.shape
    area = dx * dy
    qxs, qys = fluxes(st.h, z, n2, phi, st.qx, st.qy, dt, dx, dy, theta, h_dry, bc, bslope, h_cap)
    f = limiter(st.h, phi, qxs, qys, dt, dx, dy)
    qx, qy = limit(qxs, qys, f)
    open_ = phi > 0
    dvol = dt * (dy * (qx[:, :-1] - qx[:, 1:]) + dx * (qy[:-1, :] - qy[1:, :]))
    out = dt * (dy * (qx[:, -1].sum() - qx[:, 0].sum()) + dx * (qy[-1, :].sum() - qy[0, :].sum()))
    rain = np.broadcast_to(np.asarray(rain, dtype=float), (ny, nx))
    vr = rain * dt * area
    vin = np.broadcast_to(np.asarray(inflow, dtype=float), (ny, nx)) * dt
    v = np.maximum(phi * area * st.h + dvol + vr + vin, 0.0)
    ip1 = np.broadcast_to(np.asarray(ip1, dtype=float), (ny, nx))
    ip2 = np.broadcast_to(np.asarray(ip2, dtype=float), (ny, nx))
    if infil_mode == 0:
        vi = np.zeros((ny, nx))
    elif infil_mode == 1:
        vi = np.minimum(ip1 * dt * area, v)
    elif infil_mode == 2:
        vi = np.minimum(ip1 * (1.0 + ip2 / np.maximum(st.infil_cum, 1e-3)) * dt * area, v)
    else:
        s = ip1
        p0 = st.infil_cum
        p1 = p0 + rain * dt

        def runoff(p):
            return np.where(p > 0.2 * s, (p - 0.2 * s) ** 2 / (p + 0.8 * s), 0.0)

        vi = np.minimum((rain * dt - (runoff(p1) - runoff(p0))) * area, v)
    vi = np.where(open_, vi, 0.0)
    v = v - vi
    vd = np.where(open_, np.minimum(np.broadcast_to(drain, (ny, nx)) * dt * area, v), 0.0)
    v = v - vd
    with np.errstate(divide="ignore", invalid="ignore"):
        hn = np.where(open_, v / np.where(open_, phi * area, 1.0), 0.0)
    v_lvl = 0.0
    if level_mask is not None:
        m = level_mask.astype(bool) & open_
        target = np.maximum(level - z, 0.0)
        v_lvl = float(np.sum(((target - hn) * phi * area)[m]))
        hn = np.where(m, target, hn)
    # bookkeeping
    if infil_mode == 2:
        st.infil_cum += vi / area
    elif infil_mode == 3:
        st.infil_cum[open_] = (st.infil_cum + rain * dt)[open_]
    st.h[:] = np.where(open_, hn, st.h)
    st.qx[:] = qx
    st.qy[:] = qy
    up = open_ & (hn > st.hmax)
    st.hmax[up] = hn[up]
    st.tmax[up] = t_new
    arr = open_ & (hn >= h_arrive) & np.isnan(st.tarr)
    st.tarr[arr] = t_new
    return {"rain": float(vr[open_].sum()), "infiltration": float(vi.sum()), "drainage": float(vd.sum()),
            "inflow": float(vin[open_].sum()), "outflow": out, "level_exchange": v_lvl}
