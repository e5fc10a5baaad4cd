"""The evaluation's sample-based diagnostics: the Kozachenko-Leonenko entropy against closed forms,
finite for identical samples, and the spread of a map's output over its noise."""
import math

import jax
import jax.numpy as jnp
import pytest

from mjx_smfp import diagnostics


@pytest.mark.parametrize("dim, std", [(2, 0.1), (6, 0.3)])
def test_knn_entropy_matches_a_gaussians_closed_form(dim, std):
    x = std * jax.random.normal(jax.random.PRNGKey(dim), (4, 2000, dim))
    truth = 0.5 * dim * math.log(2 * math.pi * math.e * std**2)
    estimate = diagnostics.knn_entropy(x)
    assert estimate.shape == (4,)
    assert float(jnp.max(jnp.abs(estimate - truth))) < 0.15 * dim


def test_knn_entropy_of_a_collapsed_policy_is_very_low_but_finite():
    same = jnp.zeros((1, 64, 17))
    low = float(diagnostics.knn_entropy(same)[0])
    assert math.isfinite(low) and low < -300
    broad = float(diagnostics.knn_entropy(jax.random.uniform(jax.random.PRNGKey(0), (1, 64, 17)))[0])
    assert broad > low + 200


def test_pairwise_spread_is_the_variance_per_pair_and_zero_for_a_map_that_ignores_its_noise():
    k1, k2 = jax.random.split(jax.random.PRNGKey(0))
    e1, e2 = jax.random.normal(k1, (20000, 3)), jax.random.normal(k2, (20000, 3))
    assert float(diagnostics.pairwise_spread(0.5 * e1, 0.5 * e2)) == pytest.approx(3 * 0.25, rel=0.05)
    assert float(diagnostics.pairwise_spread(0 * e1 + 1.0, 0 * e2 + 1.0)) == 0.0
