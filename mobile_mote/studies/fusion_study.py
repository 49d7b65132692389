"""Rank agreement of fused scores (``mobile_mote.fusion``) and of each component alone, from the records
the correlation study wrote (``tools/fusion_study.py``): one component table, every component higher =
better, and Kendall tau / Spearman rho against the benchmark for every component and named rule."""
from __future__ import annotations

import csv
import io
import json
import sys
from pathlib import Path

import numpy as np

from mobile_mote.search_spaces import ArchError, get_space

from ..atomic import write_text
from ..benchmarks import load_benchmark
from ..correlation import rank_agreement, read_jsonl
from ..errors import InputError
from ..fusion import log_rank_sum, record_components, source_of
from ..provenance import provenance
from ..scoring import read_arch_file
from .truth import benchmark_path, refit_mote

MOTE_PARTS = ("mote", "landscape", "speed")
RELEASED = {"released_mote": "mote", "released_landscape": "landscape_term", "released_speed": "speed_term"}


def run(args, shared: Path) -> int:
    """Components from the records, every rule's agreement (chosen on a first part with --select-on), the
    component tables and ``<space>_fusion_<tag>.json``; prints the table; 2 after a one-line error."""
    try:
        space = get_space(args.space)
        bench_path = benchmark_path(args.space, args.benchmark, shared)
        bench = load_benchmark(bench_path, args.space)
        names = [c.strip() for c in args.components.split(",") if c.strip()]
        rules = {"all": names, **dict(parse_rule(r, names) for r in args.rule)}
        order, columns, seconds = gather(space, Path(args.records), names, args.released)
        excluded = {space.canonical(a) for a in read_arch_file(args.exclude)} if args.exclude else set()
    except (InputError, ArchError) as e:
        print(f"fusion_study: error: {e}", file=sys.stderr)
        return 2
    keep = [a for a in order if a not in excluded and all(columns[c].get(a) is not None for c in names)]
    n_excluded = sum(a in excluded and all(columns[c].get(a) is not None for c in names) for a in order)
    keep = keep[args.skip:]
    if args.first is not None:
        keep = keep[:args.first]
    if len(keep) < 3:
        print(f"fusion_study: error: only {len(keep)} networks have every component; need 3 or more", file=sys.stderr)
        return 2
    table = {c: [columns[c][a] for a in keep] for c in names}
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if args.select_on is not None:
        if not 3 <= args.select_on <= len(keep) - 3:
            print(f"fusion_study: error: --select-on {args.select_on}; accepted: 3 to {len(keep) - 3} of the "
                  f"{len(keep)} networks", file=sys.stderr)
            return 2
        chosen_on = evaluate(bench, keep[:args.select_on], {c: v[:args.select_on] for c, v in table.items()}, rules)
        means = {r: float(np.mean([v["agreement"][d]["kendall_tau"] for d in bench.targets]))
                 for r, v in chosen_on["rules"].items()}
        chosen = max(means, key=means.get)
        write_text(out_dir / f"{args.space}_fusion_{args.tag}_selection_cells.txt", "\n".join(keep[:args.select_on]) + "\n")
        keep = keep[args.select_on:]
        table = {c: v[args.select_on:] for c, v in table.items()}
        selection = {"networks": args.select_on, "by": "mean Kendall tau over the targets", "mean_tau": means,
                     "chosen": chosen, "components": rules[chosen], "result_on_selection": chosen_on}
    else:
        selection = None
    result = evaluate(bench, keep, table, rules)
    result["selection"] = selection
    stem = out_dir / f"{args.space}_fusion_{args.tag}"
    write_table(Path(f"{stem}_components.csv"), keep, {c: dict(zip(keep, v)) for c, v in table.items()}, names)
    if args.table_out:
        write_table(Path(args.table_out), [a for a in order if any(columns[c].get(a) is not None for c in names)],
                    columns, names)
    doc = {"provenance": provenance(), "space": args.space, "benchmark": str(bench_path), "truth": bench.truth_source,
           "records": args.records, "released": args.released, "n": len(keep), "skip": args.skip,
           "exclude": args.exclude, "excluded": n_excluded, "table_out": args.table_out,
           "first": args.first, "seconds_per_network": seconds, "rule": "sum over components of log(rank / N)",
           **result, "cells": [{"arch": a, **{f"acc_{d}": v for d, v in zip(bench.targets, accs)}}
                               for a, accs in zip(keep, zip(*[bench.truth_for(keep)[d] for d in bench.targets]))]}
    write_text(Path(f"{stem}.json"), json.dumps(doc, indent=1))
    if selection:
        print(f"rule chosen on the first {selection['networks']} networks: {selection['chosen']} "
              f"(mean tau {selection['mean_tau'][selection['chosen']]:.3f}); below, the other {len(keep)}")
    print(render(result, bench.targets, len(keep)))
    print(f"wrote {stem}.json and {stem.name}_components.csv", file=sys.stderr)
    return 0


def write_table(path: Path, archs: list[str], columns: dict[str, dict], names: list[str]) -> None:
    """arch plus one column per component; an empty cell where a network has no value."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["arch", *names])
    for a in archs:
        w.writerow([a, *["" if columns[c].get(a) is None else repr(columns[c][a]) for c in names]])
    write_text(path, buf.getvalue())


def evaluate(bench, archs: list[str], table: dict[str, list], rules: dict[str, list]) -> dict:
    """tau / rho of every component and fused rule on ``archs``."""
    truth = bench.truth_for(archs)
    out = {"components": {c: {d: rank_agreement(v, truth[d]) for d in bench.targets} for c, v in table.items()},
           "rules": {}}
    for rule, comps in rules.items():
        fused = log_rank_sum({c: table[c] for c in comps})
        out["rules"][rule] = {"components": comps, "agreement": {d: rank_agreement(fused, truth[d]) for d in bench.targets}}
    return out


def parse_rule(text: str, names: list[str]) -> tuple[str, list[str]]:
    name, _, comps = text.partition("=")
    parts = [c.strip() for c in comps.split(",") if c.strip()]
    if not name or not parts or any(c not in names for c in parts):
        raise InputError(f"--rule {text!r}; expected NAME=A,B,... with components from --components ({', '.join(names)})")
    return name, parts


def gather(space, stem: Path, names: list[str], released: str | None):
    """(archs in the records' order, {component: {arch: value}}, {estimator: mean seconds per network})."""
    columns: dict[str, dict] = {c: {} for c in names}
    order: list[str] = []
    seconds: dict[str, float] = {}

    def add_order(archs):
        seen = set(order)
        for a in archs:
            if a not in seen:
                seen.add(a)
                order.append(a)

    on_disk = {p.name[len(stem.name) + 1:-len(".jsonl")] for p in stem.parent.glob(f"{stem.name}.*.jsonl")}
    source = {c: ("mote" if c in MOTE_PARTS else source_of(c, on_disk)) for c in names
              if c not in RELEASED and c not in ("macs", "params")}
    for est in sorted(set(source.values())):
        path = Path(f"{stem}.{est}.jsonl")
        recs = read_jsonl(path)
        if not recs:
            raise InputError(f"no records of {est!r} at {path}; run tools/correlation.py with --records first")
        add_order(r["arch"] for r in recs)
        if est == "mote" and "mote" in names:
            recs = refit_mote(recs, recs[0]["config"])[0]
        ok = [r.get("seconds") for r in recs if r.get("status") == "ok" and r.get("seconds") is not None]
        seconds[est] = sum(ok) / len(ok) if ok else None
        for r in recs:
            comps = record_components(r)
            for c in names:
                if source.get(c) == est:
                    columns[c][r["arch"]] = comps.get(c)
    if any(c in RELEASED for c in names):
        if not released:
            raise InputError("released_* components need --released (NB201's official_mote_dev.csv)")
        with open(released, newline="") as f:
            for row in csv.DictReader(f):
                a = space.canonical(row["arch"])
                for c, col in RELEASED.items():
                    if c in names:
                        columns[c][a] = float(row[col])
        add_order(a for a in columns[next(c for c in names if c in RELEASED)])
    for c in ("macs", "params"):
        if c in names:
            fn = space.macs if c == "macs" else space.params
            for a in order:
                columns[c][a] = float(fn(a))
    return order, columns, seconds


def render(result: dict, targets, n: int) -> str:
    f = lambda v: "-" if v is None else f"{v:.3f}"  # noqa: E731
    lines = [f"{n} networks", "| score | " + " | ".join(f"τ {d}" for d in targets) + " |", "|---|" + "---|" * len(targets)]
    for c, ag in result["components"].items():
        lines.append(f"| {c} | " + " | ".join(f(ag[d]["kendall_tau"]) for d in targets) + " |")
    for rule, r in result["rules"].items():
        lines.append(f"| **fused: {rule}** ({'+'.join(r['components'])}) | "
                     + " | ".join(f(r["agreement"][d]["kendall_tau"]) for d in targets) + " |")
    return "\n".join(lines)

