"""Numba kernel of 1-D transient heat conduction through compartment walls (implicit finite differences).

CFAST's approach (Jones et al., CFAST Technical Reference Guide, NIST TN 1889v1, "conduction"): each
wall is a slab of one material discretised through its thickness into nodes, advanced by backward
Euler (unconditionally stable), the exposed face taking the heat flux the gas and the flame give it,
the back face losing to the space behind by a linear coefficient. Finite volumes: node j at depth
x_j (x_0 = 0 the exposed face, x_{n-1} = L the back face) holds the heat capacity
ρc·(Δx_{j-1} + Δx_j)/2 per m² (half cells at the faces) and exchanges k/Δx_j with node j + 1, so the
stored energy Σ C_j·T_j changes by exactly dt·(q″ − h_b·(T_{n-1} − T_b)) per step (round-off).

Arrays per wall (one row per compartment): ``temps`` (N, n) node temperatures (K), ``cap`` (N, n)
capacities (J/m²K), ``cond`` (N, n − 1) conductances (W/m²K); :func:`wall_grid` builds a row.
"""

from __future__ import annotations

import numpy as np
from numba import njit


def wall_grid(k: float, rho: float, c: float, thickness_m: float, n: int = 12,
              ratio: float = 1.35) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Node depths (m), capacities (J/m²K) and conductances (W/m²K) of a slab of ``n`` nodes whose spacings grow
    by ``ratio`` from the exposed face (fine where the heat goes in first, as CFAST's grid)."""
    steps = ratio ** np.arange(n - 1)
    dx = thickness_m * steps / steps.sum()
    x = np.concatenate([[0.0], np.cumsum(dx)])
    cap = np.zeros(n)
    cap[:-1] += 0.5 * rho * c * dx
    cap[1:] += 0.5 * rho * c * dx
    return x, cap, k / dx


@njit(cache=True)
def advance(temps, cap, cond, flux, h_back, t_back, dt, scratch):
    """One backward-Euler step of every wall in place: ``flux`` (N,) W/m² into the exposed face, the back face
    losing ``h_back`` (N,) W/m²K to ``t_back`` (N,) K. Returns nothing; ``scratch`` (N, 2n) work space.

    C_j·(T_j' − T_j)/dt = G_{j-1}·(T_{j-1}' − T_j') + G_j·(T_{j+1}' − T_j') + sources at the faces, a
    tridiagonal system solved by the Thomas algorithm (diagonally dominant)."""
    nw = temps.shape[1]
    for i in range(temps.shape[0]):
        cp_ = scratch[i, :nw]
        dp_ = scratch[i, nw:]
        # forward sweep: a_j T_{j-1} + b_j T_j + c_j T_{j+1} = d_j
        for j in range(nw):
            b = cap[i, j] / dt
            d = cap[i, j] / dt * temps[i, j]
            a = 0.0
            c = 0.0
            if j > 0:
                a = -cond[i, j - 1]
                b += cond[i, j - 1]
            if j < nw - 1:
                c = -cond[i, j]
                b += cond[i, j]
            if j == 0:
                d += flux[i]
            if j == nw - 1:
                b += h_back[i]
                d += h_back[i] * t_back[i]
            if j > 0:
                b -= a * cp_[j - 1]
                d -= a * dp_[j - 1]
            cp_[j] = c / b
            dp_[j] = d / b
        temps[i, nw - 1] = dp_[nw - 1]
        for j in range(nw - 2, -1, -1):
            temps[i, j] = dp_[j] - cp_[j] * temps[i, j + 1]
