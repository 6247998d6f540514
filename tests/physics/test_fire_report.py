"""report.html of a fire run: self-contained (nothing from the network), headline, events, ASET, figures, sources."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from twin import pipeline


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("fire_report")
    res = pipeline.run("fire", {"building": "tower_30_residential", "floor": 5, "growth": "ultrafast",
                                "sprinklers": "off", "duration_s": 180.0}, out, report=True, map=False)
    return res, (out / "report.html").read_text(encoding="utf-8")


def test_report_loads_nothing_from_the_network(report):
    _, page = report
    assert "http://" not in page and "https://" not in page
    srcs = re.findall(r'src="([^"]*)"', page)
    assert srcs and all(s.startswith("data:image/png;base64,") for s in srcs)
    assert len(srcs) == 3  # tenability, layers, heat release


def test_report_has_headline_timeline_aset_and_the_building_notes(report):
    res, page = report
    s = res.summary
    assert "Headline" in page and "A ultrafast fire in 5/flat A on L6 (storey 5)" in page
    events = json.loads(res.dataset.attrs["events"])
    timeline = page[page.index("<h2>Event timeline</h2>"):page.index("<h2>ASET per storey</h2>")]
    assert timeline.count("<tr>") == len(events) + 1  # the header row
    aset = page[page.index("<h2>ASET per storey</h2>"):page.index("<h2>Figures</h2>")]
    n = int(np.isfinite(res.dataset["aset_s"].values).sum())
    assert n == s["storeys_untenable"]
    assert aset.count("<tr>") == (n + 1 if n else 0)
    assert "Assumptions" in page and "ASSUMED: four flats per storey" in page  # from the building file
    assert "EN 1991-1-2:2002 Annex E" in page  # its sources


def test_headline_in_words():
    from physics.fire_report import headline

    s = {"origin": {"storey": 44, "floor_label": "L45", "compartment": "44/office 1"}, "growth": "fast",
         "building": "PAFC", "sprinklers": "off", "season": "summer", "first_detector_s": 31.0,
         "first_sprinkler_s": None, "flashover_s": 412.0, "storeys_untenable": 2, "duration_s": 1800.0,
         "aset_first_storeys": [{"floor_label": "L45", "aset_s": 95.0}], "storeys_burning": [44, 45]}
    text = headline(s)
    assert "first detector at 31 s, no first sprinkler, flashover at 412 s" in text
    assert "2 storey(s) became untenable on their escape route within 30 min; the first, L45, at 95 s" in text
    assert "spread up the facade to L46" in text
