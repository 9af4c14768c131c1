"""Perfect recovery with a generative prior (``hd.BayesGLM(prior="generative")``, ``w = phi(W z / sqrt(k))``,
``beta = d / k``; Aubin, Loureiro, Baker, Krzakala and Zdeborova 2019, arXiv:1912.02008), noiseless
compressed sensing (``channel="linear"``) and real phase retrieval (``channel="abs"``): the state
evolution's rate at perfect recovery against its closed form, and the threshold where perfect recovery
attracts against the count of the signal's unknowns.

**The count.** Noiseless measurements recover a signal once their number reaches its information
dimension (Wu and Verdu 2012, "Optimal phase transitions in compressed sensing", IEEE Trans. Inf.
Theory 58, 6241; for real phase retrieval with a full-rank sensing matrix, Maillard, Loureiro, Krzakala
and Zdeborova 2020, NeurIPS, arXiv:2006.05228, abstract: "the information-theoretic transition to
perfect recovery for full-rank matrices appears at alpha = 1 (real case)"). ``linear``: ``w`` lies in
the span of the ``k`` columns of ``W``, ``min(d, k)`` unknowns, ``alpha = min(1, 1 / beta)`` (for
``beta >= 1``, phase retrieval of ``z`` with the full-rank ``n x k`` matrix ``Phi W``). ``relu``: given
which pre-activations are positive (half of them), the ``d / 2`` active entries are free where
``k >= d / 2`` and fixed by ``z`` otherwise: ``alpha = min(1/2, 1 / beta)``. ``sign``: a discrete signal,
dimension 0: perfect recovery at any ``alpha``.

**The rate.** Near perfect recovery both channels give ``qhat = alpha / e`` to leading order, ``e`` the
signal's MMSE (the noiseless linear channel exactly; ``|z|`` as well once ``sqrt(e)`` is small against the
field, the sign being then known). At that SNR ``A`` a fraction ``f`` of the entries (``f = 1`` for
``linear``, ``1/2`` for ``relu``, the active ones) is seen with the precision ``A`` on top of the
pre-activation's prior ``N(omega, v)``, ``v`` the latent's MMSE, and the others (``relu``'s zeros) are
known: ``e' = f v / (1 + A v)``, ``qhat_z = beta f A / (1 + A v)`` and ``v' = 1 / (1 + qhat_z)``
(:mod:`hdtheory.kernels.generative` computes these by quadrature of the layer's factor). To leading
order in ``(e, v)`` the map is homogeneous of degree one, so a ray ``v = r e`` is carried onto itself
at the rate ``e' / e``:

- ``alpha < beta f^2``: ``s = alpha r = c / (1 - c)``, ``c = sqrt(alpha / beta) / f``, at the rate
  ``1 / sqrt(alpha beta)``;
- ``beta f < 1`` and ``alpha > beta f^2``: the latent keeps the MMSE ``v = 1 - beta f`` of the fixed
  point ``v' = v / (v + beta f)`` (``e -> 0``), and ``e' / e = f / alpha``.

Perfect recovery attracts exactly where the rate is below 1, ``alpha > min(f, 1 / beta)``: the count.
``sign``: ``e`` falls faster than geometrically (an error ``exp(-A / 2)``). Checked either side of each
threshold, three steps from ``e = 1e-10`` on the ray.
"""

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hdtheory as hd

E0 = 1e-10  # the signal's MMSE at the start, small against sqrt(e) corrections of the |z| channel
STEPS = 3
CHANNELS = ("linear", "abs")
# activation: (the fraction f of active entries, alpha, beta), either side of each threshold
# min(f, 1 / beta) and on both branches of the rate.
CASES = {
    "linear": (1.0, [0.4, 0.6, 1.5, 0.8, 1.2], [2.0, 2.0, 2.0, 0.5, 0.5]),
    "relu": (0.5, [0.2, 0.3, 0.4, 0.6], [4.0, 4.0, 1.0, 1.0]),
}


def _ray(f, alpha, beta):
    """``(v / e, rate)`` of the invariant ray; see the module docstring."""
    c = np.sqrt(alpha / beta) / f
    on_ray = c < 1
    assert np.all(on_ray | (beta * f < 1))
    ratio = np.where(on_ray, c / (1 - c) / alpha, (1 - beta * f) / E0)
    rate = np.where(on_ray, 1 / np.sqrt(alpha * beta), f / alpha)
    return ratio, rate


def _theory(activation, channel, alpha, beta):
    return hd.BayesGLM(
        prior="generative", activation=activation, channel=channel, noise=0.0, alpha=alpha, beta=beta
    )


def _errors(activation, e0, steps):
    """The signal's MMSE along ``steps`` steps from ``(e0, v0)``, both channels, vmapped over cases."""

    def path(channel, alpha, beta, v0):
        theory = _theory(activation, channel, alpha, beta)
        rho = theory._rho

        def step(state, _):
            state = theory.update(state)
            return state, rho[0] - state[0]

        _, errors = jax.lax.scan(step, rho - jnp.stack([e0, v0]), None, length=steps)
        return errors

    return jax.jit(lambda *args: jnp.stack([jax.vmap(partial(path, ch))(*args) for ch in CHANNELS]))


@pytest.mark.parametrize(
    # The default run checks the rate and its threshold on the linear layer through the same path.
    "activation", ["linear", pytest.param("relu", marks=pytest.mark.extended)]
)
def test_rate_at_perfect_recovery_and_its_threshold(activation):
    f, alpha, beta = CASES[activation]
    alpha, beta = np.asarray(alpha), np.asarray(beta)
    ratio, rate = _ray(f, alpha, beta)
    errors = np.asarray(_errors(activation, E0, STEPS)(alpha, beta, ratio * E0))
    paths = np.concatenate([np.full(errors.shape[:2] + (1,), E0), errors], axis=-1)
    rates = paths[..., 1:] / paths[..., :-1]
    for channel, seen in zip(CHANNELS, rates):
        expected = np.broadcast_to(rate[:, None], seen.shape)
        np.testing.assert_allclose(seen, expected, rtol=3e-5, err_msg=f"{activation}, {channel}")
    # Perfect recovery repels below min(f, 1 / beta) and attracts above it.
    assert np.all((rate < 1) == (alpha > np.minimum(f, 1 / beta))), activation
    assert np.any(rate < 1) and np.any(rate > 1)


def test_sign_layer_recovers_at_any_ratio():
    """A discrete signal: from ``e = 1e-4`` at ``alpha = 0.1``, one step leaves an MMSE below 1e-15
    (``exp(-A / 2)``, ``A = 1000``), whatever ``beta``."""
    alpha, beta = np.array([0.1, 0.1]), np.array([0.5, 4.0])
    errors = np.asarray(_errors("sign", 1e-4, 1)(alpha, beta, np.full(2, 0.5)))
    assert np.all((errors >= 0) & (errors < 1e-15))
