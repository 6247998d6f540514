"""The evacuation coupling on real Futian data (250 m grid, the city's roads, the 2020 census).

The water comes from a toy forcing coupling registered here (``toyflood``):
depth rising linearly on a known block of Futian land cells, each cell at its
own rate, still water (speed 0), so every cell's first instant at ARR H3
(depth > 0.5 m at speed 0) is known in advance. Checks: nobody is ordered
out before their cell reaches the trigger, and every cell is ordered at the
step it first reaches it; people are conserved at every step; shelters never
exceed their capacity across waves; a street closed at t is not entered
after t; a ``people_to_move`` event adds exactly its people; the step-wise
model gives the arrivals of ``DistrictEvacuation.run``; a crashed run resumes
to the same outputs.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from scenarios.coupling import Coupling, get_coupling
from scenarios.runner import resume_coupled, run_coupled
from twin.pipeline import read_run_events

PERIOD = 60.0
DURATION = 2400.0
#: Toy flood: the block of Futian land cells that floods (rows, cols of the 250 m grid) and the time each cell
#: takes to reach 1 m (s), by (row + col) % 4.
ROWS, COLS = slice(14, 24), slice(22, 32)
RISE_S = np.array([900.0, 1500.0, 2100.0, 2700.0])
H3_DEPTH = 0.5  # ARR 2019: still water deeper than 0.5 m is H3 (H2 ends at D = 0.5 m, inclusive)


def rise_time(static) -> np.ndarray:
    """Per cell, the time (s) the toy water takes to reach 1 m; 0 where it stays dry."""
    land = static["land"].values.astype(bool)
    futian = static["district"].values == list(static.attrs["district_names"]).index("Futian")
    rr, cc = np.indices(land.shape)
    block = np.zeros(land.shape, bool)
    block[ROWS, COLS] = True
    return np.where(block & land & futian, RISE_S[(rr + cc) % 4], 0.0)


def toy_depth(static, t: float) -> np.ndarray:
    rise = rise_time(static)
    depth = np.where(rise > 0, np.minimum(1.0, t / np.where(rise > 0, rise, 1.0)), 0.0)
    return np.where(static["sea"].values.astype(bool), np.nan, depth)


def _publish(ctx, t):
    depth = toy_depth(ctx.state.static, t)
    ctx.state.set_field("water_depth", depth, "m", "toy water depth")
    ctx.state.set_field("water_speed", np.where(np.isnan(depth), np.nan, 0.0), "m s-1", "toy flow speed")


TOY_FLOOD = Coupling(name="toyflood", phase="physics", period_s=PERIOD, reads=(),
                     writes=("water_depth", "water_speed"), setup=lambda ctx: _publish(ctx, 0.0),
                     step=lambda ctx, t, dt: _publish(ctx, t), save=lambda ctx: {},
                     restore=lambda ctx, saved: None, doc="test: water rising on a block of Futian")


def _emit_debris(ctx, t, dt):
    for when, people, lon, lat in ctx.params["moves"]:
        if when == t:
            ctx.emit("people_to_move", "test", data={"lon": lon, "lat": lat, "people": people, "reason": "debris"})


TOY_DEBRIS = Coupling(name="toydebris", phase="consequences", period_s=PERIOD, reads=(),
                      writes=("event:people_to_move",), setup=lambda ctx: None, step=_emit_debris,
                      save=lambda ctx: {}, restore=lambda ctx, saved: None, doc="test: people_to_move events")


def config(evacuation: dict | None = None, **more) -> dict:
    return {"districts": ["Futian"], "resolution_m": 250.0, "duration_s": DURATION, "output_every_s": 600.0,
            "seed": 3, "external": ["event:people_to_move"],
            "couplings": {"toyflood": {}, "roads": {"period_s": PERIOD},
                          "evacuation": {"group_size": 100, "departure_window_s": 300.0} | (evacuation or {})}
            } | more


class Probe:
    """Wraps the evacuation coupling's step: checks invariants on the model before and after every step."""

    def __init__(self):
        self.steps: list[dict] = []
        self.problems: list[str] = []

    def coupling(self) -> Coupling:
        real = get_coupling("evacuation")

        def step(ctx, t, dt):
            model = ctx.own["model"]
            closed_before = model.closed.copy()
            real.step(ctx, t, dt)
            self.check(ctx, t, dt, closed_before)

        return dataclasses.replace(real, step=step)

    def check(self, ctx, t, dt, closed_before):
        from scenarios.couplings.evacuation import counts_now

        model = ctx.own["model"]
        g, plan = model.groups, model.plan
        c = counts_now(model)
        rec = {"t": t, **c, "reserved": plan.reserved.copy(), "capacity": plan.capacity.copy(),
               "closed": int(model.closed.sum())}
        arrived = np.zeros(len(plan.capacity))
        done = g.state == 2
        np.add.at(arrived, model.shelter_of[done], g.size[done])
        rec["arrivals"] = arrived
        self.steps.append(rec)
        moving = np.flatnonzero(g.state == 1)
        waiting = np.flatnonzero(g.state == 0)
        # a group that entered its edge during (t - dt, t] entered it on the closures of t - dt
        entered = moving[g.enter_s[moving] > t - dt + 1e-9]
        bad = entered[closed_before[plan.route[g.pos[entered]]]]
        if len(bad):
            self.problems.append(f"t={t}: groups {bad[:5].tolist()} entered edges closed at {t - dt}")
        # after the street state of t: nobody on or heading for a closed street
        on_closed = moving[model.closed[plan.route[g.pos[moving]]]]
        if len(on_closed):
            self.problems.append(f"t={t}: groups {on_closed[:5].tolist()} on a closed edge")
        ahead = moving[plan.crosses(model.closed, g.pos[moving] + 1, g.end[moving])]
        ahead = np.concatenate([ahead, waiting[plan.crosses(model.closed, g.pos[waiting], g.end[waiting])]])
        if len(ahead):
            self.problems.append(f"t={t}: groups {ahead[:5].tolist()} routed over a closed edge")


@pytest.fixture(scope="module")
def probed(twin_data, tmp_path_factory):
    import geopandas as gpd

    from agents.district_run import DEMO_SHELTERS

    # small shelters, so that waves fill them: the first six demo sites with 300 places each
    sh = pd.read_csv(DEMO_SHELTERS, comment="#").head(6).assign(capacity=300)
    tmp = tmp_path_factory.mktemp("evac")
    path = tmp / "shelters.csv"
    sh.to_csv(path, index=False)
    probe = Probe()
    cfg = config({"shelters": str(path)})
    run = run_coupled(cfg, tmp / "run", couplings={"toyflood": TOY_FLOOD, "evacuation": probe.coupling()})
    run.probe, run.cfg = probe, cfg
    run.tables = get_coupling("evacuation").tables(run.contexts["evacuation"])
    run.gpd = gpd
    return run


def _cell_of(static, lon, lat):
    from gis.crs import WGS84, transformer

    x, y = transformer(WGS84, static.attrs["crs"]).transform(lon, lat)
    a, _, c, _, e, f = static.attrs["transform"]
    return int(np.floor((y - f) / e)), int(np.floor((x - c) / a))


def test_every_cell_is_ordered_out_at_the_step_it_first_reaches_the_trigger(probed):
    static = probed.state.static
    rise = rise_time(static)
    people = probed.contexts["evacuation"].own["people"].values
    steps = PERIOD * np.arange(1, int(DURATION / PERIOD) + 1)
    expected: dict[float, set] = {}
    for r, c in zip(*np.nonzero((rise > 0) & (people > 0)), strict=True):
        over = steps[steps / rise[r, c] > H3_DEPTH]  # depth = t / rise (below 1 m)
        if len(over):
            expected.setdefault(float(over[0]), set()).add((int(r), int(c)))
    assert len(expected) >= 3  # the cells reach the trigger at several instants
    orders = [e for e in probed.state.events if e.kind == "evacuation_ordered"]
    got = {e.time_s: {_cell_of(static, lon, lat) for lon, lat in e.data["cells"]} for e in orders}
    assert got == expected
    for e in orders:  # at the order's instant the water of every cell listed is over the trigger
        depth = toy_depth(static, e.time_s)
        assert all(depth[rc] > H3_DEPTH for rc in got[e.time_s])
        assert e.data["reason"] == "flood" and e.data["n_cells"] == len(got[e.time_s])
    groups = probed.tables["groups"]
    assert len(groups) and (groups["depart_s"] >= groups["ordered_s"]).all()
    assert (groups["depart_s"] <= groups["ordered_s"] + 300.0).all()  # within the departure window


def test_people_are_conserved_at_every_step(probed):
    steps = probed.probe.steps
    assert len(steps) == int(DURATION / PERIOD)
    for s in steps:
        assert s["ordered"] == pytest.approx(s["waiting"] + s["moving"] + s["arrived"] + s["stranded"])
    assert steps[-1]["ordered"] > 0 and steps[-1]["arrived"] > 0
    ordered = sum(e.data["people"] for e in probed.state.events if e.kind == "evacuation_ordered")
    assert ordered == pytest.approx(steps[-1]["ordered"])
    # each wave moves the census people of its cells (whole people per road node, so within 0.5 a node)
    people = probed.contexts["evacuation"].own["people"].values
    triggered = probed.contexts["evacuation"].own["triggered"]
    assert abs(ordered - people[triggered].sum()) <= 0.5 * probed.summary["couplings"]["evacuation"]["groups"]
    for e in probed.state.events:
        if e.kind == "evacuation_progress":
            d = e.data
            assert d["ordered"] == pytest.approx(d["waiting"] + d["moving"] + d["arrived"] + d["stranded"])


def test_shelters_never_exceed_their_capacity_across_waves(probed):
    steps = probed.probe.steps
    for s in steps:
        assert (s["reserved"] <= s["capacity"] + 1e-9).all()
        assert (s["arrivals"] <= s["capacity"] + 1e-9).all()
    waves = probed.contexts["evacuation"].own["waves"]
    assert len(waves) >= 3
    last = steps[-1]
    assert (last["reserved"] >= last["capacity"] - 1e-9).any()  # the waves filled a shelter
    assert any(e.kind == "shelter_full" for e in probed.state.events)
    shelters = probed.tables["shelters"]
    assert (shelters["arrivals"] <= shelters["capacity"]).all()


def test_a_street_closed_at_t_is_not_entered_after_t(probed):
    assert probed.probe.problems == []
    assert max(s["closed"] for s in probed.probe.steps) > 0  # the water closed streets while people walked
    assert probed.summary["couplings"]["evacuation"]["edges_closed_to_walkers"] > 0


def test_outputs_tables_layers_report(probed, tmp_path):
    ctx = probed.contexts["evacuation"]
    c = get_coupling("evacuation")
    groups, shelters = probed.tables["groups"], probed.tables["shelters"]
    assert groups["people"].sum() == pytest.approx(probed.summary["couplings"]["evacuation"]["people_ordered"])
    for name, table in probed.tables.items():
        table.to_parquet(tmp_path / f"{name}.parquet")
        back = probed.gpd.read_parquet(tmp_path / f"{name}.parquet")
        assert len(back) == len(table) and back.crs.to_epsg() == 4326
    assert len(shelters) == 6
    sets = c.layers(ctx, [0.0, DURATION])
    labels = {s.label for s in sets}
    assert {"Shelters", "Evacuees on the way", "Streets slowed / closed to evacuees"} <= labels
    for s in sets:
        if s.times_s:
            assert 0.0 <= min(s.times_s) and max(s.times_s) <= DURATION
    html = "".join(c.report(ctx))
    assert "Shelter use" in html and "Evacuation orders" in html
    s = probed.summary["couplings"]["evacuation"]
    t50, t95 = s["time_to_50pct_s"], s["time_to_95pct_s"]
    assert t50 is None or t95 is None or t50 <= t95


def test_a_people_to_move_event_adds_exactly_its_people(twin_data, tmp_path):
    moves = [[600.0, 137.5, 114.055, 22.545], [1200.0, 40.0, 114.03, 22.55]]
    cfg = config({"flood_trigger": False, "group_size": 20})
    cfg["duration_s"] = 1800.0
    cfg["couplings"]["toydebris"] = {"moves": moves}
    cfg["external"] = []
    probe = Probe()
    run = run_coupled(cfg, tmp_path / "run", couplings={"toyflood": TOY_FLOOD, "toydebris": TOY_DEBRIS,
                                                        "evacuation": probe.coupling()})
    orders = [e for e in run.state.events if e.kind == "evacuation_ordered"]
    assert [(e.time_s, e.data["people"], e.data["reason"]) for e in orders] == [(600.0, 137.5, "debris"),
                                                                                (1200.0, 40.0, "debris")]
    ordered = {s["t"]: s["ordered"] for s in probe.steps}
    assert ordered[540.0] == 0 and ordered[600.0] == 137.5 and ordered[1140.0] == 137.5
    assert ordered[1200.0] == 177.5
    assert [e.data["groups"] for e in orders] == [7, 2]  # 6 x 20 + 17.5, 2 x 20
    assert probe.problems == []


def test_step_wise_run_gives_the_arrivals_of_the_whole_run(twin_data):
    """Same network, shelters, origins, departures and seed, no flood: advance() in chunks with the groups
    added before the start equals run()."""
    from agents.city_roads import city_road_graph
    from agents.district_evac import DistrictEvacuation, EvacParams, walk_network
    from agents.district_run import DEMO_SHELTERS, read_shelters
    from twin.city import City

    roads = walk_network(city_road_graph(City("shenzhen"), districts=["Futian"]))
    shelters = read_shelters(DEMO_SHELTERS).assign(capacity=100.0)
    rng = np.random.default_rng(5)
    origins = pd.DataFrame({"lon": rng.uniform(114.02, 114.08, 60), "lat": rng.uniform(22.52, 22.57, 60),
                            "people": rng.integers(5, 40, 60).astype(float)})
    params = EvacParams(max_duration_s=3 * 3600.0, departure_window_s=600.0)
    whole = DistrictEvacuation(roads, shelters, origins, params=params, seed=9)
    ref = whole.run().dataset
    assert ref.attrs["arrived"] > 0 and ref.attrs["stranded"] > 0  # 12 x 100 places are too few for them all
    step = DistrictEvacuation(roads, shelters, origins.iloc[:0], params=params, seed=9, allow_empty=True,
                              largest_group=float(origins["people"].max()))
    step.add_groups(origins, whole.depart)
    while step.t < whole.t:
        step.advance(step.t + 300.0)
    g = step.groups
    np.testing.assert_array_equal(g.state, ref["group_final_state"].values)
    np.testing.assert_array_equal(g.done_s, ref["group_done_s"].values)
    np.testing.assert_array_equal(step.shelter_of, ref["group_shelter"].values)


class Crash(Exception):
    pass


def test_a_crashed_run_resumes_to_the_same_outputs(probed, tmp_path):
    mapping = {"toyflood": TOY_FLOOD}

    def crash(p):
        if p["phase"] == "running" and p["sim_s"] >= 1800.0:
            raise Crash

    out = tmp_path / "crashed"
    with pytest.raises(Crash):
        run_coupled(probed.cfg, out, progress=crash, couplings=mapping, checkpoint_every_s=1200.0)
    done = resume_coupled(out, couplings=mapping)
    assert done.resumed_from_s == 1200.0
    ev_a = [e.to_record() for e in read_run_events(probed.paths["fields"].parent)]
    ev_b = [e.to_record() for e in read_run_events(out)]
    assert any(e["kind"] == "evacuation_ordered" and e["time_s"] > 1200.0 for e in ev_a)
    assert ev_a == ev_b
    a, b = probed.contexts["evacuation"].own["model"], done.contexts["evacuation"].own["model"]
    for name in ("size", "depart", "shelter_of", "closed"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    for name in ("state", "done_s", "pos", "exit_s"):
        np.testing.assert_array_equal(getattr(a.groups, name), getattr(b.groups, name))
    assert done.summary["couplings"]["evacuation"] == probed.summary["couplings"]["evacuation"]
    with xr.open_dataset(probed.paths["fields"]) as fa, xr.open_dataset(done.paths["fields"]) as fb:
        np.testing.assert_array_equal(fa["water_depth"].values, fb["water_depth"].values)


def test_on_the_coupled_rain_and_flood_orders_follow_the_depth_frames(twin_data, tmp_path):
    """rain + flood + roads + evacuation on the 2023-09-07 storm (40 min): each order's cells are the populated
    cells of the grid whose depth frame first reaches ``depth_m`` at the order's instant."""
    depth_m = 0.2
    cfg = {"districts": ["Futian"], "resolution_m": 250.0, "duration_s": 2400.0, "output_every_s": PERIOD,
           "seed": 7, "external": ["event:people_to_move"],
           "couplings": {"rain": {"storm": "2023-09-07"}, "flood": {}, "roads": {},
                         "evacuation": {"depth_m": depth_m, "group_size": 50, "hazard_class": None}}}
    run = run_coupled(cfg, tmp_path / "run")
    static = run.state.static
    own = run.contexts["evacuation"].own
    populated = (own["people"].values > 0) & own["area"]
    with xr.open_dataset(run.paths["fields"]) as f:
        times = f["time"].values
        depth = np.nan_to_num(f["water_depth"].values, nan=0.0)
    reached = depth >= depth_m
    first = np.where(reached.any(axis=0), times[np.argmax(reached, axis=0)], np.nan)
    expected: dict[float, set] = {}
    for r, c in zip(*np.nonzero(np.isfinite(first) & populated), strict=True):
        expected.setdefault(float(first[r, c]), set()).add((int(r), int(c)))
    orders = [e for e in run.state.events if e.kind == "evacuation_ordered"]
    assert len(orders) >= 3
    got = {e.time_s: {_cell_of(static, lon, lat) for lon, lat in e.data["cells"]} for e in orders}
    assert got == expected
    s = run.summary["couplings"]["evacuation"]
    assert s["people_ordered"] == pytest.approx(s["people_waiting"] + s["people_moving"] + s["people_arrived"]
                                                + s["people_stranded"])


def _close_around_shelters(ctx, t, dt):
    """At ``at_s``: close (reason debris) every street within 150 m of the road node nearest each shelter."""
    from shapely.geometry import Point

    from agents.district_run import DEMO_SHELTERS, read_shelters

    if t != ctx.params["at_s"]:
        return
    graph = ctx.shared["road_graph"]
    ids = set()
    for lon, lat in zip(*read_shelters(DEMO_SHELTERS)[["lon", "lat"]].to_numpy().T, strict=True):
        node = graph.graph.nodes[graph.nearest_node(lon, lat)]
        ids |= set(graph.edges_intersecting(Point(node["x"], node["y"]), buffer_m=150.0))
    graph.close_edges(sorted(ids), reason="debris")
    ctx.emit("road_closed", "test", data={"n": len(ids), "edges": sorted(map(str, ids)), "reason": "debris"})


TOY_BLOCK = Coupling(name="toyblock", phase="consequences", period_s=PERIOD, reads=("road_graph",),
                     writes=("event:road_closed",), setup=lambda ctx: None, step=_close_around_shelters,
                     doc="test: debris closes the streets at every shelter")


def test_streets_closed_by_other_couplings_close_for_walkers(twin_data, tmp_path):
    at = 1800.0
    cfg = config()
    cfg["duration_s"] = 2100.0
    cfg["couplings"]["toyblock"] = {"at_s": at}
    probe = Probe()
    run = run_coupled(cfg, tmp_path / "run", couplings={"toyflood": TOY_FLOOD, "toyblock": TOY_BLOCK,
                                                        "evacuation": probe.coupling()})
    assert [c.name for c in run.order].index("toyblock") < [c.name for c in run.order].index("evacuation")
    model = run.contexts["evacuation"].own["model"]
    closed = next(e for e in run.state.events if e.kind == "road_closed" and e.source == "toyblock")
    index = run.contexts["evacuation"].own["edge_index"]
    mapped = [i for e, i in index.items() if str(e) in set(closed.data["edges"])]
    assert mapped and model.extra_closed[mapped].all() and model.closed[mapped].all()
    assert probe.problems == []
    groups = get_coupling("evacuation").tables(run.contexts["evacuation"])["groups"]
    walked = groups[(groups["state"] == "arrived") & (groups["done_s"] > groups["ordered_s"])]  # not born there
    assert (walked["done_s"] <= at).any()  # people walked to shelters before the streets closed
    assert not (walked["done_s"] > at).any()  # and nobody after


def test_from_scenario_reads_the_evacuate_district_sections_of_the_builtins(twin_data):
    from scenarios.files import load_scenario
    from twin.errors import ValidationError

    c = get_coupling("evacuation")
    assert c.kinds == ("evacuate_district",)
    for name, trigger in (("futian_typhoon_night", True), ("guangming_slope", False)):
        loaded = load_scenario(name)
        section = dict(loaded.scenario.models["evacuate_district"]) | loaded.scenario.shared()
        params = c.from_scenario(section, loaded.scenario)
        assert params.get("flood_trigger", True) is trigger
        assert set(params) <= {"hazard_class", "depth_m", "mode", "group_size", "shelters", "districts",
                               "departure_window_s", "flood_trigger"}
        if name == "futian_typhoon_night":
            assert params["hazard_class"] == 3 and params["group_size"] == 20
            assert params["districts"] == ["Futian"] and params["shelters"].endswith("futian_shelters_demo.csv")
    with pytest.raises(ValidationError, match="flood_forecast"):
        c.from_scenario({"flood": "/some/flood.nc"}, None)
    from types import SimpleNamespace

    from scenarios.couplings.evacuation import evac_params

    with pytest.raises(ValidationError, match=r"unknown parameter\(s\) \['hazard'\]"):
        evac_params(SimpleNamespace(params={"hazard": 3}, duration_s=60.0))
    with pytest.raises(ValidationError, match="hazard_class=7"):
        evac_params(SimpleNamespace(params={"hazard_class": 7}, duration_s=60.0))


def test_a_run_where_nobody_is_ordered_out_has_empty_outputs(twin_data, tmp_path):
    cfg = config({"flood_trigger": False})
    cfg["duration_s"] = 300.0
    run = run_coupled(cfg, tmp_path / "run", couplings={"toyflood": TOY_FLOOD})
    c, ctx = get_coupling("evacuation"), run.contexts["evacuation"]
    s = run.summary["couplings"]["evacuation"]
    assert s["people_ordered"] == 0 and s["waves"] == 0 and s["time_to_50pct_s"] is None
    assert not [e for e in run.state.events if e.kind == "evacuation_ordered"]
    tables = c.tables(ctx)
    assert len(tables["groups"]) == 0 and (tables["shelters"]["arrivals"] == 0).all()
    tables["groups"].to_parquet(tmp_path / "groups.parquet")
    assert [s.label for s in c.layers(ctx, [0.0, 300.0])] == ["Shelters"]
    assert "nobody was ordered out" in "".join(c.report(ctx))


def test_people_can_be_ordered_out_before_their_streets_close(twin_data, tmp_path):
    """hazard_class 2 orders people out from H2 (still water over 0.3 m) while streets close to walkers at H3."""
    cfg = config({"hazard_class": 2, "close_class": 3})
    cfg["duration_s"] = 600.0
    run = run_coupled(cfg, tmp_path / "run", couplings={"toyflood": TOY_FLOOD})
    model = run.contexts["evacuation"].own["model"]
    assert model.params.close_class == 3
    static = run.state.static
    first = min(e.time_s for e in run.state.events if e.kind == "evacuation_ordered")
    steps = PERIOD * np.arange(1, 11)
    fastest = rise_time(static)[rise_time(static) > 0].min()  # the cells whose water rises first
    assert first == steps[steps / fastest > 0.3][0]  # H2: D > 0.3 m at speed 0
    assert first < steps[steps / fastest > H3_DEPTH][0]
