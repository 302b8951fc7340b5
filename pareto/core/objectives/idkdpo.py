"""IDK-DPO (TOFU, Maini et al. 2024, arXiv:2401.06121, as open-unlearning's IdkDPO: DPO of Rafailov
et al. 2023 with an "I don't know" answer preferred and the forget answer rejected):

    L_DPO = −(2/β)·E_F log σ(β·[(log π_θ(a|x) − log π_ref(a|x)) − (log π_θ(y|x) − log π_ref(y|x))])

with a the IDK answer of forget example (x, y) (`pareto.data.idk.idk_answer(index, seed)`, fixed
for the run, encoded with the same prompt: `Task.with_answers`), log-probabilities summed over
answer tokens (EOS included) and π_ref the model before unlearning. Both reference
log-probabilities are computed once per forget example in `prepare` and cached by index, as npo
does (no second model). pareto maximises L_F = −L_DPO. Language models only.

Checked against open-unlearning `src/trainer/utils.py` `compute_dpo_loss` (summed NLL per
sequence, the −2/β scaling) and `src/trainer/unlearn/dpo.py` with `configs/trainer/DPO.yaml`
(β = 0.1) on `TOFU_QA_forget_idk` (`configs/experiment/unlearn/tofu/idk.yaml`: their "DPO" is
this one). Departures: the IDK answer per example is fixed (theirs is redrawn each time an
example is loaded, its reference log-probability recomputed), and pareto's own IDK list.
"""

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from pareto.core.objectives._base import ForgetObjective, register_objective


@register_objective("idkdpo")
@dataclass
class IdkDPO(ForgetObjective):
    beta: float = 0.1
    seed: int = 0
    positive_loss = True
    language_models_only = "it scores another answer to each forget question"
    _ref_win: dict = field(default_factory=dict, init=False, repr=False)
    _ref_lose: dict = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        if not self.beta > 0:
            raise ValueError(f"beta must be > 0, got {self.beta}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise ValueError(f"seed must be an integer, got {self.seed!r}")

    def idk_batch(self, batch: dict) -> dict:
        from pareto.data.idk import idk_answer

        task = self.task
        return task.with_answers(batch, [idk_answer(i, self.seed) for i in batch["index"].tolist()])

    @torch.no_grad()
    def prepare(self, model, forget_batches) -> None:
        was_training = model.training
        model.eval()
        for batch in forget_batches:
            win = self.task.logprob(model, self.idk_batch(batch)).tolist()
            lose = self.task.logprob(model, batch).tolist()
            for i, w, lo in zip(batch["index"].tolist(), win, lose):
                self._ref_win[i], self._ref_lose[i] = w, lo
        model.train(was_training)

    def value(self, model, batch):
        win_batch = self.idk_batch(batch)
        try:
            ref_w = torch.tensor([self._ref_win[i] for i in batch["index"].tolist()], dtype=torch.float64)
            ref_l = torch.tensor([self._ref_lose[i] for i in batch["index"].tolist()], dtype=torch.float64)
        except KeyError as exc:
            raise RuntimeError(f"idkdpo: no reference log-probability for forget example {exc}; "
                               "prepare() must see every forget example") from None
        win, lose = self.task.logprob(model, win_batch), self.task.logprob(model, batch)
        margin = (win - ref_w.to(win)) - (lose - ref_l.to(lose))
        loss = -(2.0 / self.beta) * F.logsigmoid(self.beta * margin).mean()
        return -loss
