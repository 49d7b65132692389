#!/usr/bin/env python
"""Seconds per cell of the MOTE estimator, beside a plain PyTorch loop on the same cells.

Ours: the whole reduced data set as one tensor on the device, seeded index permutations,
bf16 autocast + channels_last on CUDA. The baseline: a DataLoader over host tensors, fp32,
one model at a time, batches copied to the device, the same epochs and landscape walk.

    python tools/bench_estimator.py --device cpu --profile tiny --n 5
    python tools/bench_estimator.py --device cpu --profile paper --n 1 --tag cpu_paper
    python tools/bench_estimator.py --device cuda --profile paper --n 20 --tag gpu   # GPU figure
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]

from mobile_mote.estimators import build_seeded, estimator_config, get_estimator  # noqa: E402
from mobile_mote.estimators.mote import landscape_term, speed_term  # noqa: E402
from mobile_mote.provenance import provenance  # noqa: E402
from mobile_mote.data.proxy_data import load_proxy_data  # noqa: E402
from mobile_mote.scoring import sample_archs  # noqa: E402
from search_spaces import get_space  # noqa: E402


def plain_loop(space, arch, data, cfg: dict, seed: int, device: str) -> dict:
    """The textbook loop: DataLoader, host-to-device copies, fp32."""
    import torch
    from torch.nn import functional as F
    from torch.utils.data import DataLoader, TensorDataset

    d = data.subset(cfg["images_per_class"]) if cfg.get("images_per_class") else data
    x, y = d.tensors("cpu")
    loader = DataLoader(TensorDataset(x, y), batch_size=cfg["batch_size"], shuffle=True,
                        generator=torch.Generator().manual_seed(seed))
    model = build_seeded(space, arch, seed, d.num_classes, True, device)
    init = {k: v.detach().clone() for k, v in model.state_dict().items()}
    opt = torch.optim.Adam(model.parameters(), lr=cfg["lr"])
    t_start = time.perf_counter()
    losses, secs = [], []
    for _ in range(cfg["epochs"]):
        t0 = time.perf_counter()
        tot, n = 0.0, 0
        for xb, yb in loader:
            xb, yb = xb.to(device), yb.to(device)
            loss = F.cross_entropy(model(xb), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            tot += loss.item() * len(yb)
            n += len(yb)
        losses.append(tot / n)
        secs.append(time.perf_counter() - t0)
    final = {k: v.detach().clone() for k, v in model.state_dict().items()}
    js = []
    names = {k for k, _ in model.named_parameters()}
    for g in range(cfg["points"] + 1):
        a = g / cfg["points"]
        model.load_state_dict({k: (a * init[k] + (1 - a) * final[k]) if k in names else final[k] for k in final})
        model.train()
        with torch.no_grad():
            tot = 0.0
            for xb, yb in DataLoader(TensorDataset(x, y), batch_size=cfg["batch_size"]):
                xb, yb = xb.to(device), yb.to(device)
                tot += F.cross_entropy(model(xb), yb, reduction="sum").item()
            js.append(tot / len(y))
    return {"seconds": time.perf_counter() - t_start, "landscape": landscape_term(js), "speed": speed_term(losses, secs)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--profile", default="tiny")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    p.add_argument("--no-baseline", action="store_true", help="skip the plain PyTorch loop")
    p.add_argument("--proxy-data", default=str(REPO.parent / "shared" / "data" / "proxy_cifar100_10"))
    p.add_argument("--tag", default=None)
    p.add_argument("--out-dir", default=str(REPO / "benchmarks" / "results"))
    args = p.parse_args(argv)
    import torch
    if args.threads:
        torch.set_num_threads(args.threads)
    data = load_proxy_data(args.proxy_data)
    space = get_space("nb201")
    archs = sample_archs("nb201", args.n, args.seed)
    cfg_ours = estimator_config("mote", args.profile)
    est = get_estimator("mote", **cfg_ours)
    full_cfg = est.config.__dict__
    if args.device.startswith("cuda"):
        est.estimate(space, archs[0], data, args.seed, args.device)  # warm-up: allocator, cuDNN autotune
    rows = []
    for a in archs:
        r = est.estimate(space, a, data, args.seed, args.device)
        row = {"arch": a, "ours_seconds": r.seconds, "ours_status": r.status,
               "ours_landscape": r.terms.get("landscape"), "ours_speed": r.terms.get("speed")}
        if not args.no_baseline:
            b = plain_loop(space, a, data, full_cfg, args.seed, args.device)
            row.update({"plain_seconds": b["seconds"], "plain_landscape": b["landscape"]})
        rows.append(row)
        print(json.dumps(row), file=sys.stderr)
    ours = float(np.mean([r["ours_seconds"] for r in rows]))
    plain = float(np.mean([r["plain_seconds"] for r in rows])) if not args.no_baseline else None
    result = {"provenance": provenance(), "profile": args.profile, "config": full_cfg, "device": args.device,
              "threads": torch.get_num_threads(), "n": len(rows), "seconds_per_cell_ours": ours,
              "seconds_per_cell_plain_loop": plain, "speedup": (plain / ours) if plain else None, "cells": rows}
    tag = args.tag or f"{args.device.split(':')[0]}_{args.profile}"
    out = Path(args.out_dir) / f"estimator_speed_{tag}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    print(f"{args.profile} on {args.device}: ours {ours:.3g} s/cell"
          + (f", plain loop {plain:.3g} s/cell, speed-up {plain / ours:.2f}x" if plain else "") + f" -> {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
