"""The weak-recovery threshold ``alpha_c`` of :class:`~hdtheory.MultiIndex` as an observable of a solve:
against the linearisation of the state-evolution map itself about ``M = 0`` (``Mhat`` of small
overlaps along a basis of symmetric matrices, a computation that shares only the channel's posterior
with the closed form), against :class:`~hdtheory.Spectral`'s optimal threshold at ``k = 1`` and a
closed form for ``sign(z1 z2)``; its derivative in ``noise`` against finite differences; under
``vmap``."""

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hdtheory as hd

EPS = 1e-8
"""The overlaps at which the map is linearised: its second-order terms are ``EPS`` relative."""


def _absolute(z):
    return jnp.abs(z[..., 0])


@eqx.filter_jit
def _observed(theory):
    """``alpha_c`` and its derivative in ``noise`` as a solve reports them (at the uninformed start,
    below the threshold: the trivial fixed point)."""

    def alpha_c(noise):
        return hd.solve(eqx.tree_at(lambda t: t.noise, theory, noise)).observables["alpha_c"]

    return jax.value_and_grad(alpha_c)(theory.noise)


@eqx.filter_jit
def _linearised(theory):
    """``1 / lambda_max`` of the map's own slope about ``M = 0``: ``Mhat(EPS B) / (alpha EPS)`` for the
    positive semi-definite ``B`` in ``{E_11, E_22, E_11 + E_22 + E_12 + E_21}`` (``k = 2``; ``E_11``
    at ``k = 1``), assembled on the orthonormal basis of symmetric matrices."""
    k = theory.k
    if k == 1:
        return theory.alpha * EPS / theory.conjugate(jnp.full((1, 1), EPS))[0, 0]
    probes = EPS * jnp.asarray([[[1.0, 0.0], [0.0, 0.0]], [[0.0, 0.0], [0.0, 1.0]], [[1.0, 1.0], [1.0, 1.0]]])
    image = jax.vmap(theory.conjugate)(probes) / (theory.alpha * EPS)
    images = jnp.stack([image[0], image[1], (image[2] - image[0] - image[1]) / math.sqrt(2)])
    basis = jnp.stack([probes[0], probes[1], (probes[2] - probes[0] - probes[1]) / math.sqrt(2)]) / EPS
    operator = jnp.einsum("qab,pab->qp", basis, images)
    return 1.0 / jnp.linalg.eigvalsh(0.5 * (operator + operator.T))[-1]


def _at(theory, noise):
    return eqx.tree_at(lambda t: t.noise, theory, jnp.asarray(noise))


def test_product_against_the_linearised_map():
    """``y = z1 z2 + noise`` (``noise = 0.1``; the Hermite rule in ``xi``, exact as ``M -> 0``): the
    observable ``alpha_c`` equals ``1 / lambda_max`` of the map's slope to 1e-7 (measured 6e-9, the
    slope's ``EPS``; the map integrates the posterior at ``omega != 0`` over ``xi``, the closed form
    ``E G M G`` at ``omega = 0``, so that the two differ by their label and posterior rules' errors:
    9e-6 at the default 6 and 4 nodes per panel (4 and 3 in the map), 6e-9 at the 12 and 8 set here),
    and its derivative in ``noise`` equals central differences of the map's thresholds (step 1e-4,
    error about 1e-7 relative) to 1e-5."""
    theory = hd.MultiIndex(
        link="product", k=2, alpha=0.5, noise=0.1, panel_order=0, order=4, label_order=12, inner_order=8
    )
    value, grad = _observed(theory)
    np.testing.assert_allclose(value, _linearised(theory), rtol=1e-7)
    h = 1e-4
    fd = (_linearised(_at(theory, 0.1 + h)) - _linearised(_at(theory, 0.1 - h))) / (2 * h)
    np.testing.assert_allclose(grad, fd, rtol=1e-5)
    assert grad > 0  # noise raises the threshold


def test_sign_product_closed_form_and_vmap():
    """``y = sign(z1 z2)`` flipped with probability ``p``: ``E[z1 z2 | y] = (1 - 2p) 2 y / pi`` and
    ``E[z_i^2 | y] = 1``, so ``alpha_c = pi^2 / (4 (1 - 2p)^2)`` (Troiani et al. 2025, AISTATS,
    arXiv:2405.15480: ``pi^2 / 4`` noiseless) and ``d alpha_c / dp = pi^2 / (1 - 2p)^3``: the
    observable and its derivative under ``vmap`` over ``p`` to 1e-5 (the posterior's rule, 4 nodes per
    panel, is 2e-6 off), including ``p = 0``, the edge of its range, where the derivative is the
    one-sided ``pi^2`` (not ``pi^2 / 4``, which a flip's likelihood held in log space gave), and the
    map's slope to 1e-5."""
    theory = hd.MultiIndex(link="sign-product", k=2, alpha=0.5, noise=0.05, panel_order=0, order=4)
    flips = jnp.asarray([0.0, 0.01, 0.05, 0.2])
    values, grads = jax.vmap(lambda p: _observed(_at(theory, p)))(flips)
    np.testing.assert_allclose(values, math.pi**2 / (4 * (1 - 2 * flips) ** 2), rtol=1e-5)
    np.testing.assert_allclose(grads, math.pi**2 / (1 - 2 * flips) ** 3, rtol=1e-5)
    np.testing.assert_allclose(_linearised(theory), values[2], rtol=1e-5)


# The default run checks alpha_c and its derivative in noise through the same solve above.
@pytest.mark.extended
def test_one_direction_is_the_optimal_spectral_threshold():
    """``k = 1``, ``y = |z| + noise`` (a ``custom`` link): ``alpha_c`` is the optimal spectral method's
    threshold (Defilippis et al. 2025; Mondelli and Montanari 2018 for one direction), computed by
    :class:`~hdtheory.Spectral` from the ``abs`` channel's closed-form partition function: within
    1e-3 (the ``custom`` link's posterior is on panels cut at the kink of ``|z|``, a critical point of the
    link); its derivative in ``noise`` against central differences of ``Spectral``'s threshold (step 1e-3)
    within 1e-2."""
    noise = 0.2
    theory = hd.MultiIndex(k=1, link="custom", link_fn=_absolute, alpha=0.5, noise=noise)
    value, grad = _observed(theory)
    spectral = jax.jit(lambda noise: hd.Spectral(alpha=1.0, channel="abs", noise=noise).threshold())
    np.testing.assert_allclose(value, spectral(noise), rtol=1e-3)
    h = 1e-3
    np.testing.assert_allclose(grad, (spectral(noise + h) - spectral(noise - h)) / (2 * h), rtol=1e-2)
