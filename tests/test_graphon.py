"""Graphs sampled from graphons (delyap.networks.sample_graph) and the frequency helpers.

Edge counts are sums of independent Bernoulli(W(x_i, x_j)) variables: every check compares a
count with its exact mean and binomial standard deviation (z ≤ 4.5), seeded.
"""
import numpy as np
import pytest
import scipy.stats as st

from delyap.networks import frequencies, sample_graph

Z = 4.5


def zscore(count, probs):
    probs = np.asarray(probs, dtype=float)
    return (count - probs.sum()) / np.sqrt((probs * (1 - probs)).sum())


def offdiag(P):
    P = P.copy()
    np.fill_diagonal(P, 0.0)
    return P


def test_constant_graphon_density_and_no_loops():
    n, p = 600, 0.07
    A, x = sample_graph(p, n, seed=3)
    assert A.shape == (n, n) and A.format == "csr" and A.has_sorted_indices
    np.testing.assert_allclose(x, (np.arange(n) + 0.5) / n)
    assert A.diagonal().sum() == 0
    assert abs(zscore(A.nnz, np.full(n * (n - 1), p))) < Z
    # In-degrees are Binomial(n − 1, p): their spread too.
    deg = np.diff(A.indptr)
    assert abs(deg.var() / ((n - 1) * p * (1 - p)) - 1) < 0.25


def test_callable_graphon_degrees_by_position():
    """W(x, y) = x·y: node i's in-degree has mean x_i Σ_{j≠i} x_j; per tenth of [0, 1] the
    summed degrees match within binomial errors (a sampler ignoring W, or swapping the
    arguments on a non-symmetric W, fails)."""
    n = 800
    W = lambda x, y: x * y**2  # noqa: E731  (not symmetric: row/column order matters)
    A, x = sample_graph(W, n, seed=5)
    P = offdiag(np.outer(x, x**2))
    deg = np.diff(A.indptr)
    out_deg = np.bincount(A.indices, minlength=n)
    for b in np.array_split(np.arange(n), 10):
        assert abs(zscore(deg[b].sum(), P[b].ravel())) < Z
        assert abs(zscore(out_deg[b].sum(), P[:, b].ravel())) < Z
    assert abs(zscore(A.nnz, P.ravel())) < Z


def test_undirected_is_symmetric_with_pair_probabilities():
    n = 500
    W = lambda x, y: 0.5 * (x + y) * 0.3  # noqa: E731
    A, x = sample_graph(W, n, directed=False, seed=1)
    assert (A != A.T).nnz == 0 and A.diagonal().sum() == 0
    iu = np.triu_indices(n, 1)
    P = 0.15 * (x[:, None] + x[None, :])
    assert abs(zscore(A.nnz // 2, P[iu])) < Z


def test_random_positions_node_weights_and_seeds():
    n = 300
    A1, x1 = sample_graph(0.2, n, seed=7, positions="random", node_weights=lambda x: 1 + x)
    A2, x2 = sample_graph(0.2, n, seed=7, positions="random", node_weights=lambda x: 1 + x)
    A3, _ = sample_graph(0.2, n, seed=8, positions="random")
    assert np.all(np.diff(x1) >= 0) and 0 <= x1[0] and x1[-1] <= 1
    np.testing.assert_array_equal(x1, x2)
    assert (A1 != A2).nnz == 0
    assert (A1.astype(bool) != A3.astype(bool)).nnz > 0
    # The edge j → i carries node j's weight.
    np.testing.assert_allclose(A1.data, 1 + x1[A1.indices])


def test_large_sparse_graph_without_dense_arrays():
    n = 200_000
    p = 10.0 / n
    A, _ = sample_graph(p, n, seed=0)
    mean, sd = p * n * (n - 1), np.sqrt(p * (1 - p) * n * (n - 1))
    assert abs(A.nnz - mean) < Z * sd


def test_bad_graphons_raise():
    with pytest.raises(ValueError, match="W"):
        sample_graph(1.2, 10)
    with pytest.raises(ValueError, match="W"):
        sample_graph(lambda x, y: 1.5 + 0 * x, 50)
    with pytest.raises(ValueError, match="W"):
        sample_graph(lambda x, y: x - 0.5, 50)
    # A bound below W where pairs are proposed is caught.
    with pytest.raises(ValueError, match="w_max"):
        sample_graph(lambda x, y: 0.5 + 0 * x, 200, w_max=0.1)
    with pytest.raises(ValueError, match="n"):
        sample_graph(0.5, 0)
    with pytest.raises(ValueError, match="positions"):
        sample_graph(0.5, 10, positions="halton")
    with pytest.raises(ValueError, match="node_weights"):
        sample_graph(0.5, 10, node_weights=np.ones(3))


@pytest.mark.parametrize("dist,ref", [
    ("lorentzian", lambda u, c, w: st.cauchy.ppf(u, loc=c, scale=w)),
    ("gaussian", lambda u, c, w: st.norm.ppf(u, loc=c, scale=w)),
    ("uniform", lambda u, c, w: st.uniform.ppf(u, loc=c - w, scale=2 * w)),
])
def test_frequency_quantiles_match_scipy(dist, ref):
    n, c, w = 101, 0.3, 0.7
    u = (np.arange(n) + 0.5) / n
    np.testing.assert_allclose(frequencies(n, dist, center=c, width=w), ref(u, c, w),
                               rtol=1e-12, atol=1e-12)
    draws = frequencies(4000, dist, center=c, width=w, deterministic=False, seed=2)
    np.testing.assert_array_equal(draws, frequencies(4000, dist, center=c, width=w,
                                                     deterministic=False, seed=2))
    # The sample median is within 4.5 standard errors of the centre.
    se = 1.0 / (2 * np.sqrt(4000) * {"lorentzian": st.cauchy.pdf(0, scale=w),
                                     "gaussian": st.norm.pdf(0, scale=w),
                                     "uniform": 1 / (2 * w)}[dist])
    assert abs(np.median(draws) - c) < Z * se


def test_frequency_bad_input():
    with pytest.raises(ValueError, match="width"):
        frequencies(10, width=0.0)
    with pytest.raises(ValueError, match="distribution"):
        frequencies(10, "laplace")
    with pytest.raises(ValueError, match="n"):
        frequencies(0)
