"""The Butcher tableaux the core uses satisfy their order conditions."""
import numpy as np
import pytest

from delyap import _core, _testing

METHODS = {"Euler": 1, "RK4": 4, "BS3": 3, "DP5": 5}


def tab(name):
    t = _testing.tableau(getattr(_core.Method, name))
    s = t["stages"]
    a = np.array([row + [0.0] * (s - len(row)) for row in t["a"]])
    return t, a, np.array(t["b"]), np.array(t["c"]), np.array(t["e"])


@pytest.mark.parametrize("name", METHODS)
def test_row_sums_and_weights(name):
    t, a, b, c, e = tab(name)
    np.testing.assert_allclose(a.sum(axis=1), c, atol=1e-15)
    assert b.sum() == pytest.approx(1.0, abs=1e-15)
    assert np.all(np.triu(a) == 0)  # explicit
    if t["error_order"] > 0:
        assert e.sum() == pytest.approx(0.0, abs=1e-15)


@pytest.mark.parametrize("name", METHODS)
def test_order_conditions(name):
    """Quadrature conditions Σ b c^(k−1) = 1/k up to the order, plus the tree conditions up
    to order 4 (enough to distinguish a typo in any coefficient)."""
    t, a, b, c, _ = tab(name)
    p = t["order"]
    for k in range(1, p + 1):
        assert b @ c ** (k - 1) == pytest.approx(1.0 / k, abs=1e-14), k
    if p >= 3:
        assert b @ (a @ c) == pytest.approx(1 / 6, abs=1e-14)
    if p >= 4:
        assert b @ (c * (a @ c)) == pytest.approx(1 / 8, abs=1e-14)
        assert b @ (a @ c**2) == pytest.approx(1 / 12, abs=1e-14)
        assert b @ (a @ (a @ c)) == pytest.approx(1 / 24, abs=1e-14)
    if p >= 5:
        assert b @ c**4 == pytest.approx(1 / 5, abs=1e-14)
        assert b @ (c**2 * (a @ c)) == pytest.approx(1 / 10, abs=1e-14)
        assert b @ (a @ c**3) == pytest.approx(1 / 20, abs=1e-14)


@pytest.mark.parametrize("name", ["BS3", "DP5"])
def test_embedded_pair_order(name):
    """b − e is the embedded method: its weights satisfy the conditions of one order less."""
    t, a, b, c, e = tab(name)
    bh = b - e
    for k in range(1, t["error_order"] + 1):
        assert bh @ c ** (k - 1) == pytest.approx(1.0 / k, abs=1e-14)
    assert bh @ c ** t["order"] != pytest.approx(1.0 / (t["order"] + 1), abs=1e-6)


def test_dp5_dense_output_ends_at_the_step():
    """At θ = 1 the continuous extension reproduces the step's weights b."""
    t, _, b, _, _ = tab("DP5")
    dense = np.array(t["dense"])
    np.testing.assert_allclose(dense.sum(axis=1), b, atol=1e-12)
