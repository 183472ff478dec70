"""Analyses of data and models: contextual partitioning (`partition`)."""
