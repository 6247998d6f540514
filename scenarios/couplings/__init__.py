"""Coupling modules of the coupled runner: one module per model, each registers its coupling.

Every module here whose name does not start with ``_`` is imported by
:func:`scenarios.coupling.couplings` on first use.
"""
