"""Data: the synthesizer text format, tokenizers, corpus readers, packing, feeds and (imported
lazily) SeqIO tasks."""
