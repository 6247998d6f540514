"""Pure-numpy reference of one first-order step of the finite-volume flood scheme (tests only).

Written from the formulas in the docstring of :mod:`physics._kernels.flood_fv`
and vectorised over the whole grid with padded arrays; it shares no code with
the numba kernels. Per face between L and R (normal velocity u, tangential v):

    z_f = max(z_L, z_R),  h*_L = max(0, h_L + (z_L - z_f)),  h*_R likewise   (Audusse et al. 2004)
    S_L = min(u_L - c_L, u_R - c_R), S_R = max(u_L + c_L, u_R + c_R),  c = sqrt(g h*)
    S_L = u_R - 2 c_R if h*_L = 0;  S_R = u_L + 2 c_R if h*_R = 0          (Toro 2001 §10.5)
    F = HLL(U*_L, U*_R) for (h, h u_n);  F_t = F_h v_upwind
    one side dry (h*_R = 0 < h*_L): the exact dry-bed Riemann flux at x/t = 0 (Toro 2001 §5.3):
        F(U*_L) if u_L >= c_L, else h u = c³/g, h u² + g h²/2 = 3 c⁴/(2 g) with c = max(0, (u_L + 2 c_L)/3);
        h*_L = 0 < h*_R: the mirror image (u -> -u, F_h -> -F_h)
    normal momentum for L: F_n + g/2 (h_L² - h*_L²), for R: F_n + g/2 (h_R² - h*_R²)

a blocked neighbour (bed BIG) replaced by the mirror of the open side; edges
closed (mirror ghosts) or free (a dry ghost ``boundary_slope`` dx lower,
outflow only). Then per open cell: the flux divergence (storage phi), rain,
inflow, infiltration (constant capacity only here), drainage, losses taking
momentum with the water, implicit Manning friction
q = 2 q* / (1 + sqrt(1 + 4 g dt n² |q*| / h^(7/3))), velocities 0 below h_dry.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

G = 9.80665
BIG = 1e30


@dataclass
class State:
    """Everything one step reads and writes (float64 copies)."""

    h: np.ndarray
    hu: np.ndarray
    hv: np.ndarray


def _hll(hl, ul, vl, zl, hr, ur, vr, zr):
    """Face fluxes (mass, normal momentum for L, for R, tangential momentum) of arrays of faces."""
    wl = zl >= BIG
    wr = zr >= BIG
    h_l = np.where(wl, hr, hl)
    u_l = np.where(wl, -ur, ul)
    v_l = np.where(wl, vr, vl)
    z_l = np.where(wl, zr, zl)
    h_r = np.where(wr, hl, hr)
    u_r = np.where(wr, -ul, ur)
    v_r = np.where(wr, vl, vr)
    z_r = np.where(wr, zl, zr)
    zf = np.maximum(z_l, z_r)
    hls = np.maximum(0.0, h_l + (z_l - zf))
    hrs = np.maximum(0.0, h_r + (z_r - zf))
    cl = np.sqrt(G * hls)
    cr = np.sqrt(G * hrs)
    sl = np.where(hls > 0, np.minimum(u_l - cl, u_r - cr), u_r - 2 * cr)
    sr = np.where(hrs > 0, np.maximum(u_l + cl, u_r + cr), u_l + 2 * cl)
    ql, qr = hls * u_l, hrs * u_r
    fnl = ql * u_l + 0.5 * G * hls**2
    fnr = qr * u_r + 0.5 * G * hrs**2
    den = np.where(sr - sl > 0, sr - sl, 1.0)
    fh = np.where(sl >= 0, ql, np.where(sr <= 0, qr, (sr * ql - sl * qr + sl * sr * (hrs - hls)) / den))
    fn = np.where(sl >= 0, fnl, np.where(sr <= 0, fnr, (sr * fnl - sl * fnr + sl * sr * (qr - ql)) / den))
    # one side dry: the exact flux of the dry-bed Riemann problem at the face (Toro 2001 §5.3)
    dry_r = (hrs <= 0) & (hls > 0)
    dry_l = (hls <= 0) & (hrs > 0)
    csr = np.maximum(0.0, (u_l + 2.0 * cl) * (1.0 / 3.0))
    hsr = csr * csr * (1.0 / G)
    sup_r = u_l >= cl
    csl = np.maximum(0.0, ((-u_r) + 2.0 * cr) * (1.0 / 3.0))
    hsl = csl * csl * (1.0 / G)
    sup_l = (-u_r) >= cr
    fh = np.where(dry_r, np.where(sup_r, ql, hsr * csr), np.where(dry_l, np.where(sup_l, qr, -(hsl * csl)), fh))
    fn = np.where(dry_r, np.where(sup_r, fnl, hsr * csr * csr + 0.5 * G * hsr**2),
                  np.where(dry_l, np.where(sup_l, fnr, hsl * csl * csl + 0.5 * G * hsl**2), fn))
    ft = fh * np.where(fh > 0, v_l, v_r)
    both = wl & wr
    out = (fh, fn + 0.5 * G * (h_l**2 - hls**2), fn + 0.5 * G * (h_r**2 - hrs**2), ft)
    return tuple(np.where(both, 0.0, a) for a in out)


def step(s: State, z, phi, n2, *, dx, dy, dt, h_dry=1e-5, rain=0.0, inflow=0.0, infil_rate=0.0,
         drain_rate=0.0, free=(False, False, False, False), boundary_slope=1e-3) -> tuple[State, dict]:
    """One first-order step; returns the new state and the step's volumes (rain, infiltration, drainage,
    inflow, outflow). ``z`` is the bed with blocked cells at BIG; ``free``: west, east, north, south."""
    h, hu, hv = s.h, s.hu, s.hv
    wet = h > h_dry
    u = np.where(wet, hu / np.where(wet, h, 1.0), 0.0)
    v = np.where(wet, hv / np.where(wet, h, 1.0), 0.0)

    def ghosts(hc, un, ut, zc, is_free, drop):
        # mirror (closed) or a dry cell `drop` lower (free; blocked edge cells stay mirrored)
        if is_free:
            open_ = zc < BIG
            return (np.where(open_, 0.0, hc), np.where(open_, 0.0, -un), np.where(open_, 0.0, ut),
                    np.where(open_, zc - drop, zc), open_)
        return hc, -un, ut, zc, np.zeros(hc.shape, bool)

    # x faces: pad with west/east ghosts
    gw = ghosts(h[:, 0], u[:, 0], v[:, 0], z[:, 0], free[0], boundary_slope * dx)
    ge = ghosts(h[:, -1], u[:, -1], v[:, -1], z[:, -1], free[1], boundary_slope * dx)
    hp = np.column_stack([gw[0], h, ge[0]])
    up = np.column_stack([gw[1], u, ge[1]])
    vp = np.column_stack([gw[2], v, ge[2]])
    zp = np.column_stack([gw[3], z, ge[3]])
    fx = list(_hll(hp[:, :-1], up[:, :-1], vp[:, :-1], zp[:, :-1], hp[:, 1:], up[:, 1:], vp[:, 1:], zp[:, 1:]))
    # outflow-only free edges: an inflow there is replaced by the wall
    for col, g_, sign in ((0, gw, -1.0), (-1, ge, 1.0)):
        bad = g_[4] & (sign * fx[0][:, col] < 0)
        if bad.any():
            c = 0 if col == 0 else -1
            wall = _hll(h[:, c], -u[:, c] if col == 0 else u[:, c], v[:, c], z[:, c], h[:, c],
                        u[:, c] if col == 0 else -u[:, c], v[:, c], z[:, c])
            for k in range(4):
                fx[k][:, col] = np.where(bad, wall[k], fx[k][:, col])
    # y faces: normal velocity v, tangential u
    gn = ghosts(h[0], v[0], u[0], z[0], free[2], boundary_slope * dy)
    gs = ghosts(h[-1], v[-1], u[-1], z[-1], free[3], boundary_slope * dy)
    hq = np.vstack([gn[0], h, gs[0]])
    vq = np.vstack([gn[1], v, gs[1]])
    uq = np.vstack([gn[2], u, gs[2]])
    zq = np.vstack([gn[3], z, gs[3]])
    fy = list(_hll(hq[:-1], vq[:-1], uq[:-1], zq[:-1], hq[1:], vq[1:], uq[1:], zq[1:]))
    for row, g_, sign in ((0, gn, -1.0), (-1, gs, 1.0)):
        bad = g_[4] & (sign * fy[0][row] < 0)
        if bad.any():
            r = 0 if row == 0 else -1
            wall = _hll(h[r], -v[r] if row == 0 else v[r], u[r], z[r], h[r], v[r] if row == 0 else -v[r], u[r], z[r])
            for k in range(4):
                fy[k][row] = np.where(bad, wall[k], fy[k][row])

    new, vols = update(s, fx, fy, phi, n2, dx=dx, dy=dy, dt=dt, h_dry=h_dry, rain=rain, inflow=inflow,
                       infil_rate=infil_rate, drain_rate=drain_rate)
    vols["outflow"] = float(-dt * dy * fx[0][:, 0].sum() + dt * dy * fx[0][:, -1].sum()
                            - dt * dx * fy[0][0].sum() + dt * dx * fy[0][-1].sum())
    return new, vols


def update(s: State, fx, fy, phi, n2, *, dx, dy, dt, h_dry=1e-5, rain=0.0, inflow=0.0, infil_rate=0.0,
           drain_rate=0.0) -> tuple[State, dict]:
    """The cells' update from face fluxes ``fx`` (4, ny, nx+1) and ``fy`` (4, ny+1, nx): flux divergence,
    then rain, inflow, infiltration, drainage and implicit friction (the volumes without the outflow)."""
    h, hu, hv = s.h, s.hu, s.hv
    opn = phi > 0
    area = dx * dy
    pa = phi * area
    dvol = dt * dy * (fx[0][:, :-1] - fx[0][:, 1:]) + dt * dx * (fy[0][:-1] - fy[0][1:])
    dmu = dt / dx * (fx[2][:, :-1] - fx[1][:, 1:]) + dt / dy * (fy[3][:-1] - fy[3][1:])
    dmv = dt / dx * (fx[3][:, :-1] - fx[3][:, 1:]) + dt / dy * (fy[2][:-1] - fy[1][1:])
    ip = 1.0 / np.where(opn, phi, 1.0)
    mu = hu + dmu * ip
    mv = hv + dmv * ip
    vr = rain * dt * area * np.ones_like(h)
    vin = inflow * dt * np.ones_like(h)
    vol = np.maximum(pa * h + dvol + vr + vin, 0.0)
    vb = vol
    vi = np.minimum(infil_rate * dt * area, vol)
    vol = vol - vi
    vd = np.minimum(drain_rate * dt * area, vol)
    vol = vol - vd
    sc = np.where(vol < vb, vol / np.where(vb > 0, vb, 1.0), 1.0)
    mu, mv = mu * sc, mv * sc
    hn = vol / np.where(opn, pa, 1.0)
    wet = hn > h_dry
    hs = np.where(wet, hn, 1.0)
    qm = np.hypot(mu, mv)
    b = G * dt * n2 * hs ** (-7.0 / 3.0) * qm
    fac = 2.0 / (1.0 + np.sqrt(1.0 + 4.0 * b))
    mu = np.where(wet, mu * fac, 0.0)
    mv = np.where(wet, mv * fac, 0.0)
    new = State(h=np.where(opn, hn, h), hu=np.where(opn, mu, hu), hv=np.where(opn, mv, hv))
    vols = {"rain": float(vr[opn].sum()), "infiltration": float(vi[opn].sum()), "drainage": float(vd[opn].sum()),
            "inflow": float(vin[opn].sum())}
    return new, vols
