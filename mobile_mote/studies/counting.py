"""Analytic MACs/params against fvcore and ptflops (``tools/bench_counting.py``): agreement and time per
architecture, counted on a built model and with the build, for the full and the reduced network."""
from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import shlex
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np

from ..atomic import write_text
from ..provenance import cpu_model, versions

def _rel(a: int, b: int) -> float:
    return abs(a - b) / max(abs(a), abs(b), 1)


def _analytic_seconds(space, arch, reduced: bool, repeats: int) -> tuple[float, int, int]:
    """Cold cost: the space's memo is cleared before every repeat, so each one parses and plans."""
    total = 0.0
    for _ in range(repeats):
        space.clear_cache()
        t0 = time.perf_counter()
        macs = space.macs(arch, reduced=reduced)
        params = space.params(arch, reduced=reduced)
        total += time.perf_counter() - t0
    return total / repeats, macs, params


def bench_setting(space, archs: list[str], reduced: bool, repeats: int, log) -> dict:
    from mobile_mote.search_spaces.counting import fvcore_macs, ptflops_macs, torch_params

    res = space.default_resolution(reduced)
    # Warm-up (imports, first JIT trace) outside the timings.
    warm = space.build(archs[0], reduced=reduced)
    fvcore_macs(warm, res), ptflops_macs(warm, res), _analytic_seconds(space, archs[0], reduced, 1)

    t = {k: [] for k in ("analytic", "build", "fvcore", "ptflops")}
    rel = {"analytic_fvcore": [], "analytic_ptflops": [], "fvcore_ptflops": []}
    params_equal = 0
    all_macs = []
    worst = (-1.0, None, None)
    for i, arch in enumerate(archs):
        sec, macs, params = _analytic_seconds(space, arch, reduced, repeats)
        t["analytic"].append(sec)
        all_macs.append(macs)

        t0 = time.perf_counter()
        model = space.build(arch, reduced=reduced)
        t["build"].append(time.perf_counter() - t0)

        t0 = time.perf_counter()
        fv, fv_params = fvcore_macs(model, res), torch_params(model)
        t["fvcore"].append(time.perf_counter() - t0)

        t0 = time.perf_counter()
        pt, pt_params = ptflops_macs(model, res), torch_params(model)
        t["ptflops"].append(time.perf_counter() - t0)

        pair = {"analytic_fvcore": _rel(macs, fv), "analytic_ptflops": _rel(macs, pt), "fvcore_ptflops": _rel(fv, pt)}
        for k, v in pair.items():
            rel[k].append(v)
        params_equal += int(params == fv_params == pt_params)
        if max(pair.values()) > worst[0]:
            worst = (max(pair.values()), arch, {"analytic": macs, "fvcore": fv, "ptflops": pt})
        if (i + 1) % 25 == 0 or i + 1 == len(archs):
            log(f"  {space.name} {'reduced' if reduced else 'full'}: {i + 1}/{len(archs)}")

    mean = {k: statistics.fmean(v) for k, v in t.items()}
    median = {k: statistics.median(v) for k, v in t.items()}
    per_arch = {
        "analytic": mean["analytic"],
        "build": mean["build"],
        "fvcore_count": mean["fvcore"],
        "ptflops_count": mean["ptflops"],
        "fvcore_build_count": mean["build"] + mean["fvcore"],
        "ptflops_build_count": mean["build"] + mean["ptflops"],
    }
    return {
        "space": space.name,
        "network": "reduced" if reduced else "full",
        "resolution": res,
        "n_archs": len(archs),
        "seconds_per_arch_mean": per_arch,
        "seconds_per_arch_median": {k: median[k] for k in t},
        "speedup_vs_analytic": {k: v / per_arch["analytic"] for k, v in per_arch.items() if k != "analytic"},
        "max_rel_disagreement": {**{k: max(v) for k, v in rel.items()}, "all": worst[0]},
        "params_equal": f"{params_equal}/{len(archs)}",
        "params_all_equal": params_equal == len(archs),
        "worst_arch": {"arch": worst[1], "macs": worst[2]},
        "macs_range": [min(all_macs), max(all_macs)],
    }


def _table(results: list[dict]) -> str:
    head = ("| space | network | input | archs | analytic s/arch | fvcore s/arch (count / build+count) "
            "| ptflops s/arch (count / build+count) | speed-up vs fvcore (count / build+count) "
            "| speed-up vs ptflops (count / build+count) | max MACs disagreement | params == numel |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in results:
        s, x = r["seconds_per_arch_mean"], r["speedup_vs_analytic"]
        lines.append(
            f"| {r['space']} | {r['network']} | {r['resolution']}² | {r['n_archs']} | {s['analytic']:.2e} "
            f"| {s['fvcore_count']:.3f} / {s['fvcore_build_count']:.3f} "
            f"| {s['ptflops_count']:.3f} / {s['ptflops_build_count']:.3f} "
            f"| {x['fvcore_count']:,.0f}× / {x['fvcore_build_count']:,.0f}× "
            f"| {x['ptflops_count']:,.0f}× / {x['ptflops_build_count']:,.0f}× "
            f"| {100 * r['max_rel_disagreement']['all']:.4f} % | {r['params_equal']} |")
    return "\n".join(lines)


def run(args, command: list[str], error) -> int:
    """Counts every space of the tool's arguments, writes ``args.out`` (recording ``command``) and prints the
    table; ``error`` is the parser's own (exit status 2 with the usage)."""
    import torch

    from mobile_mote.search_spaces import ArchError, get_space

    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")

    def log(msg):
        print(msg, file=sys.stderr, flush=True)

    results = []
    t_start = time.perf_counter()
    for name in [s.strip() for s in args.spaces.split(",") if s.strip()]:
        try:
            space = get_space(name)
        except ArchError as e:
            error(str(e))
        rng = np.random.default_rng(args.seed)
        archs = [space.sample(rng) for _ in range(args.n)]
        archs.append(space.canonical(space.default_arch()))  # the preset
        for reduced in (False, True):
            results.append(bench_setting(space, archs, reduced, args.repeats, log))

    record = {
        "benchmark": "counting",
        "command": "python " + shlex.join(command),
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": {"cpu": cpu_model(), "logical_cpus": os.cpu_count(), "torch_threads": args.threads,
                    "platform": platform.platform()},
        "versions": versions("fvcore", "ptflops"),
        "n": args.n,
        "seed": args.seed,
        "archs_per_space": args.n + 1,
        "notes": ("analytic = space.macs + space.params from the string, memo cleared before each (cold cost); count = counter on a built model "
                  "(+ sum(p.numel())); build+count adds building the model from the string; "
                  "MACs disagreement = max over archs of |a-b|/max(a,b) over the three pairs; "
                  "ptflops counts bias adds (classifier, MobileNetV3 head conv, SE convs), the others do not"),
        "wall_seconds": round(time.perf_counter() - t_start, 1),
        "results": results,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_text(out, json.dumps(record, indent=2) + "\n")
    print(_table(results))
    print(f"\nwrote {out} ({record['wall_seconds']} s; {record['machine']['cpu']}, {args.threads} thread(s))")
    return 0
