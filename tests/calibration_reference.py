"""Calibration figures from the reference packages, run in their own venv (``.venv-calib``):
``uncertainty-calibration`` (what HELM uses) for ECE and selective accuracy, scikit-learn for the
Brier score. Reads a JSON list of datasets on stdin, writes a JSON list of figures on stdout.
Never imported by the tests: they run it with that venv's python."""

import json
import sys

import calibration as cal
import numpy as np
from sklearn.metrics import brier_score_loss

out = []
for d in json.load(sys.stdin):
    conf = np.array(d["conf"], dtype=np.float64)
    correct = np.array(d["correct"], dtype=np.int64)
    figures = {
        "ece_equal_width": float(cal.get_ece(conf, correct, num_bins=10)),
        "ece_equal_mass": float(cal.get_ece_em(conf, correct, num_bins=10)),
        "selective_acc": float(cal.get_selective_stats(conf, correct)[1]),
    }
    if d.get("probs"):
        k = len(d["probs"][0])
        figures["brier"] = float(brier_score_loss(d["answers"], np.array(d["probs"]), labels=list(range(k)), scale_by_half=False))
    out.append(figures)
json.dump(out, sys.stdout)
