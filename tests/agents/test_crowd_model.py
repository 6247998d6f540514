"""CrowdModel as a mesa model: seeds, views, data collection, exits closing, output Dataset."""

from __future__ import annotations

import mesa
import numpy as np
import pytest
from shapely.geometry import box

from agents.crowd import AgentsSpec, CrowdModel, Pedestrian, simulate
from agents.geometry import Geometry
from twin.errors import ValidationError


def _room():
    return Geometry(box(0, 0, 10, 8), {"west": ((0, 3.5), (0, 4.5)), "east": ((10, 3.5), (10, 4.5))})


def test_same_seed_same_trajectories_other_seed_other():
    spec = AgentsSpec(n=60, premovement={"dist": "lognormal", "median_s": 3.0, "sigma": 0.5})
    a = simulate(_room(), spec, seed=11, until_s=20)
    b = simulate(_room(), spec, seed=11, until_s=20)
    c = simulate(_room(), spec, seed=12, until_s=20)
    np.testing.assert_array_equal(a.x.values, b.x.values)
    np.testing.assert_array_equal(a.exit_time.values, b.exit_time.values)
    assert not np.array_equal(a.x.values[0], c.x.values[0], equal_nan=True)


def test_a_seed_is_required():
    with pytest.raises(ValidationError, match="seed"):
        CrowdModel(_room(), AgentsSpec(n=5))


def test_agents_are_mesa_agents_reading_the_arrays():
    model = CrowdModel(_room(), AgentsSpec(n=30), seed=1)
    assert isinstance(model, mesa.Model)
    views = list(model.agents_by_type[Pedestrian])
    assert len(views) == 30
    model.step()
    for v in views[:5]:
        assert v.pos == (model.position[v.idx, 0], model.position[v.idx, 1])
    with pytest.raises(AttributeError):
        views[0].pos = (1.0, 1.0)


def test_leaving_agents_are_removed_and_recorded():
    model = CrowdModel(_room(), AgentsSpec(n=40), seed=3, record_every=5)
    model.run(until_s=120)
    assert model.n_evacuated == 40 and not model.running
    assert len(model.agents) == 0  # every mesa view removed
    assert np.all(np.isfinite(model.exit_time)) and np.all(model.exit_index >= 0)
    frame = model.datacollector.get_model_vars_dataframe()
    assert frame["evacuated"].iloc[-1] == 40 and frame["in_area"].iloc[0] == 40
    assert frame["evacuated"].is_monotonic_increasing


def test_closing_an_exit_reroutes_everyone_to_the_other():
    model = CrowdModel(_room(), AgentsSpec(n=40), seed=5)
    model.close_exit("west")
    ds = model.run(until_s=200)
    assert int(ds.exit_count.sel(exit="east")) == 40
    assert int(ds.exit_count.sel(exit="west")) == 0
    assert [e.kind for e in model.events] == ["exit_closed"]


def test_closing_an_exit_mid_run_takes_effect_at_the_next_step():
    model = CrowdModel(_room(), AgentsSpec(n=40, region=box(0.5, 0.5, 4, 7.5)), seed=8)
    model.run(until_s=2.0)
    west_before = int(np.count_nonzero(model.exit_index == 0))
    model.close_exit("west")
    model.run(until_s=200)
    assert int(np.count_nonzero(model.exit_index == 0)) == west_before
    assert model.n_evacuated == 40


def test_closing_the_last_exit_is_refused():
    model = CrowdModel(_room(), AgentsSpec(n=5), seed=1)
    model.close_exit("west")
    with pytest.raises(ValidationError, match="closed"):
        model.close_exit("east")
    assert model.geometry.exit_open[1]


def test_unknown_exit_named_in_the_error():
    model = CrowdModel(_room(), AgentsSpec(n=5), seed=1)
    with pytest.raises(ValidationError, match="'north'"):
        model.close_exit("north")


def test_trajectory_dataset_layout():
    ds = simulate(_room(), AgentsSpec(n=10), seed=2, until_s=5, record_every=10)
    assert ds.x.dims == ("time", "agent") and ds.sizes["agent"] == 10
    # a sample every 10 steps of 0.05 s, and one when the last agent left
    np.testing.assert_allclose(ds.time.values[:-1], np.arange(ds.sizes["time"] - 1) * 0.5)
    assert ds.time.values[-1] <= 5.0
    assert ds.x.attrs["units"] == "m" and ds.speed.attrs["units"] == "m/s"
    assert ds.attrs["dt_s"] == 0.05
    assert set(ds.exit.values) == {"west", "east"}


def test_premovement_holds_agents_still():
    spec = AgentsSpec(n=20, premovement={"dist": "constant", "value_s": 3.0})
    ds = simulate(_room(), spec, seed=4, until_s=5, record_every=10)
    still = ds.sel(time=slice(0, 2.5))
    np.testing.assert_array_equal(still.x.values, np.broadcast_to(still.x.values[0], still.x.shape))
    assert np.nanmax(ds.speed.sel(time=5.0).values) > 0.5


def test_agents_placed_outside_are_refused_naming_the_agent():
    with pytest.raises(ValidationError, match="agent 1 "):
        CrowdModel(_room(), AgentsSpec(positions=[[5, 4], [12, 4]]), seed=1)
    with pytest.raises(ValidationError, match="agent 0 .*within"):
        CrowdModel(_room(), AgentsSpec(positions=[[0.05, 2]]), seed=1)


def test_progress_is_reported_up_to_one():
    seen = []
    simulate(_room(), AgentsSpec(n=10), seed=1, until_s=4, progress=seen.append)
    assert seen[-1] == 1.0 and all(0 <= s <= 1 for s in seen) and len(seen) >= 4


def test_agents_with_no_way_out_are_refused():
    # a closed-off inner room (a square wall ring) with someone inside it
    from shapely.geometry import Polygon

    walk = Polygon([(0, 0), (10, 0), (10, 8), (0, 8)], [[(3, 3), (7, 3), (7, 6), (3, 6)]])
    walk = walk.union(box(4, 4, 6, 5))  # an island inside the hole, unreachable
    g = Geometry(walk, {"east": ((10, 3.5), (10, 4.5))})
    with pytest.raises(ValidationError, match="agent 1 .*no way to an open exit"):
        CrowdModel(g, AgentsSpec(positions=[[1, 1], [5, 4.5]]), seed=1)


def test_a_gridlock_ends_an_open_ended_run():
    # nobody faster than 1 cm/s (here: free speed 5 mm/s) for STALL_S = 60 s ends run()
    model = CrowdModel(_room(), AgentsSpec(positions=[[5, 2], [5, 6]], speeds=[0.005, 0.005]),
                       seed=1)  # fmt: skip
    model.run()
    assert model.n_inside == 2 and 60.0 <= model.time_s <= 61.0
    assert [e.kind for e in model.events] == ["crowd_stalled"]
