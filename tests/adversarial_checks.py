"""The comparison of an adversarial-training theory with its finite-size simulation, shared by the
adversarial tests."""


def assert_matches_simulation(sim, theory, tolerances, *, held_out=True):
    """Each ``(key, rel, atol)`` of ``tolerances``: the simulated mean within four standard errors plus
    ``rel |theory| + atol`` of the theory's value (the finite-size bias that the calling test states).
    With ``held_out``, also the error of the fitted weights on fresh samples under the attack (a Monte
    Carlo estimate) within four standard errors plus 0.01 of the simulated ``robust_error``: the
    attack budget that the theory assumes is the one that the attack reaches."""
    for key, rel, atol in tolerances:
        expected = float(theory[key])
        assert abs(sim.mean[key] - expected) <= 4 * sim.sem[key] + rel * abs(expected) + atol, (
            key, sim.mean[key], sim.sem[key], expected)
    if held_out:
        empirical = sim.mean["robust_error_empirical"]
        assert abs(empirical - sim.mean["robust_error"]) <= 4 * sim.sem["robust_error_empirical"] + 0.01
