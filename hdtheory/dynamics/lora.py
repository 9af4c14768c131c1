r"""LoRA fine-tuning of a pre-trained single-index or two-layer model by online SGD, adapters of any rank.

**Setting** (Nwemadji, Loureiro & Barbier 2026, "When pre-training hurts LoRA fine-tuning: a
dynamical analysis via single-index models"). Inputs ``x ~ N(0, I_d)``; a teacher of ``M =
teachers`` units ``w*_m`` and a student of ``p = width`` units, with fixed readouts,

.. math::
    y = \sum_{m=1}^M b\, f^*(\nu_m) + \sqrt{\sigma}\,\zeta, \qquad
    \hat y = \sum_{k=1}^p c\, f(\lambda_k),

``nu = W* x / sqrt(d)``, ``lambda = W x / sqrt(d)``, ``b = c = 1`` (``output="sum"``),
``b = 1 / M``, ``c = 1 / p`` (``output="mean"``) or ``b = 1 / sqrt(M)``, ``c = 1 / sqrt(p)``
(``output="sqrt"``), square loss ``(y_hat - y)^2 / 2``; ``p = M = 1`` is the single-index model.
Link and activation are Hermite series (``activation="hermite"``: ``f*`` the series ``target``, ``f``
the series ``student``, as in :mod:`~hdtheory.dynamics.single_index`) or a named activation ``f``
(``"erf"`` ``erf(z / sqrt 2)``, ``"erf-z"`` ``erf(z)``, the paper's, ``"relu"``, ``"linear"``,
``"tanh"``, ``"sigmoid"``; :mod:`hdtheory.kernels.activations`) with the link ``f* = f``
(``link="same"``) or another named one (``link="relu"``, ..., or ``"hermite"``: the series
``target``). The paper's two-layer experiments (the authors' code) use
``f = f*`` among linear, erf, sigmoid and ReLU with ``M = p``, the ``1 / sqrt(p)`` readout for the
mean-zero activations (linear, erf, odd Hermite) and ``1 / p`` otherwise, ``erf(z)``
(``activation="erf-z"``; ``"erf"`` is the committee machines' ``erf(z / sqrt 2)``), no label noise,
and a start ``U = d^-2`` with random unit rows of ``V`` (their two-layer runs are at
``d = 100`` with batches of 5000 samples, ``b >> d``: a regime of nearly population gradient steps,
not this ``d -> infinity`` limit at fixed ``b``). The frozen directions ``B = [W*; Xi]`` (``M + L``
rows, orthogonal, ``|.|^2 = d``) carry the pre-trained weights ``W0 = mu W* + tau Xi`` (``mu`` of shape
``(p, M)``, ``tau`` of shape ``(p, L)``; scalars are multiples of the identity, ``L = p``: unit ``k``
pre-trained along teacher ``k`` and its own ``xi_k``; the paper's initialisations are
``W0 = mu W*``, ``tau = 0``, and ``w0 = mu w* + (1 - mu) xi``; its two-layer networks ``D T`` are a
diagonal ``mu``, in the authors' code ``d`` on the first two units and 1 on the others). The
fine-tuned weights are ``W = W0 + U V``: a rank-``r`` adapter, ``r = rank``, rows ``v_j`` of ``V`` on
the sphere ``|v_j|^2 = d`` (the paper normalises each row) and ``U`` of shape ``(p, r)``. Mini-batch SGD with ``b = batch`` fresh samples per step, per-sample gradients
``g_k = Delta c f'(lambda_k)`` (``Delta = y_hat - y``) and ``h = U^T g``:

.. math::
    v_j \leftarrow \sqrt{d}\,\frac{v'_j}{|v'_j|},\quad V' = V - \frac{\mathrm{lr}(t)}{b} \sum_i h_i \frac{x_i^T}{\sqrt d},
    \qquad U \leftarrow U - \frac{r_s\, \mathrm{lr}(t)}{b d} \sum_i g_i \rho_i^T,

``rho = V x / sqrt(d)``, ``r_s = scale_lr``, both from the same gradient. The ``1 / d`` of ``U``'s
step is the scaling of a second-layer weight in the committee machines (Saad & Solla 1995): it
moves ``U`` by ``O(1)`` per ``d`` samples, on the time scale of the overlaps; in the paper's
normalisation (``|v| = 1``, field ``x.v``, the same learning rate ``lr / d`` for ``U`` and ``V``)
this is ``scale_lr = 1``. ``scale_lr = 0`` freezes ``U``: with ``W0 = 0`` and ``U = I`` (``r = p``)
this is plain spherical online SGD on ``W = V``, :class:`~hdtheory.dynamics.Committee` with
``geometry="spherical"`` and a fixed second layer (and at ``p = M = 1``,
:class:`~hdtheory.dynamics.SingleIndex`).

**ODEs** (``d -> infinity`` at fixed ``b``; derived here and checked against finite-``d``
simulation). Summary statistics ``S = V B^T / d`` (``r x (M + L)``: the adapter rows' overlaps
``m = V W*^T / d`` with the teacher and ``n = V Xi^T / d`` with the other frozen directions),
``Q = V V^T / d`` (``r x r``, unit diagonal) and ``U``. The fields ``z = (beta, rho)``,
``beta = B x / sqrt(d)`` (``nu`` its first ``M``), are Gaussian with covariance
``Sigma = [[I, S^T], [S, Q]]``, and ``lambda = P beta + U rho``, ``P = [mu, tau]``. With
``eta = lr(t) / b``, ``E_z = E[g z^T]`` (``p x (M + L + r)``) and the second moment of the noisy
gradient ``C_kl = c^2 E[(Delta^2 + sigma) f'(lambda_k) f'(lambda_l)]`` (``p x p``),

.. math::
    F = -\eta\, U^T E_z, \qquad G = F_\rho + F_\rho^T + \eta^2 U^T C U, \qquad
    \frac{dS}{dt} = F_\beta - \tfrac12 \operatorname{diag}(G) S, \qquad
    \frac{dQ}{dt} = G - \tfrac12 (G_{jj} + G_{ll}) Q_{jl}, \qquad
    \frac{dU}{dt} = -r_s \eta\, E[g \rho^T]

(``F_beta``, ``F_rho`` the columns of ``F`` on ``beta`` and ``rho``): ``G`` is the growth rate of
``V V^T / d`` under the raw step, and the projection of each row back onto the sphere takes half of
``G_jj`` off every overlap of row ``j`` (to first order in the step, as for the committee's
``geometry="spherical"``). At rank one, ``p = M = L = 1``, these are the ODEs of ``m = v.w*/d``,
``n = v.xi/d`` and ``a = U``. The adapter moves ``V`` only through ``U``: from the paper's start
``U ~ 0`` (``U = d^-2``) it must first grow through ``E[g rho^T]``, which at an uninformed ``V``
(``S ~ d^-1/2``) is itself of order ``S``. With ``W0 = mu W*`` and ``f = f*``, the pre-trained error
``Delta`` at ``U = 0`` shrinks as ``mu -> 1``, and with it every drift: strong pre-training lengthens
the search phase (the paper's "pre-training hurts").

**The expectations in the committee's language** (named activations). ``(lambda, nu, z)`` are
``p + M + (M + L + r)`` jointly Gaussian fields, linear in ``z``: with ``A = [P, U]`` and ``T`` the
stack of ``A``, ``[I_M, 0]`` and the identity, their covariance is ``omega = T Sigma T^T`` (singular:
``nu`` is part of ``z``). With the readouts ``c_alpha = (c, ..., -b, ...)`` on ``(lambda, nu)``,
``Delta = sum_alpha c_alpha h_alpha(u_alpha)`` and every moment above is one of the committee
machine's Gaussian integrals (Saad & Solla 1995; Goldt et al. 2019; :mod:`~hdtheory.dynamics.committee`)
on submatrices of ``omega``:

.. math::
    E[g_k z_j] = c \sum_\alpha c_\alpha I_3(\lambda_k, z_j, u_\alpha), \qquad
    C_{kl} = c^2 \Big[\sum_{\alpha\beta} c_\alpha c_\beta I_4(\lambda_k, \lambda_l, u_\alpha, u_\beta)
        + \sigma J_2(\lambda_k, \lambda_l)\Big], \qquad
    E[\Delta^2] = \sum_{\alpha\beta} c_\alpha c_\beta I_2(u_\alpha, u_\beta),

computed by :class:`hdtheory.kernels.CommitteeMoments`, the committee's own code: closed forms for
erf (either scale) and linear; for ReLU all but ``I_4``, whose sum ``C`` is one product rule over
the ``p + M`` fields (algebraically convergent at the kink, and only in the ``eta^2`` term; its
derivative is the rule's, exact to the rule at ``p = 1``, where ``lambda``'s kink lies on the first
axis of the rule's Cholesky factor and does not cross its nodes); quadrature for tanh and sigmoid.
With a link other than ``f`` the integrals that involve both are in closed form for erf (either
scale) against a linear or ReLU link (Stein's lemma on the link's odd part,
``hdtheory.kernels.activations.Erf``), else by quadrature (the activation's own rules, 24 to 48
nodes per axis), and ``C`` by its product rule with 96 nodes per axis (capped at ``2^20`` nodes in
all; against a ReLU link the kinked terms are odd and cancel node by node): exact to about ``1e-10``
for erf against a polynomial link, ``1e-7`` for the sharper ``erf(z)``, ``1e-13`` against ReLU; a
kinked link with another activation converges algebraically. The closed forms are smooth in
``omega`` also where it is singular, so erf's values and derivatives hold at the paper's degenerate
start too. ReLU's integrals divide by the variance of ``lambda_k``: a unit with no weight
(``W_k = 0``, no pre-training and ``U_k = 0``) is refused.

**Hermite series.** Every expectation is one product Gauss-Hermite rule over the ``M + L + r``
fields ``z`` (:func:`~hdtheory.kernels.multivariate.gaussian_expectation_nd`, ``order`` nodes per axis, by
default ``2 q``, ``q`` the largest degree of link and activation: exact for these polynomial
integrands, whose degree is at most ``4 q - 2``), ``order^(M + L + r)`` nodes in all. ``lambda`` is
linear in ``mu``, ``tau`` and ``U``, so values and derivatives are exact also at the paper's
degenerate start ``tau = 0``, ``U = 0`` (``lambda`` proportional to ``nu``), where the square root of
a covariance of ``lambda`` and ``nu`` would have an infinite derivative; only a singular ``Sigma``
(an adapter row in the span of the frozen directions) has such a root, in the Cholesky factor,
whose derivative there is taken as zero.

**Observables.** ``eg = E[(y_hat - y*)^2] / 2`` (no label noise), ``m`` (``r x M``), ``n``
(``r x L``), ``Q``, ``U``, the fine-tuned weights' overlaps ``m_w = W W*^T / d = mu + U m``
(``p x M``) and ``q = W W^T / d`` (``p x p``), their cosines ``overlap = m_w / sqrt(q_kk)`` (0 for a
unit with ``W_k = 0``), the largest ``max_overlap = max |overlap|``, and ``iterations = t / b``.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .._theory import NONNEGATIVE, Interval, ParameterError, choice, integer, is_concrete, parameter
from ..kernels import ACTIVATIONS, Activation, CommitteeMoments, Hermite
from ..kernels.multivariate import gaussian_expectation_nd
from ._schedule import Scheduled
from .single_index import check_coefficients


class LoRAState(eqx.Module):
    """The adapter's overlaps with the frozen directions ``S = V B^T / d`` ``(r, M + L)``, its Gram
    matrix ``Q = V V^T / d`` ``(r, r)`` and its left factor ``U`` ``(p, r)``."""

    S: jax.Array
    Q: jax.Array
    U: jax.Array


class LoRA(Scheduled):
    """LoRA fine-tuning of a pre-trained single-index or two-layer model; see the module docstring."""

    target: jax.Array = parameter((0.0, 0.0, 0.0, 1.0), Interval(), "Hermite coefficients of f*")
    student: jax.Array = parameter((0.0, 0.0, 0.0, 1.0), Interval(), "Hermite coefficients of f")
    rank: int = integer(1, Interval(1), "adapter rank r (W = W0 + U V, V of r rows)")
    width: int = integer(1, Interval(1), "student hidden units p (1: a single-index student)")
    teachers: int = integer(1, Interval(1), "teacher hidden units M")
    activation: str = choice(
        "hermite", ACTIVATIONS, "f = f* by name, or hermite: the series student (f) and target (f*)"
    )
    link: str = choice(
        "same", {"same": 1, **ACTIVATIONS},
        "the teacher's link f* by name (hermite: the series target) when activation is named; same: f* = f",
    )
    output: str = choice(
        "sum", {"sum": 1, "mean": 1, "sqrt": 1},
        "readouts sum_k f(lambda_k), (1/p) sum_k or (1/sqrt(p)) sum_k (teacher alike)",
    )
    mu: jax.Array = parameter(0.5, Interval(), "pre-trained overlaps W0 W*^T/d (p x M; scalar: times identity)")
    tau: jax.Array = parameter(0.0, NONNEGATIVE, "pre-trained weights off W*: W0 = mu W* + tau Xi (p x L; scalar: times identity)")
    scale_lr: jax.Array = parameter(1.0, NONNEGATIVE, "step of U over lr / d (1: the paper's equal rates)")
    batch: int = integer(1, Interval(1), "mini-batch size b (samples per step)")
    noise: jax.Array = parameter(0.0, NONNEGATIVE, "label-noise variance")
    m0: jax.Array = parameter(0.01, Interval(-1.0, 1.0), "initial adapter overlaps v_j.w*_m/d (unless S0)")
    n0: jax.Array = parameter(0.0, Interval(-1.0, 1.0), "initial adapter overlaps v_j.xi_l/d (unless S0)")
    a0: jax.Array = parameter(0.0, Interval(), "initial entries of U (unless U0)")
    order: int | None = eqx.field(default=None, static=True)
    S0: jax.Array | None = None
    Q0: jax.Array | None = None
    U0: jax.Array | None = None

    def __check_init__(self):
        check_coefficients(self, ("target", "student"))
        if self.activation == "hermite" and self.link not in ("same", "hermite"):
            raise ParameterError(
                f"parameter 'link' must be 'same' with activation='hermite' (the series target is the link), "
                f"got {self.link!r}"
            )
        p, r, M = self.width, self.rank, self.teachers
        for name, shape in (("mu", f"({p}, {M})"), ("tau", f"({p}, L)")):
            value = getattr(self, name)
            ok = np.ndim(value) == 0 or (np.ndim(value) == 2 and np.shape(value)[0] == p)
            if not ok or (name == "mu" and np.ndim(value) == 2 and np.shape(value)[1] != M):
                raise ParameterError(
                    f"parameter {name!r} must be a scalar or have shape {shape} for width={p}, "
                    f"teachers={M}, got {np.shape(value)}"
                )
        nb = M + self.directions
        for name, shape in (("S0", (r, nb)), ("Q0", (r, r)), ("U0", (p, r))):
            value = getattr(self, name)
            if value is not None and np.shape(value) != shape:
                raise ParameterError(f"parameter {name!r} must have shape {shape}, got {np.shape(value)}")
        state = self.init()
        if self.Q0 is not None and is_concrete(state.Q) and not np.allclose(np.diagonal(state.Q), 1.0):
            raise ParameterError("parameter 'Q0' must have a unit diagonal (adapter rows on the sphere)")
        sigma = self._sigma(state)
        if is_concrete(sigma) and np.min(np.linalg.eigvalsh(np.asarray(sigma))) < -1e-10:
            raise ParameterError(
                "parameters 'm0', 'n0' (or 'S0', 'Q0') must be overlaps of unit adapter rows: "
                "[[I, S0^T], [S0, Q0]] positive semi-definite (rows alike from m0, n0: "
                "rank (teachers m0^2 + L n0^2) <= 1)"
            )
        P = self.pretrained()
        if self.activation == "relu" and all(is_concrete(x) for x in (sigma, state.U, P)):
            A = np.concatenate([np.asarray(P), np.asarray(state.U)], 1)
            if np.min(np.einsum("ki,ij,kj->k", A, np.asarray(sigma), A)) <= 0:
                raise ParameterError(
                    "parameters 'mu', 'tau', 'a0' (or 'U0'): activation='relu' needs every unit's initial "
                    "weight W0 + U V to be non-zero (its Gaussian integrals divide by the field's variance)"
                )

    # -- the pieces of the equations --------------------------------------------------------------

    @property
    def directions(self) -> int:
        """``L``: the frozen directions besides the teacher's (``p`` for a scalar ``tau``)."""
        return self.width if np.ndim(self.tau) == 0 else np.shape(self.tau)[1]

    @property
    def exact_order(self) -> int:
        """``2 q``: nodes per axis exact for every moment of degree-``q`` link and activation."""
        return 2 * max(1, max(jnp.atleast_1d(c).shape[-1] - 1 for c in (self.target, self.student)))

    def pretrained(self) -> jax.Array:
        """``P = [mu, tau]`` ``(p, M + L)``: the frozen weights ``W0 = P B``."""
        dtype = jnp.result_type(self.mu, self.tau, float)
        p, M, L = self.width, self.teachers, self.directions
        mu = self.mu * jnp.eye(p, M, dtype=dtype) if np.ndim(self.mu) == 0 else jnp.asarray(self.mu, dtype)
        tau = self.tau * jnp.eye(p, L, dtype=dtype) if np.ndim(self.tau) == 0 else jnp.asarray(self.tau, dtype)
        return jnp.concatenate([mu, tau], 1)

    def readouts(self) -> tuple[float, float]:
        """``(c, b)``: the readout of each student unit and of each teacher unit."""
        if self.output == "mean":
            return 1.0 / self.width, 1.0 / self.teachers
        if self.output == "sqrt":
            return 1.0 / np.sqrt(self.width), 1.0 / np.sqrt(self.teachers)
        return 1.0, 1.0

    @property
    def kernel(self) -> Activation:
        """The student's activation ``f``."""
        if self.activation == "hermite":
            return Hermite(coefficients=self.student)
        return ACTIVATIONS[self.activation]()

    @property
    def teacher_kernel(self) -> Activation:
        """The teacher's link ``f*``: the series ``target`` (``activation`` or ``link`` ``"hermite"``),
        ``f`` itself (``link="same"``) or the named ``link``."""
        if "hermite" in (self.activation, self.link):
            return Hermite(coefficients=self.target)
        return self.kernel if self.link == "same" else ACTIVATIONS[self.link]()

    def _sigma(self, state: LoRAState) -> jax.Array:
        eye = jnp.eye(state.S.shape[1], dtype=state.S.dtype)
        return jnp.block([[eye, state.S.T], [state.S, state.Q]])

    def _expect(self, fn, state: LoRAState):
        """``E[fn(Delta, lambda, z, f)]`` over the fields ``z ~ N(0, Sigma)`` (``f`` the student's
        activation); ``fn`` returns a tuple of arrays with a leading node axis, and their
        expectations come back as a list, from one evaluation on the nodes."""
        P, nb = self.pretrained(), state.S.shape[1]
        c, b = self.readouts()
        f, f_star = self.kernel, self.teacher_kernel
        shapes = []

        def values(z):
            lam = z[..., :nb] @ P.T + z[..., nb:] @ state.U.T
            delta = c * jnp.sum(f(lam), -1) - b * jnp.sum(f_star(z[..., : self.teachers]), -1)
            parts = fn(delta, lam, z, f)
            shapes[:] = [x.shape[1:] for x in parts]
            return jnp.concatenate([x.reshape(x.shape[0], -1) for x in parts], -1)

        flat = gaussian_expectation_nd(values, self._sigma(state), self.order or self.exact_order)
        sizes = np.cumsum([int(np.prod(s)) for s in shapes])[:-1]
        return [x.reshape(s) for x, s in zip(jnp.split(flat, sizes), shapes)]

    def _fields(self, state: LoRAState):
        """The committee's language: the covariance ``omega`` of the fields ``(lambda, nu, z)``
        (``lambda = A z``, ``A = [P, U]``; ``nu`` the first ``M`` of ``z``), their moments and the
        readouts ``(c, -b)`` of the ``p + M`` fields ``(lambda, nu)``."""
        p, M = self.width, self.teachers
        A = jnp.concatenate([self.pretrained(), state.U], 1)
        n = A.shape[1]
        T = jnp.concatenate([A, jnp.eye(M, n, dtype=A.dtype), jnp.eye(n, dtype=A.dtype)], 0)
        omega = T @ self._sigma(state) @ T.T
        c, b = self.readouts()
        weights = jnp.concatenate([jnp.full((p,), c, A.dtype), jnp.full((M,), -b, A.dtype)])
        # Another link than the activation has no closed-form I_4: its joint rule, 24 nodes per axis
        # by default, is 1e-4 off for erf against a cubic at p = M = 1; 96 are exact to 1e-12 there.
        joint = {} if self.link == "same" else {"joint_order": 96}
        moments = CommitteeMoments(g=self.kernel, g_star=self.teacher_kernel, K=p, M=M, **joint)
        return moments, 0.5 * (omega + omega.T), weights

    def gradient_moments(self, state: LoRAState) -> tuple[jax.Array, jax.Array]:
        """``E[g z^T]`` ``(p, M + L + r)`` and ``C = E[(Delta^2 + noise) ...]`` ``(p, p)``: one product
        rule over ``z`` for Hermite series, else the committee's ``I_3``, ``I_4``, ``J_2``."""
        c, _ = self.readouts()
        if self.activation == "hermite":

            def moments(delta, lam, z, f):
                slope = c * f.derivative(lam)  # (N, p): g_k / Delta
                first = (delta[:, None] * slope)[:, :, None] * z[:, None, :]
                second = (delta**2 + self.noise)[:, None, None] * slope[:, :, None] * slope[:, None, :]
                return first, second

            return tuple(self._expect(moments, state))
        moments, omega, weights = self._fields(state)
        start = self.width + self.teachers
        first = c * moments.drift(omega, weights, jnp.arange(start, omega.shape[0]))
        second = c**2 * (moments.squared_error(omega, weights) + self.noise * moments.slopes(omega))
        return first, second

    def generalisation_error(self, state: LoRAState) -> jax.Array:
        """``eg = E[(y_hat - y*)^2] / 2``: the product rule over ``z`` for Hermite series, else
        ``sum_ab c_a c_b I_2 / 2`` (a sum within its rounding of zero reported as 0)."""
        if self.activation == "hermite":
            (error,) = self._expect(lambda delta, lam, z, f: (delta**2,), state)
            return 0.5 * error
        moments, omega, weights = self._fields(state)
        return moments.error(omega, weights)

    def init(self) -> LoRAState:
        dtype = jnp.result_type(self.lr, self.m0, self.n0, self.a0, float)
        p, r, M, L = self.width, self.rank, self.teachers, self.directions
        if self.S0 is None:
            row = jnp.concatenate([jnp.full((M,), self.m0, dtype), jnp.full((L,), self.n0, dtype)])
            S = jnp.broadcast_to(row, (r, M + L))
        else:
            S = jnp.asarray(self.S0, dtype)
        Q = jnp.eye(r, dtype=dtype) if self.Q0 is None else jnp.asarray(self.Q0, dtype)
        U = jnp.full((p, r), self.a0, dtype) if self.U0 is None else jnp.asarray(self.U0, dtype)
        return LoRAState(S=S, Q=Q, U=U)

    def vector_field(self, t, state: LoRAState) -> LoRAState:
        eta = self.lr * self.rate(t) / self.batch
        nb = state.S.shape[1]
        first, second = self.gradient_moments(state)  # E[g z^T] (p, nb + r), E[g g^T] (p, p)
        F = -eta * state.U.T @ first
        F_rho = F[:, nb:]
        G = F_rho + F_rho.T + eta**2 * state.U.T @ second @ state.U
        growth = 0.5 * jnp.diagonal(G)
        return LoRAState(
            S=F[:, :nb] - growth[:, None] * state.S,
            Q=G - (growth[:, None] + growth[None, :]) * state.Q,
            U=-self.scale_lr * eta * first[:, nb:],
        )

    def observables(self, t, state: LoRAState) -> dict[str, jax.Array]:
        M = self.teachers
        P = self.pretrained()
        # W B^T / d = P + U S and W W^T / d = (P + U S)(P + U S)^T + U (Q - S S^T) U^T.
        along = P + state.U @ state.S
        q = along @ along.T + state.U @ (state.Q - state.S @ state.S.T) @ state.U.T
        norms = jnp.diagonal(q)[:, None]  # a unit with W_k = 0 (no pre-training, U = 0) has cosine 0
        cosines = jnp.where(norms > 0, along[:, :M], 0.0) / jnp.sqrt(jnp.where(norms > 0, norms, 1.0))
        return {
            "eg": self.generalisation_error(state),
            "m": state.S[:, :M],
            "n": state.S[:, M:],
            "Q": state.Q,
            "U": state.U,
            "m_w": along[:, :M],
            "q": q,
            "overlap": cosines,
            "max_overlap": jnp.max(jnp.abs(cosines)),
            "iterations": t / self.batch,
        }
