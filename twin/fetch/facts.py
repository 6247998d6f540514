"""Hazard facts restated in the package, written as the ``events`` layer.

The ``events`` layer (``<city>/events/hazard_events.json``) holds public facts
from press reports — the 2023-09-07 storm's record depths that the flood run's
``--storm 2023-09-07`` needs, the 2015 Guangming landslide — not data with a
download URL. The facts are restated with their sources in
``twin/cities/<city>_facts.toml``; without a mirror, ``twin data fetch`` writes
them in the layer's JSON form and records the file in the provenance.
"""

from __future__ import annotations

import json
import os
import tomllib
from importlib import resources
from pathlib import Path

from twin.errors import ConfigError

EVENTS_RELPATH = "{city}/events/hazard_events.json"


def load_facts(city: str = "shenzhen") -> dict:
    """The facts shipped for ``city`` (``twin/cities/<city>_facts.toml``)."""
    res = resources.files("twin").joinpath("cities", f"{city}_facts.toml")
    if not res.is_file():
        raise ConfigError(f"city {city!r} ships no hazard facts (twin/cities/{city}_facts.toml)")
    return tomllib.loads(res.read_text(encoding="utf-8"))


def write_events(dest: str | os.PathLike, *, city: str = "shenzhen",
                 stands_for: list[str] | None = None) -> Path:
    """Write the facts as ``dest/<city>/events/hazard_events.json`` and record its provenance."""
    from twin.fetch import provenance

    facts = load_facts(city)
    rel = EVENTS_RELPATH.format(city=city)
    out = Path(dest) / rel
    out.parent.mkdir(parents=True, exist_ok=True)
    doc = {"_note": facts.get("note", ""), "events": facts["events"]}
    part = out.with_name(out.name + ".part")
    part.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(part, out)
    sources = [{"url": u} for ev in facts["events"] for u in ev.get("sources", [])]
    provenance.add(dest, rel, city=city, sources=sources, licence="facts (press reports)",
                   stands_for=[p for p in (stands_for or []) if p != rel],
                   method=f"facts restated in twin/cities/{city}_facts.toml, written as JSON")
    return out
