"""Eval cases: case sources (JSONL, JSON, CSV, YAML, Python lists), prompt templates, few-shot
examples, benchmark file loaders and the held-out (training-overlap) check. Knows nothing of models.
"""
