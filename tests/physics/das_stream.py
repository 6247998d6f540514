"""Feed a simulated DAS record to several detectors side by side, as the live path does (1 s chunks)."""

from __future__ import annotations

from physics.das_detect import DasDetector
from physics.das_simulate import DasSimulator


def run_detectors(sim: DasSimulator, dets: dict[str, DasDetector], t1: float,
                  start_s: float = 0.0) -> dict[str, list]:
    """Each detector's events (after ``flush``) for ``sim``'s record from ``start_s`` until ``t1`` (s)."""
    out: dict[str, list] = {k: [] for k in dets}
    t = start_s
    for ch in sim.chunks(1.0, start_s=start_s):
        for k, d in dets.items():
            out[k] += d.push(t, ch)
        t += ch.shape[0] / sim.layout.fs_hz
        if t >= t1:
            break
    for k, d in dets.items():
        out[k] += d.flush()
    return out
