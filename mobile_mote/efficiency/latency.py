"""Latency as an objective: direct measurement (PyTorch, onnxruntime), NB201's device table, and an
OFA-style per-block lookup table (LUT) for the MobileNet block spaces.

>>> from mobile_mote.efficiency.latency import measure_torch, build_lut, predict
>>> measure_torch(model, 224)["median_ms"]            # end-to-end, batch 1, eval + inference_mode
>>> lut = build_lut(get_space("mbv2"), repeats=10)    # every distinct block configuration, in isolation
>>> predict(lut, get_space("mbv2"), arch)             # stem + sum of blocks + head, in ms

A LUT entry is keyed by everything that changes a block's cost: type, input shape (C,H,W), kernel,
expansion, stride, SE, output channels and activation. Block shapes depend only on the block's
position in the skeleton (first of its stage or not), never on which earlier blocks were skipped, so a
few networks (one per per-block choice) cover every key.
"""
from __future__ import annotations

import contextlib
import json
import statistics
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

from ..errors import InputError

LUT_FORMAT = "mobile_mote.latency_lut/1"


# -- measurement ----------------------------------------------------------------------------------------
@contextmanager
def _threads(n: int | None):
    import torch
    if n is None:
        yield
        return
    if not isinstance(n, int) or n < 1:
        raise InputError(f"threads {n!r}; accepted: a whole number, 1 or more")
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _summary(times_ms: list[float]) -> dict:
    s = sorted(times_ms)
    n = len(s)

    def q(p):  # linear-interpolated percentile
        x = p * (n - 1)
        lo = int(x)
        hi = min(lo + 1, n - 1)
        return s[lo] + (s[hi] - s[lo]) * (x - lo)

    return {"median_ms": statistics.median(s), "p10_ms": q(0.10), "p90_ms": q(0.90),
            "mean_ms": sum(s) / n, "min_ms": s[0], "repeats": n}


def _check_counts(warmup, repeats, batch, resolution):
    for name, v, lo in (("warmup", warmup, 0), ("repeats", repeats, 1), ("batch", batch, 1), ("resolution", resolution, 8)):
        if not isinstance(v, int) or isinstance(v, bool) or v < lo:
            raise InputError(f"{name} {v!r}; accepted: a whole number, {lo} or more")


def _resolve_device(device):
    import torch
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"device {device!r} asked for, but CUDA is not available; accepted here: cpu")
    return dev


def time_callable(fn, x, device="cpu", warmup: int = 10, repeats: int = 50) -> list[float]:
    """Per-call milliseconds of ``fn(x)``; CUDA runs are timed with events and synchronised."""
    import torch
    dev = torch.device(device)
    ctx = torch.cuda.device(dev) if dev.type == "cuda" else contextlib.nullcontext()
    with torch.inference_mode(), ctx:
        for _ in range(warmup):
            fn(x)
        out = []
        if dev.type == "cuda":
            # events made on the model's device (the context above) and recorded on its stream, not device 0's
            stream = torch.cuda.current_stream(dev)
            torch.cuda.synchronize(dev)
            for _ in range(repeats):
                start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                start.record(stream)
                fn(x)
                end.record(stream)
                end.synchronize()
                out.append(float(start.elapsed_time(end)))
        else:
            for _ in range(repeats):
                t0 = time.perf_counter()
                fn(x)
                out.append((time.perf_counter() - t0) * 1e3)
    return out


def _in_chans(model) -> int:
    cfg = getattr(model, "pretrained_cfg", None) or {}
    return int(cfg.get("input_size", (3,))[0])


def measure_torch(model, resolution: int, device="cpu", batch: int = 1, warmup: int = 10, repeats: int = 50,
                  threads: int | None = None) -> dict:
    """End-to-end latency of ``model`` on a (batch, C, resolution, resolution) input, eval mode."""
    import torch
    _check_counts(warmup, repeats, batch, resolution)
    dev = _resolve_device(device)
    was_training = model.training
    model.eval().to(dev)
    try:
        with _threads(threads):
            x = torch.randn(batch, _in_chans(model), resolution, resolution, device=dev)
            rec = _summary(time_callable(model, x, dev, warmup, repeats))
            used = torch.get_num_threads()
    finally:
        model.train(was_training)
    rec.update(backend="torch", device=str(dev), batch=batch, resolution=resolution, warmup=warmup,
               threads=used if dev.type == "cpu" else None)
    return rec


def measure_onnxruntime(model, resolution: int, batch: int = 1, warmup: int = 10, repeats: int = 50,
                        threads: int | None = None) -> dict:
    """Write ``model`` to a temporary ONNX file and time onnxruntime's CPUExecutionProvider on it."""
    import numpy as np
    import onnxruntime as ort
    import torch

    from ..onnx_io import write_onnx

    _check_counts(warmup, repeats, batch, resolution)
    if threads is not None and (not isinstance(threads, int) or threads < 1):
        raise InputError(f"threads {threads!r}; accepted: a whole number, 1 or more")
    n_threads = threads or torch.get_num_threads()
    model = model.cpu()
    with tempfile.TemporaryDirectory(prefix="mote_lat_") as tmp:
        path = Path(tmp) / "model.onnx"
        write_onnx(model, torch.randn(1, _in_chans(model), resolution, resolution), path)
        so = ort.SessionOptions()
        so.intra_op_num_threads = n_threads
        so.inter_op_num_threads = 1
        so.log_severity_level = 3
        sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        name = sess.get_inputs()[0].name
        x = np.random.default_rng(0).standard_normal((batch, _in_chans(model), resolution, resolution)).astype(np.float32)
        for _ in range(warmup):
            sess.run(None, {name: x})
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            sess.run(None, {name: x})
            times.append((time.perf_counter() - t0) * 1e3)
    rec = _summary(times)
    rec.update(backend="onnxruntime", device="cpu", batch=batch, resolution=resolution, warmup=warmup,
               threads=n_threads, onnxruntime=ort.__version__)
    return rec


# -- the per-block lookup table -------------------------------------------------------------------------
def covering_archs(space) -> list[tuple]:
    """Networks that together contain every LUT entry of ``space`` (the space knows which)."""
    return space.lut_covering_archs()


def build_lut(space, device="cpu", resolution: int | None = None, reduced: bool = False, warmup: int = 5,
              repeats: int = 20, batch: int = 1, threads: int | None = None, num_classes: int | None = None,
              rounds: int = 1, progress=None) -> dict:
    """Time every distinct block configuration of ``space`` in isolation (plus stem and head).

    Each entry is the median of ``repeats`` timed calls; with ``rounds`` > 1 the whole pass is repeated and
    each entry keeps its smallest median, which discounts bursts of contention on a shared machine.
    """
    import torch
    archs = space.lut_covering_archs() * rounds  # InputError for a space without a LUT
    resolution = resolution or space.default_resolution(reduced)
    _check_counts(warmup, repeats, batch, resolution)
    if not isinstance(rounds, int) or rounds < 1:
        raise InputError(f"rounds {rounds!r}; accepted: a whole number, 1 or more")
    num_classes = num_classes or space.num_classes
    dev = _resolve_device(device)
    entries: dict[str, dict] = {}
    t0 = time.perf_counter()
    seen: set = set()
    per_round = len(archs) // rounds
    with _threads(threads), torch.inference_mode():
        used_threads = torch.get_num_threads()
        for n, arch in enumerate(archs):
            if n % per_round == 0:
                seen = set()  # a new round: every key is timed again
            model = space.build(arch, num_classes=num_classes, reduced=reduced).eval().to(dev)
            x = torch.randn(batch, 3, resolution, resolution, device=dev)
            for key, fn in space.lut_parts(model, arch, resolution, reduced, num_classes):
                if key not in seen:
                    seen.add(key)
                    rec = _summary(time_callable(fn, x, dev, warmup, repeats))
                    old = entries.get(key)
                    if old is None or rec["median_ms"] < old["median_ms"]:
                        entries[key] = {"median_ms": rec["median_ms"], "p10_ms": rec["p10_ms"], "p90_ms": rec["p90_ms"]}
                x = fn(x)
            if progress:
                progress(n + 1, len(archs), len(entries))
    from ..provenance import provenance
    return {
        "format": LUT_FORMAT, "space": space.name, "choices": space.lut_choices(),
        "resolution": resolution, "reduced": reduced, "batch": batch, "num_classes": num_classes,
        "device": str(dev), "threads": used_threads if dev.type == "cpu" else None,
        "warmup": warmup, "repeats": repeats, "rounds": rounds, "statistic": "median_ms",
        "build_seconds": round(time.perf_counter() - t0, 2), "n_entries": len(entries),
        "entries": entries, "provenance": provenance(),
    }


def lut_keys(lut: dict, space, arch) -> list[str]:
    """The LUT keys (stem, blocks..., head) that make up ``arch``'s prediction."""
    if lut.get("space") != space.name:
        raise InputError(f"the LUT was built for space {lut.get('space')!r}, not {space.name!r}")
    return space.lut_entries(arch, int(lut["resolution"]), bool(lut["reduced"]), int(lut["num_classes"]))


def predict(lut: dict, space, arch, detail: bool = False):
    """Predicted latency (ms) of ``arch``: stem + sum of its blocks' entries + head."""
    entries = lut["entries"]
    stat = lut.get("statistic", "median_ms")
    parts = []
    for k in lut_keys(lut, space, arch):
        if k not in entries:
            raise InputError(f"the LUT has no entry {k!r} (built for choices {lut.get('choices')}, resolution "
                             f"{lut.get('resolution')}); rebuild it with `mote latency-lut` for this space")
        parts.append((k, entries[k][stat]))
    total = sum(v for _, v in parts)
    return (total, parts) if detail else total


def save_lut(lut: dict, path) -> None:
    """Write atomically: a failed write leaves any earlier file untouched."""
    from ..atomic import write_text
    path = Path(path)
    if path.is_dir():
        raise InputError(f"{path} is a directory; give the .json file to write")
    write_text(path, json.dumps(lut, indent=1) + "\n")


def load_lut(path) -> dict:
    """A LUT from ``mote latency-lut``, checked: its format, and every entry a finite positive time."""
    import math
    path = Path(path)
    if not path.is_file():
        raise InputError(f"latency LUT {path} does not exist; build one with `mote latency-lut --space S --out {path}`")
    try:
        lut = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise InputError(f"latency LUT {path} is not JSON ({e}); build one with `mote latency-lut`") from None
    if not isinstance(lut, dict) or lut.get("format") != LUT_FORMAT or not isinstance(lut.get("entries"), dict):
        raise InputError(f"{path} is not a latency LUT (expected format {LUT_FORMAT!r})")
    for key in ("space", "resolution", "reduced", "num_classes"):
        if key not in lut:
            raise InputError(f"latency LUT {path} lacks {key!r}; rebuild it with `mote latency-lut`")
    stat = lut.get("statistic", "median_ms")
    for k, e in lut["entries"].items():
        v = e.get(stat) if isinstance(e, dict) else None
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0:
            raise InputError(f"latency LUT {path}: entry {k!r} has {stat} {v!r}; every entry must be a positive "
                             "number of milliseconds")
    return lut


def lut_space(lut: dict):
    """The space a LUT was built for, with the choices it was built with."""
    from mobile_mote.search_spaces import get_space
    ch = lut.get("choices") or {}
    kw = {}
    if ch:
        kw = dict(kernel_choices=tuple(ch["kernel"]), expansion_choices=tuple(ch["expansion"]),
                  se_choices=tuple(bool(s) for s in ch["se"]))
    return get_space(lut["space"], **kw)


class LutLatency:
    """Latency predicted from a per-block LUT (block spaces), checked against the space on load."""

    def __init__(self, path, space):
        lut = load_lut(path)
        if lut.get("space") != space.name:
            raise InputError(f"LUT {path} was built for space {lut.get('space')!r}, not {space.name!r}")
        have = lut.get("choices") or {}
        for key, need in space.lut_choices().items():
            missing = sorted({float(v) for v in need} - {float(v) for v in have.get(key, [])})
            if missing:
                raise InputError(f"LUT {path} lacks {key} choice(s) {missing} of {space.name}; "
                                 f"rebuild it with `mote latency-lut --space {space.name}`")
        self.lut, self.space = lut, space
        self.device = lut.get("device")
        self.describe = f"LUT {Path(path).name} ({lut.get('device')}, resolution {lut.get('resolution')})"

    def __call__(self, arch: str) -> float:
        return predict(self.lut, self.space, arch)


class MeasuredLatency:
    """Latency measured end to end on this machine (batch 1, median of repeats), memoised per arch."""

    def __init__(self, space, device="cpu", warmup: int = 10, repeats: int = 50, threads: int | None = None):
        self.space, self.device = space, device
        self.warmup, self.repeats, self.threads = warmup, repeats, threads
        self.describe = f"measured with PyTorch on {device} (median of {repeats})"

    def __call__(self, arch: str) -> float:
        model = self.space.build(arch)
        return measure_torch(model, self.space.default_resolution(), self.device, 1, self.warmup, self.repeats,
                             self.threads)["median_ms"]
