"""Benchmark tables (ground truth about architectures) and their readers: NB201, NAS-Bench-Macro.

A reader turns a benchmark file into plain data keyed by canonical architecture string; lookups a
benchmark defines for itself (NB201's index <-> cell order) live with its reader, never in a space.
Each reader registers itself (``@register_benchmark("name")``) and declares the space it belongs to
(``space``), how its file is recognised (``suffix``), what the file is (``describe``) and the copy
shipped inside the package, if any (``packaged``).

``load_benchmark(path, space, dataset)`` gives what a search needs from one: the space it belongs to,
the true accuracy of an architecture (reporting only, the search never sees it) and, where the table
has one, a short-training figure the evaluation stage may use in place of real training.
"""
from __future__ import annotations

from pathlib import Path

from ..errors import InputError
from ..registry import Registry

# Modules that register readers, imported on the first lookup.
_MODULES = ("nb201", "macro")


def _import_all() -> None:
    import importlib
    for mod in _MODULES:
        importlib.import_module(f"{__name__}.{mod}")


BENCHMARKS = Registry("benchmark", load=_import_all)
register_benchmark = BENCHMARKS.register


def _accepted() -> str:
    return " or ".join(f"{cls.describe} (--space {cls.space})" for cls in BENCHMARKS.entries().values())


def benchmark_reader(space: str) -> type:
    """The reader of ``space``'s benchmark table; a space without one is an InputError."""
    for cls in BENCHMARKS.entries().values():
        if cls.space == space:
            return cls
    raise InputError(f"space {space!r} has no benchmark table; accepted: {_accepted()}")


def packaged_benchmark(space: str) -> Path | None:
    """The benchmark table shipped for ``space`` (with its licence notice, data/NOTICE.md), or None: a
    search of such a space reports its winner's true accuracy and rank without --benchmark."""
    name = next((cls.packaged for cls in BENCHMARKS.entries().values() if cls.space == space), None)
    return Path(__file__).with_name("data") / name if name else None


def load_benchmark(path: str | Path, space: str, dataset: str | None = None):
    """The benchmark at ``path``, read by ``space``'s reader; a file another space's reader recognises
    (its suffix) is refused rather than misread. ``dataset`` picks NB201's data set (cifar10, cifar100,
    imagenet16)."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"benchmark {p} does not exist; accepted: {_accepted()}")
    reader = benchmark_reader(space)
    owner = next((cls for cls in BENCHMARKS.entries().values() if p.suffix == cls.suffix), reader)
    if owner.space != space:
        raise InputError(f"benchmark {p.name} is the {owner.space} table, which needs --space {owner.space}; "
                         f"--space {space} accepts {reader.describe}")
    return reader(p, dataset)
