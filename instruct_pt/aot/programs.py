"""The jitted programs the commands run, lowered from shapes alone (no weights, no data).

Each builder returns `Program`s that lower the same `jax.jit` programs the commands run, with
abstract arguments carrying the same shardings, so they compile for any mesh, a TPU slice's
on a CPU host included:

* `train_step`: `instruct-pt train`'s step (`loop.jit_train_step`) with the run's batch,
  sequence length, gradient accumulation, remat policy and optimizer;
* `synthesis`: the engine's largest prefill (every slot admitted at once with the longest
  prompt the settings allow) and its decode program (`Engine.lower_prefill`,
  `Engine.lower_decode`), over one host's devices as `instruct-pt synthesize` runs;
* `scoring`: evaluation's largest scoring call (`Scorer.largest_call`), over one host's
  devices as `instruct-pt evaluate` runs.

`Program.lower` takes the model config, so the same program can be built with other layer
counts and the layer loop unrolled (`ModelConfig.scan_layers`), as `instruct_pt.aot.compiler`
does for XLA's cost model.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import jax
from jax.sharding import Mesh

from instruct_pt import parallel
from instruct_pt.evaluation.scoring import Scorer, ScoringConfig
from instruct_pt.model import store
from instruct_pt.model.config import ModelConfig
from instruct_pt.model.transformer import Decoder
from instruct_pt.model.generate import Engine
from instruct_pt.synthesis.pipeline import SynthesisConfig
from instruct_pt.train import loop
from instruct_pt.train.optim import OptimizerConfig, make_optimizer
from instruct_pt.train.state import abstract_train_state

# What `instruct-pt compile --program` can name, and the command each stands for.
PROGRAMS = ("train", "synthesize", "evaluate")


@dataclasses.dataclass(frozen=True)
class Program:
  """One jitted program of a command, ready to lower.

  Attributes:
    command: the `PROGRAMS` entry it belongs to.
    name: the program ("train_step", "prefill", "decode_step", "score").
    shape: what one run of it processes, in words.
    tokens: tokens one run processes.
    model_flops: the model's FLOPs in one run (`ModelConfig.flops_per_token` for training,
      the forward's otherwise).
    config: the model config it runs.
    mesh: the mesh it runs on.
    lower: a model config (`config`, or one with other layers) -> the lowered program.
  """

  command: str
  name: str
  shape: str
  tokens: int
  model_flops: float
  config: ModelConfig
  mesh: Mesh
  lower: Callable[[ModelConfig], jax.stages.Lowered]


def _head_flops(config: ModelConfig) -> float:
  """Forward FLOPs of the vocabulary projection for one token."""
  return 2.0 * config.vocab_size * config.embed_dim


def train_step(config: ModelConfig, train: loop.TrainConfig, optimizer: OptimizerConfig,
               mesh: Mesh, rules: parallel.Rules) -> Program:
  """The training step of `instruct-pt train` on `mesh`.

  Args:
    config: the model.
    train: the run's training settings.
    optimizer: the optimizer.
    mesh: the mesh over every device of the job.
    rules: logical axis rules.

  Raises:
    ValueError: a batch the mesh cannot split.
  """
  parallel.check_batch_size(train.batch_size, mesh, rules, "train.batch_size")
  parallel.check_batch_size(train.batch_size // train.grad_accum_steps, mesh, rules,
                            "train.batch_size / train.grad_accum_steps")
  unit_mask = loop.units_update_mask(train, config)

  def lower(variant: ModelConfig) -> jax.stages.Lowered:
    model = Decoder(variant)
    mask = unit_mask if variant.num_layers == config.num_layers else None
    tx, schedule = make_optimizer(optimizer, train.num_steps, mask)
    state = abstract_train_state(model, tx, mesh, rules)
    shardings = jax.tree_util.tree_map(lambda leaf: leaf.sharding, state)
    batch_sharding = parallel.batch_sharding(mesh, rules)
    with parallel.sharding_context(mesh, rules):
      step = loop.jit_train_step(model, tx, schedule, train, shardings, batch_sharding)
      return step.lower(state, loop.abstract_batch(train, batch_sharding))

  tokens = train.batch_size * train.seq_len
  accum = f", {train.grad_accum_steps} micro-batches" if train.grad_accum_steps > 1 else ""
  return Program("train", "train_step",
                 f"{train.batch_size} x {train.seq_len} tokens{accum}, remat "
                 f"{config.remat_policy}", tokens, config.flops_per_token(train.seq_len) * tokens,
                 config, mesh, lower)


def synthesis(config: ModelConfig, settings: SynthesisConfig, mesh: Mesh,
              rules: parallel.Rules) -> list[Program]:
  """The prefill and decode programs of `instruct-pt synthesize` on `mesh` (one host's).

  Args:
    config: the synthesizer model.
    settings: the run's synthesis settings (slots, lengths, sampling).
    mesh: the mesh over one host's devices.
    rules: logical axis rules.
  """
  sampling = settings.sampling()

  def engine(variant: ModelConfig) -> Engine:
    return Engine(variant, store.abstract_params(variant, mesh, rules), mesh, rules,
                  eos_ids=[0], num_slots=settings.num_slots, max_len=settings.max_len,
                  max_prefill_tokens=settings.max_prefill_tokens)

  plan = engine(config).largest_prefill(sampling)
  prefill_tokens = plan.num_rows * plan.row_len
  prefill = Program(
      "synthesize", "prefill",
      f"{plan.num_rows} rows x {plan.row_len} tokens (the largest call: "
      f"{len(plan.placements)} of the {settings.num_slots} slots admitted with the longest "
      f"prompts, at most {settings.max_prefill_tokens} prompt tokens)", prefill_tokens,
      prefill_tokens * config.forward_flops_per_token(plan.row_len, output_head=False) +
      len(plan.placements) * _head_flops(config), config, mesh,
      lambda variant: engine(variant).lower_prefill(plan, sampling))
  decode = Program(
      "synthesize", "decode_step",
      f"{settings.num_slots} slots, a {settings.max_len}-token cache; per decode step",
      settings.num_slots, settings.num_slots * config.forward_flops_per_token(settings.max_len),
      config, mesh, lambda variant: engine(variant).lower_decode(sampling))
  return [prefill, decode]


def scoring(config: ModelConfig, settings: ScoringConfig, mesh: Mesh,
            rules: parallel.Rules) -> Program:
  """The largest scoring call of `instruct-pt evaluate` on `mesh` (one host's).

  Args:
    config: the evaluated model.
    settings: the scoring settings (`evaluate.*`).
    mesh: the mesh over one host's devices.
    rules: logical axis rules.
  """
  def scorer(variant: ModelConfig) -> Scorer:
    return Scorer(variant, store.abstract_params(variant, mesh, rules), mesh, rules,
                  settings.max_length, settings.row_len, settings.batch_tokens)

  rows, row_len, picks = scorer(config).largest_call()
  tokens = rows * row_len
  return Program(
      "evaluate", "score", f"{rows} rows x {row_len} tokens, {picks} scored per row", tokens,
      tokens * config.forward_flops_per_token(row_len, output_head=False) +
      rows * picks * _head_flops(config), config, mesh,
      lambda variant: scorer(variant).lower(rows, row_len, picks))
