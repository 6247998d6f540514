"""Tests for twin.files: the one file-hash helper the fetcher, the store and the console share."""

from __future__ import annotations

import hashlib
import subprocess
import sys

from twin.files import file_sha256


def test_digest_and_size_of_a_file_larger_than_one_chunk(tmp_path):
    data = bytes(range(256)) * 5000  # 1.28 MB: several 64 kB chunks
    path = tmp_path / "blob.bin"
    path.write_bytes(data)
    assert file_sha256(path, chunk=1 << 16) == (hashlib.sha256(data).hexdigest(), len(data))


def test_empty_file_has_the_empty_digest(tmp_path):
    path = tmp_path / "empty"
    path.write_bytes(b"")
    assert file_sha256(path) == (hashlib.sha256(b"").hexdigest(), 0)


def test_the_store_does_not_load_the_data_fetcher():
    code = "import sys, twin.store; print('twin.fetch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
