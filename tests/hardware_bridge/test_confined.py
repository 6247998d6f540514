"""Confined-space gas limits and permits (hardware_bridge.fusion.confined).

Limits from alerts.toml [confined]: O2 19.5-23.5 % vol (GB 8958-2006; OSHA 29 CFR
1910.146), H2S <= 10 mg/m3 (GBZ 2.1-2019 MAC), CO <= 20 mg/m3 (GBZ 2.1-2019 PC-TWA),
LEL <= 10 % (OSHA 29 CFR 1910.146).
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta

import pytest

from hardware_bridge.fusion import Reading
from hardware_bridge.fusion.alerts import load_config
from hardware_bridge.fusion.confined import PermitBook, confined_config
from twin.clock import SimClock
from twin.errors import ConfigError, ValidationError
from twin.events import Event, Severity

SPACE = "WS-07"  # a sewage well
GOOD = {"gas_o2": 0.209, "gas_h2s": 1e-6, "gas_co": 3e-6, "gas_lel": 0.0}


def readings(t, space=SPACE, **over):
    vals = {**GOOD, **over}
    return [Reading(f"{space}/{g}", g, t, v, station=space) for g, v in vals.items()]


def test_limits_in_si_from_the_config():
    lim = confined_config()["limits"]
    assert (lim["gas_o2"].lo, lim["gas_o2"].hi) == (pytest.approx(0.195), pytest.approx(0.235))
    # 10 mg/m3 x 24.055 L/mol / 34.08 g/mol = 7.06 ppm; 20 mg/m3 CO = 17.2 ppm (20 °C, 101.325 kPa)
    assert lim["gas_h2s"].hi == pytest.approx(7.058e-6, rel=1e-4) and lim["gas_h2s"].lo is None
    assert lim["gas_co"].hi == pytest.approx(17.18e-6, rel=1e-3)
    assert lim["gas_lel"].hi == pytest.approx(0.10)
    assert "GBZ 2.1-2019" in lim["gas_h2s"].source and "1910.146" in lim["gas_lel"].source
    assert "GB 8958-2006" in lim["gas_o2"].source


def test_permit_granted_when_all_fresh_and_within_limits():
    book = PermitBook()
    assert book.update(readings(100.0)) == []
    p = book.request(SPACE, "li.wei", 150.0)
    assert p.granted and p.reasons == [] and p.permit_id == 1
    assert p.expires_at == 150.0 + 8 * 3600.0
    assert p.readings["gas_o2"] == 0.209


@pytest.mark.parametrize("setup, now, fragment", [
    (lambda b: b.update(readings(100.0, gas_o2=0.185)), 110.0, "O2: 18.5 % vol is below 19.5 % vol"),
    (lambda b: b.update(readings(100.0, gas_o2=0.24)), 110.0, "O2: 24.0 % vol is above 23.5 % vol"),
    (lambda b: b.update(readings(100.0, gas_h2s=8e-6)), 110.0, "H2S: 8.0 ppm is above 7.058 ppm (<= 10 mg/m3)"),
    (lambda b: b.update(readings(100.0, gas_co=20e-6)), 110.0, "CO: 20 ppm is above 17.18 ppm"),
    (lambda b: b.update(readings(100.0, gas_lel=0.12)), 110.0, "LEL: 12 %LEL is above 10 %LEL"),
    (lambda b: b.update(readings(100.0)), 221.0, "latest reading is 121 s old (max 120 s)"),
    (lambda b: b.update(readings(100.0)), 50.0, "50 s in the future"),
    (lambda b: b.update([r for r in readings(100.0) if r.kind != "gas_co"]), 110.0,
     "CO: no reading for space 'WS-07'"),
    (lambda b: b.update(readings(100.0, space="OTHER")), 110.0, "no reading for space 'WS-07'"),
])
def test_permit_refused_with_reasons(setup, now, fragment):
    book = PermitBook()
    setup(book)
    p = book.request(SPACE, "li.wei", now)
    assert not p.granted and p.permit_id is None
    assert any(fragment in r for r in p.reasons), p.reasons
    with pytest.raises(ValidationError, match="no permit"):
        book.enter(SPACE, "li.wei", now)


def test_every_failing_gas_is_named():
    book = PermitBook()
    book.update(readings(100.0, gas_o2=0.18, gas_h2s=2e-5))
    p = book.request(SPACE, "w", 101.0)
    assert len(p.reasons) == 2 and p.reasons[0].startswith("O2") and p.reasons[1].startswith("H2S")


def test_alarm_while_inside_once_until_cleared():
    book = PermitBook()
    book.update(readings(0.0))
    assert book.request(SPACE, "li.wei", 10.0).granted and book.request(SPACE, "zhang.min", 10.0).granted
    book.enter(SPACE, "li.wei", 20.0)
    book.enter(SPACE, "zhang.min", 25.0)
    assert book.inside(SPACE) == ["li.wei", "zhang.min"]
    ev = book.update(Reading(f"{SPACE}/gas_h2s", "gas_h2s", 30.0, 12e-6, station=SPACE))
    assert len(ev) == 1
    e = ev[0]
    assert e.kind == "confined_space_alarm" and e.severity is Severity.ALARM and e.time_s == 30.0
    assert SPACE in e.message and "H2S" in e.message and "12.0 ppm" in e.message and "7.058 ppm" in e.message
    assert e.data["space"] == SPACE and e.data["gas"] == "gas_h2s" and e.data["value"] == 12e-6
    assert e.data["inside"] == ["li.wei", "zhang.min"] and "GBZ 2.1" in e.data["limit_source"]
    assert Event.parse(e.to_record()) == e
    assert book.update(Reading(f"{SPACE}/gas_h2s", "gas_h2s", 35.0, 15e-6, station=SPACE)) == []  # dedup
    cleared = book.update(Reading(f"{SPACE}/gas_h2s", "gas_h2s", 40.0, 2e-6, station=SPACE))
    assert [(c.kind, c.severity) for c in cleared] == [("confined_space_cleared", Severity.INFO)]
    again = book.update(Reading(f"{SPACE}/gas_o2", "gas_o2", 45.0, 0.19, station=SPACE))
    assert [a.data["gas"] for a in again] == ["gas_o2"]
    # an older reading does not replace the latest one
    assert book.update(Reading(f"{SPACE}/gas_o2", "gas_o2", 44.0, 0.209, station=SPACE)) == []


def test_no_alarm_when_nobody_inside_and_entry_refused_on_a_bad_atmosphere():
    book = PermitBook()
    book.update(readings(0.0))
    assert book.request(SPACE, "w", 5.0).granted
    assert book.update(Reading(f"{SPACE}/gas_lel", "gas_lel", 10.0, 0.2, station=SPACE)) == []
    with pytest.raises(ValidationError, match="entry to 'WS-07' refused.*LEL: 20 %LEL"):
        book.enter(SPACE, "w", 12.0)
    book.update(Reading(f"{SPACE}/gas_lel", "gas_lel", 20.0, 0.01, station=SPACE))
    book.enter(SPACE, "w", 21.0)
    book.exit(SPACE, "w", 60.0)
    assert book.inside(SPACE) == []
    assert book.update(Reading(f"{SPACE}/gas_lel", "gas_lel", 70.0, 0.5, station=SPACE)) == []
    with pytest.raises(ValidationError, match="not inside"):
        book.exit(SPACE, "w", 80.0)


def test_permit_expiry_and_stale_readings_while_inside():
    book = PermitBook()
    book.update(readings(0.0))
    book.request(SPACE, "w", 1.0)
    book.enter(SPACE, "w", 2.0)
    assert book.check(100.0) == []
    stale = book.check(130.0)  # every gas last read at t=0
    assert sorted(e.data["gas"] for e in stale) == sorted(GOOD)
    assert all(e.kind == "confined_space_stale" and e.severity is Severity.WARNING for e in stale)
    assert book.check(140.0) == []  # once per gas until a fresh reading
    book.update(readings(150.0))
    assert book.check(200.0) == []
    book.exit(SPACE, "w", 210.0)
    book.update(readings(8 * 3600.0 + 2.0))
    with pytest.raises(ValidationError, match="expired 1 s ago"):
        book.enter(SPACE, "w", 8 * 3600.0 + 2.0)


def test_datetimes_with_clock_and_config_override():
    start = datetime(2024, 5, 1, 8, tzinfo=UTC)
    cfg = copy.deepcopy(load_config())
    cfg["confined"]["max_age_s"] = 30
    cfg["confined"]["limits"]["gas_co"]["max"] = 30  # PC-STEL instead of PC-TWA
    book = PermitBook(cfg, clock=SimClock(start))
    book.update(readings(start, gas_co=20e-6))  # 20 ppm < 30 mg/m3 = 25.8 ppm
    assert book.request(SPACE, "w", start + timedelta(seconds=20)).granted
    assert not book.request(SPACE, "v", start + timedelta(seconds=31)).granted
    book.enter(SPACE, "w", start + timedelta(seconds=25))
    ev = book.update(Reading("x", "gas_o2", start + timedelta(minutes=1), 0.17, station=SPACE))
    assert ev[0].time_s == 60.0


@pytest.mark.parametrize("patch, match", [
    (lambda c: c["limits"]["gas_h2s"].pop("source"), "no source"),
    (lambda c: c["limits"]["gas_h2s"].pop("molar_mass_g_mol"), "molar_mass_g_mol"),
    (lambda c: c["limits"]["gas_o2"].update(unit="percent"), "unit='percent'"),
    (lambda c: c["limits"]["gas_o2"].update(min=25), "min 25 > max 23.5"),
    (lambda c: c["limits"].update(gas_nh3={"max": 1, "unit": "ppm", "source": "x", "verified": True}),
     "unknown gas"),
    (lambda c: c.update(max_age_s=-1), "max_age_s=-1"),
])
def test_bad_confined_config(patch, match):
    cfg = copy.deepcopy(load_config()["confined"])
    patch(cfg)
    with pytest.raises(ConfigError, match=match):
        PermitBook(cfg)


def test_reading_without_space_is_refused():
    with pytest.raises(ValidationError, match="no station"):
        PermitBook().update(Reading("x/o2", "gas_o2", 0.0, 0.2))
