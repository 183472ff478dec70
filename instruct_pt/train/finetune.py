"""Two-stage fine-tuning with one training loop: broad then specialized, or ProMoT.

Modes (`FinetuneConfig.mode`):

* `broad_then_specialized`: stage 1 fine-tunes the model on a broad mixture, stage 2 goes on
  from stage 1's final parameters on a specialized one.
* `promot` (Wang et al. 2022, arXiv 2211.00635): stage 1 trains only a soft prompt of
  `prompt_length` vectors read ahead of every row, the model frozen (the train step
  differentiates the prompt alone: no weight gradients are computed); its initial vectors are
  embedding rows sampled from the first `prompt_init_rows` rows of the table (Lester et al.
  2021). Stage 2 fine-tunes the model with the trained prompt attached and frozen. At
  inference the prompt goes with the fine-tuned task's inputs only (`run_dir.read_prompt`;
  the generation engine and the evaluation model take it), other tasks run the plain model.

Each stage is one `loop.train` run in its own directory (`RunDir.stage`), with its own
checkpoints and metrics; the trained prompt is the run's `prompt.npy`. Running again resumes:
a stage that has finished returns at once, and once stage 2 has a checkpoint stage 1 is not
touched (stage 2's checkpoints hold the parameters and the prompt).
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any, Callable, Optional

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh

from instruct_pt import parallel, run_dir
from instruct_pt.model import store
from instruct_pt.model.config import ModelConfig
from instruct_pt.train import loop
from instruct_pt.train.optim import OptimizerConfig

MODES = ("broad_then_specialized", "promot")


@dataclasses.dataclass(frozen=True)
class FinetuneConfig:
  """Two-stage fine-tuning settings (gin: `finetune.*`).

  Attributes:
    mode: "broad_then_specialized" (stage 1 trains the model on a broad mixture, stage 2
      continues on a specialized one) or "promot" (stage 1 trains a soft prompt with the
      model frozen, stage 2 the model with the prompt frozen; both usually on the target
      task).
    stage1_steps: optimizer steps of stage 1 (`train.num_steps` is not used).
    stage2_steps: optimizer steps of stage 2.
    stage1_mixture: the SeqIO task or mixture of stage 1 (declared with `data.*`); None
      trains on the embedded demo corpus.
    stage2_mixture: the SeqIO task or mixture of stage 2; None: the demo corpus.
    prompt_length: soft prompt vectors (promot).
    prompt_learning_rate: peak learning rate of the prompt in stage 1 (promot; the rest of
      `optimizer.*` applies, weight decay off). The paper's 0.2-0.3 are Adafactor rates; Adam
      wants about 1e-2 to 1e-1.
    prompt_init_rows: the prompt starts as embedding rows sampled from the first this many
      rows of the table (Lester et al.: the 5,000 most frequent tokens; BPE vocabularies list
      frequent merges first).
  """

  mode: str = "broad_then_specialized"
  stage1_steps: int = 100
  stage2_steps: int = 100
  stage1_mixture: Optional[str] = None
  stage2_mixture: Optional[str] = None
  prompt_length: int = 20
  prompt_learning_rate: float = 3e-2
  prompt_init_rows: int = 5000

  def __post_init__(self):
    if self.mode not in MODES:
      raise ValueError(f"finetune.mode={self.mode!r} is not a mode; choose one of "
                       f"{', '.join(MODES)}")
    for name in ("stage1_steps", "stage2_steps", "prompt_length", "prompt_init_rows"):
      if getattr(self, name) <= 0:
        raise ValueError(f"finetune.{name} must be positive, got {getattr(self, name)}")
    if self.prompt_learning_rate <= 0:
      raise ValueError(f"finetune.prompt_learning_rate must be positive, got "
                       f"{self.prompt_learning_rate}")

  @property
  def promot(self) -> bool:
    """Whether this run trains a soft prompt."""
    return self.mode == "promot"

  def mixture(self, stage: int) -> Optional[str]:
    """The task or mixture of `stage` (1 or 2)."""
    return self.stage1_mixture if stage == 1 else self.stage2_mixture


def sample_prompt(params: Any, length: int, rows: int, seed: int) -> jax.Array:
  """A soft prompt of `length` embedding rows drawn from the first `rows` rows of the table.

  Args:
    params: the model's parameters (`embedder/embedding`, `[vocab, embed]`).
    length: prompt vectors.
    rows: draw from the first this many rows (all of them if the vocabulary is smaller).
    seed: which rows (without replacement when there are enough).

  Returns:
    float32 `[length, embed]`, replicated.
  """
  table = params["embedder"]["embedding"]
  available = min(rows, table.shape[0])
  picks = np.random.default_rng(seed).choice(available, size=length,
                                             replace=length > available)
  return jnp.take(table, jnp.asarray(picks), axis=0).astype(jnp.float32)


@dataclasses.dataclass
class FinetuneResult:
  """What `finetune` returns.

  Attributes:
    stage: the stage the run stopped in (2 once finished).
    step: that stage's step.
    preempted: the run stopped early on a signal after saving; running again resumes.
    losses: training losses this invocation computed, by stage and step.
    state: the final train state of the stage it stopped in (parameters, prompt).
    stop_signal: the signal that stopped it ("SIGTERM", "SIGINT"), or None.
  """

  stage: int
  step: int
  preempted: bool
  losses: dict[int, dict[int, float]]
  state: Any
  stop_signal: Optional[str] = None


StageBatches = Callable[[int], loop.BatchSource]


def finetune(model_config: ModelConfig, optimizer_config: OptimizerConfig,
             train_config: loop.TrainConfig, config: FinetuneConfig, mesh: Mesh,
             rules: parallel.Rules, run: run_dir.PathLike, train_batches: StageBatches,
             eval_batches: Optional[Callable[[int], Any]] = None,
             init_params: Optional[Callable[[], Any]] = None,
             show_progress: bool = True) -> FinetuneResult:
  """Runs (or resumes) both stages of a fine-tuning run.

  Args:
    model_config: the model.
    optimizer_config: the optimizer of the model (both stages of broad_then_specialized,
      stage 2 of promot; stage 1 of promot uses it at `prompt_learning_rate`, no decay).
    train_config: loop settings of both stages (`num_steps` is replaced by each stage's).
    config: the fine-tuning settings.
    mesh: the device mesh.
    rules: logical axis rules.
    run: the run directory; the stages go to `stage1/` and `stage2/`, the prompt to
      `prompt.npy`.
    train_batches: stage number -> that stage's batch source (see `loop.train`).
    eval_batches: stage number -> a function returning held-out batches, or None.
    init_params: loads the parameters stage 1 starts from; None: random (train.seed).
    show_progress: show progress bars.

  Returns:
    A `FinetuneResult`.
  """
  run = run_dir.RunDir(run)

  def stage_run(stage: int, optimizer: OptimizerConfig, **settings) -> loop.TrainResult:
    steps = config.stage1_steps if stage == 1 else config.stage2_steps
    return loop.train(model_config, optimizer,
                      dataclasses.replace(train_config, num_steps=steps), mesh, rules,
                      run.stage(stage), train_batches(stage),
                      eval_batches(stage) if eval_batches else None,
                      show_progress=show_progress, **settings)

  losses: dict[int, dict[int, float]] = {}
  if store.checkpoint_steps(run.stage(2).checkpoints):
    logging.info("%s: stage 2 has begun; stage 1 is not run again", run)
    params, prompt = None, (run_dir.read_prompt(run, model_config.embed_dim)
                            if config.promot else None)
  else:
    def random_params():
      return store.init_params(model_config, mesh, rules, train_config.seed)

    first = stage_run(
        1, _stage1_optimizer(optimizer_config, config), init_params=init_params or random_params,
        prompt_length=config.prompt_length if config.promot else 0,
        init_prompt=lambda params: sample_prompt(params, config.prompt_length,
                                                 config.prompt_init_rows, train_config.seed),
        trainable="prompt" if config.promot else "params")
    losses[1] = first.losses
    if first.preempted:
      return FinetuneResult(1, first.step, True, losses, first.state, first.stop_signal)
    # Only the parameters and prompt go on (stage 1's optimizer state is dropped here).
    params, prompt = first.state.params, first.state.prompt
    del first
    if config.promot:
      run.write_prompt(jax.device_get(prompt))
  second = stage_run(2, optimizer_config, init_params=lambda: params,
                     prompt_length=0 if prompt is None else prompt.shape[0],
                     init_prompt=lambda _: prompt, trainable="params")
  losses[2] = second.losses
  return FinetuneResult(2, second.step, second.preempted, losses, second.state,
                        second.stop_signal)


def _stage1_optimizer(optimizer_config: OptimizerConfig,
                      config: FinetuneConfig) -> OptimizerConfig:
  """The optimizer of stage 1: the model's, or for promot the prompt's (its own peak
  learning rate, no weight decay)."""
  if not config.promot:
    return optimizer_config
  return dataclasses.replace(optimizer_config, learning_rate=config.prompt_learning_rate,
                             weight_decay=0.0)
