"""One multi-objective (NSGA-II) run, start to finish: objectives, the loop, the store, the front.

The loop is the one of ``runner.run_search``: restore state -> propose a generation -> score what
the store does not know (``runner.score_candidates``) -> commit the generation (records, population,
archive, RNG) in one transaction -> repeat. ``resume=True`` continues after a kill, replaying the
interrupted generation from its saved RNG state; a finished run resumed with more generations goes on.

Objectives are minimised inside the search; ``score`` enters negated (higher scores are better) and a
candidate whose estimator failed gets ``+inf`` there. The front written to ``runs/<name>/`` is the set
of non-dominated candidates among everything the run evaluated.
"""
from __future__ import annotations

import csv
import io
import json
import math
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from search_spaces import get_space

from ..atomic import write_text as _atomic_write
from ..constraints import Constraint, Costs, LatencyTable, check_achievable
from ..errors import InputError
from ..pareto import hypervolume_2d, normalise, pareto_front, ranks_and_crowding
from .algorithms import rng_from_state
from .nsga import NSGA2, ParetoConfig
from .runner import _json_safe, run_session, score_candidates


@dataclass
class ParetoSpec:
    """A run as plain data. ``objectives`` and ``seed`` are the run's; they are copied into ``pareto``."""
    name: str
    space: str
    objectives: tuple = ("score", "latency")
    constraints: list[Constraint] = field(default_factory=list)  # hard bounds (at most one), optional
    estimator: str = "mote"
    estimator_config: dict = field(default_factory=dict)
    pareto: ParetoConfig = field(default_factory=ParetoConfig)
    proxy_data: str | None = None
    latency_table: str | None = None  # NB201's latency_ms.csv ...
    latency_device: str | None = None  # ... and its column
    latency_lut: str | None = None  # or a per-block LUT from `mote latency-lut` (block spaces)
    benchmark: str | None = None  # NB201 benchmark.csv: true accuracy of the front points (reporting only)
    benchmark_dataset: str = "cifar10"
    seed: int = 0
    device: str = "cpu"
    runs_dir: str = "runs"
    store_path: str | None = None  # default runs_dir/name/search.db; several runs may share one store

    def config_dict(self) -> dict:
        """What must match for a resume: everything but where it is written, what is only reported
        (the benchmark) and how long it runs (generations, budget: a resume may extend a run)."""
        d = asdict(self)
        for k in ("runs_dir", "store_path", "benchmark", "benchmark_dataset"):
            d.pop(k)
        d["objectives"] = list(self.objectives)
        d["constraints"] = [c.to_dict() for c in self.constraints]
        d["pareto"] = {k: v for k, v in self.pareto.to_dict().items() if k not in ("generations", "budget")}
        return d

    @property
    def run_dir(self) -> Path:
        return Path(self.runs_dir) / self.name


# -- costs and objectives ---------------------------------------------------------------------------
def latency_source(spec: ParetoSpec, space):
    """(callable arch -> ms, description) from the NB201 table or a LUT; (None, None) without one."""
    if spec.latency_table and spec.latency_lut:
        raise InputError("give one latency source: --latency-table with --latency-device (NB201), "
                         "or --latency-lut (block spaces)")
    if spec.latency_table:
        if spec.space != "nb201":
            raise InputError(f"--latency-table is NB201's per-cell table; for {spec.space} use --latency-lut "
                             "(build one with `mote latency-lut`)")
        if not spec.latency_device:
            raise InputError("--latency-table needs --latency-device (a column of the table, e.g. pixel2)")
        table = LatencyTable(spec.latency_table, spec.latency_device, space)
        return table, f"NB201 table {Path(spec.latency_table).name}, device {spec.latency_device}"
    if spec.latency_device:
        raise InputError("--latency-device names a column of --latency-table; give both")
    if spec.latency_lut:
        from ..latency import load_lut, predict
        lut = load_lut(spec.latency_lut)
        if lut.get("space") != spec.space:
            raise InputError(f"LUT {spec.latency_lut} was built for space {lut.get('space')!r}, not {spec.space!r}")
        ch = lut.get("choices") or {}
        for key, have in (("kernel", space.cfg.kernel_choices), ("expansion", space.cfg.expansion_choices),
                          ("se", space.cfg.se_choices)):
            missing = sorted({float(v) for v in have} - {float(v) for v in ch.get(key, [])})
            if missing:
                raise InputError(f"LUT {spec.latency_lut} lacks {key} choice(s) {missing} of {spec.space}; "
                                 f"rebuild it with `mote latency-lut --space {spec.space}`")
        return ((lambda arch: predict(lut, space, arch)),
                f"LUT {Path(spec.latency_lut).name} ({lut.get('device')}, resolution {lut.get('resolution')})")
    return None, None


def objective_rows(objectives, archs, known: dict, costs: Costs) -> np.ndarray:
    """The (n, m) MINIMISED objectives of ``archs``: -score (+inf when it failed), MACs, params, ms."""
    rows = []
    for a in archs:
        c, s = costs(a), known[a].get("score")
        vals = {"score": math.inf if s is None else -float(s), "macs": float(c["macs"]), "params": float(c["params"]),
                "latency": math.inf if c["latency_ms"] is None else float(c["latency_ms"])}
        rows.append([vals[o] for o in objectives])
    return np.asarray(rows, dtype=float).reshape(len(rows), len(objectives))


# -- the run ----------------------------------------------------------------------------------------
def prepare(spec: ParetoSpec) -> dict:
    """Every check of ``spec`` that needs no store and no scoring (objectives, latency source, bounds,
    benchmark), with what the run needs from them; InputError on bad input."""
    from ..estimators import get_estimator

    space = get_space(spec.space)
    spec.pareto.objectives = tuple(spec.objectives)
    spec.pareto.seed = spec.seed
    spec.pareto.validate()
    objectives = tuple(spec.objectives)
    est = get_estimator(spec.estimator, **spec.estimator_config)
    latency, latency_desc = latency_source(spec, space)
    if latency is None and ("latency" in objectives or any(c.max_latency_ms for c in spec.constraints)):
        raise InputError("a latency objective or bound needs a latency source: --latency-table with "
                         "--latency-device (NB201), or --latency-lut (block spaces, from `mote latency-lut`)")
    if len(spec.constraints) > 1:
        raise InputError("mote pareto takes one bound per cost (e.g. --flops 300M); the front covers every "
                         "budget below it")
    costs = Costs(space, latency)
    check_achievable(space, spec.constraints, costs)
    truth = None
    if spec.benchmark:
        if spec.space != "nb201":
            raise InputError("--benchmark is the NB201 table; it needs --space nb201")
        from ..nb201_table import DATASETS, load_nb201_table
        if spec.benchmark_dataset not in DATASETS:
            raise InputError(f"benchmark dataset {spec.benchmark_dataset!r}; accepted: {', '.join(DATASETS)}")
        table = load_nb201_table(spec.benchmark)
        truth = {a: r.acc200.get(spec.benchmark_dataset) for a, r in table.items()}
    return {"space": space, "objectives": objectives, "est": est, "costs": costs, "latency_desc": latency_desc,
            "truth": truth}


def run_pareto(spec: ParetoSpec, resume: bool = False, scorer=None, progress: bool = True) -> dict:
    """Run (or resume) an NSGA-II search; returns the summary dict also written to the run folder."""
    prep = prepare(spec)
    space, objectives, est, costs, truth = (prep[k] for k in ("space", "objectives", "est", "costs", "truth"))
    with run_session(spec, resume, scorer) as (store, state, scorer):
        algo = NSGA2(space, spec.pareto, lambda a: all(c.admits(costs(a)) for c in spec.constraints))
        state = state or algo.initial_state()
        state["done"] = algo.finished(state)  # a resume may come with more generations
        known = {r["arch"]: r for r in store.run_records(spec.name)}
        config_hash = est.config_hash()

        def objectives_of(archs):
            return objective_rows(objectives, archs, known, costs)

        stats = {"scored_now": 0, "from_store": 0}
        t_start = time.perf_counter()
        bar = None
        if progress:
            from tqdm.auto import tqdm
            total = spec.pareto.generations + 1
            bar = tqdm(total=total, initial=min(state["generation"], total), unit="gen", desc=f"nsga2 {spec.space}",
                       dynamic_ncols=True, file=sys.stderr)
        while not state["done"]:
            rng = rng_from_state(state["rng"], spec.seed)
            proposed, info = algo.propose(state, objectives_of, rng)
            follow = None if bar is None else (lambda done, total: bar.set_postfix(scoring=f"{done}/{total}"))
            records, n_scored = score_candidates(store, scorer, spec, space, costs, proposed, config_hash, follow)
            stats["scored_now"] += n_scored
            stats["from_store"] += len(proposed) - n_scored
            known.update((r["arch"], r) for r in records)
            algo.accept(state, proposed, objectives_of)
            state["rng"] = rng.bit_generator.state
            front = len(pareto_front(objectives_of(state["population"]))) if state["population"] else 0
            state.setdefault("history", []).append(
                {"generation": state["generation"] - 1, "proposed": len(proposed), "scored": n_scored,
                 "evaluated": state["evaluated"], "population_front": front, **info})
            store.commit_iteration(spec.name, records, state["generation"] - 1, _json_safe(state))
            if bar is not None:
                bar.set_postfix(evaluated=state["evaluated"], front=front)
                bar.update(1)
        if bar is not None:
            bar.close()

        known = {r["arch"]: r for r in store.run_records(spec.name)}  # with the generation that added each
        evaluated = [known[a] for a in state["archive"] if a in known]
        result = pareto_result(spec, space, objectives, evaluated, costs, truth)
        summary = {
            "run": spec.name, "space": spec.space, "algorithm": "nsga2", "objectives": list(objectives),
            "objective_sense": "minimised inside the search; score enters negated (higher is better)",
            "estimator": spec.estimator, "estimator_config": est.config_dict(),
            "estimator_config_hash": config_hash,
            "pareto": spec.pareto.to_dict(), "constraints": [c.to_dict() for c in spec.constraints],
            "latency_source": prep["latency_desc"], "seed": spec.seed, "device": spec.device,
            "generations_done": state["generation"], "evaluated": len(evaluated),
            "failed": sum(r.get("status") != "ok" for r in evaluated),
            "scored_this_session": stats["scored_now"], "taken_from_store": stats["from_store"],
            "estimator_seconds": float(sum(r.get("seconds") or 0.0 for r in evaluated)),
            "wall_seconds_this_session": time.perf_counter() - t_start,
            "drawn": state.get("drawn_total"), "infeasible_drawn": state.get("infeasible_total"),
            "random_children": state.get("random_children"), "exhausted": bool(state.get("exhausted")),
            **{k: result[k] for k in ("front_size", "hypervolume", "true_accuracy_source") if k in result},
            "front": result["front"], "history": state.get("history", []),
        }
        write_pareto_outputs(spec.run_dir, summary, result)
        store.save_result(spec.name, "pareto", _json_safe(summary))
        return summary


# -- the front --------------------------------------------------------------------------------------
def pareto_result(spec: ParetoSpec, space, objectives, evaluated: list[dict], costs: Costs, truth) -> dict:
    """Ranks of every evaluated candidate, the front with its crowding, and (two objectives) its
    normalised hypervolume, overall and after each generation."""
    F = objective_rows(objectives, [r["arch"] for r in evaluated], {r["arch"]: r for r in evaluated}, costs)
    valid = np.isfinite(F).all(axis=1)  # a failed score (or a missing latency) has no place on a front
    idx = np.nonzero(valid)[0]
    rank = np.full(len(evaluated), -1)
    crowd = np.full(len(evaluated), np.nan)
    if len(idx):
        r, c = ranks_and_crowding(F[idx])
        rank[idx], crowd[idx] = r, c
    rows = []
    for i, rec in enumerate(evaluated):
        c = costs(rec["arch"])
        row = {"arch": rec["arch"], "generation": rec.get("iteration"), "status": rec.get("status"),
               "score": rec.get("score"), "macs": c["macs"], "params": c["params"], "latency_ms": c["latency_ms"],
               "rank": int(rank[i]) if rank[i] >= 0 else None}
        if truth is not None:
            row["true_accuracy"] = truth.get(rec["arch"])
        rows.append(row)
    front_idx = sorted((i for i in idx if rank[i] == 0), key=lambda i: tuple(F[i]))
    front = []
    for i in front_idx:
        p = {**rows[i], "objective_vector": [float(v) for v in F[i]],
             "crowding": None if math.isinf(crowd[i]) else float(crowd[i]), "boundary": bool(math.isinf(crowd[i]))}
        p.pop("rank")
        if hasattr(space, "arch_def"):
            p["timm_arch_def"] = space.arch_def(p["arch"])
        front.append(p)
    out = {"rows": rows, "front": front, "front_size": len(front), "F": F, "valid": valid}
    if truth is not None:
        out["true_accuracy_source"] = (f"NB201 benchmark: {spec.benchmark_dataset} test accuracy (%) after 200 "
                                       "epochs (reporting only; the search never saw it)")
    if len(objectives) == 2 and len(idx):
        lo, hi = F[idx].min(axis=0), F[idx].max(axis=0)
        gens = np.asarray([r["generation"] if r["generation"] is not None else 0 for r in rows])

        def hv(mask):
            sel = idx[mask[idx]]
            return hypervolume_2d(normalise(F[sel], lo, hi), (1.0, 1.0)) if len(sel) else 0.0
        out["hypervolume"] = {
            "value": hv(np.ones(len(rows), bool)),
            "by_generation": [hv(gens <= g) for g in range(int(gens.max()) + 1)],
            "objectives": list(objectives), "reference_point": [1.0, 1.0],
            "normalisation": (f"each minimised objective mapped by min -> 0, max -> 1 over the {len(idx)} "
                              "evaluated candidates with finite objectives; points on the reference (a "
                              "per-objective maximum) add nothing"),
            "lo": [float(v) for v in lo], "hi": [float(v) for v in hi]}
    return out


_UNITS = {"macs": ("MACs (M)", 1e-6), "params": ("params (M)", 1e-6)}


def axis_label(objective: str, summary: dict) -> tuple[str, str, float]:
    """(label with unit, record key, scale) of one objective in natural units."""
    if objective == "score":
        return f"{summary['estimator']} score (higher is better)", "score", 1.0
    if objective == "latency":
        return f"latency (ms; {summary.get('latency_source') or 'no source'})", "latency_ms", 1.0
    label, scale = _UNITS[objective]
    return label, objective, scale


def _csv_text(rows: list[dict], columns: list[str]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: ("" if r.get(k) is None else r[k]) for k in columns})
    return buf.getvalue()


def write_pareto_outputs(run_dir: Path, summary: dict, result: dict) -> None:
    """front.json, front.csv, evaluated.csv, summary.json, summary.md, then front.png (a failed plot
    costs nothing else). Every file is written to a temporary name and moved into place."""
    run_dir = Path(run_dir)
    objectives = summary["objectives"]
    front_doc = {k: summary[k] for k in ("run", "space", "objectives", "objective_sense", "estimator",
                                         "estimator_config_hash", "latency_source", "constraints", "evaluated")}
    for k in ("hypervolume", "true_accuracy_source"):
        if k in summary:
            front_doc[k] = summary[k]
    front_doc["crowding_note"] = "crowding null = infinite (a boundary point of the front)"
    front_doc["points"] = summary["front"]
    _atomic_write(run_dir / "front.json", json.dumps(_json_safe(front_doc), indent=1))
    extra = ["true_accuracy"] if "true_accuracy_source" in summary else []
    obj_cols = [f"objective_{o}" for o in objectives]
    flat = [{**p, **dict(zip(obj_cols, p["objective_vector"]))} for p in summary["front"]]
    _atomic_write(run_dir / "front.csv", _csv_text(
        flat, ["arch", "score", "macs", "params", "latency_ms", *obj_cols, "crowding", "generation", *extra]))
    rows = [{**r, "on_front": r["rank"] == 0} for r in result["rows"]]
    _atomic_write(run_dir / "evaluated.csv", _csv_text(
        rows, ["arch", "generation", "status", "score", "macs", "params", "latency_ms", "rank", "on_front", *extra]))
    _atomic_write(run_dir / "summary.json", json.dumps(_json_safe(summary), indent=1))
    _atomic_write(run_dir / "summary.md", render_pareto_summary(summary))
    try:
        plot_front(run_dir / "front.png", summary, result)
    except Exception as e:  # a plot never costs the run its results
        print(f"mote pareto: front.png skipped ({type(e).__name__}: {e})", file=sys.stderr)


def render_pareto_summary(s: dict, top: int = 50) -> str:
    from ..units import fmt_count
    bounds = ", ".join(f"{k.replace('max_', '')} <= {v:g}" for c in s["constraints"] for k, v in c.items() if v)
    lines = [f"# Pareto search `{s['run']}`", "",
             f"- space **{s['space']}**, NSGA-II (population {s['pareto']['population']}, generations "
             f"{s['generations_done'] - 1} after the initial one), estimator **{s['estimator']}** "
             f"(config {s['estimator_config_hash']}), seed {s['seed']}, device {s['device']}",
             f"- objectives: {', '.join(s['objectives'])} ({s['objective_sense']})",
             f"- latency: {s['latency_source'] or 'none'}; hard bounds: {bounds or 'none'}",
             f"- evaluated {s['evaluated']} ({s['failed']} failed); this session scored {s['scored_this_session']}, "
             f"took {s['taken_from_store']} from the store; estimator seconds {s['estimator_seconds']:.1f}",
             f"- front: **{s['front_size']}** non-dominated candidates among the evaluated"]
    if "hypervolume" in s:
        lines.append(f"- hypervolume (normalised, reference (1, 1)): **{s['hypervolume']['value']:.4f}**")
    lines += [""]
    acc = "true_accuracy_source" in s
    lines += ["| # | score | MACs | params | latency ms |" + (" true acc % |" if acc else "") + " arch |",
              "|---|---|---|---|---|" + ("---|" if acc else "") + "---|"]
    for i, p in enumerate(s["front"][:top], 1):
        lat = "-" if p["latency_ms"] is None else f"{p['latency_ms']:.4g}"
        sc = "-" if p["score"] is None else f"{p['score']:.5g}"
        ta = "" if not acc else (" - |" if p.get("true_accuracy") is None else f" {p['true_accuracy']:.2f} |")
        lines.append(f"| {i} | {sc} | {fmt_count(p['macs'])} | {fmt_count(p['params'])} | {lat} |{ta} `{p['arch']}` |")
    if len(s["front"]) > top:
        lines.append(f"| … | {len(s['front']) - top} more in front.csv | | | |" + (" |" if acc else "") + " |")
    if acc:
        lines += ["", f"True accuracy: {s['true_accuracy_source']}."]
    lines += ["", "Files: `front.json`, `front.csv`, `evaluated.csv`, `front.png`, `summary.json`.", ""]
    return "\n".join(lines)


def plot_front(path: Path, summary: dict, result: dict) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    o1, o2 = summary["objectives"][:2]
    if o1 == "score":  # score reads best on the y axis, a cost on the x axis
        o1, o2 = o2, o1
    (xl, xk, xs), (yl, yk, ys) = axis_label(o1, summary), axis_label(o2, summary)
    ok = [r for r in result["rows"] if r.get(xk) is not None and r.get(yk) is not None]
    fig, ax = plt.subplots(figsize=(6.4, 4.6))
    ax.scatter([r[xk] * xs for r in ok], [r[yk] * ys for r in ok], s=10, c="0.7",
               label=f"evaluated ({len(ok)})")
    front = [p for p in summary["front"] if p.get(xk) is not None and p.get(yk) is not None]
    fx = np.array([p[xk] * xs for p in front])
    fy = np.array([p[yk] * ys for p in front])
    if len(front):
        order = np.argsort(fx, kind="stable")
        if len(summary["objectives"]) == 2:
            ax.step(fx[order], fy[order], where="post", color="tab:red", lw=1)
        ax.scatter(fx, fy, s=28, color="tab:red", edgecolor="k", zorder=5, label=f"Pareto front ({len(front)})")
    ax.set_xlabel(xl)
    ax.set_ylabel(yl)
    title = f"{summary['run']}: {summary['space']}, NSGA-II"
    if "hypervolume" in summary:
        title += f", HV {summary['hypervolume']['value']:.3f}"
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    tmp = path.with_name(path.name + ".tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    os.replace(tmp, path)
