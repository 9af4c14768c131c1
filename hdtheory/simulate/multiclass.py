r"""Finite-``d`` simulations of ERM on the multi-class teacher-student perceptron
(:class:`~hdtheory.models.multiclass.Multiclass`).

**Setting** (that of :mod:`hdtheory.models.multiclass`). The teacher ``W* = sqrt(d) O^T`` with ``O``
a random ``d x K`` matrix with orthonormal columns, so that ``W* W*^T / d = I`` exactly (the theory's
teacher Gram matrix; i.i.d. Gaussian rows have it up to ``O(1 / sqrt(d))``); ``n = round(alpha d)``
inputs ``x_i ~ N(0, I_d)`` labelled ``c_i = argmax_k (W* x_i)_k``. The classifier is fitted by
:func:`hdtheory.simulate.mixture.fit_scores` (scikit-learn's multinomial logistic regression for the
cross-entropy, ridge regression on one-hot targets in closed form for the square loss).

**Observables**, per seed, named as in ``Multiclass.observables``: ``m_k_c = w_k.w*_c / d``,
``q_k_l = w_k.w_l / d``, ``norm``; ``test_error``, the exact population error of the fitted ``W``
(orthant probabilities of the joint Gaussian teacher and student fields, order 48 for ``K <= 3``);
``train_loss``. One diagnostic: ``test_error_empirical`` on ``max(n, 10000)`` fresh points.
"""

import jax
import jax.numpy as jnp
import numpy as np

from ..models.multiclass import Multiclass, _test_error
from . import SimulationResult, check_size, simulate
from .mixture import fit_scores, mean_loss

# The population error of the fitted overlaps: one compiled program, not one per operation.
_population_error = jax.jit(_test_error, static_argnums=(0, 4))


@simulate.register
def simulate_multiclass(theory: Multiclass, *, d: int = 1000, seeds: int = 4, key=None) -> SimulationResult:
    """:func:`~hdtheory.simulate.simulate` for :class:`~hdtheory.models.multiclass.Multiclass`; see
    the module docstring."""
    check_size(d, seeds)
    key = jax.random.PRNGKey(0) if key is None else key
    integers = np.asarray(jax.random.randint(key, (seeds,), 0, 2**31 - 1))
    n = max(round(float(theory.alpha) * d), 1)
    samples = [_one_seed(theory, np.random.default_rng(int(s)), n, d) for s in integers]
    return SimulationResult.from_samples(samples, d=d, n=n)


def _one_seed(theory: Multiclass, rng, n: int, d: int) -> dict:
    K = theory.K
    O, _ = np.linalg.qr(rng.normal(size=(d, K)))
    teacher = np.sqrt(d) * O.T  # (K, d)

    def draw(size):
        X = rng.normal(size=(size, d))
        return X, np.argmax(X @ teacher.T, axis=1)

    X, labels = draw(n)
    W, _ = fit_scores(theory.loss, K, float(theory.lam), False, X / np.sqrt(d), labels)  # (K, d)
    X_test, labels_test = draw(max(n, 10_000))
    M, Q = W @ teacher.T / d, W @ W.T / d
    error = _population_error(K, jnp.eye(K), jnp.asarray(M), jnp.asarray(Q), 48)
    out = {
        "test_error": float(error),
        "test_error_empirical": float(np.mean(np.argmax(X_test @ W.T, axis=1) != labels_test)),
        "train_loss": mean_loss(theory.loss, K, X @ W.T / np.sqrt(d), labels),
        "norm": float(np.sqrt(np.trace(Q))),
    }
    out |= {f"m_{k + 1}_{c + 1}": M[k, c] for k in range(K) for c in range(K)}
    out |= {f"q_{k + 1}_{l + 1}": Q[k, l] for k in range(K) for l in range(k, K)}
    return out
