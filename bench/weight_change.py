"""How far a group of weights has moved: the one measure behind ``bench.diagnostics``' relative update
(from the previous step) and drift (from the initialisation)."""
from __future__ import annotations

import math

import numpy as np


def relative_change(now, then) -> float:
    """``|now - then| / |then|`` over a group of arrays (Frobenius norms; 0 when ``then`` is all zero
    and nothing moved, inf when it is all zero and something did)."""
    diff = math.sqrt(sum(float(np.sum((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2))
                         for a, b in zip(now, then)))
    base = math.sqrt(sum(float(np.sum(np.asarray(b, np.float64) ** 2)) for b in then))
    return diff / base if base else (0.0 if diff == 0 else math.inf)
