"""The ``fire`` run kind: its request and checks, and a real run through the pipeline with every output.

The run is :func:`physics.fire_sim.simulate_fire` itself on the 30-storey example tower, kept short
(150 s of an ultrafast fire at 1 s steps: a detector and the fire storey untenable) so the module stays
within the test-time budget.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import xarray as xr

from twin import pipeline
from twin.errors import RequestError, ValidationError

TOWER = "tower_30_residential"
FLOOR = 10
DURATION_S = 150.0


def _params(**over):
    return {"building": TOWER, "floor": FLOOR, "growth": "ultrafast", "sprinklers": "off", "duration_s": DURATION_S,
            "dt_s": 1.0, "record_every_s": 10.0, **over}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("fire_run")
    res = pipeline.run("fire", _params(), out, report=False, map=False)
    return res, out


# ----------------------------------------------------------------------------- the request
def test_request_takes_growth_names_and_alpha():
    from physics.fire_run import FireRequest

    assert FireRequest(building=TOWER, floor=3).growth == "fast"
    assert FireRequest(building=TOWER, floor=3, growth="Ultrafast").growth == "ultrafast"
    assert FireRequest(building=TOWER, floor=3, growth="0.0469").growth == pytest.approx(0.0469)
    assert FireRequest(building=TOWER, floor=3, growth=0.01).growth == 0.01


def test_a_bad_request_lists_every_problem_at_once():
    with pytest.raises(ValidationError) as err:
        pipeline.check("fire", _params(floor=-1, growth="blazing", season="winter", t_outside_c=5.0, dt_s=0.3,
                                       record_every_s=1.0, sprinklers="maybe"))
    text = str(err.value)
    for field in ("floor=-1", "growth='blazing'", "sprinklers='maybe'", "t_outside_c=5.0", "record_every_s=1.0"):
        assert field in text, f"{field} not named in: {text}"


@pytest.mark.parametrize(("over", "field", "words"), [
    ({"floor": 30}, "floor", "storeys 0-29"),
    ({"compartment": "flat Z"}, "compartment", "'flat A', 'flat B', 'flat C', 'flat D'"),
    ({"building": "no_such_tower"}, "building", "tower_30_residential"),
])
def test_the_model_checks_name_the_field_before_anything_runs(tmp_path, over, field, words):
    out = tmp_path / "never"
    with pytest.raises(RequestError) as err:
        pipeline.run("fire", _params(**over), out)
    assert err.value.field == field and words in str(err.value)
    assert not out.exists()  # refused before the run folder is made


def test_compartment_by_its_short_or_network_name():
    from physics.fire_building import build_network, load_example
    from physics.fire_run import FireRequest, origin_compartment

    net = build_network(load_example(TOWER))
    assert origin_compartment(FireRequest(building=TOWER, floor=4), net) == "flat A"
    assert origin_compartment(FireRequest(building=TOWER, floor=4, compartment="4/flat C"), net) == "flat C"
    pipeline.check("fire", _params(compartment="flat B"))


def test_sim_arguments_of_a_request():
    from physics.fire_building import EXAMPLES
    from physics.fire_run import FireRequest, sim_kwargs

    kw = sim_kwargs(FireRequest(building=TOWER, floor=2, sprinklers="on", t_outside_c=5.0, compartment="flat D"))
    assert kw["building"] == str(EXAMPLES[TOWER]) and kw["compartment"] == "flat D"
    assert kw["sprinklers"] is True and kw["season"] == pytest.approx(278.15)
    kw = sim_kwargs(FireRequest(building=TOWER, floor=2, season="winter"))
    assert kw["sprinklers"] is None and kw["season"] == "winter"


# ----------------------------------------------------------------------------- a real run
def test_run_writes_every_output(run):
    res, out = run
    names = {p.name for p in out.iterdir()}
    assert {"fire.nc", "events.jsonl", "aset.csv", "summary.json", "layers.png", "tenability.png",
            "hrr.png"} <= names
    assert json.loads((out / "summary.json").read_text())["files"]["fire"] == "fire.nc"


def test_fire_nc_opens_in_xarray_with_units_on_every_variable(run):
    _, out = run
    with xr.open_dataset(out / "fire.nc") as ds:
        for name in [*ds.data_vars, "time"]:
            assert ds[name].attrs.get("units"), f"{name} has no units"
        assert ds.sizes["storey"] == 30 and ds.sizes["compartment"] == 270
        assert ds["time"].values[-1] == DURATION_S
        assert ds.attrs["origin_storey"] == FLOOR and ds.attrs["sprinklers"] == "off"
        assert set(np.unique(ds["floor_status"].values)) <= {0, 1, 2}
        assert ds["refuge"].dtype == np.int8  # NetCDF has no boolean: 0/1 with flag attributes
        events = json.loads(ds.attrs["events"])
    assert events[0]["kind"] == "ignition" and events[0]["storey"] == FLOOR


def test_aset_csv_is_what_the_building_evacuation_reads(run):
    from agents.building import load_aset

    res, out = run
    assert (out / "aset.csv").read_text().splitlines()[0] == "floor,aset_s"
    aset = load_aset(out / "aset.csv", 30)
    ds = res.dataset
    expected = {int(s): max(float(a), 1e-3) for s, a in zip(ds["storey"].values, ds["aset_s"].values, strict=True)
                if np.isfinite(a)}
    assert aset.keys() == expected.keys()
    assert aset == pytest.approx(expected, abs=1e-3)


def test_events_jsonl_is_the_twin_event_log_format(run):
    res, out = run
    events = pipeline.read_run_events(out)
    model = sorted(json.loads(res.dataset.attrs["events"]), key=lambda e: e["time_s"])
    assert len(events) == len(model) > 0
    assert events[0].kind == "fire_ignition" and events[0].data["fire_kind"] == "ignition"
    assert [e.time_s for e in events] == sorted(e.time_s for e in events)
    assert {e.data["fire_kind"] for e in events} == {e["kind"] for e in model}


def test_summary_agrees_with_the_dataset_and_events(run):
    res, _ = run
    s, ds = res.summary, res.dataset
    model = json.loads(ds.attrs["events"])

    def first(kind):
        t = [e["time_s"] for e in model if e["kind"] == kind]
        return min(t) if t else None

    assert s["origin"] == {"storey": FLOOR, "floor_label": "L11", "compartment": f"{FLOOR}/flat A"}
    assert s["first_detector_s"] is not None and s["storeys_untenable"] >= 1  # what this run is chosen to show
    assert s["first_detector_s"] == first("detector") and s["flashover_s"] == first("flashover")
    aset = ds["aset_s"].values
    assert s["storeys_untenable"] == int(np.isfinite(aset).sum())
    assert s["storeys_untenable_by_min"] == {"10": None, "20": None, "30": None, "60": None}  # a 2.5-min run
    assert [r["aset_s"] for r in s["aset_first_storeys"]] == sorted(aset[np.isfinite(aset)])[:10]
    assert s["max_upper_temperature_c"] == pytest.approx(float(ds["upper_layer__temperature"].max()) - 273.15,
                                                         abs=0.06)
    assert s["run_time_s"] > 0 and s["duration_s"] == DURATION_S


def test_evacuate_true_hands_the_run_to_the_fire_evacuation_kind(tmp_path):
    from twin.runkinds import get_kind

    assert get_kind("fire_evacuation").name == "fire_evacuation"
    res = pipeline.run("fire", _params(duration_s=30.0, evacuate=True), tmp_path, report=False, map=False)
    assert res.kind.name == "fire" and res.summary["fire"]["origin"]["storey"] == FLOOR
    assert "people_caught" in res.summary and (tmp_path / "margin.csv").is_file()
    assert (tmp_path / "fire.nc").is_file() and (tmp_path / "aset.csv").is_file()
