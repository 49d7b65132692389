"""Atomic file writes: write beside the target, then rename over it, so a kill mid-write leaves the old
file (or none) and never a torn one. One place for the pattern every result writer needs."""
from __future__ import annotations

import os
from pathlib import Path


def _tmp(path: Path) -> Path:
    # per-process name: two writers of the same file never share a temporary
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def write_text(path, text: str) -> None:
    path = Path(path)
    tmp = _tmp(path)
    try:
        tmp.write_text(text)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def torch_save(obj, path) -> None:
    import torch
    path = Path(path)
    tmp = _tmp(path)
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
