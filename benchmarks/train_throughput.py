"""Training throughput and MFU of the real train step on whatever backend is present.

  python benchmarks/train_throughput.py --preset instructlm_1_3b --seq_len 2048 --batch 8 \
      --dtype bfloat16 --remat dots_no_batch --attention cudnn

Runs `instruct_pt.train.loop.make_train_step` (the step `instruct-pt train` jits) on random
tokens over a mesh of all local devices, times `--steps` steps after `--warmup` compiled ones,
and prints tokens/s and MFU (formula in `instruct_pt.train.metrics`) next to the target MFU.
The last line is a one-line summary.
"""

from __future__ import annotations

import argparse
import time

import jax
import numpy as np

from instruct_pt import parallel
from instruct_pt.model.config import get_preset, preset_names
from instruct_pt.model.transformer import Decoder
from instruct_pt.train import loop, metrics, optim
from instruct_pt.train import state as state_lib

TARGET_MFU = 0.45  # issue #2: instructlm_1_3b, sequence 2048, bfloat16, one H100


def parse_args() -> argparse.Namespace:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--preset", default="tiny", choices=preset_names())
  parser.add_argument("--seq_len", type=int, default=128)
  parser.add_argument("--batch", type=int, default=8, help="global rows per step")
  parser.add_argument("--steps", type=int, default=10, help="timed steps")
  parser.add_argument("--warmup", type=int, default=2, help="untimed steps (compilation)")
  parser.add_argument("--dtype", default="auto", help="compute dtype (auto: float32 on CPU, "
                      "bfloat16 elsewhere)")
  parser.add_argument("--param_dtype", default="float32")
  parser.add_argument("--remat", default="none", help="remat policy")
  parser.add_argument("--attention", default=None, help="xla | dot_product | cudnn "
                      "(default: cudnn on GPU, xla elsewhere)")
  parser.add_argument("--mesh", default="1,-1,1", help="data,fsdp,tensor sizes")
  parser.add_argument("--rule_overrides", default="",
                      help='changes to the rule table, e.g. "embed=None;heads=fsdp+tensor"')
  parser.add_argument("--grad_accum", type=int, default=1)
  return parser.parse_args()


def main() -> None:
  args = parse_args()
  backend = jax.default_backend()
  attention = args.attention or ("cudnn" if backend == "gpu" else "xla")
  model_config = get_preset(args.preset, dtype=args.dtype, param_dtype=args.param_dtype,
                            remat_policy=args.remat, attention_impl=attention,
                            max_seq_len=max(args.seq_len, 8))
  mesh_config = parallel.MeshConfig(
      shape=parallel.parse_mesh_shape(args.mesh),
      rule_overrides=parallel.parse_rule_overrides(args.rule_overrides, "--rule_overrides"))
  mesh, rules = mesh_config.create(), mesh_config.rules()
  parallel.check_batch_size(args.batch, mesh, rules, "--batch")
  train_config = loop.TrainConfig(num_steps=args.warmup + args.steps, batch_size=args.batch,
                                  seq_len=args.seq_len, grad_accum_steps=args.grad_accum)

  model = Decoder(model_config)
  tx, schedule = optim.make_optimizer(optim.OptimizerConfig(), train_config.num_steps)
  state, shardings = state_lib.create_train_state(model, tx, jax.random.key(0), mesh, rules)
  batch_sharding = parallel.batch_sharding(mesh, rules)
  rng = np.random.default_rng(0)
  tokens = rng.integers(0, model_config.vocab_size, (args.batch, args.seq_len + 1), np.int32)
  batch = parallel.host_local_to_global({
      "decoder_input_tokens": tokens[:, :-1],
      "decoder_target_tokens": tokens[:, 1:],
      "decoder_loss_weights": np.ones((args.batch, args.seq_len), np.float32),
  }, batch_sharding, args.batch)

  with parallel.sharding_context(mesh, rules):
    step = jax.jit(loop.make_train_step(model, tx, schedule, train_config),
                   in_shardings=(shardings, batch_sharding), out_shardings=(shardings, None),
                   donate_argnums=(0,))
    for _ in range(args.warmup):
      state, out = step(state, batch)
    jax.block_until_ready(out)
    start = time.perf_counter()
    for _ in range(args.steps):
      state, out = step(state, batch)
    jax.block_until_ready(out)
    elapsed = time.perf_counter() - start

  tokens_per_second = args.batch * args.seq_len * args.steps / elapsed
  peak = metrics.device_peak_flops(mesh.devices.flat[0])
  achieved = metrics.mfu(tokens_per_second, model_config.flops_per_token(args.seq_len),
                         mesh.size, peak)
  device = mesh.devices.flat[0].device_kind
  print(f"preset={args.preset} params={model_config.num_params() / 1e6:.1f}M "
        f"seq_len={args.seq_len} batch={args.batch} dtype={model_config.compute_dtype} "
        f"remat={args.remat} "
        f"attention={attention} mesh={dict(mesh.shape)} devices={mesh.size} x {device}")
  print(f"step time {1000 * elapsed / args.steps:.1f} ms, loss {float(out['loss']):.3f}, "
        f"peak {peak / 1e12:.1f} TFLOP/s per device"
        f"{' (measured: no data-sheet figure for this device)' if backend == 'cpu' else ''}")
  print(f"{args.preset}: {tokens_per_second:,.0f} tokens/s  MFU {100 * achieved:.1f}%  "
        f"(target {100 * TARGET_MFU:.0f}%: ratio {achieved / TARGET_MFU:.2f})")


if __name__ == "__main__":
  main()
