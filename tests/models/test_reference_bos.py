"""data.add_bos left out: BOS exactly when the field's reference code would put one there — when
the base's tokenizer adds it itself (Llama yes, GPT-2 and Phi no); pareto's own tiny tokenizer keeps
BOS. Local tokenizers built here (no hub): one whose post-processor adds BOS, one that adds none."""

import pytest
from tokenizers import Tokenizer, models, pre_tokenizers, processors
from transformers import PreTrainedTokenizerFast

from pareto.models.target import TargetConfig
from pareto.models.target_base import reference_bos
from pareto.prepare import target_config
from pareto.spec import parse_spec


def _tokenizer_dir(path, adds_bos: bool):
    vocab = {"<s>": 0, "</s>": 1, "<unk>": 2, "a": 3, "b": 4}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    if adds_bos:  # as Llama's tokenizers do
        tok.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 0)])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>")
    fast.save_pretrained(path)
    return str(path)


@pytest.mark.parametrize("adds_bos", [True, False])
def test_bos_follows_what_the_tokenizer_adds_itself(tmp_path, adds_bos):
    base = _tokenizer_dir(tmp_path / "tok", adds_bos)
    for name in ("f.jsonl", "r.jsonl"):
        (tmp_path / name).write_text('{"question": "a", "answer": "b"}\n')
    assert reference_bos(TargetConfig(base=base)) is adds_bos
    spec, _ = parse_spec(f"""name: b
data: {{source: custom, forget_file: {tmp_path}/f.jsonl, retain_file: {tmp_path}/r.jsonl}}
target: {{source: train, train: {{base: {base}}}}}
""", source="test")
    assert spec.data.add_bos is None and target_config(spec).add_bos is adds_bos
    # an explicit choice wins, and the tiny tokenizer keeps BOS
    forced, _ = parse_spec(f"""name: b
data: {{source: custom, forget_file: {tmp_path}/f.jsonl, retain_file: {tmp_path}/r.jsonl, add_bos: {str(not adds_bos).lower()}}}
target: {{source: train, train: {{base: {base}}}}}
""", source="test")
    assert target_config(forced).add_bos is (not adds_bos)


def test_the_tiny_tokenizer_keeps_bos_and_an_unloadable_base_is_left_to_the_build(tmp_path):
    assert reference_bos(TargetConfig()) is True
    empty = tmp_path / "nothing-here"
    empty.mkdir()
    assert reference_bos(TargetConfig(base=str(empty))) is None


def test_checks_never_reach_the_network_for_a_hub_tokenizer(monkeypatch):
    """Not cached and not downloading (pareto validate): None at once, no request, no retry."""
    import time

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_HOME", "/nonexistent-pareto-hf-home")  # an empty cache
    t0 = time.perf_counter()
    assert reference_bos(TargetConfig(base="microsoft/phi-1_5")) is None
    assert time.perf_counter() - t0 < 5
