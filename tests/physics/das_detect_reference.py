"""Numpy/scipy reference of the DAS detector's kernels (:mod:`physics._kernels.das_detect`), step by step.

Written for clarity, in float64: ``scipy.signal.sosfilt`` with its ``zi`` carried across chunks, window sums by
reshaping, the STA/LTA recursion as a plain loop. The tests compare the kernels to it; ``bench/bench_das.py``
times it on the same data.
"""

from __future__ import annotations

import numpy as np
import scipy.signal


class ReferenceBandStats:
    """Band-pass + window statistics (``E, D, Q, M``) of chunks, state carried like the kernel's."""

    def __init__(self, sos: np.ndarray, n_channel: int, win: int) -> None:
        self.sos = np.asarray(sos, dtype=np.float64)
        self.zi = np.zeros((self.sos.shape[0], 2, n_channel))
        self.prev = np.zeros(n_channel)
        self.win = win
        self.tail = np.zeros((0, n_channel))  # filtered samples of the open window
        self.tail_prev = np.zeros(n_channel)  # the sample before the open window

    def push(self, x: np.ndarray) -> tuple[np.ndarray, ...]:
        y, self.zi = scipy.signal.sosfilt(self.sos, np.asarray(x, dtype=np.float64), axis=0, zi=self.zi)
        y = np.concatenate([self.tail, y])
        before = np.concatenate([self.tail_prev[None, :], y[:-1]])
        n_out = y.shape[0] // self.win
        used = n_out * self.win
        yy = y[:used].reshape(n_out, self.win, -1)
        dd = (y[:used] - before[:used]).reshape(n_out, self.win, -1)
        e = (yy**2).sum(axis=1)
        d = (dd**2).sum(axis=1)
        q = (yy**4).sum(axis=1)
        m = np.abs(yy).max(axis=1) if n_out else np.zeros((0, y.shape[1]))
        self.tail_prev = before[used] if used < y.shape[0] else y[used - 1]
        self.tail = y[used:]
        return e, d, q, m


def sta_lta_reference(energy, log_floor, n_seen, on, step, ratio_on, ratio_off, warmup, floor):
    """The trigger of :func:`physics._kernels.das_detect.sta_lta_update` (running-median floor in log space),
    one channel and window at a time; returns ``(ratio, trig, log_floor, on)`` (new arrays)."""
    lf = np.array(log_floor, dtype=np.float64)
    on = np.array(on, dtype=bool)
    n_win, n_ch = energy.shape
    ratio = np.ones((n_win, n_ch))
    trig = np.zeros((n_win, n_ch), dtype=bool)
    for c in range(n_ch):
        for w in range(n_win):
            le = np.log(max(float(energy[w, c]), floor))
            k = n_seen + w
            if k < warmup:
                lf[c] += (le - lf[c]) / (k + 1)
                continue
            r = np.exp(le - max(lf[c], np.log(floor)))
            ratio[w, c] = r
            on[c] = (r >= ratio_off) if on[c] else (r >= ratio_on)
            trig[w, c] = on[c]
            if not on[c]:
                lf[c] += step if le > lf[c] else -step
    return ratio, trig, lf, on
