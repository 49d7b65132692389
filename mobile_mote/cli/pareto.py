"""`mote pareto`: a multi-objective search (NSGA-II by default; ``--algorithm``: any registered one) over
score, MACs, params and latency, scored into the same store as `mote search`."""
from __future__ import annotations

from . import DEVICE_FAILURE_STATUS

EXIT_STATUS = (f"Exit status: 0 the front is written; 2 bad input (one line, nothing written); {DEVICE_FAILURE_STATUS}, "
               "the candidates scored before it kept (resume with --resume); 130 interrupted (resume with --resume).")


def pareto_spec_from_args(args):
    from ..efficiency import Constraint, parse_constraints
    from ..estimators import estimator_config
    from ..search.algorithms import algorithm_class
    from ..search.spec import RunSpec
    from .args import parse_set, resolve_algorithm, resolve_estimator

    resolve_estimator(args)
    algorithm, config = resolve_algorithm(args, "pareto")
    cls = algorithm_class(algorithm)
    objectives = tuple(cls.config_of(config).objectives)
    constraints = [c for c in parse_constraints(args.flops, args.params, args.latency) if c != Constraint()]
    name = args.name or f"{args.space}_{algorithm}_{'-'.join(objectives)}_s{args.seed}"
    return RunSpec(
        name=name, space=args.space, constraints=constraints, estimator=args.estimator,
        estimator_config=estimator_config(args.estimator, args.profile, **parse_set(args.set)),
        algorithm=algorithm, algorithm_config=config, profile=args.profile, proxy_data=args.proxy_data,
        latency_table=args.latency_table, latency_device=args.latency_device, latency_lut=args.latency_lut,
        benchmark=args.benchmark, benchmark_dataset=args.benchmark_dataset, seed=args.seed, device=args.device,
        workers=args.workers, runs_dir=args.runs_dir, store_path=args.store)


def _pareto(args) -> int:
    from mobile_mote.search_spaces import get_space
    get_space(args.space)  # unknown spaces fail before anything else
    spec = pareto_spec_from_args(args)
    from ..parallel import is_launched
    from ..search.context import RunContext
    from .launch import launch_run
    ctx = RunContext(spec) if not is_launched() else None  # one line here rather than one per rank
    return launch_run("pareto", spec, args, ctx)


def register(sub) -> None:
    from . import MACS_NOTE
    from .args import (add_algorithm_arguments, add_benchmark_dataset_argument, add_estimator_arguments,
                       add_run_arguments, add_space_and_budgets)
    p = sub.add_parser("pareto", help="NSGA-II Pareto search over score, MACs, params and latency",
                       description="NSGA-II multi-objective search; every score goes into the same SQLite store "
                       "as `mote search`. The latency objective reads --latency-table/--latency-device (NB201) "
                       "or --latency-lut (mbv2, mbv3). " + MACS_NOTE, epilog=EXIT_STATUS)
    add_space_and_budgets(
        p, flops_help="MACs bound, e.g. 300M or 0.3G (one value: the front covers every budget below it)")
    add_estimator_arguments(p, "paper (default: population 50, 20 generations), official (same search; the "
                            "estimator's official-code variant), cpu, quick (the zero-cost fused estimator, "
                            "population 20, 4 generations), tiny (population 6, 2 generations: tests only)")
    add_algorithm_arguments(p, "pareto")
    p.add_argument("--proxy-data", help="reduced data (default: cached CIFAR-100 r=10, a download, or offline MNIST)")
    p.add_argument("--benchmark", help="benchmark table (NB201 benchmark.csv, NAS-Bench-Macro JSON): annotate the "
                   "front with true accuracy (reporting only)")
    add_benchmark_dataset_argument(p)
    p.add_argument("--store", help="results store (default runs-dir/name/search.db; may be shared with "
                   "`mote search` runs)")
    add_run_arguments(p, "run name (default from space, objectives, seed)")
    p.set_defaults(func=_pareto)
