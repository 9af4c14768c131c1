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
  of the token average);
- ``"attention"``: the paper's single-layer attention with the trace readout,
  ``f(z) = Tr S(z) / sqrt(L)``, ``S(z) = softmax(z z^T)`` (softmax along each row: token ``i``
  attends to token ``j`` with weight ``exp(z_i z_j) / sum_k exp(z_i z_k)``; the ``1 / sqrt(L)`` of
  the authors' public implementation); ``h`` is not used. It is even in ``z``, and constant
  (``f = 1``) at ``L = 1``;
- ``"attention-matrix"``: the whole attention matrix ``S(z)`` as the output (``L^2`` numbers), for
  student and target together; the target is the paper's positional-semantic mixture
  ``(1 - omega) S(nu) + omega A``, ``A = softmax(a^2 c c^T)`` the attention of the encoding alone at
  strength ``a`` (``= strength``; at ``L = 2``, ``c = (1, -1)`` it is the paper's
  ``softmax([[a^2, -a^2], [-a^2, a^2]])``), and the loss is ``|S(z) - target|_F^2 / 2``.

Square loss ``|y_hat - y|^2 / 2`` (summed over the ``L^2`` entries of a matrix output), mini-batches
of ``b = batch`` fresh sequences per step,
``w <- w - (lr(t) / b) sum_i grad_w loss_i = w - (lr(t) / b) sum_i sum_l G_il (x_il + c_l p / sqrt(d)) / sqrt(d)``
with ``G_l = d loss / dz_l = Delta . g_l``, ``Delta = y_hat - y`` and ``g_l = df / dz_l`` (for a
scalar output ``G_l = Delta g_l``), followed, when ``geometry="spherical"``, by the
projection back onto ``|w|^2 = d`` (the paper's normalised SGD). Time ``t`` counts sequences over
``d`` (a step advances it by ``b / d``; ``iterations = t / b`` counts steps over ``d``).

**Summary statistics.** ``m = w.w* / d`` (semantic), ``e = w.p / d`` (positional), ``q = |w|^2 / d``;
``m^2 + e^2 <= q``. The pairs ``(lambda_l, nu_l)`` are independent across tokens, each Gaussian with
covariance ``[[q, m], [m, 1]]``, so every expectation below depends on ``(m, e, q)`` only (the
paper's population loss as a function of ``(e, m)`` on the sphere).

**ODEs** (``d -> infinity`` at fixed ``L`` and ``b``; the tokens' overlaps ``x_l.x_k / d`` leave
corrections of relative order ``L / d``), with ``eta = lr(t) / b`` (as in
:class:`~hdtheory.dynamics.SingleIndex`: the limit depends on ``lr / b`` only; per unit of
``iterations`` the drift is ``lr`` times one sequence's and the ``eta^2`` term ``lr^2 / b``) and
``E`` over the ``L`` token pairs:

.. math::
    \frac{dm}{dt} = -\eta E\Big[\sum_l G_l \nu_l\Big], \qquad
    \frac{de}{dt} = -\eta E\Big[\sum_l G_l c_l\Big]
                    - \eta e\, E\Big[\sum_l \partial_l G_l\Big],

.. math::
    \frac{dq}{dt} = -2\eta E\Big[\sum_l G_l z_l\Big]
                    + \eta^2 E\Big[\sum_l G_l^2 + \text{noise} \sum_l |g_l|^2\Big]

(unconstrained; ``|sum_l G_l x_l|^2 / d -> sum_l G_l^2`` as distinct tokens are orthogonal;
``partial_l G_l = |g_l|^2 + Delta . partial_l^2 f``; the label noise, of variance ``noise`` on each
output, enters through the variance only). The second term of ``de/dt`` is ``E[sum_l G_l xi_l]``, ``xi_l = p.x_l / sqrt(d)``, a field
correlated with ``lambda_l`` by ``e`` and with nothing else, by Stein's lemma. On the sphere
(``q = 1``) each overlap ``a`` in ``(m, e)`` follows ``da/dt - (a / 2) dq/dt``. With ``L = 1`` and
``c = 0`` both forms are the single-index model and the ODEs are those of
:class:`~hdtheory.dynamics.SingleIndex` (same ``batch``); the tied form with ``c = 0`` is that
single-index model at every ``L``; both attention forms are constant at ``L = 1`` (nothing moves);
the sum form of ``h = He_k`` without encoding starts
``L`` times faster than one token (each token's drift adds up, the cross-token terms vanish at
``m -> 0``): an escape time ``~ 1 / L`` of the single-index one at small ``lr``. The ``eta^2``
term grows as ``(eta L)^2`` (``Delta`` sums ``L`` tokens), so long sequences need ``lr ~ 1 / L``.

**Conventions.** The paper's ``MSELoss`` is ``(y_hat - y)^2`` without the ``1/2``: its learning rate
is half of ``lr`` here. Its inputs are ``x / sqrt(d)`` with weights of norm ``sqrt(d)``, the same
fields as here.

**Quadrature.** Expectations are the product over tokens of the 2-D Gauss-Hermite rule of
:class:`~hdtheory.dynamics.SingleIndex` (``order`` nodes per axis, ``order^(2L)`` nodes in all):
exact for polynomial ``h`` and ``h*`` of degree ``p`` at the default ``order = 2p``: the integrands
have degree up to ``4p - 2`` in each field (``Delta^2 g_l^2``). The softmax of the attention forms is
not a polynomial, and a product Gauss-Hermite rule converges slowly on it (``exp(z_i z_j)`` inside
a logistic function: the integrand's strip of analyticity narrows as ``1 / |z|``; at ``L = 2`` order
38 per axis still left ``de/dt`` 10% off near the positional point ``e = 0.95``). With either
attention form the expectations use instead the shifted Sobol rule of
:func:`hdtheory.kernels.multivariate.sobol_rule` in the ``2L`` normals, mirrored (``points / 2``
nodes and their negatives), ``points`` nodes in all (``2^16`` by default; cost ``O(points L^2)`` at
any ``L``). Measured at ``L = 2`` against ``2^21`` nodes: the matrix model (bounded outputs) has its
drifts within ``1.3e-5`` (2% of the small ``dm/dt`` near the positional point) and ``eg`` within
``1e-6``; a polynomial target's tails cost more, ``3e-4`` on the drifts and ``3e-3`` (0.2%) on
``eg`` with ``h* = He_2``; the error falls roughly as ``1 / points``
(``tests/test_dynamics_ssi_attention.py``).
The product rule is refused above :data:`MAX_NODES` nodes: its cost grows as ``order^(2L)``.

**Long sequences (sum and tied forms).** When student and target are each ``"sum"`` or
``"tied"`` (and ``rule="auto"``) no rule over the ``2L`` fields is needed. *Sum student.* With
``a_l = h(z_l) - h*(nu_l)`` (``a_l = h(z_l)`` for a tied target), ``Delta = sum_l a_l`` (minus
``T = h*(N)``, ``N = sum_k nu_k / sqrt(L)``, for a tied target), the token pairs independent,
``r_l = Delta - a_l`` is independent of token ``l`` when the target is summed, with mean
``R_l = sum_{k != l} A_k`` and second moment ``R_l^2 + sum_{k != l} V_k`` (``A_k = E[a_k]``,
``V_k = Var a_k``). Every expectation above is ``E[Delta X_l]`` or ``E[Delta^2 X_l]`` for a
function ``X_l`` of token ``l`` alone (``g_l nu_l``, ``g_l``, ``g_l z_l``, ``g_l^2``, ``h''(z_l)``),
and factorises:

.. math::
    E[\Delta X_l] = E[a_l X_l] + R_l E[X_l], \qquad
    E[\Delta^2 X_l] = E[a_l^2 X_l] + 2 R_l E[a_l X_l] + \Big(R_l^2 + \sum_{k \ne l} V_k\Big) E[X_l],

``eg = (sum_l V_l + (sum_l A_l)^2) / 2``. A tied target couples the tokens through ``N`` only:
expanded on ``p_J = He_J / sqrt(J!)``, ``phi(N) = sum_J phi_J p_J(N)`` for ``phi = h*`` and
``h*^2`` (``J <= 2 deg h*``), the other tokens average out by the addition theorem of Hermite
polynomials, ``E[p_J(N) | nu_l] = L^{-J/2} p_J(nu_l)`` and
``E[p_J(N) | nu_k, nu_l] = L^{-J/2} sum_i sqrt(binom(J, i)) p_i(nu_k) p_{J-i}(nu_l)``, so
``E[T Y_l]``, ``E[T^2 Y_l]`` and ``sum_{k != l} E[T a_k X_l]`` are sums of the per-token
``E[a_l^i X_l p_j(nu_l)]``: ``O(L)`` two-dimensional integrals over ``(lambda_l, nu_l)`` (the 2-D
rule above, exact at ``order + deg h*`` nodes per axis for a tied target), ``O(L)`` work, so that
``L = 1000`` costs milliseconds. *Tied student.* Everything is a function of ``s = S + e C``,
``S = sum_l lambda_l / sqrt(L) = m N + sqrt(q - m^2) U`` (``U`` a standard normal independent of the
``nu``), ``C = sum_l c_l / sqrt(L)``, and of ``N``: ``sum_l G_l nu_l = Delta h'(s) N``,
``sum_l G_l c_l = Delta h'(s) C``, ``sum_l G_l z_l = Delta h'(s) s``,
``sum_l G_l^2 = Delta^2 h'(s)^2``, ``sum_l partial_l G_l = h'(s)^2 + Delta h''(s)``. A tied target
is a function of ``N``: a 2-D rule in ``(U, N)``. A summed one enters through
``E[F T] = L E[F h*(nu_1)]`` and ``E[F T^2] = L E[F h*(nu_1)^2] + L (L - 1) E[F h*(nu_1) h*(nu_2)]``
(the tokens are exchangeable given ``(S, N)``): a 4-D rule in ``U``, ``nu_1``, ``nu_2`` and the
other tokens' ``sum_{l > 2} nu_l / sqrt(L - 2)``; either is exact at the same ``order`` and costs
nothing in ``L``. (So a tied student sees a summed target only through ``E[T | N]`` and
``Var(T | N)``: for ``h* = c_0 + c_1 He_1 + c_2 He_2 / sqrt(2)`` it is the tied pair with target
``(L c_0, sqrt(L) c_1, c_2)`` and label noise ``c_2^2 (L - 1)`` more, a summed target of
information exponent ``k`` reaching it with strength ``L^{1 - k/2}``.) ``rule="product"`` keeps the product rule (equal to rounding where both run,
``tests/test_dynamics_ssi_long.py``, ``tests/test_dynamics_ssi_tied.py``).

**Observables.** ``eg = E[|f(z) - f*(nu)|^2] / 2`` (no label noise), ``m``, ``e``, ``q``, the cosines
``overlap = m / sqrt(q)`` and ``positional = e / sqrt(q)``, ``iterations = t / b``. Plateaus and
escapes are read off a trajectory: the time at which ``overlap`` crosses a level is
``hd.integrate(..., event=hd.crossing("overlap", level)).event_time`` (``examples/ssi_escape.py``).

**Positional-semantic phase diagram** (``attention-matrix``, sphere; the paper's diagram in
``(a, omega)`` at ``L = 2``, ``c = (1, -1)``). :func:`positional_semantic` reads the two things the
diagram is drawn from: which of the two pure points, positional ``(e, m) = (1, 0)`` or semantic
``(0, 1)``, has the lower error, and along which axis SGD leaves the uninformed start ``(0, 0)`` —
a stationary point of the flow (the matrix model's loss is even in ``m`` and in ``e``: the softmax
of ``z z^T`` is even in ``z``, the target in ``nu``), whose Jacobian is then diagonal, with the
growth rates of ``m`` and ``e`` on its diagonal (the Hessian of the population loss up to a shift common to both axes: the sphere's projection adds
the same multiple of the identity, at every learning rate).
"""

import functools
import itertools
import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ..kernels import hermite_series
from ..kernels.multivariate import sobol_rule
from .._theory import NONNEGATIVE, POSITIVE, Interval, ParameterError, choice, integer, parameter
from ._schedule import Scheduled
from .single_index import _rule, check_coefficients, expect_pair, guarded_sqrt

MAX_NODES = 2**21
"""The most quadrature nodes (``order^(2L)``) that :class:`SequenceSingleIndex` accepts."""

FORMS = {"sum": None, "tied": None, "attention": None, "attention-matrix": None}
RULES = {"auto": None, "product": None}
MATRIX = "attention-matrix"


def attention(z: jax.Array) -> jax.Array:
    """``softmax(z z^T)`` along the last axis: the attention matrix ``(..., L, L)`` of the fields
    ``z`` (shape ``(..., L)``)."""
    return jax.nn.softmax(z[..., :, None] * z[..., None, :], axis=-1)


class SequenceOverlaps(eqx.Module):
    """``m = w.w* / d``, ``e = w.p / d`` and ``q = |w|^2 / d``."""

    m: jax.Array
    e: jax.Array
    q: jax.Array


@functools.lru_cache(maxsize=None)
def _sobol_tokens(tokens: int, points: int, dtype) -> tuple[np.ndarray, np.ndarray]:
    """The shifted Sobol rule for ``2 tokens`` standard normals with its mirror image (``points / 2``
    nodes and their negatives: odd integrands vanish exactly), in the layout of :func:`_token_rule`."""
    with jax.ensure_compile_time_eval():
        nodes, _ = sobol_rule(2 * tokens, points // 2, dtype)
    nodes = np.concatenate([np.asarray(nodes), -np.asarray(nodes)])
    return nodes.reshape(-1, tokens, 2), np.full(points, 1.0 / points)


@functools.lru_cache(maxsize=None)
def _token_rule(tokens: int, order: int) -> tuple[np.ndarray, np.ndarray]:
    """The product over ``tokens`` of the 2-D standard Gauss-Hermite rule: nodes of shape
    ``(N, tokens, 2)`` (per token, the two independent standard normals) and weights ``(N,)``."""
    nodes, weights = _rule(order)
    pairs = np.array(list(itertools.product(range(order), repeat=2 * tokens)))
    z = nodes[pairs].reshape(-1, tokens, 2)
    w = np.prod(weights[pairs], axis=-1)
    return z, w


@functools.lru_cache(maxsize=None)
def _binomial_split(degree: int) -> np.ndarray:
    """``B[J, i, j] = sqrt(binomial(J, i))`` where ``i + j = J`` (else 0), shape ``(degree + 1,) * 3``:
    ``E[p_J(N) | nu_k, nu_l] = L^(-J/2) sum_i B[J, i, J - i] p_i(nu_k) p_(J-i)(nu_l)``."""
    split = np.zeros((degree + 1,) * 3)
    for J, i in itertools.product(range(degree + 1), repeat=2):
        if i <= J:
            split[J, i, J - i] = math.sqrt(math.comb(J, i))
    return split


def _tied_coefficients(target, L: int, degree: int, dtype):
    """The coefficients of ``h*(N)`` and ``h*(N)^2`` on ``p_J(N)``, ``J <= degree``, each times
    ``L^(-J/2)``: ``E[h*(N)^k | nu_l] = sum_J c_J p_J(nu_l)`` for ``N = sum_k nu_k / sqrt(L)``."""
    target = jnp.asarray(target, dtype)
    nodes, weights = (jnp.asarray(a, dtype) for a in _rule(degree + 1))
    basis = jax.vmap(lambda e: hermite_series(e, nodes))(jnp.eye(degree + 1, dtype=dtype))
    square = basis @ (weights * hermite_series(target, nodes) ** 2)
    scale = jnp.asarray(float(L) ** (-0.5 * np.arange(degree + 1)), dtype)
    first = jnp.zeros(degree + 1, dtype).at[: target.shape[-1]].set(target)
    return first * scale, square * scale


class SequenceSingleIndex(Scheduled):
    """Online SGD on a sequence single-index target; see the module docstring."""

    L: int = integer(2, Interval(1), "sequence length (tokens per input)")
    target: jax.Array = parameter((0.0, 0.0, 1.0), Interval(), "Hermite coefficients of h* (target)")
    student: jax.Array = parameter((0.0, 0.0, 1.0), Interval(), "Hermite coefficients of h (student)")
    target_form: str = choice("sum", FORMS, "f*: sum_l h*(nu_l), h*(sum_l nu_l / sqrt(L)), attention")
    student_form: str = choice("sum", FORMS, "f: sum_l h(z_l), h(sum_l z_l / sqrt(L)), attention")
    omega: jax.Array = parameter(0.0, Interval(0.0, 1.0), "attention-matrix target: weight of A")
    strength: jax.Array = parameter(1.0, NONNEGATIVE, "a of the target's A = softmax(a^2 c c^T)")
    positions: jax.Array = parameter((0.0,), Interval(), "positional coefficients c_l (one or L values)")
    geometry: str = choice("spherical", {"spherical": 1, "unconstrained": 1}, "|w|^2 = d or free")
    noise: jax.Array = parameter(0.0, NONNEGATIVE, "label-noise variance")
    m0: jax.Array = parameter(0.01, Interval(-1.0, 1.0), "initial overlap m = w.w*/d")
    e0: jax.Array = parameter(0.0, Interval(-1.0, 1.0), "initial positional overlap e = w.p/d")
    q0: jax.Array = parameter(1.0, POSITIVE, "initial norm q = |w|^2/d (unconstrained only)")
    points: int = integer(2**16, Interval(4), "Sobol nodes of the attention forms' rule (a power of 2)")
    batch: int = integer(1, Interval(1), "mini-batch size b (sequences per step)")
    rule: str = choice("auto", RULES, "sum form: per-token integrals (auto) or the product rule")
    order: int | None = eqx.field(default=None, static=True)

    def __check_init__(self):
        check_coefficients(self, ("target", "student"))
        if (self.student_form == MATRIX) != (self.target_form == MATRIX):
            raise ParameterError(
                f"parameter 'student_form' must be {MATRIX!r} exactly when 'target_form' is, "
                f"got {self.student_form!r} and {self.target_form!r}"
            )
        count = jnp.atleast_1d(self.positions).shape[-1]
        if count not in (1, self.L):
            raise ParameterError(
                f"parameter 'positions' must have 1 or L = {self.L} values, got {count}"
            )
        if self.attention:
            if self.points & (self.points - 1):
                raise ParameterError(f"parameter 'points' must be a power of 2 (>= 4), got {self.points}")
        elif not self.reduced and (self.order or self.exact_order) ** (2 * self.L) > MAX_NODES:
            order = self.order or self.exact_order
            raise ParameterError(
                f"parameter 'L' too large for the product rule: order^(2L) = {order ** (2 * self.L)} "
                f"nodes, at most {MAX_NODES} (L = {self.L}, order {order})"
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

    @property
    def reduced(self) -> bool:
        """Whether the expectations are the reductions of the sum and tied forms (``O(L)``
        two-dimensional integrals, or a rule in 2 or 4 fields; both forms in ``"sum"``, ``"tied"``
        and ``rule="auto"``)."""
        return {self.student_form, self.target_form} <= {"sum", "tied"} and self.rule == "auto"

    @property
    def attention(self) -> bool:
        """Whether an attention form is used (then the Sobol rule of ``points`` nodes)."""
        return any(form.startswith("attention") for form in (self.student_form, self.target_form))

    def _link(self, form, coefficients, z):
        if form == "tied":
            return hermite_series(coefficients, jnp.sum(z, -1) / np.sqrt(self.L))
        if form == "attention":
            return jnp.trace(attention(z), axis1=-2, axis2=-1) / np.sqrt(self.L)
        if form == MATRIX:
            return attention(z).reshape(*z.shape[:-1], self.L**2)
        return jnp.sum(hermite_series(coefficients, z), -1)

    def f(self, z):
        """The student's output on the fields ``z`` (shape ``(..., L)``): a scalar per sequence, or
        the ``L^2`` entries of the attention matrix (row by row)."""
        return self._link(self.student_form, self.student, z)

    def f_star(self, nu):
        """The target's output (without label noise) on the teacher's fields ``nu``."""
        out = self._link(self.target_form, self.target, nu)
        if self.target_form != MATRIX:
            return out
        code = self.strength * self.encoding(out.dtype)
        positional = attention(code).reshape(self.L**2)
        return (1 - self.omega) * out + self.omega * positional

    def loss_gradient(self, z, y):
        """``G = d loss / dz`` (shape ``(L,)``) of one sequence with fields ``z`` and label ``y``."""
        return jax.grad(lambda zz: 0.5 * jnp.sum((self.f(zz) - y) ** 2))(z)

    def encoding(self, dtype) -> jax.Array:
        """The positional coefficients ``c_l``, one per token."""
        return jnp.broadcast_to(jnp.atleast_1d(jnp.asarray(self.positions, dtype)), (self.L,))

    def _fields(self, state: SequenceOverlaps):
        """Student fields ``z`` (shape ``(N, L)``), teacher fields ``nu`` and the rule's weights."""
        dtype = jnp.result_type(state.m, float)
        if self.attention:
            nodes, weights = _sobol_tokens(self.L, self.points, dtype)
        else:
            nodes, weights = _token_rule(self.L, self.order or self.exact_order)
        u = jnp.asarray(nodes, dtype)
        nu = u[..., 1]
        lam = state.m * nu + jnp.sqrt(jnp.maximum(state.q - state.m**2, 0.0)) * u[..., 0]
        return lam + state.e * self.encoding(dtype), nu, jnp.asarray(weights, dtype)

    def init(self) -> SequenceOverlaps:
        dtype = jnp.result_type(self.lr, self.m0, self.e0, float)
        q = jnp.ones((), dtype) if self.geometry == "spherical" else jnp.asarray(self.q0, dtype)
        return SequenceOverlaps(m=jnp.asarray(self.m0, dtype), e=jnp.asarray(self.e0, dtype), q=q)

    def _derivatives(self, z):
        """Per node: the output's first and second derivatives in each field, ``(N, K, L)`` each
        (``K`` outputs; second derivatives along the axes only, by forward mode)."""
        outputs = lambda zz: jnp.atleast_1d(self.f(zz))
        axes = jnp.eye(self.L, dtype=z.dtype)

        def one(zz):
            first = lambda x, v: jax.jvp(outputs, (x,), (v,))[1]
            second = lambda v: jax.jvp(lambda x: first(x, v), (zz,), (v,))[1]
            return jax.vmap(lambda v: first(zz, v))(axes).T, jax.vmap(second)(axes).T

        return jax.vmap(one)(z)

    def _residual(self, z, nu):
        """``Delta = f(z) - f*(nu)``, shape ``(N, K)``."""
        return (self.f(z) - self.f_star(nu)).reshape(z.shape[0], -1)

    def _token_moments(self, state: SequenceOverlaps, order: int, degree: int) -> jax.Array:
        """The sum student's per-token expectations ``E[a^i X p_j(nu)]``, shape ``(3, 6, degree + 1, L)``:
        ``i = 0, 1, 2``, ``X`` one of ``1, g nu, g, g z, g^2, h''(z)`` on token ``l``,
        ``p_j = He_j / sqrt(j!)``, ``a = h(z_l) - h*(nu_l)`` (``a = h(z_l)`` for a tied target)."""
        dtype = jnp.result_type(state.m, float)
        shift = state.e * self.encoding(dtype)
        target = self.target if self.target_form == "sum" else jnp.zeros(1, dtype)
        slope = jax.grad(lambda x: jnp.sum(hermite_series(self.student, x)))
        bend = jax.grad(lambda x: jnp.sum(slope(x)))
        basis = jnp.eye(degree + 1, dtype=dtype)

        def moments(lam, nu):
            z = lam[..., None] + shift
            nu = jnp.broadcast_to(nu[..., None], z.shape)
            a = hermite_series(self.student, z) - hermite_series(target, nu)
            g = slope(z)
            xs = jnp.stack([jnp.ones_like(z), g * nu, g, g * z, g**2, bend(z)], -2)
            hermite = jax.vmap(lambda e: hermite_series(e, nu), out_axes=-2)(basis)  # p_j(nu)
            xs = xs[..., None, :] * hermite[..., None, :, :]
            return jnp.stack([xs, a[..., None, None, :] * xs, (a**2)[..., None, None, :] * xs], -4)

        spread = (guarded_sqrt(state.q - state.m**2),)
        return expect_pair(moments, state.m, spread, order)

    def _sum_student(self, state: SequenceOverlaps):
        """Drifts and error of the sum student from :meth:`_token_moments`: ``Delta = a_l + r_l - T``,
        the rest ``r_l = sum_{k != l} a_k`` independent of token ``l``, ``T = h*(N)`` a tied target
        read through its Hermite coefficients in ``N = sum_k nu_k / sqrt(L)``."""
        tied = self.target_form == "tied"
        degree = 2 * (jnp.atleast_1d(self.target).shape[-1] - 1) if tied else 0
        order = self.order or self.exact_order + degree // 2
        moments = self._token_moments(state, order, degree)
        plain, first, second = moments[0], moments[1], moments[2]  # (6, degree + 1, L)
        mean = first[0, 0]
        spread = second[0, 0] - mean**2
        rest = jnp.sum(mean) - mean
        rest_square = jnp.sum(spread) - spread + rest**2
        delta = first[:, 0] + rest * plain[:, 0]  # E[Delta X_l]
        delta_square = second[:, 0] + 2 * rest * first[:, 0] + rest_square * plain[:, 0]  # E[Delta^2 X_l]
        if tied:
            t1, t2 = _tied_coefficients(self.target, self.L, degree, mean.dtype)
            others = jnp.sum(first[0], -1, keepdims=True) - first[0]  # sum_{k != l} E[a_k p_i(nu_k)]
            split = jnp.asarray(_binomial_split(degree), mean.dtype)
            pair = jnp.einsum("J,Jij,il,xjl->xl", t1, split, others, plain)
            delta = delta - jnp.einsum("j,xjl->xl", t1, plain)
            delta_square = (delta_square - 2 * jnp.einsum("j,xjl->xl", t1, first) - 2 * pair
                            + jnp.einsum("j,xjl->xl", t2, plain))
        c = self.encoding(mean.dtype)
        drift_m = jnp.sum(delta[1])
        drift_e = c @ delta[2] + state.e * jnp.sum(plain[4, 0] + delta[5])
        drift_q = 2 * jnp.sum(delta[3])
        variance = jnp.sum(delta_square[4] + self.noise * plain[4, 0])
        return (drift_m, drift_e, drift_q, variance), 0.5 * delta_square[0, 0]

    def _tied_student(self, state: SequenceOverlaps):
        """Drifts and error of the tied student: functions of ``s = S + e sum_l c_l / sqrt(L)`` and
        ``N``, with ``S = m N + sqrt(q - m^2) U``; a sum target through two of its tokens and the rest."""
        dtype = jnp.result_type(state.m, float)
        order = self.order or self.exact_order
        if self.target_form == "tied":
            nodes, weights = _token_rule(1, order)
            u, n = (jnp.asarray(nodes[:, 0, i], dtype) for i in range(2))
            t = hermite_series(self.target, n)
            first, second = t, t**2
        else:
            nodes, weights = _token_rule(2, order)
            u, v1, v2, rest = (jnp.asarray(nodes.reshape(-1, 4)[:, i], dtype) for i in range(4))
            L = self.L
            n = (v1 + min(L - 1, 1) * v2 + np.sqrt(max(L - 2, 0)) * rest) / np.sqrt(L)
            t1, t2 = hermite_series(self.target, v1), hermite_series(self.target, v2)
            first, second = L * t1, L * t1**2 + L * (L - 1) * t1 * t2  # of T and T^2, T = sum_l h*(nu_l)
        code = jnp.sum(self.encoding(dtype)) / np.sqrt(self.L)
        s = state.m * n + guarded_sqrt(state.q - state.m**2) * u + state.e * code
        out = hermite_series(self.student, s)
        slope = jax.grad(lambda x: jnp.sum(hermite_series(self.student, x)))
        g = slope(s)
        bend = jax.grad(lambda x: jnp.sum(slope(x)))(s)
        delta = out - first  # of Delta, and of Delta^2:
        delta_square = out**2 - 2 * out * first + second
        mean = lambda values: jnp.asarray(weights, dtype) @ values
        drift_m = mean(delta * g * n)
        drift_e = code * mean(delta * g) + state.e * mean(g**2 + delta * bend)
        drift_q = 2 * mean(delta * g * s)
        variance = mean(delta_square * g**2 + self.noise * g**2)
        return (drift_m, drift_e, drift_q, variance), 0.5 * mean(delta_square)

    def _reduced(self, state: SequenceOverlaps):
        """Drifts and error by the sum or tied student's reduction."""
        return self._sum_student(state) if self.student_form == "sum" else self._tied_student(state)

    def _product(self, state: SequenceOverlaps):
        """The drifts by a rule over all ``2L`` token fields (product or Sobol)."""
        z, nu, weights = self._fields(state)
        delta = self._residual(z, nu)
        g, curvature = self._derivatives(z)
        G = jnp.einsum("nk,nkl->nl", delta, g)
        c = self.encoding(z.dtype)
        mean = lambda values: weights @ values
        drift_m = mean(jnp.sum(G * nu, -1))
        laplacian = jnp.sum(g**2 + delta[:, :, None] * curvature, (1, 2))
        drift_e = mean(G @ c) + state.e * mean(laplacian)
        drift_q = 2 * mean(jnp.sum(G * z, -1))
        variance = mean(jnp.sum(G**2, -1) + self.noise * jnp.sum(g**2, (1, 2)))
        return drift_m, drift_e, drift_q, variance

    def _error(self, state: SequenceOverlaps) -> jax.Array:
        """``eg``, by the sum and tied forms' reductions or by the rule over all token fields."""
        if self.reduced:
            return self._reduced(state)[1]
        z, nu, weights = self._fields(state)
        return 0.5 * weights @ jnp.sum(self._residual(z, nu) ** 2, -1)

    def vector_field(self, t, state: SequenceOverlaps) -> SequenceOverlaps:
        eta = self.lr * self.rate(t) / self.batch
        drifts = self._reduced(state)[0] if self.reduced else self._product(state)
        drift_m, drift_e, drift_q, variance = drifts
        dm, de, dq = -eta * drift_m, -eta * drift_e, -eta * drift_q + eta**2 * variance
        if self.geometry == "spherical":
            return SequenceOverlaps(
                m=dm - 0.5 * state.m * dq, e=de - 0.5 * state.e * dq, q=jnp.zeros_like(state.q)
            )
        return SequenceOverlaps(m=dm, e=de, q=dq)

    def observables(self, t, state: SequenceOverlaps) -> dict[str, jax.Array]:
        root = jnp.sqrt(state.q)
        return {
            "eg": self._error(state),
            "m": state.m,
            "e": state.e,
            "q": state.q,
            "overlap": state.m / root,
            "positional": state.e / root,
            "iterations": t / self.batch,
        }


def positional_semantic(theory: SequenceSingleIndex) -> dict[str, jax.Array]:
    """What the positional-semantic phase diagram is drawn from; see the module docstring.

    Returns ``eg_positional`` and ``eg_semantic``, the errors at ``(e, m) = (1, 0)`` and ``(0, 1)``
    on the sphere, and ``growth_e`` and ``growth_m``, the diagonal of the Jacobian of ``(de/dt,
    dm/dt)`` at ``(0, 0)`` (SGD leaves the start along ``e`` when ``growth_e > growth_m``).
    """
    if theory.geometry != "spherical":
        raise ParameterError("parameter 'geometry' must be 'spherical' for positional_semantic")
    dtype = jnp.result_type(theory.lr, float)
    point = lambda m, e: SequenceOverlaps(m=jnp.asarray(m, dtype), e=jnp.asarray(e, dtype),
                                          q=jnp.ones((), dtype))

    def flow(x):
        field = theory.vector_field(0.0, point(x[0], x[1]))
        return jnp.stack([field.m, field.e])

    jacobian = jax.jacfwd(flow)(jnp.zeros(2, dtype))
    return {
        "eg_positional": theory.observables(0.0, point(0.0, 1.0))["eg"],
        "eg_semantic": theory.observables(0.0, point(1.0, 0.0))["eg"],
        "growth_m": jacobian[0, 0],
        "growth_e": jacobian[1, 1],
    }
