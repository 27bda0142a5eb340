"""Check that the commands in benchmarks/RESULTS.md (and jitcdde_notes.md) still run.

That is: each names an existing script, with options that script's argparse accepts, and none
runs the source tree.

Each command ``python benchmarks/x.py ARGS`` found in RESULTS.md (in `code` spans and ```
blocks) is run as ``python benchmarks/x.py ARGS --help``: argparse consumes ARGS before it meets
--help, so a wrong value (a bad choice, a non-number, a missing argument) fails there, and the
option names are checked against the script's --help text (argparse would only report unknown
options after --help has exited). Nothing is benchmarked. Also checked: every benchmark script
offers --json, and no command sets PYTHONPATH to the source tree (``python/`` has no compiled
``_core`` and would shadow the installed package).

Usage (the scripts import delyap, so it must be importable):
    python benchmarks/check_results.py [--results DOC.md ...]
Exits 1 and lists the problems when there are any.
"""
from __future__ import annotations

import argparse
import re
import shlex
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PYTHON_FLAGS_WITH_VALUE = {"-W", "-X", "-c", "-m"}


def snippets(text: str) -> list[str]:
    """The lines of ``` blocks and the contents of `code` spans outside them."""
    out, in_block = [], False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            in_block = not in_block
            continue
        if in_block:
            out.append(line)
        else:
            out.extend(re.findall(r"`([^`]+)`", line))
    return out


def commands(text: str) -> tuple[list[tuple[str, list[str], str]], list[str], list[str]]:
    """(commands as (script, args, source line), scripts merely named, problems found)."""
    found, named, problems = [], [], []
    for snip in snippets(text):
        if "benchmarks/" not in snip:
            continue
        line = snip.strip().removeprefix("$ ")
        line = re.split(r"\s#", line, maxsplit=1)[0]  # a trailing shell comment
        try:
            tokens = shlex.split(line)
        except ValueError:
            continue
        if any(re.fullmatch(r"PYTHONPATH=(\./)?python/?", t) for t in tokens):
            problems.append(f"{line!r}: PYTHONPATH=python runs the source tree, not the "
                            "installed package")
        for i, tok in enumerate(tokens):
            if not re.fullmatch(r"python3?", Path(tok).name):
                continue
            j = i + 1
            while j < len(tokens) and tokens[j].startswith("-"):  # interpreter flags
                j += 2 if tokens[j] in PYTHON_FLAGS_WITH_VALUE else 1
            if (j < len(tokens) and tokens[j].startswith("benchmarks/")
                    and tokens[j].endswith(".py")):
                args = []
                for t in tokens[j + 1:]:
                    if t in ("&&", "||", ";", "|", ">", "2>&1") or t.startswith(">"):
                        break
                    args.append(t)
                found.append((tokens[j], args, line))
        if not any(c[2] == line for c in found):
            named += re.findall(r"benchmarks/[\w/]+\.py", line)
    return found, named, problems


def run_help(script: str, args: list[str]) -> subprocess.CompletedProcess:
    # Run from the repository root, as the commands are written; the script's folder comes
    # first on sys.path, so delyap is whichever the environment provides.
    return subprocess.run([sys.executable, script, *args, "--help"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


def check(results: Path) -> list[str]:
    found, named, problems = commands(results.read_text())
    if not found:
        problems.append(f"{results}: no benchmark commands found")
    for script in named:
        if not (ROOT / script).is_file():
            problems.append(f"{script}: named in {results.name}, no such file")
    scripts = sorted({s for s, _, _ in found} | {p.relative_to(ROOT).as_posix() for p in
                      (ROOT / "benchmarks").glob("**/bench_*.py")})
    missing = [s for s in scripts if not (ROOT / s).is_file()]
    problems += [f"{s}: command in {results.name}, no such script" for s in missing]
    jobs = [(s, []) for s in scripts if s not in missing]
    jobs += [(s, a) for s, a, _ in found if s not in missing and a]
    with ThreadPoolExecutor(max_workers=4) as pool:
        runs = dict(zip(((s, tuple(a)) for s, a in jobs), pool.map(lambda j: run_help(*j), jobs)))
    for script in scripts:
        if script in missing:
            continue
        run = runs[(script, ())]
        if run.returncode != 0:
            problems.append(f"{script} --help fails:\n{run.stdout}{run.stderr}")
        elif Path(script).name.startswith("bench_") and "--json" not in run.stdout:
            problems.append(f"{script}: no --json option")
    for script, args, line in found:
        if script in missing or not args:
            continue
        helptext = runs[(script, ())].stdout
        known = set(re.findall(r"(?<![\w-])(--?[A-Za-z][\w-]*)", helptext))
        for a in args:
            if re.match(r"[\[<]|.*[\]>]$", a):
                problems.append(f"{line!r}: placeholder {a!r} (write each command out in full)")
                continue
            name = a.split("=", 1)[0]
            if name.startswith("-") and name not in known:
                problems.append(f"{line!r}: {script} has no option {name}")
        run = runs[(script, tuple(args))]
        if run.returncode != 0:
            problems.append(f"{line!r}: {script} rejects its arguments: "
                            f"{(run.stderr or run.stdout).strip().splitlines()[-1]}")
    return problems


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", type=Path, nargs="+",
                    default=[ROOT / "benchmarks" / "RESULTS.md",
                             ROOT / "benchmarks" / "jitcdde_notes.md"],
                    help="the documents to check (default: RESULTS.md and jitcdde_notes.md)")
    args = ap.parse_args()
    failed, seen = False, set()
    for doc in args.results:
        problems = check(doc)
        for p in problems:
            if p not in seen:  # the script-wide checks repeat for each document
                print(p)
                seen.add(p)
        n = len(commands(doc.read_text())[0])
        print(f"{doc.name}: {n} commands checked, "
              + (f"{len(problems)} problems" if problems else "all valid"))
        failed = failed or bool(problems)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
