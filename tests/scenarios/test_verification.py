"""scenarios.verification: predictions paired with later observations, scores by gauge and lead time.

A store holds one forecast run written by hand (its ``forecast_issued`` event) and the gauges'
observations; every expected number below is worked out by hand from those few values.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from scenarios.forecast import FORECAST_EVENT, KIND_NAME
from scenarios.verification import (
    forecast_pairs,
    lead_bucket,
    verification_table,
    write_verification,
)
from twin.events import Event
from twin.store import Store

ISSUE = datetime(2024, 6, 1, 8, 0, tzinfo=UTC)


def _forecast(store: Store, issue: datetime, gauges: dict, status: str = "done") -> int:
    rid = store.start_run(KIND_NAME, {"issue_time": issue.isoformat(), "hours": 2.0,
                                      "forecast": {"issue_time": issue.isoformat()}})
    store.put_run_events(rid, [Event(time_s=0.0, wall_time=issue, kind=FORECAST_EVENT, source="forecast",
                                     data={"issue_time": issue.isoformat(), "gauges": gauges})])
    store.end_run(rid, status)
    return rid


def _obs(store: Store, ds: str, minutes: float, value: float) -> None:
    store.put_observation(ds, ISSUE + timedelta(minutes=minutes), value, "m")


@pytest.fixture()
def store(tmp_path):
    with Store.open(tmp_path / "store") as st:
        g1 = {"datastream": "G1/water_level", "thresholds": {"warning": 1.0},
              "lead_s": [0.0, 600.0, 1200.0, 4000.0], "levels": [0.5, 1.2, 0.9, 2.0]}
        g2 = {"datastream": "G2/water_level", "thresholds": {}, "lead_s": [600.0], "levels": [1.0]}
        _forecast(st, ISSUE, {"G1": g1, "G2": g2})
        # a failed forecast and a plain flood run are not verified
        _forecast(st, ISSUE, {"G1": {**g1, "levels": [9.0] * 4}}, status="failed")
        rid = st.start_run(KIND_NAME, {"storm": "2023-09-07", "hours": 1.0})
        st.end_run(rid, "done")
        _obs(st, "G1/water_level", 0, 0.4)
        _obs(st, "G1/water_level", 10.5, 1.1)   # nearest to 08:10 (30 s off)
        _obs(st, "G1/water_level", 13, 5.0)     # 3 min off 08:10, 7 min off 08:20: never chosen
        _obs(st, "G1/water_level", 20, 1.3)
        _obs(st, "G2/water_level", 9, 1.5)      # 1 min off 08:10
        yield st


def test_pairs_take_the_nearest_observation_within_the_tolerance(store):
    pairs, unpaired = forecast_pairs(store, tolerance_s=300.0)
    assert unpaired == 1  # G1 at 4000 s (09:06:40): nothing observed within 5 min
    got = {(r.station, r.lead_s): (r.predicted, r.observed) for r in pairs.itertuples()}
    assert got == {("G1", 0.0): (0.5, 0.4), ("G1", 600.0): (1.2, 1.1), ("G1", 1200.0): (0.9, 1.3),
                   ("G2", 600.0): (1.0, 1.5)}
    assert set(pairs["run"]) == {1}
    # a tolerance of 20 s keeps only the exact ones (08:00 and 08:20)
    tight, unpaired = forecast_pairs(store, tolerance_s=20.0)
    assert sorted(tight["lead_s"]) == [0.0, 1200.0] and unpaired == 3


def test_scores_by_gauge_and_lead_bucket_match_a_hand_computation(store):
    table = verification_table(forecast_pairs(store)[0])
    row = table.set_index(["station", "lead"]).loc
    # G1 alone: e = +0.1 (analysis), +0.1 (0-10 min), -0.4 (10-30 min)
    assert row[("G1", "0 (analysis)")]["n"] == 1
    assert row[("G1", "0 (analysis)")]["bias"] == pytest.approx(0.1)
    assert row[("G1", "10 min–30 min")]["rmse"] == pytest.approx(0.4)
    # all gauges, 0-10 min: e = 1.2 - 1.1 = +0.1 (G1) and 1.0 - 1.5 = -0.5 (G2)
    r = row[("all", "0–10 min")]
    assert r["n"] == 2
    assert r["bias"] == pytest.approx((0.1 - 0.5) / 2)
    assert r["mae"] == pytest.approx((0.1 + 0.5) / 2)
    assert r["rmse"] == pytest.approx(math.sqrt((0.1**2 + 0.5**2) / 2))
    # crossings of G1's 1.0 m: 0-10 min predicted 1.2 and observed 1.1 (hit); 10-30 min predicted 0.9,
    # observed 1.3 (miss); the analysis 0.5 vs 0.4 (correct negative); G2 has no threshold: not counted
    assert (r["hits"], r["misses"], r["false_alarms"], r["correct_negatives"]) == (1, 0, 0, 0)
    assert (r["pod"], r["far"]) == (1.0, 0.0)  # 1 / (1 + 0), 0 / (1 + 0)
    m = row[("all", "10 min–30 min")]
    assert (m["hits"], m["misses"], m["pod"]) == (0, 1, 0.0)
    assert math.isnan(m["far"])  # nothing predicted above: no false alarm rate
    assert row[("all", "0 (analysis)")]["correct_negatives"] == 1
    # rows: each gauge's buckets by lead, then "all"
    assert list(table["station"]) == ["G1", "G1", "G1", "G2", "all", "all", "all"]
    assert list(table[table["station"] == "G1"]["lead_hi_s"]) == [0.0, 600.0, 1800.0]


def test_lead_buckets_are_half_open_on_the_left():
    assert lead_bucket(0.0)[0] == "0 (analysis)"
    assert lead_bucket(600.0)[1:] == (0.0, 600.0)
    assert lead_bucket(601.0)[1:] == (600.0, 1800.0)
    assert lead_bucket(10_800.0)[0] == "2 h–3 h"
    assert lead_bucket(1e6)[2] == math.inf


def test_write_verification_files(store, tmp_path):
    out = write_verification(store.root, tmp_path / "verif")
    assert (out["forecasts"], out["n_pairs"], out["unpaired"]) == (1, 4, 1)
    csv = pd.read_csv(out["csv"])
    parquet = pd.read_parquet(out["parquet"])
    assert len(csv) == len(parquet) == 7
    assert list(parquet["n"]) == list(csv["n"])
    page = out["html"].read_text(encoding="utf-8")
    assert "Forecast verification" in page and "<td>G2</td>" in page and "http" not in page.split("<body", 1)[1]
    assert page.count('<img alt="bias and RMSE by lead time" src="data:image/png;base64,') == 1


def test_an_empty_store_gives_an_empty_table(tmp_path):
    with Store.open(tmp_path / "empty") as st:
        pairs, unpaired = forecast_pairs(st)
    assert pairs.empty and unpaired == 0
    assert verification_table(pairs).empty
    page = write_verification(tmp_path / "empty", tmp_path / "verif")["html"].read_text(encoding="utf-8")
    assert "<img" not in page and "0 forecast(s)" in page
