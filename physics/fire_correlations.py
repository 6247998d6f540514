"""Closed-form fire correlations: the hand calculations a fire engineer checks a zone model with.

Pure functions over numbers or numpy arrays (SI unless a name says otherwise;
heat release in kW, as the correlations are published). They are the building
blocks and the validation references of the high-rise fire model:

- :func:`t_squared_hrr`: t² growth, Q = α·(t − t0)² (NFPA 72 / SFPE growth
  classes :data:`GROWTH_ALPHA`, 1055 kW reached at 600 / 300 / 150 / 75 s);
- :func:`ventilation_limit_kw`: the largest heat release a room's openings feed,
  ≈ 1500·A0·√H0 kW (Kawagoe's burning rate 0.5·A0·√H0 kg/s of fuel-air with
  3000 kJ per kg of air);
- :func:`mqh_hk` and :func:`mqh_delta_t`: the upper-layer temperature rise of a
  ventilated room before flashover (McCaffrey, Quintiere & Harkleroad 1981;
  NUREG-1805 ch. 2), with the wall conductance before and after the thermal
  penetration time;
- :func:`flashover_hrr_kw`: the heat release for flashover (Thomas 1981 and the
  MQH form at ΔT = 500 K, NUREG-1805 ch. 13);
- :func:`alpert_ceiling_jet`: gas temperature rise and velocity under the
  ceiling at a radius from the plume (Alpert 1972, SFPE Handbook);
- :func:`rti_link_temperature` and :func:`rti_activation_time`: a detector's or
  sprinkler's link heated by the ceiling jet (the RTI equation
  dT_l/dt = √u·(T_g − T_l)/RTI, solved exactly for gas held constant over a step);
- :func:`stack_pressure_pa`: the stack-effect pressure difference
  ΔP = 3460·h·(1/T_o − 1/T_i) (ASHRAE, T in K);
- :func:`parametric_fire_c`: the post-flashover gas temperature of EN 1991-1-2
  Annex A (heating and cooling phases, fuel or ventilation control);
- :func:`iso834_c`: the ISO 834 standard fire curve, the reference of Annex A at Γ = 1;
- :func:`fed_co`, :func:`heat_exposure_minutes` and :func:`visibility_m`: the
  tenability measures of ISO 13571 (asphyxiant FED from CO, convected heat) and
  the visibility through smoke (Jin; Mulholland's mass extinction coefficient);
- :func:`walking_speed_in_smoke`: the evacuee's walking speed as smoke thickens
  (Frantzich & Nilsson 2003, as FDS+Evac uses it).

The tests check each against the published numbers it comes from.
"""

from __future__ import annotations

import numpy as np

from twin.errors import ValidationError

#: t² growth coefficients α (kW/s²) of NFPA 72 / the SFPE Handbook: the time to
#: reach 1055 kW (1000 BTU/s) is 600, 300, 150 and 75 s.
GROWTH_ALPHA = {"slow": 0.00293, "medium": 0.01172, "fast": 0.0469, "ultrafast": 0.1876}
#: EN 1991-1-2 Annex A (10): t_lim (h) by the fire growth rate of the occupancy.
GROWTH_T_LIM_H = {"slow": 25 / 60, "medium": 20 / 60, "fast": 15 / 60}
#: Mass extinction coefficient of flaming smoke (m²/kg): Mulholland & Croarkin (2000), 8700 ± 1100.
SOOT_EXTINCTION_M2_KG = 8700.0
#: Visibility constants (Jin 1978): light-emitting signs 8, light-reflecting signs 3.
VISIBILITY_C = {"emitting": 8.0, "reflecting": 3.0}
#: ISO 13571:2012: FED of 1 incapacitates an average person; 0.3 is the usual design threshold
#: (it covers the ~11 % most susceptible).
FED_THRESHOLD = 0.3
AMBIENT_K = 293.15


def growth_alpha(growth: str | float) -> float:
    """α (kW/s²) of a named growth class or a number given as is (checked)."""
    if isinstance(growth, str):
        if growth not in GROWTH_ALPHA:
            raise ValidationError(f"growth={growth!r}: give one of {sorted(GROWTH_ALPHA)} or α in kW/s²")
        return GROWTH_ALPHA[growth]
    a = float(growth)
    if not (np.isfinite(a) and a > 0):
        raise ValidationError(f"growth={growth!r}: α must be a finite number > 0 kW/s²")
    return a


def t_squared_hrr(t_s, growth: str | float, *, t0_s: float = 0.0, peak_kw: float = np.inf):
    """Heat release rate (kW) of a t² fire: α·(t − t0)² from ignition at ``t0_s``, capped at ``peak_kw``."""
    dt = np.maximum(np.asarray(t_s, float) - t0_s, 0.0)
    return np.minimum(growth_alpha(growth) * dt * dt, peak_kw)


def ventilation_limit_kw(a0_m2, h0_m):
    """The ventilation-limited heat release (kW) through an opening of area ``a0_m2`` and height ``h0_m``.

    Kawagoe's air inflow 0.5·A0·√H0 kg/s and ≈ 3000 kJ released per kg of air
    consumed (Huggett 1980) give 1500·A0·√H0 kW (SFPE Handbook; Karlsson &
    Quintiere 2000, ch. 6).
    """
    return 1500.0 * np.asarray(a0_m2, float) * np.sqrt(np.asarray(h0_m, float))


def thermal_penetration_time_s(k: float, rho: float, c: float, thickness_m: float) -> float:
    """t_p = (ρc/k)·(δ/2)² (s): after it the wall conducts as a slab, k/δ (NUREG-1805 eq. 2-4)."""
    return rho * c / k * (thickness_m / 2.0) ** 2


def mqh_hk(t_s, k: float, rho: float, c: float, thickness_m: float):
    """The wall's effective heat transfer coefficient h_k (kW/m²K) at time ``t_s`` (NUREG-1805 ch. 2).

    Before the thermal penetration time √(kρc/t); after it k/δ. ``k`` W/mK,
    ``rho`` kg/m³, ``c`` J/kgK.
    """
    t = np.maximum(np.asarray(t_s, float), 1e-9)
    tp = thermal_penetration_time_s(k, rho, c, thickness_m)
    return np.where(t < tp, np.sqrt(k * rho * c / t), k / thickness_m) / 1000.0


def mqh_delta_t(q_kw, a0_m2: float, h0_m: float, hk_kw_m2k, at_m2: float):
    """Upper-layer temperature rise (K) by McCaffrey, Quintiere & Harkleroad (1981).

    ΔT = 6.85·(Q² / (A0·√H0·h_k·A_T))^(1/3); ``at_m2`` is the room's inner
    surface less the openings. Valid to about ΔT 600 K (flashover); it scatters
    about ±30 % against experiments (NUREG-1805).
    """
    q = np.asarray(q_kw, float)
    return 6.85 * np.cbrt(q * q / (a0_m2 * np.sqrt(h0_m) * np.asarray(hk_kw_m2k, float) * at_m2))


def flashover_hrr_kw(a0_m2: float, h0_m: float, at_m2: float, hk_kw_m2k: float | None = None) -> dict:
    """Heat release for flashover (kW): Thomas (1981) and, with ``hk``, MQH at ΔT = 500 K.

    Thomas: Q_fo = 7.8·A_T + 378·A0·√H0. MQH: Q_fo = 610·(h_k·A_T·A0·√H0)^½
    (NUREG-1805 ch. 13 eq. 13-1 and 13-3).
    """
    out = {"thomas": 7.8 * at_m2 + 378.0 * a0_m2 * np.sqrt(h0_m)}
    if hk_kw_m2k is not None:
        out["mqh"] = 610.0 * np.sqrt(hk_kw_m2k * at_m2 * a0_m2 * np.sqrt(h0_m))
    return out


def alpert_ceiling_jet(q_kw, height_m: float, radius_m):
    """(ΔT K, u m/s) of the ceiling jet (Alpert 1972, as in the SFPE Handbook), steady fire.

    ΔT = 16.9·Q^(2/3)/H^(5/3) for r/H ≤ 0.18, 5.38·(Q/r)^(2/3)/H beyond;
    u = 0.96·(Q/H)^(1/3) for r/H ≤ 0.15, 0.195·Q^(1/3)·H^(1/2)/r^(5/6) beyond.
    ``q_kw`` the total heat release, ``height_m`` the ceiling above the fuel.
    """
    q = np.maximum(np.asarray(q_kw, float), 0.0)
    r = np.maximum(np.asarray(radius_m, float), 1e-9)
    h = float(height_m)
    near_t, near_u = r / h <= 0.18, r / h <= 0.15
    dt = np.where(near_t, 16.9 * q ** (2 / 3) / h ** (5 / 3), 5.38 * (q / r) ** (2 / 3) / h)
    u = np.where(near_u, 0.96 * np.cbrt(q / h), 0.195 * np.cbrt(q) * np.sqrt(h) / r ** (5 / 6))
    return dt, u


def rti_link_temperature(t_link, t_gas, u_gas, rti: float, dt_s):
    """The link's temperature after ``dt_s`` in gas at ``t_gas`` moving at ``u_gas`` (exact for constant gas).

    dT_l/dt = √u·(T_g − T_l)/RTI ⇒ T_l(dt) = T_g − (T_g − T_l)·exp(−√u·dt/RTI);
    ``rti`` in (m·s)^½.
    """
    tg = np.asarray(t_gas, float)
    return tg - (tg - np.asarray(t_link, float)) * np.exp(-np.sqrt(np.asarray(u_gas, float)) * dt_s / rti)


def rti_activation_time(t_gas: float, u_gas: float, rti: float, t_activation: float,
                        t_initial: float) -> float:
    """Time (s) for a link at ``t_initial`` to reach ``t_activation`` in constant gas; inf if it never does."""
    if t_gas <= t_activation:
        return float("inf")
    return rti / np.sqrt(u_gas) * np.log((t_gas - t_initial) / (t_gas - t_activation))


def stack_pressure_pa(height_m, t_out_k, t_in_k):
    """Stack-effect pressure difference (Pa) at ``height_m`` above the neutral plane: 3460·h·(1/T_o − 1/T_i).

    Positive where the inside pushes out (warm inside, cold outside, above the
    neutral plane). 3460 = g·P_atm/R_air (ASHRAE Fundamentals; Klote & Milke).
    """
    h = np.asarray(height_m, float)
    return 3460.0 * h * (1.0 / np.asarray(t_out_k, float) - 1.0 / np.asarray(t_in_k, float))


def iso834_c(t_min):
    """The ISO 834 standard fire gas temperature (°C): 20 + 345·log10(8t + 1), t in minutes."""
    return 20.0 + 345.0 * np.log10(8.0 * np.asarray(t_min, float) + 1.0)


def _gamma(o: float, b: float) -> float:
    return (o / b) ** 2 / (0.04 / 1160.0) ** 2


def parametric_fire_c(t_h, *, opening_factor: float, b: float, q_td_mj_m2: float, growth: str = "medium"):
    """Gas temperature (°C) of the EN 1991-1-2 Annex A parametric fire at times ``t_h`` (hours).

    ``opening_factor`` O = A_v·√h_eq/A_t (m^½, 0.02–0.20), ``b`` = √(ρcλ) of the
    enclosure (J/m²s^½K, 100–2200), ``q_td_mj_m2`` the design fire load per total
    enclosure surface (MJ/m², 50–1000), ``growth`` the occupancy's rate (t_lim
    25 / 20 / 15 min). Heating: θ = 20 + 1325·(1 − 0.324e^(−0.2t*) − 0.204e^(−1.7t*)
    − 0.472e^(−19t*)), t* = t·Γ (or t·Γ_lim when the fire is fuel controlled);
    cooling after t_max by A.11. Valid for floor areas up to 500 m² and heights up
    to 4 m (Annex A (1)).
    """
    for name, v, lo, hi in (("opening_factor", opening_factor, 0.02, 0.20), ("b", b, 100.0, 2200.0),
                            ("q_td_mj_m2", q_td_mj_m2, 50.0, 1000.0)):
        if not (np.isfinite(v) and lo <= v <= hi):
            raise ValidationError(f"{name}={v!r}: EN 1991-1-2 Annex A holds for {lo:g} to {hi:g}")
    if growth not in GROWTH_T_LIM_H:
        raise ValidationError(f"growth={growth!r}: give one of {sorted(GROWTH_T_LIM_H)} (EN 1991-1-2 A(10))")
    t = np.asarray(t_h, float)
    gamma = _gamma(opening_factor, b)
    t_lim = GROWTH_T_LIM_H[growth]
    t_fuel = 0.2e-3 * q_td_mj_m2 / opening_factor  # A.7
    fuel_controlled = t_fuel <= t_lim
    t_max = max(t_fuel, t_lim)
    if fuel_controlled:  # A.8-A.10
        o_lim = 0.1e-3 * q_td_mj_m2 / t_lim
        heat_gamma = _gamma(o_lim, b)
        if opening_factor > 0.04 and q_td_mj_m2 < 75 and b < 1160:
            heat_gamma *= 1 + (opening_factor - 0.04) / 0.04 * (q_td_mj_m2 - 75) / 75 * (1160 - b) / 1160
    else:
        heat_gamma = gamma

    def heating(ts):
        return 20.0 + 1325.0 * (1 - 0.324 * np.exp(-0.2 * ts) - 0.204 * np.exp(-1.7 * ts)
                                - 0.472 * np.exp(-19.0 * ts))

    theta_max = heating(t_max * heat_gamma)
    t_star = t * gamma
    t_star_max = t_fuel * gamma  # A.12: (0.2e-3 q_td / O)·Γ
    x = 1.0 if not fuel_controlled else t_lim * gamma / t_star_max
    if t_star_max <= 0.5:
        cool = theta_max - 625.0 * (t_star - t_star_max * x)
    elif t_star_max < 2.0:
        cool = theta_max - 250.0 * (3.0 - t_star_max) * (t_star - t_star_max * x)
    else:
        cool = theta_max - 250.0 * (t_star - t_star_max * x)
    out = np.where(t <= t_max, heating(t * heat_gamma), np.maximum(cool, 20.0))
    return out


def fed_co(co_ppm, dt_min):
    """Asphyxiant fractional effective dose from CO (ISO 13571:2012): Σ φ_CO·Δt / 35 000 (ppm·min)."""
    return np.cumsum(np.asarray(co_ppm, float) * np.asarray(dt_min, float), axis=-1) / 35000.0


def heat_exposure_minutes(t_gas_c):
    """Time to incapacitation by convected heat (min), ISO 13571:2012: t_Iconv = 5·10⁷·T^(−3.4), T in °C."""
    t = np.maximum(np.asarray(t_gas_c, float), 1e-9)
    return 5.0e7 * t ** -3.4


def extinction_coefficient(soot_kg_m3, sigma_m2_kg: float = SOOT_EXTINCTION_M2_KG):
    """Light extinction coefficient K (1/m) of smoke holding ``soot_kg_m3`` of soot: σ_m·m_s."""
    return sigma_m2_kg * np.asarray(soot_kg_m3, float)


def visibility_m(extinction_per_m, sign: str = "emitting"):
    """Visibility (m) through smoke of extinction coefficient K: S = C/K (Jin 1978; C 8 or 3)."""
    if sign not in VISIBILITY_C:
        raise ValidationError(f"sign={sign!r}: give one of {sorted(VISIBILITY_C)}")
    k = np.asarray(extinction_per_m, float)
    with np.errstate(divide="ignore"):
        return np.where(k > 0, VISIBILITY_C[sign] / np.maximum(k, 1e-300), np.inf)


def walking_speed_in_smoke(v0_mps, extinction_per_m, *, alpha: float = 0.706, beta: float = -0.057,
                           min_fraction: float = 0.1):
    """Walking speed (m/s) in smoke: v = max(v_min, v0·(1 + β/α·K)) (Frantzich & Nilsson 2003).

    α = 0.706 m/s, β = −0.057 m²/s and v_min = 0.1·v0, as FDS+Evac (Korhonen,
    FDS+Evac Technical Reference and User's Guide) applies the experiment; K in 1/m.
    """
    v0 = np.asarray(v0_mps, float)
    v = v0 * (1.0 + beta / alpha * np.asarray(extinction_per_m, float))
    return np.maximum(v, min_fraction * v0)
