"""Timing studies measured within one process, so that both sides of a comparison share the load: the shared
proxy pass against one estimate at a time, and MOTE's estimator against a plain PyTorch loop."""
from __future__ import annotations

import time

import numpy as np


def shared_vs_alone(space, names, data, n: int, seed: int = 0) -> dict:
    """Every proxy of ``n`` seeded networks through the shared pass and one estimate at a time,
    alternating (which goes first flips each network); per-network seconds and whether scores agree."""
    from ..estimators import get_estimator
    from ..estimators.zero_cost import estimate_many
    rng = np.random.default_rng(seed)
    archs = [space.sample(rng) for _ in range(n)]
    rows = []
    for i, arch in enumerate(archs):
        def shared():
            t = time.perf_counter()
            recs = estimate_many(names, space, arch, data, seed=seed)
            return time.perf_counter() - t, {k: r.score for k, r in recs.items()}

        def alone():
            t = time.perf_counter()
            scores = {k: get_estimator(k).estimate(space, arch, data, seed).score for k in names}
            return time.perf_counter() - t, scores

        first, second = (shared, alone) if i % 2 == 0 else (alone, shared)
        a, b = first(), second()
        (ts, ss), (ta, sa) = (a, b) if first is shared else (b, a)
        rows.append({"arch": arch, "shared_s": ts, "alone_s": ta, "scores_equal": ss == sa})
    sh, al = np.array([r["shared_s"] for r in rows]), np.array([r["alone_s"] for r in rows])
    return {"space": space.name, "proxies": list(names), "networks": rows,
            "summary": {"n": n, "shared_median_s": float(np.median(sh)), "alone_median_s": float(np.median(al)),
                        "ratio_of_totals": float(al.sum() / sh.sum()),
                        "scores_equal": all(r["scores_equal"] for r in rows)}}


def plain_loop(space, arch, data, cfg: dict, seed: int, device: str) -> dict:
    """The textbook loop: DataLoader, host-to-device copies, fp32."""
    import torch

    from ..estimators import build_seeded
    from ..estimators.mote import landscape_term, speed_term
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


def estimator_speed(args) -> int:
    """Seconds per NB201 cell of MOTE at ``args.profile`` beside the plain loop on the same cells; writes
    ``estimator_speed_<tag>.json`` and prints the figures."""
    import json
    import sys
    from pathlib import Path

    import torch

    from mobile_mote.search_spaces import get_space

    from ..data.proxy_data import load_proxy_data
    from ..estimators import estimator_config, get_estimator
    from ..provenance import provenance
    from ..scoring import sample_archs
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
