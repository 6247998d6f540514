"""The tunnel coupling on the run's clock (the invented Line 1 construction plan, the real metro lines).

Each step is ``forecast_vibration`` with the sources working at the run's instant, so the coupled run's
figures equal the stand-alone forecast at the same instants (same function: exactly); a blast that starts
during the run raises one ``tunnel_vibration`` event at the first step it works, placed on its segment.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from scenarios.coupling import get_coupling
from scenarios.runner import run_coupled
from twin.errors import ValidationError

PLAN = Path(__file__).resolve().parents[2] / "physics" / "data" / "tunnel_examples" / "line1_construction_plan.geojson"
START = datetime.fromisoformat("2026-12-06T12:00+08:00")
PERIOD_S = 12 * 3600.0


def config(plan=PLAN, **tunnel):
    return {"districts": ["Futian"], "resolution_m": 500.0, "seed": 1, "start": START.isoformat(),
            "duration_s": 2 * 86400.0, "output_every_s": 86400.0,
            "couplings": {"tunnel": {"sources": str(plan), "lines": ["1"], "period_s": PERIOD_S} | tunnel}}


@pytest.fixture(scope="module")
def run(twin_data, tmp_path_factory):
    return run_coupled(config(), tmp_path_factory.mktemp("tunnel") / "run")


def _working(at: datetime) -> int:
    """Sources of the plan working at ``at`` (no start/end: always), counted from the file itself."""
    n = 0
    for f in json.loads(PLAN.read_text())["features"]:
        p = f["properties"]
        lo = datetime.fromisoformat(p["start"]) if "start" in p else None
        hi = datetime.fromisoformat(p["end"]) if "end" in p else None
        n += (lo is None or lo <= at) and (hi is None or at <= hi)
    return n


def test_each_step_is_the_forecast_at_the_runs_instant(run):
    from physics.tunnel_vibration import forecast_vibration

    ctx = run.contexts["tunnel"]
    series = run.summary["couplings"]["tunnel"]["by_step"]
    times = [row[0] for row in series]
    assert times == [k * PERIOD_S for k in range(5)]
    ratio_max = np.zeros(ctx.own["tunnels"].n_segments)
    for t, n_active, n_over, top in series:
        at = START + timedelta(seconds=t)
        assert n_active == _working(at)
        alone = forecast_vibration(str(PLAN), tunnels=ctx.own["tunnels"], at=at)
        assert n_over == int(alone["over_limit"].sum()) and top == pytest.approx(float(alone["ratio"].max()), 0, 0)
        ratio_max = np.maximum(ratio_max, alone["ratio"].values)
    np.testing.assert_array_equal(ctx.own["ratio_max"], ratio_max)
    assert run.summary["couplings"]["tunnel"]["max_ratio"] == float(ratio_max.max())


def test_a_blast_that_starts_in_the_run_raises_one_event_on_its_segment(run):
    series = run.summary["couplings"]["tunnel"]["by_step"]
    events = [e for e in run.state.events if e.kind == "tunnel_vibration"]
    # P1 (12 kg per delay 25 m off the axis) starts at 2026-12-07 09:00: first worked at the 2026-12-07 12:00 step
    t_p1 = 2 * PERIOD_S
    assert series[2][2] > series[1][2], "the blast puts more segments over the limit"
    assert [e.time_s for e in events if e.time_s > 0] == [t_p1]
    ev = next(e for e in events if e.time_s == t_p1)
    assert ev.severity.value == "warning" and ev.data["source"] == "P1-blast-pit" and ev.data["ratio"] > 1.0
    # its place: the worst segment's middle, beside the blast (the plan's note: chainage 9000 m of Line 1)
    assert abs(ev.data["chainage_m"] - 9000.0) < 100.0
    assert abs(ev.data["lon"] - 114.0415) < 0.002 and abs(ev.data["lat"] - 22.5384) < 0.002


def test_layers_table_and_report(run):
    ctx = run.contexts["tunnel"]
    sets = get_coupling("tunnel").layers(ctx, None)
    assert sets and any("tunnel_segments" in str(s.layers) for s in sets)
    table = get_coupling("tunnel").tables(ctx)["tunnel_segments"]
    assert len(table) == run.summary["couplings"]["tunnel"]["segments_ever_over"] > 0
    assert (table["ratio"] > 1.0).all()
    html = "".join(get_coupling("tunnel").report(ctx))
    assert "Metro tunnel vibration" in html and "segments over" in html


def test_a_bad_plan_is_refused_before_the_run(twin_data, tmp_path):
    plan = json.loads(PLAN.read_text())
    plan["features"][0]["properties"]["charge_kg"] = -3.0
    bad = tmp_path / "bad.geojson"
    bad.write_text(json.dumps(plan))
    with pytest.raises(ValidationError, match="charge_kg"):
        run_coupled(config(bad), tmp_path / "run")
    assert not (tmp_path / "run" / "fields.nc").exists()
