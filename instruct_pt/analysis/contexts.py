"""Document contexts for partitioned experts: featurizers, centres, routing weights, and the
layout of a partition directory (the clustering in `partition` and the router in
`evaluation.routed` both read it).

A partition (c-BTM, Gururangan et al. 2023, arXiv 2303.14177) embeds documents, clusters
them, and routes a text to the experts of the clusters nearest to it:

* `TfidfSvd`: TF-IDF (lower-cased words of two or more characters, English stop words out,
  numbers folded to `#NUMBER`, smooth idf, L2-normalized rows) -> truncated SVD (randomized,
  seeded) -> L2-normalized features, as c-BTM's `train_clusterer.py` does with sklearn.
* `ModelFeaturizer`: the mean over a text's tokens of a frozen model's last hidden state
  (after the final norm), L2-normalized.
* `routing_weights`: `w_j = softmax_j(-|e - c_j|^2 / T)`, optionally only the `top_k` largest
  kept and renormalized (c-BTM's `sequence_scorer_btm.py`).

A partition directory (`PartitionDir`, the one owner of these names; its paths are resolved,
created and described as a run directory's are, by `run_dir`) holds:

  partition.json        settings and counts (clusters, features, seed, sizes, purity)
  featurizer.json       the featurizer: its kind, vocabulary (TF-IDF) or model source (model)
  featurizer.npz        TF-IDF `idf` [vocab] and SVD `components` [dims, vocab]
  centres.npy           the cluster centres, float32 [clusters, dims]
  assignments.jsonl     one line per document: {"index", "id", "cluster", "label"?}
  clusters/cluster-NNN.jsonl   each cluster's documents as {"id", "text"} (its SeqIO task)
  eval/<name>/          evaluation results of the routed experts (`instruct-pt evaluate`)

`with_partition_tasks(data)` turns a run's `data.partitions` into the plain task and mixture
declarations the data registry (below this package) registers: one `raw_lm` task per cluster
and a mixture over them; the commands apply it before building a run's feeds.
"""

from __future__ import annotations

import dataclasses
import io
import json
import re
from typing import Any, Callable, Optional, Sequence

import jax
import numpy as np
from etils import epath

from instruct_pt import parallel, run_dir
from instruct_pt.data import registry
from instruct_pt.model.transformer import Decoder

FEATURES = ("tfidf", "model")
NUMBER_TOKEN = "#NUMBER"
_WORD = re.compile(r"(?u)\b\w\w+\b")
# A short English stop-word list (the most frequent function words of sklearn's list).
STOP_WORDS = frozenset("""
a about above after again against all also am an and any are as at be because been before
being below between both but by can could did do does doing down during each either else
etc every few for from further had has have having he her here hers him his how however i if
in into is it its itself just least less may me might more most much must my neither no nor
not of off often on once one only or other our ours out over own per rather same shall she
should since so some such than that the their theirs them then there these they this those
though through thus to too under until up upon us very via was we were what when where
whether which while who whom whose why will with within without would yet you your yours
""".split())


def words(text: str) -> list[str]:
  """The TF-IDF terms of `text`: lower-cased words, stop words dropped, numbers folded."""
  terms = []
  for word in _WORD.findall(text.lower()):
    if word in STOP_WORDS:
      continue
    terms.append(NUMBER_TOKEN if word.isdigit() else word)
  return terms


def normalize_rows(x: np.ndarray) -> np.ndarray:
  """`x` with each row scaled to unit L2 norm (zero rows stay zero)."""
  norms = np.linalg.norm(x, axis=1, keepdims=True)
  return x / np.where(norms > 0, norms, 1.0)


class _Sparse:
  """TF-IDF rows in CSR form: `indptr` [n+1], `indices` and `data` [nnz]."""

  def __init__(self, indptr: np.ndarray, indices: np.ndarray, data: np.ndarray, width: int):
    self.indptr, self.indices, self.data, self.width = indptr, indices, data, width
    self.rows = np.repeat(np.arange(len(indptr) - 1), np.diff(indptr))

  def dot(self, m: np.ndarray) -> np.ndarray:
    """`X @ m` for `m` [width, c]."""
    out = np.zeros((len(self.indptr) - 1, m.shape[1]), np.float64)
    np.add.at(out, self.rows, self.data[:, None] * m[self.indices])
    return out

  def tdot(self, m: np.ndarray) -> np.ndarray:
    """`X.T @ m` for `m` [n, c]."""
    out = np.zeros((self.width, m.shape[1]), np.float64)
    np.add.at(out, self.indices, self.data[:, None] * m[self.rows])
    return out


class TfidfSvd:
  """TF-IDF -> truncated SVD -> L2 normalization.

  Args:
    vocabulary: the terms, in column order.
    idf: float [vocab] inverse document frequencies.
    components: float [dims, vocab] SVD components (rows of V^T).
  """

  kind = "tfidf"

  def __init__(self, vocabulary: Sequence[str], idf: np.ndarray, components: np.ndarray):
    self.vocabulary = list(vocabulary)
    self.index = {term: i for i, term in enumerate(self.vocabulary)}
    self.idf = np.asarray(idf, np.float64)
    self.components = np.asarray(components, np.float64)

  @property
  def dims(self) -> int:
    """Width of the features."""
    return self.components.shape[0]

  @classmethod
  def fit(cls, texts: Sequence[str], dims: int = 100, max_terms: int = 20000, min_df: int = 2,
          seed: int = 0) -> "TfidfSvd":
    """Fits the vocabulary, idf and SVD components on `texts`.

    Args:
      texts: the documents.
      dims: SVD dimensions (c-BTM: 100); at most the number of documents and terms.
      max_terms: the vocabulary keeps the terms found in most documents, at most this many.
      min_df: a term must be in at least this many documents.
      seed: seed of the randomized SVD.

    Raises:
      ValueError: no term occurs in `min_df` documents.
    """
    df: dict[str, int] = {}
    for text in texts:
      for term in set(words(text)):
        df[term] = df.get(term, 0) + 1
    kept = sorted((t for t, n in df.items() if n >= min_df), key=lambda t: (-df[t], t))
    vocabulary = sorted(kept[:max_terms])
    if not vocabulary:
      raise ValueError(f"no term occurs in {min_df} of the {len(texts)} documents; the "
                       f"featurizer needs a shared vocabulary")
    counts = np.asarray([df[t] for t in vocabulary], np.float64)
    idf = np.log((1 + len(texts)) / (1 + counts)) + 1  # sklearn's smooth idf
    featurizer = cls(vocabulary, idf, np.zeros((0, len(vocabulary))))
    x = featurizer._tfidf(texts)
    featurizer.components = _randomized_svd(x, min(dims, len(texts), len(vocabulary)), seed)
    return featurizer

  def _tfidf(self, texts: Sequence[str]) -> _Sparse:
    indptr, indices, data = [0], [], []
    for text in texts:
      counts: dict[int, int] = {}
      for term in words(text):
        column = self.index.get(term)
        if column is not None:
          counts[column] = counts.get(column, 0) + 1
      columns = np.asarray(sorted(counts), np.int64)
      values = np.asarray([counts[c] for c in columns], np.float64) * self.idf[columns]
      norm = np.linalg.norm(values)
      indices.extend(columns)
      data.extend(values / norm if norm > 0 else values)
      indptr.append(len(indices))
    return _Sparse(np.asarray(indptr), np.asarray(indices, np.int64),
                   np.asarray(data, np.float64), len(self.vocabulary))

  def __call__(self, texts: Sequence[str]) -> np.ndarray:
    """Features of `texts`, float32 [n, dims], unit rows (zero for a text of no known term)."""
    return normalize_rows(self._tfidf(texts).dot(self.components.T)).astype(np.float32)

  def save(self, directory: "PartitionDir") -> None:
    """Writes `featurizer.json` and `featurizer.npz`."""
    directory.featurizer_json.write_text(json.dumps(
        {"kind": self.kind, "dims": self.dims, "vocabulary": self.vocabulary}))
    buffer = io.BytesIO()
    np.savez(buffer, idf=self.idf, components=self.components)
    directory.featurizer_npz.write_bytes(buffer.getvalue())


def _randomized_svd(x: _Sparse, dims: int, seed: int, oversample: int = 10,
                    power_iterations: int = 4) -> np.ndarray:
  """The top `dims` right singular vectors of `x` (Halko et al.), signs fixed so that each
  vector's largest entry is positive; [dims, width]."""
  width = min(dims + oversample, x.width)
  q = x.dot(np.random.default_rng(seed).standard_normal((x.width, width)))
  q, _ = np.linalg.qr(q)
  for _ in range(power_iterations):
    z, _ = np.linalg.qr(x.tdot(q))
    q, _ = np.linalg.qr(x.dot(z))
  _, _, vt = np.linalg.svd(x.tdot(q).T, full_matrices=False)
  vt = vt[:dims]
  signs = np.sign(vt[np.arange(len(vt)), np.abs(vt).argmax(axis=1)])
  return vt * np.where(signs == 0, 1, signs)[:, None]


class ModelFeaturizer:
  """Mean of a frozen model's last hidden state (after the final norm) over a text's tokens.

  Args:
    source: the model source (`run_dir.load`), recorded in `featurizer.json`.
    config: its ModelConfig.
    params: its parameters (on `mesh`).
    tokenizer: its tokenizer.
    mesh: the device mesh.
    rules: logical axis rules.
    max_tokens: tokens read per text (the first ones).
    batch_size: texts per forward pass.
  """

  kind = "model"

  def __init__(self, source: str, config: Any, params: Any, tokenizer: Any, mesh: Any,
               rules: Any, max_tokens: int = 128, batch_size: int = 8):
    self.source, self.params, self.tokenizer = source, params, tokenizer
    self.mesh, self.rules = mesh, rules
    self.max_tokens, self.batch_size = max_tokens, batch_size
    self.dims = config.embed_dim
    model = Decoder(config)

    def hidden(params, tokens, mask):
      _, state = model.apply({"params": params}, tokens, mutable=["intermediates"],
                             capture_intermediates=lambda m, _: m.name == "final_norm")
      x = state["intermediates"]["final_norm"]["__call__"][0].astype("float32")
      return (x * mask[..., None]).sum(1) / mask.sum(1, keepdims=True)

    self._hidden = jax.jit(hidden)

  def __call__(self, texts: Sequence[str]) -> np.ndarray:
    """Features of `texts`, float32 [n, embed_dim], unit rows."""
    out = []
    for start in range(0, len(texts), self.batch_size):
      batch = [self.tokenizer.encode(t)[:self.max_tokens] or [self.tokenizer.eos_id or 0]
               for t in texts[start:start + self.batch_size]]
      tokens = np.zeros((self.batch_size, self.max_tokens), np.int32)
      mask = np.zeros((self.batch_size, self.max_tokens), np.float32)
      mask[len(batch):, 0] = 1  # padding rows: no division by zero
      for row, ids in enumerate(batch):
        tokens[row, :len(ids)], mask[row, :len(ids)] = ids, 1
      with parallel.sharding_context(self.mesh, self.rules):
        pooled = np.asarray(self._hidden(self.params, tokens, mask))
      out.append(pooled[:len(batch)])
    return normalize_rows(np.concatenate(out)).astype(np.float32)

  def save(self, directory: "PartitionDir") -> None:
    """Writes `featurizer.json` (the model source and token budget)."""
    directory.featurizer_json.write_text(json.dumps(
        {"kind": self.kind, "dims": self.dims, "model": self.source,
         "max_tokens": self.max_tokens}))


def routing_weights(features: np.ndarray, centres: np.ndarray, temperature: float,
                    top_k: Optional[int] = None) -> np.ndarray:
  """c-BTM's expert weights: `softmax_j(-|e - c_j|^2 / temperature)`, top-k renormalized.

  Args:
    features: float [n, dims] embeddings of the prefixes.
    centres: float [clusters, dims].
    temperature: T > 0 (c-BTM: 0.1).
    top_k: keep the k largest weights of each row (ties: the lower cluster index) and
      renormalize; None keeps all.

  Returns:
    float64 [n, clusters], rows summing to 1.

  Raises:
    ValueError: a non-positive temperature or top_k, or features and centres of other widths.
  """
  if temperature <= 0:
    raise ValueError(f"temperature={temperature} must be positive")
  if top_k is not None and top_k < 1:
    raise ValueError(f"top_k={top_k} must be at least 1")
  features = np.asarray(features, np.float64)
  centres = np.asarray(centres, np.float64)
  if features.shape[1] != centres.shape[1]:
    raise ValueError(f"features of width {features.shape[1]} against centres of width "
                     f"{centres.shape[1]}")
  distances = ((features[:, None, :] - centres[None, :, :]) ** 2).sum(-1)
  logits = -distances / temperature
  weights = np.exp(logits - logits.max(axis=1, keepdims=True))
  if top_k is not None and top_k < centres.shape[0]:
    order = np.argsort(-weights, axis=1, kind="stable")
    keep = np.zeros_like(weights, bool)
    np.put_along_axis(keep, order[:, :top_k], True, axis=1)
    weights = np.where(keep, weights, 0.0)
  return weights / weights.sum(axis=1, keepdims=True)


class PartitionDir:
  """The paths of a partition directory (see the module docstring).

  Args:
    path: the directory, local (made absolute) or `gs://`; it need not exist yet.
  """

  def __init__(self, path: run_dir.PathLike):
    self.path = run_dir.resolve(path)

  def __str__(self) -> str:
    return str(self.path)

  settings = property(lambda self: self.path / "partition.json", doc="Settings and counts.")
  featurizer_json = property(lambda self: self.path / "featurizer.json",
                             doc="The featurizer's kind, vocabulary or model source.")
  featurizer_npz = property(lambda self: self.path / "featurizer.npz",
                            doc="TF-IDF idf and SVD components.")
  centres = property(lambda self: self.path / "centres.npy", doc="Cluster centres.")
  assignments = property(lambda self: self.path / "assignments.jsonl",
                         doc="Each document's cluster.")
  clusters = property(lambda self: self.path / "clusters", doc="Each cluster's documents.")

  def cluster(self, index: int) -> epath.Path:
    """The documents of cluster `index` (JSONL of {"id", "text"})."""
    return self.clusters / f"cluster-{index:03d}.jsonl"

  def cluster_files(self) -> list[tuple[epath.Path, int]]:
    """Each cluster's documents file and how many documents it holds, in cluster order.

    Raises:
      FileNotFoundError: not a partition directory.
    """
    return [(self.cluster(index), int(size))
            for index, size in enumerate(self.read_settings()["sizes"])]

  def eval_dir(self, name: str) -> epath.Path:
    """Where an evaluation of the routed experts named `name` writes its results."""
    return self.path / "eval" / name

  def create(self) -> "PartitionDir":
    """Creates the directory (and parents) and its `clusters/`; returns self.

    Raises:
      NotADirectoryError: the path, or a parent of it, is an existing file.
      PermissionError: the directory cannot be created or written; names it.
    """
    run_dir.make_directory(self.path, "partition directory")
    self.clusters.mkdir(exist_ok=True)
    return self

  def write_centres(self, centres: np.ndarray) -> None:
    """Writes `centres.npy` (float32)."""
    buffer = io.BytesIO()
    np.save(buffer, np.asarray(centres, np.float32))
    self.centres.write_bytes(buffer.getvalue())

  def read_settings(self) -> dict[str, Any]:
    """`partition.json`.

    Raises:
      FileNotFoundError: not a partition directory.
    """
    if not self.settings.exists():
      raise self._missing(self.settings)
    return json.loads(self.settings.read_text())

  def num_clusters(self) -> int:
    """How many clusters (and so per-cluster tasks) the partition has."""
    return int(self.read_settings()["clusters"])

  def read_featurizer(self, load_model: Optional[Callable[[str], ModelFeaturizer]] = None
                      ) -> Any:
    """The featurizer: a `TfidfSvd`, or for model features `load_model(source)`.

    Args:
      load_model: builds the `ModelFeaturizer` of a model source (the caller loads models).

    Raises:
      FileNotFoundError: a file is missing.
      ValueError: the files disagree on the vocabulary size, naming the file.
    """
    if not self.featurizer_json.exists():
      raise self._missing(self.featurizer_json)
    spec = json.loads(self.featurizer_json.read_text())
    if spec.get("kind") == ModelFeaturizer.kind:
      if load_model is None:
        raise ValueError(f"{self.featurizer_json}: model features need the model "
                         f"{spec.get('model')} loaded")
      return load_model(spec["model"])
    if not self.featurizer_npz.exists():
      raise self._missing(self.featurizer_npz)
    with np.load(io.BytesIO(self.featurizer_npz.read_bytes())) as arrays:
      idf, components = arrays["idf"], arrays["components"]
    vocabulary = spec["vocabulary"]
    if idf.shape != (len(vocabulary),) or components.ndim != 2 or \
       components.shape[1] != len(vocabulary):
      raise ValueError(f"{self.featurizer_npz}: idf {idf.shape} and components "
                       f"{components.shape} do not match the {len(vocabulary)}-term vocabulary "
                       f"of {self.featurizer_json.name}")
    return TfidfSvd(vocabulary, idf, components)

  def read_centres(self, dims: int) -> np.ndarray:
    """The centres, float32 [clusters, dims].

    Args:
      dims: the featurizer's width.

    Raises:
      FileNotFoundError: no `centres.npy`.
      ValueError: centres of another width than `dims`, naming the file and both widths.
    """
    if not self.centres.exists():
      raise self._missing(self.centres)
    centres = np.load(io.BytesIO(self.centres.read_bytes()), allow_pickle=False)
    if centres.ndim != 2 or centres.shape[1] != dims:
      raise ValueError(f"{self.centres}: centres of shape {centres.shape} do not match the "
                       f"featurizer's {dims} dimensions ({self.featurizer_json.name})")
    return centres.astype(np.float32)

  def _missing(self, path: epath.Path) -> FileNotFoundError:
    """The error for a file of the layout that is not there, saying what the directory holds."""
    return FileNotFoundError(f"{self.path}: no {path.name} ({run_dir.describe(self.path)}); "
                             f"expected a directory written by `instruct-pt partition`")



def with_partition_tasks(data: registry.DataConfig) -> registry.DataConfig:
  """`data` with each of its `partitions` declared as tasks and a mixture, and none left.

  Partition `name` declares the `raw_lm` task `<name>_<j>` over cluster j's documents, and the
  mixture `<name>` of the non-empty ones in proportion to their sizes (before `data.mixtures`,
  which may name it).

  Args:
    data: a run's data declarations.

  Raises:
    FileNotFoundError: not a partition directory, or a cluster file is missing (naming it).
  """
  if not data.partitions:
    return data
  tasks, mixtures = dict(data.tasks or {}), {}
  for name, directory in data.partitions.items():
    rates = {}
    for cluster, (path, size) in enumerate(PartitionDir(directory).cluster_files()):
      if not path.exists():
        raise FileNotFoundError(f"data.partitions[{name!r}]: {path} is missing")
      tasks[f"{name}_{cluster}"] = {"kind": "raw_lm", "pattern": str(path)}
      if size:
        rates[f"{name}_{cluster}"] = size
    mixtures[name] = rates
  mixtures.update(data.mixtures or {})
  return dataclasses.replace(data, tasks=tasks, mixtures=mixtures, partitions=None)
