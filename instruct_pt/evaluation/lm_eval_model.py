"""The lm-evaluation-harness model `instruct_pt`: our Decoder on the mesh answers lm-eval.

`InstructPTLM` is an `lm_eval.api.model.TemplateLM` (so contexts and continuations are split
into tokens exactly as lm-eval's `hf` model splits them) registered under `instruct_pt`:

* `loglikelihood` / `loglikelihood_rolling` go through `scoring.Scorer` (packed rows with
  segment ids, a few compiled shapes, left truncation counted); rolling windows are lm-eval's
  own (`get_rolling_token_windows`), so perplexities match the `hf` model's.
* `generate_until` goes through the synthesis `Engine` (packed prefill, continuous batching);
  the output is cut at the first stop sequence as lm-eval does.
* `soft_prompt=RUN` (a ProMoT fine-tuning run, or a `.npy` file) puts the run's trained soft
  prompt ahead of every request, for both scoring and generation: evaluate the fine-tuned
  task with it and every other task without it.
* `unit_mask=FILE` (a units file of `instruct-pt analyze-units`) ablates those units (zeroes
  them in every layer's forward pass) for log-likelihood requests; generation refuses it.
* Multi-host: every process loads the model onto a mesh of its own devices, lm-eval gives it
  its share of each task's documents (`rank`, `world_size` are the JAX process index and
  count) and gathers the metrics through `gather_object`; `barrier` also sums the hosts'
  counters, so process 0 reports every host's truncated requests.

Model arguments (`--model_args run_dir=RUN,row_len=256`): see `InstructPTLM`.
"""

from __future__ import annotations

import json
import logging
import pickle
from typing import Any, Optional, Sequence, Union

import jax
import numpy as np
from jax.experimental import multihost_utils
from lm_eval import utils as lm_eval_utils
from lm_eval.api.model import TemplateLM
from lm_eval.api.registry import register_model
from lm_eval.models import utils as model_utils

from instruct_pt import parallel, progress
from instruct_pt.evaluation import scoring
from instruct_pt.model import units as units_lib
from instruct_pt.run_dir import load as load_model
from instruct_pt.run_dir import read_prompt
from instruct_pt.model.generate import Engine, SamplingConfig

MODEL_NAME = "instruct_pt"


def _int_or_none(value) -> Optional[int]:
  return None if value in (None, "", "None") else int(value)


def placement(mesh: Any, rules: Optional[parallel.Rules],
              rule_overrides: Union[str, parallel.Rules]) -> tuple[jax.sharding.Mesh, Any]:
  """The mesh and rule table of an lm-eval model, from its arguments (see `InstructPTLM`);
  starts `jax.distributed` first when this process is one of several.

  Args:
    mesh: a (data, fsdp, tensor) shape as `parallel.parse_mesh_shape` reads it, or a Mesh.
    rules: a whole rule table, or None for the project's.
    rule_overrides: changes to the project's table (`parallel.parse_rule_overrides`).
  """
  if rules is not None and rule_overrides:
    raise ValueError("give rules (a whole table) or rule_overrides (changes to the project's "
                     "table), not both")
  rules = rules or parallel.merge_rules(parallel.LOGICAL_AXIS_RULES,
                                        parallel.parse_rule_overrides(rule_overrides or ""))
  parallel.maybe_initialize_distributed()
  if not isinstance(mesh, jax.sharding.Mesh):
    shape = parallel.parse_mesh_shape(mesh, "mesh")
    mesh = parallel.create_mesh(shape, jax.local_devices(), allow_subset=-1 not in shape)
  return mesh, rules


@register_model(MODEL_NAME)
class InstructPTLM(TemplateLM):
  """A model from any source `run_dir.load` accepts, on a mesh of this process's devices.

  Args:
    run_dir: a run directory (imported, trained or fine-tuned), Hugging Face directory, GGUF
      file or bundled name.
    mesh: (data, fsdp, tensor) shape (`parallel.parse_mesh_shape`: "1,-1,1", or "1:-1:1" in
      lm-eval's --model_args) or a tuple; or a `jax.sharding.Mesh`.
    rules: logical axis rules (default: the project's table with `rule_overrides`).
    rule_overrides: entries replacing those of the project's table, as
      `MeshConfig.rule_overrides` holds them or, in lm-eval's --model_args,
      "embed=None;heads=fsdp+tensor" (`parallel.parse_rule_overrides`); not with `rules`.
    max_length: tokens the model reads per request (default: the model's max_seq_len).
    row_len: tokens per packed row when scoring.
    batch_tokens: tokens per scoring call (rows x row length).
    add_bos_token: prepend BOS to encoded text; None does what transformers' tokenizer of
      the same files does (`Tokenizer.adds_bos`), like lm-eval's `hf` model.
    max_gen_toks: default generation budget of `generate_until`.
    num_slots: sequences decoded at once by `generate_until`.
    seed: sampling seed of `generate_until` (greedy decoding ignores it).
    soft_prompt: a run directory with a trained soft prompt (`prompt.npy`) or a `.npy` file,
      read ahead of every request; None (or "") for none.
    unit_mask: a units file (`units.json`, or an `analyze-units` output directory) whose
      units are ablated when scoring; None (or "") for the plain model.
    progress: show progress bars (loading, requests; process 0 only).
    batch_size, max_batch_size, device: lm-eval's generic settings, accepted and unused:
      `batch_tokens` sizes the calls and the mesh places them.
  """

  def __init__(self, run_dir: str, mesh: Any = "1:-1:1", rules: Optional[parallel.Rules] = None,
               rule_overrides: Union[str, parallel.Rules] = "",
               max_length: Optional[int] = None, row_len: int = scoring.ROW_LEN,
               batch_tokens: int = scoring.BATCH_TOKENS,
               add_bos_token: Optional[bool] = None, max_gen_toks: int = 256,
               num_slots: int = 8, seed: int = 0, soft_prompt: Optional[str] = None,
               unit_mask: Optional[str] = None, progress: bool = True,
               batch_size=None, max_batch_size=None, device=None):
    super().__init__()
    del batch_size, max_batch_size, device  # see the docstring
    self.mesh, self.rules = placement(mesh, rules, rule_overrides)
    self.source = str(run_dir)
    # Config and tokenizer first: a source without a tokenizer fails before any tensor loads.
    described = load_model(self.source, with_params=False)
    if described.tokenizer is None:
      raise ValueError(f"{self.source}: no tokenizer (evaluation tokenizes the tasks' text); "
                       f"import the model with its tokenizer (`instruct-pt convert`)")
    self.soft_prompt = str(soft_prompt) if soft_prompt not in (None, "", "None") else None
    self.prompt = (None if self.soft_prompt is None
                   else read_prompt(self.soft_prompt, described.config.embed_dim))
    self.unit_mask = str(unit_mask) if unit_mask not in (None, "", "None") else None
    unit_keep = (None if self.unit_mask is None
                 else units_lib.read(self.unit_mask, described.config).keep_factors())
    self.progress = bool(progress) and jax.process_index() == 0
    loaded = load_model(self.source, mesh=self.mesh, rules=self.rules, progress=self.progress)
    self.config, self.params, self._tokenizer = loaded.config, loaded.params, loaded.tokenizer
    if self._tokenizer.eos_id is None:
      raise ValueError(f"{self.source}: the tokenizer has no EOS id (lm-eval's end of text)")
    self.scorer = scoring.Scorer(self.config, self.params, self.mesh, self.rules,
                                 _int_or_none(max_length), int(row_len), int(batch_tokens),
                                 self.prompt, unit_keep)
    self.add_bos = self._tokenizer.adds_bos if add_bos_token is None else bool(add_bos_token)
    self._max_gen_toks = int(max_gen_toks)
    self.num_slots = int(num_slots)
    self.seed = int(seed)
    self._rank, self._world_size = jax.process_index(), jax.process_count()
    self.generation_truncated = 0
    self.totals: Optional[dict[str, int]] = None  # every host's counters, after a barrier

  # ------------------------------------------------------------------ what lm-eval asks of us

  @property
  def eot_token_id(self) -> int:
    return self._tokenizer.eos_id

  @property
  def prefix_token_id(self) -> int:
    """BOS if the tokenizer has one, else EOS (as the `hf` model)."""
    bos = self._tokenizer.bos_id
    return self.eot_token_id if bos is None else bos

  @property
  def max_length(self) -> int:
    return self.scorer.max_length

  @property
  def max_gen_toks(self) -> int:
    return self._max_gen_toks

  def tok_encode(self, string: str, add_special_tokens: Optional[bool] = None,
                 **kwargs) -> list[int]:
    """Token ids of `string`, with BOS first when `add_special_tokens` (default: the
    tokenizer's own behaviour) asks for it."""
    del kwargs
    add = self.add_bos if add_special_tokens is None else add_special_tokens
    ids = self._tokenizer.encode(string)
    return [self._tokenizer.bos_id] + ids if add and self._tokenizer.bos_id is not None else ids

  def tok_decode(self, tokens: Sequence[int]) -> str:
    return self._tokenizer.decode(tokens)

  def _loglikelihood_tokens(self, requests, disable_tqdm: bool = False, **kwargs):
    """`(log-likelihood, is greedy)` of `((context, continuation), context ids,
    continuation ids)` requests."""
    del kwargs
    answers = self._score([(context, continuation) for _, context, continuation in requests],
                          "loglikelihood requests", disable_tqdm)
    for (strings, _, _), answer in zip(requests, answers):
      if strings is not None:
        self.cache_hook.add_partial("loglikelihood", strings, answer)
    return answers

  def loglikelihood_rolling(self, requests, disable_tqdm: bool = False) -> list[float]:
    """Log-likelihood of each whole text, in lm-eval's disjoint rolling windows."""
    windows, owners = [], []
    for index, (string,) in enumerate(request.args for request in requests):
      for context, continuation in map(lm_eval_utils.make_disjoint_window,
                                       lm_eval_utils.get_rolling_token_windows(
                                           token_list=self.tok_encode(string),
                                           prefix_token=self.prefix_token_id,
                                           max_seq_len=self.max_length, context_len=1)):
        windows.append((context, continuation))
        owners.append(index)
    totals = [0.0] * len(requests)
    for owner, (logprob, _) in zip(owners, self._score(windows, "rolling windows",
                                                       disable_tqdm)):
      totals[owner] += logprob
    for request, total in zip(requests, totals):
      self.cache_hook.add_partial("loglikelihood_rolling", request.args, total)
    return totals

  def generate_until(self, requests, disable_tqdm: bool = False) -> list[str]:
    """Continuations generated with the synthesis engine, cut at the first stop sequence;
    requests with the same generation settings run together."""
    if self.unit_mask is not None:
      raise ValueError(f"unit_mask={self.unit_mask}: unit ablation serves log-likelihood "
                       f"tasks; generation (generate_until) runs the plain model only")
    groups: dict[str, list[int]] = {}
    for index, request in enumerate(requests):
      groups.setdefault(json.dumps(request.args[1], sort_keys=True, default=str),
                        []).append(index)
    outputs: list[str] = [""] * len(requests)
    bar = progress.bar(total=len(requests), desc="generate_until requests",
               disable=disable_tqdm or not self.progress)
    for members in groups.values():
      contexts = [requests[i].args[0] for i in members]
      gen_kwargs = requests[members[0]].args[1]
      for index, text in zip(members, self._generate(contexts, gen_kwargs)):
        outputs[index] = text
        self.cache_hook.add_partial("generate_until", requests[index].args, text)
      bar.update(len(members))
    bar.close()
    return outputs

  def get_model_info(self) -> dict[str, Any]:
    """What `results.json`'s `config` records about the model and this run's requests."""
    counters = self.totals or self._counters()
    return {"model_source": self.source, "model_num_parameters": self.config.num_params(),
            "max_length": self.max_length, "soft_prompt": self.soft_prompt,
            "unit_mask": self.unit_mask, **counters}

  # ------------------------------------------------------------------------------ multi-host

  @property
  def rank(self) -> int:
    return self._rank

  @property
  def world_size(self) -> int:
    return self._world_size

  def all_gather(self, tensor):
    """Every process's value of a (scalar or 1-d) torch tensor, concatenated."""
    import torch  # pylint: disable=import-outside-toplevel
    values = multihost_utils.process_allgather(np.asarray(tensor.cpu()).reshape(-1))
    return torch.as_tensor(np.asarray(values).reshape(-1))

  def gather_object(self, obj, dst=0):
    """Every process's `obj` (pickled), on every process."""
    del dst
    data = np.frombuffer(pickle.dumps(obj), np.uint8)
    sizes = np.asarray(multihost_utils.process_allgather(np.asarray([data.size]))).reshape(-1)
    padded = np.zeros(int(sizes.max()), np.uint8)
    padded[:data.size] = data
    gathered = np.asarray(multihost_utils.process_allgather(padded))
    return [pickle.loads(row[:size].tobytes()) for row, size in zip(gathered, sizes)]

  def barrier(self) -> None:
    """Waits for every process, then sums the hosts' counters (`totals`)."""
    names = sorted(self._counters())
    local = np.asarray([self._counters()[name] for name in names], np.int64)
    summed = np.asarray(multihost_utils.process_allgather(local)).reshape(-1, len(names)).sum(0)
    self.totals = {name: int(value) for name, value in zip(names, summed)}

  # ---------------------------------------------------------------------------------- helpers

  def _counters(self) -> dict[str, int]:
    stats = self.scorer.stats
    return {"scored_requests": stats.requests,
            "truncated_requests": stats.truncated + self.generation_truncated,
            "compiled_shapes": len(stats.compiled_shapes),
            "packed_tokens": stats.tokens, "packed_slots": stats.slots}

  def _score(self, requests, description: str, disable_tqdm: bool):
    truncated = self.scorer.stats.truncated
    bar = progress.bar(total=len(requests), desc=description,
                       disable=disable_tqdm or not self.progress)
    answers = self.scorer.score(requests, progress=bar.update)
    bar.close()
    if self.scorer.stats.truncated > truncated:
      logging.warning("%d requests exceed max_length=%d and were truncated from the left",
                      self.scorer.stats.truncated - truncated, self.max_length)
    return answers

  def _generate(self, contexts: Sequence[str], gen_kwargs: dict) -> list[str]:
    kwargs = model_utils.normalize_gen_kwargs(gen_kwargs, self.max_gen_toks)
    until = model_utils.handle_stop_sequences(kwargs.pop("until", None), eos=None)
    max_new = kwargs.pop("max_gen_toks")
    room = self.max_length - max_new
    if room <= 0:
      raise ValueError(f"max_gen_toks={max_new} leaves no room for a prompt in max_length="
                       f"{self.max_length}")
    prompts = []
    for context in contexts:
      ids = self.tok_encode(context) or [self.prefix_token_id]
      self.generation_truncated += len(ids) > room
      prompts.append(ids[-room:])
    sampling = SamplingConfig(
        temperature=float(kwargs.get("temperature") or 0.0) if kwargs.get("do_sample") else 0.0,
        top_k=int(kwargs.get("top_k") or 0), top_p=float(kwargs.get("top_p") or 1.0),
        max_new_tokens=max_new)
    shards = parallel.data_parallel_size(self.mesh, self.rules)
    soft = 0 if self.prompt is None else len(self.prompt)
    engine = Engine(self.config, self.params, self.mesh, self.rules,
                    eos_ids=[self.eot_token_id], num_slots=-(-self.num_slots // shards) * shards,
                    max_len=max(len(p) for p in prompts) + max_new + soft, prompt=self.prompt)
    generated = engine.generate(prompts, sampling, seed=self.seed)
    return [model_utils.postprocess_generated_text(self._tokenizer.decode(ids), until, None)
            for ids in generated]

