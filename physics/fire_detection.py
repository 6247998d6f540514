"""When each compartment's detectors and sprinklers operate: ceiling jet + layer → link temperature → activation.

The gas at a ceiling device is the ceiling jet of the compartment's fire by
Alpert's correlations (:func:`~physics.fire_correlations.alpert_ceiling_jet`,
quasi-steady: the jet follows the current heat release without transport lag)
at the device's radial distance, added to the temperature of the layer the
device sits in: the upper layer once the interface is below the ceiling, the
lower layer (or ambient) before. This is how CFAST places its detectors and
sprinklers in a two-zone compartment (NIST TN 1889v1, the CFAST 7 Technical
Reference Guide, detection chapter: the ceiling-jet excess over the
upper-layer temperature). The link then follows the RTI equation
dT_l/dt = √u·(T_g − T_l)/RTI (Heskestad & Smith 1976), stepped exactly for gas
held at its mean over each step (:func:`~physics.fire_correlations.rti_link_temperature`);
the device operates when its link reaches the activation temperature, the time
interpolated within the step.

Device kinds and their defaults (labelled assumptions, override per device):

- ``sprinkler``: 68 °C link (the common ordinary rating, NFPA 13), RTI 50
  (m·s)^½ (the upper bound of a quick-response sprinkler, NFPA 13);
- ``heat``: 57 °C fixed-temperature detector (the low end of NFPA 72's
  ordinary class), RTI 25 (m·s)^½;
- ``smoke`` by temperature (default): a low-RTI heat detector operating at a
  13 K rise (Heskestad & Delichatsios 1977, NFPA 72 Annex B's temperature-rise
  analogue for flaming fires), RTI 5 (m·s)^½ (nearly the gas);
- ``smoke`` by obscuration: the layer at the detector obscures 23.93 %/m
  (8 %/ft, CFAST's default smoke detector), from its extinction coefficient K
  as 1 − exp(−K·1 m).

:func:`activation_times` takes a whole history; :class:`DeviceState` steps
the links with a running model (the sprinklers' times change the fire);
:meth:`DeviceSet.from_network` equips the network's sprinklered and detected
compartments. No numba: the loop is over time steps with vector work over
the devices, a few ms for hours of history.

Times in s, temperatures in K unless a name says ``_c``, heat release kW,
extinction 1/m; arrays over (time, compartment) as the zone model writes them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import xarray as xr

from physics._kernels import fire_devices as DK
from physics.fire_correlations import AMBIENT_K, alpert_ceiling_jet, rti_link_temperature
from twin.errors import ValidationError

DEVICE_KINDS = ("sprinkler", "heat", "smoke")
#: Defaults per kind: (activation °C or None for a rise, rise K or None, RTI (m·s)^½).
DEVICE_DEFAULTS = {"sprinkler": (68.0, None, 50.0), "heat": (57.0, None, 25.0), "smoke": (None, 13.0, 5.0)}
#: CFAST's default smoke detector: 23.93 %/m obscuration (8 %/ft).
SMOKE_OBSCURATION_PCT_M = 23.93
#: The layer counts as reaching a ceiling device when the interface is this far below the ceiling (m).
LAYER_AT_CEILING_M = 0.01


@dataclass
class DeviceSet:
    """Ceiling devices: compartment index, kind, radial distance to the fire's axis, RTI and threshold.

    Build with :meth:`add`; arrays via the properties. ``activation_k`` is the
    link temperature (K) at which a device operates (NaN for an obscuration
    smoke detector, which has ``obscuration_pct_m`` instead).
    """

    rows: list[dict] = field(default_factory=list)

    def add(self, compartment: int, kind: str, *, radius_m: float, rti: float | None = None,
            activation_c: float | None = None, rise_k: float | None = None, mode: str = "temperature",
            obscuration_pct_m: float = SMOKE_OBSCURATION_PCT_M, name: str | None = None,
            t_ambient_k: float = AMBIENT_K) -> int:
        """Add a device; returns its index. ``mode`` ``"obscuration"`` only for smoke detectors."""
        i = len(self.rows)
        where = f"device {name or i!r}"
        if kind not in DEVICE_KINDS:
            raise ValidationError(f"{where}: kind={kind!r}: give one of {list(DEVICE_KINDS)}")
        if mode not in ("temperature", "obscuration") or (mode == "obscuration" and kind != "smoke"):
            raise ValidationError(f"{where}: mode={mode!r}: 'temperature', or 'obscuration' for a smoke detector")
        d_act, d_rise, d_rti = DEVICE_DEFAULTS[kind]
        rti = d_rti if rti is None else rti
        if activation_c is None and rise_k is None:
            activation_c, rise_k = d_act, d_rise
        act_k = activation_c + 273.15 if activation_c is not None else t_ambient_k + rise_k
        for label, v in (("radius_m", radius_m), ("rti", rti)):
            if not (np.isfinite(v) and v >= (0 if label == "radius_m" else 1e-9)):
                raise ValidationError(f"{where}: {label}={v!r}: must be a finite number"
                                      f"{' >= 0 m' if label == 'radius_m' else ' > 0 (m·s)^½'}")
        if mode == "temperature" and not (np.isfinite(act_k) and act_k > t_ambient_k):
            raise ValidationError(f"{where}: activation {act_k - 273.15:g} °C must be above ambient "
                                  f"{t_ambient_k - 273.15:g} °C")
        if mode == "obscuration" and not (0 < obscuration_pct_m < 100):
            raise ValidationError(f"{where}: obscuration_pct_m={obscuration_pct_m!r}: must lie in 0..100 %/m")
        self.rows.append({"compartment": int(compartment), "kind": kind, "radius_m": float(radius_m),
                          "rti": float(rti), "activation_k": act_k if mode == "temperature" else np.nan,
                          "obscuration_pct_m": obscuration_pct_m if mode == "obscuration" else np.nan,
                          "name": name or f"{kind} {i}"})
        return i

    @classmethod
    def from_network(cls, network, *, sprinkler_radius_m: float = 3.25, smoke_radius_m: float = 6.4,
                     smoke_mode: str = "obscuration", t_ambient_k: float = AMBIENT_K) -> DeviceSet:
        """The worst-placed sprinkler of each sprinklered compartment and smoke detector of each detected one.

        Worst placed: at the largest distance the spacing rules allow from a
        fire anywhere below — half the diagonal of a 4.6 m sprinkler square
        (3.25 m, NFPA 13 light hazard maximum spacing) and 0.7 × the 9.1 m listed
        spacing of smoke detectors (6.4 m: NFPA 72 wants every ceiling point within
        0.7 × the listed spacing of a detector). Default
        ratings as :data:`DEVICE_DEFAULTS`. Smoke detectors by obscuration by
        default: the temperature analogue needs a ceiling jet, i.e. a fire in
        the detector's own compartment, while obscuration works wherever the
        smoke goes.
        """
        out = cls()
        for c in range(network.n_compartments):
            if bool(network.sprinklered[c]):
                out.add(c, "sprinkler", radius_m=sprinkler_radius_m, name=f"sprinkler {network.names[c]}",
                        t_ambient_k=t_ambient_k)
            if bool(network.detector[c]):
                out.add(c, "smoke", radius_m=smoke_radius_m, name=f"smoke {network.names[c]}",
                        mode=smoke_mode, t_ambient_k=t_ambient_k)
        return out

    def _col(self, key, dtype=float):
        return np.asarray([r[key] for r in self.rows], dtype=dtype)

    @property
    def compartment(self) -> np.ndarray:
        return self._col("compartment", np.int64)

    @property
    def kind(self) -> list[str]:
        return [r["kind"] for r in self.rows]

    @property
    def names(self) -> list[str]:
        return [r["name"] for r in self.rows]

    def __len__(self) -> int:
        return len(self.rows)


def _check_tn(name: str, a, shape) -> np.ndarray:
    out = np.asarray(a, float)
    if out.shape != shape:
        raise ValidationError(f"{name}: shape {out.shape}, expected {shape} (time, compartment)")
    return out


def obscuration_pct_m(extinction_per_m):
    """Obscuration per metre (%/m) of smoke of extinction coefficient K (1/m): 100·(1 − e^(−K·1 m))."""
    return 100.0 * (1.0 - np.exp(-np.asarray(extinction_per_m, float)))


def device_gas(q_kw, ceiling_height_m, radius_m, t_ref_k):
    """(T_g K, u m/s) at ceiling devices: the layer's temperature plus Alpert's ceiling-jet excess.

    ``q_kw`` and ``t_ref_k`` (..., D); ``ceiling_height_m`` and ``radius_m`` (D,).
    """
    q = np.asarray(q_kw, float)
    h = np.broadcast_to(np.asarray(ceiling_height_m, float), q.shape[-1:])
    r = np.broadcast_to(np.asarray(radius_m, float), q.shape[-1:])
    dt, u = np.empty_like(q), np.empty_like(q)
    for height in np.unique(h):  # Alpert's form takes one ceiling height at a time
        cols = h == height
        dt[..., cols], u[..., cols] = alpert_ceiling_jet(q[..., cols], float(height), r[cols])
    return np.asarray(t_ref_k, float) + dt, u


def activation_times(t_s, q_kw, devices: DeviceSet, *, ceiling_height_m, t_upper_k=None, t_lower_k=None,
                     layer_height_m=None, extinction_upper=None, extinction_lower=None,
                     t_ambient_k: float = AMBIENT_K) -> xr.Dataset:
    """Activation time of every device over a zone-model history.

    ``t_s`` (T,); ``q_kw`` heat release per compartment (T, N);
    ``ceiling_height_m`` (N,) the ceiling above the fuel; the layer fields
    (T, N) are optional (without them the jet rises over ambient, the open
    ceiling case). Returns a Dataset over ``device``: ``activation_s`` (inf if
    the device never operates), ``compartment``, ``kind``; and over
    (``time``, ``device``): ``gas_k`` and ``link_k``.
    """
    t = np.asarray(t_s, float)
    if t.ndim != 1 or t.size < 2 or not np.all(np.diff(t) > 0):
        raise ValidationError("t_s: give at least two increasing times (s)")
    q = np.asarray(q_kw, float)
    if q.ndim != 2 or q.shape[0] != t.size:
        raise ValidationError(f"q_kw: shape {q.shape}, expected ({t.size}, N) (time, compartment)")
    shape = q.shape
    n = shape[1]
    h = np.broadcast_to(np.asarray(ceiling_height_m, float), (n,))
    if not np.all(np.isfinite(h) & (h > 0)):
        raise ValidationError(f"ceiling_height_m={h.tolist()}: must be finite numbers > 0 m")
    if len(devices) == 0:
        raise ValidationError("devices: the set is empty; add detectors or sprinklers first")
    c = devices.compartment
    if np.any((c < 0) | (c >= n)):
        raise ValidationError(f"device compartments {c.tolist()}: must lie in 0..{n - 1}")
    amb = np.full(shape, t_ambient_k)
    tu = amb if t_upper_k is None else _check_tn("t_upper_k", t_upper_k, shape)
    tl = amb if t_lower_k is None else _check_tn("t_lower_k", t_lower_k, shape)
    zl = np.broadcast_to(h, shape) if layer_height_m is None else _check_tn("layer_height_m", layer_height_m, shape)
    in_layer = zl[:, c] < h[c] - LAYER_AT_CEILING_M  # (T, D)
    t_ref = np.where(in_layer, tu[:, c], tl[:, c])
    gas, u = device_gas(q[:, c], h[c], devices._col("radius_m"), t_ref)
    rti = devices._col("rti")
    act = devices._col("activation_k")
    link = np.empty_like(gas)
    link[0] = t_ref[0]  # the link starts at its surroundings' temperature
    for k in range(1, t.size):  # gas held at its mean over the step, the step solved exactly
        link[k] = rti_link_temperature(link[k - 1], 0.5 * (gas[k - 1] + gas[k]), 0.5 * (u[k - 1] + u[k]), rti,
                                       t[k] - t[k - 1])
    out = first_crossing_s(t, link, act)
    obsc = devices._col("obscuration_pct_m")
    smoke_od = np.isfinite(obsc)
    if np.any(smoke_od):
        if extinction_upper is None:
            raise ValidationError("extinction_upper: obscuration smoke detectors need the layers' extinction "
                                  "coefficient (1/m) over (time, compartment)")
        ku = _check_tn("extinction_upper", extinction_upper, shape)
        kl = np.zeros(shape) if extinction_lower is None else _check_tn("extinction_lower", extinction_lower, shape)
        od = obscuration_pct_m(np.where(in_layer, ku[:, c], kl[:, c]))
        out = np.where(smoke_od, first_crossing_s(t, od, np.where(smoke_od, obsc, np.inf)), out)
    return xr.Dataset(
        {"activation_s": ("device", out, {"units": "s", "long_name": "activation time (inf: never)"}),
         "compartment": ("device", c),
         "kind": ("device", np.asarray(devices.kind, dtype=object)),
         "gas_k": (("time", "device"), gas, {"units": "K", "long_name": "gas at the device: layer + ceiling jet"}),
         "link_k": (("time", "device"), link, {"units": "K"})},
        coords={"time": ("time", t, {"units": "s"}), "device": ("device", np.asarray(devices.names, dtype=object))},
        attrs={"source": "Alpert (1972) ceiling jet over the layer (CFAST TN 1889v1); RTI link (Heskestad & "
                         "Smith 1976)"})


def first_crossing_s(t: np.ndarray, series: np.ndarray, threshold) -> np.ndarray:
    """Per column of ``series`` (T, K), the first time it reaches ``threshold`` (scalar or (K,)), linear between
    samples; inf where it never does."""
    t = np.asarray(t, float)
    y = np.asarray(series, float)
    thr = np.broadcast_to(np.asarray(threshold, float), y.shape[1:])
    above = y >= thr
    hit = above.any(axis=0)
    k = np.argmax(above, axis=0)
    cols = np.arange(y.shape[1])
    km = np.maximum(k - 1, 0)
    y0, y1 = y[km, cols], y[k, cols]
    with np.errstate(divide="ignore", invalid="ignore"):
        f = np.where(k > 0, (thr - y0) / (y1 - y0), 0.0)
    out = t[km] + np.clip(np.nan_to_num(f), 0.0, 1.0) * (t[k] - t[km])
    return np.where(hit, out, np.inf)


def first_activation(ds: xr.Dataset, n_compartments: int, kind: str = "sprinkler") -> np.ndarray:
    """The earliest activation of ``kind`` per compartment (N,), inf where none: e.g. FireSource's t_sprinkler_s."""
    if kind not in DEVICE_KINDS:
        raise ValidationError(f"kind={kind!r}: give one of {list(DEVICE_KINDS)}")
    out = np.full(int(n_compartments), np.inf)
    sel = np.asarray(ds["kind"].values == kind)
    np.minimum.at(out, ds["compartment"].values[sel], ds["activation_s"].values[sel])
    return out


def activation_events(ds: xr.Dataset, compartment_names=None) -> list[dict]:
    """Timeline records (time order) of the devices that operated: detector / sprinkler events."""
    rows = []
    for d in np.flatnonzero(np.isfinite(ds["activation_s"].values)):
        c = int(ds["compartment"].values[d])
        kind = str(ds["kind"].values[d])
        rows.append({"time_s": float(ds["activation_s"].values[d]),
                     "event": "sprinkler" if kind == "sprinkler" else "detector", "kind": kind,
                     "device": str(ds["device"].values[d]), "compartment": c,
                     "compartment_name": None if compartment_names is None else compartment_names[c]})
    return sorted(rows, key=lambda r: r["time_s"])


class DeviceState:
    """The devices' links stepped with the run: ``advance`` returns the devices that operate in the step.

    The same scheme as :func:`activation_times` (gas held at its mean over the
    step, the step solved exactly, the crossing interpolated), for a model that
    needs the sprinklers' times while it runs (the fire's heat release changes
    when they operate). Temperature devices only; obscuration smoke detectors
    take ``extinction_upper`` in :meth:`advance`. One kernel call a step
    (:func:`physics._kernels.fire_devices.devices_step`); ``activation_s`` is updated in place, ``link_k`` is a
    new array each step.
    """

    def __init__(self, devices: DeviceSet, ceiling_height_m, *, t_ambient_k: float = AMBIENT_K):
        if len(devices) == 0:
            raise ValidationError("devices: the set is empty; add detectors or sprinklers first")
        self.devices = devices
        self.c = devices.compartment
        self.ceiling_height_m = ceiling_height_m
        self.t_ambient_k = t_ambient_k
        self.rti = devices._col("rti")
        self.act = devices._col("activation_k")
        self.obsc = devices._col("obscuration_pct_m")
        self.radius_m = np.ascontiguousarray(devices._col("radius_m"), float)  # once: the set does not change
        self.c = np.ascontiguousarray(self.c, np.int64)
        self.rti = np.ascontiguousarray(self.rti, float)
        self.act = np.ascontiguousarray(self.act, float)
        self.obsc = np.ascontiguousarray(self.obsc, float)
        self._n = -1  # compartments' count last checked (:meth:`_gas_now`)
        self._hc = np.zeros(0)
        self.activation_s = np.full(len(devices), np.inf)
        self._t = None
        self._gas = self._u = self._od = None
        self.link_k = np.full(len(devices), t_ambient_k)

    def _layers(self, q_kw, t_upper_k, t_lower_k, layer_height_m, extinction_upper) -> tuple:
        """The compartments' state as the kernels take it: contiguous float arrays (q, T_u, T_l, z, extinction,
        whether the extinction is given), absent layers at ambient and the interface at the ceiling."""
        q = np.ascontiguousarray(q_kw, float)
        n = q.size
        if n != self._n:  # the compartments' count, checked against the devices once per size
            if np.any(self.c >= n):
                raise ValidationError(f"q_kw: {n} compartments, but a device is in compartment {int(self.c.max())}")
            self._n = n
            self._hc = np.ascontiguousarray(np.broadcast_to(np.asarray(self.ceiling_height_m, float), (n,))[self.c])
        amb = None if t_upper_k is not None and t_lower_k is not None else np.full(n, self.t_ambient_k)
        tu = np.ascontiguousarray(amb if t_upper_k is None else t_upper_k, float)
        tl = np.ascontiguousarray(amb if t_lower_k is None else t_lower_k, float)
        zl = np.ascontiguousarray(np.broadcast_to(np.asarray(self.ceiling_height_m, float), (n,))
                                  if layer_height_m is None else layer_height_m, float)
        use_ext = extinction_upper is not None
        ext = np.ascontiguousarray(extinction_upper, float) if use_ext else tu
        return q, tu, tl, zl, ext, use_ext

    def _gas_now(self, q_kw, t_upper_k, t_lower_k, layer_height_m, extinction_upper):
        q, tu, tl, zl, ext, use_ext = self._layers(q_kw, t_upper_k, t_lower_k, layer_height_m, extinction_upper)
        m = len(self.c)
        gas, u, od, t_ref = np.empty(m), np.empty(m), np.empty(m), np.empty(m)
        DK.device_gas(self.c, self._hc, self.radius_m, q, tu, tl, zl, ext, use_ext, LAYER_AT_CEILING_M,
                      gas, u, od, t_ref)
        return gas, u, od, t_ref

    def advance(self, t_s: float, q_kw, *, t_upper_k=None, t_lower_k=None, layer_height_m=None,
                extinction_upper=None) -> np.ndarray:
        """Step to ``t_s`` with the compartments' state now (N,); indices of the devices that operated."""
        t = float(t_s)
        if self._t is None:  # the links start at their surroundings' temperature
            gas, u, od, t_ref = self._gas_now(q_kw, t_upper_k, t_lower_k, layer_height_m, extinction_upper)
            self._t, self._gas, self._u, self._od, self.link_k = t, gas, u, od, t_ref
            m = len(self.c)
            self._spare = (np.empty(m), np.empty(m), np.empty(m))  # the gas, velocity, obscuration of the next step
            self._t_ref, self._hit = np.empty(m), np.empty(m, np.int64)
            return np.array([], dtype=np.int64)
        if t <= self._t:
            raise ValidationError(f"t_s={t!r}: must be after the last time {self._t!r}")
        q, tu, tl, zl, ext, use_ext = self._layers(q_kw, t_upper_k, t_lower_k, layer_height_m, extinction_upper)
        gas, u, od = self._spare
        new = np.empty(len(self.c))
        k = DK.devices_step(self.c, self._hc, self.radius_m, q, tu, tl, zl, ext, use_ext, LAYER_AT_CEILING_M,
                            self.link_k, self._gas, self._u, self._od, self.rti, self.act, self.obsc, self._t, t,
                            self.activation_s, gas, u, od, self._t_ref, new, self._hit)
        self._spare = (self._gas, self._u, self._od)
        self.link_k, self._t, self._gas, self._u, self._od = new, t, gas, u, od
        return self._hit[:k].copy()
