r"""Classification of a ``K``-cluster Gaussian mixture by regularised ERM: the replica fixed point
with ``K x K`` order parameters.

**Setting** (Loureiro, Sicuro, Gerbelot, Pacco, Krzakala and Zdeborova 2021, "Learning Gaussian
mixtures with generalised linear models: precise asymptotics in high dimensions", NeurIPS, with an
isotropic covariance). ``n = alpha d`` points with labels ``c_i in {1..K}`` drawn with probabilities
``rho_c`` (``weights``, uniform by default) and inputs

.. math:: x_i = \mu_{c_i} / \sqrt{d} + z_i, \qquad z_i \sim N(0, I_d),

whose means have the Gram matrix ``mu_k.mu_l / d = G_kl = snr * gram_kl`` (``gram`` the identity by
default: orthogonal means of squared norm ``snr d``; given as a ``K x K`` matrix or its ``K^2``
entries). ``weights`` and ``gram`` default to the empty tuple, which stands for uniform weights and
the identity. A linear classifier with ``P`` outputs
``W in R^{P x d}`` minimises

.. math:: \sum_i l(c_i, W x_i / \sqrt{d}) + \frac{\lambda}{2} \|W\|_F^2 ,

``lam`` multiplying the penalty as written (not divided by ``n``), with the losses

- ``cross-entropy``: ``P = K`` scores, ``l = -z_c + logsumexp(z)``; prediction ``argmax_k z_k``.
  The loss and its gradient do not see ``1.z``, so the minimiser has ``1^T W = 0``: the theory
  works in the ``K - 1`` coordinates ``u = B^T z`` (``B`` an orthonormal basis of the complement of
  ``1``) and reports the overlaps of ``W = B U``. Its proximal operator is a globalised Newton
  solve with an implicit derivative (:func:`hdtheory.kernels.prox_newton`).
- ``square``: ``P = K`` scores, ``l = |e_c - z|^2 / 2`` (one-hot targets); prediction ``argmax``.
  With an intercept, ``1.b = 1`` fits ``1.z`` and ``1^T W = 0``: the theory works in the ``K - 1``
  coordinates ``B^T z`` with targets ``B^T e_c``, as for the cross-entropy.
- ``logistic`` (``K = 2`` only): one score ``z``, labels ``y = +1`` for cluster 1 and ``-1`` for
  cluster 2, ``l = log(1 + exp(-y z))``; prediction ``sign(z)``. For ``K = 2`` the cross-entropy with
  penalty ``lam`` is this loss with penalty ``lam / 2`` on ``w = w_1 - w_2``.

**Order parameters**, ``P x K``, ``P x P`` and ``P x P``: ``M = W mu / d`` (column ``c``: the mean
score of cluster ``c``), ``Q = W W^T / d`` and the variance ``V``, with conjugates
``Mhat, Qhat, Vhat``. The scores of a fresh point of cluster ``c`` are ``N(M_c, Q)``. The
stationary equations (derived here for an isotropic covariance; the general replica saddle point is
in Loureiro et al. 2021, and ``K = 2`` with the logistic loss is the binary mixture of Mignacco,
Krzakala, Lu, Urbani and Zdeborova 2020, "The role of regularization in classification of
high-dimensional noisy Gaussian mixture") read, with
``omega = M_c + Q^{1/2} xi``, ``xi ~ N(0, I_P)``, ``h_c = prox_{V l(c, .)}(omega)`` (the ``argmin`` of
``(z - omega)^T V^{-1} (z - omega) / 2 + l(c, z)``), ``f_c = -grad l(c, h_c)`` and ``H_c`` the Hessian
of ``l(c, .)`` at ``h_c``:

.. math::
    \hat M_c = \alpha \rho_c\, \mathbb{E}_\xi f_c, \quad
    \hat Q = \alpha \sum_c \rho_c\, \mathbb{E}_\xi f_c f_c^T, \quad
    \hat V = \alpha \sum_c \rho_c\, \mathbb{E}_\xi (I + H_c V)^{-1} H_c ;

.. math::
    V = (\lambda I + \hat V)^{-1}, \quad M = V \hat M G, \quad
    Q = V (\hat Q + \hat M G \hat M^T) V .

(``(I + H V)^{-1} H = -d f / d omega``, the matrix form of ``hat V = -alpha E d_omega f``.) The
state keeps ``Q`` and ``V`` symmetric by construction: the solver works on their Cholesky factors
with a log diagonal (:meth:`Mixture.unconstrain`).

**Quadrature.** ``E_xi`` is a product Gauss-Hermite rule of ``order`` nodes per axis for ``P <= 3``
and the shifted Sobol rule of ``points`` nodes beyond (:mod:`hdtheory.kernels.multivariate`); the
prox varies on a scale of order one in ``omega``, so the rule loses accuracy as ``Q`` grows (small
``lam``, large ``alpha``). For ``K = 3``, ``alpha = 2``, ``snr = 2``, the default order 24 agrees with
order 48 to 1e-8 on the test error and 1e-7 (relative) on ``Q`` at ``lam = 0.1`` (``q_11 ~ 2``), but
only to 2e-5 on the test error and 1e-4 on ``Q`` at ``lam = 0.01`` (``q_11 ~ 10``): raise ``order`` at
small ``lam`` (panels placed at the prox's transitions, as in :mod:`hdtheory.models.erm`, are the
lasting fix).
The test error is exact up to the orthant quadrature: ``P(argmax = c)`` is the probability that the
``K - 1`` score differences ``z_c - z_k`` are positive (:func:`hdtheory.kernels.orthant_probability`).

**Observables.** ``test_error`` (the 0-1 error of the prediction, averaged over the clusters with
weights ``rho``), ``train_loss`` (``E l(c, h_c)``, penalty excluded), and the overlaps of the fitted
``W`` (``K x K``, or ``1 x 2`` for the logistic loss), entry by entry with 1-based indices:
``m_k_c = w_k.mu_c / d``, ``q_k_l = w_k.w_l / d`` (``k <= l``), ``V_k_l``; ``norm = sqrt(tr Q)``.

**Other normalisations.** Loureiro et al. write ``x = mu_c + sqrt(Delta) z`` with means of norm one
and the penalty ``(lam / 2) |W|^2`` on the loss averaged over ``n``: ``lam_theirs = lam / alpha``.

**Intercept.** With ``intercept=1`` the scores are ``W x / sqrt(d) + b`` with ``b`` unpenalised: the
fields become ``omega = M_c + b + Q^{1/2} xi`` and ``b`` solves its own stationarity equation,
``sum_c rho_c E_xi f_c = 0`` (the gradient of the training loss in ``b`` vanishes), written as the
fixed point ``b <- b + V sum_c Mhat_c``. The fitted intercept is reported as ``b_k`` (for the
cross-entropy, centred: ``1.b = 0``). Its sign matters for unbalanced clusters: the larger cluster
gets the larger intercept.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .. import kernels
from ..kernels.multivariate import orthant_probability, product_rule, small_inv, sobol_rule
from .._theory import POSITIVE, FixedPointTheory, Interval, ParameterError, choice, integer
from .._theory import is_concrete, parameter
from ._scores import ClassScores, cholesky_coordinates, from_cholesky_coordinates, ranking_differences

LOSSES = {"cross-entropy": "softmax cross-entropy", "square": "one-hot square", "logistic": "K = 2"}


class MixtureOverlaps(eqx.Module):
    """``M`` (``P x K``), ``Q`` and ``V`` (``P x P``) and the intercept ``b`` (``P``) in the model's
    output coordinates."""

    M: jax.Array
    Q: jax.Array
    V: jax.Array
    b: jax.Array


class Mixture(FixedPointTheory):
    """ERM classification of a K-cluster Gaussian mixture; see the module docstring."""

    alpha: jax.Array = parameter(2.0, POSITIVE, "sample ratio n/d")
    lam: jax.Array = parameter(0.1, POSITIVE, "ridge penalty (lam/2)|W|^2, not divided by n")
    snr: jax.Array = parameter(1.0, POSITIVE, "scale of the means' Gram matrix (|mu_k|^2/d for orthogonal means)")
    K: int = integer(3, Interval(2.0), "number of clusters")
    loss: str = choice("cross-entropy", LOSSES, "training loss (logistic: K=2, labels +-1)")
    intercept: int = integer(0, Interval(0.0, 1.0), "1: fit an unpenalised intercept b")
    weights: jax.Array = parameter((), POSITIVE, "cluster probabilities rho_1..rho_K summing to 1 (none: uniform)")
    """Cluster probabilities ``rho_1..rho_K`` (positive, summing to one); ``()`` for uniform."""
    gram: jax.Array = parameter(
        (), Interval(), "the means' Gram matrix / snr, K x K or its K^2 entries, PSD (none: identity)"
    )
    """The means' Gram matrix divided by ``snr``, ``K x K`` (or its ``K^2`` entries), positive
    semi-definite; ``()`` for the identity."""
    order: int = eqx.field(default=24, static=True)
    orthant_order: int = eqx.field(default=24, static=True)
    points: int = eqx.field(default=4096, static=True)

    def __check_init__(self):
        K = self.K
        if not isinstance(K, int) or K < 2:
            return  # reported by the generic check
        if self.loss == "logistic" and K != 2:
            raise ParameterError(f"parameter 'loss' = logistic needs labels +-1, that is K = 2, got K = {K}")
        if self.weights.size and is_concrete(self.weights):
            w = np.asarray(self.weights, float)
            if w.shape[-1:] != (K,) or np.any(w <= 0) or np.any(np.abs(w.sum(-1) - 1) > 1e-9):
                raise ParameterError(
                    f"parameter 'weights' must be {K} positive cluster probabilities summing to 1, got {w}"
                )
        if self.gram.size and is_concrete(self.gram):
            g = np.asarray(self.gram, float)
            if g.shape[-1:] == (K * K,):
                g = g.reshape(g.shape[:-1] + (K, K))
            if g.shape[-2:] != (K, K) or np.any(np.abs(g - np.swapaxes(g, -1, -2)) > 1e-12) or np.any(
                np.linalg.eigvalsh(g) < -1e-12 * max(1.0, np.abs(g).max())
            ):
                raise ParameterError(
                    f"parameter 'gram' must be a symmetric positive semi-definite {K} x {K} matrix"
                )
        for name, low in (("order", 4), ("orthant_order", 4)):
            value = getattr(self, name)
            if not isinstance(value, int) or value < low:
                raise ParameterError(f"parameter {name!r} must be an integer >= {low}, got {value!r}")

    # The label structure.

    @property
    def _centred(self) -> bool:
        """Whether the minimiser has ``1^T W = 0`` and the theory works in the ``K - 1`` coordinates
        orthogonal to ``1``: the cross-entropy, and the square loss with an intercept (which fits
        ``1.z = 1`` through ``1.b``)."""
        return self.loss == "cross-entropy" or (self.loss == "square" and bool(self.intercept))

    @property
    def _dtype(self):
        return jnp.result_type(self.alpha, self.lam, self.snr, float)

    @property
    def scores(self) -> ClassScores:
        """The loss's label structure in the theory's coordinates."""
        return ClassScores(self.K, self.loss, self._centred, self._dtype)

    @property
    def outputs(self) -> int:
        """``P``: the number of coordinates the theory works in."""
        return self.scores.outputs

    def _rho(self) -> jax.Array:
        if not self.weights.size:
            return jnp.full((self.K,), 1.0 / self.K, self._dtype)
        return jnp.asarray(self.weights, self._dtype)

    def _G(self) -> jax.Array:
        if not self.gram.size:
            return self.snr * jnp.eye(self.K, dtype=self._dtype)
        return self.snr * jnp.asarray(self.gram, self._dtype).reshape(self.K, self.K)

    def _rule(self):
        P = self.outputs
        if P <= 3:
            return product_rule(P, self.order, self._dtype)
        return sobol_rule(P, self.points, self._dtype)

    # The protocol.

    def init(self, kind: str = "uninformed") -> MixtureOverlaps:
        scale = {"uninformed": 0.1, "informed": 1.0}[kind]
        P = self.outputs
        S = self.scores.basis() if self.loss != "logistic" else jnp.asarray([[1.0, -1.0]], self._dtype).T
        eye = jnp.eye(P, dtype=self._dtype)
        return MixtureOverlaps(M=scale * S.T @ self._G(), Q=eye, V=eye, b=jnp.zeros(P, self._dtype))

    def unconstrain(self, state: MixtureOverlaps):
        """``M``, and the lower triangles of the Cholesky factors of ``Q`` and ``V`` with a log diagonal."""
        return {"M": state.M, "Q": cholesky_coordinates(state.Q), "V": cholesky_coordinates(state.V), "b": state.b}

    def constrain(self, u) -> MixtureOverlaps:
        Q, V = from_cholesky_coordinates(u["Q"], self.outputs), from_cholesky_coordinates(u["V"], self.outputs)
        return MixtureOverlaps(M=u["M"], Q=Q, V=V, b=u["b"])

    def _channel(self, state: MixtureOverlaps):
        """Per cluster (leading axis) and node: ``(weight, f, (I + H V)^{-1} H, loss)``."""
        M, Q, V = state.M, state.Q, state.V
        xi, w = self._rule()
        omega0 = xi @ kernels.multivariate.psd_cholesky(Q).T  # (N, P)
        scores = self.scores
        labels, _ = scores.labels()

        def cluster(label, mean):
            return jax.vmap(scores.node, in_axes=(None, 0, None))(label, omega0 + mean, V)

        f, A, value = jax.vmap(cluster)(labels, M.T + state.b)  # (K, N, ...)
        return w, f, A, value

    def conjugates(self, state: MixtureOverlaps):
        """``(Mhat, Qhat, Vhat)``; see the module docstring."""
        w, f, A, _ = self._channel(state)
        scale = self.alpha * self._rho()
        Mhat = jnp.einsum("c,n,cnp->pc", scale, w, f)
        Qhat = jnp.einsum("c,n,cnp,cnq->pq", scale, w, f, f)
        Vhat = jnp.einsum("c,n,cnpq->pq", scale, w, A)
        return Mhat, 0.5 * (Qhat + Qhat.T), 0.5 * (Vhat + Vhat.T)

    def update(self, state: MixtureOverlaps) -> MixtureOverlaps:
        Mhat, Qhat, Vhat = self.conjugates(state)
        G = self._G()
        V = small_inv(self.lam * jnp.eye(self.outputs, dtype=self._dtype) + Vhat)
        V = 0.5 * (V + V.T)
        Q = V @ (Qhat + Mhat @ G @ Mhat.T) @ V
        # The intercept's stationarity, sum_c Mhat_c = alpha sum_c rho_c E f_c = 0, as a fixed point.
        b = state.b + V @ jnp.sum(Mhat, axis=1) if self.intercept else jnp.zeros_like(state.b)
        return MixtureOverlaps(M=V @ Mhat @ G, Q=0.5 * (Q + Q.T), V=V, b=b)

    def test_error(self, state: MixtureOverlaps) -> jax.Array:
        """The 0-1 test error, ``sum_c rho_c P(prediction != c)``."""
        rho = self._rho()
        if self.loss == "logistic":
            margin = jnp.asarray([1.0, -1.0], self._dtype) * (state.M[0] + state.b[0]) / jnp.sqrt(state.Q[0, 0])
            return jnp.sum(rho * jax.scipy.special.ndtr(-margin))
        K = self.K
        # D_c: rows e_c - e_k, k != c; the scores z = S u ~ N(S M_c, S Q S^T).
        DS = jnp.asarray(ranking_differences(K), self._dtype) @ self.scores.basis()
        means = jnp.einsum("ckp,pc->ck", DS, state.M + state.b[:, None])
        covs = jnp.einsum("ckp,pq,clq->ckl", DS, state.Q, DS)
        right = jax.vmap(lambda a, C: orthant_probability(a, C, self.orthant_order))(means, covs)
        return 1.0 - jnp.sum(rho * right)

    def observables(self, state: MixtureOverlaps) -> dict[str, jax.Array]:
        w, _, _, value = self._channel(state)
        train_loss = jnp.einsum("c,n,cn->", self._rho(), w, value)
        S = self.scores.basis()
        M, Q, V = S @ state.M, S @ state.Q @ S.T, S @ state.V @ S.T
        out = {"test_error": self.test_error(state), "train_loss": train_loss, "norm": jnp.sqrt(jnp.trace(Q))}
        rows = M.shape[0]
        out |= {f"m_{k + 1}_{c + 1}": M[k, c] for k in range(rows) for c in range(self.K)}
        out |= {f"q_{k + 1}_{l + 1}": Q[k, l] for k in range(rows) for l in range(k, rows)}
        out |= {f"V_{k + 1}_{l + 1}": V[k, l] for k in range(rows) for l in range(k, rows)}
        if self.intercept:
            b = S @ state.b + (1.0 / self.K if self.loss == "square" else 0.0)
            out |= {f"b_{k + 1}": b[k] for k in range(rows)}
        return out
