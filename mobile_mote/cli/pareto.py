"""`mote pareto`: a multi-objective search (NSGA-II by default; ``--algorithm``: any registered one) over
score, MACs, params and latency, scored into the same store as `mote search`."""
from __future__ import annotations

from . import DEVICE_FAILURE_STATUS

EXIT_STATUS = (f"Exit status: 0 the front is written; 2 bad input (one line, nothing written); {DEVICE_FAILURE_STATUS}, "
               "the candidates scored before it kept (resume with --resume); 130 interrupted (resume with --resume).")


def pareto_spec_from_args(args):
    from ..efficiency import Constraint, parse_constraints
    from ..search.algorithms import algorithm_class
    from .args import resolve_algorithm, resolve_estimator, run_spec_from_args
    resolve_estimator(args)
    algorithm, config = resolve_algorithm(args, "pareto")
    objectives = "-".join(algorithm_class(algorithm).config_of(config).objectives)
    constraints = [c for c in parse_constraints(args.flops, args.params, args.latency) if c != Constraint()]
    return run_spec_from_args(args, algorithm, config, constraints, f"{args.space}_{algorithm}_{objectives}_s{args.seed}",
                              store_path=args.store)


def _pareto(args) -> int:
    from .args import launch_from_args
    return launch_from_args("pareto", args, pareto_spec_from_args)


def register(sub) -> None:
    from . import MACS_NOTE
    from .args import (add_benchmark_dataset_argument, add_estimator_algorithm_and_data, add_run_arguments,
                       add_space_and_budgets)
    p = sub.add_parser("pareto", help="multi-objective search (NSGA-II, MTF-PDNS, LaMOO, MO-HDNAS) over score, MACs, params and latency",
                       description="A multi-objective search (--algorithm nsga2, pdns, lamoo or mo-hdnas); every score goes into the same SQLite store "
                       "as `mote search`. The latency objective reads --latency-table/--latency-device (NB201) "
                       "or --latency-lut (mbv2, mbv3). " + MACS_NOTE, epilog=EXIT_STATUS)
    add_space_and_budgets(
        p, flops_help="MACs bound, e.g. 300M or 0.3G (one value: the front covers every budget below it)")
    add_estimator_algorithm_and_data(
        p, "pareto",
        "paper (default: population 50, 20 generations), official (same search; the estimator's "
        "official-code variant), cpu, quick (the zero-cost fused estimator, population 20, 4 "
        "generations), tiny (population 6, 2 generations: tests only)")
    p.add_argument("--benchmark", help="benchmark table (NB201 benchmark.csv, NAS-Bench-Macro JSON): annotate the "
                   "front with true accuracy (reporting only)")
    add_benchmark_dataset_argument(p)
    p.add_argument("--store", help="results store (default runs-dir/name/search.db; may be shared with "
                   "`mote search` runs)")
    add_run_arguments(p, "run name (default from space, objectives, seed)")
    p.set_defaults(func=_pareto)
