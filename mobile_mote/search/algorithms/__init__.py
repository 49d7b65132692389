"""Search algorithms: the contract (``contract.py``), shared operators (``operators.py``) and one folder
per algorithm, each registering itself (``@register_algorithm("name")``). Every sub-package here is
imported on the registry's first lookup, so adding an algorithm is its folder and nothing else."""
from __future__ import annotations

from ...registry import Registry
from .contract import MAX_DRAW, MAX_STEPS, Algorithm, ConfigBase, check_whole, cli_option, rng_from_state


def _discover() -> None:
    import importlib
    import pkgutil
    for mod in pkgutil.iter_modules(__path__):
        if mod.ispkg:
            importlib.import_module(f"{__name__}.{mod.name}")


ALGORITHMS = Registry("algorithm", load=_discover)
register_algorithm = ALGORITHMS.register


def algorithm_class(name: str) -> type[Algorithm]:
    return ALGORITHMS.get(name)


def algorithms_for(command: str) -> list[str]:
    """The registered algorithms a CLI command runs ("search" or "pareto")."""
    return [n for n in ALGORITHMS.names() if ALGORITHMS.get(n).command == command]


def algorithm_config(name: str, profile: str = "paper", **overrides) -> dict:
    """An algorithm's settings under a named profile, then explicit overrides (``profiles.resolve``)."""
    from ...profiles import resolve
    return resolve("algorithm", name, profile, overrides)


# The names callers used before algorithms were plug-ins: MOTE-NAS's settings, its class, NSGA-II's.
from .mote_nas import MoteNAS, SearchConfig  # noqa: E402
from .nsga2 import NSGA2, ParetoConfig  # noqa: E402

__all__ = ["ALGORITHMS", "MAX_DRAW", "MAX_STEPS", "NSGA2", "Algorithm", "ConfigBase", "MoteNAS", "ParetoConfig",
           "SearchConfig", "algorithm_class", "algorithm_config", "algorithms_for", "check_whole", "cli_option",
           "register_algorithm", "rng_from_state"]
