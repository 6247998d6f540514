"""The fire run's set-up shortcuts and step options are the same computation (or, opt-in, what they say).

- A run on a prepared building (:func:`physics.fire_sim.prepare_building`: the network and the zone's
  factorisation plan made once, the plan's work arrays reused as scratch by run after run) gives the fresh run's
  dataset and events to the bit.
- The windows of every compartment found in one pass (:func:`physics.fire_sim_spread.windows_by_compartment`)
  are :func:`~physics.fire_sim_spread.windows_of`'s, and the conducting walls' grids made once per distinct
  lining are the per-compartment grids.
- ``keep_halved_step`` (opt-in): after a halved step, later tries never start longer again; off, every step
  first tries ``dt_max`` as before.
"""

from __future__ import annotations

import numpy as np
import pytest

from physics._kernels import fire_walls as WK
from physics.fire_building import build_network, load_example
from physics.fire_sim import FireSimulation, prepare_building
from physics.fire_sim_spread import windows_by_compartment, windows_of
from physics.fire_zone import FireZoneModel

T30 = "tower_30_residential"


def _run(prepared=None, duration_s=60.0):
    sim = FireSimulation(T30, floor=5, growth="ultrafast", sprinklers=True, duration_s=duration_s,
                         record_every_s=10.0, prepared=prepared)
    sim.advance_to(duration_s)
    res = sim.result()
    return {k: res.dataset[k].values for k in res.dataset.data_vars if res.dataset[k].dtype.kind in "fiub"}, \
        res.events


def test_a_prepared_building_gives_the_fresh_runs_results_to_the_bit():
    fresh, ev_fresh = _run()
    prepared = prepare_building(T30)
    for _ in range(2):  # the second run steps on the first's work arrays: scratch, so the same results
        data, events = _run(prepared)
        assert events == ev_fresh
        assert data.keys() == fresh.keys()
        for k in fresh:
            assert np.array_equal(data[k], fresh[k], equal_nan=True), k


def test_windows_in_one_pass_are_windows_of_each_compartment():
    net = build_network(load_example(T30))
    win = windows_by_compartment(net)
    assert win  # the example has windows
    for c in range(net.n_compartments):
        assert np.array_equal(win.get(c, np.zeros(0, np.int64)), windows_of(net, c)), c


def test_wall_grids_per_lining_are_the_per_compartment_grids():
    net = build_network(load_example(T30))
    m = FireZoneModel(net, wall_conduction=True, wall_nodes=8)
    for c in range(0, net.n_compartments, 7):
        x, cap, cond = WK.wall_grid(net.wall_k[c], net.wall_rho[c], net.wall_c[c], net.wall_thickness_m[c], n=8)
        assert np.array_equal(m.wall_depth_m[c], x)
        for f in range(3):
            assert np.array_equal(m._wall_cap[3 * c + f], cap)
            assert np.array_equal(m._wall_cond[3 * c + f], cond)


@pytest.mark.parametrize("keep", [False, True])
def test_keep_halved_step(keep):
    """Ping An at 5 s steps: the zone model halves them (a compartment cannot give its outflow at 5 s). Kept, the
    tries never grow again after a halving; not kept, each step first tries the full 5 s (the model before)."""
    sim = FireSimulation("ping_an_finance_centre", floor=44, dt_s=5.0, record_every_s=10.0, duration_s=40.0,
                         keep_halved_step=keep)
    tries = []
    kernel = sim.zone._kernel_step

    def counting(*args):
        tries.append(float(args[8]))
        return kernel(*args)

    sim.zone._kernel_step = counting
    sim.advance_to(40.0)
    assert sim.zone.t == pytest.approx(40.0)
    failed = len(tries) - sim.zone.steps
    assert failed > 0  # the case does halve
    if keep:
        assert all(b <= a for a, b in zip(tries, tries[1:], strict=False))
        assert failed <= int(np.log2(5.0 / min(tries))) + 1
    else:
        assert sim.zone._dt_try == np.inf
        assert tries.count(5.0) == 8  # each of the 8 steps of 5 s first tried whole
