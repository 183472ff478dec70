"""instruct_pt: Instruction Pre-Training in JAX (synthesis, data, training, evaluation).

Importing the package keeps JAX off an installed libtpu on a machine without TPUs
(`hardware.prefer_cpu_without_tpu`), so the `tpu` extra, which compiles for TPU slices on any
host (`instruct-pt compile`), leaves every other command as quiet and quick as without it.
"""

from instruct_pt import hardware as _hardware

_hardware.prefer_cpu_without_tpu()
