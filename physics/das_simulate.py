"""Simulated DAS strain-rate records along a metro tunnel: instrument noise, coupling, trains, traffic, events.

:func:`simulate` (or :class:`DasSimulator`) makes a record of ``duration_s`` seconds on a :class:`FibreLayout` from a
seed, chunk by chunk, with its ground-truth table. The record is generated in fixed internal blocks of about one
second, each from its own seeded stream, and re-cut into the caller's chunks, so it is bit-identical for any
``chunk_s``. Every part's basis (a source, or a labelled **assumption**, all of them :class:`SimConfig` fields):

- **Instrument noise** -- white strain-rate noise of density ``noise_density`` (1/s/sqrt(Hz)); std
  ``noise_density * sqrt(fs / 2)``. Default 5e-9 1/s/sqrt(Hz): Miller et al. (2016, quoted in *Distributed
  Acoustic Sensing in Geophysics*, AGU/Wiley 2021, ch. 1) measured about 0.03 nanostrain in a 100 Hz band with a
  10 m gauge on standard fibre (3 pico-strain/sqrt(Hz)), i.e. about 1e-9 1/s/sqrt(Hz) in strain rate at 50 Hz;
  a tunnel cable with 1 m channels is noisier (**assumption**: 5x, inside the 1e-9 - 1e-8 range commercial
  interrogators quote). Plus a low-frequency part per channel (AR(1), a Lorentzian spectrum flat below
  ``lf_corner_hz`` = 1 Hz and falling as 1/f^2 above: phase drift and temperature, rms ``lf_ratio`` x the white std)
  and a common-mode part on every channel (laser phase noise, rms ``common_ratio`` x; both **assumptions**). The
  noise is not multiplied by the coupling (it is the interrogator's, not the ground's). ``fast_noise`` draws the
  white part in a numba kernel (numpy's float64 ziggurat, rounded to float32): the same distribution, another
  realisation, about twice the generation speed on background-only records.
- **Coupling** -- a gain per channel on every ground signal: lognormal (log-std ``coupling_sigma`` = 0.3) with a
  Gaussian correlation length ``coupling_corr_m`` = 30 m, plus ``bad_per_km`` = 2 badly coupled stretches per km
  (5-30 m long, gain x 0.05-0.2: a cable loose in its tray). **Assumption** (Gabai & Eyal 2016, Opt. Lett. 41:5648,
  on the random sensitivity along a DAS fibre; the figures are ours).
- **Trains** -- ``trains_per_hour`` each way, regular headway with 10 % jitter; cruise 15-22 m/s (Line 1's top speed
  is 80 km/h = 22 m/s; **assumption**), braking and accelerating at 1 m/s^2 and dwelling 30 s at ``stops_m``;
  length ``train_length_m`` = 140 m (6-car A-type, cars about 22-24 m: GB 50157-2013 *Code for design of metro*,
  vehicle types; Line 1 runs 6-car A-type trains), 2 bogies per car 15.7 m apart (A-car bogie centres,
  **assumption**). Each bogie is a Gaussian strain bump (``train_strain`` = 2e-7, width ``train_sigma_m`` = 3 m)
  moving with the train, whose time derivative is the moving-load strain rate; wheel-rail vibration 20-100 Hz
  (rms ``train_vib_rms`` = 2e-6 1/s at cruise speed, scaling with speed, decaying as exp(-d/10 m) beyond the
  train's ends). The fibre lies in the +1 direction's bore (offset 2 m); the other bore's trains are 15 m away
  (twin shield bores; **assumption**), their strain 2/15 as large and 1.5x wider, vibration attenuated by Bornitz.
- **Road traffic** -- ``crossings_per_km`` = 1.5 roads over the tunnel, ``vehicles_per_hour`` = 60 per crossing
  (Poisson), 8-15 m/s, ``tunnel_depth_m`` = 15 m below; SNR 0-8 dB (weak; **assumption**).
- **Events** -- ``drilling``, ``piling``, ``excavation``, ``intrusion`` (:mod:`physics.das_sources`) at a
  position along the fibre and an offset from it; the amplitude at channel distance r from the source
  (r = sqrt(along^2 + offset^2)) follows Bornitz, v(r) = v(r1) (r1/r)^n exp(-a (r - r1)) with r1 the offset, n = 1
  (body waves: the fibre is in a tunnel at depth; Amick & Gendreau 2000) and a = pi f eta / c
  (:func:`physics.vibration_laws.material_damping_per_m`, eta = 0.05, c = 250 m/s: soft ground; **assumption**),
  so the footprint is tens of channels with its maximum at the nearest channel; arrivals are delayed by
  (r - r1) / c.
- **SNR** (truth ``snr_db``) -- 10 log10 of the source's mean power over ``[t_start, t_end]`` at its nearest
  channel *as a channel of unit coupling gain would record it* (``SimConfig.snr_coupling = "unit"``, the default)
  within its class band (:data:`physics.das_sources.SNR_BANDS`; drilling: around its harmonics) over the white
  instrument noise's power in the same band: the strength of the source at the fibre, a property of the source,
  the same for events, road vehicles and trains (trains: the vibration's at cruise speed, 20-100 Hz). The record
  at a channel of gain g shows it 20 log10(g) dB higher (the coupling's lognormal part: +-3 dB at 1 sigma; a
  badly coupled stretch: -14 to -26 dB). ``snr_coupling = "coupled"`` is the first simulator's choice (segments
  of ``bench/bench_das_false_alarms.py`` up to seed 1021, every published figure before 2026-12-05 07:00 UTC):
  the SNR at the nearest channel *with its coupling*, so a source on a badly coupled stretch was scaled up by
  1/g, and its well coupled neighbours saw it 14-26 dB above the drawn SNR (the road crossings that made 17 of
  the long run's 20 false alarms).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from physics import das_sources as S
from physics.das_io import TRUTH_COLUMNS, TRUTH_EXTRA
from physics.das_layout import FibreLayout
from physics.vibration_laws import bornitz_ppv, material_damping_per_m
from twin.errors import ValidationError

__all__ = ["EVENT_CLASSES", "SNR_COUPLING", "DasSimulator", "EventSpec", "SimConfig", "simulate"]

EVENT_CLASSES = ("drilling", "piling", "excavation", "intrusion")
#: Event durations drawn per class (s), before clipping to the record (**assumption**).
DURATIONS_S = {"drilling": (20.0, 120.0), "piling": (30.0, 180.0), "excavation": (60.0, 300.0),
               "intrusion": (3.0, 20.0)}
#: Dominant frequency (Hz) per class for material damping.
DOMINANT_HZ = {"piling": 15.0, "excavation": 20.0, "intrusion": 100.0, "vehicle": 10.0}
#: Lowest sampling rate the signal models fit under (Nyquist above the 100 Hz train vibration band).
MIN_FS_HZ = 200.0
_MAX_REACH_M = 400.0
#: Time step of the train trajectories (s).
TRAJ_DT_S = 0.05
_FOOTPRINT_FLOOR = 0.01
_CLS_CODE = {"drilling": 1, "piling": 2, "excavation": 3, "intrusion": 4, "vehicle": 5}
#: The choices of ``SimConfig.snr_coupling``.
SNR_COUPLING = ("unit", "coupled")


@dataclass(frozen=True)
class SimConfig:
    """Every parameter of the simulator (the module docstring gives each one's basis)."""

    noise_density: float = 5e-9
    lf_ratio: float = 1.0
    lf_corner_hz: float = 1.0
    common_ratio: float = 0.3
    coupling_sigma: float = 0.3
    coupling_corr_m: float = 30.0
    bad_per_km: float = 2.0
    trains_per_hour: float = 20.0
    train_speed_m_s: tuple[float, float] = (15.0, 22.0)
    train_length_m: float = 140.0
    n_cars: int = 6
    bogie_spacing_m: float = 15.7
    train_strain: float = 2e-7
    train_sigma_m: float = 3.0
    train_vib_rms: float = 2e-6
    train_decay_m: float = 10.0
    near_offset_m: float = 2.0
    far_offset_m: float = 15.0
    #: Stations on the fibre: positions (m from channel 0) where trains stop with their centre at the platform.
    stops_m: tuple[float, ...] = ()
    dwell_s: float = 30.0
    accel_m_s2: float = 1.0
    crossings_per_km: float = 1.5
    vehicles_per_hour: float = 60.0
    tunnel_depth_m: float = 15.0
    vehicle_snr_db: tuple[float, float] = (0.0, 8.0)
    event_snr_db: tuple[float, float] = (0.0, 25.0)
    event_offset_m: tuple[float, float] = (2.0, 30.0)
    wave_speed_m_s: float = 250.0
    loss_factor: float = 0.05
    spreading_n: float = 1.0
    #: Draw the white noise with numpy's float64 ziggurat inside a numba kernel (``_kernels.das_synth.white_noise``,
    #: about 1.7x faster than numpy's float32 draw): the same N(0, sigma^2) noise but another realisation, so a seed
    #: gives a different record than with the default (numpy's float32 draw, which every published figure used).
    fast_noise: bool = False
    #: Where a source's drawn SNR holds (module docstring, **SNR**): ``"unit"`` at its nearest channel at unit
    #: coupling gain (the source's own strength); ``"coupled"`` at its nearest channel with the coupling there (the
    #: first simulator, kept to reproduce old records).
    snr_coupling: str = "unit"

    def __post_init__(self) -> None:
        if self.snr_coupling not in SNR_COUPLING:
            raise ValidationError(f"SimConfig.snr_coupling = {self.snr_coupling!r}: choose one of {list(SNR_COUPLING)}")
        for name in ("noise_density", "lf_corner_hz", "coupling_corr_m", "train_length_m", "bogie_spacing_m",
                     "train_sigma_m", "train_decay_m", "near_offset_m", "far_offset_m", "accel_m_s2",
                     "tunnel_depth_m", "wave_speed_m_s"):
            v = getattr(self, name)
            if not math.isfinite(v) or v <= 0:
                raise ValidationError(f"SimConfig.{name} = {v!r}: give a finite value > 0")
        for name in ("lf_ratio", "common_ratio", "coupling_sigma", "bad_per_km", "trains_per_hour", "train_strain",
                     "train_vib_rms", "dwell_s", "crossings_per_km", "vehicles_per_hour", "loss_factor",
                     "spreading_n"):
            v = getattr(self, name)
            if not math.isfinite(v) or v < 0:
                raise ValidationError(f"SimConfig.{name} = {v!r}: give a finite value >= 0")
        lo, hi = self.train_speed_m_s
        if not 0 < lo <= hi:
            raise ValidationError(f"SimConfig.train_speed_m_s = {self.train_speed_m_s!r}: give (low, high) m/s, 0 < low <= high")


@dataclass(frozen=True)
class EventSpec:
    """One injected event.

    Attributes
    ----------
    cls : str
        One of :data:`EVENT_CLASSES`.
    position_m : float
        Along the fibre from channel 0 (m) at ``t_start_s``.
    offset_m : float
        Distance from the fibre (m, > 0).
    t_start_s, t_end_s : float
        Active span (s since the record's start).
    snr_db : float
        SNR at the nearest channel, at unit coupling by default (see the module docstring, **SNR**).
    speed_m_min : float
        Motion along the fibre (m per minute; excavation), signed.
    f0_hz : float or None
        Drilling's fundamental (None: drawn 20-200 Hz).
    """

    cls: str
    position_m: float
    offset_m: float
    t_start_s: float
    t_end_s: float
    snr_db: float
    speed_m_min: float = 0.0
    f0_hz: float | None = None

    def __post_init__(self) -> None:
        if self.cls not in EVENT_CLASSES:
            raise ValidationError(f"EventSpec.cls = {self.cls!r}: choose one of {list(EVENT_CLASSES)}")
        if not (math.isfinite(self.offset_m) and self.offset_m > 0):
            raise ValidationError(f"EventSpec.offset_m = {self.offset_m!r}: give a distance from the fibre > 0 m")
        if not (0 <= self.t_start_s < self.t_end_s):
            raise ValidationError(f"EventSpec t_start_s, t_end_s = {self.t_start_s!r}, {self.t_end_s!r}: "
                                  "give 0 <= start < end (s)")


@dataclass
class _Point:
    """A point source: its time function is regenerated from ``key`` when first needed."""

    event_id: int
    cls: str
    key: tuple[int, ...]
    i_start: int
    n: int
    pos_m: float
    speed_m_s: float
    offset_m: float
    alpha_per_m: float
    scale: float = 1.0
    f0_hz: float | None = None
    width_s: float = 1.0
    max_delay: int = 0
    src: np.ndarray | None = field(default=None, repr=False)


@dataclass
class _Train:
    train_id: int
    direction: int
    i_start: int
    traj: np.ndarray
    speed_m_s: float
    offset_m: float
    eps: float
    sigma_m: float
    vib_amp: float
    key: tuple[int, ...]
    vib: np.ndarray | None = field(default=None, repr=False)


class DasSimulator:
    """A reproducible simulated DAS record (see the module docstring).

    Parameters
    ----------
    layout : FibreLayout
    duration_s : float
        Record length (s, > 0).
    seed : int
    config : SimConfig, optional
    events : sequence of EventSpec, optional
        The events to inject; None draws ``n_events`` at random.
    n_events : int
        Random events when ``events`` is None (classes in turn, shuffled).

    Attributes
    ----------
    truth : pandas.DataFrame
        One row per event, train passage and road vehicle (columns of :mod:`physics.das_io`).
    gain : numpy.ndarray
        The coupling gain per channel.
    """

    def __init__(self, layout: FibreLayout, duration_s: float, seed: int, config: SimConfig | None = None,
                 events: Sequence[EventSpec] | None = None, n_events: int = 4) -> None:
        if not (math.isfinite(duration_s) and duration_s > 0):
            raise ValidationError(f"duration_s = {duration_s!r}: give the record length in seconds > 0")
        if isinstance(seed, bool) or int(seed) != seed or seed < 0:
            raise ValidationError(f"seed = {seed!r}: give a whole number >= 0")
        if layout.fs_hz < MIN_FS_HZ:
            raise ValidationError(f"layout.fs_hz = {layout.fs_hz!r}: the simulator needs >= {MIN_FS_HZ:g} Hz (its "
                                  "train vibration reaches 100 Hz and drilling 200 Hz)")
        if int(n_events) != n_events or n_events < 0:
            raise ValidationError(f"n_events = {n_events!r}: give a whole number >= 0")
        self.layout = layout
        self.duration_s = float(duration_s)
        self.seed = int(seed)
        self.config = config or SimConfig()
        fs = layout.fs_hz
        self.n_samples = int(round(duration_s * fs))
        self.knot_step = max(1, int(round(fs / 50.0)))
        self.block = self.knot_step * int(math.ceil(fs / self.knot_step))
        self.sigma_white = self.config.noise_density * math.sqrt(fs / 2.0)
        self.gain = self._coupling()
        rows: list[dict] = []
        if events is None:
            events = self._random_events(int(n_events))
        self._points = [self._event_point(i, ev, rows) for i, ev in enumerate(events)]
        self._trains = self._timetable(len(rows), rows)
        self._points += self._traffic(len(rows), rows)
        cols = [*TRUTH_COLUMNS, *TRUTH_EXTRA]
        self.truth = pd.DataFrame(rows, columns=cols).sort_values(["t_start_s", "event_id"]).reset_index(drop=True)

    # ---- set-up -------------------------------------------------------------------------------------------------
    def _rng(self, *key: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, *key])

    def _coupling(self) -> np.ndarray:
        cfg, lay = self.config, self.layout
        rng = self._rng(7)
        n = lay.n_channel
        z = rng.standard_normal(n)
        s = cfg.coupling_corr_m / lay.dx_m
        if s > 0.5 and n > 1:
            half = int(min(4 * s, n))
            k = np.exp(-0.5 * (np.arange(-half, half + 1) / s) ** 2)
            z = np.convolve(np.pad(z, half, mode="wrap"), k / np.sqrt((k**2).sum()), mode="valid")[:n]
        g = np.exp(cfg.coupling_sigma * z - 0.5 * cfg.coupling_sigma**2)
        for _ in range(rng.poisson(cfg.bad_per_km * lay.length_m / 1000.0)):
            c0 = int(rng.integers(0, n))
            g[c0:c0 + int(rng.uniform(5.0, 30.0) / lay.dx_m) + 1] *= rng.uniform(0.05, 0.2)
        return g

    def _random_events(self, n: int) -> list[EventSpec]:
        cfg, rng = self.config, self._rng(8)
        length = self.layout.length_m
        margin = min(50.0, 0.1 * length)
        classes = [EVENT_CLASSES[i % len(EVENT_CLASSES)] for i in range(n)]
        rng.shuffle(classes)
        out = []
        for cls in classes:
            lo, hi = DURATIONS_S[cls]
            dur = min(rng.uniform(lo, hi), 0.8 * self.duration_s)
            t0 = rng.uniform(0.0, self.duration_s - dur)
            speed = rng.uniform(0.5, 3.0) * rng.choice([-1.0, 1.0]) if cls == "excavation" else 0.0
            out.append(EventSpec(cls=cls, position_m=rng.uniform(margin, max(margin, length - margin - self.layout.dx_m)),
                                 offset_m=rng.uniform(*cfg.event_offset_m), t_start_s=t0, t_end_s=t0 + dur,
                                 snr_db=rng.uniform(*cfg.event_snr_db), speed_m_min=speed))
        return out

    def _stf(self, p: _Point) -> np.ndarray:
        """The source time function of ``p`` (regenerated from its key: the same every time)."""
        rng, fs = self._rng(*p.key), self.layout.fs_hz
        if p.cls == "drilling":
            return S.drilling(rng, fs, p.n, p.f0_hz)[0]
        if p.cls == "vehicle":
            return S.vehicle(rng, fs, p.n, p.width_s)
        return {"piling": S.piling, "excavation": S.excavation, "intrusion": S.intrusion}[p.cls](rng, fs, p.n)

    def _scale_to_snr(self, p: _Point, snr_db: float, band: tuple[float, float]) -> None:
        """Set ``p.scale`` so the mean band power at the nearest channel is ``snr_db`` over the white noise's, at
        unit coupling gain (``snr_coupling = "unit"``) or with the nearest channel's gain (``"coupled"``)."""
        fs = self.layout.fs_hz
        src = self._stf(p)
        p_src = S.band_power(src, fs, *band)
        p_noise = self.sigma_white**2 * (band[1] - band[0]) / (fs / 2.0)
        p.scale = math.sqrt(p_noise * 10 ** (snr_db / 10.0) / max(p_src, 1e-300))
        if self.config.snr_coupling == "coupled":
            ch = int(np.clip(round(p.pos_m / self.layout.dx_m), 0, self.layout.n_channel - 1))
            p.scale /= self.gain[ch]
        reach = min(_MAX_REACH_M, self._reach(p))
        p.max_delay = int(math.ceil((math.hypot(reach, p.offset_m) - p.offset_m) / self.config.wave_speed_m_s * fs))

    def _reach(self, p: _Point) -> float:
        r = np.linspace(0.0, _MAX_REACH_M, 801)
        f = self._factor(p, r)
        return float(r[f >= _FOOTPRINT_FLOOR].max())

    def _factor(self, p: _Point, along_m: np.ndarray) -> np.ndarray:
        cfg = self.config
        r = np.hypot(along_m, p.offset_m)
        return bornitz_ppv(1.0, p.offset_m, r, cfg.spreading_n, p.alpha_per_m)

    def _alpha(self, f_hz: float) -> float:
        return float(material_damping_per_m(f_hz, self.config.loss_factor, self.config.wave_speed_m_s))

    def _row(self, rows: list[dict], **kw: object) -> None:
        lay = self.layout
        kw.setdefault("channel_end", kw["channel"])
        kw["chainage_m"] = float(lay.chainage_m(kw.pop("position_m") / lay.dx_m))
        rows.append(kw)

    def _event_point(self, i: int, ev: EventSpec, rows: list[dict]) -> _Point:
        fs, lay = self.layout.fs_hz, self.layout
        if ev.t_start_s >= self.duration_s:
            raise ValidationError(f"event {i}: t_start_s = {ev.t_start_s!r} is not before the record's end "
                                  f"({self.duration_s:g} s); start it earlier or lengthen the record")
        if not 0.0 <= ev.position_m <= lay.length_m - lay.dx_m:
            raise ValidationError(f"event {i}: position_m = {ev.position_m!r} is off the fibre (0 to "
                                  f"{lay.length_m - lay.dx_m:g} m from channel 0)")
        t1 = min(ev.t_end_s, self.duration_s)
        p = _Point(event_id=i, cls=ev.cls, key=(3, _CLS_CODE[ev.cls], i), i_start=int(round(ev.t_start_s * fs)),
                   n=max(1, int(round((t1 - ev.t_start_s) * fs))), pos_m=ev.position_m,
                   speed_m_s=ev.speed_m_min / 60.0, offset_m=ev.offset_m, alpha_per_m=0.0, f0_hz=ev.f0_hz)
        if ev.cls == "drilling" and p.f0_hz is None:
            p.f0_hz = S.drilling(self._rng(*p.key), fs, 1)[1]
        f_dom = p.f0_hz if ev.cls == "drilling" else DOMINANT_HZ[ev.cls]
        p.alpha_per_m = self._alpha(f_dom)
        self._scale_to_snr(p, ev.snr_db, S.snr_band(ev.cls, fs, p.f0_hz))
        end_m = ev.position_m + p.speed_m_s * (t1 - ev.t_start_s)
        self._row(rows, event_id=i, **{"class": ev.cls}, t_start_s=ev.t_start_s, t_end_s=t1,
                  channel=int(lay.channel(lay.chainage_m(ev.position_m / lay.dx_m))),
                  position_m=ev.position_m, offset_m=ev.offset_m, snr_db=ev.snr_db,
                  channel_end=int(np.clip(round(end_m / lay.dx_m), 0, lay.n_channel - 1)),
                  speed_m_s=p.speed_m_s, length_m=0.0)
        return p

    def _bogies(self) -> np.ndarray:
        cfg = self.config
        car = cfg.train_length_m / cfg.n_cars
        first = (car - cfg.bogie_spacing_m) / 2.0
        return np.array([i * car + first + j * cfg.bogie_spacing_m for i in range(cfg.n_cars) for j in (0, 1)])

    def _timetable(self, first_id: int, rows: list[dict]) -> list[_Train]:
        cfg, lay, fs = self.config, self.layout, self.layout.fs_hz
        if cfg.trains_per_hour == 0:
            return []
        rng = self._rng(9)
        headway = 3600.0 / cfg.trains_per_hour
        length, tl = lay.length_m, cfg.train_length_m
        margin = 6.0 * cfg.train_decay_m
        near_f = float(bornitz_ppv(1.0, cfg.near_offset_m, cfg.far_offset_m, cfg.spreading_n, self._alpha(50.0)))
        p_noise = self.sigma_white**2 * 80.0 / (fs / 2.0)
        trains: list[_Train] = []
        tid = first_id
        for direction in (1, -1):
            near = direction == 1
            phase = rng.uniform(0.0, headway)
            stops = tuple(float(x) + direction * tl / 2.0 for x in cfg.stops_m)  # the train's centre at the platform
            passage_s = ((length + tl + 2 * margin) / cfg.train_speed_m_s[0]
                         + len(stops) * (cfg.dwell_s + 2 * cfg.train_speed_m_s[1] / cfg.accel_m_s2))
            k = -int(math.ceil(passage_s / headway)) - 2
            while True:
                t_enter = phase + k * headway + rng.normal(0.0, 0.1 * headway)
                k += 1
                if t_enter > self.duration_s:
                    break
                speed = rng.uniform(*cfg.train_speed_m_s)
                start, end = (-margin, length + tl + margin) if near else (length + margin, -tl - margin)
                traj = S.train_trajectory(start, end, direction, speed, stops, accel=cfg.accel_m_s2,
                                          dwell_s=cfg.dwell_s, dt=TRAJ_DT_S)
                dt = TRAJ_DT_S
                edge = 0.0 if near else length
                k_in = int(np.argmax((traj - edge) * direction >= 0))
                k_out = int(np.argmax((traj - direction * tl - (length if near else 0.0)) * direction >= 0))
                t0 = t_enter - k_in * dt
                t_exit = t0 + k_out * dt
                if t_exit < 0.0:
                    continue
                offset = cfg.near_offset_m if near else cfg.far_offset_m
                tr = _Train(train_id=tid, direction=direction, i_start=int(round(t0 * fs)), traj=traj,
                            speed_m_s=speed, offset_m=offset,
                            eps=cfg.train_strain * (1.0 if near else cfg.near_offset_m / cfg.far_offset_m),
                            sigma_m=cfg.train_sigma_m * (1.0 if near else 1.5),
                            vib_amp=cfg.train_vib_rms * (1.0 if near else near_f), key=(4, tid))
                trains.append(tr)
                ts, te = max(t_enter, 0.0), min(t_exit, self.duration_s)
                head_s = float(np.interp(ts, t0 + dt * np.arange(traj.size), traj))
                head_e = float(np.interp(te, t0 + dt * np.arange(traj.size), traj))
                snr = 10 * math.log10(tr.vib_amp**2 / p_noise)
                self._row(rows, event_id=tid, **{"class": "train"}, t_start_s=ts, t_end_s=te,
                          channel=int(np.clip(round(head_s / lay.dx_m), 0, lay.n_channel - 1)),
                          position_m=float(np.clip(head_s, 0.0, length - lay.dx_m)), offset_m=offset, snr_db=snr,
                          channel_end=int(np.clip(round(head_e / lay.dx_m), 0, lay.n_channel - 1)),
                          speed_m_s=speed, length_m=tl)
                tid += 1
        return trains

    def _traffic(self, first_id: int, rows: list[dict]) -> list[_Point]:
        cfg, lay, fs = self.config, self.layout, self.layout.fs_hz
        rng = self._rng(10)
        n_cross = int(round(cfg.crossings_per_km * lay.length_m / 1000.0))
        points: list[_Point] = []
        vid = first_id
        band = S.snr_band("vehicle", fs)
        for x in np.sort(rng.uniform(0.0, lay.length_m - lay.dx_m, n_cross)):
            n_veh = rng.poisson(cfg.vehicles_per_hour * (self.duration_s + 20.0) / 3600.0)
            for t in np.sort(rng.uniform(-10.0, self.duration_s + 10.0, n_veh)):
                width = cfg.tunnel_depth_m / rng.uniform(8.0, 15.0)
                n = int(8 * width * fs)
                i0 = int(round((t - 4 * width) * fs))
                ts, te = max(t - 2 * width, 0.0), min(t + 2 * width, self.duration_s)
                if te <= ts:
                    continue
                p = _Point(event_id=vid, cls="vehicle", key=(5, vid), i_start=i0, n=n, pos_m=float(x), speed_m_s=0.0,
                           offset_m=cfg.tunnel_depth_m, alpha_per_m=self._alpha(DOMINANT_HZ["vehicle"]), width_s=width)
                snr = float(rng.uniform(*cfg.vehicle_snr_db))
                self._scale_to_snr(p, snr, band)
                points.append(p)
                self._row(rows, event_id=vid, **{"class": "vehicle"}, t_start_s=ts, t_end_s=te,
                          channel=int(np.clip(round(x / lay.dx_m), 0, lay.n_channel - 1)), position_m=float(x),
                          offset_m=cfg.tunnel_depth_m, snr_db=snr, speed_m_s=0.0, length_m=0.0)
                vid += 1
        return points

    # ---- generation ---------------------------------------------------------------------------------------------
    def _footprint(self, p: _Point, t_s: float) -> tuple[int, np.ndarray, np.ndarray]:
        lay, fs = self.layout, self.layout.fs_hz
        pos = p.pos_m + p.speed_m_s * (t_s - p.i_start / fs)
        reach = self._reach(p)
        c0 = max(0, int(math.floor((pos - reach) / lay.dx_m)))
        c1 = min(lay.n_channel - 1, int(math.ceil((pos + reach) / lay.dx_m)))
        if c1 < c0:
            return 0, np.zeros(0), np.zeros(0, dtype=np.int64)
        along = np.arange(c0, c1 + 1) * lay.dx_m - pos
        amp = p.scale * self._factor(p, along)
        delay = np.round((np.hypot(along, p.offset_m) - p.offset_m) / self.config.wave_speed_m_s * fs)
        return c0, amp, delay.astype(np.int64)

    def blocks(self, start_block: int = 0) -> Iterator[np.ndarray]:
        """Yield the record in its internal blocks (``self.block`` samples, the last one shorter), from block
        ``start_block`` on: bit-identical to the full record's blocks from there (the blocks before it only advance
        the low-frequency noise's state, about 1/20 of a block's cost)."""
        from physics._kernels.das_synth import add_knots, add_point, add_train, white_noise

        cfg, lay, fs = self.config, self.layout, self.layout.fs_hz
        nc, step, B = lay.n_channel, self.knot_step, self.block
        nk = B // step
        rho = math.exp(-2.0 * math.pi * cfg.lf_corner_hz * step / fs)
        q = math.sqrt(1.0 - rho**2)
        lf_sd, cm_sd = cfg.lf_ratio * self.sigma_white, cfg.common_ratio * self.sigma_white
        rng0 = self._rng(2, 0)
        lf = rng0.standard_normal(nc) * lf_sd
        cm = rng0.standard_normal() * cm_sd
        knots = np.empty((nk + 1, nc))
        gain, bogies = self.gain, self._bogies()
        # sources in order of start; the live ones kept in a list, their signals freed once they have passed
        trains = sorted(self._trains, key=lambda tr: tr.i_start)
        points = sorted(self._points, key=lambda p: p.i_start)
        live_tr: list[_Train] = []
        live_pt: list[_Point] = []
        nxt_tr = nxt_pt = 0
        for b in range(int(math.ceil(self.n_samples / B))):
            i0 = b * B
            if b < start_block:
                if lf_sd > 0 or cm_sd > 0:
                    rng = self._rng(2, b + 1)
                    e_lf = rng.standard_normal((nk, nc))
                    e_cm = rng.standard_normal(nk)
                    for k in range(nk):
                        lf = rho * lf + q * lf_sd * e_lf[k]
                        cm = rho * cm + q * cm_sd * e_cm[k]
                continue
            if cfg.fast_noise:
                out = white_noise(self._rng(1, b), B, nc, self.sigma_white)
            else:
                out = self._rng(1, b).standard_normal((B, nc), dtype=np.float32)
                out *= np.float32(self.sigma_white)
            if lf_sd > 0 or cm_sd > 0:
                rng = self._rng(2, b + 1)
                e_lf = rng.standard_normal((nk, nc))
                e_cm = rng.standard_normal(nk)
                knots[0] = lf + cm
                for k in range(nk):
                    lf = rho * lf + q * lf_sd * e_lf[k]
                    cm = rho * cm + q * cm_sd * e_cm[k]
                    knots[k + 1] = lf + cm
                add_knots(out, knots, step)
            t_mid = (i0 + 0.5 * B) / fs
            while nxt_tr < len(trains) and trains[nxt_tr].i_start < i0 + B:
                live_tr.append(trains[nxt_tr])
                nxt_tr += 1
            for tr in [tr for tr in live_tr if tr.i_start + int(tr.traj.size * TRAJ_DT_S * fs) < i0]:
                tr.vib = None
                live_tr.remove(tr)
            for tr in live_tr:
                if tr.vib is None:
                    tr.vib = S.train_vibration(self._rng(*tr.key), fs, int(min(120.0, tr.traj.size * TRAJ_DT_S) * fs))
                add_train(out, i0, tr.i_start, fs, lay.dx_m, gain, tr.traj, TRAJ_DT_S, tr.direction, bogies,
                          tr.eps, tr.sigma_m, tr.vib, tr.vib_amp, tr.speed_m_s, cfg.train_decay_m,
                          cfg.train_length_m, 7919)
            while nxt_pt < len(points) and points[nxt_pt].i_start < i0 + B:
                live_pt.append(points[nxt_pt])
                nxt_pt += 1
            for p in [p for p in live_pt if p.i_start + p.n + p.max_delay < i0]:
                p.src = None
                live_pt.remove(p)
            for p in live_pt:
                if p.src is None:
                    p.src = self._stf(p)
                c0, amp, delay = self._footprint(p, t_mid)
                if amp.size:
                    add_point(out, i0, p.src, p.i_start, c0, amp, delay, gain)
            yield out[: min(B, self.n_samples - i0)]

    def chunks(self, chunk_s: float = 1.0, start_s: float = 0.0) -> Iterator[np.ndarray]:
        """Yield the record in chunks of ``round(chunk_s * fs_hz)`` samples (the last one may be shorter), from
        ``start_s`` on (a whole number of internal blocks, ``self.block / fs_hz`` s: 1 s at 1 kHz).

        The samples do not depend on ``chunk_s`` or ``start_s`` (bit-identical): chunks are cut from the fixed
        internal blocks.
        """
        if not (math.isfinite(chunk_s) and chunk_s > 0):
            raise ValidationError(f"chunk_s = {chunk_s!r}: give a chunk length in seconds > 0")
        start = start_s * self.layout.fs_hz / self.block
        if not (math.isfinite(start) and start >= 0 and abs(start - round(start)) < 1e-9):
            raise ValidationError(f"start_s = {start_s!r}: give a multiple >= 0 of the block length "
                                  f"{self.block / self.layout.fs_hz:g} s")
        step = max(1, int(round(chunk_s * self.layout.fs_hz)))
        buf: list[np.ndarray] = []
        have = 0
        for blk in self.blocks(int(round(start))):
            buf.append(blk)
            have += blk.shape[0]
            while have >= step:
                cat = buf[0] if len(buf) == 1 else np.concatenate(buf)
                yield cat[:step]
                rest = cat[step:]
                buf, have = ([rest] if rest.shape[0] else []), rest.shape[0]
        if have:
            yield np.concatenate(buf)


def simulate(layout: FibreLayout, duration_s: float, seed: int, *, chunk_s: float = 1.0,
             config: SimConfig | None = None, events: Sequence[EventSpec] | None = None,
             n_events: int = 4) -> tuple[Iterator[np.ndarray], pd.DataFrame]:
    """A simulated DAS record: ``(iterator of chunks, truth table)`` (see :class:`DasSimulator`)."""
    sim = DasSimulator(layout, duration_s, seed, config, events=events, n_events=n_events)
    return sim.chunks(chunk_s), sim.truth
