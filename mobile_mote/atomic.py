"""Atomic file writes: write beside the target, then rename over it, so a kill mid-write leaves the old
file (or none) and never a torn one. One place for the pattern every result writer needs.

* ``write_text(path, text)`` / ``write_bytes(path, data)`` / ``torch_save(obj, path)``: whole files;
* ``atomic_path(path)``: a context manager yielding a temporary path in the same folder for writers that
  want a file name (``torch.save``, ``tarfile``, ``onnx.save``); renamed into place when the block ends
  normally, removed when it raises.

``fsync=True`` also flushes the file to disk before the rename and the folder after it, so the new
name survives a power cut, not just a killed process (shards, indexes: files that are expensive to redo).
"""
from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Iterator


def _tmp(path: Path) -> Path:
    # per-process name: two writers of the same file never share a temporary
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def fsync_file(path) -> None:
    """Flush a written file's data to disk (any descriptor of the file will do on POSIX)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path) -> None:
    """Flush a folder's entries (a rename into it) to disk; a no-op where folders cannot be opened."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path, *, fsync: bool = False, tmp=None) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success rename it over ``path``, on failure remove it.

    The writer must have closed the file when the block ends. ``tmp`` names the temporary explicitly
    (it must be in the same folder; default ``.<name>.<pid>.tmp``), for writers whose stale
    temporaries are recognised by name.
    """
    path = Path(path)
    tmp = Path(tmp) if tmp is not None else _tmp(path)
    if tmp.parent != path.parent:
        raise ValueError(f"atomic_path: temporary {tmp} must be in the folder of {path}")
    try:
        yield tmp
        if fsync:
            fsync_file(tmp)
        os.replace(tmp, path)
        if fsync:
            fsync_dir(path.parent)
    finally:
        tmp.unlink(missing_ok=True)


def write_bytes(path, data: bytes, *, fsync: bool = False, tmp=None) -> None:
    with atomic_path(path, fsync=fsync, tmp=tmp) as t:
        t.write_bytes(data)


def write_text(path, text: str, *, fsync: bool = False, tmp=None) -> None:
    with atomic_path(path, fsync=fsync, tmp=tmp) as t:
        t.write_text(text)


def torch_save(obj, path, *, fsync: bool = False) -> None:
    import torch
    with atomic_path(path, fsync=fsync) as t:
        torch.save(obj, t)
