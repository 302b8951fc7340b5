import json
import re

import pytest

from pareto.data.synthetic import (
    FACT_KINDS, GENERATOR_VERSION, N_PERTURBED, biographies, generate_authors, split_by_author,
)

FIELDS = ["author", "author_index", "question", "answer", "paraphrased_answer",
          "perturbed_answer", "paraphrased_question"]


def dump(rows):
    return "".join(json.dumps(r) + "\n" for r in rows).encode()


def test_same_seed_gives_identical_bytes_and_other_seeds_differ():
    assert dump(generate_authors(seed=0)) == dump(generate_authors(seed=0))
    assert dump(generate_authors(seed=0)) != dump(generate_authors(seed=1))
    assert isinstance(GENERATOR_VERSION, int)


def test_facts_do_not_depend_on_qa_per_author():
    few, many = generate_authors(6, 3, seed=4), generate_authors(6, len(FACT_KINDS), seed=4)
    assert [r["author"] for r in few][::3] == [r["author"] for r in many][::len(FACT_KINDS)]
    answers = {r["answer"] for r in many}
    assert all(r["answer"] in answers for r in few)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_schema(seed):
    rows = generate_authors(n_authors=12, qa_per_author=7, seed=seed)
    assert len(rows) == 12 * 7
    for i, r in enumerate(rows):
        assert list(r) == FIELDS
        assert r["author_index"] == i // 7
        assert all(isinstance(r[f], str) and r[f] for f in FIELDS if f not in
                   ("author_index", "perturbed_answer"))
        assert r["author"] in r["question"] or r["author"] in r["answer"]
        assert r["paraphrased_answer"] != r["answer"]
        assert r["paraphrased_question"] != r["question"]
        assert 8 <= len(r["answer"].split()) <= 16, r["answer"]
        assert 8 <= len(r["paraphrased_answer"].split()) <= 16, r["paraphrased_answer"]
    names = [rows[i]["author"] for i in range(0, len(rows), 7)]
    assert len(set(names)) == 12 and all(len(n.split()) == 2 for n in names)
    # an author's rows ask about distinct facts
    for a in range(12):
        qs = [r["question"] for r in rows if r["author_index"] == a]
        assert len(set(qs)) == 7


def test_perturbed_answers_are_wrong_and_distinct():
    rows = generate_authors(n_authors=30, qa_per_author=len(FACT_KINDS), seed=3)
    for r in rows:
        p = r["perturbed_answer"]
        assert isinstance(p, list) and len(p) == N_PERTURBED == 5
        assert r["answer"] not in p
        assert len(set(p)) == 5
        # same template as the answer: they share the sentence around the changed fact
        assert all(x.split()[-1][-1] == r["answer"][-1] for x in p)
        assert all(len(set(x.split()) & set(r["answer"].split())) >= 4 for x in p)


def test_only_simple_punctuation():
    # the embedded word-level tokenizer decodes exactly only ". , ?" and the possessive 's
    rows = generate_authors(n_authors=50, qa_per_author=len(FACT_KINDS), seed=0)
    for r in rows:
        for text in [r["question"], r["answer"], r["paraphrased_answer"],
                     r["paraphrased_question"], *r["perturbed_answer"]]:
            assert re.fullmatch(r"[A-Za-z0-9 .,?']+", text), text
            assert "'" not in text.replace("'s ", ""), text
            assert "  " not in text and text == text.strip()


def test_vocabulary_is_small():
    rows = generate_authors(n_authors=100, qa_per_author=len(FACT_KINDS), seed=0)
    words = set()
    for r in rows:
        for text in [r["question"], r["answer"], r["paraphrased_answer"],
                     r["paraphrased_question"], *r["perturbed_answer"]]:
            words.update(text.replace(",", " ").replace(".", " ").replace("?", " ")
                         .replace("'", " ").split())
    assert 200 < len(words) < 600


def test_bad_arguments():
    with pytest.raises(ValueError, match="qa_per_author"):
        generate_authors(qa_per_author=len(FACT_KINDS) + 1)
    with pytest.raises(ValueError, match="n_authors"):
        generate_authors(n_authors=0)


def test_split_is_by_whole_authors_and_forgets_the_last():
    rows = generate_authors(n_authors=20, qa_per_author=10, seed=0)
    forget, retain = split_by_author(rows, 0.1)
    assert len(forget) == 20 and len(retain) == 180
    assert {r["author_index"] for r in forget} == {18, 19}
    assert {r["author_index"] for r in retain} == set(range(18))
    assert not {r["author"] for r in forget} & {r["author"] for r in retain}
    assert retain + forget == rows  # order kept; forget rows are the tail
    forget, retain = split_by_author(generate_authors(4, 3), 0.25)
    assert {r["author_index"] for r in forget} == {3}


def test_split_refuses_an_empty_forget_set():
    with pytest.raises(ValueError, match="0 authors"):
        split_by_author(generate_authors(n_authors=4), 0.1)
    with pytest.raises(ValueError, match="forget_fraction"):
        split_by_author(generate_authors(n_authors=4), 1.0)


def test_biographies():
    rows = generate_authors(n_authors=5, qa_per_author=6, seed=2)
    bios = biographies(rows)
    assert [b["author"] for b in bios] == [rows[i]["author"] for i in range(0, 30, 6)]
    for b in bios:
        assert list(b) == ["author", "text"]
        own = [r["answer"] for r in rows if r["author"] == b["author"]]
        assert all(a in b["text"] for a in own)
    assert biographies(rows) == bios
