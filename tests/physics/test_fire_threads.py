"""The zone model's kernel on two threads (``FireZoneModel(threads=2)``, physics._kernels.fire_zone_parallel).

Only loops whose iterations write their own rows run in parallel, and every sum over vents into a compartment is
made in the serial code's order, so two threads must give the one-thread run to the bit: the whole model state,
the vents' channels, the tallies and the run's recorded Dataset are compared with exact equality (no tolerance).
One small building (the 30-storey example tower), so that the parallel kernel is compiled once.
"""

from __future__ import annotations

from types import SimpleNamespace

import numba
import numpy as np
import pytest

from physics import fire_cases
from physics._kernels import fire_zone as K
from physics.fire_run import FireRequest, run_fire
from physics.fire_sim import FireSimulation
from physics.fire_zone import FireZoneModel
from twin.errors import ValidationError

TOWER = "tower_30_residential"
TWO = 2
#: model arrays that are scratch, not state (the glazing hits filled up to a count, the conducting walls' work array)
SCRATCH = ("_hits", "_wall_scratch")


def _run(threads: int) -> FireSimulation:
    sim = FireSimulation(TOWER, floor=5, growth="ultrafast", sprinklers=False, duration_s=240.0,
                         record_every_s=5.0, threads=threads)
    sim.advance_to(240.0)
    return sim


@pytest.mark.slow  # compiles the parallel step (~33 s CPU from an empty numba cache, the serial one cached)
@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < TWO, reason="numba has one thread here (NUMBA_NUM_THREADS)")
def test_two_threads_give_the_serial_run_to_the_bit():
    one, two = _run(1), _run(TWO)
    assert two.zone.threads == TWO and one.zone.threads == 1
    for sim in (one, two):
        sim.zone._species(0)  # the outputs' species rows, worked out when first read
    arrays = {k: v for k, v in vars(one.zone).items() if isinstance(v, np.ndarray) and k not in SCRATCH}
    assert {"state", "chan", "vchan", "tally", "q_burned"} <= set(arrays)
    for key, a in arrays.items():
        np.testing.assert_array_equal(getattr(two.zone, key), a, err_msg=key)
    assert two.zone.newton_iterations == one.zone.newton_iterations
    assert float(one.zone.t_upper.max()) > 330.0  # the fire heated its flat: the flows were not trivial
    ds1, ds2 = one.result().dataset, two.result().dataset
    for name in ds1.data_vars:
        np.testing.assert_array_equal(ds2[name].values, ds1[name].values, err_msg=name)


def test_one_thread_is_the_serial_kernel():
    m = FireZoneModel(fire_cases.one_room().network)
    assert m.threads == 1
    assert m._kernel_step is K.step  # the class's serial step, not the parallel variant


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "2", numba.config.NUMBA_NUM_THREADS + 1])
def test_threads_checked(bad):
    with pytest.raises(ValidationError, match="threads"):
        FireZoneModel(fire_cases.one_room().network, threads=bad)


def test_the_request_passes_threads_to_the_run(monkeypatch):
    import physics.fire_sim

    seen = {}

    def stop(**kw):
        seen.update(kw)
        raise RuntimeError("stop before the run")

    monkeypatch.setattr(physics.fire_sim, "simulate_fire", stop)
    ctx = SimpleNamespace(report=lambda *a, **k: None, extras={})
    with pytest.raises(RuntimeError, match="stop before the run"):
        run_fire(FireRequest(building=TOWER, floor=5, threads=TWO), ctx)
    assert seen["threads"] == TWO
    assert FireRequest(building=TOWER, floor=5).threads == 1
    with pytest.raises(ValueError, match="threads"):
        FireRequest(building=TOWER, floor=5, threads=0)


def test_the_cli_refuses_threads_with_evacuate(tmp_path):
    from click.testing import CliRunner

    from twin.cli import main

    res = CliRunner().invoke(main, ["fire", "run", TOWER, "--floor", "5", "--evacuate", "--threads", "2", "--out",
                                    str(tmp_path / "run")],
                             terminal_width=200, prog_name="twin")
    assert res.exit_code == 2 and "--threads 2: not with --evacuate" in res.output
