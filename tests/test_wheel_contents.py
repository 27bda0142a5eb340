"""Packaging: what the wheel holds, that the suite ran on the installed wheel, the release build
configuration ([tool.cibuildwheel]) and .ci/install's source stamp.

.ci/wheel builds the sdist, the wheel from that sdist, repairs it with auditwheel, installs it in a
fresh venv and runs this suite from a folder without the package source; it names the repaired
wheel, the sdist and the source tree in DELYAP_WHEEL, DELYAP_SDIST and DELYAP_SOURCE_TREE. The
checks that need them skip in an ordinary run from the source tree."""
import base64
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from importlib.metadata import distribution
from pathlib import Path

import pytest

import delyap

WHEEL = os.environ.get("DELYAP_WHEEL")
SDIST = os.environ.get("DELYAP_SDIST")
SOURCE_TREE = os.environ.get("DELYAP_SOURCE_TREE")
ROOT = Path(__file__).resolve().parents[1]  # the repository, or .ci/wheel's copy of the tests
needs_wheel = pytest.mark.skipif(not (WHEEL and SDIST and SOURCE_TREE),
                                 reason="run by .ci/wheel (DELYAP_WHEEL, DELYAP_SDIST, "
                                        "DELYAP_SOURCE_TREE)")
# The stubs and the marker that make the installed package typed (PEP 561).
TYPING_FILES = {"delyap/py.typed", "delyap/_core/__init__.pyi", "delyap/_core/_testing.pyi"}
EXTENSION = re.compile(r"delyap/(_\w+)\.[\w.-]*\.so")  # the compiled modules, by name


def _wheel_names() -> list:
    with zipfile.ZipFile(WHEEL) as z:
        return [n for n in z.namelist() if not n.endswith("/")]  # files, not folder entries


def _sdist_package_files() -> set:
    """The package's files in the sdist, as they should sit in the wheel (delyap/...)."""
    with tarfile.open(SDIST) as t:
        names = [m.name for m in t.getmembers() if m.isfile()]
    out = set()
    for n in names:
        parts = n.split("/", 1)[1]  # drop the sdist's top folder delyap-<version>/
        if parts.startswith("python/delyap/"):
            out.add(parts[len("python/"):])
    return out


@needs_wheel
def test_the_suite_imports_the_installed_wheel_not_the_source_tree():
    here = Path(delyap.__file__).resolve()
    assert Path(SOURCE_TREE).resolve() not in here.parents
    assert sys.prefix != sys.base_prefix, "not running in a venv"
    assert Path(sys.prefix).resolve() in here.parents, f"{here} is not in the venv {sys.prefix}"
    from delyap import _core

    assert Path(_core.__file__).resolve().parent == here.parent


@needs_wheel
def test_installed_files_are_the_ones_the_wheel_recorded():
    """Every file of the RECORD is there with its recorded hash (nothing else was installed over
    it), and the typing files and the compiled core are among them."""
    dist = distribution("delyap")
    files = dist.files or []
    names = {str(f) for f in files}
    assert TYPING_FILES <= names
    assert {m.group(1) for n in names if (m := EXTENSION.fullmatch(n))} == {"_core"}
    checked = 0
    for f in files:
        if f.hash is None:  # RECORD itself
            continue
        digest = hashlib.new(f.hash.mode, f.locate().read_bytes()).digest()
        assert base64.urlsafe_b64encode(digest).rstrip(b"=").decode() == f.hash.value, str(f)
        checked += 1
    assert checked >= len(_sdist_package_files())


@needs_wheel
def test_wheel_holds_the_package_the_stubs_and_one_cpu_extension():
    names = _wheel_names()
    pkg = {n for n in names if n.startswith("delyap/")}
    source = _sdist_package_files()
    assert TYPING_FILES <= source, "the sdist lost the stubs or py.typed"
    missing = source - pkg
    assert not missing, f"in the sdist but not in the wheel: {sorted(missing)}"
    # What the build adds: the CPU core only (DELYAP_CUDA=OFF, no emulation), and no stamp of
    # .ci/install (a release wheel says nothing about a developer's tree).
    added = pkg - source
    assert {m.group(1) for n in added if (m := EXTENSION.fullmatch(n))} == {"_core"}, added
    assert all(EXTENSION.fullmatch(n) for n in added), added
    # Nothing but the package and its metadata: no build folder, tests or benchmarks.
    tops = {n.split("/", 1)[0] for n in names}
    assert tops == {"delyap", f"delyap-{delyap.__version__}.dist-info"}, tops


@needs_wheel
def test_wheel_is_repaired_to_a_manylinux_tag():
    names = _wheel_names()
    with zipfile.ZipFile(WHEEL) as z:
        meta = z.read(next(n for n in names if n.endswith(".dist-info/WHEEL"))).decode()
    tags = re.findall(r"^Tag: (\S+)$", meta, re.M)
    assert tags and all(re.fullmatch(r"cp3\d+-cp3\d+-manylinux_\d+_\d+_\w+", t) for t in tags), tags
    assert re.search(r"-manylinux_\d+_\d+_\w+\.whl$", Path(WHEEL).name)


@needs_wheel
def test_cuda_tests_skip_without_the_emulation_module():
    """The wheel has no CUDA module here and no emulation: tests/test_cuda.py has no backend."""
    import importlib.util

    assert importlib.util.find_spec("delyap._cuda_emulated") is None
    from cuda_backends import BACKENDS

    assert BACKENDS == [] or BACKENDS == ["gpu"]


# ---- the release build configuration ---------------------------------------------------------

def _pyproject() -> dict:
    if sys.version_info >= (3, 11):
        import tomllib
    else:
        tomllib = pytest.importorskip("tomli")
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_cibuildwheel_builds_every_supported_cpython_on_both_linux_arches():
    cfg = _pyproject()
    low = re.fullmatch(r">=\s*3\.(\d+)", cfg["project"]["requires-python"])
    assert low, "requires-python is a lower bound"
    cibw = cfg["tool"]["cibuildwheel"]
    built = sorted(int(m) for m in re.findall(r"\bcp3(\d+)-\*", cibw["build"]))
    assert built == list(range(int(low.group(1)), 14)), "CPython from requires-python to 3.13"
    # ruff and mypy check for the same oldest Python.
    assert cfg["tool"]["ruff"]["target-version"] == f"py3{low.group(1)}"
    assert cfg["tool"]["mypy"]["python_version"] == f"3.{low.group(1)}"
    linux = cibw["linux"]
    assert sorted(linux["archs"]) == ["aarch64", "x86_64"]
    assert "eigen" in linux["before-all"].lower()
    assert "musllinux" in cibw["skip"]


def test_cibuildwheel_builds_cpu_only_and_tests_as_ci_does():
    cibw = _pyproject()["tool"]["cibuildwheel"]
    defines = cibw["config-settings"]
    assert defines["cmake.define.DELYAP_CUDA"] == "OFF"
    assert defines.get("cmake.define.DELYAP_CUDA_EMULATION", "OFF") == "OFF"
    # The suite on the installed wheel, from the copied tests (not from the project folder).
    assert set(cibw["test-extras"]) >= {"test", "plot"}
    assert {"tests", "pyproject.toml"} <= set(cibw["test-sources"])
    assert re.fullmatch(r"python -m pytest .*\btests", cibw["test-command"])
    assert "{project}" not in cibw["test-command"]


# ---- .ci/install's stamp: reinstall exactly when what is built changed ------------------------

STAMP = ROOT / ".ci" / "source_stamp"


@pytest.mark.skipif(not STAMP.is_file() or shutil.which("git") is None,
                    reason="needs the repository's .ci/source_stamp and git")
def test_source_stamp_changes_with_what_the_build_reads_and_nothing_else(tmp_path):
    repo = tmp_path / "repo"
    (repo / ".ci").mkdir(parents=True)
    shutil.copy(STAMP, repo / ".ci" / "source_stamp")
    (repo / "cpp").mkdir()
    (repo / "python").mkdir()
    (repo / "cpp" / "core.hpp").write_text("int f();\n")
    (repo / "python" / "mod.py").write_text("x = 1\n")
    (repo / "CMakeLists.txt").write_text("project(x)\n")
    (repo / "pyproject.toml").write_text("[project]\n")
    (repo / "README.md").write_text("readme\n")
    (repo / ".gitignore").write_text("build/\n")

    def git(*args):
        subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=repo,
                       check=True, capture_output=True)

    def stamp(*options):
        out = subprocess.run(["bash", str(repo / ".ci" / "source_stamp"), *options],
                             capture_output=True, text=True, check=True).stdout.strip()
        return out

    outside = stamp()
    assert outside == ""  # not a git work tree yet: nothing to compare, always install
    git("init", "-q")
    git("add", ".")
    git("commit", "-qm", "init")
    base = stamp("-Cx")
    assert re.fullmatch(r"[0-9a-f]{64}", base)
    assert stamp("-Cx") == base  # deterministic
    assert stamp("-Cy") != base  # other build options
    (repo / "README.md").write_text("edited\n")  # not read by the build
    (repo / "build").mkdir()
    (repo / "build" / "junk.o").write_text("ignored\n")  # an ignored build output
    assert stamp("-Cx") == base
    (repo / "python" / "mod.py").write_text("x = 2\n")  # an uncommitted edit
    edited = stamp("-Cx")
    assert edited != base
    git("commit", "-qam", "edit")  # committing it changes nothing that is built
    assert stamp("-Cx") == edited
    (repo / "python" / "new.py").write_text("")  # a new file, not yet added
    assert stamp("-Cx") != edited
    (repo / "python" / "new.py").unlink()
    assert stamp("-Cx") == edited
    (repo / "cpp" / "core.hpp").unlink()  # a tracked file deleted from the work tree
    assert stamp("-Cx") not in (edited, "")
