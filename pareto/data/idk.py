"""The project's "I don't know" answers (idk_answers.txt, one a line, written for pareto) and the
deterministic choice of one per forget example: what idknll and idkdpo teach the model to say."""

from __future__ import annotations

import random
from functools import lru_cache
from importlib import resources


@lru_cache(maxsize=1)
def idk_answers() -> tuple[str, ...]:
    text = resources.files("pareto.data").joinpath("idk_answers.txt").read_text(encoding="utf-8")
    return tuple(line.strip() for line in text.splitlines() if line.strip())


def idk_answer(index: int, seed: int = 0) -> str:
    """The answer of forget example `index` under `seed`: the same on every call, every rank and
    every run (Python's seeded `random.Random`, not the global generator)."""
    answers = idk_answers()
    return answers[random.Random(f"idk:{int(seed)}:{int(index)}").randrange(len(answers))]
