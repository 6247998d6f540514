"""The catalogue of a city's data set and the checks of files on disk.

The catalogue (``twin/cities/<city>_files.json``) lists every file of the data
set with its byte size, SHA-256 digest, upstream source and licence. A file
built here from a public upstream (:mod:`twin.fetch.build`) cannot match the
catalogue's digest; it is checked against its provenance record instead
(:mod:`twin.fetch.provenance`).
"""

from __future__ import annotations

import fnmatch
import json
import os
import urllib.parse
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from twin.errors import ConfigError
from twin.files import file_sha256

MIRROR_ENV = "TWIN_DATA_MIRROR"


@dataclass(frozen=True)
class CatalogueFile:
    """One file of a data set.

    Attributes
    ----------
    path : str
        Path relative to the data dir, e.g. ``"shenzhen/terrain/srtm1_shenzhen.tif"``.
    size : int
        Size in bytes.
    sha256 : str
        Lower-case hex SHA-256 digest of the content.
    source : str
        Human description of the upstream public source.
    url : str or None
        URL of the upstream source (None when it has no single public page).
    licence : str
        Licence or terms of use.
    builder : str or None
        Which builder of :mod:`twin.fetch.build` makes this file (or a stand-in for
        it) from a public upstream without a mirror: ``"cnmaps"``, ``"copernicus"``,
        ``"gshhg"`` or ``"overpass"``.
    no_upstream : str or None
        Why it has no such upstream (then it needs a mirror or a copy).
    """

    path: str
    size: int
    sha256: str
    source: str
    url: str | None
    licence: str
    builder: str | None = None
    no_upstream: str | None = None


@dataclass(frozen=True)
class Catalogue:
    """The files of one city's data set and the city's bounding box (lon/lat degrees)."""

    city: str
    bbox: tuple[float, float, float, float]  # west, south, east, north
    files: tuple[CatalogueFile, ...]

    @property
    def total_size(self) -> int:
        """Sum of the file sizes in bytes."""
        return sum(f.size for f in self.files)

    def entry(self, path: str) -> CatalogueFile:
        """The catalogue file at ``path`` (relative to the data dir)."""
        for f in self.files:
            if f.path == path:
                return f
        raise ConfigError(f"{path!r} is not a file of the {self.city} catalogue")

    def select(self, pattern: str | None) -> list[CatalogueFile]:
        """Files whose path matches the glob ``pattern`` (all when None).

        The pattern is matched against the full path (``shenzhen/roads/*``) and
        against the path without the city folder (``roads/*``); a pattern with no
        wildcard also selects everything under a folder of that name.
        """
        if not pattern:
            return list(self.files)
        out = [f for f in self.files if matches(f.path, pattern, self.city)]
        if not out:
            raise ConfigError(
                f"--only {pattern!r} matches no file of the {self.city} catalogue; "
                f"use a glob on paths such as {self.files[0].path!r} (e.g. 'roads/*')"
            )
        return out


def matches(path: str, pattern: str | None, city: str) -> bool:
    """Whether ``path`` is selected by ``--only pattern`` (see :meth:`Catalogue.select`)."""
    if not pattern:
        return True
    prefix = f"{city}/"
    short = path[len(prefix):] if path.startswith(prefix) else path
    return any(
        fnmatch.fnmatchcase(candidate, pattern) or candidate.startswith(pattern.rstrip("/") + "/")
        for candidate in (path, short)
    )


def load_catalogue(city: str = "shenzhen") -> Catalogue:
    """Read ``twin/cities/<city>_files.json`` from the installed package."""
    name = f"{city}_files.json"
    try:
        text = resources.files("twin").joinpath("cities", name).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"city {city!r} has no data catalogue (looked for twin/cities/{name}); "
            "known city: 'shenzhen'"
        ) from None
    raw = json.loads(text)
    b = raw["bbox"]
    files = tuple(
        CatalogueFile(
            path=f["path"],
            size=int(f["size"]),
            sha256=f["sha256"].lower(),
            source=f["source"],
            url=f.get("url"),
            licence=f["licence"],
            builder=f.get("builder"),
            no_upstream=f.get("no_upstream"),
        )
        for f in raw["files"]
    )
    return Catalogue(
        city=raw["city"], bbox=(b["west"], b["south"], b["east"], b["north"]), files=files
    )


def sources_text(catalogue: Catalogue, entries: list[CatalogueFile] | None = None) -> str:
    """The distinct upstream sources of some catalogue files, one per line, with URL and licence."""
    seen: dict[tuple[str, str | None, str], list[str]] = {}
    for f in catalogue.files if entries is None else entries:
        seen.setdefault((f.source, f.url, f.licence), []).append(f.path)
    lines = []
    for (source, url, licence), paths in seen.items():
        lines.append(f"  - {source}")
        if url:
            lines.append(f"      {url}")
        lines.append(f"      licence: {licence}; {len(paths)} file(s), e.g. {paths[0]}")
    return "\n".join(lines)


def resolve_mirror(mirror: str | None) -> str | None:
    """The mirror URL: the argument, else ``$TWIN_DATA_MIRROR``, else None (build from upstreams)."""
    mirror = mirror or os.environ.get(MIRROR_ENV)
    return mirror.rstrip("/") if mirror else None


def file_url(mirror: str, relpath: str) -> str:
    """``{mirror}/{relpath}`` with the path percent-encoded."""
    return f"{mirror.rstrip('/')}/{urllib.parse.quote(relpath)}"


# --------------------------------------------------------------------------
# Checking
# --------------------------------------------------------------------------

#: Statuses of a catalogue file that count as usable.
GOOD = frozenset({"ok", "built", "replaced"})


@dataclass(frozen=True)
class CheckResult:
    """Outcome of checking one catalogue file on disk.

    ``status`` is ``"ok"`` (the catalogued bytes), ``"built"`` (built here from its
    public upstream: matches its provenance record, not the catalogue),
    ``"replaced"`` (missing, but a built file that stands for it is present and
    matches its record; ``path`` is that file), ``"missing"``, ``"wrong size"``,
    ``"wrong checksum"`` or ``"changed since built"``.
    """

    entry: CatalogueFile
    path: Path
    status: str
    actual_size: int | None = None
    actual_sha256: str | None = None
    expected_sha256: str | None = None

    @property
    def ok(self) -> bool:
        return self.status in GOOD

    def describe(self) -> str:
        """One line telling what is wrong (empty when ok)."""
        e = self.entry
        if self.status == "missing":
            return f"{e.path}: missing ({self.path})"
        if self.status == "wrong size":
            return f"{e.path}: size {self.actual_size} bytes, expected {e.size}"
        if self.status == "wrong checksum":
            return f"{e.path}: sha256 {self.actual_sha256}, expected {e.sha256}"
        if self.status == "changed since built":
            return (f"{self.path}: sha256 {self.actual_sha256}, its provenance record says "
                    f"{self.expected_sha256} (changed since it was built)")
        return ""


def check_file(
    root: str | os.PathLike, entry: CatalogueFile, record: dict | None = None
) -> CheckResult:
    """Check ``root/entry.path`` against the catalogue, or against its provenance record.

    ``record`` is the provenance of the data dir (:func:`twin.fetch.provenance.read`);
    when None it is read from ``root``.
    """
    from twin.fetch import provenance

    root = Path(root)
    record = provenance.read(root) if record is None else record
    path = root / entry.path
    built = record.get(entry.path)
    if not path.is_file():
        for rel, rec in record.items():
            if entry.path in rec.get("stands_for", ()) and (root / rel).is_file():
                return _against_record(root / rel, entry, rec, "replaced")
        return CheckResult(entry, path, "missing")
    size = path.stat().st_size
    if built is None and size != entry.size:
        return CheckResult(entry, path, "wrong size", actual_size=size)
    digest, _ = file_sha256(path)
    if digest == entry.sha256:
        return CheckResult(entry, path, "ok", actual_size=size, actual_sha256=digest)
    if built is not None:
        return _against_record(path, entry, built, "built", digest)
    return CheckResult(entry, path, "wrong checksum", actual_size=size, actual_sha256=digest)


def _against_record(path: Path, entry: CatalogueFile, rec: dict, status: str,
                    digest: str | None = None) -> CheckResult:
    if digest is None:
        digest, _ = file_sha256(path)
    size = path.stat().st_size
    if digest != rec.get("sha256"):
        status = "changed since built"
    return CheckResult(entry, path, status, actual_size=size, actual_sha256=digest,
                       expected_sha256=rec.get("sha256"))


def verify(root: str | os.PathLike, catalogue: Catalogue | None = None) -> list[CheckResult]:
    """Check every catalogue file under ``root`` (see :func:`check_file`)."""
    from twin.fetch import provenance

    catalogue = catalogue or load_catalogue()
    record = provenance.read(root)
    return [check_file(root, e, record) for e in catalogue.files]
