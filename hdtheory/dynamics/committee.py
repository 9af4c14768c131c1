r"""Online SGD in two-layer committee machines: the ODEs of Saad & Solla (1995) and Goldt et al. (2019).

**Setting.** Inputs ``x ~ N(0, I_d)``; a teacher with ``M`` hidden units and a student with ``K``,

.. math::
    y = \sum_{m=1}^M v^*_m\, g(\nu_m) + \sqrt{\sigma}\,\zeta, \qquad
    \hat y = \sum_{k=1}^K v_k\, g(\lambda_k),

with local fields ``nu_m = w*_m.x / sqrt(d)``, ``lambda_k = w_k.x / sqrt(d)``, ``zeta ~ N(0, 1)`` and
``sigma = noise`` the label-noise variance. One fresh sample per step (one-pass SGD) on the square
loss ``(y_hat - y)^2 / 2``:
``w_k <- w_k - lr(t) Delta v_k g'(lambda_k) x / sqrt(d)`` (the per-sample gradient, Goldt et al.
2019's convention) and, when ``lr_v > 0``, ``v_k <- v_k - (lr_v(t) / d) Delta g(lambda_k)``, with
``Delta = y_hat - y``. Time ``t`` counts samples over ``d``.

**Order parameters.** ``Q_kl = w_k.w_l / d``, ``R_km = w_k.w*_m / d``, ``T_mn = w*_m.w*_n / d``
(constant) and ``v``. With all local fields stacked, ``(lambda, nu)`` is Gaussian with covariance
``Omega = [[Q, R], [R^T, T]]``; write ``c = (a, -b)`` for the output weights of student and teacher
(``a = v``, ``b = v*``) and ``u_alpha`` for the ``K + M`` fields. As ``d -> infinity`` (Saad & Solla
1995, Phys. Rev. E 52, 4225; Goldt et al. 2019, "Dynamics of stochastic gradient descent for
two-layer neural networks in the teacher-student setup", NeurIPS; derived here again from the
update above, with ``|x|^2 / d -> 1``)

.. math::
    \frac{dR_{km}}{dt} = -\eta\, a_k \sum_\alpha c_\alpha I_3(\lambda_k, \nu_m, u_\alpha),

.. math::
    \frac{dQ_{kl}}{dt} = -\eta\, a_k \sum_\alpha c_\alpha I_3(\lambda_k, \lambda_l, u_\alpha)
        - \eta\, a_l \sum_\alpha c_\alpha I_3(\lambda_l, \lambda_k, u_\alpha)
        + \eta^2 a_k a_l \Big[\sum_{\alpha\beta} c_\alpha c_\beta I_4(\lambda_k, \lambda_l, u_\alpha, u_\beta)
        + \sigma J_2(\lambda_k, \lambda_l)\Big],

.. math::
    \frac{dv_k}{dt} = -\eta_v \sum_\alpha c_\alpha I_2(\lambda_k, u_\alpha),

with ``eta = lr * s(t)``, ``eta_v = lr_v * s(t)`` (``s`` the schedule, see
:mod:`hdtheory.dynamics._schedule`) and the Gaussian integrals ``I_2, I_3, I_4, J_2`` of
:mod:`hdtheory.kernels.activations` (closed forms for erf and linear; for ReLU all but ``I_4``),
assembled by :class:`hdtheory.kernels.CommitteeMoments` (which :class:`~hdtheory.dynamics.LoRA`
shares). The ``eta^2`` terms are kept. Where ``I_4`` has no closed form (ReLU, and every
activation computed by quadrature), the whole moment ``E[Delta^2 g'(lambda_k) g'(lambda_l)]`` is
one product Gauss-Hermite rule over the ``K + M`` fields (``min(joint_order,
joint_nodes^(1/(K+M)))`` nodes per axis), which vanishes exactly where the student reproduces the
teacher; its error (algebraic for the ReLU's kink) enters only the ``eta^2`` term. The **generalisation error** (Saad-Solla convention, no label noise)

.. math:: \epsilon_g = \tfrac12 E[(\hat y - y^*)^2] = \tfrac12 \sum_{\alpha\beta} c_\alpha c_\beta I_2(u_\alpha, u_\beta).

It is a sum of order-one terms that cancel as the student learns the teacher: the observable
``eg_rounding`` is its rounding level, and a sum within it of zero, or below zero by no more than
it, is reported as ``eg = 0`` (a sum further below zero comes from overlaps that are not a
covariance, see :meth:`Committee.generalisation_error`).

**Options.**

- ``output="mean"``: the normalised committee ``(1/K) sum_k v_k g`` (teacher ``(1/M) sum_m``), that
  is ``a = v / K``, ``b = v* / M`` above, and the second-layer gradient carries the same ``1/K``.
- ``lr_scaling="width"``: learning rates multiplied by ``K`` (``eta = K lr s(t)``,
  ``eta_v = K lr_v s(t)``). With ``output="mean"`` each unit's gradient is ``O(1/K)``, and this is the
  width scaling of the learning rate under which the motion of each unit stays ``O(1)`` per unit time
  at any width: the mean-field corner of the phase diagram of Veiga et al. 2022 ("Phase diagram of
  stochastic gradient descent in high-dimensional two-layer neural networks"), whose other corners
  are reached by choosing ``lr`` as a power of ``K`` directly.
- ``time="lr"``: the time of Arnaboldi et al. 2023 ("From high-dimensional & mean-field dynamics to
  dimensionless ODEs"), ``tau = lr t``: the vector field is divided by ``lr``, so that the
  gradient-flow part is independent of ``lr`` and the ``eta^2`` part is ``O(lr)``; ``t`` in
  :func:`hdtheory.integrate` and in the schedule is then ``tau``.

- ``flow="gradient"``: the population gradient flow ``dw_k/dt = -eta d grad_{w_k} eg`` (with
  ``time="lr"``, the ``lr -> 0`` limit of online SGD, or gradient descent on the population loss):
  the ``eta^2`` terms dropped. Its zeros are the critical points of ``eg`` in the overlaps, exact at
  every ``d >= K + M`` (the loss depends on the weights only through them, and the flow never leaves
  the span of its start and the teacher); its attracting zeros are the loss's local minima. For
  ReLU with ``K = M``, orthonormal teacher and ``v = v* = 1`` this is the landscape of Huang, Loureiro
  & Sarao Mannelli 2026 ("Sharp description of local minima in the loss landscape of
  high-dimensional two-layer ReLU neural networks") and of Safran & Shamir 2018: the global minimum
  ``R`` a permutation, where the ReLU kernels are not differentiable in the overlaps (``|R_km| = 1``,
  so that Newton's method and the Jacobian are for the spurious minima, not for it), and spurious
  minima (at ``K = M = 8``, ``eg = 0.0215``, the students in the teacher's span) found by
  :func:`hdtheory.steady_state` from the end of a short integration, with ``growth_rate < 0``.
- ``geometry="spherical"``: every ``w_k`` is put back on ``|w_k|^2 = d`` after each step. To first
  order in the step (the ``eta^2`` terms included), every overlap of ``w_k`` loses half the growth
  rate of ``Q_kk``: with ``G = dQ/dt`` and ``F = dR/dt`` above,
  ``dR_km/dt = F_km - G_kk R_km / 2`` and ``dQ_kl/dt = G_kl - (G_kk + G_ll) Q_kl / 2``, so that
  ``Q_kk = 1``. ``Q0 = I`` by default (``q0`` unused).
- ``activation="hermite"``: polynomial activations given by their coefficients in the orthonormal
  Hermite basis, ``g(z) = sum_j student[j] He_j(z) / sqrt(j!)`` for the student and the teacher's
  link ``g*(z) = sum_j target[j] He_j(z) / sqrt(j!)`` (the convention of
  :class:`~hdtheory.dynamics.SingleIndex`), every Gaussian integral exact
  (:class:`hdtheory.kernels.Hermite`); the ``I``'s above then carry ``g*`` on teacher fields.

**Hard single-index targets** (Arnaboldi, Krzakala, Loureiro & Stephan 2023, "Escaping mediocrity:
how two-layer networks learn hard generalized linear models with SGD"): ``M = 1``,
``activation="hermite"``, ``output="mean"``, ``geometry="spherical"`` is their two-layer network
``(1/p) sum_k sigma(w_k.x)`` with ``p = K`` units on the sphere learning ``y = sigma*(w*.x)`` (their
``x ~ N(0, I/d)``, ``|w_k|^2 = d``, ``gamma = lr``; their time is ``tau = gamma t / p``; their risk
minus ``Delta / 2`` is ``eg``, ``noise = Delta``). For ``sigma = sigma* = z^2``
(``student = target = (1, 0, sqrt 2)``) the ODEs are their closed forms. At mediocrity
(``R = 0``, ``Q = I``) the overlaps grow as ``dR_k/dt = r R_k`` with
``r = (lr / p) [4 - 2 (lr / p) (2 + 2/p + 8/p^2 + noise)]`` (their ``omega_M gamma / p``, the
linearisation of those ODEs; the ``eta^2`` term is the noise of SGD; :func:`hdtheory.steady_state`
from ``R = 0`` gives it as ``growth_rate``), so that the escape from ``R ~ d^(-1/2)`` takes
``t ~ log(d) / (2 r)`` (their exit-time formula adds the threshold's and the initial ``Q_kl``'s
terms inside the logarithm): ``n = d t`` samples, ``d log d (2 + 2/p + 8/p^2 + noise) / 4`` at the
best ``lr / p = 1 / (2 + 2/p + 8/p^2 + noise)`` (their
``gamma_opt = p^3 / (8 + 2p + (2 + Delta) p^2)``). Width helps by a constant factor only
(``3 d log d`` at ``p = 1``, ``d log d / 2`` as ``p -> infinity``, noiseless: their gain
``(12 + Delta) / (2 + Delta)``). The observable ``max_overlap``, the largest cosine
``|R_km| / sqrt(Q_kk T_mm)``, gives the escape time as an event of :func:`hdtheory.integrate`
(``event=hdtheory.crossing("max_overlap", level)``). At finite ``d`` the noise of SGD is as large
as a random start (:meth:`Committee.diffusion`, the paper's SDE): in the linear stage
``R e^(-r t) -> R0 + sqrt(D / (2 r d)) xi``, a Gaussian effective start from which the ODE carries
the escape, and from ``R0 = 0``, where the ODE never moves, SGD still escapes, after the paper's
mean exit time of an expansive Ornstein-Uhlenbeck process.

**Initial conditions.** ``Q0 = q0 I`` and ``R0 = r0 G`` with ``G`` a ``K x M`` matrix of
independent standard normals drawn from ``seed`` (a random initialisation at finite ``d`` has
``R0 ~ N(0, q0 / d)``: ``r0 = sqrt(q0 / d)``), ``v0 = 1`` and teacher ``v* = 1``, ``T = I``; or
explicit ``Q0``, ``R0``, ``v0``, ``teacher_v`` and ``T`` arrays (then ``q0, r0, seed`` are unused).
Every numeric field is a JAX array, so learning rates and initial conditions can be vmapped.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .. import kernels
from ..kernels.multivariate import product_rule, psd_cholesky
from .._theory import NONNEGATIVE, POSITIVE, Interval, ParameterError, choice, integer
from .._theory import check_integer, is_concrete, parameter
from ._schedule import Scheduled


class CommitteeState(eqx.Module):
    """The overlaps that evolve: ``Q (K, K)``, ``R (K, M)`` and the second layer ``v (K,)``."""

    Q: jax.Array
    R: jax.Array
    v: jax.Array


class Committee(Scheduled):
    """Online SGD of a two-layer committee machine on a teacher of the same kind (module docstring)."""

    K: int = integer(2, Interval(1), "student hidden units")
    M: int = integer(2, Interval(1), "teacher hidden units")
    lr_v: jax.Array = parameter(0.0, NONNEGATIVE, "second-layer learning rate (0: fixed v)")
    noise: jax.Array = parameter(0.0, NONNEGATIVE, "label-noise variance")
    activation: str = choice("erf", kernels.ACTIVATIONS, "activation g of student and teacher")
    student: jax.Array = parameter((0.0, 0.0, 1.0), Interval(), "hermite: Hermite coefficients of g")
    target: jax.Array = parameter((0.0, 0.0, 1.0), Interval(), "hermite: Hermite coefficients of g*")
    geometry: str = choice(
        "unconstrained", {"unconstrained": 1, "spherical": 1}, "free w_k, or |w_k|^2 = d"
    )
    output: str = choice("sum", {"sum": 1, "mean": 1}, "output sum_k v_k g or (1/K) sum_k")
    lr_scaling: str = choice("none", {"none": 1, "width": 1}, "width: learning rates times K")
    time: str = choice("samples", {"samples": 1, "lr": 1}, "time unit: samples/d, or lr*samples/d")
    flow: str = choice(
        "sgd", {"sgd": 1, "gradient": 1}, "online SGD, or the population gradient flow (no eta^2 terms)"
    )
    q0: jax.Array = parameter(0.1, POSITIVE, "initial student norm: Q0 = q0 I")
    r0: jax.Array = parameter(1e-3, NONNEGATIVE, "scale of the random initial overlaps R0")
    seed: int = integer(0, Interval(0), "seed of the random initial R0")
    joint_order: int = eqx.field(default=24, static=True)
    joint_nodes: int = eqx.field(default=2**20, static=True)
    Q0: jax.Array | None = None
    R0: jax.Array | None = None
    v0: jax.Array | None = None
    teacher_v: jax.Array | None = None
    T: jax.Array | None = None

    def __check_init__(self):
        for name in ("K", "M"):  # before they size any array
            check_integer(name, getattr(self, name), Interval(1))
        shapes = {
            "Q0": (self.K, self.K),
            "R0": (self.K, self.M),
            "v0": (self.K,),
            "teacher_v": (self.M,),
            "T": (self.M, self.M),
        }
        for name, shape in shapes.items():
            value = getattr(self, name)
            if value is not None and np.shape(value)[-len(shape):] != shape:
                raise ParameterError(
                    f"parameter {name!r} must have shape {shape} for K={self.K}, M={self.M}, "
                    f"got {np.shape(value)}"
                )
        if self.activation not in kernels.ACTIVATIONS:
            return
        if self.activation == "hermite":
            for name in ("student", "target"):
                if np.ndim(getattr(self, name)) != 1:
                    raise ParameterError(f"parameter {name!r} must be a 1-D array of Hermite coefficients")
        if self.geometry == "spherical" and self.Q0 is not None and is_concrete(self.Q0):
            if not np.allclose(np.diagonal(np.asarray(self.Q0), axis1=-2, axis2=-1), 1.0):
                raise ParameterError("parameter 'Q0' must have a unit diagonal when geometry='spherical'")
        state = self.init()
        omega = self._omega(state.Q, state.R)
        if is_concrete(omega) and omega.ndim == 2:
            if np.min(np.linalg.eigvalsh(np.asarray(omega))) < -1e-10 * np.max(np.abs(omega)):
                raise ParameterError(
                    "the initial overlaps [[Q0, R0], [R0^T, T]] must form a positive semi-definite "
                    "matrix (a covariance of local fields)"
                )

    # -- the pieces of the equations --------------------------------------------------------------

    @property
    def kernel(self) -> kernels.Activation:
        """The student's activation ``g``."""
        if self.activation == "hermite":
            return kernels.Hermite(coefficients=self.student)
        return kernels.ACTIVATIONS[self.activation]()

    @property
    def teacher_kernel(self) -> kernels.Activation:
        """The teacher's activation ``g*``: ``g`` itself, or the link ``target`` for ``hermite``."""
        return kernels.Hermite(coefficients=self.target) if self.activation == "hermite" else self.kernel

    @property
    def moments(self) -> kernels.CommitteeMoments:
        """The Gaussian moments of the gradient over the ``K + M`` fields."""
        return kernels.CommitteeMoments(
            g=self.kernel, g_star=self.teacher_kernel, K=self.K, M=self.M,
            joint_order=self.joint_order, joint_nodes=self.joint_nodes,
        )

    def _teacher(self):
        dtype = jnp.result_type(self.lr, float)
        T = jnp.eye(self.M, dtype=dtype) if self.T is None else jnp.asarray(self.T, dtype)
        b = jnp.ones(self.M, dtype) if self.teacher_v is None else jnp.asarray(self.teacher_v, dtype)
        return T, b

    def _omega(self, Q, R):
        T, _ = self._teacher()
        return jnp.block([[Q, R], [R.T, T]])

    def _weights(self, v):
        """``(a, c)``: the student's output weights and those of all fields, ``c = (a, -b)``."""
        _, b = self._teacher()
        a = v / self.K if self.output == "mean" else v
        b = b / self.M if self.output == "mean" else b
        return a, jnp.concatenate([a, -b])

    def rates(self, t):
        """``(eta, eta_v)``: the learning rates of the two layers at time ``t``."""
        width = self.K if self.lr_scaling == "width" else 1
        s = self.rate(t)
        return width * self.lr * s, width * self.lr_v * s

    # -- the ODE theory protocol ------------------------------------------------------------------

    def init(self) -> CommitteeState:
        dtype = jnp.result_type(self.lr, self.q0, float)
        q0 = 1.0 if self.geometry == "spherical" else self.q0
        Q = q0 * jnp.eye(self.K, dtype=dtype) if self.Q0 is None else jnp.asarray(self.Q0, dtype)
        if self.R0 is None:
            # Drawn in float32 whatever the dtype, so that float32 and float64 start alike.
            key = jax.random.PRNGKey(self.seed)
            noise = jax.random.normal(key, (self.K, self.M), jnp.float32).astype(dtype)
            R = self.r0 * noise
        else:
            R = jnp.asarray(self.R0, dtype)
        v = jnp.ones(self.K, dtype) if self.v0 is None else jnp.asarray(self.v0, dtype)
        return CommitteeState(Q=Q, R=R, v=v)

    def vector_field(self, t, state: CommitteeState) -> CommitteeState:
        K, n = self.K, self.K + self.M
        moments = self.moments
        omega = self._omega(state.Q, state.R)
        a, c = self._weights(state.v)
        eta, eta_v = self.rates(t)
        drift = -eta * a[:, None] * moments.drift(omega, c, jnp.arange(n))  # (K, n): d/dt of <w_k, u_b>
        dQ = drift[:, :K] + drift[:, :K].T
        if self.flow == "sgd":
            second = moments.squared_error(omega, c) + self.noise * moments.slopes(omega)
            dQ = dQ + eta**2 * jnp.outer(a, a) * second
        dR = drift[:, K:]
        if self.geometry == "spherical":
            # w_k <- sqrt(d) w_k / |w_k| after each step: to first order, every overlap of w_k
            # loses half the growth rate of |w_k|^2 / d, dQ_kk / dt (so that Q_kk stays 1).
            growth = 0.5 * jnp.diagonal(dQ)
            dQ = dQ - (growth[:, None] + growth[None, :]) * state.Q
            dR = dR - growth[:, None] * state.R
        norm = 1 / K if self.output == "mean" else 1
        dv = -eta_v * norm * moments.output(omega, c)
        derivative = CommitteeState(Q=dQ, R=dR, v=dv)
        if self.time == "lr":
            derivative = jax.tree_util.tree_map(lambda x: x / self.lr, derivative)
        return derivative

    def _upper(self):
        """The independent entries of ``Q``: its upper triangle, without the diagonal on the sphere
        (``Q_kk = 1`` there is a constraint, not a coordinate: off the sphere the extended field
        has directions, ``dQ_kk / dt = G_kk (1 - Q_kk)``, that no run of the dynamics takes)."""
        return jnp.triu_indices(self.K, 1 if self.geometry == "spherical" else 0)

    def coordinates(self, state: CommitteeState) -> jax.Array:
        """The independent entries of ``Q`` (it is symmetric; :meth:`_upper`), ``R`` and ``v``."""
        return jnp.concatenate([state.Q[self._upper()], state.R.ravel(), state.v])

    def from_coordinates(self, u, like: CommitteeState) -> CommitteeState:
        K, M = self.K, self.M
        upper = self._upper()
        size = len(upper[0])
        Q = jnp.diag(jnp.diagonal(like.Q)).astype(u.dtype).at[upper].set(u[:size])
        Q = Q + jnp.triu(Q, 1).T
        return CommitteeState(Q=Q, R=u[size : size + K * M].reshape(K, M), v=u[size + K * M :])

    def stationary_field(self, t, state: CommitteeState, start: CommitteeState) -> CommitteeState:
        """The vector field, with the second layer pulled back to its start where it is not
        trained (``lr_v = 0``: its steady state is its initial value)."""
        field = self.vector_field(t, state)
        _, eta_v = self.rates(t)
        return eqx.tree_at(lambda f: f.v, field, jnp.where(eta_v == 0, start.v - state.v, field.v))

    def rounding(self, state: CommitteeState) -> jax.Array:
        """The rounding level of :meth:`generalisation_error`: ``(K + M)^2 eps sum_ab |c_a c_b I_2| / 2``.

        ``eg`` is a sum of terms of order one that cancel as the student learns the teacher, so it
        is known only to this absolute accuracy (the overlaps themselves hold ``|w_k - w*_m|^2 / d``
        only as a difference of order-one numbers).
        """
        _, c = self._weights(state.v)
        return self.moments.rounding(self._omega(state.Q, state.R), c)

    def generalisation_error(self, state: CommitteeState) -> jax.Array:
        """``eg = sum_ab c_a c_b I_2(u_a, u_b) / 2``, with a sum within :meth:`rounding` of zero or
        below it (cancellation of order-one terms) reported as ``0``. A value below ``-rounding`` is
        kept, negative: the overlaps are then not a covariance (``[[Q, R], [R^T, T]]`` not positive
        semi-definite), which the rounding of this sum does not explain. That flags a formal steady
        state past the stability limit; after a long integration near convergence it can also be the
        rounding the integration leaves in the overlaps, a few times ``rounding`` below zero."""
        _, c = self._weights(state.v)
        return self.moments.error(self._omega(state.Q, state.R), c)

    def diffusion(self, t, state: CommitteeState) -> jax.Array:
        r"""The noise of ``R`` at finite ``d``: ``D`` with ``dR = F dt + sqrt(D / d) dB``.

        One SGD step moves ``w_k`` by ``-c_k x / sqrt(d)``, ``c_k = eta a_k Delta g'(lambda_k)``
        (``Delta`` with the label noise), so ``R_km`` by ``-c_k nu_m / d``; on the sphere the
        renormalisation by ``(1 - 2 c_k lambda_k / d + c_k^2 |x|^2 / d^2)^(-1/2)`` (``|x|^2 / d -> 1``)
        adds ``R_km (c_k lambda_k - c_k^2 / 2) / d``. The step is ``-Y_km / d`` with
        ``Y_km = c_k nu_m`` or, on the sphere, ``Y_km = c_k (nu_m - R_km lambda_k) + R_km c_k^2 / 2``,
        and over the ``d`` steps of a unit of ``t`` the increments of ``R`` have covariance ``D / d``,
        ``D_{km,ln} = Cov[Y_km, Y_ln]`` (``(K, M, K, M)``; per unit of ``tau = lr t`` under
        ``time="lr"``, ``D / lr``): the diffusion of the SDE of Arnaboldi et al. 2023 (their
        ``sigma_M - m sigma_Q / 2``), which at mediocrity (``R = 0``, ``Q = I``) with
        ``sigma = sigma* = z^2`` is ``lr^2 (48 + 4 Delta) / p^2`` at ``p = 1``, their
        ``gamma (48 + 4 Delta) / p`` per unit of their ``tau = (lr / p) t``. One product
        Gauss-Hermite rule over the ``K + M`` fields, the label noise's Gaussian moments in closed
        form (exact for Hermite activations of degree below a quarter of the rule's order).
        """
        K, n = self.K, self.K + self.M
        omega = self._omega(state.Q, state.R)
        a, c = self._weights(state.v)
        eta, _ = self.rates(t)
        order = max(3, min(self.joint_order, int(self.joint_nodes ** (1 / n))))
        z, w = product_rule(n, order, omega.dtype)
        u = z @ psd_cholesky(omega).T
        lam, nu = u[:, :K], u[:, K:]
        error = self.kernel(lam) @ c[:K] + self.teacher_kernel(nu) @ c[K:]
        slope = eta * a * self.kernel.derivative(lam)  # c_k = slope_k Delta
        # Y = A Delta + B Delta^2 (B only on the sphere), Delta = error - sqrt(noise) zeta
        A = slope[:, :, None] * jnp.broadcast_to(nu[:, None, :], (len(w),) + state.R.shape)
        if self.geometry == "spherical":
            A = A - slope[:, :, None] * state.R[None] * lam[:, :, None]
            B = 0.5 * state.R[None] * (slope**2)[:, :, None]
        else:
            B = jnp.zeros_like(A)
        s = self.noise
        m1, m2 = error, error**2 + s
        m3, m4 = error**3 + 3 * s * error, error**4 + 6 * s * error**2 + 3 * s**2
        mean = jnp.einsum("N,Nkm->km", w, A * m1[:, None, None] + B * m2[:, None, None])

        def outer(x, y, moment):
            return jnp.einsum("N,N,Nkm,Nln->kmln", w, moment, x, y)

        second = outer(A, A, m2) + outer(A, B, m3) + outer(B, A, m3) + outer(B, B, m4)
        covariance = second - mean[:, :, None, None] * mean[None, None]
        return covariance / self.lr if self.time == "lr" else covariance

    def observables(self, t, state: CommitteeState) -> dict[str, jax.Array]:
        T, _ = self._teacher()
        # |Q_kk|: a formal steady state past the stability limit may have Q_kk < 0 (no covariance),
        # where the cosine is no angle but stays finite, as the other observables do.
        cosines = state.R / jnp.sqrt(jnp.abs(jnp.diagonal(state.Q))[:, None] * jnp.diagonal(T)[None, :])
        return {
            "eg": self.generalisation_error(state),
            "eg_rounding": self.rounding(state),
            "Q": state.Q,
            "R": state.R,
            "T": T,
            "v": state.v,
            "overlap": cosines,
            "max_overlap": jnp.max(jnp.abs(cosines)),
        }
