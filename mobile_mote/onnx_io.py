"""A PyTorch model written as an ONNX graph: the one ``torch.onnx.export`` call shared by ``mote export``
(``train.export``, which adds metadata and a parity check) and the onnxruntime latency measurement
(``mobile_mote.efficiency.latency.measure_onnxruntime``).

The graph has one input ``input`` and one output ``logits``, both with a dynamic batch axis.
"""
from __future__ import annotations

import warnings
from pathlib import Path

INPUT_NAME = "input"
OUTPUT_NAME = "logits"


def write_onnx(model, dummy, path: str | Path, opset: int = 17) -> str:
    """Trace ``model`` (in eval mode, without gradients) on ``dummy`` and write the graph to ``path``.

    Returns the exporter used; the model's training mode is restored afterwards."""
    import torch
    kw = dict(input_names=[INPUT_NAME], output_names=[OUTPUT_NAME], opset_version=opset,
              dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}}, do_constant_folding=True)
    was_training = model.training
    model.eval()
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # the TorchScript exporter announces its deprecation
            try:
                torch.onnx.export(model, (dummy,), str(path), dynamo=False, **kw)
            except TypeError:  # a torch without the `dynamo` switch: the TorchScript exporter is the only one
                torch.onnx.export(model, (dummy,), str(path), **kw)
    finally:
        model.train(was_training)
    return "torchscript"
