"""One built block of a MobileNet-style network as plain data, and timm's spatial arithmetic: the unit
the block spaces plan with and the analytic counter reads (neither module imports the other)."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class BlockPlan:
    """One built block, the unit both the timm builder and the analytic counter read."""
    kind: str  # "ds", "ir" or "cn"
    kernel: int
    stride: int
    in_chs: int
    out_chs: int
    expansion: float = 1.0
    se: bool = False
    relu: bool = False


def stride_out(size: int, kernel: int, stride: int) -> int:
    pad = ((stride - 1) + (kernel - 1)) // 2  # timm's symmetric padding for pad_type ''
    return (size + 2 * pad - kernel) // stride + 1



def make_divisible(v, divisor: int = 8, min_value=None, round_limit: float = 0.9) -> int:
    """timm's channel rounding (``timm.layers.make_divisible``, the same arithmetic, tested equal): kept
    here so that counting a candidate's cost never imports torch."""
    min_value = min_value or divisor
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    if new_v < round_limit * v:  # rounding down never loses more than 10 %
        new_v += divisor
    return new_v
