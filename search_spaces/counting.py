"""MACs and parameters: the analytic counters and the two tracing cross-checks.

Convention (DESIGN.md): multiply-accumulates of conv and linear layers, SE convs
included, biases, BN, activations, pooling and element-wise ops excluded.
"""
from __future__ import annotations

from typing import Sequence

from .blocks import BlockPlan, make_divisible, stride_out


def count_block_plan(stem: int, blocks: Sequence[BlockPlan], feats: int, head: str, resolution: int,
                     num_classes: int, stem_stride: int = 2) -> tuple[int, int]:
    """(MACs, params) of a block-space network, mirroring timm's layer shapes."""
    h = stride_out(resolution, 3, stem_stride)
    macs = 27 * stem * h * h
    params = 27 * stem + 2 * stem
    for b in blocks:
        h_out = stride_out(h, b.kernel, b.stride)
        hw_in, hw_out = h * h, h_out * h_out
        if b.kind == "ds":
            macs += b.kernel ** 2 * b.in_chs * hw_out + b.in_chs * b.out_chs * hw_out
            params += b.kernel ** 2 * b.in_chs + 2 * b.in_chs + b.in_chs * b.out_chs + 2 * b.out_chs
            mid = b.in_chs
        elif b.kind == "ir":
            mid = make_divisible(b.in_chs * b.expansion)
            macs += b.in_chs * mid * hw_in + b.kernel ** 2 * mid * hw_out + mid * b.out_chs * hw_out
            params += b.in_chs * mid + 2 * mid + b.kernel ** 2 * mid + 2 * mid + mid * b.out_chs + 2 * b.out_chs
        elif b.kind == "cn":
            macs += b.kernel ** 2 * b.in_chs * b.out_chs * hw_out
            params += b.kernel ** 2 * b.in_chs * b.out_chs + 2 * b.out_chs
            mid = 0
        else:
            raise ValueError(f"unknown block kind {b.kind!r}")
        if b.se:
            rd = make_divisible(mid * 0.25)
            macs += 2 * mid * rd
            params += 2 * mid * rd + rd + mid
        h = h_out
    c = blocks[-1].out_chs
    if head == "efficientnet":  # conv 1x1 -> BN-act -> pool -> linear
        macs += c * feats * h * h
        params += c * feats + 2 * feats
    else:  # MobileNetV3: pool -> conv 1x1 with bias -> act -> linear
        macs += c * feats
        params += c * feats + feats
    macs += feats * num_classes
    params += feats * num_classes + num_classes
    return macs, params


def _dummy(model, resolution: int):
    import torch
    p = next(model.parameters())
    return torch.zeros(1, 3, resolution, resolution, device=p.device, dtype=p.dtype)


def fvcore_macs(model, resolution: int) -> int:
    """fvcore's count with BN and pooling handlers zeroed (its conv/linear counts are MACs)."""
    from fvcore.nn import FlopCountAnalysis

    import warnings

    model = model.eval()
    warnings.filterwarnings("ignore", message=".*torch.jit.*", category=FutureWarning)
    # The JIT tracer drops layers whose output never reaches the model's output (an NB201 cell
    # whose node feeds only 'none' edges), yet eager mode runs them: trace them as outputs too.
    fca = FlopCountAnalysis(_all_outputs(model), _dummy(model, resolution))
    zero = lambda inputs, outputs: 0  # noqa: E731
    for op in ("aten::batch_norm", "aten::adaptive_avg_pool2d", "aten::avg_pool2d", "aten::mean",
               "aten::upsample_nearest2d", "aten::upsample_bilinear2d", "aten::group_norm", "aten::layer_norm",
               "aten::instance_norm"):
        fca.set_op_handle(op, zero)
    fca.unsupported_ops_warnings(False)
    fca.uncalled_modules_warnings(False)
    return int(fca.total())


def _all_outputs(model):
    """``model`` returning every leaf module's output beside its own, so none is dead code."""
    import torch
    from torch import nn

    class AllOutputs(nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.model = inner

        def forward(self, x):
            outs = []
            leaves = [m for m in self.model.modules() if next(m.children(), None) is None]
            hooks = [m.register_forward_hook(lambda _m, _i, o: outs.append(o)) for m in leaves]
            try:
                y = self.model(x)
            finally:
                for h in hooks:
                    h.remove()
            return (y, *[o for o in outs if torch.is_tensor(o)])

    return AllOutputs(model).eval()


def ptflops_macs(model, resolution: int) -> int:
    """ptflops with the aten backend (always passed explicitly: its default differs by version)."""
    import contextlib
    import io

    from ptflops import get_model_complexity_info

    model = model.eval()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        macs, _ = get_model_complexity_info(model, (3, resolution, resolution), backend="aten",
                                            as_strings=False, print_per_layer_stat=False, verbose=False)
    return int(macs)


def torch_params(model) -> int:
    return sum(p.numel() for p in model.parameters())
