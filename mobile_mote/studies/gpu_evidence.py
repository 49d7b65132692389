"""Every GPU figure from one short run (``tools/gpu_evidence.py``): stages that each write their results as they
finish, each under a cap, so that an overrun keeps what was measured. Speed modes of the estimator against a
plain loop, Kendall tau on NB201 and NAS-Bench-Macro at paper settings, agreement with the released terms,
retraining throughput, and a search's candidates per minute. Every list is scored by ``scoring.score_archs``;
stages b and d through the run's store (``gpu_evidence.db`` in the output folder)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import itertools
import time
from pathlib import Path

from ..atomic import write_text
from ..correlation import rank_agreement
from ..provenance import provenance
from .published import published

CODE_ROOT = Path(__file__).resolve().parents[2]  # the checkout a subprocess must import, installed or not

# Each stage's cap (seconds on the GPU) and its sizes; --dry-run: tiny, on CPU. The GPU caps add up to the
# budget (420 s of the run's 8 minutes; the rest is the start of Python, CUDA and the data).
SETTINGS = {
    "gpu": {"profile": "paper", "device": "cuda", "speed_cells": 16, "speed_cap_s": 22, "workers": 4,
            "tau_cells": 300, "tau_cap_s": 150, "macro_nets": 200, "macro_cap_s": 60, "retrain_batch": 256,
            "retrain_res": 224, "retrain_steps": 40, "retrain_warmup": 10, "retrain_cap_s": 45, "search_s": 60,
            "search_space": "mbv3", "search_flops": "400M", "budget_s": 420},
    "dry": {"profile": "tiny", "device": "cpu", "speed_cells": 2, "speed_cap_s": 4, "workers": 2,
            "tau_cells": 4, "tau_cap_s": 40, "macro_nets": 3, "macro_cap_s": 20, "retrain_batch": 2,
            "retrain_res": 64, "retrain_steps": 1, "retrain_warmup": 1, "retrain_cap_s": 30, "search_s": 25,
            "search_space": "macro", "search_flops": "50M", "budget_s": 200},
}
# stage b's proxies: mote-z's default components that are not MOTE's terms, and synflow and zico beside them
PROXIES = tuple(dict.fromkeys(("synflow", "zico", "jacov", "naswot", "vkdnw", "expressivity", "trainability", "macs")))
STAGES = ("speed", "nb201", "released", "macro", "retrain", "search")
# the speed stage's modes: (name, step, workers or None for the settings' W)
MODES = (("eager_workers", "eager", None), ("graph_one_at_a_time", "graph", 1), ("eager_one_at_a_time", "eager", 1))


def _fused_components() -> tuple[str, ...]:
    from ..estimators.fused import FusedConfig
    return tuple(FusedConfig().components.split(","))


class Evidence:
    """The result document, written whole after every stage (an overrun keeps what finished)."""

    def __init__(self, out_dirs: list[Path], dry: bool):
        import torch
        from ..store import SearchStore
        self.out_dirs = out_dirs
        gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
        self.doc = {"provenance": provenance(), "dry_run": dry, "gpu": gpu, "started": time.strftime("%Y-%m-%dT%H:%M:%S"),
                    "code_root": str(CODE_ROOT), "stages": {}}
        for d in out_dirs:
            d.mkdir(parents=True, exist_ok=True)
        self.jsonl = [d / "gpu_evidence_nb201.jsonl" for d in out_dirs]
        for p in self.jsonl:
            p.write_text("")
        # a fresh store each run: records read back from an earlier run would void this run's timings
        db = out_dirs[0] / "gpu_evidence.db"
        for f in (db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")):
            f.unlink(missing_ok=True)
        self.store = SearchStore(db)

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


def _config(name: str, s: dict, **extra) -> dict:
    from ..estimators import estimator_config
    return estimator_config(name, s["profile"], time="cost", **extra)


def _estimator(name: str, s: dict, **extra):
    from ..estimators import get_estimator
    return get_estimator(name, **_config(name, s, **extra))


def _scored(space: str, archs: list[str], name: str, config: dict, data, s: dict, workers: int = 1, store=None):
    """``scoring.score_archs`` on the stage's device, seed 0, no progress bar: records as they are asked for."""
    from ..scoring import score_archs
    return score_archs(space, archs, name, data, config, 0, s["device"], False, workers, store)


def _chunks_until(records, step: int, deadline: float, on_record=None) -> tuple[list[dict], str | None]:
    """Take ``records`` (a ``score_archs`` generator: asking for a chunk's first record scores the chunk, one
    candidate per worker) ``step`` at a time while the next chunk, guessed to take as long as the last one,
    ends before ``deadline``; (records, error) where error names what ended it early (a raised error: a
    DeviceError, say) and the records scored before it are kept. The generator is closed (its scorer with it)."""
    recs: list[dict] = []
    last = 0.0
    try:
        while True:
            now = time.perf_counter()
            if now + last > deadline:
                break
            got = list(itertools.islice(records, step))  # never asks for the next chunk's first record
            if not got:
                break
            for rec in got:
                recs.append(rec)
                if on_record is not None:
                    on_record(rec)
            last = time.perf_counter() - now
    except Exception as e:
        return recs, f"{type(e).__name__}: {e}".splitlines()[0][:300]
    finally:
        records.close()
    return recs, None


def _timed(space: str, archs: list[str], data, s: dict, workers: int, step: str, cap_s: float) -> dict:
    """Score ``archs`` inside ``cap_s``; seconds per cell over those done. No store: a mode is timed scoring
    every cell, never reading back another mode's records."""
    t0 = time.perf_counter()
    records = _scored(space, archs, "mote", _config("mote", s, step=step), data, s, workers)
    recs, err = _chunks_until(records, workers, t0 + cap_s)
    dt = time.perf_counter() - t0
    return {"s_per_cell": dt / max(len(recs), 1), "cells": len(recs), "seconds": dt, "cap_s": cap_s,
            "failed": sum(r.get("status") != "ok" for r in recs) + (err is not None), "error": err, "records": recs}


def best_mode(modes: dict) -> str | None:
    """The fastest mode that scored cells without a failure (a failing mode is never best), or None."""
    clean = [k for k, m in modes.items() if m.get("cells", 0) > 0 and not m.get("failed") and not m.get("error")]
    return min(clean, key=lambda k: modes[k]["s_per_cell"]) if clean else None


def stage_speed(s: dict, data) -> dict:
    from ..scoring import sample_archs
    from mobile_mote.search_spaces import get_space
    space = get_space("nb201")
    archs = sample_archs("nb201", s["speed_cells"], 0)
    list(_scored("nb201", archs[:1], "mote", _config("mote", s), data, s))  # warm-up: cuDNN, allocator
    modes = {}
    for mode, step, workers in MODES:
        workers = workers or s["workers"]
        modes[mode] = _timed("nb201", archs, data, s, workers, step, s["speed_cap_s"])
        modes[mode].update(step=step, workers=workers, captured=any(
            (r.get("terms") or {}).get("train_step") == "cuda_graph" for r in modes[mode]["records"]))
    from .timing import plain_loop as plain
    cfg = _estimator("mote", s).config.__dict__
    t0, n, last = time.perf_counter(), 0, 0.0
    for a in archs:
        t1 = time.perf_counter()
        if t1 + last > t0 + s["speed_cap_s"]:
            break
        plain(space, a, data, cfg, 0, s["device"])
        n += 1
        last = time.perf_counter() - t1
    plain_s = (time.perf_counter() - t0) / max(n, 1) if n else None
    ref = {r["arch"]: r["score"] for r in modes["eager_one_at_a_time"]["records"]}
    for m in modes.values():  # the same scores in every mode (graph replays the same arithmetic)
        diffs = [abs(r["score"] - ref[r["arch"]]) for r in m["records"] if r["arch"] in ref and r["score"] is not None
                 and ref[r["arch"]] is not None]
        m["max_abs_score_diff_vs_eager"] = max(diffs) if diffs else None
        m["cells_done"] = [r["arch"] for r in m.pop("records")]
    best = best_mode(modes)
    speed = {"best": ({"mode": best, "s_per_cell": modes[best]["s_per_cell"], "step": modes[best]["step"],
                       "workers": modes[best]["workers"]} if best else
                      {"mode": None, "reason": "every mode failed a cell: stages b and d run eager, one at a time"}),
             "eager_one_at_a_time": {"s_per_cell": modes["eager_one_at_a_time"]["s_per_cell"]},
             "plain_loop": {"s_per_cell": plain_s},
             "speedup_vs_plain": (plain_s / modes[best]["s_per_cell"]) if best and plain_s else None,
             "official_v100_s_per_cell": published("mote_official_speed")["v100_s_per_cell"]}
    return {"cells": archs, "config": cfg, "modes": modes, "plain_loop": {"s_per_cell": plain_s, "cells": n},
            "refused": {"graph_workers": "step=graph with several workers per device is refused (one CUDA-graph "
                                         "capture per process at a time)"},
            "speed": speed}


def stage_nb201(s: dict, data, best: dict, ev: Evidence, dev_csv: Path, bench_csv: Path) -> tuple[dict, dict]:
    from ..benchmarks import load_benchmark
    from ..estimators.mote import rescore_population
    from ..fusion import log_rank_sum, record_components
    from ..scoring import sample_from_file
    from mobile_mote.search_spaces import get_space
    space = get_space("nb201")
    archs = sample_from_file(dev_csv, space, s["tau_cells"], 0)
    step, workers = best.get("step") or "eager", best.get("workers") or 1
    est = _estimator("mote", s, step=step)
    t0 = time.perf_counter()
    stop = t0 + s["tau_cap_s"]
    # MOTE gets three quarters of the cap, the four proxies (one candidate at a time) what is left
    records = _scored("nb201", archs, "mote", _config("mote", s, step=step), data, s, workers, ev.store)
    mote, mote_err = _chunks_until(records, workers, t0 + 0.75 * s["tau_cap_s"], ev.record)
    mote_s = time.perf_counter() - t0
    done = [r["arch"] for r in mote]
    for name in ("tse", "early_stop_acc"):
        for r in mote:
            ev.record(_estimator(name, s).from_shared_run(r))
    proxies: dict = {n: [] for n in PROXIES}
    # one generator per proxy over the cells, each scoring a cell when asked for its record
    scorers = {n: _scored("nb201", done, n, {}, data, s, store=ev.store) for n in PROXIES}
    t1, last, proxy_err = time.perf_counter(), 0.0, None
    try:  # cell by cell, every proxy of a cell before the next: a cell is in the tau with all four or not at all
        for a in done:
            now = time.perf_counter()
            if now + last > stop:
                break
            for n in PROXIES:
                rec = next(scorers[n])
                proxies[n].append(rec)
                ev.record(rec)
            last = time.perf_counter() - now
    except Exception as e:
        proxy_err = f"{type(e).__name__}: {e}".splitlines()[0][:300]
    finally:
        for sc in scorers.values():
            sc.close()
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
    result = {"cells": len(cells), "asked": len(archs), "mote_cells": len(mote), "cap_s": s["tau_cap_s"],
              "mote_failed": sum(r["status"] != "ok" for r in mote), "errors": {"mote": mote_err, "proxies": proxy_err},
              "mote_seconds": mote_s, "proxy_seconds": proxy_s,
              "boxcox_fitted": boxcox, "kendall_tau": taus,
              "mote_s_per_cell": mote_s / max(len(mote), 1), "proxies_s_per_cell": proxy_s / max(len(cells), 1)}
    return result, {"cells": cells, "scores": scores, "records": by}


def stage_released(nb: dict, dev_csv: Path) -> dict:
    import csv
    from mobile_mote.search_spaces import get_space
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


def stage_macro(s: dict, data, best: dict, store) -> dict:
    from ..benchmarks import load_benchmark, packaged_benchmark
    from ..estimators.mote import rescore_population
    from ..scoring import sample_archs
    from mobile_mote.search_spaces import get_space
    space = get_space("macro")
    archs = sample_archs("macro", s["macro_nets"], 0)
    step, workers = best.get("step") or "eager", best.get("workers") or 1
    est = _estimator("mote", s, step=step)
    t0 = time.perf_counter()
    records = _scored("macro", archs, "mote", _config("mote", s, step=step), data, s, workers, store)
    scored, err = _chunks_until(records, workers, t0 + s["macro_cap_s"])
    recs = [r for r in scored if r["status"] == "ok"]
    secs = time.perf_counter() - t0
    if len(recs) >= 3:
        recs, _ = rescore_population(recs, est, "fit")
    cells = [r["arch"] for r in recs]
    truth = load_benchmark(packaged_benchmark("macro"), "macro").truth_for(cells)["cifar10"]
    return {"networks": len(cells), "asked": len(archs), "scored": len(scored), "cap_s": s["macro_cap_s"],
            "failed": len(scored) - len(recs), "error": err, "s_per_network": secs / max(len(scored), 1),
            "kendall_tau": {"mote": rank_agreement([r["score"] for r in recs], truth),
                            "mote: landscape term": rank_agreement([-r["terms"]["landscape"] for r in recs], truth),
                            "mote: speed term": rank_agreement([-r["terms"]["speed"] for r in recs], truth),
                            "macs": rank_agreement([space.macs(a) for a in cells], truth)},
            "records": [{"arch": r["arch"], "score": r["score"], "landscape": r["terms"]["landscape"],
                         "speed": r["terms"]["speed"]} for r in recs]}


def stage_retrain(s: dict) -> dict:
    import torch
    from mobile_mote.train import throughput as br
    device = torch.device(s["device"])
    out = {}
    t0, last = time.perf_counter(), 0.0
    for name in ("mobilenetv2_100", "mobilenetv3_large_100"):
        t1 = time.perf_counter()
        if t1 + last > t0 + s["retrain_cap_s"]:  # the next model would not finish inside the cap
            out[name] = {"status": "not measured", "reason": f"cap of {s['retrain_cap_s']} s reached"}
            continue
        if device.type == "cuda":
            torch.backends.cudnn.benchmark = True  # as the retraining loop sets it
        m = br.bench_model(device, s["retrain_batch"], s["retrain_res"], s["retrain_steps"], s["retrain_warmup"],
                           False, model_name=name)
        rec, plain = m.get("recipe_eager", {}), m.get("plain_pytorch", {})
        ratio = (rec["images_per_s"] / plain["images_per_s"]) if rec.get("status") == plain.get("status") == "measured" else None
        proj = br.project(m, device)
        if proj.get("status") == "projected":
            proj["gpu_hours_200_epochs_on_8_gpus"] = proj["gpu_hours_200_epochs"] / 8
        out[name] = {"model": m, "recipe_over_plain": ratio, "projection": proj,
                     "data_pipeline": "not measured here (tools/bench_retrain.py measures decoding)"}
        last = time.perf_counter() - t1
    return out


SEARCH_RUN = "mbv3"  # the run name stage f searches under (its store: runs/<name>/search.db)


def stage_search(s: dict, proxy_data: str, seconds: float) -> dict:
    import tempfile
    runs = Path(tempfile.mkdtemp(prefix="gpu_evidence_search_"))
    cmd = [sys.executable, "-m", "mobile_mote", "search", "--space", s["search_space"], "--flops", s["search_flops"], "--profile",
           s["profile"], "--set", "time=cost", "--proxy-data", proxy_data, "--device", s["device"], "--runs-dir",
           str(runs), "--name", SEARCH_RUN, "--quiet"]
    t0 = time.perf_counter()
    try:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(x for x in (str(CODE_ROOT), os.environ.get("PYTHONPATH")) if x)}
        proc = subprocess.run(cmd, timeout=seconds, capture_output=True, text=True, env=env)
        finished, err = proc.returncode == 0, proc.stderr[-500:]
    except subprocess.TimeoutExpired:
        finished, err = False, None
    dt = time.perf_counter() - t0
    db = runs / SEARCH_RUN / "search.db"
    n = 0
    if db.is_file():  # every scored candidate, whether or not its iteration was committed to the run
        import sqlite3
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as con:
            n = con.execute("SELECT COUNT(*) FROM candidates").fetchone()[0]
    per_min = n / (dt / 60)
    from .search_table import full_search_candidates_at_most
    upper = full_search_candidates_at_most()
    return {"command": " ".join(cmd), "seconds": dt, "finished": finished, "error": err, "candidates": n,
            "candidates_per_minute": per_min, "full_search_candidates_at_most": upper,
            "projected_gpu_days_full_search": (upper / per_min) / 60 / 24 if per_min else None}


def run(args, default_data: Path) -> int:
    """Every asked stage under the budget, each written as it finishes (``default_data``: the data folder
    when ``--data`` is not given); 0, 1 with --require-all when a stage is not measured, 2 on bad input."""
    s = dict(SETTINGS["dry" if args.dry_run else "gpu"])
    budget = s["budget_s"] if args.budget_s is None else args.budget_s
    import torch
    if not args.dry_run and not torch.cuda.is_available():
        print("gpu_evidence: error: no CUDA device; run with --dry-run on a CPU", file=sys.stderr)
        return 2
    stages = [x.strip() for x in args.stages.split(",") if x.strip()]
    unknown = [x for x in stages if x not in STAGES]
    if unknown:
        print(f"gpu_evidence: error: unknown stage(s) {unknown}; accepted: {', '.join(STAGES)}", file=sys.stderr)
        return 2
    root = Path(args.data) if args.data else default_data
    proxy_dir, dev_csv, bench_csv = root / "proxy_cifar100_10", root / "nb201" / "official_mote_dev.csv", \
        root / "nb201" / "benchmark.csv"
    dirs = [Path(args.out_dir)] + ([Path(args.copy_to)] if args.copy_to else [])
    ev = Evidence(dirs, args.dry_run)
    ev.doc.update(settings=s, budget_s=budget, data=str(root))
    commit = root / "COMMIT"
    if commit.is_file():  # written by --prepare: the code the carried data went with
        ev.doc["prepared_at_commit"] = commit.read_text().strip()
    ev.save()
    t_start = time.perf_counter()
    best: dict = {}
    loaded: dict = {}

    def data():
        if "data" not in loaded:
            from ..data.proxy_data import load_proxy_data
            loaded["data"] = load_proxy_data(proxy_dir)
        return loaded["data"]

    def run(name, fn):
        left = budget - (time.perf_counter() - t_start)
        if name not in stages:
            return None
        if left <= 0:
            ev.stage(name, {"status": "not measured", "reason": f"out of time ({budget:.0f} s budget)"})
            return None
        t0 = time.perf_counter()
        try:
            res = fn()
            ev.stage(name, {"status": "measured", "seconds": time.perf_counter() - t0, **res})
            print(f"gpu_evidence: {name} done in {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
            return res
        except KeyboardInterrupt:  # `timeout -s INT`: the run's hard limit; what finished is on disk
            ev.stage(name, {"status": "interrupted", "seconds": time.perf_counter() - t0})
            raise
        except Exception as e:  # one broken stage never loses the others
            ev.stage(name, {"status": "failed", "error": f"{type(e).__name__}: {e}".splitlines()[0][:500]})
            print(f"gpu_evidence: {name} failed: {type(e).__name__}: {e}", file=sys.stderr, flush=True)
            return None

    try:
        speed = run("speed", lambda: stage_speed(s, data()))
        if speed:
            best = speed["speed"]["best"]
        detail: dict = {}

        def nb201() -> dict:
            res, detail["nb201"] = stage_nb201(s, data(), best, ev, dev_csv, bench_csv)
            return res
        run("nb201", nb201)
        if "nb201" in detail:
            run("released", lambda: stage_released(detail["nb201"], dev_csv))
        run("macro", lambda: stage_macro(s, data(), best, ev.store))
        run("retrain", lambda: stage_retrain(s))
        left = budget - (time.perf_counter() - t_start)
        if "search" in stages and left < 10:
            ev.stage("search", {"status": "not measured", "reason": f"{max(left, 0):.0f} s left of the budget"})
        else:
            run("search", lambda: stage_search(s, str(proxy_dir), min(s["search_s"], left)))
    except KeyboardInterrupt:
        print("gpu_evidence: interrupted; the stages that finished are in gpu_evidence.json", file=sys.stderr)
    finally:
        ev.store.close()
    ev.doc["total_seconds"] = time.perf_counter() - t_start
    ev.save()
    status = {k: ev.doc["stages"][k].get("status") for k in ev.doc["stages"]}
    print(json.dumps(status))
    if args.require_all and any(status.get(k) != "measured" for k in stages):
        return 1
    return 0
