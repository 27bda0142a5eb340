"""The command line: every failure is one line "delyap: error: …" on stderr with exit status 2,
found before the long work starts (issue 12). The listed failures run `python -m delyap` in a
subprocess; the option-by-option checks call delyap.cli.main in-process (faster)."""
import argparse
import os
import subprocess
import sys

import numpy as np
import pytest

from delyap import cli


def run(*args, block=(), cwd=None):
    """`python -m delyap args` (with ``block``ed modules made unimportable) → (rc, out, err)."""
    env = dict(os.environ)  # carries the PYTHONPATH of the staged package
    env["PYTHONPATH"] = os.pathsep.join(p for p in [os.path.dirname(os.path.dirname(cli.__file__)),
                                                    env.get("PYTHONPATH", "")] if p)
    if block:
        # sys.modules[name] = None makes `import name` raise ImportError, as if not installed.
        code = ("import sys\n" + "".join(f"sys.modules[{m!r}] = None\n" for m in block)
                + "from delyap.cli import main\nsys.exit(main(sys.argv[1:]))\n")
        cmd = [sys.executable, "-c", code, *args]
    else:
        cmd = [sys.executable, "-m", "delyap", *args]
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=cwd, timeout=120)
    return p.returncode, p.stdout, p.stderr


def assert_cli_error(rc, out, err, *fragments, no_work=True):
    """Exit 2, a single stderr line "delyap: error: …" holding ``fragments``, no traceback;
    with ``no_work`` nothing was printed to stdout (the check came before the computation)."""
    assert rc == 2, (rc, out, err)
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("delyap: error: "), err
    for f in fragments:
        assert f in lines[0], (f, lines[0])
    if no_work:
        assert out == "", out
    return lines[0]


# ---- the failures listed in issue 12 ------------------------------------------------------------

def test_dt_out_zero():
    assert_cli_error(*run("solve", "--dt-out", "0"), "--dt-out", "positive")


def test_output_into_missing_folder_fails_before_solving(tmp_path):
    path = tmp_path / "missing" / "x.npz"
    # A long solve (10⁶ time units): the old CLI solved first and failed on writing.
    assert_cli_error(*run("solve", "--t-final", "1e6", "--output", str(path)), "--output",
                     "does not exist")


def test_plot_into_missing_folder_fails_before_solving(tmp_path):
    path = tmp_path / "missing" / "x.png"
    assert_cli_error(*run("solve", "--t-final", "1e6", "--plot", str(path)), "--plot",
                     "does not exist")


def test_blow_up_is_one_line():
    # γ = −10: x grows like e^{10 t} and overflows near t ≈ 70.
    line = assert_cli_error(*run("solve", "--gamma", "-10", "--t-final", "200"), "solve_dde:",
                            no_work=False)
    assert "t = " in line


def test_lyapunov_blow_up_is_one_line():
    assert_cli_error(*run("lyapunov", "--gamma", "-10", "--t-total", "200", "--t-transient", "0",
                          "-k", "1"), "lyapunov_spectrum:", no_work=False)


@pytest.mark.parametrize("args", [("--t-final", "1e12"), ("--dt-out", "1e-9")])
def test_huge_output_is_refused(args):
    assert_cli_error(*run("solve", *args), "--dt-out", "output points")


def test_demo_out_is_an_existing_file(tmp_path):
    path = tmp_path / "a-file"
    path.write_text("keep me")
    assert_cli_error(*run("demo", "--out", str(path), "--n-sweep", "2"), "--out",
                     "not a folder")
    assert path.read_text() == "keep me"


def test_demo_without_matplotlib_fails_first(tmp_path):
    assert_cli_error(*run("demo", "--out", str(tmp_path / "d"), block=["matplotlib"]),
                     "matplotlib", "delyap[plot]", "--no-plots")
    assert not (tmp_path / "d").exists()


@pytest.mark.parametrize("command", [("solve", "--plot"), ("lyapunov", "--plot")])
def test_plot_without_matplotlib_fails_first(tmp_path, command):
    name, option = command
    assert_cli_error(*run(name, option, str(tmp_path / "p.png"), block=["matplotlib"]),
                     "matplotlib", option)


def test_sgd_map_without_torch():
    assert_cli_error(*run("sgd-map", "--no-plots", block=["torch"]), "sgd-map", "torch",
                     "delyap[torch]")


def test_sgd_map_without_matplotlib(tmp_path):
    pytest.importorskip("torch")
    assert_cli_error(*run("sgd-map", "--out", str(tmp_path / "d"), block=["matplotlib"]),
                     "matplotlib", "--no-plots")


def test_sgd_map_into_a_pipe_writes_no_progress_bar():
    # (its map forced progress=True, so a bar went into pipes and logs, unlike every other
    # command: stderr there holds warnings and errors only)
    pytest.importorskip("torch")
    # (batch sizes in any order, repeated: the map's axis is them sorted, once each)
    rc, out, err = run("sgd-map", "--n-lr", "2", "--batch-sizes", "2", "1", "2", "--steps", "300",
                       "--no-plots")
    assert rc == 0 and "2 learning rates × 2 batch sizes" in out, (rc, out, err)
    assert "%|" not in err and "it/s" not in err, err


def test_sgd_map_checks_batch_sizes_before_training():
    pytest.importorskip("torch")
    # The old CLI trained the model (and printed its report) before rejecting B = 100 > N = 64.
    assert_cli_error(*run("sgd-map", "--no-plots", "--batch-sizes", "4", "100"), "batch_size",
                     "100", "N = 64")


@pytest.mark.parametrize("tau_max", ["0", "10", "17"])
def test_tau_max_not_above_tau_is_an_error(tau_max):
    # --tau-max 0 used to be read as "no sweep" and silently ignored.
    assert_cli_error(*run("lyapunov", "--tau", "17", "--tau-max", tau_max), "--tau-max")


# ---- the success paths the checks must not break ------------------------------------------------

def test_solve_writes_the_exact_first_window(tmp_path):
    """On [0, τ] the delayed term sees the constant history h: x' = c − γx with
    c = β h / (1 + hⁿ), so x = c/γ + (h − c/γ) e^{−γt} there."""
    path = tmp_path / "x.npz"
    rc, out, err = run("solve", "--t-final", "10", "--dt-out", "0.5", "--rtol", "1e-10",
                       "--atol", "1e-12", "--output", str(path))
    assert rc == 0 and err == "" and f"wrote {path}" in out
    data = np.load(path)
    t = data["t"]
    np.testing.assert_allclose(t, np.arange(0, 10.5, 0.5))
    beta, gamma, n, h = 0.2, 0.1, 10.0, 0.5
    c = beta * h / (1 + h**n)
    np.testing.assert_allclose(data["y"][:, 0], c / gamma + (h - c / gamma) * np.exp(-gamma * t),
                               rtol=1e-8)


def test_lyapunov_tau_sweep_runs_one_spectrum_per_tau():
    rc, out, err = run("lyapunov", "--tau", "1", "--tau-max", "2", "--n-tau", "3", "-k", "1",
                       "--t-total", "20", "--t-transient", "0")
    assert rc == 0, err
    rows = [line.split() for line in out.strip().splitlines()[1:]]
    assert [float(r[0]) for r in rows] == [1.0, 1.5, 2.0]
    # Such short runs may warn that the estimate has not settled: one line each, no source.
    assert all(line.startswith("delyap: warning: ") for line in err.splitlines()), err


# ---- every other option, in-process -------------------------------------------------------------

def main_in_process(argv, capsys):
    try:
        rc = cli.main(argv)
    except SystemExit as exc:  # argparse's own errors exit from parse_args
        rc = exc.code
    out, err = capsys.readouterr()
    return rc, out, err


BAD_OPTIONS = [
    ("solve", "--t-final", "0"), ("solve", "--t-final", "-5"), ("solve", "--dt-out", "-1"),
    ("solve", "--dt-out", "nan"), ("solve", "--dt-out", "inf"), ("solve", "--rtol", "0"),
    ("solve", "--atol", "-1e-9"), ("solve", "--tau", "0"), ("solve", "--tau", "-1"),
    ("solve", "--history", "nan"), ("solve", "--beta", "inf"), ("solve", "--n", "x"),
    ("solve", "--method", "RK45"),
    ("lyapunov", "--t-total", "0"), ("lyapunov", "--t-transient", "-1"),
    ("lyapunov", "-k", "0"), ("lyapunov", "--n-exponents", "2.5"),
    ("lyapunov", "--renorm-interval", "0"), ("lyapunov", "--threads", "0"),
    ("lyapunov", "--tau-max", "-3"), ("lyapunov", "--tau-max", "30", "--n-tau", "1"),
    ("lyapunov", "--rtol", "-1"),
    ("demo", "--n-sweep", "0"), ("demo", "--threads", "-2"), ("demo", "--sgd-steps", "0"),
    ("sgd-map", "--steps", "0"), ("sgd-map", "--n-lr", "0"), ("sgd-map", "--batch-sizes", "0"),
    ("sgd-map", "--threads", "0"), ("sgd-map", "--device", "tpu"),
    (), ("frobnicate",), ("solve", "--no-such-option"),
]


@pytest.mark.parametrize("argv", BAD_OPTIONS, ids=lambda a: " ".join(a) or "no-command")
def test_bad_option(argv, capsys):
    rc, out, err = main_in_process(list(argv), capsys)
    line = assert_cli_error(rc, out, err)
    # The offending option is the last one given (negative numbers are values).
    options = [a for a in argv if a.startswith("-") and not a[1:2].isdigit()]
    option = options[-1] if options else None
    if option is not None and option != "--no-such-option":
        assert option in line or (option == "-k" and "--n-exponents" in line), line


def subparsers():
    parser = cli.build_parser()
    return next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))


@pytest.mark.parametrize("name", sorted(subparsers().choices))
def test_every_option_has_help(name):
    commands = subparsers()
    assert any(c.dest == name and c.help for c in commands._choices_actions), name
    for action in commands.choices[name]._actions:
        assert action.help, f"delyap {name} {action.option_strings}: no help text"
