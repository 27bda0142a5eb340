"""The public API's common surface: lazy submodules, one result base, threads= everywhere,
typed signatures and the checked-in stub of the compiled module."""
import ast
import inspect
import os
import re
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

import delyap as dl
from delyap import _core, sgd
from delyap._result import Result

MG = dl.rhs.mackey_glass(tau=2.0)


# ----------------------------------------------------------------------------- lazy submodules
def test_import_is_light_and_submodules_are_lazy():
    # A fresh interpreter: this test process has imported torch/matplotlib elsewhere.
    code = (
        "import sys, delyap\n"
        "heavy = lambda: sorted(m for m in ('torch', 'matplotlib') if m in sys.modules)\n"
        "assert heavy() == [], heavy()\n"
        "assert 'delyap.sgd' not in sys.modules and 'delyap.plot' not in sys.modules\n"
        "assert {'sgd', 'plot', 'networks', 'history', 'cli'} <= set(dir(delyap))\n"
        "import types\n"
        "for name in ('sgd', 'plot', 'networks', 'history', 'rhs', 'lyapunov', 'solution',\n"
        "             'device', 'errors', 'cli', 'demo'):\n"
        "    mod = getattr(delyap, name)\n"
        "    assert isinstance(mod, types.ModuleType) and mod.__name__ == 'delyap.' + name\n"
        "assert callable(delyap.sgd.gram_lyapunov) and callable(delyap.plot.plot_solution)\n"
        "assert heavy() == [], heavy()  # neither sgd nor plot imports them before use\n"
        "try:\n"
        "    delyap.no_such_thing\n"
        "except AttributeError as e:\n"
        "    assert 'no_such_thing' in str(e)\n"
        "else:\n"
        "    raise SystemExit('no AttributeError')\n"
        "print('ok')\n")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(Path(dl.__file__).parent.parent)]
                                        + [p for p in [env.get("PYTHONPATH")] if p])
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


# ----------------------------------------------------------------------------- one result base
def _sgd_K():
    rng = np.random.default_rng(3)
    J = rng.standard_normal((6, 10))
    return J @ J.T


# Each public result type, made once succeeding and once failing (throw=False). The failures
# are forced honestly: a step budget too small, or a product whose entries overflow between
# two QR steps (renorm_interval long enough for |1 − η κ|^n to exceed the double range).
def _results():
    K = _sgd_K()
    huge = 1e6  # η κ/N ≫ 1: |1 − η κ/N|^500 overflows
    return {
        "DDESolution": (lambda: dl.solve_dde(MG, 0.5, (0, 10)),
                        lambda: dl.solve_dde(MG, 0.5, (0, 1000), max_steps=5, throw=False)),
        "DDESolution batch": (
            lambda: dl.solve_dde(dl.rhs.mackey_glass(tau=[1.0, 2.0]), 0.5, (0, 10)),
            lambda: dl.solve_dde(dl.rhs.mackey_glass(tau=[1.0, 2.0]), 0.5, (0, 1000),
                                 max_steps=5, throw=False)),
        "LyapunovResult": (
            lambda: dl.iid_product(np.array([[[0.5]], [[2.0]]]), steps=1000),
            lambda: dl.iid_product(np.array([[[1e200]], [[1e250]]]), steps=100,
                                   renorm_interval=10, throw=False)),
        "SGDLyapunovResult": (
            lambda: sgd.gram_lyapunov(K, 0.01, 2, steps=2000),
            lambda: sgd.gram_lyapunov(K, huge, 2, steps=2000, renorm_interval=500,
                                      throw=False)),
        "StabilityMap": (
            lambda: sgd.stability_map(K, lr=[0.01, 0.02], batch_size=[2, 3], steps=2000,
                                      mean_square=False),
            lambda: sgd.stability_map(K, lr=[0.01, huge], batch_size=[2, 3], steps=2000,
                                      renorm_interval=500, mean_square=False, throw=False)),
    }


def _quiet(make):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dl.ConvergenceWarning)
        return make()


@pytest.mark.parametrize("kind", list(_results()))
def test_every_result_has_the_common_surface(kind):
    make_ok, make_bad = _results()[kind]
    ok, bad = _quiet(make_ok), _quiet(make_bad)
    for res in (ok, bad):
        assert isinstance(res, Result)
        assert isinstance(res.info, dict)
        assert isinstance(res.message, str) and res.message
        d = res.to_dict()
        assert isinstance(d, dict)
        np.testing.assert_array_equal(d["status"], np.asarray(res.status))
    assert ok.success and np.all(np.asarray(ok.status) == 0) and ok.failed.size == 0
    ok.raise_for_status()  # no failure, no error
    assert not bad.success
    status = np.asarray(bad.status).reshape(-1)
    np.testing.assert_array_equal(bad.failed, np.flatnonzero(status != 0))
    names = np.asarray(bad.status_names, dtype=object).reshape(-1)
    assert [dl.STATUS_NAMES[int(s)] for s in status] == list(names)
    with pytest.raises(dl.IntegrationError) as ei:
        bad.raise_for_status()
    assert ei.value.solution is bad
    np.testing.assert_array_equal(ei.value.failed, bad.failed)
    assert bad.message in str(ei.value)


@pytest.mark.parametrize("kind", ["DDESolution", "LyapunovResult", "SGDLyapunovResult",
                                  "StabilityMap"])
def test_throw_true_raises_what_raise_for_status_raises(kind):
    make_bad = _results()[kind][1]
    bad = _quiet(make_bad)
    with pytest.raises(dl.IntegrationError) as later:
        bad.raise_for_status()
    # The same call with throw=True (the default).
    with pytest.raises(dl.IntegrationError) as thrown:
        _quiet(lambda: _rerun_throwing(kind))
    assert str(thrown.value).startswith(str(later.value))
    assert "throw=False" in str(thrown.value)  # ... plus the hint of how to get the result
    assert type(thrown.value.solution) is type(bad)


def _rerun_throwing(kind):
    K = _sgd_K()
    if kind == "DDESolution":
        return dl.solve_dde(MG, 0.5, (0, 1000), max_steps=5)
    if kind == "LyapunovResult":
        return dl.iid_product(np.array([[[1e200]], [[1e250]]]), steps=100, renorm_interval=10)
    if kind == "SGDLyapunovResult":
        return sgd.gram_lyapunov(K, 1e6, 2, steps=2000, renorm_interval=500)
    return sgd.stability_map(K, lr=[0.01, 1e6], batch_size=[2, 3], steps=2000,
                             renorm_interval=500, mean_square=False)


def test_stability_map_failures_are_flat_indices_into_batch_by_lr():
    bad = _quiet(_results()["StabilityMap"][1])
    # lr 1e6 (column 1) overflows for both batch sizes; lr 0.01 (column 0) does not.
    np.testing.assert_array_equal(bad.status[:, 0], 0)
    assert np.all(bad.status[:, 1] != 0)
    np.testing.assert_array_equal(bad.failed, [1, 3])
    assert bad.status_names[0][0] == "success" and bad.status_names[1][1] == "non_finite"


def test_solution_info_and_deprecated_extras():
    sol = dl.solve_dde(MG, 0.5, (0, 5))
    assert sol.info["output"] == "state"
    with pytest.warns(DeprecationWarning, match="info"):
        extras = sol.extras
    assert extras is sol.info


def test_lyapunov_spectrum_result_surface():
    res = _quiet(lambda: dl.lyapunov_spectrum(MG, 0.5, 1, 50.0, threads=1))
    assert isinstance(res, Result) and res.success
    res.raise_for_status()
    assert res.to_dict()["info"]["t_total"] == 50.0


# ----------------------------------------------------------------------------- threads=
def _thread_calls():
    K = _sgd_K()
    mats = np.array([[[0.5]], [[2.0]]])
    return {
        "solve_dde": lambda th: dl.solve_dde(MG, 0.5, (0, 5), threads=th),
        "iid_product": lambda th: dl.iid_product(mats, steps=100, threads=th),
        "iid_product sampler": lambda th: dl.iid_product(lambda rng: mats[0], steps=10,
                                                         threads=th),
        "lyapunov_spectrum": lambda th: dl.lyapunov_spectrum(MG, 0.5, 1, 20.0, threads=th),
        "gram_lyapunov": lambda th: sgd.gram_lyapunov(K, 0.01, 2, steps=100, threads=th),
        "stability_map": lambda th: sgd.stability_map(K, lr=[0.01], batch_size=[2], steps=100,
                                                      mean_square=False, threads=th),
    }


@pytest.mark.parametrize("name", list(_thread_calls()))
def test_threads_is_validated_everywhere(name):
    call = _thread_calls()[name]
    with pytest.raises(ValueError, match="threads"):
        call(0)
    with pytest.raises(TypeError, match="threads"):
        call("2")
    with pytest.raises(TypeError, match="threads"):
        call(1.5)


@pytest.mark.parametrize("name", ["solve_dde", "iid_product", "lyapunov_spectrum",
                                  "gram_lyapunov", "stability_map"])
def test_threads_do_not_change_results(name):
    call = _thread_calls()[name]
    one, two = _quiet(lambda: call(1)), _quiet(lambda: call(2))
    a, b = one.to_dict(), two.to_dict()
    for key in ("y", "exponents"):
        if key in a:
            np.testing.assert_array_equal(a[key], b[key])


def test_hessian_lyapunov_takes_threads_and_throw():
    pytest.importorskip("torch")
    params = inspect.signature(sgd.hessian_lyapunov).parameters
    assert params["threads"].default is None and params["throw"].default is True
    with pytest.raises(ValueError, match="threads"):  # checked before the model
        sgd.hessian_lyapunov(None, None, None, 0.1, 1, steps=10, threads=0)


# ----------------------------------------------------------------------------- typed signatures
def _public_functions():
    mods = [dl, dl.rhs, sgd, dl.lyapunov, dl.networks, dl.history]
    seen = {}
    for mod in mods:
        for name in getattr(mod, "__all__", []):
            obj = getattr(mod, name)
            if inspect.isfunction(obj) and obj.__module__.startswith("delyap"):
                seen[f"{obj.__module__}.{obj.__qualname__}"] = obj
    return seen


@pytest.mark.parametrize("qualname", sorted(_public_functions()))
def test_public_functions_are_annotated(qualname):
    fn = _public_functions()[qualname]
    sig = inspect.signature(fn)
    missing = [p.name for p in sig.parameters.values()
               if p.annotation is inspect.Parameter.empty
               and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    assert not missing, f"{qualname}: parameters without a type: {missing}"
    assert sig.return_annotation is not inspect.Signature.empty, f"{qualname}: no return type"


# ----------------------------------------------------------------------------- the _core stub
STUBS = Path(dl.__file__).parent / "_core"  # a stub package: _core has the submodule _testing


def _stub_tree(name):
    path = STUBS / f"{name}.pyi"
    assert path.is_file(), f"python/delyap/_core/{name}.pyi is missing"
    text = path.read_text()
    assert text.startswith("# Generated by pybind11-stubgen")
    return ast.parse(text)


def _doc_arguments(obj) -> list:
    """Argument names from pybind11's signature line (``name(a: T, b: T = 1) -> R``)."""
    first = (obj.__doc__ or "").splitlines()[0] if obj.__doc__ else ""
    inside = first[first.find("(") + 1: first.rfind(") ->")]
    return [a for a in re.findall(r"(?:^|, )(\w+):", inside) if a != "self"]


@pytest.mark.parametrize("name", ["__init__", "_testing"])
def test_core_stub_matches_the_compiled_module(name):
    """Stale-stub check: the names and argument names of every function and class in
    ``_core/*.pyi`` are those of the compiled module (regenerate as its header says)."""
    module = _core if name == "__init__" else getattr(_core, name)
    tree = _stub_tree(name)
    stub_funcs, stub_classes = {}, {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            stub_funcs[node.name] = [a.arg for a in node.args.args + node.args.kwonlyargs
                                     if a.arg != "self"]
        elif isinstance(node, ast.ClassDef):
            members = {n.name for n in node.body if isinstance(n, ast.FunctionDef)}
            members |= {n.target.id for n in node.body if isinstance(n, ast.AnnAssign)
                        and isinstance(n.target, ast.Name)}
            stub_classes[node.name] = {n for n in members if not n.startswith("_")}
    live_funcs = {n for n in dir(module) if not n.startswith("__")
                  and callable(getattr(module, n)) and not inspect.isclass(getattr(module, n))}
    live_classes = {n for n in dir(module) if inspect.isclass(getattr(module, n))}
    hint = f"; regenerate python/delyap/_core/{name}.pyi (see its header)"
    assert set(stub_funcs) == live_funcs, f"functions differ{hint}"
    assert set(stub_classes) == live_classes, f"classes differ{hint}"
    for fn in sorted(live_funcs):
        assert stub_funcs[fn] == _doc_arguments(getattr(module, fn)), f"{fn}{hint}"
    for cls in sorted(live_classes):
        live = {n for n in vars(getattr(module, cls)) if not n.startswith("_")}
        assert stub_classes[cls] == live, f"{cls}: members differ{hint}"


def test_package_ships_type_information():
    here = Path(dl.__file__).parent
    assert (here / "py.typed").is_file()
    assert (here / "_core" / "__init__.pyi").is_file()
    assert (here / "_core" / "_testing.pyi").is_file()
