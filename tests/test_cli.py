"""The `instruct-pt` command line, as a user runs it (subprocesses, 8 forced CPU devices)."""

import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest

import output_lines

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = "configs/pretrain/tiny_cpu.gin"


def instruct_pt(*args, timeout=300, env=None):
  return subprocess.run([sys.executable, "-m", "instruct_pt.cli", *args], cwd=REPO,
                        capture_output=True, text=True, timeout=timeout, check=False, env=env)


def _metric_steps(run_dir):
  with open(os.path.join(run_dir, "metrics.jsonl"), encoding="utf-8") as f:
    return [json.loads(line)["step"] for line in f if "loss" in json.loads(line)]


def test_train_writes_run_dir_and_continues_when_num_steps_grows(tmp_path):
  """Acceptance: 20 steps, then the same command with 30 continues from step 20."""
  run = str(tmp_path / "run")
  first = instruct_pt("train", f"--gin_file={TINY}", "--gin_param=train.num_steps=20",
                      f"--run_dir={run}")
  assert first.returncode == 0, first.stderr
  assert not output_lines.foreign_lines(first.stderr), first.stderr
  assert "\r" not in first.stderr  # a pipe gets progress lines, not redrawn frames
  # the summary: status, last loss, tokens (20 steps x the recipe's batch x seq_len), wall
  # time and the newest checkpoint
  from instruct_pt import config  # pylint: disable=import-outside-toplevel
  recipe = config.train_run(run, [TINY]).train
  tokens = f"{20 * recipe.batch_size * recipe.seq_len:,}"
  summary = first.stdout.strip().splitlines()[-1]
  assert re.match(rf"train: done at step 20\. Loss \d+\.\d{{4}} at step 20; {tokens} tokens "
                  rf"in \d+ (min \d+ )?s\. Newest checkpoint: .*checkpoints/20\. Run ",
                  summary), summary
  assert sorted(os.listdir(os.path.join(run, "checkpoints"))) == ["10", "20"]
  with open(os.path.join(run, "config.gin"), encoding="utf-8") as f:
    operative = f.read()
  assert "train.num_steps = 20" in operative and "model.preset = 'tiny'" in operative
  assert "optimizer.learning_rate = 0.003" in operative
  records = [json.loads(line) for line in open(os.path.join(run, "metrics.jsonl"),
                                               encoding="utf-8")]
  assert {"step", "loss", "tokens_per_second", "mfu"} <= set(records[0])

  second = instruct_pt("train", f"--gin_file={TINY}", "--gin_param=train.num_steps=30",
                       f"--run_dir={run}")
  assert second.returncode == 0, second.stderr
  assert "Resumed from" in second.stderr and "at step 20" in second.stderr
  assert _metric_steps(run) == [10, 20, 30]
  assert "30" in os.listdir(os.path.join(run, "checkpoints"))


@pytest.mark.parametrize("param, message", [
    ("model.preset='nope'", "Unknown model preset 'nope'"),
    ("mesh.shape=(3, -1, 1)", "does not divide the 8 devices"),
    ("train.batch_size=12", "train.batch_size=12 is not divisible by the 8 batch shards"),
    ("train.bogus=1", "doesn't have a parameter named 'bogus'"),
    ("model.overrides={'num_kv_heads': 3}", "num_heads=4 is not a multiple of num_kv_heads=3"),
])
def test_bad_config_values_give_one_clear_error(tmp_path, param, message):
  """Bad values exit with status 2 and a one-line message naming the value, no traceback."""
  result = instruct_pt("train", f"--gin_file={TINY}", f"--gin_param={param}",
                       f"--run_dir={tmp_path}")
  assert result.returncode == 2, result.stderr
  assert message in result.stderr
  assert "Traceback" not in result.stderr


def test_missing_gin_file_is_named(tmp_path):
  """A gin file that does not exist is reported by name."""
  result = instruct_pt("train", "--gin_file=configs/nowhere.gin", f"--run_dir={tmp_path}")
  assert result.returncode == 2
  assert "gin file 'configs/nowhere.gin' not found" in result.stderr


@pytest.mark.parametrize("stop, returncode, status", [
    (signal.SIGTERM, 0, "preempted, checkpoint saved at step"),
    (signal.SIGINT, 130, "interrupted (re-run the command to resume), checkpoint saved at step"),
], ids=["SIGTERM", "SIGINT"])
def test_a_signal_saves_a_checkpoint_and_the_rerun_continues(tmp_path, stop, returncode,
                                                               status):
  """Preemption (SIGTERM) and Ctrl-C (SIGINT) share one path: mid-run, the loop saves at the
  current step and stops without a traceback (SIGINT exits 130); re-running finishes the
  run."""
  run = str(tmp_path / "run")
  args = [sys.executable, "-m", "instruct_pt.cli", "train", f"--gin_file={TINY}",
          "--gin_param=train.num_steps=100000", "--gin_param=train.checkpoint_every=100000",
          "--gin_param=train.log_every=5", f"--run_dir={run}"]
  process = subprocess.Popen(args, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
  metrics_path = os.path.join(run, "metrics.jsonl")
  deadline = time.time() + 120
  while not (os.path.exists(metrics_path) and os.path.getsize(metrics_path)):
    assert time.time() < deadline and process.poll() is None, process.communicate()
    time.sleep(0.2)
  process.send_signal(stop)
  stdout, stderr = process.communicate(timeout=120)
  assert process.returncode == returncode, stderr
  assert status in stdout and "Traceback" not in stderr, stderr
  saved = int(stdout.split("at step ")[1].split(".")[0])
  assert os.listdir(os.path.join(run, "checkpoints")) == [str(saved)]
  assert 5 <= saved < 100000

  rerun = instruct_pt("train", f"--gin_file={TINY}", f"--gin_param=train.num_steps={saved + 5}",
                      "--gin_param=train.checkpoint_every=100000", "--gin_param=train.log_every=5",
                      f"--run_dir={run}")
  assert rerun.returncode == 0, rerun.stderr
  assert f"at step {saved}" in rerun.stderr
  assert f"done at step {saved + 5}" in rerun.stdout


def test_a_second_writer_is_refused_before_it_does_anything(tmp_path):
  """Two `train` commands on one run directory: the second stops with one line naming the
  first's pid and host (before loading a model or data: it logs nothing of that), and the
  metrics hold each step once; the lock is gone when the first has finished."""
  run = tmp_path / "run"
  args = [sys.executable, "-m", "instruct_pt.cli", "train", f"--gin_file={TINY}",
          "--gin_param=train.num_steps=100000", "--gin_param=train.checkpoint_every=100000",
          "--gin_param=train.log_every=5", f"--run_dir={run}"]
  first = subprocess.Popen(args, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True)
  deadline = time.time() + 120
  while not ((run / "metrics.jsonl").exists() and (run / "metrics.jsonl").stat().st_size):
    assert time.time() < deadline and first.poll() is None, first.communicate()
    time.sleep(0.2)
  second = subprocess.run(args, cwd=REPO, capture_output=True, text=True, check=False,
                          timeout=120)
  first.send_signal(signal.SIGTERM)
  _, first_stderr = first.communicate(timeout=120)
  assert first.returncode == 0, first_stderr
  assert second.returncode == 2, second.stderr
  error = second.stderr.strip().splitlines()[-1]
  assert error.startswith(f"instruct-pt train: error: {run} is in use by pid {first.pid} on "
                          f"host "), error
  assert "training data" not in second.stderr
  steps = _metric_steps(run)
  assert steps and len(steps) == len(set(steps)), steps
  assert not (run / "writer.lock").exists()


def test_core_imports_without_tensorflow():
  """Acceptance: model, parallel and the train loop import with TensorFlow blocked."""
  code = ("import sys; sys.modules['tensorflow'] = None; sys.modules['seqio'] = None; "
          "import instruct_pt.model.transformer, instruct_pt.parallel, instruct_pt.train.loop")
  result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                          text=True, check=False)
  assert result.returncode == 0, result.stderr


def test_train_throughput_benchmark_summary_line():
  """Acceptance: the benchmark ends with one line holding tokens/s and MFU."""
  result = subprocess.run([sys.executable, "benchmarks/train_throughput.py", "--preset",
                           "tiny", "--steps", "5"], cwd=REPO, capture_output=True, text=True,
                          check=False, timeout=300)
  assert result.returncode == 0, result.stderr
  last = result.stdout.strip().splitlines()[-1]
  assert "tokens/s" in last and "MFU" in last
  tokens_per_second = float(last.split(":")[1].split("tokens/s")[0].replace(",", ""))
  assert tokens_per_second > 0


def test_convert_bundled_gguf_then_export_loads_in_transformers(tmp_path):
  """Acceptance: convert --from_gguf=smollm2, then --from_run --to_hf; transformers loads the
  export (model and tokenizer) and its logits equal ours from the run directory."""
  transformers = pytest.importorskip("transformers")
  torch = pytest.importorskip("torch")
  run, out = str(tmp_path / "run"), str(tmp_path / "hf")
  imported = instruct_pt("convert", "--from_gguf=smollm2", f"--run_dir={run}")
  assert imported.returncode == 0, imported.stderr
  assert {"params", "model_config.json", "tokenizer"} <= set(os.listdir(run))
  exported = instruct_pt("convert", f"--from_run={run}", f"--to_hf={out}")
  assert exported.returncode == 0, exported.stderr

  model = transformers.AutoModelForCausalLM.from_pretrained(out).eval()
  tokenizer = transformers.AutoTokenizer.from_pretrained(out)
  ids = tokenizer("Python lists are mutable sequences", add_special_tokens=False)["input_ids"]
  with torch.no_grad():
    theirs = model(torch.tensor([ids])).logits.numpy()[0]

  import jax.numpy as jnp  # pylint: disable=import-outside-toplevel
  import numpy as np  # pylint: disable=import-outside-toplevel
  from instruct_pt import parallel  # pylint: disable=import-outside-toplevel
  from instruct_pt.data import tokenizer as tokenizer_lib  # pylint: disable=import-outside-toplevel
  from instruct_pt import run_dir  # pylint: disable=import-outside-toplevel
  from instruct_pt.model.transformer import Decoder  # pylint: disable=import-outside-toplevel
  config = run_dir.RunDir(run).read_model_config()
  mesh = parallel.create_mesh((1, -1, 1))
  params = run_dir.restore_params(run_dir.RunDir(run), config, mesh, parallel.LOGICAL_AXIS_RULES)
  ours, _ = Decoder(config).apply({"params": params}, jnp.asarray([ids]))
  assert np.abs(np.asarray(ours)[0] - theirs).max() < 1e-4
  assert tokenizer_lib.load_tokenizer(os.path.join(run, "tokenizer")).encode(
      "Python lists are mutable sequences") == ids
  assert tokenizer.eos_token_id == model.config.eos_token_id == 2


def test_convert_argument_errors(tmp_path):
  """convert needs exactly one source and the matching destination."""
  both = instruct_pt("convert", "--from_gguf=smollm2", "--from_hf=x", f"--run_dir={tmp_path}")
  assert both.returncode == 2 and "exactly one of" in both.stderr
  (tmp_path / "empty").mkdir()
  no_dest = instruct_pt("convert", "--from_gguf=smollm2")
  assert no_dest.returncode == 2 and "exactly one destination" in no_dest.stderr
  missing = instruct_pt("convert", f"--from_hf={tmp_path / 'empty'}", f"--run_dir={tmp_path / 'r'}")
  assert missing.returncode == 2, missing.stderr
  assert f"{tmp_path / 'empty'}: it is empty; expected a run directory" in missing.stderr


def test_tokenizer_command_trains_sentencepiece(tmp_path):
  """`instruct-pt tokenizer` trains on a corpus file and writes a loadable tokenizer."""
  corpus = tmp_path / "corpus.jsonl"
  from instruct_pt.data import sources, tokenizer as tokenizer_lib  # pylint: disable=import-outside-toplevel
  corpus.write_text("".join(json.dumps({"text": t}) + "\n" for t in sources.demo_corpus()))
  result = instruct_pt("tokenizer", f"--corpus={corpus}", "--vocab_size=800",
                       f"--output_dir={tmp_path / 'tok'}")
  assert result.returncode == 0, result.stderr
  trained = tokenizer_lib.load_tokenizer(str(tmp_path / "tok"))
  assert trained.vocab_size == 800
  text = "<QUE> What does a list hold? <ANS> objects </END>"
  assert trained.decode(trained.encode(text)) == text
  bad = tmp_path / "bad.jsonl"
  bad.write_text('{"text": "fine"}\n{"body": "no text field"}\n')
  result = instruct_pt("tokenizer", f"--corpus={bad}", "--vocab_size=800",
                       f"--output_dir={tmp_path / 'tok2'}")
  assert result.returncode == 2 and "bad.jsonl:2: no string field 'text'" in result.stderr


def test_train_init_from_an_imported_checkpoint(tmp_path):
  """Continual pre-training: model.init_from starts from the imported parameters (the first
  step's loss is the imported model's loss on the first batch) with its config and tokenizer."""
  pytest.importorskip("transformers")
  from hf_reference import tiny_hf_model  # pylint: disable=import-outside-toplevel
  import jax  # pylint: disable=import-outside-toplevel
  import numpy as np  # pylint: disable=import-outside-toplevel
  from instruct_pt import cli, parallel  # pylint: disable=import-outside-toplevel
  from instruct_pt.data import feed, sources, tokenizer as tokenizer_lib  # pylint: disable=import-outside-toplevel
  from instruct_pt import run_dir  # pylint: disable=import-outside-toplevel
  from instruct_pt.model.transformer import Decoder  # pylint: disable=import-outside-toplevel
  from instruct_pt.train import loop  # pylint: disable=import-outside-toplevel

  hf = tiny_hf_model("llama", vocab_size=300, max_position_embeddings=256,
                     initializer_range=0.02)
  hf.save_pretrained(tmp_path / "hf")
  imported, trained = str(tmp_path / "imported"), str(tmp_path / "trained")
  assert cli.main(["convert", f"--from_hf={tmp_path / 'hf'}", f"--run_dir={imported}"]) == 0
  tokenizer_lib.save_tokenizer(tokenizer_lib.ByteTokenizer(), os.path.join(imported, "tokenizer"))
  assert cli.main(["train", f"--gin_file={os.path.join(REPO, TINY)}",
                   f"--gin_param=model.init_from='{imported}'", "--gin_param=train.num_steps=2",
                   "--gin_param=train.log_every=1", f"--run_dir={trained}"]) == 0

  config = run_dir.RunDir(imported).read_model_config()
  assert run_dir.RunDir(trained).read_model_config() == config
  mesh = parallel.create_mesh((1, -1, 1))
  params = run_dir.restore_params(run_dir.RunDir(imported), config, mesh, parallel.LOGICAL_AXIS_RULES)
  first_batch = feed.text_feed(sources.demo_corpus(), tokenizer_lib.ByteTokenizer(), 128, 8).batch(0)
  total, weight = loop.batch_loss(Decoder(config), params, first_batch)
  with open(os.path.join(trained, "metrics.jsonl"), encoding="utf-8") as f:
    first_loss = json.loads(f.readline())["loss"]
  np.testing.assert_allclose(first_loss, float(total / weight), rtol=1e-5)
  # The trained run's own checkpoint moved away from the imported parameters.
  after = run_dir.restore_params(run_dir.RunDir(trained), config, mesh, parallel.LOGICAL_AXIS_RULES)
  assert not np.allclose(jax.device_get(after["final_norm"]["scale"]),
                         jax.device_get(params["final_norm"]["scale"]))


def test_fine_tuned_synthesizer_run_synthesizes(tmp_path):
  """Stage 1 -> 2 with the shipped configs on a tiny imported model: the synthesizer config
  fine-tunes it on demo_synthesizer_sft (init_from), and synthesize loads the fine-tuned run
  directory (its config, newest checkpoint and tokenizer) and converts documents."""
  pytest.importorskip("transformers")
  from hf_reference import tiny_hf_model  # pylint: disable=import-outside-toplevel
  from instruct_pt import cli  # pylint: disable=import-outside-toplevel
  from instruct_pt.data import tokenizer as tokenizer_lib  # pylint: disable=import-outside-toplevel

  tiny_hf_model("llama", vocab_size=300, hidden_size=32, intermediate_size=64,
                max_position_embeddings=2048, initializer_range=0.02).save_pretrained(
                    tmp_path / "hf")
  base, tuned, out = (str(tmp_path / name) for name in ("base", "tuned", "synthesis"))
  assert cli.main(["convert", f"--from_hf={tmp_path / 'hf'}", f"--run_dir={base}"]) == 0
  tokenizer_lib.save_tokenizer(tokenizer_lib.ByteTokenizer(), os.path.join(base, "tokenizer"))
  assert cli.main(["train", "--gin_file=configs/synthesizer/smollm2_cpu.gin",
                   f"--gin_param=model.init_from='{base}'", "--gin_param=train.num_steps=2",
                   "--gin_param=train.seq_len=1024", "--gin_param=train.batch_size=8",
                   "--gin_param=train.log_every=1",
                   f"--run_dir={tuned}"]) == 0
  with open(os.path.join(tuned, "metrics.jsonl"), encoding="utf-8") as f:
    first = json.loads(f.readline())
  # The loss covers the pairs, not the contexts (packed rows are ~90% full).
  assert 0.2 * 8 * 1024 < first["loss_tokens"] < 0.75 * 8 * 1024, first
  assert cli.main(["synthesize", "--gin_file=configs/synthesis/smollm2_cpu.gin",
                   f"--gin_param=synthesize.model='{tuned}'",
                   "--gin_param=synthesize.max_documents=2",
                   "--gin_param=synthesize.max_new_tokens=8", f"--run_dir={out}"]) == 0
  with open(os.path.join(out, "stats.json"), encoding="utf-8") as f:
    stats = json.load(f)
  assert stats["documents"] == 2 and stats["generated_tokens"] > 0


def test_data_inspect_demo_mixture():
  """Acceptance: `data inspect` prints decoded examples, the loss-mask legend, per-task counts
  and says which parts are stand-in files."""
  result = instruct_pt("data", "inspect", "--mixture=demo_instruct_pt", "--num_examples=2")
  assert result.returncode == 0, result.stderr
  # nothing from TensorFlow's start-up (it reads the data through SeqIO)
  assert not output_lines.foreign_lines(result.stderr), result.stderr
  out = result.stdout
  assert "--- example 0" in out and "--- example 1" in out and "--- example 2" not in out
  assert "tokens without loss are shown ⟦like this⟧" in out
  for task in ("demo_raw", "demo_instruct_augmented", "demo_synthesizer_sft"):
    assert any(line.startswith(task) for line in out.splitlines()), task
  assert "stand-in data" in out


def test_train_from_a_seqio_mixture_and_gin_registered_corpus(tmp_path):
  """Acceptance: data.mixture='demo_raw' trains from SeqIO; a corpus declared in gin
  (data.tasks / data.mixtures) is registered and inspectable."""
  run = str(tmp_path / "run")
  result = instruct_pt("train", f"--gin_file={TINY}", "--gin_param=data.mixture='demo_raw'",
                       "--gin_param=train.num_steps=10", f"--run_dir={run}")
  assert result.returncode == 0, result.stderr
  assert "training data demo_raw: packing efficiency" in result.stderr
  assert _metric_steps(run) == [10]

  corpus = tmp_path / "web.jsonl"
  corpus.write_text("".join(json.dumps({"content": f"Web page number {i}."}) + "\n"
                            for i in range(50)))
  tasks = f"{{'web': {{'kind': 'raw_lm', 'layout': 'refinedweb', 'pattern': '{corpus}', " \
          f"'extra_fields': ()}}}}"
  result = instruct_pt("data", "inspect", "--mixture=web_mix", "--num_examples=1",
                       f"--gin_param=data.tasks={tasks}",
                       "--gin_param=data.mixtures={'web_mix': {'web': 1.0, 'demo_raw': 1.0}}")
  assert result.returncode == 0, result.stderr
  assert any(line.startswith("web ") for line in result.stdout.splitlines())


def _printed(text):
  """A printed number and its rounding error (half a unit of its last printed digit)."""
  text = text.replace(",", "").strip()
  decimals = len(text.split(".")[1]) if "." in text else 0
  return float(text), 0.5 * 10 ** -decimals


def test_generate_throughput_benchmark_summary_line():
  """Acceptance (smaller sizes): the generation benchmark ends with one line holding our
  tokens/s, transformers' tokens/s and their ratio."""
  pytest.importorskip("transformers")
  result = subprocess.run([sys.executable, "benchmarks/generate_throughput.py",
                           "--model=smollm2", "--batch=2", "--new_tokens=4", "--repeats=1",
                           "--mesh=1,1,1"],
                          cwd=REPO, capture_output=True, text=True, check=False, timeout=600)
  assert result.returncode == 0, result.stderr
  last = result.stdout.strip().splitlines()[-1]
  ours, ours_error = _printed(last.split("ours: ")[1].split(" tokens/s")[0])
  theirs, theirs_error = _printed(last.split("transformers: ")[1].split(" tokens/s")[0])
  ratio, ratio_error = _printed(last.split("ratio: ")[1].split("x")[0])
  floor = float(last.split("floor/transformers: ")[1].split("x")[0])
  assert ours > 0 and theirs > theirs_error
  # The printed ratio agrees with the printed rates within their rounding, whatever the load.
  lowest = (ours - ours_error) / (theirs + theirs_error) - ratio_error
  highest = (ours + ours_error) / (theirs - theirs_error) + ratio_error
  assert lowest <= ratio <= highest, (last, lowest, highest)
  # The side-by-side table: prefill, decode per step and tokens/s of each and of the roofline
  # floor, and the weight matmuls' share of our decode step.
  rows = {line.split()[0]: line.split()[1:4] for line in result.stdout.splitlines()
          if line.split() and line.split()[0] in ("ours", "transformers", "floor")}
  assert set(rows) == {"ours", "transformers", "floor"}
  assert float(rows["floor"][2].replace(",", "")) > ours and floor > 0
  matmuls = next(line for line in result.stdout.splitlines() if line.split()[:1] == ["matmuls"])
  assert float(matmuls.split()[1]) > 0


@pytest.mark.parametrize("command, run_class", [("train", "TrainRun"),
                                                ("synthesize", "SynthesizeRun")])
def test_help_lists_every_gin_setting_with_its_default(command, run_class, capsys):
  """`train --help` and `synthesize --help` teach: a description, an example command, and each
  gin setting of the run with its default, generated from the configs (cannot drift)."""
  import dataclasses  # pylint: disable=import-outside-toplevel
  from instruct_pt import cli, config  # pylint: disable=import-outside-toplevel
  with pytest.raises(SystemExit) as done:
    cli.main([command, "--help"])
  assert done.value.code == 0
  text = capsys.readouterr().out
  assert f"example:\n  instruct-pt {command} --gin_file=" in text
  holders = [f.default for f in dataclasses.fields(getattr(config, run_class))
             if type(f.default) in config.GIN_NAMES]
  for holder in holders:
    name = config.GIN_NAMES[type(holder)]
    for field in dataclasses.fields(holder):
      assert f"  {name}.{field.name} = {getattr(holder, field.name)!r}" in text, field.name


@pytest.mark.parametrize("words", [
    ["train"], ["finetune"], ["convert"], ["synthesize"], ["compile"], ["tokenizer"],
    ["data", "inspect"], ["evaluate"], ["partition"], ["analyze-units"], ["demo"]])
def test_every_command_has_a_description_and_an_example(words, capsys):
  """Each command's --help opens with what it does and ends its options with a command line
  that runs it."""
  from instruct_pt import cli  # pylint: disable=import-outside-toplevel
  with pytest.raises(SystemExit) as done:
    cli.main([*words, "--help"])
  assert done.value.code == 0
  text = capsys.readouterr().out
  usage, description = text.split("\n\n")[:2]
  assert usage.startswith(f"usage: instruct-pt {' '.join(words)}")
  assert len(description.split()) >= 8 and not description.startswith(("options:", "  -h"))
  assert f"example:\n  instruct-pt {' '.join(words)} --" in text
