"""MacDonald's steady 1-D channels (SWASHES, Delestre et al. 2013, IJNMF 72:269, §4.2; MacDonald, Baines,
Nichols & Samuels 1997, J. Hydraul. Eng. 123:1041): the bed is built from a prescribed depth h(x).

For a steady flow with unit discharge q(x) = q0 + R x (R: rain, m/s, bringing mass but no momentum) and
Manning friction, the shallow-water momentum equation gives the bed slope

    z'(x) = -h' (1 - q² / (g h³)) - 2 q R / (g h²) - n² q² / h^(10/3)

(MacDonald's inverse method; R = 0 is the SWASHES form). The bed is that slope integrated from the outlet,
z(L) = 0. Cases (q0, n, L, h(x) of SWASHES §4.2; the rain case is built the same way on the §4.2.1 profile,
with a rain R that is a lateral inflow in scale):

* ``subcritical``: SWASHES §4.2.1, L = 1000 m, q = 2 m²/s, n = 0.033,
  h = (4/g)^(1/3) (1 + exp(-16 (x/1000 - 1/2)²) / 2);
* ``transcritical``: SWASHES §4.2.3 (short domain, transcritical with a hydraulic jump at x = 200/3 m),
  L = 100 m, q = 2 m²/s, n = 0.0328;
* ``rain``: the §4.2.1 profile with q = 1.5 + 5e-4 x m²/s (1800 mm/h of rain), n = 0.033, L = 1000 m.

The local-inertial scheme drops the advective term q²/h: at its steady state the water-surface slope
balances friction alone, n² q² = h_f^(10/3) (eta_i - eta_{i+1}) / dx at every face (h_f = max(eta) -
max(z)). :func:`li_steady` solves that relation face by face from the downstream level: the state the
scheme must reach on a given grid, to compare with the shallow-water h(x) (their gap is the neglected
term, of relative size Fr² = q² / (g h³)).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.integrate import quad
from scipy.optimize import brentq

G = 9.80665


@dataclass(frozen=True)
class Case:
    name: str
    length_m: float
    q0: float  # upstream unit discharge (m²/s)
    rain_m_s: float  # R: q(x) = q0 + R x
    n: float  # Manning
    jump_x: float | None = None  # hydraulic jump position (m)

    def q(self, x):
        return self.q0 + self.rain_m_s * np.asarray(x, dtype=np.float64)

    def h(self, x):
        """The prescribed (exact shallow-water) depth (m)."""
        x = np.asarray(x, dtype=np.float64)
        hc = (4.0 / G) ** (1.0 / 3.0)
        if self.name in ("subcritical", "rain"):
            return hc * (1.0 + 0.5 * np.exp(-16.0 * (x / 1000.0 - 0.5) ** 2))
        a1, a2, a3, a4 = 0.674202, 21.7112, 14.492, 1.4305
        s = x / 100.0 - 2.0 / 3.0
        up = hc * (4.0 / 3.0 - x / 100.0) - 9.0 * x / 1000.0 * s
        down = hc * (a1 * s**4 + a1 * s**3 - a2 * s**2 + a3 * s + a4)
        return np.where(x <= 200.0 / 3.0, up, down)

    def dh(self, x, eps=1e-4):
        return (self.h(x + eps) - self.h(x - eps)) / (2 * eps)

    def slope(self, x):
        """z'(x) of the module docstring."""
        h, q = self.h(x), self.q(x)
        return (-self.dh(x) * (1.0 - q * q / (G * h**3)) - 2.0 * q * self.rain_m_s / (G * h * h)
                - self.n**2 * q * q / h ** (10.0 / 3.0))

    def bed(self, x):
        """z(x) (m), z(L) = 0, integrating the slope piecewise (the jump is a break point)."""
        out = []
        brk = [] if self.jump_x is None else [self.jump_x]
        for xi in np.atleast_1d(np.asarray(x, dtype=np.float64)):
            pts = [p for p in brk if xi < p < self.length_m]
            v, _ = quad(lambda s: float(self.slope(s)), xi, self.length_m, points=pts or None, limit=200,
                        epsabs=1e-12, epsrel=1e-12)
            out.append(-v)
        return np.asarray(out)

    def froude2(self, x):
        return self.q(x) ** 2 / (G * self.h(x) ** 3)


CASES = {
    "subcritical": Case("subcritical", 1000.0, 2.0, 0.0, 0.033),
    "transcritical": Case("transcritical", 100.0, 2.0, 0.0, 0.0328, jump_x=200.0 / 3.0),
    "rain": Case("rain", 1000.0, 1.5, 5e-4, 0.033),
}


def li_steady(z: np.ndarray, q_faces: np.ndarray, n: float, dx: float, eta_ghost: float) -> np.ndarray:
    """Water level (m) per cell of the local-inertial steady state on a 1-D grid, marched upstream.

    ``z`` the cells' bed (m), ``q_faces`` (len(z),) the unit discharge (m²/s, > 0, downstream) of the
    face east of each cell, the last one the outlet face to a ghost cell at level ``eta_ghost`` over the
    last cell's bed. Each face: n² q² = h_f^(10/3) (eta_up - eta_down) / dx, h_f = max(eta) - max(z).
    """
    nc = z.size
    eta = np.empty(nc)
    down, zd = eta_ghost, z[-1]
    for i in range(nc - 1, -1, -1):
        zf = max(z[i], zd)
        target = n * n * q_faces[i] ** 2 * dx

        def f(e, down=down, zf=zf, target=target):
            return (e - zf) ** (10.0 / 3.0) * (e - down) - target

        lo = max(down, zf)
        hi = lo + 1.0
        while f(hi) < 0:
            hi += 1.0
        eta[i] = brentq(f, lo, hi, xtol=1e-14, rtol=1e-15)
        down, zd = eta[i], z[i]
    return eta
