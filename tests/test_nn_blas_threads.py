"""While a delyap.nn pass runs, scipy's OpenBLAS is pinned to one thread (the pass's threads=
decides its parallelism: OpenBLAS splitting its small products over its own threads made
training steps 1.4–2.3× slower); the count the process had is restored afterwards, also after
a pass that fails."""
import threading
import time

import pytest

torch = pytest.importorskip("torch")
threadpoolctl = pytest.importorskip("threadpoolctl")
pytest.importorskip("scipy.linalg")

from delyap.nn import neural_solve  # noqa: E402


def _scipy_openblas(controller):
    libs = [lib for lib in controller.lib_controllers
            if lib.internal_api == "openblas" and "scipy" in lib.filepath]
    if not libs:
        pytest.skip("scipy is not linked to its bundled OpenBLAS here")
    return libs


def _pass_args(batch, dim, hidden, seed=0):
    g = torch.Generator().manual_seed(seed)
    r = lambda *s: torch.randn(*s, generator=g, dtype=torch.float64) / s[-1] ** 0.5  # noqa: E731
    return (torch.randn(batch, dim, generator=g, dtype=torch.float64), r(hidden, dim),
            r(1, hidden, dim), r(hidden), r(dim, hidden), torch.tensor([0.3], dtype=torch.float64))


def test_openblas_runs_single_threaded_during_a_pass_and_is_restored():
    controller = threadpoolctl.ThreadpoolController()
    libs = _scipy_openblas(controller)
    with controller.limit(limits=2, user_api="blas"):
        assert {lib.get_num_threads() for lib in libs} == {2}
        seen: list = []
        # dim 32 > 8: the layer products go through scipy's dgemm. A pass of ~0.3 s or more on
        # another thread (the GIL is released inside) while this one reads the setting.
        args = _pass_args(1024, 32, 128)
        worker = threading.Thread(target=lambda: neural_solve(
            *args, method="RK4", dt=0.3 / 64, threads=1))
        worker.start()
        while worker.is_alive():
            seen.append(tuple(lib.get_num_threads() for lib in libs))
            time.sleep(0.002)
        worker.join()
        assert any(1 in s for s in seen)  # pinned while the pass ran
        assert {lib.get_num_threads() for lib in libs} == {2}  # and restored
        # A pass that fails (bad shapes are caught before; max_steps here) restores it too.
        with pytest.raises(RuntimeError, match="max_steps"):
            neural_solve(*_pass_args(8, 16, 8), method="DP5", rtol=1e-12, atol=1e-14,
                         max_steps=3)
        assert {lib.get_num_threads() for lib in libs} == {2}

