"""Shenzhen Twin: a digital-twin simulation and GIS engine for city emergency management."""

from twin.errors import TwinError

__version__ = "0.1.0"
__all__ = ["TwinError", "__version__"]
