"""Confined-space permit actions over HTTP (real uvicorn on 127.0.0.1 at a free port).

Gas readings go in through the ingest route first (so they pass validation, the
store and the TwinLink exactly as a device's would); the limits are the packaged
``[confined]`` ones (O2 19.5-23.5 % vol, H2S <= 10 mg/m3, CO <= 20 mg/m3, LEL <= 10 %).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import httpx
import pytest

from hardware_bridge.fusion.confined import PermitBook
from hardware_bridge.ingest import Ingestor
from hardware_bridge.sources.http import HttpServer
from hardware_bridge.twin_link import TwinLink
from twin.store import Store

TOKEN = "s3cret-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
SAFE = {"gas_o2": (20.9, "%vol"), "gas_h2s": (1.0, "ppm"), "gas_co": (2.0, "ppm"),
        "gas_lel": (0.0, "%LEL")}


def _feed(client, space: str, kind: str, value: float, unit: str, seq: int) -> None:
    obs = {"datastream": f"{space}/{kind}", "phenomenonTime": datetime.now(UTC).isoformat(),
           "result": value, "unit": unit, "seq": seq}
    r = client.post(f"/v1/obs/{kind}/{space}", content=json.dumps(obs))
    assert r.status_code == 201 and r.json()["stored"] == 1, r.text


def _serve(tmp_path, token):
    store = Store.open(tmp_path / "s")
    link = TwinLink(store, alerts=None, permits=PermitBook(), confined_spaces=["CS-1", "CS-2"],
                    fire=None)
    ingestor = Ingestor(store, source="http", on_stored=link.on_stored)
    server = HttpServer(ingestor, link=link, token=token).start()
    return store, server


@pytest.fixture
def served(tmp_path):
    store, server = _serve(tmp_path, TOKEN)
    try:
        with httpx.Client(base_url=server.url, timeout=10) as client:
            for i, (kind, (v, u)) in enumerate(SAFE.items()):
                _feed(client, "CS-1", kind, v, u, i)
            yield client, store
    finally:
        server.stop()
        store.close()


def _kinds(store) -> list[str]:
    return [e.kind for e in store.events()]


def test_grant_enter_exit_and_events(served):
    client, store = served
    r = client.post("/v1/permits", json={"space": "CS-1", "worker": "li.wei"}, headers=AUTH)
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["granted"] is True and isinstance(body["permit_id"], int)
    assert datetime.fromisoformat(body["expires_at"]) > datetime.now(UTC)
    assert body["readings"]["gas_o2"]["value"] == pytest.approx(0.209)
    assert set(body["readings"]) == set(SAFE)
    pid = body["permit_id"]

    r = client.post(f"/v1/permits/{pid}/enter", json={"worker": "li.wei"}, headers=AUTH)
    assert r.status_code == 200, r.text
    assert r.json()["inside"] == ["li.wei"]
    r = client.get("/v1/spaces/CS-1", headers=AUTH)
    assert r.status_code == 200
    assert r.json()["inside"] == ["li.wei"] and r.json()["safe"] is True
    assert r.json()["confined_space"] is True

    # someone else cannot use li.wei's permit
    r = client.post(f"/v1/permits/{pid}/enter", json={"worker": "zhang.san"}, headers=AUTH)
    assert r.status_code == 403
    r = client.post(f"/v1/permits/{pid}/exit", json={"worker": "li.wei"}, headers=AUTH)
    assert r.status_code == 200 and r.json()["inside"] == []
    r = client.post(f"/v1/permits/{pid}/exit", json={"worker": "li.wei"}, headers=AUTH)
    assert r.status_code == 409 and "not inside" in r.json()["reason"]
    r = client.post("/v1/permits/999/enter", json={"worker": "li.wei"}, headers=AUTH)
    assert r.status_code == 404
    assert _kinds(store) == ["permit_granted", "space_entered", "space_exited"]
    ev = store.events(kind="space_entered")[0]
    assert ev.data["space"] == "CS-1" and ev.data["worker"] == "li.wei"


def test_refusal_names_every_failing_gas(served):
    client, store = served
    _feed(client, "CS-1", "gas_o2", 18.0, "%vol", 10)  # below 19.5 % vol
    _feed(client, "CS-1", "gas_h2s", 30.0, "ppm", 11)  # above 7.06 ppm
    r = client.post("/v1/permits", json={"space": "CS-1", "worker": "li.wei"}, headers=AUTH)
    assert r.status_code == 409, r.text
    reasons = r.json()["reasons"]
    assert r.json()["granted"] is False and len(reasons) == 2
    assert reasons[0].startswith("O2:") and "below 19.5" in reasons[0]
    assert reasons[1].startswith("H2S:") and "above" in reasons[1]
    # a space without any readings: one reason per gas
    r = client.post("/v1/permits", json={"space": "CS-2", "worker": "li.wei"}, headers=AUTH)
    assert r.status_code == 409 and len(r.json()["reasons"]) == 4
    assert all("no reading" in x for x in r.json()["reasons"])
    (ev, _) = store.events(kind="permit_refused")
    assert ev.severity.value == "warning" and ev.data["reasons"] == reasons
    r = client.get("/v1/spaces/CS-1", headers=AUTH)
    assert r.json()["safe"] is False and r.json()["reasons"] == reasons


def test_alarm_stored_when_bad_reading_arrives_while_occupied(served):
    client, store = served
    pid = client.post("/v1/permits", json={"space": "CS-1", "worker": "li.wei"},
                      headers=AUTH).json()["permit_id"]
    assert client.post(f"/v1/permits/{pid}/enter", json={"worker": "li.wei"},
                       headers=AUTH).status_code == 200
    assert store.events(kind="confined_space_alarm") == []
    _feed(client, "CS-1", "gas_lel", 15.0, "%LEL", 20)  # above 10 % LEL
    (alarm,) = store.events(kind="confined_space_alarm")
    assert alarm.severity.value == "alarm"
    assert alarm.data["space"] == "CS-1" and alarm.data["gas"] == "gas_lel"
    assert alarm.data["inside"] == ["li.wei"]
    # entry is now refused for a second permit holder
    r = client.post("/v1/permits", json={"space": "CS-1", "worker": "wang.wu"}, headers=AUTH)
    assert r.status_code == 409 and r.json()["reasons"][0].startswith("LEL:")


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"},
                                     {"Authorization": f"Basic {TOKEN}"}])
def test_missing_or_wrong_token_is_401(served, headers):
    client, store = served
    r = client.post("/v1/permits", json={"space": "CS-1", "worker": "li.wei"}, headers=headers)
    assert r.status_code == 401
    assert client.get("/v1/spaces/CS-1", headers=headers).status_code == 401
    assert client.post("/v1/permits/1/enter", json={"worker": "x"}, headers=headers).status_code == 401
    assert store.events() == []


@pytest.mark.parametrize(("body", "field"), [
    ({"worker": "li.wei"}, "space"),
    ({"space": "CS-1", "worker": ""}, "worker"),
    ({"space": "CS-1", "worker": 7}, "worker"),
    ({"space": "x" * 200, "worker": "li.wei"}, "space"),
    ([1, 2], "body"),
])
def test_invalid_input_is_422_naming_the_field(served, body, field):
    client, store = served
    r = client.post("/v1/permits", json=body, headers=AUTH)
    assert r.status_code == 422 and r.json()["field"] == field, r.text
    r = client.post("/v1/permits", content=b"{nope", headers=AUTH)
    assert r.status_code == 422 and r.json()["field"] == "body"
    r = client.post("/v1/permits/abc/enter", json={"worker": "li.wei"}, headers=AUTH)
    assert r.status_code == 422 and r.json()["field"] == "id"
    assert store.events() == []


def test_no_token_configured_disables_permits(tmp_path):
    store, server = _serve(tmp_path, None)
    try:
        with httpx.Client(base_url=server.url, timeout=10) as client:
            r = client.post("/v1/permits", json={"space": "CS-1", "worker": "li.wei"}, headers=AUTH)
            assert r.status_code == 503
            assert r.json()["reason"] == "permits disabled: start the bridge with --token"
            assert client.get("/v1/health").json() == {"ok": True}  # ingest still served
    finally:
        server.stop()
        store.close()
