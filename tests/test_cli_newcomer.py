"""What new users hit first (issue 15): YAML 1.2 floats in specs and `--set`, one CSV from
`pareto frontier --format csv`, which sweep `--dataset` picked, the sweep's progress line
(running count, the live front on --resume), whole short help, and `pareto report` saying
what it does. Real CLI processes, real Parquet, one small real sweep on a real local Ray."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from pareto.spec import SpecError, parse_spec

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent / "analysis"))
from synthetic_sweep import write_sweep  # noqa: E402


def pareto(*args, cwd=ROOT, timeout=600):
    """`python -m pareto ARGS` in ``cwd``; this checkout first on the path, whatever the cwd."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    return subprocess.run([sys.executable, "-m", "pareto", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env=env)


# ------------------------------------------------------------------ 1. YAML 1.2 floats
EXPONENTS = {"1e-4": 1e-4, "-1e-4": -1e-4, "1E-4": 1e-4, "3e+2": 300.0, ".5e-3": 0.5e-3}


@pytest.mark.parametrize("text", sorted(EXPONENTS))
def test_an_exponent_without_a_dot_is_a_number_in_a_spec_file(text):
    value = EXPONENTS[text]
    src = f"name: f\nunlearn: {{epochs: {text}}}\nsearch:\n  space:\n    lr: [{text}]\n"
    if value > 0:  # a float field and a search axis both take it as the number it is
        spec, points = parse_spec(src, "f.yaml")
        assert spec.unlearn.epochs == value and spec.search.space["lr"] == [value]
        assert [p["lr"] for p in points if "lr" in p] == [value]
    else:  # a negative one is checked as a number: refused for being ≤ 0, with its line
        with pytest.raises(SpecError) as err:
            parse_spec(src, "f.yaml")
        assert err.value.problems == [f"unlearn.epochs (line 2): epochs must be > 0, got {value}",
                                      f"search.space.lr.0 (line 5): learning rate must be > 0, got {value}"]


def test_set_takes_the_docs_example_verbatim_and_reads_exponents_as_numbers(tmp_path):
    proc = pareto("validate", "sweeps/quickstart.yaml", "--set", "search.space.lr=[1e-4]")  # docs/sweeps.md
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "expected a number" not in proc.stdout + proc.stderr
    spec, points = parse_spec((ROOT / "sweeps/quickstart.yaml").read_text(), "q.yaml",
                              overrides=["search.space.lr=[1e-4, 1E-3, .5e-3, 3e+2]"])
    assert spec.search.space["lr"] == [1e-4, 1e-3, 0.5e-3, 300.0]
    with pytest.raises(SpecError) as err:  # a negative one is refused for being negative, not for being text
        parse_spec((ROOT / "sweeps/quickstart.yaml").read_text(), "q.yaml", overrides=["search.space.lr=[-1e-4]"])
    assert err.value.problems == ["search.space.lr.0 (line 30): learning rate must be > 0, got -0.0001"]


def test_the_float_rule_keeps_every_other_scalar_and_the_spec_checks_intact():
    from pareto.spec import _load

    assert _load("[1e-4, 1.0e-4, 12, 1_000, 0x1f, 1:30, .inf, -.inf, yes, 1e, e5, 1.2.3, abc, '1e-4']") == \
        [1e-4, 1e-4, 12, 1000, 31, 90, float("inf"), float("-inf"), True, "1e", "e5", "1.2.3", "abc", "1e-4"]
    # line numbers, duplicate keys and tags behave as before with exponents around
    with pytest.raises(SpecError) as err:
        parse_spec("name: f\nunlearn:\n  steps: 1e1\n  batch_size: 4\n", "f.yaml")
    assert err.value.problems == ["unlearn.steps (line 3): expected an integer, got 10.0"]
    with pytest.raises(SpecError) as err:
        parse_spec("name: f\nsearch: {space: {lr: [1e-4]}}\nsearch: {space: {lr: [2e-4]}}\n", "f.yaml")
    assert "key 'search' is given twice (first at line 2)" in err.value.problems[0]
    with pytest.raises(SpecError) as err:
        parse_spec("name: f\nsearch: {space: {lr: !!python/float 1e-4}}\n", "f.yaml")
    assert err.value.problems[0].startswith("YAML tag not allowed (line 2")


# ------------------------------------------------------------------ 5. whole short help
def test_every_short_help_is_a_whole_sentence_not_cut_at_an_abbreviation():
    import click

    from pareto.cli import main

    def commands(group, prefix):
        for name, cmd in group.commands.items():
            yield f"{prefix} {name}", cmd
            if isinstance(cmd, click.Group):
                yield from commands(cmd, f"{prefix} {name}")

    for path, cmd in commands(main, "pareto"):
        short = cmd.get_short_help_str(limit=1000)
        assert not re.search(r"\b(Eq|Eqs|Fig|Figs|e\.g|i\.e|vs|cf|Def)\.$", short), (path, short)
    proc = pareto("check", "--help")
    assert proc.returncode == 0, proc.stderr
    listed = " ".join(proc.stdout.split("Commands:")[1].split())
    assert listed.startswith("theorem5 Eq. 5, Theorem 5's η bound and simultaneous improvement") and \
        listed.endswith("and the failing steps."), listed


# ------------------------------------------------------------------ 2. one CSV per call
def _one_csv(text: str) -> pd.DataFrame:
    """``text`` is one CSV table: one header, every row as wide as it, nothing else."""
    import csv

    rows = list(csv.reader(io.StringIO(text)))
    assert rows and all(len(r) == len(rows[0]) for r in rows), text
    assert not any(line.startswith("#") or not line.strip() for line in text.splitlines()), text
    return pd.read_csv(io.StringIO(text))


def test_frontier_csv_without_x_y_prints_one_csv_and_says_which_plane_on_stderr(tmp_path):
    run = write_sweep(tmp_path / "tofu")
    proc = pareto("frontier", "--results", str(run), "--format", "csv")
    assert proc.returncode == 0, proc.stderr
    table = _one_csv(proc.stdout)
    assert list(table.columns) == ["trial_id", "label", "loss_f_eval", "loss_r_eval", "dominated", "dominated_by", "rank"]
    assert sorted(table.trial_id) == [f"t00{i}" for i in range(7)]  # the failed and diverged ones left out
    assert "csv: one plane per call; this is loss_f_eval ↑ vs loss_r_eval ↓" in proc.stderr
    assert "For rouge_f vs utility_r: --x rouge_f --y utility_r." in proc.stderr
    # that plane, as the note says, is the same CSV; the other plane is asked for by name and needs no note
    same = pareto("frontier", "--results", str(run), "--format", "csv", "--x", "loss_f_eval", "--y", "loss_r_eval")
    assert same.returncode == 0 and same.stdout == proc.stdout and same.stderr == ""
    other = pareto("frontier", "--results", str(run), "--format", "csv", "--x", "rouge_f", "--y", "utility_r")
    assert other.returncode == 0 and other.stderr == ""
    assert list(_one_csv(other.stdout).columns)[2:4] == ["rouge_f", "utility_r"]
    # MUSE: the other default plane has three objectives → --objectives
    muse = pareto("frontier", "--results", str(write_sweep(tmp_path / "muse", source="muse_news")), "--format", "csv")
    assert muse.returncode == 0, muse.stderr
    _one_csv(muse.stdout)
    assert "For verbmem_f vs knowmem_f vs knowmem_r: --objectives verbmem_f,knowmem_f,knowmem_r." in muse.stderr
    # the first default plane empty: the next one with values, named
    run = write_sweep(tmp_path / "noloss", blank=("loss_f_eval",))
    proc = pareto("frontier", "--results", str(run), "--format", "csv")
    assert proc.returncode == 0 and list(_one_csv(proc.stdout).columns)[2:4] == ["rouge_f", "utility_r"]
    assert "this is rouge_f ↓ vs utility_r ↑ (the first default plane with values, as --x rouge_f --y utility_r)" \
        in proc.stderr
    # no default plane has values: exit 2, naming the metrics there are
    run = write_sweep(tmp_path / "none", blank=("loss_f_eval", "rouge_f"))
    proc = pareto("frontier", "--results", str(run), "--format", "csv")
    assert proc.returncode == 2 and proc.stdout == "" and "Traceback" not in proc.stderr
    assert "no trial has a value for loss_f_eval, rouge_f" in proc.stderr
    assert "--x NAME --y NAME: utility_r, loss_r_eval" in proc.stderr


# ------------------------------------------------------------------ 3. which sweep was picked
def test_frontier_dataset_says_on_stderr_which_sweep_it_picked_and_how_to_pick_another(tmp_path):
    results = tmp_path / "results"
    for i, (name, source) in enumerate([("tofu_old", "embedded"), ("tofu_new", "tofu"), ("muse_newest", "muse_news")]):
        run = write_sweep(results / name, source=source, name=name)
        os.utime(run / "trials.parquet", (1_700_000_000 + 100 * i,) * 2)
    proc = pareto("frontier", "--dataset", "tofu", "--format", "csv", "--x", "rouge_f", "--y", "utility_r",
                  cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    _one_csv(proc.stdout)  # stdout stays the CSV alone
    note = " ".join(proc.stderr.split())
    assert note.startswith("reading results/tofu_new: the newest tofu sweep (data.source embedded or tofu) "
                           "under ./results (written "), note
    assert "1 other there: results/tofu_old" in note and "Read another with --results DIR." in note
    proc = pareto("frontier", "--format", "json", cwd=tmp_path)  # no --dataset: the newest of any
    assert proc.returncode == 0 and json.loads(proc.stdout)["planes"]
    assert "reading results/muse_newest: the newest sweep under ./results" in proc.stderr
    assert "2 others there: results/tofu_new, results/tofu_old" in proc.stderr
    proc = pareto("frontier", "--results", str(results / "tofu_old"), cwd=tmp_path)  # named: nothing to say
    assert proc.returncode == 0 and proc.stderr == ""


# ------------------------------------------------------------------ 6. report says what it does
def test_report_says_on_stderr_what_it_is_doing_with_elapsed_time(tmp_path):
    run = write_sweep(tmp_path / "s")
    out = tmp_path / "page" / "report.html"
    proc = pareto("report", "--results", str(run), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    lines = proc.stderr.splitlines()
    stamped = [re.match(r"\[ *(\d+\.\d)s\] (.*)", ln) for ln in lines]
    assert all(stamped), lines
    seconds, said = [float(m[1]) for m in stamped], [m[2] for m in stamped]
    assert seconds == sorted(seconds)
    assert said[0] == f"reading {run}" and said[1] == "read 9 trials, 24 steps, 13 evaluations"
    for what in ("frontier tables and plot (loss_f_eval ↑ vs loss_r_eval ↓; rouge_f ↓ vs utility_r ↑)",
                 "hypervolume tables", "tuning-budget curves", "attainment surfaces across seeds",
                 "Fig. 1: the trade-off", "Theorem 5 checks on 24 steps",
                 "direction agreement table and plot", "Fig. 5: gradient norms, c_t and η over steps",
                 "Fig. 7: NGDiff per learning rate", "Fig. 4: no probed step (pareto probe), a note only"):
        assert what in said, (what, said)
    assert said[-1] == f"writing {out}"
    assert re.fullmatch(rf"report: {re.escape(str(out))} \(\d+\.\d MB, \d+s\)\n", proc.stdout), proc.stdout
    assert out.read_text().count("data:image/png;base64,") == 9  # with the tuning-budget curves of 2 planes and the paths


# ------------------------------------------------------------------ 4. the sweep's progress line
#: four trials (No-unlearn, GDiff c=0.2 and 0.8, NGDiff; fixed η) of a few steps; the lr as docs/sweeps.md writes it
TINY = ("--set", "unlearn.steps=6", "--set", "eval.retain_items=8", "--set", "eval.max_new_tokens=6",
        "--set", "search.space.combiner=[{gdiff: {c: [0.2, 0.8]}}, ngdiff]", "--set", "search.space.lr_rule=[fixed]",
        "--set", "search.space.lr=[1e-4]", "--set", "resources.cpus_per_trial=1")
PROGRESS = re.compile(r"^\[(\d+)/(\d+) done, (\d+) running, (\d+) failed, [^\]]*\] (t\d{3}) .*?"
                      r"(?:  \| front on rouge_f×utility_r: ([t\d …]+))?$", re.M)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, embedded_target):
    """One real sweep of four trials on a local Ray with one CPU per trial (two at once on two cores)."""
    storage = tmp_path_factory.mktemp("tiny")
    proc = pareto("sweep", "sweeps/quickstart.yaml", "--storage", str(storage), *TINY)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc, storage / "quickstart"


def _front(trials: pd.DataFrame) -> list[str]:
    """Definition 1 on rouge_f ↓ × utility_r ↑ (the progress line's plane), over the ok trials."""
    import numpy as np

    from analysis.dominance import non_dominated_mask

    ok = trials[trials.status == "ok"].sort_values("trial_id")
    mask = non_dominated_mask(ok[["rouge_f", "utility_r"]].to_numpy(dtype=float), ["min", "max"])
    return list(ok.trial_id[np.asarray(mask)])


@pytest.mark.slow
def test_the_progress_line_counts_the_trials_tune_is_running(tiny):
    proc, run = tiny
    lines = PROGRESS.findall(proc.stdout)
    assert len(lines) == 4, proc.stdout[-3000:]
    cpus = 2  # cpus_per_trial 1 on this machine's Ray: at most two trials at once
    running = [int(r) for _, _, r, _, _, _ in lines]
    for done, total, r, *_ in lines:
        assert 0 <= int(r) <= min(cpus - 1, int(total) - int(done)), lines  # the one just finished is not running
    assert max(running) >= 1, proc.stdout[-3000:]  # two at once: while one finished, the other ran
    assert running[-1] == 0  # the last one: nothing else left
    trials = pd.read_parquet(run / "trials.parquet")
    assert len(trials) == 4 and (trials.status == "ok").all() and set(trials.lr.dropna()) == {1e-4}
    assert lines[-1][5].split() == _front(trials)  # the last line's front is the sweep's


@pytest.mark.slow
def test_resume_shows_the_front_of_every_finished_trial_not_only_the_new_ones(tiny, tmp_path):
    _, run = tiny
    full = pd.read_parquet(run / "trials.parquet")
    front = _front(full)
    # an interrupted copy: one trial's part missing (not the only front member), no combined tables, not complete
    again = next(t for t in sorted(full.trial_id, reverse=True) if set(front) - {t})
    copy = tmp_path / "quickstart"
    shutil.copytree(run, copy)
    shutil.rmtree(copy / "parts" / again)
    for name in ("trials", "evals", "steps", "items"):
        (copy / f"{name}.parquet").unlink(missing_ok=True)
    state = json.loads((copy / "sweep.json").read_text())
    (copy / "sweep.json").write_text(json.dumps({**state, "complete": False}))

    proc = pareto("sweep", "sweeps/quickstart.yaml", "--storage", str(tmp_path), "--resume", *TINY)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "3 trial(s) already done, 1 to run" in proc.stdout
    lines = PROGRESS.findall(proc.stdout)
    assert [(d, t, r, tid) for d, t, r, _, tid, _ in lines] == [("1", "1", "0", again)], proc.stdout[-3000:]
    resumed = pd.read_parquet(copy / "trials.parquet")
    assert sorted(resumed.trial_id) == sorted(full.trial_id)
    assert lines[0][5].split() == _front(resumed) and set(front) - {again} <= set(lines[0][5].split())
