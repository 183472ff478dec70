"""Data: vocabularies, corpus readers, packing and (lazily imported) SeqIO tasks."""
