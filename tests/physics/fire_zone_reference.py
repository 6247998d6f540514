"""Pure-numpy reference of one step of the two-zone fire model (tests only).

Written from the equations in the docstring of :mod:`physics._kernels.fire_zone`
and sharing no code with the numba kernels (only the column constants of the
array layouts), so that the kernels can be checked against it: layer
properties vectorised; each wall vent's flow summed over slabs cut at the
sill, soffit, interfaces and the heights where Δp crosses −δ, 0 and +δ, with
the slab integral of √|Δp| written as (2/3)·(|x2|^1.5 − |x1|^1.5)/(x2 − x1);
the Newton system assembled as a dense matrix and solved by
``numpy.linalg.solve`` instead of the kernel's sparse LDLᵀ.
"""

from __future__ import annotations

import math
from functools import partial

import numpy as np
from scipy.optimize import brentq

from physics._kernels import fire_zone as K

HUGGETT = 13.1e6


def props(state, geom, par):
    """Dict of per-compartment arrays: p, tu, tl, ru, rl, zi, hasu, hasl, vu."""
    r, cp = par[K.P_R], par[K.P_CP]
    cv = cp - r
    gm1 = r / cv
    mu, ml = state[:, K.MU], state[:, K.ML]
    vol = geom[:, K.G_VOL]
    p = gm1 * (state[:, K.UU] + state[:, K.UL]) / vol
    tiny = 1e-9 * (mu + ml)
    hasu, hasl = mu > tiny, ml > tiny
    with np.errstate(divide="ignore", invalid="ignore"):
        tu = np.where(hasu, state[:, K.UU] / (cv * mu), 0.0)
        tl = np.where(hasl, state[:, K.UL] / (cv * ml), 0.0)
    tu = np.where(hasu, tu, tl)
    tl = np.where(hasl, tl, tu)
    vu = np.where(hasu, gm1 * state[:, K.UU] / p, 0.0)
    vu = np.where(hasl, np.clip(vu, 0.0, vol), vol)
    return {"p": p, "tu": tu, "tl": tl, "ru": p / (r * tu), "rl": p / (r * tl),
            "zi": np.where(vu > 0, geom[:, K.G_BASE] + (vol - vu) / geom[:, K.G_AREA], geom[:, K.G_BASE] + geom[:, K.G_H]), "hasu": hasu, "hasl": hasl, "vu": vu}


def p_out(z, par):
    return par[K.P_P0] * math.exp(-par[K.P_G] * z / (par[K.P_R] * par[K.P_TOUT]))


def pressure_at(i, z, pf, geom, pr, par):
    """Hydrostatic pressure at ``z`` in compartment ``i`` (outside for i < 0)."""
    if i < 0:
        return p_out(z, par)
    base, zi, g = geom[i, K.G_BASE], pr["zi"][i], par[K.P_G]
    below = min(z, zi) - base
    above = max(z - zi, 0.0)
    return pf[i] - g * pr["rl"][i] * below - g * pr["ru"][i] * above


def donor(i, z, pr, par):
    """(density, temperature, layer 0 upper / 1 lower) of side ``i`` at height ``z``."""
    if i < 0:
        t = par[K.P_TOUT]
        return p_out(z, par) / (par[K.P_R] * t), t, 1
    if z > pr["zi"][i]:
        return pr["ru"][i], pr["tu"][i], 0
    return pr["rl"][i], pr["tl"][i], 1


def slab_flow(x1, x2, h, coef, delta):
    """(signed flow, d flow/dΔp) of a slab where Δp goes linearly x1 → x2 within one regime."""
    if abs(x1 + x2) <= 2 * delta:
        return coef * h * 0.5 * (x1 + x2) / math.sqrt(delta), coef * h / math.sqrt(delta)
    a1, a2 = abs(x1), abs(x2)
    sign = 1.0 if x1 + x2 > 0 else -1.0
    if abs(a2 - a1) < 1e-5 * max(a1, a2):  # the difference quotients below would cancel: mean value
        am = 0.5 * (a1 + a2)
        f, d = coef * h * math.sqrt(am), coef * h / (2 * math.sqrt(am))
    else:
        f = coef * h * (2.0 / 3.0) * (a2 ** 1.5 - a1 ** 1.5) / (a2 - a1)
        d = coef * h * (math.sqrt(a2) - math.sqrt(a1)) / (a2 - a1)
    return sign * f, d


def wall_vent_flows(v, pf, vent, vidx, geom, pr, par, teff):
    """(channels (4,), enthalpy a→b W, Jacobian weight) of wall vent ``v``."""
    ch = np.zeros(4)
    a, b = int(vidx[v, 0]), int(vidx[v, 1])
    zb, zt = vent[v, K.V_BOT], vent[v, K.V_TOP]
    width = vent[v, K.V_W] * vent[v, K.V_OPEN]
    if width <= 0:
        return ch, 0.0, 0.0
    delta, cp = par[K.P_DELTA], par[K.P_CP]
    levels = sorted({zb, zt, *[pr["zi"][s] for s in (a, b) if s >= 0 and zb < pr["zi"][s] < zt]})
    hsum = wsum = 0.0
    for z1, z2 in zip(levels[:-1], levels[1:], strict=True):
        d1 = pressure_at(a, z1, pf, geom, pr, par) - pressure_at(b, z1, pf, geom, pr, par)
        d2 = pressure_at(a, z2, pf, geom, pr, par) - pressure_at(b, z2, pf, geom, pr, par)
        ts = [0.0, 1.0]
        if d2 != d1:
            ts += [t for t in ((c - d1) / (d2 - d1) for c in (-delta, 0.0, delta)) if 0 < t < 1]
        ts = sorted(ts)
        zm = 0.5 * (z1 + z2)
        for ta, tb in zip(ts[:-1], ts[1:], strict=True):
            if tb <= ta:
                continue
            x1, x2 = d1 + (d2 - d1) * ta, d1 + (d2 - d1) * tb
            forward = x1 + x2 >= 0
            side = a if forward else b
            rho, t_d, layer = donor(side, zm, pr, par)
            t_d = teff[side, layer] if side >= 0 else t_d  # the donor temperature after layer limiting
            f, dfdp = slab_flow(x1, x2, (z2 - z1) * (tb - ta), vent[v, K.V_CD] * width * math.sqrt(2 * rho), delta)
            ch[layer if forward else 2 + layer] += abs(f)
            hsum += cp * t_d * f
            wsum += cp * t_d * dfdp
    return ch, hsum, wsum


def poreh(t_hot, t_cold, mdot, z, width, p, par):
    """Poreh et al. (1998) spill-plume entrainment (kg/s) of a jet of ``mdot`` kg/s over ``z`` m."""
    if mdot <= 0 or z <= 0 or width <= 0 or t_hot <= t_cold:
        return 0.0
    rho = p / (par[K.P_R] * t_cold)
    q = par[K.P_CP] * (t_hot - t_cold) * mdot
    return 0.44 * (t_cold / t_hot) ** (2 / 3) * np.cbrt(par[K.P_G] * rho ** 2 * q * width ** 2
                                                       / (par[K.P_CP] * t_cold)) * z


def door_jet_mixing(pf, vent, vidx, geom, pr, par):
    """(N, 2) kg/s entrained lower → upper (0) and upper → lower (1): the flow of each wall vent where one side
    is its upper layer and the other its lower, summed per direction, as a hot jet rising to the receiver's
    interface or a cold jet falling through its upper layer (× 0.25)."""
    n = len(pr["p"])
    mix = np.zeros((n, 2))
    delta = par[K.P_DELTA]
    for v in range(len(vidx)):
        a, b = int(vidx[v, 0]), int(vidx[v, 1])
        zb, zt = vent[v, K.V_BOT], vent[v, K.V_TOP]
        width = vent[v, K.V_W] * vent[v, K.V_OPEN]
        if width <= 0:
            continue
        levels = sorted({zb, zt, *[pr["zi"][s] for s in (a, b) if s >= 0 and zb < pr["zi"][s] < zt]})
        jets = {a: [0.0, None], b: [0.0, None]}  # donor side: [flow, layer]
        for z1, z2 in zip(levels[:-1], levels[1:], strict=True):
            zm = 0.5 * (z1 + z2)
            la, lb = donor(a, zm, pr, par)[2], donor(b, zm, pr, par)[2]
            if la == lb:
                continue
            d1 = pressure_at(a, z1, pf, geom, pr, par) - pressure_at(b, z1, pf, geom, pr, par)
            d2 = pressure_at(a, z2, pf, geom, pr, par) - pressure_at(b, z2, pf, geom, pr, par)
            ts = [0.0, 1.0]
            if d2 != d1:
                ts += [t for t in ((c - d1) / (d2 - d1) for c in (-delta, 0.0, delta)) if 0 < t < 1]
            ts = sorted(ts)
            for ta, tb in zip(ts[:-1], ts[1:], strict=True):
                if tb <= ta:
                    continue
                x1, x2 = d1 + (d2 - d1) * ta, d1 + (d2 - d1) * tb
                side, layer = (a, la) if x1 + x2 >= 0 else (b, lb)
                rho = donor(side, zm, pr, par)[0]
                f, _ = slab_flow(x1, x2, (z2 - z1) * (tb - ta), vent[v, K.V_CD] * width * math.sqrt(2 * rho), delta)
                jets[side][0] += abs(f)
                jets[side][1] = layer
        for d, r in ((a, b), (b, a)):
            flow, layer = jets[d]
            if r < 0 or flow <= 0:
                continue
            zi_d = pr["zi"][d] if d >= 0 else np.inf
            zi_r = pr["zi"][r]
            if layer == 0 and pr["hasl"][r]:
                z = max(0.0, zi_r - max(zb, zi_d))
                mix[r, 0] += poreh(pr["tu"][d], pr["tl"][r], flow, z, width, pr["p"][r], par)
            elif layer == 1 and pr["hasu"][r]:
                t_jet = pr["tl"][d] if d >= 0 else par[K.P_TOUT]
                z = max(0.0, min(zt, zi_d) - max(zi_r, zb))
                mix[r, 1] += 0.25 * poreh(pr["tu"][r], t_jet, flow, z, width, pr["p"][r], par)
    return mix


def ceiling_vent_flows(k, pf, vvent, vvidx, geom, pr, par, teff, share=(1.0, 1.0)):
    """(channels (4,), enthalpy up W, Jacobian weight) of ceiling vent ``k``; ``share`` the parts of the flow
    up / down taken from the layer next to the opening (the rest from the donor's other layer)."""
    ch = np.zeros(4)
    lo, up = int(vvidx[k, 0]), int(vvidx[k, 1])
    z = geom[lo, K.G_BASE] + geom[lo, K.G_H]
    x = pressure_at(lo, z, pf, geom, pr, par) - pressure_at(up, z, pf, geom, pr, par)
    # donors each way: channel, density, and the temperature of the mix taken
    col_b = 0 if pr["hasu"][lo] else 1
    rho_b = pr["ru"][lo] if col_b == 0 else pr["rl"][lo]
    t_b = share[0] * teff[lo, col_b] + (1 - share[0]) * teff[lo, 1 - col_b]
    if up < 0:
        col_a, t_a = 3, par[K.P_TOUT]
        rho_a = p_out(z, par) / (par[K.P_R] * t_a)
        sh_a = 1.0
    else:
        col_a = 3 if pr["hasl"][up] else 2
        rho_a = pr["rl"][up] if col_a == 3 else pr["ru"][up]
        sh_a = share[1]
        t_a = sh_a * teff[up, col_a - 2] + (1 - sh_a) * teff[up, 3 - col_a]

    def put(col, mass, sh):
        ch[col] += sh * mass
        ch[col ^ 1] += (1 - sh) * mass

    if x >= 0:
        col, rho, t_d, sh = col_b, rho_b, t_b, share[0]
    else:
        col, rho, t_d, sh = col_a, rho_a, t_a, sh_a
    coef = vvent[k, 1] * vvent[k, 0] * math.sqrt(2 * rho)
    delta = par[K.P_DELTA]
    if abs(x) <= delta:
        f, d_dp = coef * x / math.sqrt(delta), coef / math.sqrt(delta)
    else:
        f, d_dp = math.copysign(coef * math.sqrt(abs(x)), x), coef / (2 * math.sqrt(abs(x)))
    put(col, abs(f), sh)
    hf = par[K.P_CP] * t_d * f
    # Cooper's exchange at the start-of-step pressures (square opening, as CFAST's ventcf)
    drho, area = rho_a - rho_b, vvent[k, 0]
    if drho > 0:
        dp0 = pressure_at(lo, z, pr["p"], geom, pr, par) - pressure_at(up, z, pr["p"], geom, pr, par)
        d = math.sqrt(area)
        flood = 0.942 ** 2 * par[K.P_G] * drho * d ** 5 / (2 * area ** 2)
        vex = max(0.1 * math.sqrt(2 * par[K.P_G] * drho * area ** 2.5 / (rho_a + rho_b)) * (1 - abs(dp0) / flood), 0.0)
        put(col_b, rho_b * vex, share[0])
        put(col_a, rho_a * vex, sh_a)
        hf += par[K.P_CP] * (t_b * rho_b * vex - t_a * rho_a * vex)
    return ch, hf, par[K.P_CP] * t_d * d_dp


def froude_shares(vchan, vvidx, geom, pr, par):
    """(K, 2) shares of each ceiling vent's flow up / down from the layer next to the opening:
    exp(−(Fr/2)²) (the form of CFAST's vertical_flow), Fr = V/√(g·d⁵·(T_u − T_l)/T_l), 1 where the donor has
    one layer, its layers are not stably stratified or nothing flows; with ``P_FROUDE`` = RULE_CFAST the donor
    layer's excess over the compartment's initial temperature T_0, Fr = V/√(g·d⁵·(T − T_0)/T_0), as CFAST."""
    out = np.ones((len(vvidx), 2))
    g = par[K.P_G]
    for k, (lo, up) in enumerate(vvidx):
        cases = [(0, lo, pr["hasu"][lo] and pr["hasl"][lo], vchan[k, 0] + vchan[k, 1], pr["ru"][lo],
                  geom[lo, K.G_BASE] + geom[lo, K.G_H] - pr["zi"][lo])]
        if up >= 0:
            cases.append((1, up, pr["hasl"][up] and pr["hasu"][up], vchan[k, 2] + vchan[k, 3], pr["rl"][up],
                          pr["zi"][up] - geom[up, K.G_BASE]))
        for j, i, both_layers, mass, rho, depth in cases:
            tu, tl = pr["tu"][i], pr["tl"][i]
            if par[K.P_FROUDE] == K.RULE_CFAST:
                tu, tl = (tu if j == 0 else tl), geom[i, K.G_TWALL]
            if not both_layers or mass <= 0 or tu <= tl:
                continue
            denom = g * depth ** 5 * (tu - tl) / tl
            out[k, j] = math.exp(-0.25 * (mass / rho) ** 2 / denom) if denom > 0 else 0.0
    return out


def o2_fraction(y, mass):
    """O2 mole fraction of a layer (species masses ``y``, rest N2)."""
    if mass <= 0:
        return 0.0
    moles = np.sum(y / K.MOLAR_MASS) + max(mass - y.sum(), 0.0) / K.M_N2
    return y[K.SP_O2] / K.MOLAR_MASS[K.SP_O2] / moles


def heskestad(qc, z, q, d):
    if qc <= 0 or z <= 0:
        return 0.0
    flame = 0.235 * q ** 0.4 - 1.02 * d
    z0 = 0.083 * q ** 0.4 - 1.02 * d
    if flame > 0 and z < flame:
        return 0.0056 * qc * z / flame
    dz = max(z - z0, 1e-6)
    return 0.071 * qc ** (1 / 3) * dz ** (5 / 3) * (1 + 0.026 * qc ** (2 / 3) * dz ** (-5 / 3))


def ceiling_plumes(vchan, vvidx, vvent, geom, pr, par, state, dt):
    """(landing layer (K, 2) of each ceiling vent's flow up / down, −1 for the temperature rule; (N, 2) entrainment
    kg/s lower → upper, upper → lower): gas lighter than the receiver's lower layer rises to its upper layer;
    gas falling into an upper layer colder than it entrains it over its depth (Heskestad, × 0.25) and lands in
    the lower layer only if the mixture is no lighter than that layer (at most half the layer in ``dt``)."""
    dest = -np.ones((len(vvidx), 2), int)
    mix = np.zeros((len(geom), 2))
    hot, cp = par[K.P_HOT], par[K.P_CP]

    def t_flow(side, c_u, c_l):
        return par[K.P_TOUT] if side < 0 else (c_u * pr["tu"][side] + c_l * pr["tl"][side]) / (c_u + c_l)

    for k, (lo, up) in enumerate(vvidx):
        d = np.sqrt(4 * vvent[k, 0] / np.pi)
        if up >= 0 and vchan[k, :2].sum() > 0 and pr["hasl"][up]:
            if t_flow(lo, vchan[k, 0], vchan[k, 1]) > pr["tl"][up] + hot:
                dest[k, 0] = 0
        m = vchan[k, 2:].sum()
        if m > 0 and par[K.P_VDEP] == K.RULE_CFAST:  # CFAST's vertical_flow: unmixed, by its temperature
            dest[k, 1] = 0 if t_flow(up, vchan[k, 2], vchan[k, 3]) > pr["tl"][lo] + hot else 1
        elif m > 0 and pr["hasu"][lo] and pr["hasl"][lo]:
            t_d = t_flow(up, vchan[k, 2], vchan[k, 3])
            tu, tl = pr["tu"][lo], pr["tl"][lo]
            if t_d >= tu:
                dest[k, 1] = 0
                continue
            q = cp * (tu - t_d) * m / 1000
            ent = min(0.25 * heskestad(q, geom[lo, K.G_BASE] + geom[lo, K.G_H] - pr["zi"][lo], q, d),
                      0.5 * state[lo, K.MU] / dt)
            if (m * t_d + ent * tu) / (m + ent) > tl + hot:
                dest[k, 1] = 0
            else:
                dest[k, 1] = 1
                mix[lo, 1] += ent
    return dest, mix


def _surface_balance(gain, dcoef, cr, tu, ts):
    return gain - dcoef * ts + cr * (tu ** 4 - ts ** 4)


def _faces(i, state, geom, pr, par, dt, cr, qout, ts, qb, src, qs):
    """Compartment ``i``'s layers against three conducting faces ``ts`` (ceiling, walls, floor), as the kernel's
    ``_conducting_surfaces``: convection by contact, the upper layer's radiation shared by area (across the
    interface to the floor and the lower walls by their areas), the flame's by area, each layer's loss capped
    at what brings it to its farthest face."""
    cv, hc = par[K.P_CP] - par[K.P_R], par[K.P_HCONV]
    perim, area, hgt = geom[i, K.G_PERIM], geom[i, K.G_AREA], geom[i, K.G_H]
    hl = pr["zi"][i] - geom[i, K.G_BASE]
    wu, wl = perim * (hgt - hl), perim * hl
    rad = np.array([area, wu + area * wl / (area + wl), area * area / (area + wl)]) / (2 * area + wu)
    faces = np.array([area, perim * hgt, area])
    qs[i] = par[K.P_CHIR] * qb * 1000 * faces / faces.sum()
    src[i, 6] = faces @ ts / faces.sum()
    for layer, conv in ((0, np.array([area, wu, 0.0])), (1, np.array([0.0, wl, area]))):
        if not (pr["hasu"] if layer == 0 else pr["hasl"])[i]:
            continue
        temp = pr["tu"][i] if layer == 0 else pr["tl"][i]
        mass = state[i, K.MU] if layer == 0 else state[i, K.ML]
        r = cr * rad * (temp ** 4 - ts ** 4) if layer == 0 else np.zeros(3)
        q = hc * conv * (temp - ts) + r
        touched = (conv > 0) | (r != 0)
        cap = cv * mass * (np.max(np.abs(temp - ts)[touched]) if touched.any() else 0.0) / dt
        scale = min(1.0, cap / abs(q.sum())) if q.sum() != 0 else 1.0
        qs[i] += scale * q
        qo = 0.0
        if layer == 0 and qout > 0:
            qo = float(np.clip(cv * mass * (temp - par[K.P_TOUT]) / dt - scale * q.sum(), 0.0, qout))
        src[i, 4 + layer] = scale * q.sum() + qo
        if layer == 0:
            src[i, 7:9] = scale * r.sum(), qo


def sources(state, geom, pr, par, q_kw, dt, a_open, t_surf=None, qs=None):
    """(N, 9) fire/plume/wall terms and burned kW, as :func:`physics._kernels.fire_zone.fire_sources`
    (the surface temperature by Brent's method where the upper layer radiates)."""
    n = state.shape[0]
    src = np.zeros((n, 9))
    qb_all = np.zeros(n)
    cv = par[K.P_CP] - par[K.P_R]
    t = max(par[K.P_TIME], 1e-9)
    for i in range(n):
        base, hgt = geom[i, K.G_BASE], geom[i, K.G_H]
        if q_kw[i] > 0 and pr["hasl"][i]:
            ml = state[i, K.ML]
            x = o2_fraction(state[i, K.SL:K.SL + K.NSP], ml)
            qd = float(np.clip((x - par[K.P_LOL]) / 0.01, 0, 1)) * q_kw[i]
            qc = (1 - par[K.P_CHIR]) * qd
            z = pr["zi"][i] - base if pr["hasu"][i] else hgt
            ent = min(heskestad(qc, z, qd, par[K.P_DFIRE]), 0.5 * ml / dt)
            qb = min(qd, ent * state[i, K.SL + K.SP_O2] / ml * HUGGETT / 1000)
            qb_all[i] = qb
            src[i, :4] = ent, qb / par[K.P_DHC], qb * 1000 / HUGGETT, (1 - par[K.P_CHIR]) * qb * 1000
        kk, rho, c, th = geom[i, K.G_K], geom[i, K.G_RHO], geom[i, K.G_C], geom[i, K.G_THICK]
        hk = math.sqrt(kk * rho * c / t) if t < rho * c / kk * (th / 2) ** 2 else kk / th
        hc = par[K.P_HCONV]
        hl = pr["zi"][i] - base
        au = geom[i, K.G_AREA] + geom[i, K.G_PERIM] * (hgt - hl)
        al = geom[i, K.G_AREA] + geom[i, K.G_PERIM] * hl
        gain = (hc * (au * pr["tu"][i] + al * pr["tl"][i]) + par[K.P_CHIR] * qb_all[i] * 1000
                + hk * (au + al) * geom[i, K.G_TWALL])
        cr = qout = 0.0
        vu = pr["vu"][i]
        if par[K.P_LAYRAD] > 0 and pr["hasu"][i] and pr["hasl"][i] and vu > 0:
            bound = au + geom[i, K.G_AREA]
            kappa = 1862.0 * state[i, K.SU + K.SP_SOOT] / (1800.0 * vu) * pr["tu"][i]
            eps_g = -math.expm1(-kappa * 3.6 * vu / bound)
            if eps_g > 0:
                ao = min(a_open[i], bound / 2)
                cr = 5.670374419e-8 * (bound - ao) / (1 / eps_g + 1 / par[K.P_EPSW] - 1)
                qout = 5.670374419e-8 * eps_g * ao * (pr["tu"][i] ** 4 - par[K.P_TOUT] ** 4)
        lin = gain / ((hc + hk) * (au + al))
        if t_surf is not None:  # conducting walls: three faces
            _faces(i, state, geom, pr, par, dt, cr, qout, t_surf[i], qb_all[i], src, qs)
            continue
        if cr > 0:  # the surface balance, quartic in T_s: bracketed between no radiation and the hotter gas
            f = partial(_surface_balance, gain, (hc + hk) * (au + al), cr, pr["tu"][i])
            lo, hi = min(lin, pr["tu"][i]), max(lin, pr["tu"][i])
            # no sign change: radiation too weak to lift f above its round-off at the no-radiation root (a trace
            # of soot): the end where the balance is nearest zero (taking hi = T_u there was wrong)
            ts = brentq(f, lo, hi, xtol=1e-13, rtol=1e-15) if f(lo) * f(hi) < 0 else \
                (lo if abs(f(lo)) <= abs(f(hi)) else hi)
        else:
            ts = lin
        src[i, 6] = ts
        for layer, (has, mass, temp, area) in enumerate(((pr["hasu"][i], state[i, K.MU], pr["tu"][i], au),
                                                         (pr["hasl"][i], state[i, K.ML], pr["tl"][i], al))):
            if has:
                qrad = cr * (temp ** 4 - ts ** 4) if layer == 0 else 0.0
                q = hc * area * (temp - ts) + qrad
                cap = cv * mass * abs(temp - ts) / dt
                scale = min(1.0, cap / abs(q)) if q != 0 else 1.0
                qo = 0.0
                if layer == 0 and qout > 0:
                    qo = float(np.clip(cv * mass * (temp - par[K.P_TOUT]) / dt - q * scale, 0.0, qout))
                src[i, 4 + layer] = q * scale + qo
                if layer == 0:
                    src[i, 7:9] = qrad * scale, qo
    return src, qb_all


def residual(dp, pn, dt, state, geom, pr, par, vent, vidx, vvent, vvidx, src, teff, shares):
    """(residual, Jacobian (dense), wall channels, ceiling channels, pressure error Pa)."""
    gm1 = par[K.P_R] / (par[K.P_CP] - par[K.P_R])
    vol = geom[:, K.G_VOL]
    pf = pn + dp
    res = vol / (gm1 * dt) * dp - (src[:, 3] - src[:, 4] - src[:, 5] + par[K.P_CP] * pr["tl"] * src[:, 1])
    jac = np.diag(vol / (gm1 * dt))
    chan = np.zeros((len(vidx), 4))
    vchan = np.zeros((len(vvidx), 4))
    links = [(v, vidx[v], wall_vent_flows(v, pf, vent, vidx, geom, pr, par, teff), chan) for v in range(len(vidx))]
    links += [(k, vvidx[k], ceiling_vent_flows(k, pf, vvent, vvidx, geom, pr, par, teff, shares[k]), vchan)
              for k in range(len(vvidx))]
    for j, (a, b), (ch, hf, w), store in links:
        store[j] = ch
        res[a] += hf
        jac[a, a] += w
        if b >= 0:
            res[b] -= hf
            jac[b, b] += w
            jac[a, b] -= w
            jac[b, a] -= w
    return res, jac, chan, vchan, float(np.max(np.abs(res) * gm1 * dt / vol, initial=0.0))


def donors(state, src, chan, vchan, vidx, vvidx, dt, geom, pr, par, teff, shares):
    """The layer limiting's fractions and the donor temperatures and Froude shares they give; the largest move."""
    fu, fl, bad = fractions(state, src, chan, vchan, vidx, vvidx, dt)
    new = np.stack([fu * pr["tu"] + (1 - fu) * pr["tl"], fl * pr["tl"] + (1 - fl) * pr["tu"]], axis=1)
    change = float(np.max(np.abs(new - teff)))
    if par[K.P_FROUDE] > 0 and len(vvidx):
        new_shares = froude_shares(vchan, vvidx, geom, pr, par)
        dtl = np.abs(pr["tu"] - pr["tl"])
        ends = np.stack([vvidx[:, 0], np.maximum(vvidx[:, 1], 0)], axis=1)
        change = max(change, float(np.max(np.abs(new_shares - shares) * dtl[ends])))
        shares = new_shares
    return fu, fl, bad, new, shares, change


def solve(state, geom, pr, par, vent, vidx, vvent, vvidx, src, dt, teff, dp, shares):
    """Newton with backtracking on the floor pressures (dense solves) from the first guess ``dp``, the donor
    temperatures brought along: after each evaluation of the flows the layer limiting and the Froude shares give
    new ones and the residual is evaluated again (all vents here; the kernel only those they touch), at most 8
    times for a move above ``layer_tol``. Returns (dp, iterations, error, chan, vchan, fu, fl, bad)."""
    res, jac, chan, vchan, err = residual(dp, pr["p"], dt, state, geom, pr, par, vent, vidx, vvent, vvidx, src,
                                          teff, shares)
    it = updates = 0
    smax = np.inf
    while True:
        change = 0.0
        if updates < 8:
            fu, fl, bad, teff, shares, change = donors(state, src, chan, vchan, vidx, vvidx, dt, geom, pr, par,
                                                       teff, shares)
            if change > par[K.P_LAYTOL]:
                updates += 1
                smax = np.inf
                res, jac, chan, vchan, err = residual(dp, pr["p"], dt, state, geom, pr, par, vent, vidx, vvent,
                                                      vvidx, src, teff, shares)
        else:
            fu, fl, bad = fractions(state, src, chan, vchan, vidx, vvidx, dt)
        if change <= par[K.P_LAYTOL] and (err <= par[K.P_TOL] or smax <= par[K.P_TOL]):
            break
        if it >= 50:
            break
        it += 1
        step = np.linalg.solve(jac, -res)
        smax = float(np.max(np.abs(step)))
        scale = par[K.P_R] / (par[K.P_CP] - par[K.P_R]) * dt / geom[:, K.G_VOL]
        fit = float(np.sum((res * scale) ** 2))
        tries = []
        floor = 0.0
        if smax <= par[K.P_TOL]:  # the merit's round-off floor (the kernel's solve_pressures)
            floor = float(np.sum((K.MERIT_FLOOR_FACTOR * np.finfo(float).eps * np.abs(pr["p"] + dp)
                                  * (np.diag(jac) * scale - 1.0)) ** 2))
        for lam in 0.5 ** np.arange(12):  # Armijo c = 1/4 on the squared pressure errors' sum, else the best
            trial = dp + lam * step
            out = residual(trial, pr["p"], dt, state, geom, pr, par, vent, vidx, vvent, vvidx, src, teff, shares)
            tries.append((float(np.sum((out[0] * scale) ** 2)), lam))
            if tries[-1][0] <= (1.0 - 0.5 * lam) * fit or (lam == 1.0 and tries[-1][0] <= floor):
                break
        else:
            trial = dp + min(tries)[1] * step
            out = residual(trial, pr["p"], dt, state, geom, pr, par, vent, vidx, vvent, vvidx, src, teff, shares)
        dp = trial
        res, jac, chan, vchan, err = out
    return dp, it, err, chan, vchan, fu, fl, bad


def fractions(state, src, chan, vchan, vidx, vvidx, dt):
    """(fu, fl, bad): the share of the outflow asked of each layer that it can give."""
    n = state.shape[0]
    du, dl = np.zeros(n), np.zeros(n)
    for idx, ch in ((vidx, chan), (vvidx, vchan)):
        np.add.at(du, idx[:, 0], ch[:, 0] * dt)
        np.add.at(dl, idx[:, 0], ch[:, 1] * dt)
        inside = idx[:, 1] >= 0
        np.add.at(du, idx[inside, 1], ch[inside, 2] * dt)
        np.add.at(dl, idx[inside, 1], ch[inside, 3] * dt)
    au = np.maximum(state[:, K.MU] + src[:, 0] * dt, 0.0)
    al = np.maximum(state[:, K.ML] - src[:, 0] * dt, 0.0)
    fu, fl = np.ones(n), np.ones(n)
    over_u, over_l = du > au, (du <= au) & (dl > al)
    fu[over_u] = au[over_u] / du[over_u]
    fl[over_l] = al[over_l] / dl[over_l]
    bad = int(np.sum(over_u & (dl + du - au > al)) + np.sum(over_l & (du + dl - al > au)))
    return fu, fl, bad


def reassign(chan, vchan, vidx, vvidx, fu, fl):
    """Channels after the layers that cannot give their share pass it to the other layer (in place)."""
    for idx, ch in ((vidx, chan), (vvidx, vchan)):
        for c0, side in ((0, 0), (2, 1)):
            rows = np.flatnonzero(idx[:, side] >= 0)
            i = idx[rows, side]
            cu, cl = ch[rows, c0].copy(), ch[rows, c0 + 1].copy()
            ch[rows, c0] = fu[i] * cu + (1 - fl[i]) * cl
            ch[rows, c0 + 1] = (1 - fu[i]) * cu + fl[i] * cl


def step(state, geom, par, vent, vidx, vvent, vvidx, q_kw, dt, new_state, chan_out, vchan_out, qburn, tally, dp_guess,
         plan=None, t_surface=None, q_wall=None):
    """Same signature and results as :func:`physics._kernels.fire_zone.step` (the Component can swap it in;
    ``plan``, the kernel's sparse factorisation plan, is not needed by a dense solve)."""
    n = state.shape[0]
    cp = par[K.P_CP]
    gamma = cp / (cp - par[K.P_R])
    pr = props(state, geom, par)
    a_open = np.zeros(n)  # open area to the outside: wall vents W·open·height, roof vents their area
    out_w = vidx[:, 1] < 0
    np.add.at(a_open, vidx[out_w, 0], (vent[:, K.V_W] * vent[:, K.V_OPEN] * (vent[:, K.V_TOP] - vent[:, K.V_BOT]))[out_w])
    out_c = vvidx[:, 1] < 0
    np.add.at(a_open, vvidx[out_c, 0], vvent[out_c, 0])
    qs = np.zeros((n, 3))
    src, qb = sources(state, geom, pr, par, q_kw, dt, a_open, t_surface, qs)
    teff = np.stack([pr["tu"], pr["tl"]], axis=1)
    shares = np.ones((len(vvidx), 2))  # of the ceiling vents' flows up / down from the layer at the opening
    dp, it, err, chan, vchan, fu, fl, bad = solve(state, geom, pr, par, vent, vidx, vvent, vvidx, src, dt, teff,
                                                  dp_guess.copy(), shares)
    reassign(chan, vchan, vidx, vvidx, fu, fl)
    dm, dh, ds = np.zeros((n, 2)), np.zeros((n, 2)), np.zeros((n, 2, K.NSP))
    ambient = np.zeros(K.NSP)
    ambient[K.SP_O2] = par[K.P_O2AMB]
    temps = np.stack([pr["tu"], pr["tl"]], axis=1)
    vdest, vmix = (ceiling_plumes(vchan, vvidx, vvent, geom, pr, par, state, dt) if par[K.P_VDEP] > 0
                   else (-np.ones((len(vvidx), 2), int), np.zeros((n, 2))))
    for idx, ch in ((vidx, chan), (vvidx, vchan)):
        for j in range(len(idx)):
            for c in range(4):
                flow = ch[j, c]
                if flow <= 0:
                    continue
                donor_i, recv = (idx[j, 0], idx[j, 1]) if c < 2 else (idx[j, 1], idx[j, 0])
                layer = c % 2
                mass = flow * dt
                if donor_i >= 0:
                    t_d = temps[donor_i, layer]
                    cols = slice(K.SU, K.SU + K.NSP) if layer == 0 else slice(K.SL, K.SL + K.NSP)
                    m_d = state[donor_i, K.MU if layer == 0 else K.ML]
                    y = state[donor_i, cols] / m_d if m_d > 0 else np.zeros(K.NSP)
                    dm[donor_i, layer] -= mass
                    dh[donor_i, layer] -= cp * t_d * mass
                    ds[donor_i, layer] -= y * mass
                else:
                    t_d, y = par[K.P_TOUT], ambient
                    tally[K.T_MASS_IN] += mass
                    tally[K.T_H_IN] += cp * t_d * mass
                if recv >= 0:
                    tu, tl = temps[recv]
                    rl = 0 if t_d > tl + max(0.5 * (tu - tl), par[K.P_HOT]) else 1
                    if idx is vvidx and vdest[j, c // 2] >= 0:
                        rl = vdest[j, c // 2]
                    dm[recv, rl] += mass
                    dh[recv, rl] += cp * t_d * mass
                    ds[recv, rl] += y * mass
                else:
                    tally[K.T_MASS_OUT] += mass
                    tally[K.T_H_OUT] += cp * t_d * mass
    yields = np.zeros(K.NSP)
    yields[[K.SP_CO2, K.SP_CO, K.SP_SOOT, K.SP_H2O]] = par[[K.P_Y_CO2, K.P_Y_CO, K.P_Y_SOOT, K.P_Y_H2O]]
    ent, mf, mo2, qconv, wu, wl = (src[:, c] for c in range(6))
    tl = pr["tl"]
    ml0 = state[:, K.ML]
    dm[:, 0] += (ent + mf) * dt
    dm[:, 1] -= ent * dt
    dh[:, 0] += (cp * tl * (ent + mf) + qconv - wu) * dt
    dh[:, 1] += (-cp * tl * ent - wl) * dt
    with np.errstate(invalid="ignore", divide="ignore"):
        yl = np.where(ml0[:, None] > 0, state[:, K.SL:K.SL + K.NSP] / ml0[:, None], 0.0)
    ds[:, 0] += (yl * ent[:, None] + yields[None, :] * mf[:, None]) * dt
    ds[:, 1] -= yl * ent[:, None] * dt
    ds[:, 0, K.SP_O2] -= mo2 * dt
    # vent-jet and ceiling-vent plume mixing within each receiving compartment, at most half a layer each way
    mix = door_jet_mixing(pr["p"] + dp, vent, vidx, geom, pr, par) if par[K.P_MIX] > 0 else np.zeros((n, 2))
    mix = mix + vmix
    if np.any(mix > 0):
        has_l, has_u = ml0 > 0, state[:, K.MU] > 0
        m_lu = np.where(has_l, np.minimum(mix[:, 0] * dt, 0.5 * np.maximum(ml0 + dm[:, 1], 0)), 0.0)
        m_ul = np.where(has_u, np.minimum(mix[:, 1] * dt, 0.5 * np.maximum(state[:, K.MU] + dm[:, 0], 0)), 0.0)
        dm += np.stack([m_lu - m_ul, m_ul - m_lu], axis=1)
        moved = cp * (tl * m_lu - pr["tu"] * m_ul)
        dh += np.stack([moved, -moved], axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            yu = np.where(has_u[:, None], state[:, K.SU:K.SU + K.NSP] / state[:, K.MU][:, None], 0.0)
        ys = yl * m_lu[:, None] - yu * m_ul[:, None]
        ds[:, 0] += ys
        ds[:, 1] -= ys
    tally[K.T_WALLS] += np.sum((wu + wl - src[:, 8]) * dt)
    if q_wall is not None:
        q_wall[:] = qs
    tally[K.T_LAYER_RAD] += np.sum(src[:, 7] * dt)
    tally[K.T_VENT_RAD] += np.sum(src[:, 8] * dt)
    tally[K.T_RADIATED] += np.sum(par[K.P_CHIR] * qb * 1000 * dt)
    tally[K.T_RELEASED] += np.sum(qb * 1000 * dt)
    tally[K.T_FUEL_MASS] += np.sum(mf * dt)
    tally[K.T_FUEL_H] += np.sum(cp * tl * mf * dt)
    du_tot = dh.sum(axis=1)
    du_u = (dh[:, 0] + pr["vu"] * (gamma - 1) * du_tot / geom[:, K.G_VOL]) / gamma
    new_state[:] = state
    new_state[:, K.MU] += dm[:, 0]
    new_state[:, K.ML] += dm[:, 1]
    new_state[:, K.UU] += du_u
    new_state[:, K.UL] += du_tot - du_u
    new_state[:, K.SU:K.SU + K.NSP] += ds[:, 0]
    new_state[:, K.SL:K.SL + K.NSP] += ds[:, 1]
    total = state[:, K.MU] + ml0
    # a layer emptied (to round-off, or to < 1e-4 with no energy) gives what is left to the other (upper first)
    for i in range(n):
        tiny = 1e-9 * (new_state[i, K.MU] + new_state[i, K.ML])
        for mc, uc, sc, om, ou, so in ((K.MU, K.UU, K.SU, K.ML, K.UL, K.SL), (K.ML, K.UL, K.SL, K.MU, K.UU, K.SU)):
            m_new = new_state[i, mc]
            if m_new >= -1e-12 * total[i] and (m_new < tiny or (new_state[i, uc] <= 0 and m_new < 1e5 * tiny)):
                new_state[i, [om, ou]] += new_state[i, [mc, uc]]
                new_state[i, so:so + K.NSP] += new_state[i, sc:sc + K.NSP]
                new_state[i, [mc, uc]] = 0.0
                new_state[i, sc:sc + K.NSP] = 0.0
                break
    negative = (new_state[:, K.MU] < -1e-12 * total) | (new_state[:, K.ML] < -1e-12 * total)
    emptied = ~((new_state[:, K.MU] + new_state[:, K.ML] > 0) & (new_state[:, K.UU] + new_state[:, K.UL] > 0))
    cold = (((new_state[:, K.MU] > 0) & (new_state[:, K.UU] < 0)) | ((new_state[:, K.ML] > 0) & (new_state[:, K.UL] < 0)))
    bad += int(np.sum(negative | (~negative & emptied) | (~negative & ~emptied & cold)))
    chan_out[:] = chan
    vchan_out[:] = vchan
    dp_guess[:] = dp
    qburn[:] = qb
    return it, err, bad
