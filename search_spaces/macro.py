"""NAS-Bench-Macro (Su et al., CVPR 2021): 8 searchable layers x 3 choices = 6,561 CIFAR-10 networks.

An architecture is the benchmark's own key, 8 digits, one per layer: 0 = identity (``id``),
1 = MB block kernel 3 expansion 3 (``k3e3``), 2 = MB block kernel 5 expansion 6 (``k5e6``); e.g.
``"22212220"``. The readable form is the same 8 choices as comma-separated names
(``"k5e6,k5e6,k5e6,k3e3,k5e6,k5e6,k5e6,id"``).

Skeleton (``macro_net``): stem 3x3 conv 32 + BN + ReLU; stages of 2/3/3 layers at 32->64->128->256
channels, the first layer of each stage with stride 2 (there ``id`` is a 1x1 stride-2 conv + BN, no
ReLU); MB = pw 1x1 + BN + ReLU, depthwise kxk + BN + ReLU, pw-linear 1x1 + BN, residual when the shapes
match; head 1x1 conv 1280 + BN + ReLU, global pool, linear. Convs have no bias; the linear layer has one.
Resolution 32, 10 classes. (Benchmark recipe: SGD 0.1, momentum 0.9, wd 5e-4, cosine, 50 epochs,
batch 256, crop + flip.)

Costs against the benchmark (``nas-bench-macro_cifar10.json``), checked for all 6,561 keys:

* ``params(arch) == row.params`` exactly (BN affine parameters and the linear bias included);
* ``macs(arch) == row.flops`` exactly: the benchmark's "flops" are multiply-accumulates of the convs
  and the linear layer (biases, BN, ReLU, pooling and the residual adds not counted), the same
  convention as ``macs`` here, so the relation is the identity ``flops = macs``.

The benchmark trained only 3,969 distinct networks: within a stage, identities after the first layer
were moved to the end of the stage (same shapes, so the same costs) and the key shares that network's
row (``mobile_mote.benchmarks.macro.benchmark_key``).
"""
from __future__ import annotations

import itertools
from typing import Iterator

import numpy as np

from .base import ArchError, SearchSpace

# Layer choices (kernel, expansion; None = identity) and the skeleton's stage depths.
LAYER_OPS: dict[str, tuple[int, int] | None] = {"id": None, "k3e3": (3, 3), "k5e6": (5, 6)}
STAGE_DEPTHS: tuple[int, ...] = (2, 3, 3)

OPS: tuple[str, ...] = tuple(LAYER_OPS)  # digit d of a key is OPS[d]
N_LAYERS = sum(STAGE_DEPTHS)
_FIRST_IN_STAGE = tuple(j == 0 for d in STAGE_DEPTHS for j in range(d))
_X_COLS = ("input", "output") + OPS
_ACCEPTED = (f"accepted: {N_LAYERS} digits 0/1/2 (0 = id, 1 = k3e3, 2 = k5e6), e.g. '22212220', "
             f"or {N_LAYERS} comma-separated names among id, k3e3, k5e6")


class MacroSpace(SearchSpace):
    """Architectures as tuples of 8 op names (``OPS``); the canonical string is the benchmark key."""

    name = "macro"
    ops = OPS
    reduced_rule = ("same 8 layers and ops, every width halved (stem 16, stages 32/64/128, head 640; "
                    "MB hidden = input channels x expansion), 32x32 input, same number of classes")

    def __init__(self, stem_channels: int = 32, head_features: int = 1280, reduced_stem_channels: int = 16,
                 reduced_head_features: int = 640, num_classes: int = 10, resolution: int = 32):
        self.stem_channels, self.head_features = stem_channels, head_features
        self.reduced_stem_channels, self.reduced_head_features = reduced_stem_channels, reduced_head_features
        self.num_classes, self.resolution = num_classes, resolution

    # -- strings ---------------------------------------------------------------------------
    def to_str(self, arch) -> str:
        return "".join(str(OPS.index(op)) for op in self._parse(arch))

    def readable(self, arch) -> str:
        return ",".join(self._parse(arch))

    def from_str(self, text) -> tuple[str, ...]:
        if isinstance(text, (tuple, list)):
            ops = tuple(self._token(t, text) for t in text)
        elif isinstance(text, str):
            s = text.strip()
            if "," in s:
                ops = tuple(self._token(t.strip(), text) for t in s.split(","))
            elif s and all(ch in "012" for ch in s):
                ops = tuple(OPS[int(ch)] for ch in s)
            else:
                raise ArchError(f"macro: {text!r} is not an architecture; {_ACCEPTED}")
        else:
            raise ArchError(f"macro: expected an architecture string, got {type(text).__name__}; {_ACCEPTED}")
        if len(ops) != N_LAYERS:
            raise ArchError(f"macro: {text!r} has {len(ops)} layer(s), the space has {N_LAYERS}; {_ACCEPTED}")
        return ops

    @staticmethod
    def _token(t, whole) -> str:
        if isinstance(t, str) and t in LAYER_OPS:
            return t
        if isinstance(t, (int, np.integer)) and not isinstance(t, bool) and 0 <= int(t) < len(OPS):
            return OPS[int(t)]
        if isinstance(t, str) and len(t) == 1 and t in "012":
            return OPS[int(t)]
        raise ArchError(f"macro: layer {t!r} of {whole!r} is not an operation; {_ACCEPTED}")

    # -- the generic machinery ---------------------------------------------------------------
    def slot_choices(self, arch) -> list[tuple[str, ...]]:
        return [OPS] * N_LAYERS

    def _ops(self, arch) -> tuple:
        return tuple(arch)

    def _with_ops(self, arch, ops: tuple):
        return tuple(ops)

    def _op_cost_order(self, op) -> int:
        return OPS.index(op)  # id < k3e3 < k5e6 in both MACs and params, at every layer

    def default_arch(self) -> str:
        return "2" * N_LAYERS

    def network_key(self, arch) -> str:
        """Identities after a stage's first layer compute nothing (same shapes in and out), so they
        commute with the stage's other layers: moved to the end of their stage, the 6,561 keys name
        3,969 distinct networks (the ones the benchmark trained)."""
        key, out, i = self.canonical(arch), [], 0
        for depth in STAGE_DEPTHS:
            first, rest = key[i], key[i + 1:i + depth]
            kept = [d for d in rest if d != "0"]
            out.append(first + "".join(kept) + "0" * (len(rest) - len(kept)))
            i += depth
        return "".join(out)

    def encode(self, arch) -> tuple[np.ndarray, np.ndarray]:
        """A chain DAG: input, one node per layer, output; identity is an operation."""
        ops = self._parse(arch)
        n = N_LAYERS + 2
        A = np.eye(n, k=1, dtype=np.float32)
        X = np.zeros((n, len(_X_COLS)), dtype=np.float32)
        X[0, 0] = X[-1, 1] = 1
        for i, op in enumerate(ops):
            X[i + 1, 2 + OPS.index(op)] = 1
        return A, X

    def enumerate(self) -> Iterator[str]:
        """All 6,561 keys in increasing order ("00000000", "00000001", ..., "22222222")."""
        for digits in itertools.product("012", repeat=N_LAYERS):
            yield "".join(digits)

    def size(self) -> int:
        return len(OPS) ** N_LAYERS

    # -- models and costs ----------------------------------------------------------------------
    def _widths(self, reduced: bool) -> tuple[int, int]:
        if reduced:
            return self.reduced_stem_channels, self.reduced_head_features
        return self.stem_channels, self.head_features

    def build(self, arch, num_classes: int | None = None, reduced: bool = False):
        ops = self._parse(arch)
        stem, head = self._widths(reduced)
        from .macro_net import MacroNetwork  # torch, only when a model is built
        return MacroNetwork(ops, num_classes or self.num_classes, stem, head)

    def cost(self, arch, resolution: int | None = None, num_classes: int | None = None,
             reduced: bool = False) -> tuple[int, int]:
        """(MACs, params) of ``build(arch, num_classes, reduced)`` at ``resolution``."""
        ops = self._parse(arch)
        r = resolution or self.default_resolution(reduced)
        if r < 8:
            raise ArchError(f"macro: resolution {r} is too small; accepted: 8 pixels or more (32 for CIFAR-10)")
        nc = num_classes or self.num_classes
        c, feats = self._widths(reduced)
        h = r
        macs = 27 * c * h * h
        params = 27 * c + 2 * c
        for op, first in zip(ops, _FIRST_IN_STAGE):
            c_out, stride = (2 * c, 2) if first else (c, 1)
            h_out = (h - 1) // stride + 1  # padding k // 2: the same for 1x1, 3x3 and 5x5
            spec = LAYER_OPS[op]
            if spec is None:
                if first:
                    macs += c * c_out * h_out * h_out
                    params += c * c_out + 2 * c_out
            else:
                k, e = spec
                mid = c * e
                macs += c * mid * h * h + k * k * mid * h_out * h_out + mid * c_out * h_out * h_out
                params += c * mid + 2 * mid + k * k * mid + 2 * mid + mid * c_out + 2 * c_out
            c, h = c_out, h_out
        macs += c * feats * h * h + feats * nc
        params += c * feats + 2 * feats + feats * nc + nc
        return macs, params

    def macs(self, arch, resolution=None, num_classes=None, reduced=False) -> int:
        return self.cost(arch, resolution, num_classes, reduced)[0]

    def params(self, arch, num_classes=None, reduced=False) -> int:
        return self.cost(arch, None, num_classes, reduced)[1]
