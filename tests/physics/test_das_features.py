"""Features of DAS events (physics.das_features) against closed forms, and the class rules on clear cases."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.signal

from physics._kernels.das_detect import bandpass_window_stats
from physics.das_features import classify, envelope_periodicity, moveout_speed, rms_frequency

FS = 1000.0


def _window_stats(x: np.ndarray, win: int = 100):
    sos = scipy.signal.butter(2, (3.0, 200.0), btype="bandpass", fs=FS, output="sos").astype(np.float32)
    n_ch = x.shape[1]
    z = np.zeros((sos.shape[0], 2, n_ch), np.float32)
    outs = [np.zeros((x.shape[0] // win, n_ch), np.float32) for _ in range(4)]
    bandpass_window_stats(np.ascontiguousarray(x, np.float32), sos, z, np.zeros(n_ch, np.float32),
                          np.zeros((4, n_ch), np.float32), 0, win, *outs)
    return outs


def test_rms_frequency_and_kurtosis_of_a_sine():
    """For y = sin(2πfn/fs): Σ(y[n]−y[n−1])² / Σy² = 4 sin²(πf/fs), so the RMS frequency is f; the kurtosis
    win·Σy⁴/(Σy²)² of a window of whole periods is E[sin⁴]/E[sin²]² = (3/8)/(1/4)² = 1.5; the crest factor
    M²·win/E is 2, less the sampling of the peak (the largest sample lies within cos(π f/fs) of the crest: 0.8 % at
    40 Hz and 1 kHz). Windows after the filter's transient (1 s); float32 sums: 1e-3."""
    t = np.arange(4000) / FS
    x = np.sin(2 * np.pi * 40.0 * t)[:, None] * np.ones((1, 3))
    e, d, q, m = _window_stats(x)
    k = slice(10, None)
    assert rms_frequency(float(d[k, 0].sum()), float(e[k, 0].sum()), FS) == pytest.approx(40.0, rel=1e-3)
    assert np.median(100 * q[k, 0] / e[k, 0] ** 2) == pytest.approx(1.5, rel=1e-3)
    assert np.median(m[k, 0] ** 2 * 100 / e[k, 0]) == pytest.approx(2.0, rel=0.016)


def test_envelope_periodicity_finds_the_blow_period():
    env = np.zeros(200)
    env[3::12] = 1.0  # a blow every 1.2 s in 0.1 s windows
    r, period = envelope_periodicity(env, 0.1)
    assert period == pytest.approx(1.2)
    assert r > 0.9
    assert envelope_periodicity(np.ones(50), 0.1) == (0.0, 0.0)


def _moving(speed_ch_per_w: float, n_w: int = 60, width: int = 30):
    slices = []
    for w in range(n_w):
        centre = 100 + speed_ch_per_w * w
        c = np.arange(int(centre) - width, int(centre) + width)
        slices.append((w, int(c[0]), np.exp(-0.5 * ((c - centre) / 8.0) ** 2)))
    return slices


def test_moveout_speed_of_a_moving_and_a_still_source():
    """A Gaussian energy bump moving 2 channels per 0.1 s window (1 m channels) moves at 20 m/s: each channel's
    mean time grows by 1/20 s per m. Channels near the ends of the path see the bump only in part (their mean
    times are biased towards the middle): 5 % over 6 s of track, 0.5 % over 20 s. A still bump gives 0."""
    assert moveout_speed(_moving(2.0), 0.1, 1.0) == pytest.approx(20.0, rel=0.06)
    assert moveout_speed(_moving(2.0, 200), 0.1, 1.0) == pytest.approx(20.0, rel=0.006)
    assert moveout_speed(_moving(-1.5, 200), 0.1, 1.0) == pytest.approx(-15.0, rel=0.01)
    assert moveout_speed(_moving(0.0), 0.1, 1.0) == 0.0


def _f(**kw) -> dict[str, float]:
    base = dict(duration_s=10.0, extent_m=30.0, width_m=20.0, speed_mps=0.0, frequency_hz=60.0, kurtosis=2.3,
                crest=4.5, periodicity=0.2, period_s=0.4, fill=1.0, envelope_cv=0.5, snr_db=15.0)
    return {**base, **kw}


#: Median features of the labelled reports of simulator seeds 1–3 per class (what the naive Bayes was fitted on).
MEDIANS = {
    "drilling": _f(duration_s=9.1, extent_m=69.0, width_m=69.0, frequency_hz=132.0, kurtosis=1.88, crest=3.5,
                   periodicity=0.67, period_s=0.4, fill=1.0, envelope_cv=0.19),
    "excavation": _f(duration_s=10.0, extent_m=30.5, width_m=22.5, frequency_hz=50.0, kurtosis=2.36, crest=4.48,
                     periodicity=0.58, period_s=0.4, fill=1.0, envelope_cv=0.63),
    "intrusion": _f(duration_s=6.6, extent_m=81.0, width_m=40.5, frequency_hz=95.0, kurtosis=6.06, crest=12.55,
                    periodicity=0.24, period_s=0.7, fill=0.48, envelope_cv=0.99),
    "piling": _f(duration_s=10.0, extent_m=89.5, width_m=52.0, frequency_hz=31.7, kurtosis=2.04, crest=3.78,
                 periodicity=0.82, period_s=1.5, fill=0.66, envelope_cv=0.99),
}


@pytest.mark.parametrize(("features", "expected"), [
    (_f(speed_mps=18.0, extent_m=300.0, width_m=150.0), "train"),
    (_f(speed_mps=-16.0, extent_m=70.0, width_m=60.0), "train"),
    (_f(duration_s=1.2, kurtosis=2.5), "vehicle"),
    *((f, c) for c, f in MEDIANS.items()),
])
def test_classes_of_clear_cases(features, expected):
    cls, conf = classify(features)
    assert cls == expected
    assert 0.5 <= conf <= 0.99


def test_a_moving_impulsive_source_is_never_an_intrusion():
    """Train rejection: the intrusion class needs a still source, whatever its impulsiveness."""
    moving = {**MEDIANS["intrusion"], "speed_mps": 12.0, "extent_m": 50.0}
    assert classify(moving)[0] != "intrusion"
