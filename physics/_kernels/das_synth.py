"""Numba kernels of the DAS simulator: add noise and moving or point sources into a block of strain rate.

Every kernel adds into ``out`` (float32, shape ``(n_time, n_channel)``, time-major) in place and returns nothing.
``i0`` is the global sample index of ``out[0]``, so a source's own time axis lines up whatever block it is added to.
:func:`white_noise` makes a block. The numpy reference of each kernel is ``tests/physics/das_synth_reference.py``.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit


@njit(cache=True)
def white_noise(rng: np.random.Generator, n_time: int, n_channel: int, sigma: float) -> np.ndarray:
    """A float32 block ``(n_time, n_channel)`` of N(0, sigma^2): ``float32(rng.standard_normal() * sigma)``.

    numba's ``Generator.standard_normal()`` is numpy's float64 ziggurat on the same bit generator: the block equals
    ``(rng.standard_normal((n_time, n_channel)) * sigma).astype(float32)`` bit for bit (tested) and takes about 0.6 x
    the time of numpy's own float32 draw (no per-sample call through the bit generator's function pointer).
    (numba's float32 draw is not used: it falls out of step with numpy's about once in 4e7 samples.)
    """
    out = np.empty((n_time, n_channel), dtype=np.float32)
    for t in range(n_time):
        for c in range(n_channel):
            out[t, c] = rng.standard_normal() * sigma
    return out


@njit(cache=True)
def add_knots(out: np.ndarray, knots: np.ndarray, step: int) -> None:
    """Add a per-channel series given at knots every ``step`` samples, linearly interpolated.

    ``knots[k, c]`` is the value at sample ``k * step`` of the block (``knots`` has ``n_time // step + 1`` rows,
    row 0 being the last knot of the previous block, so the series is continuous across blocks).
    """
    nt, nc = out.shape
    inv = 1.0 / step
    for t in range(nt):
        k = t // step
        w = (t - k * step) * inv
        for c in range(nc):
            out[t, c] += knots[k, c] * (1.0 - w) + knots[k + 1, c] * w


@njit(cache=True)
def add_train(out: np.ndarray, i0: int, i_train: int, fs: float, dx: float, gain: np.ndarray,
              traj_x: np.ndarray, traj_dt: float, direction: int, bogies: np.ndarray, eps: float, sigma_m: float,
              vib: np.ndarray, vib_amp: float, v_ref: float, decay_m: float, length_m: float, shift: int) -> None:
    """Add one train: moving-load strain rate of its bogies plus wheel-rail vibration travelling with it.

    The head is at ``traj_x`` (m along the fibre from channel 0) sampled every ``traj_dt`` s from global sample
    ``i_train``; it moves in ``direction`` (+1: towards higher channels). Each bogie, ``bogies[b]`` m behind the
    head, is a Gaussian strain bump ``eps * exp(-u**2 / 2)``, ``u = (x - x_b) / sigma_m``, whose strain rate at a
    fixed channel is ``eps * exp(-u**2/2) * u / sigma_m * dx_b/dt``. The vibration is ``vib`` (unit rms) read with
    a lag of ``shift * channel`` samples per channel (so channels are incoherent), times ``vib_amp * |v| / v_ref``,
    times 1 under the train and ``exp(-d / decay_m)`` at distance ``d`` beyond its ends. ``gain`` is the coupling.
    """
    nt, nc = out.shape
    nk = traj_x.size
    nv = vib.size
    reach = 4.0 * sigma_m
    for t in range(nt):
        tau = (i0 + t - i_train) / fs
        if tau < 0.0:
            continue
        kf = tau / traj_dt
        k = int(kf)
        if k >= nk - 1:
            break
        w = kf - k
        xh = traj_x[k] * (1.0 - w) + traj_x[k + 1] * w
        vel = (traj_x[k + 1] - traj_x[k]) / traj_dt
        for b in range(bogies.size):
            xb = xh - direction * bogies[b]
            c0 = max(0, int(math.ceil((xb - reach) / dx)))
            c1 = min(nc - 1, int(math.floor((xb + reach) / dx)))
            for c in range(c0, c1 + 1):
                u = (c * dx - xb) / sigma_m
                out[t, c] += gain[c] * eps * math.exp(-0.5 * u * u) * u / sigma_m * vel
        amp = vib_amp * abs(vel) / v_ref
        if amp == 0.0:
            continue
        lo = min(xh, xh - direction * length_m)
        hi = max(xh, xh - direction * length_m)
        c0 = max(0, int(math.ceil((lo - 6.0 * decay_m) / dx)))
        c1 = min(nc - 1, int(math.floor((hi + 6.0 * decay_m) / dx)))
        j = (i0 + t - i_train + shift * c0) % nv
        step = shift % nv
        for c in range(c0, c1 + 1):
            x = c * dx
            d = max(0.0, max(lo - x, x - hi))
            # exp(-0) is 1 exactly: under the train the factor is skipped (same bits)
            a = gain[c] * amp * math.exp(-d / decay_m) if d > 0.0 else gain[c] * amp
            out[t, c] += a * vib[j]
            j += step
            if j >= nv:
                j -= nv


@njit(cache=True)
def add_point(out: np.ndarray, i0: int, src: np.ndarray, i_src: int, ch0: int, amp: np.ndarray,
              delay: np.ndarray, gain: np.ndarray) -> None:
    """Add a point source seen on channels ``ch0 .. ch0 + amp.size - 1``.

    ``out[t, ch0 + j] += gain[ch0 + j] * amp[j] * src[i0 + t - i_src - delay[j]]`` where that index lies in
    ``src`` (the source time function starts at global sample ``i_src``; ``delay`` is the travel-time lag in samples).
    """
    nt = out.shape[0]
    ns = src.size
    for t in range(nt):
        base = i0 + t - i_src
        for j in range(amp.size):
            k = base - delay[j]
            if k >= 0 and k < ns:
                c = ch0 + j
                out[t, c] += gain[c] * amp[j] * src[k]
