"""Numerical kernels the theories are written with (installed as ``hdtheory.kernels``).

- :mod:`~hdtheory.kernels.quadrature`: Gauss-Hermite and panel rules, Gaussian expectations.
- :mod:`~hdtheory.kernels.losses`: losses with their proximal operators and derivatives.
- :mod:`~hdtheory.kernels.channels`: teacher channels ``Z(y, omega, V)`` and label quadratures.
- :mod:`~hdtheory.kernels.activations`: activations with their Gaussian integrals (committee ODEs).
"""

from .activations import ACTIVATIONS, Activation
from .channels import CHANNELS, Channel, Linear, Probit, Sign
from .losses import LOSSES, Hinge, Huber, Logistic, Loss, Square
from .quadrature import gaussian_expectation, gaussian_expectation_2d, hermite_rule, panel_rule

__all__ = [
    "ACTIVATIONS",
    "Activation",
    "CHANNELS",
    "Channel",
    "Linear",
    "Probit",
    "Sign",
    "LOSSES",
    "Loss",
    "Square",
    "Logistic",
    "Hinge",
    "Huber",
    "hermite_rule",
    "gaussian_expectation",
    "gaussian_expectation_2d",
    "panel_rule",
]
