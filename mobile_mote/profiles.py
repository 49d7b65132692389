"""Named settings (``--profile``), in one table: what each profile sets for the search loop and for
NSGA-II. The estimator's own options per profile are the estimator's (``Estimator.PROFILES``), looked
up through ``estimators.estimator_config``. MODNAS's hypernetwork has its own (``MODNAS_PROFILES``).

``paper`` is the default for real use. ``cpu`` keeps the paper's search loop and shrinks only the
estimator (see ``estimators.base.PROFILES``), for measured CPU benchmarks. ``tiny`` exists only so
tests and CPU demos finish quickly.
"""
from __future__ import annotations

from .errors import InputError

PROFILES: dict[str, dict[str, dict]] = {
    "paper": {"search": {}, "pareto": {"population": 50, "generations": 20}},
    "official": {"search": {"top_fraction": 0.01, "add_limit": "10B", "iterations": "sum"},
                 "pareto": {"population": 50, "generations": 20}},
    "cpu": {"search": {}, "pareto": {"population": 50, "generations": 20}},
    # tiny draws 4·B candidates with B = 1: uniform draws would almost never land within distance 1 of
    # a top cell, so it draws from the top cells' neighbourhoods in every space
    "tiny": {"search": {"k": 3, "batch_start": 1, "batch_step": 1, "draw_factor": 4, "draw": "neighbours"},
             "pareto": {"population": 6, "generations": 2}},
    # quick: the CPU quick start. A search in about two minutes on two cores: the zero-cost ``fused``
    # estimator (no training; the rule chosen for every space) and MOTE-NAS-EF's loop, its top-1 taken
    # (no evaluation stage), drawing 8 neighbours of the best cells in each of 10 iterations.
    "quick": {"estimator": "fused",
              "search": {"algorithm": "ef", "batch_start": 2, "batch_step": 0, "draw_factor": 4,
                         "draw": "neighbours"},
              "pareto": {"population": 20, "generations": 4}},
}


def default_estimator(name: str) -> str:
    """The estimator a profile runs when ``--estimator`` is not given: MOTE, except where the profile
    names another (``quick``: the zero-cost ``fused`` ranking)."""
    if name not in PROFILES:
        raise InputError(f"unknown profile {name!r}; accepted: {', '.join(PROFILES)}")
    return PROFILES[name].get("estimator", "mote")


def profile(name: str, part: str) -> dict:
    """The ``part`` ("search" or "pareto") settings of profile ``name``."""
    if name not in PROFILES:
        raise InputError(f"unknown profile {name!r}; accepted: {', '.join(PROFILES)}")
    return dict(PROFILES[name][part])


# -- what a training estimator costs on a CPU, as measured (the records named) ----------------------------
# paper profile: one NB201 cell at 50 epochs, 1 thread of a 2-core Xeon, 2026-11-22
PAPER_CPU_SECONDS = 1487
PAPER_CPU_RECORD = "benchmarks/results/estimator_speed_cpu_paper.json"
# cpu profile: the median of 150 macro networks (4 epochs, 40 images per label), same machine
CPU_PROFILE_SECONDS = 17
CPU_PROFILE_RECORD = "benchmarks/results/macro_correlation_cpu.mote.jsonl"


def cpu_cost_notice(profile_name: str, spec, epochs: int | None, command: str = "search") -> str | None:
    """One line saying what a run of the paper (or official) profile costs on a CPU, and what to use
    instead; None when the run is not on a CPU or its estimator does not train (``epochs``: the
    estimator's training epochs, None for one that never trains). The run is not refused."""
    if spec.device != "cpu" or profile_name not in ("paper", "official") or not epochs:
        return None
    if spec.pareto is not None:
        first, step = spec.pareto.population, "generation"
    elif spec.search.algorithm == "rs":
        first, step = spec.search.rs_factor * spec.search.k, "draw"
    else:
        first, step = spec.search.draw_factor * spec.search.batch_start, "iteration"
    hours = first * PAPER_CPU_SECONDS * epochs / 50 / 3600
    return (f"mote {command}: note: the {profile_name} profile trains every candidate {epochs} epochs; on a CPU "
            f"that measured {PAPER_CPU_SECONDS:,} s per candidate at 50 epochs (one NB201 cell, 1 thread, "
            f"{PAPER_CPU_RECORD}), so the first {step} alone ({first} candidates) may take ~{hours:,.0f} h; "
            f"--profile cpu is sized for a CPU (median {CPU_PROFILE_SECONDS} s per macro network, "
            f"{CPU_PROFILE_RECORD}), or run on a GPU (--device cuda)")


# -- MODNAS (`mote modnas`) --------------------------------------------------------------------------
# ``paper``: MODNAS's NB201 settings. ``cpu``: a reduced supernet that trains in minutes on 2 cores, for
# the measured CPU part of the benchmark. ``tiny``: tests only.
# The cpu and tiny profiles keep the learning rates unscaled and the hypernetwork's on a cosine: the
# measured CPU runs (benchmarks/README.md) used exactly these settings.
MODNAS_PROFILES: dict[str, dict] = {
    "paper": {},
    "cpu": {"channels": 8, "cells_per_stage": 1, "epochs": 5, "batch_size": 64, "devices_per_step": 3,
            "intervals": 25, "arch_lr": 3e-3, "lr_scale_by_devices": False, "arch_lr_schedule": "cosine",
            "predictor": {"epochs": 10}},
    "tiny": {"channels": 4, "cells_per_stage": 1, "epochs": 3, "batch_size": 32, "devices_per_step": 2,
             "intervals": 11, "arch_lr": 3e-2, "images_per_class": 40, "rays": 8, "lr_scale_by_devices": False,
             "arch_lr_schedule": "cosine", "predictor": {"epochs": 2, "cells": 2000}},
}
