"""carotidkit: carotid ultrasound to cardiovascular-risk evidence, notebook by notebook.

Light on purpose: importing carotidkit never imports TensorFlow or torch; the submodules that
need them (``carotidkit.segment``, ``carotidkit.vd``) import them when used.
"""

from __future__ import annotations

__version__ = "0.1.0"

from . import io, profiles  # noqa: E402  (both are stdlib/numpy-only)

__all__ = ["__version__", "io", "profiles"]
