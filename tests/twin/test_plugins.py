"""A new model is two files: a test-only toy (ponding on a grid) and its layer module, nothing else edited.

The toy is written by this test into a temporary folder, as a later model's
author would write it: its component (``step(dt)``, declared fields) with its
run kind, and its map layer. Loaded as a plug-in, it must appear in ``twin
--help``, run through ``twin ponding run`` (the command made from its
request schema), in the console's run list and form, on the offline map and
in the report — with no file of the project edited.

The toy's physics has an exact answer: uniform rain ``r`` on a grid with a
constant infiltration ``f < r`` ponds ``(r - f) t`` everywhere.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest
from click.testing import CliRunner

from twin import runkinds

COMPONENT = textwrap.dedent('''
    """Toy ponding model: rain minus infiltration ponds on every cell."""
    import numpy as np
    import xarray as xr
    from pydantic import BaseModel, ConfigDict, Field

    from twin.component import Component, FieldSpec
    from twin.runkinds import RunKind, RunOutputs, register_kind


    class Ponding(Component):
        name = "ToyPonding"
        fields = {"surface_water__depth": FieldSpec("m", "inout", "ponded depth", attr="h")}

        def __init__(self, shape, rain_mm_h, infiltration_mm_h):
            self.h = np.zeros(shape)
            self.rate = (rain_mm_h - infiltration_mm_h) / 1000.0 / 3600.0

        def step(self, dt):
            self.h = np.maximum(self.h + self.rate * dt, 0.0)
            return dt


    class PondingRequest(BaseModel):
        model_config = ConfigDict(extra="forbid", frozen=True)
        rain_mm_h: float = Field(default=20.0, ge=0.0, le=500.0, description="Rain (mm/h)")
        infiltration_mm_h: float = Field(default=5.0, ge=0.0, description="Infiltration (mm/h)")
        hours: float = Field(default=2.0, gt=0.0, le=24.0, description="Hours")


    def run(req, ctx):
        ny, nx, dx = 20, 30, 100.0
        model = Ponding((ny, nx), req.rain_mm_h, req.infiltration_mm_h)
        duration, frames, times = req.hours * 3600.0, [], []
        for k in range(5):
            if k:
                model.step(duration / 4)
            ctx.report(k * duration / 4, duration)
            frames.append(model.get("surface_water__depth").values)  # by name, never .h
            times.append(k * duration / 4)
        x = 500000.0 + dx * (np.arange(nx) + 0.5)   # EPSG:4547 metres, central Futian
        y = 2493000.0 - dx * (np.arange(ny) + 0.5)
        ds = xr.Dataset({"ponded_depth": (("time", "y", "x"), np.stack(frames), {"units": "m"})},
                        coords={"time": times, "y": y, "x": x})
        ds.attrs.update(crs="EPSG:4547", transform=(dx, 0.0, 500000.0, 0.0, -dx, 2493000.0),
                        title="Toy ponding")
        return ds


    def write(ds, out_dir, req, ctx):
        path = out_dir / "ponding.nc"
        ds.to_netcdf(path)
        return RunOutputs(paths={"netcdf": path},
                          summary={"max_depth_m": float(ds["ponded_depth"].max())})


    def layers(ds, *, warp=None, max_px=None):
        from viz.layers import build
        return [build("toy_ponding", ds, warp=warp)]


    def sections(ds, summary, ctx):
        return [f"<section><h2>Ponding</h2><p id=toy>max {summary['max_depth_m']:.4f} m</p></section>"]


    register_kind(RunKind(name="toy_ponding", title="Toy ponding", request=PondingRequest, run=run,
                          write=write, layers=layers, report_sections=sections, output="ponding.nc",
                          cli_name="ponding", summary_keys=("max_depth_m",)))
''')

LAYER = textwrap.dedent('''
    """Map layer of the toy ponding model: last frame's depth on a bitmap."""
    import numpy as np

    from viz.layers import register
    from viz.layers._raster import MercatorWarp, Ramp, bitmap_layer, png_data_url
    from viz.scene import LayerSet

    RAMP = Ramp([(0.0, (200, 230, 255, 0)), (0.01, (120, 180, 240, 200)), (0.1, (10, 40, 160, 230))])


    @register("toy_ponding")
    def toy_ponding(ds, *, warp=None, layer_id="toy_ponding"):
        da = ds["ponded_depth"].isel(time=-1).assign_attrs(crs=ds.attrs["crs"],
                                                           transform=ds.attrs["transform"])
        warp = warp or MercatorWarp.for_grid(da)
        img = png_data_url(warp(np.asarray(da.values, np.float32)), RAMP)
        return LayerSet(layers=[bitmap_layer(layer_id, img, warp.bounds)], label="Ponded depth",
                        legends=[RAMP.legend(layer_id, "Ponded depth", "m")], bounds=warp.bounds)
''')


@pytest.fixture
def toy(tmp_path):
    """The toy's two files, loaded as plug-ins; unregistered afterwards."""
    from viz import layers

    folder = tmp_path / "plugins"
    folder.mkdir()
    comp, layer = folder / "toy_ponding.py", folder / "toy_ponding_layer.py"
    comp.write_text(COMPONENT, encoding="utf-8")
    layer.write_text(LAYER, encoding="utf-8")
    runkinds.load_file(layer)
    runkinds.load_file(comp)
    yield {"files": [comp, layer], "env": f"{layer},{comp}"}
    runkinds.unregister_kind("toy_ponding")
    layers.unregister("toy_ponding")
    for name in ("twin_plugin_toy_ponding", "twin_plugin_toy_ponding_layer"):
        sys.modules.pop(name, None)


def test_the_toy_appears_in_twin_help_of_a_new_process(toy):
    env = {**os.environ, runkinds.PLUGINS_ENV: toy["env"]}
    out = subprocess.run([sys.executable, "-c", "from twin.cli import main; main()", "--help"],
                         capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "ponding" in out.stdout and "flood" in out.stdout
    plain = subprocess.run([sys.executable, "-c", "from twin.cli import main; main()", "--help"],
                           capture_output=True, text=True, timeout=120)
    assert "ponding" not in plain.stdout  # it came from the plug-in, not from the project


def test_twin_ponding_run_writes_outputs_report_and_map(toy, tmp_path):
    from twin.cli import main

    out = tmp_path / "run"
    res = CliRunner().invoke(main, ["ponding", "run", "--out", str(out), "--rain-mm-h", "30",
                                    "--infiltration-mm-h", "10", "--hours", "3"])
    assert res.exit_code == 0, res.output
    import xarray as xr

    with xr.open_dataset(out / "ponding.nc") as ds:
        # exact answer: (30 - 10) mm/h for 3 h = 60 mm everywhere (float round-off only)
        assert abs(float(ds["ponded_depth"].isel(time=-1).max()) - 0.060) < 1e-12
    summary = json.loads((out / "summary.json").read_text())
    assert summary["kind"] == "toy_ponding" and summary["request"]["hours"] == 3.0
    assert set(summary["files"]) >= {"netcdf", "report", "map"}
    report = (out / "report.html").read_text()
    assert "<p id=toy>max 0.0600 m</p>" in report and "Toy ponding" in report
    page = (out / "map.html").read_text()
    assert "toy_ponding" in page and "Ponded depth" in page


def test_bad_request_is_refused_before_anything_runs(toy, tmp_path):
    from twin import pipeline
    from twin.errors import ValidationError

    with pytest.raises(ValidationError, match=r"rain_mm_h=-1.0"):
        pipeline.run("toy_ponding", {"rain_mm_h": -1.0}, tmp_path / "bad")
    with pytest.raises(ValidationError, match=r"colour"):
        pipeline.run("ponding", {"colour": "red"}, tmp_path / "bad")
    assert not (tmp_path / "bad").exists()


def test_the_toy_runs_from_the_console_and_is_drawn(toy, tmp_path, twin_data):
    from starlette.testclient import TestClient

    from twin.city import City
    from viz.console import create_app

    auth = {"Authorization": "Bearer toy-token-0123456789"}
    app = create_app(tmp_path / "store", token="toy-token-0123456789", runs_dir=tmp_path / "runs",
                     city=City("shenzhen"), base_resolution=500)
    with TestClient(app) as c:
        kinds = {k["name"]: k for k in c.get("/api/info").json()["kinds"]}
        assert {"flood_forecast", "toy_ponding"} <= set(kinds)
        assert set(kinds["toy_ponding"]["schema"]["properties"]) == {"rain_mm_h", "infiltration_mm_h", "hours"}
        bad = c.post("/api/runs", headers=auth, json={"kind": "toy_ponding", "hours": 99})
        assert bad.status_code == 422 and bad.json()["field"] == "hours" and bad.json()["value"] == 99
        r = c.post("/api/runs", headers=auth, json={"kind": "toy_ponding", "hours": 1})
        assert r.status_code == 202, r.text
        c.app.state.console.runs.join(timeout=120)
        done = c.get(f"/api/runs/{r.json()['id']}").json()
        assert done["status"] == "done" and done["kind"] == "toy_ponding", done
        assert done["title"] == "Toy ponding" and abs(done["summary"]["max_depth_m"] - 0.015) < 1e-12
        listed = c.get("/api/runs").json()["runs"]
        assert [x["kind"] for x in listed] == ["toy_ponding"]
        scene = c.get(f"/api/scene/forecast?run={done['id']}").json()
        assert scene["run"] == done["id"] and [layer["id"] for layer in scene["layers"]] == ["toy_ponding"]
        assert c.get("/api/scene/forecast").json()["run"] is None  # a plugin's what-if run is no forecast cycle


def test_unknown_kind_and_broken_plugin(tmp_path):
    from twin.errors import ValidationError

    with pytest.raises(ValidationError, match="unknown run kind 'nope'.*flood_forecast"):
        runkinds.get_kind("nope")
    broken = tmp_path / "broken_model.py"
    broken.write_text("raise ImportError('no such engine')\n")
    with pytest.warns(RuntimeWarning, match="broken_model.*no such engine"):
        runkinds._load(str(broken))


@pytest.mark.browser
def test_the_toy_is_drawn_on_its_offline_map(toy, tmp_path, chromium):
    import numpy as np
    from PIL import Image

    from twin import pipeline
    from viz.browser import TWINMAP_READY_JS, BrowserSession

    res = pipeline.run("toy_ponding", {"rain_mm_h": 30.0, "infiltration_mm_h": 10.0, "hours": 3.0},
                       tmp_path / "run", report=False)
    with BrowserSession(width=800, height=600) as b:
        b.goto(res.paths["map"], ready_js=TWINMAP_READY_JS, timeout=90)
        ids = b.evaluate("map.deck.props.layers.map(l => l.id + ':' + l.constructor.layerName)")
        legend = b.evaluate("document.querySelector('.tm-legend').textContent")
        b.screenshot(tmp_path / "on.png")
        b.evaluate("map.setLayerVisible('toy_ponding', false).then(() => 1)")
        b.screenshot(tmp_path / "off.png")
        errors = list(b.console_errors) + list(b.network_requests)
    assert "toy_ponding:BitmapLayer" in ids and "Ponded depth" in legend
    assert errors == []
    on = np.asarray(Image.open(tmp_path / "on.png").convert("RGB"), dtype=int)
    off = np.asarray(Image.open(tmp_path / "off.png").convert("RGB"), dtype=int)
    changed = np.abs(on - off).max(axis=-1) > 30
    # the 3 km x 2 km grid is fitted to the view: it covers a large part of the 800 x 600 page, and
    # 60 mm of water is drawn in the ramp's blues (blue channel above red)
    assert changed.sum() > 0.1 * changed.size, changed.sum()
    r, _, bl = on[changed].mean(axis=0)
    assert bl > r + 40, (r, bl)


def test_a_kinds_check_runs_before_anything_in_the_pipeline_and_the_console(toy, tmp_path, twin_data):
    """A kind's ``check(request, city)`` refuses a request before the run starts, in the CLI's and the
    console's path alike (the console answers 422 naming the field, never 202)."""
    import dataclasses

    from starlette.testclient import TestClient

    from twin import pipeline
    from twin.city import City
    from twin.errors import RequestError
    from viz.console import create_app

    calls = []

    def whole_hours(req, city):
        calls.append(city)
        if req.hours != int(req.hours):
            raise RequestError(f"hours={req.hours}: the toy steps in whole hours", field="hours", value=req.hours)

    base = runkinds.get_kind("toy_ponding")
    runkinds.register_kind(dataclasses.replace(base, name="toy_checked", cli_name="toy-checked",
                                               check=whole_hours))
    try:
        with pytest.raises(RequestError, match="whole hours") as err:
            pipeline.run("toy_checked", {"hours": 1.5}, tmp_path / "cli")
        assert err.value.field == "hours" and not (tmp_path / "cli").exists()
        from twin.cli import main

        cli = CliRunner().invoke(main, ["toy-checked", "run", "--out", str(tmp_path / "cli"), "--hours", "2.5"])
        assert cli.exit_code == 2 and "--hours" in cli.output and "whole hours" in cli.output, cli.output
        assert not (tmp_path / "cli").exists()
        res = pipeline.run("toy_checked", {"hours": 2.0}, tmp_path / "ok", report=False, map=False)
        assert res.summary["max_depth_m"] == pytest.approx(0.030)
        auth = {"Authorization": "Bearer toy-token-0123456789"}
        app = create_app(tmp_path / "store", token="toy-token-0123456789", runs_dir=tmp_path / "runs",
                         city=City("shenzhen"), base_resolution=500)
        with TestClient(app) as c:
            r = c.post("/api/runs", headers=auth, json={"kind": "toy_checked", "hours": 1.5})
            assert r.status_code == 422, r.text
            assert (r.json()["field"], r.json()["value"]) == ("hours", 1.5) and "whole hours" in r.json()["reason"]
            assert c.get("/api/runs").json()["runs"] == []
        assert calls[-1] is app.state.console.city  # the console's city is handed to the check
    finally:
        runkinds.unregister_kind("toy_checked")


def test_the_toy_is_cancelled_at_its_next_report(toy, tmp_path):
    """Cancel needs no code in the model: ``ctx.report`` raises once the event is set."""
    import threading

    from twin import pipeline
    from twin.errors import RunCancelled

    cancel = threading.Event()
    reports = []

    def progress(p):
        if p["phase"] == "running" and "sim_s" in p:
            reports.append(p["sim_s"])
            if p["sim_s"] > 0:
                cancel.set()

    with pytest.raises(RunCancelled):
        pipeline.run("toy_ponding", {"hours": 2.0}, tmp_path / "run", progress=progress, cancel=cancel)
    assert reports == [0.0, 1800.0]  # the third of its five reports raised
    assert not (tmp_path / "run" / "ponding.nc").exists()


def test_the_flood_stays_the_first_kind_whatever_was_imported_first():
    # "The first registered kind" is the console's default run: importing an agents kind before
    # discovery (as a test or a command does) must not put it ahead of the flood.
    code = ("import agents.district_run, agents.dispatch_run\n"
            "from twin.runkinds import kinds\n"
            "names = [k.name for k in kinds()]\n"
            "print(names[0], names.index('evacuate_district') > names.index('flood_forecast'))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "TWIN_PLUGINS": ""})
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["flood_forecast", "True"]
