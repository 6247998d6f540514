"""Provenance records of files built from public upstreams.

A file built here (a DEM mosaicked from Copernicus tiles, a coast cut from the
GSHHG shapefiles, roads from an Overpass answer) cannot have the catalogue's
SHA-256: the catalogue lists the files of the shared data set, made with other
tools. Each built file is therefore recorded in ``<data dir>/<city>/provenance.json``
with its own size and SHA-256, when and how it was built, the upstream URLs
(with the SHA-256 of what was downloaded) and the catalogue files it stands for.
``twin data verify`` checks a built file against this record.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

from twin.errors import DataIntegrityError
from twin.files import file_sha256

FILENAME = "provenance.json"


def record_path(root: str | os.PathLike, city: str = "shenzhen") -> Path:
    """Where the provenance record of ``city`` lives under the data-dir ``root``."""
    return Path(root) / city / FILENAME


def read(root: str | os.PathLike, city: str = "shenzhen") -> dict[str, dict]:
    """``{relpath: record}`` of every built file under ``root`` (empty when none was built)."""
    path = record_path(root, city)
    if not path.is_file():
        return {}
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DataIntegrityError(
            f"{path} is not a readable provenance record ({exc}); delete it and run "
            f"`twin data fetch {city}` again to rebuild the files it described"
        ) from exc
    return dict(raw.get("files", {}))


def add(
    root: str | os.PathLike,
    relpath: str,
    *,
    method: str,
    sources: list[dict],
    licence: str,
    stands_for: list[str] | None = None,
    city: str = "shenzhen",
) -> dict:
    """Record the built file ``root/relpath`` (its size and SHA-256 now) and return the record.

    ``sources`` are ``{"url": ..., "sha256": ...}`` of the downloads it was made from;
    ``stands_for`` the catalogue paths it replaces (empty when it has the catalogue's path).
    """
    from twin import __version__

    path = Path(root) / relpath
    digest, size = file_sha256(path)
    rec = {
        "sha256": digest,
        "size": size,
        "built": datetime.now(UTC).isoformat(timespec="seconds"),
        "built_by": f"shenzhen-twin {__version__} (twin data fetch)",
        "method": method,
        "sources": sources,
        "licence": licence,
        "stands_for": list(stands_for or []),
    }
    files = read(root, city)
    files[relpath] = rec
    _write(root, city, files)
    return rec


def drop(root: str | os.PathLike, relpath: str, city: str = "shenzhen") -> None:
    """Forget ``relpath`` (e.g. when the catalogued file replaced a built one)."""
    files = read(root, city)
    if files.pop(relpath, None) is not None:
        _write(root, city, files)


def check(root: str | os.PathLike, relpath: str, city: str = "shenzhen") -> str:
    """``"built"``, ``"missing"``, ``"changed since built"`` or ``"not built"`` for one file."""
    rec = read(root, city).get(relpath)
    if rec is None:
        return "not built"
    path = Path(root) / relpath
    if not path.is_file():
        return "missing"
    digest, _ = file_sha256(path)
    return "built" if digest == rec["sha256"] else "changed since built"


def _write(root: str | os.PathLike, city: str, files: dict) -> None:
    path = record_path(root, city)
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {
        "about": "Files of this data dir built from public upstreams by `twin data fetch`, "
                 "with their own SHA-256 (they differ from the catalogue's by construction).",
        "files": dict(sorted(files.items())),
    }
    part = path.with_name(path.name + ".part")
    part.write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(part, path)
