"""Read-only analysis of sweep results: Pareto dominance and frontier tables.

This package reads results (Parquet -> pandas) and computes tables; plotting only draws them.
It depends on numpy, pandas and pyarrow only: never on torch or the ``pareto`` core.
"""

from analysis.dominance import DIRECTIONS, dominates, dominators, front_ranks, non_dominated_mask
from analysis.frontier import FORMATS, FrontierTable, format_table, frontier_table

__all__ = [
    "DIRECTIONS",
    "FORMATS",
    "FrontierTable",
    "dominates",
    "dominators",
    "format_table",
    "front_ranks",
    "frontier_table",
    "non_dominated_mask",
]
