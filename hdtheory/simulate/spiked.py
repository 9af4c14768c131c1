r"""AMP at finite ``d`` for the rank-one spiked Wigner and Wishart models (:class:`~hdtheory.Spiked`).

**Instances.** Wigner: ``x*`` with i.i.d. entries from ``prior`` (second moment ``rho``);
``Y = sqrt(lam / d) x* x*^T + W``, ``W`` symmetric with ``N(0, 1)`` entries off the diagonal
(``N(0, 2)`` on it, which does not matter at large ``d``). Wishart: ``u*`` of size
``n = round(alpha d)`` from ``prior_u``, ``v*`` of size ``d`` from ``prior``,
``Y = sqrt(lam / d) u* v*^T + W`` (``n x d``, ``W`` i.i.d. ``N(0, 1)``).

**Algorithm** (Bayes-optimal AMP: Rangan and Fletcher 2012; Deshpande and Montanari 2014; Lesieur,
Krzakala and Zdeborova 2017, J. Stat. Mech. 073403, the ``XX^T`` and ``UV^T`` cases, in their
normalisation ``Delta = 1 / lam``, ``N = d``). The start is the posterior mean of a side observation
of each signal at signal-to-noise ratio ``A_0``, ``x_0 = f_a(A_0 x* + sqrt(A_0) z, A_0)``
(independent of ``W``; ``A_0 -> 0`` is the uninformed start). Each Wigner iteration is

.. math::
    B_t = \sqrt{\lambda / d}\, Y \hat x_t - \frac{\lambda}{d} \sum_i v_{t,i}\; \hat x_{t-1}, \quad
    A_t = \lambda |\hat x_t|^2 / d, \quad \hat x_{t+1} = f_a(B_t, A_t), \quad v_{t+1} = f_v(B_t, A_t),

with the prior's posterior mean and variance ``f_a``, ``f_v`` (:mod:`hdtheory.kernels.priors`) and
``x_{-1} = 0``. The Wishart iteration alternates, ``u`` from the latest ``v`` and then ``v`` from
the new ``u`` (the schedule of Lesieur et al.'s low-rank AMP):

.. math::
    B^u_t = \sqrt{\lambda / d}\, Y \hat v_t - \frac{\lambda}{d} \sum_j v^v_{t,j}\; \hat u_t, \quad
    A^u_t = \lambda |\hat v_t|^2 / d, \quad \hat u_{t+1} = f_a^u(B^u_t, A^u_t);

    B^v_t = \sqrt{\lambda / d}\, Y^T \hat u_{t+1} - \frac{\lambda}{d} \sum_i v^u_{t+1,i}\; \hat v_t, \quad
    A^v_t = \lambda |\hat u_{t+1}|^2 / d, \quad \hat v_{t+1} = f_a^v(B^v_t, A^v_t),

(and the variances from ``f_v``), with ``u_0`` replaced by zero in the first Onsager term (``v_0``
comes from the side observation, not from ``u_0``). The Onsager terms remove the reaction of ``W``:
``u_{t+1}`` depends on ``W_ij`` through ``B^u_t ~ sqrt(lam / d) W_ij v_{t,j}``, so that
``sqrt(lam / d) sum_i W_ij u_{t+1,i}`` carries ``(lam / d) sum_i d u_{t+1,i} / d B^u_i v_{t,j}``,
and ``d f_a / d B = f_v``. ``B_t`` is then distributed as the scalar channel ``A x* + sqrt(A) z``
with ``A = lam q_t`` (Wigner), or ``A^u = lam q_v``, ``A^v = lam alpha q_u`` (Wishart:
``|u_t|^2 / d = alpha q_u``). This is ``theory.update`` (Wishart: ``q_u`` from ``q_v``, then ``q_v``
from the new ``q_u``), so state evolution predicts ``|x_t - x*|^2 / d -> rho - q_t`` (Wishart:
``|u_t - u*|^2 / n -> rho_u - q_u``, ``|v_t - v*|^2 / d -> rho - q_v``) for ``q_0 = prior.overlap(A_0)``
(Wishart: ``q_0 = (prior_u.overlap(A_0), prior.overlap(A_0))``) and ``q_{t+1} = theory.update(q_t)``:
:func:`hdtheory.iterate` from the state ``q_0``.

**Observables** of an iterate, under the names of ``theory.observables``: the overlaps
``q = x*.x_hat / d`` (Wishart ``q_u = u*.u_hat / n``, ``q_v = v*.v_hat / d``), the errors
``mmse = |x_hat - x*|^2 / d`` (``mmse_u``, ``mmse_v``) and ``mmse_matrix``, the squared error per entry
of the rank-one matrix (``|x_hat x_hat^T - x* x*^T|_F^2 / d^2``, ``|u_hat v_hat^T - u* v*^T|_F^2 / (n d)``).
:func:`amp_errors` returns the errors after every iteration; :func:`simulate` the observables of the
last iterate. Both draw and run every seed in one compiled program, vectorised over the seeds.

**Signs.** For the zero-mean priors AMP cannot tell ``(u*, v*)`` from ``(-u*, -v*)`` (nor ``x*`` from
``-x*``); the model's fixed point is the one whose symmetry the side observation breaks, which an
instance does only when ``A_0 d >> 1``. The observables are therefore measured up to the sign of
each factor, chosen to make its overlap nonnegative.

**Generative prior** (``prior="generative"``; multi-layer AMP, Manoel, Krzakala, Mezard and
Zdeborova 2017, as in Aubin et al. 2019). The spike ``x* = u_L`` (Wishart: ``v*``) is the output of the
stack of layers of :mod:`hdtheory.simulate._layers` (one layer: ``x* = phi(F z*)``, ``F = W / sqrt(k)``,
``k = round(d / beta)``). Each Wigner iteration takes the messages on ``x`` from ``Y`` (``B``, ``A``, as
above, with the Onsager term of the previous estimate) and passes them down the layers
(:func:`hdtheory.simulate._layers.step`), whose top factor gives ``x_{t+1} = d_B log Z`` and its
variance. Each Wishart iteration first updates ``u`` from ``v`` through ``prior_u`` (``B^u_t``,
``A^u_t`` above, the Onsager coefficient the sum of the top factor's variances), then passes
``B^v_t``, ``A^v_t`` from the new ``u`` down the layers. The start is ``x_0 = 0`` (Wishart
``u_0 = v_0 = 0``) and a side observation of the latent ``z*`` at SNR ``A_0``
(``q_z = A_0 / (1 + A_0)``), which also tells ``x*`` from ``-x*``. State evolution predicts
``hd.iterate(theory, steps, init=(0, A_0 / (1 + A_0), 0, ...))`` (Wishart ``(0, 0, A_0 / (1 + A_0), ...)``;
``theory.update`` updates ``q_v`` and the layers' overlaps from the same state, as here the layers'
estimates are updated from the same messages). :func:`generative_amp_errors` returns ``mmse`` (of
``x``; Wishart ``mmse_u``, ``mmse_v``), ``mmse_z``, ``mmse_h{l}`` (a stack) and ``mmse_matrix`` after
every iteration.

**LAMP** (Aubin et al. 2019's spectral method) for stacks of zero-mean layers (``linear``, ``sign``):
multi-layer AMP linearised about its uninformed fixed point (``x = 0``, ``A = 0``, every variance its
prior's). There the posterior mean of the signal given its message ``B`` is, to first order, its
covariance ``K`` given the weights times ``B``, ``x = K B``. For a layer ``u_l = phi_l(F_l u_{l-1})``
the covariance keeps the linear part of ``phi_l`` (its first Hermite coefficient, the ``slope``
``s_l = E phi_l'``) and the rest on the diagonal:

.. math:: K_l = s_l^2\, F_l K_{l-1} F_l^\top + (\rho_l - s_l^2 \rho_{l-1})\, I, \qquad K_0 = I

(the cross terms of higher Hermite orders vanish in operator norm at large ``d``): ``K = F F^T`` for
one linear layer, ``(2 / pi) F F^T + (1 - 2 / pi) I`` for one sign layer, the authors' ``Sigma``
(their ``Spectral_structuredPrior.py``, github.com/benjaminaubin-zz/StructuredPrior_demo). With the
Wigner messages ``B = sqrt(lam / d) Y x - lam rho x`` (the Onsager term of the prior's variance
``rho``),

.. math:: x = K \Gamma x, \qquad \Gamma = \sqrt{\lambda / d}\, Y - \lambda \rho I
          \quad (\text{with the paper's } Y_p = Y / \sqrt{\lambda}:\ (Y_p / \sqrt{p} - \rho I) / \Delta);

Wishart, with ``u = rho_u B^u`` to first order for any zero-mean ``prior_u`` and
``B^u = sqrt(lam / d) Y x - lam rho u``,
``Gamma = lam rho_u / (1 + lam rho rho_u) Y^T Y / d - lam alpha rho_u I`` (the authors' ``1 / (Delta + a)``,
``a = rho``). A fixed point of linearised AMP is an eigenvector of ``K Gamma`` of eigenvalue 1: with a
factor ``K = L L^T`` and ``x = L y``, the top eigenvector ``y`` of the symmetric ``L^T Gamma L``.
``L`` is built layer by layer, ``s_l F_l L_{l-1}`` for a linear layer (``L = F``: the ``k x k`` matrix
``F^T Gamma F``) and a Cholesky factor of ``K_l`` otherwise. The latent's estimate is its linear
response, ``(F_L ... F_1)^T Gamma x`` (``E z phi(F z)^T = s F^T``). For one linear layer the authors'
random-matrix analysis (their ``Demo_RMT/notebook.nb``) proves an eigenvalue equal to 1 detaching
from the bulk at ``Delta_c = 1 + beta``, the state evolution's weak recovery ``lam (1 + beta) = 1``
(Wishart ``lam^2 alpha rho_u^2 (1 + beta) = 1``), where PCA needs ``lam = 1``
(``lam^2 alpha rho_u^2 = 1``), and gives the squared cosine of the estimate with the spike. For the
zero-mean stacks the outlier leaves the bulk at the state evolution's weak recovery,
``Delta_c = rho_L^2 + beta_L s_L^4 (rho_{L-1}^2 + beta_{L-1} s_{L-1}^4 (...))``, checked at finite
``d``. ``relu`` has a non-zero mean and no uninformed point ``x = 0`` (the authors' code puts the
linear layer's ``Sigma`` there, Wishart, or ``I``, Wigner: placeholders). :func:`lamp` returns the
squared cosines with the spike and the latent, the top two eigenvalues and PCA's squared cosine.
"""

import equinox as eqx
import jax
import jax.numpy as jnp

from .. import kernels
from .._batch import map_instances
from .._theory import Interval, check_integer
from ..models.spiked import Spiked
from . import SimulationResult, _layers, check_size, simulate


def _factors(theory: Spiked):
    """``(suffix, prior)`` of each factor: ``x`` (Wigner), ``u`` and ``v`` (Wishart)."""
    if theory.prior == "generative":
        raise NotImplementedError(
            "AMP with a generative prior is simulated by generative_amp_errors (and its spectral method by lamp)"
        )
    prior, prior_u = theory._priors()
    return (("", prior),) if theory.ensemble == "wigner" else (("_u", prior_u), ("_v", prior))


def _rows(theory: Spiked, d: int, seeds: int) -> int:
    """The number of rows of ``Y`` (``d`` or ``round(alpha d)``), after checking ``d`` and ``seeds``."""
    check_size(d, seeds)
    return d if theory.ensemble == "wigner" else max(round(float(theory.alpha) * d), 1)


def _draw(theory: Spiked, key, n: int, d: int, snr0):
    """``Y``, the signals and the side-observation start (means and variances), one per factor."""
    factors = _factors(theory)
    keys = jax.random.split(key, 1 + 2 * len(factors))
    sizes = (d,) if len(factors) == 1 else (n, d)
    signals = tuple(prior.sample(k, (m,)) for (_, prior), k, m in zip(factors, keys[1::2], sizes))
    G = jax.random.normal(keys[0], (n, d))
    W = (G + G.T) / jnp.sqrt(2.0) if len(factors) == 1 else G
    Y = jnp.sqrt(theory.snr / d) * jnp.outer(signals[0], signals[-1]) + W
    side = tuple(snr0 * s + jnp.sqrt(snr0) * jax.random.normal(k, s.shape) for s, k in zip(signals, keys[2::2]))
    means = tuple(prior.mean(b, snr0) for (_, prior), b in zip(factors, side))
    variances = tuple(prior.variance(b, snr0) for (_, prior), b in zip(factors, side))
    return Y, signals, means, variances


def amp(theory: Spiked, Y, means, variances, steps: int):
    """The AMP iterates (from the start ``means``, ``variances``: one array per factor), one array
    per factor with the iterations ``t = 0..steps`` on axis 0; see the module docstring."""
    d = Y.shape[1]
    priors = tuple(prior for _, prior in _factors(theory))
    lam = theory.snr

    def step(carry, _):
        xs, vs, sources = map(list, carry)
        # Each factor in turn from the other's latest estimate (Wigner: from itself), with the
        # Onsager term of the estimate of this factor that the other's was computed from.
        for k, prior in enumerate(priors):
            p = len(priors) - 1 - k
            field = Y @ xs[p] if k == 0 else xs[p] @ Y
            B = jnp.sqrt(lam / d) * field - lam * jnp.sum(vs[p]) / d * sources[p]
            A = lam * (xs[p] @ xs[p]) / d
            sources[k] = xs[p]
            xs[k], vs[k] = prior.mean(B, A), prior.variance(B, A)
        return (tuple(xs), tuple(vs), tuple(sources)), tuple(xs)

    init = (tuple(means), tuple(variances), tuple(jnp.zeros_like(x) for x in means[::-1]))
    _, iterates = jax.lax.scan(step, init, None, length=steps)
    return tuple(jnp.concatenate([x0[None], xs]) for x0, xs in zip(means, iterates))


def _observables(theory: Spiked, signals, estimates) -> dict:
    """The observables of one estimate (one array per factor), up to signs; see the module docstring."""
    estimates = tuple(jnp.where(s @ x < 0, -x, x) for s, x in zip(signals, estimates))
    out = {}
    for (suffix, _), s, x in zip(_factors(theory), signals, estimates):
        out["q" + suffix] = s @ x / s.size
        out["mmse" + suffix] = jnp.mean((x - s) ** 2)
    (s1, x1), (s2, x2) = (signals[0], estimates[0]), (signals[-1], estimates[-1])
    out["mmse_matrix"] = ((x1 @ x1) * (x2 @ x2) - 2 * (s1 @ x1) * (s2 @ x2) + (s1 @ s1) * (s2 @ s2)) / (
        s1.size * s2.size
    )
    return out


@eqx.filter_jit
def _trajectories(theory: Spiked, keys, n: int, d: int, snr0, steps: int) -> dict:
    """The observables of every iterate of every seed: arrays ``(seeds, steps + 1)``."""

    def one(key):
        Y, signals, means, variances = _draw(theory, key, n, d, snr0)
        iterates = amp(theory, Y, means, variances, steps)
        return jax.vmap(lambda *xs: _observables(theory, signals, xs))(*iterates)

    return jax.vmap(one)(keys)


def _run(theory: Spiked, d: int, seeds: int, key, steps: int, snr0) -> tuple[dict, int]:
    n = _rows(theory, d, seeds)
    keys = jax.random.split(jax.random.PRNGKey(0) if key is None else key, seeds)
    return _trajectories(theory, keys, n, d, jnp.asarray(snr0, float), steps), n


def amp_errors(theory: Spiked, *, d: int = 2000, seeds: int = 4, steps: int = 10, snr0=0.1, key=None):
    """The errors (``mmse`` for Wigner, ``mmse_u`` and ``mmse_v`` for Wishart, and ``mmse_matrix``)
    after ``t = 0..steps`` iterations, each of shape ``(seeds, steps + 1)``. State evolution predicts
    ``hd.iterate(theory, steps, init=q_0)`` with ``q_0`` the start's overlaps (module docstring)."""
    trajectories, _ = _run(theory, d, seeds, key, steps, snr0)
    return {k: v for k, v in trajectories.items() if k.startswith("mmse")}


@eqx.filter_jit
def _generative_trajectories(theory: Spiked, keys, k: tuple[int, ...], n: int, snr0, steps: int) -> dict:
    """The errors of every iterate of every seed: arrays ``(seeds, steps + 1)``."""
    (stack, prior_u), d, lam = theory._priors(), k[-1], theory.snr
    wigner = theory.ensemble == "wigner"
    signal = "mmse" if wigner else "mmse_v"

    def one(key):
        layer_key, u_key, noise_key = jax.random.split(key, 3)
        x_star, z_star, hidden, Fs, start = _layers.draw(stack, layer_key, k, snr0)
        if wigner:
            G = jax.random.normal(noise_key, (d, d))
            u_star, W = x_star, (G + G.T) / jnp.sqrt(2.0)
        else:
            u_star, W = prior_u.sample(u_key, (n,)), jax.random.normal(noise_key, (n, d))
        Y = jnp.sqrt(lam / d) * jnp.outer(u_star, x_star) + W

        def errors(u, x, layers):
            out = _layers.errors(x_star, z_star, hidden, x, layers)
            out[signal] = out.pop("mmse")
            if not wigner:
                out["mmse_u"] = jnp.mean((u - u_star) ** 2)
            out["mmse_matrix"] = (
                (u @ u) * (x @ x) - 2 * (u @ u_star) * (x @ x_star) + (u_star @ u_star) * (x_star @ x_star)
            ) / (u.size * d)
            return out

        def messages(estimate, variances, source, field):
            """``(B, A)`` from the other factor's estimate (Wigner: the signal's own) and the Onsager
            term of the estimate of this factor that it was computed from."""
            B = jnp.sqrt(lam / d) * field - lam * jnp.sum(variances) / d * source
            return B, lam * (estimate @ estimate) / d

        def step(carry, _):
            u, c_u, x, c_x, layers = carry
            if wigner:
                B, A = messages(x, c_x, u, Y @ x)
            else:
                B_u, A_u = messages(x, c_x, u, Y @ x)
                u_new, c_u = prior_u.mean(B_u, A_u), prior_u.variance(B_u, A_u)
                B, A = messages(u_new, c_u, x, u_new @ Y)
            x_new, c_x, layers = _layers.step(stack, Fs, layers, B, A)
            u_new = x if wigner else u_new
            return (u_new, c_u, x_new, c_x, layers), errors(x_new if wigner else u_new, x_new, layers)

        zeros_u, zeros = jnp.zeros(u_star.size), jnp.zeros(d)
        carry = (zeros_u, zeros_u, zeros, zeros, start)
        _, history = jax.lax.scan(step, carry, None, length=steps)
        return jax.tree.map(lambda a, b: jnp.concatenate([a[None], b]), errors(zeros_u, zeros, start), history)

    return jax.vmap(one)(keys)


def generative_amp_errors(theory: Spiked, *, d: int = 1000, seeds: int = 4, steps: int = 10, snr0=0.5, key=None):
    """Multi-layer AMP for the spiked Wigner or Wishart model with a generative prior: the errors
    ``mmse`` (Wishart: ``mmse_u``, ``mmse_v``), ``mmse_z``, for a stack ``mmse_h{l}``, and
    ``mmse_matrix`` after ``t = 0..steps`` iterations, each ``(seeds, steps + 1)``; see the module
    docstring. State evolution predicts ``hd.iterate(theory, steps, init=q_0)`` with
    ``q_0 = jnp.array([0, q_z, 0, ..., 0])`` (Wishart: ``[0, 0, q_z, ...]``), ``q_z = snr0 / (1 + snr0)``
    for the Gaussian latent (the latent prior's ``overlap(snr0)``)."""
    n = _rows(theory, d, seeds)
    if theory.prior != "generative":
        raise NotImplementedError("generative_amp_errors needs prior='generative'; amp_errors runs the others")
    k = _layers.widths(theory._priors()[0], d)
    keys = jax.random.split(jax.random.PRNGKey(0) if key is None else key, seeds)
    return _generative_trajectories(theory, keys, k, n, jnp.asarray(snr0, float), steps)


def _lamp_factor(stack, Fs):
    """A factor ``L`` of the signal's covariance ``K = L L^T`` by the recursion of the module
    docstring: ``L_0 = I``, ``L_l = s_l F_l L_{l-1}`` for a layer without a nonlinear part
    (``linear``, ``c_l = 0``, whose ``L`` keeps the input's width), else the Cholesky factor of ``K_l``."""
    L = None
    for layer, F in zip(_layers.layers(stack), Fs):
        slope = layer.activation.slope
        FL = slope * (F if L is None else F @ L)
        if isinstance(layer.activation, kernels.generative.Linear):
            L = FL
        else:
            c = layer.rho - slope**2 * layer.input_rho
            L = jnp.linalg.cholesky(FL @ FL.T + c * jnp.eye(F.shape[0], dtype=F.dtype))
    return L


@eqx.filter_jit
def _lamp_instances(theory: Spiked, keys, k: tuple[int, ...], n: int) -> dict:
    """The spectral estimates of every seed: arrays ``(seeds,)``."""
    (stack, prior_u), d, lam = theory._priors(), k[-1], theory.snr
    wigner, rho = theory.ensemble == "wigner", stack.rho

    def cosine2(a, b):
        return (a @ b) ** 2 / ((a @ a) * (b @ b))

    def one(key):
        layer_key, u_key, noise_key = jax.random.split(key, 3)
        x_star, z_star, _, Fs, _ = _layers.draw(stack, layer_key, k, 0.0)
        if wigner:
            G = jax.random.normal(noise_key, (d, d))
            Y = jnp.sqrt(lam / d) * jnp.outer(x_star, x_star) + (G + G.T) / jnp.sqrt(2.0)
            Gamma = jnp.sqrt(lam / d) * Y - lam * rho * jnp.eye(d)
            pca = jnp.linalg.eigh(Y)[1][:, -1]
        else:
            u_star = prior_u.sample(u_key, (n,))
            Y = jnp.sqrt(lam / d) * jnp.outer(u_star, x_star) + jax.random.normal(noise_key, (n, d))
            rho_u = prior_u.rho
            Gamma = lam * rho_u / (1 + lam * rho * rho_u) * Y.T @ Y / d - lam * (n / d) * rho_u * jnp.eye(d)
            pca = jnp.linalg.eigh(Y.T @ Y)[1][:, -1]
        L = _lamp_factor(stack, Fs)
        M = L.T @ Gamma @ L
        values, vectors = jnp.linalg.eigh((M + M.T) / 2)
        x = L @ vectors[:, -1]
        z = Gamma @ x
        for F in reversed(Fs):
            z = F.T @ z
        return {
            "overlap": cosine2(x, x_star),
            "overlap_z": cosine2(z, z_star),
            "eigenvalue": values[-1],
            "bulk_edge": values[-2],
            "pca_overlap": cosine2(pca, x_star),
        }

    # Several eigendecompositions and a Cholesky factor per seed: not batched on the CPU.
    return map_instances(one, keys)


def lamp(theory: Spiked, *, d: int = 2000, seeds: int = 2, key=None) -> dict:
    """LAMP, the spectral method of linearised multi-layer AMP, for the spiked Wigner or Wishart model
    with a generative prior of zero-mean layers (``linear``, ``sign``, and stacks of them): per seed
    (arrays ``(seeds,)``) the squared cosines ``overlap`` of the estimate ``x`` with the spike
    (Wishart: ``v*``) and ``overlap_z`` of the latent's estimate ``(F_L ... F_1)^T Gamma x`` with the
    latent, the top ``eigenvalue`` of ``K Gamma`` and the second, ``bulk_edge``, and PCA's squared
    cosine ``pca_overlap`` (the top eigenvector of ``Y``, Wishart ``Y^T Y``); see the module docstring."""
    n = _rows(theory, d, seeds)
    if theory.prior != "generative":
        raise NotImplementedError("lamp is the spectral method of a generative prior, prior='generative'")
    stack = theory._priors()[0]
    means = [layer.activation.mean for layer in _layers.layers(stack)]
    if any(m != 0 for m in means):
        raise NotImplementedError(
            f"lamp linearises AMP about x = 0, which needs zero-mean activations (linear, sign): activation means {means}"
        )
    noise = [float(layer.noise) for layer in _layers.layers(stack)]
    if float(stack.prior.rho) != 1 or any(noise):
        raise NotImplementedError(
            f"lamp needs noiseless layers on a latent of second moment 1: layer_noise {noise}, rho={float(stack.prior.rho)}"
        )
    k = _layers.widths(stack, d)
    keys = jax.random.split(jax.random.PRNGKey(0) if key is None else key, seeds)
    return _lamp_instances(theory, keys, k, n)


@simulate.register
def simulate_spiked(
    theory: Spiked, *, d: int = 1000, seeds: int = 4, key=None, steps: int = 50, snr0=1e-3
) -> SimulationResult:
    """:func:`~hdtheory.simulate.simulate` for :class:`~hdtheory.Spiked`: AMP run for ``steps``
    iterations from a side observation at SNR ``snr0``; see the module docstring."""
    trajectories, n = _run(theory, d, seeds, key, steps, snr0)
    return SimulationResult.from_stacked({k: v[:, -1] for k, v in trajectories.items()}, d=d, n=n)


def _heat_bath(theory: Spiked, Y, x, key, sweeps: int):
    """``sweeps`` sequential heat-bath sweeps of the Wigner posterior of a discrete prior from ``x``;
    the state after each sweep, ``(sweeps, d)``. See :func:`gibbs_samples`."""
    d = Y.shape[0]
    atoms, probabilities = theory._priors()[0].support(0, Y.dtype)
    c = jnp.sqrt(theory.snr / d)
    off = c * (Y - jnp.diag(jnp.diagonal(Y)))
    # The terms of one site's log-posterior that do not involve the others: the prior and the diagonal.
    own = jnp.log(probabilities) + c * jnp.diagonal(Y)[:, None] * atoms**2 / 2 - theory.snr * atoms**4 / (4 * d)

    def site(i, carry):
        x, h, s, u = carry
        rest = s - x[i] ** 2
        logits = own[i] + atoms * h[i] - theory.snr * atoms**2 * rest / (2 * d)
        cdf = jnp.cumsum(jax.nn.softmax(logits))
        new = atoms[jnp.minimum(jnp.sum(cdf < u[i]), atoms.size - 1)]
        return x.at[i].set(new), h + off[i] * (new - x[i]), rest + new**2, u

    def sweep(carry, key):
        x, h, s = carry
        x, h, s, _ = jax.lax.fori_loop(0, d, site, (x, h, s, jax.random.uniform(key, (d,), Y.dtype)))
        return (x, h, s), x

    _, states = jax.lax.scan(sweep, (x, off @ x, x @ x), jax.random.split(key, sweeps))
    return states


@eqx.filter_jit
def _gibbs_instances(theory: Spiked, keys, d: int, burn_in: int, sweeps: int) -> dict:
    def one(key):
        draw_key, chain_key = jax.random.split(key)
        Y, (x_star,), _, _ = _draw(theory, draw_key, d, d, jnp.zeros((), float))
        states = _heat_bath(theory, Y, x_star, chain_key, burn_in + sweeps)[burn_in:]
        overlap, norm, signal = states @ x_star / d, jnp.sum(states**2, -1) / d, x_star @ x_star / d
        return {
            "q": jnp.mean(overlap),
            "gibbs_error": jnp.mean(norm - 2 * overlap + signal),
            "gibbs_error_matrix": jnp.mean(norm**2 - 2 * overlap**2 + signal**2),
        }

    return jax.vmap(one)(keys)


def gibbs_samples(
    theory: Spiked, *, d: int = 500, seeds: int = 4, sweeps: int = 100, burn_in: int = 50, key=None
) -> SimulationResult:
    r"""Posterior samples of the spiked Wigner model with a discrete prior (``rademacher``,
    ``sparse-rademacher``, ``discrete``) by Markov chain Monte Carlo, and their errors: ``q``
    (``x_s.x* / d``), ``gibbs_error`` (``|x_s - x*|^2 / d``) and ``gibbs_error_matrix``
    (``|x_s x_s^T - x* x*^T|_F^2 / d^2``), each averaged over the ``sweeps`` sweeps after ``burn_in``,
    one value per seed; the model predicts ``q``, ``2 (rho - q)`` and ``2 (rho^2 - q^2)``.

    **Posterior.** With the instance of :func:`simulate` (``W`` of variance 1 off the diagonal and 2 on
    it), ``log P(x | Y) = sum_{i<j} [sqrt(lam / d) Y_ij x_i x_j - lam x_i^2 x_j^2 / (2 d)]
    + sum_i [sqrt(lam / d) Y_ii x_i^2 / 2 - lam x_i^4 / (4 d) + log P0(x_i)] + const``, so that site
    ``i`` given the others has the weights ``P0(a) exp(a h_i - lam a^2 S_i / (2 d) + sqrt(lam / d) Y_ii a^2 / 2
    - lam a^4 / (4 d))`` over the atoms ``a``, ``h_i = sqrt(lam / d) sum_{j != i} Y_ij x_j``,
    ``S_i = sum_{j != i} x_j^2``. **Chain.** Heat-bath updates of the sites in turn (a ``fori_loop``
    over the sites, each an ``O(d)`` update of the fields ``h``; one sweep is ``d`` of them),
    vectorised over the seeds. **Quiet planting.** The chain starts at the spike ``x*``: given ``Y``,
    ``x*`` is itself a sample of the posterior (the joint law of ``(x*, Y)`` is that of ``(x_s, Y)``),
    so that the chain is in equilibrium from its first sweep, with no burn-in needed in principle
    (``burn_in`` decorrelates the samples from ``x*``: at sweep 0 the error is zero). For the zero-mean
    priors the chain stays, at large ``d``, in the spike's half of the posterior (crossing to ``-x*``
    takes a time exponential in ``d``)."""
    n = _rows(theory, d, seeds)
    prior = theory._priors()[0]
    if theory.ensemble != "wigner" or not isinstance(prior, (kernels.Rademacher, kernels.Discrete)):
        raise NotImplementedError(
            "gibbs_samples samples the spiked Wigner model (ensemble='wigner') with a discrete prior "
            f"(rademacher, sparse-rademacher, discrete), got ensemble={theory.ensemble!r}, prior={theory.prior!r}"
        )
    check_integer("sweeps", sweeps, Interval(1))
    check_integer("burn_in", burn_in, Interval(0))
    keys = jax.random.split(jax.random.PRNGKey(0) if key is None else key, seeds)
    return SimulationResult.from_stacked(_gibbs_instances(theory, keys, d, burn_in, sweeps), d=d, n=n)
