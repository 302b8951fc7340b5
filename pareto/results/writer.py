"""Write result tables atomically through a Store: a file is either whole or absent, never partial.

A sweep's folder holds one part per finished trial (parts/<trial_id>/, trial.parquet written
last) while it runs, and the four tables at its top once every trial is done:
steps, evals, items, then trials.parquet last — a folder with trials.parquet is complete.
"""

from __future__ import annotations

import json
from typing import Iterable

import pyarrow as pa

from pareto.results.schema import EVAL_SCHEMA, ITEM_SCHEMA, METRICS, STEP_SCHEMA, TRIAL_SCHEMA
from pareto.results.store import Store

TABLES = {"steps": STEP_SCHEMA, "evals": EVAL_SCHEMA, "items": ITEM_SCHEMA, "trials": TRIAL_SCHEMA}


def table(rows: Iterable[dict], schema: pa.Schema) -> pa.Table:
    rows = list(rows)
    columns = {f.name: [r.get(f.name) for r in rows] for f in schema}
    t = pa.Table.from_pydict(columns, schema=schema)
    if schema is TRIAL_SCHEMA:  # the metric directions and planes travel with the results, for readers without pareto
        t = t.replace_schema_metadata({b"pareto.metric_directions": json.dumps(METRICS).encode(),
                                       b"pareto.planes": json.dumps(_planes(rows)).encode()})
    return t


def _planes(rows: list[dict]) -> list[list[str]]:
    """The default planes of the trials' data source (pareto.sources; [] when unknown)."""
    from pareto.sources import SOURCES

    for r in rows:
        try:
            source = json.loads(r["spec"])["data"]["source"]
        except (KeyError, TypeError, ValueError):
            continue
        return [list(p) for p in SOURCES.get(source).planes] if source in SOURCES else []
    return []


def write_tables(store: Store, folder: str, rows: dict[str, list[dict]]) -> None:
    """steps, evals, items, then trials last (the marker that the folder is complete)."""
    for name in TABLES:
        store.write_table(f"{folder}/{name}.parquet", table(rows.get(name, []), TABLES[name]))


def read_tables(store: Store, folders: list[str]) -> dict[str, pa.Table]:
    """The tables of several folders (trial parts), concatenated per table."""
    out = {}
    for name, schema in TABLES.items():
        parts = [store.read_table(f"{f}/{name}.parquet").cast(schema) for f in folders]
        out[name] = pa.concat_tables(parts) if parts else table([], schema)
    return out
