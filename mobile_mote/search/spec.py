"""A search run as plain data: one ``RunSpec`` for every algorithm the driver runs.

``algorithm`` names a registered algorithm (``search/algorithms``: ``mote-nas``, ``ef``, ``rs``,
``nsga2``, ...) and ``algorithm_config`` its settings (a dict, or its ``Config``; what it leaves out
takes the ``Config`` defaults). ``config_dict()`` is the run's identity: what must match for a resume.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, is_dataclass
from pathlib import Path

from ..benchmarks.nb201 import MAIN_DATASET
from ..efficiency.constraints import Constraint


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
    algorithm: str = "mote-nas"
    algorithm_config: dict = field(default_factory=dict)
    profile: str | None = None  # the --profile the settings were resolved from (recorded, not identity)
    proxy_data: str | None = None
    benchmark: str | None = None  # a benchmark table: evaluation stage and/or true accuracy of the result
    benchmark_dataset: str = MAIN_DATASET  # NB201's data set of the true accuracy
    latency_table: str | None = None
    latency_device: str | None = None
    latency_lut: str | None = None
    seed: int = 0
    device: str = "cpu"
    runs_dir: str = "runs"
    store_path: str | None = None  # default runs_dir/name/search.db; several runs may share one store
    workers: int = 1  # candidates scored at once per device (threads, one CUDA stream each)

    def __post_init__(self):
        if is_dataclass(self.algorithm_config):  # a Config: its settings, every one given
            self.algorithm_config = self.algorithm_config.to_dict()

    def config_dict(self) -> dict:
        """What must match for a resume: everything but where the run is written, how fast, the
        profile's name (its settings are in the configs), what the algorithm only reports on and
        what of its settings a resume may change (``Algorithm.reporting_only``, ``.resumable``)."""
        from .algorithms import algorithm_class
        cls = algorithm_class(self.algorithm)
        d = asdict(self)
        for k in ("runs_dir", "store_path", "workers", "profile", *cls.reporting_only):
            d.pop(k)
        d["constraints"] = [c.to_dict() for c in self.constraints]
        d["algorithm_config"] = cls.identity(cls.config_of(self.algorithm_config))
        return d

    @property
    def run_dir(self) -> Path:
        return Path(self.runs_dir) / self.name
