"""`pareto frontier` — non-dominated and dominated trials of a sweep (paper Definition 1)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from pareto.cli._errors import fail


def _families() -> dict[str, list[str]]:
    """Dataset family (`--dataset`) → the data sources in it (pareto.sources: each source's `family`)."""
    from pareto.sources import SOURCES

    out: dict[str, list[str]] = {}
    for name in SOURCES.names():
        out.setdefault(SOURCES.get(name).family, []).append(name)
    return out


DATASETS = tuple(sorted(_families()))


def find_results(results: str | None, dataset: str | None = None) -> str:
    """The sweep folder to read: ``results`` itself when it holds trials.parquet, else the newest
    sweep under it (default ./results), of ``dataset`` when given. Fails with exit status 2."""
    from analysis.results import dataset_of, find_sweeps

    if results is not None and "://" in results:  # an object store: the folder itself
        from pareto.results.store import StorageError, Store

        try:
            present = Store(results).exists("trials.parquet")
        except StorageError as exc:
            fail(str(exc))
        if not present:
            fail(f"{results} holds no trials.parquet. Pass --results with the folder `pareto sweep` printed.")
        return results
    root = Path(results or "results")
    of = f" of a {dataset} sweep" if dataset else ""
    if (root / "trials.parquet").is_file():
        if dataset:
            import pyarrow.parquet as pq

            found = dataset_of(pq.read_table(root / "trials.parquet", columns=["spec"]).to_pandas())
            if found != dataset:
                fail(f"{root} is a {found or 'unknown'} sweep, not {dataset}. Drop --dataset or pass another folder.")
        return str(root)
    if results is None and not root.is_dir():
        fail("no results found under ./results. Run `pareto sweep sweeps/quickstart.yaml` or pass --results DIR.")
    sweeps = find_sweeps(root, dataset) if root.is_dir() else []
    where = "./results" if results is None else str(root)
    if not sweeps:
        fail(f"{where} holds no trials.parquet{of} (nor does any folder under it). "
             "Pass --results with the folder `pareto sweep` printed.")
    _say_which(sweeps, where, dataset)
    return str(sweeps[0])


def _say_which(sweeps: list[Path], where: str, dataset: str | None) -> None:
    """On stderr (stdout may be CSV or JSON): which of the sweeps found it reads, why, and how to
    read another."""
    import datetime as dt

    picked, others = sweeps[0], sweeps[1:]
    kind = f"{dataset} sweep (data.source {' or '.join(_families().get(dataset, [dataset]))})" if dataset else "sweep"
    when = dt.datetime.fromtimestamp((picked / "trials.parquet").stat().st_mtime).strftime("%Y-%m-%d %H:%M")
    rest = ""
    if others:
        shown = ", ".join(str(o) for o in others[:3]) + (f" and {len(others) - 3} more" if len(others) > 3 else "")
        rest = f"; {len(others)} other{'s' if len(others) > 1 else ''} there: {shown}"
    click.echo(f"reading {picked}: the newest {kind} under {where} (written {when}){rest}. "
               "Read another with --results DIR.", err=True)


def _planes_for(trials, dataset: str | None, recorded: tuple = ()):
    """The default planes: `recorded` with the results (their data source's, Results.default_planes)
    unless --dataset names another family, else the family's."""
    from analysis.results import Results

    return Results("", trials, planes=recorded).default_planes(dataset)


def _directions(directions: dict | None) -> dict:
    if directions:
        return directions
    from pareto.results.schema import METRICS  # results without direction metadata

    return dict(METRICS)


def print_frontier(trials, planes, fmt: str, by: str | None, directions: dict | None = None,
                   dataset: str | None = None, plot: str | None = None, recorded: tuple = (),
                   id_col: str = "trial_id") -> None:
    """`trials`: the trials table of a sweep (a pandas DataFrame), or its evaluation points
    (analysis.paths.path_points, `id_col` "point"); `planes`: tuples of 2 or 3 metric names
    (None: the default planes, `recorded` with the results or the dataset's); `directions`:
    metric → min|max|zero (None: the registry's)."""
    from analysis import format_table, frontier_table
    from analysis.results import ARROWS, departure_notes, departures, method_names, resolve_objectives

    directions = _directions(directions)
    trials = trials.copy()
    if "method" not in trials and "combiner" in trials:
        trials["method"] = method_names(trials)
    tables, blocks = [], []
    found = departures(trials)  # how metrics depart from the reference tools' (MUSE subset mode, cut texts)
    defaults = planes is None
    for plane in planes or _planes_for(trials, dataset, recorded):
        plane = tuple(plane)
        title = " vs ".join(f"{n.split(':')[0]} {ARROWS.get(n.partition(':')[2] or directions.get(n, ''), '')}".rstrip()
                            for n in plane) + (f" (fronts per {by})" if by else "")
        names = [n.split(":")[0] for n in plane]
        if defaults and any(n not in trials or trials[n].isna().all() for n in names):
            empty = [n for n in names if n not in trials or trials[n].isna().all()]
            blocks.append((title, None, f"(no trial has a value for {', '.join(empty)}; skipped)"))
            continue
        try:
            tr, objectives = resolve_objectives(trials, list(plane), directions)
        except ValueError as exc:
            fail(f"{exc}. Metrics: {', '.join(sorted(directions))}")
        if by is not None and by not in tr:
            fail(f"--by {by!r}: no such column. Try --by combiner or --by method.")
        table = frontier_table(tr, objectives, by=by, id_col=id_col)
        tables.append(table)
        cols = [c for c in dict.fromkeys((id_col, "label")) if c in table.rows] + names + ["dominated", "dominated_by", "rank"]
        blocks.append((title, table, cols))
    if fmt == "csv" and defaults:  # one CSV per call: the first default plane with values
        blocks = _one_plane(blocks, [tuple(p) for p in _planes_for(trials, dataset, recorded)], trials, directions)
    if fmt == "json":  # one document for every plane
        docs = []
        for title, table, cols in blocks:
            if table is None:
                continue
            docs.append({"plane": title, "objectives": [list(o) for o in table.objectives], "by": by,
                         "rows": json.loads(format_table(table, "json", columns=cols)),
                         "excluded": table.excluded[[id_col, "reason"]].to_dict("records")})
        click.echo(json.dumps({"planes": docs}))
    else:
        for title, table, cols in blocks:
            if fmt != "csv":  # csv: one plane (above), no heading
                click.echo(f"== {title} ==")
            if table is None:
                click.echo(cols + "\n")
                continue
            text = format_table(table, fmt, columns=cols)
            if fmt == "csv":  # the CSV and nothing else
                click.echo(text, nl=not text.endswith("\n"))
                continue
            click.echo(text)
            for line in departure_notes([c for c, _ in table.objectives], found):  # beside the numbers
                click.echo(line)
            if len(table.excluded):
                click.echo("excluded: " + "; ".join(f"{i} ({r})" for i, r in zip(table.excluded[id_col], table.excluded["reason"])))
            click.echo("")
    if plot:
        from analysis import plots

        if id_col == "trial_id":
            plots.save(plots.frontier(tables, directions), plot)
        else:  # evaluation points: each trial's path through them, the front highlighted
            from analysis.paths import path_lines

            plots.save(plots.paths([(t, path_lines(t)) for t in tables], directions), plot)
        click.echo(f"plot: {plot}", err=fmt in ("csv", "json"))


def _one_plane(blocks: list, planes: list[tuple], trials, directions: dict) -> list:
    """CSV holds one table: the first plane that has values; stderr says which and how to get the others."""
    drawn = [(b, p) for b, p in zip(blocks, planes) if b[1] is not None]
    if not drawn:
        have = [m for m in directions if m in trials and trials[m].notna().any()]
        empty = dict.fromkeys(n.split(":")[0] for p in planes for n in p
                              if n.split(":")[0] not in trials or trials[n.split(":")[0]].isna().all())
        fail(f"no default plane has values in this sweep (no trial has a value for {', '.join(empty)}). "
             "Name two metrics it has with --x NAME --y NAME" + (f": {', '.join(have)}" if have else ""))
    (block, plane), rest = drawn[0], [p for b, p in drawn[1:]]

    def flags(p: tuple) -> str:
        return f"--x {p[0]} --y {p[1]}" if len(p) == 2 else f"--objectives {','.join(p)}"

    click.echo(f"csv: one plane per call; this is {block[0]} (the first default plane with values, as "
               f"{flags(plane)})." + "".join(f" For {' vs '.join(p)}: {flags(p)}." for p in rest), err=True)
    return [block]


@click.command()
@click.option("--results", "results", default=None,
              help="A sweep's folder holding trials.parquet, or a folder of sweeps (default ./results): "
                   "then the newest sweep in it (of --dataset, when given).")
@click.option("--dataset", type=click.Choice(DATASETS), default=None,
              help="Pick the newest sweep on this dataset (tofu includes the embedded default) and its planes.")
@click.option("--x", "x", default=None, help="Metric on the x axis (with --y); NAME or NAME:min|max.")
@click.option("--y", "y", default=None, help="Metric on the y axis (with --x).")
@click.option("--objectives", default=None, help="Any number of metrics, comma-separated: a k-objective front.")
@click.option("--by", default=None, help="Per-group fronts, e.g. --by combiner or --by method.")
@click.option("--format", "fmt", default="table",
              type=click.Choice(["table", "csv", "json", "markdown", "latex"]),
              help="csv is one table: the plane of --x/--y or --objectives, else the first default plane "
                   "with values (stderr names it and the flags for the others); json holds every plane.")
@click.option("--plot", default=None, metavar="PNG", help="Also draw the fronts into this PNG file.")
@click.option("--points", "points", default="final", type=click.Choice(["final", "evals"]),
              help="final: each trial's final evaluation (default). evals: every evaluation (trial, step) of "
                   "evals.parquet, named trial@step (the training-path frontier; --plot draws each trial's path).")
@click.option("--eaf", "eaf", default=None, metavar="A,B",
              help="Compare two methods across seeds: where A's fronts attain more often than B's (the EAF "
                   "difference, one row per region; --plot draws it). On --x/--y or the first 2-D plane.")
def frontier(results: str | None, dataset: str | None, x: str | None, y: str | None, objectives: str | None,
             by: str | None, fmt: str, plot: str | None, points: str, eaf: str | None) -> None:
    """Print the non-dominated and the dominated trials with their dominators.

    Default planes: TOFU — forget loss ↑ vs retain loss ↓ and rouge_f ↓ vs utility_r ↑;
    MUSE — the loss plane and verbmem_f ↓, knowmem_f ↓, knowmem_r ↑ (a 3-objective front).

    \b
      pareto frontier --results results/quickstart
      pareto frontier --dataset tofu --x rouge_f --y utility_r --by combiner
      pareto frontier --dataset muse --objectives verbmem_f,knowmem_f,knowmem_r --format latex
      pareto frontier --results DIR --plot frontier.png
      pareto frontier --results DIR --points evals --plot paths.png
      pareto frontier --results DIR --eaf ngdiff,gdiff --plot eaf.png
    """
    folder = find_results(results, dataset)
    if (x is None) != (y is None):
        fail("--x and --y go together")
    if objectives and x:
        fail("give either --x/--y or --objectives, not both")
    from analysis.results import load_results

    try:
        res = load_results(folder)
    except (OSError, ValueError) as exc:
        fail(f"cannot read {folder}: {exc}")
    planes = None
    if x:
        planes = [(x, y)]
    elif objectives:
        names = [n.strip() for n in objectives.split(",") if n.strip()]
        if not names:
            fail("--objectives needs at least one metric name")
        planes = [tuple(names)]
    if eaf is not None:
        return _eaf_difference(res, eaf, planes, dataset, fmt, plot)
    table, id_col = res.trials, "trial_id"
    if points == "evals":
        table, id_col = _evaluation_points(res, folder)
    print_frontier(table, planes, fmt, by, directions=res.directions, dataset=dataset, plot=plot,
                   recorded=res.planes, id_col=id_col)


def _evaluation_points(res, folder: str):
    """(every evaluation of the sweep as a row, "point"); the trials and "trial_id" with a note
    on stderr when no trial was evaluated more than once (then the path front is the final one)."""
    from analysis.paths import POINT_COL, path_points

    if res.evals.empty:
        fail(f"{folder} has no evals.parquet (or it is empty), so --points evals has nothing to place. "
             "Drop --points evals, or re-run the sweep (evals.parquet is written with the trials).")
    try:
        paths = path_points(res.trials, res.evals)
    except ValueError as exc:
        fail(f"cannot read the evaluations of {folder}: {exc}")
    if paths.single_evaluation:
        click.echo("note: every trial has one evaluation only (eval.every was 0), so --points evals is the "
                   "final front; shown below. For a path, re-run with --set eval.every=N.", err=True)
        return res.trials, "trial_id"
    if paths.unevaluated:
        shown = ", ".join(map(str, paths.unevaluated[:10])) + (" …" if len(paths.unevaluated) > 10 else "")
        click.echo(f"note: {len(paths.unevaluated)} trial(s) have no evaluation in evals.parquet and are not "
                   f"placed: {shown}", err=True)
    return paths.points, POINT_COL


def _eaf_difference(res, methods: str, planes, dataset: str | None, fmt: str, plot: str | None) -> None:
    """`--eaf A,B`: the EAF difference of two methods over their seeds (analysis.attainment)."""
    from analysis import plots
    from analysis.attainment import eaf_difference
    from analysis.results import display_names, resolve_objectives
    from analysis.tables import render

    names = [m.strip() for m in methods.split(",") if m.strip()]
    trials = res.trials
    known = sorted(set(trials["method"].dropna())) if "method" in trials else []
    if len(names) != 2:
        fail(f"--eaf takes two methods, comma-separated (e.g. --eaf {','.join(known[:2]) or 'ngdiff,gdiff'}); "
             f"got {methods!r}")
    unknown = [m for m in names if m not in known]
    if unknown:
        fail(f"--eaf: no trials of method {', '.join(map(repr, unknown))}. Methods in this sweep: {', '.join(known)}")
    plane = next((p for p in (planes or _planes_for(trials, dataset, res.planes)) if len(p) == 2), None)
    if plane is None:
        fail("--eaf compares two objectives: give --x and --y")
    try:
        tr, objs = resolve_objectives(trials, list(plane), _directions(res.directions))
        diff = eaf_difference(tr, objs, *names)
    except ValueError as exc:
        fail(f"--eaf: {exc}")
    seeds = {m: int(tr.loc[tr["method"] == m, "seed"].nunique()) if "seed" in tr else 1 for m in names}
    a, b = display_names(names)
    click.echo(f"EAF difference on {plane[0]} vs {plane[1]}: {a} ({seeds[names[0]]} seeds) minus {b} "
               f"({seeds[names[1]]} seeds); diff > 0 where {a}'s fronts attain more often. "
               f"{int((diff['diff'] > 0).sum())} region(s) favour {a}, {int((diff['diff'] < 0).sum())} {b}.", err=True)
    if min(seeds.values()) < 2:
        click.echo("note: a method with one seed has one front: the difference only says which front reaches "
                   "where. Run more seeds (search.space.seed: [0, 1, 2]) for attainment across seeds.", err=True)
    if fmt == "csv":
        click.echo(diff.to_csv(index=False), nl=False)
    elif fmt == "json":
        click.echo(diff.to_json(orient="records"))
    else:
        click.echo(render(diff, {"table": "text"}.get(fmt, fmt), digits=4), nl=False)
    if plot:
        plots.save(plots.eaf_difference(diff, list(plane), a, b, _directions(res.directions)), plot)
        click.echo(f"plot: {plot}", err=True)

