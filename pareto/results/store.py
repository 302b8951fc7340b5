"""Where results live: a local directory or a cloud URI, through pyarrow's filesystems.

`Store("results")`, `Store("/abs/path")`, `Store("s3://bucket/prefix")`, `Store("gs://…")` or
`Store("file:///abs/path")`. Every write is atomic: locally a temporary file renamed into
place (a reader sees the whole file or none), on object stores a single PUT (objects appear
whole). Paths inside a store are relative, "/"-separated, and may not climb out of its root.
"""

from __future__ import annotations

import errno
import io
import os
import posixpath
import tempfile
from pathlib import Path

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq


class StorageError(Exception):
    """The storage location cannot be used (unwritable, unknown scheme, missing credentials)."""


class PathEscapeError(StorageError, ValueError):
    """A relative path inside a store that would climb out of its root (../, an absolute path)."""


class Store:
    def __init__(self, root: str) -> None:
        self.root_text = str(root)
        if "://" in self.root_text:
            try:
                self.fs, base = pafs.FileSystem.from_uri(self.root_text)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError, OSError) as exc:
                raise StorageError(f"cannot open storage {self.root_text!r}: {exc}. Use a local directory, "
                                   f"file:///abs/path, s3://bucket/path or gs://bucket/path (with credentials set up)") from None
            self.local = isinstance(self.fs, pafs.LocalFileSystem)
            self.base = base.rstrip("/")
        else:
            self.fs, self.local = pafs.LocalFileSystem(), True
            self.base = str(Path(self.root_text).resolve())

    def __repr__(self) -> str:
        return f"Store({self.root_text!r})"

    # ------------------------------------------------------------------ paths
    def path(self, rel: str) -> str:
        norm = posixpath.normpath(rel) if rel else ""
        if norm == ".." or norm.startswith("../") or posixpath.isabs(norm) or "\\" in rel or "\0" in rel:
            raise PathEscapeError(f"{rel!r} escapes the storage root {self.root_text!r}: names inside it are "
                                  f"relative and may not climb out (no '..', no leading '/')")
        return f"{self.base}/{norm}" if norm and norm != "." else self.base

    def display(self, rel: str = "") -> str:
        """The location as a user would type it (a local path, or the URI)."""
        if "://" not in self.root_text:
            return self.path(rel)
        return self.root_text.rstrip("/") + (f"/{rel}" if rel else "")

    def local_path(self, rel: str = "") -> Path | None:
        return Path(self.path(rel)) if self.local else None

    # ------------------------------------------------------------------ queries
    def exists(self, rel: str) -> bool:
        return self.fs.get_file_info(self.path(rel)).type != pafs.FileType.NotFound

    def listdir(self, rel: str) -> list[str]:
        info = self.fs.get_file_info(pafs.FileSelector(self.path(rel), allow_not_found=True))
        return sorted(posixpath.basename(i.path) for i in info)

    # ------------------------------------------------------------------ reading and writing
    def read_text(self, rel: str) -> str:
        with self.fs.open_input_stream(self.path(rel)) as f:
            return f.read().decode()

    def read_table(self, rel: str, columns: list[str] | None = None, use_threads: bool = True) -> pa.Table:
        """One Parquet file (all its columns, or `columns`), read as one file: pq.ParquetFile, not
        pq.read_table's dataset machinery (2–4× less per small file: a sweep's consolidation reads
        four per trial, best without threads, `use_threads=False`)."""
        with self.fs.open_input_file(self.path(rel)) as f:
            return pq.ParquetFile(f).read(columns=columns, use_threads=use_threads)

    def write_bytes(self, rel: str, data: bytes) -> None:
        target = self.path(rel)
        try:
            self.fs.create_dir(posixpath.dirname(target), recursive=True)
            if self.local:
                fd, tmp = tempfile.mkstemp(prefix=f".{posixpath.basename(target)}.", suffix=".tmp",
                                           dir=posixpath.dirname(target))
                try:
                    with os.fdopen(fd, "wb") as f:
                        f.write(data)
                    os.replace(tmp, target)
                except BaseException:
                    Path(tmp).unlink(missing_ok=True)
                    raise
            else:
                with self.fs.open_output_stream(target) as f:  # one PUT: the object appears whole
                    f.write(data)
        except OSError as exc:
            full = exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
            fix = ("Free space there or choose another location with --storage" if full else
                   "Choose a writable location with --storage (or storage.root in the spec)")
            raise StorageError(f"cannot write {self.display(rel)}: {exc.strerror or exc}. {fix}; nothing partial "
                               f"was left.") from None

    def write_text(self, rel: str, text: str) -> None:
        self.write_bytes(rel, text.encode())

    def write_table(self, rel: str, table: pa.Table) -> None:
        buf = io.BytesIO()
        pq.write_table(table, buf)
        self.write_bytes(rel, buf.getvalue())

    def writable_problem(self, rel: str = "") -> str | None:
        """Why a file could not be written under `rel`, found without writing anything; None when
        nothing is known to stand in the way (an object store is only found out by writing)."""
        if not self.local:
            return None
        target = Path(self.path(rel))
        probe = target
        while not probe.exists():  # the nearest folder that exists: the one a write would create under
            if probe.parent == probe:
                break
            probe = probe.parent
        where = self.display(rel)
        if not probe.is_dir():
            return (f"cannot write {where}: {probe} is a file, not a folder. Choose a writable location with "
                    f"--storage (or storage.root in the spec)")
        if not os.access(probe, os.W_OK | os.X_OK):
            return (f"cannot write {where}: {probe} is not writable (permission denied or a read-only file "
                    f"system). Choose a writable location with --storage (or storage.root in the spec)")
        return None

    def check_writable(self, rel: str) -> None:
        """Fail early, before any work, when the location cannot take a file."""
        self.write_bytes(posixpath.join(rel, ".write-check"), b"ok")
        self.fs.delete_file(self.path(posixpath.join(rel, ".write-check")))
