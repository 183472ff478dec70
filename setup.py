"""instruct_pt: Instruction Pre-Training in JAX (synthesis, data, training, evaluation)."""

from setuptools import find_packages, setup

CORE = [
    # Upper bounds are the newest releases this code was tested with; each of these packages
    # has broken APIs we use in minor releases before.
    "jax>=0.6.0,<0.11",
    "flax>=0.10.4,<0.13",
    "optax>=0.2.4,<0.3",
    "orbax-checkpoint>=0.11.0,<0.13",
    "gin-config>=0.5.0",
    "etils[epath]>=1.5",
    "numpy>=1.26",
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

EXTRAS = {
    # SeqIO tasks and mixtures (instruct_pt/data/tasks.py); the core runs without them.
    "data": DATA,
    # Evaluation (instruct_pt/evaluation/, instruct-pt evaluate).
    "eval": EVAL,
    # torch 2.13.0 is the CPU build available offline here; a newer or unpinned torch pulls a
    # multi-GB CUDA build. transformers + accelerate are the parity references.
    "test": ["pytest>=8", "torch==2.13.0", "transformers>=4.46,<6", "accelerate>=1.0"] + DATA
            + EVAL,
    "gpu": ["jax[cuda12]>=0.6.0,<0.11"],
    "tpu": ["jax[tpu]>=0.6.0,<0.11"],
}

setup(
    name="instruct_pt",
    version="0.1.0",
    description=__doc__,
    packages=find_packages(include=["instruct_pt", "instruct_pt.*"]),
    package_data={"instruct_pt.data": ["demo_data/*.jsonl"],
                  # The offline lm-eval tasks: YAML, their data and the data-path module.
                  "instruct_pt.evaluation.tasks": ["demo/*.yaml", "demo/*.jsonl", "demo/*.json",
                                                   "demo/*.py", "paper/*.yaml"]},
    python_requires=">=3.10",
    install_requires=CORE,
    extras_require=EXTRAS,
    entry_points={"console_scripts": ["instruct-pt=instruct_pt.cli:main"]},
)
