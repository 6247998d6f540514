"""Facts about files on disk that several parts of the twin check: their SHA-256.

The data fetcher checks downloads against the catalogue, the store checks
snapshot files before restoring them and the console tags its static files
with an ETag; all three hash a file the same way, here.
"""

from __future__ import annotations

import hashlib
import os

CHUNK = 1 << 20


def file_sha256(path: str | os.PathLike, chunk: int = CHUNK) -> tuple[str, int]:
    """SHA-256 hex digest and size in bytes of a file, read in chunks.

    Parameters
    ----------
    path : str or path-like
        The file.
    chunk : int
        Bytes read at a time (bounds the memory used, not the result).

    Returns
    -------
    (str, int)
        The lower-case hex digest and the number of bytes hashed.

    Raises
    ------
    OSError
        If the file cannot be read (callers turn it into their own error).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "abc.txt"
    >>> _ = p.write_bytes(b"abc")
    >>> file_sha256(p)
    ('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad', 3)
    """
    h = hashlib.sha256()
    n = 0
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
            n += len(block)
    return h.hexdigest(), n


__all__ = ["file_sha256"]
