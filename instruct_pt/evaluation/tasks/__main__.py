"""`python -m instruct_pt.evaluation.tasks`: regenerates the demo tasks' data, the AdaptLLM
task files and the paper suites' group files in place (or under `--out DIR`); with `--corpus_from_running_python`, first
rewrites the shipped demo corpus snapshot from this Python's `pydoc_data` (training then reads
the new text too)."""

import argparse
import json
import os

from instruct_pt.data import demo_corpus
from instruct_pt.evaluation.tasks import adaptllm, demo, suites


def main() -> None:
  parser = argparse.ArgumentParser(prog="python -m instruct_pt.evaluation.tasks",
                                   description=__doc__.splitlines()[0], allow_abbrev=False)
  parser.add_argument("--out", default=None,
                      help="write DIR/demo, DIR/adaptllm and DIR/paper instead of the shipped files")
  parser.add_argument("--corpus_from_running_python", action="store_true",
                      help="first rewrite the shipped corpus snapshot from this Python's "
                           "pydoc_data (changes what the demo trains on)")
  args = parser.parse_args()
  if args.corpus_from_running_python:
    print(json.dumps(demo_corpus.build(), indent=2))
  manifest = demo.build(os.path.join(args.out, "demo") if args.out else None)
  written = adaptllm.write_tasks(os.path.join(args.out, "adaptllm") if args.out else None)
  written += suites.write_groups(os.path.join(args.out, "paper") if args.out else None)
  print(json.dumps(manifest, indent=2))
  print("wrote " + ", ".join(written))


if __name__ == "__main__":
  main()
