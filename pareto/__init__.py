"""pareto: machine unlearning as two-task optimisation, and the whole forget/retain frontier."""

__version__ = "0.1.0"
