"""instruct_pt: Instruction Pre-Training in JAX (synthesis, data, training, evaluation)."""

from setuptools import find_packages, setup

# Upper bounds are one minor release past the newest this code was tested with: CPU tests run
# on jax 0.10.2 / flax 0.12 / orbax 0.12 (the newest the registry here serves); the GPU image
# of benchmarks/device_suite.sh has jax 0.11.2, and current TPU wheels are 0.11 (its changelog
# removes no API we use). Each of these packages has broken APIs we use in minor releases.
JAX = ">=0.6.0,<0.12"

CORE = [
    "jax" + JAX,
    "flax>=0.10.4,<0.14",
    "optax>=0.2.4,<0.3",
    "orbax-checkpoint>=0.11.0,<0.14",
    "gin-config>=0.5.0",
    "etils[epath]>=1.5",
    "numpy>=1.26",
    "scipy>=1.11",  # t, binomial and beta distributions of the paired tests (evaluation.paired)
    "tensorboardX>=2.6",
    "tqdm>=4.66",
    # Checkpoint and tokenizer interop (instruct-pt convert, tokenizer).
    "safetensors>=0.4",
    "gguf>=0.10",
    "tokenizers>=0.20",
    "sentencepiece>=0.2",
    "protobuf>=4",  # reading SentencePiece model protos when saving them
]

DATA = ["seqio>=0.0.19", "tensorflow>=2.16", "tensorflow-datasets>=4.9", "pyarrow>=14"]

# lm-evaluation-harness (0.4.13 is what this code was tested with; it reads lm-eval's task
# index and YAML loader, which changed within 0.4) and matplotlib for comparison charts.
EVAL = ["lm-eval>=0.4.13,<0.5", "matplotlib>=3.7"]

# jax's own tpu extra pins the libtpu built with that jax (jax 0.10.2: libtpu 0.0.42.*). It runs
# TPU VMs, and on any host `instruct-pt compile` uses its compiler; elsewhere the package keeps
# JAX on the CPU (instruct_pt.hardware).
TPU = ["jax[tpu]" + JAX]

# The documentation site (mkdocs.yml, docs/): `mkdocs build --strict` runs in the test suite.
DOCS = ["mkdocs>=1.6,<2", "mkdocs-material>=9.5,<10"]

EXTRAS = {
    # SeqIO tasks and mixtures (instruct_pt/data/tasks.py); the core runs without them.
    "data": DATA,
    # Evaluation (instruct_pt/evaluation/, instruct-pt evaluate).
    "eval": EVAL,
    # torch 2.13.0 is the CPU build available offline here; a newer or unpinned torch pulls a
    # multi-GB CUDA build. transformers + accelerate are the parity references.
    # nbclient + ipykernel execute notebooks/quickstart.ipynb headless; pytest-xdist runs the
    # suite on every core (`make test`).
    # jax[tpu] (libtpu) compiles for TPU slices on this CPU host (tests/test_aot.py).
    # build makes the wheel tests/test_demo.py installs into a fresh venv.
    "test": ["pytest>=8", "pytest-xdist>=3.5", "torch==2.13.0", "transformers>=4.46,<6",
             "accelerate>=1.0", "nbclient>=0.10", "nbformat>=5.9", "ipykernel>=6.29",
             "build>=1.2"] + DATA + EVAL + TPU + DOCS,
    "docs": DOCS,
    # `make mutation` (tools/mutation.py): mutmut's runner and result files as of 3.8.
    "mutation": ["mutmut>=3.8,<3.9"],
    "gpu": ["jax[cuda12]" + JAX],  # CUDA 12 drivers; jax >= 0.11 also has cuda13
    "tpu": TPU,
}

setup(
    name="instruct_pt",
    version="0.1.0",
    description=__doc__,
    # The gin recipes (top-level configs/) install as instruct_pt/configs/ (`config.CONFIG_ROOT`).
    packages=find_packages(include=["instruct_pt", "instruct_pt.*"]) + ["instruct_pt.configs"],
    package_dir={"instruct_pt.configs": "configs"},
    package_data={"instruct_pt.configs": ["*/*.gin"],
                  "instruct_pt.data": ["demo_data/*.jsonl", "snapshots/*"],
                  # The lm-eval tasks: YAML, the demo's data and the modules beside them.
                  "instruct_pt.evaluation.tasks": ["demo/*.yaml", "demo/*.jsonl", "demo/*.json",
                                                   "demo/*.py", "adaptllm/*.yaml",
                                                   "adaptllm/*.py", "paper/*.yaml"]},
    python_requires=">=3.10",
    install_requires=CORE,
    extras_require=EXTRAS,
    entry_points={"console_scripts": ["instruct-pt=instruct_pt.cli:main"]},
)
