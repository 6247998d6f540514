"""The streaming DAS detector (physics.das_detect and its kernels) against scipy, a numpy reference and
closed-form synthetic sources."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
import scipy.signal

from physics._kernels.das_detect import bandpass_window_stats, sta_lta_update
from physics.das_detect import DasDetector, DetectorParams, subchannel_peak, supported_peak
from physics.das_layout import FibreLayout
from tests.physics.das_detect_reference import ReferenceBandStats, sta_lta_reference
from twin.errors import ValidationError

FS = 1000.0


def ricker(t: np.ndarray, f_hz: float) -> np.ndarray:
    """Ricker wavelet of peak frequency ``f_hz`` centred on t = 0 (Ricker 1953; the second derivative of a
    Gaussian, ``(1 − 2π²f²t²)·exp(−π²f²t²)``)."""
    a = (np.pi * f_hz * t) ** 2
    return (1.0 - 2.0 * a) * np.exp(-a)


def _kernel_chunks(x: np.ndarray, cuts: list[int], sos: np.ndarray, win: int):
    n_ch = x.shape[1]
    z = np.zeros((sos.shape[0], 2, n_ch), np.float32)
    prev = np.zeros(n_ch, np.float32)
    acc = np.zeros((4, n_ch), np.float32)
    filled, outs_all = 0, [[], [], [], []]
    for a, b in zip([0, *cuts], [*cuts, x.shape[0]], strict=True):
        n_out = (filled + b - a) // win
        outs = [np.zeros((n_out, n_ch), np.float32) for _ in range(4)]
        filled = bandpass_window_stats(np.ascontiguousarray(x[a:b]), sos.astype(np.float32), z, prev, acc, filled,
                                       win, *outs)
        for k in range(4):
            outs_all[k].append(outs[k])
    return [np.concatenate(o) for o in outs_all], z


def test_bandpass_matches_scipy_sosfilt_across_chunks():
    """The fused kernel's filter is scipy.signal.sosfilt's transposed direct form II: chunked with carried state
    it gives sosfilt's final state ``zf`` of the whole record, to float32 round-off (1e-5 relative)."""
    rng = np.random.default_rng(3)
    sos = scipy.signal.butter(2, (5.0, 200.0), btype="bandpass", fs=FS, output="sos")
    x = rng.standard_normal((2300, 300)).astype(np.float32)
    (_e, _d, _q, _m), z = _kernel_chunks(x, [137, 1000, 1001], sos, 100)
    _, zf = scipy.signal.sosfilt(sos, x.astype(np.float64), axis=0, zi=np.zeros((2, 2, 300)))
    np.testing.assert_allclose(z, zf, rtol=1e-4, atol=1e-5 * np.abs(zf).max())


def test_window_statistics_match_numpy_reference():
    """E, D, Q, M of every window equal the float64 numpy reference (tests/physics/das_detect_reference.py),
    whatever the chunking (windows straddle chunks); float32 sums of 100 terms: 1e-4 relative."""
    rng = np.random.default_rng(4)
    sos = scipy.signal.butter(3, (10.0, 150.0), btype="bandpass", fs=FS, output="sos")
    x = rng.standard_normal((1750, 257)).astype(np.float32)
    got, _ = _kernel_chunks(x, [1, 333, 334, 999], sos, 100)
    ref = ReferenceBandStats(sos, 257, 100)
    parts = [ref.push(x[a:b]) for a, b in ((0, 500), (500, 1203), (1203, 1750))]
    want = [np.concatenate([p[k] for p in parts]) for k in range(4)]
    assert got[0].shape == (17, 257)
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w, rtol=2e-4)


def test_sta_lta_kernel_matches_reference():
    rng = np.random.default_rng(5)
    e = rng.chisquare(40, size=(400, 50)).astype(np.float32)
    e[200:210, 7] *= 20.0
    e[300:305, 20:25] *= 10.0
    args = (0.01, 5.0, 2.0, 30, 1e-30)
    lta, on = np.zeros(50), np.zeros(50, bool)
    ratio = np.empty_like(e)
    trig = np.empty(e.shape, bool)
    sta_lta_update(e[:150], lta, 0, on, *args, ratio[:150], trig[:150])
    sta_lta_update(e[150:], lta, 150, on, *args, ratio[150:], trig[150:])
    r_ref, t_ref, lta_ref, on_ref = sta_lta_reference(e, np.zeros(50), 0, np.zeros(50, bool), *args)
    np.testing.assert_allclose(ratio, r_ref, rtol=1e-5)
    np.testing.assert_array_equal(trig, t_ref)
    np.testing.assert_allclose(lta, lta_ref, rtol=1e-9)
    assert trig[200, 7] and trig[300, 22] and not trig[100].any()


def _detect(x: np.ndarray, layout: FibreLayout, chunk: int, params: DetectorParams | None = None):
    det = DasDetector(layout, params)
    return det.run((i / layout.fs_hz, x[i:i + chunk]) for i in range(0, x.shape[0], chunk)), det


def test_sta_lta_trigger_time_on_a_ricker_wavelet():
    """A 30 Hz Ricker wavelet arriving at t = 12.34 s in white noise (SNR 30 dB of window energy) triggers in
    the window holding its arrival: the trigger's time resolution is one window (0.1 s), the STA length
    (Trnkoczy 2012, IASPEI NMSOP-2 IS 8.1: an STA/LTA picks to within its STA window). One window long, so the
    isolated-window filter (``min_windows``) is set to 1 here."""
    rng = np.random.default_rng(6)
    layout = FibreLayout(n_channel=64, fs_hz=FS)
    t = np.arange(int(20 * FS)) / FS
    x = (1e-9 * rng.standard_normal((t.size, 64))).astype(np.float32)
    x[:, 30] += (3e-8 * ricker(t - 12.34, 30.0)).astype(np.float32)
    events, _ = _detect(x, layout, 250, DetectorParams(min_windows=1))
    assert len(events) == 1
    ev = events[0]
    assert abs(ev.onset_s - 12.34) <= 0.1
    assert round(ev.channel) == 30


def test_localisation_of_a_point_source_without_noise():
    """A stationary source between channels (at channel 140.3, Gaussian attenuation along the fibre with a 6 m
    scale, 1 m channels, no noise) is located within one channel: the parabola through the log energies is exact
    for a Gaussian energy profile (so the error here is round-off)."""
    layout = FibreLayout(n_channel=300, fs_hz=FS, chainage0_m=2000.0, direction=-1)
    t = np.arange(int(8 * FS)) / FS
    ch = np.arange(300)
    src = np.sin(2 * np.pi * 45.0 * t) * ((t > 5.0) & (t < 6.0))
    x = (1e-8 * src[:, None] * np.exp(-0.5 * ((ch - 140.3) / 6.0) ** 2)[None, :]).astype(np.float32)
    x += (1e-13 * np.sin(2 * np.pi * 77.0 * t))[:, None].astype(np.float32)  # a floor for the LTA, 100 dB below
    events, _ = _detect(x, layout, 1000)
    assert len(events) == 1
    assert abs(events[0].channel - 140.3) < 0.05
    assert abs(events[0].chainage_m - (2000.0 - 140.3)) < 0.05


def test_subchannel_peak_is_exact_for_a_gaussian():
    c = np.arange(20)
    e = np.exp(-0.5 * ((c - 9.37) / 2.0) ** 2)
    assert subchannel_peak(e, int(np.argmax(e))) == pytest.approx(9.37, abs=1e-9)
    assert subchannel_peak(e, 0) == 0.0


def test_supported_peak_ignores_a_brief_loud_passage():
    """A source at channel 150 peaks in 60 windows (0-59); a passage 100x louder crosses channels 300-310 in the
    last 10 windows (60-69). The summed energy peaks on the passage, the windows on the source: the event is placed
    at the source. Kept at the energy peak: the same passage in the middle of the event (a source recurring
    through it), one source, the rule off (ratio 0), the two places within 2 radii."""
    c0 = 100
    c = np.arange(c0, c0 + 300)
    source = 60 * np.exp(-0.5 * ((c - 150) / 5.0) ** 2)
    energy = source + 10 * 100 * np.exp(-0.5 * ((c - 305) / 5.0) ** 2)
    peaks = np.r_[np.full(60, 150) + np.tile([-2, 0, 1, 2], 15), np.arange(300, 310)]
    w = np.arange(70)
    assert c0 + int(np.argmax(energy)) == 305
    assert c0 + supported_peak(energy, c0, peaks, w, 10, 0.5, 30) == 150
    mid = np.r_[np.arange(30), np.arange(40, 70), np.arange(30, 40)]  # the passage in windows 30-39
    assert supported_peak(energy, c0, peaks, mid, 10, 0.5, 30) == 205
    assert supported_peak(energy, c0, peaks, w, 10, 0.0, 30) == 205
    assert supported_peak(source, c0, peaks[:60], w[:60], 10, 0.5, 30) == 50
    near = np.r_[np.full(60, 290), np.arange(300, 310)]  # 15 channels apart: within 2 radii, kept
    assert supported_peak(energy, c0, near, w, 10, 0.5, 30) == 205
    with pytest.raises(ValidationError, match="peak_support_ratio"):
        DetectorParams(peak_support_ratio=1.5)


def test_events_do_not_depend_on_the_chunking():
    rng = np.random.default_rng(8)
    layout = FibreLayout(n_channel=128, fs_hz=FS)
    t = np.arange(int(15 * FS)) / FS
    x = (1e-9 * rng.standard_normal((t.size, 128))).astype(np.float32)
    x[:, 60:64] += (2e-8 * ricker(t - 9.0, 25.0))[:, None].astype(np.float32)
    a, _ = _detect(x, layout, 1000)
    b, _ = _detect(x, layout, 333)
    assert [(e.onset_s, round(e.channel, 4), e.event_class) for e in a] == \
        [(e.onset_s, round(e.channel, 4), e.event_class) for e in b]


def test_memory_does_not_grow_with_the_number_of_chunks():
    """300 chunks of noise with a burst every 3 s: memory traced after 100 chunks and after 300 differs by less
    than one chunk's size (the state is per channel plus tracks of at most max_duration_s)."""
    rng = np.random.default_rng(9)
    layout = FibreLayout(n_channel=500, fs_hz=FS)
    det = DasDetector(layout)
    base = (1e-9 * rng.standard_normal((200, 500))).astype(np.float32)
    burst = base.copy()
    burst[20:180, 200:210] += (1e-7 * np.sin(2 * np.pi * 40.0 * np.arange(160) / FS))[:, None].astype(np.float32)

    def feed(k0: int, k1: int) -> None:
        for k in range(k0, k1):
            det.push(k * 0.2, burst if k % 15 == 0 else base)

    feed(0, 20)
    tracemalloc.start()
    feed(20, 100)
    m100 = tracemalloc.take_snapshot()
    feed(100, 300)
    m300 = tracemalloc.take_snapshot()
    tracemalloc.stop()
    grown = sum(s.size_diff for s in m300.compare_to(m100, "filename"))
    assert grown < base.nbytes
    assert det.stats["events"] >= 10


def test_the_detector_refuses_bad_chunks_and_params():
    layout = FibreLayout(n_channel=10, fs_hz=FS)
    det = DasDetector(layout)
    with pytest.raises(ValidationError, match="n_channel=10"):
        det.push(0.0, np.zeros((100, 11), np.float32))
    det.push(0.0, np.zeros((100, 10), np.float32))
    with pytest.raises(ValidationError, match="without gaps"):
        det.push(5.0, np.zeros((100, 10), np.float32))
    with pytest.raises(ValidationError, match="bands"):
        DetectorParams(bands=((50.0, 10.0),))
    with pytest.raises(ValidationError, match="Nyquist"):
        DasDetector(FibreLayout(n_channel=10, fs_hz=200.0))
    assert DetectorParams().latency_s == pytest.approx(12.6)


def test_twin_tunnel_detect_on_a_simulated_file(tmp_path):
    """`twin tunnel simulate` then `twin tunnel detect FILE`: events.csv, events.nc and summary.json agree, and
    the metrics against the truth file beside the record are in the summary."""
    import json

    import pandas as pd
    from click.testing import CliRunner

    from twin.cli import main

    sim = CliRunner().invoke(main, ["tunnel", "simulate", "--out", str(tmp_path / "sim"), "--km", "0.3",
                                    "--minutes", "0.75", "--events", "2", "--seed", "5"], catch_exceptions=False)
    assert sim.exit_code == 0, sim.output
    out = tmp_path / "det"
    r = CliRunner().invoke(main, ["tunnel", "detect", str(tmp_path / "sim" / "das.nc"), "--out", str(out),
                                  "--no-locate"], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    summary = json.loads((out / "summary.json").read_text())
    events = pd.read_csv(out / "events.csv")
    assert summary["events"] == len(events)
    assert summary["channels"] == 300 and summary["detector"]["latency_s"] == pytest.approx(12.6)
    assert "metrics" in summary and summary["metrics"]["n_truth"] >= 1
    assert not (out / "events.geojson").exists() and not (out / "map.html").exists()  # nothing placed: no map
    bad = CliRunner().invoke(main, ["tunnel", "detect", "--out", str(out)])
    assert bad.exit_code != 0 and "--live" in bad.output


def test_metrics_meet_the_targets_on_a_small_unseen_set():
    """Issue 15's targets on a small simulated set the tuning never saw (seed 101, noise density 7e-9 against the
    tuning's 5e-9 1/s/√Hz, default trains and road traffic): the four injected events (one per class, 18 dB)
    detected (≥ 95 % of four), no false alarm (the rate target, ≤ 1 per km per day, allows 0.003 in 1 km × 4
    min), median localisation ≤ 5 m, no train reported as an alerting class. At 15 dB the excavation (broadband
    1–50 Hz, 5 m off the fibre) peaks at 11.6 dB of STA/LTA, under the 12 dB reporting threshold, and is missed:
    the limit the report states. The detection rule and rates are those of physics.das_metrics.evaluate; the
    full table (a larger set, 10 dB and up) is bench/bench_das.py's."""
    from physics.das_metrics import evaluate
    from physics.das_simulate import DasSimulator, EventSpec, SimConfig

    layout = FibreLayout(n_channel=1000, line="1")
    events = [EventSpec("drilling", 200.0, 6.0, 20.0, 120.0, 18.0, f0_hz=60.0),
              EventSpec("piling", 450.0, 8.0, 40.0, 200.0, 18.0),
              EventSpec("excavation", 700.0, 5.0, 30.0, 220.0, 18.0),
              EventSpec("intrusion", 880.0, 4.0, 100.0, 115.0, 18.0)]
    sim = DasSimulator(layout, 240.0, 101, SimConfig(noise_density=7e-9), events=events)
    det = DasDetector(layout)
    found, t = [], 0.0
    for chunk in sim.chunks(2.0):
        found += det.push(t, chunk)
        t += chunk.shape[0] / layout.fs_hz
    found += det.flush()
    m = evaluate(found, sim.truth, n_channel=1000, dx_m=1.0, duration_s=240.0, min_snr_db=10.0)
    assert m["n_target_above_snr"] == 4
    assert m["detection_rate"] >= 0.95
    assert m["false_alarms"] == 0
    assert m["localisation_median_m"] <= 5.0
    assert m["trains_reported_as_alerting"] == 0


def test_events_are_placed_along_their_metro_line(twin_data, tmp_path):
    """With the metro data, `twin tunnel detect` places each event on line 1 at its chainage
    (physics.tunnel_geometry's locator) and writes events.geojson; the points lie in Shenzhen."""
    import json

    from click.testing import CliRunner

    from twin.cli import main

    sim = CliRunner().invoke(main, ["tunnel", "simulate", "--out", str(tmp_path / "sim"), "--km", "0.3",
                                    "--minutes", "0.75", "--events", "2", "--seed", "5", "--line", "1",
                                    "--chainage0", "1500"], catch_exceptions=False)
    assert sim.exit_code == 0, sim.output
    r = CliRunner().invoke(main, ["tunnel", "detect", str(tmp_path / "sim" / "das.nc"), "--out",
                                  str(tmp_path / "det")], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    gj = json.loads((tmp_path / "det" / "events.geojson").read_text())
    assert gj["features"]
    for f in gj["features"]:
        lon, lat = f["geometry"]["coordinates"]
        assert 113.7 < lon < 114.7 and 22.4 < lat < 22.9
        assert 1500.0 <= f["properties"]["chainage_m"] <= 1800.0
    import xarray as xr

    from physics.das_detect_run import detect_layers

    layers = detect_layers(xr.open_dataset(tmp_path / "det" / "events.nc"))
    assert len(layers) == 1 and len(layers[0].layers[0]["data"]) == len(gj["features"])


def test_twin_tunnel_detect_draws_the_placed_events_on_a_map(tmp_path, twin_data):
    """Events placed on Line 1 (the real metro data) go on map.html over the city's basemap, one point each."""
    import json

    from click.testing import CliRunner

    from twin.cli import main

    sim = CliRunner().invoke(main, ["tunnel", "simulate", "--out", str(tmp_path / "sim"), "--km", "0.3",
                                    "--minutes", "0.75", "--events", "2", "--seed", "5", "--chainage0", "8800"],
                             catch_exceptions=False)
    assert sim.exit_code == 0, sim.output
    out = tmp_path / "det"
    r = CliRunner().invoke(main, ["tunnel", "detect", str(tmp_path / "sim" / "das.nc"), "--out", str(out)],
                           catch_exceptions=False)
    assert r.exit_code == 0, r.output
    placed = json.loads((out / "events.geojson").read_text())["features"]
    assert placed, "the injected events are found and placed"
    page = (out / "map.html").read_text()
    assert "tunnel_das_events" in page and "metro" in page.lower()


def test_a_lasting_source_is_kept_from_10_db() -> None:
    """Metrics seed 21 (tuning data): the drilling at channel 928 (10.8 dB at unit coupling, gain 0.71 there: 7.8 dB
    as recorded; 155.5-194.1 s) reaches 10.3-10.5 dB of STA/LTA over 4-10 s and was dropped under the 12 dB of
    ``min_snr_db``. Kept from ``min_snr_long_db`` = 10 dB once 40 windows triggered, it is reported (a non-train
    event within 25 m while it lasts); with ``long_windows = 0`` it is not."""
    from physics.das_simulate import DasSimulator, SimConfig

    lay = FibreLayout(n_channel=3000, line="1")
    sim = DasSimulator(lay, 1200.0, 21, SimConfig(noise_density=7e-9), n_events=24)
    dr = sim.truth[(sim.truth["class"] == "drilling") & (sim.truth["channel"] == 928)].iloc[0]
    assert dr["snr_db"] == pytest.approx(10.8, abs=0.1)
    dets = {"long": DasDetector(lay), "off": DasDetector(lay, DetectorParams(long_windows=0))}
    out = {k: [] for k in dets}
    t = 140.0
    for ch in sim.chunks(1.0, start_s=140.0):
        for k, d in dets.items():
            out[k] += d.push(t, ch)
        t += 1.0
        if t >= 186.0:
            break
    for k, d in dets.items():
        out[k] += d.flush()

    def near(evs: list) -> list:
        return [e for e in evs if e.event_class != "train" and abs(e.channel - 928) <= 25 and e.onset_s >= 155.0]

    assert near(out["long"]) and not near(out["off"])
