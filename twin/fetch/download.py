"""Downloading files: pooch does the transfer, the hash check and the retries.

:func:`fetch_files` makes one :class:`pooch.Pooch` over the mirror whose registry
is the catalogue's SHA-256 of each file (:func:`mirror_pooch`); :func:`download`
makes one for a single URL (a Copernicus tile, the GSHHG zip, an Overpass answer).
Either way pooch streams the file with :class:`pooch.HTTPDownloader` into a
temporary file next to the target, checks its SHA-256 (when known) and only then
moves it onto the target, so content that does not match is never left there.
Transient failures (connection errors, timeouts, HTTP 408/425/429/5xx, a
truncated body, a checksum mismatch) are retried by pooch (``retry_if_failed``,
waiting 1 s, 2 s, ... between tries); other HTTP errors (404, 403) fail at once.
Partial downloads are not resumed: a failed try starts the file again.

What is Shenzhen-specific stays here: mirror layout, statuses per catalogue file,
progress hooks the CLI draws with rich, and errors that say what to do.
"""

from __future__ import annotations

import os
import re
import shutil
import urllib.parse
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from twin.errors import DataIntegrityError, FetchError, TwinError
from twin.fetch.catalogue import CatalogueFile, check_file

CHUNK = 256 * 1024
USER_AGENT = "shenzhen-twin-fetch/0.2"
# HTTP statuses worth retrying: timeouts, rate limits and server-side failures.
TRANSIENT_HTTP = frozenset({408, 425, 429, 500, 502, 503, 504})


# --------------------------------------------------------------------------
# Progress hooks
# --------------------------------------------------------------------------


class FetchProgress(Protocol):
    """Receives byte progress; the CLI implements it with rich.progress."""

    def file_started(self, name: str, total: int | None, done: int) -> None: ...

    def advance(self, name: str, nbytes: int) -> None: ...

    def file_finished(self, name: str, status: str) -> None: ...


class NullProgress:
    """A progress hook that ignores everything.

    Hooks may also have ``message(text)``, which receives lines of text
    (pip's output, what is being built); :func:`say` calls it when present.
    """

    def message(self, text: str) -> None:
        pass

    def file_started(self, name: str, total: int | None, done: int) -> None:
        pass

    def advance(self, name: str, nbytes: int) -> None:
        pass

    def file_finished(self, name: str, status: str) -> None:
        pass


def say(progress: FetchProgress, text: str) -> None:
    """Pass a line of text to ``progress.message`` if the hook has one."""
    hook = getattr(progress, "message", None)
    if hook is not None:
        hook(text)


class _PoochBar:
    """The progress-bar object pooch's HTTPDownloader drives (``total``, ``update``,
    ``reset``, ``close``), forwarding to a :class:`FetchProgress` hook."""

    def __init__(self, progress: FetchProgress, name: str) -> None:
        self._progress = progress
        self._name = name
        self._total: int | None = None
        self.done = 0

    @property
    def total(self) -> int | None:
        return self._total

    @total.setter
    def total(self, value: int) -> None:
        self._total = value or None
        self.done = 0
        self._progress.file_started(self._name, self._total, 0)

    def update(self, n: int) -> None:
        # pooch reports the chunk size, not the bytes of the last short chunk: clamp.
        if self._total is not None:
            n = max(0, min(n, self._total - self.done))
        self.done += n
        self._progress.advance(self._name, n)

    def reset(self) -> None:
        self._progress.advance(self._name, -self.done)
        self.done = 0

    def close(self) -> None:
        pass


# --------------------------------------------------------------------------
# Downloading one URL
# --------------------------------------------------------------------------


@dataclass
class RetryPolicy:
    """Retries after a transient failure (pooch's ``retry_if_failed``) and the socket timeout."""

    retries: int = 3
    timeout: float = 30.0


@dataclass
class Download:
    """What :func:`download` did: the file, its size and SHA-256, how many tries it took."""

    path: Path
    size: int
    sha256: str
    attempts: int = 0


class _Downloader:
    """pooch downloader: ``HTTPDownloader`` for http(s), a copy for ``file://``.

    Non-transient HTTP errors become :class:`FetchError`, which pooch does not
    retry; every try is counted in ``attempts``.
    """

    def __init__(self, policy: RetryPolicy, progress: FetchProgress, name: str,
                 method: str = "GET", body: dict | bytes | None = None) -> None:
        self.policy = policy
        self.bar = _PoochBar(progress, name)
        self.attempts = 0
        self.method = method
        self.body = body

    def __call__(self, url: str, output_file, pooch, check_only: bool = False):
        import pooch as _pooch
        import requests

        self.attempts += 1
        scheme = urllib.parse.urlsplit(url).scheme.lower()
        if scheme == "file":
            src = Path(urllib.request.url2pathname(urllib.parse.urlsplit(url).path))
            if not src.is_file():
                raise FetchError(f"download failed: no such file: {url}")
            self.bar.total = src.stat().st_size
            shutil.copyfile(src, output_file)
            self.bar.update(self.bar.total or 0)
            return None
        kwargs = {"headers": {"User-Agent": USER_AGENT}, "timeout": self.policy.timeout}
        if self.method == "POST":
            return self._post(url, output_file, kwargs)
        downloader = _pooch.HTTPDownloader(progressbar=self.bar, chunk_size=CHUNK, **kwargs)
        try:
            return downloader(url, output_file, pooch)
        except requests.HTTPError as exc:
            raise self._http_error(exc, url) from exc

    def _post(self, url: str, output_file, kwargs: dict):
        """POST ``body`` (an Overpass query) and stream the answer; pooch only GETs."""
        import requests

        try:
            with requests.post(url, data=self.body, stream=True, **kwargs) as resp:
                resp.raise_for_status()
                self.bar.total = int(resp.headers.get("content-length", 0))
                with open(output_file, "wb") as out:
                    for block in resp.iter_content(CHUNK):
                        out.write(block)
                        self.bar.update(len(block))
        except requests.HTTPError as exc:
            raise self._http_error(exc, url) from exc

    @staticmethod
    def _http_error(exc, url: str) -> Exception:
        code = exc.response.status_code if exc.response is not None else None
        if code in TRANSIENT_HTTP:
            return exc  # pooch retries RequestExceptions
        reason = exc.response.reason if exc.response is not None else ""
        return FetchError(
            f"download failed: HTTP {code} {reason} for {url}; check that the URL is right "
            "and that the server holds this file"
        )


def download(
    url: str,
    target: str | os.PathLike,
    *,
    sha256: str | None = None,
    name: str | None = None,
    policy: RetryPolicy | None = None,
    progress: FetchProgress | None = None,
    method: str = "GET",
    body: dict | bytes | None = None,
) -> Download:
    """Download ``url`` to ``target`` with pooch, checking its SHA-256 when given.

    Parameters
    ----------
    url : str
        Source URL (http, https or file).
    target : path
        Final path; parent folders are created. An existing target with the right
        SHA-256 is kept as it is (no request); one with another is replaced.
    sha256 : str, optional
        Expected hex SHA-256 (pooch's ``known_hash``). When None, an existing target
        is kept and a new download is not checked.
    name : str, optional
        Label for messages and progress (default: the target's name).
    policy : RetryPolicy, optional
        Retries for transient failures.
    method, body : optional
        ``"POST"`` with a request body (an Overpass query); pooch's downloader only GETs.

    Raises
    ------
    FetchError
        The URL cannot be fetched (after the retries), naming the URL.
    DataIntegrityError
        The downloaded content has another SHA-256 (after the retries); nothing is
        left at the target.
    """
    import pooch

    target = Path(target)
    policy = policy or RetryPolicy()
    fetcher = pooch.create(
        path=target.parent, base_url="", registry={target.name: _known(sha256)},
        urls={target.name: url}, retry_if_failed=policy.retries,
    )
    return _fetch(fetcher, target.name, sha256=sha256, name=name or target.name, policy=policy,
                  progress=progress, method=method, body=body)


def mirror_pooch(mirror: str, dest: str | os.PathLike, entries: Iterable[CatalogueFile],
                 policy: RetryPolicy):
    """A :class:`pooch.Pooch` over the mirror: base URL, data dir and the catalogue's SHA-256 registry."""
    import pooch

    return pooch.create(
        path=Path(dest), base_url=mirror.rstrip("/") + "/",
        registry={e.path: _known(e.sha256) for e in entries}, retry_if_failed=policy.retries,
    )


def _fetch(fetcher, fname: str, *, sha256: str | None, name: str, policy: RetryPolicy,
           progress: FetchProgress | None, method: str = "GET",
           body: dict | bytes | None = None) -> Download:
    """``fetcher.fetch(fname)`` with our downloader; pooch's errors become ours."""
    import pooch
    import requests

    from twin.files import file_sha256

    pooch.get_logger().setLevel("WARNING")
    url = fetcher.get_url(fname)
    downloader = _Downloader(policy, progress or NullProgress(), name, method, body)
    try:
        path = Path(fetcher.fetch(fname, downloader=downloader))
    except requests.RequestException as exc:
        raise FetchError(
            f"download failed after {downloader.attempts} attempt(s): {url}: {exc}. "
            "Check the URL and your network, then run the command again."
        ) from exc
    except ValueError as exc:
        if isinstance(exc, TwinError):
            raise
        got = re.search(r"got[: ]+(?:sha256:)?([0-9a-f]{64})", str(exc))
        raise DataIntegrityError(
            f"{name}: sha256 mismatch for {url} after {downloader.attempts} attempt(s): "
            f"expected {sha256}, got {got[1] if got else '?'}; nothing was written. "
            "The server holds a different or damaged copy: use one with the catalogued data."
        ) from exc
    digest, size = file_sha256(path)
    return Download(path=path, size=size, sha256=digest, attempts=downloader.attempts)


def _known(sha256: str | None) -> str | None:
    return f"sha256:{sha256.lower()}" if sha256 else None


# --------------------------------------------------------------------------
# Fetching catalogue files from a mirror: one pooch with the catalogue's registry
# --------------------------------------------------------------------------


@dataclass
class FetchResult:
    """Outcome for one catalogue file.

    ``status``: ``"skipped"`` (already present and correct), ``"downloaded"`` or ``"failed"``.
    """

    entry: CatalogueFile
    status: str
    error: TwinError | None = None
    attempts: int = 0

    @property
    def ok(self) -> bool:
        return self.status != "failed"


@dataclass
class FetchReport:
    """All results of one fetch run."""

    results: list[FetchResult] = field(default_factory=list)

    @property
    def failed(self) -> list[FetchResult]:
        return [r for r in self.results if not r.ok]

    def count(self, status: str) -> int:
        return sum(r.status == status for r in self.results)

    def raise_for_failures(self) -> None:
        """Raise the first failure's error (integrity errors first)."""
        failed = self.failed
        if not failed:
            return
        for r in failed:
            if isinstance(r.error, DataIntegrityError):
                raise r.error
        assert failed[0].error is not None
        raise failed[0].error


def fetch_files(
    entries: Iterable[CatalogueFile],
    mirror: str,
    dest: str | os.PathLike,
    *,
    force: bool = False,
    policy: RetryPolicy | None = None,
    progress: FetchProgress | None = None,
) -> FetchReport:
    """Fetch catalogue files from ``mirror`` into ``dest`` (the data-dir root).

    A file already at ``dest/<path>`` with the catalogue's size and SHA-256 is
    skipped unless ``force``; any other file there (a damaged copy, or one built
    from an upstream) is replaced by the catalogued one, and its provenance record
    dropped. Every file is attempted; failures are recorded in the report, not raised.
    """
    from twin.fetch import provenance

    progress = progress or NullProgress()
    policy = policy or RetryPolicy()
    entries = list(entries)
    fetcher = mirror_pooch(mirror, dest, entries, policy)
    report = FetchReport()
    for entry in entries:
        target = Path(dest) / entry.path
        if target.exists():
            check = check_file(dest, entry, record={})
            if check.ok and not force:
                progress.file_started(entry.path, entry.size, entry.size)
                progress.file_finished(entry.path, "skipped")
                report.results.append(FetchResult(entry, "skipped"))
                continue
            target.unlink()  # known-bad (or forced) content never stays at the target path
        try:
            dl = _fetch(fetcher, entry.path, sha256=entry.sha256, name=entry.path,
                        policy=policy, progress=progress)
        except TwinError as exc:
            progress.file_finished(entry.path, "failed")
            report.results.append(FetchResult(entry, "failed", error=exc))
            continue
        provenance.drop(dest, entry.path, entry.path.split("/", 1)[0])
        progress.file_finished(entry.path, "downloaded")
        report.results.append(FetchResult(entry, "downloaded", attempts=dl.attempts))
    return report
