"""normal_pair: two independent standard normal arrays from one hash per element."""
import jax
import numpy as np
from scipy import stats

from mjx_smfp.policies.densities import normal_pair


def test_normal_pair_gives_two_independent_standard_normals_fixed_by_the_key():
    eps, xi = (np.asarray(x).ravel() for x in normal_pair(jax.random.PRNGKey(0), (50_000, 4)))
    for v in (eps, xi):
        assert stats.kstest(v, "norm").pvalue > 1e-3  # N(0, 1) marginals
        assert abs(v.mean()) < 0.02 and abs(v.std() - 1) < 0.02
    assert abs(np.corrcoef(eps, xi)[0, 1]) < 0.01  # the two halves of each hash are uncorrelated
    assert abs(np.corrcoef(eps[:-1], eps[1:])[0, 1]) < 0.01  # and so are neighbouring counters
    again = normal_pair(jax.random.PRNGKey(0), (50_000, 4))[0]
    other = normal_pair(jax.random.PRNGKey(1), (50_000, 4))[0]
    np.testing.assert_array_equal(np.asarray(again).ravel(), eps)
    assert abs(np.corrcoef(np.asarray(other).ravel(), eps)[0, 1]) < 0.01


def test_normal_pair_takes_typed_keys_and_other_prng_implementations():
    a, b = normal_pair(jax.random.key(3), (7, 2))  # typed threefry key: the one-hash path
    assert a.shape == b.shape == (7, 2) and a.dtype == np.float32
    c, d = normal_pair(jax.random.key(3, impl="rbg"), (7, 2))  # 4-word key: two jax.random.normal draws
    assert c.shape == (7, 2) and not np.allclose(np.asarray(c), np.asarray(d))
