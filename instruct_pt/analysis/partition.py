"""Contextual partitioning (c-BTM, arXiv 2303.14177): cluster a corpus without labels.

`partition` embeds documents (`contexts`: TF-IDF -> truncated SVD, or a frozen model's
mean-pooled hidden state), clusters them with balanced k-means, and writes a partition
directory (`contexts.PartitionDir`): the featurizer and centres as plain files, each
document's cluster, and each cluster's documents as a JSONL file that the data registry
registers as a SeqIO task (`data.partitions`). Experts are then trained per cluster with
`instruct-pt train` and scored together by `evaluation.routed`.

Balanced k-means: k-means++ seeding, then alternating (a) an equal-size assignment, (b)
centres as the mean of their members, until the assignment stops changing. The equal-size
assignment is capacity-constrained greedy (every (document, centre) pair by distance, a
document taking the nearest centre with room; capacities differ by at most one), as the
balanced k-means c-BTM uses bounds cluster sizes; UNVERIFIED that it matches that package's
auction algorithm assignment for assignment.

Measures against known labels (which never touch the clustering): purity and its chance
level, the true-centroid purity (the purity at the labels' own centroids, the reference a
clusterer that found the labels would reach), k-means' objective for any partition, and
router accuracy.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from typing import Any, Optional, Sequence

import numpy as np

from instruct_pt.analysis import contexts


def _distances(x: np.ndarray, centres: np.ndarray) -> np.ndarray:
  return ((x[:, None, :].astype(np.float64) - centres[None].astype(np.float64)) ** 2).sum(-1)


def balanced_assign(distances: np.ndarray) -> np.ndarray:
  """Equal-size assignment: cluster sizes are n // k or n // k + 1 (the first n % k clusters
  get the extra one), each document going greedily to its nearest centre with room.

  Args:
    distances: float [n, k].

  Returns:
    int [n] cluster ids.
  """
  n, k = distances.shape
  room = np.full(k, n // k)
  room[:n % k] += 1
  assignment = np.full(n, -1)
  order = np.argsort(distances, axis=None, kind="stable")
  for flat in order:
    doc, cluster = divmod(int(flat), k)
    if assignment[doc] < 0 and room[cluster] > 0:
      assignment[doc] = cluster
      room[cluster] -= 1
  return assignment


def balanced_kmeans(x: np.ndarray, k: int, seed: int = 0, iterations: int = 50
                    ) -> tuple[np.ndarray, np.ndarray]:
  """Balanced k-means of the rows of `x`.

  Args:
    x: float [n, dims].
    k: clusters.
    seed: seed of the k-means++ initialisation.
    iterations: at most this many assignment / update rounds.

  Returns:
    `(centres [k, dims] float32, assignment [n] int)`.

  Raises:
    ValueError: fewer rows than clusters, saying how many are needed.
  """
  n = len(x)
  if k < 1:
    raise ValueError(f"clusters={k} must be at least 1")
  if n < k:
    raise ValueError(f"{n} documents for {k} clusters: at least {k} are needed (one per "
                     f"cluster)")
  x = np.asarray(x, np.float64)
  rng = np.random.default_rng(seed)
  centres = [x[rng.integers(n)]]
  for _ in range(1, k):  # k-means++
    nearest = _distances(x, np.asarray(centres)).min(axis=1)
    total = nearest.sum()
    centres.append(x[rng.choice(n, p=nearest / total)] if total > 0 else x[rng.integers(n)])
  centres = np.asarray(centres)
  assignment = np.full(n, -1)
  for _ in range(iterations):
    new = balanced_assign(_distances(x, centres))
    if np.array_equal(new, assignment):
      break
    assignment = new
    centres = np.stack([x[assignment == j].mean(axis=0) for j in range(k)])
  return centres.astype(np.float32), assignment


def purity(clusters: Sequence[int], labels: Sequence[str]) -> float:
  """Share of documents whose label is their cluster's most common label."""
  clusters, labels = np.asarray(clusters), np.asarray(labels)
  hits = 0
  for cluster in np.unique(clusters):
    _, counts = np.unique(labels[clusters == cluster], return_counts=True)
    hits += counts.max()
  return float(hits / len(labels))


def true_centroid_purity(features: np.ndarray, labels: Sequence[str]) -> float:
  """The purity a clusterer reaches when its centres are the known labels' own centroids.

  Each label's centroid is the mean of its documents' features; the documents are then
  assigned to those centroids by `balanced_assign` (nearest centroid with room, cluster sizes
  n // k or n // k + 1 for k labels), the assignment step balanced k-means runs at every
  round, and the purity of that assignment is returned. It is the reference for "the
  clusterer found the labels": a purity close to it means the features allow no better, one
  far below it means the clustering missed clusters the features do hold. It is not a strict
  bound (another assignment can score a higher purity), and it compares with the purity of a
  clustering into as many clusters as there are labels.

  Args:
    features: float [n, dims], the features the clustering used.
    labels: the n known labels (the sorted distinct labels are the centroids' order).

  Raises:
    ValueError: features and labels of different lengths.
  """
  features, labels = np.asarray(features, np.float64), np.asarray(labels)
  if len(features) != len(labels):
    raise ValueError(f"{len(features)} feature rows but {len(labels)} labels")
  centroids = np.stack([features[labels == label].mean(axis=0) for label in np.unique(labels)])
  return purity(balanced_assign(_distances(features, centroids)), labels)


def within_cluster_sum_of_squares(features: np.ndarray, clusters: Sequence[Any]) -> float:
  """k-means' objective: the summed squared distance of each row to its cluster's mean.

  Compared between the clustering found and the known labels taken as clusters, it says
  whether k-means stopped short (the labels score lower) or the features favour another
  partition (the clustering found scores lower).

  Args:
    features: float [n, dims].
    clusters: each row's cluster, any hashable ids (e.g. known labels).

  Raises:
    ValueError: features and clusters of different lengths.
  """
  features, clusters = np.asarray(features, np.float64), np.asarray(clusters)
  if len(features) != len(clusters):
    raise ValueError(f"{len(features)} feature rows but {len(clusters)} cluster ids")
  return float(sum(((features[clusters == c] - features[clusters == c].mean(axis=0)) ** 2).sum()
                   for c in np.unique(clusters)))


def chance_purity(clusters: Sequence[int], labels: Sequence[str], seed: int = 0,
                  repeats: int = 20) -> float:
  """Mean purity of the same cluster sizes with the documents shuffled (the baseline)."""
  rng = np.random.default_rng(seed)
  return float(np.mean([purity(rng.permutation(np.asarray(clusters)), labels)
                        for _ in range(repeats)]))


def majority_labels(clusters: Sequence[int], labels: Sequence[str], k: int) -> list[str]:
  """Each cluster's most common label (ties: the first in sorted order); "" when empty."""
  clusters, labels = np.asarray(clusters), np.asarray(labels)
  out = []
  for cluster in range(k):
    values, counts = np.unique(labels[clusters == cluster], return_counts=True)
    out.append(str(values[counts.argmax()]) if len(values) else "")
  return out


def router_accuracy(routed: Sequence[int], labels: Sequence[str],
                    cluster_labels: Sequence[str]) -> float:
  """Share of held-out documents routed (top-1, from their prefix) to a cluster whose
  majority training label is their own label."""
  return float(np.mean([cluster_labels[c] == label for c, label in zip(routed, labels)]))


@dataclasses.dataclass(frozen=True)
class PartitionResult:
  """What `partition` found.

  Attributes:
    assignment: each document's cluster.
    sizes: documents per cluster.
    centres: float32 [clusters, dims].
    purity: against the given labels (None without labels).
    chance_purity: the purity of a random assignment of the same sizes (None without labels).
    cluster_labels: each cluster's majority label (empty without labels).
  """

  assignment: np.ndarray
  sizes: list[int]
  centres: np.ndarray
  purity: Optional[float]
  chance_purity: Optional[float]
  cluster_labels: list[str]


def partition(texts: Sequence[str], ids: Sequence[str], out: contexts.PartitionDir,
              featurizer: Any, clusters: int, seed: int = 0,
              labels: Optional[Sequence[str]] = None,
              settings: Optional[dict[str, Any]] = None) -> PartitionResult:
  """Clusters `texts` and writes the partition directory `out`.

  Args:
    texts: the documents.
    ids: their ids (written with their clusters).
    out: the partition directory.
    featurizer: a fitted `contexts.TfidfSvd` or a `contexts.ModelFeaturizer`.
    clusters: k.
    seed: k-means++ seed.
    labels: known source labels, for purity (not used to cluster); None for none.
    settings: more entries for `partition.json` (e.g. the corpus).

  Raises:
    ValueError: fewer documents than clusters.
  """
  if len(texts) < max(clusters, 2):
    raise ValueError(f"{len(texts)} documents for {clusters} clusters: at least "
                     f"{max(clusters, 2)} are needed")
  features = featurizer(texts)
  centres, assignment = balanced_kmeans(features, clusters, seed)
  sizes = np.bincount(assignment, minlength=clusters).tolist()
  out.create()
  featurizer.save(out)
  out.write_centres(centres)
  lines = []
  for index, (doc_id, cluster) in enumerate(zip(ids, assignment)):
    line = {"index": index, "id": doc_id, "cluster": int(cluster)}
    if labels is not None:
      line["label"] = labels[index]
    lines.append(json.dumps(line))
  out.assignments.write_text("\n".join(lines) + "\n")
  for cluster in range(clusters):
    members = np.flatnonzero(assignment == cluster)
    out.cluster(cluster).write_text("".join(
        json.dumps({"id": ids[i], "text": texts[i]}) + "\n" for i in members))
  result = PartitionResult(
      assignment, sizes, centres,
      None if labels is None else purity(assignment, labels),
      None if labels is None else chance_purity(assignment, labels, seed),
      [] if labels is None else majority_labels(assignment, labels, clusters))
  out.settings.write_text(json.dumps({
      **(settings or {}), "clusters": clusters, "features": featurizer.kind,
      "dims": int(centres.shape[1]), "seed": seed, "documents": len(texts), "sizes": sizes,
      "purity": result.purity, "chance_purity": result.chance_purity,
      "cluster_labels": result.cluster_labels}, indent=1))
  logging.info("partition: %d documents into %d clusters of %s%s", len(texts), clusters, sizes,
               "" if result.purity is None else
               f"; purity {result.purity:.3f} (chance {result.chance_purity:.3f})")
  return result



def route_held_out(featurizer: Any, centres: np.ndarray, texts: Sequence[str],
                   labels: Sequence[str], cluster_labels: Sequence[str],
                   prefix_chars: int) -> dict[str, Any]:
  """Router accuracy on held-out documents.

  Each document is routed top-1 (nearest centre) from its first `prefix_chars` characters,
  as the router sees a request's context.

  Args:
    featurizer: the partition's featurizer.
    centres: its centres.
    texts: held-out documents.
    labels: their known source labels.
    cluster_labels: each cluster's majority training label (`majority_labels`).
    prefix_chars: characters a route is computed from.

  Returns:
    `held_out_documents`; `router_accuracy`: the share routed to a cluster whose majority
    training label is their own; `prefix_agreement`: the share whose prefix goes to the
    cluster the whole document is nearest to.
  """
  def nearest(batch: Sequence[str]) -> np.ndarray:
    return contexts.routing_weights(featurizer(batch), centres, 1.0, 1).argmax(axis=1)

  routed = nearest([text[:prefix_chars] for text in texts])
  return {"held_out_documents": len(texts),
          "router_accuracy": router_accuracy(routed, labels, cluster_labels),
          "prefix_agreement": float(np.mean(routed == nearest(texts))),
          "prefix_chars": prefix_chars}
