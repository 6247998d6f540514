"""Numba kernels of the two-zone fire model over a compartment network (pure: arrays in, arrays out).

The equations are the ones :mod:`physics.fire_zone` documents; this module
holds one time step of them. A step of length ``dt``:

1. Layer properties from the state (per compartment: layer masses ``m_u``,
   ``m_l``, internal energies ``U_u``, ``U_l`` and species masses), with the
   ideal gas of constant c_p: p = (γ − 1)·(U_u + U_l)/V, T = U/(c_v·m),
   V_u = (γ − 1)·U_u/p, interface z_i = base + (V − V_u)/A.
2. Fire sources (:func:`fire_sources`): heat release limited by the lower
   oxygen limit and by the oxygen the Heskestad plume entrains, plume
   entrainment lower → upper, wall losses by the MQH conductance h_k(t) with
   the upper layer's grey-gas radiation to the lumped surface (its temperature
   the root of a quartic, :func:`surface_temperature`) and out of the
   compartment's openings to the outside (:func:`open_area`); or, with
   conducting walls, to their three faces at the temperatures the caller gives
   (:func:`_conducting_surfaces`; the walls themselves are
   :mod:`physics._kernels.fire_walls`).
3. Floor pressures implicit (backward Euler of the compartments' energy, which
   for this gas is their pressure, dp/dt = (γ − 1)/V·Σh):
   R_i(p) = V_i/((γ − 1)·dt)·(p_i − p_i^n) − H_i(p) − S_i = 0, H the enthalpy
   carried by the vents at the trial pressures (donor layers frozen at the
   start of the step), solved by Newton's method; its Jacobian is
   diag(V/((γ − 1)dt)) plus the weighted graph Laplacian of the vents
   (weight c_p·T_donor·∂ṁ/∂Δp), SPD, solved exactly by a sparse LDLᵀ
   factorisation whose fill-reducing order and pattern are worked out once
   per network (:func:`ldl_plan`, :func:`direct_solve`; :func:`step_plan` adds the step's work arrays), with backtracking
   on the step (on the sum of the squared pressure errors, :func:`error_and_merit`).
4. Vent flows at the converged pressures, split into four channels per vent
   (from side a's upper / lower layer, from side b's upper / lower layer);
   a layer asked for more than it holds gives the rest from the other layer
   (:func:`_fractions_from_sums`, :func:`apply_fractions`). The pressures of 3. are
   solved with the donor temperatures this mixing gives (``teff``), brought
   along inside Newton's method (after each Newton step the vents whose donor
   temperatures moved are evaluated again) until the fractions settle, so that
   the enthalpy the pressure solve expects to leave is the enthalpy that leaves;
   each wall-vent channel deposits into the receiver's upper layer when hotter
   than its lower layer by more than half the layer temperature difference (at
   least ``hot_dT``), else into the lower layer; ceiling-vent flows land by
   buoyancy, a cold flow falling into an upper layer as a plume that entrains
   it (:func:`ceiling_vent_plumes`).
5. Layer update: masses and species by the transfers; energies with the
   enthalpy flows and the pressure work, dU_u = (h_u·dt + V_u·Δp)/γ and
   dU_l = ΔU − dU_u, ΔU = Σh·dt (exact conservation by construction).

Wall vents integrate the orifice equation ṁ = C·W·√(2ρ_d)·∫√|Δp(z)| dz over
the opening, Δp(z) linear between the break points (sill, soffit, both
interfaces, neutral planes); below ``delta`` Pa the square root is replaced
by its secant Δp/√δ (continuous, finite derivative). Ceiling vents take
ṁ = C·A·√(2ρ_d)·φ(Δp) on the pressure difference at the opening.

Array layouts (float64 unless said): ``state`` (N, NSTATE) columns
:data:`MU`, :data:`ML`, :data:`UU`, :data:`UL`, species of the upper layer
from :data:`SU` and of the lower from :data:`SL` (masses, kg; order
:data:`SPECIES`); ``geom`` (N, NGEOM) columns ``G_*``; ``vent`` (M, NVENT)
columns ``V_*`` and ``vidx`` (M, 2) int (a, b; b = −1 outside); ``vvent``
(K, 2) (area, cd) and ``vvidx`` (K, 2) int (lower, upper; upper = −1 outside);
``par`` the parameters ``P_*``.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from physics._kernels import sparse_ldl as LDL

SPECIES = ("O2", "CO2", "CO", "soot", "H2O")
#: Molar masses (kg/mol) of :data:`SPECIES`; the untracked rest of a layer counts as N2.
MOLAR_MASS = np.array([0.032, 0.044, 0.028, 0.012, 0.018])
M_N2 = 0.028
NSP = 5
SP_O2, SP_CO2, SP_CO, SP_SOOT, SP_H2O = 0, 1, 2, 3, 4
MU, ML, UU, UL = 0, 1, 2, 3
SU = 4
SL = 4 + NSP
NSTATE = 4 + 2 * NSP

G_BASE, G_H, G_AREA, G_VOL, G_PERIM, G_K, G_RHO, G_C, G_THICK, G_TWALL = range(10)
NGEOM = 10
V_BOT, V_TOP, V_W, V_CD, V_OPEN = range(5)
NVENT = 5

(P_R, P_CP, P_G, P_P0, P_TOUT, P_DELTA, P_CHIR, P_DHC, P_LOL, P_Y_CO2, P_Y_CO, P_Y_SOOT, P_Y_H2O,
 P_DFIRE, P_TIME, P_TOL, P_HOT, P_O2AMB, P_HCONV, P_LAYTOL, P_MIX, P_FROUDE, P_LAYRAD,
 P_EPSW, P_VDEP, P_RSTOP) = range(26)
NPAR = 26
#: CFAST's factor on the entrainment of a cold jet falling through a hot upper layer (spill_plume: "to
#: approximate the reduced Kelvin-Helmholtz type mixing").
COLD_JET_FACTOR = 0.25
#: Value of ``par[P_FROUDE]`` and ``par[P_VDEP]`` selecting CFAST's own ``vertical_flow`` rule (CFAST 7/8,
#: ``vflow.f90``) instead of this model's (1.0): :func:`froude_split`, :func:`ceiling_vent_plumes`.
RULE_CFAST = 2.0

#: Heat released per kg of O2 consumed (J/kg), Huggett (1980).
HUGGETT_J_KG = 13.1e6
#: Stefan-Boltzmann constant (W/m²K⁴).
SIGMA = 5.670374419e-8
#: Soot's absorption coefficient per volume fraction and kelvin (1/(m·K)): κ = 1862·f_v·T, Tien, Lee & Stretton,
#: "Radiation heat transfer", SFPE Handbook (soot of hydrocarbon flames, mean of the measured soots).
SOOT_KAPPA = 1862.0
#: Density of soot (kg/m³) turning its mass concentration into a volume fraction (CFAST's ``rhos``, TN 1889v1).
SOOT_DENSITY = 1800.0

# props columns
Q_P, Q_TU, Q_TL, Q_RU, Q_RL, Q_ZI, Q_HASU, Q_HASL, Q_VU = range(9)
NPROP = 9
# tallies
(T_MASS_OUT, T_MASS_IN, T_H_OUT, T_H_IN, T_WALLS, T_RADIATED, T_RELEASED, T_FUEL_MASS, T_FUEL_H,
 T_LAYER_RAD, T_VENT_RAD) = range(11)
NTALLY = 11
#: columns of the fire/wall source terms ``src`` (N, NSRC) of :func:`fire_sources`
NSRC = 9


@njit(cache=True)
def layer_props(state, geom, par, props, teff=None):
    """Pressure, layer temperatures, densities, interface and which layers exist (``props``, N×NPROP); with ``teff``
    (N, 2) the layer temperatures there too (the step's donor temperatures start from them: written here, not
    copied out of ``props``' columns after, 2.3 µs a step on the 2,212-compartment tower)."""
    r, cp = par[P_R], par[P_CP]
    cv = cp - r
    gm1 = r / cv
    for i in range(state.shape[0]):
        vol = geom[i, G_VOL]
        p, tu, tl, vu, hasu, hasl = _layers(state[i, MU], state[i, ML], state[i, UU], state[i, UL], vol, cv, gm1)
        props[i, Q_P] = p
        props[i, Q_TU] = tu
        props[i, Q_TL] = tl
        if teff is not None:
            teff[i, 0] = tu
            teff[i, 1] = tl
        if hasu == hasl:
            props[i, Q_RU] = p / (r * tu)
            props[i, Q_RL] = p / (r * tl)
        else:  # one layer: the other's temperature and density are its own (one division)
            rho = p / (r * tu)
            props[i, Q_RU] = rho
            props[i, Q_RL] = rho
        if vu <= 0.0:  # no upper layer: the interface is the ceiling exactly (not base + V/A, a round-off below it,
            props[i, Q_ZI] = geom[i, G_BASE] + geom[i, G_H]  # which would cut every opening to it in two)
        else:
            props[i, Q_ZI] = geom[i, G_BASE] + (vol - vu) / geom[i, G_AREA]
        props[i, Q_HASU] = 1.0 if hasu else 0.0
        props[i, Q_HASL] = 1.0 if hasl else 0.0
        props[i, Q_VU] = vu


@njit(cache=True, inline="always")
def _layers(mu, ml, uu, ul, vol, cv, gm1):
    """(pressure, T_u, T_l, V_u, has upper, has lower) of a compartment of volume ``vol`` whose layers hold masses
    ``mu``/``ml`` and energies ``uu``/``ul``: a missing layer takes the other's temperature, V_u is 0 without an
    upper layer and ``vol`` without a lower one. Each division only where its value is kept (a compartment with one
    layer, most of them, skips two of the four). Scalars only: inlined without arrays' reference counts."""
    p = gm1 * (uu + ul) / vol
    tiny = 1e-9 * (mu + ml)
    hasu = mu > tiny
    hasl = ml > tiny
    if hasu and hasl:
        tu = uu / (cv * mu)
        tl = ul / (cv * ml)
        vu = min(max(gm1 * uu / p, 0.0), vol)
    elif hasu:
        tu = uu / (cv * mu)
        tl = tu
        vu = vol
    elif hasl:
        tl = ul / (cv * ml)
        tu = tl
        vu = min(max(0.0, 0.0), vol)
    else:
        tu = 0.0
        tl = 0.0
        vu = vol
    return p, tu, tl, vu, hasu, hasl


#: rows of :func:`compartment_outputs`' ``out`` (NOUT, N)
(O_TU, O_TL, O_Z, O_P, O_O2U, O_O2L, O_CO2U, O_CO2L, O_COU, O_COL, O_SOOTU, O_SOOTL) = range(12)
NOUT = 12


@njit(cache=True)
def outside_at_base(geom, par, out):
    """The outside's pressure (Pa) at each compartment's floor into ``out`` (N,): P0·exp(−g·z/(R·T_out)), what
    :func:`compartment_outputs` takes off the floor pressures (worked out once per outside temperature)."""
    g, r, t_out, p0 = par[P_G], par[P_R], par[P_TOUT], par[P_P0]
    for i in range(geom.shape[0]):
        out[i] = p0 * math.exp(-g * geom[i, G_BASE] / (r * t_out))


@njit(cache=True)
def compartment_outputs(state, geom, par, out, species=True, p_base=None):
    """The component's per-compartment outputs into ``out`` (NOUT, N): :func:`step_outputs`' rows (layer
    temperatures, layer height, floor pressure less the outside's, soot of each layer; ``p_base`` the outside's
    pressure at each floor, :func:`outside_at_base`, worked out here if not given) and, with ``species``, the O2
    and CO2 volume fractions and CO (ppm) of each layer (:func:`species_outputs`)."""
    if p_base is None:
        base_out = np.empty(state.shape[0])
        outside_at_base(geom, par, base_out)
    else:
        base_out = p_base
    step_outputs(state, geom, par, base_out, 0.0, out)
    if species:
        species_outputs(state, out)


@njit(cache=True)
def step_outputs(state, geom, par, p_base, ext_per_kg, out):
    """What a model reads after every step, into ``out`` (NOUT, N) or (NOUT + 1, N): layer temperatures (K), layer
    height above the floor (m), floor pressure less the outside's there (``p_base``, Pa), soot (kg/m³) of each layer
    (the same arithmetic as :func:`layer_props`, so the same numbers to the bit) and, where ``out`` has the row
    :data:`NOUT`, the upper layers' light extinction there, ``ext_per_kg`` × their soot (1/m). No props table: the
    densities it also holds are not outputs (on the 2,212-compartment tower 43 → ~30 µs a step)."""
    r, cp = par[P_R], par[P_CP]
    cv = cp - r
    gm1 = r / cv
    extinction = out.shape[0] > NOUT
    for i in range(state.shape[0]):
        vol = geom[i, G_VOL]
        p, tu, tl, vu, _hasu, _hasl = _layers(state[i, MU], state[i, ML], state[i, UU], state[i, UL], vol, cv,
                                              gm1)
        base = geom[i, G_BASE]
        zi = base + geom[i, G_H] if vu <= 0.0 else base + (vol - vu) / geom[i, G_AREA]
        vl = vol - vu
        soot_u = state[i, SU + SP_SOOT] / vu if vu > 0.0 else 0.0
        out[O_TU, i] = tu
        out[O_TL, i] = tl
        out[O_Z, i] = zi - base
        out[O_P, i] = p - p_base[i]
        out[O_SOOTU, i] = soot_u
        out[O_SOOTL, i] = state[i, SL + SP_SOOT] / vl if vl > 0.0 else 0.0
        if extinction:
            out[NOUT, i] = ext_per_kg * soot_u


@njit(cache=True)
def species_outputs(state, out):
    """O2 and CO2 volume fractions and CO (ppm) of each layer into ``out``'s rows :data:`O_O2U` … :data:`O_COL`
    (moles of the species and N2 for the rest of the layer's mass)."""
    for i in range(state.shape[0]):
        for layer in range(2):
            m_col, s_col = (MU, SU) if layer == 0 else (ML, SL)
            total = max(state[i, m_col], 0.0)
            moles = 0.0
            for s in range(NSP):
                total -= state[i, s_col + s]
                moles += state[i, s_col + s] / MOLAR_MASS[s]
            moles += max(total, 0.0) / M_N2
            for row, s, scale in ((O_O2U, SP_O2, 1.0), (O_CO2U, SP_CO2, 1.0), (O_COU, SP_CO, 1e6)):
                out[row + layer, i] = scale * state[i, s_col + s] / MOLAR_MASS[s] / moles if moles > 0.0 else 0.0


@njit(cache=True)
def accept_guess(dp, dt, rates, rate_sum, pos, n_rates):
    """After a step: its pressure change ``dp`` (N,) in place, zeroed (× 0.0) everywhere if any is not finite, and the
    rate ``dp``/``dt`` put into the ring ``rates`` (k, N) at row ``pos`` and its running sum ``rate_sum`` (N,)
    (``n_rates`` rows filled before) when the ring has more than one row
    (the model's ``_substep`` did this with numpy: the same arithmetic, one call). Returns whether the ring's mean
    predicted this rate better than the last rate did."""
    finite = True
    for i in range(dp.shape[0]):
        if not np.isfinite(dp[i]):
            finite = False
    if not finite:
        for i in range(dp.shape[0]):
            dp[i] = dp[i] * 0.0
    if rates.shape[0] == 1:
        return False
    # one pass, without a rate array: element i's errors read the ring's rows and the sum before element i goes in
    # (the last row and the row written differ: the ring has k > 1 rows)
    prev = (pos - 1) % rates.shape[0]
    e_last = 0.0
    e_mean = 0.0
    for i in range(dp.shape[0]):
        rate = dp[i] / dt
        if n_rates > 0:
            e_last = max(e_last, abs(rate - rates[prev, i]))
            e_mean = max(e_mean, abs(rate - rate_sum[i] / n_rates))
        rate_sum[i] += rate - rates[pos, i]
        rates[pos, i] = rate
    return n_rates > 0 and e_mean < e_last


@njit(cache=True)
def set_open(vent, vent_open):
    """The open fractions ``vent_open`` (M,) into the vents' table's column :data:`V_OPEN` (a numpy column
    assignment, strided, cost 9 µs a step on the tower's 5,625 vents)."""
    if vent_open.shape[0] != vent.shape[0]:
        raise ValueError("vent_open: give one open fraction per wall vent")
    for v in range(vent.shape[0]):
        vent[v, V_OPEN] = vent_open[v]


@njit(cache=True)
def glazing_hits(t_upper, cand, vidx, brk_c, broken, hit):
    """The unbroken panes among the glazing vents ``cand`` whose hotter side's upper layer (``t_upper`` K; outside:
    0) has reached their break temperature ``brk_c`` (°C) into ``hit``; returns how many."""
    k = 0
    for j in range(cand.shape[0]):
        v = cand[j]
        if broken[v]:
            continue
        a, b = vidx[v, 0], vidx[v, 1]
        hot = max(t_upper[a], t_upper[b] if b >= 0 else 0.0) - 273.15
        if hot >= brk_c[v]:
            hit[k] = v
            k += 1
    return k


@njit(cache=True)
def p_inside(pf, z, base, zi, rho_u, rho_l, g):
    """Pressure at elevation ``z`` in a compartment of floor pressure ``pf`` (hydrostatic through both layers)."""
    h = z - base
    hl = zi - base
    if h <= hl:
        return pf - g * rho_l * h
    return pf - g * (rho_l * hl + rho_u * (h - hl))


@njit(cache=True, inline="always")
def p_outside(z, par):
    """Outside pressure at elevation ``z``: isothermal atmosphere at T_out, P0 at grade."""
    return par[P_P0] * math.exp(-par[P_G] * z / (par[P_R] * par[P_TOUT]))


@njit(cache=True)
def piece_ends(x1, x2, delta):
    """Where Δp, running linearly from x1 (t = 0) to x2 (t = 1) over a slab, crosses −δ, 0 and +δ: the ends of the
    slab's pieces, (t1, t2, t3, 1.0) increasing, each clipped to [0, 1] (a piece of zero length is skipped)."""
    dx = x2 - x1
    if dx == 0.0 or min(x1, x2) > delta or max(x1, x2) < -delta:
        return 1.0, 1.0, 1.0, 1.0  # one piece (most slabs)
    s = 1.0 if dx > 0.0 else -1.0  # the cuts in increasing t
    return (min(max((-s * delta - x1) / dx, 0.0), 1.0), min(max(-x1 / dx, 0.0), 1.0),
            min(max((s * delta - x1) / dx, 0.0), 1.0), 1.0)


@njit(cache=True)
def _piece(x1, x2, h, coef, delta):
    """Signed mass flow and ∂ṁ/∂Δp of one slab of height ``h`` where Δp runs linearly from x1 to x2
    without crossing 0 or ±delta (coef = C·W·√(2ρ_d))."""
    return _piece_sd(x1, x2, h, coef, delta, math.sqrt(delta))


@njit(cache=True, inline="always")
def _piece_sd(x1, x2, h, coef, delta, sd):
    """:func:`_piece` with √delta given (``sd``; a third of the slabs cross 0 or ±delta, in 2-4 pieces)."""
    xm = 0.5 * (x1 + x2)
    if abs(xm) <= delta:
        return coef * h * xm / sd, coef * h / sd
    s1 = math.sqrt(abs(x1))
    s2 = math.sqrt(abs(x2))
    f = coef * (2.0 / 3.0) * h * (s1 * s1 + s1 * s2 + s2 * s2) / (s1 + s2)
    return (f if xm > 0 else -f), coef * h / (s1 + s2)


#: columns of the per-step vent statics ``vs`` (M, NVS): breakpoints z0..z3 (sill, lower and higher
#: interface clipped to the opening, soffit), the hydrostatic part of Δp at them (p_a − p_b less the floor
#: pressures), and per slab the donor density of side a and of side b; ``vl`` (M, 6) the donor layers.
VS_Z, VS_D, VS_RHO = 0, 4, 8
NVS = 14


@njit(cache=True, inline="always")
def _static_p(i, z, geom, props, par):
    """Pressure at ``z`` less the floor pressure (inside: −g·∫ρ dz), or the outside's pressure (i < 0)."""
    if i < 0:
        return p_outside(z, par)
    return p_inside(0.0, z, geom[i, G_BASE], props[i, Q_ZI], props[i, Q_RU], props[i, Q_RL], par[P_G])


@njit(cache=True)
def vent_statics(vent, vidx, vvent, vvidx, geom, props, par, vs, vl, vvs, vvl, oc=None):
    """What the vent flows need that does not depend on the floor pressures, once per step: the wall vents'
    (:func:`wall_statics`; ``oc`` its cache of the outside's pressures) and the ceiling vents'
    (:func:`ceiling_statics`)."""
    wall_statics(vent, vidx, geom, props, par, vs, vl, oc)
    ceiling_statics(vvent, vvidx, geom, props, par, vvs, vvl)


#: columns of :func:`wall_statics`' cache of the outside (M + 1, NOC): per wall vent to outside the outside's pressure at
#: its sill and soffit, its density at the opening's middle, and the sill and soffit they are for; the last row holds
#: the P0, g, R and T_out they were worked out with
OC_PB, OC_PT, OC_RHO, OC_ZB, OC_ZT = range(5)
NOC = 5


@njit(cache=True, inline="always")
def _outside_cache(v, zb, zt, oc, p0, g, r_gas, t_out):
    """Vent ``v``'s row of the outside cache for sill ``zb`` and soffit ``zt``, worked out again where it was for
    others (the same expressions as :func:`wall_statics`' own, so the same numbers)."""
    if not (oc[v, OC_ZB] == zb and oc[v, OC_ZT] == zt):
        zm = 0.5 * (zb + zt)
        oc[v, OC_PB] = p0 * math.exp(-g * zb / (r_gas * t_out))
        oc[v, OC_PT] = p0 * math.exp(-g * zt / (r_gas * t_out))
        oc[v, OC_RHO] = p0 * math.exp(-g * zm / (r_gas * t_out)) / (r_gas * t_out)
        oc[v, OC_ZB] = zb
        oc[v, OC_ZT] = zt


@njit(cache=True)
def wall_statics(vent, vidx, geom, props, par, vs, vl, oc=None):
    """Each wall vent's break points (sill, the two sides' interfaces clipped to the opening, soffit), the
    hydrostatic part of Δp at them and each slab's donors (density into ``vs``, layer into ``vl``); a closed vent
    has no slab. ``oc`` (M + 1, :data:`NOC`, NaN at first), optional, keeps the outside's pressure at the sills and
    soffits of the vents to outside and its density at their middles from step to step (they change only with the
    outside's temperature; most of this function's time was those exponentials): the same numbers."""
    g, r_gas, t_out, p0 = par[P_G], par[P_R], par[P_TOUT], par[P_P0]
    cached = oc is not None
    if cached:
        m = vidx.shape[0]
        if not (oc[m, 0] == p0 and oc[m, 1] == g and oc[m, 2] == r_gas and oc[m, 3] == t_out):
            oc[:, OC_ZB] = np.nan  # another atmosphere: every row again
            oc[m, 0], oc[m, 1], oc[m, 2], oc[m, 3] = p0, g, r_gas, t_out
    # prange is range here; the two-thread step compiles this code in parallel (fire_zone_parallel)
    for v in prange(vidx.shape[0]):  # (the sides' look-ups inline: a call with array arguments costs ~100 ns)
        a, b = vidx[v, 0], vidx[v, 1]
        zb, zt = vent[v, V_BOT], vent[v, V_TOP]
        if not vent[v, V_CD] * vent[v, V_W] * vent[v, V_OPEN] > 0.0:  # closed for the step: no slab
            for k in range(4):
                vs[v, VS_Z + k] = zb
                vs[v, VS_D + k] = 0.0
            for k in range(6):
                vs[v, VS_RHO + k] = 0.0
                vl[v, k] = 1
            continue
        base_a, zi_a, ru_a, rl_a = geom[a, G_BASE], props[a, Q_ZI], props[a, Q_RU], props[a, Q_RL]
        base_b, zi_b, ru_b, rl_b = 0.0, zt, 0.0, 0.0
        if b >= 0:
            base_b, zi_b, ru_b, rl_b = geom[b, G_BASE], props[b, Q_ZI], props[b, Q_RU], props[b, Q_RL]
        za = min(max(zi_a, zb), zt)
        zc = min(max(zi_b, zb), zt)
        if cached and b < 0:
            _outside_cache(v, zb, zt, oc, p0, g, r_gas, t_out)
        vs[v, VS_Z] = zb
        vs[v, VS_Z + 1] = min(za, zc)
        vs[v, VS_Z + 2] = max(za, zc)
        vs[v, VS_Z + 3] = zt
        for k in range(4):
            z = vs[v, VS_Z + k]
            if k > 0 and z == vs[v, VS_Z + k - 1]:
                vs[v, VS_D + k] = vs[v, VS_D + k - 1]  # a break point repeated (no interface in the opening)
                continue
            pa = p_inside(0.0, z, base_a, zi_a, ru_a, rl_a, g)
            if b >= 0:
                pb = p_inside(0.0, z, base_b, zi_b, ru_b, rl_b, g)
            elif cached and z == zb:
                pb = oc[v, OC_PB]
            elif cached and z == zt:
                pb = oc[v, OC_PT]
            else:
                pb = p0 * math.exp(-g * z / (r_gas * t_out))
            vs[v, VS_D + k] = pa - pb
        for k in range(3):
            if not vs[v, VS_Z + k + 1] > vs[v, VS_Z + k]:
                vs[v, VS_RHO + 2 * k] = vs[v, VS_RHO + 2 * k + 1] = 0.0  # an empty slab carries nothing
                vl[v, 2 * k] = vl[v, 2 * k + 1] = 1
                continue
            zm = 0.5 * (vs[v, VS_Z + k] + vs[v, VS_Z + k + 1])
            if zm > zi_a:  # the donor each side: the layer at the slab's middle (outside: its air there)
                vs[v, VS_RHO + 2 * k], vl[v, 2 * k] = ru_a, 0
            else:
                vs[v, VS_RHO + 2 * k], vl[v, 2 * k] = rl_a, 1
            if b < 0:
                if cached and vs[v, VS_Z + k] == zb and vs[v, VS_Z + k + 1] == zt:  # the whole opening: its middle
                    vs[v, VS_RHO + 2 * k + 1] = oc[v, OC_RHO]
                else:
                    vs[v, VS_RHO + 2 * k + 1] = p0 * math.exp(-g * zm / (r_gas * t_out)) / (r_gas * t_out)
                vl[v, 2 * k + 1] = 1
            elif zm > zi_b:
                vs[v, VS_RHO + 2 * k + 1], vl[v, 2 * k + 1] = ru_b, 0
            else:
                vs[v, VS_RHO + 2 * k + 1], vl[v, 2 * k + 1] = rl_b, 1


@njit(cache=True)
def ceiling_statics(vvent, vvidx, geom, props, par, vvs, vvl):
    """Each ceiling vent's hydrostatic Δp part, donor density for flow up and down and Cooper's exchange volume
    flow (``vvs`` (K, 4)), and the donor channels up and down (``vvl`` (K, 2)); ``vvs`` (K, 6) columns 4 and 5, the
    share of the flow up and down taken from those layers, start at 1 (:func:`froude_split` sets them: :func:`step`
    from the last step's flows before Newton's start, then Newton's loop).

    Exchange (Cooper 1995, J. Heat Transfer 117:659, as CFAST's ``ventcf``): where the gas above the
    opening is denser than below it, Δρ > 0, V_ex = max(0.1·√(2g·Δρ·A^2.5/(ρ_a + ρ_b))·(1 − |Δp|/Δp_f), 0)
    each way, Δp_f = C²·g·Δρ·D⁵/(2A²) the flooding pressure difference (C = 0.942, D = √A: a square
    opening). Equal volumes each way carry nearly equal enthalpy (ρ·T = p/R), so it is taken at the
    start-of-step pressures and held through the step, outside the Newton solve."""
    for k in range(vvidx.shape[0]):
        lo, up = vvidx[k, 0], vvidx[k, 1]
        ztop = geom[lo, G_BASE] + geom[lo, G_H]
        vvs[k, 0] = _static_p(lo, ztop, geom, props, par) - _static_p(up, ztop, geom, props, par)
        if props[lo, Q_HASU] > 0.0:
            vvs[k, 1], vvl[k, 0] = props[lo, Q_RU], 0
        else:
            vvs[k, 1], vvl[k, 0] = props[lo, Q_RL], 1
        if up < 0:
            vvs[k, 2], vvl[k, 1] = p_outside(ztop, par) / (par[P_R] * par[P_TOUT]), 3
        elif props[up, Q_HASL] > 0.0:
            vvs[k, 2], vvl[k, 1] = props[up, Q_RL], 3
        else:
            vvs[k, 2], vvl[k, 1] = props[up, Q_RU], 2
        # Cooper's exchange flow (volume, m³/s, each way) under an unstable density difference, at the
        # start-of-step pressures: square opening C = 0.942, D = √A (as CFAST's ventcf)
        vvs[k, 3] = 0.0
        vvs[k, 4] = 1.0  # share of the upward flow from its nominal layer (froude_split)
        vvs[k, 5] = 1.0  # and of the downward flow
        drho = vvs[k, 2] - vvs[k, 1]
        area = vvent[k, 0]
        if drho > 0.0 and area > 0.0:
            dp0 = props[lo, Q_P] - (props[up, Q_P] if up >= 0 else 0.0) + vvs[k, 0]
            flood = 0.942 ** 2 * par[P_G] * drho * area ** 2.5 / (2.0 * area * area)
            vmax = 0.1 * math.sqrt(2.0 * par[P_G] * drho * area ** 2.5 / (vvs[k, 1] + vvs[k, 2]))
            vvs[k, 3] = max(vmax * (1.0 - abs(dp0) / flood), 0.0)


#: columns of the slab table ``sp`` (:func:`slab_table`), a row per slab of an open wall vent: the hydrostatic Δp at
#: the slab's bottom and top, C·W·h·√(2ρ) of the donor on side a and on side b, c_p·T of those donors, and their
#: channels in ``chan``.
OS_D0, OS_D1, OS_CA, OS_CB, OS_HA, OS_HB, OS_COLA, OS_COLB = range(8)
NOS = 8


@njit(cache=True)
def slab_table(vent, vidx, vs, vl, par, teff, first, sp):
    """The slabs (height > 0) of the open wall vents as rows of ``sp`` (:data:`NOS` columns), vent v's in rows
    ``first[v]`` to ``first[v + 1]``: what :func:`wall_flows` needs, looked up once per step (statics
    :func:`vent_statics`, donor temperatures ``teff``)."""
    r = 0
    cp = par[P_CP]
    for v in range(vidx.shape[0]):
        first[v] = r
        cdw = vent[v, V_CD] * vent[v, V_W] * vent[v, V_OPEN]
        if not cdw > 0.0:
            continue
        for k in range(3):
            h = vs[v, VS_Z + k + 1] - vs[v, VS_Z + k]
            if not h > 0.0:
                continue
            la, lb = vl[v, 2 * k], vl[v, 2 * k + 1]
            sp[r, OS_D0] = vs[v, VS_D + k]
            sp[r, OS_D1] = vs[v, VS_D + k + 1]
            sp[r, OS_CA] = cdw * h * math.sqrt(2.0 * vs[v, VS_RHO + 2 * k])
            sp[r, OS_CB] = cdw * h * math.sqrt(2.0 * vs[v, VS_RHO + 2 * k + 1])
            sp[r, OS_HA] = cp * (teff[vidx[v, 0], la] if vidx[v, 0] >= 0 else par[P_TOUT])
            sp[r, OS_HB] = cp * (teff[vidx[v, 1], lb] if vidx[v, 1] >= 0 else par[P_TOUT])
            sp[r, OS_COLA] = la
            sp[r, OS_COLB] = 2 + lb
            r += 1
    first[vidx.shape[0]] = r


@njit(cache=True, inline="always")
def _static_dp(z, zb, zt, base_a, zi_a, ru_a, rl_a, b, base_b, zi_b, ru_b, rl_b, g, pb_sill, pb_soffit, p0, rt):
    """The hydrostatic part of Δp at ``z`` across a wall vent (:func:`wall_statics`' expressions; outside, b < 0: its
    cached pressures ``pb_sill``/``pb_soffit`` at the sill ``zb`` and soffit ``zt``, else P0·exp(−g·z/``rt``)).
    Scalars only: inlined without the arrays' reference counts."""
    pa = p_inside(0.0, z, base_a, zi_a, ru_a, rl_a, g)
    if b >= 0:
        pb = p_inside(0.0, z, base_b, zi_b, ru_b, rl_b, g)
    elif z == zb:
        pb = pb_sill
    elif z == zt:
        pb = pb_soffit
    else:
        pb = p0 * math.exp(-g * z / rt)
    return pa - pb


@njit(cache=True)
def wall_slabs(vent, vidx, geom, props, par, teff, vs, vl, first, sp, ovents, oc, a_open):
    """What the step needs of the wall vents before Newton's loop, in one pass over them: the slab table (``first``,
    ``sp``: :func:`slab_table` of :func:`wall_statics`, ``oc`` the latter's outside cache, donor temperatures
    ``teff``), the open vents ascending into ``ovents`` (:func:`open_vents`; returns how many) and, of ``vs``/``vl``,
    only what :func:`door_jets` reads: the middle slab's (the one between the two interfaces) bottom and top
    (``VS_Z + 1``, ``+ 2``), Δp there (``VS_D + 1``, ``+ 2``), donor densities (``VS_RHO + 2``, ``+ 3``, where the slab
    is not empty) and donor layers (``vl`` columns 2 and 3, every vent); their other columns are not written. Also
    :func:`open_area`'s wall vents, added to ``a_open`` (N,). The same numbers as those functions, each vent's slabs
    made from its statics in registers: on the 2,212-compartment tower ~72 → 62 µs a step against the four (most of
    it the 5,625 rows of ``vs``/``vl`` no longer written whole)."""
    g, r_gas, t_out, p0, cp = par[P_G], par[P_R], par[P_TOUT], par[P_P0], par[P_CP]
    m = vidx.shape[0]
    if not (oc[m, 0] == p0 and oc[m, 1] == g and oc[m, 2] == r_gas and oc[m, 3] == t_out):
        oc[:, OC_ZB] = np.nan  # another atmosphere: every row again
        oc[m, 0], oc[m, 1], oc[m, 2], oc[m, 3] = p0, g, r_gas, t_out
    rt = r_gas * t_out
    r = 0
    n_open = 0
    for v in range(m):
        r0 = r
        first[v] = r0
        a, b = vidx[v, 0], vidx[v, 1]
        zb, zt = vent[v, V_BOT], vent[v, V_TOP]
        if b < 0:
            a_open[a] += vent[v, V_W] * vent[v, V_OPEN] * (zt - zb)
        cdw = vent[v, V_CD] * vent[v, V_W] * vent[v, V_OPEN]
        if not cdw > 0.0:  # closed for the step: no slab (no jet)
            vl[v, 2] = 1
            vl[v, 3] = 1
            continue
        base_a, zi_a, ru_a, rl_a = geom[a, G_BASE], props[a, Q_ZI], props[a, Q_RU], props[a, Q_RL]
        base_b, zi_b, ru_b, rl_b = 0.0, zt, 0.0, 0.0
        pb_sill, pb_soffit, rho_out = 0.0, 0.0, 0.0
        if b >= 0:
            base_b, zi_b, ru_b, rl_b = geom[b, G_BASE], props[b, Q_ZI], props[b, Q_RU], props[b, Q_RL]
        else:
            _outside_cache(v, zb, zt, oc, p0, g, r_gas, t_out)
            pb_sill, pb_soffit, rho_out = oc[v, OC_PB], oc[v, OC_PT], oc[v, OC_RHO]
        za = min(max(zi_a, zb), zt)
        zc = min(max(zi_b, zb), zt)
        z1 = min(za, zc)
        z2 = max(za, zc)
        # Δp's hydrostatic part at the break points (a point repeated: the one before, no interface in between)
        d0 = _static_dp(zb, zb, zt, base_a, zi_a, ru_a, rl_a, b, base_b, zi_b, ru_b, rl_b, g, pb_sill, pb_soffit,
                        p0, rt)
        d1 = d0 if z1 == zb else _static_dp(z1, zb, zt, base_a, zi_a, ru_a, rl_a, b, base_b, zi_b, ru_b, rl_b, g,
                                            pb_sill, pb_soffit, p0, rt)
        d2 = d1 if z2 == z1 else _static_dp(z2, zb, zt, base_a, zi_a, ru_a, rl_a, b, base_b, zi_b, ru_b, rl_b, g,
                                            pb_sill, pb_soffit, p0, rt)
        d3 = d2 if zt == z2 else _static_dp(zt, zb, zt, base_a, zi_a, ru_a, rl_a, b, base_b, zi_b, ru_b, rl_b, g,
                                            pb_sill, pb_soffit, p0, rt)
        vs[v, VS_Z + 1] = z1
        vs[v, VS_Z + 2] = z2
        vs[v, VS_D + 1] = d1
        vs[v, VS_D + 2] = d2
        vl[v, 2] = 1
        vl[v, 3] = 1
        zs = (zb, z1, z2, zt)
        ds = (d0, d1, d2, d3)
        for k in range(3):
            lo, hi = zs[k], zs[k + 1]
            if not hi > lo:  # an empty slab carries nothing
                continue
            zm = 0.5 * (lo + hi)
            if zm > zi_a:  # the donor each side: the layer at the slab's middle (outside: its air there)
                rho_a, la = ru_a, 0
            else:
                rho_a, la = rl_a, 1
            if b < 0:
                rho_b = rho_out if lo == zb and hi == zt else p0 * math.exp(-g * zm / rt) / rt
                lb = 1
            elif zm > zi_b:
                rho_b, lb = ru_b, 0
            else:
                rho_b, lb = rl_b, 1
            if k == 1:  # the middle slab: what the door jets read
                vs[v, VS_RHO + 2] = rho_a
                vs[v, VS_RHO + 3] = rho_b
                vl[v, 2] = la
                vl[v, 3] = lb
            h = hi - lo
            sp[r, OS_D0] = ds[k]
            sp[r, OS_D1] = ds[k + 1]
            sp[r, OS_CA] = cdw * h * math.sqrt(2.0 * rho_a)
            sp[r, OS_CB] = cdw * h * math.sqrt(2.0 * rho_b)
            sp[r, OS_HA] = cp * (teff[a, la] if a >= 0 else t_out)
            sp[r, OS_HB] = cp * (teff[b, lb] if b >= 0 else t_out)
            sp[r, OS_COLA] = la
            sp[r, OS_COLB] = 2 + lb
            r += 1
        if r > r0:
            ovents[n_open] = v
            n_open += 1
    first[m] = r
    return n_open


@njit(cache=True)
def open_vents(first, out):
    """The wall vents with a slab in the table (open for the step, :func:`slab_table`'s ``first``) into ``out``,
    ascending; returns how many. The Newton loop evaluates and sums only these: a closed vent carries nothing."""
    k = 0
    for v in range(first.shape[0] - 1):
        if first[v + 1] > first[v]:
            out[k] = v
            k += 1
    return k


@njit(cache=True)
def refresh_donors(changed, first, vidx, par, teff, sp, adj_ptr, adj_vents):
    """The donor enthalpies c_p·T in the slab table again for the wall vents touching a compartment flagged in
    ``changed`` (its donor temperatures ``teff`` moved), so that the table never lags ``teff``; compartment i's
    vents are ``adj_vents[adj_ptr[i]:adj_ptr[i + 1]]`` (:func:`vent_adjacency`)."""
    cp, t_out = par[P_CP], par[P_TOUT]
    for i in range(changed.shape[0]):
        if not changed[i]:
            continue
        for j in range(adj_ptr[i], adj_ptr[i + 1]):
            v = adj_vents[j]
            a, b = vidx[v, 0], vidx[v, 1]
            for r in range(first[v], first[v + 1]):
                la, lb = int(sp[r, OS_COLA]), int(sp[r, OS_COLB]) - 2
                sp[r, OS_HA] = cp * (teff[a, la] if a >= 0 else t_out)
                sp[r, OS_HB] = cp * (teff[b, lb] if b >= 0 else t_out)


def vent_adjacency(n: int, vidx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(ptr, vents): compartment i's wall vents ``vents[ptr[i]:ptr[i + 1]]``, ascending (plain Python, once per
    network)."""
    vidx = np.asarray(vidx, np.int64).reshape(-1, 2)
    side = np.concatenate([vidx[:, 0], vidx[:, 1]])
    vent = np.concatenate([np.arange(len(vidx)), np.arange(len(vidx))])
    keep = side >= 0
    order = np.lexsort((vent[keep], side[keep]))
    return np.searchsorted(side[keep][order], np.arange(n + 1)).astype(np.int64), vent[keep][order].astype(np.int64)


@njit(cache=True, error_model="numpy")
def wall_flows(vents, pf, vidx, first, sp, delta, chan, hv, wv):
    """Flow through each wall vent in ``vents`` (indices) at floor pressures ``pf`` from its rows of the slab table:
    channels into ``chan[v]`` (kg/s, ≥ 0: from a upper, a lower, b upper, b lower), net enthalpy a → b (W) into
    ``hv[v]`` and the Jacobian weight into ``wv[v]``. Δp(z) = p_a − p_b (floor pressures, 0 for outside) + the
    slab's hydrostatic part, linear over the slab; each slab is cut where Δp crosses −δ, 0, +δ and the orifice
    equation integrated over each piece (:func:`piece_ends`, :func:`_piece`). (One loop over the vents: a call per
    vent cost 3/4 of the time. :func:`wall_flows_summed` repeats this loop's body, to the character: a shared
    inlined helper made both 1.7× slower.)"""
    sd = math.sqrt(delta)
    for j in range(vents.shape[0]):
        v = vents[j]
        a, b = vidx[v, 0], vidx[v, 1]
        c0 = pf[a] - (pf[b] if b >= 0 else 0.0)
        for c in range(4):
            chan[v, c] = 0.0
        hflow = 0.0
        weight = 0.0
        for r in range(first[v], first[v + 1]):
            x1 = c0 + sp[r, OS_D0]
            x2 = c0 + sp[r, OS_D1]
            dx = x2 - x1
            if min(x1, x2) > delta or max(x1, x2) < -delta:  # one piece (most slabs): piece_ends' (1, 1, 1, 1)
                yb = x1 + dx * 1.0  # the loop below's arithmetic, to the bit
                if 0.5 * (x1 + yb) >= 0.0:
                    coef, hcp, col = sp[r, OS_CA], sp[r, OS_HA], int(sp[r, OS_COLA])
                else:
                    coef, hcp, col = sp[r, OS_CB], sp[r, OS_HB], int(sp[r, OS_COLB])
                f, dfdp = _piece_sd(x1, yb, 1.0, coef, delta, sd)
                chan[v, col] += abs(f)
                hflow += hcp * f
                weight += hcp * dfdp
                continue
            t_prev = 0.0
            for t in piece_ends(x1, x2, delta):
                if not t > t_prev:
                    continue
                ya = x1 + dx * t_prev
                yb = x1 + dx * t
                share = t - t_prev
                t_prev = t
                if 0.5 * (ya + yb) >= 0.0:
                    coef, hcp, col = sp[r, OS_CA], sp[r, OS_HA], int(sp[r, OS_COLA])
                else:
                    coef, hcp, col = sp[r, OS_CB], sp[r, OS_HB], int(sp[r, OS_COLB])
                f, dfdp = _piece_sd(ya, yb, share, coef, delta, sd)
                chan[v, col] += abs(f)
                hflow += hcp * f
                weight += hcp * dfdp
        hv[v] = hflow
        wv[v] = weight


@njit(cache=True, error_model="numpy")
def wall_flows_summed(vents, pf, vidx, first, sp, delta, chan, hv, wv, res, du, dl, dt):
    """:func:`wall_flows` with each vent's part of the residual summed as it is worked out: ``res[a] += hv``,
    ``res[b] −= hv`` and the layers' outflows over ``dt`` into ``du``/``dl``, in the vents' order (the same sums
    to the bit as a second pass over the vents, without reading the vents' flows back)."""
    sd = math.sqrt(delta)
    for j in range(vents.shape[0]):
        v = vents[j]
        a, b = vidx[v, 0], vidx[v, 1]
        c0 = pf[a] - (pf[b] if b >= 0 else 0.0)
        for c in range(4):
            chan[v, c] = 0.0
        hflow = 0.0
        weight = 0.0
        for r in range(first[v], first[v + 1]):
            x1 = c0 + sp[r, OS_D0]
            x2 = c0 + sp[r, OS_D1]
            dx = x2 - x1
            if min(x1, x2) > delta or max(x1, x2) < -delta:  # one piece (most slabs): piece_ends' (1, 1, 1, 1)
                yb = x1 + dx * 1.0  # the loop below's arithmetic, to the bit
                if 0.5 * (x1 + yb) >= 0.0:
                    coef, hcp, col = sp[r, OS_CA], sp[r, OS_HA], int(sp[r, OS_COLA])
                else:
                    coef, hcp, col = sp[r, OS_CB], sp[r, OS_HB], int(sp[r, OS_COLB])
                f, dfdp = _piece_sd(x1, yb, 1.0, coef, delta, sd)
                chan[v, col] += abs(f)
                hflow += hcp * f
                weight += hcp * dfdp
                continue
            t_prev = 0.0
            for t in piece_ends(x1, x2, delta):
                if not t > t_prev:
                    continue
                ya = x1 + dx * t_prev
                yb = x1 + dx * t
                share = t - t_prev
                t_prev = t
                if 0.5 * (ya + yb) >= 0.0:
                    coef, hcp, col = sp[r, OS_CA], sp[r, OS_HA], int(sp[r, OS_COLA])
                else:
                    coef, hcp, col = sp[r, OS_CB], sp[r, OS_HB], int(sp[r, OS_COLB])
                f, dfdp = _piece_sd(ya, yb, share, coef, delta, sd)
                chan[v, col] += abs(f)
                hflow += hcp * f
                weight += hcp * dfdp
        hv[v] = hflow
        wv[v] = weight
        res[a] += hflow
        du[a] += chan[v, 0] * dt
        dl[a] += chan[v, 1] * dt
        if b >= 0:
            res[b] -= hflow
            du[b] += chan[v, 2] * dt
            dl[b] += chan[v, 3] * dt


@njit(cache=True, inline="always")
def _vvent_donor(side, col, share, teff, par):
    """(other channel, its share, donor temperature) of a ceiling vent's flow from channel ``col`` of
    ``side`` (outside: −1) taking ``share`` from that layer and the rest from the other layer."""
    if side < 0:
        return col, 0.0, par[P_TOUT]
    other = col + 1 if col % 2 == 0 else col - 1
    return other, 1.0 - share, share * teff[side, col % 2] + (1.0 - share) * teff[side, other % 2]


@njit(cache=True, inline="always")
def _orifice(x, coef, delta):
    """Signed mass flow and ∂ṁ/∂Δp of an orifice of ``coef`` = C·A·√(2ρ_d) under Δp = ``x``: coef·√|x|,
    linear within ±``delta`` (the same flow at ±delta, a finite slope through 0)."""
    if abs(x) <= delta:
        return coef * x / math.sqrt(delta), coef / math.sqrt(delta)
    sq = math.sqrt(abs(x))
    return (coef * sq if x > 0 else -coef * sq), coef / (2.0 * sq)


@njit(cache=True, inline="always")
def ceiling_vent(k, pf, vvent, vvidx, vvs, vvl, par, teff, chan):
    """Flow through ceiling vent ``k`` (lower → upper positive) into ``chan[k]`` (from lower's upper /
    lower layer, from upper's upper / lower layer); returns (net enthalpy up W, Jacobian weight). Each
    direction's flow comes from its nominal layer (``vvl``) for the share ``vvs[k, 4 / 5]``, the rest from
    the donor's other layer (:func:`froude_split`)."""
    for c in range(4):
        chan[k, c] = 0.0
    lo, up = vvidx[k, 0], vvidx[k, 1]
    x = pf[lo] - (pf[up] if up >= 0 else 0.0) + vvs[k, 0]
    cu, cdn = vvl[k, 0], vvl[k, 1]
    o_up, s_up, t_up = _vvent_donor(lo, cu, vvs[k, 4], teff, par)
    o_dn, s_dn, t_dn = _vvent_donor(up, cdn, vvs[k, 5], teff, par) if up >= 0 else (cdn, 0.0, par[P_TOUT])
    if x >= 0.0:
        rho, col, oth, share, t_d = vvs[k, 1], cu, o_up, s_up, t_up
    else:
        rho, col, oth, share, t_d = vvs[k, 2], cdn, o_dn, s_dn, t_dn
    coef = vvent[k, 1] * vvent[k, 0] * math.sqrt(2.0 * rho)
    f, dfdp = _orifice(x, coef, par[P_DELTA])
    chan[k, col] = (1.0 - share) * abs(f)
    chan[k, oth] += share * abs(f)
    hf = par[P_CP] * t_d * f
    if vvs[k, 3] > 0.0:  # Cooper's exchange, the same volume each way
        m_up = vvs[k, 1] * vvs[k, 3]
        m_dn = vvs[k, 2] * vvs[k, 3]
        chan[k, cu] += (1.0 - s_up) * m_up
        chan[k, o_up] += s_up * m_up
        chan[k, cdn] += (1.0 - s_dn) * m_dn
        chan[k, o_dn] += s_dn * m_dn
        hf += par[P_CP] * (t_up * m_up - t_dn * m_dn)
    return hf, par[P_CP] * t_d * dfdp


#: columns of the ceiling vents' table ``ct`` (:func:`ceiling_rows`), a row per ceiling vent: C·A·√(2ρ) of the donor
#: up and down; per direction the nominal channel, the other channel, the share drawn from the other layer and the
#: donor temperature (:func:`_vvent_donor`); Cooper's exchange: the four channel increments and its enthalpy flow up.
(CT_COEF_UP, CT_COEF_DN, CT_CU, CT_OUP, CT_SUP, CT_TUP, CT_CDN, CT_ODN, CT_SDN, CT_TDN, CT_XCU, CT_XOUP, CT_XCDN,
 CT_XODN, CT_XH) = range(15)
NCT = 15


@njit(cache=True)
def ceiling_rows(vvent, vvidx, vvs, vvl, par, teff, vchanged, changed, ct):
    """What :func:`ceiling_flow` needs of each ceiling vent that does not depend on the floor pressures, into
    ``ct`` (:data:`NCT` columns): for every vent, or (``changed`` not empty) only those flagged in ``vchanged`` (their
    Froude shares moved) or touching a compartment flagged in ``changed`` (its donor temperatures moved). The same
    arithmetic as :func:`ceiling_vent`, looked up once per step and per donor update instead of per evaluation."""
    every = changed.shape[0] == 0
    for k in range(vvidx.shape[0]):
        lo, up = vvidx[k, 0], vvidx[k, 1]
        if not (every or vchanged[k] or changed[lo] or (up >= 0 and changed[up])):
            continue
        cu, cdn = vvl[k, 0], vvl[k, 1]
        o_up, s_up, t_up = _vvent_donor(lo, cu, vvs[k, 4], teff, par)
        o_dn, s_dn, t_dn = _vvent_donor(up, cdn, vvs[k, 5], teff, par) if up >= 0 else (cdn, 0.0, par[P_TOUT])
        ct[k, CT_COEF_UP] = vvent[k, 1] * vvent[k, 0] * math.sqrt(2.0 * vvs[k, 1])
        ct[k, CT_COEF_DN] = vvent[k, 1] * vvent[k, 0] * math.sqrt(2.0 * vvs[k, 2])
        ct[k, CT_CU], ct[k, CT_OUP], ct[k, CT_SUP], ct[k, CT_TUP] = cu, o_up, s_up, t_up
        ct[k, CT_CDN], ct[k, CT_ODN], ct[k, CT_SDN], ct[k, CT_TDN] = cdn, o_dn, s_dn, t_dn
        m_up = vvs[k, 1] * vvs[k, 3]
        m_dn = vvs[k, 2] * vvs[k, 3]
        ct[k, CT_XCU] = (1.0 - s_up) * m_up
        ct[k, CT_XOUP] = s_up * m_up
        ct[k, CT_XCDN] = (1.0 - s_dn) * m_dn
        ct[k, CT_XODN] = s_dn * m_dn
        ct[k, CT_XH] = par[P_CP] * (t_up * m_up - t_dn * m_dn)


@njit(cache=True, inline="always")
def ceiling_flow(k, pf, vvidx, vvs, ct, cp, delta, chan):
    """:func:`ceiling_vent` from the table of :func:`ceiling_rows` (the same values to the bit)."""
    for c in range(4):
        chan[k, c] = 0.0
    lo, up = vvidx[k, 0], vvidx[k, 1]
    x = pf[lo] - (pf[up] if up >= 0 else 0.0) + vvs[k, 0]
    if x >= 0.0:
        coef, col, oth, share, t_d = ct[k, CT_COEF_UP], int(ct[k, CT_CU]), int(ct[k, CT_OUP]), ct[k, CT_SUP], \
            ct[k, CT_TUP]
    else:
        coef, col, oth, share, t_d = ct[k, CT_COEF_DN], int(ct[k, CT_CDN]), int(ct[k, CT_ODN]), ct[k, CT_SDN], \
            ct[k, CT_TDN]
    f, dfdp = _orifice(x, coef, delta)
    chan[k, col] = (1.0 - share) * abs(f)
    chan[k, oth] += share * abs(f)
    hf = cp * t_d * f
    if vvs[k, 3] > 0.0:  # Cooper's exchange, the same volume each way
        chan[k, int(ct[k, CT_CU])] += ct[k, CT_XCU]
        chan[k, int(ct[k, CT_OUP])] += ct[k, CT_XOUP]
        chan[k, int(ct[k, CT_CDN])] += ct[k, CT_XCDN]
        chan[k, int(ct[k, CT_ODN])] += ct[k, CT_XODN]
        hf += ct[k, CT_XH]
    return hf, cp * t_d * dfdp


@njit(cache=True)
def _froude_share(mass_flow, rho, t_upper, t_lower, depth, g):
    """Share of a ceiling vent's flow taken from the layer next to it: exp(−(Fr/2)²), the form of CFAST's
    ``vertical_flow``, Fr = V/√(g·d⁵·(T_u − T_l)/T_l), V the volume flow, d the layer's depth; 1 where the
    layers are not stably stratified or nothing flows. (CFAST takes T − T_ambient of the layer itself,
    which for a lower layer a hair above ambient sends the whole flow from the upper layer; the buoyancy
    that holds the interface is the layers' own difference.)"""
    if mass_flow <= 0.0 or t_upper <= t_lower:
        return 1.0
    denom = g * depth ** 5 * (t_upper - t_lower) / t_lower
    if denom <= 0.0:
        return 0.0
    fr = mass_flow / rho / math.sqrt(denom)
    return math.exp(-0.25 * fr * fr)


@njit(cache=True)
def _froude_temperatures(i, layer, props, geom, par):
    """(warmer, colder) temperature whose difference is the buoyancy in the Froude number of a flow out of
    ``layer`` (0 upper, 1 lower) of compartment ``i``: the layers' own, T_u and T_l (this model's rule); or,
    with ``par[P_FROUDE]`` = :data:`RULE_CFAST`, that layer's and the compartment's initial (CFAST's interior
    ambient) temperature, as CFAST's ``vertical_flow``."""
    if par[P_FROUDE] == RULE_CFAST:
        return props[i, Q_TU + layer], geom[i, G_TWALL]
    return props[i, Q_TU], props[i, Q_TL]


@njit(cache=True)
def froude_split(vchan, vvidx, vvs, vvl, props, geom, par):
    """Set the shares ``vvs[k, 4 / 5]`` of each ceiling vent's flow up / down taken from the layer next to
    the opening (the lower compartment's upper layer, the upper compartment's lower layer) from the flows
    in ``vchan``: a strong flow out of a thin warm layer pulls gas from the layer beyond (plug-holing),
    as CFAST's ``vertical_flow``, the buoyancy by :func:`_froude_temperatures`. Where the donor lacks the
    other layer the share stays 1. Returns the largest change of a share times the donor's layer temperature
    difference (K)."""
    change = 0.0
    g = par[P_G]
    for k in range(vvidx.shape[0]):
        lo, up = vvidx[k, 0], vvidx[k, 1]
        share = 1.0
        if vvl[k, 0] == 0 and props[lo, Q_HASL] > 0.0:
            depth = geom[lo, G_BASE] + geom[lo, G_H] - props[lo, Q_ZI]
            t_w, t_c = _froude_temperatures(lo, 0, props, geom, par)
            share = _froude_share(vchan[k, 0] + vchan[k, 1], vvs[k, 1], t_w, t_c, depth, g)
            change = max(change, abs(share - vvs[k, 4]) * abs(props[lo, Q_TU] - props[lo, Q_TL]))
        vvs[k, 4] = share
        share = 1.0
        if up >= 0 and vvl[k, 1] == 3 and props[up, Q_HASU] > 0.0:
            depth = props[up, Q_ZI] - geom[up, G_BASE]
            t_w, t_c = _froude_temperatures(up, 1, props, geom, par)
            share = _froude_share(vchan[k, 2] + vchan[k, 3], vvs[k, 2], t_w, t_c, depth, g)
            change = max(change, abs(share - vvs[k, 5]) * abs(props[up, Q_TU] - props[up, Q_TL]))
        vvs[k, 5] = share
    return change


@njit(cache=True, inline="always")
def poreh_entrainment(t_hot, t_cold, mdot, z_m, width_m, p_pa, par):
    """Mass flow (kg/s) a vent jet entrains over ``z_m``: the spill plume of Poreh, Morgan, Marshall & Harrison
    (Fire Safety J. 30:1, 1998) as CFAST applies it to door jets (``poreh_plume``):
    ṁ_e = 0.44·(T_c/T_h)^(2/3)·(g·ρ_c²·Q·W²/(c_p·T_c))^(1/3)·z, Q = c_p·(T_h − T_c)·ṁ, ρ_c = p/(R·T_c)."""
    if mdot <= 0.0 or z_m <= 0.0 or width_m <= 0.0 or t_hot <= t_cold:
        return 0.0
    cp = par[P_CP]
    rho = p_pa / (par[P_R] * t_cold)
    q = cp * (t_hot - t_cold) * mdot
    return 0.44 * (t_cold / t_hot) ** (2.0 / 3.0) * (par[P_G] * rho * rho * q * width_m * width_m
                                                    / (cp * t_cold)) ** (1.0 / 3.0) * z_m


@njit(cache=True, inline="always")
def _jet_mix(d, layer_d, r, flow, zb, zt, width, props, par, mix):
    """Entrainment of receiver ``r`` by the jet of ``flow`` kg/s from (``d``, ``layer_d``) that crosses r's
    interface (CFAST's ``spill_plume``): a hot jet from d's upper layer entering r's lower layer rises to r's
    interface entraining r's lower layer into its upper (``mix[r, 0]``, over the height from the jet's bottom
    to r's interface); a cold jet from d's lower layer (or outside) entering r's upper layer falls entraining
    r's upper layer into its lower (``mix[r, 1]``, over the jet's height in r's upper layer, × 0.25)."""
    zi_r = props[r, Q_ZI]
    zi_d = props[d, Q_ZI] if d >= 0 else 1e300
    if layer_d == 0:
        if props[r, Q_HASL] > 0.0:
            zd = max(0.0, zi_r - max(zb, zi_d))
            mix[r, 0] += poreh_entrainment(props[d, Q_TU], props[r, Q_TL], flow, zd, width, props[r, Q_P], par)
    elif props[r, Q_HASU] > 0.0:
        t_jet = props[d, Q_TL] if d >= 0 else par[P_TOUT]
        zd = max(0.0, min(zt, zi_d) - max(zi_r, zb))
        mix[r, 1] += COLD_JET_FACTOR * poreh_entrainment(props[r, Q_TU], t_jet, flow, zd, width, props[r, Q_P], par)


@njit(cache=True, inline="always")
def _jet_entrains(d, layer_d, r, zb, zt, props, t_out):
    """Whether the jet from (``d``, ``layer_d``) into receiver ``r`` can entrain anything, whatever its flow
    (``t_out`` the outside's temperature): False where :func:`_jet_mix` adds exactly 0 (r has no such layer, the jet
    crosses no height of it, or it is not hotter than what it would entrain: :func:`poreh_entrainment`'s own test,
    negated as written there, so that a NaN behaves alike). The same expressions as :func:`_jet_mix`, one test a jet
    vent (6 µs for the tower's 855 jet vents at 300 s; 22 µs with ``par`` for ``t_out``, or returning the reach)."""
    zi_r = props[r, Q_ZI]
    zi_d = props[d, Q_ZI] if d >= 0 else 1e300
    if layer_d == 0:
        has = props[r, Q_HASL]
        zd = max(0.0, zi_r - max(zb, zi_d))
        t_hot = props[d, Q_TU]
        t_cold = props[r, Q_TL]
    else:
        has = props[r, Q_HASU]
        zd = max(0.0, min(zt, zi_d) - max(zi_r, zb))
        t_hot = props[r, Q_TU]
        t_cold = props[d, Q_TL] if d >= 0 else t_out
    return has > 0.0 and not (zd <= 0.0 or t_hot <= t_cold)


@njit(cache=True, inline="always")
def _jet_slab(v, x1, x2, h, vs, vl, delta, sd, cdw, jet):
    """The channels of wall vent ``v``'s middle slab (height ``h``, where a jet crosses; Δp running linearly from
    ``x1`` to ``x2``) into ``jet[v]`` (from a's layer ``vl[v, 2]``, from b's ``vl[v, 3]``; ``cdw`` = C·W): the
    slab cut where Δp crosses −δ, 0, +δ (:func:`piece_ends`) and the orifice law over each piece (:func:`_piece_sd`,
    √δ given as ``sd``), as :func:`wall_flows` with the donor's C·W·√(2ρ) and the piece's height h·(t − t') apart,
    without the enthalpy and the weight (a former general slab function, with them, made :func:`door_jets` 1.6×
    slower: at 7,000 s 313 of the tower's 452 jet slabs that can entrain are cut at their neutral plane)."""
    dx = x2 - x1
    col_a, col_b = vl[v, 2], 2 + vl[v, 3]
    if min(x1, x2) > delta or max(x1, x2) < -delta:  # one piece: piece_ends' (1, 1, 1, 1), to the bit
        yb = x1 + dx
        if 0.5 * (x1 + yb) >= 0.0:
            jet[v, col_a] += abs(_piece_sd(x1, yb, h, cdw * math.sqrt(2.0 * vs[v, VS_RHO + 2]), delta, sd)[0])
        else:
            jet[v, col_b] += abs(_piece_sd(x1, yb, h, cdw * math.sqrt(2.0 * vs[v, VS_RHO + 3]), delta, sd)[0])
        return
    coef_a = cdw * math.sqrt(2.0 * vs[v, VS_RHO + 2])
    coef_b = cdw * math.sqrt(2.0 * vs[v, VS_RHO + 3])
    t_prev = 0.0
    for t in piece_ends(x1, x2, delta):
        if not t > t_prev:
            continue
        ya = x1 + dx * t_prev
        yb = x1 + dx * t
        hh = h * (t - t_prev)
        t_prev = t
        if 0.5 * (ya + yb) >= 0.0:
            jet[v, col_a] += abs(_piece_sd(ya, yb, hh, coef_a, delta, sd)[0])
        else:
            jet[v, col_b] += abs(_piece_sd(ya, yb, hh, coef_b, delta, sd)[0])


@njit(cache=True)
def door_jets(pf, vent, vidx, vs, vl, props, par, jet, mix):
    """Vent-jet mixing of every compartment at floor pressures ``pf`` into ``mix`` (N, 2): kg/s entrained from
    the lower layer into the upper (column 0) and from the upper into the lower (column 1).

    Only the part of a wall vent between the two sides' interfaces (the middle slab of :func:`vent_statics`:
    upper layer on one side, lower on the other) carries a jet across a receiving interface; its flow each
    way is summed (``jet`` (M, 4) scratch channels, :func:`_jet_slab`, set only on the vents with such a slab whose
    jet can entrain something one way or the other, :func:`_jet_entrains`) and entrains by :func:`_jet_mix`. The jets
    that cannot entrain would add exactly 0: their flows are not worked out (on the bench tower 56-452 of its
    855-1,337 jet vents can entrain, 300 s to 7,000 s after ignition: 54-105 µs -> 9-33 µs); a jet's flow needs no
    donor temperature."""
    for i in range(mix.shape[0]):
        mix[i, 0] = 0.0
        mix[i, 1] = 0.0
    t_out, delta = par[P_TOUT], par[P_DELTA]
    sd = math.sqrt(delta)
    for v in range(vidx.shape[0]):
        if vl[v, 2] == vl[v, 3]:  # no jet slab (the usual case; its rows of ``jet`` are left as they were)
            continue
        width = vent[v, V_W] * vent[v, V_OPEN]
        h = vs[v, VS_Z + 2] - vs[v, VS_Z + 1]
        if width <= 0.0 or h <= 0.0:
            continue
        a, b = vidx[v, 0], vidx[v, 1]
        zb, zt = vent[v, V_BOT], vent[v, V_TOP]
        into_b = b >= 0 and _jet_entrains(a, vl[v, 2], b, zb, zt, props, t_out)
        into_a = _jet_entrains(b, vl[v, 3], a, zb, zt, props, t_out)
        if not (into_b or into_a):  # (most jet vents; their rows of ``jet`` are left as they were)
            continue
        for c in range(4):
            jet[v, c] = 0.0
        c0 = pf[a] - (pf[b] if b >= 0 else 0.0)
        _jet_slab(v, c0 + vs[v, VS_D + 1], c0 + vs[v, VS_D + 2], h, vs, vl, delta, sd, vent[v, V_CD] * width, jet)
        if into_b and jet[v, 0] + jet[v, 1] > 0.0:
            _jet_mix(a, vl[v, 2], b, jet[v, 0] + jet[v, 1], zb, zt, width, props, par, mix)
        if into_a and jet[v, 2] + jet[v, 3] > 0.0:
            _jet_mix(b, vl[v, 3], a, jet[v, 2] + jet[v, 3], zb, zt, width, props, par, mix)


@njit(cache=True, inline="always")
def _flow_temperature(side, c_u, c_l, props, par):
    """Mixed temperature of ``c_u`` kg/s from ``side``'s upper layer and ``c_l`` from its lower (outside: T_out)."""
    if side < 0:
        return par[P_TOUT]
    return (c_u * props[side, Q_TU] + c_l * props[side, Q_TL]) / (c_u + c_l)


@njit(cache=True)
def ceiling_vent_plumes(vchan, vvidx, vvent, geom, props, par, state, dt, mix, vdest):
    """Where the flows through the ceiling vents land, and what they entrain on the way (``vdest`` (K, 2): layer of
    the receiver for the flow up and for the flow down, −1 for the default rule; entrainment added to ``mix``).

    Up, into the upper compartment's lower layer at its floor: gas lighter than that lower layer (by ``hot_dt``)
    rises to the upper layer (CFAST's ``vertical_flow`` rule). Down, into the lower compartment's upper layer at
    its ceiling: gas lighter than that upper layer stays in it; denser gas falls through it as a negatively
    buoyant plume (Heskestad's entrainment over the upper layer's depth with the excess enthalpy flow
    c_p·(T_u − T)·ṁ, the vent's equivalent diameter, × 0.25 for a cold plume falling through a hot layer as
    CFAST's ``spill_plume``; at most half the layer in the step ``dt``), and the mixture joins the upper layer
    unless it is denser than the lower layer, where it lands with what it entrained (upper → lower in ``mix``).
    With ``par[P_VDEP]`` = :data:`RULE_CFAST` the flow down lands as CFAST's ``vertical_flow`` puts it: unmixed,
    in the upper layer when lighter than the lower layer (by ``hot_dt``), else in the lower layer."""
    cp, hot = par[P_CP], par[P_HOT]
    for k in range(vvidx.shape[0]):
        lo, up = vvidx[k, 0], vvidx[k, 1]
        m_up = vchan[k, 0] + vchan[k, 1]
        if up >= 0 and m_up > 0.0 and props[up, Q_HASL] > 0.0:
            if _flow_temperature(lo, vchan[k, 0], vchan[k, 1], props, par) > props[up, Q_TL] + hot:
                vdest[k, 0] = 0
        m_dn = vchan[k, 2] + vchan[k, 3]
        if m_dn > 0.0 and par[P_VDEP] == RULE_CFAST:
            t_d = _flow_temperature(up, vchan[k, 2], vchan[k, 3], props, par)
            vdest[k, 1] = 0 if t_d > props[lo, Q_TL] + hot else 1
        elif m_dn > 0.0 and props[lo, Q_HASU] > 0.0 and props[lo, Q_HASL] > 0.0:
            t_d = _flow_temperature(up, vchan[k, 2], vchan[k, 3], props, par)
            tu, tl = props[lo, Q_TU], props[lo, Q_TL]
            if t_d >= tu:
                vdest[k, 1] = 0
                continue
            q = cp * (tu - t_d) * m_dn / 1000.0
            z = geom[lo, G_BASE] + geom[lo, G_H] - props[lo, Q_ZI]
            d = math.sqrt(4.0 * vvent[k, 0] / math.pi)  # (only here: the vent's equivalent diameter)
            ent = min(COLD_JET_FACTOR * heskestad_entrainment(q, z, q, d), 0.5 * state[lo, MU] / dt)
            if (m_dn * t_d + ent * tu) / (m_dn + ent) > tl + hot:
                vdest[k, 1] = 0
            else:
                vdest[k, 1] = 1
                mix[lo, 1] += ent


@njit(cache=True)
def heskestad_entrainment(qc_kw, z_m, q_kw, d_m):
    """Plume mass flow (kg/s) at height ``z_m`` above the fire (Heskestad, SFPE Handbook ch. 2-1).

    Mean flame height L = 0.235·Q^(2/5) − 1.02·D, virtual origin z0 = 0.083·Q^(2/5) − 1.02·D;
    above L: ṁ = 0.071·Qc^(1/3)·(z − z0)^(5/3)·(1 + 0.026·Qc^(2/3)·(z − z0)^(−5/3));
    within the flame: ṁ = 0.0056·Qc·z/L.
    """
    if qc_kw <= 0.0 or z_m <= 0.0:
        return 0.0
    q25 = q_kw ** 0.4
    flame = 0.235 * q25 - 1.02 * d_m
    z0 = 0.083 * q25 - 1.02 * d_m
    if flame > 0.0 and z_m < flame:
        return 0.0056 * qc_kw * z_m / flame
    dz = max(z_m - z0, 1e-6)
    return 0.071 * qc_kw ** (1.0 / 3.0) * dz ** (5.0 / 3.0) * (1.0 + 0.026 * qc_kw ** (2.0 / 3.0) * dz ** (-5.0 / 3.0))


@njit(cache=True, inline="always")
def o2_volume_fraction(state, i, col0, mass):
    """O2 mole fraction of the layer whose species start at column ``col0`` (rest counted as N2)."""
    if mass <= 0.0:
        return 0.0
    moles = 0.0
    rest = mass
    for s in range(NSP):
        y = state[i, col0 + s]
        moles += y / MOLAR_MASS[s]
        rest -= y
    moles += max(rest, 0.0) / M_N2
    return (state[i, col0 + SP_O2] / MOLAR_MASS[SP_O2]) / moles


@njit(cache=True)
def layer_emissivity(soot_kg, vu, tu, a_bound):
    """Grey-gas emissivity of an upper layer of volume ``vu`` (m³), temperature ``tu`` (K) holding ``soot_kg`` of
    soot, bounded by ``a_bound`` m² (ceiling, walls above the interface, the interface): ε = 1 − exp(−κ·L_m),
    κ = 1862·f_v·T (f_v = soot/(V_u·1800 kg/m³)), mean beam length L_m = 3.6·V_u/A_u."""
    if vu <= 0.0 or soot_kg <= 0.0 or a_bound <= 0.0:
        return 0.0
    kappa = SOOT_KAPPA * soot_kg / (vu * SOOT_DENSITY) * tu
    return 1.0 - math.exp(-kappa * 3.6 * vu / a_bound)


@njit(cache=True)
def surface_temperature(gain, dcoef, cr, tu):
    """Root T_s of gain − dcoef·T_s + cr·(T_u⁴ − T_s⁴) = 0 (the lumped surface's balance, decreasing and concave
    in T_s) by Newton's method from the root without radiation: after the first step every iterate lies above the
    root and falls to it monotonically."""
    ts = gain / dcoef
    if cr <= 0.0:
        return ts
    tu4 = tu ** 4
    for _ in range(60):
        f = gain - dcoef * ts + cr * (tu4 - ts ** 4)
        step = f / (dcoef + 4.0 * cr * ts ** 3)
        ts += step
        if abs(step) <= 1e-12 * ts:
            break
    return ts


@njit(cache=True)
def open_area(vent, vidx, vvent, vvidx, n):
    """(N,) open area (m²) of each compartment's vents to the outside: wall vents W·open fraction·height,
    ceiling vents their area."""
    out = np.zeros(n)
    for v in range(vidx.shape[0]):
        if vidx[v, 1] < 0:
            out[vidx[v, 0]] += vent[v, V_W] * vent[v, V_OPEN] * (vent[v, V_TOP] - vent[v, V_BOT])
    ceiling_open_area(vvidx, vvent, out)
    return out


@njit(cache=True)
def ceiling_open_area(vvidx, vvent, out):
    """:func:`open_area`'s ceiling vents: the area of each vent to the outside added to its compartment's ``out``."""
    for k in range(vvidx.shape[0]):
        if vvidx[k, 1] < 0:
            out[vvidx[k, 0]] += vvent[k, 0]


@njit(cache=True)
def _conducting_surfaces(i, state, geom, props, par, dt, cr, qout, t_surf, qburn_kw, src, qs):
    """Layer losses of compartment ``i`` to three conducting faces, ceiling / walls / floor at ``t_surf[i]``: the
    upper layer convects to the ceiling and the walls above the interface, the lower layer to the floor and the
    walls below (h_c); the upper layer radiates (``cr``·(T_u⁴ − T_s⁴) in all) to the ceiling, the walls above and,
    through the clear lower layer, across the interface to the floor and the walls below, shared by area (the
    interface's share split between floor and lower walls by their areas); the flame's radiated fraction lands
    by area. Each layer's loss is capped as the lumped surface's (at what brings it to its farthest face); ``qs[i]``
    the heat each face takes (W), ``src[i, 4..8]`` as :func:`fire_sources`, ``src[i, 6]`` the faces' mean by area."""
    cv = par[P_CP] - par[P_R]
    hc = par[P_HCONV]
    perim, area, hgt = geom[i, G_PERIM], geom[i, G_AREA], geom[i, G_H]
    hl = props[i, Q_ZI] - geom[i, G_BASE]
    wall_up, wall_lo = perim * (hgt - hl), perim * hl
    bound = 2.0 * area + wall_up
    below = area + wall_lo
    rad = (area / bound, (wall_up + area * wall_lo / below) / bound, area * area / below / bound)
    conv_u = (area, wall_up, 0.0)
    conv_l = (0.0, wall_lo, area)
    total = 2.0 * area + perim * hgt
    flame = par[P_CHIR] * qburn_kw * 1000.0
    face_area = (area, perim * hgt, area)
    for f in range(3):
        qs[i, f] = flame * face_area[f] / total
    src[i, 6] = (area * (t_surf[i, 0] + t_surf[i, 2]) + perim * hgt * t_surf[i, 1]) / total
    for layer in range(2):
        has = props[i, Q_HASU] if layer == 0 else props[i, Q_HASL]
        if has <= 0.0:
            continue
        mass = state[i, MU] if layer == 0 else state[i, ML]
        temp = props[i, Q_TU] if layer == 0 else props[i, Q_TL]
        q = 0.0
        qrad = 0.0
        far = 0.0
        for f in range(3):
            ts = t_surf[i, f]
            conv = conv_u[f] if layer == 0 else conv_l[f]
            r = cr * rad[f] * (temp ** 4 - ts ** 4) if layer == 0 else 0.0
            if conv > 0.0 or r != 0.0:
                far = max(far, abs(temp - ts))
            q += hc * conv * (temp - ts) + r
            qrad += r
        cap = cv * mass * far / dt
        scale = cap / abs(q) if abs(q) > cap else 1.0
        for f in range(3):
            ts = t_surf[i, f]
            conv = conv_u[f] if layer == 0 else conv_l[f]
            r = cr * rad[f] * (temp ** 4 - ts ** 4) if layer == 0 else 0.0
            qs[i, f] += scale * (hc * conv * (temp - ts) + r)
        q *= scale
        qrad *= scale
        qo = 0.0
        if layer == 0 and qout > 0.0:
            qo = min(qout, max(cv * mass * (temp - par[P_TOUT]) / dt - q, 0.0))
        src[i, 4 + layer] = q + qo
        if layer == 0:
            src[i, 7] = qrad
            src[i, 8] = qo


@njit(cache=True)
def fire_sources(state, geom, props, par, q_kw, dt, src, qburn, a_open, t_surf, qs):
    """Fire, plume and wall terms of every compartment into ``src`` (N, NSRC): entrainment (kg/s),
    fuel burned (kg/s), O2 consumed (kg/s), convective release (W), upper layer's loss (W: to the walls and out
    of the openings), lower layer's loss to the walls (W), the wall surface temperature (K), the upper layer's
    radiation to the surfaces (W) and out of its openings to the outside (W, ``a_open`` m² of them, seen as
    black at the outside's temperature), both part of the upper layer's loss; ``qburn`` (kW) the heat release
    actually burned. ``t_surf`` (N, 3) the exposed faces of conducting walls (:mod:`physics._kernels.fire_walls`;
    ceiling, walls, floor at the start of the step), or empty (0 rows) for the lumped quasi-steady surface;
    then ``qs`` (N, 3) receives the heat (W) each of them takes (:func:`_conducting_surfaces`)."""
    cv = par[P_CP] - par[P_R]
    t = max(par[P_TIME], 1e-9)
    for i in prange(state.shape[0]):  # (range here; the two-thread step compiles this code in parallel)
        for c in range(NSRC):
            src[i, c] = 0.0
        qburn[i] = 0.0
        base, hgt = geom[i, G_BASE], geom[i, G_H]
        if q_kw[i] > 0.0 and props[i, Q_HASL] > 0.0:
            ml = state[i, ML]
            xo2 = o2_volume_fraction(state, i, SL, ml)
            lam = min(max((xo2 - par[P_LOL]) / 0.01, 0.0), 1.0)
            qd = lam * q_kw[i]
            qc = (1.0 - par[P_CHIR]) * qd
            z = props[i, Q_ZI] - base if props[i, Q_HASU] > 0.0 else hgt
            ent = min(heskestad_entrainment(qc, z, qd, par[P_DFIRE]), 0.5 * ml / dt)
            yo2 = state[i, SL + SP_O2] / ml
            qb = min(qd, ent * yo2 * HUGGETT_J_KG / 1000.0)
            qburn[i] = qb
            src[i, 0] = ent
            src[i, 1] = qb / par[P_DHC]
            src[i, 2] = qb * 1000.0 / HUGGETT_J_KG
            src[i, 3] = (1.0 - par[P_CHIR]) * qb * 1000.0
        # walls: one lumped, quasi-steady inner surface per compartment (no heat capacity of its own):
        # convection h_c from each layer + the flame's radiation + the upper layer's radiation in = conduction
        # h_k(t) into the solid (MQH's effective conductance, NUREG-1805 ch. 2); each layer then loses
        # h_c·A_layer·(T − T_s), the upper layer also σ·ε·A_u·(T_u⁴ − T_s⁴)
        k, rho, c, th = geom[i, G_K], geom[i, G_RHO], geom[i, G_C], geom[i, G_THICK]
        tp = rho * c / k * (0.5 * th) ** 2
        hk = math.sqrt(k * rho * c / t) if t < tp else k / th
        hc = par[P_HCONV]
        perim, area, tw = geom[i, G_PERIM], geom[i, G_AREA], geom[i, G_TWALL]
        hl = props[i, Q_ZI] - base
        a_u = area + perim * (hgt - hl)
        a_l = area + perim * hl
        tu = props[i, Q_TU]
        # the upper layer sees the ceiling and walls above the interface and, through the clear lower layer,
        # the floor and walls below: its bounding area A_u = a_u + the interface (area); grey gas against grey
        # surfaces of emissivity ε_w: ε_eff = 1/(1/ε_g + 1/ε_w − 1)
        # surfaces; the openings to the outside in that area (at most half of it) are black at T_out
        cr = 0.0
        qout = 0.0
        if par[P_LAYRAD] > 0.0 and props[i, Q_HASU] > 0.0 and props[i, Q_HASL] > 0.0:
            eps_g = layer_emissivity(state[i, SU + SP_SOOT], props[i, Q_VU], tu, a_u + area)
            if eps_g > 0.0:
                a_o = min(a_open[i], 0.5 * (a_u + area))
                cr = SIGMA * (a_u + area - a_o) / (1.0 / eps_g + 1.0 / par[P_EPSW] - 1.0)
                qout = SIGMA * eps_g * a_o * (tu ** 4 - par[P_TOUT] ** 4)
        if t_surf.shape[0] > 0:  # conducting walls: three faces, explicit over the step
            _conducting_surfaces(i, state, geom, props, par, dt, cr, qout, t_surf, qburn[i], src, qs)
            continue
        gain = hc * (a_u * tu + a_l * props[i, Q_TL]) + par[P_CHIR] * qburn[i] * 1000.0 + hk * (a_u + a_l) * tw
        ts = surface_temperature(gain, (hc + hk) * (a_u + a_l), cr, tu)
        src[i, 6] = ts
        for layer in range(2):
            mass = state[i, MU] if layer == 0 else state[i, ML]
            has = props[i, Q_HASU] if layer == 0 else props[i, Q_HASL]
            if has <= 0.0:
                continue
            temp = tu if layer == 0 else props[i, Q_TL]
            qrad = cr * (temp ** 4 - ts ** 4) if layer == 0 else 0.0
            qo = qout if layer == 0 else 0.0
            q = hc * (a_u if layer == 0 else a_l) * (temp - ts) + qrad
            cap = cv * mass * abs(temp - ts) / dt
            if abs(q) > cap:
                scale = cap / abs(q)
                q *= scale
                qrad *= scale
            if qo > 0.0:  # out of the openings: at most what would bring the layer to the outside's temperature
                qo = min(qo, max(cv * mass * (temp - par[P_TOUT]) / dt - q, 0.0))
            src[i, 4 + layer] = q + qo
            if layer == 0:
                src[i, 7] = qrad
                src[i, 8] = qo
    return 0


@njit(cache=True)
def residual_and_merit(dp, pn, dt, diag, geom, props, par, vidx, vvidx, src, stat, chan, vchan, res, wv, wvv, hv, hvv,
                       pf, du, dl):
    """R_i = V_i/((γ − 1)dt)·dp_i − H_i(p^n + dp) − S_i into ``res`` (``diag`` the V_i/((γ − 1)dt), ``pf`` (N,)
    scratch for the floor pressures); vent weights into ``wv``/``wvv``, each vent's enthalpy flow (a → b, lower →
    upper) into ``hv``/``hvv``; returns :func:`error_and_merit` of the residual. Only the wall vents ``stat[6]``
    are evaluated and summed: the others must carry nothing (their ``chan``, ``hv`` and ``wv`` zero; :func:`step`
    lists the open ones, :func:`open_vents`). The wall vents' outflow from each layer over ``dt`` goes into ``du``,
    ``dl`` (N,) in the same pass, for the layer limiting that follows every residual (:func:`_fractions_from_sums`)."""
    n = res.shape[0]
    gm1 = par[P_R] / (par[P_CP] - par[P_R])
    for i in range(n):
        pf[i] = pn[i] + dp[i]
    for i in range(n):
        res[i] = diag[i] * dp[i] - (src[i, 3] - src[i, 4] - src[i, 5] + par[P_CP] * props[i, Q_TL] * src[i, 1])
        du[i] = 0.0
        dl[i] = 0.0
    wall_flows_summed(stat[6], pf, vidx, stat[4], stat[5], par[P_DELTA], chan, hv, wv, res, du, dl, dt)
    vvs, ct, cp, delta = stat[2], stat[7], par[P_CP], par[P_DELTA]
    for k in range(vvidx.shape[0]):
        hf, w = ceiling_flow(k, pf, vvidx, vvs, ct, cp, delta, vchan)
        wvv[k] = w
        hvv[k] = hf
        res[vvidx[k, 0]] += hf
        if vvidx[k, 1] >= 0:
            res[vvidx[k, 1]] -= hf
    return error_and_merit(res, geom, gm1, dt)


@njit(cache=True)
def error_and_merit(res, geom, gm1, dt):
    """(the pressure error, the merit) of the residual ``res`` in one pass. The pressure error is the largest
    |R_i|·(γ − 1)·dt/V_i (Pa): the pressure error the residual implies. The merit Σ (R_i·(γ − 1)·dt/V_i)² (Pa²) is the
    line search's measure. Along the Newton step d its slope is −2·merit, so a step λ·d is taken once it lowers the
    merit by the share λ/2 (Armijo's rule with c = 1/4; Nocedal & Wright, Numerical Optimization, §3.1). A bare
    decrease is not enough: across a flow reversal the orifice law's √|Δp| sends Newton from Δp to −Δp (a two-cycle
    whose merit barely falls; found in tall stair shafts). The maximum need not fall along d at all."""
    err = 0.0
    total = 0.0
    for i in range(res.shape[0]):
        x = res[i] * gm1 * dt / geom[i, G_VOL]
        err = max(err, abs(x))
        total += x * x
    return err, total


@njit(cache=True)
def update_vents_into(changed, vchanged, pf, vidx, vvidx, par, stat, chan, vchan, res, wv, wvv, hv, hvv, sel):
    """Evaluate again the vents touching a compartment flagged in ``changed`` (its donor temperatures moved;
    their rows of the slab table already follow, :func:`refresh_donors`) and the ceiling vents flagged in
    ``vchanged`` (their Froude shares moved), at the floor pressures ``pf``, and swap their part of the residual:
    the whole residual without evaluating the other vents (``sel`` (M,) scratch for the selected vents)."""
    first, sp = stat[4], stat[5]
    m = 0
    for v in range(vidx.shape[0]):
        a, b = vidx[v, 0], vidx[v, 1]
        if (changed[a] or (b >= 0 and changed[b])) and first[v + 1] > first[v]:
            res[a] -= hv[v]
            if b >= 0:
                res[b] += hv[v]
            sel[m] = v
            m += 1
    wall_flows(sel[:m], pf, vidx, first, sp, par[P_DELTA], chan, hv, wv)
    for j in range(m):
        a, b = vidx[sel[j], 0], vidx[sel[j], 1]
        res[a] += hv[sel[j]]
        if b >= 0:
            res[b] -= hv[sel[j]]
    for k in range(vvidx.shape[0]):
        a, b = vvidx[k, 0], vvidx[k, 1]
        if vchanged[k] or changed[a] or (b >= 0 and changed[b]):
            hf, w = ceiling_flow(k, pf, vvidx, stat[2], stat[7], par[P_CP], par[P_DELTA], vchan)
            res[a] += hf - hvv[k]
            if b >= 0:
                res[b] -= hf - hvv[k]
            hvv[k] = hf
            wvv[k] = w


@njit(cache=True)
def donor_temperatures(props, fu, fl, teff, changed):
    """The donor temperatures the layer limiting gives (a layer that cannot give its outflow gives the rest from
    the other layer) into ``teff``; flags in ``changed`` the compartments whose values moved; returns the
    largest move (K)."""
    change = 0.0
    for i in range(teff.shape[0]):
        tu = fu[i] * props[i, Q_TU] + (1.0 - fu[i]) * props[i, Q_TL]
        tl = fl[i] * props[i, Q_TL] + (1.0 - fl[i]) * props[i, Q_TU]
        move = max(abs(tu - teff[i, 0]), abs(tl - teff[i, 1]))
        changed[i] = move > 0.0
        change = max(change, move)
        teff[i, 0] = tu
        teff[i, 1] = tl
    return change


def ldl_plan(n: int, vidx: np.ndarray, vvidx: np.ndarray) -> tuple:
    """The pressure Jacobian's factorisation plan, once per network (plain Python): the fill-reducing order of
    the compartments (:func:`~physics._kernels.sparse_ldl.minimum_degree` over the vent graph), the permuted
    pattern's factor L and the lists of the factorisation's operations on it; see :func:`direct_solve`.

    Returns (new, order, wall_ends, ceil_ends, wall_lpos, ceil_lpos, rp, rj, lq, up, us, ut, sj, sq, lp, li, ad, lx,
    d, y), the index arrays as uint32 (:func:`_unsigned`): ``new[i]`` compartment i's row in the permuted matrix,
    ``order`` its inverse, ``wall_ends``/``ceil_ends`` each vent's two ends' rows (n: outside),
    ``wall_lpos``/``ceil_lpos`` the position in L's values of each vent's off-diagonal entry (nnz(L), out of range,
    for vents to outside; several vents between one pair share one), ``rp``/``rj`` the rows' patterns of L
    (:func:`~physics._kernels.sparse_ldl.row_patterns`), ``lq`` their positions in L's columns and ``li`` L's row
    indices (:func:`~physics._kernels.sparse_ldl.row_positions`), ``up``/``us``/``ut`` the
    factorisation's update lists (:func:`~physics._kernels.sparse_ldl.update_lists`), ``sj``/``sq`` the rows sorted
    by column (:func:`~physics._kernels.sparse_ldl.rows_by_column`), ``lp`` L's column pointers; from
    :data:`LDL_SCRATCH` on the solve's scratch, made once: the matrix's diagonal (permuted), L's values, D, the
    permuted solution."""
    vidx = np.asarray(vidx, np.int64).reshape(-1, 2)
    vvidx = np.asarray(vvidx, np.int64).reshape(-1, 2)
    edges = np.concatenate([vidx, vvidx])
    if np.any(edges[:, 0] < 0) or np.any(edges[:, 0] == edges[:, 1]):
        raise ValueError("a vent joins a compartment (first end) to another one or to outside (−1)")
    order = LDL.minimum_degree(n, edges)
    ap, ai, _diag_pos, edge_pos = LDL.pattern(n, edges, order)
    parent, lp = LDL.symbolic(ap, ai)
    rp, rj = LDL.row_patterns(ap, ai, parent)
    lq, li = LDL.row_positions(rp, rj, lp)
    up, us, ut = LDL.update_lists(rp, rj, lp, li, lq)
    sj, sq = LDL.rows_by_column(rp, rj, lq)
    new = np.empty(n, np.int64)
    new[order] = np.arange(n)
    ends = np.where(edges >= 0, new[edges], n)
    # A's entry (i, j), i < j, at position edge_pos of the upper CSC is L[j, i]: find it in row j's pattern
    at = {(int(k), int(rj[t])): int(lq[t]) for k in range(n) for t in range(rp[k], rp[k + 1])}
    lpos = np.array([at[(max(a, b), min(a, b))] if b < n else lp[n] for a, b in ends.tolist()], np.int64)
    assert np.array_equal(lpos < lp[n], edge_pos >= 0)
    m = vidx.shape[0]
    index = (new, order, ends[:m], ends[m:], lpos[:m], lpos[m:], rp, rj, lq, up, us, ut, sj, sq, lp, li)
    return (*(_unsigned(a) for a in index), np.zeros(n), np.zeros(lp[n]), np.empty(n), np.empty(n))


def _unsigned(a: np.ndarray) -> np.ndarray:
    """``a`` as uint32, a fresh contiguous copy: numba indexes with unsigned integers without the test for negative
    indices (Python's wrap-around) that signed ones cost. On the tower this alone takes the factorisation (its 6,275
    indirect multiply-subtracts) from ~20 to ~11 µs, the two substitutions from ~13 to ~9.5 and the assembly (with
    the open vents' list read as unsigned) from ~10 to ~5.5 (CPU time)."""
    if a.size and (a.min() < 0 or a.max() >= 2 ** 32):
        raise ValueError("an index of the LDLᵀ plan outside uint32")
    return np.ascontiguousarray(a, np.uint32)


#: the index in :func:`ldl_plan` from which on its arrays are scratch (the rest is read-only)
LDL_SCRATCH = 16


#: the read-only arrays among :func:`step_plan`'s work arrays (the rest is scratch)
WORK_READ_ONLY = (12, 20, 21)


def step_plan(n: int, vidx: np.ndarray, vvidx: np.ndarray) -> tuple:
    """What :func:`step` takes as ``plan``, once per network (plain Python): (:func:`ldl_plan`, the step's work
    arrays). The work arrays are scratch that every step overwrites (or fills where it needs zeros), but for those
    at :data:`WORK_READ_ONLY` (the wall vents' indices 0..M−1, :func:`vent_adjacency`) and the last, the outside's
    pressures at the vents to outside that :func:`wall_statics` keeps from step to step (each row checked against
    the opening and the atmosphere it was worked out for, so models of other seasons may share the plan); made once
    they spare the step ~0.3 ms on the 2,212-compartment tower, most of it the page faults of its few large
    arrays (the slab table, the vent statics) allocated afresh every step."""
    vidx = np.asarray(vidx, np.int64).reshape(-1, 2)
    vvidx = np.asarray(vvidx, np.int64).reshape(-1, 2)
    m, kk = vidx.shape[0], vvidx.shape[0]
    work = (np.empty((n, NPROP)), np.empty((n, NSRC)), np.empty((n, 3)), np.empty((n, 2)), np.empty(n),
            np.empty(n), np.empty((m, NVS)), np.empty((m, 6), np.int64), np.empty((kk, 6)),
            np.empty((kk, 2), np.int64), np.empty(m + 1, np.int64), np.empty((3 * m, NOS)), np.arange(m),
            np.empty((n, 2)), np.empty((kk, 2), np.int64), np.empty((n, 2)), np.empty((n, 2)),
            np.empty((n, 2, NSP)), np.empty((m, 4)), np.empty((kk, NCT)), *vent_adjacency(n, vidx),
            np.empty(m, np.int64), np.full((m + 1, NOC), np.nan))
    return ldl_plan(n, vidx, vvidx), work


@njit(cache=True)
def direct_solve(rhs, diag, wv, wvv, plan, x, vents=None):
    """Solve J·x = rhs exactly, J = diag + the Laplacian of the vent weights (outside vents on the diagonal
    only; SPD), by the sparse LDLᵀ factorisation of :func:`ldl_plan`'s pattern (in its scratch arrays); returns 0,
    or −1 where J was not positive definite (x then holds zeros). ``vents``: only those wall vents (ascending) have
    weights (the others' are zero), else all. (The vents' ends come from the plan, permuted.)

    J is assembled straight into the factorisation's arrays (its diagonal permuted into ``ad``, its strictly lower
    entries into L's positions in ``lx``), factorised in place by the static update lists
    (:func:`~physics._kernels.sparse_ldl.numeric_lists`) and solved with the permutation folded into the
    substitutions (:func:`~physics._kernels.sparse_ldl.solve_rows`): the same additions in the same order as
    assembling the CSC matrix and :func:`~physics._kernels.sparse_ldl.numeric_rows`/``solve``, so the same x to
    the bit, in ~26 µs instead of ~55 (CPU time) on the 2,212-compartment tower (3,509 open wall vents, 571
    ceiling vents, nnz(L) = 4,749)."""
    (new, order, wall_ends, ceil_ends, wall_lpos, ceil_lpos, rp, rj, lq, up, us, ut, sj, sq, lp, li,
     ad, lx, d, y) = plan
    n = rhs.shape[0]
    for i in range(n):
        ad[new[i]] = diag[i]
    lx[:] = 0.0
    m = wall_ends.shape[0] if vents is None else vents.shape[0]
    for j in range(m):
        v = j if vents is None else np.uint32(vents[j])  # unsigned: no test for negative indices
        a, b, w = wall_ends[v, 0], wall_ends[v, 1], wv[v]
        ad[a] += w
        if b < n:
            ad[b] += w
            lx[wall_lpos[v]] -= w
    for k in range(ceil_ends.shape[0]):
        a, b, w = ceil_ends[k, 0], ceil_ends[k, 1], wvv[k]
        ad[a] += w
        if b < n:
            ad[b] += w
            lx[ceil_lpos[k]] -= w
    if LDL.numeric_lists(rp, rj, lq, up, us, ut, ad, lx, d) < n:
        x[:] = 0.0
        return -1
    LDL.solve_rows(rp, sj, sq, lp, li, lx, d, order, rhs, y, x)
    return 0


#: The merit's round-off floor in units of the floor pressures' rounding (:func:`merit_floor`).
MERIT_FLOOR_FACTOR = 4.0


@njit(cache=True)
def merit_floor(pn, dp, diag, plan, factor=MERIT_FLOOR_FACTOR):
    """The merit's round-off floor at the floor pressures pn + dp: Σ_i (c·ε·|p_i|·(J_ii − d_i)/d_i)², d_i =
    V_i/((γ − 1)dt), J_ii the Jacobian's diagonal of the last LDLᵀ solve (``plan``'s permuted one,
    :func:`direct_solve`), c = :data:`MERIT_FLOOR_FACTOR`, ε the double's unit round-off. A floor pressure (~1e5 Pa)
    is held to ε·|p| (~2e-11 Pa); through the vents' slopes at compartment i that rounding alone gives a residual of
    about ε·|p_i|·(J_ii − d_i), a scaled residual of that over d_i. On the 2,212-compartment tower the scaled
    residual cannot fall below 3e-5 to 7e-5 Pa, 30-70 times ``newton_tol``: below that the merit is noise.
    (``factor`` in place of c.)"""
    new, ad = plan[0], plan[LDL_SCRATCH]
    eps = np.finfo(np.float64).eps
    total = 0.0
    for i in range(pn.shape[0]):
        x = factor * eps * abs(pn[i] + dp[i]) * (ad[new[i]] - diag[i]) / diag[i]
        total += x * x
    return total


@njit(cache=True)
def line_search_merit(dp, step, trial, pn, dt, diag, geom, props, par, vidx, vvidx, src, stat, chan, vchan, fit, res,
                      wv, wvv, hv, hvv, pf, du, dl, floor=0.0):
    """``trial`` = dp + λ·step for λ = 1, 1/2, … (12 tries): the first that meets Armijo's rule on the merit
    (:func:`error_and_merit`; ``fit`` its value at dp), or the whole step when its merit is at most ``floor`` (the
    merit's round-off floor, :func:`merit_floor`, given for Newton's last correction, the one within ``newton_tol``;
    0 otherwise), else the one of lowest merit. At the floor Armijo's rule fails on noise (the merit 0.7-1.2 times
    ``fit`` on the tower) and halved the last correction up to 12 times, an evaluation of the flows each: 2.6 per
    step on the tower at δ = 1e-3 Pa. The residual and flows there
    into ``res``, ``wv``, ``wvv``, ``hv``, ``hvv``, ``chan``, ``vchan``, its layers' outflows in ``du``, ``dl``
    (:func:`residual_and_merit`; ``diag`` the V_i/((γ − 1)dt), ``pf`` scratch); returns (pressure error, merit)
    there."""
    lam = 1.0
    best, best_lam = np.inf, 1.0
    for _ in range(12):
        for i in range(dp.shape[0]):
            trial[i] = dp[i] + lam * step[i]
        err, fit_lam = residual_and_merit(trial, pn, dt, diag, geom, props, par, vidx, vvidx, src, stat, chan, vchan,
                                          res, wv, wvv, hv, hvv, pf, du, dl)
        if fit_lam <= (1.0 - 0.5 * lam) * fit or (lam == 1.0 and fit_lam <= floor):  # Armijo, c = 1/4 (see merit)
            return err, fit_lam
        if fit_lam < best:
            best, best_lam = fit_lam, lam
        lam *= 0.5
    for i in range(dp.shape[0]):
        trial[i] = dp[i] + best_lam * step[i]
    return residual_and_merit(trial, pn, dt, diag, geom, props, par, vidx, vvidx, src, stat, chan, vchan, res, wv, wvv,
                              hv, hvv, pf, du, dl)


@njit(cache=True)
def solve_pressures(state, geom, props, par, vent, vidx, vvent, vvidx, src, dt, teff, stat, chan, vchan, dp, plan,
                    fu, fl):
    """Newton's method on the floor pressures from the first guess ``dp`` (p − p^n, updated in place), with the
    donor temperatures ``teff`` brought along: after each evaluation of the flows the layer limiting
    (:func:`_fractions_from_sums` into ``fu``/``fl``) and the ceiling vents' Froude shares give new donor
    temperatures, and the vents they touch are evaluated again (:func:`update_vents_into`) before the next Newton
    step. Stops when the donor temperatures moved by at most ``layer_tol`` and the residual scaled by the
    compressibility, |R_i|·(γ − 1)·dt/V_i, or the last Newton correction (the pressure error where vents
    dominate the Jacobian) is within ``newton_tol``, or, after a first correction, the merit is within that of
    the floor pressures' rounding, :func:`merit_floor` with the factor ``par[P_RSTOP]`` (> 0; 1: one unit of each
    floor pressure; 0: not this test). The residual is then rounding noise no correction can lower: the scaled
    residual is the state's own pressure error (the pressure the step's mass and energy give less Newton's), and on
    the 2,212-compartment tower a further correction (1e-9 to 1e-11 Pa) left it at 3e-5 to 4e-5 Pa. The donor
    temperatures are updated at most 8 times by more than ``layer_tol``. The last correction (within ``newton_tol``) is taken whole where its merit lies on the
    merit's round-off floor (:func:`merit_floor`, :func:`line_search_merit`). Returns (Newton iterations, final
    scaled residual Pa, compartments whose two layers cannot give their outflow); ``chan``/``vchan`` hold the flows
    at the accepted pressures. (The merit of the
    residual is worked out with its error, in the same pass, wherever the residual changes.)"""
    n = state.shape[0]
    gm1 = par[P_R] / (par[P_CP] - par[P_R])
    pn = props[:, Q_P].copy()
    diag = np.empty(n)
    for i in range(n):
        diag[i] = geom[i, G_VOL] / (gm1 * dt)
    m, kk = vidx.shape[0], vvidx.shape[0]
    res, wv, wvv, hv, hvv = np.empty(n), np.empty(m), np.empty(kk), np.empty(m), np.empty(kk)
    res2, wv2, wvv2, hv2, hvv2 = np.empty(n), np.empty(m), np.empty(kk), np.empty(m), np.empty(kk)
    # the wall vents not in stat[6] (closed for the step) are never evaluated, nor their weights and enthalpy flows
    # read: they carry nothing
    first = stat[4]
    for v in range(m):
        if first[v + 1] == first[v]:
            for c in range(4):
                chan[v, c] = 0.0
    step, rhs, du, dl, pf = np.empty(n), np.empty(n), np.empty(n), np.empty(n), np.empty(n)
    changed = np.zeros(n, np.bool_)
    vchanged = np.zeros(kk, np.bool_)
    shares = np.empty((kk, 2))
    sel = np.empty(m, np.int64)
    vvs, aptr, avents = stat[2], stat[8], stat[9]
    err, fit = residual_and_merit(dp, pn, dt, diag, geom, props, par, vidx, vvidx, src, stat, chan, vchan, res, wv,
                                  wvv, hv, hvv, pf, du, dl)
    it = 0
    updates = 0
    smax = np.inf
    trial = dp.copy()
    while True:
        # (the wall vents' outflows were summed into du, dl with the residual just evaluated)
        bad = _fractions_from_sums(state, src, vchan, vvidx, dt, fu, fl, du, dl)
        change = 0.0
        if updates < 8:
            if par[P_FROUDE] > 0.0:
                shares[:, :] = vvs[:, 4:6]
                change = froude_split(vchan, vvidx, vvs, stat[3], props, geom, par)
                for k in range(kk):
                    vchanged[k] = vvs[k, 4] != shares[k, 0] or vvs[k, 5] != shares[k, 1]
            change = max(change, donor_temperatures(props, fu, fl, teff, changed))
            refresh_donors(changed, stat[4], vidx, par, teff, stat[5], aptr, avents)  # even below layer_tol
            ceiling_rows(vvent, vvidx, vvs, stat[3], par, teff, vchanged, changed, stat[7])
            if change > par[P_LAYTOL]:  # K (1e-4 K: the enthalpy mismatch left is ~1e-6 Pa of pressure)
                updates += 1
                smax = np.inf  # the last Newton correction no longer measures the error
                for i in range(n):
                    pf[i] = pn[i] + dp[i]
                update_vents_into(changed, vchanged, pf, vidx, vvidx, par, stat, chan, vchan, res, wv, wvv, hv,
                                  hvv, sel)
                err, fit = error_and_merit(res, geom, gm1, dt)
        if change <= par[P_LAYTOL] and (err <= par[P_TOL] or smax <= par[P_TOL] or (
                it > 0 and par[P_RSTOP] > 0.0 and fit <= merit_floor(pn, dp, diag, plan, par[P_RSTOP]))):
            break
        if it >= 50:
            break
        it += 1
        for i in range(n):
            rhs[i] = -res[i]
        if direct_solve(rhs, diag, wv, wvv, plan, step, stat[6]) < 0:
            break
        smax = 0.0
        for i in range(n):
            a = abs(step[i])
            if a > smax or a != a:  # np.max(np.abs(step)): a NaN stays
                smax = a
        if not np.isfinite(smax):
            break
        floor = merit_floor(pn, dp, diag, plan) if smax <= par[P_TOL] else 0.0  # the last correction's allowance
        err, fit = line_search_merit(dp, step, trial, pn, dt, diag, geom, props, par, vidx, vvidx, src, stat, chan,
                                     vchan, fit, res2, wv2, wvv2, hv2, hvv2, pf, du, dl, floor)
        dp[:] = trial
        res, res2 = res2, res  # the trial's residual and flows become the iterate's (swapped, not copied)
        wv, wv2 = wv2, wv
        wvv, wvv2 = wvv2, wvv
        hv, hv2 = hv2, hv
        hvv, hvv2 = hvv2, hvv
    return it, err, bad


@njit(cache=True)
def _fractions_from_sums(state, src, vchan, vvidx, dt, fu, fl, du, dl):
    """Fractions of the outflow asked of each layer that it can give (``fu``, ``fl``); the rest comes from the
    compartment's other layer. ``du``, ``dl`` (N,) hold the wall vents' outflow from each layer over ``dt``
    (:func:`residual_and_merit` sums them); the ceiling vents' are added here. Returns the number of compartments
    whose two layers together cannot give their outflow."""
    n = state.shape[0]
    for k in range(vvidx.shape[0]):
        du[vvidx[k, 0]] += vchan[k, 0] * dt
        dl[vvidx[k, 0]] += vchan[k, 1] * dt
        if vvidx[k, 1] >= 0:
            du[vvidx[k, 1]] += vchan[k, 2] * dt
            dl[vvidx[k, 1]] += vchan[k, 3] * dt
    bad = 0
    for i in range(n):
        fu[i] = 1.0
        fl[i] = 1.0
        # a layer's mass may be a round-off below zero (a layer just emptied): it has nothing to give
        avail_u = max(state[i, MU] + src[i, 0] * dt, 0.0)
        avail_l = max(state[i, ML] - src[i, 0] * dt, 0.0)
        if du[i] > avail_u:
            fu[i] = avail_u / du[i]
            if dl[i] + du[i] - avail_u > avail_l:
                bad += 1
        elif dl[i] > avail_l:
            fl[i] = avail_l / dl[i]
            if du[i] + dl[i] - avail_l > avail_u:
                bad += 1
    return bad


@njit(cache=True)
def apply_fractions(chan, vchan, vidx, vvidx, fu, fl, vents=None):
    """Move the part of each channel its layer cannot give to the compartment's other layer (in place); ``vents``:
    only those wall vents (the others carry nothing), else all. Only the sides of a compartment whose layers are
    limited (``fu`` or ``fl`` below 1) are touched: elsewhere the move is fu·c_u + (1 − fl)·c_l = c_u and
    (1 − fu)·c_u + fl·c_l = c_l exactly, the channels being finite and ≥ 0 (on the tower 0-90 of 2,212 compartments
    are limited in a step)."""
    m = vidx.shape[0] if vents is None else vents.shape[0]
    for j in range(m):
        v = j if vents is None else vents[j]
        a, b = vidx[v, 0], vidx[v, 1]
        if fu[a] != 1.0 or fl[a] != 1.0:
            _reassign(chan, v, 0, fu[a], fl[a])
        if b >= 0 and (fu[b] != 1.0 or fl[b] != 1.0):
            _reassign(chan, v, 2, fu[b], fl[b])
    for k in range(vvidx.shape[0]):
        a, b = vvidx[k, 0], vvidx[k, 1]
        if fu[a] != 1.0 or fl[a] != 1.0:
            _reassign(vchan, k, 0, fu[a], fl[a])
        if b >= 0 and (fu[b] != 1.0 or fl[b] != 1.0):
            _reassign(vchan, k, 2, fu[b], fl[b])


@njit(cache=True)
def apply_fractions_around(chan, vchan, vidx, vvidx, fu, fl, adj_ptr, adj_vents):
    """:func:`apply_fractions` from the compartments' side: only the wall vents of the compartments whose layers are
    limited (``fu`` or ``fl`` below 1; compartment i's vents ``adj_vents[adj_ptr[i]:adj_ptr[i + 1]]``,
    :func:`vent_adjacency`), each vent's side of that compartment; the ceiling vents as :func:`apply_fractions`.
    Each channel pair is moved at most once (a side belongs to one compartment), so the order does not matter: the
    same channels to the bit, closed vents' zeros staying zeros. On the tower 0-90 of 2,212 compartments are
    limited in a step: 2,212 tests instead of the ~3,500 open vents' look-ups (14 µs -> 5.5 µs)."""
    for i in range(fu.shape[0]):
        if fu[i] == 1.0 and fl[i] == 1.0:
            continue
        for j in range(adj_ptr[i], adj_ptr[i + 1]):
            v = adj_vents[j]
            _reassign(chan, v, 0 if vidx[v, 0] == i else 2, fu[i], fl[i])
    for k in range(vvidx.shape[0]):
        a, b = vvidx[k, 0], vvidx[k, 1]
        if fu[a] != 1.0 or fl[a] != 1.0:
            _reassign(vchan, k, 0, fu[a], fl[a])
        if b >= 0 and (fu[b] != 1.0 or fl[b] != 1.0):
            _reassign(vchan, k, 2, fu[b], fl[b])


@njit(cache=True, inline="always")
def _reassign(ch, v, c0, fu, fl):
    cu, cl = ch[v, c0], ch[v, c0 + 1]
    ch[v, c0] = fu * cu + (1.0 - fl) * cl
    ch[v, c0 + 1] = (1.0 - fu) * cu + fl * cl


@njit(cache=True, inline="always")
def _mix_layers(i, mix, dt, state, props, par, dm, dh, ds):
    """Move the vent-jet entrainment ``mix[i]`` (kg/s) between compartment ``i``'s layers for ``dt``, each way
    at most half of what the giving layer holds after the step's other flows; the gas moves with its layer's
    start-of-step temperature (enthalpy c_p·T) and composition, so mass, energy and species stay exact."""
    cp = par[P_CP]
    m_lu = min(mix[i, 0] * dt, 0.5 * max(state[i, ML] + dm[i, 1], 0.0))
    m_ul = min(mix[i, 1] * dt, 0.5 * max(state[i, MU] + dm[i, 0], 0.0))
    if state[i, ML] <= 0.0:
        m_lu = 0.0
    if state[i, MU] <= 0.0:
        m_ul = 0.0
    tu, tl = props[i, Q_TU], props[i, Q_TL]
    dm[i, 0] += m_lu - m_ul
    dm[i, 1] += m_ul - m_lu
    dh[i, 0] += cp * (tl * m_lu - tu * m_ul)
    dh[i, 1] += cp * (tu * m_ul - tl * m_lu)
    for s in range(NSP):
        yl = state[i, SL + s] / state[i, ML] if state[i, ML] > 0.0 else 0.0
        yu = state[i, SU + s] / state[i, MU] if state[i, MU] > 0.0 else 0.0
        ds[i, 0, s] += yl * m_lu - yu * m_ul
        ds[i, 1, s] += yu * m_ul - yl * m_lu


@njit(cache=True, inline="always")
def _merge_emptied(new_state, i, floor):
    """A layer the step emptied (mass between ``floor``, a round-off below 0, and 1e-9 of the compartment's,
    where :func:`layer_props` already counts it absent, or below 1e-4 of it with no energy left) hands what
    is left of its mass, energy and species (the pressure-work split's share of a layer that drained within
    the step) to the other layer: totals unchanged, no layer of mass without energy. The upper layer is looked at
    first, the lower only where the upper stays (the two tests written out: a loop over the two layers' columns
    took 5 µs more of the tower's layer update, 28 µs against 23)."""
    tiny = 1e-9 * (new_state[i, MU] + new_state[i, ML])
    if floor <= new_state[i, MU] and (new_state[i, MU] < tiny
                                      or (new_state[i, UU] <= 0.0 and new_state[i, MU] < 1e5 * tiny)):
        _hand_over(new_state, i, MU, UU, SU, ML, UL, SL)
    elif floor <= new_state[i, ML] and (new_state[i, ML] < tiny
                                        or (new_state[i, UL] <= 0.0 and new_state[i, ML] < 1e5 * tiny)):
        _hand_over(new_state, i, ML, UL, SL, MU, UU, SU)


@njit(cache=True, inline="always")
def _hand_over(new_state, i, m_col, u_col, s_col, om, ou, os):
    """Compartment ``i``'s layer at columns (``m_col``, ``u_col``, species from ``s_col``) added to the other
    layer's (``om``, ``ou``, ``os``) and emptied (:func:`_merge_emptied`)."""
    new_state[i, om] += new_state[i, m_col]
    new_state[i, ou] += new_state[i, u_col]
    new_state[i, m_col] = 0.0
    new_state[i, u_col] = 0.0
    for s in range(NSP):
        new_state[i, os + s] += new_state[i, s_col + s]
        new_state[i, s_col + s] = 0.0


@njit(cache=True)
def vent_transfers(chan, vchan, vidx, vvidx, vdest, dt, state, props, par, dm, dh, ds, tally):
    """The step's vent flows (channels ``chan``/``vchan``, kg/s) as mass, enthalpy and species moved between the
    layers (into ``dm``, ``dh``, ``ds``) and to and from outside (``tally``); ``vdest`` the layer a ceiling vent's
    flow lands in where its plume picks one (−1: by temperature, :func:`channel_transfers`)."""
    n = state.shape[0]
    y = np.empty((n, 2, NSP))  # the donor layers' mass fractions, worked out when a channel first needs them
    have = np.zeros((n, 2), np.bool_)
    channel_transfers(vidx, chan, np.empty((0, 2), np.int64), dt, state, y, have, props, par, dm, dh, ds, tally)
    channel_transfers(vvidx, vchan, vdest, dt, state, y, have, props, par, dm, dh, ds, tally)


@njit(cache=True, inline="always")
def _fractions_of(state, i, layer, y, have):
    """Mass fractions of compartment ``i``'s layer into ``y[i, layer]`` (0 for an empty layer), once."""
    if not have[i, layer]:
        m_col, s_col = (MU, SU) if layer == 0 else (ML, SL)
        for s in range(NSP):
            y[i, layer, s] = state[i, s_col + s] / state[i, m_col] if state[i, m_col] > 0.0 else 0.0
        have[i, layer] = True


@njit(cache=True)
def channel_transfers(idx, ch, dest, dt, state, y, have, props, par, dm, dh, ds, tally):
    """Move each channel's flow ``ch[j, c]`` (kg/s, for ``dt``) of the vents ``idx`` (a, b) from its donor layer
    (channels 0, 1: a's upper, lower; 2, 3: b's) to the other side: into layer ``dest[j, c // 2]`` (0 upper,
    1 lower) or, where that is −1 (or ``dest`` has no rows), the receiver's upper layer when the gas is hotter than
    its lower layer by more than half the layer difference (at least ``hot_dT``), else its lower layer; outside
    (−1) ends in ``tally``. The gas carries its donor layer's start-of-step enthalpy c_p·T and mass fractions (``y``,
    filled where ``have`` is False from ``state``, :func:`_fractions_of`)."""
    y_out = np.zeros(NSP)
    y_out[SP_O2] = par[P_O2AMB]
    cp, hot, t_out = par[P_CP], par[P_HOT], par[P_TOUT]
    by_temperature = dest.shape[0] == 0
    for j in range(idx.shape[0]):
        for c in range(4):
            flow = ch[j, c]
            if not flow > 0.0:  # most channels carry nothing
                continue
            donor, recv = (idx[j, 0], idx[j, 1]) if c < 2 else (idx[j, 1], idx[j, 0])
            dl = c % 2
            mass = flow * dt
            t_d = t_out if donor < 0 else (props[donor, Q_TU] if dl == 0 else props[donor, Q_TL])
            h = cp * t_d * mass
            if donor >= 0:
                _fractions_of(state, donor, dl, y, have)
                dm[donor, dl] -= mass
                dh[donor, dl] -= h
            else:
                tally[T_MASS_IN] += mass
                tally[T_H_IN] += h
            rl = 1
            if recv >= 0:
                rl = -1 if by_temperature else dest[j, c // 2]
                if rl < 0:
                    tu, tl = props[recv, Q_TU], props[recv, Q_TL]
                    rl = 0 if t_d > tl + max(0.5 * (tu - tl), hot) else 1
                dm[recv, rl] += mass
                dh[recv, rl] += h
            else:
                tally[T_MASS_OUT] += mass
                tally[T_H_OUT] += h
            # the species: each species' mass worked out once for both ends (every entry of ``ds`` still takes its
            # terms in the channels' order)
            if donor >= 0 and recv >= 0:
                for s in range(NSP):
                    q = y[donor, dl, s] * mass
                    ds[donor, dl, s] -= q
                    ds[recv, rl, s] += q
            elif donor >= 0:
                for s in range(NSP):
                    ds[donor, dl, s] -= y[donor, dl, s] * mass
            elif recv >= 0:
                for s in range(NSP):
                    ds[recv, rl, s] += y_out[s] * mass


@njit(cache=True, inline="always")
def _plume_transfers(i, ent, mf, dt, state, yields, dm, ds):
    """The fire plume's mass and species into ``dm``/``ds`` of compartment ``i`` over ``dt``: ``ent`` kg/s of the
    lower layer entrained into the upper and the fire's ``mf`` kg/s of products (``yields`` per kg of fuel) into the
    upper layer. :func:`layer_update` calls it where a plume is (``ent`` or ``mf`` not 0): elsewhere every term is
    exactly 0 for a finite state (on the tower a step has one plume and 2,211 compartments without; their 10
    divisions of the lower layer's species were a fifth of the layer update)."""
    ml0 = state[i, ML]
    dm[i, 0] += (ent + mf) * dt
    dm[i, 1] -= ent * dt
    for s in range(NSP):
        y = state[i, SL + s] / ml0 if ml0 > 0.0 else 0.0
        ds[i, 0, s] += (y * ent + yields[s] * mf) * dt
        ds[i, 1, s] -= y * ent * dt


@njit(cache=True)
def layer_update(state, geom, props, par, src, mix, qburn, dt, dm, dh, ds, tally, new_state):
    """Add the fire's sources (plume entrainment, products, heat, wall losses) and the vent jets' mixing to the
    vent transfers ``dm``/``dh``/``ds`` and write each compartment's new layers into ``new_state`` (energies with
    the pressure work, module docstring 5.); balance terms into ``tally``. Returns the compartments the step
    overdrew (a layer below zero, emptied, or with mass and no energy)."""
    n = state.shape[0]
    cp = par[P_CP]
    gamma = cp / (cp - par[P_R])
    gm1 = gamma - 1.0
    yields = np.zeros(NSP)
    yields[SP_CO2] = par[P_Y_CO2]
    yields[SP_CO] = par[P_Y_CO]
    yields[SP_SOOT] = par[P_Y_SOOT]
    yields[SP_H2O] = par[P_Y_H2O]
    bad = 0
    chir = par[P_CHIR]
    # the balance's sums kept in locals (the same additions in the same order), stored once after the loop
    t_walls, t_layer_rad, t_vent_rad = tally[T_WALLS], tally[T_LAYER_RAD], tally[T_VENT_RAD]
    t_radiated, t_released, t_fuel_mass, t_fuel_h = tally[T_RADIATED], tally[T_RELEASED], tally[T_FUEL_MASS], \
        tally[T_FUEL_H]
    for i in range(n):
        ent, mf, mo2, qconv, wu, wl = src[i, 0], src[i, 1], src[i, 2], src[i, 3], src[i, 4], src[i, 5]
        tl = props[i, Q_TL]
        ml0 = state[i, ML]
        # plume: entrained lower-layer gas and the fire's products to the upper layer
        if ent != 0.0 or mf != 0.0:  # (a plume: its mass and species terms are exactly 0 elsewhere, skipped)
            _plume_transfers(i, ent, mf, dt, state, yields, dm, ds)
        dh[i, 0] += (cp * tl * (ent + mf) + qconv - wu) * dt
        dh[i, 1] += (-cp * tl * ent - wl) * dt
        if mo2 != 0.0:
            ds[i, 0, SP_O2] -= mo2 * dt
        if mix[i, 0] > 0.0 or mix[i, 1] > 0.0:
            _mix_layers(i, mix, dt, state, props, par, dm, dh, ds)
        t_walls += (wu + wl - src[i, 8]) * dt
        t_layer_rad += src[i, 7] * dt
        t_vent_rad += src[i, 8] * dt
        t_radiated += chir * qburn[i] * 1000.0 * dt
        t_released += qburn[i] * 1000.0 * dt
        t_fuel_mass += mf * dt
        t_fuel_h += cp * tl * mf * dt
        du_tot = dh[i, 0] + dh[i, 1]
        dpi = gm1 * du_tot / geom[i, G_VOL]
        du_u = (dh[i, 0] + props[i, Q_VU] * dpi) / gamma
        new_state[i, MU] = state[i, MU] + dm[i, 0]
        new_state[i, ML] = state[i, ML] + dm[i, 1]
        new_state[i, UU] = state[i, UU] + du_u
        new_state[i, UL] = state[i, UL] + (du_tot - du_u)
        for s in range(NSP):
            new_state[i, SU + s] = state[i, SU + s] + ds[i, 0, s]
            new_state[i, SL + s] = state[i, SL + s] + ds[i, 1, s]
        _merge_emptied(new_state, i, -1e-12 * (state[i, MU] + ml0))
        if new_state[i, MU] < -1e-12 * (state[i, MU] + ml0) or new_state[i, ML] < -1e-12 * (state[i, MU] + ml0):
            bad += 1
        elif not (new_state[i, MU] + new_state[i, ML] > 0.0 and new_state[i, UU] + new_state[i, UL] > 0.0):
            bad += 1  # emptied (or not a number): the step was too long for this compartment
        elif (new_state[i, MU] > 0.0 and new_state[i, UU] < 0.0) or (new_state[i, ML] > 0.0 and new_state[i, UL] < 0.0):
            bad += 1  # a layer with mass and no energy: the pressure work of a too-long step
    tally[T_WALLS], tally[T_LAYER_RAD], tally[T_VENT_RAD] = t_walls, t_layer_rad, t_vent_rad
    tally[T_RADIATED], tally[T_RELEASED], tally[T_FUEL_MASS], tally[T_FUEL_H] = t_radiated, t_released, \
        t_fuel_mass, t_fuel_h
    return bad


@njit(cache=True)
def step(state, geom, par, vent, vidx, vvent, vvidx, q_kw, dt, new_state, chan, vchan, qburn, tally, dp_guess, plan,
         t_surface=None, q_wall=None):
    """One step of length ``dt``: the new state into ``new_state`` (``state`` is not changed), vent
    channels into ``chan``/``vchan``, burned heat release into ``qburn``, sums added to ``tally``;
    ``dp_guess`` the first guess of the pressure change (the last step's, say); overwritten by this one's;
    ``plan`` that of :func:`step_plan` (the pressure Jacobian's factorisation plan and the step's work arrays).
    With conducting walls, ``t_surface`` (N, 3) their exposed faces' temperatures (ceiling, walls, floor) and
    ``q_wall`` (N, 3) receives the heat (W) the gas and the flame's radiation give each face over the step
    (:mod:`physics._kernels.fire_walls`).

    Returns (Newton iterations, pressure error Pa, compartments overdrawn): a caller retries with a
    shorter step when the last is not 0.
    """
    ldl, work = plan
    (props, src, qs, teff, fu, fl, vs, vl, vvs, vvl, first, sp, rows, mix, vdest, dm, dh, ds, jet, ct, aptr, avents,
     ovents, oc) = work
    n = state.shape[0]
    # teff: the donor temperatures the pressures are solved with, the layers' own at first (the layer limiting moves
    # them in Newton's loop)
    layer_props(state, geom, par, props, teff)
    fu[:] = 1.0
    fl[:] = 1.0
    a_open = np.zeros(n)
    # (of vs/vl wall_slabs writes only the columns door_jets reads)
    n_open = wall_slabs(vent, vidx, geom, props, par, teff, vs, vl, first, sp, ovents, oc, a_open)
    ceiling_open_area(vvidx, vvent, a_open)
    wall_ts = np.empty((0, 3))
    if t_surface is not None:
        wall_ts = t_surface
    qs[:, :] = 0.0
    fire_sources(state, geom, props, par, q_kw, dt, src, qburn, a_open, wall_ts, qs)
    ceiling_statics(vvent, vvidx, geom, props, par, vvs, vvl)
    if par[P_FROUDE] > 0.0:  # the ceiling vents' shares from the flows of the step before: Newton's start
        froude_split(vchan, vvidx, vvs, vvl, props, geom, par)
    ceiling_rows(vvent, vvidx, vvs, vvl, par, teff, np.zeros(0, np.bool_), np.zeros(0, np.bool_), ct)
    stat = (vs, vl, vvs, vvl, first, sp, ovents[:n_open], ct, aptr, avents)
    dp = dp_guess.copy()
    it, err, bad = solve_pressures(state, geom, props, par, vent, vidx, vvent, vvidx, src, dt, teff, stat, chan,
                                   vchan, dp, ldl, fu, fl)
    apply_fractions_around(chan, vchan, vidx, vvidx, fu, fl, aptr, avents)
    dp_guess[:] = dp
    mix[:, :] = 0.0
    if par[P_MIX] > 0.0:
        pf = props[:, Q_P] + dp
        door_jets(pf, vent, vidx, vs, vl, props, par, jet, mix)
    vdest[:, :] = -1
    if par[P_VDEP] > 0.0:
        ceiling_vent_plumes(vchan, vvidx, vvent, geom, props, par, state, dt, mix, vdest)
    dm[:, :] = 0.0
    dh[:, :] = 0.0
    ds[:, :, :] = 0.0
    vent_transfers(chan, vchan, vidx, vvidx, vdest, dt, state, props, par, dm, dh, ds, tally)
    if q_wall is not None:
        q_wall[:, :] = qs
    bad += layer_update(state, geom, props, par, src, mix, qburn, dt, dm, dh, ds, tally, new_state)
    return it, err, bad
