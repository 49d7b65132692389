"""Search: one driver (``driver.run``) for MOTE-NAS (and its EF / RS variants) and NSGA-II over any
space, any estimator, under budgets. Algorithms speak ask/tell and never see a model."""
from .algorithms import ALGORITHMS, MoteNAS, SearchConfig
from .driver import drive, run, run_session
from .nsga import NSGA2, ParetoConfig
from .spec import RunSpec

__all__ = ["ALGORITHMS", "MoteNAS", "NSGA2", "ParetoConfig", "RunSpec", "SearchConfig", "drive", "run",
           "run_session"]
