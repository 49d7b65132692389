"""One search run, start to finish: budgets, the loop, the store, the evaluation stage, outputs.

The loop is nanoGPT-plain: restore state -> propose -> score what the store does not know ->
commit the iteration (records, pool, RNG) in one transaction -> repeat. A kill loses at most
the candidates in flight; ``resume=True`` replays the interrupted iteration from its saved RNG
state, and every candidate already scored is read back from the store, not scored again.
"""
from __future__ import annotations

import contextlib
import json
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from search_spaces import get_space

from ..constraints import Constraint, Costs, LatencyTable, check_achievable
from ..errors import InputError
from .algorithms import MoteNAS, SearchConfig, rng_from_state


@dataclass
class RunSpec:
    name: str
    space: str
    constraints: list[Constraint]
    estimator: str = "mote"
    estimator_config: dict = field(default_factory=dict)
    search: SearchConfig = field(default_factory=SearchConfig)
    proxy_data: str | None = None
    benchmark: str | None = None  # NB201 benchmark.csv: evaluation stage from its 12-epoch columns
    benchmark_dataset: str = "cifar100"
    latency_table: str | None = None
    latency_device: str | None = None
    eval_epochs: int = 12
    seed: int = 0
    device: str = "cpu"
    runs_dir: str = "runs"
    store_path: str | None = None  # default runs_dir/name/search.db; several runs may share one store

    def config_dict(self) -> dict:
        """What must match for a resume (the run's identity): everything but where it is written."""
        d = asdict(self)
        d.pop("runs_dir")
        d.pop("store_path")
        d["constraints"] = [c.to_dict() for c in self.constraints]
        return d

    @property
    def run_dir(self) -> Path:
        return Path(self.runs_dir) / self.name


DATA_FREE = ("params", "macs", "precomputed")  # estimators that never look at images


class LocalScorer:
    """Scores in this process (the single-process path of mobile_mote.parallel)."""
    num_processes = 1
    is_main = True

    def __init__(self, space_name, estimator, config, data, seed, device):
        from ..estimators import get_estimator
        self.space = get_space(space_name)
        self.est = get_estimator(estimator, **config)
        self.data, self.seed, self.device = data, seed, device

    def score(self, archs: list[str]) -> list[dict]:
        return [self.est.estimate(self.space, a, self.data, self.seed, self.device).to_dict() for a in archs]

    def close(self) -> None:
        pass


def _prepare_run_dir(spec: RunSpec) -> Path:
    d = spec.run_dir
    try:
        d.mkdir(parents=True, exist_ok=True)
        probe = d / ".write_probe"
        probe.write_text("")
        probe.unlink()
    except OSError as e:
        raise InputError(f"cannot write the run folder {d}: {e.strerror}; choose a writable --runs-dir") from None
    return d


def run_search(spec: RunSpec, resume: bool = False, scorer=None, progress: bool = True, log=None) -> dict:
    """Run (or resume) a search; returns the summary dict also written to the run folder."""
    from ..estimators import get_estimator

    log = log or (lambda msg: print(msg, file=sys.stderr))
    space = get_space(spec.space)
    spec.search.validate()
    est_cfg_hash = get_estimator(spec.estimator, **spec.estimator_config).config_hash()
    latency = None
    if spec.latency_table:
        latency = LatencyTable(spec.latency_table, spec.latency_device or "", space)
    elif any(c.max_latency_ms for c in spec.constraints):
        raise InputError("a latency budget needs --latency-table and --latency-device (measured latency: `mote latency-lut`)")
    costs = Costs(space, latency)
    check_achievable(space, spec.constraints, costs)
    table = evaluator = None
    if spec.benchmark:
        if spec.space != "nb201":
            raise InputError("--benchmark is the NB201 table; it needs --space nb201")
        from ..nb201_table import load_nb201_table
        from .evaluation import TableEvaluator
        table = load_nb201_table(spec.benchmark)
        evaluator = TableEvaluator(table, spec.benchmark_dataset)

    with run_session(spec, resume, scorer) as (store, state, scorer):
        if evaluator is None and spec.search.algorithm != "ef":
            from ..default_data import resolve_proxy_data
            from .evaluation import TrainingEvaluator
            shared = {k: v for k, v in spec.estimator_config.items()
                      if k in ("images_per_class", "batch_size", "lr", "amp", "channels_last", "reduced")}
            evaluator = TrainingEvaluator(space, resolve_proxy_data(spec.proxy_data, quiet=True), spec.seed,
                                          spec.device, spec.eval_epochs, **shared)

        loosest = Constraint(
            max((c.max_macs for c in spec.constraints if c.max_macs), default=None)
            if all(c.max_macs for c in spec.constraints) else None,
            max((c.max_params for c in spec.constraints if c.max_params), default=None)
            if all(c.max_params for c in spec.constraints) else None,
            max((c.max_latency_ms for c in spec.constraints if c.max_latency_ms), default=None)
            if all(c.max_latency_ms for c in spec.constraints) else None)
        algo = MoteNAS(space, spec.search, lambda a: loosest.admits(costs(a)),
                       [(lambda a, c=c: c.admits(costs(a))) for c in spec.constraints])
        state = state or algo.initial_state()
        known = {r["arch"]: r for r in store.run_records(spec.name)}
        scores = {a: r.get("score") for a, r in known.items()}
        stats = {"scored_now": 0, "from_store": 0}
        t_start = time.perf_counter()
        bar = None
        if progress:
            from tqdm.auto import tqdm
            bar = tqdm(total=spec.search.n_iterations() + 1, initial=state["iteration"], unit="iter",
                       desc=f"{spec.search.algorithm} {spec.space}", dynamic_ncols=True, file=sys.stderr)
        while not state["done"]:
            rng = rng_from_state(state["rng"], spec.seed)
            proposed, info = algo.propose(state, scores, rng)
            follow = None if bar is None else (
                lambda done, total: bar.set_postfix(pool=len(state["pool"]), scoring=f"{done}/{total}"))
            records, n_scored = score_candidates(store, scorer, spec, space, costs, proposed, est_cfg_hash, follow)
            stats["scored_now"] += n_scored
            stats["from_store"] += len(proposed) - n_scored
            for r in records:
                scores[r["arch"]] = r.get("score")
                known[r["arch"]] = r
            algo.accept(state, proposed)
            state["rng"] = rng.bit_generator.state
            state.setdefault("history", []).append(
                {"iteration": state["iteration"] - 1, "proposed": len(proposed), "scored": n_scored,
                 "best": max((s for s in scores.values() if s is not None), default=None), **info})
            store.commit_iteration(spec.name, records, state["iteration"] - 1, _json_safe(state))
            if bar is not None:
                best = state["history"][-1]["best"]
                bar.set_postfix(pool=len(state["pool"]), best=f"{best:.4g}" if best is not None else "-")
                bar.update(1)
        if bar is not None:
            bar.close()

        pool_records = [known[a] for a in state["pool"] if a in known]
        results = _evaluate(spec, pool_records, costs, evaluator, store, log)
        summary = {
            "run": spec.name, "space": spec.space, "algorithm": spec.search.algorithm,
            "estimator": spec.estimator, "estimator_config": get_estimator(spec.estimator, **spec.estimator_config).config_dict(),
            "estimator_config_hash": est_cfg_hash, "search": spec.search.to_dict(),
            "constraints": [c.to_dict() for c in spec.constraints], "seed": spec.seed, "device": spec.device,
            "candidates": len(pool_records), "failed": sum(r.get("status") != "ok" for r in pool_records),
            "scored_this_session": stats["scored_now"], "taken_from_store": stats["from_store"],
            "estimator_seconds": float(sum(r.get("seconds") or 0.0 for r in pool_records)),
            "wall_seconds_this_session": time.perf_counter() - t_start,
            "drawn": state.get("drawn_total"), "infeasible_drawn": state.get("infeasible_total"),
            "evaluation": evaluator.describe if evaluator else "none (MOTE top-1)",
            "winners": results, "history": state.get("history", []),
        }
        from .outputs import write_outputs
        write_outputs(spec.run_dir, summary, pool_records, spec.constraints)
        store.save_result(spec.name, "summary", _json_safe(summary))
        return summary


@contextlib.contextmanager
def run_session(spec, resume: bool, scorer=None):
    """``(store, saved state or None, scorer)`` of the run ``spec.name``, both closed on the way out.

    The run folder is made writable, the store opened (``spec.store_path`` or runs/<name>/search.db),
    a new run recorded or a resumed one checked to have the same settings (``spec.config_dict()``).
    An existing run without ``resume`` is an InputError; ``resume`` of a run that never started starts
    it. Without a ``scorer`` one is made in this process (with the reduced data if the estimator
    needs images)."""
    from ..store import SearchStore
    store = None
    try:
        run_dir = _prepare_run_dir(spec)
        store = SearchStore(spec.store_path or run_dir / "search.db")
        state = store.load_state(spec.name)
        if state is not None and not resume:
            raise InputError(f"run {spec.name!r} already exists in {run_dir}; pass --resume to continue it, "
                             "or choose another --name")
        store.start_run(spec.name, spec.config_dict())
        if scorer is None:
            from ..default_data import resolve_proxy_data
            data = None if spec.estimator in DATA_FREE else resolve_proxy_data(spec.proxy_data)
            scorer = LocalScorer(spec.space, spec.estimator, spec.estimator_config, data, spec.seed, spec.device)
        yield store, state, scorer
    finally:
        if scorer is not None and hasattr(scorer, "close"):
            scorer.close()
        if store is not None:
            store.close()


def score_candidates(store, scorer, spec, space, costs: Costs, archs: list[str], config_hash: str,
                     on_chunk=None) -> tuple[list[dict], int]:
    """(records of ``archs``, how many were scored now): candidates the store already holds under
    (space, config, seed) are read back; the others are scored in chunks of ``scorer.num_processes``,
    given their costs and stored chunk by chunk, so a kill loses at most the chunk in flight.
    ``on_chunk(done, total)`` follows the scoring."""
    cached = store.get_many(spec.space, archs, config_hash, spec.seed)
    todo = [a for a in archs if a not in cached]
    new_records: list[dict] = []
    chunk = max(1, getattr(scorer, "num_processes", 1))
    for i in range(0, len(todo), chunk):
        recs = [_with_costs(r, space, costs) for r in scorer.score(todo[i:i + chunk])]
        store.put_many(recs)
        new_records.extend(recs)
        if on_chunk:
            on_chunk(len(new_records), len(todo))
    return list(cached.values()) + new_records, len(todo)


def _with_costs(rec: dict, space, costs: Costs) -> dict:
    c = costs(rec["arch"])
    A, X = space.encode(rec["arch"])
    return {**rec, "macs": c["macs"], "params": c["params"], "latency_ms": c["latency_ms"],
            "encoding": [A.tolist(), X.tolist()]}


def _evaluate(spec: RunSpec, pool: list[dict], costs: Costs, evaluator, store, log) -> list[dict]:
    """Per budget: the top-k by score among admitted candidates; the best evaluated one wins."""
    out = []
    done_evals: dict[str, dict] = dict((store.load_result(spec.name, "evaluations") or {}))
    for c in spec.constraints:
        ok = sorted((r for r in pool if r.get("score") is not None and c.admits(costs(r["arch"]))),
                    key=lambda r: -r["score"])
        if not ok:
            out.append({"constraint": c.to_dict(), "label": c.label(), "arch": None,
                        "error": "no feasible candidate was scored successfully"})
            continue
        if spec.search.algorithm == "ef":
            top, evals = ok[:1], {}
            winner = ok[0]
        else:
            top = ok[:spec.search.k]
            evals = {}
            for r in top:
                if r["arch"] not in done_evals:
                    done_evals[r["arch"]] = evaluator(r["arch"])
                    store.save_result(spec.name, "evaluations", done_evals)  # resumable stage
                evals[r["arch"]] = done_evals[r["arch"]]
            winner = max(top, key=lambda r: (evals[r["arch"]].get("accuracy") is not None,
                                             evals[r["arch"]].get("accuracy") or 0.0, r["score"]))
        w = {"constraint": c.to_dict(), "label": c.label(), "arch": winner["arch"], "score": winner["score"],
             "macs": costs(winner["arch"])["macs"], "params": costs(winner["arch"])["params"],
             "latency_ms": costs(winner["arch"])["latency_ms"],
             "evaluation": evals.get(winner["arch"]),
             "top_k": [{"arch": r["arch"], "score": r["score"], "evaluation": evals.get(r["arch"])} for r in top],
             "evaluation_seconds": float(sum((e.get("seconds") or 0.0) for e in evals.values()))}
        if evaluator is not None and hasattr(evaluator, "final_accuracy") and evaluator.final_accuracy(winner["arch"]) is not None:
            w["final_accuracy"] = evaluator.final_accuracy(winner["arch"])
            w["final_accuracy_source"] = f"NB201 benchmark: {spec.benchmark_dataset} test accuracy after 200 epochs"
        out.append(w)
    return out


def _json_safe(obj):
    return json.loads(json.dumps(obj, default=_default))


def _default(o):
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(type(o).__name__)
