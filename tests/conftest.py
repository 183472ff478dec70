"""Test set-up: 8 forced CPU devices, so sharding tests can build a (2, 2, 2) mesh, and a
persistent XLA compilation cache for the session.

Must run before JAX initialises its backend (pytest imports conftest first).
"""

import atexit
import os
import shutil
import tempfile

os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                           " --xla_force_host_platform_device_count=8").strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")
# Many tests build the same tiny models and compile the same programs: each test process
# (each pytest-xdist worker; the subprocesses its tests start inherit it) compiles each program
# once into a fresh cache, deleted at exit. A cache directory the user set is used as it is.
if os.environ.get("JAX_COMPILATION_CACHE_DIR", "") == os.environ.get("INSTRUCT_PT_TEST_CACHE", ""):
  _CACHE = tempfile.mkdtemp(prefix="instruct_pt_xla_")
  atexit.register(shutil.rmtree, _CACHE, ignore_errors=True)
  os.environ["JAX_COMPILATION_CACHE_DIR"] = os.environ["INSTRUCT_PT_TEST_CACHE"] = _CACHE
  os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"

import pytest  # pylint: disable=wrong-import-position


@pytest.fixture(scope="session")
def smollm2():
  """The bundled SmolLM2-135M-Instruct GGUF: ours and transformers' loading of the same file.

  Returns `(config, params, reference_model, reference_tokenizer)`; params sit on a (1, -1, 1)
  mesh of all devices. Loaded once per session (transformers' GGUF loader takes ~20 s).
  """
  transformers = pytest.importorskip("transformers")
  from instruct_pt import parallel  # pylint: disable=import-outside-toplevel
  from instruct_pt import run_dir  # pylint: disable=import-outside-toplevel
  from instruct_pt.model import readers  # pylint: disable=import-outside-toplevel
  path = readers.resolve_gguf("smollm2")
  model = run_dir.load(path, parallel.create_mesh((1, -1, 1)), parallel.LOGICAL_AXIS_RULES,
                       progress=False)
  config, params = model.config, model.params
  directory, name = os.path.split(path)
  reference = transformers.AutoModelForCausalLM.from_pretrained(directory, gguf_file=name).eval()
  tokenizer = transformers.AutoTokenizer.from_pretrained(directory, gguf_file=name)
  return config, params, reference, tokenizer


@pytest.fixture(scope="session")
def prepend_tokenizer():
  """A Llama / Mistral-style `tokenizer.json` (normalizer: prepend "▁", spaces to "▁"; BPE
  trained on the demo corpus; `<s>` / `</s>` special tokens), as our `HFTokenizer` and as the
  raw `tokenizers.Tokenizer` (the reference: whole-string tokenization, as transformers' fast
  tokenizer does it). Returns `(tokenizer, raw)`."""
  tokenizers = pytest.importorskip("tokenizers")
  from instruct_pt.data import formats, sources  # pylint: disable=import-outside-toplevel
  from instruct_pt.data import tokenizer as tokenizer_lib  # pylint: disable=import-outside-toplevel
  raw = tokenizers.Tokenizer(tokenizers.models.BPE(unk_token="<unk>"))
  raw.normalizer = tokenizers.normalizers.Sequence([
      tokenizers.normalizers.Prepend("▁"), tokenizers.normalizers.Replace(" ", "▁")])
  raw.decoder = tokenizers.decoders.Sequence([
      tokenizers.decoders.Replace("▁", " "), tokenizers.decoders.Strip(" ", 1, 0)])
  corpus = sources.demo_corpus()[:400] + [" ".join(formats.MARKERS) + " ?!\n\n"] * 5
  raw.train_from_iterator(corpus, tokenizers.trainers.BpeTrainer(
      vocab_size=600, special_tokens=["<unk>", "<s>", "</s>"], show_progress=False))
  wrapped = tokenizer_lib.HFTokenizer(raw, {"bos_token": "<s>", "eos_token": "</s>",
                                           "pad_token": None})
  return wrapped, raw
