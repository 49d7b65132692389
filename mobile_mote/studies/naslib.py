"""Rank agreement of our zero-cost proxies with NASLib's values on its 491 NB201 cells
(``tools/naslib_agreement.py``): Spearman's rho per proxy, with non-finite values ranked lowest as NASLib
stored them and over the finite pairs, beside each side's agreement with the validation accuracy."""
from __future__ import annotations

import datetime as _dt
import json
import math
import os
import platform
import shlex
import sys
import time
from pathlib import Path

from ..atomic import write_text
from ..provenance import cpu_model

DATASETS = {"cifar10": 10, "cifar100": 100, "ImageNet16-120": 120}
# our proxy -> NASLib's key
PAIRS = {"synflow": "synflow", "snip": "snip", "grad_norm": "grad_norm", "fisher": "fisher",
         "grasp": "grasp", "jacov": "jacov", "params": "params", "macs": "flops"}


def spearman(a, b) -> float | None:
    from scipy.stats import spearmanr
    if len(a) < 3:
        return None
    rho = spearmanr(a, b).statistic
    return None if rho is None or not math.isfinite(float(rho)) else float(rho)


def _ok(v) -> bool:
    """A usable value: finite and not NASLib's -1e8 stand-in for NaN."""
    return v is not None and math.isfinite(v) and v > -1e8


def _floored(values: list) -> list:
    """Unusable values replaced by one value below all others (ranked lowest, tied)."""
    floor = min([v for v in values if _ok(v)], default=0.0) - 1.0
    return [v if _ok(v) else floor for v in values]


def agreement(ours: list, theirs: list) -> dict:
    """Spearman with non-finite values ranked lowest (NASLib's -1e8 policy), and over usable pairs."""
    finite = [(o, t) for o, t in zip(ours, theirs) if _ok(o) and _ok(t)]
    return {"spearman": spearman(_floored(ours), _floored(theirs)),
            "spearman_finite": spearman([o for o, _ in finite], [t for _, t in finite]),
            "n": len(ours), "n_finite": len(finite),
            "n_nonfinite_ours": sum(1 for v in ours if not _ok(v))}


def write_json(path: Path, obj: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text(path, json.dumps(obj, indent=1, default=str))


def run(args) -> int:
    """Scores the cells of the tool's arguments, writes ``args.out`` (a partial file every 50 cells) and prints
    each proxy's agreement; 2 after a one-line error."""

    naslib_path, data_path = Path(args.naslib), Path(args.data)
    if not naslib_path.is_file():
        print(f"error: NASLib values {naslib_path} not found; pass --naslib PATH to naslib_zero_cost_491.json",
              file=sys.stderr)
        return 2
    if args.n is not None and args.n < 1:
        print(f"error: --n must be a positive number of cells, got {args.n}", file=sys.stderr)
        return 2

    import torch

    from mobile_mote.search_spaces import get_space

    from ..data.proxy_data import load_proxy_data
    from ..errors import InputError
    from ..estimators.zero_cost import estimate_many

    torch.set_num_threads(max(1, args.threads))
    try:
        data = load_proxy_data(data_path)
    except InputError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    table = json.loads(naslib_path.read_text())
    if args.dataset not in table:
        print(f"error: {naslib_path} has no {args.dataset!r}; it has {sorted(table)}", file=sys.stderr)
        return 2
    cells = table[args.dataset]
    archs = list(cells)[: args.n] if args.n else list(cells)
    num_classes = DATASETS[args.dataset]
    space = get_space("nb201")  # full network: C=16, N=5

    out_path = Path(args.out)
    meta = {
        "command": " ".join(shlex.quote(a) for a in [sys.executable, *sys.argv]),
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": {"cpu": cpu_model(), "cpu_count": os.cpu_count(), "threads": torch.get_num_threads(),
                    "device": args.device, "platform": platform.platform()},
        "torch": torch.__version__, "python": platform.python_version(),
        "dataset": args.dataset, "naslib_file": str(naslib_path), "data": str(data_path),
        "data_labels": data.num_classes, "data_images": len(data), "num_classes_head": num_classes,
        "network": "NB201 full (C=16, N=5), reduced=False", "seed": args.seed, "proxies": args.proxies,
        "repeat_seed": args.repeat_seed,
    }
    rows, secs = [], {k: 0.0 for k in args.proxies}
    t0 = time.perf_counter()
    for i, arch in enumerate(archs):
        recs = estimate_many(args.proxies, space, arch, data, args.seed, args.device, num_classes=num_classes)
        row = {"arch": arch, "ours": {}, "status": {}, "naslib": {}}
        for name, rec in recs.items():
            row["ours"][name] = rec.score
            if rec.status != "ok":
                row["status"][name] = f"{rec.status}: {rec.error}"
            secs[name] += rec.seconds
            row["naslib"][PAIRS[name]] = cells[arch].get(PAIRS[name])
        row["naslib"]["val_accuracy"] = cells[arch].get("val_accuracy")
        if args.repeat_seed is not None:
            again = estimate_many(args.proxies, space, arch, data, args.repeat_seed, args.device,
                                  num_classes=num_classes)
            row["ours_repeat_seed"] = {name: rec.score for name, rec in again.items()}
        rows.append(row)
        if (i + 1) % 25 == 0 or i + 1 == len(archs):
            el = time.perf_counter() - t0
            print(f"[{i + 1}/{len(archs)}] {el:.0f}s ({el / (i + 1):.2f} s/cell)", file=sys.stderr, flush=True)
        if (i + 1) % 50 == 0 and i + 1 < len(archs):  # a partial file survives an interruption
            write_json(out_path, {**meta, "complete": False, "cells": rows})

    results = {}
    for name in args.proxies:
        ours = [r["ours"][name] for r in rows]
        theirs = [r["naslib"][PAIRS[name]] for r in rows]
        acc = [r["naslib"]["val_accuracy"] for r in rows]
        res = agreement(ours, theirs)
        res["naslib_key"] = PAIRS[name]
        res["ours_vs_val_accuracy"] = agreement(ours, acc)["spearman"]
        res["naslib_vs_val_accuracy"] = agreement(theirs, acc)["spearman"]
        res["seconds_total"] = round(secs[name], 2)
        if args.repeat_seed is not None:
            rep = [r["ours_repeat_seed"][name] for r in rows]
            res["self_spearman"] = agreement(ours, rep)["spearman"]  # seed vs repeat seed
            res["repeat_seed_vs_naslib"] = agreement(rep, theirs)["spearman"]
        results[name] = res
    wall = time.perf_counter() - t0
    summary = {**meta, "complete": True, "n_cells": len(rows), "seconds": round(wall, 1),
               "seconds_per_cell": round(wall / max(1, len(rows)), 3), "agreement": results, "cells": rows}
    write_json(out_path, summary)
    print(f"{'proxy':<10} {'spearman':>9} {'finite':>8} {'n_bad':>6} {'vs acc (ours/NASLib)':>22}")
    for name, r in results.items():
        f = lambda v: "   n/a" if v is None else f"{v:6.3f}"  # noqa: E731
        print(f"{name:<10} {f(r['spearman']):>9} {f(r['spearman_finite']):>8} {r['n_nonfinite_ours']:>6} "
              f"{f(r['ours_vs_val_accuracy']):>12} / {f(r['naslib_vs_val_accuracy'])}")
    if args.repeat_seed is not None:
        for name, r in results.items():
            print(f"{name:<10} seed {args.seed} vs seed {args.repeat_seed}: {r['self_spearman']:.3f}; "
                  f"seed {args.repeat_seed} vs NASLib: {r['repeat_seed_vs_naslib']:.3f}")
    print(f"{len(rows)} cells in {wall:.0f} s; wrote {out_path}")
    return 0
