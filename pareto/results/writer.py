"""Write and read result tables atomically: a file is either whole or absent, never partial."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Iterable

import pyarrow as pa
import pyarrow.parquet as pq

from pareto.results.schema import STEP_SCHEMA, TRIAL_SCHEMA


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


def write_results(out_dir: Path, trials: list[dict], steps: list[dict]) -> tuple[Path, Path]:
    trials_path, steps_path = Path(out_dir) / "trials.parquet", Path(out_dir) / "steps.parquet"
    write_parquet_atomic(_table(steps, STEP_SCHEMA), steps_path)
    write_parquet_atomic(_table(trials, TRIAL_SCHEMA), trials_path)
    return trials_path, steps_path
