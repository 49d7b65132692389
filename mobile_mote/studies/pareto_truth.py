"""MODNAS-style hardware-aware Pareto check on NB201, measured against the truth (``tools/nb201_pareto.py``):
the hypervolume of the true front over every cell, and the found fronts of random search, the library's
NSGA-II and MODNAS's hypernetwork (trained and untrained), each scored with TRUE error and latency whatever
guided the search."""
from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np

from mobile_mote.search_spaces import get_space

from ..benchmarks.nb201 import NB201Index, load_nb201_table
from ..errors import InputError
from ..pareto import hypervolume_2d, igd, normalise, pareto_front
from ..provenance import provenance

MODNAS_DEVICES = ("titan_rtx_256", "gold_6226", "fpga", "pixel2", "raspi4", "eyeriss")
MAX_ERROR = 90.0
REF = (1.0, 1.0)
METHODS = ("random", "nsga2")


# -- data -------------------------------------------------------------------------------------------
def load_objectives(benchmark: str, latency: str, devices: list[str]):
    """(space, error[15625], {device: latency[15625]}) indexed by NB201 index."""
    table = load_nb201_table(benchmark)
    space = NB201Index.from_csv(benchmark).bind(get_space("nb201"))
    n = space.size()
    err = np.full(n, np.nan)
    for arch, row in table.items():
        err[space.index_of(arch)] = 100.0 - row.acc200["cifar10"]
    if np.isnan(err).any():
        raise InputError(f"{benchmark} lacks cifar10_acc200 for {int(np.isnan(err).sum())} cells")
    from mobile_mote.modnas import DeviceLatencies  # one reader of latency tables, one pass over the file
    return space, err, DeviceLatencies.from_csv(latency, space, devices).ms


def load_scores(path: str, space) -> dict[int, float]:
    p = Path(path)
    if not p.is_file():
        raise InputError(f"scores file {p} does not exist")
    out: dict[int, float] = {}
    for line in p.read_text().splitlines():
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue  # a torn last line
        score = rec.get("score")
        if rec.get("arch") is None or score is None or not math.isfinite(float(score)):
            continue
        out[space.index_of(rec["arch"])] = float(score)
    if not out:
        raise InputError(f"{p} holds no usable {{'arch', 'score'}} records")
    return out


class LiveScores:
    """Scores computed on demand by an estimator (seed 0) through a results store, each exported as it
    finishes to an append-only JSONL file (``cache``); looks like the {index: score} dict of ``load_scores``
    over every cell of the space. What the JSONL holds is used as it is; what only the store holds is read
    back, not scored again."""

    def __init__(self, space, estimator: str, profile: str, proxy_data: str, cache: Path, device: str):
        from mobile_mote.estimators import get_estimator
        from mobile_mote.data.proxy_data import load_proxy_data
        from mobile_mote.scoring import estimator_config
        from mobile_mote.store import SearchStore
        self.space, self.device, self.estimator = space, device, estimator
        self.config = estimator_config(estimator, profile)
        self.est = get_estimator(estimator, **self.config)
        from mobile_mote.estimators import estimator_class
        self.data = load_proxy_data(proxy_data) if estimator_class(estimator).needs_data else None
        self.config_hash = self.est.config_hash()
        self.data_source = "none" if self.data is None else str(Path(proxy_data).resolve())
        self.label = f"live:{estimator}/{profile}"
        self.cache = Path(cache)
        self.known: dict[int, float] = {}
        if self.cache.is_file():
            for line in self.cache.read_text().splitlines():
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError:
                    continue  # a torn last line from a kill
                # reused only for the same estimator settings and the same reduced data
                if (rec.get("config_hash"), rec.get("data")) == (self.config_hash, self.data_source) and rec.get("arch"):
                    s = rec.get("score")
                    self.known[space.index_of(rec["arch"])] = -math.inf if s is None else float(s)
        self.cache.parent.mkdir(parents=True, exist_ok=True)
        self.store = SearchStore(live_store_path(self.cache, self.data_source))
        self.scored_now = 0

    def __len__(self) -> int:
        return self.space.size()

    def __iter__(self):
        return iter(range(self.space.size()))

    def __getitem__(self, idx: int) -> float:
        if idx not in self.known:
            from mobile_mote.scoring import score_archs
            arch = self.space.to_str(self.space.arch_at(int(idx)))
            rec, = score_archs(self.space.name, [arch], self.estimator, self.data, self.config, seed=0,
                               device=self.device, progress=False, store=self.store)
            with open(self.cache, "a") as f:
                f.write(json.dumps({"arch": arch, "score": rec.get("score"), "config_hash": self.config_hash,
                                    "data": self.data_source, "seconds": rec.get("seconds"), "status": rec.get("status")}) + "\n")
            s = rec.get("score")
            self.known[idx] = -math.inf if s is None else float(s)  # a failed cell ranks last
            self.scored_now += 1
            if self.scored_now % 10 == 0:
                print(f"  {self.label}: {len(self.known)} cells scored ({self.scored_now} this run)", file=sys.stderr)
        return self.known[idx]

    def close(self) -> None:
        self.store.close()


def live_store_path(cache: Path, data_source: str) -> Path:
    """The store beside ``cache``, one per proxy-data set: the JSONL's key holds the data's path and the
    store's key (space, arch, config hash, seed) does not, so scores on other data must not share a store."""
    import hashlib
    tag = "nodata" if data_source == "none" else hashlib.sha256(data_source.encode()).hexdigest()[:12]
    return cache.with_name(f"{cache.stem}.{tag}.db")


def hypernetwork_cells(paths: list[str], space, devices: list[str], lats: dict) -> dict:
    """{"hypernetwork" | "untrained_hypernetwork": {device: [index arrays, one per file]}}."""
    import torch

    from mobile_mote.modnas import DeviceLatencies, MetaHypernetwork
    out = {"hypernetwork": {d: [] for d in devices}, "untrained_hypernetwork": {d: [] for d in devices}}
    table = DeviceLatencies(lats, space)
    for p in paths:
        path = Path(p)
        if not path.is_file():
            raise InputError(f"hypernetwork fronts {path} do not exist; `mote modnas --out DIR` writes DIR/fronts.json")
        try:
            res = json.loads(path.read_text())
            fronts, cfg = res["fronts"], res["config"]
            seed, prototypes, intervals = int(cfg["seed"]), int(cfg["prototypes"]), int(cfg["intervals"])
        except (json.JSONDecodeError, KeyError, TypeError, ValueError):
            raise InputError(f"{path} is not a fronts.json of `mote modnas` (needs 'fronts' and 'config' with "
                             "seed, prototypes, intervals)") from None
        torch.manual_seed(seed)
        control = MetaHypernetwork(prototypes=prototypes, intervals=intervals)
        for d in devices:
            if d not in fronts:
                raise InputError(f"{path} has no front for device {d}; it has {', '.join(fronts)}")
            out["hypernetwork"][d].append(np.asarray([space.index_of(a) for a in fronts[d]["archs"]], dtype=int))
            emb = table.embedding(d)
            out["untrained_hypernetwork"][d].append(np.asarray(
                [space.index_of(space.to_str(control.architecture(r, emb))) for r in fronts[d]["rays"]], dtype=int))
    return out


# -- searches ---------------------------------------------------------------------------------------
class Objective:
    """The search's view of a cell: (accuracy-source badness, true latency); None = not available."""

    def __init__(self, err: np.ndarray, lat: np.ndarray, scores: dict[int, float] | None):
        self.err, self.lat, self.scores = err, lat, scores

    def available(self) -> np.ndarray:
        return np.arange(len(self.err)) if self.scores is None else np.asarray(sorted(self.scores), dtype=int)

    def __call__(self, idx: np.ndarray) -> np.ndarray:
        acc_bad = self.err[idx] if self.scores is None else -np.asarray([self.scores[int(i)] for i in idx])
        return np.stack([acc_bad, self.lat[idx]], axis=1)


def random_search(obj: Objective, n: int, rng: np.random.Generator) -> np.ndarray:
    pool = obj.available()
    return rng.choice(pool, size=min(n, len(pool)), replace=False)


def nsga2_search(obj: Objective, space, n: int, pop_size: int, seed) -> np.ndarray:
    """Indices of every evaluated cell (distinct, at most n): the library's NSGA-II
    (mobile_mote.search.algorithms.nsga2.NSGA2) run by the search driver with a budget of n evaluations; cells the
    accuracy source lacks are infeasible, so they are never proposed. ``seed`` seeds the driver's RNG."""
    from mobile_mote.search import NSGA2, ParetoConfig, drive

    pool = obj.available()
    allowed = None if obj.scores is None else set(pool.tolist())
    budget = min(n, len(pool))
    cfg = ParetoConfig(objectives=("score", "latency"), population=max(2, min(pop_size, budget)),
                       generations=budget, budget=budget)  # the budget ends the search

    def objectives(archs: list[str], _records) -> np.ndarray:
        return obj(np.asarray([space.index_of(a) for a in archs], dtype=int))

    if allowed is None:
        algo = NSGA2(space, cfg, objectives=objectives)
    else:  # random draws come from the scored cells only
        algo = NSGA2(space, cfg, lambda a: space.index_of(a) in allowed,
                     lambda r: space.to_str(space.arch_at(int(pool[r.integers(len(pool))]))), objectives)
    algo.start()
    # the true objectives are looked up, not scored: every proposal is "evaluated" at once
    drive(algo, seed, lambda archs, _follow: ([{"arch": a} for a in archs], len(archs)))
    return np.asarray([space.index_of(a) for a in algo.state["archive"]], dtype=int)


# -- evaluation -------------------------------------------------------------------------------------
def true_points(idx: np.ndarray, err, lat, lo, hi) -> np.ndarray:
    """Normalised TRUE (error, latency) of the cells at ``idx`` with error <= 90 %."""
    idx = np.asarray(idx, dtype=int)
    idx = idx[err[idx] <= MAX_ERROR]
    return normalise(np.stack([err[idx], lat[idx]], axis=1), lo, hi)


def hv_check(args) -> dict:
    devices = [d for d in args.devices.split(",") if d]
    budgets = [int(x) for x in args.n.split(",") if x]
    seeds = [int(x) for x in args.seeds.split(",") if x]
    space, err, lats = load_objectives(args.benchmark, args.latency, devices)
    if args.accuracy_source == "benchmark":
        scores, label = None, "oracle"
        note = "oracle = the benchmark's own 200-epoch error guides the search (upper bound)"
    elif args.accuracy_source == "live":
        cache = Path(args.cache or Path(args.out_dir) / f"nb201_pareto_live_{args.estimator}_{args.profile}.jsonl")
        scores = LiveScores(space, args.estimator, args.profile, args.proxy_data, cache, args.device)
        label = scores.label
        note = (f"search guided by {args.estimator} scores ({args.profile} profile, seed 0) computed on demand "
                f"(cache {cache.name}); found fronts evaluated with true error and latency")
    else:
        if not args.scores:
            raise InputError("--accuracy-source precomputed needs --scores FILE")
        scores, label = load_scores(args.scores, space), f"precomputed:{Path(args.scores).name}"
        note = f"search guided by {len(scores)} precomputed scores; found fronts evaluated with true error and latency"
    hpn_files = [p for p in (args.hypernetwork or "").split(",") if p]
    hpn = hypernetwork_cells(hpn_files, space, devices, lats) if hpn_files else {}
    all_idx = np.arange(space.size())
    out: dict = {"accuracy_source": args.accuracy_source, "accuracy_label": label, "note": note,
                 "hypernetwork_files": hpn_files,
                 "objectives": ["cifar10 test error % (100 - cifar10_acc200)", "latency ms"],
                 "normalisation": "min-max over all 15,625 cells, then cells with error > 90 % dropped",
                 "reference_point": list(REF), "budgets": budgets, "seeds": seeds, "devices": {},
                 "provenance": provenance()}
    fronts_for_plot = {}
    for d in devices:
        lat = lats[d]
        lo = np.array([err.min(), lat.min()])
        hi = np.array([err.max(), lat.max()])
        T = true_points(all_idx, err, lat, lo, hi)
        true_front = T[pareto_front(T)]
        hv_true = hypervolume_2d(true_front, REF)
        dev = {"hv_true": hv_true, "true_front_size": int(len(true_front)),
               "true_front_index": [int(i) for i in all_idx[pareto_front(T)]], "runs": [], "summary": {}}
        obj = Objective(err, lat, scores)
        for n in budgets:
            pop = args.pop or min(n, max(4, int(round(2 * math.sqrt(n)))))
            for method in METHODS:
                ratios, igds = [], []
                for seed in seeds:
                    stream = [seed, n, METHODS.index(method)]
                    ev = (random_search(obj, n, np.random.default_rng(stream)) if method == "random"
                          else nsga2_search(obj, space, n, pop, stream))
                    found = ev[pareto_front(obj(ev))]  # what the search itself deems non-dominated
                    P = true_points(found, err, lat, lo, hi)
                    hv = hypervolume_2d(P, REF)
                    rec = {"method": method, "n": n, "seed": seed, "evaluated": int(len(ev)),
                           "found_front": int(len(found)), "hv": hv, "hv_ratio": hv / hv_true,
                           "igd": igd(P, true_front), **_cells(space, found)}
                    if method == "nsga2":
                        rec["pop"] = pop
                    dev["runs"].append(rec)
                    ratios.append(rec["hv_ratio"])
                    igds.append(rec["igd"])
                    if seed == seeds[0] and n == max(budgets):
                        fronts_for_plot.setdefault(d, {"true": true_front, "all": T})[method] = P[pareto_front(P)]
                dev["summary"][f"{method}@{n}"] = _summary(ratios, igds)
        for method, per_device in hpn.items():  # every cell of every ray, scored with the truth
            ratios, igds = [], []
            for k, idx in enumerate(per_device[d]):
                P = true_points(idx, err, lat, lo, hi)
                hv = hypervolume_2d(P, REF)
                rec = {"method": method, "n": int(len(idx)), "file": out["hypernetwork_files"][k],
                       "distinct": int(len(set(idx.tolist()))), "hv": hv, "hv_ratio": hv / hv_true,
                       "igd": igd(P, true_front), **_cells(space, idx)}
                dev["runs"].append(rec)
                ratios.append(rec["hv_ratio"])
                igds.append(rec["igd"])
                if k == 0:
                    fronts_for_plot.setdefault(d, {"true": true_front, "all": T})[method] = P[pareto_front(P)]
            dev["summary"][f"{method}@{len(per_device[d][0])}"] = _summary(ratios, igds)
        out["devices"][d] = dev
    if isinstance(scores, LiveScores):
        scores.close()
    out["_plot"] = fronts_for_plot
    return out


def _cells(space, idx) -> dict:
    """The cells a figure is computed from (NB201 index and arch string), so anyone can recompute it."""
    idx = [int(i) for i in idx]
    return {"index": idx, "archs": [space.to_str(space.arch_at(i)) for i in idx]}


def recompute(res: dict, err: np.ndarray, lats: dict) -> dict:
    """{(device, run number): (hv_ratio recomputed from the stored cells, stored hv_ratio)}."""
    out = {}
    for d, dev in res["devices"].items():
        lat = lats[d]
        lo, hi = np.array([err.min(), lat.min()]), np.array([err.max(), lat.max()])
        hv_true = hypervolume_2d(true_points(np.asarray(dev["true_front_index"]), err, lat, lo, hi), REF)
        for k, r in enumerate(dev["runs"]):
            hv = hypervolume_2d(true_points(np.asarray(r["index"], dtype=int), err, lat, lo, hi), REF)
            out[(d, k)] = (hv / hv_true, r["hv_ratio"])
    return out


def _summary(ratios: list[float], igds: list[float]) -> dict:
    return {"hv_ratio_mean": float(np.mean(ratios)), "hv_ratio_std": float(np.std(ratios)),
            "igd_mean": float(np.mean(igds)), "igd_std": float(np.std(igds)), "seeds": len(ratios)}


def markdown(res: dict) -> str:
    keys = list(next(iter(res["devices"].values()))["summary"])
    head = ("| device | HV true | " + " | ".join(f"HV ratio {k}" for k in keys) + " | "
            + " | ".join(f"IGD {k}" for k in keys) + " |")
    lines = [f"accuracy source: **{res['accuracy_label']}**; mean ± std over seeds (search: {len(res['seeds'])}; "
             f"hypernetwork: {len(res['hypernetwork_files'])} files)", "",
             head, "|" + "---|" * (2 + 2 * len(keys))]
    for d, dev in res["devices"].items():
        s = dev["summary"]
        lines.append(f"| {d} | {dev['hv_true']:.4f} | "
                     + " | ".join(f"{s[k]['hv_ratio_mean']:.3f} ± {s[k]['hv_ratio_std']:.3f}" for k in keys) + " | "
                     + " | ".join(f"{s[k]['igd_mean']:.4f} ± {s[k]['igd_std']:.4f}" for k in keys) + " |")
    return "\n".join(lines)


def plot(path: Path, device: str, fr: dict, label: str, n: int) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6, 4.5))
    ax.scatter(fr["all"][:, 1], fr["all"][:, 0], s=2, c="0.85", label="all cells (≤ 90 % error)")
    styles = {"true": ("k", "true front"), "random": ("tab:blue", f"random search N={n}"),
              "nsga2": ("tab:red", f"NSGA-II N={n} ({label})"),
              "hypernetwork": ("tab:green", "MODNAS hypernetwork (24 rays)"),
              "untrained_hypernetwork": ("tab:gray", "untrained hypernetwork (24 rays)")}
    for key, (color, name) in styles.items():
        if key in fr and len(fr[key]):
            P = fr[key][np.argsort(fr[key][:, 1])]
            ax.step(P[:, 1], P[:, 0], where="post", color=color, lw=1.2)
            ax.scatter(P[:, 1], P[:, 0], s=12, color=color, label=name)
    ax.set_xlabel(f"normalised latency ({device})")
    ax.set_ylabel("normalised CIFAR-10 test error")
    ax.set_xlim(-0.02, 1.02)
    ax.set_ylim(-0.02, 1.02)
    ax.legend(fontsize=8)
    ax.set_title(f"NB201 Pareto fronts on {device} (seed 0)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def run(args) -> int:
    """The tool's check on its arguments: writes ``nb201_pareto_<tag>.json`` (and the PNG), prints the table;
    2 after a one-line error."""
    try:
        res = hv_check(args)
    except (InputError, ValueError, KeyError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    fronts = res.pop("_plot")
    tag = args.tag or res["accuracy_label"].split(":")[0]
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path = out_dir / f"nb201_pareto_{tag}.json"
    json_path.write_text(json.dumps(res, indent=1) + "\n")
    table = markdown(res)
    print(table)
    print(f"\nwrote {json_path}")
    if not args.no_plot and fronts:
        device = args.plot_device or next(iter(fronts))
        png = out_dir / f"nb201_pareto_{tag}.png"
        plot(png, device, fronts[device], res["accuracy_label"], max(res["budgets"]))
        print(f"wrote {png}")
    return 0

