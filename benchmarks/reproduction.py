#!/usr/bin/env python
"""Run the reproduction sweeps of issue 8 and keep their results small enough to commit.

    python benchmarks/reproduction.py --data /path/to/TOFU        # hours on 2 cores; resumable
    python -m analysis.reproduction --results docs/results --out docs/reproduction.md

1. builds (or finds in the cache) the target and the Retrain reference of sweeps/_repro_base.yaml
   and evaluates both (benchmarks/tofu_target.py); 2. runs sweeps/repro_fixed.yaml,
   repro_autolr.yaml, repro_npo.yaml, repro_gen.yaml, repro_sgd.yaml and repro_sgd_gdiff.yaml one
   after another (`--resume` when a sweep's folder exists: an interrupted run continues where it
   stopped, a finished one does nothing);
3. copies each sweep's trials, evals and steps Parquet (not the per-item records) to
   `--out/<sweep>/` and writes `--out/meta.json`: the two models' build records and metrics,
   every session's wall time per sweep, the machine. The page is then generated from these
   files alone by `python -m analysis.reproduction`.

`--round 2` (issue 19) does the same for the paper's regime on a target with knowledge beyond
TOFU: sweeps/repro2_fixed.yaml and repro2_autolr.yaml, their models from sweeps/_repro2_base.yaml,
the records under meta.json's "round2".
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from analysis.reproduction import ALL_SWEEPS as SWEEPS  # noqa: E402  (the page reads what this runs)
from analysis.reproduction_regime import SWEEPS as SWEEPS2  # noqa: E402


def run(cmd: list[str]) -> None:
    print("$", " ".join(cmd), flush=True)
    subprocess.run(cmd, cwd=ROOT, check=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", required=True, help="a local TOFU directory (or locuslab/TOFU with hub access)")
    ap.add_argument("--storage", type=Path, default=ROOT / "results", help="where the sweeps write")
    ap.add_argument("--out", type=Path, default=ROOT / "docs/results", help="the small committed copy")
    ap.add_argument("--round", type=int, choices=(1, 2), default=1,
                    help="1: the first reproduction (issue 8); 2: the paper's regime (issue 19)")
    ap.add_argument("--sweeps", help="comma-separated; default: the round's sweeps")
    args = ap.parse_args()
    sweeps = args.sweeps.split(",") if args.sweeps else list(SWEEPS if args.round == 1 else SWEEPS2)
    args.out.mkdir(parents=True, exist_ok=True)
    meta_path = args.out / "meta.json"
    everything = json.loads(meta_path.read_text()) if meta_path.is_file() else {"sessions": []}
    meta = everything if args.round == 1 else everything.setdefault("round2", {"sessions": []})
    data = f"data.path={args.data}"

    models = args.out / "models.json"
    run([sys.executable, "benchmarks/tofu_target.py", "--spec", f"sweeps/{sweeps[0]}.yaml", "--set", data,
         "--json", str(models)])
    built = json.loads(models.read_text())
    meta["targets"] = [{"what": label, **m["manifest"]} for label, m in built.items()]
    meta["retrain"] = built["Retrain (retain only)"]["metrics"]
    meta["no_unlearn"] = built["No-unlearn (target)"]["metrics"]
    models.unlink()

    session = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "cpus": os.cpu_count(),
               "machine": platform.machine(), "python": platform.python_version(), "sweeps": {}}
    for name in sweeps:
        cmd = [sys.executable, "-m", "pareto", "sweep", f"sweeps/{name}.yaml", "--set", data,
               "--storage", str(args.storage)]
        state = args.storage / name / "sweep.json"
        if state.is_file() and json.loads(state.read_text()).get("complete"):
            print(f"{name}: complete in {args.storage}, copied as it is")
        else:
            if state.is_file():
                cmd.append("--resume")
            t0, load0 = time.perf_counter(), os.getloadavg()[0]
            run(cmd)
            session["sweeps"][name] = time.perf_counter() - t0
            session.setdefault("load_average", {})[name] = [load0, os.getloadavg()[0]]  # start, end: was it shared?
        dest = args.out / name
        dest.mkdir(exist_ok=True)
        for table in ("trials", "evals", "steps"):
            shutil.copyfile(args.storage / name / f"{table}.parquet", dest / f"{table}.parquet")
    meta["sessions"].append(session)
    meta["sweep_wall_s"] = {name: sum(s["sweeps"].get(name, 0.0) for s in meta["sessions"])
                            for name in (SWEEPS if args.round == 1 else SWEEPS2)}
    meta_path.write_text(json.dumps(everything, indent=1) + "\n")
    print(f"results in {args.out}; now: python -m analysis.reproduction --results {args.out}")


if __name__ == "__main__":
    main()
