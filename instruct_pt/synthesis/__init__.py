"""Synthesis: multi-round prompts, generation on the mesh, recovery, categories, filters,
templates and the resumable pipeline."""
