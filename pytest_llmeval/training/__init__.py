"""Evaluation during training: ``evaluate()`` on a live model and callbacks for training loops.
"""
