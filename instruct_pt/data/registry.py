"""The data a run trains on: gin-declared corpora and mixtures (`data.*`), registered on demand.

`DataConfig` is a plain value (no SeqIO, no TensorFlow); `register` turns it into SeqIO
registrations and is the only place that imports `tasks` for a run. Example bindings::

  data.tasks = {
      'web': {'kind': 'raw_lm', 'layout': 'refinedweb', 'pattern': 'gs://b/rw/*.parquet'},
      'web_augmented': {'kind': 'instruct_augmented_lm', 'pattern': 'gs://b/aug/*.jsonl'},
  }
  data.mixtures = {'web_mix': {'web': 0.8, 'web_augmented': 0.2}}
  data.mixture = 'web_mix'

A partition directory of `instruct-pt partition` gives one raw-text task per cluster (the
commands declare them as `tasks` and a mixture first, `analysis.contexts.with_partition_tasks`;
`register` itself refuses undeclared partitions)::

  data.partitions = {'docs': '/runs/partition'}   # tasks docs_0, docs_1, ...; mixture docs
  data.mixture = 'docs_1'                         # the expert of cluster 1 trains on this
"""

from __future__ import annotations

import dataclasses
import difflib
from typing import Any, Optional


@dataclasses.dataclass(frozen=True)
class DataConfig:
  """What a run trains on (gin: `data.*`).

  Attributes:
    mixture: the SeqIO task or mixture to train on; None trains on the embedded demo corpus
      with the TensorFlow-free numpy feed.
    tasks: task name -> `kind` (a `tasks.KINDS` entry), optional `layout` (a
      `sources.CORPUS_LAYOUTS` name), `SourceSpec` fields (`pattern` required) and, for
      `synthesizer_sft`, `rounds_per_example` (`tasks.register_task`).
    mixtures: mixture name -> {task name: rate}.
    pretrain_recipes: mixture name -> `tasks.register_pretrain_recipe` arguments.
    domain_recipes: mixture name -> `tasks.register_domain_recipe` arguments.
    partitions: name -> a partition directory (`instruct-pt partition`): the `raw_lm` task
      `<name>_<j>` of each cluster j's documents, and the mixture `<name>` of all of them in
      proportion to their sizes, declared as `tasks` and `mixtures` by
      `analysis.contexts.with_partition_tasks` before `register`.
  """

  mixture: Optional[str] = None
  tasks: Optional[dict[str, dict[str, Any]]] = None
  mixtures: Optional[dict[str, dict[str, float]]] = None
  pretrain_recipes: Optional[dict[str, dict[str, Any]]] = None
  domain_recipes: Optional[dict[str, dict[str, Any]]] = None
  partitions: Optional[dict[str, str]] = None


def register(config: DataConfig, vocabulary) -> list[str]:
  """Registers the demo tasks and mixtures, then those `config` declares.

  Imports SeqIO / TensorFlow (the `data` extra).

  Args:
    config: the declarations.
    vocabulary: a `seqio.Vocabulary` shared by every task.

  Returns:
    Every registered task and mixture name.

  Raises:
    ValueError: a malformed declaration, naming it.
  """
  # pylint: disable=import-outside-toplevel
  from instruct_pt.data import sources
  from instruct_pt.data import tasks as tasks_lib
  from instruct_pt.data.seqio_source import seqio_source
  names = tasks_lib.register_demo_tasks(vocabulary)
  for name, settings in (config.tasks or {}).items():
    settings = dict(settings)
    kind = settings.pop("kind", None)
    layout = settings.pop("layout", None)
    rounds = settings.pop("rounds_per_example", 1)
    if kind is None or "pattern" not in settings:
      raise ValueError(f"data.tasks[{name!r}] needs 'kind' and 'pattern', got {sorted(settings)}")
    if kind in ("synthesizer_sft", "instructions"):  # whole records, whatever the layout says
      settings.update(text_field=sources.WHOLE_RECORD, extra_fields=())
    pattern = settings.pop("pattern")
    spec = (sources.layout_spec(layout, pattern, **settings) if layout
            else sources.SourceSpec(pattern, **settings))
    tasks_lib.register_task(name, kind, seqio_source(spec), vocabulary, rounds_per_example=rounds)
    names.append(name)
  if config.partitions:
    raise ValueError(f"data.partitions={config.partitions!r}: declare them as tasks first "
                     f"(analysis.contexts.with_partition_tasks; the commands do)")
  for name, rates in (config.mixtures or {}).items():
    tasks_lib.register_mixture(name, rates)
    names.append(name)
  for name, arguments in (config.pretrain_recipes or {}).items():
    tasks_lib.register_pretrain_recipe(name, **arguments)
    names.append(name)
  for name, arguments in (config.domain_recipes or {}).items():
    tasks_lib.register_domain_recipe(name, **arguments)
    names.append(name)
  return names


def check_registered(name: str, registered: list[str], flag: str) -> None:
  """Raises one clear error when `name` is not among `registered`.

  Args:
    name: the task or mixture asked for.
    registered: what `register` returned.
    flag: how the user named it (e.g. "data.mixture"), for the message.

  Raises:
    ValueError: naming the value, the closest registered names and all of them.
  """
  if name in registered:
    return
  close = difflib.get_close_matches(name, registered, n=3)
  hint = f" (did you mean {', '.join(close)}?)" if close else ""
  raise ValueError(f"{flag}={name!r} is not registered{hint}; registered: "
                   f"{', '.join(registered)}")
