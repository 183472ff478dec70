"""Evaluation with lm-evaluation-harness: our `instruct_pt` model against lm-eval's own `hf`
model (a real client), packing, bad input, the entry points, and multi-host scoring."""

import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

lm_eval = pytest.importorskip("lm_eval")
torch = pytest.importorskip("torch")

from lm_eval.api.instance import Instance  # pylint: disable=wrong-import-position
from lm_eval.models.huggingface import HFLM  # pylint: disable=wrong-import-position
from lm_eval.tasks import TaskManager  # pylint: disable=wrong-import-position

from instruct_pt import parallel, run_dir  # pylint: disable=wrong-import-position
from instruct_pt.data import tokenizer as tokenizer_lib  # pylint: disable=wrong-import-position
from instruct_pt.evaluation import TASKS_DIR, runner, scoring  # pylint: disable=wrong-import-position
from instruct_pt.evaluation.lm_eval_model import InstructPTLM  # pylint: disable=wrong-import-position
from instruct_pt.model import readers  # pylint: disable=wrong-import-position
from instruct_pt.model.transformer import Decoder  # pylint: disable=wrong-import-position
from hf_reference import tiny_hf_model  # pylint: disable=wrong-import-position

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RULES = parallel.LOGICAL_AXIS_RULES
OFFLINE = {"HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1"}
# lm-eval's hf model computes log-softmax in float64 here: torch's float32 log-softmax over
# SmolLM2's 49152 classes is biased by about +1.5e-5 nats per token on CPU (against float64),
# which sums past 1e-3 over a 60-token continuation; ours (XLA's) is not.
HF_ARGS = {"dtype": "float32", "device": "cpu", "softmax_dtype": "float64", "batch_size": 8}


@pytest.fixture(autouse=True, scope="module")
def _offline():
  old = {key: os.environ.get(key) for key in OFFLINE}
  os.environ.update(OFFLINE)
  yield
  for key, value in old.items():
    if value is None:
      os.environ.pop(key, None)
    else:
      os.environ[key] = value


def _env(**extra):
  """The subprocess environment: offline, this checkout's package first on the path."""
  path = os.pathsep.join(p for p in (REPO, os.environ.get("PYTHONPATH")) if p)
  return dict(os.environ, **OFFLINE, PYTHONPATH=path, **extra)


def instruct_pt(*args, module="instruct_pt.cli", timeout=600):
  return subprocess.run([sys.executable, "-m", module, *args], cwd=REPO, capture_output=True,
                        text=True, timeout=timeout, check=False, env=_env())


@pytest.fixture(scope="module")
def tiny_hf(tmp_path_factory):
  """A random 2-layer Llama with SmolLM2's tokenizer, as a Hugging Face directory (both
  models load it; 256 positions, so long requests truncate and long texts roll)."""
  path = str(tmp_path_factory.mktemp("tiny_hf"))
  tiny_hf_model("llama", vocab_size=49152, max_position_embeddings=256).save_pretrained(path)
  tokenizer_lib.save_tokenizer(tokenizer_lib.gguf_tokenizer(readers.resolve_gguf("smollm2")),
                               path)
  return path


@pytest.fixture(scope="module")
def tiny_ours(tiny_hf):
  return InstructPTLM(tiny_hf, mesh="1:1:1", progress=False)


# ---- Packing, sharing and truncation inside the scorer.

def _alone(model_config, params, requests):
  """Log-likelihood and greedy flag of each request, one request per row (no packing),
  float64 log-softmax."""
  inputs = [(list(context) + list(continuation))[:-1] for context, continuation in requests]
  tokens = np.zeros((len(inputs), max(map(len, inputs))), np.int32)
  for row, ids in enumerate(inputs):
    tokens[row, :len(ids)] = ids  # right padding: causal rows never see it
  apply = jax.jit(lambda params, tokens: Decoder(model_config).apply({"params": params},
                                                                     tokens)[0])
  logits = np.asarray(apply(params, tokens), np.float64)
  answers = []
  for row, (ids, (_, continuation)) in enumerate(zip(inputs, requests)):
    scored = logits[row, len(ids) - len(continuation):len(ids)]
    shifted = scored - scored.max(-1, keepdims=True)
    logprobs = shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))
    answers.append((logprobs[np.arange(len(continuation)), continuation].sum(),
                    bool(np.all(scored.argmax(-1) == np.asarray(continuation)))))
  return answers


def test_packed_scoring_equals_each_request_alone(tiny_ours):
  """Requests of mixed lengths (shared contexts, one-token continuations, a duplicate) packed
  into rows as context trees give each request's own log-likelihood; each context runs once
  (a tree too long for one row is split) and few programs are compiled."""
  rng = np.random.default_rng(0)
  contexts = [rng.integers(3, 49152, n).tolist() for n in (5, 20, 40, 90)]
  requests = []
  for context in contexts:
    for length in (1, 1, 7, 16):
      requests.append((context, rng.integers(3, 49152, length).tolist()))
  requests.append(requests[2])  # a duplicate
  logits = jax.jit(lambda p, t: Decoder(tiny_ours.config).apply({"params": p}, t)[0])(
      tiny_ours.params, jnp.asarray([contexts[0]]))
  requests.append((contexts[0], [int(np.argmax(logits[0, -1]))]))  # greedy continuation
  after = jax.jit(lambda p, t: Decoder(tiny_ours.config).apply({"params": p}, t)[0])(
      tiny_ours.params, jnp.asarray([contexts[0] + requests[-1][1]]))
  # Mixed: its first token greedy, its second the least likely: not greedy as a whole.
  requests.append((contexts[0], requests[-1][1] + [int(np.argmin(after[0, -1]))]))
  scorer = scoring.Scorer(tiny_ours.config, tiny_ours.params, tiny_ours.mesh, RULES,
                          row_len=64, batch_tokens=256)
  answers = scorer.score(requests)
  expected = _alone(tiny_ours.config, tiny_ours.params, requests)
  for index, ((logprob, is_greedy), (want, want_greedy)) in enumerate(zip(answers, expected)):
    assert abs(logprob - want) < 1e-4, index
    assert is_greedy == want_greedy, index
  assert answers[-2][1] and not answers[-1][1]
  assert scorer.stats.contexts == len(contexts)
  # Each context once, then each distinct continuation less its last token (the mixed one's:
  # 1).
  assert scorer.stats.tokens == sum(len(c) + 0 + 0 + 6 + 15 for c in contexts) + 1
  # A tree longer than the longest row (max_length) is split, each part with the context.
  short = scoring.Scorer(tiny_ours.config, tiny_ours.params, tiny_ours.mesh, RULES,
                         max_length=40, row_len=16, batch_tokens=256)
  split = [(contexts[2][:30], rng.integers(3, 49152, 8).tolist()) for _ in range(3)]
  for (logprob, _), (want, _) in zip(short.score(split),
                                     _alone(tiny_ours.config, tiny_ours.params, split)):
    assert abs(logprob - want) < 1e-4
  assert short.stats.tokens == 3 * (30 + 7) and short.stats.contexts == 1
  # Many continuations after one shared prefix token (lm-eval's rolling windows) make trees
  # of a row each, not one long row of quadratic attention.
  rolling = [([7], rng.integers(3, 49152, 30).tolist()) for _ in range(10)]
  flat = scoring.Scorer(tiny_ours.config, tiny_ours.params, tiny_ours.mesh, RULES, row_len=64,
                        batch_tokens=256)
  for (logprob, _), (want, _) in zip(flat.score(rolling),
                                     _alone(tiny_ours.config, tiny_ours.params, rolling)):
    assert abs(logprob - want) < 1e-4
  assert {row_len for _, row_len, _ in flat.stats.compiled_shapes} == {64}
  assert flat.stats.tokens == 5 * 1 + 10 * 29  # two continuations (1 + 58 tokens) per tree
  assert scorer.stats.truncated == 0
  assert len(scorer.stats.compiled_shapes) <= 4, scorer.stats.compiled_shapes


def test_over_long_requests_are_cut_from_the_left_like_hf_and_counted(tiny_hf, tiny_ours):
  """With max_length=24, lm-eval's hf model and ours give the same log-likelihoods for
  requests longer than the window (their oldest context dropped); ours counts them."""
  with open(os.path.join(TASKS_DIR, "demo", "perplexity.jsonl"), encoding="utf-8") as f:
    words = " ".join(json.loads(line)["text"] for line in f).split()
  requests = [Instance("loglikelihood", {}, (" ".join(words[:n]), " " + " ".join(
      words[n:n + 3])), 0) for n in (4, 40, 90)]
  reference = HFLM(pretrained=tiny_hf, max_length=24, **HF_ARGS)
  ours = InstructPTLM(tiny_hf, mesh="1:1:1", max_length=24, progress=False)
  theirs = reference.loglikelihood(requests, disable_tqdm=True)
  mine = ours.loglikelihood(requests, disable_tqdm=True)
  assert np.allclose([a for a, _ in mine], [a for a, _ in theirs], atol=1e-4)
  assert ours.get_model_info()["truncated_requests"] == 2
  with pytest.raises(ValueError, match="continuation of 30 tokens exceeds max_length=24"):
    ours.scorer.score([([1], list(range(3, 33)))])


def test_generate_until_matches_hf_and_stops_at_stop_sequences(tiny_hf, tiny_ours):
  """Greedy generation through the synthesis engine gives hf's text, cut at `until`."""
  settings = {"until": ["\n", " the", "zzz"], "max_gen_toks": 12}
  requests = [Instance("generate_until", {}, (prompt, settings), 0)
              for prompt in ("The list", "A class defines", "x")]
  reference = HFLM(pretrained=tiny_hf, **HF_ARGS)
  assert tiny_ours.generate_until(requests, disable_tqdm=True) == reference.generate_until(
      requests, disable_tqdm=True)


# ---- SmolLM2 against lm-eval's hf model on the demo task.

@pytest.fixture(scope="module")
def smollm2_run(tmp_path_factory):
  """SmolLM2 imported into a run directory, as `instruct-pt convert --from_gguf=smollm2
  --run_dir=RUN` writes it (test_cli runs that command)."""
  from instruct_pt import commands, config  # pylint: disable=import-outside-toplevel
  run = str(tmp_path_factory.mktemp("smollm2") / "RUN")
  commands.convert(config.ConvertRun(source="smollm2", run_dir=run))
  return run


@pytest.fixture(scope="module")
def smollm2_hf(smollm2_run, tmp_path_factory):
  """The run exported to Hugging Face (`convert --from_run=RUN --to_hf=H`)."""
  from instruct_pt import commands, config  # pylint: disable=import-outside-toplevel
  path = str(tmp_path_factory.mktemp("smollm2_hf"))
  commands.convert(config.ConvertRun(source=smollm2_run, to_hf=path))
  return path


def _responses(results, task):
  return [response for sample in results["samples"][task] for response in sample["resps"]]


def test_smollm2_matches_hf_per_request_and_in_acc(smollm2_run, smollm2_hf):
  """lm-eval's hf model on the exported SmolLM2 and our model on the run give the same
  per-request log-likelihoods (< 1e-3) and the same acc / acc_norm on the demo task; our
  model runs by name through `lm_eval.simple_evaluate` after `import instruct_pt.evaluation`."""
  manager = TaskManager(include_path=TASKS_DIR, include_defaults=False)
  common = {"tasks": ["demo"], "limit": 3, "log_samples": True, "task_manager": manager}
  theirs = lm_eval.simple_evaluate(model="hf", model_args={"pretrained": smollm2_hf, **HF_ARGS},
                                   **common)
  ours = lm_eval.simple_evaluate(model="instruct_pt",
                                 model_args={"run_dir": smollm2_run, "mesh": "1:1:1"}, **common)
  cloze = np.asarray([[r[0][0] for r in _responses(x, "demo_cloze")] for x in (theirs, ours)])
  assert np.abs(cloze[0] - cloze[1]).max() < 1e-3
  rolling = np.asarray([[r[0] for r in _responses(x, "demo_perplexity")]
                        for x in (theirs, ours)])
  assert np.abs(rolling[0] - rolling[1]).max() < 1e-3
  for metric in ("acc,none", "acc_norm,none"):
    assert ours["results"]["demo_cloze"][metric] == theirs["results"]["demo_cloze"][metric]
  assert ours["config"]["truncated_requests"] == 0


# ---- The commands as a user types them.

def test_evaluation_recipe_settings_and_the_flags_that_win(monkeypatch):
  """`evaluate --gin_file=configs/evaluation/llama3_8b.gin` scores as the recipe says
  (evaluate.* and mesh.*); a flag wins over its binding."""
  from instruct_pt import cli, commands  # pylint: disable=import-outside-toplevel
  runs = []
  monkeypatch.setattr(commands, "evaluate", lambda run, **_: runs.append(run))
  recipe = "--gin_file=configs/evaluation/llama3_8b.gin"
  assert cli.main(["evaluate", recipe, "--run_dir=RUN", "--tasks=demo"]) == 0
  assert cli.main(["evaluate", recipe, "--run_dir=RUN", "--tasks=demo", "--row_len=512",
                   "--mesh=1,1,-1", "--gin_param=evaluate.batch_tokens=8192"]) == 0
  first, second = runs
  assert (first.max_length, first.row_len, first.batch_tokens) == (4096, 4096, 32768)
  assert first.mesh.shape == (1, -1, 1)
  assert (second.max_length, second.row_len, second.batch_tokens) == (4096, 512, 8192)
  assert second.mesh.shape == (1, 1, -1)


def test_compare_passes_the_cluster_field_and_refuses_it_without_compare(monkeypatch, capsys):
  """`--compare A B --cluster_field=paragraph` reaches `compare`; `--cluster_field` with
  `--run_dir` is one clear error (exit 2)."""
  from instruct_pt import cli, commands  # pylint: disable=import-outside-toplevel
  calls = []

  def fake_compare(sources, name, output_dir, cluster_field=None):
    calls.append((sources, cluster_field))
    return type("Comparison", (), {"table": "", "table_path": "t", "chart_path": "c"})()

  monkeypatch.setattr(commands, "compare", fake_compare)
  assert cli.main(["evaluate", "--compare", "A", "B", "--cluster_field=paragraph"]) == 0
  assert calls == [(["A", "B"], "paragraph")]
  assert cli.main(["evaluate", "--run_dir=RUN", "--tasks=demo",
                   "--cluster_field=paragraph"]) == 2
  assert "--cluster_field applies to --compare only" in capsys.readouterr().err


def test_evaluate_and_compare_commands(tiny_hf, tmp_path, capsys):
  """Acceptance, second half, on the tiny model (SmolLM2 runs in the parity test above):
  `instruct-pt evaluate --run_dir=RUN --tasks=demo` writes RUN/eval/<name>/results.json
  (acc, acc_norm, perplexities) and prints the table; `--compare RUN RUN2` prints the runs
  side by side with differences (and paired ones per item) and writes the table and chart."""
  from instruct_pt import cli, commands, config  # pylint: disable=import-outside-toplevel
  run = str(tmp_path / "RUN")
  commands.convert(config.ConvertRun(source=tiny_hf, run_dir=run))
  result = instruct_pt("evaluate", f"--run_dir={run}", "--tasks=demo", "--limit=2")
  assert result.returncode == 0, result.stderr
  path = os.path.join(run, "eval", "demo-limit2", "results.json")
  with open(path, encoding="utf-8") as f:
    results = json.load(f)
  assert {"acc,none", "acc_norm,none"} <= set(results["results"]["demo_cloze"])
  assert {"word_perplexity,none", "byte_perplexity,none"} <= set(
      results["results"]["demo_perplexity"])
  assert "demo_cloze" in result.stdout and "acc_norm" in result.stdout
  assert "0 requests longer than max_length=256 were truncated" in result.stdout
  assert os.path.exists(os.path.join(os.path.dirname(path), "results.md"))
  # The same evaluation again is refused before it runs: nothing replaced without --overwrite.
  with open(path, "rb") as f:
    written = f.read()
  again = cli.main(["evaluate", f"--run_dir={run}", "--tasks=demo", "--limit=2"])
  assert again == 2 and (f"{path} holds an earlier evaluation; pass --overwrite"
                         in capsys.readouterr().err)
  with open(path, "rb") as f:
    assert f.read() == written
  # A second run whose accuracy is 0.25 higher.
  other = tmp_path / "RUN2" / "eval" / "demo-limit2"
  other.mkdir(parents=True)
  results["results"]["demo_cloze"]["acc,none"] += 0.25
  (other / "results.json").write_text(json.dumps(results))
  compared = instruct_pt("evaluate", "--compare", run, str(tmp_path / "RUN2"))
  assert compared.returncode == 0, compared.stderr
  row = next(line for line in compared.stdout.splitlines() if "| acc ↑ |" in line)
  assert row.startswith("| demo_cloze |") and row.rstrip(" |").endswith("+0.2500")
  # The per-item samples are the same: every paired difference is 0, within noise.
  assert ("| RUN2 − RUN | demo_cloze | margin ↑ | +0.0000 [+0.0000, +0.0000] | 0.0000 | "
          "1.000 | 2 / 2 | within noise |") in compared.stdout
  assert "| RUN2 − RUN | demo_perplexity | bits_per_byte ↓ | +0.0000" in compared.stdout
  assert os.path.getsize(os.path.join(os.path.dirname(path), "compare.png")) > 1000


def test_python_entry_point_runs_lm_evals_cli_offline(tiny_hf, tmp_path):
  """`python -m instruct_pt.evaluation` is lm-eval's CLI with our model registered."""
  result = instruct_pt("--model", "instruct_pt", "--model_args", f"run_dir={tiny_hf},mesh=1:1:1",
                       "--tasks", "demo_cloze", "--include_path", TASKS_DIR, "--limit", "1",
                       "--output_path", str(tmp_path), module="instruct_pt.evaluation")
  assert result.returncode == 0, result.stderr
  assert "demo_cloze" in result.stdout
  written = [f for _, _, files in os.walk(tmp_path) for f in files if f.startswith("results")]
  assert written


def test_benchmark_last_line_holds_both_rates_and_their_ratio(tiny_hf):
  """`benchmarks/eval_throughput.py` ends with both rates and their ratio (small size)."""
  result = subprocess.run(
      [sys.executable, "benchmarks/eval_throughput.py", f"--model={tiny_hf}",
       f"--hf_dir={tiny_hf}", "--limit=1", "--repeats=1", "--hf_batch_sizes=4"],
      cwd=REPO, capture_output=True, text=True, timeout=600, check=False, env=_env())
  assert result.returncode == 0, result.stderr
  words = result.stdout.strip().splitlines()[-1].split()
  assert words[:2] == ["eval_throughput:", "instruct_pt"]
  ours, theirs, ratio = float(words[2]), float(words[5]), float(words[-1])
  half = 0.5e-4  # the rates and the ratio are printed with 4 decimals
  assert (ours - half) / (theirs + half) - half <= ratio <= (ours + half) / (theirs - half) + half


# ---- Bad input.

def test_unknown_task_names_the_closest_known_ones():
  with pytest.raises(ValueError, match=r"^unknown task 'demo_clozee'; closest known: demo_cloze"):
    runner.resolve_tasks(["demo_clozee"])


def test_malformed_task_file_is_named_with_its_line(tmp_path):
  (tmp_path / "mine.yaml").write_text("task: mine\ndataset_path: json\n  bad: [\n")
  with pytest.raises(ValueError, match=rf"^{tmp_path}/mine.yaml:3: malformed task file"):
    runner.resolve_tasks(["demo"], include_path=[str(tmp_path)])


@pytest.mark.parametrize("missing, message", [
    ("params", "no parameters (neither params/ nor a checkpoint"),
    ("tokenizer", "no tokenizer (evaluation tokenizes the tasks' text)"),
])
def test_run_without_params_or_tokenizer_is_named(tmp_path, missing, message):
  """A run directory without params/ or tokenizer/ fails in one line naming the directory
  and what it lacks."""
  from instruct_pt import commands, config  # pylint: disable=import-outside-toplevel
  from instruct_pt.model import store  # pylint: disable=import-outside-toplevel
  from instruct_pt.model.config import get_preset  # pylint: disable=import-outside-toplevel
  model_config = get_preset("tiny")
  run = run_dir.RunDir(tmp_path / "run").create()
  run.write_model_config(model_config)
  if missing != "tokenizer":
    run.write_tokenizer(tokenizer_lib.ByteTokenizer())
  if missing != "params":
    mesh = parallel.create_mesh((1, -1, 1))
    store.save_params(run.params, jax.tree_util.tree_map(
        lambda leaf, sharding: jax.device_put(np.zeros(leaf.shape, leaf.dtype), sharding),
        *store.param_shardings(model_config, mesh, RULES)))
  with pytest.raises((ValueError, FileNotFoundError)) as error:
    commands.evaluate(config.EvaluateRun(model=str(run), tasks=("demo_cloze",), limit=1),
                      show_progress=False)
  assert message in str(error.value) and str(run) in str(error.value)
  assert "\n" not in str(error.value)


# ---- Multi-host.

_HOST_SCRIPT = """
import json, os, sys
from instruct_pt import parallel
parallel.maybe_initialize_distributed()
import lm_eval
from lm_eval.tasks import TaskManager
from instruct_pt.evaluation import TASKS_DIR
from instruct_pt.evaluation.lm_eval_model import InstructPTLM
model = InstructPTLM({model!r}, mesh="1:-1:1", progress=False)
results = lm_eval.simple_evaluate(
    model=model, tasks=["demo_cloze"], limit=4,
    task_manager=TaskManager(include_path=TASKS_DIR, include_defaults=False))
print(json.dumps({{"rank": model.rank, "scored": model.scorer.stats.requests,
                  "results": results and results["results"]["demo_cloze"],
                  "total": results and results["config"]["scored_requests"]}}))
"""


def test_two_hosts_each_score_their_share_and_process_0_gathers(tiny_hf, tiny_ours):
  """Two processes joined by jax.distributed each score half of the documents; process 0
  reports the metrics of all of them (equal to one process scoring everything) and every
  host's request count."""
  import socket  # pylint: disable=import-outside-toplevel
  with socket.socket() as sock:
    sock.bind(("localhost", 0))
    port = sock.getsockname()[1]
  hosts = []
  for process in range(2):
    env = _env(JAX_COORDINATOR_ADDRESS=f"localhost:{port}", JAX_NUM_PROCESSES="2",
               JAX_PROCESS_ID=str(process), XLA_FLAGS="--xla_force_host_platform_device_count=1")
    hosts.append(subprocess.Popen([sys.executable, "-c", _HOST_SCRIPT.format(model=tiny_hf)],
                                  cwd=REPO, env=env, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True))
  reports = []
  for host in hosts:
    stdout, stderr = host.communicate(timeout=600)
    assert host.returncode == 0, stderr
    reports.append(json.loads(stdout.strip().splitlines()[-1]))
  single = lm_eval.simple_evaluate(
      model=tiny_ours, tasks=["demo_cloze"], limit=4,
      task_manager=TaskManager(include_path=TASKS_DIR, include_defaults=False))
  assert [r["rank"] for r in reports] == [0, 1] and reports[1]["results"] is None
  assert reports[0]["scored"] == reports[1]["scored"] == 8  # 2 documents x 4 choices each
  assert reports[0]["total"] == 16
  for metric in ("acc,none", "acc_norm,none"):
    assert reports[0]["results"][metric] == single["results"]["demo_cloze"][metric]


# ---- The demo tasks and suites.

def test_adds_bos_follows_transformers(tiny_hf):
  """The tokenizer's default BOS behaviour is what transformers does with the same files."""
  import transformers  # pylint: disable=import-outside-toplevel
  theirs = transformers.AutoTokenizer.from_pretrained(tiny_hf)("Hello")["input_ids"]
  ours = tokenizer_lib.load_tokenizer(tiny_hf)
  assert ours.adds_bos == (theirs[0] == ours.bos_id)
  assert not tokenizer_lib.ByteTokenizer().adds_bos
