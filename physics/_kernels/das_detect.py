"""Numba kernels of the streaming DAS detector (arrays in, arrays out; state carried across chunks).

One pass over a chunk ``x[t, c]`` (float32, time-major, the DAS array convention of
:mod:`physics.das_layout`) does, per channel:

1. **Band-pass**: a cascade of second-order sections (``scipy.signal.butter(..., output="sos")``) in
   transposed direct form II, exactly :func:`scipy.signal.sosfilt`'s recursion::

       y     = b0·x + z0
       z0    = b1·x − a1·y + z1
       z1    = b2·x − a2·y

   with the section states ``z[s, 0:2, c]`` carried from one chunk to the next (so a record cut into chunks
   filters exactly as in one piece). Arithmetic in float32.
2. **Window statistics** of the filtered signal ``y`` over consecutive windows of ``win`` samples (a window
   may straddle chunks: the partial sums are carried): ``E = Σ y²`` (band energy), ``D = Σ (y[n] − y[n−1])²``
   (energy of the first difference: for a sine of frequency f, D/E = 4 sin²(π f / fs), so the pair gives the
   RMS frequency), ``Q = Σ y⁴`` (kurtosis ``win·Q/E²``: 1.5 for a sine, 3 for Gaussian noise, large for
   impulses) and ``M = max |y|`` (crest factor ``M²·win/E``).

Channels are processed in blocks of :data:`BLOCK` in parallel (``prange``); within a block the innermost loop
runs over contiguous channels, so it vectorises.

The second kernel, :func:`sta_lta_update`, is the trigger: per channel the ratio of the window energy (STA) to a
robust long-term level (the running median of the window energy, tracked in log space and frozen while the
channel is triggered), with hysteresis.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

#: Channels per parallel block (a multiple of the SIMD width; 256 float32 states per section fit in L1).
BLOCK = 256


@njit(parallel=True, cache=True, fastmath=False)
def bandpass_window_stats(x, sos, z, prev, acc, filled, win, out_e, out_d, out_q, out_m):  # noqa: PLR0913
    """Band-pass ``x`` in place of nothing (``x`` is read only) and accumulate window statistics.

    Parameters
    ----------
    x : float32 (n_time, n_channel)
        The chunk (C-contiguous).
    sos : float32 (n_section, 6)
        Second-order sections ``b0 b1 b2 a0 a1 a2`` with ``a0 = 1``.
    z : float32 (n_section, 2, n_channel)
        Filter states, updated.
    prev : float32 (n_channel,)
        The last filtered sample of every channel (for ``D``), updated.
    acc : float32 (4, n_channel)
        Partial sums of the open window (``E, D, Q, M``), updated.
    filled : int
        Samples already in the open window (``0 <= filled < win``), the same for every channel.
    win : int
        Samples per window.
    out_e, out_d, out_q, out_m : float32 (n_out, n_channel)
        Statistics of the windows completed in this chunk, ``n_out = (filled + n_time) // win``.

    Returns
    -------
    int
        Samples in the open window after the chunk: ``(filled + n_time) % win``.
    """
    n_time, n_ch = x.shape
    n_sec = sos.shape[0]
    n_block = (n_ch + BLOCK - 1) // BLOCK
    for blk in prange(n_block):
        c0 = blk * BLOCK
        c1 = min(c0 + BLOCK, n_ch)
        nb = c1 - c0
        zz = np.empty((n_sec, 2, nb), dtype=np.float32)
        for s in range(n_sec):
            for k in range(2):
                for j in range(nb):
                    zz[s, k, j] = z[s, k, c0 + j]
        pv = prev[c0:c1].copy()
        ae = acc[0, c0:c1].copy()
        ad = acc[1, c0:c1].copy()
        aq = acc[2, c0:c1].copy()
        am = acc[3, c0:c1].copy()
        y = np.empty(nb, dtype=np.float32)
        n = filled
        w = 0
        for t in range(n_time):
            for j in range(nb):
                y[j] = x[t, c0 + j]
            for s in range(n_sec):
                b0 = sos[s, 0]
                b1 = sos[s, 1]
                b2 = sos[s, 2]
                a1 = sos[s, 4]
                a2 = sos[s, 5]
                for j in range(nb):
                    xi = y[j]
                    yi = b0 * xi + zz[s, 0, j]
                    zz[s, 0, j] = b1 * xi - a1 * yi + zz[s, 1, j]
                    zz[s, 1, j] = b2 * xi - a2 * yi
                    y[j] = yi
            for j in range(nb):
                yi = y[j]
                y2 = yi * yi
                dy = yi - pv[j]
                ae[j] += y2
                ad[j] += dy * dy
                aq[j] += y2 * y2
                ay = abs(yi)
                if ay > am[j]:
                    am[j] = ay
                pv[j] = yi
            n += 1
            if n == win:
                for j in range(nb):
                    out_e[w, c0 + j] = ae[j]
                    out_d[w, c0 + j] = ad[j]
                    out_q[w, c0 + j] = aq[j]
                    out_m[w, c0 + j] = am[j]
                    ae[j] = 0.0
                    ad[j] = 0.0
                    aq[j] = 0.0
                    am[j] = 0.0
                w += 1
                n = 0
        for s in range(n_sec):
            for k in range(2):
                for j in range(nb):
                    z[s, k, c0 + j] = zz[s, k, j]
        for j in range(nb):
            prev[c0 + j] = pv[j]
            acc[0, c0 + j] = ae[j]
            acc[1, c0 + j] = ad[j]
            acc[2, c0 + j] = aq[j]
            acc[3, c0 + j] = am[j]
    return (filled + n_time) % win


@njit(parallel=True, cache=True)
def sta_lta_update(energy, log_floor, n_seen, on, step, ratio_on, ratio_off, warmup, floor, ratio, trig):  # noqa: PLR0913
    """STA/LTA trigger over window energies against a robust noise floor, state carried across calls.

    The long-term level is the running **median** of the window energy, tracked in log space by a fixed step
    (``log_floor += step`` when a window lies above it, ``-= step`` below: the stochastic-approximation quantile
    tracker, Robbins & Monro 1951), updated only while the channel is not triggered. Unlike a recursive mean it is
    not dragged up by the few loud windows of an event, and a source lasting minutes raises it by at most
    ``step`` per window.

    Parameters
    ----------
    energy : float32 (n_win, n_channel)
        Window band energies (the STA is one window).
    log_floor : float64 (n_channel,)
        Natural log of the noise floor (the median window energy), updated.
    n_seen : int
        Windows seen before this call (during the first ``warmup`` windows the floor is the running mean of
        ``log(energy)`` and nothing triggers).
    on : bool (n_channel,)
        Trigger state, updated (hysteresis: on at ``ratio >= ratio_on``, off at ``ratio < ratio_off``).
    step : float
        Step of the log floor per window (``window_s / floor_s``).
    ratio_on, ratio_off : float
        Hysteresis thresholds of STA/LTA.
    warmup : int
        Windows of warm-up.
    floor : float
        Smallest noise floor (window energy) a ratio is taken against: a silent channel (no noise at all) does
        not trigger on round-off.
    ratio : float32 (n_win, n_channel)
        Out: STA/LTA of each window (against the floor before the window).
    trig : bool (n_win, n_channel)
        Out: the trigger state of each window.
    """
    n_win, n_ch = energy.shape
    log_min = np.log(floor)
    for c in prange(n_ch):
        lf = log_floor[c]
        st = on[c]
        for w in range(n_win):
            e = energy[w, c]
            le = np.log(max(e, floor))
            k = n_seen + w
            if k < warmup:
                lf = lf + (le - lf) / (k + 1.0)
                ratio[w, c] = 1.0
                trig[w, c] = False
                continue
            r = np.exp(le - max(lf, log_min))
            ratio[w, c] = r
            if st:
                if r < ratio_off:
                    st = False
            elif r >= ratio_on:
                st = True
            trig[w, c] = st
            if not st:
                lf = lf + step if le > lf else lf - step
        log_floor[c] = lf
        on[c] = st
