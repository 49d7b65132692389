"""Latency as an objective: direct measurement (PyTorch, onnxruntime), NB201's device table, and an
OFA-style per-block lookup table (LUT) for the MobileNet block spaces.

>>> from mobile_mote.latency import measure_torch, build_lut, predict
>>> measure_torch(model, 224)["median_ms"]            # end-to-end, batch 1, eval + inference_mode
>>> lut = build_lut(get_space("mbv2"), repeats=10)    # every distinct block configuration, in isolation
>>> predict(lut, get_space("mbv2"), arch)             # stem + sum of blocks + head, in ms

A LUT entry is keyed by everything that changes a block's cost: type, input shape (C,H,W), kernel,
expansion, stride, SE, output channels and activation. Block shapes depend only on the block's
position in the skeleton (first of its stage or not), never on which earlier blocks were skipped, so a
few networks (one per per-block choice) cover every key.
"""
from __future__ import annotations

import json
import os
import statistics
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

from .errors import InputError

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
    with torch.inference_mode():
        for _ in range(warmup):
            fn(x)
        out = []
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
            for _ in range(repeats):
                start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                start.record()
                fn(x)
                end.record()
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
    """Export ``model`` to a temporary ONNX file and time onnxruntime's CPUExecutionProvider on it."""
    import numpy as np
    import onnxruntime as ort
    import torch

    from train.export import export_onnx

    _check_counts(warmup, repeats, batch, resolution)
    if threads is not None and (not isinstance(threads, int) or threads < 1):
        raise InputError(f"threads {threads!r}; accepted: a whole number, 1 or more")
    n_threads = threads or torch.get_num_threads()
    model = model.cpu()
    with tempfile.TemporaryDirectory(prefix="mote_lat_") as tmp:
        path = Path(tmp) / "model.onnx"
        export_onnx(model, path, resolution, check=False)
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


def table_latency(path, device: str, space=None):
    """NB201's per-device table (``../shared/data/nb201/latency_ms.csv``): a callable arch -> ms."""
    from search_spaces import get_space

    from .constraints import LatencyTable
    return LatencyTable(path, device, space if space is not None else get_space("nb201"))


# -- the per-block lookup table -------------------------------------------------------------------------
def _act_name(space, relu: bool) -> str:
    return "relu" if relu else space.cfg.act


def block_key(space, b, c: int, h: int, w: int) -> str:
    """The LUT key of one BlockPlan with input shape (c, h, w)."""
    return (f"{b.kind}|in{c}x{h}x{w}|k{b.kernel}|e{float(b.expansion):g}|s{b.stride}|se{int(bool(b.se))}"
            f"|out{b.out_chs}|{_act_name(space, b.relu)}")


def _stem_key(space, stem: int, res: int, stride: int) -> str:
    return f"stem|in3x{res}x{res}|s{stride}|out{stem}|{space.cfg.act}"


def _head_key(space, c: int, h: int, w: int, feats: int, num_classes: int) -> str:
    return f"head|{space.cfg.head}|in{c}x{h}x{w}|feat{feats}|cls{num_classes}"


def _block_space(space):
    from search_spaces import BlockSpace
    if not isinstance(space, BlockSpace):
        raise InputError(f"a latency LUT needs a block space (mbv2, mbv3); got {getattr(space, 'name', space)!r}")
    return space


def covering_archs(space) -> list[tuple]:
    """Networks that together contain every (position, choice): network j uses choice j in every slot;
    the space's preset is added, since its blocks may lie outside the choices (mbv3's e2.3, e2.5)."""
    slots = space.slot_choices(None)
    choices = [c for c in slots[0] if c != "skip"]
    archs = [tuple(c for _ in slots) for c in choices]
    preset = tuple(space.from_str(space.default_arch()))
    return archs + ([preset] if preset not in archs else [])


def _lut_spatial(space, reduced: bool, resolution: int) -> tuple[int, int]:
    from search_spaces.block_space import stride_out
    stem_stride = 1 if reduced else 2
    return stem_stride, stride_out(resolution, 3, stem_stride)


def build_lut(space, device="cpu", resolution: int | None = None, reduced: bool = False, warmup: int = 5,
              repeats: int = 20, batch: int = 1, threads: int | None = None, num_classes: int | None = None,
              rounds: int = 1, progress=None) -> dict:
    """Time every distinct block configuration of ``space`` in isolation (plus stem and head).

    Each entry is the median of ``repeats`` timed calls; with ``rounds`` > 1 the whole pass is repeated and
    each entry keeps its smallest median, which discounts bursts of contention on a shared machine.
    """
    import torch
    space = _block_space(space)
    resolution = resolution or space.default_resolution(reduced)
    _check_counts(warmup, repeats, batch, resolution)
    if not isinstance(rounds, int) or rounds < 1:
        raise InputError(f"rounds {rounds!r}; accepted: a whole number, 1 or more")
    num_classes = num_classes or space.num_classes
    dev = _resolve_device(device)
    entries: dict[str, dict] = {}
    t0 = time.perf_counter()

    def timed(key, fn, x):
        if key in seen:
            return
        seen.add(key)
        rec = _summary(time_callable(fn, x, dev, warmup, repeats))
        old = entries.get(key)
        if old is None or rec["median_ms"] < old["median_ms"]:
            entries[key] = {"median_ms": rec["median_ms"], "p10_ms": rec["p10_ms"], "p90_ms": rec["p90_ms"]}

    archs = covering_archs(space) * rounds
    seen: set = set()
    with _threads(threads), torch.inference_mode():
        used_threads = torch.get_num_threads()
        for n, arch in enumerate(archs):
            if n % (len(archs) // rounds) == 0:
                seen = set()  # a new round: every key is timed again
            model = space.build(arch, num_classes=num_classes, reduced=reduced).eval().to(dev)
            stem_c, plans, feats = space.plan(arch, reduced)
            mods = [blk for stage in model.blocks for blk in stage]
            if len(mods) != len(plans):
                raise RuntimeError(f"{space.name}: plan has {len(plans)} blocks, the model {len(mods)}")
            x = torch.randn(batch, 3, resolution, resolution, device=dev)
            stem_fn = lambda t, m=model: m.bn1(m.conv_stem(t))  # noqa: E731
            timed(_stem_key(space, stem_c, resolution, model.conv_stem.stride[0]), stem_fn, x)
            x = stem_fn(x)
            for plan, mod in zip(plans, mods):
                _, c, h, w = x.shape
                timed(block_key(space, plan, c, h, w), mod, x)
                x = mod(x)
            _, c, h, w = x.shape
            if space.cfg.head == "efficientnet":
                head_fn = lambda t, m=model: m.forward_head(m.bn2(m.conv_head(t)))  # noqa: E731
            else:
                head_fn = lambda t, m=model: m.forward_head(t)  # noqa: E731
            timed(_head_key(space, c, h, w, feats, num_classes), head_fn, x)
            if progress:
                progress(n + 1, len(archs), len(entries))
    from .provenance import provenance
    return {
        "format": LUT_FORMAT, "space": space.name,
        "choices": {"kernel": list(space.cfg.kernel_choices), "expansion": [float(e) for e in space.cfg.expansion_choices],
                    "se": list(space.cfg.se_choices)},
        "resolution": resolution, "reduced": reduced, "batch": batch, "num_classes": num_classes,
        "device": str(dev), "threads": used_threads if dev.type == "cpu" else None,
        "warmup": warmup, "repeats": repeats, "rounds": rounds, "statistic": "median_ms",
        "build_seconds": round(time.perf_counter() - t0, 2), "n_entries": len(entries),
        "entries": entries, "provenance": provenance(),
    }


def lut_keys(lut: dict, space, arch) -> list[str]:
    """The LUT keys (stem, blocks..., head) that make up ``arch``'s prediction."""
    from search_spaces.block_space import stride_out
    space = _block_space(space)
    if lut.get("space") != space.name:
        raise InputError(f"the LUT was built for space {lut.get('space')!r}, not {space.name!r}")
    reduced, res = bool(lut["reduced"]), int(lut["resolution"])
    stem_c, plans, feats = space.plan(arch, reduced)
    stem_stride, h = _lut_spatial(space, reduced, res)
    keys = [_stem_key(space, stem_c, res, stem_stride)]
    c = stem_c
    for b in plans:
        keys.append(block_key(space, b, c, h, h))
        c, h = b.out_chs, stride_out(h, b.kernel, b.stride)
    keys.append(_head_key(space, c, h, h, feats, int(lut["num_classes"])))
    return keys


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
    path = Path(path)
    if path.is_dir():
        raise InputError(f"{path} is a directory; give the .json file to write")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(json.dumps(lut, indent=1) + "\n")
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def load_lut(path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise InputError(f"latency LUT {path} does not exist; build one with `mote latency-lut --space S --out {path}`")
    try:
        lut = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise InputError(f"latency LUT {path} is not JSON ({e}); build one with `mote latency-lut`") from None
    if not isinstance(lut, dict) or lut.get("format") != LUT_FORMAT or "entries" not in lut:
        raise InputError(f"{path} is not a latency LUT (expected format {LUT_FORMAT!r})")
    return lut


def lut_space(lut: dict):
    """The space a LUT was built for, with the choices it was built with."""
    from search_spaces import get_space
    ch = lut.get("choices") or {}
    kw = {}
    if ch:
        kw = dict(kernel_choices=tuple(ch["kernel"]), expansion_choices=tuple(ch["expansion"]),
                  se_choices=tuple(bool(s) for s in ch["se"]))
    return get_space(lut["space"], **kw)
