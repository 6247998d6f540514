"""Signal models of the DAS simulator: source time functions, the train trajectory and the SNR band power.

Every function here is deterministic for its ``numpy.random.Generator`` and returns float64 arrays sampled at
``fs`` Hz with an arbitrary scale (the simulator scales each source to its SNR). Each model states its basis; where
no measured figure was found it is labelled **assumption** and is a parameter.

Source time functions (what a point source near the fibre emits; the simulator spreads it over channels):

- :func:`drilling` -- harmonic bursts: a fundamental f0 (20-200 Hz) with harmonics k*f0 at amplitude 1/k (up to 4,
  below 0.45 fs), f0 wandering by about 1 % (rotation-rate drift), on for 2-8 s then off for 1-4 s, repeated
  (**assumption**: the pattern issue 15 describes; rotary/percussive rigs give line spectra at the rotation or blow
  rate and its harmonics).
- :func:`piling` -- repeated impulses every 0.5-2 s (30-120 blows/min, the range of drop and hydraulic impact
  hammers; **assumption**), each a decaying ring ``exp(-t/tau) sin(2 pi f_r t)`` with f_r 5-30 Hz (the soil-pile
  resonance band issue 15 gives) and about 3 cycles of decay time, blow amplitude +-20 %.
- :func:`excavation` -- broadband noise 1-50 Hz (4th-order Butterworth band-pass) modulated by a digging cycle of
  15-30 s (**assumption**); the simulator moves it along the fibre at 0.5-3 m per minute.
- :func:`intrusion` -- hammering: impacts every 0.3-0.8 s, each a short ring at 60-150 Hz decaying in 20 ms over a
  broadband click (**assumption**).
- :func:`vehicle` -- a road vehicle crossing above the tunnel: a quasi-static pulse (derivative of a Gaussian of
  width ``depth / speed``: the load's strain rises and falls as it passes) plus 5-20 Hz tyre/road vibration under
  the same envelope (**assumption**).
- :func:`train_vibration` -- wheel-rail vibration, band-limited noise 20-100 Hz (the band issue 15 gives).

:func:`train_trajectory` gives a train's head position along the fibre: cruise speed between stations, braking
and accelerating at ``accel`` m/s^2 near a station, stopping ``dwell_s`` there (metro service rates are about
1 m/s^2; **assumption**).
"""

from __future__ import annotations

import numpy as np
from scipy import signal

__all__ = [
    "SNR_BANDS",
    "band_power",
    "drilling",
    "excavation",
    "intrusion",
    "piling",
    "train_trajectory",
    "train_vibration",
    "vehicle",
]

#: Band (Hz) in which a class's SNR is measured; drilling's depends on its fundamental (see :func:`snr_band`).
SNR_BANDS: dict[str, tuple[float, float]] = {
    "piling": (1.0, 50.0),
    "excavation": (1.0, 50.0),
    "intrusion": (20.0, 300.0),
    "vehicle": (0.5, 25.0),
    "train": (20.0, 100.0),
}


def snr_band(cls: str, fs: float, f0_hz: float | None = None) -> tuple[float, float]:
    """The band (Hz) a class's SNR is measured in; drilling: 0.8 f0 to 1.2 times its highest harmonic."""
    if cls == "drilling":
        top = f0_hz * _n_harmonics(f0_hz, fs)
        return 0.8 * f0_hz, min(1.2 * top, 0.49 * fs)
    lo, hi = SNR_BANDS[cls]
    return lo, min(hi, 0.49 * fs)


def band_power(x: np.ndarray, fs: float, f_lo: float, f_hi: float) -> float:
    """Mean power of ``x`` within ``[f_lo, f_hi]`` Hz (Parseval over the real FFT of the whole series)."""
    n = x.size
    spec = np.fft.rfft(x)
    f = np.fft.rfftfreq(n, 1.0 / fs)
    p = np.abs(spec) ** 2 / n**2
    p[1:] *= 2.0
    if n % 2 == 0:
        p[-1] /= 2.0
    return float(p[(f >= f_lo) & (f <= f_hi)].sum())


def _n_harmonics(f0: float, fs: float) -> int:
    return int(max(1, min(4, np.floor(0.45 * fs / f0))))


def _bandpass(x: np.ndarray, fs: float, lo: float, hi: float) -> np.ndarray:
    hi = min(hi, 0.45 * fs)
    sos = signal.butter(4, [lo, hi], btype="bandpass", fs=fs, output="sos")
    return signal.sosfilt(sos, x)


def _ring(n: int, fs: float, f_hz: float, tau_s: float) -> np.ndarray:
    t = np.arange(n) / fs
    return np.exp(-t / tau_s) * np.sin(2.0 * np.pi * f_hz * t)


def _add_impulses(x: np.ndarray, times_s: np.ndarray, amps: np.ndarray, pulse: np.ndarray, fs: float) -> None:
    for t0, a in zip(times_s, amps, strict=True):
        i = int(round(t0 * fs))
        m = min(pulse.size, x.size - i)
        if m > 0:
            x[i:i + m] += a * pulse[:m]


def drilling(rng: np.random.Generator, fs: float, n: int, f0_hz: float | None = None) -> tuple[np.ndarray, float]:
    """Harmonic bursts; returns ``(x, f0_hz)`` (see the module docstring)."""
    f0 = float(rng.uniform(20.0, min(200.0, 0.4 * fs))) if f0_hz is None else float(f0_hz)
    if not 0.0 < f0 < 0.45 * fs:
        raise ValueError(f"drilling f0_hz = {f0!r}: give a fundamental below 0.45 x the sampling rate ({0.45 * fs:g} Hz)")
    t = np.arange(n) / fs
    wander = np.cumsum(rng.standard_normal(n // 100 + 2)) * 0.002
    drift = 1.0 + np.clip(np.interp(t, np.arange(wander.size) * 100 / fs, wander), -0.02, 0.02)
    phase = 2.0 * np.pi * np.cumsum(f0 * drift) / fs
    x = np.zeros(n)
    for k in range(1, _n_harmonics(f0, fs) + 1):
        x += np.sin(k * phase + rng.uniform(0, 2 * np.pi)) / k
    gate = np.zeros(n)
    i, on = 0, True
    while i < n:
        m = int(round((rng.uniform(2.0, 8.0) if on else rng.uniform(1.0, 4.0)) * fs))
        if on:
            gate[i:i + m] = 1.0
        i, on = i + m, not on
    ramp = np.ones(max(1, int(0.05 * fs))) / max(1, int(0.05 * fs))
    return x * np.convolve(gate, ramp, mode="same"), f0


def piling(rng: np.random.Generator, fs: float, n: int) -> np.ndarray:
    """Repeated decaying rings (see the module docstring)."""
    period = rng.uniform(0.5, 2.0)
    f_r = rng.uniform(5.0, 30.0)
    times = np.arange(rng.uniform(0, period), n / fs, period)
    times = np.clip(times + rng.normal(0, 0.02 * period, times.size), 0.0, None)
    pulse = _ring(int(min(period, 5 * 3.0 / f_r) * fs), fs, f_r, 3.0 / f_r)
    x = np.zeros(n)
    _add_impulses(x, times, rng.uniform(0.8, 1.2, times.size), pulse, fs)
    return x


def excavation(rng: np.random.Generator, fs: float, n: int) -> np.ndarray:
    """Broadband 1-50 Hz noise with a digging cycle (see the module docstring)."""
    x = _bandpass(rng.standard_normal(n), fs, 1.0, 50.0)
    cycle = rng.uniform(15.0, 30.0)
    t = np.arange(n) / fs
    return x * (0.3 + np.abs(np.sin(np.pi * t / cycle + rng.uniform(0, np.pi))))


def intrusion(rng: np.random.Generator, fs: float, n: int) -> np.ndarray:
    """Hammering: impact series (see the module docstring)."""
    times = np.cumsum(rng.uniform(0.3, 0.8, int(n / fs / 0.3) + 2))
    times = times[times < n / fs] - times[0]
    f = min(rng.uniform(60.0, 150.0), 0.4 * fs)
    m = int(0.1 * fs)
    pulse = _ring(m, fs, f, 0.02) + 0.5 * _bandpass(rng.standard_normal(m), fs, 20.0, 300.0) * np.exp(-np.arange(m) / (0.01 * fs))
    x = np.zeros(n)
    _add_impulses(x, times, rng.uniform(0.7, 1.3, times.size), pulse, fs)
    return x


def vehicle(rng: np.random.Generator, fs: float, n: int, width_s: float) -> np.ndarray:
    """A road vehicle passing above: quasi-static pulse plus 5-20 Hz vibration (see the module docstring)."""
    t = (np.arange(n) - n / 2) / fs
    g = np.exp(-0.5 * (t / width_s) ** 2)
    pulse = -t / width_s * g
    vib = _bandpass(rng.standard_normal(n), fs, 5.0, 20.0)
    vib /= max(vib.std(), 1e-30)
    return pulse + 0.7 * vib * g


def train_vibration(rng: np.random.Generator, fs: float, n: int) -> np.ndarray:
    """Unit-rms band-limited noise 20-100 Hz (wheel-rail vibration)."""
    pad = int(fs)
    x = _bandpass(rng.standard_normal(n + pad), fs, 20.0, 100.0)[pad:]
    return x / max(x.std(), 1e-30)


def train_trajectory(
    start_m: float,
    end_m: float,
    direction: int,
    speed_m_s: float,
    stops_m: tuple[float, ...] = (),
    *,
    accel: float = 1.0,
    dwell_s: float = 30.0,
    dt: float = 0.05,
    v_min: float = 0.0,
) -> np.ndarray:
    """Head position (m along the fibre) every ``dt`` s from ``start_m`` until it passes ``end_m``.

    Parameters
    ----------
    start_m, end_m : float
        Where the head starts and the position it must pass (``direction`` says which way).
    direction : int
        +1 towards higher positions, -1 towards lower.
    speed_m_s : float
        Cruise speed.
    stops_m : tuple of float
        Where the head stops (a station's stopping point); braking and accelerating at ``accel`` (m/s^2) around
        each (at least ``v_min``), and a dwell of ``dwell_s`` s.
    """
    if not stops_m:
        n = int(np.ceil(abs(end_m - start_m) / speed_m_s / dt)) + 2
        return start_m + direction * speed_m_s * dt * np.arange(n)
    stops = np.asarray(sorted(stops_m, reverse=direction < 0), dtype=float)
    xs = [start_m]
    x, v, nxt = start_m, 0.0 + speed_m_s, 0
    while (end_m - x) * direction > 0:
        ahead = stops[nxt:]
        v_brake = speed_m_s
        if ahead.size:
            gap = (ahead[0] - x) * direction
            v_brake = np.sqrt(2.0 * accel * max(gap, 0.0)) + v_min
        v = min(speed_m_s, v + accel * dt, v_brake)
        x += direction * v * dt
        if ahead.size and (ahead[0] - x) * direction <= 0:
            x = ahead[0]
            xs.extend([x] * int(round(dwell_s / dt)))
            v, nxt = 0.0, nxt + 1
        xs.append(x)
    xs.append(x + direction * speed_m_s * dt)
    return np.asarray(xs)
