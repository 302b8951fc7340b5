"""Ray Tune trainables that wrap the pareto core."""
