"""Plots as a reader reads them: the stability map's colour scale has ticks on both sides of 0,
its "sign unresolved" hatching covers whole grid cells (the same cells as the heat map), and the
labels say what is drawn (the demo sweep's axis and title both say local maxima)."""
import re

import numpy as np
import pytest

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

import delyap.demo  # noqa: E402
import delyap.plot  # noqa: E402
from delyap.plot import cell_edges, diverging_ticks, plot_solution, plot_sweep  # noqa: E402
from delyap.sgd.stability_map import StabilityMap  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _map(top, stderr, lr=None, batch_size=(1, 4, 16, 64)):
    """A StabilityMap with given λ₁ and standard errors (indexed [batch, lr])."""
    top = np.asarray(top, dtype=float)
    nb, nl = top.shape
    lr = np.geomspace(0.01, 3.0, nl) if lr is None else np.asarray(lr, dtype=float)
    return StabilityMap(lr=lr, batch_size=np.asarray(batch_size[:nb]), exponents=top[..., None],
                        stderr=np.asarray(stderr, dtype=float)[..., None],
                        gd_exponent=np.zeros(nl), mean_square=np.full((nb, nl), np.nan),
                        normal_dim=10, sharpness=1.0, sampling="without-replacement",
                        steps=1000)


def _tick_values(labels):
    out = []
    for t in labels:
        text = t.get_text().replace("\u2212", "-")
        if text:
            out.append(float(text))
    return np.array(out)


@pytest.mark.parametrize("stable, unstable", [(0.03, 20.0), (2e-4, 2.0)])
def test_stability_map_colorbar_labels_stable_magnitudes_too(stable, unstable):
    # Stable cells within 0.03 of zero, unstable ones up to 20: a single locator over [−0.03, 20]
    # puts ticks at 0, 5, … and none below 0; and one precision for the whole bar labels the
    # stable ticks of [−0.0002, 2] "−0" (the SGD demo's map).
    rng = np.random.default_rng(3)
    top = np.where(np.arange(12) < 7, -rng.uniform(stable / 30, stable, (4, 12)),
                   rng.uniform(unstable / 40, unstable, (4, 12)))
    ax = _map(top, np.full_like(top, 1e-6)).plot()
    cb = ax.collections[0].colorbar
    ax.figure.canvas.draw()
    values = _tick_values(cb.ax.get_yticklabels())
    lo, hi = top.min(), top.max()
    assert np.sum(values < 0) >= 2 and np.sum(values > 0) >= 2, values
    assert 0.0 in values
    assert np.all((values >= lo * (1 + 1e-9)) & (values <= hi * (1 + 1e-9)))
    # The labels are the tick values (no offset text hiding a factor).
    np.testing.assert_allclose(np.sort(values), np.sort(cb.get_ticks()), rtol=1e-6, atol=1e-12)


def test_colorbar_of_an_all_stable_map_has_no_positive_ticks():
    top = -np.linspace(0.01, 0.5, 24).reshape(3, 8)
    ax = _map(top, np.full_like(top, 1e-6)).plot()
    ticks = ax.collections[0].colorbar.get_ticks()
    assert np.sum(ticks < 0) >= 2 and not np.any(ticks > 0)


def test_unresolved_cells_are_hatched_whole():
    rng = np.random.default_rng(7)
    nb, nl = 4, 9
    top = rng.choice([-1.0, 1.0], (nb, nl)) * rng.uniform(0.01, 1.0, (nb, nl))
    unresolved = rng.random((nb, nl)) < 0.35
    unresolved[0, 0] = unresolved[-1, -1] = True  # corner cells: the outer edges too
    stderr = np.where(unresolved, np.abs(top), np.abs(top) / 10)  # |λ| ≤ 3 se exactly there
    m = _map(top, stderr)
    ax = m.plot()
    hatched = [c for c in ax.collections if c.get_hatch()]
    assert len(hatched) == 1
    paths = hatched[0].get_paths()
    assert len(paths) == unresolved.sum()
    # The cells of the grid, computed here: geometric midpoints between learning rates (the axis
    # is logarithmic), the outer cells as wide (in log lr) as their neighbours; batch rows ±½.
    lr = m.lr
    mid = np.sqrt(lr[1:] * lr[:-1])
    x_edges = np.concatenate([[lr[0] ** 2 / mid[0]], mid, [lr[-1] ** 2 / mid[-1]]])
    y_edges = np.arange(nb + 1) - 0.5
    found = set()
    for p in paths:
        v = p.vertices
        x0, x1, y0, y1 = v[:, 0].min(), v[:, 0].max(), v[:, 1].min(), v[:, 1].max()
        j = int(np.argmin(np.abs(x_edges - x0)))
        i = int(np.argmin(np.abs(y_edges - y0)))
        np.testing.assert_allclose([x0, x1, y0, y1],
                                   [x_edges[j], x_edges[j + 1], y_edges[i], y_edges[i + 1]],
                                   rtol=1e-12, atol=1e-12)
        # A rectangle: every vertex on its bounding box's corners.
        assert set(np.round(v[:, 0], 12)) <= {round(x0, 12), round(x1, 12)}
        found.add((i, j))
    assert found == set(zip(*np.nonzero(unresolved)))
    # Hatched area (in log lr × rows) is that of the unresolved cells.
    widths = np.diff(np.log(x_edges))
    expected = widths[np.nonzero(unresolved)[1]].sum()
    assert sum(widths[j] for _, j in found) == pytest.approx(expected)
    # The heat map's cells are the same cells.
    coords = ax.collections[0].get_coordinates()
    np.testing.assert_allclose(coords[0, :, 0], x_edges, rtol=1e-12)
    np.testing.assert_allclose(coords[:, 0, 1], y_edges, atol=1e-12)


def test_no_hatching_when_every_sign_is_resolved():
    top = np.linspace(-1, 1, 12).reshape(3, 4) + 0.05
    ax = _map(top, np.full_like(top, 1e-4)).plot()
    assert not [c for c in ax.collections if c.get_hatch()]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert not any("unresolved" in t for t in labels)


def test_cell_edges_and_diverging_ticks():
    np.testing.assert_allclose(cell_edges([1.0, 2.0, 4.0]), [0.5, 1.5, 3.0, 5.0])
    np.testing.assert_allclose(cell_edges([1.0, 10.0, 100.0], log=True),
                               [10**-0.5, 10**0.5, 10**1.5, 10**2.5])
    np.testing.assert_allclose(cell_edges([3.0]), [2.5, 3.5])
    t = diverging_ticks(-0.03, 20.0)
    assert 0.0 in t and np.sum(t < 0) >= 2 and np.sum(t > 0) >= 2
    assert t.min() >= -0.03 and t.max() <= 20.0
    assert not np.any(diverging_ticks(-2.0, 0.0) > 0)


def test_demo_sweep_axis_says_what_the_title_says(monkeypatch, tmp_path):
    """The demo plots local maxima: its y-label must not call them late-time samples."""
    drawn = {}
    real = delyap.plot.plot_sweep

    def spy(param, samples, path=None, **kw):
        drawn["ax"] = real(param, samples, None, **kw)
        drawn["samples"] = np.asarray(samples)

    monkeypatch.setattr(delyap.plot, "plot_sweep", spy)
    delyap.demo.run_demo(str(tmp_path), n_sweep=12)
    ax = drawn["ax"]
    assert "local maxima" in ax.get_title() and "local maxima" in ax.get_ylabel()
    assert "late-time samples" not in ax.get_ylabel()
    assert ax.get_xlabel() == "τ"
    # What is drawn is what the label says: each plotted value is a local maximum of x.
    ys = ax.lines[0].get_ydata()
    assert np.array_equal(np.sort(ys[np.isfinite(ys)]),
                          np.sort(drawn["samples"][np.isfinite(drawn["samples"])]))
    assert (tmp_path / "attractor.png").stat().st_size > 10_000


def test_plot_sweep_default_label_and_plot_solution_labels():
    ax = plot_sweep(np.array([1.0, 2.0]), np.array([[0.1, 0.2], [0.3, np.nan]]))
    assert ax.get_ylabel() == "x (late-time samples)"

    class Sol:  # the attributes plot_solution reads
        t = np.linspace(0, 1, 11)
        batch_size = 3
        y = np.random.default_rng(0).random((3, 11, 2))

    ax = plot_solution(Sol())
    assert ax.get_xlabel() == "t" and ax.get_ylabel()
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    # One line per (trajectory, component), each named by both.
    assert len(labels) == 6
    assert all(re.search(r"\b[0-2]\b.*x\[[01]\]", s) for s in labels), labels
