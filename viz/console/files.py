"""Static files of the console, served from a fixed list (no path ever reaches the file system).

At start-up :class:`StaticFiles` lists the regular files directly inside its
folders (symbolic links and anything that resolves outside the folder are left
out) plus named extra files (the deck.gl bundle, ``twinmap.js``). A request
names a file of that list or gets ``404``: ``../``, ``%2e%2e``, absolute paths,
backslashes and sub-folders cannot select anything else, because the name is
only ever a dictionary key. Content types come from a small table of the types
the console uses; anything else is served as ``application/octet-stream``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from twin.files import file_sha256

CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".png": "image/png",
    ".svg": "image/svg+xml",
    ".ico": "image/x-icon",
    ".txt": "text/plain; charset=utf-8",
}


@dataclass(frozen=True)
class StaticFile:
    name: str
    path: Path
    content_type: str
    etag: str


def _entry(name: str, path: Path) -> StaticFile:
    digest, _ = file_sha256(path)
    ctype = CONTENT_TYPES.get(path.suffix.lower(), "application/octet-stream")
    return StaticFile(name, path, ctype, f'"{digest[:32]}"')


class StaticFiles:
    """Whitelist of files served under ``/static/`` (module docstring).

    Parameters
    ----------
    folders : list of paths
        Each folder's regular files (not symlinks), by file name; later folders
        do not override earlier names.
    extra : dict name -> path
        Files served under a fixed name (e.g. ``deck.js``); must be regular files.
    """

    def __init__(self, folders: list[Path], extra: dict[str, Path] | None = None) -> None:
        self.files: dict[str, StaticFile] = {}
        for folder in folders:
            root = Path(folder).resolve()
            if not root.is_dir():
                continue
            for p in sorted(root.iterdir()):
                if p.name.startswith(".") or p.is_symlink() or not p.is_file():
                    continue
                if p.resolve().parent != root:
                    continue
                self.files.setdefault(p.name, _entry(p.name, p))
        for name, path in (extra or {}).items():
            p = Path(path)
            if p.is_file() and not p.is_symlink():
                self.files[name] = _entry(name, p.resolve())

    def __contains__(self, name: str) -> bool:
        return name in self.files

    def response(self, name: str, request: Any = None) -> Any:
        """The file as a response (``304`` on a matching ``If-None-Match``), or ``404``."""
        from starlette.responses import FileResponse, JSONResponse, Response

        f = self.files.get(name)
        if f is None:
            return JSONResponse({"error": "not_found", "reason": f"no static file named {name!r}"},
                                status_code=404)
        headers = {"ETag": f.etag, "Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"}
        if request is not None and request.headers.get("if-none-match") == f.etag:
            return Response(status_code=304, headers=headers)
        return FileResponse(f.path, media_type=f.content_type, headers=headers)


__all__ = ["CONTENT_TYPES", "StaticFiles"]
