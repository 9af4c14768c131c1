r"""Mode collapse in variational inference: the reverse-KL gradient flow of a Gaussian mixture.

**Setting** (that of Soletskyi, Gabrié & Loureiro 2024, "A theoretical perspective on mode collapse
in variational inference", arXiv:2410.13300, and of its annealed continuation, Fogliani, Loureiro &
Gabrié 2026, "Annealing in variational inference mitigates mode collapse"). In ``R^d`` the target
is the two-mode mixture

.. math:: p(x) = \rho\, N(x; \mu, \Delta I) + (1 - \rho)\, N(x; -\mu, \Delta I),
          \qquad |\mu|^2 = \texttt{mu2},

and the variational family the mixture of two Gaussians of the same variance,
``q(x) = sigma_1 N(x; m_1, Delta I) + sigma_2 N(x; m_2, Delta I)``, ``sigma_1 = sigmoid(a)``,
``sigma_2 = 1 - sigma_1``. The means and the logit ``a`` follow the gradient flow of the reverse KL
to the tempered target ``p_beta = p^beta / Z_beta`` (the target's log-density multiplied by the
inverse temperature ``beta(t)``; ``beta = 1`` is plain VI),

.. math:: \dot m_k = -\mathrm{lr}\, \nabla_{m_k} F, \quad \dot a = -\mathrm{lr\_weights}\,
          \partial_a F, \qquad F = \mathrm{KL}(q \,\|\, p_\beta).

**Reduction** (derived here, exact at every ``d``). The ``|x|^2`` terms of ``log q`` and
``log p`` are equal, so with ``A_q(x) = log sum_k sigma_k exp((x.m_k - |m_k|^2/2)/Delta)`` and
``A_p`` the same for ``p``, ``F = (beta - 1)/(2 Delta) sum_k sigma_k |m_k|^2 +
sum_k sigma_k E_k[A_q - beta A_p] + const``, ``E_k`` over ``x ~ N(m_k, Delta I)``. The
reparameterised gradient (the score term has mean zero) is

.. math:: \nabla_{m_k} F = \frac{\sigma_k}{\Delta}\Big[(\beta - 1)\, m_k + \sum_l
          E_k[r^q_l]\, m_l - \beta\, E_k[\tanh(u_p / 2)]\, \mu\Big],
          \qquad \partial_a F = \sigma_1 \sigma_2 \big(E_1[g] - E_2[g]\big),

with ``r^q_l`` the responsibilities of ``q``'s components, ``g = log q - beta log p`` and
``E_k[g] = (beta - 1) |m_k|^2 / (2 Delta) + E_k[A_q] - beta E_k[A_p]`` up to a constant common to
both components. Everything depends on ``x`` through the two log-odds
``u_q = logit(sigma_1) + (x.(m_1 - m_2) - (|m_1|^2 - |m_2|^2)/2) / Delta`` and
``u_p = logit(rho) + 2 x.mu / Delta``, Gaussian under ``N(m_k, Delta I)`` with means set by the
overlaps and variances ``|m_1 - m_2|^2 / Delta`` and ``4 mu2 / Delta``: one-dimensional
expectations of ``softplus`` and ``sigmoid``, on Gauss-Legendre panels (``order`` nodes each) cut at
the switch ``u = 0``. The flow stays in the
span of ``m_1, m_2, mu``, so the overlaps

.. math:: Q_{kl} = m_k \cdot m_l, \qquad M_k = m_k \cdot \mu, \qquad a

obey closed ODEs at any ``d`` (``dQ_kl/dt = dm_k.m_l + m_k.dm_l``, ``dM_k/dt = dm_k.mu``); the
dimension enters only through the start, where random means in high dimension have overlaps
``O(1/sqrt(d))`` with ``mu`` and with each other. We have not compared these equations term by
term with the papers' (whose normalisations of the means and of time may differ); they are
checked against the flow of the means themselves, in ``d`` dimensions with Monte Carlo gradients
(:mod:`hdtheory.simulate.vi`), and against closed forms. Conventions: no ``1/d`` in the overlaps
(the separation ``|2 mu|^2 / Delta`` is of order one, the regime where the modes interact),
time is the gradient flow's own.

**Annealing** (``anneal``): ``beta(t) = 1`` (``"none"``); ``beta0 + (1 - beta0) min(t / horizon,
1)`` (``"linear"``); ``pieces[j]`` on the ``j``-th of ``len(pieces)`` equal intervals of
``[0, horizon]`` and ``1`` after (``"piecewise"``, :func:`._schedule.piecewise`; each piece is a
field, so the gradient of a final observable reaches it through the adjoint of
:func:`hdtheory.integrate`).

**Mode collapse** (the paper's two mechanisms). *Mean alignment*: both means on one mode,
``m_1 = m_2``; then ``q`` is one Gaussian, and ``m_1 = m_2 = s mu`` with
``s = E[tanh(u_p / 2)]`` at ``x ~ N(s mu, Delta I)`` is a zero of the field
(:meth:`VariationalMixture.aligned_state`), which :func:`hdtheory.steady_state` refines (at fixed
weights, ``lr_weights = 0``: with trained weights the logit is a flat direction there, since ``q``
does not depend on it) and whose ``growth_rate`` is the rate of the means' separation along ``mu``
(``M_1 - M_2``, linear in the means): positive at the symmetric point ``s = 0`` (a saddle).
A separation orthogonal to ``mu`` enters the overlaps only through ``|m_1 - m_2|^2``, and on a
mode it is marginal at linear order (``q`` and ``p`` share the variance ``Delta`` there): that
mean alignment attracts is seen by integration, not in the growth rate.
*Vanishing weight*:
``sigma_k -> 0`` (``a -> -+ infinity``, not a finite zero of the field); the component stops moving
(its gradient carries ``sigma_k``). The observable ``collapsed`` is 1 when a weight is below
``weight_level`` or both means lie on the same side of the target's two modes
(``M_1 M_2 > 0``), else 0. The good point ``m_1 = mu, m_2 = -mu, sigma_1 = rho`` has ``q = p``.

**Observables**: ``m1, m2`` (``M_k``), ``q11, q12, q22``, ``weight`` (``sigma_1``), ``beta``,
``kl`` (``KL(q || p)`` to the untempered target, exact: ``sum_k sigma_k E_k[A_q - A_p]``) and
``collapsed``.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ..kernels.quadrature import smoothed_expectation, transition_rule
from .._theory import (
    NONNEGATIVE, POSITIVE, Interval, ODETheory, ParameterError, choice, integer, is_concrete, parameter,
)
from ._schedule import piecewise

def _softplus(omega, mean):
    return jax.nn.softplus(mean + omega)


def _sigmoid(omega, mean):
    return jax.nn.sigmoid(mean + omega)


def _log_mixture(omega, args):
    """``log((1 - rho) + rho e^v)`` at ``v = mean + omega``."""
    mean, log_plus, log_minus = args
    return jnp.logaddexp(log_minus, log_plus + mean + omega)


def _magnetisation(omega, args):
    """``tanh(u_p / 2) = 2 r_+ - 1``, ``r_+`` the responsibility of the mode at ``+mu``."""
    mean, log_plus, log_minus = args
    u = log_plus + mean + omega
    return 2 * jnp.exp(u - jnp.logaddexp(log_minus, u)) - 1


UNIT = Interval(0.0, 1.0, low_open=True)
ANNEALING = {"none": None, "linear": None, "piecewise": None}


class VIState(eqx.Module):
    """Overlaps of the variational means: ``Q`` (2 x 2, ``m_k.m_l``), ``M`` (2, ``m_k.mu``) and
    the logit ``a`` of the first weight."""

    Q: jax.Array
    M: jax.Array
    a: jax.Array


class VariationalMixture(ODETheory):
    """Reverse-KL gradient flow of a two-Gaussian variational mixture on a two-mode target
    (module docstring)."""

    mu2: jax.Array = parameter(4.0, NONNEGATIVE, "|mu|^2: the target's modes at +-mu")
    rho: jax.Array = parameter(0.5, UNIT, "weight of the target's mode at +mu")
    delta: jax.Array = parameter(1.0, POSITIVE, "variance Delta of every Gaussian (target and q)")
    lr: jax.Array = parameter(1.0, POSITIVE, "rate of the means' gradient flow")
    lr_weights: jax.Array = parameter(1.0, NONNEGATIVE, "rate of the logit's flow (0: fixed weights)")
    m0: jax.Array = parameter((0.3, 0.1), Interval(), "initial overlaps m_k.mu")
    q0: jax.Array = parameter((1.0, 1.0), NONNEGATIVE, "initial squared norms |m_k|^2")
    q12_0: jax.Array = parameter(0.0, Interval(), "initial m_1.m_2")
    weight0: jax.Array = parameter(0.5, Interval(0.0, 1.0, True, True), "initial weight sigma_1")
    anneal: str = choice("none", ANNEALING, "inverse temperature beta(t) of the target")
    beta0: jax.Array = parameter(0.2, UNIT, "linear annealing: beta(0)")
    horizon: jax.Array = parameter(10.0, POSITIVE, "annealing ends (beta = 1) at t = horizon")
    pieces: jax.Array = parameter((0.2, 0.6), UNIT, "piecewise annealing: beta on equal intervals")
    weight_level: jax.Array = parameter(0.01, Interval(0.0, 0.5, True, True), "collapsed: weight below")
    order: int = integer(8, Interval(2), "Gauss-Legendre nodes per panel of the expectations")

    def __check_init__(self):
        for name in ("m0", "q0"):
            if np.shape(getattr(self, name)) != (2,):
                raise ParameterError(f"parameter {name!r} must hold 2 numbers (one per component)")
        values = (self.m0, self.q0, self.q12_0, self.mu2)
        if all(is_concrete(v) for v in values):
            M, q, q12, mu2 = (np.asarray(v, float) for v in values)
            gram = np.array([[q[0], q12, M[0]], [q12, q[1], M[1]], [M[0], M[1], mu2]])
            scale = max(float(np.max(np.abs(gram))), 1.0)
            if np.linalg.eigvalsh(gram)[0] < -1e-9 * scale:
                raise ParameterError(
                    "parameters 'q0', 'q12_0', 'm0' and 'mu2' must be the overlaps of three vectors "
                    f"m_1, m_2, mu (a positive semidefinite Gram matrix), got {gram.tolist()}"
                )

    # -- the schedule ------------------------------------------------------------------------------

    def beta(self, t) -> jax.Array:
        """The inverse temperature ``beta(t)`` of the annealing schedule."""
        one = jnp.ones_like(t)
        if self.anneal == "linear":
            return self.beta0 + (1 - self.beta0) * jnp.minimum(t / self.horizon, 1.0)
        if self.anneal == "piecewise":
            return jnp.where(t < self.horizon, piecewise(t, self.pieces, self.horizon), one)
        return one

    # -- Gaussian expectations ---------------------------------------------------------------------

    def _moments(self, state: VIState):
        """Per component ``k`` (columns): ``E_k`` of ``(softplus(u_q), sigmoid(u_q),
        logaddexp(log(1 - rho), log rho + v), tanh(u_p / 2))`` with ``u_p = logit(rho) + v``,
        ``v = 2 x.mu / Delta``, for ``x ~ N(m_k, Delta I)``: Gauss-Legendre panels cut at each
        log-odds' transition (:func:`~hdtheory.kernels.quadrature.transition_rule`; the width of
        ``u_p`` is ``2 |mu| / sqrt(Delta)`` times that of the switch, beyond a Hermite rule's reach),
        differentiable down to a zero variance (``m_1 = m_2``) by
        :func:`~hdtheory.kernels.quadrature.smoothed_expectation`."""
        Q, M, a = state.Q, state.M, state.a
        mean_q = a + ((Q[0] - Q[1]) - (Q[0, 0] - Q[1, 1]) / 2) / self.delta
        var_q = jnp.maximum(Q[0, 0] - 2 * Q[0, 1] + Q[1, 1], 0.0) / self.delta
        log_plus, log_minus = jnp.log(self.rho), jnp.log1p(-self.rho)
        mean_v = 2 * M / self.delta
        var_v = 4 * self.mu2 / self.delta * jnp.ones_like(var_q)

        def expect(f, var, args, switch):
            std = jax.lax.stop_gradient(jnp.sqrt(var))
            z, w = transition_rule((-switch / std)[:, None], jnp.broadcast_to(1 / std, (2, 1)), self.order)
            return jax.vmap(lambda args, z, w: smoothed_expectation(f, var, args, z, w))(args, z, w)

        switch_p = jax.lax.stop_gradient(log_plus - log_minus + mean_v)
        p_args = (mean_v, jnp.broadcast_to(log_plus, (2,)), jnp.broadcast_to(log_minus, (2,)))
        return jnp.stack([
            expect(_softplus, var_q, mean_q, jax.lax.stop_gradient(mean_q)),
            expect(_sigmoid, var_q, mean_q, jax.lax.stop_gradient(mean_q)),
            expect(_log_mixture, var_v, p_args, switch_p),
            expect(_magnetisation, var_v, p_args, switch_p),
        ])

    def _expected_logs(self, state: VIState, moments):
        """``(E_k[A_q], E_k[A_p])`` per component, from the two log-odds (module docstring)."""
        Q, M, a = state.Q, state.M, state.a
        sp_q, _, lse_p, _ = moments
        A_q = (Q[1] - Q[1, 1] / 2) / self.delta + jax.nn.log_sigmoid(-a) + sp_q
        A_p = (-M - self.mu2 / 2) / self.delta + lse_p
        return A_q, A_p

    # -- the ODE theory protocol -------------------------------------------------------------------

    def init(self) -> VIState:
        dtype = jnp.result_type(self.m0, self.q0, self.mu2, float)
        q0, q12 = jnp.asarray(self.q0, dtype), jnp.asarray(self.q12_0, dtype)
        Q = jnp.array([[q0[0], q12], [q12, q0[1]]], dtype)
        a = jnp.log(self.weight0) - jnp.log1p(-self.weight0)
        return VIState(Q=Q, M=jnp.asarray(self.m0, dtype), a=jnp.asarray(a, dtype))

    def vector_field(self, t, state: VIState) -> VIState:
        Q, M, a = state.Q, state.M, state.a
        beta = self.beta(t)
        moments = self._moments(state)
        _, r1, _, s = moments
        sigma = jnp.stack([jax.nn.sigmoid(a), jax.nn.sigmoid(-a)])
        # dm_k/dt = sum_l B_kl m_l + e_k mu
        responsibilities = jnp.stack([r1, 1 - r1], -1)  # E_k[r^q_l]
        c = self.lr * sigma / self.delta
        B = -c[:, None] * ((beta - 1) * jnp.eye(2, dtype=Q.dtype) + responsibilities)
        e = c * beta * s
        BQ = B @ Q + jnp.outer(e, M)
        dQ = BQ + BQ.T
        dM = B @ M + e * self.mu2
        A_q, A_p = self._expected_logs(state, moments)
        g = (beta - 1) * jnp.diag(Q) / (2 * self.delta) + A_q - beta * A_p
        da = -self.lr_weights * sigma[0] * sigma[1] * (g[0] - g[1])
        return VIState(Q=dQ, M=dM, a=da)

    def observables(self, t, state: VIState) -> dict[str, jax.Array]:
        Q, M, a = state.Q, state.M, state.a
        moments = self._moments(state)
        A_q, A_p = self._expected_logs(state, moments)
        sigma = jnp.stack([jax.nn.sigmoid(a), jax.nn.sigmoid(-a)])
        collapsed = (jnp.min(sigma) < self.weight_level) | (M[0] * M[1] > 0)
        return {
            "m1": M[0], "m2": M[1], "q11": Q[0, 0], "q12": Q[0, 1], "q22": Q[1, 1],
            "weight": sigma[0], "beta": self.beta(jnp.asarray(t, Q.dtype)),
            "kl": sigma @ (A_q - A_p), "collapsed": collapsed.astype(Q.dtype),
        }

    # -- steady states -----------------------------------------------------------------------------

    def coordinates(self, state: VIState) -> jax.Array:
        """The upper triangle of ``Q``, ``M`` and ``a``."""
        return jnp.concatenate([state.Q[jnp.triu_indices(2)], state.M, state.a[None]])

    def from_coordinates(self, u, like: VIState) -> VIState:
        del like
        Q = jnp.array([[u[0], u[1]], [u[1], u[2]]])
        return VIState(Q=Q, M=u[3:5], a=u[5])

    def stationary_field(self, t, state: VIState, start: VIState) -> VIState:
        """The vector field, with the logit pulled back to its start under fixed weights
        (``lr_weights = 0``)."""
        field = self.vector_field(t, state)
        return eqx.tree_at(
            lambda f: f.a, field, jnp.where(self.lr_weights == 0, start.a - state.a, field.a)
        )

    def good_state(self) -> VIState:
        """``m_1 = mu``, ``m_2 = -mu``, ``sigma_1 = rho``: ``q = p``, the global minimum at ``beta = 1``."""
        dtype = jnp.result_type(self.mu2, float)
        mu2 = jnp.asarray(self.mu2, dtype)
        Q = mu2 * jnp.array([[1.0, -1.0], [-1.0, 1.0]], dtype)
        a = jnp.log(self.rho) - jnp.log1p(-self.rho)
        return VIState(Q=Q, M=jnp.stack([mu2, -mu2]), a=jnp.asarray(a, dtype))

    def aligned_state(self, s) -> VIState:
        """Both means at ``s mu`` (mean alignment), at the weight ``weight0``: a start for
        :func:`hdtheory.steady_state`, which then finds the aligned zero of the field."""
        dtype = jnp.result_type(self.mu2, s, float)
        mu2 = jnp.asarray(self.mu2, dtype)
        a = jnp.log(self.weight0) - jnp.log1p(-self.weight0)
        return VIState(Q=s**2 * mu2 * jnp.ones((2, 2), dtype), M=s * mu2 * jnp.ones(2, dtype),
                       a=jnp.asarray(a, dtype))
