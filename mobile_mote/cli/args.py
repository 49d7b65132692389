"""Argument helpers shared by the commands: --set parsing and the option groups of search and pareto."""
from __future__ import annotations

from ..overrides import parse_set  # noqa: F401  (the commands import it from here)


def add_space_and_budgets(p, flops_help: str):
    """--space and the budget options with the latency sources; returns the budgets group."""
    from mobile_mote.search_spaces import list_spaces
    p.add_argument("--space", required=True, help=f"one of {', '.join(list_spaces())}")
    b = p.add_argument_group("budgets (hard bounds, checked before anything trains)")
    b.add_argument("--flops", help=flops_help)
    b.add_argument("--params", help="params budget, e.g. 4.5M")
    b.add_argument("--latency", help="latency budget, e.g. 20ms (needs --latency-table and --latency-device, "
                   "or --latency-lut)")
    b.add_argument("--latency-table", help="CSV of per-architecture latency (NB201: latency_ms.csv)")
    b.add_argument("--latency-device", help="column of the latency table, e.g. pixel2")
    b.add_argument("--latency-lut", help="per-block latency LUT of a block space (JSON from `mote latency-lut`)")
    return b


def add_benchmark_dataset_argument(p) -> None:
    """--benchmark-dataset, one default for `mote search` and `mote pareto`: NB201's main target."""
    from ..benchmarks.nb201 import DATASETS, MAIN_DATASET
    p.add_argument("--benchmark-dataset", default=MAIN_DATASET, choices=list(DATASETS),
                   help=f"NB201's data set of the true accuracy (default {MAIN_DATASET})")


def add_estimator_arguments(p, profile_help: str) -> None:
    p.add_argument("--estimator", default=None, help="the estimator (default: the profile's: mote, or fused "
                   "under --profile quick)")
    p.add_argument("--profile", default="paper", help=profile_help)
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override an estimator option")


def add_run_arguments(p, name_help: str) -> None:
    p.add_argument("--name", help=name_help)
    p.add_argument("--runs-dir", default="runs")
    p.add_argument("--resume", action="store_true", help="continue an interrupted run of the same name")
    p.add_argument("--seed", type=int, default=0)
    add_device_argument(p)
    p.add_argument("--processes", type=int, default=None, metavar="N",
                   help="shortcut for `accelerate launch --num_processes N` (1 or more; default: this process)")
    add_workers_argument(p)
    add_threads_argument(p)
    p.add_argument("--quiet", action="store_true")


def add_workers_argument(p) -> None:
    p.add_argument("--workers-per-device", type=int, default=1, metavar="N", dest="workers",
                   help="candidates scored at once on each device (threads, one CUDA stream each; training "
                   "estimators only; with time=wall the records say so; default 1)")


DEVICE_HELP = ("auto (default: cuda when this machine has a CUDA device, else cpu), cpu, cuda, cuda:N or mps; "
               "checked before anything runs")


def add_device_argument(p, help: str = DEVICE_HELP) -> None:
    p.add_argument("--device", default="auto", help=help)


def add_threads_argument(p) -> None:
    p.add_argument("--threads", default=None, metavar="N",
                   help="CPU threads per process (default: cores // processes, so processes x threads never "
                   "exceeds the cores; lower when OMP_NUM_THREADS is set)")


def threads_from_args(args, processes: int | None = None) -> int:
    """The checked --threads of a command (InputError for 0, negative or not a number)."""
    from ..devices import check_threads
    return check_threads(getattr(args, "threads", None), processes)


def resolve_estimator(args) -> str:
    """``--estimator`` as given, else the profile's (``profiles.default_estimator``); set on ``args``."""
    from ..profiles import default_estimator
    if not args.estimator:
        args.estimator = default_estimator(args.profile)
    return args.estimator


def add_algorithm_arguments(p, command: str) -> None:
    """``--algorithm`` (every registered algorithm ``command`` runs) and the options their ``Config``
    fields declare (``cli_option``), one group per algorithm family; an option several algorithms
    declare is added once."""
    from ..profiles import DEFAULT_ALGORITHM
    from ..search.algorithms import algorithm_class, algorithms_for
    names = algorithms_for(command)
    default = DEFAULT_ALGORITHM[command]
    groups: dict[str, object] = {}
    seen: set[str] = set()
    for name in [default] + [n for n in names if n != default]:
        cls = algorithm_class(name)
        if cls.option_group not in groups:
            groups[cls.option_group] = p.add_argument_group(cls.option_group)
        g = groups[cls.option_group]
        if not seen:
            g.add_argument("--algorithm", choices=names, default=None, help=", ".join(
                f"{n} ({'default; ' if n == default else ''}{algorithm_class(n).help})"
                for n in [default] + [n for n in names if n != default]))
            seen.add("algorithm")
        for f in cls.cli_fields():
            if f.name in seen:
                continue
            seen.add(f.name)
            opt = f.metadata["cli"]
            g.add_argument("--" + f.name.replace("_", "-"), type=opt["type"], choices=opt["choices"], default=None,
                           help=opt["help"])


def resolve_algorithm(args, command: str) -> tuple[str, dict]:
    """The algorithm (``--algorithm``, else the profile's) and its settings: the profile's, then every
    option of its ``Config`` given on the command line."""
    from ..profiles import default_algorithm
    from ..search.algorithms import algorithm_class, algorithm_config
    name = args.algorithm or default_algorithm(args.profile, command)
    given = {f.name: getattr(args, f.name) for f in algorithm_class(name).cli_fields()
             if getattr(args, f.name, None) is not None}
    return name, algorithm_config(name, args.profile, **given)


def run_spec_from_args(args, algorithm: str, config: dict, constraints, name: str, **extra):
    """The RunSpec that `mote search` and `mote pareto` build alike from their shared options and the
    algorithm they resolved (``resolve_algorithm``); ``name`` is the run's default name and ``extra`` what
    only one of them sets."""
    from ..estimators import estimator_config
    from ..search.spec import RunSpec
    return RunSpec(
        name=args.name or name, space=args.space, constraints=constraints,
        estimator=args.estimator, estimator_config=estimator_config(args.estimator, args.profile, **parse_set(args.set)),
        algorithm=algorithm, algorithm_config=config, profile=args.profile, proxy_data=args.proxy_data,
        benchmark=args.benchmark, benchmark_dataset=args.benchmark_dataset, latency_table=args.latency_table,
        latency_device=args.latency_device, latency_lut=args.latency_lut, seed=args.seed, device=args.device,
        workers=args.workers, runs_dir=args.runs_dir, **extra)


def launch_from_args(command: str, args, make_spec) -> int:
    """Check the space, build the spec and launch the run (one process, or ranks of an accelerate launch)."""
    from ..parallel import is_launched
    from ..search.context import RunContext
    from ..search_spaces import get_space
    from .launch import launch_run
    get_space(args.space)  # unknown spaces fail before anything else
    spec = make_spec(args)
    # Every option is checked here, once, before any process starts; ranks of a launch check their own.
    ctx = RunContext(spec) if not is_launched() else None
    return launch_run(command, spec, args, ctx)


def add_estimator_algorithm_and_data(p, command: str, profile_help: str) -> None:
    """What `mote search` and `mote pareto` both take after their budgets: the estimator and its profile,
    the algorithm and its options, and the reduced data."""
    add_estimator_arguments(p, profile_help)
    add_algorithm_arguments(p, command)
    p.add_argument("--proxy-data", help="reduced data (default: cached CIFAR-100 r=10, a download, or offline MNIST)")
