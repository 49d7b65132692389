"""LaMOO (``lamoo``): learned space partitions that hold the Pareto front, sampled inside."""
from .algorithm import LaMOO, LaMOOConfig
from .partition import Partition, dominance_counts

__all__ = ["LaMOO", "LaMOOConfig", "Partition", "dominance_counts"]
