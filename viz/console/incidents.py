"""The console's incident board: open incidents of the live twin and what the trainees did about them.

:class:`IncidentBoard` follows the store's live events (not a model run's) of three kinds:

``incident``
    A call to answer (a drill's inject, a bridge rule, an operator): ``data`` has ``lon``,
    ``lat``, ``incident`` (fire, medical, flood_rescue, collapse) and optionally ``needs``,
    ``id``. The board adds the district the point falls in.
``trainee_action``
    What the console's ``POST /api/actions`` records (``data.action`` dispatch / evacuate /
    forecast, ``data.by``); a dispatch names its ``incident_id`` (the incident's event id), an
    evacuation may.
``incident_closed``
    Closes the incident whose event id is ``data.incident_id`` (or whose ``data.id`` matches).

An incident is ``open`` until a unit is dispatched (``dispatched``), and listed until closed.
:meth:`IncidentBoard.refresh` reads only the rows after the last it saw and returns the
changed incidents as live-feed messages ``{"type": "incident", "incident": {...}}``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

INCIDENT_KIND = "incident"
ACTION_KIND = "trainee_action"
CLOSED_KIND = "incident_closed"
MAX_INCIDENTS = 500


class IncidentBoard:
    """Open incidents with their dispatches and evacuations (module docstring).

    Parameters
    ----------
    store : twin.store.Store
        The console's store (read through :meth:`~twin.store.Store.event_rows_after`).
    district_of : callable, optional
        ``district_of(lon, lat) -> name or None``: the district of a point (None: no districts).
    """

    def __init__(self, store: Any, district_of: Callable[[float, float], str | None] | None = None) -> None:
        self.store = store
        self._district_of = district_of
        self._lock = threading.RLock()
        self._last_id = 0
        self._incidents: dict[int, dict[str, Any]] = {}
        self._by_ref: dict[str, int] = {}

    def refresh(self) -> list[dict[str, Any]]:
        """Read the new rows; the messages of the incidents they changed."""
        with self._lock:
            rows = self.store.event_rows_after(self._last_id, kinds=[INCIDENT_KIND, ACTION_KIND, CLOSED_KIND])
            changed: list[int] = []
            for ev in rows:
                self._last_id = max(self._last_id, ev.id)
                if ev.run_id is not None:
                    continue  # a model run's simulated incident is not the city's
                iid = self._apply(ev)
                if iid is not None and iid not in changed:
                    changed.append(iid)
            self._trim()
            return [{"type": "incident", "incident": dict(self._incidents[i])} for i in changed
                    if i in self._incidents]

    def incidents(self, include_closed: bool = False) -> list[dict[str, Any]]:
        """Incidents, newest first (open and dispatched; closed too when asked)."""
        with self._lock:
            return [dict(v) for k, v in sorted(self._incidents.items(), reverse=True)
                    if include_closed or v["status"] != "closed"]

    def incident(self, event_id: int) -> dict[str, Any] | None:
        """One incident by its event id (None when the board has none)."""
        with self._lock:
            v = self._incidents.get(int(event_id))
            return None if v is None else dict(v)

    # ----------------------------------------------------------------- folding
    def _apply(self, ev: Any) -> int | None:
        if ev.kind == INCIDENT_KIND:
            return self._add(ev)
        if ev.kind == CLOSED_KIND:
            iid = self._target(ev.data)
            if iid is not None:
                self._incidents[iid] = {**self._incidents[iid], "status": "closed", "closed": ev.wall_time}
            return iid
        action = ev.data.get("action")
        iid = self._target(ev.data)
        if iid is None or action not in ("dispatch", "evacuate"):
            return None
        inc = self._incidents[iid]
        rec = {k: ev.data.get(k) for k in ("by", "unit_type", "units", "station", "districts", "note")}
        rec = {k: v for k, v in rec.items() if v not in (None, "")} | {"at": ev.wall_time, "event_id": ev.id}
        key = "dispatches" if action == "dispatch" else "evacuations"
        status = "dispatched" if action == "dispatch" and inc["status"] == "open" else inc["status"]
        self._incidents[iid] = {**inc, key: [*inc[key], rec], "status": status}
        return iid

    def _add(self, ev: Any) -> int:
        d = ev.data
        lon, lat = d.get("lon"), d.get("lat")
        district = None
        if self._district_of is not None and isinstance(lon, int | float) and isinstance(lat, int | float):
            district = self._district_of(float(lon), float(lat))
        self._incidents[ev.id] = {
            "id": ev.id, "ref": d.get("id"), "incident": d.get("incident"), "lon": lon, "lat": lat,
            "district": district, "needs": d.get("needs"), "message": ev.message, "source": ev.source,
            "severity": ev.severity, "wall_time": ev.wall_time, "status": "open", "dispatches": [],
            "evacuations": [], "drill": d.get("drill")}
        if isinstance(d.get("id"), str):
            self._by_ref[d["id"]] = ev.id
        return ev.id

    def _target(self, data: dict[str, Any]) -> int | None:
        iid = data.get("incident_id")
        if isinstance(iid, int) and iid in self._incidents:
            return iid
        ref = data.get("id")
        return self._by_ref.get(ref) if isinstance(ref, str) else None

    def _trim(self) -> None:
        while len(self._incidents) > MAX_INCIDENTS:
            oldest = min(self._incidents)
            self._by_ref.pop(self._incidents[oldest].get("ref") or "", None)
            del self._incidents[oldest]


def district_locator(city: Any) -> Callable[[float, float], str | None]:
    """``(lon, lat) -> district name or None`` over the city's district boundaries (loaded at the first call)."""
    cache: dict[str, Any] = {}

    def locate(lon: float, lat: float) -> str | None:
        import shapely

        if "gdf" not in cache:
            try:
                cache["gdf"] = city.districts().to_crs("EPSG:4326")
            except Exception:  # noqa: BLE001 - no boundaries (no TWIN_DATA): incidents carry no district
                cache["gdf"] = None
        gdf = cache["gdf"]
        if gdf is None:
            return None
        pt = shapely.Point(lon, lat)
        hit = gdf[gdf.geometry.contains(pt)]
        return str(hit["name"].iloc[0]) if len(hit) else None

    return locate


__all__ = ["ACTION_KIND", "CLOSED_KIND", "INCIDENT_KIND", "IncidentBoard", "district_locator"]
