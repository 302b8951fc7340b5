from pathlib import Path

import pytest
from synthetic_sweep import write_sweep


@pytest.fixture
def sweep_dir(tmp_path) -> Path:
    """A small synthetic sweep folder (tests/analysis/synthetic_sweep.py)."""
    return write_sweep(tmp_path / "synthetic")
