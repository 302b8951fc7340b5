"""The examples in analysis/'s docstrings run and give what they say."""

import doctest
import importlib

import pytest


@pytest.mark.parametrize("name", ["results", "dominance", "frontier", "hypervolume", "theorem5", "agreement", "paths",
                                  "tables", "attainment", "budget"])
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(f"analysis.{name}"))
    assert result.failed == 0
