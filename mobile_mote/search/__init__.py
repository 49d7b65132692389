"""Search: one driver (``driver.run``) for every registered algorithm (``search/algorithms``:
MOTE-NAS and its EF / RS variants, NSGA-II) over any space, any estimator, under budgets. Algorithms
speak ask/tell and never see a model."""
from .algorithms import ALGORITHMS, NSGA2, MoteNAS, ParetoConfig, SearchConfig, algorithm_class, algorithm_config
from .driver import drive, run
from .session import run_session
from .spec import RunSpec

__all__ = ["ALGORITHMS", "MoteNAS", "NSGA2", "ParetoConfig", "RunSpec", "SearchConfig", "algorithm_class",
           "algorithm_config", "drive", "run", "run_session"]
