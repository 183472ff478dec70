"""The AdaptLLM domain tasks: each metric against hand-computed values (with the official
code's corner cases), the suite table's average, the dataset loader on the hand-written
fixtures in `tests/data/adaptllm`, and the tasks run through lm-eval against the official
scoring rule computed by hand with transformers."""

import math
import os

import numpy as np
import pytest

from instruct_pt.evaluation import adaptllm_metrics as metrics
from instruct_pt.evaluation.tasks import adaptllm, suites

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "adaptllm")
OFFLINE = {"HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1"}

# ---- Classification F1s.

# Gold [0, 0, 1, 2], predicted [0, 1, 1, 1]:
#   label 0: 1 hit, 2 gold, 1 predicted -> F1 2/3; label 1: 1 hit, 1 gold, 3 predicted -> 1/2;
#   label 2: no hit -> 0. Weighted (supports 2, 1, 1): (4/3 + 1/2) / 4 = 11/24.
GOLDS, PREDS = [0, 0, 1, 2], [0, 1, 1, 1]


def test_f1_scores_by_hand():
  assert metrics.weighted_f1(GOLDS, PREDS) == pytest.approx(11 / 24)
  assert metrics.macro_f1(GOLDS, PREDS) == pytest.approx((2 / 3 + 1 / 2) / 3)
  assert metrics.micro_f1(GOLDS, PREDS) == pytest.approx(2 / 4)
  # A label only predicted has F1 0 and weight 0; it counts in the macro mean.
  assert metrics.weighted_f1([0, 0], [0, 3]) == pytest.approx(2 / 3)
  assert metrics.macro_f1([0, 0], [0, 3]) == pytest.approx(1 / 3)
  with pytest.raises(ValueError, match="2 gold labels but 1 predictions"):
    metrics.weighted_f1([0, 1], [0])


def test_f1_scores_match_scikit_learn_on_random_labels():
  sklearn_metrics = pytest.importorskip("sklearn.metrics")
  rng = np.random.default_rng(0)
  for _ in range(20):
    golds, preds = rng.integers(0, 5, 30).tolist(), rng.integers(0, 6, 30).tolist()
    for ours, average in ((metrics.weighted_f1, "weighted"), (metrics.macro_f1, "macro"),
                          (metrics.micro_f1, "micro")):
      assert ours(golds, preds) == pytest.approx(sklearn_metrics.f1_score(
          golds, preds, average=average, zero_division=0))


def test_headline_averages_the_weighted_f1_of_each_question():
  # Question 0: gold [1, 0], predicted [1, 1] -> label 1 F1 2/3 (support 1), label 0 F1 0
  # (support 1) -> 1/3. Question 1: one hit -> 1. Mean (1/3 + 1) / 2 = 2/3.
  assert metrics.headline_f1([(0, 1, 1), (0, 0, 1), (1, 1, 1)]) == pytest.approx(2 / 3)
  assert metrics.headline_f1([]) == 0.0


# ---- NER: the official parser and nereval's rules.

def test_entities_are_the_word_before_each_parenthesised_type():
  text = "Bank of America (ORG) hired John Smith (PER); Bank of America (ORG) again"
  assert metrics.parse_entities(text) == [("America", "ORG"), ("Smith", "PER")]
  # Only the last whitespace character before the parenthesis is dropped.
  assert metrics.parse_entities("Smith  (PER)") == [("Smith ", "PER")]
  assert metrics.parse_entities("no entities here (") == []


@pytest.mark.parametrize("gold, pred, expected", [
    ("Acme (ORG) Smith (PER)", "Acme (ORG) Smith (PER)", 1.0),
    # The first prediction with the same type stops the search: 1 correct of 4 predicted
    # and 2 gold halves -> P 1/4, R 1/2, F1 1/3.
    ("Apple (ORG)", "Bob (ORG) Apple (ORG)", 1 / 3),
    # One prediction serves two gold entities (a same type, then a same name and type):
    # 3 correct of 2 predicted halves, so precision 1.5 and F1 1, as nereval computes it.
    ("a (b) b (b)", "b (b)", 1.0),
    ("Acme (ORG)", "Acme (LOC)", 2 * 0.5 * 0.5 / 1.0),  # same name, other type: P = R = 1/2
    ("", "", 0.0),  # no entities on either side scores 0
    ("Acme (ORG)", "", 0.0),
])
def test_entity_f1_by_hand(gold, pred, expected):
  assert metrics.ner_f1(gold, pred) == pytest.approx(expected)


# ---- ConvFinQA: number matching.

def test_numbers_of_the_first_line_as_the_official_code_reads_them():
  assert metrics.first_line_numbers("up 1,000 to .5, then 3. and 4e-2%\n99") == pytest.approx(
      [1000, 0.5, 3.0, 0.0004])
  assert metrics.first_line_numbers("50%%") == pytest.approx([0.005])
  # A leading-zero integer is not a Python number: the official eval gives infinity.
  assert metrics.first_line_numbers("007 and 007.5") == [math.inf, 7.5]


@pytest.mark.parametrize("gold, pred, expected", [
    ("25%", "The answer is 0.25", True),
    ("1,234.5", "1234.51", True),       # within 0.01
    ("5", "5.02", False),
    ("-3.5%", "-0.035", True),
    ("1e3", "1000", True),
    ("12", "so:\n12", False),           # only the first line of the prediction counts
    ("12", "11 or 12", True),           # any of its numbers
    ("12 or 13", "13", False),          # only the gold answer's first number
    ("", "5", False),
    ("007", "007", True),               # both infinite: math.isclose says equal
])
def test_convfinqa_match_by_hand(gold, pred, expected):
  assert metrics.convfinqa_match(gold, pred) is expected


# ---- Choice by mean token log-likelihood, multi-label hits, bootstrap.

def test_choice_is_by_log_likelihood_per_token():
  # Sums -4 (4 tokens) and -3 (1 token): per token -1 beats -3, though -3 > -4 in sum.
  assert metrics.mean_token_choice([-4.0, -3.0], [4, 1]) == 0
  assert metrics.mean_token_choice([-2.0, -2.0], [1, 1]) == 0  # ties: the first
  with pytest.raises(ValueError, match="no continuation token"):
    metrics.mean_token_choice([-1.0], [0])
  assert metrics.multi_label_hit([1, 2], 2) and not metrics.multi_label_hit(1, 2)


def test_bootstrap_stderr_of_a_mean_is_the_binomial_one():
  items = [0.0, 1.0] * 50  # p = 1/2, n = 100: sqrt(p (1 - p) / n) = 0.05
  stderr = metrics.bootstrap_stderr(lambda xs: sum(xs) / len(xs), items, resamples=2000)
  assert stderr == pytest.approx(0.05, rel=0.1)
  assert metrics.bootstrap_stderr(lambda xs: sum(xs) / len(xs), [1.0] * 10) == 0.0
  assert metrics.bootstrap_stderr(lambda xs: 0.0, [1.0]) is None


# ---- Per-document results and the suite table.

def test_choice_results_pick_by_tokens_and_give_each_metric_its_item():
  doc = {"options": ["a", "b"], "option_tokens": [4, 1], "gold_index": 0, "class_id": 3}
  results = [(-4.0, False), (-3.0, True)]
  assert adaptllm.results_function("adaptllm_chemprot")(doc, results) == {"micro_f1": 1.0}
  assert adaptllm.results_function("adaptllm_headline")(doc, results) == {
      "multi_class_weighted_f1": (3, 0, 0)}
  assert adaptllm.results_function("adaptllm_scotus")(doc, results) == {
      "micro_f1": 1.0, "macro_f1": (0, 0)}
  unfair = dict(doc, gold_index=[1, 2])
  assert adaptllm.results_function("adaptllm_unfair_tos")(unfair, results) == {
      "multi_label_acc": 0.0}
  ner = adaptllm.results_function("adaptllm_ner")({"label": "Acme (ORG)"}, [" Acme (ORG)"])
  assert ner == {"entity_level_f1": 1.0}


def test_suite_table_averages_its_tasks_with_independent_errors():
  suite = suites.PAPER_SUITES["paper_biomed"]
  values = [0.5, 0.6, 0.7, 0.8, 0.9]
  errors = [0.03, 0.04, 0.0, 0.0, 0.0]
  results = {"results": {task.lm_eval_task: {f"{task.metric},none": v,
                                             f"{task.metric}_stderr,none": e}
                         for task, v, e in zip(suite.tasks, values, errors)}}
  rows = suites.suite_rows(suite, results)
  assert [r.name for r in rows] == ["PubMedQA", "ChemProt", "RCT", "MQP", "USMLE", "average"]
  assert rows[1].metric == "micro_f1" and rows[1].score == pytest.approx(60.0)
  # Mean 70; stderr sqrt(3^2 + 4^2) / 5 = 1 (in points).
  assert rows[-1].score == pytest.approx(70.0) and rows[-1].stderr == pytest.approx(1.0)
  assert "| average | mean of 5 | 70.0 | 1.0 |" in suites.suite_table(suite, results)
  results["results"]["adaptllm_rct"]["micro_f1_stderr,none"] = "N/A"
  assert suites.suite_rows(suite, results)[-1].stderr is None
  del results["results"]["adaptllm_rct"]
  assert suites.suite_table(suite, results) is None


def test_paper_general_states_metric_and_shots_per_task():
  general = suites.PAPER_SUITES["paper_general"]
  assert {t.paper_name: t.metric for t in general.tasks}["ARC-e"] == "acc_norm"
  assert all(t.shots == suites.NOT_STATED for t in general.tasks)
  assert "# shots: not stated by the paper" in suites.group_yaml(general)


# ---- The loader on the fixtures.

@pytest.fixture(autouse=True)
def _offline(monkeypatch):
  for key, value in OFFLINE.items():
    monkeypatch.setenv(key, value)


def test_option_tokens_are_counted_as_the_official_code_counts_them():
  """Our tokenizer of the bundled SmolLM2 against transformers' on the same GGUF file:
  len(tokens(input + ' ' + option)) - len(tokens(input)), the official loss mask."""
  transformers = pytest.importorskip("transformers")
  from instruct_pt.model import readers  # pylint: disable=import-outside-toplevel
  gguf = readers.resolve_gguf("smollm2")
  hf = transformers.AutoTokenizer.from_pretrained(os.path.dirname(gguf),
                                                  gguf_file=os.path.basename(gguf))
  for name in ("adaptllm_chemprot", "adaptllm_casehold"):
    rows = adaptllm.load(name, adaptllm_dir=FIXTURES, run_dir="smollm2")["test"]
    for row in rows:
      if "options" in row:
        pairs = [(row["input"], " " + option) for option in row["options"]]
      else:
        pairs = [(option, row["output"]) for option in row["input_options"]]
      official = [len(hf(q + a)["input_ids"]) - len(hf(q)["input_ids"]) for q, a in pairs]
      assert row["option_tokens"] == official and min(official) >= 1


def test_continuation_tokens_move_trailing_context_space_like_lm_eval():
  def chars(text):
    return list(text)
  assert adaptllm.continuation_tokens(chars, "Answer:", " yes") == 4
  assert adaptllm.continuation_tokens(chars, "Answer: ", "yes") == 4  # " " moves over


def test_loader_bad_input_is_named(tmp_path):
  with pytest.raises(FileNotFoundError, match=r"no RCT/test.jsonl or RCT/test.json"):
    adaptllm.load("adaptllm_rct", adaptllm_dir=str(tmp_path), run_dir="smollm2")
  (tmp_path / "FPB").mkdir()
  (tmp_path / "FPB" / "test.jsonl").write_text('{"input": "x", "options": ["a"]}\n')
  with pytest.raises(ValueError, match=rf"{tmp_path}: FPB rows lack gold_index"):
    adaptllm.load("adaptllm_fpb", adaptllm_dir=str(tmp_path), run_dir="smollm2")
  with pytest.raises(ValueError, match="needs the model's tokenizer"):
    adaptllm.load("adaptllm_mqp", adaptllm_dir=FIXTURES)
  # Generation tasks need no tokenizer.
  assert len(adaptllm.load("adaptllm_ner", adaptllm_dir=FIXTURES)["test"]) == 2


# ---- Through lm-eval, against the official rule worked out with transformers.

def _official_predictions(model_dir, rows, kind):
  """The official `choice_losses`: per option, the mean token loss of the answer after the
  question (loss mask from the question's own tokenization); the prediction is the argmin."""
  torch = pytest.importorskip("torch")
  transformers = pytest.importorskip("transformers")
  tokenizer = transformers.AutoTokenizer.from_pretrained(model_dir)
  model = transformers.AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
  predictions = []
  for row in rows:
    if kind == "choice":
      pairs = [(row["input"], " " + option) for option in row["options"]]
    else:
      pairs = [(option, row["output"]) for option in row["input_options"]]
    losses = []
    for question, answer in pairs:
      ids = tokenizer(question + answer, return_tensors="pt")["input_ids"]
      start = len(tokenizer(question)["input_ids"])
      with torch.no_grad():
        logits = model(ids).logits[0, :-1].double()
      token_losses = -torch.log_softmax(logits, -1).gather(-1, ids[0, 1:, None])[:, 0]
      losses.append(float(token_losses[start - 1:].mean()))
    predictions.append(int(np.argmin(losses)))
  return predictions


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory):
  """A random 2-layer Llama with SmolLM2's tokenizer, as a Hugging Face directory."""
  pytest.importorskip("transformers")
  from hf_reference import tiny_hf_model  # pylint: disable=import-outside-toplevel
  from instruct_pt.data import tokenizer as tokenizer_lib  # pylint: disable=import-outside-toplevel
  from instruct_pt.model import readers  # pylint: disable=import-outside-toplevel
  path = str(tmp_path_factory.mktemp("tiny_hf"))
  tiny_hf_model("llama", vocab_size=49152, max_position_embeddings=512).save_pretrained(path)
  tokenizer_lib.save_tokenizer(tokenizer_lib.gguf_tokenizer(readers.resolve_gguf("smollm2")),
                               path)
  return path


CHECKED = {"adaptllm_pubmedqa": "acc", "adaptllm_chemprot": "micro_f1", "adaptllm_rct": "micro_f1",
           "adaptllm_mqp": "acc", "adaptllm_usmle": "acc", "adaptllm_fpb": "weighted_f1",
           "adaptllm_fiqa_sa": "weighted_f1", "adaptllm_headline": "multi_class_weighted_f1",
           "adaptllm_scotus": "macro_f1", "adaptllm_casehold": "micro_f1",
           "adaptllm_unfair_tos": "multi_label_acc"}


def _official_score(name, rows, predictions):
  golds = [row["gold_index"] for row in rows]
  metric = CHECKED[name]
  if metric == "weighted_f1":
    return metrics.weighted_f1(golds, predictions)
  if metric == "macro_f1":
    return metrics.macro_f1(golds, predictions)
  if metric == "multi_class_weighted_f1":
    return metrics.headline_f1([(r["class_id"], g, p)
                                for r, g, p in zip(rows, golds, predictions)])
  return float(np.mean([metrics.multi_label_hit(g, p) for g, p in zip(golds, predictions)]))


@pytest.mark.parametrize("model", ["instruct_pt", "hf"])
def test_choice_tasks_through_lm_eval_score_as_the_official_code(tiny_model_dir, model):
  """Every choice task on the fixtures, run by lm-eval with our model and with lm-eval's own
  `hf` model (which hands the tasks its `pretrained` tokenizer), scores what the official
  rule gives on the same model."""
  pytest.importorskip("lm_eval")
  from instruct_pt.evaluation import runner  # pylint: disable=import-outside-toplevel
  if model == "hf":
    from lm_eval.models.huggingface import HFLM  # pylint: disable=import-outside-toplevel
    lm = HFLM(pretrained=tiny_model_dir, dtype="float32", device="cpu",
              softmax_dtype="float64", batch_size=8)
    metadata = {"pretrained": tiny_model_dir, "adaptllm_dir": FIXTURES}
  else:
    from instruct_pt.evaluation.lm_eval_model import InstructPTLM  # pylint: disable=import-outside-toplevel
    lm = InstructPTLM(tiny_model_dir, mesh="1:1:1", progress=False)
    metadata = {"run_dir": tiny_model_dir, "adaptllm_dir": FIXTURES}
  manager, tasks = runner.resolve_tasks(list(CHECKED), metadata=metadata)
  results = runner.evaluate(lm, tasks, None, task_manager=manager)
  for name, metric in CHECKED.items():
    task = adaptllm.TASKS[name]
    rows = adaptllm.load(name, adaptllm_dir=FIXTURES, run_dir=tiny_model_dir)["test"]
    official = _official_score(name, rows, _official_predictions(tiny_model_dir, rows,
                                                                 task.kind))
    assert results["results"][name][f"{metric},none"] == pytest.approx(official), name
  # The corpus metrics got a bootstrap standard error in place of lm-eval's N/A.
  assert isinstance(results["results"]["adaptllm_fpb"]["weighted_f1_stderr,none"], float)


def test_evaluate_command_prints_each_task_and_the_domain_average(tiny_model_dir, tmp_path):
  """The documented command, offline on the fixtures: per-task metrics, then the suite as
  the paper's table shows it, with its average; a mistyped data directory is one line."""
  pytest.importorskip("lm_eval")
  import subprocess  # pylint: disable=import-outside-toplevel
  import sys  # pylint: disable=import-outside-toplevel
  repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  env = dict(os.environ, **OFFLINE, PYTHONPATH=repo)

  def evaluate(*flags):
    return subprocess.run(
        [sys.executable, "-m", "instruct_pt.cli", "evaluate", f"--run_dir={tiny_model_dir}",
         "--tasks=paper_finance", f"--output_dir={tmp_path}/eval", *flags], cwd=repo,
        capture_output=True, text=True, timeout=600, check=False, env=env)
  wrong = evaluate(f"--adaptllm_dir={tmp_path}/nowhere")
  assert wrong.returncode != 0
  assert wrong.stderr.strip().splitlines()[-1].endswith(
      f"--adaptllm_dir={tmp_path}/nowhere is not a directory")
  done = evaluate(f"--adaptllm_dir={FIXTURES}")
  assert done.returncode == 0, done.stderr
  for name in ("adaptllm_convfinqa", "adaptllm_headline", "adaptllm_fiqa_sa", "adaptllm_fpb",
               "adaptllm_ner", "paper_finance (x100)", "| average | mean of 5 |"):
    assert name in done.stdout
  assert os.path.isfile(f"{tmp_path}/eval/results.json")
