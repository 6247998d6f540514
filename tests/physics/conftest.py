"""Fixtures shared by the physics tests."""

import numba
import pytest


@pytest.fixture
def one_thread():
    """numba on one thread for the test (a strip of a few rows: thread start-up per step would dominate)."""
    n = numba.get_num_threads()
    numba.set_num_threads(1)
    yield
    numba.set_num_threads(n)
