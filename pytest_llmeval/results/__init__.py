"""Results: per-case records, statistics, the baseline file and the gate, reports, run comparison
and history. Plain data: no pytest, no torch, no backends.
"""
