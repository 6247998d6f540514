"""Path reconstruction from a csgraph predecessor row: the numba kernel and its reference.

``scipy.sparse.csgraph.dijkstra(..., return_predecessors=True)`` gives, per
node, the node before it on the shortest path from the source (or, on the
transposed matrix, the node after it on the way to the target); the root and
unreachable nodes hold -9999. :func:`walk` follows that chain from ``start``
to the root and writes the nodes visited, in order, into ``out``; Python's
loop over it costs ~0.2 µs a hop, which the dispatch model pays twice per
incident on paths of hundreds of hops.
"""

from __future__ import annotations

import numba
import numpy as np

#: csgraph's "no predecessor" marker.
NO_PRED = -9999


@numba.njit(cache=True, nogil=True)
def walk(pred: np.ndarray, start: int, out: np.ndarray) -> int:
    """Follow ``pred`` from ``start`` to the root; write the nodes into ``out``.

    ``out[0] = start, out[i + 1] = pred[out[i]]`` until ``pred[out[n - 1]]``
    is -9999. Returns n, the number of nodes written, or -1 when ``out`` is
    too short (a cycle cannot occur in a shortest-path tree).
    """
    n = 0
    node = start
    while n < out.shape[0]:
        out[n] = node
        n += 1
        nxt = pred[node]
        if nxt < 0:
            return n
        node = nxt
    return -1


def walk_reference(pred: np.ndarray, start: int, out: np.ndarray) -> int:
    """Plain-Python :func:`walk` (tests compare the two)."""
    chain = [int(start)]
    while pred[chain[-1]] >= 0:
        if len(chain) >= out.shape[0]:
            return -1
        chain.append(int(pred[chain[-1]]))
    out[: len(chain)] = chain
    return len(chain)
