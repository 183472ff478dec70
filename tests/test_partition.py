"""Contextual partitioning: balanced k-means, the featurizer's files, routing weights, the
routed ensemble against its experts, per-cluster SeqIO tasks, the CLI and its bad input."""

import json

import jax
import numpy as np
import pytest

from instruct_pt import cli, commands, config, parallel, run_dir
from instruct_pt.analysis import contexts
from instruct_pt.analysis import partition as partition_lib
from instruct_pt.data import sources
from instruct_pt.data import tokenizer as tokenizer_lib
from instruct_pt.model import store
from instruct_pt.model.config import get_preset

RULES = parallel.LOGICAL_AXIS_RULES
TOPICS = {"code": "def function return value list index loop variable python class",
          "cooking": "oven flour butter sugar bake minutes dough salt recipe pan",
          "weather": "rain cloud wind storm forecast temperature sunny snow cold front"}


def _corpus(per_topic: int, seed: int = 0) -> tuple[list[str], list[str]]:
  """Documents drawn from three disjoint vocabularies, and their topics."""
  rng = np.random.default_rng(seed)
  texts, labels = [], []
  for topic, vocabulary in TOPICS.items():
    words = vocabulary.split()
    for _ in range(per_topic):
      texts.append(" ".join(rng.choice(words, 12)))
      labels.append(topic)
  return texts, labels


def test_balanced_kmeans_equal_sizes_and_planted_clusters():
  rng = np.random.default_rng(0)
  centres = rng.normal(size=(3, 5)) * 10
  x = np.concatenate([c + rng.normal(size=(20, 5)) for c in centres])
  found, assignment = partition_lib.balanced_kmeans(x, 3, seed=1)
  assert np.bincount(assignment).tolist() == [20, 20, 20]
  for blob in range(3):  # each planted blob is one cluster
    assert len(set(assignment[blob * 20:(blob + 1) * 20])) == 1
  assert partition_lib.purity(assignment, np.repeat(["a", "b", "c"], 20)) == 1.0
  assert found.shape == (3, 5)
  # Unbalanced data still gets equal sizes (n // k, the first n % k one more).
  skewed = np.concatenate([x[:20], x[20:24], x[40:41]])
  _, assignment = partition_lib.balanced_kmeans(skewed, 3, seed=0)
  assert sorted(np.bincount(assignment).tolist()) == [8, 8, 9]
  again = partition_lib.balanced_kmeans(skewed, 3, seed=0)[1]
  assert np.array_equal(assignment, again)  # deterministic given the seed


def test_true_centroid_purity_known_answers():
  """Derived by hand on one-dimensional features, three documents per label."""
  labels = ["a", "a", "a", "b", "b", "b"]
  # Centroids a = 1, b = 3. Squared distances (to a, b): 0 -> (1, 9) twice, 3 -> (4, 0),
  # 4 -> (9, 1) twice, 1 -> (0, 4). Nearest with room: a gets {0, 0, 1} (labels a, a, b),
  # b gets {3, 4, 4} (a, b, b): purity (2 + 2) / 6.
  mixed = np.asarray([[0.0], [0.0], [3.0], [4.0], [4.0], [1.0]])
  assert partition_lib.true_centroid_purity(mixed, labels) == pytest.approx(2 / 3)
  # Centroids a = 0, b = 7: the b document at 1 is nearer a (1 against 36), but a is full with
  # its three documents at distance 0, so the equal sizes send it to b: purity 1, where the
  # unconstrained nearest centroid would give 5 / 6.
  constrained = np.asarray([[0.0], [0.0], [0.0], [10.0], [10.0], [1.0]])
  assert partition_lib.true_centroid_purity(constrained, labels) == 1.0
  # Label names and their order do not matter.
  assert partition_lib.true_centroid_purity(mixed, ["z", "z", "z", "c", "c", "c"]) == \
      pytest.approx(2 / 3)
  with pytest.raises(ValueError, match="6 feature rows but 5 labels"):
    partition_lib.true_centroid_purity(mixed, labels[:5])


def test_within_cluster_sum_of_squares_known_answers():
  features = np.asarray([[0.0, 0.0], [2.0, 0.0], [0.0, 1.0], [0.0, 3.0]])
  # Means (1, 0) and (0, 2): squared distances 1 + 1 and 1 + 1.
  assert partition_lib.within_cluster_sum_of_squares(features, ["x", "x", "y", "y"]) == 4.0
  # Means (0, 0.5) and (1, 1.5): 0.25 + 0.25 and (1 + 2.25) * 2.
  assert partition_lib.within_cluster_sum_of_squares(features, [0, 1, 0, 1]) == 7.0
  assert partition_lib.within_cluster_sum_of_squares(features, [0, 1, 2, 3]) == 0.0
  with pytest.raises(ValueError, match="4 feature rows but 3 cluster ids"):
    partition_lib.within_cluster_sum_of_squares(features, [0, 1, 2])


def test_featurizer_and_centres_round_trip_through_files(tmp_path):
  texts, labels = _corpus(10)
  featurizer = contexts.TfidfSvd.fit(texts, dims=8, seed=3)
  out = contexts.PartitionDir(tmp_path / "p")
  result = partition_lib.partition(texts, [str(i) for i in range(len(texts))], out, featurizer,
                                   3, seed=0, labels=labels)
  assert result.purity == 1.0 and result.sizes == [10, 10, 10]
  read = out.read_featurizer()
  assert read.vocabulary == featurizer.vocabulary
  np.testing.assert_array_equal(read(texts), featurizer(texts))
  np.testing.assert_array_equal(out.read_centres(read.dims), result.centres)
  again = contexts.TfidfSvd.fit(texts, dims=8, seed=3)  # deterministic given the seed
  np.testing.assert_array_equal(again.components, featurizer.components)
  assert contexts.words("The 42 Cats sat") == ["#NUMBER", "cats", "sat"]


def test_routing_weights_match_a_hand_computation():
  features = np.asarray([[0.0, 0.0]])
  centres = np.asarray([[1.0, 0.0], [0.0, 2.0], [3.0, 0.0]])  # squared distances 1, 4, 9
  logits = np.asarray([-1.0, -4.0, -9.0]) / 0.5
  expected = np.exp(logits) / np.exp(logits).sum()
  np.testing.assert_allclose(contexts.routing_weights(features, centres, 0.5)[0], expected)
  top2 = np.asarray([expected[0], expected[1], 0.0]) / (expected[0] + expected[1])
  np.testing.assert_allclose(contexts.routing_weights(features, centres, 0.5, 2)[0], top2)
  np.testing.assert_array_equal(contexts.routing_weights(features, centres, 0.5, 1)[0],
                                [1.0, 0.0, 0.0])
  tie = contexts.routing_weights(features, np.asarray([[1.0, 0.0], [0.0, 1.0]]), 1.0, 1)
  assert tie[0].tolist() == [1.0, 0.0]  # ties go to the lower index
  with pytest.raises(ValueError, match="temperature"):
    contexts.routing_weights(features, centres, 0.0)


@pytest.fixture(scope="module")
def tiny_experts():
  """Two differently initialised tiny models on one mesh, a Scorer and a tokenizer."""
  from instruct_pt.evaluation.scoring import Scorer  # pylint: disable=import-outside-toplevel
  model_config = get_preset("tiny")
  mesh = parallel.create_mesh((1, 1, 1), jax.devices()[:1])
  experts = [store.init_params(model_config, mesh, RULES, seed) for seed in (0, 1)]
  return model_config, mesh, experts, Scorer(model_config, experts[0], mesh, RULES, row_len=64)


def _requests(tokenizer):
  texts = [("The cat", " sat on the mat."), ("def f(x):", " return x"), ("Rain", " falls.")]
  return [([tokenizer.bos_id] + tokenizer.encode(c), tokenizer.encode(x)) for c, x in texts]


def test_routed_ensemble_equals_its_experts(tiny_experts):
  from instruct_pt.evaluation.routed import RoutedScorer  # pylint: disable=import-outside-toplevel
  _, _, experts, scorer = tiny_experts
  requests = _requests(tokenizer_lib.ByteTokenizer())

  def own(params):
    scorer.params = params
    return scorer.score(requests)

  alone = [own(params) for params in experts]
  one = RoutedScorer(scorer, experts[:1], lambda c: np.ones((len(c), 1)))
  assert one.score(requests) == alone[0]  # one expert: that expert's scores, exactly
  choice = np.asarray([1, 0, 1])  # top-1: each request's chosen expert alone, exactly
  top1 = RoutedScorer(scorer, experts, lambda c: np.eye(2)[choice])
  answers = top1.score(requests)
  for expert, params in enumerate(experts):
    members = np.flatnonzero(choice == expert)
    scorer.params = params  # the expert on the same requests: the same packed rows
    assert [answers[i] for i in members] == scorer.score([requests[i] for i in members])
    np.testing.assert_allclose([answers[i][0] for i in members],
                               [alone[expert][i][0] for i in members], atol=1e-4)
  assert top1.forward_requests.tolist() == [1, 2]  # one forward pass per request
  w = 0.3  # two experts mixed per token: log(w p0 + (1 - w) p1) at every token
  mixed = RoutedScorer(scorer, experts, lambda c: np.tile([w, 1 - w], (len(c), 1)))
  for (context, continuation), (value, _) in zip(requests, mixed.score(requests)):
    expected = 0.0
    for t in range(len(continuation)):
      token = [(list(context) + list(continuation[:t]), [continuation[t]])]
      scorer.params = experts[0]
      p0 = scorer.score(token)[0][0]
      scorer.params = experts[1]
      p1 = scorer.score(token)[0][0]
      expected += np.logaddexp(np.log(w) + p0, np.log(1 - w) + p1)
    assert value == pytest.approx(expected, abs=1e-4)


def test_model_featurizer_mean_pools_each_text_on_its_own(tiny_experts, tmp_path):
  model_config, mesh, experts, _ = tiny_experts
  featurizer = contexts.ModelFeaturizer("tiny", model_config, experts[0],
                                        tokenizer_lib.ByteTokenizer(), mesh, RULES,
                                        max_tokens=32, batch_size=2)
  alone = featurizer(["short text"])
  together = featurizer(["a longer text that fills more of the row", "short text"])
  assert alone.shape == (1, model_config.embed_dim)
  np.testing.assert_allclose(alone[0], together[1], atol=1e-5)  # padding and neighbours
  np.testing.assert_allclose(np.linalg.norm(together, axis=1), 1.0, atol=1e-5)
  out = contexts.PartitionDir(tmp_path / "p").create()
  featurizer.save(out)
  assert out.read_featurizer(lambda source: (source, featurizer))[0] == "tiny"
  with pytest.raises(ValueError, match="model features need the model tiny"):
    out.read_featurizer()


def _jsonl_corpus(tmp_path, per_topic=8):
  texts, labels = _corpus(per_topic)
  path = tmp_path / "corpus.jsonl"
  path.write_text("".join(json.dumps({"text": t, "topic": l}) + "\n"
                          for t, l in zip(texts, labels)))
  return str(path), texts, labels


def test_partition_command_and_per_cluster_seqio_tasks(tmp_path, capsys):
  corpus, texts, _ = _jsonl_corpus(tmp_path)
  out = tmp_path / "part"
  assert cli.main(["partition", f"--output_dir={out}", f"--corpus={corpus}", "--clusters=3",
                   "--label_field=topic", f"--held_out={corpus}", "--dims=8"]) == 0
  printed = capsys.readouterr().out
  assert "purity 1.000" in printed and "router accuracy 1.000" in printed
  summary = json.loads((out / "partition.json").read_text())
  assert summary["sizes"] == [8, 8, 8] and summary["prefix_agreement"] == 1.0
  assignments = [json.loads(line) for line in (out / "assignments.jsonl").open()]
  assert [a["index"] for a in assignments] == list(range(len(texts)))
  import seqio  # pylint: disable=import-outside-toplevel
  from instruct_pt.data import registry, seqio_vocab  # pylint: disable=import-outside-toplevel
  vocabulary = seqio_vocab.SeqIOVocabulary(tokenizer_lib.ByteTokenizer())
  declared = contexts.with_partition_tasks(registry.DataConfig(partitions={"docs": str(out)}))
  assert declared.partitions is None
  names = registry.register(declared, vocabulary)
  assert {"docs_0", "docs_1", "docs_2", "docs"} <= set(names)
  for cluster in range(3):
    task = seqio.get_mixture_or_task(f"docs_{cluster}")
    held = sorted(x["text"].decode() for x in task.source.get_dataset(
        "train", shuffle=False).as_numpy_iterator())
    expected = sorted(texts[a["index"]] for a in assignments if a["cluster"] == cluster)
    assert held == expected


def test_partition_help_lists_every_option(capsys):
  with pytest.raises(SystemExit) as exit_info:
    cli.main(["partition", "--help"])
  assert exit_info.value.code == 0
  shown = capsys.readouterr().out
  for field in config.PartitionRun.__dataclass_fields__:
    assert f"--{field}" in shown, field


def test_bad_input_is_one_line(tmp_path, capsys):
  corpus = tmp_path / "two.jsonl"
  corpus.write_text('{"text": "one document here"}\n{"text": "another document"}\n')
  assert cli.main(["partition", f"--output_dir={tmp_path / 'p'}", f"--corpus={corpus}",
                   "--clusters=3"]) == 2
  error = capsys.readouterr().err.strip()
  assert "\n" not in error and "has 2 documents" in error and "at least 3" in error
  with pytest.raises(ValueError, match="at least 4 are needed"):
    partition_lib.balanced_kmeans(np.zeros((3, 2)), 4)
  # Centres of another width than the featurizer, and a featurizer whose arrays disagree.
  corpus, texts, labels = _jsonl_corpus(tmp_path, per_topic=4)
  out = contexts.PartitionDir(tmp_path / "part")
  partition_lib.partition(texts, [str(i) for i in range(len(texts))], out,
                          contexts.TfidfSvd.fit(texts, dims=4), 3)
  good_centres = out.centres.read_bytes()
  out.write_centres(np.zeros((3, 5)))
  with pytest.raises(ValueError, match=r"centres\.npy.*\(3, 5\).*4 dimensions") as e:
    out.read_centres(out.read_featurizer().dims)
  assert "\n" not in str(e.value)
  out.centres.write_bytes(good_centres)
  vocabulary = json.loads(out.featurizer_json.read_text())
  vocabulary["vocabulary"] = vocabulary["vocabulary"][:-1]
  out.featurizer_json.write_text(json.dumps(vocabulary))
  with pytest.raises(ValueError, match=r"featurizer\.npz.*do not match"):
    out.read_featurizer()


def test_partition_dir_is_created_and_described_as_a_run_directory_is(tmp_path, monkeypatch):
  monkeypatch.chdir(tmp_path)
  assert str(contexts.PartitionDir("p")) == str(run_dir.RunDir("p"))  # made absolute once
  (tmp_path / "file").write_text("x")
  with pytest.raises(NotADirectoryError, match=r"partition directory .*file is a file"):
    contexts.PartitionDir(tmp_path / "file" / "below").create()
  with pytest.raises(FileNotFoundError, match=r"no partition\.json \(it holds clusters\); "
                                              r"expected a directory written by"):
    contexts.PartitionDir("p").create().read_settings()
  with pytest.raises(FileNotFoundError, match=r"no centres\.npy \(it does not exist\)"):
    contexts.PartitionDir("nowhere").read_centres(4)


def test_routed_lm_evaluates_experts_like_one_model(tmp_path, tiny_experts):
  from lm_eval.api.instance import Instance  # pylint: disable=import-outside-toplevel
  from instruct_pt.evaluation.lm_eval_model import InstructPTLM  # pylint: disable=import-outside-toplevel
  from instruct_pt.evaluation.routed import RoutedLM  # pylint: disable=import-outside-toplevel
  model_config, mesh, experts, _ = tiny_experts
  runs = []
  for index, params in enumerate(experts):
    if index:  # a random tiny model's greedy text repeats its last token, whatever its seed:
      # negated logits make this expert's text differ, so routing shows in generation
      params = {**params, "final_norm": {"scale": -params["final_norm"]["scale"]}}
    run = run_dir.RunDir(tmp_path / f"expert{index}").create()
    store.save_params(run.params, params)
    run.write_model_config(model_config)
    run.write_tokenizer(tokenizer_lib.ByteTokenizer())
    runs.append(str(run))
  texts = [sources.demo_corpus("held_out")[i][:200] for i in range(4)] + _corpus(2)[0]
  part = tmp_path / "part"
  commands.partition(config.PartitionRun(output_dir=str(part), corpus=str(
      _write(tmp_path / "c.jsonl", texts)), clusters=2, dims=4))
  requests = [Instance("loglikelihood", {}, (t[:40], t[40:80]), i) for i, t in enumerate(texts)]
  routed = RoutedLM(str(part), "|".join(runs), top_k=1, mesh=mesh, progress=False)
  answers = routed.loglikelihood(requests)
  chosen = routed.router([routed.tok_encode(t[:40]) for t in texts]).argmax(axis=1)
  single_lms = [InstructPTLM(run, mesh=mesh, progress=False) for run in runs]
  singles = [lm.loglikelihood(requests) for lm in single_lms]
  assert len(set(chosen)) == 2  # both experts serve some requests
  expected = [singles[c][i] for i, c in enumerate(chosen)]  # packed with other requests:
  assert [flag for _, flag in answers] == [flag for _, flag in expected]  # float32 rounding
  np.testing.assert_allclose([v for v, _ in answers], [v for v, _ in expected], atol=1e-4)
  # Generation: each request's text is its top-1 expert's (greedy).
  generations = [Instance("generate_until", {}, (t[:40], {"until": ["\n"], "max_gen_toks": 5}),
                          i) for i, t in enumerate(texts)]
  alone = [lm.generate_until(generations, disable_tqdm=True) for lm in single_lms]
  assert all(a != b for a, b in zip(*alone))  # the experts write different texts
  assert routed.generate_until(generations, disable_tqdm=True) == [
      alone[c][i] for i, c in enumerate(chosen)]
  with pytest.raises(ValueError, match="1 given, but partition .* has 2 clusters"):
    RoutedLM(str(part), runs[0], mesh=mesh, progress=False)
  # The same ensemble through the command line, on a shipped task.
  assert cli.main(["evaluate", f"--partition={part}", f"--experts={','.join(runs)}",
                   "--tasks=demo_cloze", "--limit=3", "--top_k=1", "--mesh=1,1,1"]) == 0
  written = json.loads((part / "eval" / "demo_cloze-limit3-top1" / "results.json").read_text())
  assert 0.0 <= written["results"]["demo_cloze"]["acc,none"] <= 1.0


def _write(path, texts):
  path.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
  return path
