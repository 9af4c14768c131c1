"""Numerical kernels the theories are written with (installed as ``hdtheory.kernels``).

- :mod:`~hdtheory.kernels.quadrature`: Gauss-Hermite and panel rules, Gaussian expectations, sums over the modes of a spectrum.
- :mod:`~hdtheory.kernels.multivariate`: expectations over ``K`` correlated fields, tilted
  (posterior) moments, orthant probabilities, proximal operators with a matrix step (softmax cross-entropy, square).
- :mod:`~hdtheory.kernels.losses`: losses with their proximal operators and derivatives.
- :mod:`~hdtheory.kernels.preimages`: the posterior of one field seen through a smooth link and Gaussian
  noise, on panels at the preimages of the label.
- :mod:`~hdtheory.kernels.channels`: teacher channels ``Z(y, omega, V)`` and label quadratures; the noise
  sensitivity exponent of a link.
- :mod:`~hdtheory.kernels.robustness`: the boundary error of a linear classifier under an l2 attack, and the
  part of it that only attacks changing the teacher's label cause.
- :mod:`~hdtheory.kernels.separability`: the separability threshold of a channel's labels.
- :mod:`~hdtheory.kernels.resampling`: laws of sample weights (bootstrap, subsampling) and the channel
  side of two learners trained on the same data.
- :mod:`~hdtheory.kernels.calibration`: calibration metrics of a linear classifier's confidence.
- :mod:`~hdtheory.kernels.activations`: activations with their Gaussian integrals (committee ODEs).
- :mod:`~hdtheory.kernels.penalties`: elastic-net and lp penalties with their proximal operators and
  the weight side of ERM (closed forms for the elastic nets), the box that a sup-norm term sets.
- :mod:`~hdtheory.kernels.priors`: priors ``Z_0(B, A)`` and their scalar Bayes denoisers.
- :mod:`~hdtheory.kernels.generative`: generative priors ``v = phi(W z / sqrt(k))`` and stacks of
  them, their two-sided factor and layer state evolution.
- :mod:`~hdtheory.kernels.free`: the free convolution of a list of eigenvalues with a semicircle, and the
  eigenvalue soft threshold of a Wigner-perturbed matrix averaged over it (nuclear-norm denoising).
- :mod:`~hdtheory.kernels.rates`: decay exponents fitted from a curve.
- :mod:`~hdtheory.kernels.roots`: roots of scalar functions in a bracket, differentiable by the implicit
  function theorem.
"""

from .activations import ACTIVATIONS, Activation, CommitteeMoments, Hermite, hermite_series
from .calibration import (
    bayes_calibration,
    calibration_curve,
    calibration_metrics,
    expectation_consistent_temperature,
    optimal_temperature,
)
from .channels import (
    CHANNELS,
    GLM_CHANNELS,
    Abs,
    Channel,
    Linear,
    Logit,
    NoiseSensitivity,
    Outliers,
    Probit,
    Random,
    ReLU,
    Sign,
    noise_sensitivity_exponent,
)
from .generative import GENERATIVE_ACTIVATIONS, Generative, compose
from .preimages import preimage_rule, preimage_tilted_moments
from .priors import PRIORS, Discrete, GaussBernoulli, Gaussian, Prior, Rademacher, SparseRademacher
from .losses import LOSSES, ROBUST_LOSSES, Absolute, Cauchy, Hinge, Huber, Logistic, Loss, RobustLoss, Square, Tukey
from .penalties import (
    L1,
    LP,
    PENALTIES,
    Clipped,
    ElasticNet,
    ElasticNetFamily,
    Penalty,
    Ridge,
    WeightAverages,
    lp_prox,
)
from .multivariate import (
    cross_entropy,
    cross_entropy_prox,
    gaussian_expectation_2d,
    gaussian_expectation_nd,
    gaussian_tilted_moments,
    half_line_moments,
    line_panel_rule,
    orthant_probability,
    piecewise_linear_tilted_moments,
    prox_newton,
    sign_tilted_moments,
    square_prox,
    zero_cut_rule,
)
from .quadrature import (
    gaussian_expectation,
    hermite_rule,
    inverse_gamma_rule,
    legendre_panels,
    mode_rule,
    modes_up_to,
    panel_rule,
    transition_rule,
)
from .robustness import boundary_error, inconsistent_error
from .separability import Separability, separability_threshold

__all__ = [
    "ACTIVATIONS",
    "Hermite",
    "hermite_series",
    "Activation",
    "CommitteeMoments",
    "CHANNELS",
    "Channel",
    "Linear",
    "Logit",
    "Probit",
    "Sign",
    "Random",
    "ReLU",
    "Abs",
    "GLM_CHANNELS",
    "NoiseSensitivity",
    "noise_sensitivity_exponent",
    "PRIORS",
    "GENERATIVE_ACTIVATIONS",
    "Generative",
    "compose",
    "Prior",
    "Gaussian",
    "Rademacher",
    "GaussBernoulli",
    "Discrete",
    "SparseRademacher",
    "LOSSES",
    "ROBUST_LOSSES",
    "Loss",
    "Absolute",
    "Outliers",
    "RobustLoss",
    "Tukey",
    "Cauchy",
    "Square",
    "Logistic",
    "Hinge",
    "Huber",
    "PENALTIES",
    "Penalty",
    "Ridge",
    "L1",
    "Clipped",
    "ElasticNet",
    "ElasticNetFamily",
    "LP",
    "lp_prox",
    "WeightAverages",
    "hermite_rule",
    "gaussian_expectation",
    "gaussian_expectation_2d",
    "gaussian_expectation_nd",
    "gaussian_tilted_moments",
    "half_line_moments",
    "piecewise_linear_tilted_moments",
    "preimage_rule",
    "preimage_tilted_moments",
    "orthant_probability",
    "line_panel_rule",
    "cross_entropy",
    "cross_entropy_prox",
    "prox_newton",
    "square_prox",
    "sign_tilted_moments",
    "zero_cut_rule",
    "panel_rule",
    "transition_rule",
    "inverse_gamma_rule",
    "legendre_panels",
    "mode_rule",
    "modes_up_to",
    "calibration_metrics",
    "calibration_curve",
    "expectation_consistent_temperature",
    "bayes_calibration",
    "optimal_temperature",
    "boundary_error",
    "inconsistent_error",
    "Separability",
    "separability_threshold",
]
