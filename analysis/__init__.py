"""Read-only analysis of sweep results: Pareto dominance and frontier tables, hypervolume,
Theorem-5 checks, direction agreement, the paper's tables, figures and an HTML report.

This package reads results (Parquet -> pandas) and computes tables; plotting (``analysis.plots``,
matplotlib, imported only when used) only draws them. It never imports torch or the ``pareto``
core. One module per concern: results, dominance, frontier, hypervolume, theorem5, agreement,
tables, figures, plots, interactive (plotly, optional), report (see docs/analysis.md).
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
