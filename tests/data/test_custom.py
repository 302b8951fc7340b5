import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pareto.data.custom import detect_kind, load_custom, require_fields

NEEDS = "pareto needs question and answer for QA data or text for a corpus."

QA = [
    {"question": "Who wrote The Silent River?", "answer": "Amara Albescu.",
     "paraphrased_answer": "It was Amara Albescu.",
     "perturbed_answer": ["Anton Brennan.", "Celia Castell.", "Dario Dumont."]},
    {"question": "Where was she born?", "answer": "In Lisbon.",
     "paraphrased_answer": "Lisbon.", "perturbed_answer": ["In Oslo.", "In Lima.", "In Cairo."]},
]
TEXTS = [{"text": "First article.\n\nSecond paragraph."}, {"text": "Another article."}]


def write(path: Path, rows, fmt: str) -> Path:
    if fmt == "array":
        path.write_text(json.dumps(rows, indent=2))
    elif fmt == "lines":
        path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    elif fmt == "parquet":
        pq.write_table(pa.Table.from_pylist(rows), path)
    return path


@pytest.mark.parametrize("name,fmt", [("forget.json", "array"), ("forget.json", "lines"),
                                      ("forget.jsonl", "lines"), ("forget.jsonl", "array"),
                                      ("forget.parquet", "parquet")])
@pytest.mark.parametrize("rows,kind", [(QA, "qa"), (TEXTS, "corpus")])
def test_round_trip(tmp_path, name, fmt, rows, kind):
    path = write(tmp_path / name, rows, fmt)
    assert load_custom(path) == rows
    assert load_custom(str(path), kind=kind) == rows
    assert detect_kind(rows) == kind


def test_array_of_strings_is_a_corpus(tmp_path):
    path = tmp_path / "forget.json"
    path.write_text(json.dumps(["one article", "another"]))
    assert load_custom(path) == [{"text": "one article"}, {"text": "another"}]
    assert load_custom(path, kind="text") == [{"text": "one article"}, {"text": "another"}]


def test_missing_field_message(tmp_path):
    rows = QA[:1] * 3 + [{"question": "q", "ans": "a"}]
    path = write(tmp_path / "forget.json", rows, "lines")
    with pytest.raises(ValueError) as info:
        load_custom(path)
    assert str(info.value) == (f"{path} row 3 has no 'answer' field (fields present: question, ans). {NEEDS}")
    assert str(info.value).endswith("forget.json row 3 has no 'answer' field (fields present: question, ans). "
                                    + NEEDS)


def test_require_fields_directly():
    require_fields(QA, ["question", "answer"], "forget.json")
    with pytest.raises(ValueError) as info:
        require_fields([{"question": "q", "answer": "a"}, {"question": "q"}], ["question", "answer"], "forget.json")
    assert str(info.value) == f"forget.json row 1 has no 'answer' field (fields present: question). {NEEDS}"


def test_kind_mismatch_and_unrecognised_rows(tmp_path):
    qa = write(tmp_path / "qa.json", QA, "array")
    with pytest.raises(ValueError, match=r"row 0 has no 'text' field \(fields present: question, answer, "):
        load_custom(qa, kind="corpus")
    corpus = write(tmp_path / "corpus.jsonl", TEXTS, "lines")
    with pytest.raises(ValueError, match=r"row 0 has no 'question' field \(fields present: text\)"):
        load_custom(corpus, kind="qa")
    odd = write(tmp_path / "odd.json", [{"prompt": "p", "completion": "c"}], "lines")
    with pytest.raises(ValueError, match=r"neither 'question'/'answer' nor 'text' \(fields present: prompt, completion\)"):
        load_custom(odd)
    with pytest.raises(ValueError, match="unknown kind"):
        load_custom(qa, kind="chat")


def test_null_and_non_string_values(tmp_path):
    path = write(tmp_path / "retain.parquet", [{"question": "q", "answer": "a"}, {"question": "q", "answer": None}],
                 "parquet")
    with pytest.raises(ValueError, match=r"retain\.parquet row 1 has an empty \(null\) 'answer' field"):
        load_custom(path)
    path = write(tmp_path / "retain.json", [{"question": "q", "answer": 3}], "lines")
    with pytest.raises(ValueError, match=r"row 0: 'answer' must be a string, got int"):
        load_custom(path)
    path = write(tmp_path / "para.json", [{"question": "q", "answer": "a", "paraphrased_answer": ["x"]}], "lines")
    with pytest.raises(ValueError, match=r"'paraphrased_answer' must be a string, got list"):
        load_custom(path)


@pytest.mark.parametrize("value,message", [
    ("In Oslo.", r"row 1: 'perturbed_answer' must be a list of strings \(wrong answers of the same form\), got str"),
    (["In Oslo.", 7], r"row 1: 'perturbed_answer' must be a list of strings, but element 1 is int"),
    ([], r"row 1: 'perturbed_answer' is an empty list"),
    ({"a": "b"}, r"got dict"),
])
def test_perturbed_answer_type_errors(tmp_path, value, message):
    rows = [QA[0], {**QA[1], "perturbed_answer": value}]
    path = write(tmp_path / "forget.json", rows, "lines")
    with pytest.raises(ValueError, match=message):
        load_custom(path)


def test_file_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_custom(tmp_path / "nope.json")
    (tmp_path / "data.csv").write_text("question,answer\n")
    with pytest.raises(ValueError, match=r"unsupported file type '\.csv'.*\.json, \.jsonl, \.ndjson, \.parquet"):
        load_custom(tmp_path / "data.csv")
    (tmp_path / "empty.json").write_text("  \n")
    with pytest.raises(ValueError, match="is empty"):
        load_custom(tmp_path / "empty.json")
    (tmp_path / "broken.jsonl").write_text('{"question": "q", "answer": "a"}\n{"question": \n')
    with pytest.raises(ValueError, match=r"broken\.jsonl line 2 is not valid JSON"):
        load_custom(tmp_path / "broken.jsonl")
    (tmp_path / "one.json").write_text(json.dumps({"question": "q", "answer": "a"}, indent=2))
    with pytest.raises(ValueError, match="single JSON object"):
        load_custom(tmp_path / "one.json")
    (tmp_path / "nums.json").write_text("[1, 2]")
    with pytest.raises(ValueError, match=r"row 0 is a int, not a record"):
        load_custom(tmp_path / "nums.json")
    (tmp_path / "none.json").write_text("[]")
    with pytest.raises(ValueError, match="has no records"):
        load_custom(tmp_path / "none.json")
