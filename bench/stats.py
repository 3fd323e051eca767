"""Small statistics the benchmarks share (no SciPy needed)."""

from __future__ import annotations

import numpy as np


def figure(value: float | None, spec: str = ".4f") -> str:
    """A figure as the benches print it, or n/a where it was not measured."""
    return "n/a" if value is None else format(value, spec)


def ranks(values: np.ndarray) -> np.ndarray:
    """Ranks from 1, ties sharing their average rank."""
    values = np.asarray(values, dtype=float)
    order = values.argsort(kind="mergesort")
    out = np.empty(len(values))
    out[order] = np.arange(1, len(values) + 1)
    for v in np.unique(values):
        tie = values == v
        out[tie] = out[tie].mean()
    return out


def spearman(a, b) -> float:
    """Spearman rank correlation: Pearson correlation of the ranks."""
    ra, rb = ranks(a), ranks(b)
    return float(np.corrcoef(ra, rb)[0, 1])
