"""Vibration attenuation laws (physics/vibration_laws.py).

Sources of the expected numbers:
* GB 6722-2014 (Safety regulations for blasting) §13.2.4, Sadovsky's form V = K (Q^(1/3)/R)^alpha and its
  inversion R = (K/V)^(1/alpha) Q^(1/3): K 200, alpha 1.6, Q 10 kg, V 2 cm/s -> R 38.3 m. By hand:
  (200/2)^(1/1.6) = 100^0.625 = 17.7828, 10^(1/3) = 2.15443, product 38.312 m. Tolerance 0.05 m: the figure
  is quoted to 0.1 m.
* Bornitz ratio (Bornitz 1931): v(r)/v1 = (r1/r)^n exp(-a (r - r1)); with a = pi f eta / c
  (Woods & Jedele 1985). Closed forms evaluated by hand below; tolerance round-off (rtol 1e-12).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from physics.vibration_laws import (
    blast_max_charge_kg,
    blast_ppv_cm_s,
    blast_safe_distance_m,
    bornitz_ppv,
    material_damping_per_m,
)
from twin.errors import ValidationError


def test_gb6722_round_trip():
    r = blast_safe_distance_m(2.0, 10.0, 200.0, 1.6)
    assert float(r) == pytest.approx(38.3, abs=0.05)
    assert float(blast_ppv_cm_s(10.0, r, 200.0, 1.6)) == pytest.approx(2.0, rel=1e-12)
    assert float(blast_max_charge_kg(2.0, r, 200.0, 1.6)) == pytest.approx(10.0, rel=1e-12)


def test_gb6722_arrays_broadcast():
    q = np.array([1.0, 8.0, 27.0])
    v = blast_ppv_cm_s(q, 10.0, 150.0, 1.5)
    # Q^(1/3) = 1, 2, 3 -> V = 150 * (0.1, 0.2, 0.3)^1.5
    np.testing.assert_allclose(v, 150.0 * np.array([0.1, 0.2, 0.3]) ** 1.5, rtol=1e-12)


def test_bornitz_ratio():
    # surface waves, n = 0.5, no damping: quadrupling the distance halves the PPV
    assert float(bornitz_ppv(4.0, 5.0, 20.0, 0.5, 0.0)) == pytest.approx(2.0, rel=1e-12)
    # body waves with damping: f 20 Hz, eta 0.1, c 250 m/s -> a = pi*20*0.1/250 = 0.0251327 1/m
    a = float(material_damping_per_m(20.0, 0.1, 250.0))
    assert a == pytest.approx(math.pi * 2.0 / 250.0, rel=1e-12)
    v = float(bornitz_ppv(10.0, 10.0, 30.0, 1.0, a))
    assert v == pytest.approx(10.0 * (10.0 / 30.0) * math.exp(-a * 20.0), rel=1e-12)
    # at r = r1 the law returns v1
    assert float(bornitz_ppv(3.3, 7.0, 7.0, 1.0, a)) == pytest.approx(3.3, rel=1e-12)


@pytest.mark.parametrize(
    ("call", "name", "value"),
    [
        (lambda: blast_ppv_cm_s(-5.0, 10.0, 200.0, 1.6), "charge_kg", "-5.0"),
        (lambda: blast_ppv_cm_s(5.0, 0.0, 200.0, 1.6), "distance_m", "0.0"),
        (lambda: blast_safe_distance_m(2.0, [10.0, -1.0], 200.0, 1.6), "charge_kg", "-1.0"),
        (lambda: blast_max_charge_kg(2.0, float("nan"), 200.0, 1.6), "distance_m", "nan"),
        (lambda: bornitz_ppv(1.0, 5.0, 0.0, 0.5, 0.0), "r_m", "0.0"),
        (lambda: material_damping_per_m(10.0, 0.05, -200.0), "wave_speed_m_s", "-200.0"),
    ],
)
def test_bad_input_names_argument_and_value(call, name, value):
    with pytest.raises(ValidationError) as err:
        call()
    msg = str(err.value)
    assert name in msg and value in msg


def test_bornitz_distance_inverts_bornitz_ppv():
    from physics.vibration_laws import bornitz_distance_m

    a = float(material_damping_per_m(15.0, 0.1, 200.0))
    r = bornitz_distance_m([1.0, 0.2], 1.636, 7.62, 1.0, a)
    np.testing.assert_allclose(bornitz_ppv(1.636, 7.62, r, 1.0, a), [1.0, 0.2], rtol=1e-8)
    # no damping, n = 1: closed form r = r1 v1 / v
    assert float(bornitz_distance_m(0.5, 2.0, 10.0, 1.0, 0.0)) == pytest.approx(40.0, rel=1e-8)
