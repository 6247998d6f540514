"""The one run pipeline: the request checked before anything starts, cooperative cancel, the files it lists."""

from __future__ import annotations

import json
import threading
import time

import pytest

from twin import pipeline
from twin.errors import RequestError, RunCancelled

SMALL = {"storm": "2023-09-07", "hours": 1.0, "resolution": 500.0, "districts": ["Futian"]}


@pytest.mark.parametrize("params, field, value, words", [
    pytest.param({**SMALL, "hours": 0.25}, "hours", 0.25, "whole number of block_min=10", id="storm-blocks"),
    pytest.param({**SMALL, "districts": ["Atlantis"]}, "districts", ["Atlantis"], "'Atlantis' is unknown",
                 id="district"),
    pytest.param({**SMALL, "drainage_mm_h": {"Futian": 30.0, "Nowhere": 10.0}}, "drainage_mm_h",
                 {"Futian": 30.0, "Nowhere": 10.0}, "'Nowhere' is unknown", id="drainage-district"),
    pytest.param({**SMALL, "method": "chicago", "peak_fraction": 1.0}, "peak_fraction", 1.0,
                 "strictly inside", id="chicago-peak"),
    pytest.param({"hours": 1.0, "dem": "/no/such/dem.tif"}, "dem", "/no/such/dem.tif", "no such file", id="dem"),
])
def test_what_the_flood_model_refuses_is_refused_before_it_starts(twin_data, tmp_path, params, field, value,
                                                                   words):
    seen = []
    with pytest.raises(RequestError, match=words) as err:
        pipeline.run("flood_forecast", params, tmp_path / "out", progress=seen.append)
    assert (err.value.field, err.value.value) == (field, value)
    assert not (tmp_path / "out").exists()
    assert [p["phase"] for p in seen] == ["validating"]


def test_check_passes_what_the_model_runs(twin_data):
    req = pipeline.check("flood_forecast", {**SMALL, "hours": 0.5, "districts": ["futian", "Luohu"]})
    assert req.hours == 0.5 and req.districts == ["futian", "Luohu"]


def test_summary_lists_every_file_the_run_wrote(twin_data, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    old = out / "left-from-before.txt"
    old.write_text("an older run's file")
    import os

    os.utime(old, (time.time() - 3600, time.time() - 3600))
    res = pipeline.run("flood_forecast", SMALL, out)
    files = json.loads((out / "summary.json").read_text())["files"]
    written = {p.name for p in out.iterdir()} - {old.name}
    assert set(files.values()) == written
    assert {"report.html", "map.html", "summary.json", "flood.nc"} <= written
    assert files["report"] == "report.html" and files["map"] == "map.html"
    assert res.summary["files"] == files


def test_cancel_stops_a_flood_run_at_its_next_progress_report(twin_data, tmp_path):
    cancel = threading.Event()
    seen: list[dict] = []
    at: list[float] = []

    def progress(p: dict) -> None:
        seen.append(p)
        if p["phase"] == "running" and p.get("sim_s", 0) >= 600 and not cancel.is_set():
            at.append(time.perf_counter())
            cancel.set()

    params = {**SMALL, "hours": 24.0, "resolution": 90.0}  # ~2 s uncancelled, a report every 60 simulated s
    with pytest.raises(RunCancelled):
        pipeline.run("flood_forecast", params, tmp_path / "run", progress=progress, cancel=cancel)
    stopped = time.perf_counter() - at[0]
    assert stopped < 1.0, stopped
    last = max(p.get("sim_s", 0) for p in seen)
    assert last < 900  # the next report after 600 s, not the end of the 24 h
    assert not (tmp_path / "run" / "summary.json").exists()
    assert "writing outputs" not in [p["phase"] for p in seen]


@pytest.mark.parametrize("cancel", [pytest.param("event", id="event"), pytest.param("callable", id="callable")])
def test_cancel_set_before_the_run_stops_it_before_the_model_runs(twin_data, tmp_path, cancel):
    ev = threading.Event()
    ev.set()
    seen: list[dict] = []
    with pytest.raises(RunCancelled):
        pipeline.run("flood_forecast", SMALL, tmp_path / "run", progress=seen.append,
                     cancel=ev if cancel == "event" else (lambda: True))
    assert [p["phase"] for p in seen] == ["validating"]
    assert list((tmp_path / "run").iterdir()) == []
