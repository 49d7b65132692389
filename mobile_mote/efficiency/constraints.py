"""Hard bounds on a candidate's cost, checked with the analytic counters before anything trains.

A constraint is plain data (``Constraint``); ``Costs`` computes MACs / params / latency of an
architecture once and answers every budget from them. ``mobile_mote.efficiency.make_costs`` builds
a ``Costs`` with its latency source (a table, a LUT, or a measurement).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

from ..errors import InputError
from ..units import fmt_count, parse_count, parse_list, parse_milliseconds


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


class Costs:
    """MACs, params and (optionally) latency of architectures, memoised by arch string."""

    def __init__(self, space, latency=None, resolution: int | None = None, num_classes: int | None = None):
        self.space = space
        self.latency = latency
        self.resolution = resolution
        self.num_classes = num_classes
        self._memo: dict[str, dict] = {}

    @property
    def latency_source(self) -> str | None:
        """One line naming where latency comes from (None without a source)."""
        return getattr(self.latency, "describe", None) if self.latency is not None else None

    def cost_without_latency(self, arch: str) -> dict:
        return {"macs": self.space.macs(arch, self.resolution, self.num_classes),
                "params": self.space.params(arch, self.num_classes)}

    def __call__(self, arch: str) -> dict:
        c = self._memo.get(arch)
        if c is None:
            c = {"macs": self.space.macs(arch, self.resolution, self.num_classes),
                 "params": self.space.params(arch, self.num_classes),
                 "latency_ms": self.latency(arch) if self.latency else None}
            self._memo[arch] = c
        return c


def check_achievable(space, constraints: list[Constraint], costs: Costs) -> None:
    """Refuse an impossible budget at once, naming the smallest achievable value."""
    floor = costs.cost_without_latency(space.cheapest_arch())
    for c in constraints:
        if c.max_macs is not None and c.max_macs < floor["macs"]:
            raise InputError(f"MACs budget {fmt_count(c.max_macs)} is below the smallest achievable in "
                             f"{space.name}: {fmt_count(floor['macs'])} ({floor['macs']:,} MACs)")
        if c.max_params is not None and c.max_params < floor["params"]:
            raise InputError(f"params budget {fmt_count(c.max_params)} is below the smallest achievable in "
                             f"{space.name}: {fmt_count(floor['params'])} ({floor['params']:,} params)")
    floor_ms = getattr(costs.latency, "floor_ms", None)
    if any(c.max_latency_ms is not None for c in constraints) and floor_ms is not None:
        best = floor_ms()
        for c in constraints:
            if c.max_latency_ms is not None and c.max_latency_ms < best:
                raise InputError(f"latency budget {c.max_latency_ms:g} ms is below the fastest architecture on "
                                 f"{costs.latency.device}: {best:.3g} ms")
