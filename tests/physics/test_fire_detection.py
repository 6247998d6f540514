"""Detector and sprinkler activation against closed forms and a fine ODE solve (sources named in each test)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.integrate import solve_ivp

from physics import fire_correlations as fc
from physics.fire_detection import (
    DeviceSet,
    DeviceState,
    activation_events,
    activation_times,
    first_activation,
    obscuration_pct_m,
)
from twin.errors import ValidationError

AMB = fc.AMBIENT_K


def test_steady_fire_activates_at_the_closed_form_rti_time():
    # Steady 500 kW under a 3 m ceiling, sprinkler at r = 2 m: Alpert (1972) gives the gas, the RTI equation
    # (Heskestad & Smith 1976) under constant gas has t = RTI/√u·ln((Tg − T0)/(Tg − Ta))
    # (fire_correlations.rti_activation_time). The stepped link is exact at the samples; the only error is
    # interpolating the crossing linearly, bounded by dt²/(8τ) with τ = RTI/√u (~70 s): 2e-3 s at dt = 1 s.
    t = np.arange(0.0, 601.0, 1.0)
    q = np.full((t.size, 1), 500.0)
    dev = DeviceSet()
    dev.add(0, "sprinkler", radius_m=2.0, rti=50.0, activation_c=68.0)
    ds = activation_times(t, q, dev, ceiling_height_m=[3.0])
    dtg, u = fc.alpert_ceiling_jet(500.0, 3.0, 2.0)
    expected = fc.rti_activation_time(AMB + float(dtg), float(u), 50.0, 68.0 + 273.15, AMB)
    assert 10.0 < expected < 600.0
    assert float(ds["activation_s"][0]) == pytest.approx(expected, abs=5e-3)
    # a fire too small never operates the link
    ds_small = activation_times(t, np.full((t.size, 1), 20.0), dev, ceiling_height_m=[3.0])
    assert np.isinf(float(ds_small["activation_s"][0]))


def _ode_activation(alpha, h, r, rti, t_act_k):
    """The RTI equation under a growing t² fire solved with scipy to rtol 1e-10 (the reference)."""
    def rhs(time, y):
        dtg, u = fc.alpert_ceiling_jet(alpha * time * time, h, r)
        return [np.sqrt(float(u)) * (AMB + float(dtg) - y[0]) / rti]

    def hit(time, y):
        return y[0] - t_act_k
    hit.terminal = True
    sol = solve_ivp(rhs, (0.0, 2000.0), [AMB], events=hit, rtol=1e-10, atol=1e-10, max_step=0.5)
    return float(sol.t_events[0][0])


@pytest.mark.parametrize(("growth", "kind", "r"), [("fast", "sprinkler", 2.5), ("medium", "heat", 1.0)])
def test_t_squared_fire_matches_a_fine_ode_solve(growth, kind, r):
    # The gas changes within each step; holding it at its step mean is a second-order scheme, so the
    # activation time from 1 s steps is within 0.01 s of the scipy solution (measured 1-3 ms) and halving
    # the step cuts the error by about four (asserted >= 3x), i.e. the difference is discretisation, not a model error.
    alpha, h = fc.GROWTH_ALPHA[growth], 2.8
    dev = DeviceSet()
    dev.add(0, kind, radius_m=r)  # the kind's default RTI and rating
    rti, act = dev.rows[0]["rti"], dev.rows[0]["activation_k"]
    ref = _ode_activation(alpha, h, r, rti, act)
    errs = []
    for dt in (1.0, 0.5):
        t = np.arange(0.0, 1200.0 + dt, dt)
        ds = activation_times(t, (alpha * t * t)[:, None], dev, ceiling_height_m=[h])
        errs.append(abs(float(ds["activation_s"][0]) - ref))
    assert errs[0] < 0.01
    assert errs[1] < errs[0] / 3.0 or errs[1] < 1e-3


def test_ceiling_jet_rides_on_the_upper_layer_once_it_reaches_the_ceiling():
    # CFAST (TN 1889v1): a device in the upper layer sees the layer temperature plus the ceiling-jet excess.
    # Closed form in two stages: 40 s in ambient + ΔT, then in T_u + ΔT (layer at 1.2 m from t = 40 s).
    # The switch happens within one 0.05 s step held at the mean gas, so the time agrees within that step.
    dt = 0.05
    t = np.arange(0.0, 400.0 + dt, dt)
    n = t.size
    q = np.full((n, 1), 300.0)
    t_u = np.where(t >= 40.0, 360.0, AMB)[:, None]
    z = np.where(t >= 40.0, 1.2, 3.0)[:, None]
    dev = DeviceSet()
    dev.add(0, "heat", radius_m=3.0, rti=25.0, activation_c=57.0)
    ds = activation_times(t, q, dev, ceiling_height_m=[3.0], t_upper_k=t_u, layer_height_m=z)
    dtg, u = (float(v) for v in fc.alpert_ceiling_jet(300.0, 3.0, 3.0))
    assert float(ds["gas_k"][-1, 0]) == pytest.approx(360.0 + dtg)
    assert float(ds["gas_k"][0, 0]) == pytest.approx(AMB + dtg)
    t1 = fc.rti_link_temperature(AMB, AMB + dtg, u, 25.0, 40.0)
    assert t1 < 57.0 + 273.15  # not yet at 40 s
    expected = 40.0 + fc.rti_activation_time(360.0 + dtg, u, 25.0, 57.0 + 273.15, float(t1))
    assert float(ds["activation_s"][0]) == pytest.approx(expected, abs=dt)
    # without the layer the same detector is much later (or never)
    ds0 = activation_times(t, q, dev, ceiling_height_m=[3.0])
    assert float(ds0["activation_s"][0]) > expected + 10.0


def test_smoke_detectors_by_temperature_rise_and_by_obscuration():
    # Temperature analogue (Heskestad & Delichatsios 1977; NFPA 72 Annex B): ΔT 13 K, RTI 5.
    # Obscuration: CFAST's 23.93 %/m = 8 %/ft; 1 − e^(−K) = 0.2393 at K = 0.2735 1/m. With K rising 1e-3 1/m
    # per s the detector operates at 273.5 s (linear interpolation of a smooth curve on 1 s samples: 0.01 s).
    t = np.arange(0.0, 601.0, 1.0)
    n = t.size
    dev = DeviceSet()
    dev.add(0, "smoke", radius_m=1.0)
    dev.add(1, "smoke", radius_m=1.0, mode="obscuration")
    q = np.zeros((n, 2))
    q[:, 0] = 0.0469 * t * t
    ku = np.zeros((n, 2))
    ku[:, 1] = 1e-3 * t
    z = np.full((n, 2), 0.5)  # a layer down to 0.5 m everywhere: the detectors are in it
    ds = activation_times(t, q, dev, ceiling_height_m=[3.0, 3.0], layer_height_m=z, extinction_upper=ku)
    assert obscuration_pct_m(-np.log(1 - 0.2393)) == pytest.approx(23.93)
    assert float(ds["activation_s"][1]) == pytest.approx(-np.log(1 - 0.2393) / 1e-3, abs=0.01)
    # the temperature analogue operates once the jet is ~13 K above ambient, shortly after (RTI 5)
    dtg = np.asarray(ds["gas_k"][:, 0]) - AMB
    t_13 = t[np.argmax(dtg >= 13.0)]
    assert t_13 <= float(ds["activation_s"][0]) < t_13 + 10.0
    with pytest.raises(ValidationError, match="extinction_upper"):
        activation_times(t, q, dev, ceiling_height_m=[3.0, 3.0])


def test_first_activation_events_and_bad_input():
    t = np.arange(0.0, 301.0, 1.0)
    q = np.zeros((t.size, 3))
    q[:, 1] = 0.0469 * t * t
    dev = DeviceSet()
    dev.add(1, "sprinkler", radius_m=2.0, name="spk 1a")
    dev.add(1, "sprinkler", radius_m=1.0, name="spk 1b")
    dev.add(2, "sprinkler", radius_m=1.0, name="spk 2")
    dev.add(1, "smoke", radius_m=1.0, name="sd 1")
    ds = activation_times(t, q, dev, ceiling_height_m=[3.0, 3.0, 3.0])
    first = first_activation(ds, 3)
    act = ds["activation_s"].values
    assert first[1] == min(act[0], act[1]) and act[1] < act[0]  # nearer head first
    assert np.isinf(first[0]) and np.isinf(first[2])
    ev = activation_events(ds, ["lobby", "office", "store"])
    assert [e["device"] for e in ev] == ["sd 1", "spk 1b", "spk 1a"]
    assert ev[0]["event"] == "detector" and ev[1]["compartment_name"] == "office"
    with pytest.raises(ValidationError, match="kind='valve'"):
        dev.add(0, "valve", radius_m=1.0)
    with pytest.raises(ValidationError, match="mode='obscuration'"):
        dev.add(0, "heat", radius_m=1.0, mode="obscuration")
    with pytest.raises(ValidationError, match="radius_m=-1"):
        dev.add(0, "heat", radius_m=-1.0)
    with pytest.raises(ValidationError, match="q_kw: shape"):
        activation_times(t, q[:-1], dev, ceiling_height_m=3.0)
    with pytest.raises(ValidationError, match="t_upper_k: shape"):
        activation_times(t, q, dev, ceiling_height_m=3.0, t_upper_k=np.zeros((3, 3)))


def test_stepped_devices_match_the_batch_and_come_from_the_network():
    # DeviceState is the same scheme as activation_times stepped by the caller: identical times (1e-9 s).
    # From the network: the worst-placed sprinkler (3.25 m: half the diagonal of NFPA 13's 4.6 m light-hazard
    # square) and smoke detector (6.4 m = 0.7 x 9.1 m listed spacing, NFPA 72) of each equipped compartment.
    from physics.fire_network import OUTSIDE, NetworkBuilder

    b = NetworkBuilder("office", storey_heights_m=[3.0])
    office = b.compartment("office", kind="room", storey=0, area_m2=80.0, sprinklered=True, detector=True)
    corr = b.compartment("corridor", kind="corridor", storey=0, area_m2=30.0, detector=True)
    b.vent(office, corr, bottom_m=0.0, top_m=2.0, width_m=1.0)
    b.vent(corr, OUTSIDE, bottom_m=0.0, top_m=2.0, width_m=1.0, kind="outside_door")
    net = b.build()
    dev = DeviceSet.from_network(net)
    assert dev.names == ["sprinkler office", "smoke office", "smoke corridor"]
    assert [r["radius_m"] for r in dev.rows] == [3.25, 6.4, 6.4]
    t = np.arange(0.0, 400.0, 2.0)
    q = np.zeros((t.size, 2))
    q[:, 0] = 0.0469 * t * t
    tu = AMB + 0.2 * t[:, None] * np.array([[1.0, 0.3]])
    z = np.clip(3.0 - 0.02 * t, 1.0, 3.0)[:, None] * np.ones((1, 2))
    ku = 0.004 * t[:, None] * np.array([[1.0, 0.5]])
    batch = activation_times(t, q, dev, ceiling_height_m=net.height_m, t_upper_k=tu, layer_height_m=z,
                             extinction_upper=ku)
    state = DeviceState(dev, net.height_m)
    seen = []
    for k, tk in enumerate(t):
        seen += state.advance(tk, q[k], t_upper_k=tu[k], layer_height_m=z[k], extinction_upper=ku[k]).tolist()
    np.testing.assert_allclose(state.activation_s, batch["activation_s"].values, atol=1e-9)
    assert np.isfinite(state.activation_s).all() and sorted(seen) == [0, 1, 2]
    # obscuration 23.93 %/m at K = 0.2736 1/m: 68.4 s in the office, 136.8 s in the corridor (K linear in t;
    # the crossing of the curved 1 − e^(−K) is interpolated on 2 s samples: within 0.1 s)
    assert state.activation_s[1:] == pytest.approx([68.4, 136.8], abs=0.1)
    # a temperature-analogue smoke detector needs a ceiling jet: none in the corridor, which has no fire
    temp = DeviceSet.from_network(net, smoke_mode="temperature")
    ds_t = activation_times(t, q, temp, ceiling_height_m=net.height_m, t_upper_k=tu, layer_height_m=z)
    assert np.isfinite(float(ds_t["activation_s"][1])) and np.isinf(float(ds_t["activation_s"][2]))
    with pytest.raises(ValidationError, match="must be after"):
        state.advance(0.0, q[0])
