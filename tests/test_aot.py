"""Ahead-of-time compilation for TPU slices (`instruct_pt.aot`, `instruct-pt compile`).

Known answers first: HLO text written by hand (loops, FLOPs of dots and padded convolutions,
every replica-group format), slice names against gcloud's documented topologies, the model's
FLOP formula by hand. Then the real TPU compiler (libtpu, the test extra), on this CPU host:
the command end to end for two slices, the cost-model extrapolation against a full loop-free
build, the loop-aware FLOP count against XLA's own count of a loop-free program, a recipe
that does not fit, and two slices joined over DCN.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import json
import os
import pickle
import subprocess
import sys

import jax
import numpy as np
import pytest

import output_lines

from instruct_pt import hardware, parallel
from instruct_pt.aot import collectives, hlo, slices
from instruct_pt.model.config import get_preset

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# ------------------------------------------------------------------------------ HLO by hand

# A dot inside a loop of 5 iterations, itself inside a loop of 3 counting by 2 from 0 to 6
# (3 iterations), and a data-dependent loop around an all-gather.
LOOPS = """
HloModule loops

%inner_body (p: (s32[], f32[2,3])) -> (s32[], f32[2,3]) {
  %p = (s32[], f32[2,3]) parameter(0)
  %i = s32[] get-tuple-element(%p), index=0
  %one = s32[] constant(1)
  %next = s32[] add(%i, %one)
  %x = f32[2,3]{1,0} get-tuple-element(%p), index=1
  %w = f32[3,3]{1,0} constant({...})
  %y = f32[2,3]{1,0} dot(%x, %w), lhs_contracting_dims={1}, rhs_contracting_dims={0}
  ROOT %t = (s32[], f32[2,3]) tuple(%next, %y)
}

%inner_cond (p: (s32[], f32[2,3])) -> pred[] {
  %p = (s32[], f32[2,3]) parameter(0)
  %i = s32[] get-tuple-element(%p), index=0
  %five = s32[] constant(5)
  ROOT %lt = pred[] compare(%i, %five), direction=LT
}

%outer_body (q: (s32[], f32[2,3])) -> (s32[], f32[2,3]) {
  %q = (s32[], f32[2,3]) parameter(0)
  %j = s32[] get-tuple-element(%q), index=0
  %copied = s32[] copy(%j)
  %two = s32[] constant(2)
  %next = s32[] add(%copied, %two)
  %x = f32[2,3]{1,0} get-tuple-element(%q), index=1
  %zero = s32[] constant(0)
  %start = (s32[], f32[2,3]) tuple(%zero, %x)
  %loop = (s32[], f32[2,3]) while(%start), condition=%inner_cond, body=%inner_body
  %y = f32[2,3]{1,0} get-tuple-element(%loop), index=1
  ROOT %t = (s32[], f32[2,3]) tuple(%next, %y)
}

%outer_cond (q: (s32[], f32[2,3])) -> pred[] {
  %q = (s32[], f32[2,3]) parameter(0)
  %j = s32[] get-tuple-element(%q), index=0
  %six = s32[] constant(6)
  ROOT %lt = pred[] compare(%j, %six), direction=LT
}

%free_body (r: (s32[], f32[8])) -> (s32[], f32[8]) {
  %r = (s32[], f32[8]) parameter(0)
  %n = s32[] get-tuple-element(%r), index=0
  %v = f32[8]{0} get-tuple-element(%r), index=1
  %piece = f32[2]{0} slice(%v), slice={[0:2]}
  %g = f32[8]{0} all-gather(%piece), channel_id=1, replica_groups=[1,4]<=[4], dimensions={0}, use_global_device_ids=true
  ROOT %t = (s32[], f32[8]) tuple(%n, %g)
}

%free_cond (r: (s32[], f32[8])) -> pred[] {
  %r = (s32[], f32[8]) parameter(0)
  %v = f32[8]{0} get-tuple-element(%r), index=1
  %s = f32[] reduce(%v), dimensions={0}, to_apply=%add
  %zero = f32[] constant(0)
  ROOT %gt = pred[] compare(%s, %zero), direction=GT
}

%add (a: f32[], b: f32[]) -> f32[] {
  %a = f32[] parameter(0)
  %b = f32[] parameter(1)
  ROOT %c = f32[] add(%a, %b)
}

ENTRY %main (x: f32[2,3], v: f32[8]) -> (f32[2,3], f32[8]) {
  %x = f32[2,3]{1,0} parameter(0)
  %v = f32[8]{0} parameter(1)
  %zero = s32[] constant(0)
  %start = (s32[], f32[2,3]) tuple(%zero, %x)
  %outer = (s32[], f32[2,3]) while(%start), condition=%outer_cond, body=%outer_body
  %free_start = (s32[], f32[8]) tuple(%zero, %v)
  %free = (s32[], f32[8]) while(%free_start), condition=%free_cond, body=%free_body
  %a = f32[2,3]{1,0} get-tuple-element(%outer), index=1
  %b = f32[8]{0} get-tuple-element(%free), index=1
  ROOT %out = (f32[2,3], f32[8]) tuple(%a, %b)
}
"""


def test_loops_are_counted_as_often_as_they_run():
  module = hlo.parse(LOOPS)
  counts = hlo.execution_counts(module)
  assert counts["outer_body"] == 3  # 0, 2, 4: counting by 2 up to 6
  assert counts["inner_body"] == 15  # 5 per outer iteration
  assert counts["free_body"] == 1  # data-dependent: once
  assert module.unknown_loops == ["free"]
  # 15 dots of [2,3] x [3,3]: 2 * 6 outputs * 3 contracted = 36 FLOPs each.
  assert hlo.flops(module) == 15 * 36
  [gather] = collectives.collectives(module, num_devices=4)
  assert (gather.kind, gather.count, gather.nbytes, gather.groups) == (
      "all-gather", 1, 32, [[0, 1, 2, 3]])


# A [batch 1, 4 positions, 2 features] input, a window of 3 taps (2 -> 5 features) with one
# position of padding on each side: each of the 4 outputs reads 3 taps but the first and last
# read one padded position each, so 4 * 3 - 2 = 10 (output, tap) pairs read the input; with
# stride 2 (outputs 0 and 2 of the same padded input) 2 * 3 - 1 = 5.
CONVOLUTIONS = """
HloModule convolutions

ENTRY %main (x: f32[1,4,2], w: f32[3,2,5]) -> (f32[1,4,5], f32[1,2,5]) {
  %x = f32[1,4,2]{2,1,0} parameter(0)
  %w = f32[3,2,5]{2,1,0} parameter(1)
  %same = f32[1,4,5]{2,1,0} convolution(%x, %w), window={size=3 pad=1_1}, dim_labels=b0f_0io->b0f
  %strided = f32[1,2,5]{2,1,0} convolution(%x, %w), window={size=3 stride=2 pad=1_1}, dim_labels=b0f_0io->b0f
  ROOT %out = (f32[1,4,5], f32[1,2,5]) tuple(%same, %strided)
}
"""


def test_convolution_flops_skip_the_padding():
  module = hlo.parse(CONVOLUTIONS)
  same, strided = (module.instruction("main", name) for name in ("same", "strided"))
  # 2 FLOPs x (batch 1 x 5 output features) x 2 input features x (output, tap) pairs.
  assert hlo.convolution_flops(module, "main", same) == 2 * 5 * 2 * 10
  assert hlo.convolution_flops(module, "main", strided) == 2 * 5 * 2 * 5


@pytest.mark.parametrize("attributes, groups", [
    ("replica_groups={{0,2},{1,3}}", [[0, 2], [1, 3]]),
    ("replica_groups={}", [[0, 1, 2, 3, 4, 5, 6, 7]]),
    ("replica_groups=[2,4]<=[8]", [[0, 1, 2, 3], [4, 5, 6, 7]]),
    ("replica_groups=[4,2]<=[2,4]T(1,0)", [[0, 4], [1, 5], [2, 6], [3, 7]]),
    ("replica_groups=mesh['a'=2,'b'=4] {'b'}", [[0, 1, 2, 3], [4, 5, 6, 7]]),
    ("replica_groups=mesh['a'=2,'b'=4] {'a'}", [[0, 4], [1, 5], [2, 6], [3, 7]]),
    # Sub-axes of b (4 = major 2 x minor 2): b:(1)2 is the major half, b:(2)2 the minor.
    ("replica_groups=mesh['a'=2,'b'=4] {'b':(1)2}", [[0, 2], [1, 3], [4, 6], [5, 7]]),
    ("replica_groups=mesh['a'=2,'b'=4] {'b':(2)2}", [[0, 1], [2, 3], [4, 5], [6, 7]]),
    ("replica_groups=@mesh<'a'=2,'b'=2>([3,2,1,0]) {'a'}", [[3, 1], [2, 0]]),
    ("source_target_pairs={{0,1},{1,2},{2,3},{3,0}}", [[0, 1], [1, 2], [2, 3], [3, 0]]),
])
def test_device_groups_of_every_format(attributes, groups):
  assert collectives.device_groups(attributes + ", channel_id=1", num_devices=8) == groups


def test_census_names_the_mesh_axes():
  # Mesh (data 2, fsdp 2, tensor 2): device d sits at (d // 4, d // 2 % 2, d % 2).
  found = [collectives.Collective("all-gather", 3, 10, [[0, 1], [2, 3], [4, 5], [6, 7]]),
           collectives.Collective("reduce-scatter", 1, 4, [[0, 2], [1, 3], [4, 6], [5, 7]]),
           collectives.Collective("all-reduce", 2, 100, [[0, 4], [1, 5], [2, 6], [3, 7]]),
           collectives.Collective("all-gather", 1, 7, [[0, 1, 2, 3], [4, 5, 6, 7]])]
  rows = collectives.census(found, {"data": 2, "fsdp": 2, "tensor": 2}, [0] * 8)
  assert rows == [
      {"kind": "all-reduce", "axes": ["data"], "crosses_slices": False, "count": 2,
       "bytes": 200},
      {"kind": "all-gather", "axes": ["tensor"], "crosses_slices": False, "count": 3,
       "bytes": 30},
      {"kind": "all-gather", "axes": ["fsdp", "tensor"], "crosses_slices": False, "count": 1,
       "bytes": 7},
      {"kind": "reduce-scatter", "axes": ["fsdp"], "crosses_slices": False, "count": 1,
       "bytes": 4}]


def test_census_of_two_slices_counts_the_network_transfers_on_the_slice_axes():
  """Two slices of 4 chips on the data axis (devices 0-3 slice 0, 4-7 slice 1): the program is
  one slice's, its groups number that slice's chips (0-3 = data 0), and a Megascale transfer
  spans the data axis, across slices."""
  text = """
HloModule two_slices

ENTRY %main (x: f32[4,8]) -> f32[4,8] {
  %x = f32[4,8]{1,0} parameter(0)
  %r = f32[4,8]{1,0} all-reduce(%x), channel_id=1, replica_groups={{0,2},{1,3}}, to_apply=%add
  %token = token[] after-all()
  %send = (f32[4,8]{1,0}, u32[], token[]) send(%r, %token), channel_id=2, is_host_transfer=true, frontend_attributes={_xla_megascale_transfer_type="ALL_REDUCE"}
  %done = token[] send-done(%send), channel_id=2
  %recv = (f32[4,8]{1,0}, u32[], token[]) recv(%token), channel_id=3, is_host_transfer=true, frontend_attributes={_xla_megascale_transfer_type="ALL_REDUCE"}
  ROOT %y = f32[4,8]{1,0} get-tuple-element(%recv), index=0
}
"""
  found = collectives.collectives(hlo.parse(text), num_devices=4)
  rows = collectives.census(found, {"data": 2, "fsdp": 2, "tensor": 2}, [0] * 4 + [1] * 4)
  assert rows == [
      {"kind": "all-reduce", "axes": ["fsdp"], "crosses_slices": False, "count": 1,
       "bytes": 128},
      {"kind": "all-reduce", "axes": ["data"], "crosses_slices": True, "count": 1,
       "bytes": 128}]


def test_async_collectives_count_their_result_once():
  text = """
HloModule async

ENTRY %main (x: bf16[4,8]) -> bf16[16,8] {
  %x = bf16[4,8]{1,0} parameter(0)
  %s = (bf16[4,8]{1,0}, bf16[16,8]{1,0}) all-gather-start(%x), channel_id=1, replica_groups=[1,4]<=[4], dimensions={0}
  ROOT %d = bf16[16,8]{1,0} all-gather-done(%s)
}
"""
  [gather] = collectives.collectives(hlo.parse(text), num_devices=4)
  assert (gather.kind, gather.count, gather.nbytes) == ("all-gather", 1, 16 * 8 * 2)


def test_parse_rejects_text_without_a_program():
  with pytest.raises(ValueError, match="no ENTRY"):
    hlo.parse("HloModule empty\n")


# ---------------------------------------------------------------------------- slice names

@pytest.mark.parametrize("name, topology, hosts", [
    # Cloud TPU documentation: v4 and v5p count TensorCores (2 per chip), 4 chips per host.
    ("v4-8", "v4:2x2x1", 1), ("v4-16", "v4:2x2x2", 2), ("v4-32", "v4:2x2x4", 4),
    ("v4-64", "v4:2x4x4", 8), ("v4-128", "v4:4x4x4", 16), ("v5p-256", "v5p:4x4x8", 32),
    # v5e (v5litepod) and v6e count chips; 1, 4 and 8 chips are one host, larger slices have
    # 4 chips per host.
    ("v5litepod-1", "v5e:1x1", 1), ("v5litepod-4", "v5e:2x2", 1),
    ("v5litepod-8", "v5e:2x4", 1), ("v5litepod-16", "v5e:4x4", 4),
    ("v5litepod-256", "v5e:16x16", 64), ("v6e-8", "v6e:2x4", 1), ("v6e-64", "v6e:8x8", 16),
])
def test_slice_names_map_to_gclouds_topologies(name, topology, hosts):
  tpu = slices.parse_slice(name)
  assert (tpu.topology, tpu.hosts) == (topology, hosts)
  assert slices.parse_slice(topology).name == name  # a topology names the same slice


def test_unknown_slices_and_bad_counts_say_what_is_known():
  for name in ("v5p-12", "v7-8", "tpu"):
    with pytest.raises(ValueError, match=r"unknown TPU slice .*v5p-32.*v5litepod-16"):
      slices.parse_slice(name)
  with pytest.raises(ValueError, match="num_slices=0"):
    slices.parse_slice("v5p-8", num_slices=0)
  assert slices.parse_slice("v5e-16", num_slices=2).label == "2xv5litepod-16"


def test_missing_or_mismatched_libtpu_gives_the_install_command(monkeypatch):
  real_version = importlib.metadata.version

  def missing(package):
    if package == "libtpu":
      raise importlib.metadata.PackageNotFoundError(package)
    return real_version(package)

  monkeypatch.setattr(importlib.metadata, "version", missing)
  with pytest.raises(ValueError, match=r"libtpu, which is not installed: pip install "
                                       r"'jax\[tpu\]=="):
    slices.libtpu_version()
  monkeypatch.setattr(importlib.metadata, "version",
                      lambda p: "0.0.1" if p == "libtpu" else real_version(p))
  monkeypatch.setattr(importlib.metadata, "requires",
                      lambda p: ['libtpu==0.0.42.*; extra == "tpu"'])
  with pytest.raises(ValueError, match=r"libtpu 0.0.1 does not match jax .* needs libtpu "
                                       r"0.0.42.\*: pip install"):
    slices.libtpu_version()


# ------------------------------------------------------------------------------ the model

def test_forward_flops_by_hand():
  config = get_preset("tiny")  # 2 layers, d 64, 4 heads / 2 KV heads of 16, MLP 192, vocab 512
  # Per layer: attention 64 * 16 * (2 * 4 + 2 * 2) = 12,288, MLP 3 * 64 * 192 = 36,864, norms
  # 128: 49,280; two layers and the final norm 98,624; the (tied) output head 512 * 64 =
  # 32,768. Forward: 2 * 131,392 = 262,784, plus attention over 128 keys: 4 * 2 * 4 * 16 *
  # 128 = 65,536.
  assert config.forward_flops_per_token(128) == 262_784 + 65_536
  assert config.forward_flops_per_token(128, output_head=False) == 2 * (131_392 - 32_768) + 65_536
  assert config.flops_per_token(128) == 3 * (262_784 + 65_536)


def test_auto_settings_resolve_for_the_target_backend():
  config = get_preset("tiny")
  assert config.for_backend("tpu").dtype == "bfloat16"
  assert config.for_backend("tpu").attention_impl == "xla"
  assert config.for_backend("gpu").attention_impl == "cudnn"
  assert config.for_backend("cpu").dtype == "float32"
  assert config.replace(dtype="float32").for_backend("tpu").dtype == "float32"


def test_unrolled_layers_compute_what_the_scan_computes():
  import jax  # pylint: disable=import-outside-toplevel
  import jax.numpy as jnp  # pylint: disable=import-outside-toplevel
  from instruct_pt.model.transformer import Decoder  # pylint: disable=import-outside-toplevel
  config = get_preset("tiny", num_layers=3)
  tokens = jnp.asarray(np.random.default_rng(0).integers(0, 512, (2, 16)), jnp.int32)
  params = Decoder(config).init(jax.random.key(0), tokens)["params"]
  scanned, _ = Decoder(config).apply({"params": params}, tokens)
  unrolled, _ = Decoder(config.replace(scan_layers=False)).apply({"params": params}, tokens)
  np.testing.assert_allclose(np.asarray(unrolled), np.asarray(scanned), rtol=1e-5, atol=1e-5)
  lowered = jax.jit(Decoder(config.replace(scan_layers=False)).apply).lower(
      {"params": params}, tokens)
  assert " while(" not in lowered.compile().as_text()


# ----------------------------------------------------------------------- hosts without TPU

def test_libtpu_stays_quiet_on_a_host_without_tpus(tmp_path):
  """With libtpu installed, a plain import starts the CPU backend without libtpu's start-up
  lines; a user's JAX_PLATFORMS is left alone."""
  if hardware.has_tpu():
    pytest.skip("this host has TPUs")
  env = {k: v for k, v in os.environ.items() if k not in ("JAX_PLATFORMS", "XLA_FLAGS")}
  code = "import instruct_pt, jax; print(jax.default_backend(), len(jax.devices()))"
  done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                        cwd=tmp_path, check=True)
  assert done.stdout.split() == ["cpu", "1"]
  assert "TPU" not in done.stderr and "libtpu" not in done.stderr, done.stderr
  assert hardware.prefer_cpu_without_tpu() is False  # JAX_PLATFORMS is set in the tests


# ------------------------------------------------------------------- the TPU compiler, here

TINY = "configs/pretrain/tiny_cpu.gin"


def _compile(tmp_path, topology, programs=("train",), gin_files=(TINY,), gin_params=(),
             num_slices=1, cost_model=True, run_dir=True, save=False):
  """`commands.compile` of a recipe for a slice (in this process)."""
  from instruct_pt import commands, config  # pylint: disable=import-outside-toplevel
  run = config.compile_run(str(tmp_path / "RUN") if run_dir else None, gin_files, gin_params)
  return commands.compile(dataclasses.replace(run, compile=dataclasses.replace(
      run.compile, topology=topology, programs=tuple(programs), num_slices=num_slices,
      cost_model=cost_model)), save=save)


def _check_report(report, topology, chips, hbm_gib):
  # The HBM a program may use, as the compiler says it: less than the data sheet's.
  assert (report["slice"], report["chips"], report["chip"]["hbm_bytes"]) == (
      topology, chips, hbm_gib * 2**30)
  assert report["versions"]["libtpu"] == importlib.metadata.version("libtpu")
  for program in report["programs"]:
    memory = program["memory"]
    # The tiny model's small temporaries may stay out of HBM; a prefill of 3696-token rows
    # cannot.
    assert memory["temporaries"] > 0 or program["program"] != "prefill"
    assert memory["arguments"] > 0 and memory["fits"] and memory["headroom"] > 0.9
    assert memory["total"] == (memory["arguments"] + memory["outputs"] - memory["aliased"] +
                               memory["temporaries"] + memory["code"])
    gathers = [c for c in program["collectives"] if c["kind"] == "all-gather"]
    assert gathers and all(c["axes"] == ["fsdp"] and c["count"] > 0 for c in gathers)
    assert not any(c["crosses_slices"] for c in program["collectives"])
    assert program["mesh"] == {"data": 1, "fsdp": chips, "tensor": 1}


def test_compile_command_for_v5litepod_4_prints_and_writes_every_program(tmp_path):
  """`instruct-pt compile ... --program=all` as a user types it, from another directory."""
  run = tmp_path / "RUN"
  env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
  done = subprocess.run(
      [sys.executable, "-m", "instruct_pt.cli", "compile", f"--gin_file={TINY}",
       "--topology=v5litepod-4", "--program=all", f"--run_dir={run}"],
      cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
  assert done.returncode == 0, done.stderr[-3000:]
  assert "| train_step | 1,4,1 |" in done.stdout and "| decode_step |" in done.stdout
  assert "cost model's estimate, not a measurement" in done.stdout
  assert "libtpu_init" not in done.stderr and "TPU_ACCELERATOR_TYPE" not in done.stderr
  assert not output_lines.foreign_lines(done.stderr), done.stderr[-3000:]
  reports = {c: json.loads((run / "compile" / f"{c}-v5litepod-4.json").read_text())
             for c in ("train", "synthesize", "evaluate")}
  for command, report in reports.items():
    _check_report(report, "v5litepod-4", 4, 15.75)
    for program in report["programs"]:
      # Remat "none": the program does the model's work, plus norms, softmax and the rest.
      assert 0.97 < program["flops_ratio"] < 1.1, (command, program["flops_ratio"])
      cost = program["cost_model"]
      assert cost["seconds"] > 0 and 0 < cost["mfu"] < 1 and cost["loops_left"] == 0
  assert [p["program"] for p in reports["synthesize"]["programs"]] == ["prefill", "decode_step"]
  # The decode loop runs until every slot is done: its figures are per decode step.
  assert reports["synthesize"]["programs"][1]["unknown_loops"]
  assert not reports["train"]["programs"][0]["unknown_loops"]


def test_compile_for_v4_8_and_the_remat_overhead(tmp_path):
  """v4 (megacore: a device per chip, 32 GiB); full remat recomputes the forward: about
  8 / 6 of the model's FLOPs."""
  from instruct_pt.aot import report  # pylint: disable=import-outside-toplevel
  result = _compile(tmp_path, "v4-8", programs=("train", "synthesize", "evaluate"),
                    cost_model=False, save=True)
  for command in ("train", "synthesize", "evaluate"):
    written = json.loads((tmp_path / "RUN" / "compile" / f"{command}-v4-8.json").read_text())
    assert written == json.loads(json.dumps(report.report(result, command)))
    _check_report(written, "v4-8", 4, 30.75)
  # --save: each executable serialized (loading one needs a TPU, which this host lacks).
  for program in ("train_step", "prefill", "decode_step", "score"):
    payload, in_tree, out_tree = pickle.loads(
        (tmp_path / "RUN" / "compile" / f"{program}-v4-8.executable").read_bytes())
    assert isinstance(payload, bytes) and len(payload) > 1000 and in_tree and out_tree
  remat = _compile(tmp_path, "v4-8", gin_params=["model.overrides={'remat_policy': 'full'}",
                                                 "train.batch_size=64", "train.seq_len=512"],
                   cost_model=False, run_dir=False)
  [train] = remat.programs["train"]
  assert 1.25 < train.report["flops_ratio"] < 1.4, train.report["flops_ratio"]
  assert train.report["memory"]["temporaries"] > 0


def test_cost_model_extrapolation_and_flop_count_agree_with_a_loop_free_build():
  """The 1-and-2-layer extrapolation against the 4-layer program built without loops (and
  with 2 micro-batches, whose loop is unrolled too), and the loop-aware FLOP count of the real
  (scanned) program against that loop-free build."""
  from instruct_pt.aot import compiler, programs  # pylint: disable=import-outside-toplevel
  from instruct_pt.train.loop import TrainConfig  # pylint: disable=import-outside-toplevel
  from instruct_pt.train.optim import OptimizerConfig  # pylint: disable=import-outside-toplevel
  tpu = slices.parse_slice("v5litepod-4")
  mesh_config = parallel.MeshConfig()
  config = get_preset("tiny", num_layers=4, embed_dim=128, head_dim=32,
                      mlp_dim=384).for_backend("tpu")
  program = programs.train_step(
      config, TrainConfig(batch_size=8, seq_len=128, grad_accum_steps=2), OptimizerConfig(),
      mesh_config.create(slices.topology_devices(tpu)), mesh_config.rules())
  estimate = compiler.cost_model(program)
  loop_free = program.lower(config.replace(scan_layers=False)).compile(
      compiler_options=compiler.COST_MODEL_OPTIONS)
  full = compiler._cost(loop_free)  # pylint: disable=protected-access
  assert estimate["flops_per_device"] == pytest.approx(full["flops"], rel=0.02)
  assert estimate["seconds"] == pytest.approx(full["optimal_seconds"], rel=0.10)
  # The matmul FLOPs of the scanned program (loops, collective matmuls) are those of the
  # loop-free build; XLA's own count adds the elementwise ops, a few percent more.
  scanned = hlo.flops(hlo.parse(program.lower(config).compile().as_text()))
  assert scanned == hlo.flops(hlo.parse(loop_free.as_text()))
  assert 1.0 < full["flops"] / scanned < 1.06
  assert " while(" not in loop_free.as_text()


def test_a_recipe_that_does_not_fit_exits_non_zero_with_its_per_chip_figure(tmp_path, capsys):
  from instruct_pt import cli  # pylint: disable=import-outside-toplevel
  status = cli.main(["compile", "--gin_file=configs/continual/llama3_8b.gin",
                     "--topology=v5litepod-4", "--no_cost_model"])
  captured = capsys.readouterr()
  assert status == 1
  [line] = [l for l in captured.err.splitlines() if "does not fit" in l]
  assert line.startswith("instruct-pt compile: train_step does not fit v5litepod-4: needs ")
  needed = float(line.split("needs ")[1].split(" GiB")[0])
  assert needed > 16 and "a chip has 15.75 GiB of HBM for programs" in line
  assert "| train_step |" in captured.out and "| NO |" in captured.out


def test_unknown_slice_and_missing_slice_are_one_line_errors(capsys):
  from instruct_pt import cli  # pylint: disable=import-outside-toplevel
  assert cli.main(["compile", f"--gin_file={TINY}", "--topology=v5p-7"]) == 2
  assert "unknown TPU slice 'v5p-7'" in capsys.readouterr().err
  assert cli.main(["compile", f"--gin_file={TINY}"]) == 2
  assert "give --topology" in capsys.readouterr().err


def test_two_slices_put_only_the_data_axis_across_the_network(tmp_path):
  """2 x v5p-8: the data axis spans the slices (dcn_shape), fsdp stays inside each; only
  data-parallel collectives cross slices."""
  result = _compile(tmp_path, "v5p-8", num_slices=2, cost_model=False, run_dir=False)
  [train] = result.programs["train"]
  assert train.report["mesh"] == {"data": 2, "fsdp": 4, "tensor": 1}
  census = train.report["collectives"]
  crossing = [c for c in census if c["crosses_slices"]]
  assert crossing and all(c["axes"] == ["data"] for c in crossing)
  assert any(c["axes"] == ["fsdp"] and not c["crosses_slices"] for c in census)
  mesh = parallel.MeshConfig().create(slices.topology_devices(slices.parse_slice("v5p-8", 2)))
  assert [{d.slice_index for d in row.flat} for row in mesh.devices] == [{0}, {1}]


def test_compiling_needs_neither_tensorflow_nor_lm_eval():
  """A TPU VM with only the tpu extra compiles: aot, config and the scorer import without
  TensorFlow, SeqIO or lm-eval."""
  code = ("import sys; sys.modules.update(tensorflow=None, seqio=None, lm_eval=None); "
          "import instruct_pt.aot.compiler, instruct_pt.aot.report, instruct_pt.config")
  done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                        text=True, check=False)
  assert done.returncode == 0, done.stderr


def test_compilation_cache_is_scoped_to_its_block(tmp_path):
  """Without a cache of the user's, the block's directory is JAX's cache inside it (a compile
  writes there) and nothing after it; a cache the user set (the suite's) is left alone."""
  from jax.experimental.compilation_cache import compilation_cache as cache  # pylint: disable=import-outside-toplevel
  users = jax.config.jax_compilation_cache_dir
  assert users  # conftest's
  with hardware.compilation_cache(str(tmp_path / "mine")):
    assert jax.config.jax_compilation_cache_dir == users
  jax.config.update("jax_compilation_cache_dir", None)
  cache.reset_cache()
  try:
    with hardware.compilation_cache(str(tmp_path / "mine")):
      assert jax.config.jax_compilation_cache_dir == str(tmp_path / "mine")
      jax.jit(lambda x: x * 3 + 1)(np.arange(5.0)).block_until_ready()
    written = sorted(p.name for p in (tmp_path / "mine").iterdir())
    assert written, "the block's compile went to its cache"
    assert jax.config.jax_compilation_cache_dir is None
    jax.jit(lambda x: x * 5 - 2)(np.arange(7.0)).block_until_ready()
    assert sorted(p.name for p in (tmp_path / "mine").iterdir()) == written
  finally:
    jax.config.update("jax_compilation_cache_dir", users)
    cache.reset_cache()
