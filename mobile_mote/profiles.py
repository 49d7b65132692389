"""Named settings (``--profile``): the names, what a profile picks besides settings (the estimator and
algorithm it runs when none is named), and ``resolve``: a plug-in's settings under a profile. Settings
live beside what they set: an estimator's or a search algorithm's in its class's ``PROFILES`` (beside
its ``Config``), MODNAS's hypernetwork's in ``MODNAS_PROFILES`` below.

``paper`` is the default for real use. ``cpu`` keeps the paper's search loop and shrinks only the
estimator (see ``estimators.base.PROFILES``), for measured CPU benchmarks. ``tiny`` exists only so
tests and CPU demos finish quickly.
"""
from __future__ import annotations

from dataclasses import fields

from .errors import InputError

PROFILES: dict[str, dict] = {
    "paper": {},
    "official": {},
    "cpu": {},
    "tiny": {},
    # quick: the CPU quick start. A search in about two minutes on two cores: the zero-cost ``fused``
    # estimator (no training; the rule chosen for every space) and MOTE-NAS-EF's loop, its top-1 taken
    # (no evaluation stage), drawing 8 neighbours of the best cells in each of 10 iterations.
    "quick": {"estimator": "fused", "algorithm": {"search": "ef"}},
}
DEFAULT_ALGORITHM = {"search": "mote-nas", "pareto": "nsga2"}  # per command, where a profile names none


def check_profile(name: str) -> None:
    if name not in PROFILES:
        raise InputError(f"unknown profile {name!r}; accepted: {', '.join(PROFILES)}")


def default_estimator(name: str) -> str:
    """The estimator a profile runs when ``--estimator`` is not given: MOTE, except where the profile
    names another (``quick``: the zero-cost ``fused`` ranking)."""
    check_profile(name)
    return PROFILES[name].get("estimator", "mote")


def default_algorithm(name: str, command: str) -> str:
    """The algorithm ``command`` ("search" or "pareto") runs under profile ``name`` when
    ``--algorithm`` is not given."""
    check_profile(name)
    return PROFILES[name].get("algorithm", {}).get(command, DEFAULT_ALGORITHM[command])


# The registries ``resolve`` looks names up in, by kind, as "module:attribute" (imported when asked).
REGISTRIES = {"estimator": "mobile_mote.estimators.registry:ESTIMATORS",
              "algorithm": "mobile_mote.search.algorithms:ALGORITHMS"}


def profile_settings(cls, profile: str, overrides: dict | None = None) -> dict:
    """The settings of plug-in class ``cls`` under ``profile``: what its ``PROFILES`` sets there (keys its
    ``Config`` lacks dropped: a shared table may size what only some plug-ins have), then ``overrides``,
    refused by the class's ``check_settings`` if it has no such setting."""
    check_profile(profile)
    overrides = overrides or {}
    cls.check_settings(overrides)
    known = {f.name for f in fields(cls.Config)}
    return {**{k: v for k, v in cls.PROFILES.get(profile, {}).items() if k in known}, **overrides}


def resolve(kind: str, name: str, profile: str = "paper", overrides: dict | None = None) -> dict:
    """The settings of the ``kind`` ("estimator", "algorithm") registered as ``name`` under ``profile``,
    ``overrides`` last: what its ``Config`` is made of (a run spec stores it as given)."""
    import importlib
    if kind not in REGISTRIES:
        raise InputError(f"unknown kind of plug-in {kind!r}; accepted: {', '.join(REGISTRIES)}")
    module, attr = REGISTRIES[kind].split(":")
    return profile_settings(getattr(importlib.import_module(module), attr).get(name), profile, overrides)


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
    from .search.algorithms import algorithm_class
    cls = algorithm_class(spec.algorithm)
    first, step = cls.first_step(cls.config_of(spec.algorithm_config))
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
