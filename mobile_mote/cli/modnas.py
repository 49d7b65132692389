"""`mote modnas`: train MODNAS's MetaHypernetwork on NB201 and write each device's 24-ray front."""
from __future__ import annotations

import json
import sys

from ..errors import InputError


def _modnas(args) -> int:
    from mobile_mote.search_spaces import get_space
    from .args import parse_set, threads_from_args
    from ..devices import apply_threads, resolve_device
    from ..data.default_data import resolve_proxy_data
    from ..modnas import TEST_DEVICES, TRAIN_DEVICES, DeviceLatencies, ModnasTrainer, config_for

    overrides = parse_set(args.set)
    if "seed" in overrides:
        raise InputError("give the seed with --seed, not --set seed=...")
    pred = {k[len("predictor_"):]: overrides.pop(k) for k in list(overrides) if k.startswith("predictor_")}
    if pred:
        overrides["predictor"] = pred
    cfg = config_for(args.profile, seed=args.seed, **overrides)
    threads = threads_from_args(args)
    device = resolve_device(args.device)  # before any table or data is read, and before --out is made
    train = _devices(args.train_devices, TRAIN_DEVICES)
    test = _devices(args.test_devices, TEST_DEVICES)
    if not train or not test:
        raise InputError("--train-devices and --test-devices need at least one device each")
    if set(train) & set(test):
        raise InputError(f"train and test devices overlap: {', '.join(sorted(set(train) & set(test)))}")
    from ..benchmarks.nb201 import NB201Index
    space = NB201Index.beside(args.latency_table, args.benchmark).bind(get_space("nb201"))
    lat = DeviceLatencies.from_csv(args.latency_table, space, [*train, *test])
    data = resolve_proxy_data(args.proxy_data)
    apply_threads(threads)
    trainer = ModnasTrainer(cfg, data, lat, args.out, train, test, device)
    res = trainer.run(resume=args.resume, progress=not args.quiet)
    for dev, f in res["fronts"].items():
        if f["split"] == "test":
            print(json.dumps({"device": dev, "distinct_cells": f["distinct"],
                              "predicted_latency_ms": [round(min(f["predicted_latency_ms"]), 3),
                                                       round(max(f["predicted_latency_ms"]), 3)],
                              "latency_predictor_spearman": round(res["latency_predictor"]["zero_shot"][dev]["spearman"], 3)}))
    print(f"fronts of {len(res['fronts'])} devices in {args.out}/fronts.json; score them against the truth with "
          f"`python tools/nb201_pareto.py --hypernetwork {args.out}/fronts.json`", file=sys.stderr)
    return 0


def _devices(text: str | None, default: tuple[str, ...]) -> list[str]:
    return [d.strip() for d in text.split(",") if d.strip()] if text is not None else list(default)


def register(sub) -> None:
    from ..profiles import MODNAS_PROFILES as PROFILES
    from .args import add_device_argument, add_threads_argument
    p = sub.add_parser("modnas", help="MODNAS: a preference- and device-conditioned hypernetwork over NB201",
                       description="Train MODNAS's MetaHypernetwork H(r, d) through a weight-sharing NB201 supernet "
                       "on the reduced data and a device-conditioned latency predictor (MGDA across training devices), "
                       "then map 24 preference rays per device to cells.")
    p.add_argument("--latency-table", required=True, help="NB201 latency_ms.csv (index + one column per device)")
    p.add_argument("--benchmark", help="NB201 benchmark.csv (maps cells to table rows; default: benchmark.csv beside --latency-table)")
    p.add_argument("--proxy-data", help="reduced data (default: cached CIFAR-100 r=10, a download, or offline MNIST)")
    p.add_argument("--profile", default="paper", choices=list(PROFILES),
                   help="paper (MODNAS's settings, a GPU job), cpu (reduced supernet, minutes on CPU), tiny (tests)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="override an option, e.g. --set epochs=50, --set sampler=gumbel_st, --set predictor_epochs=5")
    p.add_argument("--train-devices", help="comma-separated training devices (default: MODNAS's 13, mobile_mote.modnas.TRAIN_DEVICES)")
    p.add_argument("--test-devices", help="comma-separated zero-shot devices (default: titan_rtx_256,gold_6226,fpga,"
                   "pixel2,raspi4,eyeriss)")
    p.add_argument("--out", default="runs/modnas", help="run folder: checkpoint.pt, hypernetwork.pt, fronts.json")
    p.add_argument("--resume", action="store_true", help="continue an interrupted run in --out")
    p.add_argument("--seed", type=int, default=0)
    add_device_argument(p)
    add_threads_argument(p)
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_modnas)
