"""Simulated devices: reproducible, valid under the bridge schema, and the documented model."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from datetime import UTC, datetime

import numpy as np
import pytest

from hardware_bridge.schema import Kind
from hardware_bridge.sources.simulated import make_devices, simulate
from hardware_bridge.validate import parse_message
from twin.errors import ValidationError

T0 = datetime(2024, 6, 1, tzinfo=UTC)


def _obs(msgs):
    return [m for m in msgs if m.kind == "obs"]


def test_same_seed_same_messages_other_seed_differs():
    devs = make_devices(12, interval_s=60)
    a = [(m.time, m.topic, m.payload) for m in simulate(devs, T0, 3 * 3600, seed=7)]
    b = [(m.time, m.topic, m.payload) for m in simulate(devs, T0, 3 * 3600, seed=7)]
    c = [(m.time, m.topic, m.payload) for m in simulate(devs, T0, 3 * 3600, seed=8)]
    assert a == b
    assert a != c


def test_every_message_of_every_kind_is_valid_and_time_ordered():
    devs = make_devices(24, interval_s=60, event_rate_per_h=6.0)
    msgs = list(simulate(devs, T0, 6 * 3600, seed=1))
    assert [m.time for m in msgs] == sorted(m.time for m in msgs)
    kinds = Counter()
    for m in msgs:
        res = parse_message(m.topic, m.payload, m.time)
        assert res.ok, (m.topic, m.payload, getattr(res, "reason", None))
        if m.kind == "obs":
            kinds[m.topic.split("/")[2]] += 1
    assert set(kinds) == {k.value for k in Kind}  # every kind reported, events included


def test_seq_increases_by_one_and_times_on_the_interval_grid():
    devs = make_devices(6, interval_s=30, dropout_prob=0.05)
    per = defaultdict(list)
    for m in _obs(simulate(devs, T0, 2 * 3600, seed=3)):
        d = json.loads(m.payload)
        per[d["datastream"]].append((d["seq"], datetime.fromisoformat(d["phenomenonTime"])))
    assert len(per) == 6
    for rows in per.values():
        seqs = [s for s, _ in rows]
        assert seqs == list(range(len(seqs)))
        for _, t in rows:
            assert (t - T0).total_seconds() % 30 == 0


def test_dropouts_are_announced_and_leave_gaps():
    devs = make_devices(4, [Kind.WATER_LEVEL], interval_s=60, dropout_prob=0.1,
                        dropout_mean_intervals=4)
    msgs = list(simulate(devs, T0, 24 * 3600, seed=5))
    st = [json.loads(m.payload)["state"] for m in msgs if m.kind == "status"]
    assert st.count("offline") > 10
    assert st.count("online") >= st.count("offline")  # each dropout ends with online
    n_obs = len(_obs(msgs))
    assert n_obs < 4 * 24 * 60 * 0.9  # at least 10 % of the intervals silent


def test_battery_runs_out_and_the_device_goes_offline_for_good():
    devs = make_devices(1, [Kind.GAS_H2S], interval_s=60, battery_start=0.0605,
                        battery_per_msg=0.001, dropout_prob=0.0)
    msgs = list(simulate(devs, T0, 3600, seed=0))
    obs = _obs(msgs)
    assert len(obs) == 11  # 0.0605 -> 0.0495 < 0.05 after 11 readings
    last = msgs[-1]
    assert last.kind == "status" and json.loads(last.payload)["state"] == "offline"
    assert last.retain


def test_noise_and_drift_follow_the_model():
    # noise only: sample std of the readings ~ sigma (2000 samples: +-5 %)
    devs = make_devices(1, [Kind.WATER_LEVEL], interval_s=60, noise_sigma=0.01,
                        drift_per_day=0.0, tide_amplitude_m=0.0, dropout_prob=0.0,
                        battery_per_msg=0.0)
    vals = np.array([json.loads(m.payload)["result"]
                     for m in _obs(simulate(devs, T0, 2000 * 60, seed=2))])
    assert len(vals) == 2000
    assert abs(vals.mean() - 1.2) < 0.002
    assert vals.std() == pytest.approx(0.01, rel=0.05)
    # drift only: value = base + drift * t / 1 day, exactly to the 1 mm resolution
    devs = make_devices(1, [Kind.WATER_LEVEL], interval_s=3600, noise_sigma=0.0,
                        drift_per_day=0.24, tide_amplitude_m=0.0, dropout_prob=0.0)
    rows = [json.loads(m.payload) for m in _obs(simulate(devs, T0, 86400, seed=2))]
    for r in rows:
        t = (datetime.fromisoformat(r["phenomenonTime"]) - T0).total_seconds()
        assert r["result"] == pytest.approx(1.2 + 0.24 * t / 86400, abs=1e-9)


def test_rain_is_non_negative_on_the_bucket_resolution():
    devs = make_devices(3, [Kind.RAIN_GAUGE], interval_s=300, rain_wet_prob=0.8)
    vals = [json.loads(m.payload)["result"] for m in _obs(simulate(devs, T0, 86400, seed=4))]
    assert min(vals) >= 0 and max(vals) > 0
    assert all(abs(v * 10 - round(v * 10)) < 1e-6 for v in vals)


def test_resend_repeats_the_same_reading():
    devs = make_devices(1, [Kind.HEAT], interval_s=60, resend_prob=1.0, dropout_prob=0.0)
    obs = _obs(simulate(devs, T0, 600, seed=0))
    assert len(obs) == 20
    assert all(obs[i].payload == obs[i + 1].payload for i in range(0, 20, 2))


def test_bad_arguments_are_named():
    with pytest.raises(ValidationError, match="naive"):
        list(simulate(make_devices(1), datetime(2024, 1, 1), 60))
    with pytest.raises(ValidationError, match="kinds"):
        make_devices(2, ["lava_sensor"])
    with pytest.raises(ValidationError, match="interval_s"):
        make_devices(2, interval_s=0)
