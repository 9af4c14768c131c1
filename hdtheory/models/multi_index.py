r"""Bayes-optimal learning of a multi-index model: the ``k x k`` state evolution of GAMP, its weak
recovery threshold and its easy directions.

**Setting** (Troiani, Dandi, Defilippis, Zdeborova, Loureiro and Krzakala 2025, "Fundamental
computational limits of weak learnability in high-dimensional multi-index models", AISTATS,
arXiv:2405.15480; the committee machine of Aubin, Maillard, Barbier, Krzakala, Macris and Zdeborova
2018, NeurIPS, for the ``k x k`` state evolution). ``n = alpha d`` inputs ``x_i ~ N(0, I_d)``, a
teacher ``W* in R^{k x d}`` whose columns are i.i.d. ``N(0, I_k)`` (so that the fields
``z = W* x / sqrt(d)`` are ``N(0, I_k)``), labels ``y = g(z) + sqrt(noise) eps`` for a continuous
link ``g`` (``noise`` a variance) or ``y = sign(g(z))`` flipped with probability ``noise``.
The statistician knows ``g`` and computes the posterior of ``W*``.

**State evolution** (the state evolution of Bayes-optimal GAMP in Troiani et al.; that of the
committee machine in Aubin et al., with a Gaussian prior). The overlap ``M = E[W_hat W*^T] / d`` (``k x k``,
``0 <= M <= I``, by the Nishimori identity also ``W_hat W_hat^T / d``) and its conjugate

.. math::
    \hat M = \alpha\, \mathbb{E}_{\xi, y}\, g_{out} g_{out}^T, \qquad
    g_{out}(y, \omega, V) = V^{-1} \big(\mathbb{E}[z \mid y, \omega, V] - \omega\big), \qquad
    M = \hat M (I + \hat M)^{-1},

with ``omega = M^{1/2} xi``, ``xi ~ N(0, I_k)``, ``V = I - M``, the posterior of
``z ~ N(omega, V)`` given ``y``, and ``y`` drawn from the teacher given ``omega``
(``z0 ~ N(omega, V)``, ``y ~ P(y | g(z0))``). The last equation is the Gaussian prior's denoiser;
``g_out = grad_omega log Z_out``, ``Z_out(y, omega, V) = E_{z ~ N(omega, V)} P(y | z)``. For ``k = 1``
this is :class:`~hdtheory.BayesGLM` with the Gaussian prior (``rho = 1``): ``q = M``,
``qhat = Mhat``. The normalisations are the papers' (``alpha = n / d``).

**The trivial fixed point and weak recovery** (Troiani et al.'s trivial subspace, and the linear
stability of ``M = 0`` that defines their easy directions and ``alpha_c``). At ``M = 0`` (``omega = 0``, ``V = I``), ``g_out = E[z | y]``, so that
``Mhat(0) = alpha T`` with ``T = E_y E[z | y] E[z | y]^T``: the directions in the range of ``T``
(where ``E[z | y]`` is not identically zero) are learned at any ``alpha > 0`` (the trivial subspace),
reported as the eigenvalues ``trivial_1 >= ... >= trivial_k`` of ``T``. Where ``T = 0``, ``M = 0`` is a
fixed point, and expanding to first order in ``M``,

.. math:: \hat M \approx \alpha\, \mathbb{E}_y\, G(y) M G(y), \qquad
          G(y) = \mathbb{E}[z z^T - I \mid y],

so that ``M = 0`` is stable for ``alpha < alpha_c = 1 / lambda_max`` and unstable above,
``lambda_max`` the largest eigenvalue of the linear map ``M -> E_y G M G`` on symmetric matrices
(self-adjoint in the Frobenius product; computed on the orthonormal basis of the upper triangle).
``alpha_c`` is ``inf`` where ``G = 0`` (parities, ``sign(z1 z2 z3)``). Where ``T != 0`` the
iteration leaves ``M = 0`` at once and ``alpha_c`` describes only the linearisation about it.
``alpha_c`` is an observable of every solve, computed from these averages at ``M = 0`` (it does not
depend on the state) and differentiable in ``noise`` by automatic differentiation through them
(``tests/test_multi_index_alpha_c.py``: against the map's own slope about ``M = 0``, against
:class:`~hdtheory.Spectral`'s optimal threshold at ``k = 1``, and its derivative against finite
differences). :func:`~hdtheory.threshold` with ``kind="weak-recovery"`` locates where the
spectral radius ``alpha lambda_max`` of this linearisation crosses one along any parameter, through
:meth:`MultiIndex.linear_stability` (no solve: Newton's method cannot hold the trivial point, landing
within about 1e-11 of ``M = 0`` where the map's ``M^{1/2}`` has no usable derivative), differentiable
in the other parameters, with the direction learned first (the eigenvector of ``lambda_max``)
(``tests/test_multi_index_threshold.py``: closed forms for ``sign(z1 z2)`` along ``alpha`` and the
flips, the ``z1 z2`` closed form, ``alpha_c``, finite differences, and the iterated map).
At large noise (``k = 1``) ``alpha_c`` grows as ``noise^beta*``, ``beta*`` the link's noise sensitivity
exponent (:meth:`MultiIndex.large_noise_alpha_c`; ``tests/test_noise_sensitivity.py``).
For ``sign-product`` at ``noise = 0``, the edge of its range, the derivative
in ``noise`` is the one-sided one (the flip's likelihoods multiply the posterior's masses linearly).

**Subspaces and per-direction thresholds** (:meth:`MultiIndex.subspaces`, a :class:`Subspaces`; the
three notions are Troiani et al.'s, read from their abstract; the formulas below are derived here).
At ``M = 0``: the **trivial** subspace is the range of ``T`` (its orthonormal basis, with ``T``'s
eigenvalues). The operator ``L(D) = E_y G D G`` on symmetric matrices has eigenvalues ``mu_m`` and
eigen-directions ``B_m`` (symmetric ``k x k``), each with the threshold ``alpha_m = 1 / mu_m``
(``inf`` for ``mu_m <= 0``: ``L`` maps positive semi-definite matrices to positive semi-definite
ones, so its largest eigenvalue is its spectral radius and ``thresholds[0]`` is ``alpha_c``; the
others may be negative, as for ``sign(z1 z2)``, whose ``Z = diag(1, -1)`` has ``-4 / pi^2``). Where
``T = 0`` the linearised map ``D -> alpha L(D)`` grows along ``B_m`` exactly where ``alpha > alpha_m``.
The first-order **easy** subspace is the span of the ranges of the ``B_m`` with finite thresholds
and the **hard** one its complement; both are read off ``E_y G^2 = L(I)``: the hard subspace is
``H = {v : G(y) v = 0 for almost every y}``, the kernel of ``E G^2`` (``v^T E G^2 v = E |G v|^2``),
and the easy one its range. Proof that the span ``E`` of the ranges equals ``H^perp``: for
``mu_m > 0`` and ``v`` in ``H``, ``mu_m B_m v = E G B_m G v = 0``, so ``E`` is orthogonal to ``H``;
conversely for ``v`` orthogonal to ``E``, ``v v^T`` has no component on the ``B_m`` with
``mu_m > 0`` (``<v v^T, B_m> = v^T B_m v = 0``), so
``0 <= E (v^T G v)^2 = <v v^T, L(v v^T)> = sum_m c_m^2 mu_m <= 0``: ``v v^T`` lies in the kernel of
``L``, ``E (G v)(G v)^T = L(v v^T) = 0``, and ``v`` is in ``H``. Ranks are counted above 1e-7 (the
quadrature's zero). Examples (``tests/test_multi_index_subspaces.py``): ``sign(z1 z2)``: no trivial
direction, ``I`` and ``[[0, 1], [1, 0]]`` at ``pi^2 / (4 (1 - 2p)^2)``, both fields easy; a parity:
every field hard; the sum ``z1 + z2``: ``(1, 1)`` trivial, ``z1 - z2`` hard (the label is a function
of one direction); ``z1 + z2^2``: ``z1`` trivial, ``z2`` easy. Where ``T != 0``, ``M = 0`` is no fixed
point, and the rates of the directions meeting the range of ``T`` describe no linearisation of the map
(it has terms in ``E[z | y]`` there); the grand staircase below is then the answer.

**The grand staircase** (:meth:`MultiIndex.grand_staircase`, a :class:`GrandStaircase`; Troiani et
al.'s part (iii), directions learned in sequence when coupled to easier ones; the conditional
linearisation is derived here). Stage ``t`` holds ``M`` on the fields ``U_t`` already learned
(``U_0 = {}``): ``M <- P update(M) P``, ``P`` the projector onto ``U_t``, to its fixed point ``M_t``
(``M_0 = 0``). With ``M = M_t`` (``omega = M_t^{1/2} xi`` in ``U_t``, ``V = I - M_t``), the fields
``Q z`` (``Q = I - P``) have the prior ``N(0, Q)``, independent of ``P z``, and

.. math::
    T_t = \mathbb{E}_{\omega, y}\, Q\,\mathbb{E}[z \mid y, \omega, V]\, \mathbb{E}[z \mid y, \omega, V]^T Q,
    \qquad G_t(y, \omega) = Q\, \mathbb{E}[z z^T \mid y, \omega, V]\, Q - Q,
    \qquad L_t(D) = \mathbb{E}_{\omega, y}\, G_t D G_t .

``M_t`` is a fixed point of the full map exactly where ``T_t = 0`` (the map's blocks off ``U_t`` are
``alpha E g_out g_out^T`` with ``Q g_out = Q E[z | y, omega, V]``); otherwise the range of ``T_t``
(a conditional trivial subspace) joins at once. Where ``T_t = 0``, perturbing ``M`` by ``D`` on ``Q``
(``omega_Q ~ N(0, D)``, ``V_Q = Q - D``) gives ``Q g_out = G_t omega_Q + O(|D|)`` (the posterior mean's
derivative in its prior mean is the posterior covariance), ``Q Mhat Q = alpha L_t(D) + O(|D|^{3/2})``
(the labels' law moves with ``omega_Q`` at second order only, ``E[z_Q | y] = 0``), the cross block
``P Mhat Q = O(|D|)`` feeding back at higher order, and ``Q M' Q = Q Mhat Q + O(|D|^2)``: the
conditional linearisation is ``D -> alpha L_t(D)``, at ``M = 0`` the operator above. Where ``T_t = 0``
the fields of the conditional directions with ``alpha mu_m > 1`` join: ``U_{t+1}`` is ``U_t`` plus the
range of ``T_t + sum_{alpha mu_m > 1} B_m^2``. The stages stop changing once nothing joins
(``k + 1`` are computed); ``learned`` is the last ``U``, ``overlap`` its held fixed point, and
``radius`` ``alpha mu_max`` of each stage. ``L_t`` depends on ``alpha`` through ``M_t``: a stage's
``thresholds`` are ``1 / mu_m`` at this ``alpha``'s ``M_t``, not the ``alpha`` at which the stage is
crossed. That is ``alpha mu_max(alpha) = 1`` with ``M_t(alpha)`` moving with ``alpha``, located by
:func:`~hdtheory.threshold` ``(theory, "alpha", "weak-recovery", bracket)`` of the theory with
``held = P`` (the stage's projector, ``projectors[t]``, fixed over the bracket): its
:meth:`MultiIndex.linear_stability` is then ``alpha mu_max`` of the conditional linearisation at the
held fixed point (``inf`` where the conditional ``T`` is not zero, NaN where the held iteration does
not converge), ``state`` ``M_t`` and ``direction`` the conditional top direction. The held fixed point
is differentiated implicitly (one Newton step of ``M = P update(M) P`` with the gradient on, its
Jacobian held: ``(I - J)^{-1} d(P update P) / d theta``), so that the located ``alpha`` is
differentiable in ``noise``. For ``z1 + z2^2`` (noise 3), ``z1`` joins at
stage 0 and ``z2``'s rate grows from 0.948 at ``M = 0`` to 0.979 at ``m_1 = 0.237``
(``alpha = 1.6``): stage 1 is crossed at ``alpha = 1.0317`` (``m_1 = 0.164``), not at the rate at
``M = 0``'s 1.055 (``tests/test_multi_index_stage_threshold.py``: the full map's own slope along
``E_22`` about the located state is one to 1e-3, the full map iterated from the uninformed start
leaves ``M_22`` decaying at ``0.9 alpha*`` and growing at ``1.1 alpha*``, and the derivative in
``noise``, 0.1428, against central differences of located values, 9e-6 apart). The conditional
quantities at ``M_22 = 0`` are exact on the Hermite rule of 3 nodes per axis in ``xi`` (the radius at
``alpha*`` is the same at 3, 6 and 10 nodes to 2e-10), a fixed point with ``M_22 > 0`` is not: the map
converges slowly in ``xi`` there (``m_2`` at ``alpha = 2.5`` is 0.32 at 3 nodes, 0.40 at 20), so that
``overlap`` needs a finer rule than the stages' radii (``tests/test_multi_index_stage_gamp.py``:
GAMP at ``d = 2000`` against the state evolution on 20 nodes); each stage's ``quadrature_error``
and ``accurate`` say whether its ``M_t`` is within ``quadrature_tol`` on the rule used. Tested at fixed
``alpha``: ``L_t`` against the map's own slope about ``M_t`` (5e-4), the learned overlaps against
the full map iterated from the uninformed start (1e-6), ``z2`` learned at ``alpha = 1.6`` and not at
``0.7``; for ``sign(z1 z2)`` nothing below ``alpha_c`` and both fields above.

**Free entropy** (replica symmetric, Bayes-optimal, Gaussian prior: the committee machine's of Aubin et
al. with ``k x k`` overlaps; the form below is written here, its ``k = 1`` case is
:class:`~hdtheory.BayesGLM`'s ``f_RS`` with ``rho = 1``, checked to 1e-10):

.. math::
    \Phi(M, \hat M) = -\tfrac12 \operatorname{tr}(M \hat M) + \psi_w(\hat M) + \alpha\, \psi_{out}(M),
    \qquad \psi_w(\hat M) = \tfrac12 \operatorname{tr} \hat M - \tfrac12 \log\det(I + \hat M),
    \qquad \psi_{out}(M) = \mathbb{E}_\xi \int dy\, Z_{out}(y, \omega, V) \log Z_{out}(y, \omega, V),

``psi_w`` the Gaussian prior's ``E log Z_0`` (``Z_0(B, A) = det(I + A)^{-1/2} exp(B^T (I + A)^{-1} B / 2)``
at ``A = Mhat``, ``B = Mhat w* + Mhat^{1/2} z``). Its stationary points are the state evolution's fixed
points: ``d Phi / d Mhat = 0`` is ``M = I - (I + Mhat)^{-1}`` and ``d Phi / d M = 0`` is
``Mhat = 2 alpha d psi_out / dM = alpha E g_out g_out^T``. :meth:`MultiIndex.potential` is ``Phi``,
:meth:`MultiIndex.free_entropy` ``Phi(M, Mhat(M))`` (``Mhat`` from :meth:`MultiIndex.conjugate`) and
:meth:`MultiIndex.output_entropy` ``psi_out``, on the map's own rules in ``xi``, the label and the
posterior (the label's weights ``w_y Z_out`` times ``log Z_out``: no second integration). At a fixed point
``d Phi / d alpha = psi_out(M*)`` (the potential is stationary), and of two fixed points the one of larger
``Phi`` is the Bayes-optimal one: :func:`~hdtheory.threshold` ``kind="information-theoretic"`` locates where
the informed branch's ``Phi`` crosses the uninformed one's (``M = 0`` where ``T = 0``). Extremised in
``Mhat``, ``Phi`` is ``alpha psi_out(M) + tr M / 2 + log det(I - M) / 2``. The mutual information per
variable (:meth:`MultiIndex.mutual_information`) is ``I(W*; y | X) / d = -Phi - alpha H(y | z)``, with the
noise's entropy ``H(y | z) = log(2 pi e noise) / 2`` (continuous links) or the flips' binary entropy
(``sign-product``); at ``M = 0`` it is ``alpha I(y; z)``. Tested (``tests/test_multi_index_free_entropy.py``):
``k = 1`` against :class:`~hdtheory.BayesGLM` (linear, sign) and the linear channel's closed form; ``k = 2``
with a link of ``z1`` alone against ``k = 1`` at any ``M_22``; the gradient of ``Phi`` in ``M`` and ``Mhat``
at fixed points (``k = 1``, and ``k = 2`` with off-diagonal overlaps; ``d Phi / dM = 0`` wherever
``Mhat = Mhat(M)``, the map's ``g_out g_out^T`` against the derivative of ``psi_out`` on the same rules),
``d Phi / d alpha`` against central differences; the mutual information of the linear channel against
``log det(I + X^T X / (d noise)) / (2 d)`` of sampled inputs.

**The large-noise information-theoretic threshold** (``k = 1``, a continuous link ``g = sum_b a_b
He_b / sqrt(b!)``; derived here, the scaling being Defilippis et al.'s claim). At large ``noise = Delta``
``psi_out(m) - psi_out(0) = I(y; omega) ~ Var(E[g | omega]) / (2 Delta) = sum_b a_b^2 m^b / (2 Delta)``
(``E[He_b(z) | omega] = m^{b/2} He_b(xi)``), so that ``Phi(m) - Phi(0) ~ alpha sum_b a_b^2 m^b / (2 Delta)
+ m / 2 + log(1 - m) / 2`` and ``alpha_IT ~ Delta min_m (-m - log(1 - m)) / sum_b a_b^2 m^b``: ``Theta(Delta)``
for every non-constant link, while ``alpha_c ~ Delta^beta*``. For ``He_4 / sqrt(24)`` (``beta* = 2``) the minimum is
1.97591 at ``m = 0.8045`` (a first-order transition, the informed branch appearing at ``27 Delta / 16``);
located: ``alpha_IT / Delta = 1.97150`` at ``Delta = 1e4`` and 1.97546 at ``1e5`` (``m`` 0.8029, 0.8044),
against ``alpha_c`` 3.03e6 and 3.12e8, its derivative in ``noise`` 1.975906 (central differences of located
values: 1.975906). For ``z^2 - 1 = He_2`` (``a_2 = sqrt(2)`` alone, ``beta* = 1``) the ratio grows with ``m``,
its infimum ``Delta / 4`` at ``m -> 0``, ``alpha_c``'s asymptote: a continuous transition (tested at
``Delta = 100``: ``Phi(m) < Phi(0)`` on a grid at ``0.97 alpha_c``, not at ``1.03 alpha_c``). At ``k = 2``,
``He_4(z1) / sqrt(24)``'s located threshold is ``k = 1``'s on the same rules (5e-9 apart).

**Links** (``link``; ``k`` is the number of fields):

- ``sum``: ``z1 + ... + zk``, any ``k`` (``k = 1``: the linear channel of ``bayes-glm``);
- ``product``: ``z1 z2 ... zk``, ``k >= 2`` (``z1 z2`` at ``k = 2``);
- ``staircase``: ``z1 + z1 z2 + ... + z1 z2 ... zk``, any ``k`` (``z1 + z1 z2`` at ``k = 2``);
- ``abs-difference``: ``|z1| - |z2|``, ``k = 2``;
- ``gate``: ``z2 sign(|z1| - 1)``, ``k = 2``: ``z2`` trivial, ``z1`` hard at ``M = 0`` (the label's law
  given ``z1`` is ``N(0, 1 + noise)`` whatever ``z1``) and learned once ``z2`` is (the label's sign
  against ``z2`` reveals the gate): the grand staircase's stage 1, crossed at ``alpha = 2.944`` at
  ``noise = 0.5`` (located on the Hermite rule of 8 nodes per axis in ``xi``; ``tests/test_multi_index_gate.py``:
  ``T``, the rates and the hard field against closed forms, the stage's radius on either side, the
  map past the stage against the Hermite rule of 48 nodes; GAMP at ``d = 2000`` against the state
  evolution on either side of the stage, ``tests/test_multi_index_gate_gamp.py``);
- ``sign-product``: ``sign(z1 z2 ... zk)``, any ``k`` (``k = 1``: the sign channel; ``k = 2``:
  ``sign(z1 z2)``; ``k >= 3``: a parity), with label flips of probability ``noise``;
- ``custom``: the Python function ``link_fn`` of the fields (an array ``(..., k)`` to ``(...)``),
  continuous, with Gaussian noise; checked when the model is built, on ``k + 1`` points (it must trace
  with JAX, read no field past the ``k``-th, which ``jnp`` indexing would clamp to the last, and return
  one finite value per point).

The continuous links need ``noise > 0`` (the noiseless posterior lives on a level set of ``g``).

**Numerics.** At ``k = 2`` for the links with kink, singular or jump lines ``z_i = c`` (``z1 z2``,
``|z1| - |z2|`` and ``sign(z1 z2)`` at ``c = 0``, the staircase ``z1 (1 + z2)`` at ``z1 = 0`` and
``z2 = -1``, the gate at ``z1 = +-1`` and ``z2 = 0``),
``E_xi`` is on Gauss-Legendre panels cut where ``omega = M^{1/2} xi`` crosses them, axis by axis
(:func:`~hdtheory.kernels.zero_cut_rule`: at ``omega_i = c``, ``+-{1, 3} sqrt(V_ii)`` about it and
``xi_i = +-{1, 2, 4}``; ``panel_order`` nodes per panel, by default 3: 1296 nodes; for the gate 4:
3264 nodes); for ``sum``
(smooth), a ``custom`` link, ``k != 2``, or on request (``panel_order = 0``), on a product
Gauss-Hermite rule (``order`` nodes per axis). Near perfect recovery ``g_out g_out^T`` changes over
``sqrt(V_ii)`` across those lines (``sign(z1 z2)``: it lives on strips of that width; ``z1 z2``: the
posterior changes shape where a field's sign is uncertain), and the Hermite rule converges only
algebraically there. **``panel_order = 0`` is accurate at small overlaps only**: with 8 nodes per
axis ``Mhat`` (its largest entry, ``noise = 0.01``, against the polar rule below) is 4e-4 off at
``M = [[0.3, 0.05], [0.05, 0.2]]``, but 1.3% at ``diag(0.6, 0.5)`` and 3.4 to 3.6% from
``[[0.9, 0.05], [0.05, 0.8]]`` to ``diag(0.99, 0.98)`` for ``z1 z2`` (24 nodes per axis: 1.1e-3 to
1.3e-3); at ``diag(0.9, 0.8)`` 1.3 to 2.4% for the staircase, 15% for ``|z1| - |z2|`` and 57 to
100% for ``sign(z1 z2)``; a solve on it reports such a point ``INACCURATE``, not converged (the error
estimate below): use it where the overlaps stay below about 0.3, or for a quick look. It is several
times cheaper: the panels cost 17 (``z1 z2``) to 25 (``|z1| - |z2|``) times the Hermite rule of 8
nodes per axis per map (1296 nodes to 64, both folded as below but for the staircase; 30 to 46 ms
against 2 ms for ``sign(z1 z2)``), 9 times per map with its Jacobian and 18 per
solve near perfect recovery (``z1 z2``, ``alpha = 100``; ``benchmarks/RESULTS.md``);
no rule tried below 1000 nodes (fewer or lower-order panels, polar rules about the lines' crossing)
was within 1e-3 for all three continuous links. The panels' own error (the same reference) is 4.4e-4
(``z1 z2``), 1.3e-4 (staircase) and 6.5e-4 (``|z1| - |z2|``) at ``[[0.3, 0.05], [0.05, 0.2]]``, and
6e-5 to 6.3e-4 at ``[[0.9, 0.05], [0.05, 0.8]]`` and ``diag(0.99, 0.98)``.

**The gate's panels** (measured here). ``Z_out`` of the gate jumps with ``z1`` at ``|z1| = 1``, so that
the map's integrand changes over ``sqrt(V_11)`` about ``omega_1 = +-1``; given the gate, the label's
sign against ``omega_2`` reveals it, over ``sqrt(V_22 + noise)`` about ``omega_2 = 0`` (no line of the
link, but cut there: without it the panels of 3 nodes put ``Mhat_11`` 1.5% low). At ``alpha = 4.5``,
``noise = 0.5``, ``M = diag(0.64, 0.81)`` (past the stage) ``Mhat_11`` is 1.78394, 1.78753 and 1.78702
on panels of 3, 4 and 5 nodes, against 1.93386, 1.79189, 1.78814 and 1.78737 on the Hermite rule of 8,
32, 48 and 64 nodes per axis (converging algebraically): 4 nodes per panel, the gate's default, are
within 3.4e-4 of 48 (tested, 1e-3) and 3 within 1.7e-3. The map's fixed point from ``diag(0.64, 0.81)``:
``m_1`` 0.6461 on the default panels and 0.6457 on panels of 5 without the cut at ``omega_2 = 0``
(0.70 on the Hermite rule of 8, flagged ``INACCURATE``).

**The map's label and posterior rules at k = 2.** For the continuous links with lines the map's
error is its rule in ``xi``'s (the panels: up to 6.5e-4 against the polar rule), so that its label
and posterior rules need not be finer than about 1e-4: unless ``label_order`` or ``inner_order`` is
given, the map uses 4 label nodes per panel and 3 posterior nodes per panel, half the cost of the
6 and 4 used elsewhere (the weak-recovery threshold and the simulation's posterior, which have no
rule in ``xi``). ``Mhat`` on the panels moves by at most 1.1e-4 (``z1 z2`` and the staircase) and
9.7e-5 (``|z1| - |z2|``) against 8 and 6 nodes, at ``noise = 0.01`` and the three ``M`` tested
(6 and 4: within 8e-6); 2 posterior nodes would be 1.1e-3 to 1.7e-3 off, 3 label nodes 1.8e-4.

**The Hermite rule's error estimate.** Wherever ``xi`` is on the product Hermite rule
(``panel_order = 0``, ``sum``, ``custom``, ``k != 2``) the observable ``quadrature_error`` is
``max |Mhat_n - Mhat_{n-1}| / max |Mhat_n|`` at the fixed point, ``n = order`` nodes per axis (for
``custom`` the larger of that and its posterior rule's estimate, below): of the
two rules one is odd, with nodes on the lines ``xi_i = 0``, and the other not, so that they differ
by about what the features of width ``sqrt(V_ii)`` about the lines contribute, the part the rules
resolve badly (two even orders can agree and both be off: 8, 10 and 12 nodes are 9% off for
``|z1| - |z2|`` at ``diag(0.99, 0.98)``). Where it exceeds ``quadrature_tol`` (default 5e-3),
:func:`~hdtheory.solve` reports the fixed point ``Status.INACCURATE``, not converged
(:meth:`MultiIndex.accurate`); it costs one more evaluation of the map, at the fixed point only.
Measured against the panels (``z1 z2``, the staircase and ``|z1| - |z2|``, ``noise`` 0.1 and 0.01,
orders 4 and 8, ``M = diag(m, 0.999 m)`` for ``m`` from 0.09 to 0.9999, and the three ``M`` tested),
the estimate was 0.6 to 20 times the error of ``Mhat`` where that error was above 1e-3 (below, the
panels' own error blurs it): every point estimated below 5e-3 was within 4.5e-3, every point off by
more than 5e-3 was flagged. For ``sign(z1 z2)`` (flips 0.05) the estimate is 1.1 at ``diag(0.9, 0.8)``
(the error 0.57) and 1.2e-4 at ``[[0.3, 0.05], [0.05, 0.2]]`` (the error 5.1e-4). ``tests/test_multi_index.py`` checks the flag against the polar rule
below.

**Folding.** Where ``g(-z) = +-g(z)`` (``sum``, ``product``, ``abs-difference``,
``sign-product``: the link's field ``even``) the labels' law at ``-omega`` is that at ``omega``,
mirrored if ``g`` is odd, so ``g_out g_out^T`` averaged over it is even in ``omega``; the Hermite
rule and the panels whose lines pass through ``omega = 0`` are symmetric (node ``N - 1 - n`` is
minus node ``n``), and the map sums over half their nodes with their mirrors' weights (the same
``Mhat`` to 1e-15 at half the cost). Given
``omega``, the label is one-dimensional: ``E_y [.] = int dy Z_out(y, omega, V) [.]`` on
Gauss-Legendre panels (``label_order`` nodes each; by default 8 for ``k = 1``, where the ``xi`` rule
is exact enough to show the label's error, and 6 beyond: ``Mhat`` of ``z1 z2`` at ``noise = 0.01``
within 3e-6 relative of 16 per panel with ``order = 16`` and ``inner_order = 8``, as at 8 per panel,
and within 2e-5 at 4; in the map at ``k = 2`` for the continuous links with lines, 4, see below) over
its range, cut at ``0`` and
``+-{1, 4, 16} sqrt(noise)`` where the density of a product of fields has its (noise-smoothed)
logarithmic peak (a Hermite rule over the teacher's fields converges slowly there: 8% off the
``z1 z2`` threshold at 8 nodes per axis); ``y = +-1`` for ``sign-product``. The posterior of ``z``
given a label (:mod:`hdtheory.kernels.multivariate`): for the named links, piecewise linear in
``z_k`` given the other fields, ``z_k`` exactly and the others on Gauss-Legendre panels cut where a
field crosses zero, for ``abs-difference`` where ``|z1| = y`` and for ``gate`` where ``|z1| = 1``
(:func:`~hdtheory.kernels.piecewise_linear_tilted_moments`,
:func:`~hdtheory.kernels.sign_tilted_moments`; ``inner_order`` nodes per panel: for ``z1 z2`` at
``noise = 0.1``, ``log Z_out`` within 6e-7 at the default 4 and 3e-8 at 6; in the map at ``k = 2`` for
the continuous links with lines, 3, see below); for ``custom``, by default a product Gauss-Hermite rule (below),
and with ``posterior_rule="preimages"`` at ``k = 1`` Gauss-Legendre panels placed
where the likelihood changes (:mod:`~hdtheory.kernels.preimages`: the prior's scales, the link's critical
points, and 31 points equidistributed in the label's residual ``(g(z) - y) / sqrt(noise)`` over every
monotone piece of ``g``, each the preimage of its level; ``inner_order`` nodes per panel, default 8), within
1e-8 of SciPy's ``quad`` for ``He_4 / sqrt(24)``, ``z^2 - 1``, ``z^3 - 2 z`` and ``tanh`` at noises 0.1 to 1,
``alpha_c`` of ``He_4 / sqrt(24)`` at ``noise = 1`` within 2e-8 and of ``z^2 - 1`` at 0.5 within 1e-9 of dense
rules (``tests/test_multi_index_preimages.py``); its label rule reaches to 1000 standard deviations, clipped to
the link's image of the prior's window widened by 12 ``sqrt(noise)`` (``He_4`` of a field: a label beyond 40
standard deviations has probability 4e-5 and ``G(y)^2`` about 250 there, 0.6% of ``1 / alpha_c`` at
``noise = 1``). It is costly: 344 posterior nodes for the former 24, and 328 label nodes for 200, besides
the grid on which the panels are placed; ``Mhat`` of ``He_4`` took 0.3 s against 6 ms on a shared 2-core CPU
(before the label rule's extension), a repeated ``k = 1`` solve 7 to 12 s against 0.1 s: hence an option, not the
default. For ``custom`` by default (and at ``k >= 2``), a product Gauss-Hermite rule of
``inner_order`` nodes per axis (:func:`~hdtheory.kernels.gaussian_tilted_moments`, default 24), accurate only
where the likelihood varies on scales larger than the nodes' spacing in ``z``, ``sqrt(noise) / |g'(z)|``: it
is not at small noise or for steep links (``He_4 / sqrt(24)``'s ``alpha_c`` 18% off at ``noise = 1``, 4.5% at
100; ``z^2 - 1``'s 1.2% at ``noise = 0.5``). Either rule's error is
estimated on every solve, as part of ``quadrature_error`` (below): ``Mhat`` at the fixed point and
``1 / alpha_c`` against the rule of twice the order (on the Hermite rule, over ``noise`` from 0.1 to 1e4 for
both links above, the estimate of ``alpha_c``'s error was within a factor two of it wherever it was above 1e-3,
but for ``He_4`` at 10, 0.19 against 9.5e-3, flagged either way; on the panels, 2 nodes per panel: the
estimate 1.9e-3 against an error of ``Mhat`` of 1.3e-3 for ``He_4`` at ``noise = 1``, ``M = 0.5``), so that a
solve where it exceeds ``quadrature_tol`` ends ``INACCURATE``; ``inner_order`` refines it.
:meth:`MultiIndex.weak_recovery` and :meth:`MultiIndex.subspaces` called alone carry no estimate. Verified accuracy (``tests/test_multi_index.py``): ``k = 1`` equals
:class:`~hdtheory.BayesGLM` to 1e-9; ``Mhat`` of ``z1 z2`` on the Hermite rule
(``panel_order = 0``) and the default label and posterior rules within 5e-4 of doubled orders at
small ``M`` (the ``xi`` rule dominates; it degrades as ``M -> I``, where the label's dependence on
``omega`` sharpens, and as the noise decreases, and it converges only algebraically there, the integrand not being smooth in ``xi``); the default panels, the largest
entry of ``Mhat`` relative to a polar Gauss-Legendre rule about the lines' crossing (``noise = 0.01``):
for the continuous links within 1e-3 at ``M`` in {``[[0.3, 0.05], [0.05, 0.2]]``,
``diag(0.9, 0.8)``, ``diag(0.99, 0.98)``} (measured above; tested, and the derivative of
``z1 z2``'s, within 3e-4: the label rule's edges are held fixed in it), the Hermite rule's error
estimate against the same reference (tested: flagged exactly where the error exceeds 5e-3), for ``sign(z1 z2)`` (flips 0.05) within 4e-4 to 5e-4 at ``diag(0.9, 0.8)``,
``diag(0.99, 0.97)`` and ``[[0.9, 0.05], [0.05, 0.8]]`` (tested, and its derivative), where the
Hermite rule is off by 57 to 100%; for ``z1 z2`` at
``diag(0.9, 0.8)`` the Hermite rule is off by 1.1e-2 at 12 nodes per axis, 3.8e-3 at 16, 9e-4 at 24
(``noise = 0.01``; 1.7e-2 at 8 and 8e-4 at 16 at ``noise = 0.1``); the
closed-form thresholds to 2e-6 (``sign(z1 z2)``) and, at ``noise = 1e-4``, within 2e-4 of the
noiseless ones (``z1 z2``, ``|z1| - |z2|``). On a 2-core CPU shared with other jobs a ``k = 2`` solve
of a continuous link compiles and runs in minutes on the default panels (``z1 z2`` at ``alpha = 100``:
4.5 minutes with the former label and posterior rules of the map, 2.4 minutes with the current ones
under another load, a repeated solve 41 s), in about half a minute on the Hermite rule; ``k = 3`` defaults to 4 nodes per axis
for ``xi``.

**Coordinates.** The state is ``M``; the solver works on the Cholesky factor of ``V = I - M`` with a
log diagonal, so that every step keeps ``M`` symmetric and ``V`` positive definite.
``init("uninformed")`` is ``1e-6 I`` (``1e-3 I`` in float32), as for :class:`~hdtheory.BayesGLM`.

**Observables.** ``m_i = M_ii`` and ``M_i_j`` (``i < j``), 1-based: the overlap of the estimate with
direction ``i`` of the teacher (the directions are the link's fields, so ``m_1 > 0 = m_2`` reads
"the first direction is learned, the second not"); ``mmse_i = 1 - M_ii``, the minimum mean squared
error per entry of row ``i`` of ``W*``, and ``mmse = tr(I - M) / k``; ``gen_error`` and
``gen_error_total``: for ``sign-product`` the Bayes error ``E min_y P(y | omega, V)`` against the
noiseless and the noisy label, for the continuous links the Bayes mean squared error
``E Var(g(z) | omega, V)`` without and with ``noise`` (no 1/2); ``gibbs_error`` and
``gibbs_error_total``, the same errors of a posterior sample (below); ``alpha_c`` and ``trivial_i``
(above; they do not depend on the state; :meth:`MultiIndex.subspaces` gives the bases and every
direction's threshold); on the Hermite rule in ``xi``, ``quadrature_error`` (above). The free entropy and
the mutual information are methods (above), not observables: each costs another pass of the map's rules.

**Gibbs error** (derived here; :class:`~hdtheory.BayesGLM`'s at ``k = 1``). A sample ``W_s`` from the
posterior predicts with its own fields ``z_s = W_s x / sqrt(d)``: ``g(z_s)``, or ``sign g(z_s)``. By the
Nishimori identity ``(W_s, W*)`` is distributed like two independent posterior samples, so that
``W_s W*^T / d -> M`` (the overlap of two samples, ``W_hat W_hat^T / d``, symmetric) and
``W_s W_s^T / d -> I`` (that of the teacher, whose columns are ``N(0, I_k)``): on a fresh input
``(z, z_s)`` is jointly Gaussian with covariance ``[[I, M], [M, I]]``. Given the data and ``x`` the two
are independent draws of ``N(omega, V)`` (``omega = M^{1/2} xi``, ``V = I - M``), which has that
covariance and is how the errors are computed, on the rules of ``gen_error``: for the continuous links
``E (g(z) - g(z_s))^2 = 2 E Var(g(z) | omega, V)``, twice the Bayes error (plus ``noise`` for the
total); for ``sign-product`` ``P(sign g(z) != sign g(z_s)) = E 2 p (1 - p)``,
``p = P(g(z) > 0 | omega, V)``, against the noisy label ``noise + (1 - 2 noise)`` times it. As
``min(p, 1 - p) <= 2 p (1 - p) <= 2 min(p, 1 - p)``, the Gibbs error lies between the Bayes error and
twice it, with and without the noise (``tests/test_multi_index_gibbs.py``: ``k = 1`` against
``bayes-glm``; ``sign(z1 z2)`` against orthant probabilities of ``(z, z_s)``; ``z1 z2`` against
``2 (1 - M_11 M_22 - M_12^2)``, Isserlis' theorem; derivatives against finite differences).
"""

import math
from collections.abc import Callable
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .._theory import NONNEGATIVE, POSITIVE, FixedPointTheory, Interval, ParameterError, check_function, check_in, check_integer, choice, integer, is_concrete, parameter
from ..kernels.channels import noise_sensitivity_exponent
from ..kernels.multivariate import (
    gaussian_tilted_moments,
    piecewise_linear_tilted_moments,
    product_rule,
    psd_cholesky,
    sign_tilted_moments,
    small_inv,
    small_solve,
    zero_cut_rule,
)
from ..kernels.preimages import preimage_tilted_moments
from ..kernels.quadrature import legendre_panels
from ._overlap import UNINFORMED
from ._scores import cholesky_coordinates, from_cholesky_coordinates


def _ones(z):
    return jnp.ones(z.shape[:-1], z.dtype)


def _prod(z):
    return jnp.prod(z, -1) if z.shape[-1] else _ones(z)


def _gate(z1):
    return jnp.where(jnp.abs(z1) > 1, 1.0, -1.0).astype(jnp.result_type(z1, float))


def _staircase(z):
    return jnp.sum(jnp.cumprod(z, -1), -1)


class Link(NamedTuple):
    """A named link: ``fn`` of the ``k`` fields; ``split`` of the first ``k - 1`` to ``(a, b_pos, b_neg)``
    with ``g = a + b z_k`` (``b_pos`` for ``z_k > 0``); the values of ``k`` it is defined for
    (``None``: any) and ``min_k``; ``discrete`` for sign labels; ``points(y)``, where the posterior's
    mass moves between the half-lines of ``z_k`` (``a = y``, for unequal slopes); ``lines``, one tuple
    per field of the values ``c`` where the link has its kink, singular or jump lines ``z_i = c``
    (``None``: a smooth link, on the Hermite rule); ``panel_order``, the default nodes per panel of the
    rule in ``xi`` cut there; ``even``: ``g(-z) = +-g(z)``, so that the map's integrand in ``omega`` is even
    (the labels' law is even or mirrored, ``g_out`` changes sign) and a rule symmetric about ``omega = 0``
    needs it at half its nodes."""

    doc: str
    fn: Callable | None = None
    split: Callable | None = None
    ks: tuple[int, ...] | None = None
    min_k: int = 1
    discrete: bool = False
    points: Callable | None = None
    lines: tuple[tuple[float, ...], tuple[float, ...]] | None = None
    panel_order: int = 3
    even: bool = False


LINKS = {
    "sum": Link(
        "z1 + ... + zk",
        lambda z: jnp.sum(z, -1),
        lambda h: (jnp.sum(h, -1), _ones(h), _ones(h)),
        even=True,
    ),
    "product": Link(
        "z1 z2 ... zk (k >= 2)",
        _prod,
        lambda h: (jnp.zeros_like(h[..., 0]), _prod(h), _prod(h)),
        min_k=2,
        lines=((0.0,), (0.0,)),
        even=True,
    ),
    "staircase": Link(
        "z1 + z1 z2 + ... + z1 z2 ... zk",
        _staircase,
        lambda h: (_staircase(h), _prod(h), _prod(h)),
        lines=((0.0,), (-1.0,)),
    ),
    "abs-difference": Link(
        "|z1| - |z2| (k = 2)",
        lambda z: jnp.abs(z[..., 0]) - jnp.abs(z[..., 1]),
        lambda h: (jnp.abs(h[..., 0]), -_ones(h), _ones(h)),
        ks=(2,),
        points=lambda y: jnp.stack([y, -y]),
        lines=((0.0,), (0.0,)),
        even=True,
    ),
    "gate": Link(
        "z2 sign(|z1| - 1) (k = 2)",
        lambda z: z[..., 1] * _gate(z[..., 0]),
        lambda h: (jnp.zeros_like(h[..., 0]), _gate(h[..., 0]), _gate(h[..., 0])),
        ks=(2,),
        points=lambda y: jnp.asarray([1.0, -1.0], jnp.result_type(y, float)),
        lines=((-1.0, 1.0), (0.0,)),
        panel_order=4,
        even=True,
    ),
    "sign-product": Link(
        "sign(z1 z2 ... zk), labels flipped with probability noise", discrete=True, lines=((0.0,), (0.0,)), even=True
    ),
    "custom": Link("the Python function link_fn of the k fields, with Gaussian noise"),
}
"""The links by name (see the module docstring)."""

_FLIP = Interval(0.0, 0.5, high_open=True)
_SPREAD = (0.0, 0.5, 1.0, 2.0, 3.5, 6.0, 10.0, 16.0, 25.0, 40.0)
_TAIL = (64.0, 100.0, 160.0, 250.0, 400.0, 640.0, 1000.0)
"""The label rule's edges beyond ``_SPREAD`` for one field through a custom link (``He_4`` of a field: a
label beyond 40 standard deviations has probability 4e-5 and ``G(y)^2`` about 250 there)."""
_IMAGE = 12.0
_CUT_SCALES, _CUT_GAUSSIAN = (1.0, 3.0), (1.0, 2.0, 4.0)
"""The ``xi`` rule's edges about a line, in ``sqrt(V_ii)``, and the Gaussian's, in ``xi``."""
_BATCH = 256
_PREIMAGE_ORDER = 8
"""Gauss-Legendre nodes per panel of a ``custom`` link's posterior rule at ``k = 1`` (:mod:`~hdtheory.kernels.preimages`)."""
_ZERO = 1e-10
"""An eigenvalue of the linearisation or of ``T`` at most this is zero up to rounding."""
_RANK = 1e-7
"""In :class:`Subspaces`: an eigenvalue at most this is zero up to the quadrature's error (the posterior's
rule is not symmetric in the fields: ``T`` of the ``sum`` link's difference ``z1 - z2``, zero, comes out
at 3e-10, its rate at 2e-9)."""


def _fold(nodes, weights):
    """A rule symmetric about 0 (node ``N - 1 - n`` is minus node ``n``) for an even integrand: the first
    half of its nodes, each with its mirror's weight added (the middle node, if any, its own mirror)."""
    N = weights.shape[0]
    half = (N + 1) // 2
    mirrored = jnp.where(jnp.arange(half) == N - 1 - jnp.arange(half), 0.0, weights[::-1][:half])
    return nodes[:half], weights[:half] + mirrored


def _symmetric_basis(k: int, dtype) -> jax.Array:
    """The orthonormal basis ``(k (k + 1) / 2, k, k)`` of symmetric matrices (Frobenius product): ``E_ii``
    and ``(E_ij + E_ji) / sqrt(2)``, upper triangle row by row."""
    rows, cols = np.triu_indices(k)
    basis = np.zeros((rows.size, k, k))
    for n, (i, j) in enumerate(zip(rows, cols)):
        basis[n, i, j] = basis[n, j, i] = 1.0 if i == j else math.sqrt(0.5)
    return jnp.asarray(basis, dtype)


class Subspaces(eqx.Module):
    """The subspaces of :meth:`MultiIndex.subspaces` (at ``M = 0``) or of :meth:`MultiIndex.conditional`
    (of the fields not yet learned): bases are columns of ``k x k`` orthogonal matrices, sorted by
    decreasing eigenvalue, with a mask of the columns that span the subspace (see the module docstring)."""

    trivial_values: jax.Array
    """The eigenvalues of ``T = E_y E[z|y] E[z|y]^T``, descending (``trivial_i``)."""
    trivial_basis: jax.Array
    """Their eigenvectors (columns)."""
    trivial: jax.Array
    """The columns spanning the trivial subspace, the range of ``T`` (eigenvalues above 1e-7)."""
    rates: jax.Array
    """The eigenvalues ``mu_m`` of ``D -> E_y G D G`` on symmetric matrices, descending."""
    directions: jax.Array
    """Their eigen-directions ``(p, k, k)``: symmetric, of unit Frobenius norm, with a non-negative trace
    (any orthonormal basis of a degenerate eigenspace; not differentiated)."""
    thresholds: jax.Array
    """``alpha_m = 1 / mu_m`` (``inf`` for ``mu_m <= 1e-7``, the quadrature's zero): ``thresholds[0]`` is
    ``alpha_c`` where that is below ``1e7``."""
    easy_values: jax.Array
    """The eigenvalues of ``E_y G^2``, descending."""
    easy_basis: jax.Array
    """Their eigenvectors (columns)."""
    easy: jax.Array
    """The columns spanning the first-order easy subspace, the range of ``E_y G^2`` (eigenvalues above
    1e-7): the fields of the eigen-directions with finite thresholds; the others span the hard
    subspace, ``G(y) v = 0`` for almost every ``y``."""

    @property
    def hard(self) -> jax.Array:
        """The columns of ``easy_basis`` spanning the hard subspace."""
        return ~self.easy

    @classmethod
    def of(cls, operator, T, square, basis) -> "Subspaces":
        values, vectors = jnp.linalg.eigh(T)
        trivial_values, trivial_basis = values[::-1], jax.lax.stop_gradient(vectors[:, ::-1])
        rates, eigenvectors = jnp.linalg.eigh(operator)
        rates, eigenvectors = rates[::-1], jax.lax.stop_gradient(eigenvectors[:, ::-1])
        directions = jnp.einsum("pm,pab->mab", eigenvectors, basis)
        sign = jnp.where(jnp.trace(directions, axis1=1, axis2=2) < 0, -1.0, 1.0)
        directions = sign[:, None, None] * directions
        finite = rates > _RANK
        thresholds = jnp.where(finite, 1.0 / jnp.where(finite, rates, 1.0), jnp.inf)
        values, vectors = jnp.linalg.eigh(square)
        easy_values, easy_basis = values[::-1], jax.lax.stop_gradient(vectors[:, ::-1])
        return cls(
            trivial_values, trivial_basis, trivial_values > _RANK, rates, directions, thresholds,
            easy_values, easy_basis, easy_values > _RANK,
        )


class GrandStaircase(eqx.Module):
    """The grand staircase of :meth:`MultiIndex.grand_staircase` at the model's ``alpha``; the stage axis
    (``k + 1`` stages) leads (see the module docstring). Where a stage is crossed: :func:`~hdtheory.threshold`
    of the theory with ``held = projectors[t]``."""

    learned: jax.Array
    """The projector onto the fields learned at ``alpha`` (``U`` at the last stage)."""
    overlap: jax.Array
    """``M`` at the last stage: the fixed point held on the learned fields."""
    projectors: jax.Array
    """``(stages, k, k)``: the projector onto ``U_t``, the fields learned before stage ``t``."""
    overlaps: jax.Array
    """``(stages, k, k)``: the fixed point ``M_t`` of the state evolution held on ``U_t``."""
    converged: jax.Array
    """``(stages,)``: whether that held iteration reached ``max |dM| <= tol``."""
    residual: jax.Array
    """``(stages,)``: its last ``max |dM|``."""
    radius: jax.Array
    """``(stages,)``: ``alpha mu_max`` of the conditional linearisation at ``M_t``: the fields of its
    top direction join where it exceeds one (unless the conditional ``T`` moves them at once)."""
    quadrature_error: jax.Array
    """``(stages,)``: the estimated relative error of ``Mhat`` at ``M_t`` on the Hermite rule in ``xi``
    (:meth:`MultiIndex.quadrature_error`; 0 on the panels). The radii, at ``M_t``'s held fields, are
    accurate on coarse rules; ``M_t`` past a stage needs a finer one (``order``)."""
    accurate: jax.Array
    """``(stages,)``: ``quadrature_error <= quadrature_tol``, as a solve's ``INACCURATE`` status."""
    subspaces: Subspaces
    """The conditional subspaces of each stage (every field with a leading stage axis); their
    ``thresholds`` are ``1 / mu_m`` at ``M_t``, the ``alpha`` at which direction ``m`` would leave zero
    were the learned fields' overlap held at ``M_t``."""


class MultiIndex(FixedPointTheory):
    """Bayes-optimal multi-index model: ``k x k`` GAMP state evolution; see the module docstring."""

    alpha: jax.Array = parameter(1.0, POSITIVE, "sample ratio n/d")
    noise: jax.Array = parameter(
        0.1, NONNEGATIVE, "output noise: variance (continuous links, > 0) or flip probability (sign-product)"
    )
    link: str = choice("product", LINKS, "link g of the k fields")
    k: int = integer(2, Interval(1.0), "number of directions (fields) k")
    link_fn: Callable | None = eqx.field(default=None, static=True)
    order: int = eqx.field(default=0, static=True)
    """Gauss-Hermite nodes per axis for ``xi`` (but for the named links with lines at ``k = 2``, unless
    ``panel_order = 0``) and the teacher's ``z0``; 0: 48 for ``k = 1``, 8 for ``k = 2``, 4 beyond."""
    panel_order: int | None = eqx.field(default=None, static=True)
    """Gauss-Legendre nodes per panel of the ``xi`` rule cut at the link's lines (``k = 2``, the named links
    but ``sum``); ``None``: 3 (4 for ``gate``). ``0`` asks for the product Hermite rule (``order``) instead, several times
    cheaper and accurate at small overlaps only: near perfect recovery it is percents off, and a solve there
    ends ``INACCURATE`` by its error estimate (see the module docstring)."""
    inner_order: int = eqx.field(default=0, static=True)
    """Nodes per panel of the posterior's rule (named links; 0: 4, and 3 in the map at ``k = 2`` for the
    continuous links with lines; ``custom`` with ``posterior_rule="preimages"``: 0: 8), or per axis
    (``custom`` on the Hermite rule; 0: 24)."""
    posterior_rule: str = eqx.field(default="hermite", static=True)
    """For a ``custom`` link: ``"hermite"``, the product Gauss-Hermite rule (fast, accurate where the
    likelihood is wide against its nodes, flagged ``INACCURATE`` where not), or, at ``k = 1``,
    ``"preimages"``: Gauss-Legendre panels at the label's preimages under the link, accurate at small noise and
    for steep links, about 50 times the cost per map (see the module docstring)."""
    label_order: int = eqx.field(default=0, static=True)
    """Gauss-Legendre nodes per panel of the label's rule (continuous links) and of the rule over ``omega``
    for the Bayes error of ``sign-product``; 0: 8 for ``k = 1``, 6 beyond, and 4 in the map at ``k = 2`` for
    the continuous links with lines."""
    quadrature_tol: float = eqx.field(default=5e-3, static=True)
    """On the Hermite rule in ``xi``: the largest ``quadrature_error`` (the estimated relative error of
    ``Mhat``) at which :func:`~hdtheory.solve` reports a fixed point converged; above it,
    ``Status.INACCURATE``."""
    held: jax.Array | None = eqx.field(default=None, converter=lambda P: None if P is None else jnp.asarray(P))
    """``None``, or a projector ``P`` (``k x k``, symmetric, ``P P = P``) onto fields held learned: then
    :meth:`linear_stability` is that of a stage of the grand staircase, about the fixed point held on
    the range of ``P`` (:func:`~hdtheory.threshold` ``kind="weak-recovery"`` locates the stage's
    crossing; see the module docstring). It changes nothing else."""

    monotone = True

    def __check_init__(self):
        spec = LINKS[self.link]
        if (self.link == "custom") != (self.link_fn is not None):
            raise ParameterError("parameter 'link_fn' must be given exactly when link='custom'")
        if self.k < spec.min_k or (spec.ks is not None and self.k not in spec.ks):
            allowed = f"in {list(spec.ks)}" if spec.ks is not None else f">= {spec.min_k}"
            raise ParameterError(f"parameter 'k' must be {allowed} for link={self.link}, got {self.k}")
        if self.posterior_rule not in ("hermite", "preimages"):
            raise ParameterError(f"parameter 'posterior_rule' must be 'hermite' or 'preimages', got {self.posterior_rule!r}")
        if self.posterior_rule == "preimages" and (self.link != "custom" or self.k != 1):
            raise ParameterError(
                f"parameter 'posterior_rule' must be 'hermite' but for link='custom' at k=1, got 'preimages' with link={self.link!r}, k={self.k}"
            )
        if self.link == "custom":
            k = self.k
            check_function("link_fn", self.link_fn, (k + 1, k), (k + 1,), f"the k={k} fields, an array (..., {k}) to (...)")
        if spec.discrete:
            check_in("noise", self.noise, _FLIP, f" (a flip probability) for link={self.link}")
        else:
            check_in("noise", self.noise, POSITIVE, f" (a variance) for the continuous link={self.link}")
        for name in ("order", "inner_order", "label_order", "panel_order"):
            if getattr(self, name) is not None:  # panel_order None: the default
                check_integer(name, getattr(self, name), NONNEGATIVE)
        for name in ("label_order", "order"):  # order: its error estimate is at order - 1
            if getattr(self, name) == 1:
                raise ParameterError(f"parameter {name!r} must be 0 (the default) or an integer >= 2, got 1")
        if not (isinstance(self.quadrature_tol, (int, float)) and self.quadrature_tol > 0):
            raise ParameterError(f"parameter 'quadrature_tol' must be a number > 0, got {self.quadrature_tol!r}")
        if self.held is not None and is_concrete(self.held):
            P = np.asarray(self.held)
            if P.shape != (self.k, self.k) or not np.allclose(P, P.T, atol=1e-8) or not np.allclose(P @ P, P, atol=1e-8):
                raise ParameterError(
                    f"parameter 'held' must be None or a k={self.k} x {self.k} projector (symmetric, P @ P = P), got {self.held!r}"
                )

    # Configuration.

    @property
    def _spec(self) -> Link:
        return LINKS[self.link]

    @property
    def _preimages(self) -> bool:
        """The posterior of one field through a ``custom`` link on panels at the label's preimages."""
        return self.posterior_rule == "preimages"

    @property
    def _order(self) -> int:
        return self.order or {1: 48, 2: 8}.get(self.k, 4)

    @property
    def _label_order(self) -> int:
        return self.label_order or (8 if self.k == 1 else 6)

    @property
    def _map_orders(self) -> tuple[int, int | None]:
        """The label's and the posterior's orders in the map: unless given, 4 and 3 at ``k = 2`` for the
        continuous links with lines, whose map's error is the rule in ``xi``'s (see the module
        docstring); otherwise those of ``label_order`` and ``inner_order`` (``None``: the default)."""
        spec = self._spec
        lean = self.k == 2 and spec.lines is not None and not spec.discrete
        return self.label_order or (4 if lean else self._label_order), self.inner_order or (3 if lean else None)

    def _dtype(self):
        return jnp.result_type(self.alpha, self.noise, float)

    def _eye(self, dtype=None):
        return jnp.eye(self.k, dtype=dtype or self._dtype())

    def _fn(self, z):
        return self.link_fn(z) if self.link == "custom" else self._spec.fn(z)

    def sample_labels(self, key, z):
        """Labels of the fields ``z`` ``(..., k)``: ``g(z)`` plus Gaussian noise, or the sign of the
        fields' product flipped with probability ``noise``."""
        if self._spec.discrete:
            flip = jax.random.bernoulli(key, self.noise, z.shape[:-1])
            return jnp.where(flip, -1.0, 1.0) * jnp.sign(jnp.prod(z, -1))
        return self._fn(z) + jnp.sqrt(self.noise) * jax.random.normal(key, z.shape[:-1], z.dtype)

    # The protocol.

    def init(self, kind: str = "uninformed") -> jax.Array:
        dtype = self._dtype()
        small = UNINFORMED[jnp.finfo(dtype).bits]
        return {"uninformed": small, "informed": 1.0 - small}[kind] * self._eye(dtype)

    def unconstrain(self, M) -> jax.Array:
        """The Cholesky factor of ``V = I - M`` with a log diagonal (its lower triangle)."""
        return cholesky_coordinates(self._eye(M.dtype) - M)

    def constrain(self, u) -> jax.Array:
        return self._eye(u.dtype) - from_cholesky_coordinates(u, self.k)

    def update(self, M) -> jax.Array:
        """``M = Mhat (I + Mhat)^{-1} = I - (I + Mhat)^{-1}``."""
        eye = self._eye(M.dtype)
        new = eye - small_inv(eye + self.conjugate(M))
        return 0.5 * (new + new.T)

    def conjugate(self, M, order: int | None = None, inner_order: int | None = None) -> jax.Array:
        """``Mhat = alpha E g_out g_out^T``; with ``order``, on the product Hermite rule of ``order`` nodes
        per axis in ``xi`` instead of the configured rule; with ``inner_order``, on a posterior rule of that
        order instead of the map's."""
        omega, w, V = self._omega_rule(M, order)
        label_order, map_inner = self._map_orders

        def at(omega):
            weights, means, _ = self._labels(omega, V, label_order, inner_order or map_inner)
            g = small_solve(V, (means - omega).T).T  # (labels, k)
            return jnp.einsum("n,ni,nj->ij", weights, g, g)

        # In batches: the panel rule has 20 times the Hermite rule's nodes, and memory would grow as much.
        Mhat = self.alpha * jnp.einsum("n,nij->ij", w, jax.lax.map(at, omega, batch_size=_BATCH))
        return 0.5 * (Mhat + Mhat.T)

    def output_entropy(self, M) -> jax.Array:
        """``psi_out(M) = E_xi int dy Z_out(y, omega, V) log Z_out(y, omega, V)`` on the map's rules in
        ``xi``, the label and the posterior (see the module docstring)."""
        omega, w, V = self._omega_rule(M)

        def at(omega):
            w_y, log_Z, _, _ = self._label_terms(omega, V, *self._map_orders)
            return jnp.sum(w_y * jnp.exp(log_Z) * log_Z)

        return w @ jax.lax.map(at, omega, batch_size=_BATCH)

    def potential(self, M, Mhat) -> jax.Array:
        """The replica-symmetric potential ``Phi(M, Mhat) = -tr(M Mhat) / 2 + psi_w(Mhat) + alpha psi_out(M)``,
        ``psi_w(Mhat) = tr(Mhat) / 2 - logdet(I + Mhat) / 2`` (see the module docstring)."""
        eye = self._eye(M.dtype)
        logdet = 2 * jnp.sum(jnp.log(jnp.diagonal(psd_cholesky(eye + 0.5 * (Mhat + Mhat.T)))))
        return -0.5 * jnp.sum(M * Mhat) + 0.5 * jnp.trace(Mhat) - 0.5 * logdet + self.alpha * self.output_entropy(M)

    def free_entropy(self, M) -> jax.Array:
        """``Phi(M, Mhat(M))``, ``Mhat(M)`` the conjugate (:meth:`conjugate`): the potential's value at a
        fixed point, where it is stationary in both (see the module docstring)."""
        return self.potential(M, self.conjugate(M))

    def mutual_information(self, M) -> jax.Array:
        """``I(W*; y | X) / d = -Phi - alpha H(y | z)`` at a fixed point ``M``: ``H(y | z)`` the label noise's
        entropy, ``log(2 pi e noise) / 2`` for the continuous links, the binary entropy of the flips for
        ``sign-product`` (see the module docstring)."""
        noise = jnp.asarray(self.noise, M.dtype)
        if self._spec.discrete:
            safe = jnp.clip(noise, jnp.finfo(M.dtype).tiny, 0.5)
            entropy = jnp.where(noise > 0, -safe * jnp.log(safe) - (1 - safe) * jnp.log1p(-safe), 0.0)
        else:
            entropy = 0.5 * jnp.log(2 * math.pi * math.e * noise)
        return -self.free_entropy(M) - self.alpha * entropy

    def _omega_rule(self, M, order: int | None = None):
        """``(omega, weights, V)`` of the map's rule for ``E_xi`` at ``omega = M^{1/2} xi``, ``V = I - M``:
        the configured rule (``order``: the product Hermite rule of ``order`` nodes per axis), folded
        where the link is even and the rule symmetric about ``omega = 0``."""
        eye = self._eye(M.dtype)
        V = 0.5 * ((eye - M) + (eye - M).T)
        hermite = order is not None or self._hermite
        xi, w = product_rule(self.k, order, M.dtype) if order is not None else self._xi_rule(M, V)
        if self._spec.even and (hermite or all(sorted(c) == sorted(-x for x in c) for c in self._spec.lines)):
            # The integrands in omega (g_out g_out^T, Z_out log Z_out integrated over the label) are
            # even and the rule symmetric: the Hermite rule, or the panels where every line passes
            # through omega = 0.
            xi, w = _fold(xi, w)
        return xi @ psd_cholesky(0.5 * (M + M.T)).T, w, V

    @property
    def _panel_order(self) -> int:
        return self._spec.panel_order if self.panel_order is None else self.panel_order

    @property
    def _hermite(self) -> bool:
        """The rule in ``xi`` is the product Hermite rule, not the panels cut at the link's lines."""
        return self._spec.lines is None or self.k != 2 or not self._panel_order

    def quadrature_error(self, M) -> jax.Array:
        """The estimated relative error of ``Mhat`` on the Hermite rule in ``xi`` (see the module
        docstring): ``max |Mhat_n - Mhat_{n-1}| / max |Mhat_n|``, ``n = order``; for a ``custom`` link also
        that of its posterior rule, ``Mhat`` (relative to at least ``sqrt(eps)``: at
        ``M = 0`` it is rounding) and ``1 / alpha_c`` against twice its order."""

        def relative(reference, value, floor=0.0):
            scale = jnp.maximum(jnp.max(jnp.abs(reference)), floor)
            return jnp.where(scale > 0, jnp.max(jnp.abs(reference - value)) / jnp.where(scale > 0, scale, 1.0), 0.0)

        high = self.conjugate(M)
        error = relative(high, self.conjugate(M, self._order - 1))
        if self.link == "custom":
            fine = self._custom_check_order
            error = jnp.maximum(error, relative(self.conjugate(M, inner_order=fine), high, jnp.sqrt(jnp.finfo(M.dtype).eps)))
            error = jnp.maximum(error, relative(self._largest_rate(fine), self._largest_rate()))
        return error

    @property
    def _custom_check_order(self) -> int:
        """The finer posterior rule against which a ``custom`` link's is checked: twice its order (see the
        module docstring)."""
        return 2 * (self._map_orders[1] or (_PREIMAGE_ORDER if self._preimages else 24))

    def accurate(self, M, observables) -> jax.Array | bool:
        """On the Hermite rule in ``xi``: ``quadrature_error <= quadrature_tol``."""
        return observables["quadrature_error"] <= self.quadrature_tol if self._hermite else True

    def _xi_rule(self, M, V):
        """Nodes and weights for ``E_xi``: the product Hermite rule, or for a link with lines at ``k = 2``
        panels cut where ``omega = M^{1/2} xi`` crosses them (``omega_i = c_i``), over ``sqrt(V_ii)`` (see
        the module docstring)."""
        if self._hermite:
            return product_rule(self.k, self._order, M.dtype)
        L = psd_cholesky(0.5 * (M + M.T))
        width = jnp.sqrt(jnp.maximum(jnp.diagonal(V), 0.0))
        centre = jnp.zeros(self.k, M.dtype)
        return zero_cut_rule(
            centre, L, width, self._panel_order, scales=_CUT_SCALES, gaussian=_CUT_GAUSSIAN, crossings=self._spec.lines
        )

    # The channel: labels given omega, and the posterior of z given each.

    def _labels(self, omega, V, label_order: int | None = None, inner_order: int | None = None):
        """Labels ``y`` given ``omega`` with their weights ``w_y Z_out(y, omega, V)``, and the posterior
        moments ``E[z | y, omega, V]`` ``(N, k)``, ``E[z z^T | y, omega, V]`` ``(N, k, k)``; the label's and
        the posterior's rules of the given orders (``None``: the configured ones)."""
        w, log_Z, means, seconds = self._label_terms(omega, V, label_order, inner_order)
        return w * jnp.exp(log_Z), means, seconds

    def _label_terms(self, omega, V, label_order: int | None = None, inner_order: int | None = None):
        """:meth:`_labels`' terms apart: the label rule's weights ``w_y``, ``log Z_out(y, omega, V)`` and the
        posterior moments."""
        if self._spec.discrete:
            y, w = jnp.asarray([1.0, -1.0], V.dtype), jnp.ones(2, V.dtype)
        else:
            y, w = self._label_rule(omega, V, label_order or self._label_order)
        log_Z, means, seconds = jax.vmap(lambda y: self.posterior(y, omega, V, inner_order))(y)
        return w, log_Z, means, seconds

    def _label_rule(self, omega, V, order: int):
        """Gauss-Legendre panels (``order`` nodes each) over the label's range: edges at its mean
        plus ``{0, 0.5, 1, 2, 3.5, 6, 10, 16, 25, 40}`` standard deviations either side (the tails of
        products of Gaussians are exponential or slower), and at ``0, +-{1, 4, 16} sqrt(noise)``,
        where the density of a product of fields has its (noise-smoothed) logarithmic peak."""
        dtype = V.dtype
        z, w = product_rule(self.k, 6, dtype)
        g = self._fn(omega + z @ psd_cholesky(V).T)
        mean = w @ g
        sd = jnp.sqrt(jnp.maximum(w @ g**2 - mean**2, 0.0) + self.noise)
        near = jnp.asarray((0.0, 1.0, -1.0, 4.0, -4.0, 16.0, -16.0), dtype) * jnp.sqrt(self.noise)
        if not self._preimages:
            spread = jnp.asarray(_SPREAD + tuple(-x for x in _SPREAD[1:]), dtype)
            return legendre_panels(jax.lax.stop_gradient(jnp.concatenate([mean + sd * spread, near])), order)
        # One field through a custom link: its image over the prior's window, widened by the noise,
        # bounds the label; within it the spread reaches far enough for polynomial tails.
        spread = jnp.asarray(_SPREAD + _TAIL, dtype)
        spread = jnp.concatenate([spread, -spread[1:]])
        image = self._fn((omega + jnp.sqrt(V[0, 0]) * jnp.linspace(-_IMAGE, _IMAGE, 257, dtype=dtype))[:, None])
        lo, hi = jnp.min(image) - _IMAGE * jnp.sqrt(self.noise), jnp.max(image) + _IMAGE * jnp.sqrt(self.noise)
        edges = jnp.clip(jnp.concatenate([mean + sd * spread, near, jnp.stack([lo, hi])]), lo, hi)
        return legendre_panels(jax.lax.stop_gradient(edges), order)

    def posterior(self, y, omega, V, order: int | None = None):
        """``(log Z_out, E[z | y], E[z z^T | y])`` for ``z ~ N(omega, V)`` and the label ``y`` (one point);
        ``order``: the posterior rule's (``None``: ``inner_order``'s)."""
        order = order or self.inner_order
        if self._spec.discrete:
            return sign_tilted_moments(y, self.noise, omega, V, order or 4)
        if self._preimages:
            fn = lambda z: self.link_fn(z[None])
            log_Z, mean, second = preimage_tilted_moments(fn, y, self.noise, omega[0], V[0, 0], order or _PREIMAGE_ORDER)
            return log_Z, mean[None], second[None, None]
        if self.link == "custom":
            def log_likelihood(z):
                return -0.5 * (y - self.link_fn(z)) ** 2 / self.noise - 0.5 * jnp.log(2 * math.pi * self.noise)

            return gaussian_tilted_moments(log_likelihood, omega, V, order or 24)
        points = None if self._spec.points is None else self._spec.points(y)
        return piecewise_linear_tilted_moments(y, self._spec.split, self.noise, omega, V, order or 4, points)

    # Observables.

    def _linearisation(self, inner_order: int | None = None) -> tuple[jax.Array, jax.Array, jax.Array]:
        """The operator ``M -> E_y G M G`` on the orthonormal basis of symmetric matrices (the upper
        triangle's, ``k (k + 1) / 2`` of them), that basis ``(p, k, k)`` and ``T = E_y E[z|y] E[z|y]^T``,
        all at ``M = 0`` (``inner_order``: the posterior rule's, ``None`` the configured one); see the
        module docstring."""
        dtype, k = self._dtype(), self.k
        eye = self._eye(dtype)
        operator, T, _ = self._second_order(*self._labels(jnp.zeros(k, dtype), eye, None, inner_order), eye)
        return operator, _symmetric_basis(k, dtype), T

    def _second_order(self, weights, means, seconds, Q) -> tuple[jax.Array, jax.Array, jax.Array]:
        """``(operator, T, E G^2)`` from the weighted posterior moments of the labels (and nodes in
        ``omega``) ``(N,)``, ``(N, k)``, ``(N, k, k)``, restricted to the fields ``Q z`` (``Q`` a
        projector): ``G = Q E[z z^T | .] Q - Q``, ``T = E (Q E[z | .]) (Q E[z | .])^T`` and the operator
        ``D -> E G D G`` on the orthonormal basis of symmetric matrices (see the module docstring)."""
        G = jnp.einsum("ab,nbc,cd->nad", Q, seconds, Q) - Q
        projected = means @ Q
        basis = _symmetric_basis(self.k, Q.dtype)
        image = jnp.einsum("n,nab,pbc,ncd->pad", weights, G, basis, G)  # E G B_p G
        operator = jnp.einsum("qad,pad->qp", basis, image)
        T = jnp.einsum("n,ni,nj->ij", weights, projected, projected)
        square = jnp.einsum("n,nab,nbc->ac", weights, G, G)
        return 0.5 * (operator + operator.T), 0.5 * (T + T.T), 0.5 * (square + square.T)

    def subspaces(self) -> "Subspaces":
        """The trivial, easy and hard subspaces at ``M = 0`` and the thresholds of every eigen-direction
        of the linearised state evolution (:class:`Subspaces`; see the module docstring). Differentiable
        in the parameters through the eigenvalues (the bases are not differentiated)."""
        dtype, k = self._dtype(), self.k
        eye = self._eye(dtype)
        operator, T, square = self._second_order(*self._labels(jnp.zeros(k, dtype), eye), eye)
        return Subspaces.of(operator, T, square, _symmetric_basis(k, dtype))

    def conditional(self, M, P) -> "Subspaces":
        """:class:`Subspaces` of the fields ``Q z`` (``Q = I - P``) at a fixed point ``M`` supported on the
        range of the projector ``P`` (``M = P M P``): the conditional ``T``, linearised operator and
        ``E G^2`` of the grand staircase (see the module docstring). ``P = 0``, ``M = 0``: :meth:`subspaces`."""
        dtype, k = M.dtype, self.k
        eye = self._eye(dtype)
        V = eye - M
        Q = eye - P

        def at_zero(M):
            return self._second_order(*self._labels(jnp.zeros(k, dtype), eye), Q)

        def over_omega(M):
            xi, w = self._xi_rule(M, V)
            omega = xi @ psd_cholesky(0.5 * (M + M.T)).T
            weights, means, seconds = jax.lax.map(lambda o: self._labels(o, V), omega, batch_size=_BATCH)
            flat = (w[:, None] * weights).reshape(-1)
            return self._second_order(flat, means.reshape(-1, k), seconds.reshape(-1, k, k), Q)

        operator, T, square = jax.lax.cond(jnp.trace(M) > 0, over_omega, at_zero, M)
        return Subspaces.of(operator, T, square, _symmetric_basis(k, dtype))

    def _restricted(self, P, steps: int, tol: float):
        """The state evolution with ``M`` held on the range of ``P``: ``M <- P update(M) P`` from
        ``UNINFORMED P`` until ``max |dM| <= tol`` or ``steps`` steps; ``(M, converged, residual)``."""
        dtype = P.dtype
        start = UNINFORMED[jnp.finfo(dtype).bits] * P
        empty = jnp.trace(P) < 0.5

        def step(state):
            M, _, n = state
            new = P @ self.update(M) @ P
            return 0.5 * (new + new.T), jnp.max(jnp.abs(new - M)), n + 1

        def going(state):
            return (state[1] > tol) & (state[2] < steps)

        residual = jnp.where(empty, 0.0, jnp.inf).astype(dtype)
        M, residual, _ = jax.lax.while_loop(going, step, (start, residual, 0))
        return M, residual <= tol, residual

    def _held(self, P, steps: int, tol: float):
        """:meth:`_restricted`'s fixed point ``M = P update(M) P``, iterated with the parameters held fixed,
        then one Newton step with the gradient on (in the coordinates of the symmetric matrices, its
        Jacobian ``J`` held fixed), whose derivative in the parameters is the implicit one,
        ``(I - J)^{-1} d(P update(M) P) / d theta``, since the step is zero there: never a derivative
        through the iterations. ``(M, converged, residual)``."""
        fixed = jax.lax.stop_gradient(self)
        P = jax.lax.stop_gradient(P)
        M, converged, residual = fixed._restricted(P, steps, tol)
        basis = _symmetric_basis(self.k, M.dtype)

        def held_map(theory, c):
            M = P @ jnp.einsum("p,pab->ab", c, basis) @ P
            return jnp.einsum("pab,ab->p", basis, P @ theory.update(M) @ P)

        c = jnp.einsum("pab,ab->p", basis, M)
        J = jax.jacfwd(lambda c: held_map(fixed, c))(c)
        c = c + small_solve(jnp.eye(c.size, dtype=c.dtype) - J, held_map(self, c) - c)
        return jnp.einsum("p,pab->ab", c, basis), converged, residual

    def grand_staircase(self, steps: int = 2000, tol: float = 1e-10) -> "GrandStaircase":
        """The grand staircase at ``alpha`` (see the module docstring): from ``U_0 = {}``, at each stage
        the fixed point ``M_t`` of the state evolution held on ``U_t`` (``steps`` iterations at most, to
        ``max |dM| <= tol``), the conditional :class:`Subspaces` of the complement, and ``U_{t+1}``: ``U_t``
        with the range of the conditional ``T`` and the fields of the conditional directions with
        ``alpha mu_m > 1``. ``k + 1`` stages (the last ones repeat once nothing joins)."""
        dtype, k = self._dtype(), self.k
        P = jnp.zeros((k, k), dtype)
        stages = []
        for _ in range(k + 1):
            M, converged, residual = self._held(P, steps, tol)
            found = self.conditional(M, P)
            error = self.quadrature_error(M) if self._hermite else jnp.zeros((), dtype)
            stages.append((P, M, converged, residual, error, found))
            # The conditional T moves its fields at once; where it is zero, the unstable directions'.
            joining = found.trivial_basis * found.trivial
            unstable = (self.alpha * found.rates > 1) & ~jnp.any(found.trivial)
            S = joining @ joining.T + jnp.einsum("m,mab,mcb->ac", unstable.astype(dtype), found.directions, found.directions)
            values, vectors = jnp.linalg.eigh(0.5 * (S + S.T))
            values, vectors = jnp.linalg.eigh(P + vectors * (values > _RANK) @ vectors.T)
            P = vectors * (values > 0.5) @ vectors.T
        projectors, overlaps, converged, residual, error, found = (
            jax.tree_util.tree_map(lambda *x: jnp.stack(x), *column) for column in zip(*stages)
        )
        radius = self.alpha * found.rates[:, 0]
        return GrandStaircase(
            P, M, projectors, overlaps, converged, residual, radius, error, error <= self.quadrature_tol, found
        )

    def weak_recovery(self) -> tuple[jax.Array, jax.Array]:
        """``(alpha_c, trivial)``: ``1 / lambda_max`` of ``M -> E_y G M G`` and the eigenvalues of
        ``T = E_y E[z|y] E[z|y]^T`` (descending); see the module docstring."""
        operator, _, T = self._linearisation()
        largest = jnp.linalg.eigvalsh(operator)[-1]
        # G = 0 (a parity) up to rounding: no weak recovery at any alpha.
        zero = largest <= _ZERO
        alpha_c = jnp.where(zero, jnp.inf, 1.0 / jnp.where(zero, 1.0, largest))
        return alpha_c, jnp.linalg.eigvalsh(T)[::-1]

    def _largest_rate(self, inner_order: int | None = None) -> jax.Array:
        """``1 / alpha_c``, the largest eigenvalue of ``M -> E_y G M G``, on a posterior rule of ``inner_order``."""
        return jnp.linalg.eigvalsh(self._linearisation(inner_order)[0])[-1]

    def large_noise_alpha_c(self, b_max: int = 8) -> jax.Array:
        r"""The large-noise asymptote of ``alpha_c`` for one field (``k = 1``, a continuous link ``g``):

        .. math:: \alpha_c \simeq \frac{\beta^\star!\, \Delta^{\beta^\star}}{c_{\beta^\star}^2},
                  \qquad \Delta = \mathtt{noise} \to \infty,

        ``beta*`` the noise sensitivity exponent of ``g`` and ``c_b = E[g(z)^b (z^2 - 1)]``
        (:func:`~hdtheory.kernels.noise_sensitivity_exponent`, up to ``b_max``; Defilippis, Krzakala,
        Loureiro and Maillard 2026): with ``t = g / sqrt(Delta)`` and ``x = y / sqrt(Delta)`` the
        likelihood ratio is ``sum_n He_n(x) t^n / n!``, so that
        ``G(y) = E[z^2 | y] - 1 ~ Delta^(-beta*/2) He_beta*(x) c_beta* / beta*!`` and
        ``1 / alpha_c = E_y G^2 ~ c_beta*^2 / (beta*! Delta^beta*)``, ``x`` standard normal to leading
        order. Against ``Delta``: ``alpha_c`` grows as ``Delta^beta*``, the information-theoretic
        threshold as ``Delta``. ``inf`` where every ``c_b`` up to ``b_max`` is zero. Differentiable in
        ``noise``; the relative correction of ``alpha_c`` to it vanishes as ``Delta -> inf``, as
        ``1 / Delta`` for the links tested (``tests/test_noise_sensitivity.py``)."""
        if self.k != 1 or self._spec.discrete:
            raise ParameterError(f"large_noise_alpha_c needs k = 1 and a continuous link, got k={self.k}, link={self.link!r}")
        nse = noise_sensitivity_exponent(lambda z: self._fn(z[..., None]), b_max)
        noise = jnp.asarray(self.noise, self._dtype())
        if math.isinf(nse.exponent):
            return jnp.full_like(noise, jnp.inf)
        return math.factorial(nse.exponent) * noise**nse.exponent / nse.coefficient**2

    def linear_stability(self) -> tuple[jax.Array, jax.Array, jax.Array]:
        """``(radius, state, direction)`` for :func:`~hdtheory.threshold`'s ``kind="weak-recovery"``: the
        spectral radius of the state evolution linearised about its trivial fixed point ``state``
        (``M = 0``), ``alpha lambda_max`` (``M -> alpha E_y G M G``; its spectrum is non-negative), and
        the direction along which ``M`` leaves it above one: the eigenvector of ``lambda_max``, a
        symmetric ``k x k`` matrix of unit Frobenius norm with a non-negative trace, whose diagonal
        names the fields learned first (``E_11``: the first field alone). ``radius`` is ``0`` where
        ``G = 0`` (a parity: never), and ``inf`` where the trivial subspace is not empty (``T != 0``:
        ``M = 0`` is no fixed point, and the directions of ``T`` are learned at any ``alpha``); the
        direction is then ``u u^T``, ``u`` the top eigenvector of ``T``. The direction is not
        differentiated (an eigenvector, undefined where ``lambda_max`` is degenerate, as for
        ``sign(z1 z2)``, whose eigenspace holds ``I`` and ``[[0, 1], [1, 0]]``: any unit matrix in it).
        With ``held``, those of the grand staircase's stage that holds those fields learned, about the
        held fixed point (see the module docstring)."""
        if self.held is not None:
            return self._held_stability()
        operator, basis, T = self._linearisation()
        values, vectors = jnp.linalg.eigh(operator)
        direction = jnp.einsum("p,pab->ab", vectors[:, -1], basis)
        direction = jnp.where(jnp.trace(direction) < 0, -direction, direction)
        t_values, t_vectors = jnp.linalg.eigh(T)
        trivial = t_values[-1] > _ZERO
        direction = jnp.where(trivial, jnp.outer(t_vectors[:, -1], t_vectors[:, -1]), direction)
        radius = jnp.where(trivial, jnp.inf, self.alpha * jnp.where(values[-1] <= _ZERO, 0.0, values[-1]))
        return radius, jnp.zeros_like(T), jax.lax.stop_gradient(direction)

    def _held_stability(self) -> tuple[jax.Array, jax.Array, jax.Array]:
        """:meth:`linear_stability` of the grand staircase's stage that holds the fields ``held``: at the
        fixed point ``M_t`` held there (:meth:`_held`, to ``max |dM| <= 1e-10``, 1e-5 in float32, in 2000
        steps at most), the conditional radius ``alpha mu_max``, ``M_t`` and the conditional top direction;
        ``inf`` where the conditional ``T`` is not zero (its top direction ``u u^T`` is learned at once),
        NaN where the held iteration did not converge."""
        dtype = self._dtype()
        P = jnp.asarray(self.held, dtype)
        tol = 1e-10 if jnp.finfo(dtype).bits >= 64 else 1e-5
        M, converged, _ = self._held(P, 2000, tol)
        found = self.conditional(M, P)
        trivial = jnp.any(found.trivial)
        u = found.trivial_basis[:, 0]
        direction = jnp.where(trivial, jnp.outer(u, u), found.directions[0])
        radius = self.alpha * jnp.maximum(found.rates[0], 0.0)
        radius = jnp.where(converged, jnp.where(trivial, jnp.inf, radius), jnp.nan)
        return radius, M, jax.lax.stop_gradient(direction)

    def gen_errors(self, M):
        """``(gen_error, gen_error_total)`` of the Bayes-optimal predictor; see the module docstring."""
        return self._errors(M)[:2]

    def gibbs_errors(self, M):
        """``(gibbs_error, gibbs_error_total)`` of a posterior sample; see the module docstring."""
        return self._errors(M)[2:]

    def _errors(self, M):
        """``(gen_error, gen_error_total, gibbs_error, gibbs_error_total)``; see the module docstring."""
        eye = self._eye(M.dtype)
        V = eye - M
        xi, w = product_rule(self.k, self._order, M.dtype)
        omega = xi @ psd_cholesky(0.5 * (M + M.T)).T
        if self._spec.discrete:
            # p = P(g(z) > 0 | omega, V), the noiseless label's, from the label's law at flips 1/4,
            # 1/4 + p / 2, which is never 0 (the noiseless one is, where p underflows, and its moments
            # 0 / 0); min(p, 1 - p) has a kink where p = 1/2, at omega_i = 0: panels cut there, over
            # sqrt(V_ii) on each axis.
            width = jnp.sqrt(jnp.maximum(jnp.diagonal(V), 0.0))
            L = psd_cholesky(0.5 * (M + M.T))
            xi, w = zero_cut_rule(jnp.zeros(self.k, M.dtype), L, width, self._label_order)
            one, order = jnp.ones((), V.dtype), self.inner_order or 4
            positive = lambda o: jnp.exp(sign_tilted_moments(one, 0.25, o, V, order)[0])
            p = jnp.clip(2 * jax.vmap(positive)(xi @ L.T) - 0.5, 0.0, 1.0)
            bayes, gibbs = w @ jnp.minimum(p, 1 - p), w @ (2 * p * (1 - p))
            noisy = lambda error: self.noise + (1 - 2 * self.noise) * error
            return bayes, noisy(bayes), gibbs, noisy(gibbs)
        z, w_z = product_rule(self.k, self._order, M.dtype)

        def variance(omega):
            g = self._fn(omega + z @ psd_cholesky(V).T)
            return w_z @ g**2 - (w_z @ g) ** 2

        excess = w @ jax.vmap(variance)(omega)
        return excess, excess + self.noise, 2 * excess, 2 * excess + self.noise

    def observables(self, M) -> dict[str, jax.Array]:
        k = self.k
        out = {f"m_{i + 1}": M[i, i] for i in range(k)}
        out |= {f"M_{i + 1}_{j + 1}": M[i, j] for i in range(k) for j in range(i + 1, k)}
        out |= {f"mmse_{i + 1}": 1.0 - M[i, i] for i in range(k)}
        out["mmse"] = jnp.mean(1.0 - jnp.diagonal(M))
        out["gen_error"], out["gen_error_total"], out["gibbs_error"], out["gibbs_error_total"] = self._errors(M)
        alpha_c, trivial = self.weak_recovery()
        out["alpha_c"] = alpha_c
        out |= {f"trivial_{i + 1}": trivial[i] for i in range(k)}
        if self._hermite:
            out["quadrature_error"] = self.quadrature_error(M)
        return out
