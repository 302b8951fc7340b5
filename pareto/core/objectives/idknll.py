"""IDK-NLL (the "I don't know" fine-tuning of TOFU's preference-optimisation baseline; Maini et al.
2024, arXiv:2401.06121, Sec. 5): replace each forget answer by an "I don't know"-style answer and
minimise its negative log-likelihood:

    L_IDK = (1/N)·Σ_{i,t} −log π_θ(a_i,t | x_i, a_i,<t)

with a_i the IDK answer of forget example i and N the IDK answer tokens of the batch (EOS
included), encoded as the forget answer was (same prompt, `Task.with_answers`). pareto maximises
L_F = −L_IDK. Language models only.

The IDK answers are pareto's own list (`pareto/data/idk_answers.txt`, 100 lines); example i gets
`pareto.data.idk.idk_answer(i, seed)`, fixed for the whole run (open-unlearning's
`QAwithIdkDataset` draws a new one each time an example is loaded).

Checked against open-unlearning, which has no IDK-NLL trainer: the IDK batch against
`src/data/qa.py` `QAwithIdkDataset` (same question, the IDK answer encoded as a QA answer), the
loss against `compute_batch_nll`/the Hugging Face token-mean CE. Departures: the fixed choice
above, and pareto's IDK list instead of TOFU's idontknow.jsonl.
"""

from dataclasses import dataclass

from pareto.core.objectives._base import ForgetObjective, register_objective


@register_objective("idknll")
@dataclass
class IdkNLL(ForgetObjective):
    seed: int = 0
    positive_loss = True
    language_models_only = "it scores another answer to each forget question"

    def __post_init__(self) -> None:
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise ValueError(f"seed must be an integer, got {self.seed!r}")

    def idk_batch(self, batch: dict) -> dict:
        from pareto.data.idk import idk_answer

        task = self.task
        return task.with_answers(batch, [idk_answer(i, self.seed) for i in batch["index"].tolist()])

    def value(self, model, batch):
        return -self.task.loss(model, self.idk_batch(batch))

    def normaliser(self, batch):
        return self.task.normaliser(self.idk_batch(batch))
