"""NAS-Bench-Macro's CIFAR-10 table (../shared/data/macro/nas-bench-macro_cifar10.json) as plain data.

The file maps each of the 6,561 8-digit keys (the ``macro`` space's canonical strings) to
``{"test_acc": [3 seeds], "mean_acc", "std", "params", "flops"}``; accuracies in %, ``flops`` are
multiply-accumulates (equal to ``MacroSpace.macs``). Only 3,969 networks were trained: a key whose
stage has an identity before an MB layer (after the stage's first layer) shares the row of
``benchmark_key(key)``, the same layers with those identities moved to the end of the stage.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError
from . import register_benchmark

MACRO_LICENSE_NOTE = ("NAS-Bench-Macro CIFAR-10 table (Su et al., CVPR 2021; github.com/xiusu/NAS-Bench-Macro), "
                      "Copyright 2021 Xiu Su, licensed under the Apache License, Version 2.0")

STAGE_DEPTHS = (2, 3, 3)
_EXPECTED = ("expected NAS-Bench-Macro's nas-bench-macro_cifar10.json: a JSON object mapping 8-digit keys of "
             "0/1/2 to {test_acc: [3 numbers], mean_acc, std, params, flops}")


@dataclass(frozen=True)
class MacroRow:
    key: str
    test_acc: tuple[float, float, float]  # CIFAR-10 test accuracy (%) of the 3 seeds
    mean_acc: float
    std: float
    params: int
    flops: int  # multiply-accumulates of convs and the linear layer


def benchmark_key(key: str) -> str:
    """The key of the network the benchmark actually trained for ``key`` (identities after each stage's
    first layer moved to the end of that stage, the other layers kept in order): the space's network key."""
    from mobile_mote.search_spaces.macro import MacroSpace
    return MacroSpace().network_key(key)


def _valid_key(key) -> bool:
    return isinstance(key, str) and len(key) == sum(STAGE_DEPTHS) and all(ch in "012" for ch in key)


def _number(v, what: str, where: str) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise InputError(f"{where}: {what} is {v!r}, expected a finite number; {_EXPECTED}")
    return float(v)


def _count(v, what: str, where: str) -> int:
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    if isinstance(v, bool) or not isinstance(v, int) or v < 0:
        raise InputError(f"{where}: {what} is {v!r}, expected a non-negative integer; {_EXPECTED}")
    return v


def load_macro_table(path: str | Path) -> dict[str, MacroRow]:
    """Every row of the table, keyed by its 8-digit key; InputError (one line) on anything malformed."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"NAS-Bench-Macro table {p} does not exist; {_EXPECTED}")
    try:
        with open(p) as f:
            data = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise InputError(f"{p} is not valid JSON ({e}); {_EXPECTED}") from None
    if not isinstance(data, dict) or not data:
        raise InputError(f"{p} holds {type(data).__name__ if data else 'nothing'}, not a non-empty object; "
                         f"{_EXPECTED}")
    rows: dict[str, MacroRow] = {}
    for key, rec in data.items():
        where = f"{p} entry {key!r}"
        if not _valid_key(key):
            raise InputError(f"{where}: the key is not 8 digits of 0/1/2; {_EXPECTED}")
        if not isinstance(rec, dict):
            raise InputError(f"{where} is {type(rec).__name__}, not an object; {_EXPECTED}")
        missing = [f for f in ("test_acc", "mean_acc", "std", "params", "flops") if f not in rec]
        if missing:
            raise InputError(f"{where} lacks {', '.join(missing)}; {_EXPECTED}")
        accs = rec["test_acc"]
        if not isinstance(accs, list) or len(accs) != 3:
            raise InputError(f"{where}: test_acc is {accs!r}, expected a list of 3 numbers; {_EXPECTED}")
        rows[key] = MacroRow(key, tuple(_number(a, "a test_acc value", where) for a in accs),
                             _number(rec["mean_acc"], "mean_acc", where), _number(rec["std"], "std", where),
                             _count(rec["params"], "params", where), _count(rec["flops"], "flops", where))
    return rows


@register_benchmark("macro")
class MacroBenchmark:
    """NAS-Bench-Macro for a search. It has no short-training figure, so the evaluation stage trains the
    top-k on the proxy data (``short_training`` is None); the reported accuracy is the mean CIFAR-10 test
    accuracy over the benchmark's three seeds."""
    space = "macro"
    suffix = ".json"
    describe = "NAS-Bench-Macro's nas-bench-macro_cifar10.json"
    packaged = "nas-bench-macro_cifar10.json"  # Apache-2.0, shipped with its notice
    short_training = None

    def __init__(self, path, dataset: str | None = None):  # one data set, CIFAR-10: ``dataset`` is not read
        self.table = load_macro_table(path)
        self.truth_source = "NAS-Bench-Macro: CIFAR-10 test accuracy, mean of 3 seeds (50 epochs)"

    def true_accuracy(self, arch: str) -> float | None:
        row = self.table.get(benchmark_key(arch))
        return None if row is None else row.mean_acc

    def truth(self) -> dict[str, float]:
        return {k: self.true_accuracy(k) for k in self.table}

    # -- for correlation studies (tools/correlation.py) ----------------------------------------------
    targets = ("cifar10",)
    main_target = "cifar10"

    def _row(self, arch: str) -> MacroRow:
        return self.table[benchmark_key(arch)]

    def truth_for(self, archs: list[str]) -> dict[str, list[float]]:
        return {"cifar10": [self._row(a).mean_acc for a in archs]}

    def baselines(self, archs: list[str], space) -> dict[str, dict[str, list]]:
        return {"macs": {"cifar10": [space.macs(a) for a in archs]},
                "params": {"cifar10": [space.params(a) for a in archs]}}

    def cell_fields(self, arch: str) -> dict:
        return {"test_acc_seeds": list(self._row(arch).test_acc)}

    def ceiling(self, archs: list[str]) -> dict:
        """Rank agreement between the benchmark's own seeds (one seed's accuracy as the "estimator" of
        another's, and of the mean of the other two): what no estimator can beat on average."""
        from itertools import combinations

        from ..correlation import rank_agreement
        seeds = [[self._row(a).test_acc[i] for a in archs] for i in range(3)]
        pairs = {f"seed {i} vs seed {j}": rank_agreement(seeds[i], seeds[j]) for i, j in combinations(range(3), 2)}
        rest = {f"seed {i} vs mean of the others": rank_agreement(
            seeds[i], [sum(seeds[k][n] for k in range(3) if k != i) / 2 for n in range(len(archs))]) for i in range(3)}
        taus = [v["kendall_tau"] for v in pairs.values() if v["kendall_tau"] is not None]
        return {"pairs": pairs, "one_vs_rest": rest,
                "mean_pairwise_kendall_tau": float(sum(taus) / len(taus)) if taus else None}
