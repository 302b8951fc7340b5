import json
import shutil
from pathlib import Path

import pytest

from pareto.data.tofu import TOFU_CONFIGS, HubUnavailableError, load_tofu, tofu_split

COMMIT = "0123456789abcdef0123456789abcdef01234567"

COUNTS = {
    "full": 4000,
    "forget01": 40, "forget05": 200, "forget10": 400,
    "retain99": 3960, "retain95": 3800, "retain90": 3600,
    "forget01_perturbed": 40, "forget05_perturbed": 200, "forget10_perturbed": 400,
    "retain_perturbed": 400,
    "real_authors": 100, "real_authors_perturbed": 100,
    "world_facts": 117, "world_facts_perturbed": 117,
    "holdout01": 40, "holdout05": 200, "holdout10": 400,
}
N_PERTURBED = {"forget01_perturbed": 5, "forget05_perturbed": 5, "forget10_perturbed": 5,
               "retain_perturbed": 5, "real_authors_perturbed": 3, "world_facts_perturbed": 3}


@pytest.fixture(scope="module")
def tofu_dir(real_data) -> Path:
    return real_data("tofu")


def strip_ids(rows):
    return [{k: v for k, v in r.items() if k != "item_id"} for r in rows]


def hub_cache(root: Path, repo: str, files: dict[str, Path]) -> Path:
    """A huggingface_hub cache holding `files` as if downloaded from dataset `repo` at main."""
    repo_dir = root / f"datasets--{repo.replace('/', '--')}"
    (repo_dir / "refs").mkdir(parents=True)
    (repo_dir / "refs" / "main").write_text(COMMIT)
    for name, src in files.items():
        dst = repo_dir / "snapshots" / COMMIT / name
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dst)
    return root


def test_configs_cover_the_documented_names():
    assert set(TOFU_CONFIGS) == set(COUNTS)
    assert len(TOFU_CONFIGS) == len(set(TOFU_CONFIGS))


def test_the_local_copy_is_json_lines(tofu_dir):
    for config in TOFU_CONFIGS:
        head = (tofu_dir / f"{config}.json").read_text()[:1]
        assert head == "{", config


@pytest.mark.parametrize("config", TOFU_CONFIGS)
def test_row_counts_and_fields(tofu_dir, config):
    rows = load_tofu(config, tofu_dir)
    assert len(rows) == COUNTS[config]
    assert [r["item_id"] for r in rows] == [f"{config}:{i}" for i in range(len(rows))]
    assert all(isinstance(r["question"], str) and isinstance(r["answer"], str) for r in rows)
    if config in N_PERTURBED:
        assert all(len(r["perturbed_answer"]) == N_PERTURBED[config] for r in rows)
        assert all(isinstance(a, str) for r in rows for a in r["perturbed_answer"])
        if config.startswith(("forget", "retain")):
            assert all(isinstance(r["paraphrased_answer"], str) for r in rows)
            assert all(isinstance(r["paraphrased_question"], str) for r in rows)


@pytest.mark.parametrize("pct,n", [(1, 40), (5, 200), (10, 400)])
def test_forget_is_tail_of_full_and_retain_the_rest(tofu_dir, pct, n):
    full = strip_ids(load_tofu("full", tofu_dir))
    forget = strip_ids(load_tofu(f"forget{pct:02d}", tofu_dir))
    retain = strip_ids(load_tofu(f"retain{100 - pct}", tofu_dir))
    assert len(forget) == n and len(retain) == 4000 - n
    for a, b in zip(forget, full[-n:]):
        assert a.keys() == b.keys()
        for field in a:
            assert a[field] == b[field], field
    assert retain == full[:4000 - n]
    perturbed = load_tofu(f"forget{pct:02d}_perturbed", tofu_dir)
    assert [(r["question"], r["answer"]) for r in perturbed] == [(r["question"], r["answer"]) for r in forget]


def test_retain_perturbed_rows_are_retain_rows(tofu_dir):
    retain = {(r["question"], r["answer"]) for r in load_tofu("retain90", tofu_dir)}
    assert all((r["question"], r["answer"]) in retain for r in load_tofu("retain_perturbed", tofu_dir))


def test_json_array_and_jsonl_files_are_read_too(tofu_dir, tmp_path):
    lines = load_tofu("forget01", tofu_dir)
    (tmp_path / "forget01.json").write_text(json.dumps(strip_ids(lines), indent=1))
    shutil.copyfile(tofu_dir / "holdout01.json", tmp_path / "holdout01.jsonl")
    assert load_tofu("forget01", tmp_path) == lines
    assert load_tofu("holdout01", tmp_path) == load_tofu("holdout01", tofu_dir)


def test_existing_item_ids_are_kept(tmp_path):
    rows = [{"question": "q", "answer": "a", "item_id": "mine"}, {"question": "q2", "answer": "a2"}]
    (tmp_path / "forget01.json").write_text("\n".join(json.dumps(r) for r in rows))
    assert [r["item_id"] for r in load_tofu("forget01", tmp_path)] == ["mine", "forget01:1"]


def test_unknown_config_suggests_and_lists():
    with pytest.raises(ValueError) as info:
        load_tofu("forget1O", "/nonexistent")
    msg = str(info.value)
    assert "Did you mean 'forget10'?" in msg
    assert all(c in msg for c in TOFU_CONFIGS)


def test_missing_local_file_names_path_and_fix(tmp_path):
    (tmp_path / "forget10.json").write_text('{"question": "q", "answer": "a"}')
    with pytest.raises(FileNotFoundError) as info:
        load_tofu("retain90", tmp_path)
    msg = str(info.value)
    assert str(tmp_path / "retain90.json") in msg
    assert "forget10.json" in msg and "locuslab/TOFU" in msg


def test_nonexistent_directory_is_not_taken_for_a_repo(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_tofu("forget10", tmp_path / "missing")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_tofu("forget10", "./data/tofu")


def test_bad_rows_name_file_row_and_field(tmp_path):
    rows = [{"question": "q", "answer": "a"}, {"question": "q", "ans": "a"}]
    (tmp_path / "forget10.json").write_text("\n".join(json.dumps(r) for r in rows))
    with pytest.raises(ValueError, match=r"forget10\.json row 1 has no 'answer' field \(fields present: question, ans\)"):
        load_tofu("forget10", tmp_path)
    bad = {"question": "q", "answer": "a", "paraphrased_answer": "p", "perturbed_answer": "x"}
    (tmp_path / "forget10_perturbed.json").write_text(json.dumps(bad))
    with pytest.raises(ValueError, match="'perturbed_answer' must be a list of strings"):
        load_tofu("forget10_perturbed", tmp_path)


def test_tofu_split():
    assert tofu_split() == ("forget10", "retain90")
    assert tofu_split("forget01") == ("forget01", "retain99")
    assert tofu_split("forget05") == ("forget05", "retain95")
    assert tofu_split("forget05_perturbed") == ("forget05_perturbed", "retain_perturbed")
    with pytest.raises(ValueError, match="Did you mean 'forget05'"):
        tofu_split("forget5")


def test_hub_path_from_a_prefilled_cache(tofu_dir, tmp_path):
    cache = hub_cache(tmp_path / "hf", "locuslab/TOFU", {"forget10.json": tofu_dir / "forget10.json"})
    hub = load_tofu("forget10", "locuslab/TOFU", cache_dir=cache, local_files_only=True)
    assert hub == load_tofu("forget10", tofu_dir)
    assert len(hub) == 400


def test_hub_holdout_falls_back_to_the_old_jsonl_name(tofu_dir, tmp_path):
    cache = hub_cache(tmp_path / "hf", "locuslab/TOFU", {"holdout01.jsonl": tofu_dir / "holdout01.json"})
    rows = load_tofu("holdout01", "locuslab/TOFU", cache_dir=cache, local_files_only=True)
    assert rows == load_tofu("holdout01", tofu_dir)


def test_empty_cache_offline_gives_a_clear_error(tmp_path):
    with pytest.raises(HubUnavailableError) as info:
        load_tofu("forget10", "locuslab/TOFU", cache_dir=tmp_path / "empty", local_files_only=True)
    err = info.value
    msg = str(err)
    assert "forget10.json of locuslab/TOFU is not in the Hugging Face cache" in msg
    assert "local_files_only" in msg and "local directory" in msg
    assert err.__cause__ is None and err.__suppress_context__
    assert isinstance(err, OSError)


def test_unreachable_hub_gives_a_clear_error(monkeypatch, tmp_path):
    import huggingface_hub
    from huggingface_hub.errors import LocalEntryNotFoundError

    def offline_download(**kwargs):
        try:
            raise ConnectionError("[Errno -2] Name or service not known")
        except ConnectionError as exc:
            raise LocalEntryNotFoundError("An error happened while trying to locate the file on the Hub") from exc

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", offline_download)
    with pytest.raises(HubUnavailableError) as info:
        load_tofu("forget10", cache_dir=tmp_path)
    msg = str(info.value)
    assert "hub is unreachable" in msg and "Name or service not known" in msg
    assert "pass a local directory" in msg
    assert info.value.__cause__ is None and info.value.__suppress_context__
