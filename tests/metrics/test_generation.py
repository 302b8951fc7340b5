"""greedy_generate: batched == one at a time == an independent uncached greedy loop; EOS; stops.

Models: the embedded target (trained, word-level tokenizer) and randomly initialised tiny GPT-2
and Llama models with that tokenizer, their weights scaled up so that the next token depends
strongly on position and context (checked: left padding without a mask changes the outputs).
"""


import pytest
import torch

from pareto.metrics.generation import cut_at_stop_strings, encode_text, greedy_answers, greedy_generate


def random_model(kind: str, vocab_size: int, seed: int = 0, scale: float = 4.0):
    from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    if kind == "gpt2":
        model = GPT2LMHeadModel(GPT2Config(vocab_size=vocab_size, n_positions=96, n_embd=32,
                                           n_layer=2, n_head=2, bos_token_id=2, eos_token_id=3,
                                           pad_token_id=0))
    else:
        model = LlamaForCausalLM(LlamaConfig(vocab_size=vocab_size, hidden_size=32,
                                             intermediate_size=64, num_hidden_layers=2,
                                             num_attention_heads=4, num_key_value_heads=2,
                                             max_position_embeddings=96, bos_token_id=2,
                                             eos_token_id=3, pad_token_id=0))
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() > 1:
                p.mul_(scale)
    # nothing from the model's own generation config may leak in (greedy_generate replaces it)
    model.generation_config.do_sample = True
    model.generation_config.repetition_penalty = 3.0
    return model.eval()


def random_prompts(n: int, vocab_size: int, seed: int, lo: int = 1, hi: int = 20) -> list[list[int]]:
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(lo, hi, (n,), generator=g).tolist()
    return [[2] + torch.randint(4, vocab_size, (k,), generator=g).tolist() for k in lengths]


@torch.no_grad()
def reference_greedy(model, prompt: list[int], max_new_tokens: int, eos: set[int]) -> list[int]:
    """Uncached, unpadded: argmax of a full forward of the whole sequence at every step."""
    ids = list(prompt)
    new: list[int] = []
    for _ in range(max_new_tokens):
        logits = model(input_ids=torch.tensor([ids])).logits[0, -1]
        t = int(logits.argmax())
        if t in eos:
            break
        new.append(t)
        ids.append(t)
    return new


# ------------------------------------------------------------------------ batched == single


def test_embedded_batched_equals_one_at_a_time(target):
    model, tok, rows = target
    questions = [r["question"] for r in rows[::3]]  # 67 questions, answers of different lengths
    single = greedy_answers(model, tok, questions, max_new_tokens=24, batch_size=1)
    for batch_size in (32, 7):
        assert greedy_answers(model, tok, questions, max_new_tokens=24, batch_size=batch_size) == single
    # the memorised target answers its questions and stops at EOS (no run-on text)
    exact = sum(g == r["answer"] for g, r in zip(single, rows[::3]))
    assert exact >= 0.8 * len(questions)


@pytest.mark.parametrize("kind", ["gpt2", "llama"])
def test_random_model_batched_equals_single_and_reference(target, kind):
    _, tok, _ = target
    model = random_model(kind, len(tok))
    prompts = random_prompts(24, len(tok), seed=1)
    eos = {tok.eos_token_id}
    expected = [tok.decode(reference_greedy(model, p, 12, eos), skip_special_tokens=True)
                for p in prompts]
    single = greedy_generate(model, tok, prompts, max_new_tokens=12, batch_size=1)
    assert single == expected
    for batch_size in (24, 5):
        assert greedy_generate(model, tok, prompts, max_new_tokens=12, batch_size=batch_size) == expected
    assert len(set(expected)) > len(expected) // 2  # the outputs differ between prompts


@pytest.mark.parametrize("kind", ["gpt2", "llama"])
def test_the_random_models_would_expose_a_padding_bug(target, kind):
    """Left padding *without* the mask (so pads are attended, positions shifted) changes outputs:
    the equality above is therefore evidence that masks and position ids are handled."""
    _, tok, _ = target
    model = random_model(kind, len(tok))
    prompts = random_prompts(12, len(tok), seed=1)
    width = max(map(len, prompts))
    ids = torch.tensor([[0] * (width - len(p)) + p for p in prompts])
    with torch.no_grad():
        out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=6,
                             do_sample=False, repetition_penalty=1.0, pad_token_id=0,
                             eos_token_id=None)
    buggy = [out[i, width:].tolist() for i in range(len(prompts))]
    right = [reference_greedy(model, p, 6, set()) for p in prompts]
    assert sum(b != r for b, r in zip(buggy, right)) >= len(prompts) // 3


def test_string_prompts_get_bos_and_match_token_prompts(target):
    model, tok, rows = target
    texts = [f"Question: {r['question']}\nAnswer:" for r in rows[:9]]
    ids = [encode_text(tok, t) for t in texts]
    assert all(i[0] == tok.bos_token_id for i in ids)
    assert greedy_generate(model, tok, texts, max_new_tokens=20, batch_size=4) == \
        greedy_generate(model, tok, ids, max_new_tokens=20, batch_size=4)
    no_bos = encode_text(tok, texts[0], add_bos=False)
    assert no_bos == ids[0][1:]


def test_order_is_restored_and_edge_cases(target):
    model, tok, rows = target
    questions = [r["question"] for r in rows[:10]]
    forward = greedy_answers(model, tok, questions, max_new_tokens=16, batch_size=4)
    backward = greedy_answers(model, tok, questions[::-1], max_new_tokens=16, batch_size=4)
    assert backward == forward[::-1]
    assert greedy_generate(model, tok, [], max_new_tokens=5) == []
    assert greedy_generate(model, tok, ["Question"], max_new_tokens=0) == [""]
    with pytest.raises(ValueError, match="context length"):
        greedy_generate(model, tok, ["Question"], max_new_tokens=100)
    with pytest.raises(ValueError, match="empty"):
        greedy_generate(model, tok, [[]], max_new_tokens=3)
    with pytest.raises(TypeError):
        greedy_generate(model, tok, ["Question"], max_new_tokens=3, stop_strings="\n\n")


def test_training_mode_is_restored(target):
    model, tok, _ = target
    model.train()
    try:
        greedy_generate(model, tok, ["Question"], max_new_tokens=2)
        assert model.training
    finally:
        model.eval()


# ------------------------------------------------------------------------------------ EOS


def test_stops_at_eos_from_the_generation_config(target):
    """An id listed as EOS in model.generation_config ends the output (it and all after it are
    dropped), in a batch where the other rows keep going."""
    _, tok, _ = target
    model = random_model("gpt2", len(tok), seed=3)
    prompts = random_prompts(6, len(tok), seed=4)
    full = [reference_greedy(model, p, 10, {tok.eos_token_id}) for p in prompts]
    # a token that first appears mid-output (at step j >= 2) in some row
    row, j = next((i, j) for i, f in enumerate(full) for j in range(2, len(f)) if f[j] not in f[:j])
    stop_id = full[row][j]
    model.generation_config.eos_token_id = stop_id
    expected = [tok.decode(reference_greedy(model, p, 10, {tok.eos_token_id, stop_id}),
                           skip_special_tokens=True) for p in prompts]
    assert expected[row] == tok.decode(full[row][:j], skip_special_tokens=True)
    assert any(len(e.split()) == 10 for e in expected)  # other rows run to max_new_tokens
    assert greedy_generate(model, tok, prompts, max_new_tokens=10, batch_size=6) == expected
    assert greedy_generate(model, tok, prompts, max_new_tokens=10, batch_size=1) == expected


def test_eos_ends_generation_early(target):
    """The target's answers end with EOS: generation stops there, well before max_new_tokens."""
    model, tok, rows = target
    calls = []
    handle = model.register_forward_hook(lambda *a: calls.append(1))
    try:
        out = greedy_answers(model, tok, [rows[0]["question"]], max_new_tokens=30, batch_size=1)
    finally:
        handle.remove()
    n_answer = len(tok(" " + rows[0]["answer"], add_special_tokens=False)["input_ids"])
    assert out == [rows[0]["answer"]]
    assert len(calls) == n_answer + 1  # answer tokens, then EOS; not 30 steps


# ---------------------------------------------------------------------------- stop strings


def test_cut_at_stop_strings():
    assert cut_at_stop_strings("a b\n\nQuestion: c", ["\n\n", "Question"]) == "a b"
    assert cut_at_stop_strings("a Question b\n\nc", ["\n\n", "Question"]) == "a "
    assert cut_at_stop_strings("abc", ["x"]) == "abc"
    assert cut_at_stop_strings("abc", []) == "abc"
    assert cut_at_stop_strings("xabc", ["x"]) == ""


@pytest.mark.parametrize("kind", ["gpt2", "llama"])
def test_stop_strings_cut_and_batching_is_unchanged(target, kind):
    _, tok, _ = target
    model = random_model(kind, len(tok), seed=5)
    prompts = random_prompts(16, len(tok), seed=6)
    full = greedy_generate(model, tok, prompts, max_new_tokens=12, batch_size=16)
    # two stop strings: words first found in the middle of some outputs
    stops = []
    for f in full:
        words = f.split()
        if len(words) > 4 and words[3] not in " ".join(words[:3]) and words[3] not in stops:
            stops.append(words[3])
        if len(stops) == 2:
            break
    expected = [cut_at_stop_strings(f, stops) for f in full]
    assert sum(e != f for e, f in zip(expected, full)) >= 2
    assert not any(s in e for s in stops for e in expected)
    for batch_size in (16, 3, 1):
        assert greedy_generate(model, tok, prompts, max_new_tokens=12, batch_size=batch_size,
                               stop_strings=stops) == expected


def test_stop_strings_end_generation_early(target):
    model, tok, rows = target
    full = greedy_answers(model, tok, [rows[0]["question"]], max_new_tokens=30)[0]
    stop = full.split()[2]
    calls = []
    handle = model.register_forward_hook(lambda *a: calls.append(1))
    try:
        out = greedy_generate(model, tok, [encode_text(tok, f"Question: {rows[0]['question']}\nAnswer:")],
                              max_new_tokens=30, stop_strings=[stop])
    finally:
        handle.remove()
    assert out[0].strip() == full[:full.index(stop)].strip()
    assert len(calls) == 3  # the third word completes the stop string
