r"""Multi-layer AMP's steps through a stack of generative layers (:mod:`hdtheory.kernels.generative`),
shared by the spiked matrix and the generalised linear model with a generative prior.

**Instance.** ``u_0 = z*`` of i.i.d. entries from the latent prior (``N(0, 1)`` by default),
``u_l = phi_l(F_l u_{l-1}) + sqrt(Delta_l) eps_l`` with ``F_l = W_l / sqrt(k_{l-1})`` (``W_l`` of
i.i.d. ``N(0, 1)`` entries, known; ``eps_l`` standard Gaussian, unknown; ``Delta_l`` the layer's
``noise``), ``k_L = d`` and ``k_{l-1} = round(k_l / beta_l)`` from the top (:func:`widths`), the
signal ``x* = u_L``.

**Step** (Manoel, Krzakala, Mezard and Zdeborova 2017; the parallel schedule of the state evolution
of :meth:`~hdtheory.kernels.Generative.update`). From the estimates ``u_l`` and variances ``c_l`` of
the inputs ``l = 0..L-1`` and the previous output functions ``g_l`` of each layer:

.. math::
    V_l = (F_l \circ F_l)\, c_{l-1}, \quad \omega_l = F_l \hat u_{l-1} - V_l \circ g_l,

then from the top, with ``(B_L, A_L)`` the messages on the signal (the matrix's, or GAMP's),

.. math::
    \hat u_l = \partial_B \log Z_l, \quad c_l = \partial_B^2 \log Z_l, \quad
    g_l = \partial_\omega \log Z_l, \quad
    A_{l-1} = -(F_l \circ F_l)^T \partial_\omega g_l, \quad B_{l-1} = F_l^T g_l + A_{l-1} \hat u_{l-1},

at ``(B_l, A_l, omega_l, V_l)`` (``Z_l`` the noisy factor ``Z_Delta`` of a noisy layer), down to the
latent, ``u_0`` and ``c_0`` the posterior mean and variance of its prior at ``(B_0, A_0)``
(``B_0 / (1 + A_0)`` and ``1 / (1 + A_0)`` for ``N(0, 1)``).

**Start.** A side observation of the latent at SNR ``A_0`` (``u_0`` its posterior mean, the overlap
``q_z`` the prior's ``overlap(A_0)``, ``A_0 / (1 + A_0)`` for ``N(0, 1)``), which also breaks the
symmetry ``x -> -x`` of the zero-mean models; every
other estimate zero with the variance ``rho_l`` (the overlap 0): the state
``(0, q_z, 0, ..., 0)`` of the state evolution.
"""

import jax
import jax.numpy as jnp

from ..kernels import Generative


def layers(stack: Generative) -> tuple[Generative, ...]:
    """The layers of a stack, first (on the latent) first."""
    below = () if stack._first else layers(stack.latent)
    return below + (stack,)


def widths(stack: Generative, d: int) -> tuple[int, ...]:
    """``(k_0, ..., k_L = d)``: each layer's input ``round(k_l / beta_l)`` from the top."""
    out = [d]
    for layer in reversed(layers(stack)):
        out.insert(0, max(round(out[0] / float(layer.beta)), 1))
    return tuple(out)


def draw(stack: Generative, key, k: tuple[int, ...], snr0):
    """``(x*, z*, hidden*, Fs, start)`` for the widths ``k`` (:func:`widths`): the signal, the latent,
    the layers' outputs below the top, the mixing matrices and the start (``(estimates, variances, g)``)
    of :func:`step`."""
    keys = jax.random.split(key, len(k) + 1)
    prior = stack.prior
    z = prior.sample(keys[0], (k[0],))
    Fs, us = [], [z]
    for layer, n_in, n_out, key_l in zip(layers(stack), k[:-1], k[1:], keys[1:-1]):
        Fs.append(jax.random.normal(key_l, (n_out, n_in)) / jnp.sqrt(n_in))
        noise = jnp.sqrt(layer.noise) * jax.random.normal(jax.random.fold_in(key_l, 1), (n_out,))
        us.append(layer.activation.phi(Fs[-1] @ us[-1]) + noise)
    side = snr0 * z + jnp.sqrt(snr0) * jax.random.normal(keys[-1], z.shape)
    estimates = (prior.mean(side, snr0),) + tuple(jnp.zeros(n) for n in k[1:-1])
    variances = (prior.variance(side, snr0),) + tuple(
        jnp.full(n, layer.input_rho) for n, layer in zip(k[1:-1], layers(stack)[1:])
    )
    gs = tuple(jnp.zeros(n) for n in k[1:])
    return us[-1], z, tuple(us[1:-1]), tuple(Fs), (estimates, variances, gs)


def step(stack: Generative, Fs, carry, B, A):
    """One pass through the layers from the messages ``(B, A)`` on the signal: ``(x, c, carry)``, the
    signal's new estimate and variance, and the layers' new ``(estimates, variances, g)``."""
    estimates, variances, gs = carry
    Vs = [(F * F) @ c for F, c in zip(Fs, variances)]
    omegas = [F @ u - V * g for F, u, V, g in zip(Fs, estimates, Vs, gs)]
    new_u, new_c, new_g = [None] * len(Fs), [None] * len(Fs), [None] * len(Fs)
    x = c = None
    for l in reversed(range(len(Fs))):
        log_z = layers(stack)[l].log_partition
        d_b, d_omega = jax.grad(log_z, 0), jax.grad(log_z, 2)

        def entry(b, a, o, s):
            return d_b(b, a, o, s), jax.grad(d_b)(b, a, o, s), d_omega(b, a, o, s), jax.grad(d_omega, 2)(b, a, o, s)

        A = jnp.broadcast_to(A, B.shape)
        u, var, g, dg = jax.vmap(entry)(B, A, omegas[l], Vs[l])
        if l == len(Fs) - 1:
            x, c = u, var
        else:
            new_u[l + 1], new_c[l + 1] = u, var
        new_g[l] = g
        A = -((Fs[l] * Fs[l]).T @ dg)
        B = Fs[l].T @ g + A * estimates[l]
    prior = stack.prior
    new_u[0], new_c[0] = prior.mean(B, A), prior.variance(B, A)
    return x, c, (tuple(new_u), tuple(new_c), tuple(new_g))


def errors(x_star, z_star, hidden, x, carry) -> dict:
    """``mmse`` of the signal, ``mmse_z`` of the latent and ``mmse_h{l}`` of the layers' outputs
    below the top: squared errors per entry, under the names of the theories' observables."""
    estimates = carry[0]
    out = {"mmse": jnp.mean((x - x_star) ** 2), "mmse_z": jnp.mean((estimates[0] - z_star) ** 2)}
    for l, (u_star, u) in enumerate(zip(hidden, estimates[1:]), start=1):
        out[f"mmse_h{l}"] = jnp.mean((u - u_star) ** 2)
    return out
