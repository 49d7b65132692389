"""One ranking rule for every space: candidate rules declared before measuring, chosen on development
data, reported on the rest.

A rule is a list of components fused by the sum of log-ranks (``fusion.log_rank_sum``). A component a
table lacks is left out of that table's sum (MOTE's terms are absent from a zero-cost-only table).
The rule chosen is the one with the best *selection score*: the mean, over the spaces, of each space's
mean Kendall tau over its targets (NB201: C10, C100, IN16; NAS-Bench-Macro: CIFAR-10), each space
weighted alike, on the development data only.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

# Declared on 2026-12-04, before any tau of the new proxies (vkdnw, expressivity, progressivity,
# trainability) was computed; the order is the order of declaration.
CANDIDATE_RULES: dict[str, tuple[str, ...]] = {
    "az_nas": ("expressivity", "progressivity", "trainability", "macs"),
    "vkdnw_agg": ("vkdnw", "expressivity", "trainability", "macs", "jacov"),
    "vkdnw_agg_naswot": ("vkdnw", "expressivity", "trainability", "macs", "jacov", "naswot"),
    "az_nas_naswot": ("expressivity", "progressivity", "trainability", "macs", "naswot"),
    "mote_vkdnw_agg": ("landscape", "speed", "vkdnw", "expressivity", "trainability", "macs", "jacov"),
    "mote_vkdnw_agg_naswot": ("landscape", "speed", "vkdnw", "expressivity", "trainability", "macs", "jacov",
                              "naswot"),
    "mote_z_2024": ("landscape", "speed", "jacov", "naswot", "zico"),
    "everything": ("landscape", "speed", "vkdnw", "expressivity", "progressivity", "trainability", "macs",
                   "jacov", "naswot", "synflow"),
    "mote_strong_no_jacov": ("landscape", "speed", "vkdnw", "expressivity", "trainability", "macs", "naswot"),
}


#: A component counts as present in a table when at least this share of its rows has a value; one
#: computed on a subset only (zico, grasp on NAS-Bench-Macro) would otherwise restrict a rule to that subset.
COVERAGE = 0.9


def present(rule: Sequence[str], columns: Mapping[str, Sequence]) -> list[str]:
    """The rule's components this table has (on at least ``COVERAGE`` of its rows)."""
    def covered(c):
        col = columns.get(c)
        return col is not None and len(col) > 0 and sum(v is not None for v in col) >= COVERAGE * len(col)
    return [c for c in rule if covered(c)]


def rule_scores(rule: Sequence[str], columns: Mapping[str, Sequence]) -> list[float | None]:
    from ..fusion import log_rank_sum
    comps = present(rule, columns)
    if not comps:
        return [None] * len(next(iter(columns.values())))
    return log_rank_sum({c: columns[c] for c in comps})


def taus(scores, truth: Mapping[str, Sequence[float]]) -> dict[str, dict]:
    from ..correlation import rank_agreement
    return {t: rank_agreement(scores, v) for t, v in truth.items()}


def evaluate_rules(columns: Mapping[str, Sequence], truth: Mapping[str, Sequence[float]],
                   rules: Mapping[str, Sequence[str]] = CANDIDATE_RULES) -> dict:
    """tau / rho of every component alone and of every rule (with the components it used)."""
    out = {"components": {c: taus(v, truth) for c, v in columns.items()}, "rules": {}}
    for name, rule in rules.items():
        out["rules"][name] = {"components": present(rule, columns), "agreement": taus(rule_scores(rule, columns), truth)}
    return out


def mean_tau(agreement: Mapping[str, Mapping]) -> float | None:
    vals = [a["kendall_tau"] for a in agreement.values()]
    return float(np.mean(vals)) if vals and all(v is not None for v in vals) else None


def select_rule(per_space: Mapping[str, dict]) -> tuple[str, dict[str, float]]:
    """(the chosen rule, every rule's selection score) from ``evaluate_rules`` results of each space's
    development data."""
    names = list(next(iter(per_space.values()))["rules"])
    score = {}
    for name in names:
        means = [mean_tau(res["rules"][name]["agreement"]) for res in per_space.values()]
        score[name] = float(np.mean(means)) if all(m is not None for m in means) else float("-inf")
    return max(names, key=lambda n: score[n]), score


def split_networks(networks: Sequence[str], seed: int = 0) -> tuple[list[str], list[str]]:
    """(development half, report half) of the distinct networks, by a seeded permutation."""
    nets = sorted(set(networks))
    perm = np.random.default_rng(seed).permutation(len(nets))
    half = len(nets) // 2
    return sorted(nets[i] for i in perm[:half]), sorted(nets[i] for i in perm[half:])


# -- the data each space gives a study -------------------------------------------------------------

def macro_columns(space, records: Mapping[str, dict], keys: Sequence[str]) -> tuple[list[str], dict[str, list]]:
    """(keys with a record, {component: values}) from component records (``studies.components``),
    with MACs and params counted; one value per key, the keys of one network alike."""
    keys = [k for k in keys if space.network_key(k) in records]
    names = sorted({c for k in keys for c in records[space.network_key(k)]["components"]})
    cols = {c: [records[space.network_key(k)]["components"].get(c) for k in keys] for c in names}
    cols["macs"] = [float(space.macs(k)) for k in keys]
    cols["params"] = [float(space.params(k)) for k in keys]
    return keys, cols


def table_columns(path, aliases: Mapping[str, str] | None = None, archs: Sequence[str] | None = None):
    """(archs, {component: values}) from a component table CSV, renaming ``{new: old}`` columns and
    keeping only ``archs`` when given."""
    from ..fusion import read_component_table
    names, cols = read_component_table(path)
    for new, old in (aliases or {}).items():
        if old in cols:
            cols[new] = cols.pop(old)
    if archs is not None:
        keep = set(archs)
        idx = [i for i, a in enumerate(names) if a in keep]
        names = [names[i] for i in idx]
        cols = {c: [v[i] for i in idx] for c, v in cols.items()}
    return names, cols


def distinct_networks(space, keys: Sequence[str], cols: Mapping[str, list]):
    """The first key of each network and its values: figures over distinct networks."""
    seen, idx = set(), []
    for i, k in enumerate(keys):
        n = space.network_key(k)
        if n not in seen:
            seen.add(n)
            idx.append(i)
    return [keys[i] for i in idx], {c: [v[i] for i in idx] for c, v in cols.items()}


def published_check(columns: Mapping[str, Sequence], truth: Mapping[str, Sequence[float]]) -> dict:
    """Our tau of each row of VKDNW's Table 1 (``published.json``) beside the published figure, and the
    difference of each to FLOPs (MACs here) on the same cells: the benchmark's accuracy columns differ
    between re-runs, so the gap to FLOPs is what compares across them."""
    from . import published as figures
    pub = figures.published("vkdnw_nb201_table1")
    table, ours = pub["tau"], pub["ours"]
    targets = list(truth)
    flops_here = [taus(columns["macs"], truth)[t]["kendall_tau"] for t in targets]
    out = {"source": pub["source"], "rows": {}}
    for row, published in table.items():
        name = ours[row]
        if name.startswith("rule:"):
            scores = rule_scores(CANDIDATE_RULES[name[5:]], columns)
        elif name in columns:
            scores = columns[name]
        else:
            continue
        here = [taus(scores, truth)[t]["kendall_tau"] for t in targets]
        out["rows"][row] = {"ours": name, "tau": dict(zip(targets, here)), "published": dict(zip(targets, published)),
                            "difference": dict(zip(targets, [h - p for h, p in zip(here, published)])),
                            "over_flops": dict(zip(targets, [h - f for h, f in zip(here, flops_here)])),
                            "published_over_flops": dict(zip(targets, [p - f for p, f in zip(published, table["flops"])]))}
    return out


def flops_on_every_cell(space, bench) -> dict:
    """FLOPs' tau over every cell of the benchmark table: a count that needs no sample and no seed, so
    its gap to VKDNW's published FLOPs row is the gap between the two tables' accuracy columns (their
    code ranks against NATS-Bench's ``ori-test`` on CIFAR-10 and ``x-test`` elsewhere), which every
    structural ranking inherits."""
    from . import published as figures
    archs = list(bench.table)
    truth = bench.truth_for(archs)
    here = taus([space.macs(a) for a in archs], truth)
    published = figures.published("vkdnw_nb201_table1")["tau"]["flops"]
    return {"cells": len(archs), "tau": {t: here[t]["kendall_tau"] for t in truth},
            "published": dict(zip(truth, published))}


def run(args, command: str) -> int:
    """The tool's phase (``select``, ``report`` or ``check``) on its arguments: writes ``args.out`` (recording
    ``command``) and prints each space's tau per rule."""
    from mobile_mote.search_spaces import get_space

    from ..atomic import write_text
    from ..benchmarks import load_benchmark, packaged_benchmark
    from ..provenance import provenance
    from .components import read_records

    per_space, notes = {}, {}
    if args.phase == "check":
        archs, ncol, _ = _nb201(args)
        bench = load_benchmark(args.nb201_benchmark, "nb201")
        result = {"command": command,
                  "provenance": provenance(), "phase": "check", "cells": len(archs),
                  **published_check(ncol, bench.truth_for(archs)),
                  "flops_every_cell": flops_on_every_cell(get_space("nb201"), bench)}
        write_text(Path(args.out), json.dumps(result, indent=1))
        for row, r in result["rows"].items():
            print(f"{row}: ours " + "/".join(f"{v:.3f}" for v in r["tau"].values()) + "  published "
                  + "/".join(f"{v:.3f}" for v in r["published"].values()))
        every = result["flops_every_cell"]
        print(f"flops on all {every['cells']} cells: " + "/".join(f"{v:.3f}" for v in every["tau"].values()))
        return 0
    macro = get_space("macro")
    dev_keys = Path(args.macro_dev_keys).read_text().split()
    dev = set(dev_keys)
    half = dev_keys if args.phase == "select" else [k for k in macro.enumerate() if k not in dev]
    keys, cols = macro_columns(macro, read_records(args.macro_records), half)
    macro_bench = load_benchmark(packaged_benchmark("macro"), "macro")
    per_space["macro"] = evaluate_rules(cols, macro_bench.truth_for(keys))
    nets, ncols = distinct_networks(macro, keys, cols)
    per_space["macro"]["distinct_networks"] = evaluate_rules(ncols, macro_bench.truth_for(nets))
    notes["macro"] = {"keys": len(keys), "networks": len(nets), "half": "development" if args.phase == "select" else "report",
                      "of_keys_in_half": len(half)}
    if args.nb201_table:
        archs, ncol, excluded = _nb201(args)
        per_space["nb201"] = evaluate_rules(ncol, load_benchmark(args.nb201_benchmark, "nb201").truth_for(archs))
        notes["nb201"] = {"cells": len(archs), "excluded": excluded}
    result = {"command": command,
              "provenance": provenance(), "phase": args.phase, "candidates": {k: list(v) for k, v in CANDIDATE_RULES.items()},
              "data": notes, "results": per_space}
    if args.phase == "select":
        chosen, scores = select_rule({k: v for k, v in per_space.items()})
        result.update(chosen=chosen, selection_scores=scores,
                      protocol="mean over spaces of the mean Kendall tau over each space's targets, development data only")
    else:
        result["chosen"] = json.loads(Path(args.selection).read_text())["chosen"]
    write_text(Path(args.out), json.dumps(result, indent=1, allow_nan=True))
    for space, res in per_space.items():
        print(f"{space}: " + "; ".join(f"{r}: " + "/".join(f"{a['kendall_tau']:.3f}" if a['kendall_tau'] is not None else "-"
                                                          for a in v["agreement"].values())
                                       for r, v in res["rules"].items()))
    if "chosen" in result:
        print("chosen:", result["chosen"])
    return 0


def _nb201(args):
    """The NB201 component table's cells (less --exclude, only --only), its columns, and how many cells
    --exclude names."""
    exclude = set(Path(args.exclude).read_text().split()) if args.exclude else set()
    only = None
    if args.only:  # one cell per line, or the cells of a records file (.jsonl)
        text = Path(args.only).read_text()
        only = ({json.loads(ln)["arch"] for ln in text.splitlines() if ln.strip()} if args.only.endswith(".jsonl")
                else set(text.split()))
    archs, cols = table_columns(args.nb201_table, {"landscape": "released_landscape", "speed": "released_speed"})
    keep = [i for i, a in enumerate(archs) if a not in exclude and (only is None or a in only)]
    return [archs[i] for i in keep], {c: [v[i] for i in keep] for c, v in cols.items()}, len(exclude)

