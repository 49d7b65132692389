#!/usr/bin/env python
"""One ranking rule for every space: the declared candidate rules (``mobile_mote.studies.rules``)
measured on development data (``--phase select``: writes the choice) or on the report data
(``--phase report``: every rule, the chosen one named, never used to choose).

NB201: a component table written by tools/fusion_study.py --table-out (released MOTE terms as
``released_landscape``/``released_speed``, read as ``landscape``/``speed``). NAS-Bench-Macro: the
component records of tools/component_table.py, split by ``macro_dev_keys.txt``.

    python tools/rule_study.py --phase select --nb201-table /tmp/nb201_dev_components.csv \\
        --out benchmarks/results/rule_selection.json
    python tools/rule_study.py --phase report --nb201-table benchmarks/results/fused_nb201_components.csv \\
        --exclude benchmarks/results/nb201_fusion_dev_selection_cells.txt --out benchmarks/results/rule_report.json
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--phase", choices=("select", "report", "check"), required=True,
                   help="select: choose on development data; report: every rule on report data; check: NB201 "
                   "against VKDNW's Table 1 (published figures beside ours)")
    p.add_argument("--nb201-table", default=None, help="NB201 component table (CSV)")
    p.add_argument("--nb201-benchmark", default=str(REPO.parent / "shared" / "data" / "nb201" / "benchmark.csv"))
    p.add_argument("--exclude", default=None, help="NB201 cells to leave out (one per line)")
    p.add_argument("--only", default=None, help="NB201: keep only these cells (one per line, or a records .jsonl)")
    p.add_argument("--macro-records", default=str(RESULTS / "macro_components.jsonl"))
    p.add_argument("--macro-dev-keys", default=str(RESULTS / "macro_dev_keys.txt"))
    p.add_argument("--selection", default=str(RESULTS / "rule_selection.json"), help="report phase: the choice")
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)
    from mobile_mote.atomic import write_text
    from mobile_mote.benchmarks import load_benchmark, packaged_benchmark
    from mobile_mote.provenance import provenance
    from mobile_mote.studies.components import read_records
    from mobile_mote.studies.rules import (CANDIDATE_RULES, distinct_networks, evaluate_rules, macro_columns,
                                           select_rule, table_columns)
    from search_spaces import get_space

    per_space, notes = {}, {}
    if args.phase == "check":
        from mobile_mote.studies.rules import published_check
        archs, ncol, _ = _nb201(args, table_columns)
        result = {"command": "python tools/rule_study.py " + " ".join(argv if argv is not None else sys.argv[1:]),
                  "provenance": provenance(), "phase": "check", "cells": len(archs),
                  **published_check(ncol, load_benchmark(args.nb201_benchmark, "nb201").truth_for(archs))}
        write_text(Path(args.out), json.dumps(result, indent=1))
        for row, r in result["rows"].items():
            print(f"{row}: ours " + "/".join(f"{v:.3f}" for v in r["tau"].values()) + "  published "
                  + "/".join(f"{v:.3f}" for v in r["published"].values()))
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
        archs, ncol, excluded = _nb201(args, table_columns)
        per_space["nb201"] = evaluate_rules(ncol, load_benchmark(args.nb201_benchmark, "nb201").truth_for(archs))
        notes["nb201"] = {"cells": len(archs), "excluded": excluded}
    result = {"command": "python tools/rule_study.py " + " ".join(argv if argv is not None else sys.argv[1:]),
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


def _nb201(args, table_columns):
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


if __name__ == "__main__":
    sys.exit(main())
