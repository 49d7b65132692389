#!/usr/bin/env python
"""Every zero-cost proxy of every distinct network of a space, as the table `mote fuse` reads.

Scores networks in a seeded order (resumable: records appended to --records as each finishes), then
writes one row per architecture key (keys of one network share its values) with MACs and params.

    OMP_NUM_THREADS=1 python tools/component_table.py --space macro \\
        --proxies synflow,snip,grad_norm,fisher,jacov,naswot,expressivity,progressivity,trainability,vkdnw \\
        --records benchmarks/results/macro_components.jsonl --out benchmarks/results/macro_components.csv.gz
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "proxy_cifar100_10"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--space", default="macro")
    p.add_argument("--proxies", default="", help="comma-separated zero-cost estimators to score")
    p.add_argument("--import", dest="imports", action="append", default=[], metavar="NAME=RECORDS.jsonl",
                   help="take proxy NAME from an estimator's per-key records where the key is its network's key "
                   "and seed and configuration are the defaults (written to <records>.shard_imported.jsonl)")
    p.add_argument("--records", required=True, help="JSONL of per-network records (appended; resumes)")
    p.add_argument("--out", default=None, help="the table to write (.csv or .csv.gz); default: none")
    p.add_argument("--limit", type=int, default=None, help="score only the first N networks of the seeded order")
    p.add_argument("--seed", type=int, default=0, help="the estimators' seed")
    p.add_argument("--first-under", default=None, help="score networks of at most these MACs first (e.g. 60M)")
    p.add_argument("--shard", default=None, help="i/n: this process takes every n-th network from the i-th, "
                   "writing <records>.shard<i>of<n>.jsonl (run n processes, one per shard)")
    p.add_argument("--proxy-data", default=str(DEFAULT_DATA))
    p.add_argument("--device", default="cpu")
    p.add_argument("--scores-out", default=None, help="also write arch,score,seconds of --rule over the table "
                   "(the search-table tool's --scores)")
    p.add_argument("--scores-max-macs", default=None, help="rank --scores-out over the keys of at most these MACs "
                   "(e.g. 60M: the population a search under 60 M can meet)")
    p.add_argument("--rule", default=None, help="comma-separated components for --scores-out (default: the rule "
                   "chosen for every space, mobile_mote.fusion.DEFAULT_RULE)")
    args = p.parse_args(argv)
    from mobile_mote.data.proxy_data import load_proxy_data
    from mobile_mote.errors import InputError
    from mobile_mote.units import parse_count
    from mobile_mote.studies.components import read_records, run_components, write_table
    from search_spaces import get_space
    try:
        space = get_space(args.space)
        data = load_proxy_data(args.proxy_data)
        names = [n.strip() for n in args.proxies.split(",") if n.strip()]
        first_under = int(parse_count(args.first_under, "--first-under")) if args.first_under else None
        shard = tuple(int(v) for v in args.shard.split("/")) if args.shard else None
        if shard and not (len(shard) == 2 and 0 <= shard[0] < shard[1]):
            raise ValueError(f"--shard {args.shard!r}; accepted: i/n with 0 <= i < n")
    except (InputError, ValueError) as e:
        print(f"component_table: error: {e}", file=sys.stderr)
        return 2
    if args.imports:
        import json

        from mobile_mote.studies.components import import_records
        target = Path(args.records).with_name(Path(args.records).stem + ".shard_imported.jsonl")
        rows = [rec for spec in args.imports for rec in import_records(space, spec.split("=", 1)[1], spec.split("=", 1)[0])]
        from mobile_mote.atomic import write_text
        write_text(target, "".join(json.dumps(r) + "\n" for r in rows))
        print(f"{len(rows)} imported component values -> {target}")
    if args.limit != 0 and names:
        run_components(space, names, data, args.records, limit=args.limit, seed=args.seed, device=args.device,
                       first_under=first_under, shard=shard)
    if args.out:
        import json

        from mobile_mote.atomic import write_text
        from mobile_mote.studies.components import table_provenance
        records = read_records(args.records)
        n = write_table(space, records, args.out)
        info = table_provenance(space, records, n, "python tools/component_table.py " + " ".join(sys.argv[1:]))
        write_text(Path(str(args.out).removesuffix(".gz").removesuffix(".csv") + ".json"), json.dumps(info, indent=1))
        print(f"{n} rows ({len(records)} of {info['networks_total']} networks) -> {args.out}")
    if args.scores_out:
        from mobile_mote.atomic import write_text
        from mobile_mote.fusion import DEFAULT_RULE
        from mobile_mote.studies.components import rule_scores_rows
        rule = [c.strip() for c in args.rule.split(",")] if args.rule else list(DEFAULT_RULE)
        cap = parse_count(args.scores_max_macs, "--scores-max-macs") if args.scores_max_macs else None
        lines = rule_scores_rows(space, read_records(args.records), rule, cap)
        write_text(Path(args.scores_out), "\n".join(lines) + "\n")
        print(f"{len(lines) - 1} scores of {','.join(rule)} -> {args.scores_out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
