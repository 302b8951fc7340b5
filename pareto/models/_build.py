"""Pieces shared by the target builders (pareto.models.embedded, pareto.models.target).

- `build_tokenizer`: a word-level tokenizer on the words of some rows (the tiny models);
- `train_on_answers`: Adam(W) on the answer-only CE (`pareto.lm.answer_ce`), a fixed number of
  epochs or until greedy next-token accuracy on the answer tokens reaches a target;
- `answer_accuracy` / `answer_metrics`: that accuracy and the answer CE, teacher forced;
- `load_target`: (model, tokenizer, manifest) of any built target directory.

The cache and atomic publishing are in pareto.models.cache, the build's clock in pareto.models.clock.
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

import torch

from pareto.data.qa import IGNORE, Encoded, collate, format_prompt
from pareto.lm import answer_ce
from pareto.models.clock import BuildClock

SPECIAL_TOKENS = ("<pad>", "<unk>", "<s>", "</s>")  # ids 0..3, in this order
#: Fields whose words a word-level tokenizer learns: QA pairs (TOFU), texts (MUSE-News articles,
#: privleak texts) and verbmem items (prompt, gt).
TEXT_FIELDS = ("question", "answer", "paraphrased_answer", "paraphrased_question", "text", "prompt", "gt")

Log = Callable[[str], None]


# ----------------------------------------------------------------------------------------------
# word-level tokenizer


def _pre_tokenizer():
    from tokenizers import Regex, pre_tokenizers

    # words on whitespace, then the possessive 's and every other punctuation character on its
    # own: "Jardine's father?" -> Jardine | 's | father | ?
    return pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(),
                                    pre_tokenizers.Split(Regex(r"'s\b|[^\w\s]"), "isolated")])


def _row_texts(rows: Iterable[dict]) -> Iterator[str]:
    for r in rows:
        for f in TEXT_FIELDS:
            if isinstance(r.get(f), str):
                yield r[f]
        yield from r.get("perturbed_answer") or []


def build_tokenizer(rows: Sequence[dict], extra_texts: Iterable[str] = ()):
    """Word-level `PreTrainedTokenizerFast` whose vocabulary is every word of `rows` (questions,
    answers, paraphrases, perturbed answers, texts, verbmem prompts and ground truths), of
    `extra_texts` and of the plain QA prompt template.

    Ids: <pad>=0, <unk>=1, <s>=2, </s>=3, then the words sorted. Decoding rejoins tokens with
    single spaces and drops the space before . , ? ! and 's (the WordPiece decoder's clean-up),
    which reproduces the synthetic data exactly; other text may come back spaced differently
    ("Question : ...", "don ' t", "economist ; his").
    """
    from tokenizers import Tokenizer, decoders, models
    from transformers import PreTrainedTokenizerFast

    pre = _pre_tokenizer()
    words: set[str] = set()
    texts = [format_prompt("")]  # "Question", ":", "Answer"
    for text in [*texts, *_row_texts(rows), *extra_texts]:
        words.update(w for w, _ in pre.pre_tokenize_str(text))
    vocab = {tok: i for i, tok in enumerate([*SPECIAL_TOKENS,
                                             *sorted(words - set(SPECIAL_TOKENS))])}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre
    tok.decoder = decoders.WordPiece(prefix="##", cleanup=True)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>",
        unk_token="<unk>", clean_up_tokenization_spaces=False,
    )


def new_tiny_gpt2(tokenizer, *, n_layer: int, n_embd: int, n_head: int, n_positions: int):
    """A GPT-2 from config (dropout 0) over `tokenizer`'s vocabulary, special ids set."""
    from transformers import GPT2Config, GPT2LMHeadModel

    config = GPT2Config(
        vocab_size=len(tokenizer), n_positions=n_positions, n_embd=n_embd,
        n_layer=n_layer, n_head=n_head, resid_pdrop=0.0, embd_pdrop=0.0,
        attn_pdrop=0.0, summary_first_dropout=0.0, bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
    )
    model = GPT2LMHeadModel(config)
    model.generation_config.bos_token_id = tokenizer.bos_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    return model


# ----------------------------------------------------------------------------------------------
# accuracy and training


@torch.no_grad()
def _answer_counts(model, batch: dict) -> tuple[int, int, float]:
    """(correct greedy next tokens, answer tokens, summed CE) over the answer tokens of `batch`."""
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    logits, targets = logits[:, :-1].float(), batch["labels"][:, 1:]
    mask = targets != IGNORE
    correct = (logits.argmax(-1) == targets) & mask
    ce = torch.nn.functional.cross_entropy(logits[mask], targets[mask], reduction="sum")
    return int(correct.sum().item()), int(mask.sum().item()), float(ce.item())


@torch.no_grad()
def answer_accuracy(model, batch: dict) -> tuple[float, float]:
    """(greedy next-token accuracy, mean CE) over the answer tokens of `batch` (teacher forced)."""
    was_training = model.training
    model.eval()
    try:
        correct, total, ce = _answer_counts(model, batch)
    finally:
        model.train(was_training)
    return correct / max(total, 1), ce / max(total, 1)


@torch.no_grad()
def answer_metrics(model, examples: Sequence[Encoded], pad_id: int, *,
                   batch_size: int = 256) -> tuple[float, float]:
    """`answer_accuracy` over `examples` in batches of similar length (less padding): the
    accuracy is the same as in one batch; the CE differs from it by float rounding at most."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    order = sorted(range(len(examples)), key=lambda i: len(examples[i].input_ids))
    correct = total = 0
    ce = 0.0
    try:
        for start in range(0, len(order), batch_size):
            batch = collate([examples[i] for i in order[start:start + batch_size]], pad_id)
            c, t, s = _answer_counts(model, {k: v.to(device) for k, v in batch.items()})
            correct, total, ce = correct + c, total + t, ce + s
    finally:
        model.train(was_training)
    return correct / max(total, 1), ce / max(total, 1)


OPTIMIZERS = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW}
LR_SCHEDULES = ("constant", "plateau")


def make_optimizer(name: str, params, lr: float, weight_decay: float):
    if name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}; available: {', '.join(OPTIMIZERS)}")
    return OPTIMIZERS[name](params, lr=lr, weight_decay=weight_decay)


def _batch_loss_backward(model, examples: Sequence[Encoded], pad_id: int, device,
                         micro_batch_size: int | None) -> float:
    """backward() of the answer CE of the whole batch (mean over its answer tokens), in
    micro-batches when asked: each micro-batch's CE is weighted by its share of the answer
    tokens, so the gradient is the full batch's up to float summation order."""
    if micro_batch_size is None or micro_batch_size >= len(examples):
        batch = {k: v.to(device) for k, v in collate(examples, pad_id).items()}
        loss = answer_ce(model, batch)
        loss.backward()
        return loss.item()
    n_tokens = sum(sum(1 for t in e.labels[1:] if t != IGNORE) for e in examples)
    total = 0.0
    for start in range(0, len(examples), micro_batch_size):
        part = examples[start:start + micro_batch_size]
        share = sum(sum(1 for t in e.labels[1:] if t != IGNORE) for e in part) / max(n_tokens, 1)
        batch = {k: v.to(device) for k, v in collate(part, pad_id).items()}
        loss = answer_ce(model, batch) * share
        loss.backward()
        total += loss.item()
    return total


def epoch_batches(lengths: Sequence[int], batch_size: int, generator: torch.Generator,
                  group_by_length: bool = False) -> list[list[int]]:
    """One epoch's batches of example indices: a seeded random permutation cut into batches.

    With `group_by_length`, the permutation is cut into mega-batches of 16 batches, each sorted
    by length (stable: equal lengths keep their random order) and cut into batches, and the
    batches are shuffled: every example still once per epoch, far less padding (on the last 40
    TOFU authors 1.06x the real tokens instead of 1.49x), the way HF's group_by_length does it.
    """
    n = len(lengths)
    order = torch.randperm(n, generator=generator).tolist()
    if not group_by_length:
        return [order[s:s + batch_size] for s in range(0, n, batch_size)]
    mega = 16 * batch_size
    batches: list[list[int]] = []
    for s in range(0, n, mega):
        chunk = sorted(order[s:s + mega], key=lambda i: lengths[i])
        batches += [chunk[j:j + batch_size] for j in range(0, len(chunk), batch_size)]
    return [batches[i] for i in torch.randperm(len(batches), generator=generator).tolist()]


def train_on_answers(model, examples: Sequence[Encoded], *, pad_id: int, optimizer: str,
                     lr: float, weight_decay: float, batch_size: int, seed: int, epochs: int,
                     target_accuracy: float | None, log: Log, tag: str,
                     group_by_length: bool = False, lr_schedule: str = "constant",
                     check_below_loss: float | None = None,
                     eval_batch_size: int = 256, micro_batch_size: int | None = None,
                     log_every: int = 10) -> dict:
    """Adam(W) on the answer-only CE of `examples`, reshuffled every epoch (seeded).

    With `target_accuracy`: the teacher-forced greedy accuracy on the answer tokens of all
    `examples` is measured after every epoch and training stops once it reaches the target
    ("until memorised"), after `epochs` at most. `check_below_loss` skips that measurement
    (a forward pass over every example) after epochs whose mean batch loss is not below it;
    a model that predicts 99 % of the answer tokens has a loss far below 1 nat, so a threshold
    of 1.0 only saves time. Without a target: exactly `epochs` epochs, measured at the end.
    `lr_schedule`: "constant", or "plateau": halve the learning rate after two epochs in a row
    whose mean batch loss is not below the best so far (torch's ReduceLROnPlateau, patience 1);
    a constant rate high enough to memorise quickly makes Adam drift away again near the end.
    `log` gets the early estimate of the build's time and, on every logged epoch line, the
    seconds per epoch and the ETA (`BuildClock`); timing reads the clock only, so the results do
    not depend on it.
    Returns epochs, final_train_loss (answer CE after training, eval mode), answer_accuracy,
    reached_target (None without a target) and the per-epoch history.
    """
    device = next(model.parameters()).device
    opt = make_optimizer(optimizer, model.parameters(), lr, weight_decay)
    if lr_schedule not in LR_SCHEDULES:
        raise ValueError(f"unknown lr_schedule {lr_schedule!r}; available: "
                         f"{', '.join(LR_SCHEDULES)}")
    plateau = (torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode="min", factor=0.5, patience=1)
               if lr_schedule == "plateau" else None)
    shuffle = torch.Generator().manual_seed(seed)
    lengths = [len(e.input_ids) for e in examples]
    history: list[dict] = []
    model.train()
    acc = ce = float("nan")
    epoch = 0
    clock = BuildClock(epochs, target_accuracy is not None, log, tag)
    for epoch in range(1, epochs + 1):
        losses = []
        batches = epoch_batches(lengths, batch_size, shuffle, group_by_length)
        if epoch == 1:
            clock.first_epoch(batches, lengths)
        for idx in batches:
            opt.zero_grad(set_to_none=True)
            losses.append(_batch_loss_backward(model, [examples[i] for i in idx], pad_id, device,
                                               micro_batch_size))
            opt.step()
            if epoch == 1:
                clock.batch_done()
        row = {"epoch": epoch, "mean_batch_loss": sum(losses) / len(losses),
               "lr": opt.param_groups[0]["lr"]}
        if plateau is not None:
            plateau.step(row["mean_batch_loss"])
        last = epoch == epochs
        logged = epoch == 1 or epoch % log_every == 0 or last
        check = target_accuracy is not None and (
            check_below_loss is None or row["mean_batch_loss"] < check_below_loss or logged)
        if check or last:
            acc, ce = answer_metrics(model, examples, pad_id, batch_size=eval_batch_size)
            row.update(answer_accuracy=acc, answer_loss=ce)
        history.append(row)
        done = check and acc >= target_accuracy
        clock.epoch_done()
        if done or logged:
            note = clock.epoch_note(epoch, finished=done or last)
            if "answer_accuracy" in row:
                log(f"[{tag}] epoch {epoch:4d}  answer loss {ce:.4f}  answer accuracy {acc:.4f}{note}")
            else:
                log(f"[{tag}] epoch {epoch:4d}  mean batch loss {row['mean_batch_loss']:.4f}{note}")
        if done:
            break
    model.eval()
    return {"epochs": epoch, "final_train_loss": ce, "answer_accuracy": acc,
            "reached_target": None if target_accuracy is None else acc >= target_accuracy,
            "history": history}


@contextmanager
def isolated_torch_state(num_threads: int):
    """Set intra-op threads and fork the CPU (and CUDA) RNG; restore both afterwards."""
    threads = torch.get_num_threads()
    torch.set_num_threads(num_threads)
    devices = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
    try:
        with torch.random.fork_rng(devices=devices):
            yield
    finally:
        torch.set_num_threads(threads)


@contextmanager
def quiet_progress_bars():
    """No transformers progress bars (save/load of a tiny model); the setting is restored."""
    from transformers.utils import logging as hf_logging

    enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if enabled:
            hf_logging.enable_progress_bar()



def load_target(path: str | Path):
    """(model in eval mode, tokenizer, manifest) of a target directory (any builder's)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedTokenizerFast

    path = Path(path)
    manifest_path = path / "manifest.json"
    if not manifest_path.is_file():
        raise FileNotFoundError(f"{path} is not a complete target (no manifest.json)")
    manifest = json.loads(manifest_path.read_text())
    config = manifest.get("config") or {}
    word_level = manifest.get("kind") == "embedded" or config.get("base", "tiny") == "tiny"
    remote = dict(trust_remote_code=True) if config.get("trust_remote_code") else {}
    with quiet_progress_bars():
        model = AutoModelForCausalLM.from_pretrained(path, use_safetensors=True, **remote)
        if word_level:
            tokenizer = PreTrainedTokenizerFast.from_pretrained(path)
        else:
            tokenizer = AutoTokenizer.from_pretrained(path, **remote)
    model.eval()
    return model, tokenizer, manifest
