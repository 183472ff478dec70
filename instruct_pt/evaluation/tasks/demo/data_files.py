"""Absolute paths of the demo tasks' data, for the YAML files beside this one.

lm-eval's `dataset_kwargs: data_files` are read relative to the working directory, so the
YAML files name these constants with lm-eval's `!function` tag (which imports a name from a
module beside the YAML file) and the shipped tasks run from any directory.
"""

import os

_HERE = os.path.dirname(os.path.abspath(__file__))
CLOZE = os.path.join(_HERE, "cloze.jsonl")
PERPLEXITY = os.path.join(_HERE, "perplexity.jsonl")
RC = os.path.join(_HERE, "rc.jsonl")
