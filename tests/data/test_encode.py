"""encode_rows: QA pairs with a prompt template by name, and texts as windows with full labels."""

import pytest

from pareto.data.encode import encode_rows, row_kind
from pareto.data.qa import IGNORE
from pareto.data.synthetic import generate_authors
from pareto.data.templates import TEMPLATES
from pareto.models._build import build_tokenizer

QA = generate_authors(n_authors=2, qa_per_author=3, seed=0)
TEXTS = [{"text": "The first article has a handful of words. It ends here."},
         {"text": " ".join(f"word{i}" for i in range(50))}]


@pytest.fixture(scope="module")
def tok():
    return build_tokenizer(QA + TEXTS, extra_texts=[TEMPLATES["llama2-chat"]])


@pytest.mark.parametrize("add_bos", [True, False])
def test_llama2_chat_labels_only_the_answer(tok, add_bos):
    enc = encode_rows(tok, QA, max_length=256, template="llama2-chat", add_bos=add_bos)
    for row, e in zip(QA, enc):
        prompt = tok(f"[INST] {row['question']} [/INST]", add_special_tokens=False)["input_ids"]
        answer = tok(" " + row["answer"], add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
        bos = [tok.bos_token_id] if add_bos else []
        assert e.input_ids == bos + prompt + answer
        assert e.labels == [IGNORE] * (len(bos) + len(prompt)) + answer  # the answer and EOS only
        assert e.prompt_len == len(bos) + len(prompt)
        assert tok.unk_token_id not in e.input_ids
        assert (e.input_ids[0] == tok.bos_token_id) == add_bos
    # the plain template is another prompt: same answer labels, other prompt tokens
    plain = encode_rows(tok, QA, max_length=256, add_bos=add_bos)
    assert all(p.input_ids != e.input_ids and [x for x in p.labels if x != IGNORE] == [x for x in e.labels if x != IGNORE]
               for p, e in zip(plain, enc))


@pytest.mark.parametrize("add_bos", [True, False])
def test_texts_become_windows_with_every_token_but_bos_labelled(tok, add_bos):
    windows = encode_rows(tok, TEXTS, max_length=16, add_bos=add_bos)
    body = 15 if add_bos else 16
    bodies = []
    for e in windows:
        assert 2 <= len(e.input_ids) <= 16
        if add_bos:
            assert e.input_ids[0] == tok.bos_token_id and e.labels == [IGNORE] + e.input_ids[1:]
            assert e.prompt_len == 1
        else:
            assert tok.bos_token_id not in e.input_ids and e.labels == e.input_ids and e.prompt_len == 0
        bodies.append(e.input_ids[1:] if add_bos else e.input_ids)
    # each text on its own: its windows are its tokens in order, and a text starts a window
    ids = [tok(t["text"], add_special_tokens=False)["input_ids"] for t in TEXTS]
    first = -(-len(ids[0]) // body)
    assert sum(bodies[:first], []) == ids[0] and sum(bodies[first:], []) == ids[1]
    assert len(windows) == first + -(-len(ids[1]) // body)


def test_bad_rows_and_templates_are_named(tok):
    assert row_kind(QA) == "qa" and row_kind(TEXTS) == "text"
    with pytest.raises(ValueError, match="row 1 has fields"):
        encode_rows(tok, [QA[0], TEXTS[0]], max_length=32)
    with pytest.raises(ValueError, match="row 0 has fields \\[prompt\\]"):
        row_kind([{"prompt": "x"}])
    with pytest.raises(ValueError, match="unknown prompt template 'llama2'.*llama2-chat"):
        encode_rows(tok, QA, max_length=32, template="llama2")
    with pytest.raises(ValueError, match="no rows"):
        encode_rows(tok, [], max_length=32)
