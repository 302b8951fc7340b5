"""Robustness of the unlearning: the forget metrics again, after an attack on a copy of the final model.

    eval:
      robustness: {relearn_steps: 10, relearn_lr: 1.0e-4, quantize: int8, paraphrase: true}

Computed once, after a trial's final evaluation (`trainables/unlearn.py`), on copies of its model;
the trial's model and its other results do not change. Every key is optional; what is absent is
not computed. Definitions (docs/robustness.md):

  the split   the forget rows are split once, by a fixed seed (SPLIT_SEED, the same for every
              trial and seed of a sweep): ⌊n/2⌋ rows chosen at random are the *relearn half*, the
              rest the *evaluated half*, each in the data's order. Every robustness column is
              computed on the evaluated half, and `half_<m>` is the plain metric m there, so
              `relearn_rouge_f − half_rouge_f` is the attack's effect on the same items.
  paraphrase  `para_<m>`: m on the evaluated half with each question replaced by its
              `paraphrased_question` (TOFU's *_perturbed rows and the embedded data carry one),
              scored against the same answer (and paraphrased / perturbed answers, for truth ratios).
  quantize    `quant_<m>`: a copy with every Linear / Conv1D weight quantised-dequantised per output
              channel, symmetric round-to-nearest int8 or int4 (pareto.metrics.quantize); the
              forget metrics on the evaluated half and the retain metrics on the usual retain items.
  relearn     `relearn_<m>`: a copy fine-tuned for `relearn_steps` Adam steps at `relearn_lr` on the
              relearn half (answer-token cross-entropy, the unlearning's forget batch size, batches
              drawn with SPLIT_SEED), then m on the evaluated half (never trained on). A list of step
              counts is a relearning curve: one run to the largest, m measured on the way at each;
              the column holds the largest's value, its settings' "curve" every point's, from K = 0
              (the model as it is).

m runs over the forget metrics of FORGET_METRICS (and, for quantize, the retain metrics of
RETAIN_METRICS) that the sweep's eval.metrics asks for; each column keeps m's direction.
"""

from __future__ import annotations

import copy
import random
from typing import Callable

import torch

from pareto.metrics._base import METRICS, EvalContext, MetricValue, item_id

KEYS = ("relearn_steps", "relearn_lr", "quantize", "paraphrase")
FORGET_METRICS = ("rouge_f", "loss_f_eval", "prob_f", "truth_ratio_f")
RETAIN_METRICS = ("utility_r", "loss_r_eval", "prob_r", "truth_ratio_r")
SPLIT_SEED = 0
DEFAULT_RELEARN_LR = 1e-4


def _columns() -> dict[str, str]:
    """Every robustness column and its direction (that of the metric it repeats)."""
    out = {}
    for prefix in ("half", "para", "relearn", "quant"):
        for m in FORGET_METRICS:
            out[f"{prefix}_{m}"] = METRICS.get(m).direction
    for m in RETAIN_METRICS:
        out[f"quant_{m}"] = METRICS.get(m).direction
    return out


#: column → direction, declared once; the results schema adds them to the registry's metrics.
ROBUSTNESS_METRICS: dict[str, str] = _columns()


def robustness_columns(cfg, metrics) -> list[str]:
    """The columns `cfg` (eval.robustness) computes when eval.metrics is `metrics`."""
    if not isinstance(cfg, dict) or not cfg:
        return []
    forget = [m for m in FORGET_METRICS if m in metrics]
    out = [f"half_{m}" for m in forget]
    out += [f"para_{m}" for m in forget] if cfg.get("paraphrase") else []
    out += [f"quant_{m}" for m in (*forget, *(m for m in RETAIN_METRICS if m in metrics))] if cfg.get("quantize") else []
    out += [f"relearn_{m}" for m in forget] if cfg.get("relearn_steps") is not None else []
    return out


def check_robustness(cfg, add, metrics=None) -> None:
    """eval.robustness: a mapping of KEYS, each typed, and eval.metrics (`metrics`) with a forget metric
    of FORGET_METRICS for it to repeat; every problem reported."""
    where = ("eval", "robustness")
    if cfg is None:
        return
    if not isinstance(cfg, dict):
        add(where, f"expected a mapping of {', '.join(KEYS)}, got {cfg!r}")
        return
    from pareto._registry import did_you_mean

    for key in cfg:
        if key not in KEYS:
            add(where + (key,), f"unknown key {key!r}.{did_you_mean(str(key), list(KEYS))} Valid keys: {', '.join(KEYS)}")
    steps = cfg.get("relearn_steps")
    if steps is not None and relearn_points(steps) is None:
        add(where + ("relearn_steps",), f"must be an integer ≥ 0 (fine-tuning steps on the relearn half) or a "
                                        f"non-empty list of them (a relearning curve), got {steps!r}")
    lr = cfg.get("relearn_lr")
    if lr is not None:
        if not isinstance(lr, (int, float)) or isinstance(lr, bool) or not lr > 0:
            add(where + ("relearn_lr",), f"must be a number > 0, got {lr!r}")
        elif steps is None:
            add(where + ("relearn_lr",), "relearn_lr is set but relearn_steps is not: set relearn_steps (≥ 0) too")
    q = cfg.get("quantize")
    if q is not None and q not in ("int8", "int4"):
        add(where + ("quantize",), f"must be int8 or int4 (or left out), got {q!r}")
    p = cfg.get("paraphrase")
    if p is not None and not isinstance(p, bool):
        add(where + ("paraphrase",), f"must be true or false, got {p!r}")
    if cfg and metrics is not None and not any(m in metrics for m in FORGET_METRICS):
        add(where, f"repeats the forget metrics {', '.join(FORGET_METRICS)} after each attack; eval.metrics "
                   f"({', '.join(metrics)}) has none of them")


def relearn_points(steps) -> list[int] | None:
    """`relearn_steps` as the ascending, distinct step counts it asks for (an integer K: [K]; a list:
    the curve's points); None when it is neither an integer ≥ 0 nor a non-empty list of them."""
    ok = lambda k: isinstance(k, int) and not isinstance(k, bool) and k >= 0  # noqa: E731
    if ok(steps):
        return [steps]
    if isinstance(steps, list) and steps and all(ok(k) for k in steps):
        return sorted(set(steps))
    return None


def split_forget(rows: list[dict], seed: int = SPLIT_SEED) -> tuple[list[dict], list[dict]]:
    """(relearn half, evaluated half) of the forget rows: ⌊n/2⌋ rows drawn by `seed` relearn, the
    others are evaluated; both keep the rows' order. Disjoint, and together every row. Each row (a
    copy) keeps its `item_id`, or gets the one the whole split gives it ("forget:<index>")."""
    if len(rows) < 2:
        raise ValueError(f"eval.robustness splits the forget set in two halves; it has {len(rows)} row(s)")
    chosen = set(random.Random(seed).sample(range(len(rows)), len(rows) // 2))
    rows = [{**r, "item_id": item_id(r, i, "forget")} for i, r in enumerate(rows)]
    return ([r for i, r in enumerate(rows) if i in chosen], [r for i, r in enumerate(rows) if i not in chosen])


def paraphrased(rows: list[dict]) -> list[dict]:
    """Copies of `rows` whose question is their `paraphrased_question` (item ids kept)."""
    missing = [i for i, r in enumerate(rows) if not isinstance(r.get("paraphrased_question"), str)]
    if missing:
        raise ValueError(f"eval.robustness.paraphrase needs a `paraphrased_question` in every forget row; "
                         f"{len(missing)} of {len(rows)} have none (TOFU: forget*_perturbed rows; custom data: "
                         f"add the field, or drop paraphrase)")
    return [{**r, "question": r["paraphrased_question"], "item_id": item_id(r, i, "forget")}
            for i, r in enumerate(rows)]


def relearn(model, tokenizer, rows: list[dict], settings, steps: int, lr: float, batch_size: int,
            seed: int = SPLIT_SEED, after: Callable[[int], None] | None = None) -> None:
    """`steps` Adam steps at `lr` on the answer-token cross-entropy of `rows`, in place (train mode);
    `after(k)`, when given, is called after step k = 1 … steps (in eval mode, then back to training):
    one run of K steps passes through every shorter run's weights."""
    from pareto.data.encode import encode_rows
    from pareto.data.qa import Batches, to_device
    from pareto.lm import LM_TASK

    if steps == 0:
        return
    examples = encode_rows(tokenizer, rows, max_length=settings.max_length or 128, template=settings.template,
                           add_bos=settings.add_bos)
    batches = Batches(examples, batch_size, tokenizer.pad_token_id, seed)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=lr)
    device = next(model.parameters()).device
    was_training = model.training
    model.train()
    torch.manual_seed(seed)  # dropout, if the model has any
    try:
        for k in range(1, steps + 1):
            batch = to_device(batches.next(), device)
            optimizer.zero_grad(set_to_none=True)
            LM_TASK.loss(model, {key: v for key, v in batch.items() if key != "index"}).backward()
            optimizer.step()
            if after is not None:
                model.eval()
                with torch.random.fork_rng(devices=[]):  # what `after` draws leaves the relearning as it is
                    after(k)
                model.train()
    finally:
        model.train(was_training)
        optimizer.zero_grad(set_to_none=True)


def _evaluate(model, tokenizer, splits: dict, settings, names, reference) -> dict[str, MetricValue]:
    from pareto.metrics import evaluate

    return evaluate(EvalContext(model, tokenizer, splits, settings, reference=reference), names)


def robustness_metrics(model, tokenizer, splits: dict, settings, metrics, cfg: dict, batch_size: int,
                       reference: dict | None = None) -> dict[str, MetricValue]:
    """The robustness columns of `cfg` (eval.robustness) for `model`, which is not modified: each
    attack runs on its own copy. `splits`: the trial's evaluation splits (forget, retain, …);
    `metrics`: the sweep's eval.metrics. Returns column → MetricValue."""
    if not cfg:
        return {}
    if tokenizer is None:
        raise ValueError("eval.robustness needs a language model on question/answer data (no tokenizer here)")
    forget_names = [m for m in FORGET_METRICS if m in metrics]
    retain_names = [m for m in RETAIN_METRICS if m in metrics]
    if not forget_names:
        raise ValueError(f"eval.robustness repeats the forget metrics {', '.join(FORGET_METRICS)}; eval.metrics "
                         f"asks for none of them")
    relearn_rows, eval_rows = split_forget(splits["forget"])
    reference = reference or {}
    split_info = {"split_seed": SPLIT_SEED, "n_evaluated": len(eval_rows), "n_relearn": len(relearn_rows)}
    out: dict[str, MetricValue] = {}

    def add(prefix: str, values: dict[str, MetricValue], attack: dict) -> None:
        for name, v in values.items():
            out[f"{prefix}_{name}"] = MetricValue(v.value, v.items, {**v.settings, **split_info, **attack})

    evaluated = {**splits, "forget": eval_rows}
    add("half", _evaluate(model, tokenizer, evaluated, settings, forget_names, reference), {"attack": "none"})
    if cfg.get("paraphrase"):
        para = {**splits, "forget": paraphrased(eval_rows)}
        add("para", _evaluate(model, tokenizer, para, settings, forget_names, reference),
            {"attack": "paraphrased questions"})
    if cfg.get("quantize"):
        from pareto.metrics.quantize import quantize_model

        copy_ = copy.deepcopy(model)
        n = quantize_model(copy_, cfg["quantize"])
        add("quant", _evaluate(copy_, tokenizer, evaluated, settings, forget_names + retain_names, reference),
            {"attack": f"{cfg['quantize']} per-channel symmetric RTN", "n_weights": n})
        del copy_
    if cfg.get("relearn_steps") is not None:
        lr = float(cfg.get("relearn_lr") or DEFAULT_RELEARN_LR)
        points = relearn_points(cfg["relearn_steps"])
        *earlier, last = points
        curve = {0: {m: out[f"half_{m}"].value for m in forget_names}}  # a curve starts from the model as it is
        copy_ = copy.deepcopy(model)

        def measure(k: int) -> None:  # the curve's earlier points, on the way to the last
            if k in earlier:
                curve[k] = {m: v.value for m, v in _evaluate(copy_, tokenizer, evaluated, settings, forget_names,
                                                                reference).items()}

        relearn(copy_, tokenizer, relearn_rows, settings, last, lr, batch_size, after=measure if earlier else None)
        attack = {"attack": "relearning", "relearn_steps": last, "relearn_lr": lr, "optimizer": "adam",
                  "batch_size": batch_size}
        final = _evaluate(copy_, tokenizer, evaluated, settings, forget_names, reference)
        if earlier:  # relearn_<m>.settings["curve"]: {K: m after K steps} at every point, the last included
            curve[last] = {m: v.value for m, v in final.items()}
            for m in forget_names:
                final[m] = MetricValue(final[m].value, final[m].items,
                                       {**final[m].settings, "curve": {str(k): curve[k][m] for k in sorted(curve)}})
        add("relearn", final, attack)
        del copy_
    return out
