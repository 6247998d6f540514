"""Figures of a fire run (matplotlib, from the ``fire.nc`` Dataset alone).

* :func:`layers_figure`: upper-layer temperature and smoke-layer height over time on the origin
  storey ± 2 (the storey's hottest room or lobby, its lowest layer) and in the first stair at a
  few storeys (``layers.png``);
* :func:`tenability_figure`: storey × time map of ``floor_status`` (clear, smoke, untenable) with
  each storey's ASET and the origin marked (``tenability.png``);
* :func:`hrr_figure`: heat release over time, the building's and each burning storey's, with the
  first detector, sprinkler and flashover marked (``hrr.png``).
"""

from __future__ import annotations

import numpy as np

#: Colours of floor_status 0, 1, 2 (as the map layer: clear grey, smoke amber, untenable dark red).
STATUS_COLOURS = ("#d9d9d9", "#f0a830", "#8b1a1a")
STATUS_NAMES = ("clear", "smoke", "untenable")
#: Event kinds marked on the heat-release plot and their colours.
MARKED_EVENTS = {"detector": "#1f77b4", "sprinkler": "#2ca02c", "flashover": "#d62728"}


def _minutes(ds) -> np.ndarray:
    return np.asarray(ds["time"].values, float) / 60.0


def _origin(ds) -> int:
    return int(ds.attrs.get("origin_storey", 0))


def stair_storeys(ds, n: int = 4) -> list[int]:
    """Up to ``n`` storeys at which the stair is plotted: the origin, two above it and the top."""
    top = int(ds.sizes["storey"]) - 1
    o = _origin(ds)
    picks = [o, min(top, o + 2), min(top, o + max(5, (top - o) // 2)), top]
    return sorted(dict.fromkeys(picks))[:n]


def first_stair(ds) -> str | None:
    """Name (without the storey) of the building's first stair, or None."""
    kinds = ds["compartment_kind"].values.astype(str)
    names = ds["compartment"].values.astype(str)
    idx = np.flatnonzero(kinds == "stair")
    return names[idx[0]].split("/", 1)[1] if idx.size else None


def layers_figure(ds):
    """Upper-layer temperature (°C) and layer height (m) over time: origin storey ± 2 and one stair."""
    from physics.fire_io import storey_label
    from viz.plots import fit_titles, new_figure, style

    t = _minutes(ds)
    o, top = _origin(ds), int(ds.sizes["storey"]) - 1
    storeys = list(range(max(0, o - 2), min(top, o + 2) + 1))
    names = ds["compartment"].values.astype(str)
    stair = first_stair(ds)
    with style():
        fig = new_figure(8.0, 6.0)
        ax_t, ax_h = fig.subplots(2, 1, sharex=True)
        cmap = _cmap("plasma")
        for i, s in enumerate(storeys):
            colour = cmap(0.1 + 0.7 * i / max(1, len(storeys) - 1))
            lw = 2.0 if s == o else 1.2
            lab = f"{storey_label(s)}{' (origin)' if s == o else ''}"
            ax_t.plot(t, ds["floor_temperature_max"].values[:, s] - 273.15, color=colour, lw=lw, label=lab)
            ax_h.plot(t, ds["floor_layer_height_min"].values[:, s], color=colour, lw=lw, label=lab)
        if stair is not None:
            for j, s in enumerate(stair_storeys(ds)):
                k = np.flatnonzero(names == f"{s}/{stair}")
                if not k.size:
                    continue
                grey = _cmap("Greys")(0.95 - 0.18 * j)
                lab = f"{stair} at {storey_label(s)}"
                ax_t.plot(t, ds["upper_layer__temperature"].values[:, k[0]] - 273.15, color=grey, ls="--", lw=1.1,
                          label=lab)
                ax_h.plot(t, ds["layer_height"].values[:, k[0]], color=grey, ls="--", lw=1.1, label=lab)
        ax_t.set_ylabel("upper-layer temperature (°C)")
        ax_t.set_title(f"Smoke layers around the origin ({storey_label(o)}) — {ds.attrs.get('building', '')}")
        ax_t.legend(loc="upper left", ncols=2)
        ax_h.set_ylabel("smoke-layer height above floor (m)")
        ax_h.set_xlabel("time after ignition (min)")
        ax_h.set_ylim(bottom=0.0)
        ax_h.text(0.99, 0.02, "storeys: hottest compartment / lowest layer of the storey (rooms, lobby, corridor)",
                  transform=ax_h.transAxes, ha="right", va="bottom", fontsize=7.5, color="#555555")
    with style():
        fit_titles(fig)
    return fig


def _cmap(name: str):
    import matplotlib

    return matplotlib.colormaps[name]


def tenability_figure(ds):
    """Storey × time map of ``floor_status`` with each storey's ASET (black ticks) and the origin."""
    from matplotlib.colors import BoundaryNorm, ListedColormap
    from matplotlib.patches import Patch

    from physics.fire_io import storey_label
    from viz.plots import fit_titles, new_figure, style

    t = _minutes(ds)
    s = np.asarray(ds["storey"].values, int)
    status = np.asarray(ds["floor_status"].values, float).T
    n = s.size
    with style():
        fig = new_figure(8.0, min(9.0, 3.0 + 0.05 * n))
        ax = fig.add_subplot()
        cmap = ListedColormap(STATUS_COLOURS)
        ax.pcolormesh(t, s + 1, status, shading="nearest", cmap=cmap, norm=BoundaryNorm([-0.5, 0.5, 1.5, 2.5], 3))
        aset = np.asarray(ds["aset_s"].values, float)
        ok = np.isfinite(aset)
        ax.scatter(aset[ok] / 60.0, s[ok] + 1, marker="o", s=14, facecolor="white", edgecolor="k", lw=0.8,
                   zorder=4, label="ASET")
        if "refuge" in ds:
            ref = np.asarray(ds["refuge"].values).astype(bool)
            for r in s[ref]:
                ax.axhline(r + 1, color="#1f5fbf", lw=0.6, alpha=0.6)
        o = _origin(ds)
        ax.scatter([t[0]], [o + 1], marker=">", s=60, color="#ff6a00", zorder=5, label=f"origin {storey_label(o)}")
        handles = [Patch(color=c, label=name) for c, name in zip(STATUS_COLOURS, STATUS_NAMES, strict=True)]
        handles += ax.get_legend_handles_labels()[0]
        if "refuge" in ds and np.asarray(ds["refuge"].values).astype(bool).any():
            from matplotlib.lines import Line2D

            handles.append(Line2D([], [], color="#1f5fbf", lw=0.8, label="refuge floor"))
        ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)
        ax.set_xlabel("time after ignition (min)")
        ax.set_ylabel("storey (L1 = ground)")
        ax.set_ylim(0.5, n + 0.5)
        ax.set_xlim(t[0], t[-1])
        ax.grid(False)
        ax.set_title(f"Escape-route tenability per storey — {ds.attrs.get('building', '')}")
    with style():
        fit_titles(fig)
    return fig


def hrr_figure(ds):
    """Heat release (MW) over time: the building's total and each burning storey's; first events marked."""
    from physics.fire_io import events_of, storey_label
    from viz.plots import fit_titles, new_figure, style

    t = _minutes(ds)
    hrr = np.asarray(ds["heat_release_rate"].values, float) / 1000.0
    per_storey = np.asarray(ds["floor_heat_release"].values, float) / 1000.0
    burning = [int(s) for s in np.flatnonzero(per_storey.max(axis=0) > 0)]
    with style():
        fig = new_figure(7.5, 3.8)
        ax = fig.add_subplot()
        ax.plot(t, hrr.sum(axis=1), color="k", lw=1.8, label="building")
        if len(burning) > 1:
            for s in burning[:8]:
                ax.plot(t, per_storey[:, s], lw=1.0, label=storey_label(s))
        seen = set()
        for e in events_of(ds):
            k = e["kind"]
            if k in MARKED_EVENTS and k not in seen:
                seen.add(k)
                ax.axvline(float(e["time_s"]) / 60.0, color=MARKED_EVENTS[k], ls="--", lw=1.0,
                           label=f"first {k} {float(e['time_s']):.0f} s")
        ax.set_xlabel("time after ignition (min)")
        ax.set_ylabel("heat release rate (MW)")
        ax.set_ylim(bottom=0.0)
        ax.set_title(f"Heat release — {ds.attrs.get('growth', '')} growth, sprinklers "
                     f"{ds.attrs.get('sprinklers', '')}")
        ax.legend(loc="best")
    with style():
        fit_titles(fig)
    return fig


__all__ = ["STATUS_COLOURS", "hrr_figure", "layers_figure", "stair_storeys", "tenability_figure"]
