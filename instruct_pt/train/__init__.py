"""Training: optimizers and the jit-sharded training loop."""
