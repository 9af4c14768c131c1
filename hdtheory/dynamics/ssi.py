r"""Online SGD on a sequence single-index target: tokens, a positional encoding, one learned direction.

**Setting** (Arnaboldi, Loureiro, Stephan, Krzakala & Zdeborova 2025, "Asymptotics of SGD in
sequence single-index models and single-layer attention networks"). An input is a sequence of ``L``
tokens ``x_1, ..., x_L ~ N(0, I_d)``, independent. The target reads them through one direction:
``y = f*(nu_1, ..., nu_L) + sqrt(noise) zeta``, ``nu_l = w*.x_l / sqrt(d)``, ``|w*|^2 = d``. The
student reads the tokens with a positional encoding added, ``x_l + c_l p / sqrt(d)``, through its
own direction ``w``: ``y_hat = f(z_1, ..., z_L)``, ``z_l = lambda_l + c_l e``,
``lambda_l = w.x_l / sqrt(d)``, where ``p`` is a fixed direction orthogonal to ``w*`` with
``|p|^2 = d`` and ``c = positions`` its coefficient on each token (``c = (1, -1)`` is the paper's
"opposite paired" encoding; ``c = 0`` no encoding). Link and activation are built from a function
``h`` of one variable given by its orthonormal Hermite coefficients (as in
:mod:`~hdtheory.dynamics.single_index`), ``h(z) = sum_k c_k He_k(z) / sqrt(k!)``, in one of two forms:

- ``"sum"``: ``f(z) = sum_l h(z_l)`` (a sequence single-index model whose tokens add up; ``h = He_k``
  gives sequence information exponent ``k``);
- ``"tied"``: ``f(z) = h(sum_l z_l / sqrt(L))`` (the tied network of the paper, a single-index model
  of the token average).

Square loss ``(y_hat - y)^2 / 2``, one fresh sample per step,
``w <- w - lr(t) grad_w loss = w - lr(t) Delta sum_l g_l (x_l + c_l p / sqrt(d)) / sqrt(d)`` with
``Delta = y_hat - y`` and ``g_l = df / dz_l``, followed, when ``geometry="spherical"``, by the
projection back onto ``|w|^2 = d`` (the paper's normalised SGD). Time ``t`` counts samples over ``d``.

**Summary statistics.** ``m = w.w* / d`` (semantic), ``e = w.p / d`` (positional), ``q = |w|^2 / d``;
``m^2 + e^2 <= q``. The pairs ``(lambda_l, nu_l)`` are independent across tokens, each Gaussian with
covariance ``[[q, m], [m, 1]]``, so every expectation below depends on ``(m, e, q)`` only (the
paper's population loss as a function of ``(e, m)`` on the sphere).

**ODEs** (``d -> infinity``), with ``eta = lr(t)`` and ``E`` over the ``L`` token pairs:

.. math::
    \frac{dm}{dt} = -\eta E\Big[\Delta \sum_l g_l \nu_l\Big], \qquad
    \frac{de}{dt} = -\eta E\Big[\Delta \sum_l g_l c_l\Big]
                    - \eta e\, E\Big[\sum_l (g_l^2 + \Delta\, \partial_l^2 f)\Big],

.. math::
    \frac{dq}{dt} = -2\eta E\Big[\Delta \sum_l g_l z_l\Big] + \eta^2 E\Big[(\Delta^2 + \text{noise}) \sum_l g_l^2\Big]

(unconstrained; ``|sum_l g_l x_l|^2 / d -> sum_l g_l^2`` as distinct tokens are orthogonal). The
second term of ``de/dt`` is ``E[Delta sum_l g_l xi_l]``, ``xi_l = p.x_l / sqrt(d)``, a field
correlated with ``lambda_l`` by ``e`` and with nothing else, by Stein's lemma. On the sphere
(``q = 1``) each overlap ``a`` in ``(m, e)`` follows ``da/dt - (a / 2) dq/dt``. With ``L = 1`` and
``c = 0`` both forms are the single-index model and the ODEs are those of
:class:`~hdtheory.dynamics.SingleIndex` (``batch = 1``); the tied form with ``c = 0`` is that
single-index model at every ``L``; the sum form of ``h = He_k`` without encoding starts
``L`` times faster than one token (each token's drift adds up, the cross-token terms vanish at
``m -> 0``): an escape time ``~ 1 / L`` of the single-index one at small ``lr``.

**Conventions.** The paper's ``MSELoss`` is ``(y_hat - y)^2`` without the ``1/2``: its learning rate
is half of ``lr`` here. Its inputs are ``x / sqrt(d)`` with weights of norm ``sqrt(d)``, the same
fields as here.

**Quadrature.** Expectations are the product over tokens of the 2-D Gauss-Hermite rule of
:class:`~hdtheory.dynamics.SingleIndex` (``order`` nodes per axis, ``order^(2L)`` nodes in all):
exact for polynomial ``h`` and ``h*`` of degree ``p`` at the default ``order = 2p``: the integrands
have degree up to ``4p - 2`` in each field (``Delta^2 g_l^2``).
The rule is refused above :data:`MAX_NODES` nodes: the cost grows as ``order^(2L)``, so long
sequences need the additive structure of the sum form (``O(L)`` two-dimensional integrals), which is
not written.

**Observables.** ``eg = E[(f(z) - f*(nu))^2] / 2`` (no label noise), ``m``, ``e``, ``q``, the cosines
``overlap = m / sqrt(q)`` and ``positional = e / sqrt(q)``. Plateaus and escapes are read off a
trajectory: the time at which ``overlap`` crosses a level is ``hd.integrate(..., event=
hd.crossing("overlap", level)).event_time`` (``examples/ssi_escape.py``).
"""

import functools
import itertools

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ..kernels import hermite_series
from .._theory import NONNEGATIVE, POSITIVE, Interval, ParameterError, choice, integer, parameter
from ._schedule import Scheduled
from .single_index import _rule, check_coefficients

MAX_NODES = 2**21
"""The most quadrature nodes (``order^(2L)``) that :class:`SequenceSingleIndex` accepts."""

FORMS = {"sum": None, "tied": None}


class SequenceOverlaps(eqx.Module):
    """``m = w.w* / d``, ``e = w.p / d`` and ``q = |w|^2 / d``."""

    m: jax.Array
    e: jax.Array
    q: jax.Array


@functools.lru_cache(maxsize=None)
def _token_rule(tokens: int, order: int) -> tuple[np.ndarray, np.ndarray]:
    """The product over ``tokens`` of the 2-D standard Gauss-Hermite rule: nodes of shape
    ``(N, tokens, 2)`` (per token, the two independent standard normals) and weights ``(N,)``."""
    nodes, weights = _rule(order)
    pairs = np.array(list(itertools.product(range(order), repeat=2 * tokens)))
    z = nodes[pairs].reshape(-1, tokens, 2)
    w = np.prod(weights[pairs], axis=-1)
    return z, w


class SequenceSingleIndex(Scheduled):
    """Online SGD on a sequence single-index target; see the module docstring."""

    L: int = integer(2, Interval(1), "sequence length (tokens per input)")
    target: jax.Array = parameter((0.0, 0.0, 1.0), Interval(), "Hermite coefficients of h* (target)")
    student: jax.Array = parameter((0.0, 0.0, 1.0), Interval(), "Hermite coefficients of h (student)")
    target_form: str = choice("sum", FORMS, "f* = sum_l h*(nu_l) or h*(sum_l nu_l / sqrt(L))")
    student_form: str = choice("sum", FORMS, "f = sum_l h(z_l) or h(sum_l z_l / sqrt(L))")
    positions: jax.Array = parameter((0.0,), Interval(), "positional coefficients c_l (one or L values)")
    geometry: str = choice("spherical", {"spherical": 1, "unconstrained": 1}, "|w|^2 = d or free")
    noise: jax.Array = parameter(0.0, NONNEGATIVE, "label-noise variance")
    m0: jax.Array = parameter(0.01, Interval(-1.0, 1.0), "initial overlap m = w.w*/d")
    e0: jax.Array = parameter(0.0, Interval(-1.0, 1.0), "initial positional overlap e = w.p/d")
    q0: jax.Array = parameter(1.0, POSITIVE, "initial norm q = |w|^2/d (unconstrained only)")
    order: int | None = eqx.field(default=None, static=True)

    def __check_init__(self):
        check_coefficients(self, ("target", "student"))
        count = jnp.atleast_1d(self.positions).shape[-1]
        if count not in (1, self.L):
            raise ParameterError(
                f"parameter 'positions' must have 1 or L = {self.L} values, got {count}"
            )
        nodes = (self.order or self.exact_order) ** (2 * self.L)
        if nodes > MAX_NODES:
            raise ParameterError(
                f"parameter 'L' too large for the product rule: order^(2L) = {nodes} nodes, at most "
                f"{MAX_NODES} (L = {self.L}, order {self.order or self.exact_order})"
            )
        q0 = 1.0 if self.geometry == "spherical" else self.q0
        values = (self.m0, self.e0, q0)
        if not any(isinstance(v, jax.core.Tracer) for v in values):
            if np.any(np.asarray(self.m0) ** 2 + np.asarray(self.e0) ** 2 > np.asarray(q0)):
                raise ParameterError("parameters 'm0', 'e0' must satisfy m0^2 + e0^2 <= q0 (overlaps)")

    @property
    def exact_order(self) -> int:
        """``max(2p, 2)``: nodes per axis exact for every integrand of degree-``p`` ``h`` and ``h*``."""
        length = max(jnp.atleast_1d(c).shape[-1] for c in (self.target, self.student))
        return max(2 * (length - 1), 2)

    def _link(self, form, coefficients, z):
        if form == "tied":
            return hermite_series(coefficients, jnp.sum(z, -1) / np.sqrt(self.L))
        return jnp.sum(hermite_series(coefficients, z), -1)

    def f(self, z):
        """The student's output on the fields ``z`` (shape ``(..., L)``)."""
        return self._link(self.student_form, self.student, z)

    def f_star(self, nu):
        """The target's output (without label noise) on the teacher's fields ``nu``."""
        return self._link(self.target_form, self.target, nu)

    def encoding(self, dtype) -> jax.Array:
        """The positional coefficients ``c_l``, one per token."""
        return jnp.broadcast_to(jnp.atleast_1d(jnp.asarray(self.positions, dtype)), (self.L,))

    def _fields(self, state: SequenceOverlaps):
        """Student fields ``z`` (shape ``(N, L)``), teacher fields ``nu`` and the rule's weights."""
        dtype = jnp.result_type(state.m, float)
        nodes, weights = _token_rule(self.L, self.order or self.exact_order)
        u = jnp.asarray(nodes, dtype)
        nu = u[..., 1]
        lam = state.m * nu + jnp.sqrt(jnp.maximum(state.q - state.m**2, 0.0)) * u[..., 0]
        return lam + state.e * self.encoding(dtype), nu, jnp.asarray(weights, dtype)

    def init(self) -> SequenceOverlaps:
        dtype = jnp.result_type(self.lr, self.m0, self.e0, float)
        q = jnp.ones((), dtype) if self.geometry == "spherical" else jnp.asarray(self.q0, dtype)
        return SequenceOverlaps(m=jnp.asarray(self.m0, dtype), e=jnp.asarray(self.e0, dtype), q=q)

    def vector_field(self, t, state: SequenceOverlaps) -> SequenceOverlaps:
        eta = self.lr * self.rate(t)
        z, nu, weights = self._fields(state)
        grad = jax.vmap(jax.grad(self.f))
        diag = jax.vmap(lambda zz: jnp.diag(jax.hessian(self.f)(zz)))
        delta = self.f(z) - self.f_star(nu)
        g, curvature = grad(z), diag(z)
        c = self.encoding(z.dtype)
        mean = lambda values: weights @ values
        drift_m = mean(delta * jnp.sum(g * nu, -1))
        drift_e = mean(delta * (g @ c)) + state.e * mean(jnp.sum(g**2 + delta[:, None] * curvature, -1))
        drift_q = 2 * mean(delta * jnp.sum(g * z, -1))
        variance = mean((delta**2 + self.noise) * jnp.sum(g**2, -1))
        dm, de, dq = -eta * drift_m, -eta * drift_e, -eta * drift_q + eta**2 * variance
        if self.geometry == "spherical":
            return SequenceOverlaps(
                m=dm - 0.5 * state.m * dq, e=de - 0.5 * state.e * dq, q=jnp.zeros_like(state.q)
            )
        return SequenceOverlaps(m=dm, e=de, q=dq)

    def observables(self, t, state: SequenceOverlaps) -> dict[str, jax.Array]:
        z, nu, weights = self._fields(state)
        delta = self.f(z) - self.f_star(nu)
        root = jnp.sqrt(state.q)
        return {
            "eg": 0.5 * weights @ delta**2,
            "m": state.m,
            "e": state.e,
            "q": state.q,
            "overlap": state.m / root,
            "positional": state.e / root,
        }
