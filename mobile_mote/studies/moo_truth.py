"""Multi-objective searches measured against a benchmark's true front (``tools/moo_benchmark.py``).

Every algorithm is the library's own registered class (``mote pareto --algorithm``), run by the search
driver with its objectives looked up in tables instead of scored, so thousands of runs fit on a CPU:

- ``performance="oracle"``: the benchmark's own accuracy guides the search (NB201: CIFAR-10 12-epoch
  test accuracy; NAS-Bench-Macro: its mean test accuracy, the only one it has), the algorithm's own
  quality;
- ``performance="zero-cost"``: the project's ranking rule without MOTE's training terms
  (``fusion.DEFAULT_RULE``: vkdnw, expressivity, trainability, macs, jacov, naswot, sum of log-ranks
  over the scored pool), what a user without a benchmark gets. Only networks whose proxies were computed
  here (a components table) can be evaluated; the pool is stated in the output.

Costs: latency on a device (NB201's ``latency_ms.csv``) or the space's MACs. Whatever guided the search,
its found front (the networks it deems non-dominated among the first k it evaluated, in its own
objectives) is scored with TRUE error (NB201: 100 - CIFAR-10 200-epoch accuracy; Macro: 100 - mean
accuracy) and the true cost, normalised by min and max over the reference set; NB201 cells above 90 %
error are dropped, as MODNAS does. Reported: hypervolume ratio to the true front (reference point (1, 1)),
IGD and IGD+ to the true front, after each budget k of evaluated networks.
"""
from __future__ import annotations

import json
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..pareto import hypervolume_2d, igd, igd_plus, normalise, pareto_front

MAX_ERROR = 90.0
REF = (1.0, 1.0)
ZERO_COST_RULE = ("vkdnw", "expressivity", "trainability", "macs", "jacov", "naswot")
MTF_METRICS = ("synflow", "jacov", "snip")  # MTF-PDNS's training-free metrics

# label -> (registered algorithm, its settings for the study); "random" is uniform sampling of the pool.
METHODS: dict[str, tuple[str, dict] | None] = {
    "random": None,
    "nsga2": ("nsga2", {"population": 50}),
    "pdns": ("pdns", {"population": 20, "metrics": ("score",)}),
    "lamoo-random": ("lamoo", {"sampler": "random"}),
    "lamoo-nsga2": ("lamoo", {"sampler": "nsga2"}),
    "mo-hdnas": ("mo-hdnas", {"population": 50}),
}
# zero-cost only: MTF-PDNS on its paper's metrics, and NSGA-II on exactly the same objectives
MTF_METHODS: dict[str, tuple[str, dict]] = {
    "pdns-mtf": ("pdns", {"population": 20, "metrics": MTF_METRICS}),
    "nsga2-mtf": ("nsga2", {"population": 50}),
}
# zero-cost only, where the pool has MO-HDNAS's own similarity (the ``cka`` estimator's column)
CKA_METHODS: dict[str, tuple[str, dict]] = {"mo-hdnas-cka": ("mo-hdnas", {"population": 50})}


@dataclass
class Problem:
    """A space's tables, every array indexed like ``archs``."""
    space_name: str
    space: object
    archs: list[str]  # every network of the space (NB201 cells in the benchmark's order; macro keys)
    error: np.ndarray  # true test error %
    costs: dict[str, np.ndarray]  # objective name -> cost (ms or MACs)
    performance: dict[str, np.ndarray]  # "oracle" / "zero-cost" -> minimised (nan: not scored)
    metrics: np.ndarray | None = None  # (n, 3) minimised MTF metrics (nan: not scored)
    cka: np.ndarray | None = None  # minimised -CKA similarity (nan: not scored)
    notes: dict = field(default_factory=dict)

    def __post_init__(self):
        self.index = {a: i for i, a in enumerate(self.archs)}

    def index_of(self, arch: str) -> int:
        i = self.index.get(arch)
        return i if i is not None else self.index.setdefault(arch, int(self.space.index_of(arch)))

    def pool(self, performance: str) -> np.ndarray:
        return np.nonzero(np.isfinite(self.performance[performance]))[0]


# -- the tables ---------------------------------------------------------------------------------------
def nb201_problem(benchmark: str, latency: str, devices: list[str], components: str | None) -> Problem:
    from mobile_mote.search_spaces import get_space

    from ..benchmarks.nb201 import NB201Index, load_nb201_table
    from ..modnas import DeviceLatencies
    table = load_nb201_table(benchmark)
    space = NB201Index.from_csv(benchmark).bind(get_space("nb201"))
    n = space.size()
    archs = [space.to_str(space.arch_at(i)) for i in range(n)]
    acc200, acc12 = np.full(n, np.nan), np.full(n, np.nan)
    for row in table.values():
        acc200[row.index], acc12[row.index] = row.acc200["cifar10"], row.acc12.get("cifar10", np.nan)
    if np.isnan(acc200).any():
        raise InputError(f"{benchmark} lacks cifar10_acc200 for {int(np.isnan(acc200).sum())} cells")
    costs = {d: v for d, v in DeviceLatencies.from_csv(latency, space, devices).ms.items()}
    costs["macs"] = np.asarray([space.macs(a) for a in archs], dtype=float)
    perf = {"oracle": -acc12}
    notes = {"truth": "CIFAR-10 test error % after 200 epochs (100 - cifar10_acc200)",
             "oracle": f"CIFAR-10 12-epoch test accuracy (cifar10_acc12); the {int(np.isnan(acc12).sum())} cells the "
                       "table gives none are left out of the oracle searches and of their true front"}
    metrics = None
    if components:
        from .components import read_records
        recs = read_records(components)
        keyed = [recs.get(space.network_key(a)) for a in archs]
        zc, metrics = _zero_cost(keyed, costs["macs"])
        perf["zero-cost"] = zc
        cka = np.asarray([-(r["components"]["cka"]) if r and r["components"].get("cka") is not None else np.nan
                          for r in keyed], dtype=float)
        # a table's values were not timed here: their proxies have no seconds (``--first-from``)
        imported = sum(1 for r in recs.values() if r.get("from_table")
                       or ("naswot" in r["components"] and "naswot" not in r.get("seconds", {})))
        tables = sorted({r["from_table"] for r in recs.values() if r.get("from_table")}) or ["a component table"]
        notes["zero_cost_pool"] = (
            f"{int(np.isfinite(zc).sum())} of {n} cells with every component ({Path(components).name} and its shards: "
            f"{len(recs) - imported} cells scored by tools/component_table.py in its seeded order"
            + (f", {imported} taken from {', '.join(tables)} with snip scored beside them" if imported else "") + ")")
    else:
        cka = None
    if cka is not None and np.isfinite(cka).any():
        notes["cka"] = (f"{int(np.isfinite(cka).sum())} cells with the cka similarity (default settings: linear CKA to the "
                        "default cell trained 10 epochs on the proxy data; provenance results/cka_reference/)")
    else:
        cka = None
    return Problem("nb201", space, archs, 100.0 - acc200, costs, perf, metrics, cka, notes=notes)


def macro_problem(benchmark: str, components: str | None) -> Problem:
    from mobile_mote.search_spaces import get_space

    from ..benchmarks.macro import load_macro_table
    table = load_macro_table(benchmark)
    space = get_space("macro")
    archs = sorted(table)
    mean = np.asarray([table[a].mean_acc for a in archs])
    costs = {"macs": np.asarray([space.macs(a) for a in archs], dtype=float)}
    perf = {"oracle": -mean}
    notes = {"truth": "CIFAR-10 test error % (100 - mean of the 3 seeds' test accuracy)",
             "oracle": "the same mean test accuracy (the benchmark records no shorter training)"}
    metrics = None
    if components:
        from ..fusion import read_component_table
        names = sorted(set(ZERO_COST_RULE) | set(MTF_METRICS))
        rows, cols = read_component_table(components, names)
        by = {a: {c: cols[c][i] for c in names} for i, a in enumerate(rows)}
        perf["zero-cost"], metrics = _zero_cost([by.get(a) for a in archs], None)
        notes["zero_cost_pool"] = f"every key ({Path(components).name})"
    return Problem("macro", space, archs, 100.0 - mean, costs, perf, metrics, notes=notes)


def _zero_cost(records: list, macs) -> tuple[np.ndarray, np.ndarray]:
    """(minimised fused rule over the scored pool, (n, 3) minimised MTF metrics); nan where not scored.
    ``records``: per network a components record (``{"components": {...}}``) or a {component: value} row."""
    from ..fusion import log_rank_sum

    def comps(r):
        if r is None:
            return None
        return r.get("components", r)
    rows = [comps(r) for r in records]
    need = [c for c in ZERO_COST_RULE if c != "macs" or macs is None] + list(MTF_METRICS)
    ok = np.asarray([r is not None and all(r.get(c) is not None for c in need) for r in rows])
    members = np.nonzero(ok)[0]

    def value(i, c):  # a proxy that came out non-finite (flagged) is that network's worst value
        v = float(rows[i][c])
        return v if np.isfinite(v) else -np.inf
    cols = {}
    for c in ZERO_COST_RULE:
        if c == "macs" and macs is not None:
            cols[c] = [float(macs[i]) for i in members]
        else:
            cols[c] = [value(i, c) for i in members]
    fused = log_rank_sum(cols)
    zc = np.full(len(rows), np.nan)
    zc[members] = -np.asarray(fused, dtype=float)
    metrics = np.full((len(rows), len(MTF_METRICS)), np.nan)
    for j, c in enumerate(MTF_METRICS):
        metrics[members, j] = -np.asarray([value(i, c) for i in members])
    return zc, metrics


# -- one run ------------------------------------------------------------------------------------------
def view(problem: Problem, label: str, objective: str, performance: str, idx: np.ndarray) -> np.ndarray:
    """The objectives the search sees for the networks at ``idx`` (minimised)."""
    cost = problem.costs[objective][idx][:, None]
    if label in MTF_METHODS:
        return np.hstack([problem.metrics[idx], cost])
    if label in CKA_METHODS:
        return np.hstack([problem.cka[idx][:, None], cost])
    return np.hstack([problem.performance[performance][idx][:, None], cost])


def search(problem: Problem, label: str, objective: str, performance: str, seed: int, budget: int) -> np.ndarray:
    """Indices of the networks ``label`` evaluated, in order (at most ``budget``)."""
    from mobile_mote.search import drive
    from mobile_mote.search.algorithms import algorithm_class
    pool = problem.pool(performance)
    if label in MTF_METHODS:
        pool = np.intersect1d(pool, np.nonzero(np.isfinite(problem.metrics).all(axis=1))[0])
    if label in CKA_METHODS:
        pool = np.intersect1d(pool, np.nonzero(np.isfinite(problem.cka))[0])
    stream = [seed, zlib.crc32(label.encode()), zlib.crc32(objective.encode()), zlib.crc32(performance.encode())]
    budget = min(budget, len(pool))
    if label == "random":
        return np.random.default_rng(stream).choice(pool, size=budget, replace=False)
    name, settings = {**METHODS, **MTF_METHODS, **CKA_METHODS}[label]
    cls = algorithm_class(name)
    cfg = cls.Config(objectives=("score", "macs"), generations=10_000, budget=budget,
                     **{k: v for k, v in settings.items()})
    space = problem.space

    def objectives(archs, _records):
        return view(problem, label, objective, performance, np.asarray([problem.index_of(a) for a in archs], dtype=int))

    if len(pool) == len(problem.archs):
        algo = cls(space, cfg, objectives=objectives)
    else:  # only the scored pool can be evaluated; random draws come from it
        allowed = set(pool.tolist())
        algo = cls(space, cfg, lambda a: problem.index_of(a) in allowed,
                   lambda r: problem.archs[int(pool[r.integers(len(pool))])], objectives)
    algo.start()
    drive(algo, stream, lambda archs, _follow: ([{"arch": a} for a in archs], len(archs)))
    return np.asarray([problem.index_of(a) for a in algo.state["archive"]], dtype=int)


# -- measured against the truth ----------------------------------------------------------------------
class Truth:
    """The true front of one (cost, reference set) and the normalisation every found front shares."""

    def __init__(self, problem: Problem, objective: str, reference: np.ndarray):
        self.err, self.cost = problem.error, problem.costs[objective]
        self.lo = np.array([self.err[reference].min(), self.cost[reference].min()])
        self.hi = np.array([self.err[reference].max(), self.cost[reference].max()])
        T = self.points(reference)
        self.front = T[pareto_front(T)]
        self.hv = hypervolume_2d(self.front, REF)

    def points(self, idx: np.ndarray) -> np.ndarray:
        idx = np.asarray(idx, dtype=int)
        idx = idx[self.err[idx] <= MAX_ERROR]
        return normalise(np.stack([self.err[idx], self.cost[idx]], axis=1), self.lo, self.hi)

    def score(self, found: np.ndarray) -> dict:
        P = self.points(found)
        hv = hypervolume_2d(P, REF)
        return {"hv_ratio": hv / self.hv, "igd": igd(P, self.front), "igd_plus": igd_plus(P, self.front)}


def run_entries(problem: Problem, truth: Truth, label: str, objective: str, performance: str, seed: int,
                budgets: list[int]) -> list[dict]:
    t0 = time.perf_counter()
    ev = search(problem, label, objective, performance, seed, max(budgets))
    seconds = time.perf_counter() - t0
    out = []
    for k in budgets:
        head = ev[:k]
        found = head[pareto_front(view(problem, label, objective, performance, head))]
        out.append({"algorithm": label, "objective": objective, "performance": performance, "seed": seed,
                    "evaluations": int(len(head)), "front": [problem.archs[i] for i in found],
                    **truth.score(found), "search_seconds_to_max_budget": round(seconds, 3)})
    return out


def methods_for(performance: str, problem: Problem) -> list[str]:
    labels = list(METHODS)
    if performance == "zero-cost" and problem.metrics is not None:
        labels += list(MTF_METHODS)
    if performance == "zero-cost" and problem.cka is not None:
        labels += list(CKA_METHODS)
    return labels


def key_of(entry: dict) -> tuple:
    return entry["algorithm"], entry["objective"], entry["performance"], int(entry["seed"])


def read_runs(path: Path) -> list[dict]:
    """The runs so far (a torn last line from a kill is dropped)."""
    from ..correlation import read_jsonl
    return read_jsonl(Path(path))


def read_result(path) -> dict:
    """A result JSON of tools/moo_benchmark.py (gzipped when its name ends in .gz)."""
    import gzip
    data = Path(path).read_bytes()
    return json.loads(gzip.decompress(data) if str(path).endswith(".gz") else data)


def write_result(path, result: dict) -> None:
    """Write ``result`` as JSON; gzipped (deterministic bytes) when the name ends in .gz."""
    import gzip

    from ..atomic import write_bytes
    data = (json.dumps(result, default=list) + "\n").encode()
    write_bytes(Path(path), gzip.compress(data, mtime=0) if str(path).endswith(".gz") else data)


def seed_runs(result_json: Path, runs_path: Path) -> int:
    """Write the runs of a result JSON to ``runs_path`` (the work file a later run appends to)."""
    try:
        runs = read_result(result_json)["runs"]
    except (json.JSONDecodeError, KeyError, TypeError, OSError, EOFError):
        raise InputError(f"{result_json} is not a result of tools/moo_benchmark.py (no 'runs' list)") from None
    Path(runs_path).write_text("".join(json.dumps(e) + "\n" for e in runs))
    return len(runs)


def run_all(problem: Problem, objectives: list[str], performances: list[str], labels: list[str] | None,
            seeds: list[int], budgets: list[int], runs_path: Path, shard: tuple[int, int] = (0, 1),
            progress: bool = True) -> None:
    """Every (performance, objective, algorithm, seed) not yet in ``runs_path`` (appended as each finishes)."""
    done = {key_of(e) for e in read_runs(runs_path)}
    todo = []
    for perf in performances:
        if perf not in problem.performance:
            raise InputError(f"performance {perf!r} needs its table (zero-cost: --components)")
        for obj in objectives:
            if obj not in problem.costs:
                raise InputError(f"objective {obj!r}; accepted: {', '.join(problem.costs)}")
            for label in methods_for(perf, problem):
                if labels and label not in labels:
                    continue
                for seed in seeds:
                    todo.append((label, obj, perf, seed))
    todo = [t for i, t in enumerate(todo) if i % shard[1] == shard[0] and t not in done]
    truths: dict[tuple, Truth] = {}
    from tqdm.auto import tqdm
    runs_path.parent.mkdir(parents=True, exist_ok=True)
    for label, obj, perf, seed in tqdm(todo, desc=f"moo {problem.space_name}", unit="run", disable=not progress):
        if (obj, perf) not in truths:
            truths[obj, perf] = Truth(problem, obj, reference_set(problem, perf))
        entries = run_entries(problem, truths[obj, perf], label, obj, perf, seed, budgets)
        with open(runs_path, "a") as f:
            for e in entries:
                f.write(json.dumps(e) + "\n")


def reference_set(problem: Problem, performance: str) -> np.ndarray:
    """The networks the true front is taken over: every network, or the scored pool a zero-cost search
    is confined to (so a ratio of 1 stays reachable)."""
    return problem.pool(performance)


# -- the summary ----------------------------------------------------------------------------------------
def summarise(problem: Problem, runs: list[dict]) -> dict:
    """Per performance, objective, algorithm and budget: median (and mean) over seeds of HV ratio, IGD, IGD+;
    the true front of each (objective, performance); and the issue's three targets."""
    groups: dict[tuple, list[dict]] = {}
    for e in runs:
        groups.setdefault((e["performance"], e["objective"], e["algorithm"], e["evaluations"]), []).append(e)
    table: dict = {}
    for (perf, obj, alg, k), es in sorted(groups.items()):
        cell = {"seeds": len(es)}
        for m in ("hv_ratio", "igd", "igd_plus"):
            vals = np.asarray([e[m] for e in es], dtype=float)
            cell[f"{m}_median"], cell[f"{m}_mean"] = float(np.median(vals)), float(vals.mean())
        table.setdefault(perf, {}).setdefault(obj, {}).setdefault(alg, {})[str(k)] = cell
    return {"table": table, "targets": targets(table)}


def targets(table: dict) -> dict:
    """The issue's targets, each per objective: met or not, with the figures."""
    out: dict = {}

    def med(perf, obj, alg, k, m="hv_ratio"):
        return table.get(perf, {}).get(obj, {}).get(alg, {}).get(str(k), {}).get(f"{m}_median")

    for obj in table.get("oracle", {}):
        ns = med("oracle", obj, "nsga2", 1000)
        for alg in ("lamoo-random", "lamoo-nsga2"):
            la = med("oracle", obj, alg, 500)
            if ns is not None and la is not None:
                out.setdefault("lamoo_500_reaches_nsga2_1000", {}).setdefault(obj, {})[alg] = {
                    "lamoo_hv_ratio_at_500": la, "nsga2_hv_ratio_at_1000": ns, "met": la >= ns}
    for obj, algs in table.get("zero-cost", {}).items():
        for k in algs.get("pdns-mtf", {}):
            p, n = med("zero-cost", obj, "pdns-mtf", k, "igd"), med("zero-cost", obj, "nsga2-mtf", k, "igd")
            if p is not None and n is not None:
                out.setdefault("pdns_igd_below_nsga2_same_objectives", {}).setdefault(obj, {})[k] = {
                    "pdns_igd": p, "nsga2_igd": n, "met": p < n}
    for perf, objs in table.items():
        for obj, algs in objs.items():
            for alg, by_k in algs.items():
                if alg == "random":
                    continue
                for k, cell in by_k.items():
                    r = med(perf, obj, "random", k)
                    if r is not None:
                        out.setdefault("above_random_hv", {}).setdefault(perf, {}).setdefault(obj, {}).setdefault(
                            alg, {})[k] = {"hv_ratio": cell["hv_ratio_median"], "random": r,
                                           "met": cell["hv_ratio_median"] > r}
    return out


def true_fronts(problem: Problem, objectives: list[str], performances: list[str]) -> dict:
    out = {}
    for perf in performances:
        if perf not in problem.performance:
            continue
        ref = reference_set(problem, perf)
        for obj in objectives:
            t = Truth(problem, obj, ref)
            idx = ref[t.err[ref] <= MAX_ERROR]
            P = t.points(idx)
            front = idx[pareto_front(P)]
            out.setdefault(perf, {})[obj] = {"reference_networks": int(len(ref)), "front_size": int(len(front)),
                                             "front": [problem.archs[i] for i in front]}
    return out


def markdown(summary: dict, objectives: list[str], budgets: list[int]) -> str:
    """One table per performance: per algorithm and budget the median HV ratio (mean over the objectives of
    the per-objective medians), IGD and IGD+ likewise."""
    lines = []
    for perf, objs in summary["table"].items():
        names = [o for o in objectives if o in objs]
        algs = list(dict.fromkeys(a for o in names for a in objs[o]))
        lines += [f"\n**{perf}** (mean over {', '.join(names)} of the median over seeds)\n",
                  "| algorithm | " + " | ".join(f"HV ratio @{k}" for k in budgets) + " | "
                  + " | ".join(f"IGD @{k}" for k in budgets) + " | " + " | ".join(f"IGD+ @{k}" for k in budgets) + " |",
                  "|---|" + "---:|" * (3 * len(budgets))]
        for alg in algs:
            cells = []
            for m in ("hv_ratio", "igd", "igd_plus"):
                for k in budgets:
                    vals = [objs[o][alg][str(k)][f"{m}_median"] for o in names if str(k) in objs[o].get(alg, {})]
                    cells.append(f"{np.mean(vals):.3f}" if len(vals) == len(names) else "–")
            lines.append(f"| {alg} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def targets_markdown(summary: dict) -> str:
    """The targets, met or not, with the figures (median over seeds)."""
    t, lines = summary["targets"], []
    lam = t.get("lamoo_500_reaches_nsga2_1000", {})
    if lam:
        lines += ["", "LaMOO at 500 evaluations vs NSGA-II at 1,000 (oracle, HV ratio, median over seeds):", "",
                  "| objective | NSGA-II @1000 | lamoo-random @500 | lamoo-nsga2 @500 |", "|---|---:|---:|---:|"]
        for obj, algs in lam.items():
            ns = next(iter(algs.values()))["nsga2_hv_ratio_at_1000"]
            cells = [f"{algs[a]['lamoo_hv_ratio_at_500']:.4f}{' (met)' if algs[a]['met'] else ''}" if a in algs else "–"
                     for a in ("lamoo-random", "lamoo-nsga2")]
            lines.append(f"| {obj} | {ns:.4f} | " + " | ".join(cells) + " |")
    pd = t.get("pdns_igd_below_nsga2_same_objectives", {})
    if pd:
        ks = sorted({k for v in pd.values() for k in v}, key=int)
        lines += ["", "MTF-PDNS vs NSGA-II on the same objectives (-synflow, -jacov, -snip, cost), IGD median "
                  "(lower is better):", "", "| objective | " + " | ".join(f"@{k} pdns / nsga2" for k in ks) + " |",
                  "|---|" + "---:|" * len(ks)]
        for obj, by_k in pd.items():
            lines.append(f"| {obj} | " + " | ".join(
                f"{by_k[k]['pdns_igd']:.4f} / {by_k[k]['nsga2_igd']:.4f}{' (met)' if by_k[k]['met'] else ''}"
                if k in by_k else "–" for k in ks) + " |")
    ar = t.get("above_random_hv", {})
    misses = [f"{alg} on {perf}/{obj} @{k} ({c['hv_ratio']:.4f} vs random {c['random']:.4f})"
              for perf, objs in ar.items() for obj, algs in objs.items() for alg, by_k in algs.items()
              for k, c in by_k.items() if not c["met"]]
    total = sum(len(by_k) for objs in ar.values() for algs in objs.values() for by_k in algs.values())
    lines += ["", f"Above random search's HV at equal evaluations: {total - len(misses)} of {total} "
              "(algorithm, objective, budget) cells." + (" Not above: " + "; ".join(misses) + "." if misses else "")]
    return "\n".join(lines)
