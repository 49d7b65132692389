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

