"""Two-zone smoke model over a building's compartment network (the CFAST family of models).

Every compartment of a :class:`~physics.fire_network.FireNetwork` holds a hot
upper layer and a cool lower layer, each well mixed (mass, temperature,
species); the model conserves mass, energy and species exactly (to
round-off) and advances with ``step(dt)``. The numerics are in
:mod:`physics._kernels.fire_zone`; this module builds the arrays, holds the
state and declares the Component's fields.

Physics and the choices made (each a stated assumption):

- **Gas**: ideal, constant c_p = 1004.5 J/kgK, R = 287.05 J/kgK (γ ≈ 1.4) for
  every layer. A compartment's pressure is one number for its equation of state
  (its floor pressure); vent flows see the hydrostatic profile through both
  layers. Conservation equations as in the CFAST Technical Reference Guide
  (Jones, Peacock, Forney & Reneke, NIST TN 1889v1): dp/dt = (γ − 1)/V·Σh,
  dU_u/dt = (h_u + V_u·dp/dt)/γ, masses and species by their flows.
- **Outside**: an isothermal atmosphere at T_out, P0 at grade: the stack effect
  comes from the compartments' and the outside's hydrostatics at the vents'
  absolute elevations, without any special case.
- **Fire**: the heat release Q (kW) of each compartment is an input every step
  (another module makes it). It burns only while the lower layer's O2 is above
  the lower oxygen limit (15 % by volume, CFAST's default), reduced linearly to 0
  over the last percentage point, and never beyond the oxygen the plume
  entrains (13.1 MJ per kg of O2, Huggett 1980). Fuel that cannot burn is not
  released (its pyrolysis is not added: no external burning or unburned-fuel
  species in this model). A radiative fraction (0.35) of the burned heat leaves
  the gas (tallied as radiated); the rest goes to the upper layer with the
  burned fuel's mass (entering at the lower layer's temperature) and its
  products by yields per kg of fuel (CO2, CO, soot, H2O); O2 is consumed from
  the upper layer, which the plume fed in the same step.
- **Plume**: Heskestad's entrainment (SFPE Handbook) from the lower layer into
  the upper, the fire at the floor, its diameter a parameter (1 m).
- **Wall vents**: the orifice equation integrated over the opening's height on
  the hydrostatic pressure difference of both sides (slabs between the sill,
  soffit, layer interfaces and neutral planes), flow coefficient of the
  network (0.7), width scaled by the open fraction (an input: doors opened by
  evacuees, glazing that falls out at its break temperature).
- **Ceiling/floor vents** (shafts): the orifice equation on the pressure
  difference at the opening, from the lower compartment's upper layer (its
  lower layer if there is none) or the upper compartment's lower layer;
  coefficient ``vvent_cd`` (0.7). As in CFAST's ``vertical_flow``, a share
  exp(−(Fr/2)²) of each direction's flow comes from that layer and the rest
  from the donor's other layer, Fr = V/√(g·d⁵·(T_u − T_l)/T_l) (V the volume
  flow, d the layer's depth; share 1 where the layers are not stably
  stratified): a strong flow out of a thin warm layer draws the
  gas beyond it (plug-holing); the shares settle with the flows in the step's
  fixed point. CFAST takes the donor layer's own excess over ambient instead of
  the layers' difference (``ceiling_vent_froude="cfast"`` reproduces it): a
  downward flow then comes wholly from the lower layer at ambient and mostly from
  the upper layer once the lower layer is hundredths of a kelvin warmer, a jump
  that no stratification explains, so it is an option and not the default (the
  evidence: ``tests/physics/test_fire_zone_cfast.py``). Where the gas above is
  denser than below,
  Cooper's exchange flow (1995, as CFAST's ``ventcf``; square opening) swaps
  equal volumes both ways until the pressure difference floods it; it is
  taken at the start-of-step pressures and held over the step.
- **Door-jet mixing** (CFAST's vent-flow entrainment, ``spill_plume``): the part of
  a wall vent's flow between the two sides' interfaces crosses the receiver's
  interface as a jet. A hot jet from the donor's upper layer entering the
  receiver's lower layer rises to its interface entraining the lower layer into
  the upper; a cold jet (the donor's lower layer or outside air) entering the
  receiver's upper layer falls entraining the upper layer into the lower, at a
  quarter of the rate (CFAST's factor). The rate is Poreh et al.'s spill plume
  (Fire Safety J. 30:1, 1998) with the jet's excess enthalpy flow,
  ṁ_e = 0.44·(T_c/T_h)^(2/3)·(g·ρ_c²·Q·W²/(c_p·T_c))^(1/3)·z, as CFAST's
  ``poreh_plume``; z from the jet's bottom to the receiver's interface (hot) or
  the jet's height in the receiver's upper layer (cold). Taken at the step's
  converged pressures, each way at most half of the giving layer; moved gas keeps
  its layer's temperature and composition (exact conservation; the floor
  pressures do not change).
- **Deposition**: gas entering a compartment through a wall vent joins its upper
  layer when it is hotter than the lower layer by more than half the layer
  temperature difference and by more than ``hot_dt_k`` (1 K); else the lower layer.
  Through a ceiling vent (``ceiling_vent_plumes=True``) it lands by buoyancy: up,
  into the receiver's lower layer at its floor, it rises to the upper layer when
  lighter than that lower layer by ``hot_dt_k`` (CFAST's ``vertical_flow`` rule);
  down, into the receiver's upper layer at its ceiling, it stays there when lighter
  than that layer, and else falls through it as a negatively buoyant plume,
  entraining it (Heskestad's entrainment over the layer's depth with the excess
  enthalpy flow c_p·(T_u − T)·ṁ and the opening's equivalent diameter, × 0.25 for a
  cold plume in a hot layer as CFAST's ``spill_plume``, at most half the layer in a
  step): the mixture joins the upper layer unless it is no lighter than the lower
  layer, which then takes the flow and what it entrained. (The midpoint rule put
  the ~1 kg/s of cool gas Cooper's exchange brings down a stair's well into the
  stair's lower layer, which it filled: the three-storey stack's stair against CFAST.)
  ``ceiling_vent_plumes="cfast"`` lands the flow down as CFAST's ``vertical_flow``:
  unmixed, in the upper layer when lighter than the lower layer by ``hot_dt_k``,
  else in the lower layer. With both set to ``"cfast"`` the ceiling vents follow
  CFAST's rule in full (the CFAST comparison's like-for-like runs).
- **Walls**: one lumped inner surface per compartment, quasi-steady (no heat
  capacity of its own): convection from both layers (h_c = 10 W/m²K, a
  parameter), the flame's radiated fraction and the upper layer's radiation
  come in, conduction into the solid goes out with the MQH effective
  conductance h_k(t) (NUREG-1805 ch. 2, as :func:`physics.fire_correlations.mqh_hk`;
  t the model's time) against the initial wall temperature; the surface
  temperature T_s solves that balance (Newton, quartic in T_s). Each layer
  exchanges h_c·A_layer·(T − T_s) with the surfaces it touches (the upper
  layer the ceiling and walls above the interface, the lower layer the floor
  and walls below), so a hot ceiling, and the floor the layer irradiates,
  warm the lower layer by convection as in CFAST. Walls are the perimeter of
  a square plan of the floor area (4·√A) times the height; openings are not
  subtracted. ``wall_conduction=True`` replaces the quasi-steady surface by
  three conducting slabs of the compartment's lining, ceiling (A), walls (4√A·H)
  and floor (A): 1-D transient conduction through the thickness by implicit finite
  differences, CFAST's approach (:mod:`physics._kernels.fire_walls`, 12 nodes graded
  toward the exposed face), the back face losing to the initial temperature by
  h_c + 4·ε_w·σ·T³. The upper layer convects to the ceiling and the walls above the
  interface, the lower layer to the floor and the walls below; the upper layer's
  radiation is shared by area (across the interface to the floor and lower walls
  by their areas), the flame's radiated fraction by area. The faces' temperatures
  are those of the step's start (explicit coupling) and they take, over the step,
  what the layers and the flame give them, so the walls' heat plus their back
  losses equal the ``walls`` and ``radiated`` tallies to round-off. Validated
  against Carslaw & Jaeger's semi-infinite solid and the steady slab (tests); it
  brings the CFAST comparisons 2-4 points closer and reproduces EN 1991-1-2 Annex
  A's difference between a gypsum and a concrete room (417 vs 403 K), which the
  lumped surface cannot (117 K). Off by default: with it the gypsum room of Annex A
  peaks +18.6 % (lumped +12.7 %, within its ±15 %); not modelled: radiation
  between the surfaces, gypsum's calcination, a lining per surface.
- **Layer radiation**: the upper layer is a grey gas of its soot, ε_g =
  1 − exp(−κ·L_m), κ = 1862·f_v·T (Tien, Lee & Stretton, "Radiation heat
  transfer", SFPE Handbook; f_v the soot volume fraction, soot density
  1800 kg/m³ as CFAST's), mean beam length L_m = 3.6·V_u/A_u with A_u the
  layer's bounding area (ceiling, walls above the interface, the interface).
  CFAST (TN 1889v1, ``absorb``) takes κ = 1195.5·f_v·T plus CO2 and H2O from
  Hottel's charts; this model has no gas bands (the fuel's H2O yield is 0
  by default; a soot-free layer does not radiate: stated, it errs cold on the
  walls). It exchanges σ·ε_eff·A_u·(T_u⁴ − T_s⁴), ε_eff = 1/(1/ε_g + 1/ε_w − 1)
  (grey gas and grey surfaces, ε_w = 0.9), with every surface it sees: the
  ceiling and walls above the interface and, through the clear (transparent)
  lower layer, the floor and walls below; the surface takes it (the upper
  layer's wall loss and the ``walls`` tally; its radiated part is tallied
  as ``layer_radiation``). The open area of the compartment's vents to the
  outside (windows, doors, roof vents; at most half the bounding area) is
  not a surface but a black hole at the outside's temperature: the layer
  loses σ·ε_g·A_o·(T_u⁴ − T_out⁴) through it, tallied as ``vent_radiation``
  (this is what bounds a post-flashover room: Drysdale, An Introduction to
  Fire Dynamics, ch. 10, the window term of the compartment's heat balance).
  A layer's loss in a step is capped at what would bring it to T_s (to the
  walls) and to T_out (out of the openings). Not modelled: the surfaces'
  radiation out of the openings, the lower layer's absorption, the flame's
  radiation absorbed by the layer, radiation through interior doors.
- **Numerics**: backward Euler on the pressures (Newton, the SPD Jacobian
  solved exactly by sparse LDLᵀ), explicit layers with the converged flows, each
  layer's outflow limited to what it holds (the rest from the other layer),
  the step halved when a compartment cannot give its outflow.
"""

from __future__ import annotations

import numpy as np

from physics._kernels import fire_walls as WK
from physics._kernels import fire_zone as K
from physics.fire_correlations import AMBIENT_K, SOOT_EXTINCTION_M2_KG
from physics.fire_network import FireNetwork
from twin.component import Component, FieldSpec, require_positive, require_range
from twin.errors import ValidationError

R_AIR = 287.05
CP_AIR = 1004.5
G = 9.80665
P_ATM = 101325.0
#: O2 mass fraction of dry air (20.95 % by volume).
O2_AMBIENT = 0.2315
#: Assumed generic fuel (state yours): heat of combustion 20 MJ/kg, yields kg per kg of fuel burned.
DEFAULT_FUEL = {"heat_of_combustion_kj_kg": 20000.0, "co2": 1.5, "co": 0.01, "soot": 0.03, "h2o": 0.0}
BALANCE_TERMS = ("mass_out", "mass_in", "enthalpy_out", "enthalpy_in", "walls", "radiated", "released",
                 "fuel_mass", "fuel_enthalpy", "layer_radiation", "vent_radiation")


def network_arrays(net: FireNetwork, t_wall_k: np.ndarray, vvent_cd: float) -> dict[str, np.ndarray]:
    """The kernel's geometry arrays of ``net`` (see :mod:`physics._kernels.fire_zone` for the layouts)."""
    n = net.n_compartments
    geom = np.zeros((n, K.NGEOM))
    geom[:, K.G_BASE] = net.base_m
    geom[:, K.G_H] = net.height_m
    geom[:, K.G_AREA] = net.area_m2
    geom[:, K.G_VOL] = net.volume_m3
    geom[:, K.G_PERIM] = 4.0 * np.sqrt(net.area_m2)
    geom[:, K.G_K] = net.wall_k
    geom[:, K.G_RHO] = net.wall_rho
    geom[:, K.G_C] = net.wall_c
    geom[:, K.G_THICK] = net.wall_thickness_m
    geom[:, K.G_TWALL] = t_wall_k
    vent = np.zeros((net.n_vents, K.NVENT))
    vent[:, K.V_BOT] = net.vent_bottom_m
    vent[:, K.V_TOP] = net.vent_top_m
    vent[:, K.V_W] = net.vent_width_m
    vent[:, K.V_CD] = net.vent_cd
    vent[:, K.V_OPEN] = net.vent_open
    vidx = np.ascontiguousarray(np.stack([net.vent_a, net.vent_b], axis=1).astype(np.int64).reshape(-1, 2))
    vvent = np.zeros((net.n_vvents, 2))
    vvent[:, 0] = net.vvent_area_m2
    vvent[:, 1] = vvent_cd
    vvidx = np.ascontiguousarray(np.stack([net.vvent_lower, net.vvent_upper], axis=1).astype(np.int64)
                                 .reshape(-1, 2))
    return {"geom": geom, "vent": vent, "vidx": vidx, "vvent": vvent, "vvidx": vvidx}


def outside_pressure_pa(z_m, t_out_k: float, p0_pa: float = P_ATM):
    """Pressure (Pa) of the isothermal outside atmosphere at elevation ``z_m``."""
    return p0_pa * np.exp(-G * np.asarray(z_m, float) / (R_AIR * t_out_k))


def initial_state(net: FireNetwork, t_in_k: np.ndarray, t_out_k: float, p0_pa: float) -> np.ndarray:
    """Every compartment one lower layer of air at ``t_in_k``, its floor at the outside's pressure there."""
    p = outside_pressure_pa(net.base_m, t_out_k, p0_pa)
    vol = net.volume_m3
    m = p * vol / (R_AIR * t_in_k)
    state = np.zeros((net.n_compartments, K.NSTATE))
    state[:, K.ML] = m
    state[:, K.UL] = (CP_AIR - R_AIR) * m * t_in_k
    state[:, K.SL + K.SP_O2] = O2_AMBIENT * m
    return state


def _per_compartment(value, n: int, name: str) -> np.ndarray:
    a = np.asarray(value, float)
    a = np.full(n, float(a)) if a.ndim == 0 else a
    if a.shape != (n,):
        raise ValidationError(f"{name}: {a.shape[0] if a.ndim else 1} values for {n} compartments; "
                              "give one per compartment or a single number")
    if not np.all(np.isfinite(a) & (a > 0)):
        raise ValidationError(f"{name}={a[~(np.isfinite(a) & (a > 0))][0]!r}: temperatures are finite and > 0 K")
    return a


def _vertical_rule(value, name: str) -> float:
    """A ceiling-vent rule switch as the kernel's parameter: False 0, True 1 (this model's), "cfast" (CFAST's)."""
    if isinstance(value, (bool, np.bool_)):
        return float(value)
    if value == "cfast":
        return K.RULE_CFAST
    raise ValidationError(f"{name}={value!r}: give True (this model's rule), False (off) or 'cfast' "
                          "(CFAST's vertical_flow rule)")


def threads_arg(threads) -> int:
    """``threads`` checked: a whole number from 1 to numba's thread count (``NUMBA_NUM_THREADS``)."""
    import numba

    top = int(numba.config.NUMBA_NUM_THREADS)
    if isinstance(threads, bool) or not isinstance(threads, int | np.integer) or not 1 <= int(threads) <= top:
        raise ValidationError(f"threads={threads!r}: give a whole number 1..{top} (NUMBA_NUM_THREADS)")
    return int(threads)


class FireZoneModel(Component):
    """Two-zone fire and smoke model over a :class:`FireNetwork` (see the module docstring).

    Parameters
    ----------
    network : FireNetwork
    t_inside_k : float or (N,) array
        Initial gas and wall temperature of the compartments (K).
    t_outside_k : float
        Outside air temperature (K), also a settable field; default ``t_inside_k``'s mean.
    dt_max : float
        Longest internal step (s); ``step(dt)`` sub-steps under it.
    radiative_fraction, lower_oxygen_limit, fire_diameter_m, fuel
        Fire parameters: χr (0.35), the LOL as a volume fraction (0.15), the
        plume's base diameter and the fuel's heat of combustion and yields
        (:data:`DEFAULT_FUEL`, an assumed generic fuel).
    vvent_cd : float
        Flow coefficient of the ceiling/floor vents.
    h_conv : float
        Convective coefficient between the layers and the walls (W/m²K).
    door_jet_mixing : bool
        Vent-jet entrainment between a receiving compartment's layers (CFAST's; the module docstring);
        False leaves the incoming gas unmixed (the model before it).
    ceiling_vent_froude : bool or "cfast"
        A ceiling vent's flow out of a thin warm layer also draws the layer beyond (CFAST's Froude-number
        share, the buoyancy of the layers' own difference; the module docstring); ``"cfast"``: the buoyancy of
        the donor layer's excess over ambient, as CFAST's ``vertical_flow``; False takes it all from the layer
        next to the opening.
    ceiling_vent_plumes : bool or "cfast"
        Flows through ceiling vents land by buoyancy, a cold flow falling into an upper layer as a plume that
        entrains it (the module docstring); ``"cfast"``: as CFAST's ``vertical_flow``, unmixed, by the flow's
        temperature against the receiver's lower layer; False lands them by the wall vents' temperature rule
        (the model before).
    layer_radiation : bool
        The upper layer radiates as a grey gas of its soot to the surfaces it sees (the module docstring);
        False leaves it convection only (the model before it).
    wall_conduction : bool
        1-D transient conduction through each compartment's lining instead of the lumped quasi-steady surface
        (the module docstring); ``wall_t`` (N, ``wall_nodes``) then holds the node temperatures (K, exposed face
        first), ``wall_energy()`` and ``wall_back_loss_j`` the walls' heat balance.
    wall_nodes : int
        Nodes through a wall's thickness (12; 3..60).
    plan : tuple, optional
        The network's :func:`physics._kernels.fire_zone.step_plan`, made before and shared by models stepped one at
        a time (an ensemble's members in one process): its work arrays are scratch that every step overwrites, so
        two models must never step at the same time on one plan (threads). None: made here.
    newton_guess_steps : int
        Newton's first guess of a step's pressure change: the mean rate of the last this many steps where that mean
        predicted the last step better than the last step's rate, else the last step's (16; 1: always the last
        step's, the model before). The same tolerances, so the same accuracy; fewer iterations where the pressures
        chatter at the orifice law's linear range (:meth:`_first_guess`).
    keep_halved_step : bool
        After a step had to be halved (a compartment could not give its outflow), later steps start from the
        halved length, never longer again, instead of from ``dt_max`` each time (spares the failed try of every
        step when ``dt_max`` is too long for the network; False: the model as before).
    threads : int
        Threads of the kernel's step: 1 (the default) the serial kernel; 2 or more its parallel variant
        (:mod:`physics._kernels.fire_zone_parallel`: the vents' flows, the wall vents' statics, the fire sources,
        the door jets and the layer update over the threads), the same numbers to the bit. On an idle 2-core
        machine the 115-storey bench tower runs 7-13 % faster (wall) for twice the CPU time. Opt-in: each of the ~10
        parallel regions of a step waits at its end for every thread, so on a machine whose cores are busy with
        other work a descheduled thread stalls the step (the tower 10-40 times slower at load 4-5, not faster);
        only worth it on idle cores. At most numba's thread count (``NUMBA_NUM_THREADS``, the cores by default).
    newton_stop_at_rounding : bool
        Newton also stops, after a first correction, where the residual is within what the floor pressures'
        rounding gives (:func:`physics._kernels.fire_zone.solve_pressures`): on the 115-storey bench tower 2.33
        iterations a step instead of 2.99 (the last correction, 1e-9 to 1e-11 Pa, left the residual where it
        was); False: the model as before (stops on ``newton_tol`` only).
    surface_emissivity : float
        Emissivity of the inner surfaces (0.9, CFAST's default for its wall materials).
    delta_pa, hot_dt_k, newton_tol_pa, layer_tol_k
        Numerics: the orifice equation's linear range below ``delta_pa`` (1e-3 Pa: a flow
        slower than about √(2·1e-3/ρ) ≈ 0.04 m/s is taken linear in Δp; the 115-storey tower's
        stair tops converge inside that range, in 3.05 Newton iterations a step against 3.78
        at 1e-4 Pa, the value before; the CFAST comparisons pass at both, and
        ``tests/physics/test_fire_step.py`` bounds the difference), the
        deposition threshold, the pressure error at which Newton stops (1e-6 Pa;
        1e-4 Pa already shifts a fast transient by a few K), and how closely the donor temperatures
        the pressure solve assumes must match those the layer limiting gives (K).
    """

    name = "FireZoneModel"
    cite_as = ("Jones, Peacock, Forney & Reneke, CFAST Technical Reference Guide (NIST TN 1889v1); "
               "Heskestad, Fire Plumes (SFPE Handbook); Huggett 1980, Fire Mater. 4:61; Tien, Lee & Stretton, "
               "Radiation heat transfer (SFPE Handbook)")
    fields = {
        "heat_release_rate": FieldSpec("kW", "in", "heat release the fire would give per compartment",
                                       attr="q_kw", valid_min=0.0),
        "outside_temperature": FieldSpec("K", "in", "outside air temperature", at="grid", attr="t_out",
                                         valid_min=1.0),
        "vent_open_fraction": FieldSpec("1", "inout", "open fraction of each wall vent", at="face",
                                        attr="vent_open", valid_min=0.0),
        "upper_layer__temperature": FieldSpec("K", "out", "upper-layer temperature", attr="t_upper"),
        "lower_layer__temperature": FieldSpec("K", "out", "lower-layer temperature", attr="t_lower"),
        "layer_height": FieldSpec("m", "out", "interface height above the compartment's floor",
                                  attr="layer_height"),
        "pressure": FieldSpec("Pa", "out", "floor pressure minus the outside's at the same elevation",
                              attr="pressure"),
        "upper_layer__o2": FieldSpec("1", "out", "O2 volume fraction of the upper layer", attr="o2_upper"),
        "lower_layer__o2": FieldSpec("1", "out", "O2 volume fraction of the lower layer", attr="o2_lower"),
        "upper_layer__co2": FieldSpec("1", "out", "CO2 volume fraction of the upper layer", attr="co2_upper"),
        "lower_layer__co2": FieldSpec("1", "out", "CO2 volume fraction of the lower layer", attr="co2_lower"),
        "upper_layer__co": FieldSpec("ppm", "out", "CO of the upper layer (by volume)", attr="co_upper"),
        "lower_layer__co": FieldSpec("ppm", "out", "CO of the lower layer (by volume)", attr="co_lower"),
        "upper_layer__soot": FieldSpec("kg/m3", "out", "soot concentration of the upper layer",
                                       attr="soot_upper"),
        "lower_layer__soot": FieldSpec("kg/m3", "out", "soot concentration of the lower layer",
                                       attr="soot_lower"),
        "upper_layer__extinction": FieldSpec("1/m", "out", "light extinction coefficient of the upper layer "
                                             "(8700 m²/kg × soot, Mulholland & Croarkin 2000)",
                                             attr="ext_upper"),
        "lower_layer__extinction": FieldSpec("1/m", "out", "light extinction coefficient of the lower layer",
                                             attr="ext_lower"),
        "vent_mass_flow": FieldSpec("kg/s", "out", "net mass flow through each wall vent, a to b positive",
                                    at="face", attr="vent_flow"),
        "ceiling_vent_mass_flow": FieldSpec("kg/s", "out", "net mass flow through each ceiling vent, upward "
                                            "positive", at="face", attr="vvent_flow"),
        "heat_release_burned": FieldSpec("kW", "out", "heat release burned (after the oxygen limits)",
                                         attr="q_burned"),
    }

    def __init__(self, network: FireNetwork, *, t_inside_k=AMBIENT_K, t_outside_k: float | None = None,
                 p0_pa: float = P_ATM, dt_max: float = 1.0, radiative_fraction: float = 0.35,
                 lower_oxygen_limit: float = 0.15, fire_diameter_m: float = 1.0, fuel: dict | None = None,
                 vvent_cd: float = 0.7, h_conv: float = 10.0, delta_pa: float = 1e-3, hot_dt_k: float = 1.0,
                 newton_tol_pa: float = 1e-6, layer_tol_k: float = 1e-4,
                 door_jet_mixing: bool = True, ceiling_vent_froude: bool | str = True, layer_radiation: bool = True,
                 surface_emissivity: float = 0.9, ceiling_vent_plumes: bool | str = True,
                 wall_conduction: bool = False, wall_nodes: int = 12, plan: tuple | None = None,
                 keep_halved_step: bool = False, newton_guess_steps: int = 16, threads: int = 1,
                 newton_stop_at_rounding: bool = True):
        self.network = network.validate()
        self.threads = threads_arg(threads)
        if self.threads > 1:  # the parallel step (the same numbers); the instance's, shadowing the class's serial one
            from physics._kernels import fire_zone_parallel as KP

            self._kernel_step = KP.step_on(self.threads)
        n = network.n_compartments
        t_in = _per_compartment(t_inside_k, n, "t_inside_k")
        t_out = float(np.mean(t_in)) if t_outside_k is None else require_positive(t_outside_k, "t_outside_k")
        self.dt_max = require_positive(dt_max, "dt_max")
        self.keep_halved_step = bool(keep_halved_step)
        self._dt_try = np.inf  # the halved step kept (keep_halved_step)
        fuel = {**DEFAULT_FUEL, **(fuel or {})}
        unknown = set(fuel) - set(DEFAULT_FUEL)
        if unknown:
            raise ValidationError(f"fuel: unknown key(s) {sorted(unknown)}; give {sorted(DEFAULT_FUEL)}")
        dhc = require_positive(fuel["heat_of_combustion_kj_kg"], "fuel['heat_of_combustion_kj_kg']")
        for key in ("co2", "co", "soot", "h2o"):
            require_range(fuel[key], f"fuel[{key!r}]", 0.0, 10.0)
        products = fuel["co2"] + fuel["co"] + fuel["soot"] + fuel["h2o"]
        limit = 1.0 + dhc * 1000.0 / K.HUGGETT_J_KG
        if products > limit:
            raise ValidationError(f"fuel: yields sum to {products:g} kg per kg of fuel, more than the fuel and the "
                                  f"O2 it burns with ({limit:g} kg); lower the yields")
        self.fuel = fuel
        self.arrays = network_arrays(network, t_in, require_positive(vvent_cd, "vvent_cd"))
        # factorisation plan and work arrays (shared between models stepped one at a time when given)
        self._plan = plan if plan is not None else K.step_plan(n, self.arrays["vidx"], self.arrays["vvidx"])
        self.par = np.zeros(K.NPAR)
        self.par[[K.P_R, K.P_CP, K.P_G, K.P_P0]] = R_AIR, CP_AIR, G, require_positive(p0_pa, "p0_pa")
        self.par[K.P_DELTA] = require_positive(delta_pa, "delta_pa")
        self.par[K.P_CHIR] = require_range(radiative_fraction, "radiative_fraction", 0.0, 0.9)
        self.par[K.P_DHC] = dhc
        self.par[K.P_LOL] = require_range(lower_oxygen_limit, "lower_oxygen_limit", 0.0, 0.2)
        self.par[[K.P_Y_CO2, K.P_Y_CO, K.P_Y_SOOT, K.P_Y_H2O]] = (fuel["co2"], fuel["co"], fuel["soot"],
                                                                   fuel["h2o"])
        self.par[K.P_DFIRE] = require_positive(fire_diameter_m, "fire_diameter_m")
        self.par[K.P_TOL] = require_positive(newton_tol_pa, "newton_tol_pa")
        if newton_tol_pa > 1e-5:
            raise ValidationError(f"newton_tol_pa={newton_tol_pa!r}: at most 1e-5 Pa (looser pressures shift fast "
                                  "transients and, on tall networks, drive thin layers' energy negative)")
        self.par[K.P_HOT] = require_positive(hot_dt_k, "hot_dt_k")
        self.par[K.P_O2AMB] = O2_AMBIENT
        self.par[K.P_HCONV] = require_positive(h_conv, "h_conv")
        self.par[K.P_LAYTOL] = require_positive(layer_tol_k, "layer_tol_k")
        self.par[K.P_RSTOP] = 1.0 if newton_stop_at_rounding else 0.0
        self.par[K.P_MIX] = 1.0 if door_jet_mixing else 0.0
        self.par[K.P_FROUDE] = _vertical_rule(ceiling_vent_froude, "ceiling_vent_froude")
        self.par[K.P_LAYRAD] = 1.0 if layer_radiation else 0.0
        self.par[K.P_EPSW] = require_range(surface_emissivity, "surface_emissivity", 0.05, 1.0)
        self.par[K.P_VDEP] = _vertical_rule(ceiling_vent_plumes, "ceiling_vent_plumes")
        self.t_out = np.array([t_out])
        self.q_kw = np.zeros(n)
        self.vent_open = self.arrays["vent"][:, K.V_OPEN].copy()
        self.broken = np.zeros(network.n_vents, bool)
        self.panes_broken = 0  # how many panes have fallen out (``broken`` changes only with it)
        self._glazed: np.ndarray | None = None  # the glazing vents (:meth:`_break_glazing`)
        self._glazed_min_c = np.inf  # the lowest break temperature among them (°C)
        self._p_base, self._p_base_t = np.zeros(0), np.nan  # the outside's pressure at the floors, at T_out
        self.state = initial_state(network, t_in, t_out, self.par[K.P_P0])
        self.t = 0.0
        self.tally = np.zeros(K.NTALLY)
        self.newton_iterations = 0
        self.steps = 0
        self.chan = np.zeros((network.n_vents, 4))
        self.vchan = np.zeros((network.n_vvents, 4))
        self.q_burned = np.zeros(n)
        self._dp_last, self._dt_last = np.zeros(n), 1.0  # the last step's pressure change
        k = int(newton_guess_steps)
        if not 1 <= k <= 64:
            raise ValidationError(f"newton_guess_steps={newton_guess_steps!r}: give 1..64 steps")
        # Newton's first guess: the mean rate dp/dt of the last k steps (a ring of rates and their running sum)
        self._rates, self._rate_sum, self._n_rates, self._rate_pos = np.zeros((k, n)), np.zeros(n), 0, 0
        self._mean_better = False  # the mean rate predicted the last step better than the last rate did
        self._init_walls(t_in, wall_conduction, wall_nodes)
        self._initial = (self.total_mass(), self.total_energy())
        self._update_outputs()

    # ------------------------------------------------------------------ stepping
    def step(self, dt: float) -> float:
        """Advance ``dt`` seconds in steps of at most ``dt_max`` (halved where a compartment would run
        dry); returns ``dt``."""
        dt = require_positive(dt, "dt")
        end = self.t + dt
        while self.t < end - 1e-12:
            self._substep(min(self.dt_max, self._dt_try, end - self.t))
        self._update_outputs()
        return dt

    def _substep(self, dt: float) -> None:
        dt0 = dt
        self._break_glazing()
        K.set_open(self.arrays["vent"], np.ascontiguousarray(self.vent_open, float))
        self.par[K.P_TOUT] = float(self.t_out[0])
        q = np.ascontiguousarray(self.q_kw, float)
        for _ in range(12):
            self.par[K.P_TIME] = self.t + dt
            new = np.empty_like(self.state)
            tally = np.zeros(K.NTALLY)
            a = self.arrays
            guess = self._first_guess(dt) if _ == 0 else np.zeros_like(self._dp_last)  # none after a failed try
            walls = (np.ascontiguousarray(self.wall_t[:, :, 0]), self._q_wall) if self.wall_conduction else ()
            it, err, bad = self._kernel_step(self.state, a["geom"], self.par, a["vent"], a["vidx"], a["vvent"],
                                             a["vvidx"], q, dt, new, self.chan, self.vchan, self.q_burned, tally,
                                             guess, self._plan, *walls)
            if bad == 0:
                if self.wall_conduction:
                    self._advance_walls(dt)
                self.state = new
                self._dp_last, self._dt_last = guess, dt  # (zeroed in place where not finite)
                self._remember_rate(guess, dt)
                self.tally += tally
                self.t += dt
                self.newton_iterations += it
                self.steps += 1
                if self.keep_halved_step and dt < dt0:
                    self._dt_try = dt
                return
            dt *= 0.5
        raise ValidationError(f"{self.name}: a compartment cannot give its outflow even at dt={dt:g} s; "
                              "check the network for a tiny compartment behind a large vent")

    def _first_guess(self, dt: float) -> np.ndarray:
        """Newton's first guess of the step's pressure change, as a rate times ``dt``: the last step's
        (``newton_guess_steps`` 1, or while the mean has not done better), or the mean rate of the last
        ``newton_guess_steps`` steps when that mean predicted the last step better (its largest error over the
        compartments smaller). The tall stairs' top storeys chatter: their converged changes jump by ~1e-4 Pa (the
        orifice law's linear range δ) from step to step about a slowly moving mean, which the mean of the last steps
        predicts better than the last one; while a fire grows, the last step's does better. On the 115-storey bench
        tower: 4.15 → 3.62 Newton iterations per step from 1 h on, 4.15 → 3.80 over 5 min to 35 min, unchanged
        before 5 min; Ping An's example and the 30-storey tower within ±2 %. The tolerances are the same, so
        the accuracy is (tests/physics/test_fire_step.py)."""
        if self._rates.shape[0] == 1 or self._n_rates == 0 or not self._mean_better:
            return self._dp_last * (dt / self._dt_last)
        return self._rate_sum * (dt / self._n_rates)

    def _remember_rate(self, dp: np.ndarray, dt: float) -> None:
        # which guess would have been the closer one for this step (largest error), and the ring updated (dp made
        # finite in place first)
        self._mean_better = K.accept_guess(dp, dt, self._rates, self._rate_sum, self._rate_pos, self._n_rates)
        if self._rates.shape[0] == 1:
            return
        self._rate_pos = (self._rate_pos + 1) % self._rates.shape[0]
        self._n_rates = min(self._n_rates + 1, self._rates.shape[0])

    def _init_walls(self, t_in: np.ndarray, on: bool, nodes: int) -> None:
        """The conducting walls: per compartment three slabs of its lining (ceiling, walls, floor), their grids and
        node temperatures ``wall_t`` (N, 3, nodes)."""
        self.wall_conduction = bool(on)
        n = self.network.n_compartments
        if not 3 <= int(nodes) <= 60:
            raise ValidationError(f"wall_nodes={nodes!r}: give 3..60 nodes through a wall's thickness")
        net, g = self.network, self.arrays["geom"]
        # one grid per distinct lining (a tower has a handful; a grid per compartment cost 0.04 s on the tower)
        lining = np.stack([net.wall_k, net.wall_rho, net.wall_c, net.wall_thickness_m], axis=1)
        kinds, which = np.unique(lining, axis=0, return_inverse=True)
        grids = [WK.wall_grid(*row, n=int(nodes)) for row in kinds]
        which = np.asarray(which).ravel()
        self.wall_depth_m = np.stack([grids[j][0] for j in which])
        self._wall_cap = np.ascontiguousarray(np.repeat(np.stack([grids[j][1] for j in which]), 3, axis=0))
        self._wall_cond = np.ascontiguousarray(np.repeat(np.stack([grids[j][2] for j in which]), 3, axis=0))
        self.wall_area_m2 = np.stack([g[:, K.G_AREA], g[:, K.G_PERIM] * g[:, K.G_H], g[:, K.G_AREA]], axis=1)
        self.wall_t = np.repeat(t_in[:, None, None], 3, axis=1).repeat(int(nodes), axis=2)
        # the back face to the space behind at the initial temperature: convection + radiation linearised there
        self._wall_back_t = np.repeat(t_in, 3)
        self._wall_h_back = self.par[K.P_HCONV] + 4.0 * self.par[K.P_EPSW] * K.SIGMA * self._wall_back_t ** 3
        self._q_wall = np.zeros((n, 3))
        self._wall_scratch = np.empty((3 * n, 2 * int(nodes)))
        self.wall_back_loss_j = 0.0
        self._wall_e0 = self.wall_energy()

    def _advance_walls(self, dt: float) -> None:
        flux = (self._q_wall / self.wall_area_m2).ravel()
        temps = self.wall_t.reshape(-1, self.wall_t.shape[2])
        WK.advance(temps, self._wall_cap, self._wall_cond, flux, self._wall_h_back, self._wall_back_t, dt,
                   self._wall_scratch)
        self.wall_back_loss_j += float(np.sum(self._wall_h_back * (temps[:, -1] - self._wall_back_t)
                                              * self.wall_area_m2.ravel())) * dt

    def wall_energy(self) -> float:
        """Heat held in the conducting walls above 0 K (J; all compartments' slabs)."""
        temps = self.wall_t.reshape(-1, self.wall_t.shape[2])
        return float(np.sum(self._wall_cap * temps * self.wall_area_m2.reshape(-1, 1)))

    #: one step of the kernel (tests swap in the numpy reference)
    _kernel_step = staticmethod(K.step)

    def _break_glazing(self) -> None:
        """Glazing falls out (vent fully open) once either side's upper layer reaches its break temperature."""
        if self._glazed is None:
            self._glazing_setup()
        tu = self.t_upper
        if not len(self._glazed) or float(tu.max()) - 273.15 < self._glazed_min_c:  # no layer hot enough for a pane
            return
        k = K.glazing_hits(tu, self._glazed, self.arrays["vidx"], self._brk_c, self.broken, self._hits)
        if k:
            hit = self._hits[:k]
            self.broken[hit] = True
            self.vent_open[hit] = 1.0
            self.panes_broken += k

    def _glazing_setup(self) -> None:
        """Once: the glazing vents, the lowest break temperature among them (°C) and the work array of hits."""
        brk = self.network.vent_break_c
        self._glazed = np.flatnonzero(np.isfinite(brk))
        self._glazed_min_c = float(brk[self._glazed].min()) if len(self._glazed) else np.inf
        self._brk_c = np.ascontiguousarray(brk, float)
        self._hits = np.empty(len(self._glazed), np.int64)

    # ------------------------------------------------------------------ several steps in one call
    def steps_ready(self) -> bool:
        """Whether :func:`physics._kernels.fire_steps.run_steps` can step this model as :meth:`step` would: this
        class's own step and compiled kernel (not one a test or a profile swapped in), lumped walls (the conducting
        walls' step sums with numpy) and the outside's pressures of the present outside temperature. With ``threads``
        > 1 the loop steps the zone with the parallel kernel (:func:`~physics._kernels.fire_steps.run_steps_parallel`)."""
        kernel = self.__dict__.get("_kernel_step")  # (the parallel step of ``threads`` > 1 is the instance's)
        return (type(self) is FireZoneModel and (kernel is None or getattr(kernel, "threads", 0) == self.threads > 1)
                and "step" not in self.__dict__ and not self.wall_conduction
                and self._p_base_t == float(self.t_out[0]))

    def steps_in(self, ist: np.ndarray, fst: np.ndarray) -> tuple:
        """The zone's part of :func:`~physics._kernels.fire_steps.run_steps`' arguments (state to ``ext_per_kg``,
        then ``out``) and its scalars into ``ist``/``fst``; :meth:`steps_out` takes the result back."""
        from physics._kernels import fire_steps as FS

        if self._glazed is None:
            self._glazing_setup()
        self.par[K.P_TOUT] = float(self.t_out[0])
        ist[[FS.I_RPOS, FS.I_NRATES, FS.I_MEANB, FS.I_PANES, FS.I_NEWTON, FS.I_STEPS, FS.I_KEEP]] = (
            self._rate_pos, self._n_rates, int(self._mean_better), self.panes_broken, self.newton_iterations,
            self.steps, int(self.keep_halved_step))
        fst[[FS.F_ZT, FS.F_DTLAST, FS.F_DTTRY, FS.F_DTMAX, FS.F_GLZMIN]] = (
            self.t, self._dt_last, self._dt_try, self.dt_max, self._glazed_min_c)
        a = self.arrays
        if self._dp_last.base is not None or not self._dp_last.flags.c_contiguous:
            self._dp_last = np.ascontiguousarray(self._dp_last)
        out = self._out.copy()  # (a new array: the outputs read before keep theirs)
        args = (self.state, np.empty((2,) + self.state.shape), a["geom"], self.par, a["vent"], a["vidx"], a["vvent"],
                a["vvidx"], self._plan, self.chan, self.vchan, self.q_burned, self.tally, self.vent_open, self.broken,
                self._glazed, self._brk_c, self._hits, self._dp_last, np.empty_like(self._dp_last), self._rates,
                self._rate_sum, self._p_base, SOOT_EXTINCTION_M2_KG)
        return args, out

    def steps_out(self, ist: np.ndarray, fst: np.ndarray, state: np.ndarray, out: np.ndarray,
                  q_kw: np.ndarray) -> None:
        """After :func:`~physics._kernels.fire_steps.run_steps`: the model at its last step's end (``state`` the
        buffer holding it, ``out`` its outputs, ``q_kw`` the heat release it stepped with)."""
        from physics._kernels import fire_steps as FS

        self.state, self.q_kw = state, q_kw
        self._rate_pos, self._n_rates = int(ist[FS.I_RPOS]), int(ist[FS.I_NRATES])
        self._mean_better = bool(ist[FS.I_MEANB])
        self.panes_broken, self.newton_iterations, self.steps = (int(ist[FS.I_PANES]), int(ist[FS.I_NEWTON]),
                                                                 int(ist[FS.I_STEPS]))
        self.t, self._dt_last, self._dt_try = float(fst[FS.F_ZT]), float(fst[FS.F_DTLAST]), float(fst[FS.F_DTTRY])
        self._out, self._species_done, self._flows = out, False, None
        self.t_upper, self.t_lower, self.layer_height, self.pressure = out[K.O_TU], out[K.O_TL], out[K.O_Z], out[K.O_P]
        self.soot_upper, self.soot_lower = out[K.O_SOOTU], out[K.O_SOOTL]
        self.ext_upper = out[K.NOUT]

    # ------------------------------------------------------------------ outputs
    def _update_outputs(self) -> None:
        """The outputs of the new state; the species' fractions and the vents' net flows, which a run reads only
        at its records, are computed when first read (from the same state and flows: the same numbers)."""
        self.par[K.P_TOUT] = float(self.t_out[0])
        if self._p_base_t != self.par[K.P_TOUT]:  # the outside's pressure at the floors, once per T_out
            self._p_base = np.empty(self.network.n_compartments)
            K.outside_at_base(self.arrays["geom"], self.par, self._p_base)
            self._p_base_t = self.par[K.P_TOUT]
        # compartment_outputs' rows without the species, and the upper layers' extinction in the row after them
        out = np.empty((K.NOUT + 1, self.network.n_compartments))
        K.step_outputs(self.state, self.arrays["geom"], self.par, self._p_base, SOOT_EXTINCTION_M2_KG, out)
        self._out, self._species_done, self._flows = out, False, None
        self.t_upper, self.t_lower, self.layer_height, self.pressure = out[K.O_TU], out[K.O_TL], out[K.O_Z], out[K.O_P]
        self.soot_upper, self.soot_lower = out[K.O_SOOTU], out[K.O_SOOTL]
        self.ext_upper = out[K.NOUT]  # (the lower layer's when read: ext_lower)

    ext_lower = property(lambda self: SOOT_EXTINCTION_M2_KG * self.soot_lower,
                         doc="(N,) light extinction coefficient of the lower layers (1/m), worked out when read (a run "
                             "reads it at its records only)")

    def _species(self, row: int) -> np.ndarray:
        if not self._species_done:
            K.species_outputs(self.state, self._out)
            self._species_done = True
        return self._out[row]

    o2_upper = property(lambda self: self._species(K.O_O2U), doc="(N,) O2 volume fraction of the upper layers")
    o2_lower = property(lambda self: self._species(K.O_O2L), doc="(N,) O2 volume fraction of the lower layers")
    co2_upper = property(lambda self: self._species(K.O_CO2U), doc="(N,) CO2 volume fraction of the upper layers")
    co2_lower = property(lambda self: self._species(K.O_CO2L), doc="(N,) CO2 volume fraction of the lower layers")
    co_upper = property(lambda self: self._species(K.O_COU), doc="(N,) CO (ppm) of the upper layers")
    co_lower = property(lambda self: self._species(K.O_COL), doc="(N,) CO (ppm) of the lower layers")

    def _net_flows(self) -> tuple[np.ndarray, np.ndarray]:
        if self._flows is None:
            self._flows = ((self.chan[:, 0] + self.chan[:, 1]) - (self.chan[:, 2] + self.chan[:, 3]),
                           (self.vchan[:, 0] + self.vchan[:, 1]) - (self.vchan[:, 2] + self.vchan[:, 3]))
        return self._flows

    vent_flow = property(lambda self: self._net_flows()[0], doc="(M,) net mass flow through each wall vent, a → b")
    vvent_flow = property(lambda self: self._net_flows()[1], doc="(K,) net mass flow up through each ceiling vent")

    @property
    def props(self) -> np.ndarray:
        """(N, NPROP) layer properties of the present state (:func:`physics._kernels.fire_zone.layer_props`)."""
        props = np.empty((self.network.n_compartments, K.NPROP))
        K.layer_props(self.state, self.arrays["geom"], self.par, props)
        return props

    def mole_fractions(self, *, upper: bool) -> np.ndarray:
        """(N, 5) volume fractions of :data:`physics._kernels.fire_zone.SPECIES` in one layer (rest N2)."""
        col, mcol = (K.SU, K.MU) if upper else (K.SL, K.ML)
        y = self.state[:, col:col + K.NSP]
        m = self.state[:, mcol]
        moles = y / K.MOLAR_MASS
        rest = np.maximum(m - y.sum(axis=1), 0.0) / K.M_N2
        total = moles.sum(axis=1) + rest
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(total[:, None] > 0, moles / np.where(total > 0, total, 1.0)[:, None], 0.0)

    # ------------------------------------------------------------------ balances
    def total_mass(self) -> float:
        """Gas mass in the building (kg)."""
        return float(self.state[:, K.MU].sum() + self.state[:, K.ML].sum())

    def total_energy(self) -> float:
        """Internal energy of the gas in the building (J)."""
        return float(self.state[:, K.UU].sum() + self.state[:, K.UL].sum())

    def balance(self) -> dict[str, float]:
        """Cumulative terms (kg, J) and the residuals of the mass and energy balances since construction.

        mass: M − M0 − (in − out + fuel burned); energy: U − U0 − (H_in − H_out + released − radiated +
        fuel enthalpy − walls − vent radiation). Both are round-off when the model conserves.
        ``layer_radiation`` is the part of ``walls`` the upper layers radiated to the surfaces (the rest is
        convection); ``vent_radiation`` what they radiated out of the openings to the outside.
        """
        t = dict(zip(BALANCE_TERMS, (float(x) for x in self.tally), strict=True))
        m0, u0 = self._initial
        t["mass_residual"] = self.total_mass() - m0 - (t["mass_in"] - t["mass_out"] + t["fuel_mass"])
        t["energy_residual"] = self.total_energy() - u0 - (t["enthalpy_in"] - t["enthalpy_out"] + t["released"]
                                                           - t["radiated"] + t["fuel_enthalpy"] - t["walls"]
                                                           - t["vent_radiation"])
        t["mass"] = self.total_mass()
        t["energy"] = self.total_energy()
        return t

    def _field_changed(self, name: str, previous: np.ndarray) -> None:
        if name == "vent_open_fraction" and np.any(self.vent_open > 1.0):
            v = int(np.argmax(self.vent_open))
            raise ValidationError(f"{self.name}.vent_open_fraction[{v}]={float(self.vent_open[v])!r}: "
                                  "must lie in 0..1")
