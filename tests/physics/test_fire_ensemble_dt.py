"""The fire ensemble's member time step (physics.fire_ensemble.ENSEMBLE_DT_S) against 1 s, on members NOT used to
choose it.

The step was chosen with ``bench/bench_fire_ensemble.py --parts dt`` (600 s members, record every 10 s): its
``choose`` set (the bench tower's storeys 10, 44, 80 and the 30-storey example's storeys 3, 12, 24, the four t²
growths, summer and winter) passed at 2.5 s, the largest step that divides the record interval and that the
tower's stairs take without halving; its ``held_out`` set (storeys 25, 62, 103 and 7, 18, 28) then failed at
2.5 s (below) and passed at 2 s, which is the default. The members here are in neither set: the 30-storey
example's storeys 5, 15, 22 and 27, and the Ping An example itself (8 office zones and every lift shaft: a
network the study did not run), two of its members past flashover.

Tolerance, from the method (no published figure applies):

* **ASET: less than two record intervals (20 s).** A storey's ASET exists only on the run's record grid
  (``record_every_s`` = 10 s, the ensemble's): the FEDs are integrated over the records and a criterion's
  crossing is interpolated linearly between two records. The visibility criterion jumps when the escape route's
  smoke layer passes head height (``at_head`` switches to the upper layer's extinction), so ASET = t_k + f·10 s,
  t_k the record before the passage and f ∈ [0, 1) set by the size of the jump at the next record, wherever in
  the interval the passage was. A step that moves the passage across one record time, by however little, moves
  k by one and f anywhere in [0, 1): |ΔASET| < 2 intervals. The time step itself moves the events by far less
  than an interval (the design fire's heat release at the step's end leads the t² curve by at most one step: in
  the study, ASETs at 2 s were never later than at 1 s by more than 0.11 s; most differences were 0 or one
  interval minus ~0.2 s; the largest not a tie, 11.2 s, was 573.1 → 561.9 s on the bench tower's storey 103,
  fast, winter, f 0.31 → 0.19).
* **Ties are not a property of the step.** Where a route's layer comes down to within millimetres of head height
  and stops, whether the storey becomes untenable is decided by those millimetres: a storey whose ASETs differ
  by more than that must be one where the run that stayed tenable longer kept its layer above head height, at
  its closest approach, by less than the two runs' own difference of that layer height at that record (the
  bench tower's storey 10, slow growth, summer: 0.72 mm above head height at 1 s, the runs 0.77 mm apart there;
  untenable at 443 s at 2 s), and that margin is under 1 cm (1/30 of the ±0.3 m within which issue 14 accepts
  the model's layer height against CFAST: a margin the model cannot resolve; without this bound a step so long
  that the runs' layers differ by 30 cm would excuse itself). Anything else fails the test (at 2.5 s the bench
  tower's storey 103: 263 s, the layer 4.4 mm above head height where the runs were 1.3 mm apart).
* **Stability**: no step with Newton stopped by its iteration cap above its tolerance, no layer with negative
  mass or energy, mass and energy balances to round-off (1e-9 of the building's gas), and the fire room after
  flashover (from 30 s after it) within 10 % of its rise above the inside air of the 1 s run's: half the ±20 %
  within which issue 14 accepts the model's upper layer against CFAST, so the step's own error stays well
  inside the model's. This is the check that fails at 2.5 s: the explicit layer radiation and door-jet
  entrainment of a ~23 MW post-flashover room oscillate from step to step by hundreds of K (the bench tower's
  storey 103, fast, winter: 529-1460 °C at 2.5 s, within 1026-1068 °C at 1 and 2 s), which also pulled that
  storey's corridor layer below head height 263 s early.
* **Products**: where no member tied, each storey's P10/P50/P90 moves by less than two intervals (an order
  statistic of values each moved by less than d moves by less than d; a storey tenable to the end counts as
  ASET = 600 s, as above) and ``p_untenable`` by 600 s lies between the 1 s runs' by 580 s and by 620 s (a 1 s
  run tenable to its end counted as possibly untenable by 620 s).
"""

from __future__ import annotations

import numpy as np
import pytest

from physics._kernels import fire_zone as K
from physics.fire_correlations import AMBIENT_K
from physics.fire_ensemble import ENSEMBLE_DT_S, censored_percentiles, untenable_probability
from physics.fire_sim import FireSimulation
from physics.fire_tenability import HEAD_HEIGHT_M

DURATION_S = 600.0
RECORD_S = 10.0
#: ASET's tolerance: less than two record intervals (module docstring).
ASET_TOL_S = 2.0 * RECORD_S
#: A tie's margin above head height is millimetres: under 1 cm, 1/30 of the ±0.3 m within which issue 14 accepts
#: the model's layer height against CFAST (module docstring).
TIE_MAX_M = 0.01
#: The fire room after flashover (from SETTLE_S after it): its upper layer within this share of its rise above the
#: inside air of the 1 s run's.
FIRE_ROOM_SHARE = 0.10
SETTLE_S = 30.0
#: (storey, growth, season, sprinklers) of the 30-storey example: origins in neither of the bench's sets.
TOWER_30 = [(5, "fast", "summer", False), (5, "ultrafast", "winter", False), (15, "slow", "summer", False),
            (15, "medium", "winter", False), (27, "ultrafast", "winter", False), (22, "fast", "summer", True)]


def _run(building: str, floor: int, growth: str, season: str, sprinklers: bool, dt_s: float) -> dict:
    """A 600 s run with its zone steps watched: ASET, the routes' lowest layer per record, stability figures."""
    sim = FireSimulation(building, floor=floor, growth=growth, season=season, sprinklers=sprinklers,
                         duration_s=DURATION_S, dt_s=dt_s, record_every_s=RECORD_S)
    tol = float(sim.zone.par[K.P_TOL])
    watch = {"capped": 0, "min_layer": np.inf}

    def kernel(*a):
        it, err, bad = K.step(*a)
        if not bad:
            new = a[9]
            watch["capped"] += int(it >= 50 and err > tol)
            watch["min_layer"] = min(watch["min_layer"], float(new[:, [K.MU, K.ML, K.UU, K.UL]].min()))
        return it, err, bad

    sim.zone._kernel_step = kernel  # the same compiled step, watched
    sim.advance_to(DURATION_S)
    z = np.stack(sim.recorder.fields["layer_height"])
    bal = sim.zone.balance()
    return {"aset": np.where(np.isfinite(sim.tenability.aset_s), sim.tenability.aset_s, np.nan),
            "flashover": [e["time_s"] for e in sim.events if e["kind"] == "flashover" and e["compartment"] ==
                          sim.network.names[sim.origin]],
            "fire_tu": np.stack(sim.recorder.fields["upper_layer__temperature"])[:, sim.origin],
            "t": np.asarray(sim.recorder.t), "route_z": np.stack([z[:, r].min(axis=1) for r in sim.tenability.routes],
                                                                 axis=1),
            "capped": watch["capped"], "min_layer": watch["min_layer"],
            "residual": max(abs(bal["mass_residual"]) / bal["mass"], abs(bal["energy_residual"]) / bal["energy"])}


def _is_tie(run: dict, ref: dict, s: int) -> bool:
    """The run whose storey ``s`` stayed tenable longer kept its route's layer above head height, at its closest
    approach, by less than the two runs' layer heights differ there (module docstring)."""
    a, b = (np.nan_to_num(x["aset"][s], nan=np.inf) for x in (run, ref))
    later = run if a > b else ref
    upto = later["t"] < np.nan_to_num(later["aset"][s], nan=np.inf)
    k = int(np.argmin(np.where(upto, later["route_z"][:, s], np.inf)))  # its closest approach while tenable
    margin = later["route_z"][k, s] - HEAD_HEIGHT_M
    return bool(0.0 <= margin < min(abs(run["route_z"][k, s] - ref["route_z"][k, s]), TIE_MAX_M))


def _compare(building: str, member: tuple) -> tuple[dict, dict, list[int]]:
    """Both runs of ``member``; asserts the tolerances above; returns them and the tied storeys."""
    ref = _run(building, *member, dt_s=1.0)
    run = _run(building, *member, dt_s=ENSEMBLE_DT_S)
    for r in (ref, run):
        assert r["capped"] == 0 and r["min_layer"] >= 0.0 and r["residual"] < 1e-9
    assert len(run["flashover"]) == len(ref["flashover"])
    if ref["flashover"]:  # the fire room after flashover: no oscillation (see the module docstring)
        after = ref["t"] >= max(ref["flashover"][0], run["flashover"][0]) + SETTLE_S
        rise = ref["fire_tu"][after] - AMBIENT_K
        assert np.all(np.abs(run["fire_tu"][after] - ref["fire_tu"][after]) <= FIRE_ROOM_SHARE * rise)
    x, y = (np.nan_to_num(r["aset"], nan=DURATION_S) for r in (run, ref))
    far = np.flatnonzero(np.abs(x - y) >= ASET_TOL_S)
    ties = [int(s) for s in far if _is_tie(run, ref, int(s))]
    assert ties == far.tolist(), (f"{building} {member}: storeys {far.tolist()} ASET {y[far]} s at 1 s, {x[far]} s "
                                  f"at {ENSEMBLE_DT_S} s; ties {ties}")
    return run, ref, ties


@pytest.fixture(scope="module")
def tower_30():
    return [_compare("tower_30_residential", m) for m in TOWER_30]


def test_default_step_is_longer_than_a_single_runs():
    assert 1.0 < ENSEMBLE_DT_S <= RECORD_S and (RECORD_S / ENSEMBLE_DT_S).is_integer()  # lands on the records


def test_aset_within_two_record_intervals_on_the_30_storey_tower(tower_30):
    compared = sum(int(np.sum(np.isfinite(run["aset"]) | np.isfinite(ref["aset"]))) for run, ref, _ in tower_30)
    assert compared >= 5  # every member made its origin storey untenable within 600 s but the sprinklered one


def test_products_move_by_less_than_two_record_intervals(tower_30):
    run = np.stack([r["aset"] for r, _, _ in tower_30])
    ref = np.stack([r["aset"] for _, r, _ in tower_30])
    tied = sorted({s for *_, ties in tower_30 for s in ties})
    keep = np.setdiff1d(np.arange(run.shape[1]), tied)
    # a percentile beyond the run counts as the run's end, as a tenable storey's ASET above
    p_run, p_ref = (np.nan_to_num(censored_percentiles(a)[:, keep], nan=DURATION_S) for a in (run, ref))
    assert np.all(np.abs(p_run - p_ref) < ASET_TOL_S)
    u = untenable_probability(run, (DURATION_S,), DURATION_S)[0, keep]
    lo = untenable_probability(ref, (DURATION_S - ASET_TOL_S,), DURATION_S)[0, keep]
    # untenable by 620 s: the 1 s runs untenable by 600 s, or tenable to the end (they cannot tell)
    hi = untenable_probability(np.nan_to_num(ref, nan=DURATION_S), (DURATION_S,), DURATION_S)[0, keep]
    assert np.all((lo <= u) & (u <= hi))


@pytest.mark.parametrize("member", [(62, "ultrafast", "winter", False), (101, "fast", "winter", False),
                                    (30, "fast", "summer", None)],
                         ids=["storey 62 ultrafast winter, flashover", "storey 101 fast winter, flashover",
                              "storey 30 fast summer, sprinklers"])
def test_aset_within_two_record_intervals_on_ping_an(member):
    run, ref, _ = _compare("ping_an_finance_centre", member)
    assert np.isfinite(ref["aset"]).any()
