"""NB201's benchmark table (../shared/data/nb201/benchmark.csv) as plain data keyed by arch string."""
from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from .errors import InputError

DATASETS = {"cifar10": "cifar10", "cifar100": "cifar100", "imagenet16": "imagenet16"}
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
