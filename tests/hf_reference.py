"""Tiny random Hugging Face models: the `transformers` references of the parity tests."""

import torch
import transformers


def tiny_hf_model(kind: str, vocab_size: int = 128, **overrides):
  """A random float32 Llama or Mistral (`kind`) with a few layers, eager attention, in eval
  mode; `overrides` replace config fields (e.g. `sliding_window`, `tie_word_embeddings`)."""
  torch.manual_seed(0)
  settings = dict(vocab_size=vocab_size, hidden_size=64, intermediate_size=96,
                  num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                  max_position_embeddings=64, tie_word_embeddings=False, initializer_range=0.2)
  settings.update(overrides)
  config_class = transformers.MistralConfig if kind == "mistral" else transformers.LlamaConfig
  model = transformers.AutoModelForCausalLM.from_config(config_class(**settings),
                                                        attn_implementation="eager")
  return model.eval()
