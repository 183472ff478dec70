"""Ahead-of-time compilation for TPU slices, on any host (`instruct-pt compile`).

libtpu's compiler (the `tpu` extra) compiles the commands' own jitted programs for a slice's
devices from shapes alone:

  slices.py     gcloud's slice names -> topologies and their devices; the libtpu check
  programs.py   the train step, synthesis' prefill and decode step, evaluation's scoring call,
                lowered from abstract arguments with the commands' shardings
  hlo.py        the compiled HLO: computations, loops and their trip counts, FLOPs per run
  collectives.py  its collectives per run, by the mesh axes and slices they span
  compiler.py   compile, memory against HBM, collective census, the cost model's estimate
  report.py     the JSON report, the printed table, the "does not fit" lines

It sits above `train`, `synthesis` and `evaluation`, whose programs it compiles.
"""
