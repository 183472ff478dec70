"""Routed experts (c-BTM): several expert models scored as one, weighted by context.

Each request's context text is embedded with the partition's featurizer and weighted against
its centres (`analysis.contexts.routing_weights`: softmax of -distance^2 / temperature, top-k).
The ensemble's log-probability of each continuation token is the log of the weighted mix of
the experts' probabilities, `logsumexp_j(log w_j + log p_j(x_t | x_<t))`.

* A request with one expert of non-zero weight (always so with `top_k=1`) is scored whole by
  that expert alone: one forward pass, the same answer as that expert's.
* A request mixing several experts is scored token by token (`Scorer.score_tokens`) by each
  of its experts, and the per-token log-probabilities are mixed. Its "is greedy" flag is the
  highest-weight expert's (the mixture's argmax would need every expert's full
  distribution).

The experts share one model config and tokenizer (branched from one starting point) and one
`Scorer`, whose parameters are swapped per expert, so each shape compiles once.

The lm-eval model `instruct_pt_routed` (`RoutedLM`) evaluates the routed experts like any
model: `--model_args partition=DIR,experts=RUN0|RUN1|RUN2,temperature=0.1,top_k=1`, or
`instruct-pt evaluate --partition=DIR --experts=RUN0,RUN1,RUN2`.
"""

from __future__ import annotations

from typing import Any, Callable, Optional, Sequence

import jax
import numpy as np
from lm_eval.api.model import TemplateLM
from lm_eval.api.registry import register_model

from instruct_pt import parallel
from instruct_pt.analysis import contexts
from instruct_pt.evaluation import scoring
from instruct_pt.evaluation.lm_eval_model import InstructPTLM, placement
from instruct_pt.run_dir import load as load_model

MODEL_NAME = "instruct_pt_routed"
# c-BTM's eval_cbtm default temperature.
TEMPERATURE = 0.1


class Router:
  """Expert weights of token contexts.

  Args:
    featurizer: texts -> float [n, dims] (`contexts.TfidfSvd` or `ModelFeaturizer`).
    centres: float [experts, dims].
    decode: token ids -> text.
    temperature: softmax temperature.
    top_k: experts kept per request (None: all).
  """

  def __init__(self, featurizer: Callable[[Sequence[str]], np.ndarray], centres: np.ndarray,
               decode: Callable[[Sequence[int]], str], temperature: float = TEMPERATURE,
               top_k: Optional[int] = 1):
    self.featurizer, self.centres, self.decode = featurizer, centres, decode
    self.temperature, self.top_k = temperature, top_k
    contexts.routing_weights(np.zeros((1, centres.shape[1])), centres, temperature, top_k)

  def __call__(self, token_contexts: Sequence[Sequence[int]]) -> np.ndarray:
    """float64 [n, experts] weights of each context."""
    features = self.featurizer([self.decode(list(ids)) for ids in token_contexts])
    return contexts.routing_weights(features, self.centres, self.temperature, self.top_k)


class RoutedScorer:
  """`Scorer.score` over routed experts (see the module docstring).

  Args:
    scorer: a Scorer of the experts' model config (its `params` are swapped per expert).
    expert_params: each expert's parameters, in cluster order.
    router: context ids -> weights [n, experts].
  """

  def __init__(self, scorer: scoring.Scorer, expert_params: Sequence[Any],
               router: Callable[[Sequence[Sequence[int]]], np.ndarray]):
    self.scorer, self.expert_params, self.router = scorer, list(expert_params), router
    self.max_length = scorer.max_length
    self.forward_requests = np.zeros(len(expert_params), np.int64)

  @property
  def stats(self) -> scoring.ScoringStats:
    """The scorer's counters (over every expert)."""
    return self.scorer.stats

  def score(self, requests: Sequence[scoring.Request],
            progress: Optional[Callable[[int], None]] = None) -> list[tuple[float, bool]]:
    """`(log-likelihood, is greedy)` of each request's continuation under the ensemble.

    Args:
      requests: `(context ids, continuation ids)`.
      progress: called with the number of requests finished after each expert.
    """
    if not requests:
      return []
    weights = self.router([context for context, _ in requests])
    if weights.shape != (len(requests), len(self.expert_params)):
      raise ValueError(f"the router gave weights of shape {weights.shape} for "
                       f"{len(requests)} requests and {len(self.expert_params)} experts")
    answers: list[Optional[tuple[float, bool]]] = [None] * len(requests)
    token_logprobs: dict[int, list[np.ndarray]] = {}
    top = weights.argmax(axis=1)
    greedy = {}
    for expert, params in enumerate(self.expert_params):
      whole = [i for i in range(len(requests))
               if weights[i, expert] > 0 and np.count_nonzero(weights[i]) == 1]
      mixed = [i for i in range(len(requests))
               if weights[i, expert] > 0 and np.count_nonzero(weights[i]) > 1]
      if not whole and not mixed:
        continue
      self.scorer.params = params
      self.forward_requests[expert] += len(whole) + len(mixed)
      scored = self.scorer.score_tokens([requests[i] for i in whole + mixed])
      for i, (values, flags) in zip(whole, scored):
        answers[i] = (float(values.sum()), bool(flags.all()))
      for i, (values, flags) in zip(mixed, scored[len(whole):]):
        token_logprobs.setdefault(i, []).append(np.log(weights[i, expert]) + values)
        if expert == top[i]:
          greedy[i] = bool(flags.all())
      if progress is not None:
        progress(len(whole))
    for i, parts in token_logprobs.items():
      mixed_logprob = np.logaddexp.reduce(np.stack(parts), axis=0)
      answers[i] = (float(mixed_logprob.sum()), greedy[i])
    if progress is not None:
      progress(len(token_logprobs))
    return answers


def load_router(partition: str, tokenizer: Any, temperature: float, top_k: Optional[int],
                load_featurizer_model: Optional[Callable[[str], Any]] = None) -> Router:
  """The router of a partition directory.

  Args:
    partition: written by `instruct-pt partition`.
    tokenizer: the experts' tokenizer (decodes contexts to text).
    temperature: softmax temperature.
    top_k: experts per request (None: all).
    load_featurizer_model: model source -> `contexts.ModelFeaturizer`, for model features.

  Raises:
    FileNotFoundError / ValueError: missing or mismatched partition files, naming the file.
  """
  directory = contexts.PartitionDir(partition)
  featurizer = directory.read_featurizer(load_featurizer_model)
  centres = directory.read_centres(featurizer.dims)
  return Router(featurizer, centres, tokenizer.decode, temperature, top_k)


def _top_k(value: Any) -> Optional[int]:
  return None if value in (None, "", "None", "all", 0, "0") else int(value)


@register_model(MODEL_NAME)
class RoutedLM(InstructPTLM):
  """Routed experts as one lm-eval model (scoring as `RoutedScorer`; `generate_until` by each
  request's top-1 expert).

  Args:
    partition: the partition directory (featurizer, centres).
    experts: the experts' model sources in cluster order, "|"-separated or a sequence; each
      was trained on its cluster's task from the same starting point.
    temperature: routing softmax temperature.
    top_k: experts mixed per request (1: one forward pass each; "all" or 0: every expert).
    mesh: (data, fsdp, tensor) shape (`parallel.parse_mesh_shape`: "1,-1,1", or "1:-1:1" in
      lm-eval's --model_args) or a tuple; or a `jax.sharding.Mesh`.
    rules: logical axis rules (default: the project's table with `rule_overrides`).
    rule_overrides: changes to the project's table, as `InstructPTLM` takes them.
    max_length, row_len, batch_tokens, add_bos_token, max_gen_toks, num_slots, seed,
      progress, batch_size, max_batch_size, device: as `InstructPTLM`.
  """

  def __init__(self, partition: str, experts: Any, temperature: float = TEMPERATURE,
               top_k: Any = 1, mesh: Any = "1:-1:1", rules: Optional[parallel.Rules] = None,
               rule_overrides: Any = "", max_length: Optional[int] = None,
               row_len: int = scoring.ROW_LEN,
               batch_tokens: int = scoring.BATCH_TOKENS,
               add_bos_token: Optional[bool] = None, max_gen_toks: int = 256,
               num_slots: int = 8, seed: int = 0, progress: bool = True, batch_size=None,
               max_batch_size=None, device=None):
    TemplateLM.__init__(self)  # pylint: disable=non-parent-init-called
    del batch_size, max_batch_size, device
    sources = experts.split("|") if isinstance(experts, str) else list(experts)
    sources = [s for s in sources if s]
    count = contexts.PartitionDir(partition).num_clusters()
    if len(sources) != count:
      raise ValueError(f"experts: {len(sources)} given, but partition {partition} has {count} "
                       f"clusters (one expert per cluster, in cluster order)")
    self.mesh, self.rules = placement(mesh, rules, rule_overrides)
    self.source = f"{partition} ({', '.join(sources)})"
    self.soft_prompt, self.prompt, self.unit_mask = None, None, None  # one model's options
    self.progress = bool(progress) and jax.process_index() == 0
    described = [load_model(s, with_params=False) for s in sources]
    first = described[0]
    if first.tokenizer is None:
      raise ValueError(f"{sources[0]}: no tokenizer (evaluation tokenizes the tasks' text)")
    for source, other in zip(sources[1:], described[1:]):
      if other.config != first.config:
        raise ValueError(f"expert {source} has another model config than {sources[0]}; "
                         f"experts branch from one starting point")
    self.config, self._tokenizer = first.config, first.tokenizer
    self.expert_params = [load_model(s, self.mesh, self.rules, progress=self.progress).params
                          for s in sources]
    self.params = self.expert_params[0]

    def featurizer_model(source: str) -> contexts.ModelFeaturizer:
      model = load_model(source, self.mesh, self.rules, progress=self.progress)
      return contexts.ModelFeaturizer(source, model.config, model.params, model.tokenizer,
                                      self.mesh, self.rules)

    self.router = load_router(partition, self._tokenizer, float(temperature), _top_k(top_k),
                              featurizer_model)
    self.scorer = RoutedScorer(scoring.Scorer(
        self.config, self.params, self.mesh, self.rules,
        None if max_length in (None, "", "None") else int(max_length), int(row_len),
        int(batch_tokens)), self.expert_params, self.router)
    self.add_bos = self._tokenizer.adds_bos if add_bos_token is None else bool(add_bos_token)
    self._max_gen_toks, self.num_slots, self.seed = int(max_gen_toks), int(num_slots), int(seed)
    self._rank, self._world_size = jax.process_index(), jax.process_count()
    self.generation_truncated = 0
    self.totals = None

  def _generate(self, contexts_: Sequence[str], gen_kwargs: dict) -> list[str]:
    """Each context generated by its top-1 expert."""
    chosen = self.router([self.tok_encode(c) for c in contexts_]).argmax(axis=1)
    outputs = [""] * len(contexts_)
    for expert, params in enumerate(self.expert_params):
      members = [i for i, c in enumerate(chosen) if c == expert]
      if members:
        self.params = params
        texts = super()._generate([contexts_[i] for i in members], gen_kwargs)
        for i, text in zip(members, texts):
          outputs[i] = text
    return outputs

  def get_model_info(self) -> dict[str, Any]:
    """`InstructPTLM`'s, plus the routing settings and requests run by each expert."""
    return {**super().get_model_info(), "temperature": self.router.temperature,
            "top_k": self.router.top_k,
            "expert_requests": self.scorer.forward_requests.tolist()}
