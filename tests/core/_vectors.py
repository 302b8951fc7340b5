"""Explicit gradient vectors for the combiner tests: their Gram matrix, norms, unit vectors, cosines."""

import numpy as np

from pareto.core.gram import Gram


def gram_of(g_r: np.ndarray, g_f: np.ndarray) -> Gram:
    return Gram(float(g_r @ g_r), float(g_r @ g_f), float(g_f @ g_f))


def norm(x: np.ndarray) -> float:
    return float(np.linalg.norm(x))


def unit(x: np.ndarray) -> np.ndarray:
    n = norm(x)
    return x / n if n > 0 else np.zeros_like(x)


def cos(a: np.ndarray, b: np.ndarray) -> float:
    na, nb = norm(a), norm(b)
    return float(np.clip(a @ b / (na * nb), -1.0, 1.0)) if na > 0 and nb > 0 else 0.0
