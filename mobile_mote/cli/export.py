"""`mote export`: a MOTE / timm model (optionally with trained weights) to ONNX, checked by onnxruntime."""
from __future__ import annotations

import json
import sys

from ..errors import InputError


def _export(args) -> int:
    import torch

    from mobile_mote import train
    from mobile_mote.train.export import ExportError, export_onnx
    from mobile_mote.train.models import load_weights

    if args.resolution < 8:
        raise InputError(f"--resolution {args.resolution}; accepted: 8 pixels or more")
    if args.num_classes is not None and args.num_classes < 1:
        raise InputError(f"--num-classes {args.num_classes}; accepted: 1 or more")
    if args.threads < 0:
        raise InputError(f"--threads {args.threads}; accepted: 1 or more CPU threads (0: torch's choice)")
    if args.threads:
        torch.set_num_threads(args.threads)
    train.register_presets()  # --model may name a preset
    name = train.resolve_model_name(args.model)
    kwargs = {} if args.num_classes is None else {"num_classes": args.num_classes}
    model = train.create_model(name, **kwargs)
    weights = "random init"
    if args.checkpoint:
        weights = f"{args.checkpoint} ({load_weights(model, args.checkpoint, use_ema=not args.no_ema)})"
    try:
        report = export_onnx(model, args.out, resolution=args.resolution, opset=args.opset, check=not args.no_check)
    except ExportError as e:
        print(json.dumps({"model": name, "weights": weights, **e.report}, default=str))
        print(f"mote export: error: {e}; nothing written to {args.out}", file=sys.stderr)
        return 1
    print(json.dumps({"model": name, "weights": weights, **report}, default=str))
    return 0


def register(sub) -> None:
    e = sub.add_parser(
        "export", help="export a model to ONNX (dynamic batch) and check it against onnxruntime",
        description="Export a registered MOTE model, a search's winner.json or any timm model to ONNX with a "
                    "dynamic batch axis; onnxruntime must agree with PyTorch before the file is written. "
                    "Prints one JSON line with the parity numbers.")
    e.add_argument("--model", required=True, help="mote_<name>, a preset (mobilenetv2_100, mobilenetv3_large_100), "
                                                   "a winner.json path (or runs/<name>/) or a timm model")
    e.add_argument("--checkpoint", default=None,
                   help="trained weights (.pth/.pth.tar/.safetensors); default: random init")
    e.add_argument("--no-ema", action="store_true",
                   help="take the raw weights even when the checkpoint has EMA weights")
    e.add_argument("--num-classes", type=int, default=None,
                   help="classifier size of the checkpoint (default: the model's)")
    e.add_argument("--out", required=True, help="the .onnx file to write")
    e.add_argument("--opset", type=int, default=17, help="ONNX opset (default 17)")
    e.add_argument("--resolution", type=int, default=224,
                   help="input side in pixels for the trace and the check (default 224)")
    e.add_argument("--no-check", action="store_true", help="skip the onnxruntime parity check")
    e.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's choice)")
    e.set_defaults(func=_export)
