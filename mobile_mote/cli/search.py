"""`mote search` and `mote show`."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from .errors import InputError

# Search settings per profile; the estimator's own profile options live in estimators/mote.py.
SEARCH_PROFILES = {
    "paper": {},
    "official": {"top_fraction": 0.01, "add_limit": "10B", "iterations": "sum"},
    "tiny": {"k": 3, "batch_start": 1, "batch_step": 1, "draw_factor": 5},
}


def spec_from_args(args):
    from .constraints import parse_constraints
    from .scoring import estimator_config
    from .cmd_score import _parse_set
    from .search.algorithms import SearchConfig
    from .search.runner import RunSpec

    if args.profile not in SEARCH_PROFILES:
        raise InputError(f"unknown profile {args.profile!r}; accepted: {', '.join(SEARCH_PROFILES)}")
    search = {**SEARCH_PROFILES[args.profile]}
    for key in ("algorithm", "k", "top_fraction", "add_limit", "iterations", "draw", "batch_start", "draw_factor"):
        v = getattr(args, key)
        if v is not None:
            search[key] = v
    search["seed"] = args.seed
    constraints = parse_constraints(args.flops, args.params, args.latency)
    name = args.name or f"{args.space}_{search.get('algorithm', 'mote-nas')}_{constraints[0].label()}_s{args.seed}"
    return RunSpec(
        name=name, space=args.space, constraints=constraints, estimator=args.estimator,
        estimator_config=estimator_config(args.estimator, args.profile, **_parse_set(args.set)),
        search=SearchConfig(**search), proxy_data=args.proxy_data, benchmark=args.benchmark,
        benchmark_dataset=args.benchmark_dataset, latency_table=args.latency_table,
        latency_device=args.latency_device, eval_epochs=args.eval_epochs, seed=args.seed,
        device=args.device, runs_dir=args.runs_dir)


def _search(args) -> int:
    from search_spaces import get_space
    get_space(args.space)  # unknown spaces fail before anything else
    spec = spec_from_args(args)  # validates every option before any process starts
    from .search.runner import run_search
    return launch_run("search", spec, args, run_search, _print_result)


def launch_run(command: str, spec, args, run, report) -> int:
    """Run ``run(spec, resume=, scorer=, progress=)`` and ``report(spec, summary)`` the result.

    ``--processes N`` (not yet launched): relaunch the same command line under `accelerate launch`.
    Under `accelerate launch` with several processes, rank 0 runs the loop with a ParallelScorer and
    the other ranks score their shares; otherwise everything runs in this process."""
    from .parallel import is_launched
    if args.processes and args.processes > 1 and not is_launched():
        from .parallel import relaunch_with_processes
        return relaunch_with_processes(args.processes, [command, *_argv_after(command)],
                                       cpu=args.device == "cpu")
    scorer = None
    if is_launched() and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        from .default_data import resolve_proxy_data
        from .parallel import ParallelScorer
        from .search.runner import DATA_FREE
        data = None if spec.estimator in DATA_FREE else resolve_proxy_data(spec.proxy_data, quiet=True)
        # On GPUs each rank takes its own cuda:<local_rank>; "cpu" stays cpu.
        scorer = ParallelScorer(spec.space, spec.estimator, spec.estimator_config, data, spec.seed,
                                "cpu" if spec.device == "cpu" else None, progress=False)
        try:
            if not scorer.is_main:
                scorer.serve()
                return 0
            summary = run(spec, resume=args.resume, scorer=scorer, progress=not args.quiet)
        finally:
            scorer.close()  # idempotent; releases the workers even when the run failed before its loop
            _leave_process_group()
    else:
        summary = run(spec, resume=args.resume, scorer=scorer, progress=not args.quiet)
    report(spec, summary)
    return 0


def _leave_process_group() -> None:
    """Destroy the launch's process group before the interpreter exits: a gloo group left to the exit
    handlers can abort a rank ("terminate called without an active exception") after a short run."""
    import torch.distributed as dist
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def _argv_after(command: str) -> list[str]:
    argv = sys.argv[1:]
    return argv[argv.index(command) + 1:] if command in argv else argv


def _print_result(spec, summary: dict) -> None:
    for w in summary["winners"]:
        if not w.get("arch"):
            print(f"{w['label']}: no winner ({w.get('error')})", file=sys.stderr)
            continue
        line = {"budget": w["label"], "arch": w["arch"], "macs": w["macs"], "params": w["params"], "score": w["score"]}
        if w.get("evaluation") and w["evaluation"].get("accuracy") is not None:
            line["evaluation_accuracy"] = w["evaluation"]["accuracy"]
        if w.get("final_accuracy") is not None:
            line["final_accuracy"] = w["final_accuracy"]
        print(json.dumps(line))
    print(f"results in {spec.run_dir}/ (winner.json, summary.md, plots); `mote show {spec.run_dir}`", file=sys.stderr)


def _show(args) -> int:
    run_dir = Path(args.run)
    md = run_dir / "summary.md"
    if not md.is_file():
        db = run_dir / "search.db"
        if not db.is_file():
            raise InputError(f"{run_dir} is not a search run (no summary.md or search.db); "
                             "expected runs/<name> written by `mote search`")
        from .store import SearchStore
        with SearchStore(db, create=False, readonly=True) as store:
            runs = store.runs()
            print(f"{run_dir}: unfinished run(s): " + ", ".join(r["name"] for r in runs))
            for r in runs:
                st = store.load_state(r["name"]) or {}
                print(f"  {r['name']}: iteration {st.get('iteration', 0)}, pool {len(st.get('pool', []))}; "
                      "continue with `mote search ... --resume`")
        return 0
    print(md.read_text())
    if args.top:
        summary = json.loads((run_dir / "summary.json").read_text())
        from .store import SearchStore
        with SearchStore(run_dir / "search.db", create=False, readonly=True) as store:
            recs = [r for r in store.run_records(summary["run"]) if r.get("score") is not None]
        recs.sort(key=lambda r: -r["score"])
        print(f"Top {min(args.top, len(recs))} of {len(recs)} candidates by score:")
        for r in recs[:args.top]:
            print(f"  {r['score']:.5g}  MACs {(r.get('macs') or 0) / 1e6:.1f}M  {r['arch']}")
    return 0


def register(sub) -> None:
    from .cli import MACS_NOTE
    p = sub.add_parser("search", help="MOTE-NAS search under MACs/params/latency budgets",
                       description="MOTE-NAS search. " + MACS_NOTE)
    add_space_and_budgets(p, flops_help="MACs budget(s), e.g. 300M or 0.3G or 200M,300M,400M (one pool for all)")
    add_estimator_arguments(p, "paper (default), official (the official code's variant), "
                            "tiny (tests and CPU demos only)")
    s = p.add_argument_group("search")
    s.add_argument("--algorithm", choices=["mote-nas", "ef", "rs"], default=None,
                   help="mote-nas (default), ef (MOTE top-1, no evaluation stage), rs (random + evaluation)")
    s.add_argument("--k", type=int, default=None, help="candidates to the evaluation stage (default 10)")
    s.add_argument("--top-fraction", type=float, default=None, help="pool fraction whose neighbours are added (0.1)")
    s.add_argument("--add-limit", choices=["10k", "10B"], default=None)
    s.add_argument("--iterations", choices=["max", "sum"], default=None, help="max(k,10) (paper) or 10+k")
    s.add_argument("--batch-start", type=int, default=None, help="B at the first iteration (10)")
    s.add_argument("--draw-factor", type=int, default=None, help="each iteration draws this times B candidates (10)")
    s.add_argument("--draw", choices=["auto", "uniform", "neighbours"], default=None,
                   help="where each iteration's 10*B candidates come from (auto: uniform on NB201, "
                   "neighbours of the top cells in the block spaces)")
    s.add_argument("--eval-epochs", type=int, default=12, help="evaluation-stage epochs (not with --benchmark)")
    p.add_argument("--proxy-data", help="reduced data (default: cached CIFAR-100 r=10, a download, or offline MNIST)")
    p.add_argument("--benchmark", help="NB201 benchmark.csv: evaluation stage from its 12-epoch accuracy, report "
                   "200-epoch accuracy")
    p.add_argument("--benchmark-dataset", default="cifar100", choices=["cifar10", "cifar100", "imagenet16"])
    add_run_arguments(p, "run name (default from space, algorithm, budget, seed)")
    p.set_defaults(func=_search)

    sh = sub.add_parser("show", help="summary and top candidates of a search run")
    sh.add_argument("run", help="runs/<name>")
    sh.add_argument("--top", type=int, default=10)
    sh.set_defaults(func=_show)


# -- options shared with `mote pareto` --------------------------------------------------------------
def add_space_and_budgets(p, flops_help: str, latency_sources: str = "--latency-table and --latency-device"):
    """--space and the budget options; returns the budgets group (for more latency sources)."""
    from search_spaces import list_spaces
    p.add_argument("--space", required=True, help=f"one of {', '.join(list_spaces())}")
    b = p.add_argument_group("budgets (hard bounds, checked before anything trains)")
    b.add_argument("--flops", help=flops_help)
    b.add_argument("--params", help="params budget, e.g. 4.5M")
    b.add_argument("--latency", help=f"latency budget, e.g. 20ms (needs {latency_sources})")
    b.add_argument("--latency-table", help="CSV of per-architecture latency (NB201: latency_ms.csv)")
    b.add_argument("--latency-device", help="column of the latency table, e.g. pixel2")
    return b


def add_estimator_arguments(p, profile_help: str) -> None:
    p.add_argument("--estimator", default="mote")
    p.add_argument("--profile", default="paper", help=profile_help)
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override an estimator option")


def add_run_arguments(p, name_help: str) -> None:
    p.add_argument("--name", help=name_help)
    p.add_argument("--runs-dir", default="runs")
    p.add_argument("--resume", action="store_true", help="continue an interrupted run of the same name")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu")
    p.add_argument("--processes", type=int, default=0, help="shortcut for `accelerate launch --num_processes N`")
    p.add_argument("--quiet", action="store_true")
