"""The compiled steps (physics._kernels.fire_steps via physics.fire_sim_steps) equal the step-by-step Python loop
to the bit: every recorded field, every event and its time, the ASET of every storey, the zone model's state, flows,
tallies and Newton ring, the devices' links and the fires' states, on the 30-storey example tower's runs that go
through every kind of event the loop returns for (flashover, fallen glazing, façade spread, sprinklers, detectors,
burn-out, the records) and on a co-simulation's pattern (advance to odd times, doors opened between calls).
A fallback (a suppressed fire after its sprinkler, which the loop does not compile) still gives the same numbers."""

from __future__ import annotations

import numpy as np

from physics._kernels import fire_steps as FS
from physics.fire_building import load_example
from physics.fire_sim import FireSimulation

TOWER = "tower_30_residential"
FLOOR = 5


def _open_windows(spec):
    """Windows that fall out at 100 °C: the fire flashes over and spreads up the façade (test_fire_sim's)."""
    glazing = spec.fire.glazing.model_copy(update={"break_c": 100.0})
    return spec.model_copy(update={"fire": spec.fire.model_copy(update={"glazing": glazing})})


def _fire(spec, **update):
    return spec.model_copy(update={"fire": spec.fire.model_copy(update=update)})


def _outputs(sim) -> dict[str, np.ndarray]:
    """Everything a run gives or carries on with, as arrays."""
    z = sim.zone
    out = {"state": z.state, "tally": z.tally, "chan": z.chan, "vchan": z.vchan, "q_burned": z.q_burned,
           "rates": z._rates, "rate_sum": z._rate_sum, "dp_last": z._dp_last, "vent_open": z.vent_open,
           "scalars": np.array([z.t, z._dt_last, z.newton_iterations, z.steps, z.panes_broken, z._rate_pos,
                                z._n_rates, z._mean_better, sim.t]),
           "events": np.array([repr(sorted(e.items())) for e in sim.events]),
           "aset": sim.tenability.aset_s, "q_design": sim.q_design,
           "fires": np.array([[c, f.energy_kj, f.t_decay_s, f.q_decay_kw, f._t, f._q_pre, f.t_sprinkler_s,
                               f.t_flashover_s] for c, f in sim.fires.items()])}
    if sim.links is not None:
        out |= {"activation": sim.links.activation_s, "link": sim.links.link_k, "gas": sim.links._gas}
    for k, v in sim.result().dataset.data_vars.items():
        if v.dtype.kind in "fiub":
            out["ds_" + k] = v.values
    return out


def _run(spec, until: float, batch: bool, *, chunks=None, doors=False, **kw) -> FireSimulation:
    sim = FireSimulation(spec, floor=FLOOR, duration_s=until, **kw)
    sim.batch_steps = batch
    stairs = sorted(sim.stair_door_vents().items())[:2]
    for k, t in enumerate(chunks or [until]):
        if doors and stairs:  # an evacuation holds a stair door open, then lets it close
            sim.set_vent_open([stairs[k % len(stairs)][1]], 1.0 if k % 2 == 0 else 0.0)
        sim.advance_to(t)
    return sim


def _same(a: FireSimulation, b: FireSimulation) -> None:
    x, y = _outputs(a), _outputs(b)
    assert x.keys() == y.keys()
    differ = [k for k in x if not np.array_equal(x[k], y[k], equal_nan=x[k].dtype.kind == "f")]
    assert differ == []


def _kinds(sim) -> set[str]:
    return {e["kind"] for e in sim.events}


def test_flashover_glazing_and_facade_spread_to_the_bit():
    spec = _open_windows(load_example(TOWER))
    kw = {"growth": "fast", "sprinklers": False, "record_every_s": 10.0, "spread_delay_s": 100.0}
    a, b = _run(spec, 800.0, True, **kw), _run(spec, 800.0, False, **kw)
    assert {"flashover", "glazing_broken", "spread", "detector"} <= _kinds(a)
    _same(a, b)
    # the compiled loop made most steps, a few calls each record interval at most
    assert b.batches == 0 and a.batched_steps >= 0.9 * a.zone.steps
    assert a.batches <= 2 * 800.0 / 10.0


def test_sprinklers_held_fire_and_odd_times_with_doors_to_the_bit():
    spec = load_example(TOWER)
    kw = {"growth": "fast", "sprinklers": True, "season": "winter", "record_every_s": 10.0}
    chunks = [7.5, 33.0, 61.25, 100.0, 154.0, 200.0, 260.0, 300.0]
    a, b = (_run(spec, 300.0, batch, chunks=chunks, doors=True, **kw) for batch in (True, False))
    assert "sprinkler" in _kinds(a) and np.isfinite(a.fires[a.origin].t_sprinkler_s)
    _same(a, b)
    assert a.batched_steps > 0


def test_burnout_to_the_bit():
    spec = _fire(load_example(TOWER), fuel_load_mj_m2=5.0)  # burns out before flashover (test_fire_sim's)
    kw = {"growth": "fast", "sprinklers": False, "record_every_s": 10.0}
    a, b = _run(spec, 400.0, True, **kw), _run(spec, 400.0, False, **kw)
    assert "burnout" in _kinds(a)
    _same(a, b)


def test_a_suppressed_fire_steps_in_python_after_its_sprinkler():
    # Evans' decay after the sprinkler is NumPy's exponential: the loop leaves that run to Python from then on
    spec = load_example(TOWER)
    spec = _fire(spec, sprinklers=spec.fire.sprinklers.model_copy(update={"control": "decay"}))
    kw = {"growth": "fast", "sprinklers": True, "season": "winter", "record_every_s": 10.0}
    a, b = _run(spec, 300.0, True, **kw), _run(spec, 300.0, False, **kw)
    t_sp = a.fires[a.origin].t_sprinkler_s
    assert a.fires[a.origin].source.sprinkler == "suppression" and np.isfinite(t_sp)
    _same(a, b)
    assert 0 < a.batched_steps <= t_sp + 1.0


def test_record_returns_are_the_python_loops_grid():
    # the loop returns at each record (10 s) or sooner; never past one
    spec = load_example(TOWER)
    sim = FireSimulation(spec, floor=FLOOR, growth="fast", sprinklers=False, duration_s=100.0, record_every_s=10.0)
    sim.advance_to(100.0)
    assert sim.recorder.t == [float(t) for t in range(0, 101, 10)]
    assert FS.WHY_RECORD != FS.WHY_EVENT and sim.batches >= 10


def test_which_models_the_compiled_loop_steps():
    # the serial and the parallel zone step (its own kernel, threads > 1) yes; a swapped kernel or conducting
    # walls no (their steps are Python's or NumPy's)
    import numba

    from physics import fire_cases
    from physics.fire_zone import FireZoneModel

    net = fire_cases.one_room().network
    assert FireZoneModel(net).steps_ready()
    if numba.config.NUMBA_NUM_THREADS >= 2:
        assert FireZoneModel(net, threads=2).steps_ready()
    watched = FireZoneModel(net)
    watched._kernel_step = lambda *a: None
    assert not watched.steps_ready()
    assert not FireZoneModel(net, wall_conduction=True).steps_ready()


def test_halved_steps_and_off_grid_records_to_the_bit():
    # Ping An at 5 s steps: the zone halves them (a compartment cannot give its outflow), the loop's retries and the
    # kept halved length are the model's; and records every 2.5 s of 1 s steps, advanced to odd times
    kw = {"floor": 44, "dt_s": 5.0, "record_every_s": 10.0, "keep_halved_step": True}
    a, b = (_run_any("ping_an_finance_centre", 40.0, batch, **kw) for batch in (True, False))
    assert a.zone._dt_try < 5.0 and a.zone.steps > 8  # it did halve
    _same(a, b)
    kw = {"floor": FLOOR, "dt_s": 1.0, "record_every_s": 2.5, "growth": "ultrafast"}
    a, b = (_run_any(TOWER, 61.0, batch, chunks=[3.3, 17.0, 61.0], **kw) for batch in (True, False))
    assert a.recorder.t[:3] == [0.0, 2.5, 5.0] and a.recorder.t[-2:] == [60.0, 61.0]  # the grid, then the end
    _same(a, b)


def _run_any(building, until: float, batch: bool, *, chunks=None, **kw) -> FireSimulation:
    sim = FireSimulation(building, duration_s=until, **kw)
    sim.batch_steps = batch
    for t in chunks or [until]:
        sim.advance_to(t)
    return sim
