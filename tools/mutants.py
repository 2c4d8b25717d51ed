"""Mutation check: do the tests notice a plausible one-line bug?

Each mutation (listed in ``tools/mutants.toml``) replaces one exact piece of a source
line with something else. For every mutation this script writes the mutated file into a
temporary copy of ``src/`` (the working tree is never touched), runs the mutation's
pytest selection with ``PYTHONPATH`` pointing at that copy, and reports whether the
tests *caught* it (some test failed) or *missed* it (all passed), which tests failed,
and how long the run took.

Usage (from the repository root, in the project's environment)::

    python tools/mutants.py                      # every mutation in tools/mutants.toml
    python tools/mutants.py -k kalman figures    # only ids containing one of these words
    python tools/mutants.py --list               # show the mutations, run nothing
    python tools/mutants.py --markdown           # the table as Markdown

Adding a mutation: append a ``[[mutation]]`` table to ``tools/mutants.toml`` with
``id``, ``file`` (relative to the repository root, under ``src/``), ``find`` (a piece of
text that occurs exactly once in that file), ``replace`` and ``tests`` (pytest arguments:
files, node ids, ``-k`` expressions). ``note`` is optional. TOML literal strings
('...') keep quotes and backslashes as written.

Exit status: 0 when every mutation was caught, 1 when some were missed, 2 on a broken
setup (a ``find`` that no longer matches, a selection that fails without any mutation).
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_LIST = Path(__file__).with_name("mutants.toml")
# The project's addopts run the notebooks (nbval); a mutation run wants the unit tests only.
PYTEST_ARGS = ["-q", "-rfE", "-p", "no:cacheprovider", "-o", "addopts=", "--color=no"]


@dataclass
class Mutation:
    id: str
    file: str
    find: str
    replace: str
    tests: list[str]
    note: str = ""
    line: int = 0  # 1-based line of ``find`` in the original file


@dataclass
class Outcome:
    mutation: Mutation
    result: str  # caught, missed, timeout, error
    seconds: float
    failed: list[str] = field(default_factory=list)
    detail: str = ""


def load(path: Path) -> list[Mutation]:
    """Read the mutation list and check that every ``find`` occurs exactly once."""
    with open(path, "rb") as f:
        entries = tomllib.load(f).get("mutation", [])
    mutations, problems, seen = [], [], set()
    known = {"id", "file", "find", "replace", "tests", "note"}
    for entry in entries:
        if not {"id", "file", "find", "replace", "tests"} <= set(entry) <= known:
            problems.append(f"{entry.get('id', entry)}: fields must be {sorted(known)} (note optional)")
            continue
        m = Mutation(**entry)
        if m.id in seen:
            problems.append(f"{m.id}: duplicate id")
        seen.add(m.id)
        source = ROOT / m.file
        if not source.is_file() or not source.resolve().is_relative_to(ROOT / "src"):
            problems.append(f"{m.id}: {m.file} is not a file under src/")
            continue
        text = source.read_text()
        count = text.count(m.find)
        if count != 1:
            problems.append(f"{m.id}: {m.find!r} occurs {count} times in {m.file} (must be exactly once)")
            continue
        if m.find == m.replace:
            problems.append(f"{m.id}: replace equals find")
        m.line = text[:text.index(m.find)].count("\n") + 1
        mutations.append(m)
    if problems:
        raise SystemExit("mutation list is out of date:\n  " + "\n  ".join(problems))
    return mutations


def make_copy(tmp: Path) -> Path:
    """A stand-in repository root: ``src/`` copied, everything else linked.

    Modules find their data through ``Path(__file__).parents[2]`` (``data/``, ``results/``),
    so the copy keeps the repository's layout.
    """
    root = tmp / "repo"
    root.mkdir()
    for entry in ROOT.iterdir():
        if entry.name != "src":
            (root / entry.name).symlink_to(entry)
    # no bytecode: a mutated file of the same size and mtime second could reuse a stale .pyc
    shutil.copytree(ROOT / "src", root / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    return root


def environment(copy: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(copy / "src")
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.setdefault("OMP_NUM_THREADS", "1")
    return env


def run_pytest(tests: list[str], env: dict[str, str], timeout: float, first: bool) -> tuple[int | None, str, float]:
    """Run the selection from the real repository root (its tests, the copy's code)."""
    cmd = [sys.executable, "-m", "pytest", *PYTEST_ARGS, *(["-x"] if first else []), *tests]
    start = time.perf_counter()
    try:
        proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        return None, out, time.perf_counter() - start
    return proc.returncode, proc.stdout + proc.stderr, time.perf_counter() - start


def failed_tests(output: str) -> list[str]:
    """Node ids from pytest's short summary (``FAILED id - message`` / ``ERROR id``)."""
    ids = re.findall(r"^(?:FAILED|ERROR) (\S+)", output, flags=re.MULTILINE)
    return list(dict.fromkeys(ids))


def check_copy_is_used(env: dict[str, str], copy: Path) -> None:
    out = subprocess.run([sys.executable, "-c", "import motionseg; print(motionseg.__file__)"], cwd=ROOT,
                         env=env, capture_output=True, text=True, check=True).stdout.strip()
    if not Path(out).resolve().is_relative_to((copy / "src").resolve()):
        raise SystemExit(f"motionseg is imported from {out}, not from the mutated copy; is it installed "
                         f"non-editable in a way that beats PYTHONPATH?")


def mutate(mutations: list[Mutation], timeout: float, first: bool, verbose: bool) -> list[Outcome]:
    outcomes = []
    with tempfile.TemporaryDirectory(prefix="mutants-") as tmp:
        copy = make_copy(Path(tmp))
        env = environment(copy)
        check_copy_is_used(env, copy)
        # every selection must pass unmutated, or a "caught" would mean nothing
        for tests in dict.fromkeys(tuple(m.tests) for m in mutations):
            rc, out, secs = run_pytest(list(tests), env, timeout, first=False)
            print(f"baseline {' '.join(tests)}: rc={rc} ({secs:.1f} s)", flush=True)
            if rc != 0:
                print(out[-3000:])
                raise SystemExit(2)
        for m in mutations:
            target = copy / m.file
            original = target.read_text()
            target.write_text(original.replace(m.find, m.replace, 1))
            try:
                rc, out, secs = run_pytest(m.tests, env, timeout, first)
            finally:
                target.write_text(original)
            failed = failed_tests(out)
            if rc is None:
                outcome = Outcome(m, "timeout", secs, failed, "ran past the timeout")
            elif rc == 0:
                outcome = Outcome(m, "missed", secs)
            elif rc in (1, 2) and (failed or rc == 1):
                # rc 2 with failures listed: a collection error (e.g. an import broke) counts as caught
                outcome = Outcome(m, "caught", secs, failed)
            else:
                outcome = Outcome(m, "error", secs, failed, f"pytest exit status {rc}")
            outcomes.append(outcome)
            print(f"{outcome.result:7s} {m.id} ({secs:.1f} s)", flush=True)
            if verbose and outcome.result != "caught":
                print(out[-2000:])
    return outcomes


def caught_by(failed: list[str], max_names: int = 3) -> str:
    """Failing test functions (parametrisations folded into a count), e.g. ``test_x.py::test_a (x4)``."""
    counts: dict[str, int] = {}
    for node in failed:
        name = node.split("/")[-1].split("[")[0]
        counts[name] = counts.get(name, 0) + 1
    names = [f"{n} (x{c})" if c > 1 else n for n, c in counts.items()]
    more = f", +{len(names) - max_names} more" if len(names) > max_names else ""
    return ", ".join(names[:max_names]) + more


def table(outcomes: list[Outcome], markdown: bool, max_names: int = 3) -> str:
    rows = []
    for o in outcomes:
        rows.append((o.mutation.id, f"{Path(o.mutation.file).name}:{o.mutation.line}", o.result,
                     caught_by(o.failed, max_names) or o.detail or "-", f"{o.seconds:.1f}"))
    head = ("mutation", "where", "result", "caught by", "s")
    if markdown:
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        lines += ["| " + " | ".join(r) + " |" for r in rows]
        return "\n".join(lines)
    widths = [max(len(str(r[i])) for r in [head, *rows]) for i in range(len(head))]
    fmt = "  ".join(f"{{:{w}}}" for w in widths)
    return "\n".join(fmt.format(*r) for r in [head, *rows])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--list-file", type=Path, default=DEFAULT_LIST, help="TOML file of mutations")
    parser.add_argument("-k", nargs="+", default=None, metavar="WORD",
                        help="only mutations whose id contains one of these words")
    parser.add_argument("--list", action="store_true", help="print the mutations and exit")
    parser.add_argument("--first", action="store_true", help="stop each run at its first failing test (-x)")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds per pytest run")
    parser.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    parser.add_argument("--tests", nargs=argparse.REMAINDER, default=None,
                        help="run these pytest arguments for every mutation instead of each one's own (last option)")
    parser.add_argument("--names", type=int, default=3, help="failing test functions shown per mutation")
    parser.add_argument("-v", "--verbose", action="store_true", help="show pytest's output for missed mutations")
    args = parser.parse_args(argv)

    mutations = load(args.list_file)
    if args.k:
        mutations = [m for m in mutations if any(word in m.id for word in args.k)]
    if args.tests:
        for m in mutations:
            m.tests = list(args.tests)
    if args.list:
        for m in mutations:
            print(f"{m.id}: {m.file}:{m.line}\n    - {m.find}\n    + {m.replace}\n    tests: {' '.join(m.tests)}")
        return 0
    if not mutations:
        print("no mutations selected")
        return 2
    start = time.perf_counter()
    outcomes = mutate(mutations, args.timeout, args.first, args.verbose)
    print()
    print(table(outcomes, args.markdown, args.names))
    caught = sum(o.result in ("caught", "timeout") for o in outcomes)
    print(f"\n{caught} of {len(outcomes)} caught in {time.perf_counter() - start:.0f} s")
    return 0 if caught == len(outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
