"""Multi-layer AMP at finite d for the spiked Wishart model with a generative prior on ``v``, against
the state evolution of :class:`hdtheory.Spiked` (``prior="generative"``, ``ensemble="wishart"``)
iteration by iteration."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hdtheory as hd
from hdtheory.simulate.spiked import generative_amp_errors


@pytest.mark.parametrize(
    "activation, snr, alpha, beta",
    [
        # The default run checks the Wishart AMP on the linear layer through the same path.
        pytest.param("sign", 1.2, 2.0, 1.0, marks=pytest.mark.extended),
        ("linear", 1.0, 1.5, 2.0),
    ],
)
def test_amp_follows_state_evolution(activation, snr, alpha, beta):
    """From ``u_0 = v_0 = 0`` and a side observation of the latent at SNR 1 (``q_z = 1/2``), the errors
    fall (sign: ``mmse_v`` 1 to 0.38, ``mmse_u`` 1 to 0.57; linear: 1 to 0.42 and 0.63) in a few
    iterations. Three seeds averaged at d = 1000 (n = alpha d rows) follow the prediction within
    ``2 / sqrt(d)`` (seen within 1.4 / sqrt(d)); without the Onsager terms sign's ``mmse_v`` misses by
    3.3 / sqrt(d). Each iteration updates ``u`` from ``v``, then ``v`` and the layer from the new
    ``u``, as the state evolution does."""
    d, steps, snr0 = 1000, 8, 1.0
    theory = hd.Spiked(
        prior="generative", ensemble="wishart", activation=activation, snr=snr, alpha=alpha, beta=beta
    )
    errors = generative_amp_errors(theory, d=d, seeds=3, steps=steps, snr0=snr0, key=jax.random.PRNGKey(1))
    predicted = hd.iterate(theory, steps, init=jnp.array([0.0, 0.0, snr0 / (1 + snr0)]))
    assert set(errors) == {"mmse_u", "mmse_v", "mmse_z", "mmse_matrix"}
    for key, error in errors.items():
        assert error.shape == (3, steps + 1)
        np.testing.assert_allclose(np.mean(error, axis=0), predicted[key], atol=2 / np.sqrt(d), err_msg=key)
    for key in ("mmse_u", "mmse_v"):
        assert predicted[key][0] - predicted[key][-1] > 10 / np.sqrt(d)
