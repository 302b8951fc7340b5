"""A directory as one bytes object and back, for shipping a target to cluster nodes that lack it.

`pack_directory` makes an uncompressed tar (safetensors do not compress); `unpack_directory`
extracts it into a temporary sibling and renames it into place, so a concurrent reader sees the
whole directory or none, and refuses members that would land outside it.
"""

from __future__ import annotations

import io
import os
import shutil
import tarfile
import tempfile
from pathlib import Path


def pack_directory(path: str | Path) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for item in sorted(Path(path).rglob("*")):
            if item.is_file():
                tar.add(item, arcname=item.relative_to(path).as_posix())
    return buf.getvalue()


def unpack_directory(data: bytes, dest: str | Path) -> Path:
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r") as tar:
            tar.extractall(tmp, filter="data")  # the "data" filter refuses absolute paths, "..", links out
        try:
            os.replace(tmp, dest)
        except OSError:  # another trial on this node unpacked it first
            if not (dest / "manifest.json").is_file():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return dest
