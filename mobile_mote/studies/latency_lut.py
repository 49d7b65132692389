"""How well a per-block latency LUT predicts the end-to-end latency of random networks of a block space on
CPU (``tools/bench_latency_lut.py``): Spearman rho and the mean absolute percentage error, before and after
one leave-one-out scale."""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from mobile_mote.search_spaces import get_space

from ..efficiency.latency import build_lut, measure_torch, predict, save_lut
from ..provenance import provenance


def run(args, command: str, results: Path) -> int:
    """Builds the LUT, measures the tool's random networks, writes ``args.out`` (default: ``results``/
    latency_lut_<space>_cpu.json, recording ``command``) and prints the figures."""
    from scipy.stats import spearmanr

    torch.set_num_threads(1)
    space = get_space(args.space)
    t0 = time.perf_counter()
    lut = build_lut(space, "cpu", args.resolution, warmup=args.lut_warmup, repeats=args.lut_repeats, threads=1,
                    rounds=args.lut_rounds,
                    progress=lambda i, n, e: print(f"lut: {i}/{n} networks, {e} entries", file=sys.stderr, flush=True))
    lut_s = time.perf_counter() - t0
    if args.lut_out:
        save_lut(lut, args.lut_out)

    rng = np.random.default_rng(args.seed)
    nets = []
    t1 = time.perf_counter()
    for i in range(args.networks):
        arch = space.sample(rng)
        pred = predict(lut, space, arch)
        meas = measure_torch(space.build(arch), args.resolution, "cpu", 1, args.warmup, args.repeats, threads=1)
        nets.append({"arch": arch, "predicted_ms": round(pred, 4), "measured_ms": round(meas["median_ms"], 4),
                     "measured_p10_ms": round(meas["p10_ms"], 4), "measured_p90_ms": round(meas["p90_ms"], 4),
                     "macs": space.macs(arch, args.resolution)})
        print(f"net {i + 1}/{args.networks}: predicted {pred:.2f} ms, measured {meas['median_ms']:.2f} ms",
              file=sys.stderr, flush=True)
    pr = np.array([n["predicted_ms"] for n in nets])
    me = np.array([n["measured_ms"] for n in nets])
    macs = np.array([n["macs"] for n in nets])
    rho = float(spearmanr(pr, me).statistic)
    rho_macs = float(spearmanr(macs, me).statistic)
    mape = float(np.mean(np.abs(pr - me) / me) * 100)
    bias = float(np.mean((pr - me) / me) * 100)
    # One multiplicative calibration (in-sample, leave-one-out so it is not flattered): isolated blocks run
    # with warm caches and no inter-block overhead, so a LUT sum is typically a constant fraction low.
    ratios = me / pr
    loo = np.array([np.median(np.delete(ratios, i)) for i in range(len(ratios))])
    mape_cal = float(np.mean(np.abs(pr * loo - me) / me) * 100)
    out = Path(args.out or Path(results) / f"latency_lut_{args.space}_cpu.json")
    rec = {
        "what": f"per-block latency LUT vs end-to-end PyTorch latency, {args.space}, CPU, batch 1, 1 thread",
        "space": args.space, "resolution": args.resolution, "batch": 1, "threads": 1,
        "networks": args.networks, "seed": args.seed,
        "spearman_rho": round(rho, 4), "mape_percent": round(mape, 2), "mean_signed_error_percent": round(bias, 2),
        "spearman_rho_macs_vs_measured": round(rho_macs, 4),
        "scale_measured_over_predicted": round(float(np.median(ratios)), 4),
        "mape_after_scale_percent_loo": round(mape_cal, 2),
        "lut": {"entries": lut["n_entries"], "warmup": args.lut_warmup, "repeats": args.lut_repeats,
                "rounds": args.lut_rounds,
                "build_seconds": round(lut_s, 1)},
        "measurement": {"backend": "torch", "warmup": args.warmup, "repeats": args.repeats, "statistic": "median",
                        "seconds": round(time.perf_counter() - t1, 1)},
        "per_network": nets,
        "provenance": provenance(),
        "command": command,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(rec, indent=1) + "\n")
    print(f"{args.space} cpu LUT ({lut['n_entries']} entries, {lut_s:.0f} s): Spearman rho {rho:.3f}, "
          f"MAPE {mape:.1f}% (signed {bias:+.1f}%; {mape_cal:.1f}% after one LOO scale x{np.median(ratios):.3f}) over {args.networks} networks at {args.resolution}px; "
          f"MACs-vs-latency rho {rho_macs:.3f} -> {out}")
    return 0
