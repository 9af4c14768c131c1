"""LAMP, the spectral method of linearised multi-layer AMP (Aubin et al. 2019), at finite d for the
spiked Wigner and Wishart models with a linear generative prior: its estimate correlates with the spike
exactly on the weak-recovery side of the state evolution's threshold, where PCA does not."""

import jax
import numpy as np
import pytest

import hdtheory as hd
from hdtheory.simulate.spiked import lamp


@pytest.mark.parametrize(
    "ensemble, alpha, beta, delta_c",
    [
        # The default run checks LAMP on the Wigner model against the authors' published curves
        # (test_spiked_generative_lamp_published.py, the same linear layer at beta = 2).
        pytest.param("wigner", 1.0, 2.0, 3.0, marks=pytest.mark.extended),
        ("wishart", 1.0, 4.0, np.sqrt(5.0)),
    ],
)
def test_lamp_recovers_exactly_past_the_state_evolution_threshold(ensemble, alpha, beta, delta_c):
    """``Delta_c = 1 + beta`` (Wigner; ``sqrt(alpha (1 + beta))`` Wishart, ``Delta = 1 / snr``), the
    state evolution's weak recovery (``threshold`` locates it, tests/test_spiked_generative.py). At half the
    threshold's ``Delta`` LAMP's top eigenvalue stands apart from the bulk and its estimate has a
    squared cosine with the spike of order one (seen 0.48-0.59 at d = 2000, the eigenvalue 0.16-0.66
    above the next), while PCA, past its own threshold ``Delta = 1`` (Wishart ``sqrt(alpha)``), sees
    nothing (seen at most 0.04); at twice it, LAMP's estimate is noise too (seen at most 0.053, the top
    eigenvalue within 0.035 of the next). Two seeds at d = 2000."""
    d = 2000

    def run(snr):
        theory = hd.Spiked(prior="generative", ensemble=ensemble, snr=snr, alpha=alpha, beta=beta)
        return lamp(theory, d=d, key=jax.random.PRNGKey(0))

    below, above = run(2 / delta_c), run(0.5 / delta_c)
    assert np.all(below["overlap"] > 0.3) and np.all(below["overlap_z"] > 0.2)
    assert np.all(below["eigenvalue"] - below["bulk_edge"] > 0.08)
    assert np.all(below["pca_overlap"] < 0.1)
    assert np.all(above["overlap"] < 0.1) and np.all(above["eigenvalue"] - above["bulk_edge"] < 0.05)

