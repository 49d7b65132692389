"""`mote search` and `mote show`."""
from __future__ import annotations

import json
from pathlib import Path

from ..errors import InputError
from . import DEVICE_FAILURE_STATUS

from ..search.outputs import NO_WINNER

EXIT_STATUS = (f"Exit status: 0 a winner for every budget; 2 bad input (one line, nothing written); {NO_WINNER} "
               "the run ended without a winner for a budget (every candidate failed, or none was scored), after "
               f"writing its summary, store and records; {DEVICE_FAILURE_STATUS}, the candidates scored before it kept "
               "(resume with --resume); 130 interrupted (resume with --resume).")


def spec_from_args(args):
    from ..efficiency import parse_constraints
    from .args import resolve_algorithm, resolve_estimator, run_spec_from_args
    resolve_estimator(args)
    algorithm, config = resolve_algorithm(args, "search")
    constraints = parse_constraints(args.flops, args.params, args.latency)
    return run_spec_from_args(args, algorithm, config, constraints,
                              f"{args.space}_{algorithm}_{constraints[0].label()}_s{args.seed}")


def _search(args) -> int:
    from .args import launch_from_args
    return launch_from_args("search", args, spec_from_args)


def _show(args) -> int:
    """A finished run: its summary.md, then the top candidates from its store. Without summary.md: the
    runs in the folder's store, finished (their summary is in the store) or where an unfinished one
    stopped. The store is only read; a damaged one is one line (after the summary, if there is one)."""
    from ..store import SearchStore
    run_dir = Path(args.run)
    md = run_dir / "summary.md"
    db = run_dir / "search.db"
    if not md.is_file():
        if not db.is_file():
            raise InputError(f"{run_dir} is not a search run (no summary.md or search.db); "
                             "expected runs/<name> written by `mote search`")
        with SearchStore(db, create=False, readonly=True) as store:
            runs = store.runs()
            done = {r["name"] for r in runs
                    if store.load_result(r["name"], "summary") is not None
                    or store.load_result(r["name"], "pareto") is not None}
            if not runs:
                print(f"{run_dir}: its store holds no run")
            if done:
                print(f"{run_dir}: finished run(s) without summary.md here: " + ", ".join(sorted(done)))
            unfinished = [r for r in runs if r["name"] not in done]
            if unfinished:
                print(f"{run_dir}: unfinished run(s): " + ", ".join(r["name"] for r in unfinished))
            for r in unfinished:
                st = store.load_state(r["name"]) or {}
                where = (f"generation {st['generation']}" if "generation" in st
                         else f"iteration {st.get('iteration', 0)}, pool {len(st.get('pool', []))}")
                print(f"  {r['name']}: {where}; continue with the same command and --resume")
        return 0
    print(md.read_text())
    if args.top:
        if not db.is_file():
            print("(top candidates: this run's store is not in its folder; it was written to its --store)")
            return 0
        summary = json.loads((run_dir / "summary.json").read_text())
        try:
            with SearchStore(db, create=False, readonly=True) as store:
                recs = [r for r in store.run_records(summary["run"]) if r.get("score") is not None]
        except InputError as e:
            raise InputError(f"the summary above is {md}; its top candidates cannot be listed: {e}") from None
        recs.sort(key=lambda r: -r["score"])
        print(f"Top {min(args.top, len(recs))} of {len(recs)} candidates by score:")
        for r in recs[:args.top]:
            print(f"  {r['score']:.5g}  MACs {(r.get('macs') or 0) / 1e6:.1f}M  {r['arch']}")
    return 0


def register(sub) -> None:
    from . import MACS_NOTE
    from .args import (add_benchmark_dataset_argument, add_estimator_algorithm_and_data, add_run_arguments,
                       add_space_and_budgets)
    p = sub.add_parser("search", help="MOTE-NAS search under MACs/params/latency budgets",
                       description="MOTE-NAS search. " + MACS_NOTE, epilog=EXIT_STATUS)
    add_space_and_budgets(p, flops_help="MACs budget(s), e.g. 300M or 0.3G or 200M,300M,400M (one pool for all)")
    add_estimator_algorithm_and_data(
        p, "search",
        "paper (default), official (the official code's variant), cpu (MOTE sized for CPU "
        "benchmarks), quick (the CPU quick start: the zero-cost fused estimator, MOTE-NAS-EF's loop, "
        "about two minutes), tiny (tests only)")
    p.add_argument("--benchmark", help="a benchmark table: NB201's benchmark.csv (evaluation stage from its 12-epoch "
                   "accuracy, report 200-epoch accuracy) or NAS-Bench-Macro's JSON (--space macro: report the "
                   "winner's true accuracy and rank)")
    add_benchmark_dataset_argument(p)
    add_run_arguments(p, "run name (default from space, algorithm, budget, seed)")
    p.set_defaults(func=_search)

    sh = sub.add_parser("show", help="summary and top candidates of a search run")
    sh.add_argument("run", help="runs/<name>")
    sh.add_argument("--top", type=int, default=10)
    sh.set_defaults(func=_show)
