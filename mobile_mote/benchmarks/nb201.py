"""NB201's benchmark table (../shared/data/nb201/benchmark.csv) as plain data keyed by arch string."""
from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError
from . import register_benchmark

DATASETS = {"cifar10": "cifar10", "cifar100": "cifar100", "imagenet16": "imagenet16"}
# NB201's main target: the data set of its true accuracy unless one is named (mote search and mote pareto's
# --benchmark-dataset, RunSpec.benchmark_dataset) and the main target of the correlation studies
MAIN_DATASET = "cifar100"
REQUIRED = ("index", "arch", "cifar10_acc200", "cifar100_acc200", "imagenet16_acc200")


@dataclass(frozen=True)
class NB201Row:
    index: int
    arch: str
    acc200: dict[str, float]  # final test accuracy (%) per data set
    acc12: dict[str, float]  # test accuracy (%) after 12 epochs
    time12: dict[str, float]  # seconds the 12-epoch training took
    params_m: dict[str, float]
    flops_m: dict[str, float]


def load_nb201_table(path: str | Path) -> dict[str, NB201Row]:
    p = Path(path)
    if not p.is_file():
        raise InputError(f"NB201 benchmark table {p} does not exist; expected benchmark.csv with columns "
                         + ", ".join(REQUIRED))
    rows: dict[str, NB201Row] = {}
    with open(p, newline="") as f:
        reader = csv.DictReader(f)
        missing = [c for c in REQUIRED if c not in (reader.fieldnames or [])]
        if missing:
            raise InputError(f"{p} lacks column(s) {missing}; expected NB201's benchmark.csv")
        for r in reader:
            def pick(suffix: str) -> dict[str, float]:
                return {d: float(r[f"{d}_{suffix}"]) for d in DATASETS if r.get(f"{d}_{suffix}") not in (None, "")}
            try:
                rows[r["arch"]] = NB201Row(int(r["index"]), r["arch"], pick("acc200"), pick("acc12"),
                                           pick("time12_s"), pick("params_m"), pick("flops_m"))
            except ValueError as e:
                raise InputError(f"{p}: malformed row {r.get('index')!r}: {e}") from None
    return rows


class NB201Index:
    """NB201's own cell order (index <-> canonical cell string), read from a table with ``index`` and
    ``arch`` columns (the benchmark's benchmark.csv). Tables keyed by index (latency_ms.csv) are
    translated through it; the order is arbitrary, so it is read, never computed."""

    def __init__(self, archs: list[str], source: str = ""):
        self.archs = archs
        self.source = source
        self._index = {a: i for i, a in enumerate(archs)}

    @classmethod
    def from_csv(cls, path: str | Path) -> "NB201Index":
        p = Path(path)
        if not p.is_file():
            raise InputError(f"NB201 index table {p} does not exist; expected benchmark.csv with 'index' and "
                             "'arch' columns (pass it with --benchmark)")
        by_index: dict[int, str] = {}
        with open(p, newline="") as f:
            reader = csv.DictReader(f)
            if not {"index", "arch"} <= set(reader.fieldnames or []):
                raise InputError(f"{p} has no 'index' and 'arch' columns; expected NB201's benchmark.csv")
            for n, r in enumerate(reader, 2):
                try:
                    by_index[int(r["index"])] = r["arch"]
                except (TypeError, ValueError):
                    raise InputError(f"{p}:{n}: index {r.get('index')!r} is not a whole number") from None
        if sorted(by_index) != list(range(len(by_index))):
            raise InputError(f"{p} does not hold the indices 0..{len(by_index) - 1} exactly once")
        return cls([by_index[i] for i in range(len(by_index))], str(p))

    @classmethod
    def beside(cls, table: str | Path, explicit: str | Path | None = None) -> "NB201Index":
        """The index for an index-keyed table: ``explicit``, else benchmark.csv in the table's folder."""
        if explicit:
            return cls.from_csv(explicit)
        cand = Path(table).with_name("benchmark.csv")
        if not cand.is_file():
            raise InputError(f"{table} is keyed by NB201 index; its benchmark.csv (index, arch) was not found "
                             f"beside it ({cand}); pass it with --benchmark")
        return cls.from_csv(cand)

    def __len__(self) -> int:
        return len(self.archs)

    def bind(self, space) -> "IndexedSpace":
        """``space`` (the nb201 SearchSpace) with this index's ``index_of`` / ``arch_at``."""
        return IndexedSpace(space, self)

    def index_of(self, arch: str) -> int:
        try:
            return self._index[arch]
        except KeyError:
            raise InputError(f"cell {arch[:80]!r} is not in the NB201 index {self.source}") from None

    def arch_at(self, index: int) -> str:
        if not 0 <= index < len(self.archs):
            raise InputError(f"NB201 index {index} out of range 0..{len(self.archs) - 1}")
        return self.archs[index]


@register_benchmark("nb201")
class NB201Benchmark:
    """NB201 for a search: the evaluation stage reads the table's 12-epoch accuracy and training time (as
    the paper does); the reported accuracy is the 200-epoch test accuracy on ``dataset``."""
    space = "nb201"
    suffix = ".csv"
    describe = "NB201's benchmark.csv"
    packaged = None  # not ours to ship

    def __init__(self, path: str | Path, dataset: str | None = MAIN_DATASET):
        dataset = dataset or MAIN_DATASET
        if dataset not in DATASETS:
            raise InputError(f"benchmark data set {dataset!r}; accepted: {', '.join(DATASETS)}")
        self.table = load_nb201_table(path)
        self.dataset = dataset
        self.truth_source = f"NB201 benchmark: {dataset} test accuracy after 200 epochs"
        self.evaluation_source = (f"NB201 benchmark table: {dataset} test accuracy after 12 epochs, its training "
                                  "time as cost")

    def true_accuracy(self, arch: str) -> float | None:
        row = self.table.get(arch)
        return None if row is None else row.acc200.get(self.dataset)

    def truth(self) -> dict[str, float]:
        return {a: r.acc200.get(self.dataset) for a, r in self.table.items()}

    # -- for correlation studies (tools/correlation.py) ----------------------------------------------
    targets = ("cifar10", "cifar100", "imagenet16")
    main_target = MAIN_DATASET

    def truth_for(self, archs: list[str]) -> dict[str, list[float]]:
        return {d: [self.table[a].acc200[d] for a in archs] for d in self.targets}

    def baselines(self, archs: list[str], space) -> dict[str, dict[str, list]]:
        from ..correlation import table_baselines
        return table_baselines(archs, self.table, space)

    def cell_fields(self, arch: str) -> dict:
        return {"index": self.table[arch].index}

    def ceiling(self, archs: list[str]) -> dict | None:
        return None  # NB201's table holds one mean per cell here, not its seeds

    def short_training(self, arch: str) -> dict:
        row = self.table[arch]
        acc = row.acc12.get(self.dataset)
        if acc is None:  # 11 cells of the table have no 12-epoch figures; the stage ranks them last
            return {"accuracy": None, "seconds": 0.0, "source": "table",
                    "error": f"the benchmark table has no 12-epoch {self.dataset} accuracy for this cell"}
        return {"accuracy": acc, "seconds": row.time12.get(self.dataset) or 0.0, "source": "table"}


class IndexedSpace:
    """An NB201 space seen through the benchmark's index: every SearchSpace method, plus
    ``index_of(arch) -> int`` and ``arch_at(i) -> parsed cell`` in the benchmark's own order."""

    def __init__(self, space, index: NB201Index):
        if len(index) != space.size():
            raise InputError(f"the NB201 index {index.source} lists {len(index)} cells, the space has {space.size()}")
        self._space, self._index = space, index
        self._by_ops = {space.from_str(a): i for i, a in enumerate(index.archs)}

    def __getattr__(self, name):
        return getattr(self._space, name)

    def index_of(self, arch) -> int:
        try:
            return self._by_ops[self._space.from_str(arch)]
        except KeyError:
            raise InputError(f"cell {arch!r} is not in the NB201 index {self._index.source}") from None

    def arch_at(self, index: int):
        return self._space.from_str(self._index.arch_at(index))
