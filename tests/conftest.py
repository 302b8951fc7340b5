import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def embedded_target() -> Path:
    """The default embedded target, built once per machine (cached by content hash)."""
    from pareto.models.embedded import EmbeddedConfig, build_embedded_target

    return Path(build_embedded_target(EmbeddedConfig(), log=lambda s: None))


@pytest.fixture(scope="session")
def real_data():
    """The one way a test reaches the real data (TOFU, MUSE-News, the CIFAR-10 subset):
    `real_data("tofu")`, `real_data("muse_news")`, `real_data("cifar10_subset.tar")`, from the folder
    $PARETO_TEST_DATA if set, else ../shared/data beside the repository. A test asking for one that
    is absent is skipped, saying where it looked; `real_data(name, required=False)` is None then."""
    root = Path(os.environ["PARETO_TEST_DATA"]) if os.environ.get("PARETO_TEST_DATA") else ROOT.parent / "shared" / "data"

    def get(name: str, required: bool = True) -> Path | None:
        path = root / name
        if not path.exists():
            if not required:
                return None
            pytest.skip(f"real data {name!r} not present at {path} "
                        "(set PARETO_TEST_DATA to a folder holding tofu/, muse_news/, cifar10_subset.tar)")
        return path

    return get


os.environ.setdefault("RAY_DEDUP_LOGS", "0")
