"""Write and read result tables atomically: a file is either whole or absent, never partial."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Iterable

import pyarrow as pa
import pyarrow.parquet as pq

from pareto.results.schema import ITEM_SCHEMA, METRICS, STEP_SCHEMA, TRIAL_SCHEMA


def _table(rows: Iterable[dict], schema: pa.Schema) -> pa.Table:
    rows = list(rows)
    columns = {f.name: [r.get(f.name) for r in rows] for f in schema}
    return pa.Table.from_pydict(columns, schema=schema)


def write_parquet_atomic(table: pa.Table, path: Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        pq.write_table(table, tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_results(out_dir: Path, trials: list[dict], steps: list[dict], items: list[dict]) -> Path:
    """steps, items, then trials last: a run directory with trials.parquet is complete."""
    out_dir = Path(out_dir)
    write_parquet_atomic(_table(steps, STEP_SCHEMA), out_dir / "steps.parquet")
    write_parquet_atomic(_table(items, ITEM_SCHEMA), out_dir / "items.parquet")
    # the metric directions travel with the results, for readers that have no pareto installed
    table = _table(trials, TRIAL_SCHEMA)
    table = table.replace_schema_metadata({b"pareto.metric_directions": json.dumps(METRICS).encode()})
    write_parquet_atomic(table, out_dir / "trials.parquet")
    return out_dir / "trials.parquet"
