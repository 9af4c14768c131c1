"""LAMP, the spectral method of linearised multi-layer AMP (Aubin, Loureiro, Maillard, Krzakala and
Zdeborova 2019, "The spiked matrix model with generative priors", NeurIPS, arXiv:1905.12385), at finite
d against the authors' published material, and through a ``sign`` layer.

The authors' demonstration repository (github.com/benjaminaubin-zz/StructuredPrior_demo):

- ``Demo_RMT/notebook.nb``, "Random matrix analysis of the v v^T linear setting": the spectrum of
  ``Gamma_k = W^T (xi / sqrt(Delta) - I / Delta) W / k`` plus the spike (their ``alpha = p / k`` is
  ``beta`` here, their ``Delta`` is ``1 / snr``); "an eigenvalue equal to 1 detaches at
  ``Delta = Delta_c(alpha) = 1 + alpha``", and the squared correlation ``epsilon(Delta)`` of the
  estimate with the spike, ``alpha Delta^2 / T12(alpha, Delta, g(1))``, whose curve at ``alpha = 2``
  the notebook saves in its output ``Out[81]`` (300 points, ``Delta = 0.001, 0.011, ..., 2.991``);
- ``Demo_AMP_SE_Spectral/Class/Spectral_structuredPrior.py`` (``training_UU``, method ``'lAMP'``):
  LAMP through a sign layer with ``Sigma = (2 / pi) X X^T / N + (1 - 2 / pi) I`` (their ``X`` is
  ``W`` here, ``N`` is ``k``) in place of the linear layer's ``W W^T / k``.
"""

import jax
import numpy as np
import pytest

import hdtheory as hd
from hdtheory.simulate import _layers
from hdtheory.simulate.spiked import _lamp_factor, lamp

D = 1000
SEEDS = 3


def _lamp(delta, activation="linear", beta=2.0):
    theory = hd.Spiked(prior="generative", ensemble="wigner", snr=1 / delta, activation=activation, beta=beta)
    return lamp(theory, d=D, seeds=SEEDS, key=jax.random.PRNGKey(1))


@pytest.mark.parametrize(
    "delta, epsilon",
    [
        (0.501, 0.7845334336),
        # The default run checks the notebook's curve at Delta = 0.501 through the same path.
        pytest.param(1.001, 0.6030480998, marks=pytest.mark.extended),
    ],
)
def test_linear_lamp_overlap_is_the_notebooks_epsilon(delta, epsilon):
    """``epsilon(Delta)`` at ``alpha = 2`` from the notebook's saved curve (``Out[81]``, to 10 digits;
    it vanishes at ``Delta_c = 3``, ``epsilon(2.991) = 0.0025``): the mean over 3 seeds at d = 1000 of
    the squared cosine of LAMP's estimate with the spike (seen 0.790 and 0.627; the
    latent's cosine, 0.67 and 0.50, and PCA's, 0.51 and 0.14, are not it). Nearer the transition the
    finite size lifts it: at ``Delta = 1.501``, 0.472 over 4 seeds and 0.475 over 2 at d = 2000
    against ``epsilon = 0.4382``. From ``Delta = 1`` on, the top eigenvalue is the notebook's outlier
    at 1 (seen 1.05-1.11), above the bulk (0.53-0.62)."""
    out = _lamp(delta)
    assert abs(float(np.mean(out["overlap"])) - epsilon) < 0.05
    if delta >= 1:
        assert abs(float(np.mean(out["eigenvalue"])) - 1) < 0.1
        assert np.all(out["eigenvalue"] - out["bulk_edge"] > 0.1)


def test_linear_lamp_past_the_threshold_tops_out_at_the_notebooks_bulk_edge():
    """At ``alpha = 1`` past ``Delta_c = 2`` no eigenvalue detaches: the top one is the bulk's edge
    ``lambda_max(alpha, Delta)`` (the Stieltjes inverse at the edge's ``s``), the notebook's
    ``Out[49]`` (91 points, ``Delta = 0.5, 0.55, ..., 5``; its ``lambda_1`` is 1 up to ``Delta_c`` and
    ``lambda_2`` from there): 0.962901563 at ``Delta = 3.2``. The mean over 3 seeds at d = 1000 (seen
    0.949-0.969, mean 0.9588; Tracy-Widom's scale ``k^(-2/3)`` is 0.01), the estimate noise (seen at
    most 0.094)."""
    out = _lamp(3.2, beta=1.0)
    assert abs(float(np.mean(out["eigenvalue"])) - 0.962901563) < 0.02
    assert np.all(out["overlap"] < 0.15)


@pytest.mark.parametrize(
    "activation, beta, delta_c, inside",
    [("sign", 2.0, 1 + 8 / np.pi**2, 1.3), ("sign,linear", (1.0, 2.0), 3 + 8 / np.pi**2, 1.9)],
)
def test_lamp_through_sign_layers_recovers_where_pca_does_not_up_to_the_state_evolution_threshold(
    activation, beta, delta_c, inside
):
    """Weak recovery of the zero-mean stacks (the linearised state evolution, from the top layer ``L``
    down: ``Delta_c = rho_L^2 + beta_L slope_L^4 (rho_{L-1}^2 + beta_{L-1} slope_{L-1}^4 (...))``,
    ``slope^2 = 2 / pi`` for sign; ``threshold`` locates it, 0.2624280 for the stack against
    ``1 / (3 + 8 / pi^2) = 0.2624280``, and ``Delta_c = 1 + 4 beta / pi^2`` for one sign layer,
    tests/test_spiked_generative_nonlinear.py): 1.81 for sign at ``beta = 2``, 3.81 for sign then a
    linear layer of ratio 2. Inside it and past PCA's ``Delta = 1``, LAMP's squared cosine is of order
    one (seen 0.27-0.31 for sign at ``Delta = 1.3``, 0.26-0.48 for the stack at 1.9) and PCA's is not
    (seen at most 0.04); at twice ``Delta_c`` it is noise (seen at most 0.097 and 0.046) and the
    outlier at 1 is gone (the top eigenvalue 0.88-0.94)."""
    inside, outside = _lamp(inside, activation, beta), _lamp(2 * delta_c, activation, beta)
    assert np.all(inside["overlap"] > 0.15) and np.all(inside["pca_overlap"] < 0.1)
    assert np.all(outside["overlap"] < 0.15) and np.all(outside["eigenvalue"] < 0.97)


def test_the_sign_layers_covariance_is_the_authors_sigma():
    """``L L^T`` of the factor LAMP uses is the authors' ``Sigma`` for the sign layer (and ``F F^T`` for
    the linear one), on a small instance."""
    for activation, expected in [
        ("sign", lambda F: 2 / np.pi * F @ F.T + (1 - 2 / np.pi) * np.eye(F.shape[0])),
        ("linear", lambda F: F @ F.T),
    ]:
        stack = hd.Spiked(prior="generative", activation=activation, beta=2.0)._priors()[0]
        k = _layers.widths(stack, 40)
        _, _, _, Fs, _ = _layers.draw(stack, jax.random.PRNGKey(0), k, 0.0)
        L = _lamp_factor(stack, Fs)
        np.testing.assert_allclose(L @ L.T, expected(np.asarray(Fs[0])), atol=1e-12)


def test_relu_is_refused():
    """ReLU's mean is not zero: AMP has no uninformed point ``x = 0`` to linearise about."""
    with pytest.raises(NotImplementedError, match="zero-mean"):
        lamp(hd.Spiked(prior="generative", activation="relu"), d=10)
