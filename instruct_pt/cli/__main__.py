"""`python -m instruct_pt.cli ...`: the `instruct-pt` console script."""

import sys

from instruct_pt.cli import main

if __name__ == "__main__":
  sys.exit(main())
