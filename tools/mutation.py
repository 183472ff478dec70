"""Mutation testing of the modules where a wrong number would reach a result (`make mutation`).

mutmut (the `mutation` extra) makes small wrong changes ("mutants") to one module at a time and
runs, for each mutant, only the tests of that module's test file(s) that call the mutated
function. A mutant is *killed* when a test fails. The score of a module is

    killed / (mutants - equivalent)

where `mutation_equivalents.txt` lists, with a reason, the survivors that change nothing
observable. Mutants in functions that the module's own tests never call count as not killed.

Each module runs in its own scratch copy of the tree under `.mutation/<module>/`, so mutmut's
results are kept there: re-running the command re-tests only the mutants of functions that
changed since the last run. Usage:

    python tools/mutation.py                      # every module, then the score table
    python tools/mutation.py instruct_pt/data/packing.py     # one module
    python tools/mutation.py --survivors          # also list each surviving mutant
    mutmut show NAME   (run inside .mutation/<module>/)   # the diff of one mutant

Not part of `make test`: a full run takes about an hour on 2 cores.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SCRATCH = REPO / ".mutation"
# What the tests import besides the package (configs for recipes, experiments and benchmarks
# for their own tests' helpers).
TREE = ("instruct_pt", "tests", "configs", "experiments", "benchmarks")

# Module -> the test files that own its tests.
MODULES = {
    "instruct_pt/data/packing.py": ["tests/test_packing.py"],
    "instruct_pt/data/formats.py": ["tests/test_formats.py"],
    "instruct_pt/synthesis/templates.py": ["tests/test_templates.py"],
    "instruct_pt/synthesis/recovery.py": ["tests/test_recovery.py"],
    "instruct_pt/synthesis/filters.py": ["tests/test_filters.py"],
    "instruct_pt/train/optim.py": ["tests/test_optim.py"],
    "instruct_pt/evaluation/scoring.py": ["tests/test_scoring.py"],
    "instruct_pt/evaluation/compare.py": ["tests/test_compare.py"],
    "instruct_pt/evaluation/paired.py": ["tests/test_paired.py"],
    "instruct_pt/demo_comparison.py": ["tests/test_demo_report.py"],
    "instruct_pt/analysis/units.py": ["tests/test_units.py", "tests/test_unit_stats.py"],
    "experiments/stats.py": ["tests/test_experiment_stats.py"],
}

# Surviving mutants that change nothing observable, each with why.
EQUIVALENTS_FILE = Path(__file__).with_name("mutation_equivalents.txt")


def read_equivalents(path: Path = EQUIVALENTS_FILE) -> dict[str, str]:
  """Mutant name -> why it is equivalent, from `path`.

  Args:
    path: the equivalents file.

  Raises:
    SystemExit: a reason without a name, naming the file and line.
  """
  equivalent: dict[str, str] = {}
  name = None
  for number, line in enumerate(path.read_text().splitlines(), 1):
    if not line.strip() or line.startswith("#"):
      continue
    if line.startswith(" "):
      if name is None:
        sys.exit(f"{path}:{number}: a reason before any mutant name")
      equivalent[name] = (equivalent[name] + " " + line.strip()).strip()
    else:
      name = line.strip().removesuffix(":")
      equivalent[name] = ""
  return equivalent


EQUIVALENT = read_equivalents()

# mutmut's outcomes that count as caught: a failing test, and a mutant that made the tests
# hang (timeout) or crash (segfault).
KILLED = ("killed", "timeout", "segfault")

_RESULT_LINE = re.compile(r"^\s+(?P<name>\S+__mutmut_\d+): (?P<status>.+)$")


@dataclasses.dataclass
class Score:
  """Counts of one module's mutants by outcome."""
  module: str
  statuses: dict[str, str]  # mutant name -> mutmut's status ("killed", "survived", ...)

  def count(self, status: str) -> int:
    return sum(1 for s in self.statuses.values() if s == status)

  @property
  def equivalent(self) -> list[str]:
    return sorted(n for n, s in self.statuses.items() if s == "survived" and n in EQUIVALENT)

  @property
  def survivors(self) -> list[str]:
    return sorted(n for n, s in self.statuses.items()
                  if s not in KILLED and n not in EQUIVALENT)

  @property
  def killed(self) -> int:
    return sum(self.count(status) for status in KILLED)

  @property
  def score(self) -> float:
    """Killed over non-equivalent mutants."""
    killed = self.killed
    total = len(self.statuses) - len(self.equivalent)
    return killed / total if total else 1.0


def _setup_cfg(module: str, tests: list[str]) -> str:
  indent = "\n    "
  package = module.split("/")[0]
  others = [name + "/" for name in TREE if name not in (package, "tests")]
  return ("[mutmut]\n"
          f"source_paths = {package}/\n"
          f"only_mutate = {module}\n"
          f"pytest_add_cli_args_test_selection ={indent}{indent.join(tests)}\n"
          "also_copy =" + indent + indent.join(others) + "\n"
          # A test process that has used JAX cannot fork safely: mutants fork from a server
          # process that has only collected the tests.
          "process_isolation = forkserver\n"
          "use_git_change_detection = false\n")


def _sync(work: Path) -> None:
  """Copies the tree's current sources into `work` (mutmut's results in work/mutants stay)."""
  ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache")
  for name in TREE:
    if (REPO / name).is_dir():
      shutil.copytree(REPO / name, work / name, dirs_exist_ok=True, ignore=ignore)


def _tree_fingerprint(work: Path, module: str, tests: list[str]) -> str:
  """A hash of everything the mutants' verdicts depend on besides the mutated module itself
  (whose functions mutmut hashes): the tests, the rest of the tree and the test selection."""
  digest = hashlib.sha256("\n".join(tests).encode())
  for name in TREE:
    for path in sorted((work / name).rglob("*")):
      if path.is_file() and "__pycache__" not in path.parts and path != work / module:
        digest.update(str(path.relative_to(work)).encode() + path.read_bytes())
  return digest.hexdigest()


def _mutmut(work: Path, *args: str, log=None) -> subprocess.CompletedProcess:
  mutmut = Path(sys.executable).with_name("mutmut")
  env = dict(os.environ, PYTHONWARNINGS="ignore::UserWarning")
  return subprocess.run([str(mutmut), *args], cwd=work, env=env, text=True,
                         stdout=log or subprocess.PIPE, stderr=subprocess.STDOUT)


def run_module(module: str, tests: list[str], max_children: int,
               report_only: bool = False) -> Score:
  """Runs (or resumes) mutmut on one module and returns its outcome counts.

  mutmut keeps verdicts of unchanged functions; when anything else changed (a test, another
  module), every verdict is redone, since a new test may kill an old survivor.

  Args:
    module: the module's path in the repository, a key of MODULES.
    tests: the test files whose tests may kill its mutants.
    max_children: mutants tested at once.
    report_only: read the verdicts of the last run without running anything.
  """
  work = SCRATCH / module.removeprefix("instruct_pt/").replace("/", "_").removesuffix(".py")
  if report_only:
    return _read_score(work, module)
  work.mkdir(parents=True, exist_ok=True)
  _sync(work)
  (work / "setup.cfg").write_text(_setup_cfg(module, tests))
  fingerprint, stored = _tree_fingerprint(work, module, tests), work / "tree.sha256"
  if not stored.exists() or stored.read_text() != fingerprint:
    shutil.rmtree(work / "mutants", ignore_errors=True)
    stored.write_text(fingerprint)
  log_path = work / "mutmut.log"
  print(f"{module}: testing mutants (log: {log_path.relative_to(REPO)})", flush=True)
  with open(log_path, "w") as log:
    run = _mutmut(work, "run", "--max-children", str(max_children), log=log)
  if run.returncode != 0:
    sys.exit(f"{module}: mutmut failed (exit {run.returncode}); see {log_path}")
  return _read_score(work, module)


def _read_score(work: Path, module: str) -> Score:
  if not (work / "mutants").is_dir():
    sys.exit(f"{module}: no mutation run in {work} yet")
  listing = _mutmut(work, "results", "--all", "true")
  statuses = {m["name"]: m["status"] for m in map(_RESULT_LINE.match, listing.stdout.splitlines())
              if m}
  if not statuses:
    sys.exit(f"{module}: mutmut reported no mutants; see {work / 'mutmut.log'}")
  return Score(module, statuses)


def table(scores: list[Score]) -> str:
  """The per-module score table (markdown), as the README's development section records it.

  Args:
    scores: one Score per module.
  """
  lines = ["| module | mutants | killed | survived | no tests | equivalent | score |",
           "|---|---:|---:|---:|---:|---:|---:|"]
  for s in scores:
    killed = s.killed
    lines.append(f"| `{s.module}` | {len(s.statuses)} | {killed} | "
                 f"{s.count('survived') - len(s.equivalent)} | {s.count('no tests')} | "
                 f"{len(s.equivalent)} | {100 * s.score:.0f}% |")
  return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
  parser.add_argument("modules", nargs="*", help="module paths, as in MODULES (default: all)")
  parser.add_argument("--max_children", type=int, default=os.cpu_count() or 2,
                      help="mutants tested at once (default: the CPU count)")
  parser.add_argument("--survivors", action="store_true", help="list each surviving mutant")
  parser.add_argument("--report_only", action="store_true",
                      help="print the table of the last runs without running mutmut")
  parser.add_argument("--tests", default="",
                      help="comma-separated test files to use instead of MODULES' (one module)")
  args = parser.parse_args(argv)
  unknown = [m for m in args.modules if m not in MODULES]
  if unknown:
    parser.error(f"not a mutation-tested module: {', '.join(unknown)} "
                 f"(choose from {', '.join(MODULES)})")
  if args.tests and len(args.modules) != 1:
    parser.error("--tests needs exactly one module")
  missing = [t for t in args.tests.split(",") if t and not (REPO / t).is_file()]
  if missing:
    parser.error(f"no such test file: {', '.join(missing)}")
  scores = [run_module(m, args.tests.split(",") if args.tests else MODULES[m], args.max_children,
                        args.report_only) for m in args.modules or MODULES]
  print(table(scores))
  for s in scores:
    for name in s.equivalent:
      print(f"equivalent {name}: {EQUIVALENT[name]}")
    if args.survivors:
      for name in s.survivors:
        print(f"{s.statuses[name]} {name}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
