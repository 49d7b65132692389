"""Estimators by name, timm-registry style: ``@register_estimator("synflow")``."""
from __future__ import annotations

from typing import Callable

_ESTIMATORS: dict[str, Callable] = {}


def register_estimator(name: str):
    def deco(cls):
        if name in _ESTIMATORS:
            raise ValueError(f"estimator {name!r} registered twice")
        _ESTIMATORS[name] = cls
        cls.name = name
        return cls
    return deco


def list_estimators() -> list[str]:
    _import_all()
    return sorted(_ESTIMATORS)


def estimator_class(name: str):
    """The registered class: its facts (``needs_data``, ``evaluation_keys``, ``profile_options``) need no instance."""
    from ..errors import InputError
    _import_all()
    if name not in _ESTIMATORS:
        raise InputError(f"unknown estimator {name!r}; accepted: {', '.join(sorted(_ESTIMATORS))}")
    return _ESTIMATORS[name]


def get_estimator(name: str, **config):
    """An estimator instance; ``config`` overrides its defaults (unknown keys and bad values are an InputError)."""
    return estimator_class(name)(**config)


def estimator_config(estimator: str, profile: str = "paper", **overrides) -> dict:
    """Options for an estimator under a named profile, then explicit overrides.

    The profile's options come from the class (``profile_options``: options it lacks are dropped);
    ``overrides`` win and are passed on as given (the estimator checks them when it is made).
    """
    return {**estimator_class(estimator).profile_options(profile), **overrides}


# Modules that register estimators, imported lazily to keep start-up cheap.
_MODULES = ("mote", "fused", "simple", "analytic", "zero_cost.saliency", "zero_cost.jacobian", "zero_cost.ntk",
            "zero_cost.zico", "zero_cost.zen", "zero_cost.feature_spectra", "zero_cost.vkdnw", "zero_fused")


def _import_all() -> None:
    import importlib
    for mod in _MODULES:
        try:
            importlib.import_module(f"mobile_mote.estimators.{mod}")
        except ModuleNotFoundError as e:
            if e.name != f"mobile_mote.estimators.{mod}":
                raise
