"""MO-HDNAS (``mo-hdnas``): NSGA-II over similarity, hardware cost and hardware-cost diversity."""
from .algorithm import MOHDNAS, MOHDNASConfig, cost_diversity

__all__ = ["MOHDNAS", "MOHDNASConfig", "cost_diversity"]
