"""Write result tables atomically through a Store: a file is either whole or absent, never partial.

A sweep's folder holds one part per finished trial (parts/<trial_id>/, trial.parquet written
last) while it runs, and the four tables at its top once every trial is done:
steps, evals, items, then trials.parquet last — a folder with trials.parquet is complete.
"""

from __future__ import annotations

import json
import os
from typing import Iterable

import pyarrow as pa
import pyarrow.compute  # noqa: F401 — pa.compute

from pareto.results.schema import EVAL_SCHEMA, ITEM_SCHEMA, METRICS, STEP_SCHEMA, TRIAL_SCHEMA
from pareto.results.store import Store

TABLES = {"steps": STEP_SCHEMA, "evals": EVAL_SCHEMA, "items": ITEM_SCHEMA, "trials": TRIAL_SCHEMA}


def table(rows: Iterable[dict] | pa.Table, schema: pa.Schema) -> pa.Table:
    """The rows (dicts, or a pa.Table with the schema's columns) as a table of `schema`."""
    if isinstance(rows, pa.Table):  # e.g. read_tables' own: no round trip through Python objects
        t = rows.select(schema.names).cast(schema)
        specs = t.column("spec").to_pylist() if schema is TRIAL_SCHEMA else []
    else:
        rows = list(rows)
        columns = {f.name: [r.get(f.name) for r in rows] for f in schema}
        t = pa.Table.from_pydict(columns, schema=schema)
        specs = [r.get("spec") for r in rows] if schema is TRIAL_SCHEMA else []
    if schema is TRIAL_SCHEMA:  # the metric directions and planes travel with the results, for readers without pareto
        t = t.replace_schema_metadata({b"pareto.metric_directions": json.dumps(METRICS).encode(),
                                       b"pareto.planes": json.dumps(_planes(specs)).encode()})
    return t


def _planes(specs: list[str | None]) -> list[list[str]]:
    """The default planes of the trials' data source (pareto.sources; [] when unknown): the first
    spec (JSON) that names one."""
    from pareto.sources import SOURCES

    for spec in specs:
        try:
            source = json.loads(spec)["data"]["source"]
        except (KeyError, TypeError, ValueError):
            continue
        return [list(p) for p in SOURCES.get(source).planes] if source in SOURCES else []
    return []


def write_tables(store: Store, folder: str, rows: dict[str, list[dict] | pa.Table]) -> None:
    """steps, evals, items, then trials last (the marker that the folder is complete). Each table's
    rows: dicts, or a pa.Table (read_tables' output as it is: the same files, without building a
    Python object per value — what a sweep of 10⁴ trials needs to consolidate in seconds)."""
    for name in TABLES:
        store.write_table(f"{folder}/{name}.parquet", table(rows.get(name, []), TABLES[name]))


def part_tables(rows: dict[str, list[dict] | pa.Table]) -> dict[str, pa.Table]:
    """The four tables of one part exactly as write_tables writes them."""
    return {name: table(rows.get(name, []), schema) for name, schema in TABLES.items()}


def consolidate(store: Store, folder: str, parts: dict[str, str], held: dict | None = None) -> dict[str, pa.Table]:
    """Write the four tables at the top of a sweep's `folder` from its parts (trial id → part
    folder), in trial-id order, trials.parquet last; return them. `held`: trial id → the tables of
    parts this process wrote itself (`part_tables`, as written), which are not read back — at the
    end of a sweep only parts of earlier runs (a resume) are read, so a sweep of 10⁴ trials does
    not open 4·10⁴ small files again."""
    held = held or {}
    ids = sorted(parts)
    read = read_tables(store, [parts[t] for t in ids if t not in held])
    offsets = {name: 0 for name in TABLES}
    out = {}
    for name, schema in TABLES.items():
        pieces, disk = [], read[name]
        # rows of one part are contiguous in `disk`, parts in id order: take each in turn
        counts = _rows_per_trial(disk)
        for t in ids:
            if t in held:
                pieces.append(held[t][name])
            else:
                n = counts.get(t, 0)
                pieces.append(disk.slice(offsets[name], n))
                offsets[name] += n
        out[name] = pa.concat_tables(pieces) if pieces else table([], schema)
    write_tables(store, folder, out)
    return out


def _rows_per_trial(t: pa.Table) -> dict[str, int]:
    if t.num_rows == 0:
        return {}
    counts = pa.compute.value_counts(t.column("trial_id"))
    return {c["values"].as_py(): c["counts"].as_py() for c in counts}


def conform(t: pa.Table, schema: pa.Schema) -> pa.Table:
    """`t` in `schema`: a part written before a column was added (a sweep resumed across releases:
    e.g. eval.robustness's columns) gets it as nulls; then the schema's order and types."""
    missing = [f for f in schema if f.name not in t.column_names]
    for f in missing:
        t = t.append_column(f, pa.nulls(t.num_rows, f.type))
    return (t.select(schema.names) if missing else t).cast(schema)


def read_tables(store: Store, folders: list[str], threads: int | None = None) -> dict[str, pa.Table]:
    """The tables of several folders (trial parts), concatenated per table, in the folders' order.

    Each small file is read single-threaded, several at once (`threads`, default up to 8): the time
    is per file (opening it, its footer, one column chunk per column), 4 files per trial."""
    from concurrent.futures import ThreadPoolExecutor

    threads = threads or min(8, os.cpu_count() or 1)
    out = {}
    with ThreadPoolExecutor(threads) as pool:
        for name, schema in TABLES.items():
            parts = list(pool.map(lambda f: conform(store.read_table(f"{f}/{name}.parquet", use_threads=False), schema),
                                  folders))
            out[name] = pa.concat_tables(parts) if parts else table([], schema)
    return out
