"""Every command, every path argument, fed what it does not expect: one line naming the path
and what was expected, exit status 2, no traceback, and nothing already written lost."""

import importlib.metadata
import os

import jax
import pytest

from instruct_pt import cli, parallel, run_dir
from instruct_pt.model import store
from instruct_pt.model.config import get_preset

TINY = "configs/pretrain/tiny_cpu.gin"
SYNTHESIS = "configs/synthesis/smollm2_cpu.gin"


@pytest.fixture(scope="module")
def paths(tmp_path_factory):
  """A file, an empty directory, a synthesis run, a model run without tokenizer/, and a
  directory that cannot be created (None where the machine offers none)."""
  root = tmp_path_factory.mktemp("errors")
  (root / "file.txt").write_text("not a directory\n")
  (root / "empty").mkdir()
  synthesis = run_dir.RunDir(root / "synthesis").create()
  synthesis.shard(0).write_text('{"text": "t"}\n')
  config = get_preset("tiny")
  untokenized = run_dir.RunDir(root / "no_tokenizer").create()
  untokenized.write_model_config(config)
  import flax.linen as nn  # pylint: disable=import-outside-toplevel
  import jax.numpy as jnp  # pylint: disable=import-outside-toplevel
  from instruct_pt.model.transformer import Decoder  # pylint: disable=import-outside-toplevel
  params = nn.meta.unbox(Decoder(config).init(jax.random.key(0),
                                              jnp.zeros((1, 8), jnp.int32))["params"])
  store.save_params(untokenized.params, jax.device_put(params, store.param_shardings(
      config, parallel.create_mesh((1, -1, 1)), parallel.LOGICAL_AXIS_RULES)[1]))
  return {"file": str(root / "file.txt"), "empty": str(root / "empty"),
          "synthesis": str(synthesis), "no_tokenizer": str(untokenized),
          "unwritable": _uncreatable_directory(root), "root": str(root)}


def _uncreatable_directory(root):
  """A directory path whose creation is refused: a read-only parent (as a normal user), or a
  kernel filesystem that refuses new entries (as root, who may write anywhere else)."""
  if os.geteuid() != 0:
    locked = root / "locked"
    locked.mkdir()
    os.chmod(locked, 0o500)
    return str(locked / "run")
  try:
    os.makedirs("/sys/instruct_pt_probe")
  except PermissionError:
    return "/sys/instruct_pt_run"
  except OSError:
    return None
  os.rmdir("/sys/instruct_pt_probe")
  return None


# (command line with {placeholders}, fragments the one error line must hold)
CASES = [
    ("train --gin_file={tiny} --run_dir={file}", ["{file}", "is a file, not a directory"]),
    ("train --gin_file={tiny} --run_dir={file}/run", ["{file} is a file, not a directory"]),
    ("train --gin_file={tiny} --run_dir={unwritable}", ["{unwritable}", "cannot be created"]),
    ("train --gin_file={empty} --run_dir={root}/t1", ["{empty}", "is a directory; expected a .gin"]),
    ("train --gin_file={tiny} --gin_param=model.init_from='{synthesis}' --run_dir={root}/t2",
     ["{synthesis}", "it is a synthesis run; expected a run directory"]),
    ("train --gin_file={tiny} --gin_param=model.init_from='{no_tokenizer}' --run_dir={root}/t3",
     ["model.init_from='{no_tokenizer}' has no tokenizer"]),
    ("train --gin_file={tiny} --gin_param=model.init_from='{file}' --run_dir={root}/t4",
     ["{file}: it is a file; expected a run directory"]),
    ("train --gin_file={tiny} --gin_param=model.init_from='{root}/nowhere' --run_dir={root}/t5",
     ["{root}/nowhere does not exist"]),
    ("train --gin_file={tiny} --gin_param=model.tokenizer='{empty}' --run_dir={root}/t6",
     ["{empty} holds neither tokenizer.json"]),
    ("convert --from_hf={file} --run_dir={root}/c1", ["{file}: it is a file"]),
    ("convert --from_hf={empty} --run_dir={root}/c2", ["{empty}: it is empty; expected"]),
    ("convert --from_gguf={empty} --run_dir={root}/c3", ["{empty}: it is empty; expected"]),
    ("convert --from_run={synthesis} --to_hf={root}/c4", ["{synthesis}: it is a synthesis run"]),
    ("convert --from_run={no_tokenizer} --to_hf={file}", ["{file} is a file, not a directory"]),
    ("convert --from_gguf=smollm2 --run_dir={file}", ["{file} is a file, not a directory"]),
    ("convert --from_hf={no_tokenizer} --run_dir={root}/c5",
     ["{no_tokenizer} is a run directory, not a Hugging Face directory"]),
    ("synthesize --gin_file={synthesis_gin} --run_dir={file}", ["{file} is a file"]),
    ("synthesize --gin_file={synthesis_gin} --gin_param=synthesize.model='{synthesis}' "
     "--run_dir={root}/s1", ["{synthesis}: it is a synthesis run"]),
    ("synthesize --gin_file={synthesis_gin} --gin_param=synthesize.model='{no_tokenizer}' "
     "--run_dir={root}/s2", ["synthesize.model='{no_tokenizer}' has no tokenizer"]),
    ("synthesize --gin_file={synthesis_gin} --gin_param=synthesize.input_pattern='{empty}' "
     "--run_dir={root}/s3", ["{empty} is a directory; give a file or a glob"]),
    ("tokenizer --corpus={empty} --vocab_size=300 --output_dir={root}/k1",
     ["{empty} is a directory; give a file or a glob"]),
    ("tokenizer --corpus=demo --vocab_size=300 --output_dir={file}", ["{file} is a file"]),
    ("data inspect --mixture=demo_raw --tokenizer={empty}", ["{empty} holds neither"]),
    ("data inspect --mixture=demo_rwa", ["--mixture='demo_rwa' is not registered",
                                         "did you mean demo_raw"]),
    ("demo --run_dir={file}", ["{file} is a file, not a directory"]),
    # Typed settings: a value of another type than its field's is one line, before any check
    # of the class compares it (a TypeError traceback before).
    ("train --gin_file={tiny} --gin_param=train.num_steps='ten' --run_dir={root}/t7",
     ["train.num_steps='ten': expected an int"]),
    ("train --gin_file={tiny} --gin_param=optimizer.clip_norm='x' --run_dir={root}/t8",
     ["optimizer.clip_norm='x': expected a number or None"]),
    ("synthesize --gin_file={synthesis_gin} --gin_param=synthesize.num_slots=2.5 "
     "--run_dir={root}/s4", ["synthesize.num_slots=2.5: expected an int"]),
]


@pytest.mark.parametrize("line, fragments", CASES, ids=[c[0].split(" --")[0] + ": " + c[1][-1]
                                                        for c in CASES])
def test_bad_path_arguments_give_one_line(paths, capsys, line, fragments):
  if "{unwritable}" in line and paths["unwritable"] is None:
    pytest.skip("no directory here refuses creation")
  values = dict(paths, tiny=TINY, synthesis_gin=SYNTHESIS)
  before = sorted(os.listdir(paths["root"]))
  status = cli.main(line.format(**values).split(" "))
  error = capsys.readouterr().err.strip().splitlines()
  assert status == 2, error
  assert len(error) == 1 and error[0].startswith("instruct-pt "), error
  for fragment in fragments:
    assert fragment.format(**values) in error[0], error[0]
  # Nothing a user had was touched: the fixture's files and runs are all still there.
  assert set(before) <= set(os.listdir(paths["root"]))
  assert open(paths["file"], encoding="utf-8").read() == "not a directory\n"


def test_flags_are_never_abbreviated(capsys):
  """`--task=demo` (for `--tasks`), `--num=2` (for `--num_examples`) and `--gin_par` are
  refused by every parser, sub-parsers included, instead of running a command the user did
  not type."""
  for line in (["evaluate", "--run_dir=RUN", "--task=demo"],
               ["data", "inspect", "--mixture=demo_raw", "--num=2"],
               ["train", "--run_dir=RUN", "--gin_par=train.num_steps=5"]):
    with pytest.raises(SystemExit) as exit_info:
      cli.main(line)
    assert exit_info.value.code == 2
    assert f"unrecognized arguments: {line[-1]}" in capsys.readouterr().err, line


@pytest.mark.parametrize("line, hint", [
    ("train --run_dir=RUN --gin-file=x.gin", "; did you mean --gin_file?"),
    ("evaluate --run_dir=RUN --task=demo", "; did you mean --tasks?"),
    ("data inspect --mixture=demo_raw --num_exmples=2", "; did you mean --num_examples?"),
    ("train --run_dir=RUN --num_steps=5",
     "; train.num_steps is a setting: use --gin_param=train.num_steps=5"),
    ("synthesize --run_dir=RUN --num_slots=4",
     "; synthesize.num_slots is a setting: use --gin_param=synthesize.num_slots=4"),
    ("evaluate --model=smollm2 --tasks=demo", "; did you mean --run_dir? (one name across "
     "commands)"),
    ("evaluate --run_dir=RUN --tasks=demo --out=x", "; did you mean --output_dir? (one name "
     "across commands)"),
])
def test_an_unknown_flag_says_what_was_meant(capsys, line, hint):
  """A flag with dashes or a typo names the command's flag; a setting given as a flag names
  the --gin_param that sets it. One error line, nothing run."""
  with pytest.raises(SystemExit) as exit_info:
    cli.main(line.split(" "))
  error = capsys.readouterr().err.strip().splitlines()[-1]
  assert exit_info.value.code == 2 and error.endswith(hint), error


def test_version(capsys):
  """`instruct-pt --version` prints the installed version."""
  with pytest.raises(SystemExit) as exit_info:
    cli.main(["--version"])
  assert exit_info.value.code == 0
  version = importlib.metadata.version("instruct_pt")
  assert capsys.readouterr().out.strip() == f"instruct-pt {version}"


def test_a_missing_source_creates_no_run_directory(tmp_path, capsys):
  """`convert --from_gguf=missing.gguf` names the file in one line and leaves no (empty) run
  directory behind: the source is checked before anything is created."""
  status = cli.main(["convert", f"--from_gguf={tmp_path}/missing.gguf",
                     f"--run_dir={tmp_path}/run"])
  error = capsys.readouterr().err.strip().splitlines()
  assert status == 2 and len(error) == 1 and f"{tmp_path}/missing.gguf" in error[0], error
  assert not (tmp_path / "run").exists()
