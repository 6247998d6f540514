"""Numba kernels of the physics models (pure array functions).

numba stamps a cached function with its own source file only: a function whose callee in another file of this
package changed (``fire_steps.run_steps`` calls ``fire_zone.step``, which calls ``sparse_ldl``) would load its old
machine code from the cache and run the callee as it was. So, where ``NUMBA_CACHE_DIR`` is set, the kernels
decorated from here on cache into a subfolder named by a hash of this package's sources (:func:`cache_tag`): an edit
of any kernel file compiles them afresh once, and an unchanged package finds its cache. (Where it is not set, numba
caches beside the sources, as before.)
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path


def cache_tag() -> str:
    """A hash of this package's ``*.py`` files (names and contents), 12 hex digits."""
    h = hashlib.sha1()
    for path in sorted(Path(__file__).parent.glob("*.py")):
        h.update(path.name.encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:12]


def _tag_cache_dir() -> None:
    base = os.environ.get("NUMBA_CACHE_DIR")
    if not base:
        return
    import numba

    # the environment keeps the base: subprocesses (ensemble workers) tag it themselves, to the same folder
    numba.config.CACHE_DIR = str(Path(base) / f"kernels-{cache_tag()}")


_tag_cache_dir()
