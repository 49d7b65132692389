"""ONNX export with a parity check: the file is only put in place once onnxruntime agrees with PyTorch.

``export_onnx(model, "model.onnx")`` exports with a dynamic batch axis (opset 17 by default), runs the
ONNX checker, then feeds the same random images to onnxruntime and to the PyTorch model at two batch
sizes and reports the largest difference. The file appears at ``path`` atomically: a failed export or a
failed parity check leaves whatever was there before untouched.
"""
from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

from mobile_mote.atomic import atomic_path
from mobile_mote.errors import InputError
from mobile_mote.onnx_io import INPUT_NAME, OUTPUT_NAME, write_onnx

RTOL = 1e-4  # parity: max |onnx - torch| <= RTOL * max(1, max |torch|)


class ExportError(RuntimeError):
    """The export ran but onnxruntime disagrees with PyTorch; ``report`` holds the numbers."""

    def __init__(self, message: str, report: dict):
        super().__init__(message)
        self.report = report


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _metadata(model) -> dict:
    cfg = getattr(model, "pretrained_cfg", None) or {}
    keep = ("architecture", "input_size", "interpolation", "crop_pct", "mean", "std", "num_classes")
    return {k: json.dumps(cfg[k]) if not isinstance(cfg[k], str) else cfg[k] for k in keep if cfg.get(k) is not None}


def export_onnx(model, path, resolution: int = 224, opset: int = 17, check: bool = True,
                batch_sizes: tuple[int, ...] = (1, 3), seed: int = 0) -> dict:
    """Export ``model`` (a module, a MOTE/timm name or a winner.json path) to ``path``; returns a report.

    The report holds the opset, input/output names and shapes, the parity numbers (``max_abs_diff``,
    ``max_rel_diff`` relative to the largest PyTorch logit, ``tolerance``, ``ok``), file size and sha256.
    Raises InputError for bad arguments and ExportError when the parity check fails.
    """
    import onnx
    import torch

    if not isinstance(resolution, int) or isinstance(resolution, bool) or resolution < 8:
        raise InputError(f"resolution {resolution!r}; accepted: a whole number of pixels, 8 or more")
    if not isinstance(opset, int) or not 11 <= opset <= 23:
        raise InputError(f"opset {opset!r}; accepted: 11..23 (17 recommended)")
    if not isinstance(model, torch.nn.Module):
        from .models import create_model, register_presets
        register_presets()  # a preset name is accepted as well as a winner.json or a timm name
        model = create_model(model)
    path = Path(path)
    if path.is_dir():
        raise InputError(f"{path} is a directory; give the .onnx file to write")
    path.parent.mkdir(parents=True, exist_ok=True)

    was_training = model.training
    model.eval()
    try:
        param = next(model.parameters(), None)
        device = param.device if param is not None else torch.device("cpu")
        gen = torch.Generator().manual_seed(seed)
        in_chans = int((getattr(model, "pretrained_cfg", None) or {}).get("input_size", (3,))[0])
        dummy = torch.randn(1, in_chans, resolution, resolution, generator=gen).to(device)
        t0 = time.perf_counter()
        # the file appears at `path` only when the block ends normally (after the parity check)
        with atomic_path(path) as tmp:
            exporter = write_onnx(model, dummy, tmp, opset)
            proto = onnx.load(str(tmp))
            for k, v in _metadata(model).items():
                entry = proto.metadata_props.add()
                entry.key, entry.value = k, v
            proto.producer_name = "mobile_mote"
            onnx.save(proto, str(tmp))
            onnx.checker.check_model(str(tmp))
            report = {"path": str(path), "exporter": exporter, "opset": opset, "resolution": resolution,
                      "input": {"name": INPUT_NAME, "shape": ["batch", in_chans, resolution, resolution]},
                      "output": {"name": OUTPUT_NAME}, "dynamic_batch": True,
                      "export_seconds": round(time.perf_counter() - t0, 3)}
            if check:
                report.update(_parity(model, tmp, in_chans, resolution, batch_sizes, gen, device))
                if not report["ok"]:
                    raise ExportError(f"onnxruntime disagrees with PyTorch: max |diff| {report['max_abs_diff']:.3g} "
                                      f"> tolerance {report['tolerance']:.3g}", report)
            else:
                report.update(ok=None, max_abs_diff=None, max_rel_diff=None)
            report["bytes"] = tmp.stat().st_size
            report["sha256"] = _sha256(tmp)
    finally:
        model.train(was_training)
    return report


def _parity(model, onnx_path: Path, in_chans: int, resolution: int, batch_sizes, gen, device) -> dict:
    import numpy as np
    import onnxruntime as ort
    import torch

    so = ort.SessionOptions()
    so.intra_op_num_threads = max(1, torch.get_num_threads())
    so.log_severity_level = 3
    sess = ort.InferenceSession(str(onnx_path), so, providers=["CPUExecutionProvider"])
    max_abs, max_ref, shapes = 0.0, 0.0, []
    for b in batch_sizes:
        x = torch.randn(b, in_chans, resolution, resolution, generator=gen)
        with torch.no_grad():
            ref = model(x.to(device)).float().cpu().numpy()
        got = sess.run([OUTPUT_NAME], {INPUT_NAME: x.numpy()})[0]
        if got.shape != ref.shape:
            return {"ok": False, "max_abs_diff": float("inf"), "max_rel_diff": float("inf"), "tolerance": 0.0,
                    "parity_batches": list(batch_sizes), "error": f"shape {got.shape} != {ref.shape}"}
        shapes.append(list(got.shape))
        max_abs = max(max_abs, float(np.abs(got - ref).max()))
        max_ref = max(max_ref, float(np.abs(ref).max()))
    tol = RTOL * max(1.0, max_ref)
    return {"ok": bool(max_abs <= tol), "max_abs_diff": max_abs, "max_rel_diff": max_abs / max(max_ref, 1e-12),
            "max_abs_logit": max_ref, "tolerance": tol, "parity_batches": list(batch_sizes),
            "output_shapes": shapes, "onnxruntime": ort.__version__}
