"""Estimators by name, timm-registry style: ``@register_estimator("synflow")``."""
from __future__ import annotations

from ..registry import Registry

# Modules that register estimators, imported on the first lookup to keep start-up cheap.
_MODULES = ("mote", "fused", "simple", "analytic", "zero_cost.saliency", "zero_cost.jacobian", "zero_cost.ntk",
            "zero_cost.zico", "zero_cost.zen", "zero_cost.feature_spectra", "zero_cost.vkdnw", "zero_cost.similarity", "zero_fused")


def _import_all() -> None:
    import importlib
    for mod in _MODULES:
        try:
            importlib.import_module(f"mobile_mote.estimators.{mod}")
        except ModuleNotFoundError as e:
            if e.name != f"mobile_mote.estimators.{mod}":
                raise


ESTIMATORS = Registry("estimator", load=_import_all)
register_estimator = ESTIMATORS.register


def list_estimators() -> list[str]:
    return ESTIMATORS.names()


def estimator_class(name: str):
    """The registered class: its facts (``needs_data``, ``evaluation_keys``, ``profile_options``) need no instance."""
    return ESTIMATORS.get(name)


def get_estimator(name: str, **config):
    """An estimator instance; ``config`` overrides its defaults (unknown keys and bad values are an InputError)."""
    return estimator_class(name)(**config)


def estimator_config(estimator: str, profile: str = "paper", **overrides) -> dict:
    """Options for an estimator under a named profile, then explicit overrides (``profiles.resolve``)."""
    from ..profiles import resolve
    return resolve("estimator", estimator, profile, overrides)
