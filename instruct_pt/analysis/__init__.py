"""Analyses of data and models: contextual partitioning (`partition`) and task-relevant
units (`units`)."""
