"""Test set-up: 8 forced CPU devices, so sharding tests can build a (2, 2, 2) mesh.

Must run before JAX initialises its backend (pytest imports conftest first).
"""

import os

os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                           " --xla_force_host_platform_device_count=8").strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")
