"""Benchmark tables (ground truth about architectures) and their readers: NB201, NAS-Bench-Macro.

A reader turns a benchmark file into plain data keyed by canonical architecture string; lookups a
benchmark defines for itself (NB201's index <-> cell order) live with its reader, never in a space.

``load_benchmark(path, space, dataset)`` gives what a search needs from one: the space it belongs to,
the true accuracy of an architecture (reporting only, the search never sees it) and, where the table
has one, a short-training figure the evaluation stage may use in place of real training.
"""
from __future__ import annotations

from pathlib import Path

from ..errors import InputError


# Benchmark tables that ship inside the package (with their licence notice, data/NOTICE.md), by space:
# a search of such a space reports its winner's true accuracy and rank without --benchmark.
PACKAGED = {"macro": "nas-bench-macro_cifar10.json"}


def packaged_benchmark(space: str) -> Path | None:
    """The benchmark table shipped for ``space``, or None."""
    name = PACKAGED.get(space)
    return Path(__file__).with_name("data") / name if name else None


def load_benchmark(path: str | Path, space: str, dataset: str | None = None):
    """The benchmark at ``path`` (NB201's benchmark.csv or NAS-Bench-Macro's JSON), checked to belong to
    ``space``; ``dataset`` picks NB201's data set (cifar10, cifar100, imagenet16)."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"benchmark {p} does not exist; accepted: NB201's benchmark.csv (--space nb201) or "
                         "NAS-Bench-Macro's nas-bench-macro_cifar10.json (--space macro)")
    if p.suffix == ".json":
        from .macro import MacroBenchmark
        bench = MacroBenchmark(p)
    else:
        from .nb201 import MAIN_DATASET, NB201Benchmark
        bench = NB201Benchmark(p, dataset or MAIN_DATASET)
    if bench.space != space:
        raise InputError(f"benchmark {p.name} is the {bench.space} table; it needs --space {bench.space}, not {space}")
    return bench
