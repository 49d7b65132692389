"""MobileNetV2/V3-style block spaces: one implementation, configurations as data.

An architecture is the list of searchable inverted-residual blocks of a fixed
skeleton (stages with fixed strides and widths); each block chooses kernel,
expansion and SE, and every block but the first of its stage may be ``skip``
(removed), so depth is searched. Block strings are timm ``arch_def`` strings, so
every candidate is built by timm's own EfficientNet builder.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Union

import numpy as np

from .base import ArchError, SearchSpace
from .blocks import BlockPlan, make_divisible, stride_out
from .counting import count_block_plan

SKIP = "skip"
Op = Union[str, tuple]  # "skip" or (kernel, expansion, se)


@dataclass(frozen=True)
class StageSpec:
    depth: int
    stride: int
    channels: int
    relu: bool = False  # timm's "_nre": ReLU instead of the space's activation


@dataclass(frozen=True)
class BlockSpaceConfig:
    """Everything that distinguishes the MobileNetV2 space from the MobileNetV3 one."""
    name: str
    head: str  # "efficientnet" (conv-BN-act head, then pool) or "mobilenetv3" (pool, then conv head)
    act: str
    stem_size: int
    first_block: str  # fixed timm block string before the searchable stages
    last_block: str | None  # fixed timm block string after them (V3's 1x1 conv to 960)
    stages: tuple[StageSpec, ...]
    preset_name: str
    preset: tuple[tuple[Op, ...], ...]  # per stage, the blocks of the preset network
    num_features: int = 1280
    kernel_choices: tuple[int, ...] = (3, 5, 7)
    expansion_choices: tuple[float, ...] = (2, 4, 6)
    se_choices: tuple[bool, ...] = (False, True)
    se_ratio: float = 0.25
    # The reduced architecture: 32x32 input, stem stride 1 and the first stride-2 stage at
    # stride 1 (total stride 8, so 4x4 before pooling), channels times ``reduced_width``.
    reduced_resolution: int = 32
    reduced_width: float = 0.5
    width_rule: str = "fixed"  # or "equal_cost": one width per space, chosen so the reduced preset costs reduced_target_macs
    reduced_target_macs: float = 25e6
    resolution: int = 224
    num_classes: int = 1000


_MBV2 = BlockSpaceConfig(
    name="mbv2", head="efficientnet", act="relu6", stem_size=32,
    first_block="ds_r1_k3_s1_c16", last_block=None,
    stages=(StageSpec(2, 2, 24), StageSpec(3, 2, 32), StageSpec(4, 2, 64), StageSpec(3, 1, 96),
            StageSpec(3, 2, 160), StageSpec(1, 1, 320)),
    preset_name="mobilenetv2_100",
    preset=tuple(tuple((3, 6, False) for _ in range(d)) for d in (2, 3, 4, 3, 3, 1)),
)

_MBV3 = BlockSpaceConfig(
    name="mbv3", head="mobilenetv3", act="hard_swish", stem_size=16,
    first_block="ds_r1_k3_s1_e1_c16_nre", last_block="cn_r1_k1_s1_c960",
    stages=(StageSpec(2, 2, 24, relu=True), StageSpec(3, 2, 40, relu=True), StageSpec(4, 2, 80),
            StageSpec(2, 1, 112), StageSpec(3, 2, 160)),
    preset_name="mobilenetv3_large_100",
    preset=(((3, 4, False), (3, 3, False)),
            ((5, 3, True),) * 3,
            ((3, 6, False), (3, 2.5, False), (3, 2.3, False), (3, 2.3, False)),
            ((3, 6, True),) * 2,
            ((5, 6, True),) * 3),
)

CONFIGS = {"mbv2": _MBV2, "mbv3": _MBV3}

_BLOCK_RE = re.compile(r"^ir_r1_k(\d+)_s(\d+)_e([0-9.]+)_c(\d+)(_se([0-9.]+))?(_nre)?$")
_SHORT_RE = re.compile(r"^k(\d+)_?e([0-9.]+)(_?se)?$")


def _fmt(x: float) -> str:
    return f"{float(x):g}"


class BlockSpace(SearchSpace):
    def __init__(self, config: BlockSpaceConfig | str = "mbv2", **overrides):
        cfg = CONFIGS[config] if isinstance(config, str) else config
        if overrides:
            for key in ("kernel_choices", "expansion_choices", "se_choices"):
                if key in overrides:
                    overrides[key] = tuple(overrides[key])
            cfg = replace(cfg, **overrides)
        self.cfg = cfg
        self.name = cfg.name
        self.resolution = cfg.resolution
        self.num_classes = cfg.num_classes
        preset_ops = [op for stage in cfg.preset for op in stage]
        kernels = sorted(set(cfg.kernel_choices) | {op[0] for op in preset_ops})
        exps = sorted(set(map(float, cfg.expansion_choices)) | {float(op[1]) for op in preset_ops})
        self._vocab: list[Op] = [(k, e, se) for k in kernels for e in exps for se in (False, True)] + [SKIP]
        self._vocab_index = {op: i for i, op in enumerate(self._vocab)}
        self._n_blocks = sum(s.depth for s in cfg.stages)
        self._stage_of = [si for si, s in enumerate(cfg.stages) for _ in range(s.depth)]
        self._first_in_stage = [j == 0 for s in cfg.stages for j in range(s.depth)]
        self._choices_first = tuple((k, float(e), se) for k in cfg.kernel_choices
                                    for e in cfg.expansion_choices for se in cfg.se_choices)
        self._choices_rest = self._choices_first + (SKIP,)
        self._reduced_width: float | None = None
        self._cost_cache: dict = {}
        self._first = _parse_fixed(cfg.first_block)
        self._last = _parse_fixed(cfg.last_block) if cfg.last_block else None
        if len(cfg.preset) != len(cfg.stages) or any(len(p) != s.depth for p, s in zip(cfg.preset, cfg.stages)):
            raise ArchError(f"{cfg.name}: the preset does not match the stage depths")

    # -- strings ----------------------------------------------------------------------
    def presets(self) -> dict[str, str]:
        return {self.cfg.preset_name: self.to_str(self._norm_preset())}

    def _norm_preset(self) -> tuple:
        return tuple((k, float(e), bool(se)) for stage in self.cfg.preset for (k, e, se) in stage)

    def block_str(self, op: Op, i: int, reduced: bool = False) -> str:
        if op == SKIP:
            return SKIP
        st = self.cfg.stages[self._stage_of[i]]
        k, e, se = op
        s = self._block_stride(i, reduced)
        return (f"ir_r1_k{k}_s{s}_e{_fmt(e)}_c{st.channels}" + (f"_se{_fmt(self.cfg.se_ratio)}" if se else "")
                + ("_nre" if st.relu else ""))

    def _block_stride(self, i: int, reduced: bool) -> int:
        st = self.cfg.stages[self._stage_of[i]]
        if not self._first_in_stage[i]:
            return 1
        if reduced and self._stage_of[i] == self._first_stride2_stage():
            return 1
        return st.stride

    def _first_stride2_stage(self) -> int:
        return next(i for i, s in enumerate(self.cfg.stages) if s.stride == 2)

    def to_str(self, arch) -> str:
        ops = self._parse(arch)
        out, i = [], 0
        for st in self.cfg.stages:
            out.append(",".join(self.block_str(ops[j], j) for j in range(i, i + st.depth)))
            i += st.depth
        return "|".join(out)

    def from_str(self, text) -> tuple:
        if isinstance(text, (tuple, list)):
            ops = tuple(op if op == SKIP else (int(op[0]), float(op[1]), bool(op[2])) for op in text)
            self._check(ops, repr(text)[:80])
            return ops
        if not isinstance(text, str):
            raise ArchError(f"{self.name}: expected an architecture string, got {type(text).__name__}")
        s = text.strip()
        if s == self.cfg.preset_name:
            return self._norm_preset()
        stages = s.split("|")
        depths = [st.depth for st in self.cfg.stages]
        if len(stages) != len(depths):
            raise ArchError(
                f"{self.name}: {s[:60]!r} has {len(stages)} stage(s), the space has {len(depths)} (depths {depths}); "
                f"expected blocks like 'ir_r1_k5_s2_e4_c24[_se0.25]' or 'k5e4[se]' or 'skip', ',' between blocks, "
                f"'|' between stages, or the preset name {self.cfg.preset_name!r}")
        ops, i = [], 0
        for si, (stage, depth) in enumerate(zip(stages, depths)):
            blocks = [b.strip() for b in stage.split(",")]
            if len(blocks) != depth:
                raise ArchError(f"{self.name}: stage {si} has {len(blocks)} block(s), expected {depth} "
                                "(write 'skip' for a removed block)")
            for b in blocks:
                ops.append(self._parse_block(b, i, s))
                i += 1
        ops = tuple(ops)
        self._check(ops, s[:80])
        return ops

    def _parse_block(self, b: str, i: int, whole: str) -> Op:
        if b == SKIP:
            return SKIP
        m = _SHORT_RE.match(b)
        if m:
            return int(m.group(1)), float(m.group(2)), bool(m.group(3))
        m = _BLOCK_RE.match(b)
        if not m:
            raise ArchError(f"{self.name}: block {b!r} is not 'ir_r1_k<k>_s<s>_e<e>_c<c>[_se{_fmt(self.cfg.se_ratio)}]"
                            f"{'_nre' if self.cfg.stages[self._stage_of[i]].relu else ''}', 'k<k>e<e>[se]' or 'skip'")
        k, e = int(m.group(1)), float(m.group(3))
        op = (k, e, m.group(5) is not None)
        expected = self.block_str(op, i)
        if b != expected:
            raise ArchError(f"{self.name}: block {i} reads {b!r} but the skeleton there is {expected!r} "
                            "(stride, channels, SE ratio and activation are fixed by the space)")
        return op

    def _check(self, ops: tuple, what: str) -> None:
        if len(ops) != self._n_blocks:
            raise ArchError(f"{self.name}: {what} has {len(ops)} blocks, the space has {self._n_blocks}")
        for i, op in enumerate(ops):
            if op == SKIP:
                if self._first_in_stage[i]:
                    raise ArchError(f"{self.name}: block {i} is the first of its stage and cannot be skipped")
                continue
            if op in self._vocab_index:
                continue
            k, e, _ = op  # what is wrong, in the space's own terms (the preset's extra values included)
            kernels = sorted({v[0] for v in self._vocab if v != SKIP})
            if k not in kernels:
                raise ArchError(f"{self.name}: kernel {k} in block {i}; accepted kernels "
                                f"{', '.join(map(str, kernels))}")
            exps = sorted({float(v[1]) for v in self._vocab if v != SKIP})
            if float(e) not in exps:
                extra = sorted(set(exps) - set(map(float, self.cfg.expansion_choices)))
                also = (f" (and {', '.join(map(_fmt, extra))}, which the preset {self.cfg.preset_name} uses)"
                        if extra else "")
                raise ArchError(f"{self.name}: expansion {_fmt(e)} in block {i}; accepted expansions "
                                f"{', '.join(map(_fmt, self.cfg.expansion_choices))}{also}")
            raise ArchError(f"{self.name}: block {i} (k{k} e{_fmt(e)}) uses values outside this space's "
                            f"kernels {self.cfg.kernel_choices} and expansions {self.cfg.expansion_choices}")

    # -- the generic machinery -----------------------------------------------------------
    def slot_choices(self, arch) -> list[tuple]:
        return [self._choices_first if first else self._choices_rest for first in self._first_in_stage]

    def _ops(self, arch) -> tuple:
        return tuple(arch)

    def _with_ops(self, arch, ops: tuple):
        return tuple(ops)

    def default_arch(self) -> str:
        return self.cfg.preset_name

    def encode(self, arch) -> tuple[np.ndarray, np.ndarray]:
        """A chain DAG: input, one node per searchable block, output; skip is an operation."""
        ops = self._parse(arch)
        n = len(ops) + 2
        A = np.eye(n, k=1, dtype=np.float32)
        X = np.zeros((n, 2 + len(self._vocab)), dtype=np.float32)
        X[0, 0] = X[-1, 1] = 1
        for i, op in enumerate(ops):
            X[i + 1, 2 + self._vocab_index[op]] = 1
        return A, X

    def size(self) -> int:
        return int(np.prod([len(c) for c in self.slot_choices(None)], dtype=object))

    # -- the network plan ------------------------------------------------------------------
    def reduced_width(self) -> float:
        if self.cfg.width_rule == "fixed":
            return self.cfg.reduced_width
        if self.cfg.width_rule != "equal_cost":
            raise ArchError(f"{self.name}: width_rule {self.cfg.width_rule!r}; accepted fixed, equal_cost")
        if self._reduced_width is None:
            # Bisection on one multiplier per space: the reduced preset costs reduced_target_macs, so
            # every candidate is shrunk by the same rule and their ranking is not distorted.
            lo, hi = 0.05, 2.0
            preset = self._norm_preset()
            for _ in range(40):
                mid = (lo + hi) / 2
                if self._count(preset, self.cfg.reduced_resolution, self.cfg.num_classes, True, mid)[0] \
                        < self.cfg.reduced_target_macs:
                    lo = mid
                else:
                    hi = mid
            self._reduced_width = round((lo + hi) / 2, 4)
        return self._reduced_width

    @staticmethod
    def _round(chs: float, width: float) -> int:
        return make_divisible(chs * width)

    def plan(self, arch, reduced: bool = False, width: float | None = None) -> tuple[int, list[BlockPlan], int]:
        """(stem channels, blocks as built, head features) for the full or reduced network."""
        return self._plan_ops(self._parse(arch), reduced, width)

    def _plan_ops(self, ops: tuple, reduced: bool, width: float | None) -> tuple[int, list[BlockPlan], int]:
        w = width if width is not None else (self.reduced_width() if reduced else 1.0)
        cfg = self.cfg
        fix_stem = cfg.head == "mobilenetv3" and w < 0.75  # timm's MobileNetV3 rule
        stem = cfg.stem_size if fix_stem else self._round(cfg.stem_size, w)
        blocks: list[BlockPlan] = []
        first = self._first
        c_in = stem
        c_out = self._round(first["c"], w)
        blocks.append(BlockPlan("ds", first["k"], first["s"], c_in, c_out, se=first["se"], relu=first["nre"]))
        c_in = c_out
        for i, op in enumerate(ops):
            if op == SKIP:
                continue
            st = cfg.stages[self._stage_of[i]]
            c_out = self._round(st.channels, w)
            k, e, se = op
            blocks.append(BlockPlan("ir", k, self._block_stride(i, reduced), c_in, c_out, e, se, st.relu))
            c_in = c_out
        if cfg.last_block:
            last = self._last
            c_out = self._round(last["c"], w)
            blocks.append(BlockPlan("cn", last["k"], last["s"], c_in, c_out))
        if cfg.head == "efficientnet":
            feats = max(cfg.num_features, self._round(cfg.num_features, w)) if not reduced \
                else self._round(cfg.num_features, w)
        else:
            feats = cfg.num_features if not reduced else self._round(cfg.num_features, w)
        return stem, blocks, feats

    def arch_def(self, arch, reduced: bool = False) -> list[list[str]]:
        """timm ``arch_def`` (list of stages of block strings) of the built network."""
        ops = self._parse(arch)
        out = [[self.cfg.first_block]]
        i = 0
        for st in self.cfg.stages:
            stage = [self.block_str(ops[j], j, reduced) for j in range(i, i + st.depth) if ops[j] != SKIP]
            out.append(stage)
            i += st.depth
        if self.cfg.last_block:
            out.append([self.cfg.last_block])
        return out

    # -- models and costs --------------------------------------------------------------------
    def build(self, arch, num_classes: int | None = None, reduced: bool = False, **timm_kwargs):
        from .timm_build import build_block_model
        return build_block_model(self, arch, num_classes or self.num_classes, reduced, **timm_kwargs)

    def _count(self, ops, resolution: int, num_classes: int, reduced: bool, width: float | None = None):
        stem, blocks, feats = self._plan_ops(ops, reduced, width)  # ops already validated by the caller
        return count_block_plan(stem, blocks, feats, self.cfg.head, resolution, num_classes,
                                stem_stride=1 if reduced else 2)

    def default_resolution(self, reduced: bool = False) -> int:
        return self.cfg.reduced_resolution if reduced else self.cfg.resolution

    def cost(self, arch, resolution=None, num_classes=None, reduced=False) -> tuple[int, int]:
        """(MACs, params) in one pass; the last few thousand answers are memoised, since a
        search asks macs() and params() of the same candidate in turn."""
        key = (arch if isinstance(arch, str) else self._parse(arch), resolution, num_classes, reduced)
        hit = self._cost_cache.get(key)
        if hit is None:
            res = resolution or self.default_resolution(reduced)
            if res < 8:
                raise ArchError(f"{self.name}: resolution {res} is too small; accepted: 8 pixels or more")
            hit = self._count(self._parse(arch), res, num_classes or self.num_classes, reduced)
            if len(self._cost_cache) > 4096:
                self._cost_cache.clear()
            self._cost_cache[key] = hit
        return hit

    def clear_cache(self) -> None:
        self._cost_cache.clear()

    def macs(self, arch, resolution=None, num_classes=None, reduced=False) -> int:
        return self.cost(arch, resolution, num_classes, reduced)[0]

    def params(self, arch, num_classes=None, reduced=False) -> int:
        return self.cost(arch, None, num_classes, reduced)[1]

    def timm_model_info(self) -> dict:
        """What a timm registration of this space's networks needs: the head kind, the module names of
        the stem convolution and the classifier (timm's EfficientNet and MobileNetV3 use the same ones),
        the preset's timm name, and the full-size input resolution and class count."""
        return {"head": self.cfg.head, "first_conv": "conv_stem", "classifier": "classifier",
                "preset": self.cfg.preset_name, "resolution": self.cfg.resolution,
                "num_classes": self.cfg.num_classes}

    # -- facts callers need ------------------------------------------------------------------
    @property
    def reduced_rule(self) -> str:
        w = self.cfg.reduced_width if self.cfg.width_rule == "fixed" else \
            f"one multiplier per space making the reduced preset cost {self.cfg.reduced_target_macs / 1e6:g} M MACs"
        return (f"{self.cfg.reduced_resolution}x{self.cfg.reduced_resolution} input, stem stride 1 and the first "
                f"stride-2 stage at stride 1 (total stride 8), channels x {w}, same blocks")

    def _op_cost_order(self, op):
        # costs grow with kernel, expansion and SE, and a skipped block costs nothing
        return (0, 0, 0, 0) if op == SKIP else (1, op[0], op[1], op[2])

    # -- the per-block latency lookup table (OFA's efficiency model) ------------------------------
    def lut_choices(self) -> dict[str, list]:
        return {"kernel": list(self.cfg.kernel_choices), "expansion": [float(e) for e in self.cfg.expansion_choices],
                "se": list(self.cfg.se_choices)}

    def lut_covering_archs(self) -> list[tuple]:
        """Networks that together contain every (position, choice): network j uses choice j in every slot;
        the preset is added, since its blocks may lie outside the choices (mbv3's e2.3, e2.5)."""
        slots = self.slot_choices(None)
        choices = [c for c in slots[0] if c != SKIP]
        archs = [tuple(c for _ in slots) for c in choices]
        preset = tuple(self.from_str(self.default_arch()))
        return archs + ([preset] if preset not in archs else [])

    def _lut_block_key(self, b: BlockPlan, c: int, h: int) -> str:
        act = "relu" if b.relu else self.cfg.act
        return (f"{b.kind}|in{c}x{h}x{h}|k{b.kernel}|e{float(b.expansion):g}|s{b.stride}|se{int(bool(b.se))}"
                f"|out{b.out_chs}|{act}")

    def lut_entries(self, arch, resolution: int | None = None, reduced: bool = False,
                    num_classes: int | None = None) -> list[str]:
        """The LUT keys (stem, blocks..., head) whose entries add up to ``arch``'s latency."""
        res = resolution or self.default_resolution(reduced)
        stem_c, plans, feats = self.plan(arch, reduced)
        stem_stride = 1 if reduced else 2
        h = stride_out(res, 3, stem_stride)
        keys = [f"stem|in3x{res}x{res}|s{stem_stride}|out{stem_c}|{self.cfg.act}"]
        c = stem_c
        for b in plans:
            keys.append(self._lut_block_key(b, c, h))
            c, h = b.out_chs, stride_out(h, b.kernel, b.stride)
        keys.append(f"head|{self.cfg.head}|in{c}x{h}x{h}|feat{feats}|cls{num_classes or self.num_classes}")
        return keys

    def lut_parts(self, model, arch, resolution: int | None = None, reduced: bool = False,
                  num_classes: int | None = None) -> list[tuple[str, object]]:
        """(key, callable) per LUT entry of ``model`` (built from ``arch``), in forward order: feeding each
        callable the previous one's output runs the whole network."""
        keys = self.lut_entries(arch, resolution, reduced, num_classes)
        blocks = [blk for stage in model.blocks for blk in stage]
        if len(blocks) != len(keys) - 2:
            raise RuntimeError(f"{self.name}: plan has {len(keys) - 2} blocks, the model {len(blocks)}")
        stem = lambda t, m=model: m.bn1(m.conv_stem(t))  # noqa: E731
        if self.cfg.head == "efficientnet":
            head = lambda t, m=model: m.forward_head(m.bn2(m.conv_head(t)))  # noqa: E731
        else:
            head = lambda t, m=model: m.forward_head(t)  # noqa: E731
        return list(zip(keys, [stem, *blocks, head]))


def _parse_fixed(block: str) -> dict:
    parts = block.split("_")
    out = {"type": parts[0], "k": 3, "s": 1, "c": 0, "se": False, "nre": False}
    for p in parts[1:]:
        if p == "nre":
            out["nre"] = True
        elif p.startswith("se"):
            out["se"] = True
        elif p[0] in "ksc" and p[1:].isdigit():
            out[p[0]] = int(p[1:])
    return out
