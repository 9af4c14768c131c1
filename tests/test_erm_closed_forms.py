"""The linear teacher with a loss of the residual (Huber; the square loss has the ridge closed form in
test_erm.py): channel integrals in closed form.

The reference is the definition itself (``erm`` module docstring): the double integral over the
student's field ``xi`` and the teacher's label noise ``eta``, by panels whose edges sit at the
prox's kinks, independent of the Gaussian-residual reduction the model uses.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

import hdtheory as hd
from hdtheory.models.erm import Overlaps


def reference(theory, m, q, V, nodes=60):
    """``(mhat, qhat, Vhat, train_loss)`` from their definitions, integrated over the student's
    field ``xi`` and the label noise ``eta`` (``y = omega_0 + s0 eta``) by Gauss-Legendre panels in
    NumPy: in ``eta`` with edges at the prox's two kinks (exact on each piece up to the Gaussian
    weight), in ``xi`` (smooth once ``eta`` is integrated) on ``[-12, 12]`` in 16 panels."""
    alpha, rho, noise = float(theory.alpha), float(theory.rho), float(theory.noise)
    delta = float(theory.delta)
    s0 = np.sqrt(rho - m * m / q + noise)  # the label's spread about omega_0
    x, w = np.polynomial.legendre.leggauss(nodes)

    def panels(edges):
        """Nodes and weights of Gauss-Legendre panels between consecutive ``edges`` (last axis)."""
        a, b = edges[..., :-1, None], edges[..., 1:, None]
        t = (a + b) / 2 + (b - a) / 2 * x
        return t.reshape(*edges.shape[:-1], -1), ((b - a) / 2 * w).reshape(*edges.shape[:-1], -1)

    xi, w_xi = panels(np.linspace(-12.0, 12.0, 17))
    omega, omega0 = np.sqrt(q) * xi, m / np.sqrt(q) * xi
    kinks = (omega[:, None] - omega0[:, None] + np.array([-1.0, 1.0]) * delta * (1 + V)) / s0
    edges = np.concatenate([np.full((xi.size, 1), -14.0), np.clip(kinks, -14, 14), np.full((xi.size, 1), 14.0)], 1)
    eta, w_eta = panels(edges)
    y = omega0[:, None] + s0 * eta
    r = y - omega[:, None]
    inside = np.abs(r) <= delta * (1 + V)
    prox = np.where(inside, (omega[:, None] + V * y) / (1 + V), omega[:, None] + V * delta * np.sign(r))
    f = (prox - omega[:, None]) / V
    residual = np.abs(y - prox)
    loss = np.where(residual <= delta, 0.5 * residual**2, delta * residual - 0.5 * delta**2)
    weight = (w_xi * stats.norm.pdf(xi))[:, None] * w_eta * stats.norm.pdf(eta)
    return {
        "mhat": alpha * np.sum(weight * eta / s0 * f),  # d_omega0 Z_0 / Z_0 = (y - omega_0) / s0^2
        "qhat": alpha * np.sum(weight * f**2),
        "Vhat": alpha * np.sum(weight * inside / (1 + V)),  # -d_omega f
        "train_loss": np.sum(weight * loss),
    }


THEORIES = [
    hd.ERM(alpha=2.0, lam=0.1, loss="huber", delta=0.7, noise=0.3, teacher="linear"),
    hd.ERM(alpha=0.5, lam=0.01, loss="huber", delta=2.0, noise=1.5, rho=2.0, teacher="linear"),
]


@pytest.mark.parametrize("theory", THEORIES, ids=lambda t: f"{t.loss}-alpha{float(t.alpha)}")
def test_fixed_point_satisfies_the_equations_integrated_by_panels(theory):
    """The solved state is a fixed point of the update whose integrals are done by panels: the
    conjugates agree to 1e-10, and so do the state they give and the training loss."""
    sol = hd.solve(theory)
    assert bool(sol.converged)
    m, q, V = (float(getattr(sol.state, k)) for k in ("m", "q", "V"))
    ref = reference(theory, m, q, V)
    for key in ("mhat", "qhat", "Vhat", "train_loss"):
        assert float(sol.observables[key]) == pytest.approx(ref[key], rel=1e-10, abs=1e-13), key
    rho, lam = float(theory.rho), float(theory.lam)
    precision = lam + ref["Vhat"]
    mapped = (rho * ref["mhat"] / precision, (rho * ref["mhat"] ** 2 + ref["qhat"]) / precision**2, 1 / precision)
    np.testing.assert_allclose(mapped, (m, q, V), rtol=1e-10)


def test_closed_form_channel_is_differentiable_and_rejects_states_outside_the_domain():
    theory = THEORIES[0]
    conj = lambda m: jnp.stack(theory.conjugates(Overlaps(m=m, q=jnp.asarray(0.9), V=jnp.asarray(0.8))))
    h = 1e-6
    fd = (conj(jnp.asarray(0.6 + h)) - conj(jnp.asarray(0.6 - h))) / (2 * h)
    np.testing.assert_allclose(jax.jacfwd(conj)(jnp.asarray(0.6)), fd, rtol=1e-7)
    # m^2 > rho q is no state: NaN, so that a solver step there is rejected.
    assert bool(jnp.all(jnp.isnan(conj(jnp.asarray(1.2)))))
