"""Official-mode templatify side by side with the release's own code, on fuzzed chains.

The release (microsoft/LMOps `instruction_pretrain/`) is not a dependency: point `--lmops` at
a clone of it. Each chain has 1-4 entries (some linked) of 0-4 pairs of every kind the
synthesizer writes, malformed ones included (CoT without its marker, options whose answer
matches none, unanswerable answers, 30 options, braces in questions). Both sides get the
same chain and seed (`idx + 12345`, as the release's README does); the release's empty texts
(a group without pairs) are left out, as ours writes none. Prints the count of chains whose
texts differ and the first few differences; exits 1 if any.

  python benchmarks/templatify_parity.py --lmops=/path/to/LMOps [--chains 30000]
"""

from __future__ import annotations

import argparse
import copy
import os
import random
import sys

from instruct_pt.data.formats import QAPair
from instruct_pt.synthesis import recovery, templates

QUESTIONS = ("What is X", "Why does {a} hold?", "Name the thing.", "How many?",
             "Q with } brace")
ANSWERS = ("yes", "No", "42", "the module", "None", "none of the above choices")
UNANSWERABLE = ("None", "No match", "none of the above choices", "None of the above")


def fuzzed_pair(rng: random.Random) -> QAPair:
  """One pair of a random kind (plain, CoT, options, options + CoT, or a malformed one).

  Args:
    rng: the chain's generator.
  """
  question, answer = rng.choice(QUESTIONS), rng.choice(ANSWERS)
  kind = rng.choice(("plain", "cot", "options", "options_cot", "bad_cot", "unanswerable",
                     "many_options", "no_match"))
  if kind in ("options", "options_cot", "unanswerable", "many_options", "no_match"):
    options = [f"opt{i}" for i in range(30 if kind == "many_options" else rng.randint(2, 5))]
    answer = {"unanswerable": rng.choice(UNANSWERABLE), "no_match": "zzz"}.get(
        kind, rng.choice(options))
    question += recovery.OPTIONS_MARKER + recovery.OPTION_SEPARATOR.join(options)
  if kind in ("cot", "options_cot"):
    return QAPair(question + recovery.COT_QUESTION_MARKER,
                  "Because reasons." + recovery.COT_ANSWER_MARKER + answer)
  if kind == "bad_cot":
    return QAPair(question + recovery.COT_QUESTION_MARKER, "no marker " + answer)
  return QAPair(question, answer)


def fuzzed_chain(index: int) -> list[templates.Entry]:
  """The chain numbered `index` (deterministic).

  Args:
    index: the chain's number.
  """
  rng = random.Random(index)
  return [templates.Entry(f"Context number {i}.",
                          [fuzzed_pair(rng) for _ in range(rng.choice(range(5)))],
                          linked=i > 0 and rng.random() < 0.6)
          for i in range(rng.randint(1, 4))]


def main() -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
  parser.add_argument("--lmops", required=True, help="a clone of microsoft/LMOps")
  parser.add_argument("--chains", type=int, default=30000)
  args = parser.parse_args()
  release_dir = os.path.join(args.lmops, "instruction_pretrain")
  if not os.path.isfile(os.path.join(release_dir, "utils", "read_compre.py")):
    sys.exit(f"--lmops={args.lmops}: no instruction_pretrain/utils/read_compre.py there")
  sys.path.insert(0, release_dir)
  from utils import read_compre  # pylint: disable=import-outside-toplevel,import-error

  different = 0
  for index in range(args.chains):
    entries = fuzzed_chain(index)
    collection = [{"context": entry.text, "inherit_from_prev": entry.linked,
                   "QA_list": [{"Q": pair.question, "A": pair.answer} for pair in entry.pairs]}
                  for entry in entries]
    seed = index + 12345
    theirs = [text for text in read_compre.cook_pt_entries(copy.deepcopy(collection), seed)
              if text]
    ours = [output.text for output in templates.templatify(entries, seed, "official")]
    if ours != theirs:
      different += 1
      if different <= 3:
        print(f"chain {index}:\n  ours    {ours!r}\n  release {theirs!r}")
  print(f"{different} of {args.chains} chains differ")
  return 1 if different else 0


if __name__ == "__main__":
  sys.exit(main())
