"""MOTE-NAS's settings (shared by its EF and RS variants) and what each ``--profile`` sets of them."""
from __future__ import annotations

from dataclasses import dataclass, field

from ..contract import MAX_DRAW, MAX_STEPS, ConfigBase, check_whole, cli_option


@dataclass
class SearchConfig(ConfigBase):
    k: int = field(default=10, metadata=cli_option("candidates to the evaluation stage (default 10)", int))
    batch_start: int = field(default=10, metadata=cli_option("B at the first iteration (10)", int))
    batch_step: int = 10  # B grows by this ...
    batch_every: int = 10  # ... every this many iterations
    draw_factor: int = field(default=10, metadata=cli_option(
        "each iteration draws this times B candidates (10)", int))
    top_fraction: float = field(default=0.10, metadata=cli_option(  # the paper; the official code uses 0.01
        "pool fraction whose neighbours are added (0.1)", float))
    # the paper adds up to 10*k; the official code adds up to 10*B ("10B")
    add_limit: str = field(default="10k", metadata=cli_option("10k (paper) or 10B (official code)",
                                                               choices=["10k", "10B"]))
    # "max": max(k, 10) iterations (the paper); "sum": 10 + k (the official code)
    iterations: str = field(default="max", metadata=cli_option("max(k,10) (paper) or 10+k", choices=["max", "sum"]))
    max_distance: float = 1.0
    rs_factor: int = 100  # MOTE-NAS-RS scores rs_factor * k random candidates
    # Where an iteration's 10*B candidates come from. "uniform" (the paper, on NB201): random draws,
    # then only those within max_distance of a top cell are kept. In a block space a random draw is
    # almost never within two changed blocks of anything, so "neighbours" draws random members of the
    # top cells' neighbourhoods directly (one or two slots changed). "auto": uniform for spaces of at
    # most a million architectures, neighbours above.
    draw: str = field(default="auto", metadata=cli_option(
        "where each iteration's 10*B candidates come from (auto: uniform on NB201, neighbours of the top "
        "cells in the block spaces)", choices=["auto", "uniform", "neighbours"]))
    # the evaluation stage's training of the reduced network (not with a benchmark's short-training figure)
    eval_epochs: int = field(default=12, metadata=cli_option("evaluation-stage epochs (not with --benchmark)", int))

    def validate(self, space_size: int | None = None, iterations: int | None = None) -> None:
        """InputError for a setting that makes the run meaningless or endless; ``space_size`` (the
        space's count of architectures, None when unknown) bounds k; ``iterations``: the run's
        (default: MOTE-NAS's schedule)."""
        from ....errors import InputError
        if self.add_limit not in ("10k", "10B"):
            raise InputError(f"add_limit {self.add_limit!r}; accepted: 10k (paper), 10B (official code)")
        if self.iterations not in ("max", "sum"):
            raise InputError(f"iterations {self.iterations!r}; accepted: max (max(k, 10)), sum (10 + k)")
        if self.draw not in ("auto", "uniform", "neighbours"):
            raise InputError(f"draw {self.draw!r}; accepted: auto, uniform, neighbours")
        if not 0 < self.top_fraction <= 1:
            raise InputError(f"top_fraction {self.top_fraction}; accepted: 0 < f <= 1")
        k_max = MAX_STEPS if space_size is None else min(MAX_STEPS, space_size)
        held = "" if space_size is None else f"; this space holds {space_size:,} architectures"
        check_whole("k", self.k, 1, k_max, f"k sets max(k, 10) iterations, at most {MAX_STEPS:,}{held}")
        for name, lo in (("batch_start", 1), ("batch_step", 0), ("batch_every", 1), ("draw_factor", 1),
                         ("rs_factor", 1)):
            check_whole(name, getattr(self, name), lo, MAX_DRAW)
        iterations = self.n_iterations() if iterations is None else iterations
        last = self.batch_start + self.batch_step * max(0, iterations - 1) // self.batch_every
        if self.draw_factor * last > MAX_DRAW:
            raise InputError(f"draw_factor {self.draw_factor} x batch {last:,} (B at the last iteration) draws "
                             f"{self.draw_factor * last:,} candidates in one iteration; accepted: at most "
                             f"{MAX_DRAW:,} (lower --draw-factor, --batch-start or --k)")

    def n_iterations(self) -> int:
        """MOTE-NAS's schedule after iteration 0."""
        return max(self.k, 10) if self.iterations == "max" else 10 + self.k


PROFILES: dict[str, dict] = {
    "official": {"top_fraction": 0.01, "add_limit": "10B", "iterations": "sum"},
    # tiny draws 4·B candidates with B = 1: uniform draws would almost never land within distance 1 of
    # a top cell, so it draws from the top cells' neighbourhoods in every space
    "tiny": {"k": 3, "batch_start": 1, "batch_step": 1, "draw_factor": 4, "draw": "neighbours"},
    # quick (with MOTE-NAS-EF, the profile's algorithm): 8 neighbours of the best cells in each of 10 iterations
    "quick": {"batch_start": 2, "batch_step": 0, "draw_factor": 4, "draw": "neighbours"},
}
