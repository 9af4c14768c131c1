"""The real data set and the measurements that tests/test_gcm_from_data.py and
tests/test_mixture_from_data.py share: scikit-learn's digits on random features, learning curves of
stacked models in one compiled program, errors measured over draws of the training set."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import erf

import hdtheory as hd


def stack(models):
    return jax.tree.map(lambda *leaves: jnp.stack(leaves), *models)


@jax.jit
def curves(models, alphas):
    """Every stacked model at every ``alpha = n / p``: one compiled program per test."""
    return jax.vmap(jax.vmap(lambda m, a: hd.solve(dataclasses.replace(m, alpha=a)), (None, 0)), (0, None))(
        models, alphas
    )


def digits():
    """scikit-learn's 8 x 8 digits (N = 1797), even against odd digits as labels +-1, pixels centred
    and scaled by their global standard deviation, p = 256 random features erf(F x / sqrt(64)).

    The GCM's population is the data set itself: a measurement draws n training samples from it
    i.i.d. and takes the error over the whole data set (a fresh draw from the same population),
    averaged over the draws."""
    from sklearn.datasets import load_digits

    X, digit = load_digits(return_X_y=True)
    y = np.where(digit % 2 == 0, 1.0, -1.0)
    X = (X - X.mean(axis=0)) / X.std()
    p, D = 256, X.shape[1]
    F = np.random.default_rng(0).normal(size=(p, D))

    def feature_map(inputs):
        return erf(inputs @ F.T / np.sqrt(D))

    return X, y, feature_map, np.asarray(feature_map(X))


def measure(V, y, ns, draws, fit, error, held_out=False):
    """The mean and standard error over ``draws`` of ``error(fields, y)`` for ``fit`` on ``n`` samples
    drawn from the data set: i.i.d., the error over the whole data set (a fresh draw from the same
    population); or, ``held_out``, without replacement, the error over the rest."""
    from threadpoolctl import threadpool_limits

    rng, p = np.random.default_rng(1), V.shape[1]
    measured = np.empty((len(ns), draws))
    with threadpool_limits(1):  # small matrices: BLAS threads on a busy machine only wait for each other
        for i, n in enumerate(ns):
            for j in range(draws):
                if held_out:
                    train = rng.permutation(len(y))
                    train, test = train[:n], train[n:]
                else:
                    train, test = rng.integers(0, len(y), n), slice(None)
                measured[i, j] = error(V[test] @ fit(V[train] / np.sqrt(p), y[train]) / np.sqrt(p), y[test])
    return measured.mean(axis=1), measured.std(axis=1, ddof=1) / np.sqrt(draws)
