"""TensorFlow as the data pipelines use it: imported once, quietly, and on the CPU only.

SeqIO, TFDS and our TFRecord and gs:// readers use TensorFlow for input pipelines only. Its
import and first device query print start-up lines from its C++ runtime straight to the
process's stderr ("Could not find cuda drivers on your machine", "failed call to cuInit",
absl's "All log messages before absl::InitializeLog() ..."), which `TF_CPP_MIN_LOG_LEVEL` does
not silence, and on a GPU host it would reserve GPU memory that JAX needs. Importing `tf` from
here, before anything else imports TensorFlow (SeqIO does, on import), drops exactly those
known lines (`NOISE`; any other line still shows) and hides every GPU from TensorFlow.

  from instruct_pt.data.tf_runtime import tf  # before `import seqio`
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
from typing import Iterator, Sequence

# What TensorFlow's runtime prints at start-up on a host without CUDA (or with it, to JAX's
# benefit hidden from TensorFlow): its CUDA stubs, its GPU platform and absl's preamble.
NOISE = (
    re.compile(r"^WARNING: All log messages before absl::InitializeLog\(\) is called"),
    re.compile(r"^[IWE]\d{4} [\d:. ]+\d+ (cudart_stub|cuda_platform|cuda_dnn|cuda_fft|cuda_blas|"
               r"cuda_executor|cpu_feature_guard|gpu_device)\.cc:\d+\]"),
    re.compile(r"^To enable the following instructions: .* in other operations, rebuild "
               r"TensorFlow"),
)


@contextlib.contextmanager
def stderr_lines_dropped(patterns: Sequence[re.Pattern]) -> Iterator[None]:
  """Drops the lines matching `patterns` that anything in the process, C++ included, writes to
  file descriptor 2 meanwhile; the other lines are written after, in order.

  Args:
    patterns: the lines to drop.
  """
  sys.stderr.flush()
  saved = os.dup(2)
  with tempfile.TemporaryFile() as captured:
    os.dup2(captured.fileno(), 2)
    try:
      yield
    finally:
      sys.stderr.flush()
      os.dup2(saved, 2)
      os.close(saved)
      captured.seek(0)
      kept = [line for line in captured.read().decode(errors="replace").splitlines(True)
              if not any(pattern.search(line) for pattern in patterns)]
      sys.stderr.write("".join(kept))
      sys.stderr.flush()


def _import_tensorflow():
  if "tensorflow" in sys.modules:
    return sys.modules["tensorflow"]
  with stderr_lines_dropped(NOISE):
    import tensorflow  # pylint: disable=import-outside-toplevel
    tensorflow.config.set_visible_devices([], "GPU")
  return tensorflow


tf = _import_tensorflow()
