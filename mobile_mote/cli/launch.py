"""Running a search command in this process, or across processes under `accelerate launch`."""
from __future__ import annotations

import os
import sys
from dataclasses import replace


def launch_run(command: str, spec, args, ctx=None) -> int:
    """Run ``spec`` through the search driver and print the result as its algorithm reports it
    (``Algorithm.report``); the exit status is what that returns (None: 0).

    ``--processes N`` (not yet launched): relaunch the same command line under `accelerate launch`.
    Under `accelerate launch` with several processes, rank 0 runs the loop with a ParallelScorer and
    the other ranks score their shares; otherwise everything runs in this process."""
    from ..devices import apply_threads, resolve_device
    from ..parallel import is_launched
    from ..search.driver import run
    from .args import threads_from_args
    if args.processes is not None and args.processes < 1:
        from ..errors import InputError
        raise InputError(f"--processes {args.processes}: expected a whole number of processes, 1 or more "
                         "(leave it out for one process)")
    relaunch = bool(args.processes and args.processes > 1 and not is_launched())
    # Checked before any run state exists (the RunContext checked the device's form without torch).
    threads = threads_from_args(args, args.processes if relaunch else None)
    spec = replace(spec, device=resolve_device(spec.device, verbose=not args.quiet and not relaunch))
    if ctx is not None:  # the run's context reads the device its driver scores on
        ctx.spec = spec
    from ..profiles import cpu_cost_notice
    epochs = getattr(getattr(ctx.estimator, "config", None), "epochs", None) if ctx is not None else None
    notice = None if is_launched() else cpu_cost_notice(args.profile, spec, epochs, command)
    if relaunch:
        if notice:
            print(notice, file=sys.stderr)
        from ..parallel import relaunch_with_processes
        # cpu: GPUs hidden from the processes; None: one GPU each, no more processes than GPUs
        return relaunch_with_processes(args.processes, [command, *_argv_after(command)],
                                       cpu=True if spec.device == "cpu" else None, threads=threads)
    apply_threads(threads)
    scorer = None
    if is_launched() and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        from ..estimators import estimator_class
        from ..parallel import ParallelScorer
        data = None
        if estimator_class(spec.estimator).needs_data:
            from ..data.default_data import resolve_proxy_data
            data = resolve_proxy_data(spec.proxy_data, quiet=True)
        # On GPUs each rank takes its own cuda:<local_rank>; "cpu" stays cpu.
        scorer = ParallelScorer(spec.space, spec.estimator, spec.estimator_config, data, spec.seed,
                                "cpu" if spec.device == "cpu" else None, progress=False, workers=spec.workers)
        try:
            if not scorer.is_main:  # noqa: SIM102 (workers never build a run context)
                scorer.serve()
                return 0
            summary = run(spec, resume=args.resume, scorer=scorer, progress=not args.quiet, ctx=ctx)
        finally:
            scorer.close()  # idempotent; releases the workers even when the run failed before its loop
            _leave_process_group()
    else:
        if ctx is not None:  # the proxy data and the evaluation stage are read and checked before any run state
            ctx.data, ctx.prepared  # noqa: B018 (cached properties, built once)
        if notice:  # after every check: bad input stays one line
            print(notice, file=sys.stderr)
        summary = run(spec, resume=args.resume, scorer=scorer, progress=not args.quiet, ctx=ctx)
    from ..search.algorithms import algorithm_class
    # a report may give the run its own status (search: no winner)
    return algorithm_class(spec.algorithm).report(spec, summary) or 0


def _leave_process_group() -> None:
    """Destroy the launch's process group before the interpreter exits: a gloo group left to the exit
    handlers can abort a rank ("terminate called without an active exception") after a short run."""
    import torch.distributed as dist
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def _argv_after(command: str) -> list[str]:
    argv = sys.argv[1:]
    return argv[argv.index(command) + 1:] if command in argv else argv
