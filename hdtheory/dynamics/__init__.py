"""ODE theories: online SGD followed through a few summary statistics.

- :class:`Committee`: two-layer committee machines (Saad & Solla 1995; Goldt et al. 2019).

Each is an :class:`~hdtheory.ODETheory`, integrated by :func:`hdtheory.integrate`.
"""

from .committee import Committee, CommitteeState

DYNAMICS = {"committee": Committee}
"""The ODE theories by their command-line names."""

__all__ = ["Committee", "CommitteeState", "DYNAMICS"]
