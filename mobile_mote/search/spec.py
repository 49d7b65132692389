"""A search run as plain data: one ``RunSpec`` for every algorithm the driver runs.

``algorithm`` names the algorithm (``mote-nas``, ``ef``, ``rs``: MOTE-NAS's evolution and its
variants, configured by ``search``; ``nsga2``: the multi-objective search, configured by ``pareto``
and ``objectives``). ``config_dict()`` is the run's identity: what must match for a resume.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..benchmarks.nb201 import MAIN_DATASET
from ..efficiency.constraints import Constraint
from .algorithms import SearchConfig
from .nsga import DEFAULT_OBJECTIVES, ParetoConfig


def check_run_name(name) -> None:
    """InputError unless ``name`` is one folder name inside the runs folder: not empty, one line, no
    path separator, no leading dot (so neither ``.`` nor ``..``), at most 200 characters."""
    from ..errors import InputError
    text = str(name)
    bad = ("is empty" if not text.strip() else
           "spans several lines" if any(ch in text for ch in "\n\r\v\f\x85\u2028\u2029") else
           "holds a control character" if any(ord(ch) < 32 or ord(ch) == 127 for ch in text) else
           "holds a path separator" if "/" in text or "\\" in text else
           "starts with a dot" if text.startswith(".") else
           "is longer than 200 characters" if len(text) > 200 else None)
    if bad:
        raise InputError(f"run name {text!r} {bad}; a run name is one folder name under --runs-dir: no '/' or "
                         "'\\', no leading dot (so no '..'), one line, e.g. mbv3_400M_s0")


@dataclass
class RunSpec:
    name: str
    space: str
    constraints: list[Constraint] = field(default_factory=list)
    estimator: str = "mote"
    estimator_config: dict = field(default_factory=dict)
    search: SearchConfig = field(default_factory=SearchConfig)  # mote-nas / ef / rs
    pareto: ParetoConfig | None = None  # set: the run is NSGA-II over ``objectives``
    objectives: tuple = DEFAULT_OBJECTIVES
    proxy_data: str | None = None
    benchmark: str | None = None  # a benchmark table: evaluation stage and/or true accuracy of the result
    benchmark_dataset: str = MAIN_DATASET  # NB201's data set of the true accuracy
    latency_table: str | None = None
    latency_device: str | None = None
    latency_lut: str | None = None
    eval_epochs: int = 12
    seed: int = 0
    device: str = "cpu"
    runs_dir: str = "runs"
    store_path: str | None = None  # default runs_dir/name/search.db; several runs may share one store
    workers: int = 1  # candidates scored at once per device (threads, one CUDA stream each)

    def __post_init__(self):
        if self.pareto is not None:  # the run's objectives and seed are the algorithm's
            self.pareto.objectives, self.pareto.seed = tuple(self.objectives), self.seed

    @property
    def algorithm(self) -> str:
        return "nsga2" if self.pareto is not None else self.search.algorithm

    def config_dict(self) -> dict:
        """What must match for a resume: everything but where the run is written and, for NSGA-II,
        what is only reported (the benchmark) or how long it runs (a resume may extend it)."""
        d = asdict(self)
        for k in ("runs_dir", "store_path", "workers"):  # where and how fast, not what
            d.pop(k)
        d["constraints"] = [c.to_dict() for c in self.constraints]
        if self.pareto is None:
            for k in ("pareto", "objectives", "latency_lut"):
                d.pop(k)
        else:
            for k in ("search", "eval_epochs", "benchmark", "benchmark_dataset"):
                d.pop(k)
            d["objectives"] = list(self.objectives)
            d["pareto"] = {k: v for k, v in self.pareto.to_dict().items() if k not in ("generations", "budget")}
        return d

    @property
    def run_dir(self) -> Path:
        return Path(self.runs_dir) / self.name
