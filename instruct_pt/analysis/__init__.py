"""Analyses of trained models: task-relevant units (`units`)."""
