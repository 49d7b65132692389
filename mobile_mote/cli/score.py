"""`mote score`: one JSON record per candidate (JSON lines), written as each finishes."""
from __future__ import annotations

import json
from pathlib import Path

from ..errors import InputError
from . import DEVICE_FAILURE_STATUS

EXIT_STATUS = (f"Exit status: 0 every candidate scored (a failed candidate is a record with status failed); 2 bad "
               f"input (one line, nothing written); {DEVICE_FAILURE_STATUS}, the records written before it kept; "
               "130 interrupted.")


def _score(args) -> int:
    from ..devices import apply_threads, resolve_device
    from ..estimators import estimator_class, estimator_config, get_estimator
    from ..scoring import estimate_record, read_arch_file, resolve_proxy_data, sample_archs, score_archs
    from .args import parse_set, resolve_estimator, threads_from_args

    resolve_estimator(args)

    if sum(x is not None for x in (args.arch, args.archs, args.sample)) != 1:
        raise InputError("give exactly one of --arch A, --archs FILE or --sample N")
    if args.arch is not None:
        archs = [args.arch]
    elif args.archs is not None:
        archs = read_arch_file(args.archs)
        if not archs:
            raise InputError(f"{args.archs} lists no architectures; expected one architecture string per line "
                             "(or a JSON list)")
    else:
        if args.sample <= 0:
            raise InputError(f"--sample {args.sample}: expected a positive count")
        archs = sample_archs(args.space, args.sample, args.seed)
    from mobile_mote.search_spaces import get_space
    space = get_space(args.space)
    archs = [space.canonical(a) for a in archs]  # every one checked before a file is opened or data read
    config = estimator_config(args.estimator, args.profile, **parse_set(args.set))
    from ..concurrent import check_workers
    est = get_estimator(args.estimator, **config)
    check_workers(est, args.workers)  # every option checked before any data is read
    threads = threads_from_args(args)
    device = resolve_device(args.device)  # before any data is read or any file written
    data = resolve_proxy_data(args.proxy_data) if estimator_class(args.estimator).needs_data else None
    out = None
    if args.out:
        path = Path(args.out)
        if path.exists() and not args.append:
            raise InputError(f"{path} exists; pass --append to add records to it, or choose another --out")
    store = None
    if args.store:
        from ..store import SearchStore
        store = SearchStore(args.store)  # a StoreError is an InputError: one line, no --out written
    if args.out:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            out = open(path, "a")
        except OSError as e:
            raise InputError(f"cannot write {path}: {e.strerror}") from None
    apply_threads(threads)
    try:
        for rec in score_archs(args.space, archs, args.estimator, data, config, args.seed, device,
                               progress=not args.quiet, workers=args.workers, store=store):
            line = json.dumps(rec if store is None else estimate_record(rec, est.config_dict()))
            if out:
                out.write(line + "\n")
                out.flush()  # a kill loses at most the candidate in flight
            else:
                print(line)
    finally:
        if out:
            out.close()
        if store is not None:
            store.close()
    return 0


def register(sub) -> None:
    from mobile_mote.search_spaces import list_spaces

    from .args import add_device_argument, add_threads_argument, add_workers_argument
    p = sub.add_parser("score", help="score architectures with MOTE or a baseline estimator", epilog=EXIT_STATUS)
    p.add_argument("--space", required=True, help=f"one of {', '.join(list_spaces())}")
    src = p.add_argument_group("architectures (exactly one)")
    src.add_argument("--arch", help="one architecture string or preset")
    src.add_argument("--archs", help="file with one architecture per line (or a JSON list)")
    src.add_argument("--sample", type=int, help="N random architectures (seeded by --seed)")
    p.add_argument("--estimator", default="mote", help="mote, tse, early_stop_acc, synflow, snip, ... (default mote)")
    p.add_argument("--proxy-data", help="reduced data: ImageFolder directory or .npz from `mote make-rd` "
                   "(default: cached CIFAR-100 r=10, else built from a CIFAR-100 download, else offline MNIST demo data)")
    p.add_argument("--profile", default="paper", help="paper (default: the paper's settings), official "
                   "(the official code's variant), cpu (measured CPU benchmarks) or tiny (tests and CPU demos only)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override one estimator option, e.g. epochs=12")
    p.add_argument("--seed", type=int, default=0)
    add_device_argument(p)
    add_workers_argument(p)
    add_threads_argument(p)
    p.add_argument("--out", help="JSON-lines file (default: standard output)")
    p.add_argument("--append", action="store_true", help="add to an existing --out file")
    p.add_argument("--store", help="results store (SQLite, e.g. a search's runs/<name>/search.db) to score through: "
                   "a candidate it holds under the same estimator settings and seed is read back, not scored "
                   "again, and each one scored is stored")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_score)

