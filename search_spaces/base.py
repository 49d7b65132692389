"""The one interface every search space implements.

A space says what an architecture is and nothing about how it is scored or
searched: architectures leave it as canonical strings, encodings as numpy
arrays, costs as plain numbers.
"""
from __future__ import annotations

import abc
import itertools
from typing import Iterator, Sequence

import numpy as np


from .errors import ArchError, InputError


def encoding_distance(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray]) -> float:
    """(||A - A'||_F + ||X - X'||_F) / 2, the predictor-NAS distance of DESIGN.md."""
    (A1, X1), (A2, X2) = a, b
    if A1.shape != A2.shape or X1.shape != X2.shape:
        raise ArchError(f"encodings of different shapes cannot be compared: {A1.shape}/{X1.shape} vs {A2.shape}/{X2.shape}")
    return float((np.linalg.norm(A1 - A2) + np.linalg.norm(X1 - X2)) / 2.0)


class SearchSpace(abc.ABC):
    """A set of architectures with operations on the nodes of a fixed DAG.

    Subclasses hold a tuple of ``slots`` (one per op node) and, for each slot, the
    list of operations a search may put there. An architecture is the tuple of
    chosen operations; its canonical string comes from ``to_str``.
    """

    name: str = "space"

    # -- what an architecture is -------------------------------------------------
    @abc.abstractmethod
    def to_str(self, arch) -> str:
        """Canonical string of an architecture (a string, or the parsed form)."""

    @abc.abstractmethod
    def from_str(self, text: str):
        """Parse a string (canonical or an accepted alias) into the parsed form."""

    def canonical(self, arch) -> str:
        return self.to_str(self.from_str(arch))

    def network_key(self, arch) -> str:
        """One key per distinct network: architectures that build the same computation (an identity
        that commutes with its neighbours, say) share it. The canonical string where a space knows no
        such equivalence. A search scores one key per network; seeds follow this key, so two
        strings of one network get the same initial weights and the same estimates."""
        return self.canonical(arch)

    # -- sampling and neighbourhoods -----------------------------------------------
    @abc.abstractmethod
    def slot_choices(self, arch) -> list[Sequence]:
        """For each op slot of ``arch``, the operations a search may place there."""

    @abc.abstractmethod
    def _ops(self, arch) -> tuple:
        """The tuple of operations (one per slot) of a parsed architecture."""

    @abc.abstractmethod
    def _with_ops(self, arch, ops: tuple):
        """The architecture ``arch`` with its slot operations replaced by ``ops``."""

    def sample(self, rng: np.random.Generator) -> str:
        template = self.from_str(self.default_arch())
        ops = tuple(choices[rng.integers(len(choices))] for choices in self.slot_choices(template))
        return self.to_str(self._with_ops(template, ops))

    def mutate(self, arch, rng: np.random.Generator) -> str:
        """One slot changed to a different operation (distance sqrt(2)/2 under one-hot X)."""
        parsed = self._parse(arch)
        ops = list(self._ops(parsed))
        choices = self.slot_choices(parsed)
        mutable = [i for i, c in enumerate(choices) if any(o != ops[i] for o in c)]
        if not mutable:
            raise ArchError(f"{self.name}: architecture has no mutable slot")
        i = mutable[rng.integers(len(mutable))]
        others = [o for o in choices[i] if o != ops[i]]
        ops[i] = others[rng.integers(len(others))]
        return self.to_str(self._with_ops(parsed, tuple(ops)))

    def neighbours(self, arch, max_distance: float = 1.0) -> list[str]:
        """Every architecture at distance 0 < d <= max_distance, in a fixed order.

        With one-hot operations on fixed nodes, changing m slots moves X by sqrt(2m),
        so the distance is sqrt(2m)/2: m = 1 -> 0.707, m = 2 -> 1.0.
        """
        parsed = self._parse(arch)
        ops = self._ops(parsed)
        choices = self.slot_choices(parsed)
        max_changes = int(np.floor((2 * max_distance) ** 2 / 2 + 1e-9))
        out = []
        for m in range(1, min(max_changes, len(ops)) + 1):
            for slots in itertools.combinations(range(len(ops)), m):
                alts = [[o for o in choices[i] if o != ops[i]] for i in slots]
                for repl in itertools.product(*alts):
                    new = list(ops)
                    for i, o in zip(slots, repl):
                        new[i] = o
                    out.append(self.to_str(self._with_ops(parsed, tuple(new))))
        return out

    # -- integer genomes (one gene per slot: the index of its operation) ----------------
    def genome(self, arch) -> list[int]:
        """The slot vector of ``arch``: per slot, the index of its operation among ``slot_choices``."""
        parsed = self._parse(arch)
        return [list(c).index(o) for c, o in zip(self.slot_choices(parsed), self._ops(parsed))]

    def genome_sizes(self) -> list[int]:
        """How many operations each gene can take."""
        return [len(c) for c in self.slot_choices(self.from_str(self.default_arch()))]

    def from_genome(self, genes) -> str:
        """The architecture of a slot vector (the inverse of ``genome``)."""
        template = self.from_str(self.default_arch())
        choices = self.slot_choices(template)
        return self.to_str(self._with_ops(template, tuple(c[int(g)] for c, g in zip(choices, genes))))

    # -- encoding ------------------------------------------------------------------
    @abc.abstractmethod
    def encode(self, arch) -> tuple[np.ndarray, np.ndarray]:
        """(A, X): adjacency of the DAG and one-hot operation matrix."""

    def distance(self, a, b) -> float:
        return encoding_distance(self.encode(a), self.encode(b))

    # -- models and costs ------------------------------------------------------------
    @abc.abstractmethod
    def build(self, arch, num_classes: int | None = None, reduced: bool = False):
        """A torch module for the full (or reduced) architecture."""

    @abc.abstractmethod
    def macs(self, arch, resolution: int | None = None, num_classes: int | None = None,
             reduced: bool = False) -> int:
        """Multiply-accumulates of conv and linear layers (DESIGN.md convention)."""

    @abc.abstractmethod
    def params(self, arch, num_classes: int | None = None, reduced: bool = False) -> int:
        """Trainable parameter count, equal to sum(p.numel()) of ``build``."""

    @abc.abstractmethod
    def default_arch(self) -> str:
        """A representative architecture (the space's preset)."""

    def default_resolution(self, reduced: bool = False) -> int:
        return 32 if reduced else self.resolution

    resolution: int = 32
    num_classes: int = 10

    def enumerate(self) -> Iterator[str]:
        raise NotImplementedError(f"{self.name} is not finite enough to enumerate")

    def size(self) -> int | None:
        return None

    def clear_cache(self) -> None:
        """Forget memoised costs (benchmarks time the cold path with this)."""

    # -- facts callers need: no caller outside search_spaces tests a space's name or class ---------
    def cheapest_arch(self) -> str:
        """The architecture with the fewest MACs and params (costs grow with every choice, so the
        minimum is taken slot by slot over the op order that ``_op_cost_order`` defines)."""
        template = self.from_str(self.default_arch())
        ops = tuple(min(choices, key=self._op_cost_order) for choices in self.slot_choices(template))
        return self.to_str(self._with_ops(template, ops))

    def _op_cost_order(self, op):
        raise NotImplementedError(f"{self.name}: no cost order of operations")

    def arch_def(self, arch, reduced: bool = False) -> list[list[str]] | None:
        """timm ``arch_def`` block strings of the built network, or None where timm's builder is not used."""
        return None

    #: One line on how the estimator's reduced network is derived from the full one.
    reduced_rule: str = ""

    def table_key(self, arch) -> str:
        """The key of ``arch`` in a per-architecture table (latency, benchmark): its canonical string.
        Tables keyed by a benchmark's own index are translated by that benchmark's reader."""
        return self.canonical(arch)

    def accepts_latency_tables(self) -> bool:
        """Whether per-architecture latency tables exist for this space (finite, enumerable spaces)."""
        return self.size() is not None and self.size() <= 1_000_000

    def lut_entries(self, arch, resolution: int | None = None, reduced: bool = False) -> list[str]:
        """Keys of a per-block latency lookup table, one per built layer group, for ``arch``."""
        raise InputError(f"a per-block latency LUT needs a block space; {self.name} has none")

    def lut_covering_archs(self) -> list[str]:
        """Architectures whose layers together cover every LUT entry of the space."""
        raise InputError(f"a per-block latency LUT needs a block space; {self.name} has none")

    def lut_choices(self) -> dict[str, list]:
        """The per-block choices a LUT must cover (kernel, expansion, SE, ...)."""
        return {}

    def timm_model_info(self) -> dict | None:
        """What timm registration needs (head kind, stem/classifier module names, preset name), or None
        when the space's networks are not timm models retrainable on ImageNet."""
        return None

    def _parse(self, arch):
        # from_str accepts both strings and already-parsed forms, validating either.
        return self.from_str(arch)
