import os
from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def embedded_target() -> Path:
    """The default embedded target, built once per machine (cached by content hash)."""
    from pareto.models.embedded import EmbeddedConfig, build_embedded_target

    return Path(build_embedded_target(EmbeddedConfig(), log=lambda s: None))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data not present at {SHARED_DATA}")
    return SHARED_DATA


os.environ.setdefault("RAY_DEDUP_LOGS", "0")
