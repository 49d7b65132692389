"""NAS-Bench-201: 6 edges x 5 operations = 15,625 cells."""
from __future__ import annotations

import itertools
import re
from typing import Iterator

import numpy as np

from .base import ArchError, SearchSpace

# Canonical edge order of the NB201 string |a~0|+|b~0|c~1|+|d~0|e~1|f~2|: (to_node, from_node).
EDGES: tuple[tuple[int, int], ...] = ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))

OPS: tuple[str, ...] = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
_CONV_K = {"nor_conv_1x1": 1, "nor_conv_3x3": 3}
_EDGE_RE = re.compile(r"^\|([a-z_0-9]+)~(\d)\|$")

# (A, X) with operations on nodes: input, the 6 edge-ops, output.
_N_NODES = len(EDGES) + 2
_X_COLS = ("input", "output") + OPS


def _adjacency() -> np.ndarray:
    A = np.zeros((_N_NODES, _N_NODES), dtype=np.float32)
    out = _N_NODES - 1
    for k, (to, frm) in enumerate(EDGES):
        node = k + 1
        if frm == 0:
            A[0, node] = 1
        for k2, (to2, _) in enumerate(EDGES):
            if to2 == frm:
                A[k2 + 1, node] = 1
        if to == 3:
            A[node, out] = 1
    return A


_A = _adjacency()

class NB201Space(SearchSpace):
    """Cells as tuples of 6 op names in the order of the NB201 string.

    The NB201 index of a cell is the benchmark's own (a fixed, arbitrary order); its reader
    (``mobile_mote.benchmarks.nb201.NB201Index``) translates, the space never reads a table.
    """

    name = "nb201"
    ops = OPS

    def __init__(self, channels: int = 16, cells_per_stage: int = 5, reduced_channels: int = 32,
                 num_classes: int = 10, resolution: int = 32):
        self.channels = channels
        self.cells_per_stage = cells_per_stage
        self.reduced_channels = reduced_channels
        self.num_classes = num_classes
        self.resolution = resolution

    # -- strings ---------------------------------------------------------------------
    def to_str(self, arch) -> str:
        ops = self._parse(arch)
        nodes = []
        for to in (1, 2, 3):
            nodes.append("|" + "|".join(f"{ops[k]}~{frm}" for k, (t, frm) in enumerate(EDGES) if t == to) + "|")
        return "+".join(nodes)

    def from_str(self, text) -> tuple[str, ...]:
        if isinstance(text, (tuple, list)):
            ops = tuple(text)
            self._check_ops(ops, repr(text))
            return ops
        if not isinstance(text, str):
            raise ArchError(f"nb201: expected a cell string, got {type(text).__name__}")
        s = text.strip()
        groups = s.split("+")
        if len(groups) != 3:
            raise ArchError(f"nb201: {text!r} is not a cell; expected "
                            "'|op~0|+|op~0|op~1|+|op~0|op~1|op~2|' with op in " + ", ".join(OPS))
        ops = []
        for to, group in enumerate(groups, start=1):
            parts = [p for p in group.split("|") if p]
            if len(parts) != to or not group.startswith("|") or not group.endswith("|"):
                raise ArchError(f"nb201: node {to} of {text!r} must list {to} edge(s) as |op~j|; "
                                "expected '|op~0|+|op~0|op~1|+|op~0|op~1|op~2|'")
            for frm, part in enumerate(parts):
                m = _EDGE_RE.match(f"|{part}|")
                if not m or int(m.group(2)) != frm:
                    raise ArchError(f"nb201: edge {part!r} of {text!r} must read op~{frm}")
                ops.append(m.group(1))
        ops = tuple(ops)
        self._check_ops(ops, repr(text))
        return ops

    @staticmethod
    def _check_ops(ops: tuple, what: str) -> None:
        if len(ops) != len(EDGES):
            raise ArchError(f"nb201: {what} has {len(ops)} operations, a cell has 6")
        bad = [o for o in ops if o not in OPS]
        if bad:
            raise ArchError(f"nb201: unknown operation(s) {bad} in {what}; accepted: " + ", ".join(OPS))

    # -- the generic machinery --------------------------------------------------------
    def slot_choices(self, arch) -> list[tuple[str, ...]]:
        return [OPS] * len(EDGES)

    def _ops(self, arch) -> tuple:
        return tuple(arch)

    def _with_ops(self, arch, ops: tuple):
        return tuple(ops)

    def default_arch(self) -> str:
        return self.to_str(("nor_conv_3x3",) * 6)

    reduced_rule = ("stem 3x3 conv to 32 channels + BN, one cell at full resolution, 4x4 average pooling, "
                    "one cell, global pooling, linear (32 channels throughout)")

    def _op_cost_order(self, op):
        return OPS.index(op)  # none first: no MACs, no params

    def encode(self, arch) -> tuple[np.ndarray, np.ndarray]:
        ops = self._parse(arch)
        X = np.zeros((_N_NODES, len(_X_COLS)), dtype=np.float32)
        X[0, 0] = 1
        X[-1, 1] = 1
        for k, op in enumerate(ops):
            X[k + 1, 2 + OPS.index(op)] = 1
        return _A.copy(), X

    def enumerate(self) -> Iterator[str]:
        for ops in itertools.product(OPS, repeat=len(EDGES)):
            yield self.to_str(ops)

    def size(self) -> int:
        return len(OPS) ** len(EDGES)

    # -- models and costs ---------------------------------------------------------------
    def build(self, arch, num_classes: int | None = None, reduced: bool = False):
        from .nb201_net import NB201Network, ReducedNB201  # torch, only when a model is built
        ops = self._parse(arch)
        nc = num_classes or self.num_classes
        if reduced:
            return ReducedNB201(ops, nc, self.reduced_channels)
        return NB201Network(ops, nc, self.channels, self.cells_per_stage)

    @staticmethod
    def _cell_cost(ops: tuple, c: int, hw: int) -> tuple[int, int]:
        macs = params = 0
        for op in ops:
            if op in _CONV_K:
                k = _CONV_K[op]
                macs += k * k * c * c * hw
                params += k * k * c * c + 2 * c
        return macs, params

    def _cost(self, ops: tuple, resolution: int, num_classes: int, reduced: bool) -> tuple[int, int]:
        r = resolution
        if reduced:
            c = self.reduced_channels
            macs, params = 27 * c * r * r, 27 * c + 2 * c
            for hw in (r * r, (r // 4) ** 2):
                m, p = self._cell_cost(ops, c, hw)
                macs, params = macs + m, params + p
            return macs + c * num_classes, params + c * num_classes + num_classes
        c = self.channels
        macs, params = 27 * c * r * r, 27 * c + 2 * c
        for stage in range(3):
            if stage > 0:
                r = (r + 1) // 2
                hw = r * r
                macs += 9 * c * 2 * c * hw + 9 * 4 * c * c * hw + c * 2 * c * hw
                params += 9 * c * 2 * c + 4 * c + 9 * 4 * c * c + 4 * c + 2 * c * c
                c *= 2
            m, p = self._cell_cost(ops, c, r * r)
            macs, params = macs + self.cells_per_stage * m, params + self.cells_per_stage * p
        params += 2 * c  # last BN
        return macs + c * num_classes, params + c * num_classes + num_classes

    def macs(self, arch, resolution=None, num_classes=None, reduced=False) -> int:
        res = resolution or self.default_resolution(reduced)
        if res < 4 or res % 4:
            # Two stride-2 reductions (full) or the 4x4 pooling (reduced) need a multiple of 4.
            raise ArchError(f"nb201: resolution {res} is not accepted; use a multiple of 4 (32 for CIFAR, 16 for "
                            "ImageNet16-120)")
        return self._cost(self._parse(arch), res, num_classes or self.num_classes, reduced)[0]

    def params(self, arch, num_classes=None, reduced=False) -> int:
        return self._cost(self._parse(arch), self.default_resolution(reduced),
                          num_classes or self.num_classes, reduced)[1]
