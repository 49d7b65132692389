"""Estimators: MOTE and the baselines, one interface, one record (see record.Estimate)."""
from .base import DeviceError, Estimator, arch_seed, build_seeded, seeded_generator
from .record import Estimate, config_hash
from .registry import estimator_class, estimator_config, get_estimator, list_estimators, register_estimator

__all__ = ["DeviceError", "Estimate", "Estimator", "arch_seed", "build_seeded", "config_hash", "estimator_class",
           "estimator_config", "get_estimator", "list_estimators", "register_estimator", "seeded_generator"]
