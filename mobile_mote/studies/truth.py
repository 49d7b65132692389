"""What a benchmark's table says on its own, for every study that sets a search or a score beside it: which
table to read, the best feasible network and the mean over the feasible ones, what random search with the
same number of networks finds, and MOTE's score refitted on the population it is compared over."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import InputError


def benchmark_path(space: str, given: str | None, shared: Path) -> str | Path:
    """The table given (as given: a study records it), else the packaged one, else NB201's
    ``benchmark.csv`` in the shared data folder."""
    from ..benchmarks import packaged_benchmark
    return given or packaged_benchmark(space) or Path(shared) / "nb201" / "benchmark.csv"


def reference(bench, space, costs, budget) -> dict:
    """What the table alone says of a condition: how many networks fit, the best of them, their mean."""
    from ..efficiency import Constraint
    limit = Constraint(max_macs=budget)
    truth = bench.truth()
    # one entry per distinct network (space.network_key): a search scores each network once, so random
    # search with the same N draws N distinct networks
    feasible = {space.network_key(a): acc for a, acc in truth.items()
                if acc is not None and limit.admits(costs(space.canonical(a)))}
    keys = sum(1 for a, acc in truth.items() if acc is not None and limit.admits(costs(space.canonical(a))))
    if not feasible:
        raise InputError(f"no network of the benchmark fits {limit.label()}")
    best = max(feasible, key=feasible.get)
    accs = np.asarray(list(feasible.values()), dtype=float)
    return {"feasible": len(feasible), "feasible_keys": keys,
            "best_feasible": {"arch": space.canonical(best), "accuracy": feasible[best]},
            "mean_feasible_accuracy": float(accs.mean()), "feasible_accuracy": accs}


def random_best_of_n(feasible_accuracy: np.ndarray, n: int, seed: int) -> float:
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(feasible_accuracy), size=min(max(n, 1), len(feasible_accuracy)), replace=False)
    return float(feasible_accuracy[pick].max())


def refit_mote(recs: list[dict], config: dict) -> tuple[list[dict], dict | None]:
    """MOTE's records with Box-Cox refitted on this population and the fit, or the records as they are
    (and None) when ``config`` uses another transform: a fitted transform ranks only the population it saw."""
    from ..estimators import get_estimator
    from ..estimators.mote import rescore_population
    cfg = {k: v for k, v in config.items() if k != "estimator"}
    if cfg.get("transform", "box-cox") != "box-cox":
        return recs, None
    return rescore_population(recs, get_estimator("mote", **cfg), "fit")
