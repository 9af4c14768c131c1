r"""The multi-class teacher-student perceptron: ERM with ``K x K`` order parameters, and the
Bayes-optimal error.

**Setting** (Cornacchia, Mignacco, Veiga, Gerbelot, Loureiro and Zdeborova 2023, "Learning curves for
the multi-class teacher-student perceptron", Mach. Learn.: Sci. Technol. 4, 015019). ``n = alpha d``
inputs ``x_i ~ N(0, I_d)``; a teacher ``W* in R^{K x d}`` with i.i.d. ``N(0, 1)`` entries labels them
by the largest of its ``K`` fields, ``c_i = argmax_k lambda_k``, ``lambda = W* x / sqrt(d)`` (so that
``lambda ~ N(0, I_K)``).

**ERM** (:class:`Multiclass`). A linear classifier with scores ``z = W x / sqrt(d)`` minimises

.. math:: \sum_i l(c_i, W x_i / \sqrt{d}) + \frac{\lambda}{2} \|W\|_F^2 ,

``lam`` multiplying the penalty as written (not divided by ``n``; the paper's ``lambda`` is
``lam / alpha``, its loss being averaged over the samples), with the softmax ``cross-entropy`` or the
one-hot ``square`` loss; prediction ``argmax_k z_k``. Both work in the ``P = K - 1`` coordinates
``u = S^T z`` orthogonal to ``1`` (:mod:`hdtheory.models._scores`). The cross-entropy does not see
``1.z``, so its minimiser has ``1^T W = 0``. The square loss splits exactly,
``|e_c - z|^2 = |S^T (e_c - z)|^2 + (1 / sqrt(K) - zbar)^2`` with ``zbar = 1.z / sqrt(K)``, and so does
the penalty: ``zbar`` is a ridge regression of the constant ``t = 1 / sqrt(K)`` on inputs that cannot
predict it, with scalar overlaps ``q0 = |w_bar|^2 / d``, ``V0`` in closed form (``m0 = 0``):
``Vhat0 = alpha / (1 + V0)``, ``Qhat0 = alpha (t^2 + q0) / (1 + V0)^2``, ``V0 = 1 / (lam + Vhat0)``,
``q0 = V0^2 Qhat0``, which adds ``(t^2 + q0) / (2 (1 + V0)^2)`` to the training loss and
``q0 1 1^T / K`` to the overlaps, and leaves the predictions alone.

**Order parameters**, ``P x K``, ``P x P`` and ``P x P``: ``M = W W*^T / d``, ``Q = W W^T / d`` and
``V``, with conjugates ``Mhat, Qhat, Vhat``. The student's fields ``omega ~ N(0, Q)`` and the
teacher's satisfy ``lambda | omega ~ N(omega*, V*)``, ``omega* = M^T Q^{-1} omega``,
``V* = I - M^T Q^{-1} M``, so that the label has the probability

.. math:: Z^*(c \mid \omega^*, V^*) = P\big(D_c (\omega^* + V^{*1/2} \eta) > 0\big),

an orthant probability in ``K - 1`` dimensions (``D_c`` the rows ``e_c - e_k``, ``k != c``;
:func:`hdtheory.kernels.orthant_probability`, differentiable in ``omega*``). With
``h_c = prox_{V l(c, .)}(omega)``, ``f_c = -grad l(c, h_c)`` and ``H_c`` the Hessian of ``l(c, .)`` at
``h_c``, the saddle point (the paper's Eqs. (13)-(14) with a ridge penalty and ``rho = I_K``; the
``K``-dimensional form of the binary one in :mod:`hdtheory.models.erm`) reads

.. math::
    \hat M = \alpha\, \mathbb{E}_\omega \sum_c f_c\, \partial_{\omega^*} Z^*_c{}^T, \quad
    \hat Q = \alpha\, \mathbb{E}_\omega \sum_c Z^*_c f_c f_c^T, \quad
    \hat V = \alpha\, \mathbb{E}_\omega \sum_c Z^*_c (I + H_c V)^{-1} H_c ;

.. math:: V = (\lambda I + \hat V)^{-1}, \quad M = V \hat M, \quad Q = V (\hat Q + \hat M \hat M^T) V .

``E_omega`` runs over ``omega = L xi``, ``L L^T = Q``. The label probability changes across the
lines ``(e_c - e_k).omega* = 0`` over a distance that vanishes as the student aligns with the
teacher. ``rule="panels"`` (``P <= 2``) places Gauss-Legendre panels of ``panel_order`` nodes at
those lines and their transitions (:func:`hdtheory.kernels.line_panel_rule`; about 1e-8 at the
default 6, at any alignment); ``rule="product"`` is the product Gauss-Hermite rule of ``order`` nodes
per axis, whose accuracy degrades as the transitions sharpen: for ``K = 2`` the Bayes-optimal error
is 1e-7 off at ``alpha = 2`` and 1e-3 at ``alpha = 5``. ``rule="auto"`` (the default) takes the
panels for ``P = 1`` (``K = 2``), where they cost about a hundred nodes, and the product rule beyond,
where the panels cost 14,000 nodes (``K = 3``) against 576: pass ``rule="panels"`` at large
``alpha`` or small ``lam``. Outside the domain (``V*`` not positive definite) the map is NaN, so that solvers reject
the step.

**Bayes-optimal** (:class:`MulticlassBayes`): the state evolution of AMP (the paper's Eqs. (9)-(10)),
in the ``P = K - 1`` coordinates ``S^T`` of the complement of ``1`` (the label sees only differences of
the teacher's fields, whose projections ``S^T W*`` have i.i.d. ``N(0, 1)`` entries):

.. math:: q = \hat q (I + \hat q)^{-1}, \qquad
          \hat q = \alpha\, \mathbb{E}_\xi \sum_c Z^*_c\, g_c g_c^T, \quad
          g_c = \nabla_\omega \log Z^*(c \mid S\omega, S (I - q) S^T),\ \omega = q^{1/2} \xi .

The state keeps ``q`` proportional to the identity from an isotropic start (the classes are
exchangeable), where the Bayes prediction ``argmax_c Z^*(c | omega, V)`` is ``argmax_k (S omega)_k``.

**Test error** of either: ``1 - sum_c P(D_c lambda > 0, D_c z > 0)`` with ``(lambda, z)`` jointly
Gaussian (``z = S omega``; covariances ``I``, ``S Q S^T`` and ``M^T S^T``, with ``M = Q = q`` for the
Bayes-optimal estimator): orthant probabilities in ``2 (K - 1)`` dimensions, on a product rule of
``orthant_order`` nodes per axis, lowered so that it has at most ``2^16`` nodes (``K >= 4``: 9 nodes
per axis in 5 dimensions for ``K = 4``).

**Observables.** ``test_error``; ``train_loss`` (ERM: ``E l(c, h_c)``, penalty excluded); the
overlaps in the full score coordinates ``W = S U``, entry by entry with 1-based indices:
``m_k_c = w_k.w*_c / d``, ``q_k_l = w_k.w_l / d`` (``k <= l``), ``V_k_l``, ``norm = sqrt(tr Q)``; for
the Bayes-optimal estimator ``q`` (``q = q_11`` of the isotropic state in the ``P`` coordinates, the
overlap of the posterior mean's projection with the teacher's) and ``q_k_l`` in the full coordinates.
For ``K = 2`` the cross-entropy with penalty ``lam`` is the binary logistic regression of
:class:`~hdtheory.ERM` on the sign teacher with penalty ``lam / 2``, and the Bayes-optimal estimator
is :class:`~hdtheory.BayesGLM` with the sign channel.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .._theory import POSITIVE, FixedPointTheory, Interval, ParameterError, choice, integer, parameter
from ..kernels.multivariate import line_panel_rule, orthant_probability, product_rule, psd_cholesky
from ._scores import ClassScores, cholesky_coordinates, from_cholesky_coordinates, ranking_differences

LOSSES = {"cross-entropy": "softmax cross-entropy", "square": "one-hot square"}
_ORTHANT_NODES = 2**16
_RULES = ("auto", "panels", "product")


class MulticlassOverlaps(eqx.Module):
    """``M`` (``P x K``), ``Q`` and ``V`` (``P x P``) in the theory's coordinates, and ``(q0, V0)`` of
    the scores' mean ``1.z / sqrt(K)`` (the square loss; empty for the cross-entropy)."""

    M: jax.Array
    Q: jax.Array
    V: jax.Array
    mean: jax.Array


class _LabelQuadrature(FixedPointTheory):
    """The quadrature options shared by the ERM and Bayes-optimal models (see the module docstring)."""

    order: int = eqx.field(default=24, static=True)
    """Gauss-Hermite nodes per axis of the product rule."""
    rule: str = eqx.field(default="auto", static=True)
    """``"panels"``, ``"product"`` or ``"auto"`` (panels for ``K = 2``, the product rule beyond)."""
    panel_order: int = eqx.field(default=6, static=True)
    """Gauss-Legendre nodes per panel of the panel rule."""
    orthant_order: int = eqx.field(default=24, static=True)
    """Nodes per axis of the orthant probabilities."""

    def __check_init__(self):
        if self.rule not in _RULES:
            raise ParameterError(f"parameter 'rule' must be one of {', '.join(_RULES)}, got {self.rule!r}")
        for name in ("order", "panel_order", "orthant_order"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 4:
                raise ParameterError(f"parameter {name!r} must be an integer >= 4, got {value!r}")


def _xi_rule(theory, A, V_star):
    """Nodes and weights in ``xi ~ N(0, I_P)`` for the channel's expectations, where the label's
    probability is ``Z*(c | A^T xi, V*)``: panels at the lines ``(e_c - e_k).A^T xi = 0``
    (:func:`hdtheory.kernels.line_panel_rule`) or the product Gauss-Hermite rule; see ``rule``."""
    P, K = A.shape
    if P > 2 or (P == 2 and theory.rule != "panels") or theory.rule == "product":
        return product_rule(P, theory.order, A.dtype)
    pairs = np.array([np.eye(K)[c] - np.eye(K)[k] for c in range(K) for k in range(c + 1, K)])
    pairs = jnp.asarray(pairs, A.dtype)  # (J, K)
    normals = pairs @ A.T  # (J, P)
    length = jnp.sqrt(jnp.sum(normals**2, axis=1))
    safe = jnp.maximum(length, jnp.finfo(A.dtype).tiny)
    spread = jnp.sqrt(jnp.maximum(jnp.einsum("jk,kl,jl->j", pairs, V_star, pairs), 0.0))
    # A transition wider than the Gaussian (an uninformed student) needs no panels of its own.
    widths = jnp.minimum(spread / safe, 10.0)
    # The expectation does not depend on where the nodes sit: they are not differentiated, so that
    # derivatives (the solver's Jacobian, implicit gradients) are those of the integral itself.
    return line_panel_rule(*jax.lax.stop_gradient((normals / safe[:, None], widths)), theory.panel_order)


def _label_probability(K, omega_star, V_star, order):
    """``Z*(c | omega*, V*)`` for every class ``c``, and its gradient in ``omega*``: ``(K,)``, ``(K, K)``."""
    D = jnp.asarray(ranking_differences(K), omega_star.dtype)

    def one(Dc):
        value, grad = jax.value_and_grad(orthant_probability)(Dc @ omega_star, Dc @ V_star @ Dc.T, order)
        return value, Dc.T @ grad

    return jax.vmap(one)(D)


def _test_error(K, S, M, Q, order):
    """``1 - sum_c P(D_c lambda > 0, D_c S omega > 0)``, ``Cov(lambda, omega) = M^T``, ``lambda ~ N(0, I)``."""
    dtype = Q.dtype
    D = jnp.asarray(ranking_differences(K), dtype)
    n = 2 * (K - 1)
    order = min(order, int(np.floor(_ORTHANT_NODES ** (1 / (n - 1)) + 1e-9)))
    eye = jnp.eye(K, dtype=dtype)

    joint = jnp.block([[eye, M.T], [M, Q]])  # the covariance of (lambda, omega)

    def right(Dc):
        B = jnp.zeros((n, K + S.shape[1]), dtype).at[: K - 1, :K].set(Dc).at[K - 1 :, K:].set(Dc @ S)
        return orthant_probability(jnp.zeros(n, dtype), B @ joint @ B.T, order)

    return 1.0 - jnp.sum(jax.vmap(right)(D))


class Multiclass(_LabelQuadrature):
    """ERM on the multi-class teacher-student perceptron; see the module docstring."""

    alpha: jax.Array = parameter(2.0, POSITIVE, "sample ratio n/d")
    lam: jax.Array = parameter(0.1, POSITIVE, "ridge penalty (lam/2)|W|^2, not divided by n")
    K: int = integer(3, Interval(2.0), "number of classes")
    loss: str = choice("cross-entropy", LOSSES, "training loss")
    @property
    def _dtype(self):
        return jnp.result_type(self.alpha, self.lam, float)

    @property
    def scores(self) -> ClassScores:
        """The loss's label structure in the theory's coordinates."""
        return ClassScores(self.K, self.loss, True, self._dtype)

    def init(self, kind: str = "uninformed") -> MulticlassOverlaps:
        scale = {"uninformed": 0.1, "informed": 0.5}[kind]
        P = self.K - 1
        eye = jnp.eye(P, dtype=self._dtype)
        mean = jnp.ones((2,) if self.loss == "square" else (0,), self._dtype)
        return MulticlassOverlaps(M=scale * self.scores.basis().T, Q=eye, V=eye, mean=mean)

    def unconstrain(self, state: MulticlassOverlaps):
        """``M``, the lower triangles of the Cholesky factors of ``Q`` and ``V`` with a log diagonal,
        and ``log (q0, V0)``."""
        Q, V = cholesky_coordinates(state.Q), cholesky_coordinates(state.V)
        return {"M": state.M, "Q": Q, "V": V, "mean": jnp.log(state.mean)}

    def constrain(self, u) -> MulticlassOverlaps:
        P = self.K - 1
        Q, V = from_cholesky_coordinates(u["Q"], P), from_cholesky_coordinates(u["V"], P)
        return MulticlassOverlaps(M=u["M"], Q=Q, V=V, mean=jnp.exp(u["mean"]))

    def _mean_terms(self, mean):
        """The square loss's ``zbar`` (see the module docstring): ``(q0, V0)`` updated, and its loss."""
        if self.loss != "square":
            return mean, 0.0
        q0, V0 = mean[0], mean[1]
        t2 = 1.0 / self.K
        Vhat0, Qhat0 = self.alpha / (1 + V0), self.alpha * (t2 + q0) / (1 + V0) ** 2
        V0_new = 1.0 / (self.lam + Vhat0)
        return jnp.stack([V0_new**2 * Qhat0, V0_new]), 0.5 * (t2 + q0) / (1 + V0) ** 2

    def _channel(self, state: MulticlassOverlaps):
        """Per node: the weight, ``Z*`` and its gradient (``(N, K)``, ``(N, K, K)``), and per class and
        node ``f``, ``(I + H V)^{-1} H`` and the loss."""
        K, scores = self.K, self.scores
        L = psd_cholesky(state.Q)
        A = jax.scipy.linalg.solve_triangular(L, state.M, lower=True)  # L^{-1} M: omega* = A^T xi
        V_star = jnp.eye(K, dtype=self._dtype) - A.T @ A
        # Outside the domain (V* not positive definite on the differences of the fields, which the
        # rows of one D_c span) the map is NaN.
        D = jnp.asarray(ranking_differences(K), self._dtype)
        inside = jnp.all(jnp.linalg.eigvalsh(D[0] @ V_star @ D[0].T) > 0)
        V_star = jnp.where(inside, V_star, jnp.nan)
        xi, w = _xi_rule(self, A, V_star)
        Z, dZ = jax.vmap(lambda x: _label_probability(K, A.T @ x, V_star, self.orthant_order))(xi)
        labels, _ = scores.labels()
        omega = xi @ L.T
        # One vmap over (class, node) pairs rather than two nested ones: the same program, traced and
        # batched once (the proximal step's Newton loops are costly to batch).
        C, N = jax.tree_util.tree_leaves(labels)[0].shape[0], omega.shape[0]
        per_pair = jax.tree_util.tree_map(lambda a: jnp.repeat(a, N, axis=0), labels)
        f, H, value = jax.vmap(scores.node, in_axes=(0, 0, None))(per_pair, jnp.tile(omega, (C, 1)), state.V)
        f, H, value = (x.reshape((C, N) + x.shape[1:]) for x in (f, H, value))
        return w, Z, dZ, f, H, value

    def update(self, state: MulticlassOverlaps) -> MulticlassOverlaps:
        w, Z, dZ, f, H, _ = self._channel(state)
        Mhat = self.alpha * jnp.einsum("n,cnp,nck->pk", w, f, dZ)
        Qhat = self.alpha * jnp.einsum("n,nc,cnp,cnq->pq", w, Z, f, f)
        Vhat = self.alpha * jnp.einsum("n,nc,cnpq->pq", w, Z, H)
        P = self.K - 1
        V = jnp.linalg.inv(self.lam * jnp.eye(P, dtype=self._dtype) + 0.5 * (Vhat + Vhat.T))
        V = 0.5 * (V + V.T)
        Q = V @ (0.5 * (Qhat + Qhat.T) + Mhat @ Mhat.T) @ V
        return MulticlassOverlaps(M=V @ Mhat, Q=0.5 * (Q + Q.T), V=V, mean=self._mean_terms(state.mean)[0])

    def observables(self, state: MulticlassOverlaps) -> dict[str, jax.Array]:
        w, Z, _, _, _, value = self._channel(state)
        S = self.scores.basis()
        out = {
            "test_error": _test_error(self.K, S, state.M, state.Q, self.orthant_order),
            "train_loss": jnp.einsum("n,nc,cn->", w, Z, value) + self._mean_terms(state.mean)[1],
        }
        M, Q, V = S @ state.M, S @ state.Q @ S.T, S @ state.V @ S.T
        if self.loss == "square":
            ones = jnp.full((self.K, self.K), 1.0 / self.K, self._dtype)
            Q, V = Q + state.mean[0] * ones, V + state.mean[1] * ones
        out["norm"] = jnp.sqrt(jnp.trace(Q))
        K = self.K
        out |= {f"m_{k + 1}_{c + 1}": M[k, c] for k in range(K) for c in range(K)}
        out |= {f"q_{k + 1}_{l + 1}": Q[k, l] for k in range(K) for l in range(k, K)}
        out |= {f"V_{k + 1}_{l + 1}": V[k, l] for k in range(K) for l in range(k, K)}
        return out


class MulticlassBayes(_LabelQuadrature):
    """The Bayes-optimal estimator of the multi-class teacher-student perceptron (AMP state
    evolution); see the module docstring."""

    alpha: jax.Array = parameter(2.0, POSITIVE, "sample ratio n/d")
    K: int = integer(3, Interval(2.0), "number of classes")
    @property
    def _dtype(self):
        return jnp.result_type(self.alpha, float)

    def _basis(self):
        return jnp.asarray(ClassScores(self.K, "cross-entropy", True, self._dtype).basis())

    def init(self, kind: str = "uninformed") -> jax.Array:
        """``q``: an infinitesimal overlap (``1e-3 I``), or ``0.9 I`` for ``"informed"``."""
        scale = {"uninformed": 1e-3, "informed": 0.9}[kind]
        return scale * jnp.eye(self.K - 1, dtype=self._dtype)

    def unconstrain(self, q):
        """The Cholesky factor of ``I - q`` (the posterior variance) with a log diagonal."""
        return cholesky_coordinates(jnp.eye(self.K - 1, dtype=q.dtype) - q)

    def constrain(self, u):
        return jnp.eye(self.K - 1, dtype=u.dtype) - from_cholesky_coordinates(u, self.K - 1)

    def conjugate(self, q):
        """``qhat`` at ``q``."""
        K, P, S = self.K, self.K - 1, self._basis()
        V = S @ (jnp.eye(P, dtype=q.dtype) - q) @ S.T
        sqrt_q = psd_cholesky(q)
        xi, w = _xi_rule(self, sqrt_q.T @ S.T, V)  # omega* = S sqrt(q) xi

        def node(x):
            omega = sqrt_q @ x
            Z, dZ = _label_probability(K, S @ omega, V, self.orthant_order)
            g = dZ @ S / jnp.maximum(Z, jnp.finfo(q.dtype).tiny)[:, None]  # (K, P)
            return jnp.einsum("c,cp,cq->pq", Z, g, g)

        qhat = self.alpha * jnp.einsum("n,npq->pq", w, jax.vmap(node)(xi))
        return 0.5 * (qhat + qhat.T)

    def update(self, q):
        qhat = self.conjugate(q)
        eye = jnp.eye(self.K - 1, dtype=q.dtype)
        new = qhat @ jnp.linalg.inv(eye + qhat)
        return 0.5 * (new + new.T)

    def observables(self, q) -> dict[str, jax.Array]:
        S = self._basis()
        out = {"test_error": _test_error(self.K, S, q @ S.T, q, self.orthant_order), "q": q[0, 0]}
        full = S @ q @ S.T
        out |= {f"q_{k + 1}_{l + 1}": full[k, l] for k in range(self.K) for l in range(k, self.K)}
        return out
