#!/usr/bin/env python
"""Every GPU figure from one short run: stages that each write their results as they finish.

    python tools/gpu_evidence.py                 # on one H100/H200: about 8 minutes, paper settings
    python tools/gpu_evidence.py --dry-run       # every stage on CPU at tiny settings (a test runs it)

a. speed    seconds per NB201 cell at paper settings on 16 fixed cells: each of our modes (eager or
            CUDA-graph step, one candidate at a time or W workers on the device) vs a plain DataLoader
            fp32 loop, same cells, same run; each mode under a time cap (the cells it finished are named)
b. nb201    Kendall tau at paper settings on >= 300 seeded cells of NB201's development split: mote, its
            two terms, tse and early_stop_acc (read off MOTE's run), four proxies, and the fused score
            (mote-z's default components, ranked as mote-z ranks them) against C10 / C100 / IN16
c. released rank agreement of our per-cell MOTE and terms with the released values on those cells
d. macro    tau of MOTE at paper settings on >= 200 NAS-Bench-Macro networks, beside FLOPs
e. retrain  images/s of the recipe step vs a plain loop, mobilenetv2_100 and mobilenetv3_large_100 at 224,
            and the projected GPU-hours of the 200-epoch recipe on 8 GPUs
f. search   if time remains: `mote search --space mbv3 --flops 400M` at paper settings for a while ->
            candidates per minute -> projected GPU-days of a full search (--dry-run: macro at 50M)

Writes ``<out>/gpu_evidence.json`` after every stage and ``<out>/gpu_evidence_nb201.jsonl`` (one record per
cell and estimator) as cells finish; a stage that runs out of its time share keeps what it measured.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"

from mobile_mote.atomic import write_text  # noqa: E402
from mobile_mote.correlation import rank_agreement  # noqa: E402
from mobile_mote.provenance import provenance  # noqa: E402

# Each stage's share of the time budget (seconds on the GPU) and its sizes; --dry-run: tiny, on CPU.
SETTINGS = {
    "gpu": {"profile": "paper", "device": "cuda", "speed_cells": 16, "speed_cap_s": 35, "workers": 4,
            "tau_cells": 300, "tau_cap_s": 170, "macro_nets": 200, "macro_cap_s": 80, "retrain_batch": 256,
            "retrain_res": 224, "retrain_steps": 40, "retrain_warmup": 10, "search_s": 90,
            "search_space": "mbv3", "search_flops": "400M"},
    "dry": {"profile": "tiny", "device": "cpu", "speed_cells": 2, "speed_cap_s": 5, "workers": 2,
            "tau_cells": 6, "tau_cap_s": 60, "macro_nets": 4, "macro_cap_s": 40, "retrain_batch": 2,
            "retrain_res": 64, "retrain_steps": 1, "retrain_warmup": 1, "search_s": 25,
            "search_space": "macro", "search_flops": "50M"},
}
PROXIES = ("jacov", "naswot", "zico", "synflow")
STAGES = ("speed", "nb201", "released", "macro", "retrain", "search")


def _fused_components() -> tuple[str, ...]:
    from mobile_mote.estimators.fused import FusedConfig
    return tuple(FusedConfig().components.split(","))


def _tool(name: str):
    spec = importlib.util.spec_from_file_location(name, REPO / "tools" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


class Evidence:
    """The result document, written whole after every stage (an overrun keeps what finished)."""

    def __init__(self, out_dirs: list[Path], dry: bool):
        import torch
        self.out_dirs = out_dirs
        gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
        self.doc = {"provenance": provenance(), "dry_run": dry, "gpu": gpu, "started": time.strftime("%Y-%m-%dT%H:%M:%S"),
                    "stages": {}}
        for d in out_dirs:
            d.mkdir(parents=True, exist_ok=True)
        self.jsonl = [d / "gpu_evidence_nb201.jsonl" for d in out_dirs]
        for p in self.jsonl:
            p.write_text("")

    def stage(self, name: str, result: dict) -> None:
        self.doc["stages"][name] = result
        if name == "speed" and "speed" in result:
            self.doc["speed"] = result["speed"]
        self.save()

    def save(self) -> None:
        for d in self.out_dirs:
            write_text(d / "gpu_evidence.json", json.dumps(self.doc, indent=1, default=str))

    def record(self, rec: dict) -> None:
        keep = {k: rec.get(k) for k in ("arch", "estimator", "score", "terms", "status", "seconds", "config_hash",
                                        "device", "derived_from")}
        line = json.dumps(keep, default=str) + "\n"
        for p in self.jsonl:
            with open(p, "a") as f:
                f.write(line)


def _estimator(name: str, s: dict, **extra):
    from mobile_mote.estimators import estimator_config, get_estimator
    return get_estimator(name, **estimator_config(name, s["profile"], time="cost", **extra))


def _timed(scorer_make, archs: list[str], cap_s: float) -> dict:
    """Score ``archs`` in chunks of the scorer's size until ``cap_s``; seconds per cell over those done."""
    scorer = scorer_make()
    done, recs = [], []
    t0 = time.perf_counter()
    try:
        step = getattr(scorer, "chunk", 1) or 1
        for i in range(0, len(archs), step):
            recs += scorer.score(archs[i:i + step])
            done += archs[i:i + step]
            if time.perf_counter() - t0 > cap_s:
                break
    finally:
        scorer.close()
    dt = time.perf_counter() - t0
    return {"s_per_cell": dt / max(len(done), 1), "cells": len(done), "seconds": dt,
            "failed": sum(r.get("status") != "ok" for r in recs), "records": recs}


def stage_speed(s: dict, data) -> dict:
    from mobile_mote.scoring import sample_archs
    from mobile_mote.search.scorer import LocalScorer
    from search_spaces import get_space
    space = get_space("nb201")
    archs = sample_archs("nb201", s["speed_cells"], 0)
    LocalScorer(space, _estimator("mote", s), data, 0, s["device"]).score(archs[:1])  # warm-up: cuDNN, allocator
    modes = {}
    for mode, step, workers in (("graph_workers", "graph", s["workers"]), ("eager_workers", "eager", s["workers"]),
                                ("graph_one_at_a_time", "graph", 1), ("eager_one_at_a_time", "eager", 1)):
        est = _estimator("mote", s, step=step)
        modes[mode] = _timed(lambda: LocalScorer(space, est, data, 0, s["device"], workers), archs, s["speed_cap_s"])
        modes[mode].update(step=step, workers=workers, captured=any(
            (r.get("terms") or {}).get("train_step") == "cuda_graph" for r in modes[mode]["records"]))
    plain = _tool("bench_estimator").plain_loop
    cfg = _estimator("mote", s).config.__dict__
    t0, n = time.perf_counter(), 0
    for a in archs:
        plain(space, a, data, cfg, 0, s["device"])
        n += 1
        if time.perf_counter() - t0 > s["speed_cap_s"]:
            break
    plain_s = (time.perf_counter() - t0) / n
    ref = {r["arch"]: r["score"] for r in modes["eager_one_at_a_time"]["records"]}
    for m in modes.values():  # the same scores in every mode (graph replays the same arithmetic)
        diffs = [abs(r["score"] - ref[r["arch"]]) for r in m["records"] if r["arch"] in ref and r["score"] is not None
                 and ref[r["arch"]] is not None]
        m["max_abs_score_diff_vs_eager"] = max(diffs) if diffs else None
        m.pop("records")
    best = min(modes, key=lambda k: modes[k]["s_per_cell"])
    return {"cells": archs, "config": cfg, "modes": modes, "plain_loop": {"s_per_cell": plain_s, "cells": n},
            "speed": {"best": {"mode": best, "s_per_cell": modes[best]["s_per_cell"],
                               "step": modes[best]["step"], "workers": modes[best]["workers"]},
                      "eager_one_at_a_time": {"s_per_cell": modes["eager_one_at_a_time"]["s_per_cell"]},
                      "plain_loop": {"s_per_cell": plain_s},
                      "speedup_vs_plain": plain_s / modes[best]["s_per_cell"],
                      "official_v100_s_per_cell": 7.5}}


def _score_until(space, est, archs, data, s, workers, cap_s, ev: Evidence | None = None) -> list[dict]:
    from mobile_mote.search.scorer import LocalScorer
    scorer = LocalScorer(space, est, data, 0, s["device"], workers)
    out, t0 = [], time.perf_counter()
    try:
        for i in range(0, len(archs), scorer.chunk):
            for rec in scorer.score(archs[i:i + scorer.chunk]):
                out.append(rec)
                if ev is not None:
                    ev.record(rec)
            if time.perf_counter() - t0 > cap_s:
                break
    finally:
        scorer.close()
    return out


def stage_nb201(s: dict, data, best: dict, ev: Evidence, dev_csv: Path, bench_csv: Path) -> tuple[dict, dict]:
    from mobile_mote.benchmarks import load_benchmark
    from mobile_mote.estimators import get_estimator
    from mobile_mote.estimators.mote import rescore_population
    from mobile_mote.fusion import log_rank_sum, record_components
    from mobile_mote.scoring import sample_from_file
    from search_spaces import get_space
    space = get_space("nb201")
    archs = sample_from_file(dev_csv, space, s["tau_cells"], 0)
    est = _estimator("mote", s, step=best.get("step", "eager"))
    t0 = time.perf_counter()
    mote = _score_until(space, est, archs, data, s, best.get("workers", 1), s["tau_cap_s"] * 0.75, ev)
    mote_s = time.perf_counter() - t0
    done = [r["arch"] for r in mote]
    for name in ("tse", "early_stop_acc"):
        for r in mote:
            ev.record(_estimator(name, s).from_shared_run(r))
    proxies = {}
    t1 = time.perf_counter()
    for name in PROXIES:
        proxies[name] = _score_until(space, get_estimator(name), done, data, s, 1, s["tau_cap_s"], ev)
    proxy_s = time.perf_counter() - t1
    ok = [r for r in mote if r["status"] == "ok"]
    refit, boxcox = rescore_population(ok, est, "fit") if len(ok) >= 3 else (ok, None)
    by = {r["arch"]: r for r in refit}
    # a flagged proxy (non-finite: the network ignores its input) is its worst value; a failed one is unknown
    known = {n: {p["arch"]: record_components(p).get(n) for p in proxies[n]} for n in PROXIES}
    cells = [a for a in done if a in by and all(known[n].get(a) is not None for n in PROXIES)]
    comps = {a: {**record_components(by[a]), **{n: known[n][a] for n in PROXIES}} for a in cells}
    scores = {"mote": [by[a]["score"] for a in cells],
              "mote: landscape term": [comps[a]["landscape"] for a in cells],
              "mote: speed term": [comps[a]["speed"] for a in cells],
              "tse": [-by[a]["terms"]["tse"] for a in cells],
              "early_stop_acc": [by[a]["terms"].get("test_acc_bn", by[a]["terms"].get("train_acc_bn")) for a in cells],
              **{n: [comps[a][n] for a in cells] for n in PROXIES}}
    fused = _fused_components()
    scores["fused (mote-z: " + "+".join(fused) + ")"] = log_rank_sum({c: [comps[a][c] for a in cells] for c in fused})
    taus = {}
    for d in ("cifar10", "cifar100", "imagenet16"):
        truth = load_benchmark(bench_csv, "nb201", d).truth_for(cells)[d]
        taus[d] = {name: rank_agreement(v, truth) for name, v in scores.items()}
    result = {"cells": len(cells), "asked": len(archs), "mote_seconds": mote_s, "proxy_seconds": proxy_s,
              "boxcox_fitted": boxcox, "kendall_tau": taus,
              "mote_s_per_cell": mote_s / max(len(mote), 1), "proxies_s_per_cell": proxy_s / max(len(cells), 1)}
    return result, {"cells": cells, "scores": scores, "records": by}


def stage_released(nb: dict, dev_csv: Path) -> dict:
    import csv
    from search_spaces import get_space
    space = get_space("nb201")
    rel = {}
    with open(dev_csv, newline="") as f:
        for row in csv.DictReader(f):
            rel[space.canonical(row["arch"])] = row
    cells = [a for a in nb["cells"] if a in rel]
    ours = {"mote": nb["scores"]["mote"], "landscape": nb["scores"]["mote: landscape term"],
            "speed": nb["scores"]["mote: speed term"]}
    idx = [nb["cells"].index(a) for a in cells]
    out = {"cells": len(cells), "released_columns": {"mote": "mote", "landscape": "landscape_term", "speed": "speed_term"}}
    for name, col in out["released_columns"].items():
        out[name] = rank_agreement([ours[name][i] for i in idx], [float(rel[a][col]) for a in cells])
    return out


def stage_macro(s: dict, data, best: dict) -> dict:
    from mobile_mote.benchmarks import load_benchmark, packaged_benchmark
    from mobile_mote.estimators.mote import rescore_population
    from mobile_mote.scoring import sample_archs
    from search_spaces import get_space
    space = get_space("macro")
    archs = sample_archs("macro", s["macro_nets"], 0)
    est = _estimator("mote", s, step=best.get("step", "eager"))
    t0 = time.perf_counter()
    recs = [r for r in _score_until(space, est, archs, data, s, best.get("workers", 1), s["macro_cap_s"])
            if r["status"] == "ok"]
    secs = time.perf_counter() - t0
    if len(recs) >= 3:
        recs, _ = rescore_population(recs, est, "fit")
    cells = [r["arch"] for r in recs]
    truth = load_benchmark(packaged_benchmark("macro"), "macro").truth_for(cells)["cifar10"]
    return {"networks": len(cells), "asked": len(archs), "s_per_network": secs / max(len(cells), 1),
            "kendall_tau": {"mote": rank_agreement([r["score"] for r in recs], truth),
                            "mote: landscape term": rank_agreement([-r["terms"]["landscape"] for r in recs], truth),
                            "mote: speed term": rank_agreement([-r["terms"]["speed"] for r in recs], truth),
                            "macs": rank_agreement([space.macs(a) for a in cells], truth)},
            "records": [{"arch": r["arch"], "score": r["score"], "landscape": r["terms"]["landscape"],
                         "speed": r["terms"]["speed"]} for r in recs]}


def stage_retrain(s: dict) -> dict:
    import torch
    br = _tool("bench_retrain")
    device = torch.device(s["device"])
    out = {}
    for name in ("mobilenetv2_100", "mobilenetv3_large_100"):
        m = br.bench_model(device, s["retrain_batch"], s["retrain_res"], s["retrain_steps"], s["retrain_warmup"],
                           False, model_name=name)
        rec, plain = m.get("recipe_eager", {}), m.get("plain_pytorch", {})
        ratio = (rec["images_per_s"] / plain["images_per_s"]) if rec.get("status") == plain.get("status") == "measured" else None
        proj = br.project(m, device)
        if proj.get("status") == "projected":
            proj["gpu_hours_200_epochs_on_8_gpus"] = proj["gpu_hours_200_epochs"] / 8
        out[name] = {"model": m, "recipe_over_plain": ratio, "projection": proj,
                     "data_pipeline": "not measured here (tools/bench_retrain.py measures decoding)"}
    return out


def stage_search(s: dict, proxy_data: str, seconds: float) -> dict:
    import tempfile

    from mobile_mote.store import SearchStore
    runs = Path(tempfile.mkdtemp(prefix="gpu_evidence_search_"))
    cmd = [sys.executable, "-m", "mobile_mote", "search", "--space", s["search_space"], "--flops", s["search_flops"], "--profile",
           s["profile"], "--set", "time=cost", "--proxy-data", proxy_data, "--device", s["device"], "--runs-dir",
           str(runs), "--name", "mbv3", "--quiet"]
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, timeout=seconds, capture_output=True, text=True)
        finished, err = proc.returncode == 0, proc.stderr[-500:]
    except subprocess.TimeoutExpired:
        finished, err = False, None
    dt = time.perf_counter() - t0
    db = runs / "search" / "search.db"
    n = 0
    if db.is_file():
        with SearchStore(db, readonly=True) as st:
            n = len(st.run_records("search"))
    per_min = n / (dt / 60)
    from mobile_mote.search.algorithms import SearchConfig
    cfg = SearchConfig()
    upper = 10 * cfg.batch_start + cfg.n_iterations() * 10 * cfg.k  # initial draw + at most 10 k per iteration
    return {"command": " ".join(cmd), "seconds": dt, "finished": finished, "error": err, "candidates": n,
            "candidates_per_minute": per_min, "full_search_candidates_at_most": upper,
            "projected_gpu_days_full_search": (upper / per_min) / 60 / 24 if per_min else None}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dry-run", action="store_true", help="every stage on CPU at tiny settings")
    p.add_argument("--out-dir", default=str(REPO / "benchmarks" / "results"))
    p.add_argument("--copy-to", default=os.environ.get("OUT"), help="a second folder for the results (default $OUT)")
    p.add_argument("--budget-s", type=float, default=470, help="stop starting stages after this many seconds")
    p.add_argument("--stages", default=",".join(STAGES))
    p.add_argument("--proxy-data", default=str(SHARED / "proxy_cifar100_10"))
    args = p.parse_args(argv)
    s = SETTINGS["dry" if args.dry_run else "gpu"]
    import torch
    if not args.dry_run and not torch.cuda.is_available():
        print("gpu_evidence: error: no CUDA device; run with --dry-run on a CPU", file=sys.stderr)
        return 2
    stages = [x.strip() for x in args.stages.split(",") if x.strip()]
    unknown = [x for x in stages if x not in STAGES]
    if unknown:
        print(f"gpu_evidence: error: unknown stage(s) {unknown}; accepted: {', '.join(STAGES)}", file=sys.stderr)
        return 2
    from mobile_mote.data.proxy_data import load_proxy_data
    dirs = [Path(args.out_dir)] + ([Path(args.copy_to)] if args.copy_to else [])
    ev = Evidence(dirs, args.dry_run)
    ev.doc["settings"] = s
    data = load_proxy_data(args.proxy_data)
    dev_csv, bench_csv = SHARED / "nb201" / "official_mote_dev.csv", SHARED / "nb201" / "benchmark.csv"
    t_start = time.perf_counter()
    best: dict = {}

    def run(name, fn):
        left = args.budget_s - (time.perf_counter() - t_start)
        if name not in stages:
            return None
        if left <= 0:
            ev.stage(name, {"status": "not measured", "reason": f"out of time ({args.budget_s:.0f} s budget)"})
            return None
        t0 = time.perf_counter()
        try:
            res = fn()
            ev.stage(name, {"status": "measured", "seconds": time.perf_counter() - t0, **res})
            print(f"gpu_evidence: {name} done in {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
            return res
        except Exception as e:  # one broken stage never loses the others
            ev.stage(name, {"status": "failed", "error": f"{type(e).__name__}: {e}".splitlines()[0][:500]})
            print(f"gpu_evidence: {name} failed: {type(e).__name__}: {e}", file=sys.stderr, flush=True)
            return None

    speed = run("speed", lambda: stage_speed(s, data))
    if speed:
        best = speed["speed"]["best"]
    detail: dict = {}

    def nb201() -> dict:
        res, detail["nb201"] = stage_nb201(s, data, best, ev, dev_csv, bench_csv)
        return res
    run("nb201", nb201)
    if "nb201" in detail:
        run("released", lambda: stage_released(detail["nb201"], dev_csv))
    run("macro", lambda: stage_macro(s, data, best))
    run("retrain", lambda: stage_retrain(s))
    left = args.budget_s - (time.perf_counter() - t_start)
    run("search", lambda: stage_search(s, args.proxy_data, max(10.0, min(s["search_s"], left))))
    ev.doc["total_seconds"] = time.perf_counter() - t_start
    ev.save()
    print(json.dumps({k: ev.doc["stages"][k].get("status") for k in ev.doc["stages"]}))
    return 0



if __name__ == "__main__":
    raise SystemExit(main())
