"""Files and the target cache: where targets live (`default_cache_dir`, PARETO_CACHE), JSON lines,
hashes and versions recorded with a build, and the atomic publish: `build_atomically` builds into a
temporary directory beside the final one and renames it into place (manifest last), so an
interrupted build leaves nothing and of two concurrent builders the second to finish uses the
first's copy (`publish`)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import uuid
from pathlib import Path
from typing import Callable, Sequence

import torch

Log = Callable[[str], None]


def default_cache_dir() -> Path:
    env = os.environ.get("PARETO_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "pareto"


def write_jsonl(path: Path, rows: Sequence[dict]) -> None:
    with open(path, "w", encoding="utf-8", newline="\n") as fh:
        for r in rows:
            fh.write(json.dumps(r, ensure_ascii=False) + "\n")


def jsonl_bytes(rows: Sequence[dict]) -> bytes:
    """What `write_jsonl` writes, as bytes."""
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode("utf-8")


def sha256_files(paths: Sequence[Path]) -> str:
    h = hashlib.sha256()
    for p in paths:
        h.update(p.read_bytes())
    return h.hexdigest()


def versions() -> dict:
    import transformers

    return {"python": sys.version.split()[0], "torch": torch.__version__,
            "transformers": transformers.__version__}


def publish(tmp: Path, final: Path, log: Log, tag: str = "target") -> Path:
    """Rename the finished `tmp` to `final`; if another builder got there first, keep theirs."""
    for _ in range(3):
        try:
            os.rename(tmp, final)  # atomic; fails if `final` exists and is not empty
            return final
        except OSError:
            if (final / "manifest.json").is_file():
                shutil.rmtree(tmp, ignore_errors=True)
                log(f"[{tag}] {final} was built concurrently; using that one")
                return final
            if not final.exists():
                raise
            # an incomplete directory (not made by a builder, which renames complete targets
            # only): move it aside and try again
            broken = final.with_name(f".{final.name}.broken-{uuid.uuid4().hex[:8]}")
            try:
                os.rename(final, broken)
            except FileNotFoundError:
                continue
            shutil.rmtree(broken, ignore_errors=True)
            log(f"[{tag}] replaced an incomplete directory at {final}")
    raise RuntimeError(f"could not move the built target {tmp} to {final}")


def build_atomically(final: Path, build_into: Callable[[Path], dict], log: Log,
                     tag: str) -> tuple[Path, dict | None]:
    """(final, manifest) after building `final` with `build_into(tmp_dir)` unless it has a
    manifest already (then the manifest is None: nothing was built). `build_into` writes
    manifest.json last; on any error the temporary directory is removed and the error raised."""
    if (final / "manifest.json").is_file():
        return final, None
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.parent / f".{final.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        log(f"[{tag}] building {final}")
        manifest = build_into(tmp)
        path = publish(tmp, final, log, tag)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return path, manifest
