"""`mote latency` (measure or predict one architecture) and `mote latency-lut` (build a per-block LUT)."""
from __future__ import annotations

import json
import sys

from ..errors import InputError


def _check_threads(args) -> None:
    if args.threads is not None and args.threads < 1:
        raise InputError(f"--threads {args.threads}: expected a whole number of CPU threads, 1 or more")


def _latency(args) -> int:
    from mobile_mote.search_spaces import get_space

    from ..devices import resolve_device
    space = get_space(args.space)
    arch = space.canonical(args.arch)
    _check_threads(args)
    # onnxruntime measures on the cpu, so there auto means cpu; a LUT's prediction needs no device
    device = "cpu" if args.backend == "onnxruntime" and args.device.strip().lower() == "auto" else args.device
    device = resolve_device(device, import_torch=not args.lut)
    if args.lut:
        from ..efficiency.latency import load_lut, predict
        lut = load_lut(args.lut)
        if lut.get("space") != args.space:
            raise InputError(f"LUT {args.lut} was built for space {lut.get('space')!r}, not {args.space!r}")
        if args.resolution and args.resolution != lut["resolution"]:
            raise InputError(f"LUT {args.lut} was built at resolution {lut['resolution']}, not {args.resolution}")
        if args.reduced != bool(lut["reduced"]):
            raise InputError(f"LUT {args.lut} was built for the {'reduced' if lut['reduced'] else 'full'} network")
        from ..efficiency.latency import lut_space
        ms, parts = predict(lut, lut_space(lut), arch, detail=True)
        rec = {"space": args.space, "arch": arch, "latency_ms": round(ms, 4), "source": "lut", "lut": str(args.lut),
               "resolution": lut["resolution"], "device": lut["device"], "batch": lut["batch"],
               "blocks": len(parts) - 2}
    else:
        resolution = args.resolution or space.default_resolution(args.reduced)
        model = space.build(arch, reduced=args.reduced)
        if args.backend == "onnxruntime":
            if device != "cpu":
                raise InputError(f"--backend onnxruntime runs on cpu; got --device {args.device!r}")
            from ..efficiency.latency import measure_onnxruntime
            m = measure_onnxruntime(model, resolution, args.batch, args.warmup, args.repeats, args.threads)
        else:
            from ..efficiency.latency import measure_torch
            m = measure_torch(model, resolution, device, args.batch, args.warmup, args.repeats, args.threads)
        rec = {"space": args.space, "arch": arch, "latency_ms": round(m["median_ms"], 4), "source": "measured", **m}
    print(json.dumps(rec, indent=None if args.compact else 2))
    return 0


def _latency_lut(args) -> int:
    from mobile_mote.search_spaces import get_space

    from ..devices import resolve_device
    from ..efficiency.latency import build_lut, save_lut
    space = get_space(args.space)
    space.lut_covering_archs()  # InputError for a space without a per-block LUT
    _check_threads(args)
    device = resolve_device(args.device)

    def progress(i, n, e):
        if not args.quiet:
            print(f"mote latency-lut: {i}/{n} networks, {e} entries", file=sys.stderr, flush=True)

    lut = build_lut(space, device, args.resolution, args.reduced, args.warmup, args.repeats, args.batch,
                    args.threads, rounds=args.rounds, progress=progress)
    save_lut(lut, args.out)
    print(json.dumps({"out": str(args.out), "space": args.space, "entries": lut["n_entries"],
                      "resolution": lut["resolution"], "device": lut["device"],
                      "build_seconds": lut["build_seconds"]}))
    return 0


def _common(p) -> None:
    from mobile_mote.search_spaces import list_spaces
    p.add_argument("--space", required=True, help=f"one of {', '.join(list_spaces())}")
    p.add_argument("--device", default="auto", help="auto (default: cuda when this machine has a CUDA device, "
                   "else cpu; cpu for --backend onnxruntime), cpu, cuda or cuda:N")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--threads", type=int, default=None, help="CPU threads (default: torch's current setting)")
    p.add_argument("--resolution", type=int, default=None, help="input side in pixels (default: the space's)")
    p.add_argument("--reduced", action="store_true", help="the reduced (proxy) architecture")


def register(sub) -> None:
    m = sub.add_parser("latency", help="latency (ms) of one architecture: measured, or predicted from a LUT")
    _common(m)
    m.add_argument("--arch", required=True, help="architecture string or preset name")
    m.add_argument("--backend", choices=("torch", "onnxruntime"), default="torch")
    m.add_argument("--lut", default=None, help="predict from this LUT (from `mote latency-lut`) instead of measuring")
    m.add_argument("--warmup", type=int, default=10)
    m.add_argument("--repeats", type=int, default=50)
    m.add_argument("--compact", action="store_true", help="one-line JSON")
    m.set_defaults(func=_latency)

    b = sub.add_parser("latency-lut", help="build an OFA-style per-block latency lookup table (mbv2, mbv3)")
    _common(b)
    b.add_argument("--out", required=True, help="JSON file to write")
    b.add_argument("--warmup", type=int, default=5)
    b.add_argument("--repeats", type=int, default=20)
    b.add_argument("--rounds", type=int, default=1, help="passes over the table; each entry keeps its smallest median")
    b.add_argument("--quiet", action="store_true")
    b.set_defaults(func=_latency_lut)
