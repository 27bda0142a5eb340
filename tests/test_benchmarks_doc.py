"""benchmarks/RESULTS.md names commands that run, and a benchmark script runs end to end.

The scripts are run as the documentation says, ``python benchmarks/x.py`` from the repository
root, against whichever delyap this test session imports (an installed package, or a staged
build on PYTHONPATH): no benchmark is timed here except one --quick run of a few seconds.
"""
from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import delyap

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks"


def _env():
    # The scripts must import the same delyap as this session: put its parent folder on
    # PYTHONPATH (for an installed package that is site-packages, already there anyway).
    env = dict(os.environ)
    pkg_parent = str(Path(delyap.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join([pkg_parent, *filter(None, [env.get("PYTHONPATH")])])
    return env


def _load_checker():
    spec = importlib.util.spec_from_file_location("check_results", BENCH / "check_results.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_results_md_commands_name_existing_scripts_and_valid_options():
    run = subprocess.run([sys.executable, "benchmarks/check_results.py"], cwd=ROOT, env=_env(),
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "RESULTS.md: " in run.stdout and "problems" not in run.stdout


def test_checker_rejects_what_would_not_run(tmp_path, monkeypatch):
    """The checker must fail each kind of broken command, or its pass above means nothing."""
    monkeypatch.setenv("PYTHONPATH", _env()["PYTHONPATH"])
    checker = _load_checker()
    bad = {
        "`python benchmarks/bench_nonexistent.py`": "no such script",
        "`python benchmarks/bench_network_threads.py --no-such-option`":
            "has no option --no-such-option",
        "`python benchmarks/bench_network_threads.py --repeats two`": "rejects its arguments",
        "`python benchmarks/bench_network_threads.py --repeats`": "rejects its arguments",
        "`PYTHONPATH=python python benchmarks/bench_network_threads.py`": "source tree",
        "`python benchmarks/bench_network_threads.py [--quick]`": "placeholder",
        "see `benchmarks/no_such_file.py`": "no such file",
    }
    for line, why in bad.items():
        doc = tmp_path / "RESULTS.md"
        doc.write_text(f"# t\n\n{line}\n")
        problems = checker.check(doc)
        assert any(why in p for p in problems), (line, problems)
    # A valid command in a code block, behind interpreter flags and before a comment.
    doc.write_text("```bash\n$ python3 -W ignore benchmarks/bench_network_threads.py --quick "
                   "--sizes 10 20 --json out.json   # comment\n```\n")
    assert [p for p in checker.check(doc) if "bench_network_threads" in p] == []


def test_scripts_do_not_import_each_other_or_touch_sys_path():
    for script in sorted(BENCH.glob("**/*.py")):
        text = script.read_text()
        assert not re.search(r"sys\.path\.(insert|append|extend)|sys\.path\s*\+?=", text), script
        if script.name != "check_results.py":  # which looks for it
            assert "PYTHONPATH=python" not in text, script
        for line in text.splitlines():
            assert not line.lstrip().startswith(("import bench_", "from bench_")), (script, line)


def test_quick_benchmark_writes_json_with_its_context(tmp_path):
    pytest.importorskip("scipy")  # the script builds its networks with scipy.sparse
    out = tmp_path / "nt.json"
    run = subprocess.run([sys.executable, "benchmarks/bench_network_threads.py", "--quick",
                          "--json", str(out)], cwd=ROOT, env=_env(), capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    rec = json.loads(out.read_text())
    assert rec["command"].startswith("python benchmarks/bench_network_threads.py --quick --json")
    assert rec["options"]["quick"] is True
    # The delyap the script ran is the one this session imports, not ./python (no _core there).
    assert Path(rec["versions"]["delyap_path"]) == Path(delyap.__file__).resolve().parent
    assert Path(rec["versions"]["delyap_path"]) != ROOT / "python" / "delyap"
    assert rec["versions"]["numpy"] and rec["machine"]["cpu_count"] >= 1
    (row,) = rec["results"]["rows"]
    assert row["n"] == 2000 and row["edges"] > 0 and row["identical"] is True
    assert row["seconds_1_thread"] > 0 and row["seconds_2_threads"] > 0
    assert row["speedup"] == pytest.approx(row["seconds_1_thread"] / row["seconds_2_threads"])
