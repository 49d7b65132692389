"""Hard bounds on a candidate's cost, checked with the analytic counters before anything trains.

A constraint is plain data (``Constraint``); ``Costs`` computes MACs / params / latency of an
architecture once and answers every budget from them.
"""
from __future__ import annotations

import csv
from dataclasses import asdict, dataclass
from pathlib import Path

from .errors import InputError
from .units import fmt_count, parse_count, parse_list, parse_milliseconds


@dataclass(frozen=True)
class Constraint:
    max_macs: float | None = None
    max_params: float | None = None
    max_latency_ms: float | None = None

    def label(self) -> str:
        parts = []
        if self.max_macs:
            parts.append(f"macs{fmt_count(self.max_macs)}")
        if self.max_params:
            parts.append(f"params{fmt_count(self.max_params)}")
        if self.max_latency_ms:
            parts.append(f"lat{self.max_latency_ms:g}ms")
        return "_".join(parts) or "unconstrained"

    def admits(self, costs: dict) -> bool:
        return ((self.max_macs is None or costs["macs"] <= self.max_macs)
                and (self.max_params is None or costs["params"] <= self.max_params)
                and (self.max_latency_ms is None or (costs.get("latency_ms") is not None
                                                      and costs["latency_ms"] <= self.max_latency_ms)))

    def to_dict(self) -> dict:
        return asdict(self)


def parse_constraints(flops: str | None = None, params: str | None = None, latency: str | None = None) -> list[Constraint]:
    """``--flops 200M,300M`` x ``--params 4.5M`` x ``--latency 20ms``: one Constraint per MACs budget."""
    macs_list = parse_list(flops, parse_count, "MACs budget") if flops else [None]
    p = parse_count(params, "params budget") if params else None
    lat = parse_milliseconds(latency, "latency budget") if latency else None
    return [Constraint(m, p, lat) for m in sorted(macs_list, key=lambda v: (v is None, v))]


def read_latency_columns(path: str | Path, devices) -> dict[str, dict[int, float]]:
    """``{device: {index: ms}}`` for several columns of a latency table, in one pass over the file."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"latency table {path} does not exist; expected a CSV with an 'index' column and "
                         "one column of milliseconds per device")
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        cols = [c for c in (reader.fieldnames or []) if c != "index"]
        missing = [d for d in devices if d not in cols]
        if "index" not in (reader.fieldnames or []) or missing:
            raise InputError(f"latency table {path} has no column {', '.join(map(repr, missing)) or 'index'}; "
                             f"devices: {', '.join(cols)}")
        out: dict[str, dict[int, float]] = {d: {} for d in devices}
        for r in reader:
            i = int(r["index"])
            for d in devices:
                out[d][i] = float(r[d])
    return out


class LatencyTable:
    """Per-architecture latency (ms) from a table: NB201's latency_ms.csv (index, one column per device)."""

    def __init__(self, path: str | Path, device: str, space):
        self.ms = read_latency_columns(path, [device])[device]
        self.device = device
        self.space = space

    def __call__(self, arch: str) -> float:
        return self.ms[self.space.index_of(arch)]


class Costs:
    """MACs, params and (optionally) latency of architectures, memoised by arch string."""

    def __init__(self, space, latency=None, resolution: int | None = None, num_classes: int | None = None):
        self.space = space
        self.latency = latency
        self.resolution = resolution
        self.num_classes = num_classes
        self._memo: dict[str, dict] = {}

    def __call__(self, arch: str) -> dict:
        c = self._memo.get(arch)
        if c is None:
            c = {"macs": self.space.macs(arch, self.resolution, self.num_classes),
                 "params": self.space.params(arch, self.num_classes),
                 "latency_ms": self.latency(arch) if self.latency else None}
            self._memo[arch] = c
        return c


def cheapest_arch(space) -> str:
    """The architecture with the fewest MACs and params: every optional block skipped, every slot
    on its cheapest operation (costs grow with kernel, expansion and SE, so the minimum is per slot)."""
    if space.name == "nb201":
        return space.to_str(("none",) * 6)
    template = space.from_str(space.default_arch())
    ops = []
    for choices in space.slot_choices(template):
        ops.append("skip" if "skip" in choices else min(
            (c for c in choices if c != "skip"), key=lambda c: (c[0], c[1], c[2])))
    return space.to_str(tuple(ops))


def check_achievable(space, constraints: list[Constraint], costs: Costs) -> None:
    """Refuse an impossible budget at once, naming the smallest achievable value."""
    floor = costs(cheapest_arch(space))
    for c in constraints:
        if c.max_macs is not None and c.max_macs < floor["macs"]:
            raise InputError(f"MACs budget {fmt_count(c.max_macs)} is below the smallest achievable in "
                             f"{space.name}: {fmt_count(floor['macs'])} ({floor['macs']:,} MACs)")
        if c.max_params is not None and c.max_params < floor["params"]:
            raise InputError(f"params budget {fmt_count(c.max_params)} is below the smallest achievable in "
                             f"{space.name}: {fmt_count(floor['params'])} ({floor['params']:,} params)")
    if any(c.max_latency_ms is not None for c in constraints) and costs.latency is not None and space.name == "nb201":
        best = min(costs.latency.ms.values())
        for c in constraints:
            if c.max_latency_ms is not None and c.max_latency_ms < best:
                raise InputError(f"latency budget {c.max_latency_ms:g} ms is below the fastest cell on "
                                 f"{costs.latency.device}: {best:.3g} ms")
