r"""LAMP's asymptotics for the spiked Wigner model with one linear generative layer: the bulk edge, the
top eigenvalue and the squared cosine of the estimate with the spike, as ``d, k -> inf`` at fixed
``beta = d / k`` and ``Delta = 1 / lam``.

**Matrix** (:mod:`hdtheory.simulate.spiked`, LAMP; Aubin, Loureiro, Maillard, Krzakala and Zdeborova
2019, "The spiked matrix model with generative priors", NeurIPS, arXiv:1905.12385, in their notation
``alpha = beta``): the top eigenvector of the ``k x k`` matrix ``Gamma_k = F^T Gamma F``,
``F = W / sqrt(k)``, ``Gamma = Y / sqrt(Delta d) - I / Delta``. Its noise part
``F^T A F``, ``A = xi / sqrt(Delta) - I / Delta`` (``xi`` a Wigner matrix, semicircle on ``[-2, 2]``),
has the spectral law ``nu`` whose Stieltjes transform ``s = g(z) = int nu(dx) / (x - z)`` inverts as
(Silverstein's equation)

.. math:: z(s) = -\frac{1}{s} + \beta \int \frac{t\, \rho_\Delta(t)\, dt}{1 + s t}, \qquad
          \rho_\Delta:\ \text{the law of } A, \text{ a semicircle of centre } -1/\Delta,
          \text{ radius } 2/\sqrt{\Delta}.

With ``w = -1 / s`` and ``G_A(w) = sqrt(Delta) G_sc(sqrt(Delta) w + 1 / sqrt(Delta))``,
``G_sc(u) = 2 / (u + sqrt(u^2 - 4))``, the integrals are closed: ``J_0 = int rho / (1 + s t) = w G_A(w)``,
``J_1 = int t rho / (1 + s t) = (1 - J_0) / s``, and ``z = w - beta w (1 - w G_A(w))``.
**Bulk edge**: ``lambda_max = z(s_edge)`` at the ``s_edge < 0`` nearest zero where ``z'(s) = 0``,
``beta int (s t / (1 + s t))^2 rho = beta (1 - 2 w G_A - w^2 G_A') = 1`` (the authors' ``s_edge``
and ``lambda_max``, their ``Demo_RMT/notebook.nb``, github.com/benjaminaubin-zz/StructuredPrior_demo;
``z`` increases on ``(s_edge, 0)`` from ``lambda_max`` to ``+inf``, so that ``g(1)`` is its root there).
**Outlier**: their theorem puts an eigenvalue at exactly 1, outside the bulk, up to
``Delta_c = 1 + beta``, past which the top eigenvalue is the bulk edge. Derived here: for ``Delta > 1``,
``G_sc(r + 1 / r) = 1 / r`` (``r = sqrt(Delta) > 1``) gives ``G_A(1) = 1``, so ``s = -1`` solves
``z(s) = 1`` with ``X = 0``; it is ``g(1)`` when it lies on the physical branch, ``s_edge <= -1``
(``w_edge <= 1``). The outlier at 1 is taken to be present exactly when ``g(1) != -1`` (``Delta <= 1``
or ``w_edge > 1``): a criterion inferred here, which gives their ``Delta_c`` and their curves of the
first two eigenvalues. At ``w = 1`` the edge equation's left side is ``beta / (Delta - 1)``
(``G_sc' = -G^2 / (1 - G^2)``), decreasing in ``w``, so ``w_edge > 1`` is ``Delta < 1 + beta``:
``Delta_c``, where the bulk edge touches 1 (``z(-1) = 1``). Where ``A < 0`` (``Delta < 1 / 4``) and
``beta <= 1`` the edge equation has no root: the top of the spectrum is the atom at 0 of the
``k - d`` null directions of ``F``, and ``lambda_max = 0``. **Overlap** (the same notebook, its
supplementary material's ``T`` functions): with ``s = g(1)`` and ``X = 1 + s z(s) = beta (1 - J_0)``,

.. math:: T_1 = s (\beta - X), \quad T_2 = s\big(\beta (1 + \beta) - (1 + 2\beta) X + X^2\big),\quad
          T_3 = s\big(\beta + 3\beta^2 + \beta^3 - (1 + 5\beta + 3\beta^2) X + (2 + 3\beta) X^2 - X^3\big),

    T_{11} = s T_2 - X \frac{T_1'}{z'} + \beta s (s + T_1) K, \qquad K = I_2 \frac{T_1'}{z'} - s I_1,

    T_{12} = s T_3 - X\Big(T_{11} + (1 + \beta) \frac{T_1'}{z'}\Big) + \beta s \big((1 + \beta) s + T_1 + T_2\big) K,

``I_n = int t^n rho / (1 + s t)^2`` (``I_1 = -J_0'``, ``I_2 = -J_1'``; primes are ``d / ds``, taken here
by forward-mode differentiation), and the squared cosine ``epsilon = beta Delta^2 / T_12`` below
``Delta_c``, 0 above it. The formulas are the notebook's, transcribed with its semicircle integrals
replaced by the closed forms above; nothing here was fitted to its outputs.

**Solves.** ``s_edge`` and ``g(1)`` are bracketed roots (bisection in ``w``, then in ``s``), vectorised and
differentiable: one Newton step whose root is held fixed gives the implicit function theorem's first
derivatives. ``residual`` is the larger of the two equations' residuals (the edge equation is steep
near ``A``'s top at small ``beta``: 4e-7 at ``beta = 1e-4``, ``Delta = 0.5``, after bisection to the
last bit; ``converged`` is ``residual < 1e-6``).
"""

import jax
import jax.numpy as jnp

BISECTIONS = 200


def _g_semicircle(u):
    """``int rho_sc(y) dy / (u - y)`` for ``u > 2`` (the branch that decays as ``1 / u``)."""
    return 2 / (u + jnp.sqrt(jnp.maximum(u**2 - 4, 0.0)))


def _j0(w, beta, delta):
    """``J_0 = w G_A(w)`` with ``G_A`` the Stieltjes transform of ``A`` at ``w = -1 / s``."""
    root = jnp.sqrt(delta)
    return w * root * _g_semicircle(root * w + 1 / root)


def _inverse(w, beta, delta):
    """``z(s)`` at ``s = -1 / w``: ``w - beta w (1 - J_0)``."""
    return w - beta * w * (1 - _j0(w, beta, delta))


def _edge_equation(w, beta, delta):
    """``beta int (t / (w - t))^2 rho(t) dt - 1``: zero at the bulk edge."""
    j0, dj0 = jax.jvp(lambda v: _j0(v, beta, delta), (w,), (jnp.ones_like(w),))
    # int (t / (w - t))^2 = 1 - 2 w G + w^2 int (w - t)^-2, with w G = J_0, d(w G)/dw = G - w int (w - t)^-2.
    return beta * (1 - j0 - w * dj0) - 1


def _bisect(f, lo, hi):
    """The root of ``f`` on ``(lo, hi)`` with ``f(lo) > 0 > f(hi)`` (or where the bracket ends)."""

    def halve(_, bounds):
        lo, hi = bounds
        mid = (lo + hi) / 2
        above = f(mid) > 0
        return jnp.where(above, mid, lo), jnp.where(above, hi, mid)

    lo, hi = jax.lax.fori_loop(0, BISECTIONS, halve, (lo, hi))
    return (lo + hi) / 2


def _implicit(f, root):
    """``root`` of ``f``, differentiable: one Newton step from the root held fixed."""
    root = jax.lax.stop_gradient(root)
    value, slope = jax.jvp(f, (root,), (jnp.ones_like(root),))
    return root - value / slope


def _t_functions(s, beta, delta):
    """``(z, T_1, T_2, T_3, J_0, J_1)`` at ``s < 0``; see the module docstring."""
    w = -1 / s
    j0 = _j0(w, beta, delta)
    x = beta * (1 - j0)
    t1 = s * (beta - x)
    t2 = s * (beta * (1 + beta) - (1 + 2 * beta) * x + x**2)
    t3 = s * (beta + 3 * beta**2 + beta**3 - (1 + 5 * beta + 3 * beta**2) * x + (2 + 3 * beta) * x**2 - x**3)
    return _inverse(w, beta, delta), t1, t2, t3, j0, (1 - j0) / s


def lamp_asymptotics(beta, delta) -> dict:
    """LAMP's asymptotics for one linear layer at ``beta = d / k`` (the paper's ``alpha``) and
    ``delta = 1 / lam``: ``bulk_edge`` (``lambda_max``), ``eigenvalue`` (the top one: 1 below
    ``Delta_c = 1 + beta``, the bulk edge above), ``overlap`` (``epsilon``, the squared cosine of the
    estimate with the spike), ``converged`` and ``residual``. Scalars; vmap over arrays."""
    beta, delta = jnp.asarray(beta, float), jnp.asarray(delta, float)
    radius = 2 / jnp.sqrt(delta)
    top = -1 / delta + radius  # the top of A's spectrum
    w_lo, w_hi = jnp.maximum(top, 0.0), 2 * (1 + jnp.sqrt(beta)) * (1 / delta + radius)
    # The edge equation has a root unless A < 0 and beta <= 1: then the edge is the atom at 0.
    has_edge = (top > 0) | (beta > 1)
    edge = lambda w: _edge_equation(w, beta, delta)  # noqa: E731
    w_edge = jnp.where(has_edge, _implicit(edge, jnp.where(has_edge, _bisect(edge, w_lo, w_hi), 1.0)), 1.0)
    bulk_edge = jnp.where(has_edge, _inverse(w_edge, beta, delta), 0.0)
    outlier = (delta <= 1) | (w_edge > 1)
    # g(1) on (s_edge, 0), where z(s) increases (without an edge, Delta < 1 and z(-1) = 1 - beta (1 - Delta)
    # < 1); above Delta_c a placeholder inside the bracket.
    s_edge = jnp.where(has_edge, -1 / w_edge, -1.0)
    one = lambda s: 1 - _t_functions(s, beta, delta)[0]  # noqa: E731
    s = jnp.where(outlier, _implicit(one, _bisect(one, jax.lax.stop_gradient(s_edge), 0.0)), s_edge / 2)
    values, slopes = jax.jvp(lambda v: _t_functions(v, beta, delta), (s,), (jnp.ones_like(s),))
    (z, t1, t2, t3, j0, _), (dz, dt1, _, _, dj0, dj1) = values, slopes
    i1, i2 = -dj0, -dj1
    x = beta * (1 - j0)
    k = i2 * dt1 / dz - s * i1
    t11 = s * t2 - x * dt1 / dz + beta * s * (s + t1) * k
    t12 = s * t3 - x * (t11 + (1 + beta) * dt1 / dz) + beta * s * ((1 + beta) * s + t1 + t2) * k
    residual = jnp.maximum(jnp.where(has_edge, jnp.abs(edge(w_edge)), 0.0), jnp.where(outlier, jnp.abs(z - 1), 0.0))
    return {
        "bulk_edge": bulk_edge,
        "eigenvalue": jnp.where(outlier, 1.0, bulk_edge),
        "overlap": jnp.where(outlier, beta * delta**2 / t12, 0.0),
        "converged": residual < 1e-6,
        "residual": residual,
    }
