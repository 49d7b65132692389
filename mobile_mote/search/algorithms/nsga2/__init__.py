"""NSGA-II (``nsga2``): mutation-only, over any space, under hard bounds."""
from .algorithm import NSGA2, PROFILES, ParetoConfig

__all__ = ["NSGA2", "PROFILES", "ParetoConfig"]
