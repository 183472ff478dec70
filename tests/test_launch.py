"""Tests for launch/tpu_vm.sh and launch/gpu_node.sh.

Most tests run the scripts with DRY_RUN=1 and parse the printed command lines ("+ ..."), with
`gcloud` and `ssh` stubs on PATH that fail loudly, so neither needs to be installed and
nothing remote is ever touched. Two tests go further and execute the generated remote
scripts on this machine (fake $HOME, stub venv and trainer) to check that the user's command
arrives with its quoting intact and that `stop` sends SIGTERM first.
"""

from __future__ import annotations

import os
import pathlib
import re
import shlex
import shutil
import subprocess
import sys
import time

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
TPU = ROOT / "launch" / "tpu_vm.sh"
GPU = ROOT / "launch" / "gpu_node.sh"

pytestmark = pytest.mark.skipif(
    shutil.which("bash") is None or not sys.platform.startswith("linux"),
    reason="the launch scripts need bash (and Linux for the remote side)")

USER_CMD = ["instruct-pt", "train", "--gin_file=configs/pretrain/instructlm_500m.gin",
            "--gin_param=train.num_steps=5", "a b", "it's"]
QUOTED_USER_CMD = ("instruct-pt train --gin_file=configs/pretrain/instructlm_500m.gin "
                   "--gin_param=train.num_steps=5 'a b' 'it'\\''s'")

# The trainer stand-in: prints its arguments and the coordinator, optionally waits for SIGTERM.
STUB_TRAINER = """#!/bin/sh
for a in "$@"; do printf 'ARG:%s\\n' "$a"; done
echo "COORD:${JAX_COORDINATOR_ADDRESS:-}"
if [ -n "${STUB_SLEEP:-}" ]; then
  trap 'echo "got TERM"; exit 0' TERM
  echo "waiting"
  sleep "$STUB_SLEEP" & wait
fi
"""


def _write_exe(path: pathlib.Path, text: str) -> None:
  path.parent.mkdir(parents=True, exist_ok=True)
  path.write_text(text)
  path.chmod(0o755)


@pytest.fixture(scope="module")
def stub_path(tmp_path_factory) -> str:
  """A PATH whose `gcloud`, `ssh` and `curl` are stubs: DRY_RUN must never call the first two."""
  bin_dir = tmp_path_factory.mktemp("stub_bin")
  for name in ("gcloud", "ssh"):
    _write_exe(bin_dir / name, f"#!/bin/sh\necho 'stub {name} called' >&2\nexit 97\n")
  # What the metadata server answers on worker 0 of a two-host slice.
  _write_exe(bin_dir / "curl",
             "#!/bin/sh\nprintf '%s' \"${STUB_ENDPOINTS:-}\"\n")
  return f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"


def _env(stub_path: str, dry: bool = True, **extra: str) -> dict[str, str]:
  env = {k: v for k, v in os.environ.items()
         if k not in ("DRY_RUN", "TPU_WORKER_HOSTNAMES", "JAX_COORDINATOR_ADDRESS")}
  env["PATH"] = stub_path
  if dry:
    env["DRY_RUN"] = "1"
  env.update(extra)
  return env


def _run(script: pathlib.Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
  return subprocess.run(["bash", str(script), *args], env=env, capture_output=True, text=True,
                        timeout=30, cwd=ROOT)


def _commands(stdout: str) -> list[list[str]]:
  """The argv of every printed "+ ..." line."""
  return [shlex.split(line[2:]) for line in stdout.splitlines() if line.startswith("+ ")]


def _dry(stub_path: str, script: pathlib.Path, *args: str) -> tuple[list[list[str]], str]:
  proc = _run(script, *args, env=_env(stub_path))
  assert proc.returncode == 0, proc.stderr
  assert "stub" not in proc.stderr  # no real gcloud / ssh call
  return _commands(proc.stdout), proc.stdout


def _option(argv: list[str], name: str) -> str:
  return argv[argv.index(name) + 1]


# --- help and errors --------------------------------------------------------------------------


@pytest.mark.parametrize("script", [TPU, GPU], ids=["tpu", "gpu"])
@pytest.mark.parametrize("args", [["--help"], ["-h"], ["help"], ["run", "--help"]])
def test_help_exits_zero(stub_path, script, args):
  proc = _run(script, *args, env=_env(stub_path))
  assert proc.returncode == 0, proc.stderr
  assert "Usage:" in proc.stdout
  assert "DRY_RUN" in proc.stdout


@pytest.mark.parametrize("script", [TPU, GPU], ids=["tpu", "gpu"])
def test_unknown_subcommand_fails_with_message(stub_path, script):
  proc = _run(script, "frobnicate", env=_env(stub_path))
  assert proc.returncode != 0
  assert "unknown subcommand 'frobnicate'" in proc.stderr


@pytest.mark.parametrize("script", [TPU, GPU], ids=["tpu", "gpu"])
def test_no_subcommand_fails_with_usage(stub_path, script):
  proc = _run(script, env=_env(stub_path))
  assert proc.returncode != 0
  assert "Usage:" in proc.stderr


@pytest.mark.parametrize("args, message", [
    (["run", "my-tpu", "--zone", "z", "--bogus", "--", "x"], "unknown option '--bogus'"),
    (["run", "my-tpu", "--", "x"], "missing --zone"),
    (["run", "my-tpu", "--zone", "z"], "missing the command"),
    (["run", "--zone", "z", "--", "x"], "missing the TPU VM name"),
    (["create", "my-tpu", "--zone", "z"], "missing --accelerator"),
    (["create", "t", "--zone", "z", "--accelerator", "v4-8", "--spot", "--preemptible"],
     "exclude each other"),
    (["stop", "t", "--zone", "z", "--follow"], "does not apply to 'stop'"),
    (["stop", "t", "--zone", "z", "--grace", "soon"], "--grace must be"),
    (["logs", "t", "--zone"], "--zone needs a value"),
    (["run", "t", "--zone", "z", "instruct-pt"], "goes after --"),
])
def test_tpu_bad_arguments(stub_path, args, message):
  proc = _run(TPU, *args, env=_env(stub_path))
  assert proc.returncode != 0
  assert message in proc.stderr
  assert not proc.stdout.startswith("+ ")


# --- tpu_vm.sh --------------------------------------------------------------------------------

GCLOUD_TPU = ["gcloud", "compute", "tpus", "tpu-vm"]


def test_tpu_create(stub_path):
  cmds, _ = _dry(stub_path, TPU, "create", "my-tpu", "--zone", "us-west4-a",
                 "--accelerator", "v5litepod-8", "--spot")
  assert cmds == [GCLOUD_TPU + ["create", "my-tpu", "--zone=us-west4-a",
                                "--accelerator-type=v5litepod-8",
                                "--version=v2-alpha-tpuv5-lite", "--spot"]]


def test_tpu_create_version_preemptible_and_extra_flags(stub_path):
  cmds, _ = _dry(stub_path, TPU, "create", "pod", "--zone=us-central2-b", "--accelerator=v4-32",
                 "--version", "tpu-ubuntu2204-base", "--preemptible", "--project", "my-proj",
                 "--", "--network=my net")
  (argv,) = cmds
  assert argv[:6] == GCLOUD_TPU + ["create", "pod"]
  for piece in ("--zone=us-central2-b", "--accelerator-type=v4-32",
                "--version=tpu-ubuntu2204-base", "--preemptible", "--project=my-proj",
                "--network=my net"):
    assert piece in argv
  assert "--spot" not in argv


@pytest.mark.parametrize("accelerator, version", [
    ("v4-32", "tpu-ubuntu2204-base"), ("v5p-8", "v2-alpha-tpuv5"),
    ("v6e-8", "v2-alpha-tpuv6e")])
def test_tpu_create_default_version(stub_path, accelerator, version):
  cmds, _ = _dry(stub_path, TPU, "create", "t", "--zone", "z", "--accelerator", accelerator)
  assert f"--version={version}" in cmds[0]


def test_tpu_setup(stub_path):
  cmds, _ = _dry(stub_path, TPU, "setup", "my-tpu", "--zone", "us-west4-a")
  pack, scp, ssh = cmds
  assert "git" in pack and "ls-files" in pack and "-co" in pack and "--exclude-standard" in pack
  assert scp[:5] == GCLOUD_TPU + ["scp"]
  tarball = scp[5]
  assert tarball.endswith(".tar.gz") and tarball in " ".join(pack)
  assert "my-tpu:instruct_pt_src.tar.gz" in scp
  for piece in ("--zone=us-west4-a", "--worker=all", "--recurse"):
    assert piece in scp
  assert ssh[:6] == GCLOUD_TPU + ["ssh", "my-tpu"]
  assert "--worker=all" in ssh and "--zone=us-west4-a" in ssh
  script = _option(ssh, "--command")
  assert 'tar -xzf "$HOME"/instruct_pt_src.tar.gz -C "$HOME"/instruct_pt' in script
  assert "python3 -m venv .venv" in script
  assert "pip install -e '.[tpu]'" in script


def test_tpu_setup_options(stub_path):
  cmds, _ = _dry(stub_path, TPU, "setup", "t", "--zone", "z", "--repo_dir", "/opt/my code",
                 "--python", "python3.11", "--extras", "tpu,dev")
  script = _option(cmds[-1], "--command")
  assert "cd '/opt/my code';" in script
  assert "python3.11 -m venv .venv" in script
  assert "pip install -e '.[tpu,dev]'" in script
  cmds, _ = _dry(stub_path, TPU, "setup", "t", "--zone", "z", "--code_only")
  assert "install=0; if [ \"$install\" = 0 ]; then" in _option(cmds[-1], "--command")


def test_tpu_run_quotes_the_command_intact(stub_path):
  cmds, stdout = _dry(stub_path, TPU, "run", "my-tpu", "--zone", "us-west4-a", "--", *USER_CMD)
  (ssh,) = cmds
  assert ssh[:6] == GCLOUD_TPU + ["ssh", "my-tpu"]
  assert "--worker=all" in ssh and "--zone=us-west4-a" in ssh
  script = _option(ssh, "--command")
  assert f"nohup env {QUOTED_USER_CMD} >" in script
  assert 'cd "$HOME"/instruct_pt;' in script
  assert ". .venv/bin/activate" in script
  log = re.search(r"~/instruct_pt_logs/(\d{8}-\d{6})\.log", stdout)
  assert log, stdout
  assert f"/{log.group(1)}.log" in script


@pytest.mark.parametrize("endpoints, coordinator", [
    ("w-0:uid0:10.0.0.1,w-1:uid1:10.0.0.2", "10.0.0.1:8476"),  # v4-16: two hosts
    ("w-0:uid0:10.0.0.1", ""),                                   # single host
])
def test_tpu_run_script_runs_the_command_on_a_worker(stub_path, tmp_path, endpoints, coordinator):
  """Executes the generated remote script here, as a worker's shell would."""
  cmds, stdout = _dry(stub_path, TPU, "run", "t", "--zone", "z", "--", *USER_CMD)
  script = _option(cmds[0], "--command")
  home = tmp_path / "home"
  stub_bin = tmp_path / "venv_bin"
  _write_exe(stub_bin / "instruct-pt", STUB_TRAINER)
  activate = home / "instruct_pt" / ".venv" / "bin" / "activate"
  activate.parent.mkdir(parents=True)
  activate.write_text(f'PATH="{stub_bin}:$PATH"; export PATH\n')
  proc = subprocess.run(["sh", "-c", script], capture_output=True, text=True, timeout=30,
                        env=_env(stub_path, dry=False, HOME=str(home), STUB_ENDPOINTS=endpoints))
  assert proc.returncode == 0, proc.stderr
  assert "started pid" in proc.stdout
  ts = re.search(r"~/instruct_pt_logs/(\S+)\.log", stdout).group(1)
  log = home / "instruct_pt_logs" / f"{ts}.log"
  assert (home / "instruct_pt_logs" / f"{ts}.pid").exists()
  lines = _wait_for(log, "COORD:")
  assert [l[4:] for l in lines if l.startswith("ARG:")] == USER_CMD[1:]
  assert f"COORD:{coordinator}" in lines


def test_tpu_logs(stub_path):
  cmds, _ = _dry(stub_path, TPU, "logs", "my-tpu", "--zone", "z")
  assert "--worker=0" in cmds[0]
  script = _option(cmds[0], "--command")
  assert "ls -1t" in script and "tail -n 100 " in script and "-f" not in script.split()
  cmds, _ = _dry(stub_path, TPU, "logs", "my-tpu", "--zone", "z", "--worker", "3", "--follow",
                 "--lines=20")
  assert "--worker=3" in cmds[0]
  assert 'tail -n 20 -f "$log"' in _option(cmds[0], "--command")


def test_tpu_stop(stub_path):
  cmds, _ = _dry(stub_path, TPU, "stop", "my-tpu", "--zone", "z", "--grace", "30")
  (ssh,) = cmds
  assert ssh[:6] == GCLOUD_TPU + ["ssh", "my-tpu"] and "--worker=all" in ssh
  script = _option(ssh, "--command")
  assert script.index("kill -TERM") < script.index("kill -KILL")
  assert "$((30 * 2))" in script


def test_tpu_delete(stub_path):
  cmds, _ = _dry(stub_path, TPU, "delete", "my-tpu", "--zone", "z")
  assert cmds == [GCLOUD_TPU + ["delete", "my-tpu", "--zone=z"]]
  cmds, _ = _dry(stub_path, TPU, "delete", "my-tpu", "--zone", "z", "--yes")
  assert cmds[0][-1] == "--quiet"


@pytest.mark.parametrize("args", [
    ["create", "t", "--zone", "z", "--accelerator", "v4-8"],
    ["setup", "t", "--zone", "z"],
    ["run", "t", "--zone", "z", "--", "true"],
    ["logs", "t", "--zone", "z"],
    ["stop", "t", "--zone", "z"],
    ["delete", "t", "--zone", "z"],
])
def test_tpu_project_on_every_gcloud_call(stub_path, args):
  cmds, _ = _dry(stub_path, TPU, *args[:2], "--project", "my-proj", *args[2:])
  gcloud = [c for c in cmds if c[0] == "gcloud"]
  assert gcloud
  for argv in gcloud:
    assert "--project=my-proj" in argv


# --- gpu_node.sh ------------------------------------------------------------------------------


def test_gpu_setup_local(stub_path):
  cmds, _ = _dry(stub_path, GPU, "setup")
  (sh,) = cmds
  assert sh[:2] == ["sh", "-c"]
  assert f"cd {ROOT};" in sh[2] or f"cd '{ROOT}';" in sh[2]
  assert "python3 -m venv .venv" in sh[2] and "pip install -e '.[gpu]'" in sh[2]


def test_gpu_setup_remote(stub_path):
  cmds, stdout = _dry(stub_path, GPU, "setup", "--host", "me@gpu-box")
  copy_line = next(l for l in stdout.splitlines() if l.startswith("+ "))
  assert "git ls-files -co --exclude-standard" in copy_line
  assert "| ssh me@gpu-box" in copy_line and "tar -xzf - -C" in copy_line
  ssh = cmds[-1]
  assert ssh[:2] == ["ssh", "me@gpu-box"]
  assert 'cd "$HOME"/instruct_pt;' in ssh[2] and "pip install -e '.[gpu]'" in ssh[2]


@pytest.mark.skipif(
    shutil.which("git") is None or subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--is-inside-work-tree"],
        capture_output=True).returncode != 0,
    reason="needs a git checkout")
def test_gpu_setup_copies_the_working_tree(stub_path, tmp_path):
  """setup --host with an `ssh` that runs the remote side here: the tree arrives, minus junk."""
  home = tmp_path / "home"
  home.mkdir()
  fake_ssh = tmp_path / "fake_ssh_bin" / "ssh"
  _write_exe(fake_ssh, '#!/bin/sh\nshift\nexec sh -c "$1"\n')  # ssh HOST SCRIPT
  env = _env(stub_path, dry=False, HOME=str(home))
  env["PATH"] = f"{fake_ssh.parent}{os.pathsep}{env['PATH']}"
  proc = _run(GPU, "setup", "--host", "me@gpu-box", "--code_only", env=env)
  assert proc.returncode == 0, proc.stderr
  assert "code updated" in proc.stdout
  copy = home / "instruct_pt"
  assert (copy / "launch" / "tpu_vm.sh").is_file()
  assert (copy / "tests" / "test_launch.py").is_file()
  assert not (copy / ".git").exists() and not (copy / ".venv").exists()


def test_gpu_run_remote_quotes_the_command_intact(stub_path):
  cmds, stdout = _dry(stub_path, GPU, "run", "--host", "me@gpu-box", "--", *USER_CMD)
  (ssh,) = cmds
  assert ssh[:2] == ["ssh", "me@gpu-box"] and len(ssh) == 3
  assert f"nohup env {QUOTED_USER_CMD} >" in ssh[2]
  assert "metadata.google.internal" not in ssh[2]
  assert re.search(r"~/instruct_pt_logs/\d{8}-\d{6}\.log on me@gpu-box", stdout)


def test_gpu_logs_and_stop_remote(stub_path):
  cmds, _ = _dry(stub_path, GPU, "logs", "--host", "me@gpu-box", "--follow")
  assert cmds[0][:2] == ["ssh", "me@gpu-box"] and "tail -n 100 -f" in cmds[0][2]
  cmds, _ = _dry(stub_path, GPU, "stop", "--host", "me@gpu-box")
  assert cmds[0][:2] == ["ssh", "me@gpu-box"] and "kill -TERM" in cmds[0][2]


def test_gpu_run_logs_stop_locally(stub_path, tmp_path):
  """The real thing on this machine: run detaches, logs shows the log, stop sends SIGTERM."""
  home = tmp_path / "home"
  repo = tmp_path / "repo"
  stub_bin = tmp_path / "venv_bin"
  _write_exe(stub_bin / "instruct-pt", STUB_TRAINER)
  (repo / ".venv" / "bin").mkdir(parents=True)
  (repo / ".venv" / "bin" / "activate").write_text(f'PATH="{stub_bin}:$PATH"; export PATH\n')
  env = _env(stub_path, dry=False, HOME=str(home))

  proc = _run(GPU, "run", "--repo_dir", str(repo), "--", "STUB_SLEEP=30", *USER_CMD, env=env)
  assert proc.returncode == 0, proc.stderr
  ts = re.search(r"~/instruct_pt_logs/(\S+)\.log", proc.stdout).group(1)
  log = home / "instruct_pt_logs" / f"{ts}.log"
  lines = _wait_for(log, "waiting")
  assert [l[4:] for l in lines if l.startswith("ARG:")] == USER_CMD[1:]

  proc = _run(GPU, "logs", "--lines", "50", env=env)
  assert proc.returncode == 0, proc.stderr
  assert str(log) in proc.stdout and "ARG:a b" in proc.stdout

  proc = _run(GPU, "stop", "--grace", "10", env=env)
  assert proc.returncode == 0, proc.stderr
  assert "SIGTERM" in proc.stdout and "stopped" in proc.stdout
  assert "got TERM" in _wait_for(log, "got TERM")

  proc = _run(GPU, "stop", env=env)  # nothing left to stop
  assert proc.returncode == 0 and "nothing to stop" in proc.stdout


def _wait_for(path: pathlib.Path, needle: str, timeout: float = 10.0) -> list[str]:
  deadline = time.monotonic() + timeout
  while True:
    text = path.read_text() if path.exists() else ""
    if needle in text or time.monotonic() > deadline:
      assert needle in text, f"{needle!r} not in {path}: {text!r}"
      return text.splitlines()
    time.sleep(0.02)
