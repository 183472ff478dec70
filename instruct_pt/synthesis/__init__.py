"""Synthesis: the instruction synthesizer's text format, and (later) generation and templates."""
