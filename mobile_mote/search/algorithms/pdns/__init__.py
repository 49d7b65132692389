"""MTF-PDNS (``pdns``): Pareto-dominance novelty search over several training-free metrics."""
from .algorithm import PDNS, PDNSConfig

__all__ = ["PDNS", "PDNSConfig"]
