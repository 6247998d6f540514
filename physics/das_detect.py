"""Streaming event detector for fibre-optic DAS records: chunks in, event summaries out.

:class:`DasDetector` takes the chunks of a DAS record as they arrive (float32 ``(n_time, n_channel)`` strain rate,
the convention of :mod:`physics.das_layout`) and returns :class:`DasEvent` summaries. Per chunk, in one pass
(:mod:`physics._kernels.das_detect`):

1. **Band-pass** in each of ``bands`` (Butterworth as second-order sections, state carried across chunks; by
   default 3–45 Hz, where piling, excavation and road traffic put their energy, and 45–200 Hz, drilling's
   harmonics, hammering and wheel-rail vibration) and window statistics of each filtered signal per channel and
   window (``window_s``, default 0.1 s): energy, energy of the first difference, fourth power sum and peak.
2. **Trigger**: per band and channel, STA/LTA of the window energy (STA one window; the LTA a robust noise floor,
   the running median of the window energy tracked in log space over ``floor_s`` and frozen while triggered), on
   at ``ratio_on``, off below ``ratio_off``; a cell is triggered when any band is.
3. **Clustering** in channel × time: a window's triggered channels form runs (gaps of at most ``merge_gap_ch``
   channels closed); a run joins the open track one of whose latest runs it touches (within ``merge_gap_ch + 2``
   channels, so a moving source stays one track and a track's span cannot creep over separate sources), a run
   touching two tracks merges them, and a track with no run for ``gap_s`` is closed. Tracks never wider than
   ``min_channels``, shorter than ``min_windows`` or under ``min_snr_db`` are dropped.
4. **Localisation**: the channel of the largest event energy (summed over the event's windows), refined by a
   parabola through the log energies of it and its two neighbours (exact for a Gaussian energy profile), then
   chainage by :meth:`FibreLayout.chainage_m`; the **distance from the fibre** from the half-power half-width of
   the event's energy profile (kept ``profile_ch`` channels either side of its triggered span, the noise floor's
   share subtracted; :mod:`physics.das_offset`) and whether that lies inside the protection zone.
5. **Classification** from the event's features (:mod:`physics.das_features`), then the **learned road
   crossings**: where short tracks recur, an alerting class needs lasting activity (``DetectorParams.nuisance_*``).

**Latency and memory.** The detector never looks ahead: an event is decided from the windows seen so far. A
track is reported when it has been quiet for ``gap_s``, or, when it lasts, every ``max_duration_s`` (a
continuing source is reported in segments, ``segment`` 0, 1, ...), so an event is reported at most
``max_duration_s + gap_s + window_s`` after its onset, counted from the arrival of the chunk holding that time
(12.6 s with the defaults). State is per channel and band (filter sections, the open window, the noise floor, the trigger) plus
the open tracks, each at most ``max_duration_s`` long, plus one tuple per track closed in the last
``nuisance_memory_s``: memory does not grow with the length of the record.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

from twin.errors import ValidationError

#: Event classes (the bridge's ``das_event`` classes this detector reports).
CLASSES = ("drilling", "piling", "excavation", "intrusion", "train", "vehicle", "unknown")
#: Classes that raise an alert (a known road crossing asks more of them).
ALERTING = ("drilling", "piling", "excavation", "intrusion")
#: Version of the detector's behaviour, raised with every change that can change its reports (recorded beside
#: results, e.g. ``bench/bench_das_false_alarms.py``'s segments, so figures from different versions are not mixed).
#: 1: up to commit 4407a88 (learned crossings, placement rule). 2: a train is also an event wider than 150 m in
#: its loud windows (energy-weighted median width); a still fragment at the fibre's end beside a train is a train;
#: a still source inside a train's passage is split out (``DetectorParams.end_*``, ``split_*``). 3: a track of 40
#: triggered windows or more is kept from 10 dB of STA/LTA (``min_snr_long_db``, ``long_windows``). 4: a still
#: fragment beside a gap in the fibre's response to trains (learned online) inside a train's passage is a train
#: (``DetectorParams.gap_*``). 5: an impulsive still source inside a train's passage is split out on its
#: impulsiveness (``DetectorParams.impulse_*``). 6: a still alerting report whose energy envelope follows a
#: stronger still report's nearby is that source's ghost and is not reported (``DetectorParams.ghost_*``). 7: after
#: all learning, a still alerting report of a track's own is reported as ``train`` when it peaks at the fibre's end
#: with a train's wheel-rail signal, lies beside a deaf stretch in a train's passage seen or predicted, or its loud
#: windows move like a train's beside one (``DetectorParams.train_*``, ``passage_*``, ``moving_loud_m``;
#: :meth:`DasDetector._retrain`); a still report classed train is a ghost source too (``ghost_train_sources``).
DETECTOR_VERSION = 8
#: RMS frequency of band-limited white noise over f1..f2 is sqrt((f2³ - f1³) / (3 (f2 - f1))): 64 Hz for the
#: simulator's wheel-rail vibration (20-100 Hz), 29 Hz for excavation (1-50 Hz), at most 30 Hz for piling's rings
#: (5-30 Hz) (:mod:`physics.das_sources`).
#: Impulsiveness is counted in the band starting at or above this (Hz; hammering rings at 60-150 Hz): below,
#: a 0.1 s window holds a few cycles and a road vehicle's smooth pulse there has a kurtosis like an impact's.
IMPULSE_BAND_LOW_HZ = 40.0
#: Channels over which the fibre's response to a train is compared (:meth:`DasDetector._learn_response`): wider
#: than two of the longest bad stretches (30 m) so that its median is the well coupled channels'.
GAP_MEDIAN_CH = 121
#: A channel is compared only when channels within this many on each side reach that median (a gap, not the
#: decaying end of the train's profile).
GAP_FLANK_CH = 40


@dataclass(frozen=True)
class DetectorParams:
    """Parameters of :class:`DasDetector` (every one checked at construction).

    Attributes
    ----------
    bands : tuple of (float, float)
        Pass bands of the Butterworth band-passes (Hz), each triggered on its own. Default (3–45, 45–200) Hz:
        a narrow band raises the SNR of a source inside it (excavation's 1–50 Hz gains 6 dB over a 3–200 Hz
        band); below 3 Hz lie the quasi-static strain of temperature and trains' loads and the interrogator's
        phase drift.
    order : int
        Butterworth order per band edge (``scipy.signal.butter(order, band, "bandpass")``: 2·order poles).
    window_s : float
        Window of the band energy (the STA) and the time resolution of events (s).
    floor_s : float
        Adaptation time of the noise floor: it moves by a factor e per ``floor_s`` at most (a source lasting a
        minute raises it by at most e^(60/floor_s) when never triggered).
    warmup_s : float
        Start-up time during which the floor is the running mean of the log energy and nothing triggers (s).
    ratio_on, ratio_off : float
        Trigger hysteresis on STA/LTA (energy ratios; 5 = 7 dB).
    energy_floor : float
        Smallest noise floor a ratio is taken against (window energy, (1/s)²).
    smooth_ch : int
        The trigger compares the window energy averaged over this many neighbouring channels (odd; 1: none): a
        source near the fibre excites several channels (one at offset d reaches ±d along the fibre within 3 dB),
        noise does not, so averaging raises the SNR of sources and thins the tail of the noise's distribution.
    min_channels : int
        Tracks never wider than this many channels in a window are dropped (single-channel noise).
    merge_gap_ch : int
        Untriggered channels bridged inside one window's run.
    gap_s : float
        A track with no triggered window for this long is closed (s).
    max_duration_s : float
        A longer track is reported in segments of this length (s).
    min_windows : int
        Tracks with fewer triggered windows are dropped (isolated noise).
    min_snr_db : float
        Tracks whose largest STA/LTA stays below this are dropped (dB of energy). 12 dB: on simulator seeds 1–3
        (3 km × 15 min each) 9 dB left 10 false alarms, 11 dB 3 and 12 dB none, while every injected event of
        10 dB or more that 9 dB found was still found.
    min_snr_long_db, long_windows
        A track with at least ``long_windows`` triggered windows is kept from ``min_snr_long_db`` up (a lasting
        source: drillings of 10.5-10.8 dB at unit coupling on a channel of gain 0.71-0.76, tuning seeds 3 and 21,
        reached 10.3-10.5 dB of STA/LTA over 4-10 s and were dropped under 12 dB). 40 windows = 4 s triggered: on
        seed 21 every 9-12 dB report that matched no injected event was a road vehicle of at most 33 triggered
        windows. ``long_windows = 0`` turns it off.
    profile_ch : int
        Channels either side of a track's triggered span over which its energy profile is kept for the offset
        estimate (:mod:`physics.das_offset`; the footprint of a source 60 m off the fibre reaches ±100 m).
    loss_factor, wave_speed_m_s, spreading_n : float
        Ground for the offset estimate's footprint: Bornitz spreading n and material damping a = π·f·η/c at the
        event's peak frequency (defaults: the simulator's soft ground, :mod:`physics.das_simulate`; assumption).
    zone_m : float or None
        Events at most this far from the fibre are inside the protection zone; None: the protection distance
        plus the tunnel's outer radius from ``physics/tunnel_limits.toml`` (50 + 3 = 53 m).
    nuisance_short_s, nuisance_radius_ch, nuisance_count, nuisance_memory_s, nuisance_window_s, nuisance_min_s
        Learning of nuisance sites (road crossings) from the stream. Every closed track (reported, or dropped
        below ``min_snr_db`` only; trains excepted) leaves a mark: its span in time and its peak channel; it is
        *short* when it lasts at most ``nuisance_short_s`` (a vehicle's passage over a road 15 m above the tunnel
        lasts 4–7 s in the simulator, its track up to about 8 s; keep it below ``max_duration_s``, whose first
        segment of a lasting source is never short). Where ``nuisance_count`` short marks fell within ``nuisance_radius_ch``
        channels in the last ``nuisance_memory_s`` seconds, the site is a **known crossing**. There an event
        classed drilling, piling, excavation or intrusion keeps its class only when the activity at the site
        (seconds covered by marks within the radius over the last ``nuisance_window_s``, the event included)
        reaches ``nuisance_min_s``: construction goes on, passages come and go (at 60 vehicles an hour, 20 s of
        passages in a minute needs 3 or more extra vehicles detected in it). Otherwise it is reported as
        ``vehicle``. Only marks made before the event count (no look-ahead); an alert at a known crossing comes
        up to ``nuisance_min_s`` later. ``nuisance_count = 0`` turns the learning off.
    peak_support_ch, peak_support_ratio, peak_edge_s
        Where an event of an alerting class is placed (:func:`supported_peak`). Its place is the peak of its
        energy summed over its windows, unless that peak is supported by fewer than ``peak_support_ratio`` times
        the windows peaking around the best-supported place (within ``peak_support_ch`` channels), lies more than
        2 × ``peak_support_ch`` from it and all its windows fall within ``peak_edge_s`` of the event's start or
        end: a loud passage that shared the track for a moment (a train's tail passing a site as the segment
        began, joined to it by one run of triggered channels). The event is then placed at, and classified from,
        the energy peak near the best-supported place. Found on seed 11 (an excavation reported 390 m from the real
        one, on a train's tail; seed 11 is tuning data since); ``peak_support_ratio = 0`` turns the rule off.
    end_fragment_ch, end_train_gap_ch
        A train's passage at the fibre's end, cut off by a badly coupled stretch, is a short still fragment there.
        An event of an alerting class whose channels all lie within ``end_fragment_ch`` of the first or last
        channel and reach within 2 of it is reported as ``train`` when a train (a reported ``train`` segment, or an
        open track at least 60 channels wide in its latest window) came within ``end_train_gap_ch`` channels of
        the fragment's inner edge between ``gap_s`` before the fragment's start and its end (long background run,
        seed 1011). ``end_fragment_ch = 0`` turns the rule off.
    gap_min_ch, gap_max_ch, gap_deaf_ratio, gap_min_heard, gap_skip_ch
        The same inside the fibre: a badly coupled stretch (a loose cable, 5-30 m in the simulator) breaks a
        train's track, and the passage leaves a still fragment on an island of good coupling between two such
        stretches or at a stretch's edge (long background run, seeds 2014, 2018, 2023, 2003, 2010: all 18 false
        alarms). The detector learns the fibre's response to trains online from each reported ``train`` segment's
        energy profile (its channels and ``profile_ch`` either side, summed over its windows): where the median
        over ``GAP_MEDIAN_CH`` channels around a channel is at least 10× the noise's share there (the train loud
        in the neighbourhood) and some channel within ``GAP_FLANK_CH`` on each side reaches it, the channel is
        *seen*, and *low* when its own energy is under ``gap_deaf_ratio``
        times that median (0.1: 10 dB, a gain under 0.3 of its neighbours'; the simulator's bad stretches are
        0.05-0.2). Two floats per channel. A channel is *deaf* when seen in ``gap_min_heard`` segments or more and
        low in at least half of them (1: from the first segment that saw it; on seed 2014 the island's passage
        at 715-735 s, the first loud one of the test's cut, is the one that leaves the fragment). An event of an alerting class at
        most ``end_fragment_ch`` channels wide, with a run of ``gap_min_ch`` to ``gap_max_ch`` deaf channels
        beginning within ``gap_skip_ch`` of one of its edges, is reported as ``train`` when trains (reported
        ``train`` segments, or open tracks at least a train wide) came within ``end_train_gap_ch`` channels of it
        or of the far side of that run, and their passages cover the event's time span (``gap_s`` slack either
        side): a lasting source at a gap's edge is reported in the segments no train covers.
        ``gap_min_ch = 0`` turns the rule off.
    split_bump, split_df_hz, split_q
        A still source inside a train's passage (the two joined in one track, reported as ``train``) is split out
        as an event of its own when the track's summed energy at its peak channel is at least ``split_bump`` times
        the median 15-40 channels either side (:func:`physics.das_features.still_source_stats`) and the peak's
        RMS frequency differs from theirs by ``split_df_hz`` or more, or it is ``split_q`` times as impulsive (Q/E²),
        and some of the
        track's windows peak there (:func:`physics.das_features.still_features`); the split event is classified
        from those windows (when that says ``train`` it is not reported). Its ``offset_m`` is not estimated (the
        train's energy is in the profile). ``split_bump = 0`` turns the split off.
    impulse_kurtosis, impulse_windows, impulse_ratio
        An impulsive still source inside a train's passage (hammering: impacts every 0.3-0.8 s ringing 20 ms at
        60-150 Hz) is split out on its impulsiveness, whatever its share of the energy: a window is *impulsive* at
        a channel when its kurtosis ``win·Q/E²`` in the band from ``IMPULSE_BAND_LOW_HZ`` up reaches
        ``impulse_kurtosis`` (Gaussian vibration, a train's: about 3). A track reported as ``train`` gives an
        event at the place where its impulsive cells within 2 channels number ``impulse_windows`` or more and
        ``impulse_ratio`` times their median over the track's channels (at least 1; a source 22 m off is
        impulsive over 80 channels, a train's track is 200-400 wide); placed at the count's centroid
        within 15 channels, classified from its still features (``intrusion`` when they say a non-alerting
        class), ``vehicle`` at a known crossing with too little activity, not reported within 10 channels of an
        energy split. Tuning seed 31 (both misses of v3: a 22 dB hammering 22 m off inside both bores' passages,
        53 impulsive cells; an 11 dB-as-recorded one the near train's track took in, 16) and 21 (train tracks
        with no source in them: at most 1). ``impulse_windows = 0`` turns it off.
    ghost_max_ch, ghost_min_corr, ghost_min_ratio, ghost_min_windows, ghost_smooth_w
        **Ghosts** of a strong still source (detector version 6). A source's energy along the fibre falls with the
        distance (Bornitz: (r₁/r)² e^(−2a(r−r₁)) in energy, r₁ its offset), but the fibre's coupling varies
        (lognormal, ±3 dB at 1 σ over some 30 m in the simulator; on real cables a clamp, a loose stretch): a
        well coupled channel tens of metres away can stand out as a local maximum of the source's own energy and
        trigger on its own, a separate track at the same time (tuning seeds 53 and 55: 32-58 m from the source).
        Its envelope is the source's (the same blows, the same drill bursts, delayed by the travel time). A
        still report of an alerting class is not reported (counted in ``stats["ghosts"]``, listed in
        :attr:`DasDetector.ghosts`) when a stronger still report, reported or still open, lies within
        ``ghost_max_ch`` channels (and farther than ``merge_gap_ch + 2``: nearer, the two tracks are one place)
        and overlaps it in time, when over the report's windows (``ghost_min_windows``
        or more) that one's peak channel has at least ``ghost_min_ratio`` times the energy at the report's, and
        the two channels' log energies, summed over ``ghost_smooth_w`` windows, correlate at ``ghost_min_corr``
        or more at some lag from −1 window to the travel time over their distance plus one (at
        ``wave_speed_m_s``: the ghost, farther from the source, lags it; :func:`physics.das_features.envelope_correlation`). The energies are the detector's window energies of
        every channel over the last ``max_duration_s + gap_s`` and a few windows (a ring: 137 windows × 4 bytes
        per channel, 5.5 MB for 10,000 channels), so the source's envelope is there over all of the report's
        time, whichever of its segments and tracks it was reported in. Two independent sources
        have independent envelopes. The rule only removes reports: every mark the learning makes (crossings,
        trains, deaf channels) is made before it, as without it. ``ghost_max_ch = 0`` turns it off.
    train_min_hz, train_min_kurtosis
        **A train's signal** (detector version 7; the three rules below ask it of a report before anything else):
        an RMS frequency of ``train_min_hz`` or more and a kurtosis from ``train_min_kurtosis`` up to below 3.5.
        Wheel-rail vibration is Gaussian noise over 20-100 Hz (RMS frequency 64 Hz as emitted); the train fragments
        of the tuning data measured 68.1-78.1 Hz and kurtosis 2.21-2.72 (eight: background seeds 3016, 3020, 4000,
        4003, 4004, dense seeds 55, 63, 66). Not clean: a drilling 27.6 m off measured 70.7-72.4 Hz and 2.21-2.27
        (seed 63: two of its segments beside a deaf stretch in a passage re-classed; it stays detected). Excavation is 1-50 Hz noise (29 Hz as emitted; a 9 dB one measured 55 Hz,
        the white noise's 3-200 Hz lifting it), piling rings at 5-30 Hz, hammering's rings are impulsive
        (kurtosis 3.5 and up), a drill's harmonics are steady tones (1.5 for a sine; measured 1.5-2.2, and piling
        1.6-2.2, seeds 55 and 66).
    train_end_ch
        **A train entering or leaving at the fibre's end** (detector version 7). A train is heard 10-20 s before
        it reaches the fibre's first channel and after it left the last (its wheel-rail vibration spreads through
        the ground); there the end channels hear a still source at or beyond the end, and when no train track is
        near yet (the train not on the fibre) or any more (a weak far-bore train whose track was lost inside) the
        v2 end rule (``end_*``) has nothing to go by (long background run v5, seeds 3020 and 4000; dense tuning
        seeds 55 and 66: trains entering or leaving). A still alerting report of a track's own (not split from a
        train's) whose track reaches within 2 channels of the fibre's first or last channel, placed within
        ``train_end_ch`` channels of it, with a train's signal (``train_min_*``) is reported as ``train``
        (``stats["train_ends"]``). ``train_end_ch = 0`` turns it off. Cost: a machine within ``train_end_ch`` of
        the fibre's end with a train-like signal is reported as a train (the simulator puts events at least 50 m
        from the ends).
    passage_max_ch, passage_predict_s
        **A train's fragment at a deaf stretch, wider or seen less** (detector version 7): the gap rule (``gap_*``)
        for reports up to ``passage_max_ch`` channels wide (not ``end_fragment_ch``), their time covered by the
        trains seen as there and by the passages **predicted** from reported ``train`` segments: each carried on
        at its speed (its moveout) for up to ``passage_predict_s`` after its end, its channels widened by
        ``end_train_gap_ch``. A loud near-bore train approaching a badly coupled stretch is heard beyond it over
        60-100 m before its track crosses (seed 4003: a 28 dB report 78 channels wide at 1,820-1,897 beside the
        deaf 1,804-1,822 while the train's track reached 1,810); a weak far-bore train is tracked only on well
        coupled stretches, its track lost 170 m before it passed a deaf stretch's edge (seed 3016: a 10 dB report
        at 2,425-2,455 beside the deaf 2,401-2,424, 2,393.5-2,402.9 s; the train's last segment ended at channel
        2,599, 2,389.9 s, at 18 m/s: predicted there from 2,396 s). With a train's signal (``train_min_*``):
        without it, on dense seed 55 (30 s of prediction) a 9 dB excavation, a drilling's two segments and a
        piling's segment beside deaf stretches were re-classed. ``passage_max_ch = 0`` turns it off.
    moving_loud_m
        **A passing train's loud windows in a still report** (detector version 7): a weak (far-bore) train
        is tracked only where the fibre is well coupled, and the track's last segment, as the train leaves the
        well coupled stretch, is still by its moveout (seed 4004: 11 dB at channel 2,398.7, segment 1 of a track
        whose segment 0 was reported ``train``). Its loud windows are the train's: wide and moving. A still
        alerting report of a track's own with a train's signal (``train_min_*``) whose loud windows are
        ``moving_loud_m`` wide or more
        (``width_loud_m``, a train's extent: 60 m) and move at a train's speed (``|speed_loud_mps|`` >= 5 m/s;
        a still source's loud windows stay put) is reported as ``train`` when a train (a reported ``train``
        segment, or an open track a train wide) came within ``end_train_gap_ch`` channels of its channels
        between ``gap_s`` before its start and its end (``stats["moving_loud"]``). ``moving_loud_m = 0`` turns it
        off.
    ghost_train_sources
        **A ghost of a source whose report is classed train** (detector version 7): a strong still source in a
        train's passage can be reported as ``train`` (its segment's track, source and train, wider than 150 m)
        while its ghost, a separate track, is reported as the source's class (dense tuning seed 68: a 23 dB
        excavation at channel 2,787, its first segment 810.7-820.7 s a still ``train`` report at 2,785.9; its
        ghost at 2,740.5 reported as excavation then, and removed by the ghost rule in its eight later segments,
        correlation 0.95-0.98, ratio 5.3-6.2). With ``ghost_train_sources`` a still report classed ``train`` is a
        possible source as well (the same distance, overlap, energy and correlation tests); the reports it
        removes are counted in ``stats["ghosts"]`` and ``stats["train_ghosts"]`` and listed in
        :attr:`DasDetector.ghosts`. The v6 bookkeeping of sources is unchanged by it (a report it removes still
        counts as a source, as in v6), so it only removes.

    The version-7 rules (``train_*``, ``passage_*``, ``moving_loud_m``, ``ghost_train_sources``) only re-class alerting reports as ``train``, after
    every mark the detector learns from (crossings, trains, deaf channels, the ghost rule's sources) is made:
    on any record v7's reports are v6's, with those listed in :attr:`DasDetector.retrained` re-classed.
    """

    bands: tuple[tuple[float, float], ...] = ((3.0, 45.0), (45.0, 200.0))
    order: int = 2
    window_s: float = 0.1
    floor_s: float = 30.0
    warmup_s: float = 3.0
    ratio_on: float = 5.0
    ratio_off: float = 2.0
    energy_floor: float = 1e-30
    smooth_ch: int = 3
    min_channels: int = 3
    merge_gap_ch: int = 3
    gap_s: float = 2.5
    max_duration_s: float = 10.0
    min_windows: int = 2
    min_snr_db: float = 12.0
    min_snr_long_db: float = 10.0
    long_windows: int = 40
    profile_ch: int = 100
    loss_factor: float = 0.05
    wave_speed_m_s: float = 250.0
    spreading_n: float = 1.0
    zone_m: float | None = None
    nuisance_short_s: float = 9.0
    nuisance_radius_ch: int = 10
    nuisance_count: int = 3
    nuisance_memory_s: float = 3600.0
    nuisance_window_s: float = 60.0
    nuisance_min_s: float = 20.0
    peak_support_ch: int = 10
    peak_support_ratio: float = 0.5
    peak_edge_s: float = 3.0
    end_fragment_ch: int = 50
    end_train_gap_ch: int = 60
    gap_min_ch: int = 3
    gap_max_ch: int = 40
    gap_deaf_ratio: float = 0.1
    gap_min_heard: int = 1
    gap_skip_ch: int = 2
    split_bump: float = 3.0
    split_df_hz: float = 20.0
    split_q: float = 2.0
    impulse_kurtosis: float = 8.0
    impulse_windows: float = 10.0
    impulse_ratio: float = 3.0
    ghost_max_ch: int = 100
    ghost_min_corr: float = 0.9
    ghost_min_ratio: float = 1.0
    ghost_min_windows: int = 40
    ghost_smooth_w: int = 3
    train_end_ch: int = 10
    train_min_hz: float = 60.0
    train_min_kurtosis: float = 2.2
    passage_max_ch: int = 150
    passage_predict_s: float = 15.0
    moving_loud_m: float = 60.0
    ghost_train_sources: bool = True
    passage_body_m: float = 140.0
    passage_bridge: bool = True
    ghost_strong_ratio: float = 5.0
    ghost_strong_corr: float = 0.85

    def __post_init__(self) -> None:
        try:
            bands = tuple((float(lo), float(hi)) for lo, hi in self.bands)
        except (TypeError, ValueError):
            bands = ()
        if not bands or not all(0.0 < lo < hi for lo, hi in bands):
            raise ValidationError(f"DetectorParams.bands = {self.bands!r}: give one or more (low, high) pairs with "
                                  "0 < low < high Hz")
        object.__setattr__(self, "bands", bands)
        if int(self.order) != self.order or not 1 <= self.order <= 8:
            raise ValidationError(f"DetectorParams.order = {self.order!r}: give a whole number 1..8")
        for name in ("window_s", "floor_s", "ratio_on", "ratio_off", "energy_floor", "gap_s", "max_duration_s"):
            v = getattr(self, name)
            if not (isinstance(v, int | float) and math.isfinite(v) and v > 0):
                raise ValidationError(f"DetectorParams.{name} = {v!r}: give a finite number > 0")
        if not self.warmup_s >= 0:
            raise ValidationError(f"DetectorParams.warmup_s = {self.warmup_s!r}: give seconds >= 0")
        if self.ratio_off > self.ratio_on:
            raise ValidationError(f"DetectorParams.ratio_off = {self.ratio_off!r} is above ratio_on = "
                                  f"{self.ratio_on!r}: the trigger turns off below ratio_off, give ratio_off <= ratio_on")
        if int(self.smooth_ch) != self.smooth_ch or self.smooth_ch < 1 or self.smooth_ch % 2 == 0:
            raise ValidationError(f"DetectorParams.smooth_ch = {self.smooth_ch!r}: give an odd whole number >= 1")
        for name in ("wave_speed_m_s", "nuisance_short_s", "nuisance_memory_s", "nuisance_window_s", "peak_edge_s"):
            v = getattr(self, name)
            if not (isinstance(v, int | float) and math.isfinite(v) and v > 0):
                raise ValidationError(f"DetectorParams.{name} = {v!r}: give a finite number > 0")
        for name in ("loss_factor", "spreading_n", "nuisance_min_s"):
            v = getattr(self, name)
            if not (isinstance(v, int | float) and math.isfinite(v) and v >= 0):
                raise ValidationError(f"DetectorParams.{name} = {v!r}: give a finite number >= 0")
        if self.zone_m is not None and not (math.isfinite(self.zone_m) and self.zone_m >= 0):
            raise ValidationError(f"DetectorParams.zone_m = {self.zone_m!r}: give metres >= 0, or None for the "
                                  "protection zone of physics/tunnel_limits.toml")
        if not (isinstance(self.peak_support_ratio, int | float) and 0.0 <= self.peak_support_ratio <= 1.0):
            raise ValidationError(f"DetectorParams.peak_support_ratio = {self.peak_support_ratio!r}: give a number "
                                  "in [0, 1] (0 turns the rule off)")
        for name in ("split_bump", "split_df_hz", "split_q", "min_snr_long_db", "gap_deaf_ratio", "impulse_kurtosis",
                     "impulse_windows", "impulse_ratio", "ghost_min_ratio", "train_min_hz",
                     "train_min_kurtosis", "moving_loud_m", "passage_body_m", "ghost_strong_ratio",
                     "passage_predict_s"):
            v = getattr(self, name)
            if not (isinstance(v, int | float) and math.isfinite(v) and v >= 0):
                raise ValidationError(f"DetectorParams.{name} = {v!r}: give a finite number >= 0")
        for name in ("merge_gap_ch", "min_windows", "min_channels", "profile_ch", "nuisance_radius_ch",
                     "nuisance_count", "peak_support_ch", "end_fragment_ch", "end_train_gap_ch", "long_windows",
                     "gap_min_ch", "gap_max_ch", "gap_min_heard", "gap_skip_ch", "ghost_max_ch", "ghost_min_windows",
                     "ghost_smooth_w", "train_end_ch", "passage_max_ch"):
            v = getattr(self, name)
            if int(v) != v or v < 0:
                raise ValidationError(f"DetectorParams.{name} = {v!r}: give a whole number >= 0")
        for name in ("ghost_train_sources", "passage_bridge"):
            if not isinstance(getattr(self, name), bool):
                raise ValidationError(f"DetectorParams.{name} = {getattr(self, name)!r}: give True or False")
        for name in ("ghost_min_corr", "ghost_strong_corr"):
            v = getattr(self, name)
            if not (isinstance(v, int | float) and -1.0 <= v <= 1.0):
                raise ValidationError(f"DetectorParams.{name} = {v!r}: give a correlation in [-1, 1]")

    @property
    def latency_s(self) -> float:
        """Longest delay between an event's onset and its report (s), beyond the chunk's arrival."""
        return self.max_duration_s + self.gap_s + self.window_s

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass
class DasEvent:
    """One detected event (or one ``max_duration_s`` segment of a lasting one).

    Times are seconds on the record's clock (the ``t0_s`` given to :meth:`DasDetector.push`); ``channel`` is
    fractional (the sub-channel peak), ``chainage_m`` the layout's chainage of it; ``energy`` the event's band
    energy at its peak channel (Σ y² over its windows, (1/s)²); ``snr_db`` 10·log10 of the largest STA/LTA;
    ``peak_frequency_hz`` the RMS frequency of the band-passed signal at the peak channel; ``speed_mps`` the
    apparent speed of the energy centroid along the fibre (signed, chainage per second); ``offset_m`` the
    estimated distance of the source from the fibre (:mod:`physics.das_offset`; None when the footprint is too
    faint to fit) and ``inside_zone`` whether that is within the protection zone (None with no offset);
    ``nuisance_site`` whether the event lies at a learned road crossing (see ``DetectorParams.nuisance_*``).
    """

    event_class: str
    confidence: float
    onset_s: float
    end_s: float
    channel: float
    chainage_m: float
    length_m: float
    energy: float
    peak_frequency_hz: float
    snr_db: float
    speed_mps: float = 0.0
    track_id: int = 0
    segment: int = 0
    x: float | None = None
    y: float | None = None
    lon: float | None = None
    lat: float | None = None
    offset_m: float | None = None
    inside_zone: bool | None = None
    line: str = ""
    nuisance_site: bool = False
    features: dict[str, float] = field(default_factory=dict)

    @property
    def duration_s(self) -> float:
        return self.end_s - self.onset_s

    def as_row(self) -> dict[str, Any]:
        """Flat record (the columns of ``events.csv``)."""
        row = {k: getattr(self, k) for k in ("event_class", "confidence", "onset_s", "end_s", "channel",
                                               "chainage_m", "length_m", "energy", "peak_frequency_hz", "snr_db",
                                               "speed_mps", "track_id", "segment", "x", "y", "lon", "lat",
                                               "offset_m", "inside_zone", "line", "nuisance_site")}
        row["duration_s"] = self.duration_s
        return row


class _BandState:
    """Filter and trigger state of one band over all channels."""

    def __init__(self, sos: np.ndarray, n: int) -> None:
        self.sos = np.ascontiguousarray(sos, dtype=np.float32)
        self.z = np.zeros((self.sos.shape[0], 2, n), dtype=np.float32)
        self.prev = np.zeros(n, dtype=np.float32)
        self.acc = np.zeros((4, n), dtype=np.float32)
        self.log_floor = np.zeros(n, dtype=np.float64)
        self.on = np.zeros(n, dtype=np.bool_)

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in (self.z, self.prev, self.acc, self.log_floor, self.on))


def _smooth(e: np.ndarray, k: int) -> np.ndarray:
    """Moving average of ``e`` over ``k`` channels (axis 1; the edges average what exists)."""
    if k <= 1:
        return e
    h = k // 2
    c = np.zeros((e.shape[0], e.shape[1] + 1), dtype=np.float64)
    np.cumsum(e, axis=1, out=c[:, 1:])
    idx = np.arange(e.shape[1])
    lo, hi = np.maximum(idx - h, 0), np.minimum(idx + h + 1, e.shape[1])
    return ((c[:, hi] - c[:, lo]) / (hi - lo)).astype(np.float32)


def _combine(per_band: list) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """One set of window statistics, ratio and trigger from the bands': E and D summed (the bands do not
    overlap, so their energies add); Q and M of the band with more energy in the cell, scaled so that its kurtosis
    ``win·Q/E²`` and crest factor ``M²·win/E`` hold against the summed E; the larger ratio; the trigger of any
    band."""
    if len(per_band) == 1:
        return per_band[0]
    outs, ratio, trig = per_band[0]
    e_best, _, q, m = outs
    e, d = outs[0].astype(np.float32), outs[1].astype(np.float32)
    ratio, trig = ratio.copy(), trig.copy()
    for (e2, d2, q2, m2), r2, t2 in per_band[1:]:
        louder = e2 > e_best
        q = np.where(louder, q2, q)
        m = np.where(louder, m2, m)
        e_best = np.where(louder, e2, e_best)
        e += e2
        d += d2
        np.maximum(ratio, r2, out=ratio)
        trig |= t2
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = np.where(e_best > 0, e / e_best, 1.0).astype(np.float32)
    return [e, d, q * scale**2, m * np.sqrt(scale)], ratio, trig


class _Track:
    """An open cluster of triggered (window, channel) cells: running sums over its channel span and rows."""

    __slots__ = ("id", "segment", "first_w", "last_w", "lo", "hi", "runs", "c0", "sums", "rows", "slices", "n_trig",
                 "p0", "prof")

    def __init__(self, tid: int, w: int, lo: int, hi: int) -> None:
        self.id = tid
        self.segment = 0
        self.first_w = w
        self.last_w = w
        self.lo, self.hi = lo, hi
        self.runs: list[tuple[int, int]] = [(lo, hi)]  # the runs of its latest window: what new runs join
        self.c0 = lo
        self.sums = np.zeros((6, 0))  # E, D, Q summed; M max; triggered, impulsive windows — channels c0 ..c0+n-1
        self.rows: list[tuple] = []
        self.slices: list[tuple[int, int, np.ndarray]] = []  # (window, first channel, energies) per window
        self.n_trig = 0
        self.p0 = lo
        self.prof = np.zeros((2, 0))  # energy and the noise's share, over p0 .. p0+n-1 (the offset's profile)

    def add_profile(self, a: int, b: int, e_row: np.ndarray, noise_row: np.ndarray) -> None:
        """Add a window's energy and noise over channels ``a..b`` to the wide profile."""
        self.p0, self.prof = _grow(self.p0, self.prof, a, b)
        s = slice(a - self.p0, b - self.p0 + 1)
        self.prof[0, s] += e_row[a:b + 1]
        self.prof[1, s] += noise_row[a:b + 1]

    def touches(self, a: int, b: int, tol: int) -> bool:
        """Whether the run ``a..b`` lies within ``tol`` channels of one of the track's latest runs."""
        return any(a <= rb + tol and b >= ra - tol for ra, rb in self.runs)

    def _cover(self, a: int, b: int) -> None:
        n = self.sums.shape[1]
        if n == 0:
            self.c0, self.sums = a, np.zeros((6, b - a + 1))
            return
        lo, hi = min(a, self.c0), max(b, self.c0 + n - 1)
        if lo == self.c0 and hi == self.c0 + n - 1:
            return
        grown = np.zeros((6, hi - lo + 1))
        grown[:, self.c0 - lo:self.c0 - lo + n] = self.sums
        self.c0, self.sums = lo, grown

    def add(self, w: int, runs: list[tuple[int, int]], stats: tuple, ratio_row: np.ndarray, n_ch: int) -> None:
        """Add this window's runs (channel ranges, inclusive) to the track."""
        e_row, d_row, q_row, m_row, imp_row = stats
        a_all, b_all = min(r[0] for r in runs), max(r[1] for r in runs)
        a1, b1 = max(a_all - 1, 0), min(b_all + 1, n_ch - 1)
        self._cover(a1, b1)
        s = slice(a1 - self.c0, b1 - self.c0 + 1)
        self.sums[0, s] += e_row[a1:b1 + 1]
        self.sums[1, s] += d_row[a1:b1 + 1]
        self.sums[2, s] += q_row[a1:b1 + 1]
        np.maximum(self.sums[3, s], m_row[a1:b1 + 1], out=self.sums[3, s])
        for a, b in runs:
            self.sums[4, a - self.c0:b - self.c0 + 1] += 1.0
        self.sums[5, s] += imp_row[a1:b1 + 1]
        self.slices.append((w, a1, e_row[a1:b1 + 1].copy()))
        e_tot, c_sum, r_max, n_cells, p_best, e_best = 0.0, 0.0, 0.0, 0, a_all, -1.0
        for a, b in runs:
            e = e_row[a:b + 1].astype(np.float64)
            e_tot += float(e.sum())
            c_sum += float((e * np.arange(a, b + 1)).sum())
            r_max = max(r_max, float(ratio_row[a:b + 1].max()))
            n_cells += b - a + 1
            k = int(np.argmax(e))
            if e[k] > e_best:
                e_best, p_best = float(e[k]), a + k
        centroid = c_sum / e_tot if e_tot > 0 else 0.5 * (a_all + b_all)
        self.rows.append((w, e_tot, centroid, a_all, b_all, r_max, n_cells, p_best, e_best,
                          float(q_row[p_best]), float(m_row[p_best]), float(d_row[p_best])))
        self.lo, self.hi, self.last_w = a_all, b_all, w
        self.runs = list(runs)
        self.n_trig += 1

    def merge(self, other: _Track) -> None:
        if other.prof.shape[1]:
            self.p0, self.prof = _grow(self.p0, self.prof, other.p0, other.p0 + other.prof.shape[1] - 1)
            self.prof[:, other.p0 - self.p0:other.p0 - self.p0 + other.prof.shape[1]] += other.prof
        if other.sums.shape[1]:
            self._cover(other.c0, other.c0 + other.sums.shape[1] - 1)
            s = slice(other.c0 - self.c0, other.c0 - self.c0 + other.sums.shape[1])
            self.sums[[0, 1, 2, 4, 5], s] += other.sums[[0, 1, 2, 4, 5]]
            np.maximum(self.sums[3, s], other.sums[3], out=self.sums[3, s])
        by_w: dict[int, tuple] = {r[0]: r for r in self.rows}
        for r in other.rows:
            mine = by_w.get(r[0])
            if mine is None:
                by_w[r[0]] = r
            else:  # same window: one row with both runs
                e = mine[1] + r[1]
                cen = (mine[1] * mine[2] + r[1] * r[2]) / e if e > 0 else mine[2]
                best = mine if mine[8] >= r[8] else r
                by_w[r[0]] = (r[0], e, cen, min(mine[3], r[3]), max(mine[4], r[4]), max(mine[5], r[5]),
                              mine[6] + r[6], *best[7:])
        self.rows = [by_w[k] for k in sorted(by_w)]
        self.slices = sorted(self.slices + other.slices, key=lambda v: v[0])
        if other.last_w > self.last_w:
            self.runs = list(other.runs)
        elif other.last_w == self.last_w:
            self.runs = self.runs + other.runs
        self.first_w = min(self.first_w, other.first_w)
        self.last_w = max(self.last_w, other.last_w)
        self.lo, self.hi = min(self.lo, other.lo), max(self.hi, other.hi)
        self.n_trig = len(self.rows)


def _covers(spans: list[tuple[float, float]], t0: float, t1: float, slack: float) -> bool:
    """Whether the union of the intervals ``spans``, each widened by ``slack`` either side, covers ``t0..t1``."""
    reach = t0
    for a, b in sorted(spans):
        if a - slack > reach:
            break
        reach = max(reach, b + slack)
        if reach >= t1:
            return True
    return False


def bands_for_rate(fs_hz: float) -> tuple[tuple[float, float], ...]:
    """The default bands of :class:`DetectorParams`, their top cut to 0.8 × Nyquist for a record sampled too slowly
    for 200 Hz (e.g. 250 Hz interrogators: 3–45 and 45–100 Hz; below 135 Hz one band 3 Hz – 0.8 × Nyquist)."""
    default = DetectorParams.bands
    top = 0.8 * float(fs_hz) / 2.0
    if top >= default[-1][1]:
        return default
    if top <= 1.5 * default[0][1]:
        if top <= default[0][0] * 2:
            raise ValidationError(f"fs_hz = {fs_hz!r}: too slow for the detector's bands (needs > {default[0][0] * 5:g} "
                                  "Hz); give DetectorParams.bands yourself")
        return ((default[0][0], top),)
    return (default[0], (default[0][1], top))


def _grow(c0: int, arr: np.ndarray, a: int, b: int) -> tuple[int, np.ndarray]:
    """``(c0, arr)`` (columns = channels from ``c0``) widened to cover channels ``a..b``."""
    n = arr.shape[1]
    if n == 0:
        return a, np.zeros((arr.shape[0], b - a + 1))
    lo, hi = min(a, c0), max(b, c0 + n - 1)
    if lo == c0 and hi == c0 + n - 1:
        return c0, arr
    grown = np.zeros((arr.shape[0], hi - lo + 1))
    grown[:, c0 - lo:c0 - lo + n] = arr
    return lo, grown


def subchannel_peak(energy: np.ndarray, k: int) -> float:
    """Fractional index of the peak of ``energy`` at ``k``: vertex of the parabola through the log energies at
    ``k−1, k, k+1`` (a Gaussian fitted through three points; ``k`` itself at an edge or on a flat top)."""
    if k <= 0 or k >= energy.size - 1:
        return float(k)
    lm, l0, lp = (math.log(max(float(v), 1e-300)) for v in energy[k - 1:k + 2])
    den = lm - 2.0 * l0 + lp
    if not den < 0:
        return float(k)
    return k + float(np.clip(0.5 * (lm - lp) / den, -0.5, 0.5))


def supported_peak(energy: np.ndarray, c0: int, window_peaks: np.ndarray, windows: np.ndarray, radius: int,
                   ratio: float, edge_w: int) -> int:
    """Index into ``energy`` (channels ``c0 ..``) where an event is placed: its energy peak unless a brief passage
    at the event's start or end made it.

    ``window_peaks[i]`` is the channel where window ``windows[i]`` of the event peaked. The *support* of a place is
    the number of windows peaking within ``radius`` channels of it; the best-supported place is the window peak
    with the largest support. The energy peak is moved only when (1) its support is below ``ratio`` times the best,
    (2) it lies more than ``2 * radius`` from the best place, and (3) every window peaking near it lies within
    ``edge_w`` windows of the event's first or last window: a loud passage that shared the track for a moment as it
    entered or left (a train's tail passing a site). It then goes to the energy peak within ``radius`` of the best
    place. A source whose windows recur through the event (piling blows beside a passing train) keeps its place.
    """
    k = int(np.argmax(energy))
    p = np.asarray(window_peaks, dtype=np.int64)
    w = np.asarray(windows, dtype=np.int64)
    if ratio <= 0 or p.size == 0:
        return k
    support = (np.abs(p[:, None] - p[None, :]) <= radius).sum(axis=1)
    best = int(p[int(np.argmax(support))])
    near = np.abs(p - (c0 + k)) <= radius
    if abs(best - (c0 + k)) <= 2 * radius or np.count_nonzero(near) >= ratio * int(support.max()):
        return k
    wn = w[near]
    at_edge = wn.size and (wn.max() - w.min() < edge_w or w.max() - wn.min() < edge_w)
    if not at_edge:
        return k
    lo, hi = max(best - radius - c0, 0), min(best + radius - c0, energy.size - 1)
    return k if hi < lo else lo + int(np.argmax(energy[lo:hi + 1]))


class DasDetector:
    """Streaming detector: :meth:`push` chunks as they arrive, :meth:`flush` at the end of the record.

    Parameters
    ----------
    layout : physics.das_layout.FibreLayout
        Channels, spacing, sampling rate and chainage of the fibre.
    params : DetectorParams, optional
        Detector settings (defaults documented there).
    locate : callable(chainage array) -> (x, y, lon, lat) arrays, optional
        Chainage → map point along the layout's line (``physics.tunnel_geometry``); events then carry it.
    classifier : callable(features dict) -> (class, confidence), optional
        Default :func:`physics.das_features.classify`.
    known_sites : sequence of float, optional
        Channels of road crossings known from the map (:func:`physics.das_crossings.crossing_channels`): known
        crossings from the start, as if learned (``DetectorParams.nuisance_*``); the learning goes on beside them.
    """

    def __init__(self, layout: Any, params: DetectorParams | None = None, *,
                 locate: Callable[[np.ndarray], tuple] | None = None,
                 classifier: Callable[[dict[str, float]], tuple[str, float]] | None = None,
                 known_sites: Any = None) -> None:
        import scipy.signal

        from physics.das_features import classify

        self.layout = layout
        self.params = p = params or DetectorParams()
        fs = float(layout.fs_hz)
        if max(hi for _, hi in p.bands) >= fs / 2:
            raise ValidationError(f"DetectorParams.bands = {p.bands!r}: every upper edge must lie below the "
                                  f"Nyquist frequency {fs / 2:g} Hz of fs_hz = {fs:g}")
        self.win = max(1, int(round(p.window_s * fs)))
        self.dt_win = self.win / fs
        n = int(layout.n_channel)
        self.n_channel = n
        self.bands = [_BandState(scipy.signal.butter(p.order, b, btype="bandpass", fs=fs, output="sos"), n)
                      for b in p.bands]
        self.filled = 0
        self.n_win = 0  # windows completed
        self.t_first: float | None = None
        self.n_samples = 0
        self.tracks: list[_Track] = []
        self._next_id = 0
        self.locate = locate
        self.classifier = classifier or classify
        self.gap_w = max(1, int(round(p.gap_s / self.dt_win)))
        self.max_w = max(1, int(round(p.max_duration_s / self.dt_win)))
        self.warmup_w = int(round(p.warmup_s / self.dt_win))
        self.step = self.dt_win / p.floor_s
        self.tol = int(p.merge_gap_ch) + 2
        high = max(range(len(p.bands)), key=lambda i: p.bands[i][0])
        self.imp_band = high if p.bands[high][0] >= IMPULSE_BAND_LOW_HZ and len(p.bands) > 1 else None
        self.stats = {"chunks": 0, "samples": 0, "windows": 0, "triggered_cells": 0, "events": 0, "dropped": 0,
                      "nuisance_marks": 0, "nuisance_relabelled": 0, "relocated": 0, "end_fragments": 0,
                      "split": 0, "gap_fragments": 0, "impulse_split": 0, "ghosts": 0,
                      "train_ends": 0, "passage_fragments": 0, "moving_loud": 0, "train_ghosts": 0,
                      "passage_bodies": 0, "passage_bridges": 0, "strong_ghosts": 0}
        if p.zone_m is None:
            from physics.das_offset import zone_distance_m

            self.zone_m = zone_distance_m()
        else:
            self.zone_m = float(p.zone_m)
        self.marks: deque[tuple[float, float, float, bool]] = deque()  # (start s, end s, peak channel, short)
        sites = np.asarray([] if known_sites is None else known_sites, dtype=float).ravel()
        if not np.isfinite(sites).all():
            raise ValidationError(f"known_sites = {known_sites!r}: give finite channel numbers")
        self.known_sites = np.sort(sites)
        self.train_marks: deque[tuple[float, float, int, int]] = deque()  # reported train segments: t0, t1, lo, hi
        #: ... with their speed (channels per second), for the version-7 rules' predicted passages
        self.train_paths: deque[tuple[float, float, int, int, float]] = deque()
        self.resp_seen = np.zeros(n, dtype=np.float32)  # train segments loud around each channel
        self.resp_low = np.zeros(n, dtype=np.float32)  # ... of which the channel was 10 dB under its neighbours
        # the ghost rule (DetectorParams.ghost_*): the window energies of the last ghost_ring windows, every channel,
        # and the still non-train reports of that time (first window, last window, channel, track id)
        self.ghost_lag = int(math.ceil(p.ghost_max_ch * float(layout.dx_m) / p.wave_speed_m_s / self.dt_win)) + 1
        self.ghost_ring = self.max_w + self.gap_w + 2 * self.ghost_lag + 2
        self.ring = np.zeros((self.ghost_ring, n), dtype=np.float32) if p.ghost_max_ch > 0 else None
        self.recent: deque[tuple[int, int, float, int]] = deque()
        self.recent_trains: deque[tuple[int, int, float, int]] = deque()  # still train reports (ghost_train_sources)
        #: the reports the ghost rule removed, latest last: (event, the source's channel, correlation, energy ratio)
        self.ghosts: deque[tuple[DasEvent, float, float, float]] = deque(maxlen=1000)
        #: the reports the version-7 rules re-classed as ``train``, latest last: (event, its class before, the rule)
        self.retrained: deque[tuple[DasEvent, str, str]] = deque(maxlen=1000)

    # ------------------------------------------------------------------ streaming
    def push(self, t0_s: float, chunk: np.ndarray) -> list[DasEvent]:
        """Process one chunk; return the events completed by it.

        Parameters
        ----------
        t0_s : float
            Time of the chunk's first sample (s); chunks must follow each other without gaps.
        chunk : array (n_time, n_channel)
            Strain rate (1/s), float32 preferred (other floats are converted).
        """
        from physics._kernels.das_detect import bandpass_window_stats, sta_lta_update

        x = self._check(t0_s, chunk)
        p = self.params
        n_out = (self.filled + x.shape[0]) // self.win
        per_band = []
        for b in self.bands:
            outs = [np.empty((n_out, self.n_channel), dtype=np.float32) for _ in range(4)]
            filled = bandpass_window_stats(x, b.sos, b.z, b.prev, b.acc, self.filled, self.win, *outs)
            ratio = np.empty((n_out, self.n_channel), dtype=np.float32)
            trig = np.empty((n_out, self.n_channel), dtype=np.bool_)
            if n_out:
                sta_lta_update(_smooth(outs[0], p.smooth_ch), b.log_floor, self.n_win, b.on, self.step, p.ratio_on, p.ratio_off,
                               self.warmup_w, p.energy_floor, ratio, trig)
            per_band.append((outs, ratio, trig))
        self.filled = filled
        self.n_samples += x.shape[0]
        self.stats["chunks"] += 1
        self.stats["samples"] += x.size
        if n_out == 0:
            return []
        outs, ratio, trig = _combine(per_band)
        events: list[DasEvent] = []
        any_row = trig.any(axis=1)
        noise = None  # the noise's expected window energy per channel (the bands' floors), when a row needs it
        for i in range(n_out):
            w = self.n_win + i
            if self.ring is not None:
                self.ring[w % self.ghost_ring] = outs[0][i]
            if any_row[i]:
                if noise is None:
                    noise = sum(np.exp(b.log_floor) for b in self.bands)
                e_i, q_i = (outs[0][i], outs[2][i]) if self.imp_band is None else \
                    (per_band[self.imp_band][0][0][i], per_band[self.imp_band][0][2][i])
                imp = (self.win * q_i >= p.impulse_kurtosis * e_i * e_i) & (e_i > 0)
                self._update(w, trig[i], (*(o[i] for o in outs), imp.astype(np.float32)), ratio[i], noise)
            events.extend(self._close(w))
        self.n_win += n_out
        self.stats["windows"] += n_out
        self.stats["triggered_cells"] += int(np.count_nonzero(trig))
        return events

    def flush(self) -> list[DasEvent]:
        """Close every open track (end of the record) and return their events."""
        w = self.n_win - 1
        events = [ev for tr in self.tracks for ev in self._report(self._events(tr), tr, w)]
        self.tracks = []
        return events

    def run(self, chunks) -> list[DasEvent]:
        """All events of an iterable of ``(t0_s, chunk)`` pairs, flushed at the end."""
        out: list[DasEvent] = []
        for t0, ch in chunks:
            out.extend(self.push(t0, ch))
        out.extend(self.flush())
        return out

    # ------------------------------------------------------------------ internals
    def _check(self, t0_s: float, chunk: np.ndarray) -> np.ndarray:
        x = np.asarray(chunk)
        if x.ndim != 2 or x.shape[1] != self.n_channel:
            raise ValidationError(f"DAS chunk shape {x.shape}: give (n_time, n_channel={self.n_channel}), "
                                  "time-major, as physics.das_layout describes")
        if not np.issubdtype(x.dtype, np.floating):
            raise ValidationError(f"DAS chunk dtype {x.dtype}: give strain rate as float32")
        x = np.ascontiguousarray(x, dtype=np.float32)
        fs = float(self.layout.fs_hz)
        if self.t_first is None:
            self.t_first = float(t0_s)
        else:
            expected = self.t_first + self.n_samples / fs
            if abs(float(t0_s) - expected) > 0.5 / fs:
                raise ValidationError(f"DAS chunk t0_s = {t0_s!r}: the previous chunk ended at {expected!r} s; "
                                      "chunks must follow without gaps (flush() and start a new DasDetector)")
        return x

    def _runs(self, row: np.ndarray) -> list[tuple[int, int]]:
        idx = np.flatnonzero(row)
        if idx.size == 0:
            return []
        br = np.flatnonzero(np.diff(idx) > self.params.merge_gap_ch + 1)
        starts = idx[np.r_[0, br + 1]]
        ends = idx[np.r_[br, idx.size - 1]]
        return list(zip(starts.tolist(), ends.tolist(), strict=True))

    def _update(self, w: int, trig_row: np.ndarray, stats: tuple, ratio_row: np.ndarray,
                noise_row: np.ndarray) -> None:
        by_track: dict[int, list[tuple[int, int]]] = {}
        tracks = {id(t): t for t in self.tracks}
        for a, b in self._runs(trig_row):
            hits = [t for t in self.tracks if t.touches(a, b, self.tol)]
            if not hits:
                t = _Track(self._next_id, w, a, b)
                self._next_id += 1
                self.tracks.append(t)
                tracks[id(t)] = t
                by_track[id(t)] = [(a, b)]
                continue
            keep = hits[0]
            for other in hits[1:]:  # the run bridges tracks: merge them into the first
                keep.merge(other)
                by_track.setdefault(id(keep), []).extend(by_track.pop(id(other), []))
                self.tracks.remove(other)
            by_track.setdefault(id(keep), []).append((a, b))
        m, last = self.params.profile_ch, self.n_channel - 1
        for key, runs in by_track.items():
            tracks[key].add(w, runs, stats, ratio_row, self.n_channel)
            for a, b in runs:
                tracks[key].add_profile(max(a - m, 0), min(b + m, last), stats[0], noise_row)

    def _close(self, w: int) -> list[DasEvent]:
        out = []
        still = []
        for t in self.tracks:
            if w - t.last_w >= self.gap_w:
                out.extend(self._report(self._events(t), t, w))
            elif w - t.first_w + 1 >= self.max_w:
                out.extend(self._report(self._events(t), t, w))
                seg = _Track(t.id, w + 1, t.lo, t.hi)
                seg.segment = t.segment + 1
                seg.last_w = t.last_w
                seg.runs = t.runs
                still.append(seg)
            else:
                still.append(t)
        self.tracks = still
        return out

    def _report(self, events: list[DasEvent], t: _Track, w: int) -> list[DasEvent]:
        """The events of a closing track that are reported: without the ghosts of stronger still reports
        (``DetectorParams.ghost_*``), then with train fragments re-classed (:meth:`_retrain`). Only removes or
        re-classes: the detector's learning was done in :meth:`_events`."""
        own = events[0] if events else None
        return [self._retrain(ev, t, ev is own) for ev in self._unghosted(events, t, w)]

    def _unghosted(self, events: list[DasEvent], t: _Track, w: int) -> list[DasEvent]:
        """``events`` without the ghosts of stronger still reports (``DetectorParams.ghost_*``)."""
        if self.ring is None:
            return events
        from physics.das_features import TRAIN_SPEED_MPS

        out = []
        for ev in events:
            still = abs(ev.speed_mps) < TRAIN_SPEED_MPS
            g = self._ghost_of(ev, t, w) if still and ev.event_class in ALERTING else None
            if g is not None:
                ev.features["ghost_source_ch"], ev.features["ghost_corr"], ev.features["ghost_ratio"] = g
            if g is not None and g[1] >= self.params.ghost_min_corr:
                self.stats["ghosts"] += 1
                self.ghosts.append((ev, *g))
                continue
            t_ref = self.t_first or 0.0
            span = (int(round((ev.onset_s - t_ref) / self.dt_win)), int(round((ev.end_s - t_ref) / self.dt_win)) - 1)
            if still and ev.event_class != "train":
                self.recent.append((*span, ev.channel, t.id))
            elif still and self.params.ghost_train_sources:
                self.recent_trains.append((*span, ev.channel, t.id))
            # version 7 (ghost_train_sources): a still report classed train is a source too; after the bookkeeping
            # above, as v6 made it, so that only this report is removed and nothing else changes
            g = self._ghost_of(ev, t, w, trains=True) if (still and ev.event_class in ALERTING
                                                           and self.params.ghost_train_sources) else None
            if g is not None and g[1] >= self.params.ghost_min_corr:
                ev.features["ghost_source_ch"], ev.features["ghost_corr"], ev.features["ghost_ratio"] = g
                self.stats["ghosts"] += 1
                self.stats["train_ghosts"] += 1
                self.ghosts.append((ev, *g))
                continue
            # version 8 (ghost_strong_*): a much stronger source needs less correlation; after the bookkeeping too
            g = self._ghost_of(ev, t, w, strong=True) if (still and ev.event_class in ALERTING
                                                          and self.params.ghost_strong_ratio > 0) else None
            if g is not None and g[1] >= self.params.ghost_strong_corr:
                ev.features["ghost_source_ch"], ev.features["ghost_corr"], ev.features["ghost_ratio"] = g
                self.stats["ghosts"] += 1
                self.stats["strong_ghosts"] += 1
                self.ghosts.append((ev, *g))
                continue
            out.append(ev)
        for q in (self.recent, self.recent_trains):
            while q and q[0][1] < w - self.ghost_ring:
                q.popleft()
        return out

    def _retrain(self, ev: DasEvent, t: _Track, own: bool) -> DasEvent:
        """``ev``, re-classed as ``train`` when a version-7 rule finds it a train's fragment (``DetectorParams.
        train_*``, ``passage_*``, ``moving_loud_m``). Applied to reported events only, after the ghost rule recorded them as
        sources: changes nothing the detector goes on from. ``own``: the track's own event (not split from a
        train's track)."""
        from physics.das_features import TRAIN_SPEED_MPS

        if not own or ev.event_class not in ALERTING or abs(ev.speed_mps) >= TRAIN_SPEED_MPS or not t.rows:
            return ev
        if not self._train_signal(ev):
            return ev
        rule = None
        if self._train_end(ev, t):
            rule, key, code = "train_end", "train_ends", 3.0
        elif self._passage_fragment(t, ev.onset_s, ev.end_s):
            rule, key, code = "passage_fragment", "passage_fragments", 4.0
        elif self._moving_loud(ev, t):
            rule, key, code = "moving_loud", "moving_loud", 5.0
        elif self._passage_body(t, ev.onset_s, ev.end_s):
            rule, key, code = "passage_body", "passage_bodies", 6.0
        elif self._passage_bridge(t, ev.onset_s, ev.end_s):
            rule, key, code = "passage_bridge", "passage_bridges", 7.0
        if rule is None:
            return ev
        self.retrained.append((ev, ev.event_class, rule))
        self.stats[key] += 1
        ev.event_class, ev.confidence = "train", 0.5
        ev.features["train_fragment"] = code
        return ev

    def _train_signal(self, ev: DasEvent) -> bool:
        """Whether a report's signal is a train's wheel-rail vibration (``DetectorParams.train_min_*``)."""
        from physics.das_features import INTRUSION_KURTOSIS

        p, f = self.params, ev.features
        return f["frequency_hz"] >= p.train_min_hz and p.train_min_kurtosis <= f["kurtosis"] < INTRUSION_KURTOSIS

    def _train_end(self, ev: DasEvent, t: _Track) -> bool:
        """Whether a still report is a train entering or leaving at the fibre's end (``DetectorParams.train_end_ch``)."""
        p = self.params
        lo, hi = min(r[3] for r in t.rows), max(r[4] for r in t.rows)
        last = self.n_channel - 1
        if p.train_end_ch <= 0:
            return False
        return (ev.channel <= p.train_end_ch and lo <= 2) or (ev.channel >= last - p.train_end_ch and hi >= last - 2)

    def _moving_loud(self, ev: DasEvent, t: _Track) -> bool:
        """Whether a still report's loud windows are a passing train's (``DetectorParams.moving_loud_m``)."""
        from physics.das_features import TRAIN_SPEED_MPS

        p, f = self.params, ev.features
        if p.moving_loud_m <= 0 or f.get("width_loud_m", 0.0) < p.moving_loud_m:
            return False
        if abs(f.get("speed_loud_mps", 0.0)) < TRAIN_SPEED_MPS:
            return False
        lo, hi = min(r[3] for r in t.rows), max(r[4] for r in t.rows)
        return self._train_near(t, lo, hi, ev.onset_s, ev.end_s)

    def _train_near(self, t: _Track, lo: int, hi: int, t0: float, t1: float) -> bool:
        """Whether a train (a reported ``train`` segment, or an open track a train wide) came within
        ``end_train_gap_ch`` channels of ``lo..hi`` between ``gap_s`` before ``t0`` and ``t1``."""
        from physics.das_features import TRAIN_EXTENT_M

        p = self.params
        g = p.end_train_gap_ch
        if any(m1 >= t0 - p.gap_s and m0 <= t1 and a - g <= hi and b + g >= lo for m0, m1, a, b in self.train_marks):
            return True
        wide = TRAIN_EXTENT_M / float(self.layout.dx_m)
        t_ref = self.t_first or 0.0
        return any(o is not t and o.id != t.id and o.rows and o.hi - o.lo + 1 >= wide and o.lo - g <= hi
                   and o.hi + g >= lo and t_ref + (o.last_w + 1) * self.dt_win >= t0 - p.gap_s for o in self.tracks)

    def _passage_fragment(self, t: _Track, t0: float, t1: float) -> bool:
        """Whether a report up to ``passage_max_ch`` wide at a deaf stretch is a train's fragment, its time covered
        by trains seen or predicted (``DetectorParams.passage_*``)."""
        p = self.params
        lo, hi = min(r[3] for r in t.rows), max(r[4] for r in t.rows)
        if p.passage_max_ch <= 0 or hi - lo + 1 > p.passage_max_ch:
            return False
        return self._gap_fragment(t, t0, t1, max_ch=p.passage_max_ch, predicted=self._predicted(lo, hi))

    def _predicted(self, lo: int, hi: int) -> list[tuple[float, float]]:
        """When trains seen in the last reported segments, carried on at their speed for at most
        ``passage_predict_s``, are within ``end_train_gap_ch`` channels of ``lo..hi`` (s, s)."""
        p = self.params
        g, out = p.end_train_gap_ch, []
        for _, m1, a, b, v in self.train_paths:
            if v == 0.0:
                continue
            e0, e1 = sorted(((lo - b - g) / v, (hi - a + g) / v))
            e0, e1 = max(e0, 0.0), min(e1, p.passage_predict_s)
            if e1 > e0:
                out.append((m1 + e0, m1 + e1))
        return out

    def _train_pieces(self, t: _Track) -> list[tuple[float, float, int, int, float, bool]]:
        """The pieces of trains' tracks the version-8 rules go by, (start s, end s, first channel, last channel,
        speed in channels per second, ended): the reported ``train`` segments held for the passages
        (``train_paths``, their speed the moveout; ended) and the open tracks other than ``t``'s moving at a
        train's speed (three windows or more; not ended)."""
        from physics.das_features import TRAIN_SPEED_MPS, moveout_speed

        out = [(*pc, True) for pc in self.train_paths]
        t_ref, dx = self.t_first or 0.0, float(self.layout.dx_m)
        for o in self.tracks:
            if o is t or o.id == t.id or len(o.rows) < 3:
                continue
            v = float(moveout_speed(o.slices, self.dt_win, 1.0))
            if abs(v) * dx >= TRAIN_SPEED_MPS:
                out.append((t_ref + o.first_w * self.dt_win, t_ref + (o.last_w + 1) * self.dt_win,
                            min(r[3] for r in o.rows), max(r[4] for r in o.rows), v, False))
        return out

    def _body_spans(self, piece: tuple[float, float, int, int, float, bool], lo: int, hi: int) -> list[tuple[float, float]]:
        """When the train of ``piece`` was within ``end_train_gap_ch`` channels of ``lo..hi``: during the piece,
        carried back before its start at its speed for up to ``passage_predict_s``, and, when the piece has ended
        (a reported segment), carried on after its end as long with its length (``passage_body_m``) added ahead of
        it: a lost train's track had followed the part of it heard loudest, which may trail its head by up to the
        train's length (background seed 5014: the far bore's weak train 144 m ahead of its track's last edge)."""
        p = self.params
        m0, m1, a, b, v, ended = piece
        g = p.end_train_gap_ch
        out = [(m0, m1)] if a - g <= hi and b + g >= lo else []
        if v == 0.0:
            return out

        def near(r_lo: float, r_hi: float) -> tuple[float, float]:
            """Offsets (s) from a moment the train spans a..b at which it spans lo..hi, r_* added below and above."""
            return tuple(sorted(((lo - b - r_hi) / v, (hi - a + r_lo) / v)))

        e0, e1 = near(g, g)
        if min(e1, 0.0) > max(e0, -p.passage_predict_s):
            out.append((m0 + max(e0, -p.passage_predict_s), m0 + min(e1, 0.0)))
        if ended:
            body = p.passage_body_m / float(self.layout.dx_m)
            e0, e1 = near(g + (body if v < 0 else 0.0), g + (body if v > 0 else 0.0))
            if min(e1, p.passage_predict_s) > max(e0, 0.0):
                out.append((m1 + max(e0, 0.0), m1 + min(e1, p.passage_predict_s)))
        return out

    def _passage_body(self, t: _Track, t0: float, t1: float) -> bool:
        """Whether a report up to ``passage_max_ch`` wide beside a deaf stretch lies in the passage of a train's body
        (``DetectorParams.passage_body_m``): the version-7 passage rule with the trains' pieces carried on with their
        length ahead and carried back (:meth:`_body_spans`)."""
        p = self.params
        lo, hi = min(r[3] for r in t.rows), max(r[4] for r in t.rows)
        if p.passage_body_m <= 0 or p.gap_min_ch <= 0 or p.passage_max_ch <= 0 or hi - lo + 1 > p.passage_max_ch:
            return False
        ends = [c for c in (self.deaf_run_end(lo, -1), self.deaf_run_end(hi, 1)) if c is not None]
        if not ends:
            return False
        a, b = min(lo, *ends), max(hi, *ends)
        pieces = self._lost(self._train_pieces(t))
        spans = [sp for pc in pieces for sp in self._body_spans(pc, a, b)]
        return _covers(spans, t0, t1, p.gap_s)

    def _lost(self, pieces: list[tuple]) -> list[tuple]:
        """``pieces`` with ``ended`` kept only for those whose train's track was lost: no piece moving the same way
        began within ``gap_s`` of its end near its channels (a continuing track gives the train's place itself)."""
        g, s = self.params.end_train_gap_ch, self.params.gap_s
        out = []
        for pc in pieces:
            m0, m1, a, b, v, ended = pc
            reach = g + abs(v) * s
            cont = ended and any(q is not pc and q[4] * v > 0 and m1 - s <= q[0] <= m1 + s and q[2] <= b + reach
                                 and q[3] >= a - reach for q in pieces)
            out.append((m0, m1, a, b, v, ended and not cont))
        return out

    def _passage_bridge(self, t: _Track, t0: float, t1: float) -> bool:
        """Whether a report up to ``passage_max_ch`` wide fills a break in one train's track
        (``DetectorParams.passage_bridge``): a piece moving one way began before it on the side the train comes from,
        a piece moving the same way began after its onset on the side the train goes to, and their passages
        (:meth:`_body_spans`) cover its time."""
        p = self.params
        lo, hi = min(r[3] for r in t.rows), max(r[4] for r in t.rows)
        if not p.passage_bridge or p.passage_body_m <= 0 or hi - lo + 1 > p.passage_max_ch:
            return False
        c = 0.5 * (lo + hi)
        pieces = self._lost(self._train_pieces(t))
        for sign in (1.0, -1.0):
            before = [pc for pc in pieces if pc[4] * sign > 0 and pc[0] < t0 and (0.5 * (pc[2] + pc[3]) - c) * sign < 0]
            after = [pc for pc in pieces if pc[4] * sign > 0 and pc[0] >= t0 and (0.5 * (pc[2] + pc[3]) - c) * sign > 0]
            sb = [sp for pc in before for sp in self._body_spans(pc, lo, hi)]
            sa = [sp for pc in after for sp in self._body_spans(pc, lo, hi)]
            if sb and sa and _covers(sb + sa, t0, t1, p.gap_s):
                return True
        return False

    def _ghost_sources(self, t: _Track, w: int, trains: bool = False) -> list[tuple[int, int, float]]:
        """Still non-train reports that may hold a ghost's source, (first window, last window, channel): those
        reported in the ring's time, and the open tracks (other than ``t``'s own) that are still so far.
        ``trains``: the still reports classed ``train`` of the ring's time instead (``ghost_train_sources``)."""
        from physics.das_features import TRAIN_SPEED_MPS, moveout_speed

        if trains:
            return [(a, b, c) for a, b, c, tid in self.recent_trains if tid != t.id]
        out = [(a, b, c) for a, b, c, tid in self.recent if tid != t.id]
        dx = float(self.layout.dx_m)
        for o in self.tracks:
            if o is t or o.id == t.id or len(o.rows) < 3:
                continue
            if abs(moveout_speed(o.slices, self.dt_win, dx)) >= TRAIN_SPEED_MPS:
                continue
            out.append((o.first_w, o.last_w, o.c0 + subchannel_peak(o.sums[0], int(np.argmax(o.sums[0])))))
        return out

    def _ghost_of(self, ev: DasEvent, t: _Track, w: int, trains: bool = False,
                  strong: bool = False) -> tuple[float, float, float] | None:
        """(channel, envelope correlation, energy ratio) of the stronger still report nearby (``DetectorParams.ghost_*``:
        distance, overlap and energy) whose envelope ``ev``'s follows best, or None: ``ev`` is its ghost when the
        correlation reaches ``ghost_min_corr``. ``strong``: among the sources of both kinds with ``ghost_strong_ratio``
        times the energy or more (``ghost_strong_corr``)."""
        from physics.das_features import envelope_correlation

        p, L, R = self.params, self.ghost_lag, self.ghost_ring
        t_ref = self.t_first or 0.0
        w0 = int(round((ev.onset_s - t_ref) / self.dt_win))
        w1 = int(round((ev.end_s - t_ref) / self.dt_win)) - 1
        c = int(round(ev.channel))
        best = None
        sources = (self._ghost_sources(t, w) + (self._ghost_sources(t, w, True) if p.ghost_train_sources else [])
                   if strong else self._ghost_sources(t, w, trains))
        min_ratio = p.ghost_strong_ratio if strong else p.ghost_min_ratio
        for a, b, cs in sources:
            if not self.tol < abs(cs - ev.channel) <= p.ghost_max_ch:  # nearer: one place, two tracks (no ghost)
                continue
            if b < w0 or a > w1:  # not at the same time
                continue
            lo, hi = max(w0, w - R + 1 + L), min(w1, w - L)  # ev's windows, with L windows either side held
            if hi - lo + 1 < p.ghost_min_windows:
                return None
            x = self.ring[np.arange(lo, hi + 1) % R, c]
            y = self.ring[np.arange(lo - L, hi + L + 1) % R, int(round(cs))]
            ratio = float(y[L:L + x.size].sum()) / max(float(x.sum()), 1e-300)
            if ratio < min_ratio:
                continue
            # a ghost lags its source by the travel time over at most their distance (and a window of rounding)
            travel = int(math.ceil(abs(cs - ev.channel) * float(self.layout.dx_m) / p.wave_speed_m_s / self.dt_win))
            r, _ = envelope_correlation(x, y, L, p.ghost_smooth_w, lags=(-1, travel + 1))
            if best is None or r > best[1]:
                best = (float(cs), r, ratio)
        return best

    def _events(self, t: _Track) -> list[DasEvent]:
        """The events of a closing track (segment): its own and a still source split out of a train's."""
        ev = self._event(t)
        if ev is None:
            return []
        out = [ev]
        if ev.event_class == "train":
            lo, hi = min(r[3] for r in t.rows), max(r[4] for r in t.rows)
            self.train_marks.append((ev.onset_s, ev.end_s, lo, hi))
            self._learn_response(t)
            while self.train_marks and self.train_marks[0][1] < ev.end_s - 60.0:
                self.train_marks.popleft()
            if self.params.passage_max_ch > 0:  # read by the version-7 rules only (DetectorParams.passage_*)
                self.train_paths.append((ev.onset_s, ev.end_s, lo, hi, self._moveout(t)))
                while self.train_paths and self.train_paths[0][1] < ev.end_s - self.params.passage_predict_s:
                    self.train_paths.popleft()
            fragment = ev.features.get("train_fragment", 0.0) > 0  # a train's fragment: nothing to split out
            if self.params.split_bump > 0 and not fragment and (sp := self._split(t)) is not None:
                out.append(sp)
            if not fragment and (ip := self._impulse_split(t, [e.channel for e in out[1:]])) is not None:
                out.append(ip)
        return out

    def _moveout(self, t: _Track) -> float:
        """A track's apparent speed along increasing channels (channels per second)."""
        from physics.das_features import moveout_speed

        return float(moveout_speed(t.slices, self.dt_win, 1.0))

    def _split(self, t: _Track) -> DasEvent | None:
        """A still source split out of a train's track (``DetectorParams.split_*``), or None."""
        from physics.das_features import still_features, still_source_stats

        p = self.params
        e = t.sums[0]
        k = int(np.argmax(e))
        bump, df_hz, q = still_source_stats(t.sums, k, float(self.layout.fs_hz))
        if bump < p.split_bump or (abs(df_hz) < p.split_df_hz and q < p.split_q):
            return None
        feats = still_features(t, self, k)
        if feats is None or feats["windows"] < p.min_windows:
            return None
        cls, conf = self.classifier(feats)
        if cls == "train":
            return None
        self.stats["split"] += 1
        rows = [r for r in t.rows if abs(r[7] - (t.c0 + k)) <= 3]
        t0 = (self.t_first or 0.0) + rows[0][0] * self.dt_win
        t1 = (self.t_first or 0.0) + (rows[-1][0] + 1) * self.dt_win
        return self._make_event(t, cls, conf, t0, t1, k, feats, offset=None, nuisance=False)

    def _impulse_split(self, t: _Track, taken: list[float]) -> DasEvent | None:
        """An impulsive still source split out of a train's track (``DetectorParams.impulse_*``), or None."""
        from physics.das_features import still_features, track_features

        p = self.params
        cnt = t.sums[5]
        if p.impulse_windows <= 0 or cnt.size == 0:
            return None
        cs = np.convolve(cnt, np.ones(5), "same")
        k = int(np.argmax(cs))
        base = max(float(np.median(cs)), 1.0)  # the train's own impulsiveness, over the whole track
        if cs[k] < p.impulse_windows or cs[k] < p.impulse_ratio * base:
            return None
        lo, hi = max(k - 15, 0), min(k + 15, cnt.size - 1)
        w = cnt[lo:hi + 1]
        k = int(round(float((w * np.arange(lo, hi + 1)).sum() / w.sum())))
        if any(abs(t.c0 + k - c) <= 10 for c in taken):
            return None
        t0 = (self.t_first or 0.0) + t.rows[0][0] * self.dt_win
        t1 = (self.t_first or 0.0) + (t.rows[-1][0] + 1) * self.dt_win
        feats = still_features(t, self, k)
        cls, conf = self.classifier(feats) if feats is not None else ("train", 0.0)
        if feats is None:
            feats = track_features(t, self, peak=k)
        if cls not in ALERTING:
            cls, conf = "intrusion", 0.5
        ch = t.c0 + subchannel_peak(t.sums[0], k)
        nuisance = self._known_site(t0, ch)
        if nuisance and self._activity(t0, t1, ch) < p.nuisance_min_s:
            cls = "vehicle"
        feats["impulsive_cells"] = float(cs.max())
        self.stats["impulse_split"] += 1
        return self._make_event(t, cls, conf, t0, t1, k, feats, offset=None, nuisance=nuisance)

    def _end_fragment(self, t: _Track, t0: float, t1: float) -> bool:
        """Whether a track is a train's fragment at the fibre's end (``DetectorParams.end_*``)."""
        p = self.params
        lo, hi = min(r[3] for r in t.rows), max(r[4] for r in t.rows)
        n = self.n_channel
        if p.end_fragment_ch <= 0 or hi - lo + 1 > p.end_fragment_ch or not (lo <= 2 or hi >= n - 3):
            return False
        edge = lo if hi >= n - 3 else hi
        g = p.end_train_gap_ch

        def near(a: int, b: int) -> bool:
            return a - g <= edge <= b + g

        if any(m1 >= t0 - p.gap_s and m0 <= t1 and near(a, b) for m0, m1, a, b in self.train_marks):
            return True
        from physics.das_features import TRAIN_EXTENT_M

        wide = TRAIN_EXTENT_M / float(self.layout.dx_m)
        return any(o is not t and o.rows and o.hi - o.lo + 1 >= wide and near(o.lo, o.hi)
                   and (self.t_first or 0.0) + (o.last_w + 1) * self.dt_win >= t0 - p.gap_s for o in self.tracks)

    def _learn_response(self, t: _Track) -> None:
        """Learn the fibre's response to trains from a train segment's energy profile (``DetectorParams.gap_*``)."""
        from scipy.ndimage import median_filter

        e, noise = t.prof
        if e.size < GAP_MEDIAN_CH:
            return
        med = median_filter(e, size=GAP_MEDIAN_CH, mode="nearest")
        h = GAP_FLANK_CH
        pad = np.r_[np.zeros(h), e, np.zeros(h)]
        win = np.lib.stride_tricks.sliding_window_view(pad, h)
        flank = np.minimum(win[:e.size].max(axis=1), win[h + 1:h + 1 + e.size].max(axis=1))
        seen = (med >= 10.0 * noise) & (flank >= med)  # loud around, and on both sides: inside, not at an end
        s = slice(t.p0, t.p0 + e.size)
        self.resp_seen[s] += seen
        self.resp_low[s] += seen & (e < self.params.gap_deaf_ratio * med)

    def deaf_channels(self, lo: int, hi: int) -> np.ndarray:
        """Whether each channel ``lo..hi`` is deaf to trains as learned so far (``DetectorParams.gap_*``)."""
        seen, low = self.resp_seen[lo:hi + 1], self.resp_low[lo:hi + 1]
        return (seen >= self.params.gap_min_heard) & (2.0 * low >= seen)

    def deaf_run_end(self, edge: int, step: int) -> int | None:
        """The first heard channel beyond a run of ``gap_min_ch``..``gap_max_ch`` deaf channels that begins within
        ``gap_skip_ch`` of ``edge`` going ``step`` (±1), or None (the fibre's end counts as heard)."""
        p, n = self.params, self.n_channel
        reach = p.gap_skip_ch + p.gap_max_ch + 1
        a, b = (edge + 1, min(edge + reach, n - 1)) if step > 0 else (max(edge - reach, 0), edge - 1)
        if b < a:
            return None
        deaf = self.deaf_channels(a, b)
        if step < 0:
            deaf = deaf[::-1]
        for i in range(min(p.gap_skip_ch + 1, deaf.size)):
            if not deaf[i]:
                continue
            j = i
            while j < deaf.size and deaf[j]:
                j += 1
            if p.gap_min_ch <= j - i <= p.gap_max_ch:
                return edge + step * (j + 1)
            return None
        return None

    def _gap_fragment(self, t: _Track, t0: float, t1: float, max_ch: int | None = None,
                      predicted: list[tuple[float, float]] = ()) -> bool:
        """Whether a track at most ``max_ch`` channels wide (default ``end_fragment_ch``) is a train's fragment at a
        gap in the fibre's response (``DetectorParams.gap_*``); ``predicted``: more spans of trains' passages."""
        from physics.das_features import TRAIN_EXTENT_M

        p = self.params
        lo, hi = min(r[3] for r in t.rows), max(r[4] for r in t.rows)
        if p.gap_min_ch <= 0 or hi - lo + 1 > (p.end_fragment_ch if max_ch is None else max_ch):
            return False
        ends = [c for c in (self.deaf_run_end(lo, -1), self.deaf_run_end(hi, 1)) if c is not None]
        if not ends:
            return False
        a0, b0 = min(lo, *ends) - p.end_train_gap_ch, max(hi, *ends) + p.end_train_gap_ch
        spans = [(m0, m1) for m0, m1, a, b in self.train_marks if a <= b0 and b >= a0]
        wide = TRAIN_EXTENT_M / float(self.layout.dx_m)
        t_ref = self.t_first or 0.0
        spans += [(t_ref + o.first_w * self.dt_win, t_ref + (o.last_w + 1) * self.dt_win) for o in self.tracks
                  if o is not t and o.rows and o.hi - o.lo + 1 >= wide and o.lo <= b0 and o.hi >= a0]
        return _covers(spans + list(predicted), t0, t1, p.gap_s)

    def _event(self, t: _Track) -> DasEvent | None:
        from physics.das_features import track_features

        p = self.params
        if not t.rows:
            return None
        r_max = max(r[5] for r in t.rows)
        widest = max(r[4] - r[3] + 1 for r in t.rows)
        e = t.sums[0]
        k = int(np.argmax(e))
        t0 = (self.t_first or 0.0) + t.rows[0][0] * self.dt_win
        t1 = (self.t_first or 0.0) + (t.rows[-1][0] + 1) * self.dt_win
        short = t.segment == 0 and t1 - t0 <= min(p.nuisance_short_s, p.max_duration_s - self.dt_win)
        if (t.n_trig < p.min_windows or widest < p.min_channels
                or 10.0 * math.log10(max(r_max, 1e-30)) < self._min_snr(t)):
            self.stats["dropped"] += 1
            if t.n_trig >= p.min_windows and widest >= p.min_channels:
                self._mark(t0, t1, t.c0 + k, short)
            return None
        feats = track_features(t, self)
        cls, conf = self.classifier(feats)
        if cls in ALERTING:
            k2 = supported_peak(e, t.c0, np.array([r[7] for r in t.rows]), np.array([r[0] for r in t.rows]),
                                p.peak_support_ch, p.peak_support_ratio, int(round(p.peak_edge_s / self.dt_win)))
            if k2 != k:
                k = k2
                feats = track_features(t, self, peak=k)
                cls, conf = self.classifier(feats)
                self.stats["relocated"] += 1
        if cls in ALERTING and self._end_fragment(t, t0, t1):
            cls, conf = "train", 0.5
            self.stats["end_fragments"] += 1
            feats["train_fragment"] = 1.0
        elif cls in ALERTING and self._gap_fragment(t, t0, t1):
            cls, conf = "train", 0.5
            self.stats["gap_fragments"] += 1
            feats["train_fragment"] = 2.0
        ch = t.c0 + subchannel_peak(e, k)
        nuisance = self._known_site(t0, ch)
        if nuisance and cls in ALERTING and self._activity(t0, t1, ch) < p.nuisance_min_s:
            cls = "vehicle"
            self.stats["nuisance_relabelled"] += 1
        if cls != "train":
            self._mark(t0, t1, ch, short)
        offset = self._offset(t, ch, feats["frequency_hz"])
        return self._make_event(t, cls, conf, t0, t1, k, feats, offset=offset, nuisance=nuisance)

    def _make_event(self, t: _Track, cls: str, conf: float, t0: float, t1: float, k: int, feats: dict,
                    offset: float | None, nuisance: bool) -> DasEvent:
        """The event of track ``t`` placed at index ``k`` of its channels."""
        e = t.sums[0]
        ch = t.c0 + subchannel_peak(e, k)
        chain = float(self.layout.chainage_m(ch))
        ev = DasEvent(event_class=cls, confidence=conf, onset_s=t0, end_s=t1, channel=ch, chainage_m=chain,
                      length_m=feats["extent_m"], energy=float(e[k]), peak_frequency_hz=feats["frequency_hz"],
                      snr_db=feats["snr_db"], speed_mps=feats["speed_mps"], track_id=t.id,
                      segment=t.segment, offset_m=offset, inside_zone=None if offset is None else offset <= self.zone_m,
                      line=str(getattr(self.layout, "line", "") or ""), nuisance_site=nuisance, features=feats)
        if self.locate is not None:
            x, y, lon, lat = (float(np.asarray(v).ravel()[0]) for v in self.locate(np.array([chain])))
            ev.x, ev.y, ev.lon, ev.lat = x, y, lon, lat
        self.stats["events"] += 1
        return ev

    def _min_snr(self, t: _Track) -> float:
        """The STA/LTA (dB) a track must reach to be reported (``min_snr_db``; ``min_snr_long_db`` when long)."""
        p = self.params
        if p.long_windows > 0 and t.n_trig >= p.long_windows:
            return min(p.min_snr_db, p.min_snr_long_db)
        return p.min_snr_db

    def _offset(self, t: _Track, ch: float, f_hz: float) -> float | None:
        """Distance of the track's source from the fibre (m), fitted to its energy profile
        (:func:`physics.das_offset.fit_offset`)."""
        from physics.das_offset import fit_offset
        from physics.vibration_laws import material_damping_per_m

        p = self.params
        if t.prof.shape[1] < 3:
            return None
        a = float(material_damping_per_m(max(f_hz, 1.0), p.loss_factor, p.wave_speed_m_s))
        dx = float(self.layout.dx_m)
        x = (t.p0 + np.arange(t.prof.shape[1])) * dx
        d = fit_offset(x, t.prof[0], t.prof[1], ch * dx, a, p.spreading_n)
        return None if d is None else round(d, 2)

    def _mark(self, t0: float, t1: float, ch: float, short: bool) -> None:
        """Remember a closed track (its span, peak channel, and whether it was short), forgetting marks older
        than the memory: at most the tracks of ``nuisance_memory_s`` are held."""
        p = self.params
        if p.nuisance_count <= 0:
            return
        self.marks.append((t0, t1, ch, short))
        keep = max(p.nuisance_memory_s, p.nuisance_window_s)
        while self.marks and self.marks[0][1] < t1 - keep:
            self.marks.popleft()
        self.stats["nuisance_marks"] += 1

    def _known_site(self, t_s: float, ch: float) -> bool:
        """Whether ``ch`` is a learned road crossing at time ``t_s`` (from short marks ended before it)."""
        p = self.params
        if p.nuisance_count <= 0:
            return False
        if self.known_sites.size and np.abs(self.known_sites - ch).min() <= p.nuisance_radius_ch:
            return True
        t_min = t_s - p.nuisance_memory_s
        n = sum(1 for _, e, c, short in self.marks
                if short and t_min <= e <= t_s and abs(c - ch) <= p.nuisance_radius_ch)
        return n >= p.nuisance_count

    def _activity(self, t0: float, t1: float, ch: float) -> float:
        """Seconds of the last ``nuisance_window_s`` before ``t1`` covered by this event (``t0..t1``) and the
        marks within ``nuisance_radius_ch`` of ``ch`` (overlaps counted once)."""
        p = self.params
        w0 = t1 - p.nuisance_window_s
        spans = [(max(a, w0), min(b, t1)) for a, b, c, _ in self.marks
                 if abs(c - ch) <= p.nuisance_radius_ch and b > w0 and a < t1]
        spans.append((max(t0, w0), t1))
        total, end = 0.0, -math.inf
        for a, b in sorted(spans):
            if b > end:
                total += b - max(a, end)
                end = b
        return total

    @property
    def state_bytes(self) -> int:
        """Bytes held by the detector's state (per-channel arrays and open tracks)."""
        n = sum(b.nbytes for b in self.bands)
        n += 40 * len(self.marks) + 40 * (len(self.recent) + len(self.recent_trains) + len(self.train_paths)) + (0 if self.ring is None else self.ring.nbytes)
        return n + sum(t.sums.nbytes + t.prof.nbytes + 100 * len(t.rows) + sum(v[2].nbytes for v in t.slices)
                       for t in self.tracks)


__all__ = ["ALERTING", "CLASSES", "DETECTOR_VERSION", "DasDetector", "DasEvent", "DetectorParams", "bands_for_rate", "subchannel_peak",
           "supported_peak"]
