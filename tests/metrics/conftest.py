import json
from pathlib import Path

import pytest
import torch

from pareto.models.embedded import load_target


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    # tiny models: per-op overhead dominates, and a second thread on a busy machine is slower
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def target(embedded_target):
    """(model, tokenizer, every QA row) of the embedded target."""
    model, tokenizer, _ = load_target(embedded_target)
    rows = [json.loads(line) for name in ("forget.jsonl", "retain.jsonl")
            for line in (Path(embedded_target) / name).read_text().splitlines()]
    return model, tokenizer, rows
