"""Numpy references of the DAS simulator's kernels (``physics/_kernels/das_synth.py``), written from their docstrings."""

from __future__ import annotations

import numpy as np


def white_noise(rng: np.random.Generator, n_time: int, n_channel: int, sigma: float) -> np.ndarray:
    return (rng.standard_normal((n_time, n_channel)) * sigma).astype(np.float32)


def add_knots(out: np.ndarray, knots: np.ndarray, step: int) -> None:
    t = np.arange(out.shape[0])
    k = t // step
    w = ((t - k * step) / step)[:, None]
    out += (knots[k] * (1.0 - w) + knots[k + 1] * w).astype(out.dtype)


def add_train(out, i0, i_train, fs, dx, gain, traj_x, traj_dt, direction, bogies, eps, sigma_m, vib, vib_amp,
              v_ref, decay_m, length_m, shift) -> None:
    nt, nc = out.shape
    x = np.arange(nc) * dx
    for t in range(nt):
        tau = (i0 + t - i_train) / fs
        if tau < 0:
            continue
        kf = tau / traj_dt
        k = int(kf)
        if k >= traj_x.size - 1:
            break
        w = kf - k
        xh = traj_x[k] * (1 - w) + traj_x[k + 1] * w
        vel = (traj_x[k + 1] - traj_x[k]) / traj_dt
        for b in bogies:
            u = (x - (xh - direction * b)) / sigma_m
            near = np.abs(u) <= 4.0
            out[t, near] += (gain * eps * np.exp(-0.5 * u**2) * u / sigma_m * vel)[near]
        lo, hi = sorted((xh, xh - direction * length_m))
        d = np.maximum(0.0, np.maximum(lo - x, x - hi))
        near = d <= 6.0 * decay_m
        lag = (i0 + t - i_train + shift * np.arange(nc)) % vib.size
        out[t, near] += (gain * vib_amp * abs(vel) / v_ref * np.exp(-d / decay_m) * vib[lag])[near]


def add_point(out, i0, src, i_src, ch0, amp, delay, gain) -> None:
    nt = out.shape[0]
    for j in range(amp.size):
        k = i0 + np.arange(nt) - i_src - delay[j]
        ok = (k >= 0) & (k < src.size)
        out[ok, ch0 + j] += gain[ch0 + j] * amp[j] * src[k[ok]]
