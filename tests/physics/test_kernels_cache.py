"""The physics kernels cache into a folder tagged with their package's sources (:mod:`physics._kernels`).

numba stamps a cached function with its own file only, so a caller in one kernel file would load its old
machine code after an edit of its callee in another; the tagged folder makes any edit of the package compile
afresh, and leaves an unchanged package its cache.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import physics._kernels as pk

ROOT = Path(__file__).resolve().parents[2]


def test_the_tag_is_a_hash_of_every_kernel_file():
    files = sorted((ROOT / "physics" / "_kernels").glob("*.py"))
    assert len(files) > 5 and any(f.name == "fire_steps.py" for f in files)
    tag = pk.cache_tag()
    assert len(tag) == 12 and int(tag, 16) >= 0
    assert pk.cache_tag() == tag  # the same sources, the same folder


def test_kernels_compile_into_the_tagged_folder(tmp_path):
    """A fresh process with NUMBA_CACHE_DIR set writes a kernel's cache under ``kernels-<tag>`` (not beside the
    other folders, where a stale caller could be found)."""
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path), "PYTHONPATH": str(ROOT)}
    code = "from physics._kernels.fire_devices import _clip01; assert _clip01(1.5) == 1.0"
    subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, check=True, timeout=300)
    tagged = tmp_path / f"kernels-{pk.cache_tag()}"
    written = [p for p in tmp_path.rglob("*.nbi")]
    assert written, "nothing was cached"
    assert all(tagged in p.parents for p in written), written
